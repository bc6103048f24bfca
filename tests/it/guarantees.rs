//! What the proxy promises a connection, through `--role all` (shards called in-process) and
//! through `--role proxy` in front of info, 3 write and 3 read shards (every hop over TCP):
//! read-your-writes and monotonic reads while reads go to read shards, transactions isolated
//! from other clients, WATCH, WAIT, and cluster-wide INFO keyspace / DEBUG DIGEST / SAVE.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::Value;

use crate::all::{self, AllInOne};
use crate::cluster::{conn_to, slots, Cluster, Node};
use crate::harness::*;
use crate::proxy::{cluster_with_proxy, stat};

/// A proxy endpoint and the shards behind it.
enum Endpoint {
    All(AllInOne),
    Proxy(Cluster, Node),
}

impl Endpoint {
    async fn all() -> Endpoint {
        Endpoint::All(all::start("").await)
    }

    async fn proxy() -> Endpoint {
        let (cluster, proxy) = cluster_with_proxy(1, "").await;
        Endpoint::Proxy(cluster, proxy)
    }

    fn addr(&self) -> SocketAddr {
        match self {
            Endpoint::All(a) => a.proxy,
            Endpoint::Proxy(_, p) => p.addr,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Endpoint::All(_) => "--role all",
            Endpoint::Proxy(..) => "--role proxy",
        }
    }

    async fn info(&self) -> SocketAddr {
        match self {
            Endpoint::All(a) => a.info,
            Endpoint::Proxy(c, _) => c.info.addr,
        }
    }

    /// The read shards' and write shards' addresses, from the map.
    async fn shards(&self) -> (Vec<SocketAddr>, Vec<SocketAddr>) {
        let map = slots(self.info().await).await;
        let at = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        let reads = map.iter().flat_map(|r| r.3.iter().map(|&p| at(p))).collect();
        let writes = map.iter().map(|r| at(r.2)).collect();
        (reads, writes)
    }

    async fn conn(&self) -> MultiplexedConnection {
        conn_to(self.addr()).await
    }
}

/// GETs served by these nodes so far (keyspace hits and misses).
async fn gets_served(nodes: &[SocketAddr]) -> i64 {
    let mut n = 0;
    for &addr in nodes {
        let mut c = conn_to(addr).await;
        n += stat(&mut c, "keyspace_hits").await + stat(&mut c, "keyspace_misses").await;
    }
    n
}

fn as_int(v: &Value) -> i64 {
    match v {
        Value::Nil => 0,
        Value::Int(n) => *n,
        Value::BulkString(b) => std::str::from_utf8(b).unwrap().parse().unwrap(),
        other => panic!("not a number: {other:?}"),
    }
}

/// One connection: SET then GET, sequentially and pipelined 100 pairs at a time, and INCR
/// then GET; every GET must see the connection's own write.
async fn read_your_writes(ep: &Endpoint, pairs: usize) {
    let name = ep.name();
    let mut c = ep.conn().await;
    let (reads, _) = ep.shards().await;
    let before = gets_served(&reads).await;
    let mut stale = 0;
    for i in 0..pairs {
        let key = format!("ryw{}", i % 300);
        let value = i.to_string();
        q(&mut c, &["SET", &key, &value]).await;
        if q(&mut c, &["GET", &key]).await != bulk(&value) {
            stale += 1;
        }
    }
    assert_eq!(stale, 0, "{name}: sequential SET then GET");
    // 100 pairs per pipeline.
    for round in 0..pairs / 100 {
        let mut pipe = redis::pipe();
        for j in 0..100 {
            pipe.cmd("SET").arg(format!("pp{j}")).arg(format!("{round}-{j}"));
            pipe.cmd("GET").arg(format!("pp{j}"));
        }
        let replies: Vec<Value> = pipe.query_async(&mut c).await.unwrap();
        for j in 0..100 {
            if replies[2 * j + 1] != bulk(&format!("{round}-{j}")) {
                stale += 1;
            }
        }
    }
    assert_eq!(stale, 0, "{name}: pipelined SET then GET");
    for i in 0..pairs {
        let key = format!("ctr{}", i % 7);
        let n = as_int(&q(&mut c, &["INCR", &key]).await);
        if as_int(&q(&mut c, &["GET", &key]).await) < n {
            stale += 1;
        }
    }
    assert_eq!(stale, 0, "{name}: INCR then GET");
    // The sequential GETs that did not follow a write in flight went to read shards.
    let served = gets_served(&reads).await - before;
    assert!(served > 0, "{name}: read shards served none of the GETs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_reads_its_own_writes_through_role_all() {
    read_your_writes(&Endpoint::all().await, 10_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_reads_its_own_writes_through_role_proxy() {
    read_your_writes(&Endpoint::proxy().await, 10_000).await;
}

/// 50 connections each INCR 10% and GET 90% of 10,000 keys; a GET must never be below the
/// connection's own last INCR of the key nor below what it read of it before. Read shards
/// serve most GETs, and those of a connection that only reads nearly all.
async fn many_connections(ep: &Endpoint, run_for: Duration) {
    let name = ep.name();
    let (reads, writes) = ep.shards().await;
    let before = (gets_served(&reads).await, gets_served(&writes).await);
    let stale = Arc::new(AtomicI64::new(0));
    let gets = Arc::new(AtomicI64::new(0));
    let incrs = Arc::new(AtomicI64::new(0));
    let mut tasks = Vec::new();
    for id in 0..50u64 {
        let (stale, gets, incrs) = (stale.clone(), gets.clone(), incrs.clone());
        let mut c = ep.conn().await;
        tasks.push(tokio::spawn(async move {
            let mut seen = std::collections::HashMap::new();
            let mut recent: Vec<u64> = Vec::new();
            let mut x = id.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            let until = Instant::now() + run_for;
            while Instant::now() < until {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let write = x % 10 == 0;
                // Half the reads go back to a key this connection wrote lately: that is
                // where a read older than its own write would show.
                let key = match recent.get((x >> 8) as usize % 16) {
                    Some(k) if !write && x & 0x10 == 0 => format!("mix{k}"),
                    _ => format!("mix{}", x % 10_000),
                };
                let floor = *seen.get(&key).unwrap_or(&0);
                if write {
                    let n = as_int(&q(&mut c, &["INCR", &key]).await);
                    incrs.fetch_add(1, Ordering::Relaxed);
                    if recent.len() == 8 {
                        recent.remove(0);
                    }
                    recent.push(x % 10_000);
                    seen.insert(key, n.max(floor));
                } else {
                    let n = as_int(&q(&mut c, &["GET", &key]).await);
                    gets.fetch_add(1, Ordering::Relaxed);
                    if n < floor {
                        stale.fetch_add(1, Ordering::Relaxed);
                    }
                    seen.insert(key, n.max(floor));
                }
            }
        }));
    }
    // One more connection that only reads.
    let mut reader = ep.conn().await;
    let reads_before = gets_served(&reads).await;
    let mut reader_gets = 0;
    let until = Instant::now() + run_for;
    while Instant::now() < until && reader_gets < 2_000 {
        q(&mut reader, &["GET", &format!("mix{}", reader_gets * 7 % 10_000)]).await;
        reader_gets += 1;
    }
    let reader_window = gets_served(&reads).await - reads_before;
    for t in tasks {
        t.await.unwrap();
    }
    let gets = gets.load(Ordering::Relaxed);
    let incrs = incrs.load(Ordering::Relaxed);
    assert_eq!(stale.load(Ordering::Relaxed), 0, "{name}: reads older than the connection's own");
    // A read shard counts the INCRs it applies from the stream as keyspace lookups too.
    let on_reads = gets_served(&reads).await - before.0 - incrs;
    let on_writes = gets_served(&writes).await - before.1 - incrs;
    assert!(gets > 1_000, "{name}: only {gets} GETs ran");
    assert!(
        on_reads * 100 >= gets * 60,
        "{name}: read shards served {on_reads} of {gets} GETs (write shards {on_writes})"
    );
    // The read-only connection's GETs all fell in the window (others' too, so at least its own).
    assert!(
        reader_window >= reader_gets * 95 / 100,
        "{name}: a read-only connection's {reader_gets} GETs; read shards served {reader_window} in that time"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_connections_never_read_older_than_their_own_through_role_all() {
    many_connections(&Endpoint::all().await, Duration::from_secs(3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_connections_never_read_older_than_their_own_through_role_proxy() {
    many_connections(&Endpoint::proxy().await, Duration::from_secs(3)).await;
}

/// 4 clients run MULTI/INCR/INCR/EXEC on one slot while 4 run SET/GET on that slot: no
/// EXEC reply is wrong, no SET is QUEUED, no GET misses its own SET. Then the WATCH
/// check-and-set counter, 8 clients x 500 increments, ends at exactly 4,000.
async fn isolated_transactions(ep: &Endpoint, run_for: Duration) {
    let name = ep.name();
    let wrong = Arc::new(AtomicI64::new(0));
    let mut tasks = Vec::new();
    for i in 0..8 {
        let wrong = wrong.clone();
        let mut c = ep.conn().await;
        tasks.push(tokio::spawn(async move {
            let until = Instant::now() + run_for;
            let mut n = 0;
            while Instant::now() < until {
                if i < 4 {
                    let replies: Vec<i64> = redis::pipe()
                        .atomic()
                        .cmd("INCR")
                        .arg("{iso}c")
                        .cmd("INCR")
                        .arg("{iso}c")
                        .query_async(&mut c)
                        .await
                        .unwrap_or_default();
                    if replies.len() != 2 || replies[1] != replies[0] + 1 {
                        wrong.fetch_add(1, Ordering::Relaxed);
                    }
                } else {
                    let (key, value) = (format!("{{iso}}p{i}"), format!("{n}"));
                    if q(&mut c, &["SET", &key, &value]).await != Value::Okay {
                        wrong.fetch_add(1, Ordering::Relaxed);
                    }
                    if q(&mut c, &["GET", &key]).await != bulk(&value) {
                        wrong.fetch_add(1, Ordering::Relaxed);
                    }
                }
                n += 1;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(wrong.load(Ordering::Relaxed), 0, "{name}: wrong EXEC replies, QUEUED SETs or stale GETs");

    let mut tasks = Vec::new();
    for _ in 0..8 {
        let mut c = ep.conn().await;
        tasks.push(tokio::spawn(async move {
            let mut done = 0;
            let mut tries = 0;
            while done < 500 && tries < 100_000 {
                tries += 1;
                q(&mut c, &["WATCH", "{iso}cas"]).await;
                let v = as_int(&q(&mut c, &["GET", "{iso}cas"]).await);
                let replies: Value = redis::pipe()
                    .atomic()
                    .cmd("SET")
                    .arg("{iso}cas")
                    .arg(v + 1)
                    .query_async(&mut c)
                    .await
                    .unwrap();
                if replies != Value::Nil {
                    done += 1;
                }
            }
            done
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 500);
    }
    // A new connection has no session with the writers: it asks the primary (READWRITE).
    let mut c = ep.conn().await;
    q(&mut c, &["READWRITE"]).await;
    assert_eq!(q(&mut c, &["GET", "{iso}cas"]).await, bulk("4000"), "{name}: the check-and-set counter");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_are_isolated_and_watch_works_through_role_proxy() {
    isolated_transactions(&Endpoint::proxy().await, Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_are_isolated_and_watch_works_through_role_all() {
    isolated_transactions(&Endpoint::all().await, Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sees_another_clients_write_and_refuses_other_shards() {
    for ep in [Endpoint::all().await, Endpoint::proxy().await] {
        let name = ep.name();
        let (mut a, mut b) = (ep.conn().await, ep.conn().await);
        q(&mut a, &["SET", "{w}k", "1"]).await;
        q(&mut a, &["WATCH", "{w}k"]).await;
        q(&mut b, &["SET", "{w}k", "2"]).await;
        q(&mut a, &["MULTI"]).await;
        q(&mut a, &["SET", "{w}k", "3"]).await;
        assert_eq!(q(&mut a, &["EXEC"]).await, Value::Nil, "{name}: EXEC after a watched key changed");
        assert_eq!(q(&mut a, &["GET", "{w}k"]).await, bulk("2"));
        // UNWATCH forgets; DISCARD too.
        q(&mut a, &["WATCH", "{w}k"]).await;
        q(&mut a, &["UNWATCH"]).await;
        q(&mut b, &["SET", "{w}k", "4"]).await;
        q(&mut a, &["MULTI"]).await;
        q(&mut a, &["INCR", "{w}k"]).await;
        assert_eq!(q(&mut a, &["EXEC"]).await, Value::Array(vec![int(5)]), "{name}");
        // Keys of another shard than the watched ones: CROSSSLOT, and EXEC aborts.
        let other = (0..100).map(|i| format!("x{i}")).find(|k| {
            let (s1, s2) = (rust_edis::topology::key_slot(k.as_bytes()), rust_edis::topology::key_slot(b"w"));
            (s1 / 5462) != (s2 / 5462)
        });
        let other = other.unwrap();
        q(&mut a, &["WATCH", "{w}k"]).await;
        assert!(err(&mut a, &["WATCH", &other]).await.starts_with("CROSSSLOT"), "{name}");
        q(&mut a, &["MULTI"]).await;
        assert!(err(&mut a, &["SET", &other, "1"]).await.starts_with("CROSSSLOT"), "{name}");
        assert!(err(&mut a, &["EXEC"]).await.starts_with("EXECABORT"), "{name}");
        assert!(err(&mut a, &["EXEC"]).await.contains("EXEC without MULTI"), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_counts_replicas_and_times_out_without_them() {
    // --role all: one read shard per write shard.
    let ep = Endpoint::all().await;
    let mut c = ep.conn().await;
    q(&mut c, &["SET", "waited", "1"]).await;
    assert_eq!(q(&mut c, &["WAIT", "1", "5000"]).await, int(1));
    assert_eq!(q(&mut c, &["WAIT", "0", "0"]).await, int(1));
    assert!(err(&mut c, &["WAIT", "1", "-1"]).await.contains("timeout is negative"));
    assert!(err(&mut c, &["WAIT", "x", "1"]).await.contains("not an integer"));

    // --role proxy: replicas healthy, then stopped.
    let Endpoint::Proxy(mut cluster, proxy) = Endpoint::proxy().await else { unreachable!() };
    let mut c = conn_to(proxy.addr).await;
    for i in 0..10 {
        q(&mut c, &["SET", &format!("w{i}"), "1"]).await;
    }
    assert_eq!(q(&mut c, &["WAIT", "1", "5000"]).await, int(1));
    // A WAIT that waits holds up no other client.
    let mut other = conn_to(proxy.addr).await;
    // (The redis crate gives up on a reply after 500 ms: waits stay below that.)
    let waiting = tokio::spawn(async move { q(&mut c, &["WAIT", "2", "400"]).await });
    let t = Instant::now();
    q(&mut other, &["SET", "meanwhile", "1"]).await;
    assert!(t.elapsed() < Duration::from_millis(300), "a WAIT held up another client");
    assert_eq!(waiting.await.unwrap(), int(1), "only one replica per shard");
    cluster.reads.clear();
    let mut c = conn_to(proxy.addr).await;
    let stopped = eventually(WAIT_LONG, || {
        let mut c = c.clone();
        async move {
            q(&mut c, &["SET", "after", "1"]).await;
            q(&mut c, &["WAIT", "1", "200"]).await == int(0)
        }
    })
    .await;
    assert!(stopped, "WAIT still counted a stopped replica");
    let t = Instant::now();
    assert_eq!(q(&mut c, &["WAIT", "1", "300"]).await, int(0));
    assert!(t.elapsed() >= Duration::from_millis(290), "WAIT answered before its timeout");
    assert_eq!(q(&mut c, &["WAIT", "0", "300"]).await, int(0), "none wanted: at once");
}

const WAIT_LONG: Duration = Duration::from_secs(10);

/// The keys each of `dbs` holds (DBSIZE on each).
async fn key_counts(nodes: &[SocketAddr]) -> i64 {
    let mut n = 0;
    for &addr in nodes {
        n += as_int(&q(&mut conn_to(addr).await, &["DBSIZE"]).await);
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_keyspace_digest_and_save_answer_for_the_whole_cluster() {
    let (a, b) = (Endpoint::all().await, Endpoint::proxy().await);
    let (mut ca, mut cb) = (a.conn().await, b.conn().await);
    for c in [&mut ca, &mut cb] {
        q(c, &["FLUSHALL"]).await;
        assert_eq!(q(c, &["DEBUG", "DIGEST"]).await, Value::SimpleString("0".repeat(40)));
        for i in 0..200 {
            q(c, &["SET", &format!("d{i}"), &format!("v{i}")]).await;
        }
        q(c, &["SET", "ttl", "1", "PXAT", "4102444800000"]).await;
    }
    let (da, db) = (q(&mut ca, &["DEBUG", "DIGEST"]).await, q(&mut cb, &["DEBUG", "DIGEST"]).await);
    assert_eq!(da, db, "equal data, equal digests");
    assert_ne!(da, Value::SimpleString("0".repeat(40)));
    q(&mut cb, &["SET", "d7", "changed"]).await;
    assert_ne!(q(&mut cb, &["DEBUG", "DIGEST"]).await, da, "one key changed");

    for ep in [&a, &b] {
        let name = ep.name();
        let mut c = ep.conn().await;
        let (_, writes) = ep.shards().await;
        let keys = key_counts(&writes).await;
        assert_eq!(keys, 201);
        let info: String = redis::cmd("INFO").arg("keyspace").query_async(&mut c).await.unwrap();
        assert!(info.contains("db0:keys=201,expires=1,"), "{name}: {info}");
        let all: String = redis::cmd("INFO").query_async(&mut c).await.unwrap();
        assert!(all.contains("db0:keys=201,expires=1,") && all.contains("# Server"), "{name}");
        let before = as_int(&q(&mut c, &["LASTSAVE"]).await);
        assert!(before > 0);
        let processed = |text: &str| -> i64 {
            text.lines()
                .find_map(|l| l.strip_prefix("total_commands_processed:"))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        let stats: String = redis::cmd("INFO").arg("stats").query_async(&mut c).await.unwrap();
        assert!(processed(&stats) >= 201, "{name}: forwarded commands are counted: {stats}");
        let cmdstats: String = redis::cmd("INFO").arg("commandstats").query_async(&mut c).await.unwrap();
        let sets: i64 = cmdstats
            .lines()
            .find_map(|l| l.strip_prefix("cmdstat_set:calls="))
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        assert!(sets >= 201, "{name}: SETs forwarded, in commandstats: {cmdstats}");
        assert_eq!(q(&mut c, &["SAVE"]).await, Value::Okay, "{name}");
        assert!(matches!(q(&mut c, &["BGSAVE"]).await, Value::SimpleString(_) | Value::Okay), "{name}");
    }
    // SAVE left each write shard's keys in its own dir.
    let Endpoint::Proxy(cluster, _) = &b else { unreachable!() };
    let mut total = 0;
    for w in &cluster.writes {
        let dump = w.dir.join("dump.rdb");
        let data = std::fs::read(&dump).unwrap_or_else(|e| panic!("{}: {e}", dump.display()));
        let keyspace = rust_edis::persistence::rdb::read(&data, 16).expect("a dump rust-edis reads");
        total += keyspace.dbs[0].len();
    }
    assert_eq!(total, 201, "the shards' dumps hold every key");
}

/// A router whose one shard (every slot) listens at `addr`.
fn router_to(addr: SocketAddr) -> std::sync::Arc<rust_edis::proxy::router::Router> {
    use rust_edis::proxy::backend::Pool;
    use rust_edis::proxy::router::Router;
    use rust_edis::topology::map::{NodeAddr, Shard};
    let router = Router::new(Pool::new(1, None), None);
    let primary =
        NodeAddr { id: "a".repeat(40), host: "127.0.0.1".into(), port: addr.port(), ..Default::default() };
    let shard = Shard { primary, index: 0, slots: (0, 16383), replicas: vec![] };
    router.set_topology(rust_edis::topology::Topology { epoch: 1, ok: true, shards: vec![shard] });
    router
}

async fn route_set(router: &std::sync::Arc<rust_edis::proxy::router::Router>, key: &str) -> String {
    use rust_edis::proxy::router::{Caller, ReadFrom, Req};
    let args: Vec<bytes::Bytes> =
        ["SET", key, "v"].iter().map(|a| bytes::Bytes::from(a.to_string())).collect();
    let cmd = rust_edis::command::lookup(b"set").unwrap();
    let req = Req { cmd, lane: 0, now: rust_edis::keyspace::now_ms() };
    match router.route(&args, req, &Caller::new(ReadFrom::Replica, false)).get().await {
        rust_edis::resp::Reply::Error(e) => e.to_string(),
        other => format!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_say_whether_the_command_was_sent() {
    // A shard that takes commands and never answers (as one paused with SIGSTOP): the first
    // write's outcome is unknown; while it stays silent, later ones are refused unsent.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let received = Arc::new(AtomicI64::new(0));
    let counter = received.clone();
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        while let Ok((mut s, _)) = silent.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    counter.fetch_add(text.matches("silent-key").count() as i64, Ordering::Relaxed);
                }
            });
        }
    });
    let router = router_to(addr);
    let first = route_set(&router, "silent-key").await;
    assert!(first.starts_with("UNCERTAIN") && first.contains("may or may not have been applied"), "{first}");
    let t = Instant::now();
    let second = route_set(&router, "never").await;
    assert!(second.starts_with("CLUSTERDOWN") && second.contains("not sent"), "{second}");
    assert!(t.elapsed() < Duration::from_millis(500), "a stalled shard fails fast");
    assert_eq!(received.load(Ordering::Relaxed), 1, "the shard got the uncertain write only");

    // A shard that is not there at all: never sent.
    let gone = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let reply = route_set(&router_to(gone), "k").await;
    assert!(reply.starts_with("CLUSTERDOWN") && reply.contains("safe to retry"), "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edis_at_answers_at_an_offset_or_says_behind() {
    let primary = TestServer::start().await;
    let replica = TestServer::replica_of(primary.addr, "").await;
    let mut p = primary.conn().await;
    q(&mut p, &["SET", "k", "v"]).await;
    assert_eq!(q(&mut p, &["WAIT", "1", "5000"]).await, int(1));
    let offset = |info: String| -> i64 {
        info.lines().find_map(|l| l.strip_prefix("master_repl_offset:")).unwrap().trim().parse().unwrap()
    };
    let at: i64 = offset(redis::cmd("INFO").arg("replication").query_async(&mut p).await.unwrap());
    let mut r = replica.conn().await;
    // Reached: the command runs.
    assert_eq!(q(&mut r, &["EDIS.AT", &at.to_string(), "GET", "k"]).await, bulk("v"));
    assert_eq!(q(&mut r, &["EDIS.AT", "0", "GET", "k"]).await, bulk("v"));
    // Not reached within its short wait: EDISBEHIND have wanted.
    let far = (at + 1_000_000).to_string();
    let t = Instant::now();
    let behind = err(&mut r, &["EDIS.AT", &far, "GET", "k"]).await;
    assert!(behind.starts_with("EDISBEHIND") && behind.ends_with(&far), "{behind}");
    assert!(t.elapsed() < Duration::from_millis(400), "the wait is short");
    // Reached later, within the wait: a write on the primary while the read waits.
    let mut raw = replica.raw().await;
    let next = (at + 1).to_string();
    raw.send(&resp(&["EDIS.AT", &next, "GET", "k"])).await;
    q(&mut p, &["SET", "k", "w"]).await;
    let got = raw.reply().await;
    assert!(got.ends_with("$1\r\nw\r\n") || got.starts_with("-EDISBEHIND"), "{got:?}");
    // Errors a client can make.
    assert!(err(&mut r, &["EDIS.AT", "1"]).await.contains("wrong number of arguments"));
    assert!(err(&mut r, &["EDIS.AT", "x", "GET", "k"]).await.contains("not an integer"));
    assert!(err(&mut r, &["EDIS.AT", "-1", "GET", "k"]).await.contains("not an integer"));
    assert!(err(&mut r, &["EDIS.AT", "0", "SET", "k", "v"]).await.starts_with("READONLY"));
    assert!(err(&mut r, &["EDIS.AT", "0", "NOSUCH"]).await.contains("unknown command"));
    q(&mut r, &["MULTI"]).await;
    assert!(err(&mut r, &["EDIS.AT", "0", "GET", "k"]).await.contains("not allowed inside a transaction"));
}
