//! Replication: a write shard streaming to read shards (and to a stock redis-server), full and
//! partial resyncs, a replica outliving its primary, READONLY, and hidden expired keys.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::Value;
use rust_edis::config::Config;

use crate::harness::*;

const WAIT: Duration = Duration::from_secs(10);

async fn digest(c: &mut MultiplexedConnection) -> String {
    match q(c, &["DEBUG", "DIGEST"]).await {
        Value::SimpleString(s) => s,
        other => panic!("{other:?}"),
    }
}

async fn info_field(c: &mut MultiplexedConnection, field: &str) -> String {
    let info: String = redis::cmd("INFO").arg("replication").query_async(c).await.unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {info}"))
        .trim()
        .to_string()
}

/// What the primary's replication backlog has allocated (INFO's mem_replication_backlog).
async fn backlog_bytes(c: &mut MultiplexedConnection) -> i64 {
    let info: String = redis::cmd("INFO").arg("memory").query_async(c).await.unwrap();
    info.lines().find_map(|l| l.strip_prefix("mem_replication_backlog:")).unwrap().trim().parse().unwrap()
}

/// Waits until the replica's link is up.
async fn linked(replica: &TestServer) {
    let mut c = replica.conn().await;
    let up = eventually(WAIT, || {
        let mut c = c.clone();
        async move { info_field(&mut c, "master_link_status").await == "up" }
    })
    .await;
    assert!(up, "replica link never came up");
    let _ = q(&mut c, &["PING"]).await;
}

/// Waits until the replica behind `r` reports its link down.
async fn link_down(r: &MultiplexedConnection) {
    let down = eventually(WAIT, || {
        let mut r = r.clone();
        async move { info_field(&mut r, "master_link_status").await == "down" }
    })
    .await;
    assert!(down, "master_link_status never went down");
}

/// A replica that asks for a full resync, reads its header and then stops reading.
async fn stalled_replica(primary: &TestServer) -> Raw {
    let mut fake = primary.raw().await;
    fake.send(&resp(&["PSYNC", "?", "-1"])).await;
    let mut header = Vec::new();
    while !header.ends_with(b"\r\n$") {
        let mut byte = [0u8; 1];
        tokio::io::AsyncReadExt::read_exact(&mut fake.stream, &mut byte).await.unwrap();
        header.push(byte[0]);
    }
    assert!(header.starts_with(b"+FULLRESYNC "), "{}", String::from_utf8_lossy(&header));
    fake
}

/// WAIT for `n` replicas through a fresh connection to the primary; returns the count.
async fn wait_replicas(primary: &TestServer, n: usize) -> i64 {
    let mut c = primary.conn().await;
    match q(&mut c, &["WAIT", &n.to_string(), "5000"]).await {
        Value::Int(k) => k,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_converge_under_concurrent_writes() {
    let primary = TestServer::start().await;
    let r1 = TestServer::replica_of(primary.addr, "").await;
    let r2 = TestServer::replica_of(primary.addr, "").await;
    linked(&r1).await;
    linked(&r2).await;

    // Four clients, 2,500 commands each: SET, DEL, INCR, EXPIRE (and the odd SET EX) over a
    // shared set of keys, while a third replica joins halfway.
    let mut writers = Vec::new();
    for w in 0..4u64 {
        let mut c = primary.conn().await;
        writers.push(tokio::spawn(async move {
            let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ w;
            for i in 0..2500u64 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let key = format!("k{}", x % 400);
                let cmd = match (x >> 20) % 5 {
                    0 => redis::cmd("SET").arg(&key).arg(i).clone(),
                    1 => redis::cmd("DEL").arg(&key).clone(),
                    2 => redis::cmd("INCR").arg(format!("n{}", x % 50)).clone(),
                    3 => redis::cmd("EXPIRE").arg(&key).arg(1000 + i).clone(),
                    _ => redis::cmd("SET").arg(&key).arg("v").arg("EX").arg(500).clone(),
                };
                let _: Value = cmd.query_async(&mut c).await.unwrap();
            }
        }));
    }
    let mut c = primary.conn().await;
    let joined = eventually(WAIT, || {
        let mut c = c.clone();
        async move { matches!(q(&mut c, &["DBSIZE"]).await, Value::Int(n) if n > 100) }
    })
    .await;
    assert!(joined);
    let r3 = TestServer::replica_of(primary.addr, "").await;
    for w in writers {
        w.await.unwrap();
    }
    linked(&r3).await;
    assert_eq!(wait_replicas(&primary, 3).await, 3, "WAIT 3 5000");

    let expected = digest(&mut c).await;
    assert_ne!(expected, "0".repeat(40));
    for r in [&r1, &r2, &r3] {
        let mut rc = r.conn().await;
        assert_eq!(digest(&mut rc).await, expected, "replica {} differs", r.addr);
        for key in ["k1", "k7", "k99", "n3", "n42"] {
            assert_eq!(
                q(&mut rc, &["GET", key]).await,
                q(&mut c, &["GET", key]).await,
                "{key} on {}",
                r.addr
            );
            assert_eq!(q(&mut rc, &["TTL", key]).await, q(&mut c, &["TTL", key]).await, "TTL {key}");
        }
    }
    let Value::Int(offset) = q(&mut c, &["ROLE"]).await.as_sequence().unwrap()[1].clone() else { panic!() };
    assert!(offset > 100_000, "the stream carried the writes: offset {offset}");
    assert_eq!(info_field(&mut c, "connected_slaves").await, "3");
}

/// The id of the replication connection of the replica listening on `port`.
async fn feed_id(primary: &mut MultiplexedConnection) -> String {
    let list: String = redis::cmd("CLIENT").arg("LIST").query_async(primary).await.unwrap();
    let line = list.lines().find(|l| l.contains("cmd=psync")).unwrap_or_else(|| panic!("no feed in {list}"));
    line.split(' ').next().unwrap().trim_start_matches("id=").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_resync_within_the_backlog_and_full_beyond_it() {
    let primary = TestServer::with_conf("repl-backlog-size 16kb\n").await;
    let replica = TestServer::replica_of(primary.addr, "").await;
    linked(&replica).await;
    let mut p = primary.conn().await;
    let mut r = replica.conn().await;
    for i in 0..100 {
        q(&mut p, &["SET", &format!("a{i}"), "x"]).await;
    }
    assert_eq!(wait_replicas(&primary, 1).await, 1);
    assert_eq!(info_field(&mut r, "master_full_syncs").await, "1");

    // Cut the link and keep the replica out (a password it does not have) while a little is
    // written: it comes back with +CONTINUE.
    q(&mut p, &["CONFIG", "SET", "requirepass", "pw"]).await;
    let mut p = redis::Client::open(format!("redis://:pw@{}/", primary.addr))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let id = feed_id(&mut p).await;
    q(&mut p, &["CLIENT", "KILL", "ID", &id]).await;
    link_down(&r).await;
    for i in 0..20 {
        q(&mut p, &["SET", &format!("b{i}"), "y"]).await;
    }
    q(&mut p, &["CONFIG", "SET", "requirepass", ""]).await;
    linked(&replica).await;
    assert_eq!(wait_replicas(&primary, 1).await, 1);
    assert_eq!(info_field(&mut r, "master_partial_syncs").await, "1", "a partial resync");
    assert_eq!(info_field(&mut r, "master_full_syncs").await, "1", "and no new full one");
    assert_eq!(digest(&mut r).await, digest(&mut p).await);

    // Again, but write more than the 16 KB backlog holds: a full resync.
    q(&mut p, &["CONFIG", "SET", "requirepass", "pw"]).await;
    let id = feed_id(&mut p).await;
    q(&mut p, &["CLIENT", "KILL", "ID", &id]).await;
    link_down(&r).await;
    let big = "z".repeat(1000);
    for i in 0..40 {
        q(&mut p, &["SET", &format!("c{i}"), &big]).await;
    }
    q(&mut p, &["CONFIG", "SET", "requirepass", ""]).await;
    linked(&replica).await;
    assert_eq!(wait_replicas(&primary, 1).await, 1);
    assert_eq!(info_field(&mut r, "master_full_syncs").await, "2", "a full resync");
    assert_eq!(digest(&mut r).await, digest(&mut p).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_replica_continues_from_where_it_stopped() {
    let primary = TestServer::start().await;
    let dir = temp_dir("restart");
    let replica = TestServer::replica_in(primary.addr, &dir, "").await;
    linked(&replica).await;
    let mut p = primary.conn().await;
    for i in 0..200 {
        q(&mut p, &["SET", &format!("k{i}"), "v"]).await;
    }
    assert_eq!(wait_replicas(&primary, 1).await, 1);

    // A clean stop saves the dataset and the stream position; writes go on meanwhile.
    replica.stop().await;
    assert!(dir.join("replica.rdb").exists());
    for i in 0..50 {
        q(&mut p, &["INCR", &format!("k{i}x")]).await;
    }
    let replica = TestServer::replica_in(primary.addr, &dir, "").await;
    linked(&replica).await;
    assert_eq!(wait_replicas(&primary, 1).await, 1);
    let mut r = replica.conn().await;
    assert_eq!(info_field(&mut r, "master_partial_syncs").await, "1", "+CONTINUE after a restart");
    assert_eq!(info_field(&mut r, "master_full_syncs").await, "0");
    assert_eq!(digest(&mut r).await, digest(&mut p).await);
    assert!(!dir.join("replica.rdb").exists(), "the saved position is used once");

    // Stopped again, then more writes than the backlog holds: the restart needs a full resync.
    replica.stop().await;
    let big = "b".repeat(1000);
    for i in 0..1200 {
        q(&mut p, &["SET", &format!("big{i}"), &big]).await;
    }
    let replica = TestServer::replica_in(primary.addr, &dir, "").await;
    linked(&replica).await;
    assert_eq!(wait_replicas(&primary, 1).await, 1);
    let mut r = replica.conn().await;
    assert_eq!(info_field(&mut r, "master_full_syncs").await, "1", "beyond the backlog: full resync");
    assert_eq!(digest(&mut r).await, digest(&mut p).await);
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_outlives_its_primary_and_catches_up() {
    let primary = TestServer::start().await;
    let addr = primary.addr;
    let replica = TestServer::replica_of(addr, "").await;
    linked(&replica).await;
    let mut p = primary.conn().await;
    q(&mut p, &["SET", "k", "before"]).await;
    assert_eq!(wait_replicas(&primary, 1).await, 1);
    drop(p);
    drop(primary);

    let mut r = replica.conn().await;
    link_down(&r).await;
    assert_eq!(q(&mut r, &["GET", "k"]).await, bulk("before"), "still serving reads");

    // The primary comes back on the same address (empty: it has no persistence yet) and the
    // replica follows it again.
    let freed = eventually(WAIT, || async { tokio::net::TcpListener::bind(addr).await.is_ok() }).await;
    assert!(freed);
    let primary = TestServer::start_at(&addr.to_string(), false, Config::default()).await;
    let mut p = primary.conn().await;
    q(&mut p, &["SET", "k", "after"]).await;
    linked(&replica).await;
    assert_eq!(wait_replicas(&primary, 1).await, 1);
    assert_eq!(q(&mut r, &["GET", "k"]).await, bulk("after"));
    assert_eq!(digest(&mut r).await, digest(&mut p).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_refuse_writes_and_hide_expired_keys() {
    let primary = TestServer::start().await;
    let replica = TestServer::replica_of(primary.addr, "").await;
    linked(&replica).await;
    let mut raw = replica.raw().await;
    for cmd in [&["SET", "k", "v"][..], &["DEL", "k"], &["INCR", "n"], &["FLUSHALL"], &["EXPIRE", "k", "5"]] {
        assert_eq!(raw.call(&resp(cmd)).await, "-READONLY You can't write against a read only replica.\r\n");
    }
    raw.call(&resp(&["MULTI"])).await;
    assert_eq!(
        raw.call(&resp(&["SET", "k", "v"])).await,
        "-READONLY You can't write against a read only replica.\r\n"
    );
    assert_eq!(
        raw.call(&resp(&["EXEC"])).await,
        "-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    assert!(raw
        .call(&resp(&["WAIT", "1", "0"]))
        .await
        .starts_with("-ERR WAIT cannot be used with replica instances"));
    let role = raw.call(&resp(&["ROLE"])).await;
    assert!(role.starts_with("*5\r\n$5\r\nslave\r\n"), "{role}");

    // With active expiry off on the primary, nothing sends the DEL: the replica still holds
    // the key (DBSIZE) but does not return it once its TTL passed.
    let mut p = primary.conn().await;
    q(&mut p, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]).await;
    q(&mut p, &["SET", "short", "v", "PX", "100"]).await;
    assert_eq!(wait_replicas(&primary, 1).await, 1);
    let mut r = replica.conn().await;
    let hidden = eventually(WAIT, || {
        let mut r = r.clone();
        async move { q(&mut r, &["GET", "short"]).await == Value::Nil }
    })
    .await;
    assert!(hidden);
    assert_eq!(q(&mut r, &["DBSIZE"]).await, int(1), "not deleted by the replica itself");
    assert_eq!(q(&mut r, &["EXISTS", "short"]).await, int(0));
    assert_eq!(q(&mut r, &["TTL", "short"]).await, int(-2));
    // The primary notices on access and replicates the deletion as DEL.
    assert_eq!(q(&mut p, &["GET", "short"]).await, Value::Nil);
    assert_eq!(wait_replicas(&primary, 1).await, 1);
    let gone = eventually(WAIT, || {
        let mut r = r.clone();
        async move { q(&mut r, &["DBSIZE"]).await == int(0) }
    })
    .await;
    assert!(gone);
}

/// A replica behind by more than the backlog but within the output buffer limit is not cut
/// off: it gets the whole stream once it reads again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_behind_more_than_the_backlog_catches_up() {
    let primary = TestServer::with_conf("repl-backlog-size 16kb\n").await;
    let mut p = primary.conn().await;
    let mut fake = primary.raw().await;
    fake.send(&resp(&["PSYNC", "?", "-1"])).await;
    // "+FULLRESYNC <replid> <offset>\r\n", then "$<len>\r\n" and the snapshot.
    async fn line(stream: &mut tokio::net::TcpStream) -> String {
        let mut line = Vec::new();
        while !line.ends_with(b"\r\n") {
            let mut byte = [0u8; 1];
            tokio::io::AsyncReadExt::read_exact(stream, &mut byte).await.unwrap();
            line.push(byte[0]);
        }
        String::from_utf8(line[..line.len() - 2].to_vec()).unwrap()
    }
    let header = line(&mut fake.stream).await;
    assert!(header.starts_with("+FULLRESYNC "), "{header}");
    let start: u64 = header.rsplit(' ').next().unwrap().parse().unwrap();
    let snapshot_len: usize = line(&mut fake.stream).await[1..].parse().unwrap();
    let mut snapshot = vec![0u8; snapshot_len];
    tokio::io::AsyncReadExt::read_exact(&mut fake.stream, &mut snapshot).await.unwrap();
    // 24 MB of writes while the replica reads nothing: more than the sockets buffer, and
    // 1,500 times the backlog.
    let value = "v".repeat(10 * 1024);
    for i in 0..2400 {
        q(&mut p, &["SET", &format!("k{}", i % 10), &value]).await;
    }
    let end: u64 = info_field(&mut p, "master_repl_offset").await.parse().unwrap();
    assert!(end - start > 24_000_000);
    // Reading again, it receives every byte from its offset to the end, and stays attached.
    let mut got = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    let read_all = async {
        while got < end - start {
            let n = tokio::io::AsyncReadExt::read(&mut fake.stream, &mut buf).await.unwrap();
            assert!(n > 0, "cut off after {got} of {} bytes", end - start);
            got += n as u64;
        }
    };
    tokio::time::timeout(WAIT, read_all).await.expect("the stream arrives");
    assert_eq!(got, end - start);
    assert_eq!(info_field(&mut p, "connected_slaves").await, "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_waits_for_replicas_that_have_not_attached_yet() {
    let primary = TestServer::start().await;
    let mut p = primary.conn().await;
    let t = std::time::Instant::now();
    assert_eq!(q(&mut p, &["WAIT", "1", "100"]).await, int(0), "none attached: the timeout passes");
    assert!(t.elapsed() >= Duration::from_millis(100));
    let waiter = {
        let mut p = p.clone();
        tokio::spawn(async move { q(&mut p, &["WAIT", "1", "5000"]).await })
    };
    let _replica = TestServer::replica_of(primary.addr, "").await;
    assert_eq!(waiter.await.unwrap(), int(1), "a replica attaching later counts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_without_data_says_loading() {
    // Its primary is not there: it has never synced.
    let nowhere = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let replica = TestServer::replica_of(nowhere, "").await;
    let mut raw = replica.raw().await;
    assert_eq!(raw.call(&resp(&["GET", "k"])).await, "-LOADING Redis is loading the dataset in memory\r\n");
    assert_eq!(raw.call(&resp(&["PING"])).await, "+PONG\r\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_and_rewrites_replay_identically() {
    let primary = TestServer::start().await;
    let replica = TestServer::replica_of(primary.addr, "").await;
    linked(&replica).await;
    let mut p = primary.conn().await;
    q(&mut p, &["SET", "f", "1.5"]).await;
    q(&mut p, &["INCRBYFLOAT", "f", "0.25"]).await;
    q(&mut p, &["SET", "t", "v", "EX", "100"]).await;
    q(&mut p, &["SETEX", "s", "100", "v"]).await;
    q(&mut p, &["SET", "g", "v"]).await;
    q(&mut p, &["GETEX", "g", "PX", "90000"]).await;
    q(&mut p, &["SELECT", "3"]).await;
    q(&mut p, &["SET", "in3", "x"]).await;
    q(&mut p, &["SELECT", "0"]).await;
    let (a, b): (i64, i64) =
        redis::pipe().atomic().incr("x", 1).incr("y", 2).query_async(&mut p).await.unwrap();
    assert_eq!((a, b), (1, 2));
    q(&mut p, &["SETNX", "g", "ignored"]).await;
    q(&mut p, &["DEL", "missing"]).await;
    assert_eq!(wait_replicas(&primary, 1).await, 1);
    let mut r = replica.conn().await;
    assert_eq!(digest(&mut r).await, digest(&mut p).await);
    assert_eq!(q(&mut r, &["GET", "f"]).await, bulk("1.75"));
    assert_eq!(
        q(&mut r, &["PEXPIRETIME", "t"]).await,
        q(&mut p, &["PEXPIRETIME", "t"]).await,
        "absolute expiry"
    );
    assert_eq!(q(&mut r, &["PEXPIRETIME", "g"]).await, q(&mut p, &["PEXPIRETIME", "g"]).await);
    q(&mut r, &["SELECT", "3"]).await;
    assert_eq!(q(&mut r, &["GET", "in3"]).await, bulk("x"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_link_authenticates() {
    let primary = TestServer::with_conf("requirepass s3cret\n").await;
    let replica = TestServer::replica_of(primary.addr, "masterauth s3cret\n").await;
    linked(&replica).await;
    let mut p = redis::Client::open(format!("redis://:s3cret@{}/", primary.addr))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    q(&mut p, &["SET", "k", "v"]).await;
    let Value::Int(n) = q(&mut p, &["WAIT", "1", "5000"]).await else { panic!() };
    assert_eq!(n, 1);
    let mut r = replica.conn().await;
    assert_eq!(q(&mut r, &["GET", "k"]).await, bulk("v"));
}

/// A stock redis-server follows a rust-edis write shard. Needs Debian's redis-server, which
/// .ci/run installs; skipped, with the reason printed, where it is not on the machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_redis_server_follows_a_write_shard() {
    let Some(path) = which("redis-server") else {
        println!("SKIPPED stock_redis_server_follows_a_write_shard: redis-server is not installed (apt-get install redis-server)");
        return;
    };
    let primary = TestServer::start().await;
    let mut p = primary.conn().await;
    for i in 0..500 {
        q(&mut p, &["SET", &format!("pre{i}"), &i.to_string()]).await;
    }
    q(&mut p, &["SET", "ttl", "v", "EX", "1000"]).await;
    let port = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    // Its own directory: a replica saves the snapshot it receives to disk.
    let dir = std::env::temp_dir().join(format!("rust-edis-stock-replica-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = tokio::process::Command::new(path)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--dir", dir.to_str().unwrap()])
        .args(["--replicaof", "127.0.0.1", &primary.addr.port().to_string()])
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start redis-server");
    let url = format!("redis://127.0.0.1:{port}/");
    let linked = eventually(WAIT, || {
        let url = url.clone();
        async move {
            let Ok(client) = redis::Client::open(url) else { return false };
            let Ok(mut c) = client.get_multiplexed_async_connection().await else { return false };
            let info: String =
                redis::cmd("INFO").arg("replication").query_async(&mut c).await.unwrap_or_default();
            info.contains("master_link_status:up")
        }
    })
    .await;
    assert!(linked, "redis-server never linked up");
    for i in 0..500 {
        q(&mut p, &["INCR", &format!("pre{i}")]).await;
        q(&mut p, &["SET", &format!("post{i}"), "x"]).await;
    }
    q(&mut p, &["DEL", "pre0"]).await;
    assert_eq!(wait_replicas(&primary, 1).await, 1);
    let mut r = multiplexed(&url).await;
    let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query_async(&mut p).await.unwrap();
    let mut theirs: Vec<String> = redis::cmd("KEYS").arg("*").query_async(&mut r).await.unwrap();
    keys.sort();
    theirs.sort();
    assert_eq!(keys.len(), 1000);
    assert_eq!(theirs, keys, "same keys");
    for key in &keys {
        assert_eq!(q(&mut r, &["GET", key]).await, q(&mut p, &["GET", key]).await, "{key}");
    }
    let Value::Int(ttl) = q(&mut r, &["TTL", "ttl"]).await else { panic!() };
    assert!((990..=1000).contains(&ttl), "TTL carried over: {ttl}");
    child.kill().await.ok();
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_stops_reading_is_cut_off_and_costs_no_memory() {
    // The stream kept for a lagging replica is bounded by the replica output buffer's hard
    // limit (Redis's client-output-buffer-limit), here 4 MB.
    let primary =
        TestServer::with_conf("repl-backlog-size 16kb\nclient-output-buffer-limit slave 4mb 0 0\n").await;
    let mut p = primary.conn().await;
    // A replica that syncs, then stops reading.
    let mut fake = stalled_replica(&primary).await;
    // 20 MB through the write log, into one 10 KB key: the dataset does not grow.
    let value = "v".repeat(10 * 1024);
    for _ in 0..2000 {
        q(&mut p, &["SET", "big", &value]).await;
    }
    // What the primary holds for it is its backlog: at most the 4 MB limit (the buffer may
    // have doubled past it once). Not used_memory: it is the whole test process's, where
    // other tests run at the same time (it moved by -16 to +26 MB over this loop).
    let backlog = backlog_bytes(&mut p).await;
    assert!(
        backlog <= 8 * 1024 * 1024 + 64 * 1024,
        "the backlog holds {backlog} bytes for a stalled replica"
    );

    // When it reads again it gets what the socket held, then the primary hangs up: its
    // offset left the backlog long ago.
    assert!(fake.closed().await, "the stalled replica is disconnected");
    let gone = eventually(WAIT, || {
        let mut p = p.clone();
        async move { info_field(&mut p, "connected_slaves").await == "0" }
    })
    .await;
    assert!(gone);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_over_the_soft_limit_for_soft_seconds_is_cut_off() {
    // client-output-buffer-limit replica: no hard limit, a soft one of 256 KB for 1 s.
    let primary =
        TestServer::with_conf("repl-backlog-size 16kb\nclient-output-buffer-limit replica 0 256kb 1\n").await;
    let mut p = primary.conn().await;
    // A replica that keeps up is never cut off, however much goes by.
    let replica = TestServer::replica_of(primary.addr, "").await;
    linked(&replica).await;
    // One that syncs, then stops reading.
    let _fake = stalled_replica(&primary).await;
    let both = eventually(WAIT, || {
        let mut p = p.clone();
        async move { info_field(&mut p, "connected_slaves").await == "2" }
    })
    .await;
    assert!(both, "both replicas attached");
    // 8 MB through the log: far past what the stalled one's socket takes, and the soft limit.
    let value = "v".repeat(8 * 1024);
    for _ in 0..1000 {
        q(&mut p, &["SET", "big", &value]).await;
    }
    let started = std::time::Instant::now();
    let cut = eventually(WAIT, || {
        let mut p = p.clone();
        async move { info_field(&mut p, "connected_slaves").await == "1" }
    })
    .await;
    assert!(cut, "the stalled replica is cut off while it still does not read");
    assert!(started.elapsed() < Duration::from_secs(5), "within about soft-seconds: {:?}", started.elapsed());
    // The one that kept up is still there, with everything.
    let mut r = replica.conn().await;
    assert!(eventually_holds(replica.addr, "big", &value, WAIT).await);
    assert_eq!(info_field(&mut r, "master_link_status").await, "up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_bigger_than_the_replica_limit_streams_and_its_memory_comes_back() {
    let primary =
        TestServer::with_conf("client-output-buffer-limit replica 1mb 0 0\nrepl-backlog-size 16kb\n").await;
    let replica = TestServer::replica_of(primary.addr, "").await;
    linked(&replica).await;
    let mut p = primary.conn().await;
    let mut r = replica.conn().await;
    // 4 MB in one command, past the 1 MB the replica may lag: it still streams to the
    // replica that was keeping up, without a full resync of everything.
    let big = "b".repeat(4 << 20);
    q(&mut p, &["SET", "big", &big]).await;
    assert_eq!(wait_replicas(&primary, 1).await, 1);
    assert_eq!(q(&mut r, &["STRLEN", "big"]).await, int(4 << 20));
    assert_eq!(info_field(&mut r, "master_full_syncs").await, "1", "no new full resync");
    // Sent, the backlog goes back to its size.
    let backlog = || {
        let mut p = p.clone();
        async move { backlog_bytes(&mut p).await <= 64 * 1024 }
    };
    assert!(eventually(WAIT, backlog).await, "the backlog still holds the 4 MB write");
    q(&mut p, &["DEL", "big"]).await;
    assert_eq!(wait_replicas(&primary, 1).await, 1);
    assert_eq!(digest(&mut r).await, digest(&mut p).await);
}

/// min-replicas-to-write: a primary whose replicas stop acknowledging refuses writes within
/// min-replicas-max-lag seconds, and takes them again when a replica is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_without_good_replicas_refuses_writes() {
    let primary = TestServer::start().await;
    let mut p = primary.conn().await;
    assert_eq!(
        q(&mut p, &["CONFIG", "SET", "min-replicas-to-write", "1", "min-replicas-max-lag", "1"]).await,
        Value::Okay
    );
    assert_eq!(err(&mut p, &["SET", "k", "1"]).await, "NOREPLICAS Not enough good replicas to write.");
    assert_eq!(q(&mut p, &["GET", "k"]).await, Value::Nil, "reads still work");
    let replica = TestServer::replica_of(primary.addr, "").await;
    let writes = eventually(WAIT, || {
        let mut p = p.clone();
        async move { cmd(&["SET", "k", "1"]).query_async::<Value>(&mut p).await.is_ok() }
    })
    .await;
    assert!(writes, "writes taken once a replica acknowledges");
    replica.stop().await;
    let refused = eventually(WAIT, || {
        let mut p = p.clone();
        async move {
            cmd(&["SET", "k", "2"])
                .query_async::<Value>(&mut p)
                .await
                .is_err_and(|e| e.code() == Some("NOREPLICAS"))
        }
    })
    .await;
    assert!(refused, "refused once the replica is gone");
    assert_eq!(q(&mut p, &["MULTI"]).await, Value::Okay);
    assert!(err(&mut p, &["SET", "k", "3"]).await.starts_with("NOREPLICAS"));
    assert!(err(&mut p, &["EXEC"]).await.starts_with("EXECABORT"));
    // Writes taken until the lag ran out (1 or 2), never the refused one.
    assert_ne!(q(&mut p, &["GET", "k"]).await, bulk("3"));
}

/// A value of 300 KB: bytes that differ, so that a slip of one byte shows.
fn big_value(seed: u8) -> Vec<u8> {
    (0..300_000u32).map(|i| (i % 251) as u8 ^ seed).collect()
}

async fn get_bytes(c: &mut MultiplexedConnection, key: &str) -> Option<Vec<u8>> {
    redis::cmd("GET").arg(key).query_async(c).await.unwrap()
}

/// Big values are kept as they arrived (a buffer of their size, held by reference by the
/// keyspace and the backlog): every string command, a 16 KB backlog trimmed into the middle
/// of one, a snapshot and a replica see exactly the bytes sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_values_are_kept_as_sent_and_replicated() {
    let dir = temp_dir("big-values");
    let conf = format!("dir \"{}\"\nrepl-backlog-size 16kb\n", dir.display());
    let primary = TestServer::with_conf(&conf).await;
    let replica = TestServer::replica_of(primary.addr, "").await;
    linked(&replica).await;
    let mut p = primary.conn().await;
    let (a, b) = (big_value(0), big_value(1));
    // In 16 KB writes (the parser switches to a buffer of the value's size on the way), then
    // in one write.
    let mut raw = primary.raw().await;
    raw.send_in_pieces(&[&[b"SET", b"a", &a], &[b"PING"]], 16 * 1024).await;
    assert_eq!(raw.reply().await, "+OK\r\n");
    assert_eq!(raw.reply().await, "+PONG\r\n");
    let _: () = redis::cmd("SET").arg("b").arg(&b).arg("EX").arg(1000).query_async(&mut p).await.unwrap();
    let _: () = redis::cmd("MSET").arg("c").arg(&a).arg("d").arg(&b).query_async(&mut p).await.unwrap();
    let old: Vec<u8> = redis::cmd("GETSET").arg("d").arg(&a).query_async(&mut p).await.unwrap();
    assert!(old == b);
    assert_eq!(get_bytes(&mut p, "a").await.as_deref(), Some(&a[..]));
    assert_eq!(get_bytes(&mut p, "b").await.as_deref(), Some(&b[..]));
    assert_eq!(get_bytes(&mut p, "d").await.as_deref(), Some(&a[..]));
    assert_eq!(q(&mut p, &["STRLEN", "a"]).await, int(300_000));
    assert_eq!(q(&mut p, &["OBJECT", "ENCODING", "a"]).await, bulk("raw"));
    let Value::Int(usage) = q(&mut p, &["MEMORY", "USAGE", "a"]).await else { panic!() };
    assert!(usage >= 300_000, "MEMORY USAGE {usage}");
    let Value::Int(ttl) = q(&mut p, &["TTL", "b"]).await else { panic!() };
    assert!(ttl > 990);
    // Changed in place, copied, renamed, dumped and restored: the value follows.
    assert_eq!(q(&mut p, &["APPEND", "c", "xyz"]).await, int(300_003));
    assert_eq!(q(&mut p, &["SETRANGE", "d", "10", "QQ"]).await, int(300_000));
    let mut d = a.clone();
    d[10..12].copy_from_slice(b"QQ");
    assert_eq!(get_bytes(&mut p, "d").await.as_deref(), Some(&d[..]));
    let range: Vec<u8> =
        redis::cmd("GETRANGE").arg("c").arg(299_998).arg(-1).query_async(&mut p).await.unwrap();
    assert_eq!(range, [a[299_998], a[299_999], b'x', b'y', b'z']);
    assert_eq!(q(&mut p, &["COPY", "a", "e"]).await, int(1));
    assert_eq!(q(&mut p, &["RENAME", "e", "f"]).await, Value::Okay);
    let dump: Vec<u8> = redis::cmd("DUMP").arg("f").query_async(&mut p).await.unwrap();
    let _: () = redis::cmd("RESTORE").arg("g").arg(0).arg(dump).query_async(&mut p).await.unwrap();
    assert_eq!(get_bytes(&mut p, "g").await.as_deref(), Some(&a[..]));
    assert_eq!(q(&mut p, &["DEL", "a"]).await, int(1));
    assert_eq!(get_bytes(&mut p, "f").await.as_deref(), Some(&a[..]), "a copy outlives the original");

    // The replica has the same data, big values through a 16 KB backlog included.
    assert_eq!(wait_replicas(&primary, 1).await, 1);
    let mut r = replica.conn().await;
    assert_eq!(digest(&mut r).await, digest(&mut p).await);
    assert_eq!(get_bytes(&mut r, "d").await.as_deref(), Some(&d[..]));
    assert_eq!(info_field(&mut r, "master_full_syncs").await, "1");

    // A snapshot keeps them.
    let expected = digest(&mut p).await;
    assert_eq!(q(&mut p, &["SAVE"]).await, Value::Okay);
    drop(p);
    primary.stop().await;
    let back = TestServer::with_conf(&conf).await;
    let mut c = back.conn().await;
    assert_eq!(digest(&mut c).await, expected);
    assert_eq!(get_bytes(&mut c, "b").await.as_deref(), Some(&b[..]));
    std::fs::remove_dir_all(&dir).ok();
}

/// A replica killed while its snapshot is still being sent leaves no stream kept for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_during_its_snapshot_leaves_nothing_held() {
    let primary = TestServer::with_conf("repl-backlog-size 16kb\n").await;
    let mut p = primary.conn().await;
    // 12 MB of data: more than the sockets take, so the snapshot is still being written.
    set_1kb_keys(&mut p, 0..12).await;
    let mut fake = primary.raw().await;
    fake.send(&resp(&["PSYNC", "?", "-1"])).await;
    assert!(resync_started(&p, WAIT).await, "the full resync started");
    let id = feed_id(&mut p).await;
    assert_eq!(q(&mut p, &["CLIENT", "KILL", "ID", &id]).await, int(1));
    // 4 MB through the write log afterwards: the backlog keeps its 16 KB, nothing for the
    // killed replica.
    let big = "v".repeat(10 * 1024);
    for _ in 0..400 {
        q(&mut p, &["SET", "big", &big]).await;
    }
    let backlog = backlog_bytes(&mut p).await;
    assert!(backlog < 1 << 20, "the backlog holds {backlog} bytes");
    drop(fake);
}
