//! Connection commands: PING ECHO HELLO AUTH SELECT CLIENT QUIT RESET, and RESP3.

use redis::Value;

use crate::harness::*;

#[tokio::test]
async fn ping_echo_unknown_command() {
    let s = TestServer::start().await;
    let mut raw = s.raw().await;
    assert_eq!(raw.call(&resp(&["PING"])).await, "+PONG\r\n");
    assert_eq!(raw.call(&resp(&["ping", "hi"])).await, "$2\r\nhi\r\n");
    assert_eq!(
        raw.call(&resp(&["PING", "a", "b"])).await,
        "-ERR wrong number of arguments for 'ping' command\r\n"
    );
    assert_eq!(raw.call(&resp(&["ECHO", "x y"])).await, "$3\r\nx y\r\n");
    assert_eq!(
        raw.call(&resp(&["NOSUCH", "a", "b"])).await,
        "-ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' \r\n"
    );
    assert_eq!(
        raw.call(&resp(&["nosuch"])).await,
        "-ERR unknown command 'nosuch', with args beginning with: \r\n"
    );
    // The connection stays usable after error replies.
    assert_eq!(raw.call(&resp(&["PING"])).await, "+PONG\r\n");
}

#[tokio::test]
async fn hello_switches_to_resp3() {
    let s = TestServer::start().await;
    let mut raw = s.raw().await;
    let hello = raw.call(&resp(&["HELLO", "3"])).await;
    assert!(hello.starts_with("%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n"), "{hello}");
    assert!(hello.contains("$5\r\nproto\r\n:3\r\n"), "{hello}");
    assert_eq!(raw.call(&resp(&["GET", "nokey"])).await, "_\r\n");
    raw.call(&resp(&["SET", "k", "v"])).await;
    let cfg = raw.call(&resp(&["CONFIG", "GET", "maxmemory"])).await;
    assert_eq!(cfg, "%1\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n");
    let info = raw.call(&resp(&["INFO", "server"])).await;
    assert!(info.starts_with('=') && info.contains("txt:# Server"), "{info}");
    assert_eq!(raw.call(&resp(&["HELLO", "2"])).await.chars().next(), Some('*'));
    assert_eq!(raw.call(&resp(&["GET", "nokey"])).await, "$-1\r\n");
}

#[tokio::test]
async fn hello_errors_and_setname() {
    let s = TestServer::start().await;
    let mut c = s.conn().await;
    assert_eq!(err(&mut c, &["HELLO", "4"]).await, "NOPROTO unsupported protocol version");
    assert_eq!(err(&mut c, &["HELLO", "x"]).await, "ERR Protocol version is not an integer or out of range");
    assert_eq!(err(&mut c, &["HELLO", "3", "FOO"]).await, "ERR Syntax error in HELLO option 'FOO'");
    assert_eq!(
        err(&mut c, &["HELLO", "3", "AUTH", "default"]).await,
        "ERR Syntax error in HELLO option 'AUTH'"
    );
    let mut raw = s.raw().await;
    raw.call(&resp(&["HELLO", "2", "SETNAME", "worker"])).await;
    assert_eq!(raw.call(&resp(&["CLIENT", "GETNAME"])).await, "$6\r\nworker\r\n");
}

#[tokio::test]
async fn resp3_through_the_redis_crate() {
    let s = TestServer::start().await;
    let mut c = s.conn3().await;
    q(&mut c, &["SET", "k", "v"]).await;
    assert_eq!(q(&mut c, &["GET", "k"]).await, bulk("v"));
    assert_eq!(q(&mut c, &["GET", "nokey"]).await, Value::Nil);
    let Value::Map(pairs) = q(&mut c, &["CONFIG", "GET", "maxmemory*"]).await else {
        panic!("a map in RESP3")
    };
    assert_eq!(pairs.len(), 3);
    let Value::VerbatimString { text, .. } = q(&mut c, &["CLIENT", "INFO"]).await else { panic!() };
    assert!(text.contains("resp=3"), "{text}");
    let Value::Set(flags) = &(match q(&mut c, &["COMMAND", "INFO", "get"]).await {
        Value::Array(mut v) => match v.remove(0) {
            Value::Array(entry) => entry,
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    })[2] else {
        panic!("flags are a set in RESP3")
    };
    assert!(flags.contains(&Value::SimpleString("readonly".into())));
}

#[tokio::test]
async fn auth_and_noauth() {
    let s = TestServer::with_conf("requirepass s3cret\n").await;
    let mut raw = s.raw().await;
    assert_eq!(raw.call(&resp(&["GET", "k"])).await, "-NOAUTH Authentication required.\r\n");
    assert!(raw
        .call(&resp(&["HELLO", "3"]))
        .await
        .starts_with("-NOAUTH HELLO must be called with the client already authenticated"));
    assert_eq!(
        raw.call(&resp(&["AUTH", "wrong"])).await,
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(
        raw.call(&resp(&["AUTH", "other", "s3cret"])).await,
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(raw.call(&resp(&["AUTH", "a", "b", "c"])).await, "-ERR syntax error\r\n");
    assert_eq!(raw.call(&resp(&["AUTH", "s3cret"])).await, "+OK\r\n");
    assert_eq!(raw.call(&resp(&["GET", "k"])).await, "$-1\r\n");
    // RESET logs out again.
    assert_eq!(raw.call(&resp(&["RESET"])).await, "+RESET\r\n");
    assert_eq!(raw.call(&resp(&["GET", "k"])).await, "-NOAUTH Authentication required.\r\n");
    let hello = raw.call(&resp(&["HELLO", "3", "AUTH", "default", "s3cret"])).await;
    assert!(hello.starts_with('%'), "{hello}");

    // Before AUTH, requests are capped as in Redis.
    let mut raw = s.raw().await;
    raw.send(b"*20\r\n").await;
    assert_eq!(raw.reply().await, "-ERR Protocol error: unauthenticated multibulk length\r\n");
    assert!(raw.closed().await);

    // The redis crate authenticates from the URL.
    let url = format!("redis://:s3cret@{}/", s.addr);
    let mut c = multiplexed(&url).await;
    assert_eq!(q(&mut c, &["PING"]).await, Value::SimpleString("PONG".into()));
}

#[tokio::test]
async fn auth_without_password_configured() {
    let s = TestServer::start().await;
    let mut c = s.conn().await;
    assert_eq!(
        err(&mut c, &["AUTH", "x"]).await,
        "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
    );
}

#[tokio::test]
async fn select_databases() {
    let s = TestServer::start().await;
    let mut raw = s.raw().await;
    raw.call(&resp(&["SET", "k", "db0"])).await;
    assert_eq!(raw.call(&resp(&["SELECT", "15"])).await, "+OK\r\n");
    assert_eq!(raw.call(&resp(&["GET", "k"])).await, "$-1\r\n");
    raw.call(&resp(&["SET", "k", "db15"])).await;
    assert_eq!(raw.call(&resp(&["SELECT", "16"])).await, "-ERR DB index is out of range\r\n");
    assert_eq!(raw.call(&resp(&["SELECT", "-1"])).await, "-ERR DB index is out of range\r\n");
    assert_eq!(raw.call(&resp(&["SELECT", "x"])).await, "-ERR value is not an integer or out of range\r\n");
    raw.call(&resp(&["SELECT", "0"])).await;
    assert_eq!(raw.call(&resp(&["GET", "k"])).await, "$3\r\ndb0\r\n");
}

#[tokio::test]
async fn client_subcommands() {
    let s = TestServer::start().await;
    let mut a = s.raw().await;
    let mut b = s.raw().await;
    let id_a = a.call(&resp(&["CLIENT", "ID"])).await;
    let id_b: String = b.call(&resp(&["CLIENT", "ID"])).await.trim_start_matches(':').trim().to_string();
    assert!(id_a.starts_with(':'));
    assert_eq!(a.call(&resp(&["CLIENT", "GETNAME"])).await, "$-1\r\n");
    assert_eq!(a.call(&resp(&["CLIENT", "SETNAME", "alpha"])).await, "+OK\r\n");
    assert_eq!(
        a.call(&resp(&["CLIENT", "SETNAME", "has space"])).await,
        "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
    );
    assert_eq!(a.call(&resp(&["CLIENT", "SETINFO", "LIB-NAME", "mylib"])).await, "+OK\r\n");
    assert_eq!(a.call(&resp(&["CLIENT", "SETINFO", "LIB-VER", "1.2"])).await, "+OK\r\n");
    assert_eq!(
        a.call(&resp(&["CLIENT", "SETINFO", "COLOR", "x"])).await,
        "-ERR Unrecognized option 'COLOR'\r\n"
    );
    let info = a.call(&resp(&["CLIENT", "INFO"])).await;
    assert!(
        info.contains("name=alpha") && info.contains("lib-name=mylib") && info.contains("lib-ver=1.2"),
        "{info}"
    );
    assert!(info.contains("cmd=client|info"), "{info}");
    let list = a.call(&resp(&["CLIENT", "LIST"])).await;
    assert_eq!(list.matches("id=").count(), 2, "{list}");
    let only_b = a.call(&resp(&["CLIENT", "LIST", "ID", &id_b])).await;
    assert_eq!(only_b.matches("id=").count(), 1, "{only_b}");
    assert_eq!(
        a.call(&resp(&["CLIENT", "LIST", "TYPE", "bogus"])).await,
        "-ERR Unknown client type 'bogus'\r\n"
    );
    assert_eq!(
        a.call(&resp(&["CLIENT", "NOPE"])).await,
        "-ERR unknown subcommand 'NOPE'. Try CLIENT HELP.\r\n"
    );
    assert_eq!(a.call(&resp(&["CLIENT", "KILL", "1.2.3.4:5"])).await, "-ERR No such client\r\n");
    assert_eq!(
        a.call(&resp(&["CLIENT", "KILL", "ID", "abc"])).await,
        "-ERR client-id should be greater than 0\r\n"
    );
    assert_eq!(a.call(&resp(&["CLIENT", "KILL", "ID", &id_b])).await, ":1\r\n");
    assert!(b.closed().await, "the killed client is disconnected");
    assert_eq!(a.call(&resp(&["CLIENT", "KILL", "ID", &id_b])).await, ":0\r\n");
    assert_eq!(a.call(&resp(&["PING"])).await, "+PONG\r\n");
    assert_eq!(a.call(&resp(&["CLIENT"])).await, "-ERR wrong number of arguments for 'client' command\r\n");
    assert_eq!(
        a.call(&resp(&["CLIENT", "SETNAME"])).await,
        "-ERR wrong number of arguments for 'client|setname' command\r\n"
    );
}

#[tokio::test]
async fn client_kill_by_address() {
    let s = TestServer::start().await;
    let mut a = s.raw().await;
    let mut b = s.raw().await;
    let b_addr = b.stream.local_addr().unwrap().to_string();
    b.call(&resp(&["PING"])).await;
    assert_eq!(a.call(&resp(&["CLIENT", "KILL", &b_addr])).await, "+OK\r\n");
    assert!(b.closed().await);
}

#[tokio::test]
async fn quit_closes_after_replying() {
    let s = TestServer::start().await;
    let mut raw = s.raw().await;
    assert_eq!(raw.call(&resp(&["QUIT"])).await, "+OK\r\n");
    assert!(raw.closed().await);
}

#[tokio::test]
async fn reset_restores_defaults() {
    let s = TestServer::start().await;
    let mut raw = s.raw().await;
    raw.call(&resp(&["HELLO", "3"])).await;
    raw.call(&resp(&["SELECT", "3"])).await;
    raw.call(&resp(&["CLIENT", "SETNAME", "n"])).await;
    raw.call(&resp(&["MULTI"])).await;
    assert_eq!(raw.call(&resp(&["RESET"])).await, "+RESET\r\n");
    assert_eq!(raw.call(&resp(&["GET", "x"])).await, "$-1\r\n", "back to RESP2, out of MULTI");
    assert_eq!(raw.call(&resp(&["CLIENT", "GETNAME"])).await, "$-1\r\n");
    let info = raw.call(&resp(&["CLIENT", "INFO"])).await;
    assert!(info.contains(" db=0 "), "{info}");
}

#[tokio::test]
async fn shutdown_closes_client_connections() {
    let s = TestServer::start().await;
    let mut raw = s.raw().await;
    assert_eq!(raw.call(&resp(&["PING"])).await, "+PONG\r\n");
    drop(s);
    assert!(raw.closed().await, "connections end with the server");
}

#[tokio::test]
async fn maxclients_refuses_with_an_error() {
    let s = TestServer::with_conf("maxclients 2\n").await;
    let mut a = s.raw().await;
    let mut b = s.raw().await;
    assert_eq!(a.call(&resp(&["PING"])).await, "+PONG\r\n");
    assert_eq!(b.call(&resp(&["PING"])).await, "+PONG\r\n");
    let mut c = s.raw().await;
    assert_eq!(c.reply().await, "-ERR max number of clients reached\r\n");
    assert!(c.closed().await);
    drop(b);
    // Once a slot frees up, a new client is served.
    let ok = eventually(std::time::Duration::from_secs(5), || async {
        let mut d = s.raw().await;
        d.send(&resp(&["PING"])).await;
        d.reply().await == "+PONG\r\n"
    })
    .await;
    assert!(ok);
    assert_eq!(a.call(&resp(&["CLIENT", "ID"])).await.chars().next(), Some(':'));
}

#[tokio::test]
async fn cluster_commands_in_standalone_mode() {
    let s = TestServer::start().await;
    let mut raw = s.raw().await;
    for sub in ["SLOTS", "NODES", "INFO", "SHARDS", "MYID"] {
        assert_eq!(
            raw.call(&resp(&["CLUSTER", sub])).await,
            "-ERR This instance has cluster support disabled\r\n"
        );
    }
    assert_eq!(
        raw.call(&resp(&["EDIS.TOPOLOGY"])).await,
        "-ERR This instance has cluster support disabled\r\n"
    );
    assert_eq!(
        raw.call(&resp(&["CLUSTER", "NOPE"])).await,
        "-ERR unknown subcommand 'NOPE'. Try CLUSTER HELP.\r\n"
    );
}

/// One field of a CLIENT LIST line (`qbuf-free=16384`).
fn field(line: &str, name: &str) -> usize {
    let prefix = format!("{name}=");
    line.split(' ')
        .find_map(|f| f.strip_prefix(prefix.as_str()))
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX)
}

#[tokio::test]
async fn a_big_command_does_not_pin_its_buffers() {
    let s = TestServer::start().await;
    let mut watcher = s.raw().await;
    let mut big = s.raw().await;
    let id: String = big.call(&resp(&["CLIENT", "ID"])).await.trim_start_matches(':').trim().to_string();
    // While a 1 MB value is on its way, the connection holds a buffer as big as it.
    let value = "v".repeat(1 << 20);
    let cmd = resp(&["SET", "big", &value]);
    big.send(&cmd[..cmd.len() / 2]).await;
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let l = watcher.call(&resp(&["CLIENT", "LIST", "ID", &id])).await;
        if field(&l, "qbuf-free") >= 1 << 19 && field(&l, "tot-mem") >= 1 << 19 {
            break;
        }
        assert!(std::time::Instant::now() < until, "half a megabyte received is held: {l}");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    big.send(&cmd[cmd.len() / 2..]).await;
    assert_eq!(big.reply().await, "+OK\r\n");
    assert_eq!(big.call(&resp(&["STRLEN", "big"])).await, ":1048576\r\n");
    // Done with it, the connection lets the buffer go at once (not at the next idle check).
    let l = watcher.call(&resp(&["CLIENT", "LIST", "ID", &id])).await;
    assert!(field(&l, "qbuf-free") <= 64 * 1024, "{l}");
    // A reply as big goes the same way.
    assert_eq!(big.call(&resp(&["GETRANGE", "big", "0", "3"])).await, "$4\r\nvvvv\r\n");
    big.send(&resp(&["GET", "big"])).await;
    assert_eq!(big.reply().await.len(), (1 << 20) + 12);
    assert_eq!(big.call(&resp(&["PING"])).await, "+PONG\r\n");
    let l = watcher.call(&resp(&["CLIENT", "LIST", "ID", &id])).await;
    assert!(field(&l, "omem") <= 256 * 1024 && field(&l, "qbuf-free") <= 64 * 1024, "{l}");
    // INFO memory and MEMORY STATS account for connections with Redis's names.
    let info = watcher.call(&resp(&["INFO", "memory"])).await;
    for name in
        ["used_memory_peak:", "mem_clients_normal:", "mem_replication_backlog:", "used_memory_dataset:"]
    {
        assert!(info.contains(name), "{name} in {info}");
    }
    let stats = watcher.call(&resp(&["MEMORY", "STATS"])).await;
    assert!(stats.contains("keys.count\r\n:1\r\n") && stats.contains("clients.normal"), "{stats}");
    assert_eq!(watcher.call(&resp(&["MEMORY", "PURGE"])).await, "+OK\r\n");
    assert_eq!(
        watcher.call(&resp(&["MEMORY", "STATS", "x"])).await,
        "-ERR wrong number of arguments for 'memory|stats' command\r\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_buffer_limits_close_clients_as_redis_does() {
    let s = TestServer::start().await;
    let mut admin = s.raw().await;
    assert_eq!(
        admin.call(&resp(&["CONFIG", "SET", "client-output-buffer-limit", "normal 1mb 0 0"])).await,
        "+OK\r\n"
    );
    assert_eq!(admin.call(&resp(&["SET", "v", &"x".repeat(100 * 1024)])).await, "+OK\r\n");
    assert_eq!(admin.call(&resp(&["SET", "big", &"y".repeat(2 << 20)])).await, "+OK\r\n");
    // One reply past the hard limit: closed, the reply never sent.
    let mut hard = s.raw().await;
    hard.send(&resp(&["GET", "big"])).await;
    assert!(hard.closed().await, "a 2 MB reply past the 1 MB hard limit");
    // Replies past the soft limit that the client does not take within 1 s: closed.
    assert_eq!(
        admin.call(&resp(&["CONFIG", "SET", "client-output-buffer-limit", "normal 0 256kb 1"])).await,
        "+OK\r\n"
    );
    let started = std::time::Instant::now();
    let mut slow = s.raw().await;
    let id = slow.call(&resp(&["CLIENT", "ID"])).await.trim_start_matches(':').trim().to_string();
    let mut pipeline = Vec::new();
    for _ in 0..400 {
        pipeline.extend(resp(&["GET", "v"]));
    }
    slow.send(&pipeline).await;
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let list = admin.call(&resp(&["CLIENT", "LIST", "ID", &id])).await;
        if !list.contains("id=") {
            break;
        }
        assert!(std::time::Instant::now() < until, "the slow reader is still connected: {list}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(started.elapsed() >= std::time::Duration::from_millis(900), "closed before its soft_seconds");
    // A client that reads its replies is not cut, however much it asks for.
    let mut fast = s.raw().await;
    for _ in 0..3 {
        fast.send(&resp(&["GET", "v"]).repeat(8)).await;
        for _ in 0..8 {
            assert!(fast.reply().await.len() > 100 * 1024);
        }
    }
    // Subscribers are the pubsub class: the normal limit does not apply to them.
    let mut sub = s.raw().await;
    sub.send(&resp(&["SUBSCRIBE", "c"])).await;
    sub.reply().await;
    assert_eq!(admin.call(&resp(&["PUBLISH", "c", &"z".repeat(1536 * 1024)])).await, ":1\r\n");
    assert!(sub.reply().await.len() > 1536 * 1024);
    // Back to no limit: the big reply goes out.
    assert_eq!(
        admin.call(&resp(&["CONFIG", "SET", "client-output-buffer-limit", "normal 0 0 0"])).await,
        "+OK\r\n"
    );
    let mut again = s.raw().await;
    again.send(&resp(&["GET", "big"])).await;
    assert_eq!(again.reply().await.len(), (2 << 20) + 12);
}

#[tokio::test]
async fn a_query_buffer_past_its_limit_closes_the_client() {
    let s = TestServer::start().await;
    let mut admin = s.raw().await;
    assert_eq!(admin.call(&resp(&["CONFIG", "SET", "client-query-buffer-limit", "1mb"])).await, "+OK\r\n");
    // A 2 MB argument on its way: past 1 MB of it buffered, the client is closed.
    let mut big = s.raw().await;
    big.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2097152\r\n").await;
    let chunk = vec![b'q'; 64 * 1024];
    for _ in 0..24 {
        if tokio::io::AsyncWriteExt::write_all(&mut big.stream, &chunk).await.is_err() {
            break;
        }
    }
    assert!(big.closed().await, "1.5 MB of one command buffered past the 1 MB limit");
    assert_eq!(admin.call(&resp(&["EXISTS", "k"])).await, ":0\r\n");
    // Under the limit, the same command goes through.
    assert_eq!(admin.call(&resp(&["CONFIG", "SET", "client-query-buffer-limit", "4mb"])).await, "+OK\r\n");
    assert_eq!(admin.call(&resp(&["SET", "k", &"q".repeat(2 << 20)])).await, "+OK\r\n");
}
