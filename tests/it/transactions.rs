//! MULTI / EXEC / DISCARD / WATCH, with Redis's EXECABORT and queued-error behaviour.

use redis::Value;

use crate::harness::*;

#[tokio::test]
async fn multi_exec_runs_queued_commands_in_order() {
    let s = TestServer::start().await;
    let mut c = s.conn().await;
    assert_eq!(q(&mut c, &["MULTI"]).await, Value::Okay);
    assert_eq!(q(&mut c, &["SET", "a", "1"]).await, Value::SimpleString("QUEUED".into()));
    assert_eq!(q(&mut c, &["INCR", "a"]).await, Value::SimpleString("QUEUED".into()));
    assert_eq!(q(&mut c, &["GET", "a"]).await, Value::SimpleString("QUEUED".into()));
    assert_eq!(q(&mut c, &["EXEC"]).await, Value::Array(vec![Value::Okay, int(2), bulk("2")]));
}

#[tokio::test]
async fn queue_time_errors_abort_exec() {
    let s = TestServer::start().await;
    let mut c = s.conn().await;
    q(&mut c, &["MULTI"]).await;
    q(&mut c, &["SET", "a", "1"]).await;
    assert_eq!(
        err(&mut c, &["NOSUCHCMD", "x"]).await,
        "ERR unknown command 'NOSUCHCMD', with args beginning with: 'x' "
    );
    assert_eq!(err(&mut c, &["GET"]).await, "ERR wrong number of arguments for 'get' command");
    assert_eq!(err(&mut c, &["EXEC"]).await, "EXECABORT Transaction discarded because of previous errors.");
    assert_eq!(q(&mut c, &["EXISTS", "a"]).await, int(0), "nothing of an aborted transaction runs");
    assert_eq!(err(&mut c, &["EXEC"]).await, "ERR EXEC without MULTI");
}

#[tokio::test]
async fn runtime_errors_stay_inside_the_exec_reply() {
    let s = TestServer::start().await;
    let mut raw = s.raw().await;
    raw.call(&resp(&["SET", "s", "abc"])).await;
    assert_eq!(raw.call(&resp(&["MULTI"])).await, "+OK\r\n");
    assert_eq!(raw.call(&resp(&["INCR", "s"])).await, "+QUEUED\r\n");
    assert_eq!(raw.call(&resp(&["SET", "b", "1"])).await, "+QUEUED\r\n");
    assert_eq!(
        raw.call(&resp(&["EXEC"])).await,
        "*2\r\n-ERR value is not an integer or out of range\r\n+OK\r\n"
    );
    assert_eq!(raw.call(&resp(&["GET", "b"])).await, "$1\r\n1\r\n");
}

#[tokio::test]
async fn multi_errors() {
    let s = TestServer::start().await;
    let mut c = s.conn().await;
    assert_eq!(err(&mut c, &["DISCARD"]).await, "ERR DISCARD without MULTI");
    q(&mut c, &["MULTI"]).await;
    assert_eq!(err(&mut c, &["MULTI"]).await, "ERR MULTI calls can not be nested");
    assert_eq!(err(&mut c, &["WATCH", "x"]).await, "ERR WATCH inside MULTI is not allowed");
    q(&mut c, &["SET", "a", "1"]).await;
    // Neither error above aborts the transaction.
    assert_eq!(q(&mut c, &["EXEC"]).await, Value::Array(vec![Value::Okay]));
    q(&mut c, &["MULTI"]).await;
    q(&mut c, &["SET", "a", "2"]).await;
    assert_eq!(q(&mut c, &["DISCARD"]).await, Value::Okay);
    assert_eq!(q(&mut c, &["GET", "a"]).await, bulk("1"));
}

#[tokio::test]
async fn watch_aborts_when_another_client_writes() {
    let s = TestServer::start().await;
    let mut a = s.conn().await;
    let mut b = s.conn().await;
    q(&mut a, &["SET", "balance", "10"]).await;
    assert_eq!(q(&mut a, &["WATCH", "balance"]).await, Value::Okay);
    q(&mut b, &["INCR", "balance"]).await;
    q(&mut a, &["MULTI"]).await;
    q(&mut a, &["SET", "balance", "0"]).await;
    assert_eq!(q(&mut a, &["EXEC"]).await, Value::Nil, "a changed watched key aborts EXEC");
    assert_eq!(q(&mut a, &["GET", "balance"]).await, bulk("11"));

    // Unchanged: EXEC runs. Watches end with EXEC.
    q(&mut a, &["WATCH", "balance"]).await;
    q(&mut a, &["MULTI"]).await;
    q(&mut a, &["SET", "balance", "0"]).await;
    assert_eq!(q(&mut a, &["EXEC"]).await, Value::Array(vec![Value::Okay]));
    q(&mut b, &["SET", "balance", "5"]).await;
    q(&mut a, &["MULTI"]).await;
    q(&mut a, &["INCR", "balance"]).await;
    assert_eq!(q(&mut a, &["EXEC"]).await, Value::Array(vec![int(6)]));

    // UNWATCH forgets; a deleted or expired key counts as changed.
    q(&mut a, &["WATCH", "balance"]).await;
    q(&mut a, &["UNWATCH"]).await;
    q(&mut b, &["SET", "balance", "7"]).await;
    q(&mut a, &["MULTI"]).await;
    q(&mut a, &["GET", "balance"]).await;
    assert_eq!(q(&mut a, &["EXEC"]).await, Value::Array(vec![bulk("7")]));
    q(&mut a, &["WATCH", "balance"]).await;
    q(&mut b, &["DEL", "balance"]).await;
    q(&mut a, &["MULTI"]).await;
    q(&mut a, &["GET", "balance"]).await;
    assert_eq!(q(&mut a, &["EXEC"]).await, Value::Nil);
    q(&mut a, &["SET", "other", "1"]).await;
    q(&mut a, &["WATCH", "other"]).await;
    q(&mut b, &["FLUSHDB"]).await;
    q(&mut a, &["MULTI"]).await;
    q(&mut a, &["PING"]).await;
    assert_eq!(q(&mut a, &["EXEC"]).await, Value::Nil, "FLUSHDB touches watched keys");
}

#[tokio::test]
async fn exec_aborted_by_watch_is_null_in_resp3() {
    let s = TestServer::start().await;
    let mut raw = s.raw().await;
    let mut other = s.conn().await;
    raw.call(&resp(&["HELLO", "3"])).await;
    raw.call(&resp(&["WATCH", "k"])).await;
    q(&mut other, &["SET", "k", "1"]).await;
    raw.call(&resp(&["MULTI"])).await;
    raw.call(&resp(&["PING"])).await;
    assert_eq!(raw.call(&resp(&["EXEC"])).await, "_\r\n");
}

#[tokio::test]
async fn redis_crate_atomic_pipeline() {
    let s = TestServer::start().await;
    let mut c = s.conn().await;
    let (a, b): (i64, i64) = redis::pipe()
        .atomic()
        .cmd("INCR")
        .arg("x")
        .cmd("INCRBY")
        .arg("x")
        .arg(5)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!((a, b), (1, 6));
}
