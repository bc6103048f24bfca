//! `--role all` in-process on port 0: info, three write shards with a read shard each, and
//! the proxy, whose router calls the shards of its own process directly (no loopback TCP).

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::Value;
use rust_edis::config::Config;
use rust_edis::topology::key_slot;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::cluster::{conn_to, slots};
use crate::harness::*;

const WAIT: Duration = Duration::from_secs(10);

pub(crate) struct AllInOne {
    pub(crate) proxy: std::net::SocketAddr,
    pub(crate) info: std::net::SocketAddr,
    pub(crate) dir: std::path::PathBuf,
    _shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AllInOne {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `--role all` for tests. Its node timeout is not the short one the cluster tests use to
/// watch failure detection: with ~170 tests sharing two cores, a shard of this process can
/// miss 500 ms of heartbeats, and info could then fail it over in the middle of a test.
pub(crate) async fn start(extra: &str) -> AllInOne {
    let dir = temp_dir("all-in-one");
    let conf = format!(
        "dir \"{}\"\nnode-timeout 2000\nwrite-shards 3\nread-replicas 1\nenable-debug-command yes\n{extra}",
        dir.display()
    );
    let config = Config::parse(&conf).expect("config");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let info_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (proxy, info) = (listener.local_addr().unwrap(), info_listener.local_addr().unwrap());
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        rust_edis::roles::all::run_with(config, listener, info_listener, rx).await.expect("role all");
    });
    let all = AllInOne { proxy, info, dir, _shutdown: tx, task };
    // Up once every slot has a shard with its read shard, and the proxy routes.
    let full = eventually(WAIT, || async {
        let s = slots(info).await;
        s.len() == 3 && s.iter().all(|r| r.3.len() == 1)
    })
    .await;
    assert!(full, "the map never filled: {:?}", slots(info).await);
    // (The proxy may not have the map yet: CLUSTERDOWN until it has.)
    let routes = eventually(WAIT, || async {
        let mut c = conn_to(proxy).await;
        matches!(cmd(&["SET", "warm", "1"]).query_async::<Value>(&mut c).await, Ok(Value::Okay))
    })
    .await;
    assert!(routes, "the proxy never routed a SET");
    all
}

async fn info_field(c: &mut MultiplexedConnection, section: &str, field: &str) -> u64 {
    let text: String = redis::cmd("INFO").arg(section).query_async(c).await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in INFO {section}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_calls_its_own_shards_without_connections() {
    let all = start("").await;
    let mut c = conn_to(all.proxy).await;
    // Writes and multi-key commands across the three shards.
    let mut mset = redis::cmd("MSET");
    for i in 0..300 {
        mset.arg(format!("k{i}")).arg(format!("v{i}"));
    }
    let _: () = mset.query_async(&mut c).await.unwrap();
    assert_eq!(q(&mut c, &["SET", "t", "x", "EX", "100"]).await, Value::Okay);
    assert_eq!(q(&mut c, &["INCR", "n"]).await, int(1));
    assert_eq!(q(&mut c, &["INCRBY", "n", "41"]).await, int(42));
    assert!(err(&mut c, &["INCR", "k1"]).await.starts_with("ERR value is not an integer"));
    assert!(err(&mut c, &["GET"]).await.starts_with("ERR wrong number of arguments for 'get'"));
    let ttl = q(&mut c, &["TTL", "t"]).await;
    assert!(matches!(ttl, Value::Int(t) if (99..=100).contains(&t)), "{ttl:?}");
    assert_eq!(q(&mut c, &["DEL", "k0", "k1", "k2", "nope"]).await, int(3));

    // Each key is held by the write shard owning its slot.
    let map = slots(all.info).await;
    for i in 3..300 {
        let key = format!("k{i}");
        let slot = key_slot(key.as_bytes()) as i64;
        let owner = map.iter().find(|r| r.0 <= slot && slot <= r.1).unwrap().2;
        let mut shard = conn_to(format!("127.0.0.1:{owner}").parse().unwrap()).await;
        let value: Option<String> = redis::cmd("GET").arg(&key).query_async(&mut shard).await.unwrap();
        assert_eq!(value.as_deref(), Some(format!("v{i}").as_str()), "{key} on the shard of slot {slot}");
    }

    // Reads go to the read shards once they have the data.
    let mut mget = redis::cmd("MGET");
    for i in 0..300 {
        mget.arg(format!("k{i}"));
    }
    let ready = eventually(WAIT, || async {
        let mut c = conn_to(all.proxy).await;
        let values: Vec<Option<String>> = mget.query_async(&mut c).await.unwrap();
        values.iter().skip(3).enumerate().all(|(i, v)| v.as_deref() == Some(format!("v{}", i + 3).as_str()))
    })
    .await;
    assert!(ready, "MGET through the proxy never returned every value");
    for i in 3..300 {
        assert_eq!(q(&mut c, &["GET", &format!("k{i}")]).await, bulk(&format!("v{i}")));
    }
    for (_, _, primary, replicas) in &map {
        let mut r = conn_to(format!("127.0.0.1:{}", replicas[0]).parse().unwrap()).await;
        let hits = info_field(&mut r, "stats", "keyspace_hits").await;
        assert!(hits >= 50, "read shard {} served {hits} hits", replicas[0]);
        // No connection from the proxy: only the read shard's replication link and this
        // test's own connection are clients of the write shard.
        let mut p = conn_to(format!("127.0.0.1:{primary}").parse().unwrap()).await;
        let clients = info_field(&mut p, "clients", "connected_clients").await;
        assert!(clients <= 2, "write shard {primary} has {clients} clients: the proxy used TCP");
    }

    // RESP3 through the proxy: its own encoding of the shards' replies.
    let mut raw = Raw::connect(all.proxy).await;
    assert!(raw.call(&resp(&["HELLO", "3"])).await.starts_with('%'));
    assert_eq!(raw.call(&resp(&["GET", "missing"])).await, "_\r\n");
    assert_eq!(raw.call(&resp(&["GET", "k5"])).await, "$2\r\nv5\r\n");
    assert_eq!(raw.call(&resp(&["INCR", "k5"])).await, "-ERR value is not an integer or out of range\r\n");
}

/// A client's pipeline keeps its order across the kinds of routing: a fan-out (FLUSHALL,
/// DBSIZE) or a transaction, then keyed commands right behind it on the same shards. (With
/// READWRITE: reads from read shards may lag behind the client's own writes.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelines_keep_their_order_across_fan_outs_and_transactions() {
    let all = start("").await;
    let mut c = conn_to(all.proxy).await;
    assert_eq!(q(&mut c, &["READWRITE"]).await, Value::Okay);
    for round in 0..20 {
        let key = format!("p{round}");
        let (_, _, get, dbsize, _, queued, exec, after): ((), (), String, i64, (), String, Vec<i64>, i64) =
            redis::pipe()
                .cmd("SET")
                .arg(&key)
                .arg(1)
                .cmd("FLUSHALL")
                .cmd("SET")
                .arg(&key)
                .arg(10)
                .ignore()
                .cmd("GET")
                .arg(&key)
                .cmd("DBSIZE")
                .cmd("MULTI")
                .cmd("INCR")
                .arg(&key)
                .cmd("EXEC")
                .cmd("INCR")
                .arg(&key)
                .query_async(&mut c)
                .await
                .unwrap();
        assert_eq!((get.as_str(), queued.as_str()), ("10", "QUEUED"), "round {round}");
        assert_eq!(dbsize, 1, "round {round}: DBSIZE saw the key set after FLUSHALL only");
        assert_eq!(exec, vec![11], "round {round}");
        assert_eq!(after, 12, "round {round}: INCR ran after the transaction");
    }
}

/// `--role all --requirepass`: every port the process opens asks for the password, and the
/// cluster inside still forms (its members authenticate with the cluster secret).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_guards_every_port() {
    let dir = temp_dir("all-pw");
    let conf = format!("dir \"{}\"\nnode-timeout 2000\nwrite-shards 3\nrequirepass secret\n", dir.display());
    let config = Config::parse(&conf).expect("config");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let info_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (proxy, info) = (listener.local_addr().unwrap(), info_listener.local_addr().unwrap());
    let (_tx, rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        rust_edis::roles::all::run_with(config, listener, info_listener, rx).await.expect("role all");
    });
    let authed = |addr: std::net::SocketAddr| async move {
        let url = format!("redis://:secret@{addr}/");
        multiplexed(&url).await
    };
    let served = eventually(WAIT, || async {
        let mut c = authed(proxy).await;
        redis::cmd("SET").arg("k").arg("v").query_async::<Value>(&mut c).await.is_ok_and(|v| v == Value::Okay)
    })
    .await;
    assert!(served, "the proxy serves with the password");
    let nodes_of = || async {
        redis::cmd("CLUSTER").arg("NODES").query_async::<String>(&mut authed(info).await).await.unwrap()
    };
    assert!(eventually(WAIT, || async { nodes_of().await.lines().count() == 6 }).await);
    let nodes = nodes_of().await;
    let mut ports: Vec<u16> = nodes
        .lines()
        .map(|l| l.split(' ').nth(1).unwrap().split(['@', ':']).nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(ports.len(), 6, "{nodes}");
    ports.extend([info.port(), proxy.port()]);
    for port in ports {
        let mut raw = Raw::connect(([127, 0, 0, 1], port).into()).await;
        for cmd in [
            &["GET", "k"][..],
            &["SET", "k", "x"],
            &["CONFIG", "GET", "requirepass"],
            &["CONFIG", "SET", "requirepass", ""],
        ] {
            assert_eq!(
                raw.call(&resp(cmd)).await,
                "-NOAUTH Authentication required.\r\n",
                "port {port}: {cmd:?}"
            );
        }
    }
    let mut c = authed(proxy).await;
    assert_eq!(q(&mut c, &["GET", "k"]).await, bulk("v"), "nothing was overwritten");
    task.abort();
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_counts_the_data_once_and_evictions_show_at_the_proxy() {
    let all = start("").await;
    let mut c = conn_to(all.proxy).await;
    // One read shard per write shard: two copies of the data in the process, counted once.
    let text: String = redis::cmd("INFO").arg("memory").query_async(&mut c).await.unwrap();
    let field = |name: &str| -> u64 {
        text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.parse().ok()).unwrap()
    };
    let (used, process) = (field("used_memory"), field("used_memory_process"));
    // Big values a read shard shares with its primary count twice in the share; another
    // test of this process may hold some (under 1 MB).
    assert!(
        used > 0 && (process / 2..process / 2 + (1 << 20)).contains(&used),
        "used_memory {used}, process {process}"
    );
    // A limit under anything a process holds: every write evicts, in the write shards, and
    // INFO through the proxy counts what they evicted.
    for i in 0..30 {
        q(&mut c, &["SET", &format!("e{i}"), "x"]).await;
    }
    q(&mut c, &["CONFIG", "SET", "maxmemory", "1", "maxmemory-policy", "allkeys-random"]).await;
    for i in 0..30 {
        // Refused (OOM) once a shard has nothing left to evict.
        let _: redis::RedisResult<Value> = cmd(&["SET", &format!("f{i}"), "x"]).query_async(&mut c).await;
    }
    let evicted = info_field(&mut c, "stats", "evicted_keys").await;
    q(&mut c, &["CONFIG", "SET", "maxmemory", "0"]).await;
    assert!(evicted >= 20, "evicted_keys through the proxy: {evicted}");
    assert_eq!(info_field(&mut c, "all", "evicted_keys").await, evicted, "INFO all sums them too");
    // INFO stats alone gains no keyspace section.
    let stats: String = redis::cmd("INFO").arg("stats").query_async(&mut c).await.unwrap();
    assert!(!stats.contains("# Keyspace"), "{stats}");
}

async fn get_bytes(c: &mut MultiplexedConnection, key: &str) -> Option<Vec<u8>> {
    redis::cmd("GET").arg(key).query_async(c).await.unwrap()
}

/// Big values through the proxy: the write shard keeps the buffer they arrived in, and its
/// read shard (in this process) takes the same bytes from the primary's backlog, checked
/// against the stream. Both read back exactly what was sent, through every change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_values_reach_the_read_shards_of_this_process() {
    let all = start("").await;
    let mut c = conn_to(all.proxy).await;
    let big: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
    let mut raw = Raw::connect(all.proxy).await;
    raw.send_in_pieces(&[&[b"SET", b"{t}a", &big]], 16 * 1024).await;
    assert_eq!(raw.reply().await, "+OK\r\n");
    let _: () = redis::cmd("SET")
        .arg("{t}b")
        .arg(&big[..300_000])
        .arg("EX")
        .arg(1000)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(get_bytes(&mut c, "{t}a").await.as_deref(), Some(&big[..]));

    let slot = key_slot(b"{t}") as i64;
    let map = slots(all.info).await;
    let (_, _, primary, replicas) = map.iter().find(|r| r.0 <= slot && slot <= r.1).unwrap();
    let p = conn_to(format!("127.0.0.1:{primary}").parse().unwrap()).await;
    let r = conn_to(format!("127.0.0.1:{}", replicas[0]).parse().unwrap()).await;
    let same = |want: Option<Vec<u8>>, key: &'static str| {
        let r = r.clone();
        async move {
            eventually(WAIT, || {
                let (mut r, want) = (r.clone(), want.clone());
                async move { get_bytes(&mut r, key).await == want }
            })
            .await
        }
    };
    assert!(same(Some(big.clone()), "{t}a").await, "the read shard never had {{t}}a");
    assert!(same(Some(big[..300_000].to_vec()), "{t}b").await, "the read shard never had {{t}}b");
    // It holds the primary's bytes, not a copy of them.
    let borrowed = rust_edis::alloc::borrowed();
    assert!(borrowed >= 900_000, "the read shard shares {borrowed} bytes with its primary");
    let Value::Int(ttl) = q(&mut r.clone(), &["TTL", "{t}b"]).await else { panic!() };
    assert!(ttl > 990);
    assert_eq!(q(&mut c, &["APPEND", "{t}a", "!"]).await, int(600_001));
    let mut appended = big.clone();
    appended.push(b'!');
    assert!(same(Some(appended), "{t}a").await, "APPEND never reached the read shard");
    let digests = eventually(WAIT, || {
        let (mut p, mut r) = (p.clone(), r.clone());
        async move { q(&mut p, &["DEBUG", "DIGEST"]).await == q(&mut r, &["DEBUG", "DIGEST"]).await }
    })
    .await;
    assert!(digests, "the read shard's data differs from its primary's");
    assert_eq!(q(&mut c, &["DEL", "{t}a", "{t}b"]).await, int(2));
    assert!(same(None, "{t}a").await && same(None, "{t}b").await, "DEL never reached the read shard");
}
