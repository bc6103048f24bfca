//! Generic key commands.

use std::collections::HashSet;

use redis::Value;

use crate::harness::*;

#[tokio::test]
async fn del_unlink_exists_touch_type() {
    let s = TestServer::start().await;
    let mut c = s.conn().await;
    q(&mut c, &["MSET", "a", "1", "b", "2", "c", "3"]).await;
    assert_eq!(q(&mut c, &["EXISTS", "a", "a", "nokey"]).await, int(2), "duplicates count each time");
    assert_eq!(q(&mut c, &["TOUCH", "a", "b", "nokey"]).await, int(2));
    assert_eq!(q(&mut c, &["TYPE", "a"]).await, Value::SimpleString("string".into()));
    assert_eq!(q(&mut c, &["TYPE", "nokey"]).await, Value::SimpleString("none".into()));
    assert_eq!(q(&mut c, &["DEL", "a", "nokey"]).await, int(1));
    assert_eq!(q(&mut c, &["UNLINK", "b", "c"]).await, int(2));
    assert_eq!(q(&mut c, &["DBSIZE"]).await, int(0));
    assert_eq!(err(&mut c, &["DEL"]).await, "ERR wrong number of arguments for 'del' command");
    assert_eq!(err(&mut c, &["EXISTS"]).await, "ERR wrong number of arguments for 'exists' command");
    assert_eq!(err(&mut c, &["TYPE", "a", "b"]).await, "ERR wrong number of arguments for 'type' command");
}

#[tokio::test]
async fn expire_family_and_options() {
    let s = TestServer::start().await;
    let mut c = s.conn().await;
    assert_eq!(q(&mut c, &["EXPIRE", "nokey", "10"]).await, int(0));
    q(&mut c, &["SET", "k", "v"]).await;
    assert_eq!(q(&mut c, &["TTL", "k"]).await, int(-1));
    assert_eq!(q(&mut c, &["TTL", "nokey"]).await, int(-2));
    assert_eq!(q(&mut c, &["PTTL", "nokey"]).await, int(-2));
    assert_eq!(q(&mut c, &["EXPIRETIME", "k"]).await, int(-1));
    // XX and GT need an existing TTL; NX and LT work without one.
    assert_eq!(q(&mut c, &["EXPIRE", "k", "100", "XX"]).await, int(0));
    assert_eq!(q(&mut c, &["EXPIRE", "k", "100", "GT"]).await, int(0));
    assert_eq!(q(&mut c, &["EXPIRE", "k", "100", "NX"]).await, int(1));
    assert_eq!(q(&mut c, &["EXPIRE", "k", "200", "NX"]).await, int(0));
    assert_eq!(q(&mut c, &["EXPIRE", "k", "50", "GT"]).await, int(0));
    assert_eq!(q(&mut c, &["EXPIRE", "k", "200", "GT"]).await, int(1));
    assert_eq!(q(&mut c, &["EXPIRE", "k", "300", "LT"]).await, int(0));
    assert_eq!(q(&mut c, &["EXPIRE", "k", "150", "lt"]).await, int(1));
    assert_eq!(q(&mut c, &["TTL", "k"]).await, int(150));
    assert_eq!(q(&mut c, &["PEXPIRE", "k", "20000"]).await, int(1));
    assert_eq!(q(&mut c, &["TTL", "k"]).await, int(20));
    let Value::Int(pttl) = q(&mut c, &["PTTL", "k"]).await else { panic!() };
    assert!((19_000..=20_000).contains(&pttl), "{pttl}");
    assert_eq!(q(&mut c, &["EXPIREAT", "k", "4102444800"]).await, int(1));
    assert_eq!(q(&mut c, &["EXPIRETIME", "k"]).await, int(4102444800));
    assert_eq!(q(&mut c, &["PEXPIREAT", "k", "4102444800500"]).await, int(1));
    assert_eq!(q(&mut c, &["PEXPIRETIME", "k"]).await, int(4102444800500));
    assert_eq!(q(&mut c, &["PERSIST", "k"]).await, int(1));
    assert_eq!(q(&mut c, &["PERSIST", "k"]).await, int(0));
    assert_eq!(q(&mut c, &["TTL", "k"]).await, int(-1));
    // GT and LT compare signed times: a negative one is less than any TTL.
    q(&mut c, &["EXPIRE", "k", "100"]).await;
    assert_eq!(q(&mut c, &["PEXPIREAT", "k", "-5000", "GT"]).await, int(0));
    assert_eq!(q(&mut c, &["EXISTS", "k"]).await, int(1));
    assert_eq!(q(&mut c, &["PEXPIREAT", "k", "-5000", "LT"]).await, int(1));
    assert_eq!(q(&mut c, &["EXISTS", "k"]).await, int(0));
    q(&mut c, &["SET", "k", "v"]).await;
    // A time in the past deletes the key.
    assert_eq!(q(&mut c, &["EXPIRE", "k", "-1"]).await, int(1));
    assert_eq!(q(&mut c, &["EXISTS", "k"]).await, int(0));
    q(&mut c, &["SET", "k", "v"]).await;
    assert_eq!(q(&mut c, &["EXPIREAT", "k", "1"]).await, int(1));
    assert_eq!(q(&mut c, &["EXISTS", "k"]).await, int(0));
}

#[tokio::test]
async fn expire_errors() {
    let s = TestServer::start().await;
    let mut c = s.conn().await;
    q(&mut c, &["SET", "k", "v"]).await;
    assert_eq!(
        err(&mut c, &["EXPIRE", "k", "10", "NX", "XX"]).await,
        "ERR NX and XX, GT or LT options at the same time are not compatible"
    );
    assert_eq!(
        err(&mut c, &["EXPIRE", "k", "10", "GT", "LT"]).await,
        "ERR GT and LT options at the same time are not compatible"
    );
    assert_eq!(err(&mut c, &["EXPIRE", "k", "10", "foo"]).await, "ERR Unsupported option foo");
    assert_eq!(err(&mut c, &["EXPIRE", "k", "ten"]).await, "ERR value is not an integer or out of range");
    assert_eq!(
        err(&mut c, &["EXPIRE", "k", "99999999999999999"]).await,
        "ERR invalid expire time in 'expire' command"
    );
    assert_eq!(
        err(&mut c, &["PEXPIRE", "k", "9223372036854775807"]).await,
        "ERR invalid expire time in 'pexpire' command"
    );
    assert_eq!(err(&mut c, &["EXPIRE", "k"]).await, "ERR wrong number of arguments for 'expire' command");
    assert_eq!(q(&mut c, &["TTL", "k"]).await, int(-1));
}

#[tokio::test]
async fn rename_and_renamenx() {
    let s = TestServer::start().await;
    let mut c = s.conn().await;
    assert_eq!(err(&mut c, &["RENAME", "nokey", "x"]).await, "ERR no such key");
    assert_eq!(err(&mut c, &["RENAMENX", "nokey", "x"]).await, "ERR no such key");
    q(&mut c, &["SET", "a", "1", "EX", "100"]).await;
    assert_eq!(q(&mut c, &["RENAME", "a", "b"]).await, Value::Okay);
    assert_eq!(q(&mut c, &["GET", "b"]).await, bulk("1"));
    assert_eq!(q(&mut c, &["TTL", "b"]).await, int(100), "RENAME keeps the TTL");
    assert_eq!(q(&mut c, &["EXISTS", "a"]).await, int(0));
    assert_eq!(q(&mut c, &["RENAME", "b", "b"]).await, Value::Okay);
    q(&mut c, &["SET", "c", "3"]).await;
    assert_eq!(q(&mut c, &["RENAMENX", "b", "c"]).await, int(0));
    assert_eq!(q(&mut c, &["RENAMENX", "b", "d"]).await, int(1));
    assert_eq!(q(&mut c, &["RENAME", "d", "c"]).await, Value::Okay, "RENAME overwrites");
    assert_eq!(q(&mut c, &["GET", "c"]).await, bulk("1"));
}

fn strings(v: Value) -> HashSet<String> {
    match v {
        Value::Array(items) => items
            .into_iter()
            .map(|i| match i {
                Value::BulkString(b) => String::from_utf8(b).unwrap(),
                other => panic!("{other:?}"),
            })
            .collect(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn keys_and_scan() {
    let s = TestServer::start().await;
    let mut c = s.conn().await;
    for i in 0..300 {
        q(&mut c, &["SET", &format!("user:{i}"), "v"]).await;
    }
    q(&mut c, &["SET", "other", "v"]).await;
    assert_eq!(strings(q(&mut c, &["KEYS", "*"]).await).len(), 301);
    assert_eq!(strings(q(&mut c, &["KEYS", "user:1?"]).await).len(), 10);
    assert_eq!(strings(q(&mut c, &["KEYS", "o[st]her"]).await), HashSet::from(["other".to_string()]));

    let mut seen = HashSet::new();
    let mut cursor = "0".to_string();
    for _ in 0..1000 {
        let Value::Array(reply) = q(&mut c, &["SCAN", &cursor, "MATCH", "user:*", "COUNT", "25"]).await
        else {
            panic!()
        };
        let Value::BulkString(next) = &reply[0] else { panic!("cursor is a bulk string") };
        cursor = String::from_utf8(next.clone()).unwrap();
        seen.extend(strings(reply[1].clone()));
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(cursor, "0", "SCAN finished");
    assert_eq!(seen.len(), 300);
    assert!(!seen.contains("other"));
    let Value::Array(reply) = q(&mut c, &["SCAN", "0", "TYPE", "string", "COUNT", "1000"]).await else {
        panic!()
    };
    assert_eq!(strings(reply[1].clone()).len(), 301);
    let Value::Array(reply) = q(&mut c, &["SCAN", "0", "TYPE", "list", "COUNT", "1000"]).await else {
        panic!()
    };
    assert!(strings(reply[1].clone()).is_empty());

    assert_eq!(err(&mut c, &["SCAN", "abc"]).await, "ERR invalid cursor");
    assert_eq!(err(&mut c, &["SCAN", " 0"]).await, "ERR invalid cursor");
    assert_eq!(err(&mut c, &["SCAN", "18446744073709551616"]).await, "ERR invalid cursor");
    let Value::Array(wrapped) = q(&mut c, &["SCAN", "-1", "COUNT", "1000"]).await else { panic!() };
    assert_eq!(strings(wrapped[1].clone()).len(), 301, "a negative cursor wraps around, as strtoul");
    assert_eq!(err(&mut c, &["SCAN", "0", "COUNT", "0"]).await, "ERR syntax error");
    assert_eq!(
        err(&mut c, &["SCAN", "0", "COUNT", "x"]).await,
        "ERR value is not an integer or out of range"
    );
    assert_eq!(err(&mut c, &["SCAN", "0", "MATCH"]).await, "ERR syntax error");
    assert_eq!(err(&mut c, &["SCAN", "0", "FOO", "bar"]).await, "ERR syntax error");
}

#[tokio::test]
async fn randomkey_dbsize_flush() {
    let s = TestServer::start().await;
    let mut c = s.conn().await;
    assert_eq!(q(&mut c, &["RANDOMKEY"]).await, Value::Nil);
    q(&mut c, &["MSET", "a", "1", "b", "2"]).await;
    let Value::BulkString(k) = q(&mut c, &["RANDOMKEY"]).await else { panic!() };
    assert!(k == b"a" || k == b"b");
    assert_eq!(q(&mut c, &["DBSIZE"]).await, int(2));
    q(&mut c, &["SELECT", "1"]).await;
    q(&mut c, &["SET", "x", "1"]).await;
    assert_eq!(q(&mut c, &["FLUSHDB", "ASYNC"]).await, Value::Okay);
    assert_eq!(q(&mut c, &["DBSIZE"]).await, int(0));
    q(&mut c, &["SELECT", "0"]).await;
    assert_eq!(q(&mut c, &["DBSIZE"]).await, int(2), "FLUSHDB touches only the selected db");
    assert_eq!(err(&mut c, &["FLUSHDB", "LATER"]).await, "ERR syntax error");
    assert_eq!(err(&mut c, &["FLUSHALL", "SYNC", "x"]).await, "ERR syntax error");
    assert_eq!(q(&mut c, &["FLUSHALL", "SYNC"]).await, Value::Okay);
    assert_eq!(q(&mut c, &["DBSIZE"]).await, int(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn move_and_swapdb_on_a_standalone_server_refused_in_a_cluster() {
    let s = TestServer::start().await;
    let mut c = s.conn().await;
    q(&mut c, &["SET", "k", "v"]).await;
    q(&mut c, &["EXPIRE", "k", "100"]).await;
    assert_eq!(q(&mut c, &["MOVE", "k", "1"]).await, int(1));
    assert_eq!(q(&mut c, &["EXISTS", "k"]).await, int(0));
    // A WATCH on db 1 sees SWAPDB; a client blocked on db 0 is served by what it brings.
    let mut watcher = s.raw().await;
    watcher.call(&resp(&["SELECT", "1"])).await;
    watcher.call(&resp(&["WATCH", "k"])).await;
    let mut blocked = s.raw().await;
    blocked.send(&resp(&["BLPOP", "jobs", "0"])).await;
    q(&mut c, &["SELECT", "1"]).await;
    q(&mut c, &["RPUSH", "jobs", "j1"]).await;
    let Value::Int(ttl) = q(&mut c, &["TTL", "k"]).await else { panic!("a TTL") };
    assert!((90..=100).contains(&ttl), "MOVE keeps the TTL: {ttl}");
    assert_eq!(q(&mut c, &["SWAPDB", "0", "1"]).await, Value::Okay);
    assert!(blocked.reply().await.ends_with("$2\r\nj1\r\n"), "the waiter in db 0 got the swapped-in job");
    watcher.call(&resp(&["MULTI"])).await;
    watcher.call(&resp(&["SET", "k", "x"])).await;
    assert_eq!(watcher.call(&resp(&["EXEC"])).await, "*-1\r\n", "SWAPDB touched the watched key");
    q(&mut c, &["SELECT", "0"]).await;
    assert_eq!(q(&mut c, &["GET", "k"]).await, bulk("v"));
    // In a cluster there is one database.
    let all = crate::all::start("").await;
    let mut p = crate::cluster::conn_to(all.proxy).await;
    q(&mut p, &["SET", "k", "v"]).await;
    assert_eq!(err(&mut p, &["MOVE", "k", "1"]).await, "ERR MOVE is not allowed in cluster mode");
    assert_eq!(err(&mut p, &["SWAPDB", "0", "1"]).await, "ERR SWAPDB is not allowed in cluster mode");
}
