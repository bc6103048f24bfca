//! maxmemory on a real process (used_memory is the process's heap, so these do not run
//! in-process beside the other tests): the OOM error under noeviction, LFU keeping the keys
//! that are read, evictions reaching replicas and keyspace subscribers.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::Value;

use crate::harness::*;
use crate::persistence::{connect, spawn_with};

/// Redis's OOM error, as the redis crate prints it (the code apart).
const OOM: &str = "command not allowed when used memory > 'maxmemory'.";

async fn used_memory(c: &mut MultiplexedConnection) -> i64 {
    let info: String = redis::cmd("INFO").arg("memory").query_async(c).await.unwrap();
    info.lines().find_map(|l| l.strip_prefix("used_memory:")).unwrap().trim().parse().unwrap()
}

async fn stat(c: &mut MultiplexedConnection, name: &str) -> i64 {
    let info: String = redis::cmd("INFO").arg("stats").query_async(c).await.unwrap();
    info.lines().find_map(|l| l.strip_prefix(&format!("{name}:"))).unwrap().trim().parse().unwrap()
}

/// Sets maxmemory to what the process uses now plus `headroom` bytes, and the policy.
async fn limit(c: &mut MultiplexedConnection, headroom: i64, policy: &str) -> i64 {
    let max = used_memory(c).await + headroom;
    q(c, &["CONFIG", "SET", "maxmemory", &max.to_string(), "maxmemory-policy", policy]).await;
    max
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noeviction_refuses_writes_once_full_but_reads_and_deletes_work() {
    let dir = temp_dir("noeviction");
    let p = spawn_with(&dir, "write", &[]).await;
    let mut c = connect(p.port).await.unwrap();
    limit(&mut c, 4 << 20, "noeviction").await;
    let value = "x".repeat(1024);
    let mut refused = None;
    for i in 0..20_000 {
        let r: redis::RedisResult<Value> =
            redis::cmd("SET").arg(format!("k{i}")).arg(&value).query_async(&mut c).await;
        if let Err(e) = r {
            refused = Some((i, e.to_string()));
            break;
        }
    }
    let (stored, why) = refused.expect("writes past maxmemory were refused");
    assert!(why.contains("OOM") && why.contains(OOM), "{why}");
    assert!(stored > 1000, "only {stored} keys before OOM");
    // Reads and deletes still work; other growing commands are refused too.
    assert_eq!(q(&mut c, &["GET", "k0"]).await, Value::BulkString(value.clone().into_bytes()));
    assert!(err(&mut c, &["RPUSH", "l", "a"]).await.contains(OOM));
    assert!(err(&mut c, &["INCR", "n"]).await.contains(OOM));
    assert_eq!(stat(&mut c, "evicted_keys").await, 0);
    let mut del = redis::cmd("DEL");
    for i in 0..stored {
        del.arg(format!("k{i}"));
    }
    let n: i64 = del.query_async(&mut c).await.unwrap();
    assert_eq!(n, stored as i64);
    assert!(
        eventually(Duration::from_secs(10), || async {
            redis::cmd("SET")
                .arg("again")
                .arg(&value)
                .query_async::<Value>(&mut connect(p.port).await.unwrap())
                .await
                .is_ok()
        })
        .await,
        "writes work again once keys were deleted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allkeys_lfu_keeps_the_keys_that_are_read() {
    let dir = temp_dir("lfu");
    let p = spawn_with(&dir, "write", &[]).await;
    let mut c = connect(p.port).await.unwrap();
    let max = limit(&mut c, 6 << 20, "allkeys-lfu").await;
    let value = "x".repeat(1024);
    let mut pipe = redis::pipe();
    for i in 0..2000 {
        pipe.cmd("SET").arg(format!("k{i}")).arg(&value).ignore();
    }
    let _: () = pipe.query_async(&mut c).await.unwrap();
    // The first 200 are read, 20 times each.
    for _ in 0..20 {
        let mut reads = redis::pipe();
        for i in 0..200 {
            reads.cmd("GET").arg(format!("k{i}")).ignore();
        }
        let _: () = reads.query_async(&mut c).await.unwrap();
    }
    let freq: i64 = redis::cmd("OBJECT").arg("FREQ").arg("k0").query_async(&mut c).await.unwrap();
    let cold: i64 = redis::cmd("OBJECT").arg("FREQ").arg("k1999").query_async(&mut c).await.unwrap();
    assert!(freq > cold, "a read key's counter {freq} is above an unread one's {cold}");
    assert!(err(&mut c, &["OBJECT", "IDLETIME", "k0"])
        .await
        .contains("An LFU maxmemory policy is selected, idle time not tracked."));
    // A flood of 20 MB of new keys.
    for batch in 0..40 {
        let mut flood = redis::pipe();
        for i in 0..500 {
            flood.cmd("SET").arg(format!("new{batch}:{i}")).arg(&value).ignore();
        }
        let _: () = flood.query_async(&mut c).await.unwrap();
    }
    let mut exists = redis::cmd("EXISTS");
    for i in 0..200 {
        exists.arg(format!("k{i}"));
    }
    let kept: i64 = exists.query_async(&mut c).await.unwrap();
    assert!(kept >= 190, "{kept} of the 200 read keys survived the flood");
    assert!(stat(&mut c, "evicted_keys").await > 10_000);
    let used = used_memory(&mut c).await;
    assert!(used <= max + max / 20, "used_memory {used} above maxmemory {max} + 5%");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evictions_reach_replicas_and_keyspace_subscribers() {
    let (dir, rdir) = (temp_dir("evict-primary"), temp_dir("evict-replica"));
    let p = spawn_with(&dir, "write", &[]).await;
    let r = spawn_with(&rdir, "read", &["--replica-of", &format!("127.0.0.1:{}", p.port)]).await;
    let mut c = connect(p.port).await.unwrap();
    q(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "Ee"]).await;
    let mut events = Raw::connect(format!("127.0.0.1:{}", p.port).parse().unwrap()).await;
    events.send(&resp(&["SUBSCRIBE", "__keyevent@0__:evicted"])).await;
    events.reply().await;
    limit(&mut c, 3 << 20, "allkeys-random").await;
    set_1kb_keys(&mut c, 0..10).await;
    let evicted = stat(&mut c, "evicted_keys").await;
    assert!(evicted > 1000, "evicted {evicted}");
    // Each eviction made an event.
    let first = crate::pubsub::strings(&events.reply().await);
    assert_eq!(first[..2], ["message", "__keyevent@0__:evicted"]);
    // The replica ends with the primary's keys: the evictions reached it as DEL.
    let rc = connect(r.port).await.unwrap();
    let size = |c: &MultiplexedConnection| {
        let mut c = c.clone();
        async move { redis::cmd("DBSIZE").query_async::<i64>(&mut c).await.unwrap() }
    };
    let primary_keys = size(&c).await;
    assert_eq!(primary_keys + evicted, 10_000);
    assert!(
        eventually(Duration::from_secs(10), || async { size(&rc).await == primary_keys }).await,
        "replica has {} keys, primary {primary_keys}",
        size(&rc).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_closes_idle_clients_but_not_subscribers_or_blocked_ones() {
    let s = TestServer::with_conf("timeout 1").await;
    let mut idle = Raw::connect(s.addr).await;
    assert_eq!(idle.call(&resp(&["PING"])).await, "+PONG\r\n");
    let mut sub = Raw::connect(s.addr).await;
    sub.call(&resp(&["SUBSCRIBE", "x"])).await;
    let mut blocked = Raw::connect(s.addr).await;
    blocked.send(&resp(&["BLPOP", "q", "0"])).await;
    // Closed within a second or two of idleness (polled, up to 5 s).
    assert!(idle.closed().await, "an idle client was not closed");
    assert_eq!(sub.call(&resp(&["PING"])).await, "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    q(&mut s.conn().await, &["RPUSH", "q", "v"]).await;
    assert_eq!(blocked.reply().await, "*2\r\n$1\r\nq\r\n$1\r\nv\r\n");
}

/// Resident memory of a process, in bytes.
fn rss_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_do_not_read_their_replies_hold_little_memory() {
    let dir = temp_dir("slow-readers");
    let p = spawn_with(&dir, "write", &[]).await;
    let mut c = connect(p.port).await.unwrap();
    q(&mut c, &["SET", "big", &"x".repeat(100_000)]).await;
    let before = rss_of(p.child.id());
    // 10 clients each send 20,000 GETs of the 100 KB value (2 GB of replies each) and never
    // read: the server stops reading from them instead of building their replies.
    let request = resp(&["GET", "big"]).repeat(1000);
    let mut readers = Vec::new();
    for _ in 0..10 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(65536).unwrap();
        let mut stream = socket.connect(format!("127.0.0.1:{}", p.port).parse().unwrap()).await.unwrap();
        let request = request.clone();
        readers.push(tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for _ in 0..20 {
                if tokio::time::timeout(Duration::from_secs(2), stream.write_all(&request)).await.is_err() {
                    break;
                }
            }
            stream
        }));
    }
    let mut held = Vec::new();
    for r in readers {
        held.push(r.await.unwrap());
    }
    // Others are served meanwhile.
    let started = std::time::Instant::now();
    assert_eq!(q(&mut c, &["PING"]).await, Value::SimpleString("PONG".into()));
    assert!(started.elapsed() < Duration::from_secs(1), "PING took {:?}", started.elapsed());
    let grown = rss_of(p.child.id()).saturating_sub(before);
    assert!(grown < 150 << 20, "resident memory grew {} MB", grown >> 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_joining_a_full_primary_makes_it_evict_nothing() {
    let (dir, rdir) = (temp_dir("sync-primary"), temp_dir("sync-replica"));
    let p = spawn_with(&dir, "write", &[]).await;
    let mut c = connect(p.port).await.unwrap();
    set_1kb_keys(&mut c, 0..12).await;
    // Full: 2 MB of room, where the snapshot a full resync sends is 12 MB (Redis builds it in
    // a forked child, which maxmemory does not see).
    limit(&mut c, 2 << 20, "allkeys-random").await;
    // A replica that asks for a full resync and reads nothing: the snapshot waits to be sent.
    let mut stalled = Raw::connect(format!("127.0.0.1:{}", p.port).parse().unwrap()).await;
    stalled.send(&resp(&["PSYNC", "?", "-1"])).await;
    assert!(resync_started(&c, Duration::from_secs(10)).await, "the resync never started");
    // Writes meanwhile (overwriting, so the dataset stays the size it was) evict nothing.
    set_1kb_keys(&mut c, 0..3).await;
    assert_eq!(stat(&mut c, "evicted_keys").await, 0);
    let r = spawn_with(&rdir, "read", &["--replica-of", &format!("127.0.0.1:{}", p.port)]).await;
    let rc = connect(r.port).await.unwrap();
    let size = |c: &MultiplexedConnection| {
        let mut c = c.clone();
        async move { redis::cmd("DBSIZE").query_async::<i64>(&mut c).await.unwrap() }
    };
    assert!(
        eventually(Duration::from_secs(10), || async { size(&rc).await == 12_000 }).await,
        "replica has {} keys",
        size(&rc).await
    );
    assert_eq!(stat(&mut c, "evicted_keys").await, 0);
    assert_eq!(size(&c).await, 12_000);
    drop(stalled);
}
