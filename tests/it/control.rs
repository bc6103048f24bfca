//! The control plane under attack and under restarts: internal commands refused to anyone who
//! is not a cluster member, registrations validated, protected configs and protected mode as
//! in Redis 7, passwords on every port, and a restarted info that changes nothing.

use std::net::SocketAddr;
use std::time::Duration;

use redis::Value;
use rust_edis::topology::key_slot;

use crate::cluster::{
    cluster_text, conn_to, covers_all, member, slots, start_node, Cluster, Kind, SECRET, WAIT,
};
use crate::harness::*;

fn noperm(cmd: &str) -> String {
    format!("-NOPERM this user has no permissions to run the '{cmd}' command\r\n")
}

fn epoch_of(info: &str) -> u64 {
    info.lines().find_map(|l| l.strip_prefix("cluster_current_epoch:")).unwrap().trim().parse().unwrap()
}

/// A raw connection whose source address is 127.0.0.2: loopback to the kernel, but not the
/// local client Redis's protected mode lets in (it accepts exactly 127.0.0.1 and ::1).
async fn from_other_host(addr: SocketAddr) -> Raw {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    Raw::from_stream(socket.connect(addr).await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_commands_need_the_cluster_secret() {
    let mut cluster = Cluster::start(3).await;
    cluster.add_read().await;
    assert!(
        eventually(WAIT, || async { slots(cluster.info.addr).await.iter().any(|r| r.3.len() == 1) }).await
    );
    let w0 = cluster.writes[0].addr;
    let mut data = conn_to(w0).await;
    let map = slots(cluster.info.addr).await;
    let range = map.iter().find(|r| r.2 == w0.port()).unwrap().clone();
    let owned = (0..1000).map(|i| format!("k{i}")).find(|k| {
        let s = key_slot(k.as_bytes()) as i64;
        range.0 <= s && s <= range.1
    });
    let owned = owned.unwrap();
    let nodes_before = cluster_text(cluster.info.addr, "NODES").await;
    let epoch_before = epoch_of(&cluster_text(cluster.info.addr, "INFO").await);
    let w0_id =
        nodes_before.lines().find(|l| l.contains(&format!(":{}@", w0.port()))).unwrap()[..40].to_string();
    let fake = "f".repeat(40);
    let tok = "tokentokentokentoken";

    // Anyone who reaches info: every internal command is refused, whatever it tries.
    let mut outsider = Raw::connect(cluster.info.addr).await;
    let attacks: Vec<Vec<String>> = vec![
        // Take over a write shard's slots by re-registering its id elsewhere.
        vec!["EDIS.REGISTER".into(), w0_id.clone(), "WRITE".into(), "127.0.0.1".into(), "1".into()],
        // A fake read shard, kept alive by heartbeats.
        vec!["EDIS.REGISTER".into(), fake.clone(), "READ".into(), "127.0.0.1".into(), "2".into()],
        vec!["EDIS.HEARTBEAT".into(), fake.clone(), tok.into()],
        vec!["EDIS.LEAVE".into(), fake.clone(), tok.into()],
        vec!["EDIS.TOPOLOGY".into()],
        vec!["EDIS.ROUTER".into()],
        vec!["EDIS.AT".into(), "0".into(), "GET".into(), "k".into()],
    ];
    for args in &attacks {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let name = args[0].to_ascii_lowercase();
        assert_eq!(outsider.call(&resp(&args)).await, noperm(&name), "{args:?}");
    }
    // A wrong secret is no better; the default user (no password here) is not a member.
    assert_eq!(
        outsider.call(&resp(&["AUTH", "edis", "guess"])).await,
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(outsider.call(&resp(&["AUTH", "default", "anything"])).await, "+OK\r\n");
    assert_eq!(outsider.call(&resp(&["EDIS.TOPOLOGY"])).await, noperm("edis.topology"));
    // Through the proxy and on the shards the same.
    let proxy = start_node(Kind::Proxy, cluster.base.join("proxy"), Some(cluster.info.addr), "").await;
    for addr in [proxy.addr, w0, cluster.reads[0].addr] {
        let mut raw = Raw::connect(addr).await;
        assert_eq!(raw.call(&resp(&["EDIS.ROUTER"])).await, noperm("edis.router"), "{addr}");
        assert_eq!(raw.call(&resp(&["EDIS.AT", "0", "SET", &owned, "x"])).await, noperm("edis.at"));
        assert_eq!(raw.call(&resp(&["PSYNC", "?", "-1"])).await, noperm("psync"), "{addr}");
        assert_eq!(raw.call(&resp(&["SYNC"])).await, noperm("sync"), "{addr}");
        assert_eq!(raw.call(&resp(&["REPLCONF", "listening-port", "1"])).await, noperm("replconf"));
        assert_eq!(raw.call(&resp(&["REPLCONF", "ACK", "999999"])).await, noperm("replconf"));
    }
    // A client password does not make a member either.
    q(&mut data, &["CONFIG", "SET", "requirepass", "clientpw"]).await;
    let mut client = Raw::connect(w0).await;
    assert_eq!(client.call(&resp(&["PSYNC", "?", "-1"])).await, "-NOAUTH Authentication required.\r\n");
    assert_eq!(client.call(&resp(&["AUTH", "clientpw"])).await, "+OK\r\n");
    assert_eq!(client.call(&resp(&["PSYNC", "?", "-1"])).await, noperm("psync"));
    assert_eq!(client.call(&resp(&["AUTH", "edis", SECRET])).await, "+OK\r\n", "the member user");
    assert!(client.call(&resp(&["PSYNC", "?", "-1"])).await.starts_with("+FULLRESYNC "));
    drop(client);
    let mut admin = Raw::connect(w0).await;
    admin.call(&resp(&["AUTH", "clientpw"])).await;
    assert_eq!(admin.call(&resp(&["CONFIG", "SET", "requirepass", ""])).await, "+OK\r\n");

    // Members are checked too: another id's registration needs that node's identity token,
    // hosts must be hosts, and epochs are info's.
    let mut m = member(cluster.info.addr).await;
    let register = |id: &str, role: &str, host: &str, port: &str, more: &[&str]| {
        let mut args = vec!["EDIS.REGISTER".to_string(), id.into(), role.into(), host.into(), port.into()];
        args.extend(["TOKEN".to_string(), tok.to_string()]);
        args.extend(more.iter().map(|s| s.to_string()));
        args
    };
    let refused = [
        (register(&w0_id, "WRITE", "127.0.0.1", "1", &[]), "-ERR shard "),
        (register(&fake, "READ", "127.0.0.1\r\n", "2", &[]), "-ERR invalid host"),
        (register(&fake, "READ", "evil\nhost", "2", &[]), "-ERR invalid host"),
        (register(&fake, "READ", "127.0.0.1 3 0-16383", "2", &[]), "-ERR invalid host"),
        (register(&fake, "READ", "h@st", "2", &[]), "-ERR invalid host"),
        (register(&fake, "READ", "127.0.0.1", "65536", &[]), "-ERR invalid port"),
        (
            register(&fake, "READ", "127.0.0.1", "2", &["EPOCH", "9223372036854775807"]),
            "-ERR epochs are decided by info",
        ),
        (vec!["EDIS.HEARTBEAT".into(), w0_id.clone(), tok.into()], "-ERR shard "),
    ];
    for (args, expected) in refused {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let reply = m.call(&resp(&args)).await;
        assert!(reply.starts_with(expected), "{args:?}: {reply}");
    }
    // Nothing moved: the map, its epoch, and the data.
    let nodes_after = cluster_text(cluster.info.addr, "NODES").await;
    assert_eq!(nodes_after, nodes_before);
    assert_eq!(epoch_of(&cluster_text(cluster.info.addr, "INFO").await), epoch_before);
    assert!(!nodes_after.contains(SECRET) && !nodes_after.contains("token"));
    let mut via_proxy = conn_to(proxy.addr).await;
    assert_eq!(q(&mut via_proxy, &["SET", &owned, "v"]).await, Value::Okay);
    assert_eq!(q(&mut data, &["GET", &owned]).await, bulk("v"), "writes still land on the real shard");
    // The secret is never shown by CONFIG GET.
    let all = format!("{:?}", q(&mut data, &["CONFIG", "GET", "*"]).await);
    assert!(!all.contains(SECRET));
    let shown: Vec<String> =
        redis::cmd("CONFIG").arg("GET").arg("cluster-secret").query_async(&mut data).await.unwrap();
    assert!(shown.is_empty());
}

#[tokio::test]
async fn protected_configs_cannot_move_files() {
    let dir = temp_dir("protected");
    let s = TestServer::with_conf(&format!("dir \"{}\"\n", dir.display())).await;
    let mut c = s.conn().await;
    let outside = temp_dir("outside");
    for (name, value) in [
        ("dir", outside.to_str().unwrap()),
        ("dbfilename", "/tmp/rust-edis-evil.rdb"),
        ("dbfilename", "../evil.rdb"),
    ] {
        assert_eq!(
            err(&mut c, &["CONFIG", "SET", name, value]).await,
            format!(
                "ERR CONFIG SET failed (possibly related to argument '{name}') - can't set protected config"
            )
        );
    }
    for name in
        ["appendfilename", "enable-protected-configs", "cluster-secret", "cluster-secret-file", "logfile"]
    {
        let e = err(&mut c, &["CONFIG", "SET", name, "x"]).await;
        assert!(e.ends_with("can't set immutable config"), "{name}: {e}");
    }
    // Several at once: all or nothing.
    let e = err(&mut c, &["CONFIG", "SET", "hz", "20", "dir", "/"]).await;
    assert!(e.contains("protected"), "{e}");
    let hz: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("hz").query_async(&mut c).await.unwrap();
    assert_eq!(hz, ["hz", "10"]);
    q(&mut c, &["SET", "k", "v"]).await;
    assert_eq!(q(&mut c, &["SAVE"]).await, Value::Okay);
    assert!(dir.join("dump.rdb").exists(), "SAVE writes where it always did");
    assert!(std::fs::read_dir(&outside).unwrap().next().is_none());
    assert!(!std::path::Path::new("/tmp/rust-edis-evil.rdb").exists());
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&outside).ok();
}

#[tokio::test]
async fn protected_mode_keeps_other_hosts_out() {
    const DENIED: &str = "-DENIED Redis is running in protected mode";
    // No password: a client from another address is told why and disconnected.
    let open = TestServer::start().await;
    let mut other = from_other_host(open.addr).await;
    assert!(other.call(&resp(&["PING"])).await.starts_with(DENIED));
    assert!(other.closed().await);
    let mut local = open.raw().await;
    assert_eq!(local.call(&resp(&["PING"])).await, "+PONG\r\n", "loopback clients are served");
    // protected-mode no: served.
    let unprotected = TestServer::with_conf("protected-mode no\n").await;
    assert_eq!(from_other_host(unprotected.addr).await.call(&resp(&["PING"])).await, "+PONG\r\n");
    // A password: authentication decides instead.
    let guarded = TestServer::with_conf("requirepass pw\n").await;
    let mut other = from_other_host(guarded.addr).await;
    assert_eq!(other.call(&resp(&["GET", "k"])).await, "-NOAUTH Authentication required.\r\n");
    assert_eq!(other.call(&resp(&["AUTH", "pw"])).await, "+OK\r\n");
    // A cluster node lets members from other hosts prove themselves, and nobody else in.
    let node = TestServer::with_conf(&format!("cluster-secret {SECRET}\n")).await;
    let mut other = from_other_host(node.addr).await;
    assert!(other.call(&resp(&["AUTH", "default", "x"])).await.starts_with(DENIED));
    assert!(other.closed().await);
    let mut other = from_other_host(node.addr).await;
    assert!(other.call(&resp(&["GET", "k"])).await.starts_with(DENIED));
    let mut peer = from_other_host(node.addr).await;
    assert_eq!(peer.call(&resp(&["AUTH", "edis", SECRET])).await, "+OK\r\n");
    assert_eq!(peer.call(&resp(&["SET", "k", "v"])).await, "+OK\r\n");
    assert!(peer.call(&resp(&["CLIENT", "INFO"])).await.contains(" user=edis "));
    assert!(node.raw().await.call(&resp(&["CLIENT", "INFO"])).await.contains(" user=default "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_whose_info_has_a_password() {
    let base = temp_dir("info-pw");
    let info = start_node(Kind::Info, base.join("info"), None, "requirepass infopw\n").await;
    let mut writes = Vec::new();
    for i in 0..3 {
        writes.push(start_node(Kind::Write, base.join(format!("w{i}")), Some(info.addr), "").await);
    }
    let mut reads = Vec::new();
    for i in 0..3 {
        reads.push(start_node(Kind::Read, base.join(format!("r{i}")), Some(info.addr), "").await);
    }
    let authed = || async {
        let url = format!("redis://:infopw@{}/", info.addr);
        multiplexed(&url).await
    };
    let text = |sub: &'static str| async move {
        let mut c = authed().await;
        redis::cmd("CLUSTER").arg(sub).query_async::<String>(&mut c).await.unwrap()
    };
    // Formed: every slot served, every read shard synced (listed in CLUSTER SLOTS).
    let formed = eventually(WAIT, || async {
        let mut c = authed().await;
        let ranges: Vec<Vec<Value>> = redis::cmd("CLUSTER").arg("SLOTS").query_async(&mut c).await.unwrap();
        ranges.len() == 3
            && ranges.iter().all(|r| r.len() == 4)
            && text("INFO").await.contains("cluster_state:ok")
    })
    .await;
    assert!(formed, "{}", text("NODES").await);
    let mut raw = Raw::connect(info.addr).await;
    assert_eq!(raw.call(&resp(&["CLUSTER", "NODES"])).await, "-NOAUTH Authentication required.\r\n");
    let nodes = text("NODES").await;
    // A shard with the wrong secret is refused, and the cluster does not notice.
    let wrong =
        start_node(Kind::Read, base.join("wrong"), Some(info.addr), "cluster-secret not-the-secret\n").await;
    let proxy = start_node(Kind::Proxy, base.join("proxy"), Some(info.addr), "").await;
    let served = eventually(WAIT, || async {
        let mut c = conn_to(proxy.addr).await;
        redis::cmd("SET").arg("k").arg("v").query_async::<Value>(&mut c).await.is_ok_and(|v| v == Value::Okay)
    })
    .await;
    let mut c = conn_to(proxy.addr).await;
    assert!(served, "the proxy serves");
    assert_eq!(q(&mut c, &["GET", "k"]).await, bulk("v"));
    assert_eq!(text("NODES").await, nodes, "the shard with the wrong secret never joined");
    assert!(text("INFO").await.contains("cluster_state:ok"));
    let mut probe = Raw::connect(wrong.addr).await;
    assert_eq!(probe.call(&resp(&["PING"])).await, "+PONG\r\n", "it still runs, alone");
    std::fs::remove_dir_all(&base).ok();
}

/// Acceptance 4 of issue 12, in process: info killed and started again 20 times under writes
/// through the proxy. After each restart every read shard replicates the primary the map
/// lists it under, and keys written after the restart read back through replica reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_info_changes_nothing() {
    let (mut cluster, proxy) = crate::proxy::cluster_with_proxy(1, "").await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, addr) = (stop.clone(), proxy.addr);
        tokio::spawn(async move {
            let mut c = conn_to(addr).await;
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _: Result<Value, _> =
                    redis::cmd("SET").arg(format!("bg{}", n % 500)).arg(n).query_async(&mut c).await;
                n += 1;
            }
            n
        })
    };
    for round in 0..20 {
        cluster.restart_info(round % 10 == 9).await;
        cluster.wait_info(|t| t.contains("cluster_state:ok"), "CLUSTER INFO").await;
        // Each read shard's own primary is the one CLUSTER NODES lists it under.
        let agree = eventually(Duration::from_secs(5), || async {
            let nodes = cluster_text(cluster.info.addr, "NODES").await;
            let port_of = |id: &str| -> Option<u16> {
                let line = nodes.lines().find(|l| l.starts_with(id))?;
                line.split(' ').nth(1)?.split(['@', ':']).nth(1)?.parse().ok()
            };
            let mut ok = nodes.lines().filter(|l| l.contains("slave")).count() == 3;
            for r in &cluster.reads {
                let line = nodes.lines().find(|l| l.contains(&format!(":{}@", r.addr.port())));
                let listed = line.and_then(|l| port_of(l.split(' ').nth(3)?));
                let info: String = redis::cmd("INFO")
                    .arg("replication")
                    .query_async(&mut conn_to(r.addr).await)
                    .await
                    .unwrap();
                let actual = info
                    .lines()
                    .find_map(|l| l.strip_prefix("master_port:"))
                    .map(|p| p.trim().parse::<u16>().unwrap());
                ok &= listed.is_some() && listed == actual;
            }
            ok
        })
        .await;
        assert!(agree, "round {round}: {}", cluster_text(cluster.info.addr, "NODES").await);
        assert!(covers_all(&slots(cluster.info.addr).await));
        // 1,000 keys written now are read back through the proxy's replica reads, by a
        // connection that did not write them (no read-your-writes to lean on).
        let mut w = conn_to(proxy.addr).await;
        let mut pipe = redis::pipe();
        for i in 0..1000 {
            pipe.cmd("SET").arg(format!("r{round}:{i}")).arg(i).ignore();
        }
        let _: () = pipe.query_async(&mut w).await.unwrap();
        let all_there = eventually(Duration::from_secs(2), || async {
            let mut r = conn_to(proxy.addr).await;
            let mut pipe = redis::pipe();
            for i in 0..1000 {
                pipe.cmd("GET").arg(format!("r{round}:{i}"));
            }
            let got: Vec<Option<u64>> = pipe.query_async(&mut r).await.unwrap();
            got.iter().enumerate().all(|(i, v)| *v == Some(i as u64))
        })
        .await;
        assert!(all_there, "round {round}: keys written after the restart read back");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(writer.await.unwrap() > 0);
    // The replica reads really went to read shards.
    let hits = crate::proxy::read_hits(&cluster.reads).await;
    assert!(hits.iter().all(|h| *h > 0), "{hits:?}");
}

/// A stock redis-server follows a cluster member when given the member user and secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_redis_server_follows_a_cluster_member_with_masteruser() {
    let Some(path) = which("redis-server") else {
        println!("SKIPPED: redis-server is not installed (apt-get install redis-server)");
        return;
    };
    let cluster = Cluster::start(1).await;
    let w = cluster.writes[0].addr;
    let mut p = conn_to(w).await;
    let serves = eventually(WAIT, || async {
        redis::cmd("SET").arg("k0").arg(0).query_async::<Value>(&mut conn_to(w).await).await.is_ok()
    })
    .await;
    assert!(serves, "the write shard never saw its slots");
    for i in 0..100 {
        q(&mut p, &["SET", &format!("k{i}"), &i.to_string()]).await;
    }
    let port = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let dir = temp_dir("stock-member");
    let mut child = tokio::process::Command::new(path)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--dir", dir.to_str().unwrap()])
        .args(["--replicaof", "127.0.0.1", &w.port().to_string()])
        .args(["--masteruser", "edis", "--masterauth", SECRET])
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start redis-server");
    let url = format!("redis://127.0.0.1:{port}/");
    let synced = eventually(WAIT, || {
        let url = url.clone();
        async move {
            let Ok(client) = redis::Client::open(url) else { return false };
            let Ok(mut c) = client.get_multiplexed_async_connection().await else { return false };
            let n: i64 = redis::cmd("DBSIZE").query_async(&mut c).await.unwrap_or(0);
            let info: String =
                redis::cmd("INFO").arg("replication").query_async(&mut c).await.unwrap_or_default();
            n == 100 && info.contains("master_link_status:up")
        }
    })
    .await;
    assert!(synced, "redis-server never synced with masteruser/masterauth");
    child.kill().await.ok();
    std::fs::remove_dir_all(&dir).ok();
}

/// Info moving a read shard (restarted naming another write shard): it follows the new
/// primary, is listed loading (no reads, not in CLUSTER SLOTS) until it has synced with it,
/// and its actual primary always ends up the one CLUSTER NODES lists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_read_shard_follows_its_new_primary() {
    let mut cluster = Cluster::start(3).await;
    cluster.add_read().await;
    let listed = |s: &[(i64, i64, u16, Vec<u16>)]| s.iter().any(|r| r.3.len() == 1);
    assert!(eventually(WAIT, || async { listed(&slots(cluster.info.addr).await) }).await);
    let map = slots(cluster.info.addr).await;
    let from = map.iter().find(|r| r.3.len() == 1).unwrap().2;
    let to = map.iter().find(|r| r.2 != from).unwrap().clone();
    let key = (0..1000).map(|i| format!("m{i}")).find(|k| {
        let s = key_slot(k.as_bytes()) as i64;
        to.0 <= s && s <= to.1
    });
    let key = key.unwrap();
    let w = cluster.writes.iter().find(|w| w.addr.port() == to.2).unwrap().addr;
    let wrote = eventually(WAIT, || async {
        redis::cmd("SET").arg(&key).arg("moved").query_async::<Value>(&mut conn_to(w).await).await.is_ok()
    })
    .await;
    assert!(wrote);
    // The same read shard (same --dir, so the same identity), started again naming `to`.
    let dir = cluster.reads[0].dir.clone();
    cluster.reads[0] =
        start_node(Kind::Read, dir, Some(cluster.info.addr), &format!("replica-of 127.0.0.1:{}\n", to.2))
            .await;
    let r = cluster.reads[0].addr;
    let settled = eventually(WAIT, || async {
        let s = slots(cluster.info.addr).await;
        let listed_under = s.iter().find(|x| x.3.contains(&r.port())).map(|x| x.2);
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query_async(&mut conn_to(r).await)
            .await
            .unwrap_or_default();
        let actual = info.lines().find_map(|l| l.strip_prefix("master_port:")).map(|p| p.trim().to_string());
        listed_under == Some(to.2) && actual == Some(to.2.to_string())
    })
    .await;
    assert!(settled, "{}", cluster_text(cluster.info.addr, "NODES").await);
    let mut raw = Raw::connect(r).await;
    assert_eq!(raw.call(&resp(&["GET", &key])).await, "$5\r\nmoved\r\n", "it has its new primary's data");
}

/// A rust-edis plain replica follows a cluster member the same way: masteruser/masterauth, or
/// the cluster secret itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_replica_follows_a_cluster_member() {
    let cluster = Cluster::start(1).await;
    let w = cluster.writes[0].addr;
    let serves = eventually(WAIT, || async {
        redis::cmd("SET").arg("k").arg("v").query_async::<Value>(&mut conn_to(w).await).await.is_ok()
    })
    .await;
    assert!(serves);
    let by_user = TestServer::replica_of(w, &format!("masteruser edis\nmasterauth {SECRET}\n")).await;
    let by_secret = TestServer::replica_of(w, &format!("cluster-secret {SECRET}\n")).await;
    for r in [&by_user, &by_secret] {
        let got = eventually(WAIT, || async {
            let reply = redis::cmd("GET").arg("k").query_async::<Value>(&mut r.conn().await).await;
            reply.is_ok_and(|v| v == bulk("v"))
        })
        .await;
        assert!(got, "{} synced", r.addr);
    }
}

/// `redis-cli -c` at a read shard: a write follows MOVED to the primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cli_follows_a_read_shards_redirect() {
    let Some(cli) = which("redis-cli") else {
        println!("SKIPPED: redis-cli is not installed (apt-get install redis-tools)");
        return;
    };
    let mut cluster = Cluster::start(3).await;
    for _ in 0..3 {
        cluster.add_read().await;
    }
    assert!(
        eventually(WAIT, || async { slots(cluster.info.addr).await.iter().all(|r| r.3.len() == 1) }).await
    );
    for r in &cluster.reads {
        assert!(eventually(WAIT, || async { covers_all(&slots(r.addr).await) }).await, "{}'s map", r.addr);
    }
    for r in &cluster.reads {
        let port = r.addr.port().to_string();
        // Bounded: a redirect loop must fail the test, not hang it.
        let run = tokio::process::Command::new(&cli)
            .args(["-c", "-p", &port, "SET", &format!("via{port}"), "v"])
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(WAIT, run).await.expect("redis-cli answered within 10 s").unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK", "{out:?}");
    }
    let mut c = redis::cluster::ClusterClient::new(vec![format!("redis://{}/", cluster.writes[0].addr)])
        .unwrap()
        .get_async_connection()
        .await
        .unwrap();
    for r in &cluster.reads {
        let v: Option<String> =
            redis::cmd("GET").arg(format!("via{}", r.addr.port())).query_async(&mut c).await.unwrap();
        assert_eq!(v.as_deref(), Some("v"));
    }
}

/// DEBUG as Redis 7: refused unless `enable-debug-command` allows it (`local`: loopback
/// clients only), whatever the subcommand.
#[tokio::test]
async fn debug_needs_enable_debug_command() {
    const REFUSED: &str = "-ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.\r\n";
    let start = |conf: &'static str| async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let config = rust_edis::config::Config::parse(conf).unwrap();
        let (tx, rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            rust_edis::roles::write::run(config, listener, rx).await.unwrap();
        });
        (addr, tx, task)
    };
    let (addr, _tx, task) = start("protected-mode no\n").await;
    let mut raw = Raw::connect(addr).await;
    assert_eq!(raw.call(&resp(&["DEBUG", "DIGEST"])).await, REFUSED);
    assert_eq!(raw.call(&resp(&["DEBUG", "NOSUCH"])).await, REFUSED);
    let set = raw.call(&resp(&["CONFIG", "SET", "enable-debug-command", "yes"])).await;
    assert!(set.starts_with("-ERR CONFIG SET failed"), "{set}");
    task.abort();
    let (addr, _tx, task) = start("enable-debug-command local\nprotected-mode no\n").await;
    assert!(Raw::connect(addr).await.call(&resp(&["DEBUG", "DIGEST"])).await.starts_with('+'));
    assert_eq!(from_other_host(addr).await.call(&resp(&["DEBUG", "DIGEST"])).await, REFUSED);
    task.abort();
}

/// What a user sees when starting the binary: directives that cannot work are refused, a
/// busy port is named, a log file gets plain lines naming the role, SIGTERM stops cleanly.
#[tokio::test]
async fn the_binary_says_what_it_does() {
    use std::process::{Command, Stdio};
    const BIN: &str = env!("CARGO_BIN_EXE_rust-edis");
    let dir = temp_dir("first-run");
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("d.conf");
    std::fs::write(&conf, "daemonize yes\n").unwrap();
    let out = Command::new(BIN).arg("--config").arg(&conf).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("daemonize yes is not supported"), "{out:?}");
    // A port in use: the message names it.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let out = Command::new(BIN)
        .args(["--role", "write", "--port", &port, "--loglevel", "nothing"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains(&format!("cannot listen on 127.0.0.1:{port}")), "{said}");
    drop(busy);
    // logfile: plain lines (no colour codes), each role named; SIGTERM stops it cleanly.
    let log = dir.join("edis.log");
    std::fs::write(&conf, format!("logfile \"{}\"\ndir \"{}\"\n", log.display(), dir.display())).unwrap();
    let port = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let mut child = Command::new(BIN)
        .args(["--role", "write", "--port", &port.to_string(), "--config", conf.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready = eventually(WAIT, || async {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("write shard ready to accept connections"))
    })
    .await;
    assert!(ready, "{:?}", std::fs::read_to_string(&log));
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    // (Up to 10 s: a clean stop saves and fsyncs, slow on a loaded CI machine; one
    // clean-clone run took more than 5 s.)
    let mut status = None;
    for _ in 0..400 {
        status = child.try_wait().unwrap();
        if status.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(status.and_then(|s| s.code()), Some(0), "SIGTERM ends it with success");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains('\u{1b}'), "no colour codes in a log file: {text}");
    assert!(text.contains("received SIGTERM") && text.contains("write shard shutting down"), "{text}");
}
