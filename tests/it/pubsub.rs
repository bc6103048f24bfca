//! Pub/Sub, keyspace notifications, client-side caching and MONITOR through every entry
//! point: a write shard, `--role all` and the proxy over TCP, with publishers and
//! subscribers on different nodes of a cluster.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::cluster::{conn_to, WAIT};
use crate::harness::*;

/// The strings of a frame, in order (bulk strings, integers; nulls as "(nil)").
pub(crate) fn strings(frame: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = frame.split("\r\n");
    while let Some(line) = lines.next() {
        if line == "$-1" || line == "_" {
            out.push("(nil)".into());
        } else if line.starts_with('$') {
            out.push(lines.next().unwrap_or_default().to_string());
        } else if let Some(n) = line.strip_prefix(':') {
            out.push(n.to_string());
        }
    }
    out
}

async fn subscriber(addr: SocketAddr, channels: &[&str]) -> Raw {
    let mut r = Raw::connect(addr).await;
    let mut args = vec!["SUBSCRIBE"];
    args.extend(channels);
    r.send(&resp(&args)).await;
    for ch in channels {
        let confirm = strings(&r.reply().await);
        assert_eq!(&confirm[..2], &["subscribe".to_string(), ch.to_string()], "{addr}");
    }
    r
}

/// Reads `n` messages: (channel, payload) each; probes (channel "probe") are skipped.
async fn messages(r: &mut Raw, n: usize) -> Vec<(String, String)> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        let s = strings(&r.reply().await);
        assert_eq!(s[0], "message", "{s:?}");
        if s[1] != "probe" {
            got.push((s[1].clone(), s[2].clone()));
        }
    }
    got
}

/// Publishes `n` messages "<name>:<i>" on `channel`, pipelined.
async fn publish(addr: SocketAddr, name: &str, channel: &str, n: usize) {
    let mut c = conn_to(addr).await;
    let mut pipe = redis::pipe();
    for i in 0..n {
        pipe.cmd("PUBLISH").arg(channel).arg(format!("{name}:{i}"));
    }
    let _: Vec<i64> = pipe.query_async(&mut c).await.unwrap();
}

/// Every publisher's messages are there once each, in its order.
fn check_each_once_in_order(got: &[(String, String)], publishers: &[&str], n: usize, who: &str) {
    let mut next: HashMap<&str, usize> = publishers.iter().map(|p| (*p, 0)).collect();
    for (_, payload) in got {
        let (name, i) = payload.split_once(':').unwrap();
        let want = next.get_mut(name).unwrap_or_else(|| panic!("{who}: from nobody: {payload}"));
        assert_eq!(
            i.parse::<usize>().unwrap(),
            *want,
            "{who}: {name}'s messages out of order, lost or twice"
        );
        *want += 1;
    }
    assert!(next.values().all(|&v| v == n), "{who}: {next:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_reaches_every_subscriber_on_every_node_once() {
    const N: usize = 2000;
    let (cluster, proxy) = crate::proxy::cluster_with_proxy(1, "").await;
    let (w, r) = (&cluster.writes, &cluster.reads);
    let mut subs = [
        ("proxy", subscriber(proxy.addr, &["ch", "probe"]).await),
        ("write shard 2", subscriber(w[1].addr, &["ch", "probe"]).await),
        ("read shard", subscriber(r[0].addr, &["ch", "probe"]).await),
    ];
    // A subscriber that is there once SUBSCRIBE answered hears everything after; the direct
    // ones hear other shards' messages once the shards know each other: probe until they do.
    let mut probe = conn_to(w[0].addr).await;
    for (who, s) in subs.iter_mut() {
        let until = Instant::now() + WAIT;
        loop {
            let _: i64 = redis::cmd("PUBLISH").arg("probe").arg("p").query_async(&mut probe).await.unwrap();
            if tokio::time::timeout(Duration::from_millis(200), s.reply()).await.is_ok() {
                break;
            }
            assert!(Instant::now() < until, "{who} never hears a message published on write shard 1");
        }
    }
    let publishers = [("via-proxy", proxy.addr), ("on-w1", w[0].addr), ("on-w3", w[2].addr)];
    let sends: Vec<_> =
        publishers.iter().map(|&(name, addr)| tokio::spawn(publish(addr, name, "ch", N))).collect();
    for s in sends {
        s.await.unwrap();
    }
    for (who, s) in subs.iter_mut() {
        let got = messages(s, 3 * N).await;
        check_each_once_in_order(&got, &["via-proxy", "on-w1", "on-w3"], N, who);
        // Nothing more on "ch" (a late probe may still come).
        while let Ok(frame) = tokio::time::timeout(Duration::from_millis(200), s.reply()).await {
            assert_eq!(strings(&frame)[1], "probe", "{who}: more than sent");
        }
    }
    // The proxy holds one feed per node, not a connection per subscriber.
    let before = clients_of(w[1].addr).await;
    let mut more = Vec::new();
    for i in 0..20 {
        more.push(subscriber(proxy.addr, &[&format!("c{i}")]).await);
    }
    assert_eq!(clients_of(w[1].addr).await, before, "subscribing clients opened shard connections");
}

async fn clients_of(addr: SocketAddr) -> usize {
    let list: String = redis::cmd("CLIENT").arg("LIST").query_async(&mut conn_to(addr).await).await.unwrap();
    list.lines().count() - 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribed_clients_follow_redis_rules_on_every_entry_point() {
    let shard = TestServer::start().await;
    let all = crate::all::start("").await;
    let (_cluster, proxy) = crate::proxy::cluster_with_proxy(0, "").await;
    for addr in [shard.addr, all.proxy, proxy.addr] {
        let mut s = subscriber(addr, &["a", "b"]).await;
        assert_eq!(
            s.call(&resp(&["GET", "k"])).await,
            "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n"
        );
        assert_eq!(s.call(&resp(&["PING"])).await, "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
        assert_eq!(
            s.call(&resp(&["SUBSCRIBE"])).await,
            "-ERR wrong number of arguments for 'subscribe' command\r\n"
        );
        s.send(&resp(&["UNSUBSCRIBE"])).await;
        assert_eq!(strings(&s.reply().await), ["unsubscribe", "a", "1"]);
        assert_eq!(strings(&s.reply().await), ["unsubscribe", "b", "0"]);
        assert_eq!(s.call(&resp(&["GET", "k"])).await, "$-1\r\n", "{addr}: out of the subscribed context");
        // RESP3: pushes come among replies, and any command runs.
        let mut r3 = Raw::connect(addr).await;
        r3.call(&resp(&["HELLO", "3"])).await;
        assert_eq!(r3.call(&resp(&["SUBSCRIBE", "c3"])).await, ">3\r\n$9\r\nsubscribe\r\n$2\r\nc3\r\n:1\r\n");
        assert_eq!(r3.call(&resp(&["SET", "k3", "v"])).await, "+OK\r\n");
        let mut p = conn_to(addr).await;
        let n: i64 = redis::cmd("PUBLISH").arg("c3").arg("hi").query_async(&mut p).await.unwrap();
        assert_eq!(n, 1, "{addr}");
        assert_eq!(r3.reply().await, ">3\r\n$7\r\nmessage\r\n$2\r\nc3\r\n$2\r\nhi\r\n");
        assert_eq!(r3.call(&resp(&["GET", "k3"])).await, "$1\r\nv\r\n");
        assert_eq!(r3.call(&resp(&["RESET"])).await, "+RESET\r\n");
        let n: i64 = redis::cmd("PUBLISH").arg("c3").arg("again").query_async(&mut p).await.unwrap();
        assert_eq!(n, 0, "{addr}: RESET unsubscribes");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyspace_events_of_every_shard_arrive_through_the_proxy() {
    let all = crate::all::start("").await;
    let (_cluster, proxy) = crate::proxy::cluster_with_proxy(1, "").await;
    for addr in [all.proxy, proxy.addr] {
        let mut c = conn_to(addr).await;
        assert_eq!(q(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "KEA"]).await, redis::Value::Okay);
        let mut events = Raw::connect(addr).await;
        events.send(&resp(&["PSUBSCRIBE", "__keyevent@0__:*"])).await;
        assert_eq!(strings(&events.reply().await)[0], "psubscribe");
        // Keys in every shard's slots: {a}, {b} and {c} hash to different shards.
        let keys: Vec<String> = (0..30).map(|i| format!("key{i}")).collect();
        let slots: HashSet<u16> =
            keys.iter().map(|k| rust_edis::topology::key_slot(k.as_bytes()) / 5462).collect();
        assert_eq!(slots.len(), 3, "the keys span the three shards");
        for k in &keys {
            q(&mut c, &["SET", k, "v"]).await;
            q(&mut c, &["EXPIRE", k, "100"]).await;
            q(&mut c, &["DEL", k]).await;
            q(&mut c, &["SET", k, "v", "PX", "1"]).await;
        }
        let want: HashSet<(String, String)> = keys
            .iter()
            .flat_map(|k| ["set", "expire", "del", "expired"].map(|e| (e.to_string(), k.clone())))
            .collect();
        let mut got = HashSet::new();
        let until = Instant::now() + WAIT;
        while !want.is_subset(&got) && Instant::now() < until {
            if let Ok(frame) = tokio::time::timeout(Duration::from_millis(100), events.reply()).await {
                let s = strings(&frame);
                got.insert((s[2].trim_start_matches("__keyevent@0__:").to_string(), s[3].clone()));
            }
        }
        let missing: Vec<_> = want.difference(&got).take(5).collect();
        assert!(missing.is_empty(), "{addr}: missing events, e.g. {missing:?}");
        q(&mut c, &["CONFIG", "SET", "notify-keyspace-events", ""]).await;
    }
}

/// A RESP3 connection with a local cache kept by invalidation pushes.
struct Cached {
    conn: Raw,
    cache: HashMap<String, String>,
    hits: usize,
    reads: usize,
}

impl Cached {
    fn pushed(&mut self, frame: &str) {
        let s = strings(frame);
        assert_eq!(s[0], "invalidate", "{frame:?}");
        if s[1] == "(nil)" {
            self.cache.clear();
        }
        for k in &s[1..] {
            self.cache.remove(k);
        }
    }

    /// The reply to a command, taking the pushes that come first.
    async fn call(&mut self, args: &[&str]) -> String {
        self.conn.send(&resp(args)).await;
        loop {
            let frame = self.conn.reply().await;
            if frame.starts_with('>') {
                self.pushed(&frame);
            } else {
                return frame;
            }
        }
    }

    /// Takes pushes until `key` is no longer cached.
    async fn until_invalidated(&mut self, key: &str) -> bool {
        let wait = async {
            while self.cache.contains_key(key) {
                let frame = self.conn.reply().await;
                self.pushed(&frame);
            }
        };
        tokio::time::timeout(Duration::from_secs(5), wait).await.is_ok()
    }

    async fn get(&mut self, key: &str) -> String {
        self.reads += 1;
        if let Some(v) = self.cache.get(key) {
            self.hits += 1;
            return v.clone();
        }
        let v = strings(&self.call(&["GET", key]).await).pop().unwrap_or_default();
        self.cache.insert(key.to_string(), v.clone());
        v
    }
}

/// Random reads through a client-side cache and writes by another client: once a writer's
/// reply has arrived and the invalidation it causes has been read, the cache never gives the
/// old value, and a read that misses it never brings the old value back.
async fn cache_is_never_left_stale(addr: SocketAddr, ops: usize) -> f64 {
    let mut reader = Cached { conn: Raw::connect(addr).await, cache: HashMap::new(), hits: 0, reads: 0 };
    reader.call(&["HELLO", "3"]).await;
    assert_eq!(reader.call(&["CLIENT", "TRACKING", "ON"]).await, "+OK\r\n");
    let mut writer = conn_to(addr).await;
    let mut truth: HashMap<String, String> = HashMap::new();
    let mut rng = rust_edis::keyspace::Rng::new(7);
    for i in 0..ops {
        let key = format!("cache:{}", rng.below(100));
        if rng.below(4) == 0 {
            let value = format!("v{i}");
            q(&mut writer, &["SET", &key, &value]).await;
            truth.insert(key.clone(), value);
            assert!(reader.until_invalidated(&key).await, "{addr}: no invalidation for {key}");
        } else {
            let want = truth.get(&key).cloned().unwrap_or_else(|| "(nil)".into());
            assert_eq!(reader.get(&key).await, want, "{addr}: stale read of {key} at op {i}");
        }
    }
    reader.hits as f64 / reader.reads.max(1) as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_side_cache_stays_fresh_on_every_entry_point() {
    let shard = TestServer::start().await;
    let ratio = cache_is_never_left_stale(shard.addr, 2000).await;
    assert!(ratio > 0.3, "hit ratio {ratio}");
    let all = crate::all::start("").await;
    cache_is_never_left_stale(all.proxy, 2000).await;
    // Reads go to read shards here: their invalidations count too.
    let (_cluster, proxy) = crate::proxy::cluster_with_proxy(1, "").await;
    cache_is_never_left_stale(proxy.addr, 2000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp2_tracking_redirects_to_a_subscriber() {
    let shard = TestServer::start().await;
    let all = crate::all::start("").await;
    for addr in [shard.addr, all.proxy] {
        let mut inv = Raw::connect(addr).await;
        let id = strings(&inv.call(&resp(&["CLIENT", "ID"])).await).pop().unwrap();
        inv.send(&resp(&["SUBSCRIBE", "__redis__:invalidate"])).await;
        inv.reply().await;
        let mut reader = Raw::connect(addr).await;
        assert_eq!(reader.call(&resp(&["CLIENT", "TRACKING", "ON", "REDIRECT", &id])).await, "+OK\r\n");
        assert_eq!(reader.call(&resp(&["CLIENT", "GETREDIR"])).await, format!(":{id}\r\n"));
        reader.call(&resp(&["GET", "r1"])).await;
        let mut w = conn_to(addr).await;
        q(&mut w, &["SET", "r1", "x"]).await;
        assert_eq!(
            inv.reply().await,
            "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$2\r\nr1\r\n",
            "{addr}"
        );
        // The redirect target leaves: TRACKINGINFO tells, once a message could not go.
        // (The server learns of the hang-up when it gets to it: until then an invalidation
        // still goes to the leaving connection, so each round tracks and writes again.)
        drop(inv);
        let until = Instant::now() + WAIT;
        loop {
            reader.call(&resp(&["GET", "r1"])).await;
            q(&mut w, &["SET", "r1", "y"]).await;
            if reader.call(&resp(&["CLIENT", "TRACKINGINFO"])).await.contains("broken_redirect") {
                break;
            }
            assert!(Instant::now() < until, "{addr}: no broken_redirect");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_sees_commands_of_every_shard() {
    let shard = TestServer::start().await;
    let (_cluster, proxy) = crate::proxy::cluster_with_proxy(0, "").await;
    for addr in [shard.addr, proxy.addr] {
        let mut m = Raw::connect(addr).await;
        assert_eq!(m.call(&resp(&["MONITOR"])).await, "+OK\r\n");
        let mut c = conn_to(addr).await;
        let keys: Vec<String> = (0..12).map(|i| format!("mon{i}")).collect();
        let mut seen = HashSet::new();
        let until = Instant::now() + WAIT;
        while seen.len() < keys.len() && Instant::now() < until {
            for k in keys.iter().filter(|k| !seen.contains(*k)) {
                q(&mut c, &["SET", k, "v"]).await;
            }
            while let Ok(line) = tokio::time::timeout(Duration::from_millis(100), m.reply()).await {
                if let Some(k) = keys.iter().find(|k| line.contains(&format!("\"SET\" \"{k}\""))) {
                    seen.insert(k.clone());
                }
            }
        }
        assert_eq!(seen.len(), keys.len(), "{addr}: monitor saw {seen:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_does_not_read_is_cut_off_at_the_pubsub_limit() {
    let s = TestServer::start().await;
    let mut c = s.conn().await;
    let limit = "normal 0 0 0 slave 268435456 67108864 60 pubsub 1mb 0 0";
    assert_eq!(q(&mut c, &["CONFIG", "SET", "client-output-buffer-limit", limit]).await, redis::Value::Okay);
    // A small receive buffer, never read: what is published piles up at the server.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut slow = Raw::from_stream(socket.connect(s.addr).await.unwrap());
    slow.send(&resp(&["SUBSCRIBE", "big"])).await;
    assert!(
        eventually(WAIT, || async {
            let n: Vec<redis::Value> =
                redis::cmd("PUBSUB").arg("NUMSUB").arg("big").query_async(&mut s.conn().await).await.unwrap();
            n.get(1) == Some(&int(1))
        })
        .await
    );
    let payload = "x".repeat(10_000);
    for _ in 0..50 {
        let mut pipe = redis::pipe();
        for _ in 0..20 {
            pipe.cmd("PUBLISH").arg("big").arg(&payload);
        }
        let _: Vec<i64> = pipe.query_async(&mut c).await.unwrap();
    }
    // 10 MB published: the subscriber is gone, the others are served.
    assert!(
        eventually(WAIT, || async {
            let n: Vec<redis::Value> =
                redis::cmd("PUBSUB").arg("NUMSUB").arg("big").query_async(&mut s.conn().await).await.unwrap();
            n.get(1) == Some(&int(0))
        })
        .await,
        "the slow subscriber is still subscribed"
    );
    assert_eq!(q(&mut c, &["PING"]).await, redis::Value::SimpleString("PONG".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_events_and_tracking_hold_on_a_replica_across_a_full_sync() {
    let dir = temp_dir("events-conf");
    let primary =
        TestServer::with_conf(&format!("dir \"{}\"\nnotify-keyspace-events KEA\n", dir.display())).await;
    let replica = TestServer::replica_of(primary.addr, "notify-keyspace-events Kg$").await;
    let mut p = primary.conn().await;
    q(&mut p, &["SET", "before", "1"]).await;
    assert!(eventually_holds(replica.addr, "before", "1", WAIT).await, "the replica never had the key");
    // The setting from the configuration is live from the start, on both.
    let mut on_primary = Raw::connect(primary.addr).await;
    on_primary.send(&resp(&["SUBSCRIBE", "__keyevent@0__:set"])).await;
    on_primary.reply().await;
    let mut on_replica = Raw::connect(replica.addr).await;
    on_replica.send(&resp(&["SUBSCRIBE", "__keyspace@0__:k"])).await;
    on_replica.reply().await;
    // A tracking client on the replica.
    let mut tracker = Raw::connect(replica.addr).await;
    tracker.call(&resp(&["HELLO", "3"])).await;
    tracker.call(&resp(&["CLIENT", "TRACKING", "ON"])).await;
    assert_eq!(tracker.call(&resp(&["GET", "before"])).await, "$1\r\n1\r\n");
    q(&mut p, &["SET", "k", "v"]).await;
    assert_eq!(strings(&on_primary.reply().await), ["message", "__keyevent@0__:set", "k"]);
    // The replica makes the events of what it applies.
    assert_eq!(strings(&on_replica.reply().await), ["message", "__keyspace@0__:k", "set"]);
    // A full resync replaces the replica's data: its tracking clients are told to forget all.
    // (A primary started afresh at the same address has another history.)
    let addr = primary.addr;
    drop(p);
    primary.stop().await;
    let config =
        rust_edis::config::Config::parse(&format!("dir \"{}\"\n", temp_dir("events-conf-2").display()))
            .unwrap();
    let _primary = TestServer::start_at(&addr.to_string(), false, config).await;
    assert_eq!(tracker.reply().await, ">2\r\n$10\r\ninvalidate\r\n_\r\n");
}
