//! The wire: inline commands, pipelines, and every protocol error, byte for byte as Redis.

use redis::Value;

use crate::harness::*;

#[tokio::test]
async fn inline_commands() {
    let s = TestServer::start().await;
    let mut raw = s.raw().await;
    assert_eq!(raw.call(b"PING\r\n").await, "+PONG\r\n");
    assert_eq!(raw.call(b"set k \"hello world\"\r\n").await, "+OK\r\n");
    assert_eq!(raw.call(b"get k\n").await, "$11\r\nhello world\r\n");
    assert_eq!(raw.call(b"\r\n\r\necho 'it\\'s'\r\n").await, "$4\r\nit's\r\n", "blank lines are skipped");
    assert_eq!(raw.call(b"set bin \"\\x00\\xff\"\r\n").await, "+OK\r\n");
    assert_eq!(raw.call(b"strlen bin\r\n").await, ":2\r\n");
}

#[tokio::test]
async fn pipelined_inline_and_multibulk_mixed() {
    let s = TestServer::start().await;
    let mut raw = s.raw().await;
    raw.send(b"PING\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\nINCR a\r\n").await;
    assert_eq!(raw.reply().await, "+PONG\r\n");
    assert_eq!(raw.reply().await, "+OK\r\n");
    assert_eq!(raw.reply().await, ":2\r\n");
}

async fn protocol_error(input: &[u8], expected: &str) {
    let s = TestServer::start().await;
    let mut raw = s.raw().await;
    // Commands before the error are answered first.
    let mut bytes = resp(&["PING"]);
    bytes.extend_from_slice(input);
    raw.send(&bytes).await;
    assert_eq!(raw.reply().await, "+PONG\r\n");
    assert_eq!(raw.reply().await, format!("-ERR Protocol error: {expected}\r\n"), "input {input:?}");
    assert!(raw.closed().await, "the connection is closed after a protocol error");
    // The server is still there for everyone else.
    let mut c = s.conn().await;
    assert_eq!(q(&mut c, &["PING"]).await, Value::SimpleString("PONG".into()));
}

#[tokio::test]
async fn unbalanced_quotes() {
    protocol_error(b"set k \"abc\r\n", "unbalanced quotes in request").await;
}

#[tokio::test]
async fn bad_multibulk_length() {
    protocol_error(b"*abc\r\n", "invalid multibulk length").await;
    protocol_error(b"*4294967296\r\n", "invalid multibulk length").await;
}

#[tokio::test]
async fn bad_bulk_length() {
    protocol_error(b"*1\r\n$abc\r\n", "invalid bulk length").await;
    protocol_error(b"*1\r\n$-5\r\n", "invalid bulk length").await;
}

#[tokio::test]
async fn bulk_over_proto_max_bulk_len() {
    // 512 MB + 1: refused from the header alone, before anything is allocated.
    protocol_error(b"*2\r\n$3\r\nGET\r\n$536870913\r\n", "invalid bulk length").await;
}

#[tokio::test]
async fn argument_that_is_not_a_bulk() {
    protocol_error(b"*2\r\n$3\r\nGET\r\n:1\r\n", "expected '$', got ':'").await;
}

#[tokio::test]
async fn oversized_headers_and_inline() {
    let mut long = b"*".to_vec();
    long.extend(std::iter::repeat_n(b'1', 70 * 1024));
    protocol_error(&long, "too big mbulk count string").await;
    let long = vec![b'x'; 70 * 1024];
    protocol_error(&long, "too big inline request").await;
}

#[tokio::test]
async fn claimed_sizes_are_not_allocated() {
    let s = TestServer::start().await;
    let mut c = s.conn().await;
    let used = |info: String| -> u64 {
        info.lines().find_map(|l| l.strip_prefix("used_memory:")).unwrap().trim().parse().unwrap()
    };
    let before = used(redis::cmd("INFO").arg("memory").query_async(&mut c).await.unwrap());
    // Fifty clients each claim a 500 MB bulk and a million arguments, then send nothing.
    let mut raws = Vec::new();
    for _ in 0..50 {
        let mut raw = s.raw().await;
        raw.send(b"*1000000\r\n$500000000\r\nab").await;
        raws.push(raw);
    }
    // Make sure the server has read every claim: a PING on each connection's peers answers.
    for _ in 0..3 {
        assert_eq!(q(&mut c, &["PING"]).await, Value::SimpleString("PONG".into()));
    }
    let after = used(redis::cmd("INFO").arg("memory").query_async(&mut c).await.unwrap());
    assert!(after < before + 64 * 1024 * 1024, "claims made the server allocate: {before} -> {after}");
}

#[tokio::test]
async fn large_value_in_many_small_writes() {
    let s = TestServer::start().await;
    let mut raw = s.raw().await;
    let value = vec![b'v'; 3 * 1024 * 1024];
    raw.send_in_pieces(&[&[b"SET", b"big", &value]], 16 * 1024).await;
    assert_eq!(raw.reply().await, "+OK\r\n");
    assert_eq!(raw.call(&resp(&["STRLEN", "big"])).await, ":3145728\r\n");
}

#[tokio::test]
async fn pipeline_of_1000_commands() {
    let s = TestServer::start().await;
    let mut c = s.conn().await;
    let mut pipe = redis::pipe();
    for i in 0..1000 {
        pipe.cmd("SET").arg(format!("k{i}")).arg(i);
    }
    let _: () = pipe.query_async(&mut c).await.unwrap();
    let mut pipe = redis::pipe();
    for i in 0..1000 {
        pipe.cmd("INCR").arg(format!("k{i}"));
    }
    let replies: Vec<i64> = pipe.query_async(&mut c).await.unwrap();
    assert_eq!(replies, (1..=1000).collect::<Vec<i64>>(), "replies in request order");

    // The same through one raw write: 1,000 replies in order.
    let mut raw = s.raw().await;
    let mut bytes = Vec::new();
    for i in 0..1000 {
        bytes.extend(resp(&["GET", &format!("k{i}")]));
    }
    raw.send(&bytes).await;
    for i in 0..1000 {
        let v = (i + 1).to_string();
        assert_eq!(raw.reply().await, format!("${}\r\n{v}\r\n", v.len()));
    }
}

#[tokio::test]
async fn empty_and_negative_multibulk_are_ignored() {
    let s = TestServer::start().await;
    let mut raw = s.raw().await;
    assert_eq!(raw.call(b"*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n").await, "+PONG\r\n");
}
