//! The info role and write/read shards forming a cluster, in-process on 127.0.0.1:0:
//! registration, slot assignment, CLUSTER topology queries, MOVED/CROSSSLOT, failure
//! detection and recovery, read shards joining and leaving, and bad input to the registry.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use redis::Value;
use rust_edis::config::Config;
use rust_edis::topology::key_slot;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::harness::*;

/// Node timeout for these tests: short, so failure detection is quick to observe.
pub(crate) const NODE_TIMEOUT_MS: u64 = 500;
pub(crate) const WAIT: Duration = Duration::from_secs(10);
/// The cluster secret every member of a test cluster is given.
pub(crate) const SECRET: &str = "test-cluster-secret";

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    Info,
    Write,
    Read,
    Proxy,
}

/// One node of a test cluster. Dropping it is killing it: its task is aborted, its port
/// closed. Its --dir (and so its identity) stays with the cluster.
pub(crate) struct Node {
    pub(crate) addr: std::net::SocketAddr,
    pub(crate) dir: PathBuf,
    kind: Kind,
    _shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) async fn start_node(
    kind: Kind,
    dir: PathBuf,
    info: Option<std::net::SocketAddr>,
    extra: &str,
) -> Node {
    start_node_at("127.0.0.1:0", kind, dir, info, extra).await
}

async fn start_node_at(
    bind: &str,
    kind: Kind,
    dir: PathBuf,
    info: Option<std::net::SocketAddr>,
    extra: &str,
) -> Node {
    let mut conf = format!(
        "dir \"{}\"\nnode-timeout {NODE_TIMEOUT_MS}\nwrite-shards 3\ncluster-secret {SECRET}\nenable-debug-command yes\n{extra}",
        dir.display()
    );
    if let Some(info) = info {
        conf.push_str(&format!("info {info}\n"));
    }
    let config = Config::parse(&conf).expect("config");
    let listener = TcpListener::bind(bind).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        let result = match kind {
            Kind::Info => rust_edis::roles::info::run(config, listener, rx).await,
            Kind::Write => rust_edis::roles::write::run(config, listener, rx).await,
            Kind::Read => rust_edis::roles::read::run(config, listener, rx).await,
            Kind::Proxy => rust_edis::roles::proxy::run(config, listener, rx).await,
        };
        result.expect("role");
    });
    Node { addr, dir, kind, _shutdown: tx, task }
}

/// A cluster under test; its files live in a fresh directory removed on drop.
pub(crate) struct Cluster {
    pub(crate) base: PathBuf,
    pub(crate) info: Node,
    pub(crate) writes: Vec<Node>,
    pub(crate) reads: Vec<Node>,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

impl Cluster {
    /// Info plus `writes` write shards, waiting until the cluster is ok.
    pub(crate) async fn start(writes: usize) -> Cluster {
        let base = std::env::temp_dir().join(format!(
            "rust-edis-it-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&base);
        let info = start_node(Kind::Info, base.join("info"), None, &format!("write-shards {writes}\n")).await;
        let mut cluster = Cluster { base, info, writes: Vec::new(), reads: Vec::new() };
        for i in 0..writes {
            let node =
                start_node(Kind::Write, cluster.base.join(format!("w{i}")), Some(cluster.info.addr), "")
                    .await;
            cluster.writes.push(node);
        }
        cluster.wait_info(|t| t.contains("cluster_state:ok"), "CLUSTER INFO").await;
        cluster
    }

    /// Kills info and starts it again on the same address; with `lose_map`, in a fresh
    /// directory (the same secret), as if its disk was lost.
    pub(crate) async fn restart_info(&mut self, lose_map: bool) {
        let addr = self.info.addr;
        let mut dir = self.info.dir.clone();
        self.info.task.abort();
        let freed = eventually(WAIT, || async { TcpListener::bind(addr).await.is_ok() }).await;
        assert!(freed, "the old info released its port");
        if lose_map {
            dir = self.base.join(format!("info-{}", NEXT.fetch_add(1, Ordering::Relaxed)));
        }
        let writes = self.writes.len();
        self.info =
            start_node_at(&addr.to_string(), Kind::Info, dir, None, &format!("write-shards {writes}\n"))
                .await;
    }

    pub(crate) async fn add_read(&mut self) -> usize {
        let dir = self.base.join(format!("r{}", self.reads.len()));
        self.reads.push(start_node(Kind::Read, dir, Some(self.info.addr), "").await);
        self.reads.len() - 1
    }

    /// Waits until every write shard's own view of the map covers all slots.
    pub(crate) async fn wait_write_views(&self) {
        for w in &self.writes {
            let ok = eventually(WAIT, || async { covers_all(&slots(w.addr).await) }).await;
            assert!(ok, "{} never saw the whole map: {:?}", w.addr, slots(w.addr).await);
        }
    }

    /// Polls `CLUSTER <sub>` on info until `cond` holds on its text.
    pub(crate) async fn wait_info(&self, cond: impl Fn(&str) -> bool, sub: &str) -> String {
        wait_text(self.info.addr, sub, cond).await
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.reads.clear();
        self.writes.clear();
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// A raw connection authenticated as a cluster member (`AUTH edis <secret>`).
pub(crate) async fn member(addr: std::net::SocketAddr) -> Raw {
    let mut raw = Raw::connect(addr).await;
    assert_eq!(raw.call(&resp(&["AUTH", "edis", SECRET])).await, "+OK\r\n");
    raw
}

pub(crate) async fn conn_to(addr: std::net::SocketAddr) -> redis::aio::MultiplexedConnection {
    multiplexed(&format!("redis://{addr}/")).await
}

/// `CLUSTER NODES` or `CLUSTER INFO` (given as "NODES" / "INFO") as text.
pub(crate) async fn cluster_text(addr: std::net::SocketAddr, sub: &str) -> String {
    let mut c = conn_to(addr).await;
    let sub = sub.trim_start_matches("CLUSTER ");
    redis::cmd("CLUSTER").arg(sub).query_async::<String>(&mut c).await.unwrap()
}

pub(crate) async fn wait_text(addr: std::net::SocketAddr, sub: &str, cond: impl Fn(&str) -> bool) -> String {
    let sub = if sub == "CLUSTER INFO" { "INFO" } else { sub };
    let until = tokio::time::Instant::now() + WAIT;
    loop {
        let text = cluster_text(addr, sub).await;
        if cond(&text) {
            return text;
        }
        assert!(tokio::time::Instant::now() < until, "CLUSTER {sub} never matched; last:\n{text}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// CLUSTER SLOTS as (start, end, primary port, replica ports).
pub(crate) async fn slots(addr: std::net::SocketAddr) -> Vec<(i64, i64, u16, Vec<u16>)> {
    let mut c = conn_to(addr).await;
    let Value::Array(ranges) = q(&mut c, &["CLUSTER", "SLOTS"]).await else { panic!() };
    let port = |v: &Value| match v {
        Value::Array(n) => match n[1] {
            Value::Int(p) => p as u16,
            _ => panic!(),
        },
        _ => panic!(),
    };
    let mut out: Vec<_> = ranges
        .iter()
        .map(|r| {
            let Value::Array(r) = r else { panic!() };
            let (Value::Int(a), Value::Int(b)) = (&r[0], &r[1]) else { panic!() };
            (*a, *b, port(&r[2]), r[3..].iter().map(port).collect())
        })
        .collect();
    out.sort();
    out
}

fn epoch(info: &str) -> u64 {
    info.lines().find_map(|l| l.strip_prefix("cluster_current_epoch:")).unwrap().trim().parse().unwrap()
}

pub(crate) fn covers_all(s: &[(i64, i64, u16, Vec<u16>)]) -> bool {
    s.len() == 3 && s[0].0 == 0 && s[2].1 == 16383 && s.windows(2).all(|w| w[0].1 + 1 == w[1].0)
}

#[tokio::test]
async fn three_write_and_three_read_shards() {
    let mut cluster = Cluster::start(3).await;
    for _ in 0..3 {
        cluster.add_read().await;
    }
    let all_have_one = |s: &[(i64, i64, u16, Vec<u16>)]| covers_all(s) && s.iter().all(|r| r.3.len() == 1);
    let ok = eventually(WAIT, || async { all_have_one(&slots(cluster.info.addr).await) }).await;
    assert!(ok, "info: {:?}", slots(cluster.info.addr).await);
    assert_eq!(
        slots(cluster.info.addr).await.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>(),
        [(0, 5460), (5461, 10922), (10923, 16383)]
    );
    // Every shard, write or read, answers the same map once its view caught up.
    for node in cluster.writes.iter().chain(&cluster.reads) {
        let ok = eventually(WAIT, || async { all_have_one(&slots(node.addr).await) }).await;
        assert!(ok, "{}: {:?}", node.addr, slots(node.addr).await);
    }
    let info = cluster_text(cluster.info.addr, "INFO").await;
    assert!(info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:6"), "{info}");
    let nodes = cluster_text(cluster.writes[0].addr, "NODES").await;
    assert_eq!(nodes.lines().count(), 6, "{nodes}");
    assert_eq!(nodes.lines().filter(|l| l.contains("myself,master")).count(), 1, "{nodes}");
    assert_eq!(nodes.lines().filter(|l| l.contains(" slave ")).count(), 3, "{nodes}");
    let mut c = conn_to(cluster.writes[1].addr).await;
    let Value::BulkString(id) = q(&mut c, &["CLUSTER", "MYID"]).await else { panic!() };
    assert!(nodes.contains(&format!("{} {}", String::from_utf8(id).unwrap(), cluster.writes[1].addr)));
    assert_eq!(q(&mut c, &["CLUSTER", "KEYSLOT", "{user1000}.following"]).await, int(3443));
    let server_info: String =
        redis::cmd("INFO").arg("server").arg("cluster").query_async(&mut c).await.unwrap();
    assert!(
        server_info.contains("redis_mode:cluster") && server_info.contains("cluster_enabled:1"),
        "{server_info}"
    );
    let Value::Array(shards) = q(&mut c, &["CLUSTER", "SHARDS"]).await else { panic!() };
    assert_eq!(shards.len(), 3);
    assert!(cluster.reads.iter().all(|r| r.kind == Kind::Read));
}

#[tokio::test]
async fn cluster_client_without_proxy() {
    let cluster = Cluster::start(3).await;
    // Every shard's view must be current before a client is pointed at one.
    cluster.wait_write_views().await;
    let client =
        redis::cluster::ClusterClient::new(vec![format!("redis://{}/", cluster.writes[0].addr)]).unwrap();
    let mut c = client.get_async_connection().await.unwrap();
    let mut slots_seen = std::collections::HashSet::new();
    for i in 0..1000 {
        let key = format!("key:{i}");
        slots_seen.insert(key_slot(key.as_bytes()) * 3 / 16384);
        let _: () = redis::cmd("SET").arg(&key).arg(i).query_async(&mut c).await.unwrap();
    }
    assert_eq!(slots_seen.len(), 3, "the keys span all three shards");
    for i in 0..1000 {
        let v: i64 = redis::cmd("GET").arg(format!("key:{i}")).query_async(&mut c).await.unwrap();
        assert_eq!(v, i);
    }
    // The keys really are spread: each shard holds some, and they add up.
    let mut total = 0;
    for w in &cluster.writes {
        let mut d = conn_to(w.addr).await;
        let Value::Int(n) = q(&mut d, &["DBSIZE"]).await else { panic!() };
        assert!(n > 200, "{} holds {n}", w.addr);
        total += n;
    }
    assert_eq!(total, 1000);
}

#[tokio::test]
async fn moved_crossslot_and_hash_tags() {
    let cluster = Cluster::start(3).await;
    cluster.wait_write_views().await;
    let map = slots(cluster.info.addr).await;
    let owner = |slot: u16| map.iter().find(|r| r.0 <= slot as i64 && slot as i64 <= r.1).unwrap().2;
    let foo = key_slot(b"foo");
    let wrong = cluster.writes.iter().find(|w| w.addr.port() != owner(foo)).unwrap();
    let right = cluster.writes.iter().find(|w| w.addr.port() == owner(foo)).unwrap();
    let mut raw = Raw::connect(wrong.addr).await;
    assert_eq!(raw.call(&resp(&["GET", "foo"])).await, format!("-MOVED {foo} 127.0.0.1:{}\r\n", owner(foo)));
    assert_eq!(
        raw.call(&resp(&["SET", "foo", "x"])).await,
        format!("-MOVED {foo} 127.0.0.1:{}\r\n", owner(foo))
    );
    let mut raw = Raw::connect(right.addr).await;
    assert_eq!(raw.call(&resp(&["SET", "foo", "x"])).await, "+OK\r\n");
    assert_eq!(raw.call(&resp(&["GET", "foo"])).await, "$1\r\nx\r\n");
    assert_eq!(
        raw.call(&resp(&["MSET", "foo", "1", "bar", "2"])).await,
        "-CROSSSLOT Keys in request don't hash to the same slot\r\n"
    );
    assert_eq!(raw.call(&resp(&["SELECT", "1"])).await, "-ERR SELECT is not allowed in cluster mode\r\n");
    assert_eq!(raw.call(&resp(&["SELECT", "0"])).await, "+OK\r\n");
    // Keys sharing a hash tag live together and multi-key commands work on them.
    let tag = key_slot(b"user1000");
    let home = cluster.writes.iter().find(|w| w.addr.port() == owner(tag)).unwrap();
    let mut raw = Raw::connect(home.addr).await;
    assert_eq!(raw.call(&resp(&["MSET", "{user1000}.a", "1", "{user1000}.b", "2"])).await, "+OK\r\n");
    assert_eq!(
        raw.call(&resp(&["MGET", "{user1000}.a", "{user1000}.b"])).await,
        "*2\r\n$1\r\n1\r\n$1\r\n2\r\n"
    );
    // A transaction's keys must share one slot too.
    raw.call(&resp(&["MULTI"])).await;
    raw.call(&resp(&["SET", "{user1000}.c", "3"])).await;
    let other = (0..100)
        .map(|i| format!("k{i}"))
        .find(|k| key_slot(k.as_bytes()) != tag && owner(key_slot(k.as_bytes())) == owner(tag))
        .unwrap();
    assert_eq!(
        raw.call(&resp(&["SET", &other, "4"])).await,
        "-CROSSSLOT Keys in request don't hash to the same slot\r\n"
    );
    assert_eq!(
        raw.call(&resp(&["EXEC"])).await,
        "-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    // A router's connection (EDIS.ROUTER) may span slots, only slots this node serves.
    let mine: Vec<String> = (0..10_000)
        .map(|i| format!("m{i}"))
        .filter(|k| owner(key_slot(k.as_bytes())) == owner(foo))
        .take(3)
        .collect();
    let mut router = member(right.addr).await;
    assert_eq!(
        router.call(&resp(&["MSET", &mine[0], "1", &mine[1], "2"])).await,
        "-CROSSSLOT Keys in request don't hash to the same slot\r\n"
    );
    assert_eq!(router.call(&resp(&["EDIS.ROUTER"])).await, "+OK\r\n");
    assert_eq!(router.call(&resp(&["MSET", &mine[0], "1", &mine[1], "2", &mine[2], "3"])).await, "+OK\r\n");
    assert_eq!(router.call(&resp(&["MGET", &mine[2], &mine[0]])).await, "*2\r\n$1\r\n3\r\n$1\r\n1\r\n");
    let reply = router.call(&resp(&["MGET", &mine[0], "bar"])).await;
    assert!(reply.starts_with("-MOVED ") || owner(key_slot(b"bar")) == owner(foo), "{reply}");
    // Info and read shards redirect keys to the owner.
    let mut raw = Raw::connect(cluster.info.addr).await;
    assert_eq!(raw.call(&resp(&["GET", "foo"])).await, format!("-MOVED {foo} 127.0.0.1:{}\r\n", owner(foo)));
}

#[tokio::test]
async fn failed_write_shard_is_detected_and_recovers() {
    let mut cluster = Cluster::start(3).await;
    let before = cluster_text(cluster.info.addr, "INFO").await;
    let victim = cluster.writes.remove(1);
    let dir = victim.dir.clone();
    let port = victim.addr.port();
    let started = std::time::Instant::now();
    drop(victim);
    let nodes = wait_text(cluster.info.addr, "NODES", |t| {
        t.lines().any(|l| l.contains(&format!(":{port}@")) && l.contains("master,fail"))
    })
    .await;
    let detected = started.elapsed();
    assert!(detected < Duration::from_millis(NODE_TIMEOUT_MS + 1000), "took {detected:?}:\n{nodes}");
    let failed = cluster.wait_info(|t| t.contains("cluster_state:fail"), "CLUSTER INFO").await;
    assert!(epoch(&failed) > epoch(&before), "the epoch grew");
    // Same identity (same --dir), new port: its slots come back and the cluster is ok.
    let back = start_node(Kind::Write, dir, Some(cluster.info.addr), "").await;
    let ok = cluster.wait_info(|t| t.contains("cluster_state:ok"), "CLUSTER INFO").await;
    assert!(epoch(&ok) > epoch(&failed));
    let map = slots(cluster.info.addr).await;
    assert!(map.iter().any(|r| r.2 == back.addr.port() && (r.0, r.1) == (5461, 10922)), "{map:?}");
    cluster.writes.push(back);
}

#[tokio::test]
async fn read_shards_join_and_leave_while_clients_write() {
    let mut cluster = Cluster::start(3).await;
    cluster.wait_write_views().await;
    // A client keeps writing through the cluster client the whole time.
    let client =
        redis::cluster::ClusterClient::new(vec![format!("redis://{}/", cluster.writes[0].addr)]).unwrap();
    let mut c = client.get_async_connection().await.unwrap();
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let writer = tokio::spawn(async move {
        let mut n = 0u64;
        while !*stop_rx.borrow_and_update() && n < 1_000_000 {
            let _: () = redis::cmd("SET").arg(format!("w:{n}")).arg(n).query_async(&mut c).await.unwrap();
            n += 1;
            if n.is_multiple_of(50) {
                tokio::task::yield_now().await;
            }
        }
        n
    });
    let e0 = epoch(&cluster_text(cluster.info.addr, "INFO").await);
    let r = cluster.add_read().await;
    let port = cluster.reads[r].addr.port();
    let listed = |s: &[(i64, i64, u16, Vec<u16>)]| s.iter().any(|range| range.3.contains(&port));
    assert!(eventually(WAIT, || async { listed(&slots(cluster.info.addr).await) }).await);
    let e1 = epoch(&cluster_text(cluster.info.addr, "INFO").await);
    assert!(e1 > e0, "adding a read shard bumps the epoch");
    let nodes = cluster_text(cluster.info.addr, "NODES").await;
    let line = nodes.lines().find(|l| l.contains(&format!(":{port}@"))).unwrap().to_string();
    assert!(line.contains(" slave ") && !line.contains("fail"), "{line}");

    // Stopped: marked failed, no longer listed as a healthy replica.
    cluster.reads.remove(r);
    wait_text(cluster.info.addr, "NODES", |t| {
        t.lines().any(|l| l.contains(&format!(":{port}@")) && l.contains("slave,fail"))
    })
    .await;
    assert!(!listed(&slots(cluster.info.addr).await));
    assert!(
        cluster_text(cluster.info.addr, "INFO").await.contains("cluster_state:ok"),
        "a read shard is not needed for ok"
    );

    stop_tx.send(true).unwrap();
    let written = writer.await.unwrap();
    assert!(written > 0);
}

#[tokio::test]
async fn registry_refuses_bad_input_and_keeps_the_map() {
    let cluster = Cluster::start(3).await;
    let mut raw = member(cluster.info.addr).await;
    let nodes_before = cluster_text(cluster.info.addr, "NODES").await;
    let info_before = cluster_text(cluster.info.addr, "INFO").await;
    let id = |c: char| c.to_string().repeat(40);
    let w0 = cluster.writes[0].addr;
    let (e, w0port) = (id('e'), w0.port());
    let tok = "tokentokentokentoken";
    let cases: Vec<(String, &str)> = vec![
        (format!("EDIS.HEARTBEAT {e} {tok}"), "-ERR unknown shard id"),
        (format!("EDIS.REGISTER {e} WRITE 127.0.0.1 {w0port} TOKEN {tok}"), "-ERR address 127.0.0.1:"),
        (
            format!("EDIS.REGISTER {e} WRITE 127.0.0.1 1 TOKEN {tok}"),
            "-ERR all 3 expected write shards are registered",
        ),
        (format!("EDIS.REGISTER {e} PRIMARY 127.0.0.1 1 TOKEN {tok}"), "-ERR unknown shard role"),
        (format!("EDIS.REGISTER {e} READ 127.0.0.1 99999 TOKEN {tok}"), "-ERR invalid port"),
        (format!("EDIS.REGISTER {e} READ 127.0.0.1 0 TOKEN {tok}"), "-ERR invalid port"),
        (format!("EDIS.REGISTER not-hex READ 127.0.0.1 1 TOKEN {tok}"), "-ERR invalid shard id"),
        (format!("EDIS.REGISTER {e} READ 127.0.0.1 1"), "-ERR invalid identity token"),
        (format!("EDIS.REGISTER {e} READ"), "-ERR wrong number of arguments for 'edis.register' command"),
        (format!("EDIS.REGISTER {e} READ 127.0.0.1 1 BOGUS"), "-ERR syntax error"),
        (
            format!("EDIS.REGISTER {e} READ 127.0.0.1 1 TOKEN {tok} REPLICAOF 127.0.0.1 9"),
            "-ERR no write shard is registered at 127.0.0.1:9",
        ),
        (format!("EDIS.REGISTER {e} READ 127.0.0.1 1 TOKEN {tok} FOLLOWS {e} 2 0"), "-ERR FOLLOWS synced"),
        (format!("EDIS.LEAVE {e} {tok}"), "-ERR unknown shard id"),
        ("EDIS.TOPOLOGY WAIT x 1".into(), "-ERR value is not an integer"),
        ("EDIS.TOPOLOGY WAIT 1 99999999".into(), "-ERR timeout must be between"),
    ];
    for (line, expected) in cases {
        let args: Vec<&str> = line.split(' ').collect();
        let reply = raw.call(&resp(&args)).await;
        assert!(reply.starts_with(expected), "{line}: {reply}");
    }
    // Registry commands are refused by shards, and topology waits by MULTI.
    let mut shard = member(w0).await;
    assert_eq!(
        shard.call(&resp(&["EDIS.HEARTBEAT", &id('e'), tok])).await,
        "-ERR EDIS.HEARTBEAT is served by the info role only\r\n"
    );
    shard.call(&resp(&["MULTI"])).await;
    assert_eq!(
        shard.call(&resp(&["EDIS.TOPOLOGY"])).await,
        "-ERR Command not allowed inside a transaction\r\n"
    );
    assert_eq!(cluster_text(cluster.info.addr, "NODES").await, nodes_before, "the map is unchanged");
    assert_eq!(epoch(&cluster_text(cluster.info.addr, "INFO").await), epoch(&info_before));
}

#[tokio::test]
async fn topology_wait_returns_on_change_or_timeout() {
    let mut cluster = Cluster::start(3).await;
    let mut raw = member(cluster.info.addr).await;
    let e = epoch(&cluster_text(cluster.info.addr, "INFO").await);
    // A stale epoch answers at once; the current one waits for the timeout.
    let now = raw.call(&resp(&["EDIS.TOPOLOGY", "WAIT", "0", "5000"])).await;
    assert!(now.starts_with(&format!("*3\r\n:{e}\r\n")), "{now}");
    let t = std::time::Instant::now();
    let same = raw.call(&resp(&["EDIS.TOPOLOGY", "WAIT", &e.to_string(), "50"])).await;
    assert!(same.starts_with(&format!("*3\r\n:{e}\r\n")) && t.elapsed() >= Duration::from_millis(50));
    // A change wakes a waiting poll, and commands pipelined behind it answer after it.
    raw.send(&resp(&["EDIS.TOPOLOGY", "WAIT", &e.to_string(), "10000"])).await;
    raw.send(&resp(&["PING"])).await;
    cluster.add_read().await;
    let changed = raw.reply().await;
    assert!(!changed.starts_with(&format!("*3\r\n:{e}\r\n")), "{changed}");
    assert_eq!(raw.reply().await, "+PONG\r\n");
}

#[tokio::test]
async fn shards_re_register_with_a_restarted_info_and_keep_their_slots() {
    let mut cluster = Cluster::start(3).await;
    cluster.add_read().await;
    cluster.add_read().await;
    let listed =
        |s: &[(i64, i64, u16, Vec<u16>)]| covers_all(s) && s.iter().map(|r| r.3.len()).sum::<usize>() == 2;
    assert!(eventually(WAIT, || async { listed(&slots(cluster.info.addr).await) }).await);
    let before = slots(cluster.info.addr).await;
    let epoch_before = epoch(&cluster_text(cluster.info.addr, "INFO").await);

    // Info restarts with the map it kept in its --dir: nothing changes.
    cluster.restart_info(false).await;
    assert_eq!(slots(cluster.info.addr).await, before, "the same map at once");
    let after = cluster.wait_info(|t| t.contains("cluster_state:ok"), "CLUSTER INFO").await;
    assert_eq!(epoch(&after), epoch_before, "no change, no new epoch");

    // Info restarts with its map lost (a new --dir): every shard registers again, the write
    // shards asking for the same ranges, the read shards saying which write shard they follow,
    // so each lands where it already replicates.
    cluster.restart_info(true).await;
    assert!(
        eventually(WAIT, || async { slots(cluster.info.addr).await == before }).await,
        "{:?} vs {before:?}",
        slots(cluster.info.addr).await
    );
    cluster.wait_info(|t| t.contains("cluster_state:ok"), "CLUSTER INFO").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_shards_replicate_their_write_shard_and_serve_its_reads() {
    let mut cluster = Cluster::start(3).await;
    for _ in 0..3 {
        cluster.add_read().await;
    }
    let one_each = |s: &[(i64, i64, u16, Vec<u16>)]| covers_all(s) && s.iter().all(|r| r.3.len() == 1);
    assert!(eventually(WAIT, || async { one_each(&slots(cluster.info.addr).await) }).await);
    cluster.wait_write_views().await;
    let map = slots(cluster.info.addr).await;
    let client =
        redis::cluster::ClusterClient::new(vec![format!("redis://{}/", cluster.writes[0].addr)]).unwrap();
    let mut c = client.get_async_connection().await.unwrap();
    for i in 0..300 {
        let _: () = redis::cmd("SET").arg(format!("key:{i}")).arg(i).query_async(&mut c).await.unwrap();
    }
    // Every write shard's replica acknowledges everything written to it.
    for range in &map {
        let primary = cluster.writes.iter().find(|w| w.addr.port() == range.2).unwrap();
        let mut p = conn_to(primary.addr).await;
        assert_eq!(q(&mut p, &["WAIT", "1", "5000"]).await, int(1), "replica of {}", primary.addr);
    }
    for i in 0..300 {
        let key = format!("key:{i}");
        let slot = key_slot(key.as_bytes()) as i64;
        let range = map.iter().find(|r| r.0 <= slot && slot <= r.1).unwrap();
        let reader = cluster.reads.iter().find(|r| r.addr.port() == range.3[0]).unwrap();
        let mut raw = Raw::connect(reader.addr).await;
        let v = i.to_string();
        assert_eq!(
            raw.call(&resp(&["GET", &key])).await,
            format!("${}\r\n{v}\r\n", v.len()),
            "{key} on its read shard"
        );
        if i == 0 {
            // A write goes to the primary, as a Redis Cluster replica redirects it.
            assert_eq!(
                raw.call(&resp(&["SET", &key, "x"])).await,
                format!("-MOVED {slot} 127.0.0.1:{}\r\n", range.2)
            );
            assert_eq!(
                raw.call(&resp(&["FLUSHALL"])).await,
                "-READONLY You can't write against a read only replica.\r\n",
                "a write without keys has nowhere to go"
            );
            let other = map.iter().find(|r| r.3[0] != reader.addr.port()).unwrap();
            let foreign = (0..1000).map(|j| format!("f{j}")).find(|k| {
                let s = key_slot(k.as_bytes()) as i64;
                other.0 <= s && s <= other.1
            });
            let foreign = foreign.unwrap();
            let moved = raw.call(&resp(&["GET", &foreign])).await;
            assert!(
                moved.starts_with(&format!("-MOVED {} 127.0.0.1:{}", key_slot(foreign.as_bytes()), other.2)),
                "{moved}"
            );
        }
    }
}
