//! Hashes, sets, sorted sets and lists: through every entry point, replicated to a read shard, persisted, and
//! exchanged with redis-server 7.0 both ways (its replica, its dump.rdb, DUMP/RESTORE, our
//! replica of it). Values are compared key by key, encodings included.

use std::collections::BTreeMap;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::Value;

use crate::cluster::{conn_to, slots, Cluster, WAIT};
use crate::harness::*;

/// Every kind of hash and set, in each encoding: a listpack hash, hashes past the entries and
/// the value rules, an intset, an intset past its size rule, a set of strings; with a TTL on
/// one. Keys share the hash tag {t}, so a cluster keeps them on one shard.
async fn fill(c: &mut MultiplexedConnection) {
    q(c, &["HSET", "{t}h:small", "a", "1", "b", "two", "n", "-7", "big", "9223372036854775807"]).await;
    let mut wide = redis::cmd("HSET");
    wide.arg("{t}h:wide");
    for i in 0..600 {
        wide.arg(format!("field:{i}")).arg(i * 3);
    }
    let _: i64 = wide.query_async(c).await.unwrap();
    q(c, &["HSET", "{t}h:long", "f", &"x".repeat(100), "g", "1"]).await;
    q(c, &["SADD", "{t}s:ints", "5", "-3", "70000", "-5000000000", "0"]).await;
    let mut many = redis::cmd("SADD");
    many.arg("{t}s:many");
    for i in 0..600 {
        many.arg(i * 7);
    }
    let _: i64 = many.query_async(c).await.unwrap();
    q(c, &["SADD", "{t}s:words", "apple", "banana", "1", "cherry"]).await;
    q(c, &["ZADD", "{t}z:small", "1", "a", "2.5", "b", "-inf", "low", "inf", "high", "0.1", "tenth"]).await;
    let mut big = redis::cmd("ZADD");
    big.arg("{t}z:big");
    for i in 0..300 {
        big.arg(i as f64 / 7.0).arg(format!("member:{i}"));
    }
    let _: i64 = big.query_async(c).await.unwrap();
    q(c, &["RPUSH", "{t}l:small", "a", "b", "1", "-5", "9223372036854775807", "b"]).await;
    // Past one 8 KB node: several listpacks, with a long element and integers among them.
    let mut list = redis::cmd("RPUSH");
    list.arg("{t}l:big");
    for i in 0..1500 {
        list.arg(if i % 100 == 7 { format!("{i}:{}", "y".repeat(300)) } else { format!("{}", i * 11) });
    }
    let _: i64 = list.query_async(c).await.unwrap();
    q(c, &["LPUSH", "{t}l:big", "head"]).await;
    q(c, &["SET", "{t}str", "plain"]).await;
    // A bitmap, and HyperLogLogs in both encodings (their bytes compared: Redis's layout).
    q(c, &["SETBIT", "{t}bits", "1000", "1"]).await;
    q(c, &["BITFIELD", "{t}bits", "SET", "i16", "#3", "-300"]).await;
    let mut sparse = redis::cmd("PFADD");
    sparse.arg("{t}hll:sparse");
    (0..50).for_each(|i| {
        sparse.arg(format!("a{i}"));
    });
    let _: i64 = sparse.query_async(c).await.unwrap();
    let mut dense = redis::cmd("PFADD");
    dense.arg("{t}hll:dense");
    (0..5000).for_each(|i| {
        dense.arg(format!("b{i}"));
    });
    let _: i64 = dense.query_async(c).await.unwrap();
    // Counted once: the cached count is part of the bytes (and replicated with them).
    let _: i64 = redis::cmd("PFCOUNT").arg("{t}hll:dense").query_async(c).await.unwrap();
    let _: i64 = redis::cmd("PFCOUNT").arg("{t}hll:sparse").query_async(c).await.unwrap();
    q(c, &["PEXPIRE", "{t}h:small", "1000000"]).await;
    q(c, &["PEXPIRE", "{t}l:small", "1000000"]).await;
}

const KEYS: [&str; 14] = [
    "{t}h:small",
    "{t}h:wide",
    "{t}h:long",
    "{t}s:ints",
    "{t}s:many",
    "{t}s:words",
    "{t}z:small",
    "{t}z:big",
    "{t}l:small",
    "{t}l:big",
    "{t}str",
    "{t}bits",
    "{t}hll:sparse",
    "{t}hll:dense",
];

/// Each key's type, encoding and contents (sorted), and whether it has a TTL.
async fn contents(c: &mut MultiplexedConnection) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for key in KEYS {
        let kind: String = redis::cmd("TYPE").arg(key).query_async(c).await.unwrap();
        let encoding: Option<String> =
            redis::cmd("OBJECT").arg("ENCODING").arg(key).query_async(c).await.unwrap();
        let mut items: Vec<String> = match kind.as_str() {
            "hash" => {
                let pairs: Vec<(String, String)> =
                    redis::cmd("HGETALL").arg(key).query_async(c).await.unwrap();
                pairs.into_iter().map(|(f, v)| format!("{f}={v}")).collect()
            }
            "set" => redis::cmd("SMEMBERS").arg(key).query_async(c).await.unwrap(),
            "zset" => {
                // Order matters here: ZRANGE's, scores as the server prints them.
                let pairs: Vec<(String, String)> = redis::cmd("ZRANGE")
                    .arg(key)
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES")
                    .query_async(c)
                    .await
                    .unwrap();
                let rank: Option<i64> =
                    redis::cmd("ZRANK").arg(key).arg("member:150").query_async(c).await.unwrap();
                let mut v: Vec<String> =
                    pairs.into_iter().enumerate().map(|(i, (m, s))| format!("{i:04}:{m}={s}")).collect();
                v.push(format!("rank:{rank:?}"));
                v
            }
            "list" => {
                let all: Vec<String> =
                    redis::cmd("LRANGE").arg(key).arg(0).arg(-1).query_async(c).await.unwrap();
                let middle: Option<String> =
                    redis::cmd("LINDEX").arg(key).arg(-700).query_async(c).await.unwrap();
                let mut v: Vec<String> =
                    all.into_iter().enumerate().map(|(i, e)| format!("{i:04}:{e}")).collect();
                v.push(format!("middle:{middle:?}"));
                v
            }
            "string" => {
                let bytes: Vec<u8> = redis::cmd("GET").arg(key).query_async(c).await.unwrap();
                vec![bytes.escape_ascii().to_string()]
            }
            other => vec![other.to_string()],
        };
        items.sort();
        let ttl: i64 = redis::cmd("PTTL").arg(key).query_async(c).await.unwrap();
        out.insert(key.to_string(), format!("{kind} {encoding:?} ttl:{} {}", ttl > 0, items.join(",")));
    }
    out
}

/// Asserts two `contents` are equal, naming only the keys that differ (shortened).
#[track_caller]
fn same(got: &BTreeMap<String, String>, want: &BTreeMap<String, String>, what: &str) {
    let short = |v: Option<&String>| v.map(|v| v.chars().take(300).collect::<String>());
    let differ: Vec<String> = want
        .keys()
        .chain(got.keys())
        .filter(|k| got.get(*k) != want.get(*k))
        .map(|k| format!("{k}: got {:?}, want {:?}", short(got.get(k)), short(want.get(k))))
        .collect();
    assert!(differ.is_empty(), "{what}: {}", differ.join("; "));
}

/// A redis-server child on a free port in `dir`, killed on drop.
struct Stock {
    _child: tokio::process::Child,
    port: u16,
}

async fn stock(dir: &std::path::Path, extra: &[&str]) -> Option<Stock> {
    let Some(path) = which("redis-server") else {
        println!("SKIPPED: redis-server is not installed (apt-get install redis-server)");
        return None;
    };
    let port = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let child = tokio::process::Command::new(path)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--dir", dir.to_str().unwrap(), "--repl-diskless-sync-delay", "0"])
        .args(extra)
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start redis-server");
    let s = Stock { _child: child, port };
    let up = eventually(WAIT, || async { s.conn().await.is_some() }).await;
    assert!(up, "redis-server came up");
    Some(s)
}

impl Stock {
    async fn conn(&self) -> Option<MultiplexedConnection> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).ok()?;
        let mut c = client.get_multiplexed_async_connection().await.ok()?;
        redis::cmd("PING").query_async::<String>(&mut c).await.ok()?;
        Some(c)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_entry_point_serves_hashes_and_sets() {
    let shard = TestServer::start().await;
    let all = crate::all::start("").await;
    let (_cluster, proxy) = crate::proxy::cluster_with_proxy(1, "").await;
    let mut expected = None;
    for addr in [shard.addr, all.proxy, proxy.addr] {
        let mut c = conn_to(addr).await;
        fill(&mut c).await;
        let got = contents(&mut c).await;
        match &expected {
            None => expected = Some(got),
            Some(e) => same(&got, e, &addr.to_string()),
        }
        // Wrong types, every way round.
        assert_eq!(
            err(&mut c, &["GET", "{t}h:small"]).await,
            "WRONGTYPE Operation against a key holding the wrong kind of value"
        );
        assert!(err(&mut c, &["HGET", "{t}s:ints", "a"]).await.starts_with("WRONGTYPE"));
        assert!(err(&mut c, &["SADD", "{t}str", "a"]).await.starts_with("WRONGTYPE"));
        assert!(err(&mut c, &["SINTER", "{t}s:ints", "{t}h:small"]).await.starts_with("WRONGTYPE"));
        // Multi-key set commands on one slot work; on several they are refused as in Redis Cluster.
        assert_eq!(q(&mut c, &["SINTERSTORE", "{t}dst", "{t}s:ints", "{t}s:many"]).await, int(1));
        assert_eq!(q(&mut c, &["SMOVE", "{t}s:words", "{t}dst", "apple"]).await, int(1));
        assert_eq!(q(&mut c, &["SINTERCARD", "2", "{t}s:ints", "{t}dst"]).await, int(1));
        assert_eq!(q(&mut c, &["ZUNIONSTORE", "{t}zu", "2", "{t}z:small", "{t}s:ints"]).await, int(10));
        assert_eq!(q(&mut c, &["ZINTERCARD", "2", "{t}z:small", "{t}z:big"]).await, int(0));
        q(&mut c, &["DEL", "{t}zu"]).await;
        q(&mut c, &["DEL", "{t}dst"]).await;
        q(&mut c, &["SADD", "{t}s:words", "apple"]).await;
        if addr != shard.addr {
            let e = err(&mut c, &["SUNION", "{a}x", "{b}y"]).await;
            assert!(e.starts_with("CROSSSLOT"), "{addr}: {e}");
            let e = err(&mut c, &["SINTERCARD", "2", "{a}x", "{b}y"]).await;
            assert!(e.starts_with("CROSSSLOT"), "{addr}: {e}");
            let e = err(&mut c, &["ZUNIONSTORE", "{a}d", "2", "{a}x", "{b}y"]).await;
            assert!(e.starts_with("CROSSSLOT"), "{addr}: {e}");
        }
        // RESP3: maps and sets. Another connection: it may read from a read shard a moment
        // behind the writes above (no promise across connections), so it asks until it sees them.
        let mut c3 = redis::Client::open(format!("redis://{addr}/?protocol=resp3"))
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let typed = eventually(WAIT, || {
            let mut c3 = c3.clone();
            async move {
                matches!(q(&mut c3, &["HGETALL", "{t}h:long"]).await, Value::Map(m) if m.len() == 2)
                    && matches!(q(&mut c3, &["SMEMBERS", "{t}s:words"]).await, Value::Set(s) if s.len() == 4)
                    && matches!(q(&mut c3, &["SINTER", "{t}s:words"]).await, Value::Set(s) if s.len() == 4)
                    && q(&mut c3, &["ZSCORE", "{t}z:small", "b"]).await == Value::Double(2.5)
                    && matches!(q(&mut c3, &["ZRANGE", "{t}z:small", "0", "0", "WITHSCORES"]).await,
                        Value::Array(a) if a == vec![Value::Array(vec![bulk("low"), Value::Double(f64::NEG_INFINITY)])])
            }
        })
        .await;
        assert!(
            typed,
            "{addr}: {:?} {:?} {:?}",
            q(&mut c3, &["SMEMBERS", "{t}s:words"]).await,
            q(&mut c3, &["ZSCORE", "{t}z:small", "b"]).await,
            q(&mut c3, &["ZRANGE", "{t}z:small", "0", "0", "WITHSCORES"]).await
        );
        // Inside a transaction each reply keeps its command's RESP3 shape, as in redis-server.
        let in_exec: Vec<Value> = redis::pipe()
            .atomic()
            .cmd("HGETALL")
            .arg("{t}h:long")
            .cmd("ZSCORE")
            .arg("{t}z:small")
            .arg("b")
            .cmd("SMEMBERS")
            .arg("{t}s:words")
            .cmd("ZPOPMIN")
            .arg("{t}nosuch")
            .query_async(&mut c3)
            .await
            .unwrap();
        assert!(matches!(&in_exec[0], Value::Map(m) if m.len() == 2), "{addr}: {in_exec:?}");
        assert_eq!(in_exec[1], Value::Double(2.5), "{addr}");
        assert!(matches!(&in_exec[2], Value::Set(s) if s.len() == 4), "{addr}: {in_exec:?}");
        assert_eq!(in_exec[3], Value::Array(vec![]), "{addr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_shard_holds_its_primarys_values() {
    let mut cluster = Cluster::start(1).await;
    cluster.add_read().await;
    assert!(
        eventually(WAIT, || async { slots(cluster.info.addr).await.iter().all(|r| r.3.len() == 1) }).await
    );
    let w = cluster.writes[0].addr;
    let mut c = conn_to(w).await;
    assert!(
        eventually(WAIT, || async {
            redis::cmd("SET").arg("k").arg(1).query_async::<Value>(&mut conn_to(w).await).await.is_ok()
        })
        .await
    );
    fill(&mut c).await;
    // Random and float commands replicate as their effects.
    q(&mut c, &["HINCRBYFLOAT", "{t}h:small", "f", "0.1"]).await;
    q(&mut c, &["SPOP", "{t}s:many", "5"]).await;
    q(&mut c, &["SRANDMEMBER", "{t}s:many", "-3"]).await;
    q(&mut c, &["ZINCRBY", "{t}z:big", "0.3", "member:7"]).await;
    q(&mut c, &["ZMPOP", "1", "{t}z:big", "MAX", "COUNT", "2"]).await;
    q(&mut c, &["ZADD", "{t}z:small", "GT", "CH", "INCR", "5", "a"]).await;
    q(&mut c, &["SINTERSTORE", "{t}none", "{t}s:ints", "{t}s:words"]).await;
    let payload: Vec<u8> = redis::cmd("DUMP").arg("{t}h:wide").query_async(&mut c).await.unwrap();
    let _: Value =
        redis::cmd("RESTORE").arg("{t}copy").arg(100000).arg(payload).query_async(&mut c).await.unwrap();
    assert_eq!(q(&mut c, &["WAIT", "1", "5000"]).await, int(1));
    let (raddr, waddr) = (cluster.reads[0].addr, w);
    let digest = |addr| async move {
        redis::cmd("DEBUG").arg("DIGEST").query_async::<String>(&mut conn_to(addr).await).await.unwrap()
    };
    let digests_equal = eventually(WAIT, || async { digest(raddr).await == digest(waddr).await }).await;
    assert!(digests_equal, "the read shard's DEBUG DIGEST equals its primary's");
    same(&contents(&mut conn_to(raddr).await).await, &contents(&mut c).await, "the read shard");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_keeps_every_type_and_encoding() {
    let dir = temp_dir("types-save");
    let conf = format!("dir \"{}\"\n", dir.display());
    let first = TestServer::with_conf(&conf).await;
    let mut c = first.conn().await;
    fill(&mut c).await;
    let before = contents(&mut c).await;
    assert_eq!(q(&mut c, &["SAVE"]).await, Value::Okay);
    first.stop().await;
    let again = TestServer::with_conf(&conf).await;
    let mut c = again.conn().await;
    same(&contents(&mut c).await, &before, "contents");
    again.stop().await;
    // Loaded by the size rules configured now, as Redis re-encodes what it loads.
    let smaller = TestServer::with_conf(&format!("{conf}hash-max-listpack-entries 3\n")).await;
    let mut c = smaller.conn().await;
    assert_eq!(q(&mut c, &["OBJECT", "ENCODING", "{t}h:small"]).await, bulk("hashtable"));
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_server_and_rust_edis_exchange_every_type() {
    let dir = temp_dir("types-stock");
    let Some(redis) = stock(&dir, &[]).await else { return };
    let mut theirs = redis.conn().await.unwrap();
    fill(&mut theirs).await;
    let reference = contents(&mut theirs).await;

    // Their dump.rdb (LZF-compressed, listpack and intset encodings) loads here.
    assert_eq!(q(&mut theirs, &["SAVE"]).await, Value::Okay);
    let loaded = TestServer::with_conf(&format!("dir \"{}\"\n", dir.display())).await;
    let mut ours = loaded.conn().await;
    same(&contents(&mut ours).await, &reference, "redis-server's dump.rdb, loaded here");

    // DUMP there, RESTORE here, and the other way round.
    let fresh = TestServer::start().await;
    let mut f = fresh.conn().await;
    for key in KEYS {
        let payload: Vec<u8> = redis::cmd("DUMP").arg(key).query_async(&mut theirs).await.unwrap();
        let _: Value = redis::cmd("RESTORE").arg(key).arg(0).arg(payload).query_async(&mut f).await.unwrap();
    }
    q(&mut f, &["PEXPIRE", "{t}h:small", "1000000"]).await;
    q(&mut f, &["PEXPIRE", "{t}l:small", "1000000"]).await;
    same(&contents(&mut f).await, &reference, "restored from redis-server's DUMP");
    q(&mut theirs, &["FLUSHALL"]).await;
    for key in KEYS {
        let payload: Vec<u8> = redis::cmd("DUMP").arg(key).query_async(&mut f).await.unwrap();
        let _: Value =
            redis::cmd("RESTORE").arg(key).arg(0).arg(payload).query_async(&mut theirs).await.unwrap();
    }
    q(&mut theirs, &["PEXPIRE", "{t}h:small", "1000000"]).await;
    q(&mut theirs, &["PEXPIRE", "{t}l:small", "1000000"]).await;
    same(&contents(&mut theirs).await, &reference, "restored in redis-server from our DUMP");

    // A stock replica of a write shard ends with the same values.
    let replica_dir = temp_dir("types-stock-replica");
    let Some(replica) =
        stock(&replica_dir, &["--replicaof", "127.0.0.1", &fresh.addr.port().to_string()]).await
    else {
        return;
    };
    let synced = eventually(WAIT, || async {
        let Some(mut r) = replica.conn().await else { return false };
        let n: i64 = redis::cmd("DBSIZE").query_async(&mut r).await.unwrap_or(0);
        n == KEYS.len() as i64
    })
    .await;
    assert!(synced, "redis-server replica synced");
    q(&mut f, &["HSET", "{t}h:small", "after", "sync"]).await;
    q(&mut f, &["HDEL", "{t}h:small", "after"]).await;
    assert_eq!(q(&mut f, &["WAIT", "1", "5000"]).await, int(1));
    same(&contents(&mut replica.conn().await.unwrap()).await, &reference, "redis-server as a replica");

    // And a rust-edis replica follows redis-server.
    let follower = TestServer::replica_of(([127, 0, 0, 1], redis.port).into(), "").await;
    let followed = eventually(Duration::from_secs(10), || async {
        let Ok(mut r) = redis::Client::open(follower.url()).unwrap().get_multiplexed_async_connection().await
        else {
            return false;
        };
        redis::cmd("DBSIZE").query_async::<i64>(&mut r).await.unwrap_or(0) == KEYS.len() as i64
    })
    .await;
    assert!(followed, "a rust-edis replica of redis-server synced");
    same(&contents(&mut follower.conn().await).await, &reference, "our replica of redis-server");
    drop((redis, replica));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&replica_dir).ok();
}

#[tokio::test]
async fn object_idletime_counts_from_the_last_access() {
    let s = TestServer::start().await;
    let mut c = s.conn().await;
    q(&mut c, &["HSET", "h", "f", "v"]).await;
    let payload: Vec<u8> = redis::cmd("DUMP").arg("h").query_async(&mut c).await.unwrap();
    let _: Value = redis::cmd("RESTORE")
        .arg("old")
        .arg(0)
        .arg(payload)
        .arg("IDLETIME")
        .arg(1000)
        .query_async(&mut c)
        .await
        .unwrap();
    let idle = |c: &mut MultiplexedConnection| {
        let mut c = c.clone();
        async move { redis::cmd("OBJECT").arg("IDLETIME").arg("old").query_async::<i64>(&mut c).await.unwrap() }
    };
    let before = idle(&mut c).await;
    assert!((1000..1003).contains(&before), "{before}");
    assert_eq!(idle(&mut c).await, before, "OBJECT itself is not an access");
    let Value::Int(usage) = q(&mut c, &["MEMORY", "USAGE", "old", "SAMPLES", "0"]).await else { panic!() };
    assert!(usage > 0);
    assert_eq!(idle(&mut c).await, before, "nor MEMORY USAGE");
    for (args, why) in [
        (&["SAMPLES", "-1"][..], "ERR syntax error"),
        (&["SAMPLES"], "ERR syntax error"),
        (&["SAMPLES", "5", "FOO"], "ERR syntax error"),
        (&["SAMPLES", "x"], "ERR value is not an integer or out of range"),
    ] {
        let mut cmd = vec!["MEMORY", "USAGE", "old"];
        cmd.extend_from_slice(args);
        assert_eq!(err(&mut c, &cmd).await, why, "{cmd:?}");
    }
    q(&mut c, &["HGET", "old", "f"]).await;
    assert!(idle(&mut c).await <= 1, "a read is");
    assert_eq!(q(&mut c, &["OBJECT", "IDLETIME", "nokey"]).await, Value::Nil);
}
