//! Bitmaps, bit fields and HyperLogLogs through every entry point, and on a replica.

use redis::Value;

use crate::cluster::{conn_to, WAIT};
use crate::harness::*;

async fn exercise(addr: std::net::SocketAddr, cluster: bool) {
    let mut c = conn_to(addr).await;
    assert_eq!(q(&mut c, &["SETBIT", "{b}m", "7", "1"]).await, int(0));
    assert_eq!(q(&mut c, &["SETBIT", "{b}m", "100", "1"]).await, int(0));
    assert_eq!(q(&mut c, &["SETBIT", "{b}m", "7", "0"]).await, int(1));
    assert_eq!(q(&mut c, &["GETBIT", "{b}m", "100"]).await, int(1));
    assert_eq!(q(&mut c, &["STRLEN", "{b}m"]).await, int(13));
    assert_eq!(q(&mut c, &["BITCOUNT", "{b}m"]).await, int(1));
    assert_eq!(q(&mut c, &["BITPOS", "{b}m", "1"]).await, int(100));
    assert_eq!(q(&mut c, &["BITPOS", "{b}m", "1", "0", "-1", "BIT"]).await, int(100));
    q(&mut c, &["SET", "{b}a", "abc"]).await;
    assert_eq!(q(&mut c, &["BITOP", "XOR", "{b}x", "{b}a", "{b}a"]).await, int(3));
    assert_eq!(q(&mut c, &["GET", "{b}x"]).await, Value::BulkString(vec![0, 0, 0]));
    let fields = q(
        &mut c,
        &["BITFIELD", "{b}f", "SET", "i8", "0", "100", "INCRBY", "i8", "0", "100", "GET", "u8", "0"],
    )
    .await;
    assert_eq!(fields, Value::Array(vec![int(0), int(-56), int(200)]));
    let sat = q(&mut c, &["BITFIELD", "{b}f", "OVERFLOW", "FAIL", "INCRBY", "u8", "0", "100"]).await;
    assert_eq!(sat, Value::Array(vec![Value::Nil]));
    assert_eq!(q(&mut c, &["BITFIELD_RO", "{b}f", "GET", "u4", "0"]).await, Value::Array(vec![int(12)]));
    let e = err(&mut c, &["BITFIELD", "{b}f", "GET", "u64", "0"]).await;
    assert!(e.starts_with("ERR Invalid bitfield type"), "{e}");
    assert_eq!(
        err(&mut c, &["SETBIT", "{b}m", "-1", "1"]).await,
        "ERR bit offset is not an integer or out of range"
    );
    // HyperLogLogs: counted, merged, and refused across slots in a cluster.
    assert_eq!(q(&mut c, &["PFADD", "{b}h1", "a", "b", "c"]).await, int(1));
    assert_eq!(q(&mut c, &["PFADD", "{b}h2", "c", "d"]).await, int(1));
    assert_eq!(q(&mut c, &["PFCOUNT", "{b}h1", "{b}h2"]).await, int(4));
    assert_eq!(q(&mut c, &["PFMERGE", "{b}h3", "{b}h1", "{b}h2"]).await, Value::Okay);
    assert_eq!(q(&mut c, &["PFCOUNT", "{b}h3"]).await, int(4));
    let e = err(&mut c, &["PFADD", "{b}a", "x"]).await;
    assert_eq!(e, "WRONGTYPE Key is not a valid HyperLogLog string value.");
    if cluster {
        let e = err(&mut c, &["BITOP", "AND", "{x}d", "{b}a"]).await;
        assert!(e.starts_with("CROSSSLOT"), "{addr}: {e}");
        let e = err(&mut c, &["PFMERGE", "{x}d", "{b}h1"]).await;
        assert!(e.starts_with("CROSSSLOT"), "{addr}: {e}");
    }
    q(&mut c, &["FLUSHALL"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bit_commands_through_every_entry_point() {
    let shard = TestServer::start().await;
    exercise(shard.addr, false).await;
    let all = crate::all::start("").await;
    exercise(all.proxy, true).await;
    let (_cluster, proxy) = crate::proxy::cluster_with_proxy(1, "").await;
    exercise(proxy.addr, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_holds_the_same_bits() {
    let primary = TestServer::start().await;
    let replica = TestServer::replica_of(primary.addr, "").await;
    let mut p = primary.conn().await;
    q(&mut p, &["SETBIT", "m", "1000", "1"]).await;
    q(&mut p, &["BITFIELD", "f", "OVERFLOW", "SAT", "INCRBY", "u8", "#3", "300", "SET", "i16", "40", "-7"])
        .await;
    q(&mut p, &["SET", "a", "xyz"]).await;
    q(&mut p, &["BITOP", "NOT", "n", "a"]).await;
    q(&mut p, &["PFADD", "hll", "x", "y", "z"]).await;
    q(&mut p, &["PFCOUNT", "hll"]).await;
    let same = eventually(WAIT, || async {
        let mut r = replica.conn().await;
        let mut p = primary.conn().await;
        let mut ok = true;
        for key in ["m", "f", "n", "hll"] {
            ok &= q(&mut r, &["GET", key]).await == q(&mut p, &["GET", key]).await;
        }
        ok && q(&mut r, &["EXISTS", "n"]).await == int(1)
    })
    .await;
    assert!(same, "the replica's bitmaps are the primary's");
}
