//! The proxy in front of a cluster: routing to owners, split and merged multi-key commands,
//! pipelines in order, reads spread over read shards, faults, growth, and clients that
//! speak cluster.

use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::Value;
use rust_edis::topology::key_slot;

use crate::cluster::{conn_to, covers_all, slots, start_node, Cluster, Kind, Node, SECRET, WAIT};
use crate::harness::*;

/// A cluster of 3 write shards with `reads` read shards each, and a proxy in front.
pub(crate) async fn cluster_with_proxy(reads: usize, proxy_conf: &str) -> (Cluster, Node) {
    let mut cluster = Cluster::start(3).await;
    for _ in 0..3 * reads {
        cluster.add_read().await;
    }
    let want = |s: &[(i64, i64, u16, Vec<u16>)]| covers_all(s) && s.iter().all(|r| r.3.len() == reads);
    assert!(eventually(WAIT, || async { want(&slots(cluster.info.addr).await) }).await);
    cluster.wait_write_views().await;
    // Listed is not enough: each read shard must have synced before it serves reads.
    for w in &cluster.writes {
        let n = reads.to_string();
        assert_eq!(
            q(&mut conn_to(w.addr).await, &["WAIT", &n, "5000"]).await,
            int(reads as i64),
            "replicas of {}",
            w.addr
        );
    }
    let proxy =
        start_node(Kind::Proxy, cluster.base.join("proxy"), Some(cluster.info.addr), proxy_conf).await;
    // Ready once it routes: a write reaches a shard.
    let ready = eventually(WAIT, || async {
        let mut c = conn_to(proxy.addr).await;
        redis::cmd("SET")
            .arg("ready")
            .arg(1)
            .query_async::<Value>(&mut c)
            .await
            .is_ok_and(|v| v == Value::Okay)
    })
    .await;
    assert!(ready, "proxy never routed a write");
    (cluster, proxy)
}

/// The write shard (as a connection) that owns `key`.
async fn owner(cluster: &Cluster, key: &str) -> MultiplexedConnection {
    let map = slots(cluster.info.addr).await;
    let slot = key_slot(key.as_bytes()) as i64;
    let port = map.iter().find(|r| r.0 <= slot && slot <= r.1).unwrap().2;
    let w = cluster.writes.iter().find(|w| w.addr.port() == port).unwrap();
    conn_to(w.addr).await
}

pub(crate) async fn stat(c: &mut MultiplexedConnection, name: &str) -> i64 {
    let info: String = redis::cmd("INFO").arg("stats").query_async(c).await.unwrap();
    info.lines().find_map(|l| l.strip_prefix(&format!("{name}:"))).unwrap().trim().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_land_on_their_owners_and_multi_key_commands_merge() {
    let (cluster, proxy) = cluster_with_proxy(1, "read-from primary\n").await;
    // 10,000 random keys from four concurrent connections, pipelined.
    let mut writers = Vec::new();
    for w in 0..4u64 {
        let mut c = conn_to(proxy.addr).await;
        writers.push(tokio::spawn(async move {
            let mut x = 0xC0FFEEu64 + w;
            for _ in 0..10 {
                let mut pipe = redis::pipe();
                for _ in 0..250 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    pipe.cmd("SET").arg(format!("rk:{w}:{x}")).arg(x);
                }
                let _: () = pipe.query_async(&mut c).await.unwrap();
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let mut p = conn_to(proxy.addr).await;
    assert_eq!(q(&mut p, &["DBSIZE"]).await, int(10_001), "DBSIZE sums the shards (plus 'ready')");
    let keys: Vec<String> = redis::cmd("KEYS").arg("rk:*").query_async(&mut p).await.unwrap();
    assert_eq!(keys.len(), 10_000);
    // Each key is on the shard that owns its slot, and nowhere else.
    let mut per_shard = std::collections::HashMap::new();
    for key in keys.iter().step_by(7) {
        let mut o = owner(&cluster, key).await;
        let Value::BulkString(_) = q(&mut o, &["GET", key]).await else { panic!("{key} not on its owner") };
        *per_shard.entry(key_slot(key.as_bytes()) * 3 / 16384).or_insert(0) += 1;
    }
    assert_eq!(per_shard.len(), 3);
    let mut total = 0;
    for w in &cluster.writes {
        let Value::Int(n) = q(&mut conn_to(w.addr).await, &["DBSIZE"]).await else { panic!() };
        total += n;
    }
    assert_eq!(total, 10_001);

    // MGET of 100 keys over all shards: values in key order, nil where missing.
    let mut mget = redis::cmd("MGET");
    let mut expected = Vec::new();
    for (i, key) in keys.iter().take(100).enumerate() {
        if i % 10 == 9 {
            mget.arg(format!("missing:{i}"));
            expected.push(Value::Nil);
        } else {
            mget.arg(key);
            expected.push(q(&mut owner(&cluster, key).await, &["GET", key]).await);
        }
    }
    let got: Value = mget.query_async(&mut p).await.unwrap();
    assert_eq!(got, Value::Array(expected));
    // MSET, DEL, EXISTS, UNLINK, TOUCH across shards: all-OK and sums.
    assert_eq!(q(&mut p, &["MSET", "a", "1", "b", "2", "c", "3", "foo", "4"]).await, Value::Okay);
    assert_eq!(q(&mut p, &["EXISTS", "a", "b", "c", "foo", "nope", "a"]).await, int(5));
    assert_eq!(q(&mut p, &["TOUCH", "a", "b"]).await, int(2));
    assert_eq!(q(&mut p, &["DEL", "a", "b", "nope"]).await, int(2));
    assert_eq!(q(&mut p, &["UNLINK", "c", "foo"]).await, int(2));
    assert_eq!(
        err(&mut p, &["MSET", "a", "1", "b"]).await,
        "ERR wrong number of arguments for 'mset' command"
    );
    assert_eq!(
        err(&mut p, &["MSETNX", "a", "1", "b", "2"]).await,
        "CROSSSLOT Keys in request don't hash to the same slot"
    );
    // SCAN walks every shard; the cursor says where it is.
    let mut seen = std::collections::HashSet::new();
    let mut cursor = "0".to_string();
    for _ in 0..10_000 {
        let (next, batch): (String, Vec<String>) = redis::cmd("SCAN")
            .arg(&cursor)
            .arg("MATCH")
            .arg("rk:*")
            .arg("COUNT")
            .arg(500)
            .query_async(&mut p)
            .await
            .unwrap();
        seen.extend(batch);
        cursor = next;
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 10_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_of_5000_mixed_commands_answers_in_order() {
    let (_cluster, proxy) = cluster_with_proxy(1, "read-from primary\n").await;
    let mut p = conn_to(proxy.addr).await;
    let mut pipe = redis::pipe();
    let mut expected = Vec::new();
    let mut model = std::collections::HashMap::<String, i64>::new();
    let mut x = 7u64;
    for i in 0..5000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let key = format!("p{}", x % 300);
        match i % 5 {
            0 => {
                pipe.cmd("SET").arg(&key).arg(i);
                model.insert(key, i);
                expected.push(Value::Okay);
            }
            1 => {
                pipe.cmd("GET").arg(&key);
                expected.push(model.get(&key).map_or(Value::Nil, |v| bulk(&v.to_string())));
            }
            2 => {
                pipe.cmd("INCR").arg(&key);
                let v = model.entry(key).or_insert(0);
                *v += 1;
                expected.push(int(*v));
            }
            3 => {
                let other = format!("p{}", (x >> 9) % 300);
                pipe.cmd("MGET").arg(&key).arg(&other);
                let get = |k: &String| model.get(k).map_or(Value::Nil, |v| bulk(&v.to_string()));
                expected.push(Value::Array(vec![get(&key), get(&other)]));
            }
            _ => {
                pipe.cmd("DEL").arg(&key);
                expected.push(int(model.remove(&key).is_some() as i64));
            }
        }
    }
    let replies: Vec<Value> = pipe.query_async(&mut p).await.unwrap();
    assert_eq!(replies.len(), 5000);
    for (i, (got, want)) in replies.iter().zip(&expected).enumerate() {
        assert_eq!(got, want, "reply {i}");
    }
}

pub(crate) async fn read_hits(nodes: &[Node]) -> Vec<i64> {
    let mut out = Vec::new();
    for n in nodes {
        let mut c = conn_to(n.addr).await;
        out.push(stat(&mut c, "keyspace_hits").await + stat(&mut c, "keyspace_misses").await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_spread_over_read_shards_unless_told_otherwise() {
    let (cluster, proxy) = cluster_with_proxy(2, "").await;
    let mut p = conn_to(proxy.addr).await;
    for i in 0..100 {
        q(&mut p, &["SET", &format!("r{i}"), "v"]).await;
    }
    let before = read_hits(&cluster.reads).await;
    for i in 0..1000 {
        q(&mut p, &["GET", &format!("r{}", i % 100)]).await;
    }
    let after = read_hits(&cluster.reads).await;
    let served: Vec<i64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    assert!(served.iter().all(|&n| n > 0), "every read shard served reads: {served:?}");
    assert_eq!(served.iter().sum::<i64>(), 1000);

    // READWRITE on a connection: read-your-writes from the primaries; none reach replicas.
    q(&mut p, &["READWRITE"]).await;
    for i in 0..200 {
        q(&mut p, &["GET", &format!("r{}", i % 100)]).await;
    }
    assert_eq!(read_hits(&cluster.reads).await, after);
    drop(proxy);

    let primary_only =
        start_node(Kind::Proxy, cluster.base.join("proxy2"), Some(cluster.info.addr), "read-from primary\n")
            .await;
    let mut p = conn_to(primary_only.addr).await;
    // Until its first map arrives a proxy answers CLUSTERDOWN; poll past that.
    let routed = eventually(WAIT, || {
        let mut p = p.clone();
        async move { redis::cmd("GET").arg("r1").query_async::<Value>(&mut p).await.ok() == Some(bulk("v")) }
    })
    .await;
    assert!(routed);
    let before = read_hits(&cluster.reads).await;
    for i in 0..1000 {
        q(&mut p, &["GET", &format!("r{}", i % 100)]).await;
    }
    assert_eq!(read_hits(&cluster.reads).await, before, "--read-from primary: no read reaches a read shard");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_write_shard_fails_fast_and_comes_back() {
    let (mut cluster, proxy) = cluster_with_proxy(0, "").await;
    let mut p = conn_to(proxy.addr).await;
    let map = slots(cluster.info.addr).await;
    let key_on = |port: u16| {
        let range = map.iter().find(|r| r.2 == port).unwrap().clone();
        (0..10_000).map(|i| format!("k{i}")).find(move |k| {
            let s = key_slot(k.as_bytes()) as i64;
            range.0 <= s && s <= range.1
        })
    };
    let victim = cluster.writes.remove(1);
    let (dead_key, live_key) =
        (key_on(victim.addr.port()).unwrap(), key_on(cluster.writes[0].addr.port()).unwrap());
    q(&mut p, &["SET", &dead_key, "x"]).await;
    let (dir, addr) = (victim.dir.clone(), victim.addr);
    drop(victim);
    // Aborting is asynchronous: wait until the shard is really gone before timing the error.
    let gone = eventually(WAIT, || async { tokio::net::TcpStream::connect(addr).await.is_err() }).await;
    assert!(gone);
    let started = Instant::now();
    let mut e = err(&mut p, &["SET", &dead_key, "y"]).await;
    if e.starts_with("UNCERTAIN") && e.contains("connection lost") {
        // The proxy's connection to the shard had not yet seen it close when this went out:
        // sent, then lost, and honestly reported so. The next one knows the shard is down.
        e = err(&mut p, &["SET", &dead_key, "y"]).await;
    }
    assert!(e.starts_with("CLUSTERDOWN"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(2), "error within 2 s, took {:?}", started.elapsed());
    let e = err(&mut p, &["GET", &dead_key]).await;
    assert!(e.starts_with("CLUSTERDOWN"), "{e}");
    assert_eq!(q(&mut p, &["SET", &live_key, "ok"]).await, Value::Okay, "other shards keep serving");
    // Restarted with the same identity: its slots are served again, no proxy restart.
    let back = start_node(Kind::Write, dir, Some(cluster.info.addr), "").await;
    let served = eventually(WAIT, || {
        let mut p = p.clone();
        let k = dead_key.clone();
        async move {
            matches!(redis::cmd("SET").arg(&k).arg("z").query_async::<Value>(&mut p).await, Ok(Value::Okay))
        }
    })
    .await;
    assert!(served);
    assert_eq!(q(&mut p, &["GET", &dead_key]).await, bulk("z"));
    cluster.writes.push(back);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_read_shards_are_invisible_and_new_ones_are_used() {
    let (mut cluster, proxy) = cluster_with_proxy(1, "").await;
    let mut p = conn_to(proxy.addr).await;
    for i in 0..100 {
        q(&mut p, &["SET", &format!("d{i}"), i.to_string().as_str()]).await;
    }
    for w in &cluster.writes {
        assert_eq!(q(&mut conn_to(w.addr).await, &["WAIT", "1", "5000"]).await, int(1));
    }
    // Kill one read shard: its reads go elsewhere with no error seen by the client.
    drop(cluster.reads.remove(0));
    for i in 0..300 {
        assert_eq!(q(&mut p, &["GET", &format!("d{}", i % 100)]).await, bulk(&(i % 100).to_string()));
    }
    // Add read shards while traffic flows: the proxy starts using them, no restart.
    let traffic = {
        let mut p = p.clone();
        tokio::spawn(async move {
            for i in 0..3000 {
                let v: Value =
                    redis::cmd("GET").arg(format!("d{}", i % 100)).query_async(&mut p).await.unwrap();
                assert_ne!(v, Value::Nil);
            }
        })
    };
    let first_new = cluster.reads.len();
    for _ in 0..3 {
        cluster.add_read().await;
    }
    let new = &cluster.reads[first_new..];
    let used = eventually(WAIT, || async {
        for i in 0..30 {
            q(&mut p.clone(), &["GET", &format!("d{}", i % 100)]).await;
        }
        read_hits(new).await.iter().any(|&n| n > 0)
    })
    .await;
    assert!(used, "a read shard added under traffic gets reads");
    traffic.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_clients_and_the_routing_client() {
    let (cluster, proxy) = cluster_with_proxy(1, "").await;
    // The redis crate's cluster client, seeded with the proxy, sees one node owning all slots.
    let client = redis::cluster::ClusterClient::new(vec![format!("redis://{}/", proxy.addr)]).unwrap();
    let mut c = client.get_async_connection().await.unwrap();
    for i in 0..200 {
        let _: () = redis::cmd("SET").arg(format!("cc{i}")).arg(i).query_async(&mut c).await.unwrap();
    }
    for i in 0..200 {
        let v: i64 = redis::cmd("GET").arg(format!("cc{i}")).query_async(&mut c).await.unwrap();
        assert_eq!(v, i);
    }
    let mut p = conn_to(proxy.addr).await;
    let Value::Array(ranges) = q(&mut p, &["CLUSTER", "SLOTS"]).await else { panic!() };
    assert_eq!(ranges.len(), 1);

    // rust-edis client, no proxy: SET then GET through the shards.
    let bin = env!("CARGO_BIN_EXE_rust-edis");
    let info = cluster.info.addr.to_string();
    let secret_file = cluster.base.join("client.secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let secret_file = secret_file.display().to_string();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(bin)
            .arg("client")
            .args(["--info", &info, "--cluster-secret-file", &secret_file])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(run(&["SET", "via-client", "hello"]), "OK\n");
    let mut o = owner(&cluster, "via-client").await;
    assert_eq!(q(&mut o, &["GET", "via-client"]).await, bulk("hello"), "written to the owning shard");
    assert_eq!(q(&mut o, &["WAIT", "1", "5000"]).await, int(1));
    assert_eq!(run(&["GET", "via-client"]), "hello\n");
    assert_eq!(run(&["MGET", "cc1", "via-client", "nope"]), "1\nhello\n\n");
    // Collections and {tag}ged multi-key commands route the same way.
    assert_eq!(run(&["HSET", "{u}h", "f", "v"]), "1\n");
    assert_eq!(run(&["HGETALL", "{u}h"]), "f\nv\n");
    assert_eq!(run(&["SADD", "{u}s", "a", "b"]), "2\n");
    assert_eq!(run(&["SINTERSTORE", "{u}d", "{u}s", "{u}s"]), "2\n");
    assert_eq!(run(&["ZADD", "{u}z", "1.5", "m"]), "1\n");
    assert_eq!(run(&["ZRANGE", "{u}z", "0", "-1", "WITHSCORES"]), "m\n1.5\n");
    assert!(run(&["SUNION", "{a}x", "{b}y"]).starts_with("CROSSSLOT"));
    // One session over piped lines: MULTI queues, DISCARD undoes, EXEC runs on the key's
    // shard, keys of two slots abort the transaction, WATCH sees its own session's view.
    let script = "SET {t}a 1\nMULTI\nINCR {t}a\nDISCARD\nGET {t}a\nMULTI\nINCR {t}a\nSET other 1\nEXEC\n\
                  MULTI\nINCR {t}a\nINCR {t}a\nEXEC\nWATCH {t}a\nMULTI\nSET {t}a 9\nEXEC\nGET {t}a\nhelp incr\nquit\nPING\n";
    let mut child = std::process::Command::new(bin)
        .args(["client", "--info", &info, "--cluster-secret-file", &secret_file])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let expected = "OK\nOK\nQUEUED\nOK\n1\nOK\nQUEUED\nCROSSSLOT Keys in request don't hash to the same slot\n\
                    EXECABORT Transaction discarded because of previous errors.\nOK\nQUEUED\nQUEUED\n2\n3\nOK\nOK\nQUEUED\nOK\n9\n";
    assert!(text.starts_with(expected), "{text}");
    assert!(text.contains("INCR key") && text.contains("group: string") && !text.contains("PONG"), "{text}");
    let unreachable = std::process::Command::new(bin)
        .args(["client", "--info", "127.0.0.1:1", "--cluster-secret-file", &secret_file, "PING"])
        .output()
        .unwrap();
    assert!(!unreachable.status.success());
    assert!(String::from_utf8_lossy(&unreachable.stderr).contains("Could not read the cluster map"));
    // Without the secret the client cannot be a member, and says how to give it.
    let empty = temp_dir("client-cwd");
    let no_secret = std::process::Command::new(bin)
        .current_dir(&empty)
        .args(["client", "--info", &info, "PING"])
        .output()
        .unwrap();
    assert!(!no_secret.status.success());
    assert!(String::from_utf8_lossy(&no_secret.stderr).contains("--cluster-secret-file"), "{no_secret:?}");
    std::fs::write(empty.join("wrong"), "not-the-secret\n").unwrap();
    let wrong = std::process::Command::new(bin)
        .args(["client", "--info", &info, "--cluster-secret-file"])
        .arg(empty.join("wrong"))
        .arg("PING")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("WRONGPASS"), "{wrong:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_password_and_shard_credentials() {
    let (cluster, _open) = cluster_with_proxy(0, "").await;
    // Shards that require a password of clients, and a proxy that asks its own: the proxy
    // authenticates to shards as a cluster member, so it needs neither shard password.
    for w in &cluster.writes {
        q(&mut conn_to(w.addr).await, &["CONFIG", "SET", "requirepass", "shardpw"]).await;
    }
    let proxy = start_node(
        Kind::Proxy,
        cluster.base.join("proxy-auth"),
        Some(cluster.info.addr),
        "requirepass clientpw\nread-from primary\n",
    )
    .await;
    let mut raw = Raw::connect(proxy.addr).await;
    assert_eq!(raw.call(&resp(&["GET", "k"])).await, "-NOAUTH Authentication required.\r\n");
    assert_eq!(
        raw.call(&resp(&["AUTH", "shardpw"])).await,
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(raw.call(&resp(&["AUTH", "clientpw"])).await, "+OK\r\n");
    let routed = eventually(WAIT, || async {
        let mut r = Raw::connect(proxy.addr).await;
        r.call(&resp(&["AUTH", "clientpw"])).await;
        r.call(&resp(&["SET", "k", "v"])).await == "+OK\r\n"
    })
    .await;
    assert!(routed, "the proxy authenticates to the shards");
    assert_eq!(raw.call(&resp(&["GET", "k"])).await, "$1\r\nv\r\n");
    assert_eq!(raw.call(&resp(&["MSET", "a", "1", "b", "2", "c", "3"])).await, "+OK\r\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_follow_the_clients_protocol() {
    let (_cluster, proxy) = cluster_with_proxy(0, "").await;
    let mut raw = Raw::connect(proxy.addr).await;
    raw.call(&resp(&["SET", "k", "v"])).await;
    // RESP2: the shard's bytes pass through as they are.
    assert_eq!(raw.call(&resp(&["GET", "nokey"])).await, "$-1\r\n");
    assert_eq!(raw.call(&resp(&["GET", "k"])).await, "$1\r\nv\r\n");
    assert_eq!(raw.call(&resp(&["INCR", "k"])).await, "-ERR value is not an integer or out of range\r\n");
    // RESP3: re-encoded for the client.
    assert!(raw.call(&resp(&["HELLO", "3"])).await.starts_with('%'));
    assert_eq!(raw.call(&resp(&["GET", "nokey"])).await, "_\r\n");
    assert_eq!(raw.call(&resp(&["MGET", "k", "nokey"])).await, "*2\r\n$1\r\nv\r\n_\r\n");
}

/// A write shard's OOM error reaches the client as the shard gave it, for a routed command and
/// for a multi-key one split across shards; reads and DEL still go through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oom_errors_pass_through_the_proxy_unchanged() {
    let (_cluster, proxy) = cluster_with_proxy(0, "read-from primary\n").await;
    let mut raw = Raw::connect(proxy.addr).await;
    assert_eq!(raw.call(&resp(&["SET", "kept", "v"])).await, "+OK\r\n");
    // A limit under what any process holds: every write shard is full.
    assert_eq!(
        raw.call(&resp(&["CONFIG", "SET", "maxmemory", "1", "maxmemory-policy", "noeviction"])).await,
        "+OK\r\n"
    );
    const OOM: &str = "-OOM command not allowed when used memory > 'maxmemory'.\r\n";
    assert_eq!(raw.call(&resp(&["SET", "k", "v"])).await, OOM);
    assert_eq!(raw.call(&resp(&["MSET", "a", "1", "b", "2", "c", "3"])).await, OOM);
    assert_eq!(raw.call(&resp(&["LPUSH", "l", "x"])).await, OOM);
    assert_eq!(raw.call(&resp(&["GET", "kept"])).await, "$1\r\nv\r\n");
    assert_eq!(raw.call(&resp(&["DEL", "kept"])).await, ":1\r\n");
    assert_eq!(raw.call(&resp(&["CONFIG", "SET", "maxmemory", "0"])).await, "+OK\r\n");
    assert_eq!(raw.call(&resp(&["SET", "k", "v"])).await, "+OK\r\n");
}
