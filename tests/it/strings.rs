//! String commands, with Redis 7's replies and error texts.

use std::time::Duration;

use redis::Value;

use crate::harness::*;

#[tokio::test]
async fn get_set_and_options() {
    let s = TestServer::start().await;
    let mut c = s.conn().await;
    assert_eq!(q(&mut c, &["GET", "k"]).await, Value::Nil);
    assert_eq!(q(&mut c, &["SET", "k", "v"]).await, Value::Okay);
    assert_eq!(q(&mut c, &["GET", "k"]).await, bulk("v"));
    // NX / XX
    assert_eq!(q(&mut c, &["SET", "k", "w", "NX"]).await, Value::Nil);
    assert_eq!(q(&mut c, &["SET", "new", "w", "XX"]).await, Value::Nil);
    assert_eq!(q(&mut c, &["SET", "k", "w", "xx"]).await, Value::Okay);
    // GET returns the old value
    assert_eq!(q(&mut c, &["SET", "k", "x", "GET"]).await, bulk("w"));
    assert_eq!(q(&mut c, &["SET", "fresh", "x", "GET"]).await, Value::Nil);
    // EX / PX / EXAT / PXAT / KEEPTTL
    assert_eq!(q(&mut c, &["SET", "k", "v", "EX", "100"]).await, Value::Okay);
    assert_eq!(q(&mut c, &["TTL", "k"]).await, int(100));
    assert_eq!(q(&mut c, &["SET", "k", "v2", "KEEPTTL"]).await, Value::Okay);
    assert_eq!(q(&mut c, &["TTL", "k"]).await, int(100));
    assert_eq!(q(&mut c, &["SET", "k", "v3"]).await, Value::Okay);
    assert_eq!(q(&mut c, &["TTL", "k"]).await, int(-1));
    assert_eq!(q(&mut c, &["SET", "k", "v", "PX", "100000"]).await, Value::Okay);
    assert_eq!(q(&mut c, &["TTL", "k"]).await, int(100));
    assert_eq!(q(&mut c, &["SET", "k", "v", "EXAT", "4102444800"]).await, Value::Okay);
    assert_eq!(q(&mut c, &["EXPIRETIME", "k"]).await, int(4102444800));
    assert_eq!(q(&mut c, &["SET", "k", "v", "PXAT", "4102444800123"]).await, Value::Okay);
    assert_eq!(q(&mut c, &["PEXPIRETIME", "k"]).await, int(4102444800123));
}

#[tokio::test]
async fn set_errors() {
    let s = TestServer::start().await;
    let mut c = s.conn().await;
    assert_eq!(err(&mut c, &["SET", "k"]).await, "ERR wrong number of arguments for 'set' command");
    assert_eq!(err(&mut c, &["SET", "k", "v", "NX", "XX"]).await, "ERR syntax error");
    assert_eq!(err(&mut c, &["SET", "k", "v", "EX", "1", "PX", "1"]).await, "ERR syntax error");
    assert_eq!(err(&mut c, &["SET", "k", "v", "EX"]).await, "ERR syntax error");
    assert_eq!(err(&mut c, &["SET", "k", "v", "BOGUS"]).await, "ERR syntax error");
    assert_eq!(
        err(&mut c, &["SET", "k", "v", "EX", "abc"]).await,
        "ERR value is not an integer or out of range"
    );
    assert_eq!(err(&mut c, &["SET", "k", "v", "EX", "0"]).await, "ERR invalid expire time in 'set' command");
    assert_eq!(err(&mut c, &["SET", "k", "v", "PX", "-5"]).await, "ERR invalid expire time in 'set' command");
    assert_eq!(
        err(&mut c, &["SET", "k", "v", "EX", "9223372036854775807"]).await,
        "ERR invalid expire time in 'set' command"
    );
    assert_eq!(q(&mut c, &["EXISTS", "k"]).await, int(0), "a refused SET must not write");
}

#[tokio::test]
async fn setnx_setex_psetex_getset_getdel() {
    let s = TestServer::start().await;
    let mut c = s.conn().await;
    assert_eq!(q(&mut c, &["SETNX", "k", "1"]).await, int(1));
    assert_eq!(q(&mut c, &["SETNX", "k", "2"]).await, int(0));
    assert_eq!(q(&mut c, &["SETEX", "k", "50", "v"]).await, Value::Okay);
    assert_eq!(q(&mut c, &["TTL", "k"]).await, int(50));
    assert_eq!(err(&mut c, &["SETEX", "k", "0", "v"]).await, "ERR invalid expire time in 'setex' command");
    assert_eq!(err(&mut c, &["SETEX", "k", "x", "v"]).await, "ERR value is not an integer or out of range");
    assert_eq!(q(&mut c, &["PSETEX", "k", "50000", "v"]).await, Value::Okay);
    assert_eq!(q(&mut c, &["TTL", "k"]).await, int(50));
    assert_eq!(err(&mut c, &["PSETEX", "k", "-1", "v"]).await, "ERR invalid expire time in 'psetex' command");
    assert_eq!(q(&mut c, &["GETSET", "k", "new"]).await, bulk("v"));
    assert_eq!(q(&mut c, &["TTL", "k"]).await, int(-1), "GETSET clears the TTL");
    assert_eq!(q(&mut c, &["GETSET", "none", "x"]).await, Value::Nil);
    assert_eq!(q(&mut c, &["GETDEL", "k"]).await, bulk("new"));
    assert_eq!(q(&mut c, &["GETDEL", "k"]).await, Value::Nil);
    assert_eq!(err(&mut c, &["GETDEL"]).await, "ERR wrong number of arguments for 'getdel' command");
}

#[tokio::test]
async fn getex() {
    let s = TestServer::start().await;
    let mut c = s.conn().await;
    assert_eq!(q(&mut c, &["GETEX", "nokey", "EX", "10"]).await, Value::Nil);
    q(&mut c, &["SET", "k", "v"]).await;
    assert_eq!(q(&mut c, &["GETEX", "k"]).await, bulk("v"));
    assert_eq!(q(&mut c, &["GETEX", "k", "EX", "100"]).await, bulk("v"));
    assert_eq!(q(&mut c, &["TTL", "k"]).await, int(100));
    assert_eq!(q(&mut c, &["GETEX", "k", "PERSIST"]).await, bulk("v"));
    assert_eq!(q(&mut c, &["TTL", "k"]).await, int(-1));
    assert_eq!(q(&mut c, &["GETEX", "k", "PXAT", "1"]).await, bulk("v"));
    assert_eq!(q(&mut c, &["EXISTS", "k"]).await, int(0), "an expiry in the past deletes");
    assert_eq!(err(&mut c, &["GETEX", "k", "EX", "0"]).await, "ERR invalid expire time in 'getex' command");
    assert_eq!(err(&mut c, &["GETEX", "k", "PERSIST", "EX", "1"]).await, "ERR syntax error");
    assert_eq!(err(&mut c, &["GETEX", "k", "EX", "x"]).await, "ERR value is not an integer or out of range");
}

#[tokio::test]
async fn mget_mset_msetnx() {
    let s = TestServer::start().await;
    let mut c = s.conn().await;
    assert_eq!(q(&mut c, &["MSET", "a", "1", "b", "2"]).await, Value::Okay);
    assert_eq!(
        q(&mut c, &["MGET", "a", "nokey", "b"]).await,
        Value::Array(vec![bulk("1"), Value::Nil, bulk("2")])
    );
    assert_eq!(
        err(&mut c, &["MSET", "a", "1", "b"]).await,
        "ERR wrong number of arguments for 'mset' command"
    );
    assert_eq!(q(&mut c, &["MSETNX", "a", "9", "c", "3"]).await, int(0));
    assert_eq!(q(&mut c, &["EXISTS", "c"]).await, int(0), "MSETNX is all or nothing");
    assert_eq!(q(&mut c, &["MSETNX", "c", "3", "d", "4"]).await, int(1));
    assert_eq!(q(&mut c, &["MGET", "c", "d"]).await, Value::Array(vec![bulk("3"), bulk("4")]));
    assert_eq!(err(&mut c, &["MSETNX", "a"]).await, "ERR wrong number of arguments for 'msetnx' command");
    assert_eq!(err(&mut c, &["MGET"]).await, "ERR wrong number of arguments for 'mget' command");
}

#[tokio::test]
async fn counters() {
    let s = TestServer::start().await;
    let mut c = s.conn().await;
    assert_eq!(q(&mut c, &["INCR", "n"]).await, int(1));
    assert_eq!(q(&mut c, &["INCRBY", "n", "10"]).await, int(11));
    assert_eq!(q(&mut c, &["DECR", "n"]).await, int(10));
    assert_eq!(q(&mut c, &["DECRBY", "n", "20"]).await, int(-10));
    assert_eq!(q(&mut c, &["GET", "n"]).await, bulk("-10"));
    // The TTL survives increments.
    q(&mut c, &["EXPIRE", "n", "100"]).await;
    q(&mut c, &["INCR", "n"]).await;
    assert_eq!(q(&mut c, &["TTL", "n"]).await, int(100));
    q(&mut c, &["SET", "s", "abc"]).await;
    assert_eq!(err(&mut c, &["INCR", "s"]).await, "ERR value is not an integer or out of range");
    q(&mut c, &["SET", "s", " 1"]).await;
    assert_eq!(err(&mut c, &["INCR", "s"]).await, "ERR value is not an integer or out of range");
    assert_eq!(err(&mut c, &["INCRBY", "n", "x"]).await, "ERR value is not an integer or out of range");
    q(&mut c, &["SET", "max", "9223372036854775807"]).await;
    assert_eq!(err(&mut c, &["INCR", "max"]).await, "ERR increment or decrement would overflow");
    q(&mut c, &["SET", "min", "-9223372036854775808"]).await;
    assert_eq!(err(&mut c, &["DECR", "min"]).await, "ERR increment or decrement would overflow");
    assert_eq!(err(&mut c, &["DECRBY", "n", "-9223372036854775808"]).await, "ERR decrement would overflow");
    assert_eq!(
        q(&mut c, &["GET", "max"]).await,
        bulk("9223372036854775807"),
        "a failed INCR changes nothing"
    );
}

#[tokio::test]
async fn incrbyfloat() {
    let s = TestServer::start().await;
    let mut c = s.conn().await;
    assert_eq!(q(&mut c, &["INCRBYFLOAT", "f", "10.5"]).await, bulk("10.5"));
    assert_eq!(q(&mut c, &["INCRBYFLOAT", "f", "0.1"]).await, bulk("10.6"));
    assert_eq!(q(&mut c, &["INCRBYFLOAT", "f", "-5.6"]).await, bulk("5"));
    assert_eq!(q(&mut c, &["INCRBYFLOAT", "f", "5.0e3"]).await, bulk("5005"));
    q(&mut c, &["SET", "s", "abc"]).await;
    assert_eq!(err(&mut c, &["INCRBYFLOAT", "s", "1"]).await, "ERR value is not a valid float");
    assert_eq!(err(&mut c, &["INCRBYFLOAT", "f", "x"]).await, "ERR value is not a valid float");
    assert_eq!(err(&mut c, &["INCRBYFLOAT", "f", "nan"]).await, "ERR value is not a valid float");
    q(&mut c, &["SET", "big", "1e308"]).await;
    assert_eq!(
        err(&mut c, &["INCRBYFLOAT", "big", "1e308"]).await,
        "ERR increment would produce NaN or Infinity"
    );
}

#[tokio::test]
async fn append_strlen_ranges() {
    let s = TestServer::start().await;
    let mut c = s.conn().await;
    assert_eq!(q(&mut c, &["APPEND", "k", "Hello"]).await, int(5));
    assert_eq!(q(&mut c, &["APPEND", "k", " World"]).await, int(11));
    assert_eq!(q(&mut c, &["STRLEN", "k"]).await, int(11));
    assert_eq!(q(&mut c, &["STRLEN", "nokey"]).await, int(0));
    assert_eq!(q(&mut c, &["GETRANGE", "k", "0", "4"]).await, bulk("Hello"));
    assert_eq!(q(&mut c, &["GETRANGE", "k", "-5", "-1"]).await, bulk("World"));
    assert_eq!(q(&mut c, &["GETRANGE", "k", "0", "-1"]).await, bulk("Hello World"));
    assert_eq!(q(&mut c, &["GETRANGE", "k", "5", "1"]).await, bulk(""));
    assert_eq!(q(&mut c, &["GETRANGE", "k", "-1", "-5"]).await, bulk(""));
    assert_eq!(q(&mut c, &["GETRANGE", "k", "0", "100"]).await, bulk("Hello World"));
    assert_eq!(q(&mut c, &["GETRANGE", "nokey", "0", "1"]).await, bulk(""));
    assert_eq!(
        err(&mut c, &["GETRANGE", "k", "a", "1"]).await,
        "ERR value is not an integer or out of range"
    );
    assert_eq!(q(&mut c, &["SETRANGE", "k", "6", "Redis"]).await, int(11));
    assert_eq!(q(&mut c, &["GET", "k"]).await, bulk("Hello Redis"));
    assert_eq!(q(&mut c, &["SETRANGE", "pad", "3", "x"]).await, int(4));
    assert_eq!(q(&mut c, &["GET", "pad"]).await, Value::BulkString(b"\0\0\0x".to_vec()));
    assert_eq!(q(&mut c, &["SETRANGE", "nokey", "5", ""]).await, int(0));
    assert_eq!(q(&mut c, &["EXISTS", "nokey"]).await, int(0));
    assert_eq!(err(&mut c, &["SETRANGE", "k", "-1", "x"]).await, "ERR offset is out of range");
    assert_eq!(
        err(&mut c, &["SETRANGE", "k", "536870912", "x"]).await,
        "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
    );
}

#[tokio::test]
async fn binary_safe_keys_and_values() {
    let s = TestServer::start().await;
    let mut c = s.conn().await;
    let key: Vec<u8> = vec![0, 1, 2, b'\r', b'\n', 255];
    let value: Vec<u8> = (0..=255u8).collect();
    let _: () = redis::cmd("SET").arg(&key).arg(&value).query_async(&mut c).await.unwrap();
    let got: Vec<u8> = redis::cmd("GET").arg(&key).query_async(&mut c).await.unwrap();
    assert_eq!(got, value);
}

#[tokio::test]
async fn keys_expire_lazily_and_actively() {
    let s = TestServer::start().await;
    let mut c = s.conn().await;
    q(&mut c, &["SET", "lazy", "v", "PX", "30"]).await;
    for i in 0..50 {
        q(&mut c, &["SET", &format!("active{i}"), "v", "PX", "30"]).await;
    }
    q(&mut c, &["SET", "keep", "v"]).await;
    // Active expiry empties the keyspace without anyone touching the keys.
    let gone = eventually(Duration::from_secs(5), || {
        let mut c = c.clone();
        async move { q(&mut c, &["DBSIZE"]).await == int(1) }
    })
    .await;
    assert!(gone, "active expiry did not remove the keys");
    assert_eq!(q(&mut c, &["GET", "lazy"]).await, Value::Nil);
    assert_eq!(q(&mut c, &["GET", "keep"]).await, bulk("v"));
    let info: String = redis::cmd("INFO").arg("stats").query_async(&mut c).await.unwrap();
    assert!(info.contains("expired_keys:51"), "{info}");
}
