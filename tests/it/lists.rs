//! Lists and blocking pops through every entry point: a write shard, `--role all` and the
//! proxy over TCP. Blocked clients are served first come first served, each exactly once;
//! timeouts answer nil; a client that leaves takes nothing; inside MULTI nothing blocks;
//! CLIENT UNBLOCK; replicas get the pop, never the blocking command.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use redis::Value;

use crate::cluster::{conn_to, WAIT};
use crate::harness::*;

/// Clients blocked on a server (INFO's blocked_clients).
async fn blocked(addr: SocketAddr) -> i64 {
    let info: String = redis::cmd("INFO").arg("clients").query_async(&mut conn_to(addr).await).await.unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("blocked_clients:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(-1)
}

/// A raw connection that has sent `args` and waits for the reply.
async fn waiting(addr: SocketAddr, args: &[&str]) -> Raw {
    let mut r = Raw::connect(addr).await;
    r.send(&resp(args)).await;
    r
}

/// Every entry point: a standalone write shard, then `--role all` and the proxy over TCP
/// (`true`: a cluster, where keys of several slots are refused).
async fn each_entry_point(mut f: impl AsyncFnMut(SocketAddr, bool)) {
    let shard = TestServer::start().await;
    f(shard.addr, false).await;
    let all = crate::all::start("").await;
    f(all.proxy, true).await;
    let (_cluster, proxy) = crate::proxy::cluster_with_proxy(1, "").await;
    f(proxy.addr, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_blocked_client_gets_exactly_one_value() {
    each_entry_point(async |addr, _| {
        const N: usize = 100;
        let mut clients = Vec::new();
        for i in 0..N {
            clients.push(waiting(addr, &["BLPOP", &format!("{{q}}k{i}"), "{q}shared", "0"]).await);
        }
        // They are all blocked before anything is pushed (INFO counts them, through a proxy
        // too): pushes on a key nobody waits on would stay in the list.
        let mut c = conn_to(addr).await;
        let all_blocked = eventually(WAIT, || async { blocked(addr).await == N as i64 }).await;
        assert!(all_blocked, "{addr}: blocked_clients {}", blocked(addr).await);
        // Another client is not held up meanwhile.
        let started = Instant::now();
        assert_eq!(q(&mut c, &["SET", "{q}other", "v"]).await, Value::Okay);
        assert_eq!(q(&mut c, &["GET", "{q}other"]).await, bulk("v"));
        assert!(started.elapsed() < Duration::from_secs(2), "{addr}: SET/GET waited behind blocked clients");
        for i in 0..N / 2 {
            q(&mut c, &["RPUSH", &format!("{{q}}k{i}"), &format!("v{i}")]).await;
        }
        let mut shared: Vec<String> = (N / 2..N).map(|i| format!("s{i}")).collect();
        let mut push = redis::cmd("RPUSH");
        push.arg("{q}shared").arg(&shared);
        let _: i64 = push.query_async(&mut c).await.unwrap();
        let mut got_shared = Vec::new();
        for (i, mut r) in clients.into_iter().enumerate() {
            let reply = r.reply().await;
            if i < N / 2 {
                let key = format!("{{q}}k{i}");
                let v = format!("v{i}");
                let want = format!("*2\r\n${}\r\n{key}\r\n${}\r\n{v}\r\n", key.len(), v.len());
                assert_eq!(reply, want, "{addr}: client {i}");
            } else {
                let v = reply.rsplit("\r\n").nth(1).unwrap().to_string();
                got_shared.push(v);
            }
        }
        got_shared.sort();
        shared.sort();
        assert_eq!(got_shared, shared, "{addr}: each shared value went to exactly one client");
        assert_eq!(q(&mut c, &["EXISTS", "{q}shared"]).await, int(0), "{addr}");
        let none_left = eventually(WAIT, || async { blocked(addr).await == 0 }).await;
        assert!(none_left, "{addr}: blocked_clients {} once all were served", blocked(addr).await);
        q(&mut c, &["FLUSHALL"]).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_clients_are_served_in_arrival_order() {
    let s = TestServer::start().await;
    let mut clients = Vec::new();
    for i in 0..20 {
        clients.push(waiting(s.addr, &["BRPOP", "fifo", "0"]).await);
        assert!(eventually(WAIT, || async { blocked(s.addr).await == i + 1 }).await, "client {i} blocked");
    }
    let mut c = s.conn().await;
    let values: Vec<String> = (0..20).map(|i| format!("v{i:02}")).collect();
    // RPUSH v00 ... v19: BRPOP takes from the tail, so the first waiter gets v19.
    let mut push = redis::cmd("RPUSH");
    push.arg("fifo").arg(&values);
    let _: i64 = push.query_async(&mut c).await.unwrap();
    for (i, r) in clients.iter_mut().enumerate() {
        let want = format!("v{:02}", 19 - i);
        assert!(r.reply().await.ends_with(&format!("{want}\r\n")), "client {i} gets {want}");
    }
    assert_eq!(blocked(s.addr).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_and_errors() {
    each_entry_point(async |addr, cluster| {
        let mut r = Raw::connect(addr).await;
        let started = Instant::now();
        assert_eq!(r.call(&resp(&["BLPOP", "{e}none", "0.2"])).await, "*-1\r\n", "{addr}");
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(200) && took < Duration::from_secs(3), "{addr}: {took:?}");
        assert_eq!(r.call(&resp(&["BLMOVE", "{e}none", "{e}d", "LEFT", "LEFT", "0.05"])).await, "*-1\r\n");
        assert_eq!(r.call(&resp(&["BZPOPMIN", "{e}none", "0.05"])).await, "*-1\r\n");
        assert_eq!(
            r.call(&resp(&["BLPOP", "{e}none", "abc"])).await,
            "-ERR timeout is not a float or out of range\r\n"
        );
        assert_eq!(r.call(&resp(&["BLPOP", "{e}none", "-1"])).await, "-ERR timeout is negative\r\n");
        assert_eq!(
            r.call(&resp(&["BLPOP", "{e}none"])).await,
            "-ERR wrong number of arguments for 'blpop' command\r\n"
        );
        assert_eq!(r.call(&resp(&["SET", "{e}str", "x"])).await, "+OK\r\n");
        assert!(r.call(&resp(&["BLPOP", "{e}none", "{e}str", "0"])).await.starts_with("-WRONGTYPE"));
        assert_eq!(
            r.call(&resp(&["BLMPOP", "0", "0", "{e}a", "LEFT"])).await,
            "-ERR numkeys should be greater than 0\r\n"
        );
        // Data there already: no wait.
        r.call(&resp(&["RPUSH", "{e}l", "a", "b", "c"])).await;
        assert_eq!(
            r.call(&resp(&["BLMPOP", "0", "2", "{e}none", "{e}l", "RIGHT", "COUNT", "2"])).await,
            "*2\r\n$4\r\n{e}l\r\n*2\r\n$1\r\nc\r\n$1\r\nb\r\n"
        );
        // Inside MULTI nothing blocks: an empty key answers as a timeout.
        r.call(&resp(&["MULTI"])).await;
        r.call(&resp(&["BLPOP", "{e}none", "0"])).await;
        r.call(&resp(&["BLPOP", "{e}l", "0"])).await;
        assert_eq!(r.call(&resp(&["EXEC"])).await, "*2\r\n*-1\r\n*2\r\n$4\r\n{e}l\r\n$1\r\na\r\n", "{addr}");
        // Keys of several slots: refused in a cluster, as Redis Cluster does.
        let e = r.call(&resp(&["BLPOP", "{a}x", "{b}y", "0.05"])).await;
        if cluster {
            assert!(e.starts_with("-CROSSSLOT"), "{addr}: {e}");
        } else {
            assert_eq!(e, "*-1\r\n");
        }
        r.call(&resp(&["FLUSHALL"])).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_takes_nothing() {
    each_entry_point(async |addr, _| {
        let r = waiting(addr, &["BLPOP", "{g}k", "0"]).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(r);
        let mut c = conn_to(addr).await;
        // Once the server noticed, a push stays in the list.
        let mut kept = false;
        for _ in 0..50 {
            q(&mut c, &["RPUSH", "{g}k", "x"]).await;
            if q(&mut c, &["LLEN", "{g}k"]).await == int(1) {
                kept = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(kept, "{addr}: the value pushed after the client left stayed");
        // A waiter behind a gone one still gets its value.
        let gone = waiting(addr, &["BLPOP", "{g}next", "0"]).await;
        let mut stays = waiting(addr, &["BLPOP", "{g}next", "0"]).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(gone);
        tokio::time::sleep(Duration::from_millis(50)).await;
        q(&mut c, &["RPUSH", "{g}next", "y"]).await;
        assert!(stays.reply().await.ends_with("$1\r\ny\r\n"), "{addr}");
        q(&mut c, &["FLUSHALL"]).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_unblock_ends_a_wait() {
    let s = TestServer::start().await;
    let mut r = Raw::connect(s.addr).await;
    let id = r.call(&resp(&["CLIENT", "ID"])).await;
    let id = id.trim_start_matches(':').trim().to_string();
    r.send(&resp(&["BLPOP", "u", "0"])).await;
    let mut c = s.conn().await;
    assert!(eventually(WAIT, || async { blocked(s.addr).await == 1 }).await);
    assert_eq!(q(&mut c, &["CLIENT", "UNBLOCK", &id, "ERROR"]).await, int(1));
    assert_eq!(r.reply().await, "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n");
    r.send(&resp(&["BLPOP", "u", "0"])).await;
    assert!(eventually(WAIT, || async { blocked(s.addr).await == 1 }).await);
    assert_eq!(q(&mut c, &["CLIENT", "UNBLOCK", &id, "TIMEOUT"]).await, int(1));
    assert_eq!(r.reply().await, "*-1\r\n");
    assert_eq!(q(&mut c, &["CLIENT", "UNBLOCK", &id]).await, int(0), "not blocked any more");
    assert!(err(&mut c, &["CLIENT", "UNBLOCK", &id, "MAYBE"]).await.starts_with("ERR CLIENT UNBLOCK reason"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_get_the_pop_not_the_blocking_command() {
    let primary = TestServer::start().await;
    let replica = TestServer::replica_of(primary.addr, "").await;
    let mut c = primary.conn().await;
    q(&mut c, &["SET", "warm", "1"]).await;
    assert!(eventually_holds(replica.addr, "warm", "1", WAIT).await, "the replica never had the key");
    let mut waiters = vec![
        waiting(primary.addr, &["BLPOP", "jobs", "0"]).await,
        waiting(primary.addr, &["BLMOVE", "jobs", "done", "RIGHT", "LEFT", "0"]).await,
        waiting(primary.addr, &["BZPOPMAX", "z", "0"]).await,
    ];
    assert!(eventually(WAIT, || async { blocked(primary.addr).await == 3 }).await);
    q(&mut c, &["RPUSH", "jobs", "a", "b", "c"]).await;
    q(&mut c, &["ZADD", "z", "1", "low", "2", "high"]).await;
    assert!(waiters[0].reply().await.ends_with("$1\r\na\r\n"));
    assert_eq!(waiters[1].reply().await, "$1\r\nc\r\n");
    assert!(waiters[2].reply().await.contains("high"));
    waiters.clear();
    let same = eventually(WAIT, || async {
        let mut r = replica.conn().await;
        q(&mut r, &["LRANGE", "jobs", "0", "-1"]).await == Value::Array(vec![bulk("b")])
            && q(&mut r, &["LRANGE", "done", "0", "-1"]).await == Value::Array(vec![bulk("c")])
            && q(&mut r, &["ZRANGE", "z", "0", "-1"]).await == Value::Array(vec![bulk("low")])
    })
    .await;
    assert!(same, "the replica holds what the primary holds");
    let stats: String =
        redis::cmd("INFO").arg("commandstats").query_async(&mut replica.conn().await).await.unwrap();
    assert!(!stats.contains("cmdstat_blpop") && !stats.contains("cmdstat_blmove"), "{stats}");
    assert!(stats.contains("cmdstat_lpop") && stats.contains("cmdstat_lmove"), "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sort_through_every_entry_point() {
    each_entry_point(async |addr, cluster| {
        let mut c = conn_to(addr).await;
        q(&mut c, &["RPUSH", "{s}l", "3", "1", "2"]).await;
        let sorted = Value::Array(vec![bulk("1"), bulk("2"), bulk("3")]);
        assert_eq!(q(&mut c, &["SORT", "{s}l"]).await, sorted, "{addr}");
        assert_eq!(
            q(&mut c, &["SORT_RO", "{s}l", "DESC", "LIMIT", "0", "1"]).await,
            Value::Array(vec![bulk("3")])
        );
        assert_eq!(q(&mut c, &["SORT", "{s}l", "STORE", "{s}dst"]).await, int(3));
        assert_eq!(q(&mut c, &["LRANGE", "{s}dst", "0", "-1"]).await, sorted, "{addr}");
        if cluster {
            let e = err(&mut c, &["SORT", "{s}l", "STORE", "{x}dst"]).await;
            assert!(e.starts_with("CROSSSLOT"), "{addr}: {e}");
            let e = err(&mut c, &["SORT", "{s}l", "BY", "w_*"]).await;
            assert_eq!(e, "ERR BY option of SORT denied in Cluster mode.", "{addr}");
            let e = err(&mut c, &["SORT", "{s}l", "GET", "#"]).await;
            assert_eq!(e, "ERR GET option of SORT denied in Cluster mode.", "{addr}");
        } else {
            q(&mut c, &["MSET", "w_1", "3", "w_2", "2", "w_3", "1"]).await;
            let by = Value::Array(vec![bulk("3"), bulk("2"), bulk("1")]);
            assert_eq!(q(&mut c, &["SORT", "{s}l", "BY", "w_*"]).await, by);
        }
        q(&mut c, &["FLUSHALL"]).await;
    })
    .await;
}
