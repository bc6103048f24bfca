//! Micro-benchmarks of the hot pieces (`cargo bench`): request parsing, reply encoding, the
//! keyspace, slot computation, and the routing decision for one command.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rust_edis::command::lookup;
use rust_edis::keyspace::{Db, Value};
use rust_edis::resp::{Reply, RequestParser};
use rust_edis::topology::map::{NodeAddr, Shard};
use rust_edis::topology::registry::slot_range;
use rust_edis::topology::view::{ClusterView, NodeKind};
use rust_edis::topology::{key_slot, Topology};

fn set_frame(i: usize) -> Vec<u8> {
    let key = format!("key:{i:012}");
    let value = "x".repeat(64);
    format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{value}\r\n", key.len(), value.len()).into_bytes()
}

fn parser(c: &mut Criterion) {
    let mut g = c.benchmark_group("parser");
    let one = set_frame(1);
    g.throughput(Throughput::Elements(1));
    g.bench_function("one SET (64-byte value)", |b| {
        let mut args = Vec::with_capacity(4);
        let mut p = RequestParser::default();
        b.iter(|| {
            let mut buf = BytesMut::from(&one[..]);
            args.clear();
            black_box(p.next(&mut buf, &mut args).unwrap());
        })
    });
    let pipeline: Vec<u8> = (0..100).flat_map(set_frame).collect();
    g.throughput(Throughput::Elements(100));
    g.bench_function("pipeline of 100 SETs", |b| {
        let mut args = Vec::with_capacity(400);
        let mut p = RequestParser::default();
        b.iter(|| {
            let mut buf = BytesMut::from(&pipeline[..]);
            args.clear();
            while p.next(&mut buf, &mut args).unwrap().is_some() {}
            black_box(args.len());
        })
    });
    g.finish();
}

fn replies(c: &mut Criterion) {
    let mut g = c.benchmark_group("reply");
    let bulk = Reply::Bulk(Bytes::from(vec![b'x'; 64]));
    let array = Reply::Array((0..10).map(|_| bulk.clone()).collect());
    let mut out = BytesMut::with_capacity(64 * 1024);
    g.bench_function("bulk 64 bytes", |b| {
        b.iter(|| {
            out.clear();
            black_box(&bulk).encode(2, &mut out);
        })
    });
    g.bench_function("integer", |b| {
        b.iter(|| {
            out.clear();
            Reply::Int(black_box(1_234_567)).encode(2, &mut out);
        })
    });
    g.bench_function("array of 10 bulks (MGET)", |b| {
        b.iter(|| {
            out.clear();
            black_box(&array).encode(2, &mut out);
        })
    });
    g.finish();
}

fn keyspace(c: &mut Criterion) {
    let mut g = c.benchmark_group("keyspace");
    let mut db = Db::new();
    let keys: Vec<Vec<u8>> = (0..100_000).map(|i| format!("key:{i:012}").into_bytes()).collect();
    for k in &keys {
        db.set(k, Value::Str(&[b'x'; 64]), None);
    }
    let mut i = 0;
    g.bench_function("GET hit (100k keys), value copied out", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            black_box(db.get(&keys[i], 0).map(|e| Bytes::copy_from_slice(e.str())));
        })
    });
    let value = vec![b'y'; 64];
    g.bench_function("SET overwrite (100k keys)", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            db.set(&keys[i], Value::Str(&value), None);
        })
    });
    g.finish();
}

fn slots(c: &mut Criterion) {
    let mut g = c.benchmark_group("slot");
    g.bench_function("key_slot 16-byte key", |b| b.iter(|| key_slot(black_box(b"key:000000001234"))));
    g.bench_function("key_slot hash tag", |b| b.iter(|| key_slot(black_box(b"{user1000}.following"))));
    g.finish();
}

fn routing(c: &mut Criterion) {
    let node = |c: char, port| NodeAddr {
        id: c.to_string().repeat(40),
        host: "127.0.0.1".into(),
        port,
        ..Default::default()
    };
    let topology = Topology {
        epoch: 1,
        ok: true,
        shards: (0..3)
            .map(|i| Shard {
                primary: node('a', 7001 + i as u16),
                index: i,
                slots: slot_range(i, 3),
                replicas: vec![],
            })
            .collect(),
    };
    let mut view = ClusterView::new("a".repeat(40), NodeKind::Info);
    view.update(topology);
    let args: Vec<Bytes> =
        ["GET", "key:000000001234"].iter().map(|s| Bytes::from_static(s.as_bytes())).collect();
    c.bench_function("routing: one GET (lookup, keys, slot, owner)", |b| {
        b.iter(|| {
            let cmd = lookup(black_box(&args[0])).unwrap();
            let slot =
                ClusterView::slot_of(cmd.key_positions(args.len()).map(|i| &args[i])).unwrap().unwrap();
            black_box(view.serve(slot).is_err());
        })
    });
}

/// Sorted sets at 10k, 100k and 1M members: a score update (ZADD of an existing member) and a
/// ZRANGE ... BYSCORE LIMIT 0 10 should cost O(log n), so the three sizes stay close.
fn sorted_sets(c: &mut Criterion) {
    use rust_edis::keyspace::zset::{ScoreBound, ZLimits, ZSet};
    let limits = ZLimits { entries: 128, value: 64 };
    let mut group = c.benchmark_group("zset");
    for n in [10_000usize, 100_000, 1_000_000] {
        let mut z = ZSet::default();
        for i in 0..n {
            z.set(format!("member:{i:09}").as_bytes(), (i * 7 % n) as f64, &limits);
        }
        let mut x = 1u64;
        group.bench_function(format!("zadd_update/{n}"), |b| {
            b.iter(|| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                let i = (x >> 33) as usize % n;
                z.set(format!("member:{i:09}").as_bytes(), ((x >> 20) % n as u64) as f64, &limits);
            })
        });
        group.bench_function(format!("zrange_byscore_limit_10/{n}"), |b| {
            b.iter(|| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                let lo = ((x >> 33) % n as u64) as f64;
                let (a, _) = z.score_range(
                    &ScoreBound { value: lo, exclusive: false },
                    &ScoreBound { value: f64::INFINITY, exclusive: false },
                );
                black_box(z.range(a, a + 10));
            })
        });
    }
    group.finish();
}

criterion_group!(benches, parser, replies, keyspace, slots, routing, sorted_sets);
criterion_main!(benches);
