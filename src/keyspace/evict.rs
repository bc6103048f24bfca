//! maxmemory: which key goes when memory runs out, as Redis 7 decides it.
//!
//! LRU and LFU are approximated as in Redis: a few keys are sampled per database
//! (`maxmemory-samples`), the best candidates kept in a pool of 16 across rounds, and the
//! best of the pool evicted. An entry's 32-bit access field holds its last access in seconds
//! (LRU), or under an LFU policy Redis's pair: the minutes of its last decrement (16 bits) and
//! a logarithmic access counter (8 bits), incremented with probability 1/((c-5)*factor+1) and
//! decremented by one per `lfu-decay-time` minutes.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use bytes::Bytes;

use super::{Db, Rng};

/// maxmemory-policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    #[default]
    NoEviction,
    AllKeysLru,
    AllKeysLfu,
    AllKeysRandom,
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
}

impl Policy {
    pub fn parse(s: &str) -> Policy {
        match s {
            "allkeys-lru" => Policy::AllKeysLru,
            "allkeys-lfu" => Policy::AllKeysLfu,
            "allkeys-random" => Policy::AllKeysRandom,
            "volatile-lru" => Policy::VolatileLru,
            "volatile-lfu" => Policy::VolatileLfu,
            "volatile-random" => Policy::VolatileRandom,
            "volatile-ttl" => Policy::VolatileTtl,
            _ => Policy::NoEviction,
        }
    }

    pub fn lfu(self) -> bool {
        matches!(self, Policy::AllKeysLfu | Policy::VolatileLfu)
    }

    /// Only keys with a TTL are candidates.
    pub fn volatile(self) -> bool {
        matches!(
            self,
            Policy::VolatileLru | Policy::VolatileLfu | Policy::VolatileRandom | Policy::VolatileTtl
        )
    }

    fn random(self) -> bool {
        matches!(self, Policy::AllKeysRandom | Policy::VolatileRandom)
    }
}

/// The LFU parameters (lfu-log-factor, lfu-decay-time). Whether a database keeps counters
/// at all is its own (see `Db::lfu`), so servers of one process may differ.
static LOG_FACTOR: AtomicU32 = AtomicU32::new(10);
static DECAY_MINUTES: AtomicU32 = AtomicU32::new(1);

/// A new key's counter, as Redis's LFU_INIT_VAL: not evicted before it had a chance.
const LFU_INIT: u32 = 5;

/// Takes the LFU parameters from the configuration.
pub fn configure(log_factor: u32, decay_minutes: u32) {
    LOG_FACTOR.store(log_factor, Relaxed);
    DECAY_MINUTES.store(decay_minutes, Relaxed);
}

fn minutes() -> u32 {
    (super::clock() / 60) & 0xffff
}

/// The access field of a new entry under an LFU policy.
pub fn lfu_init() -> u32 {
    minutes() << 8 | LFU_INIT
}

/// The counter after the decay the time since its last decrement calls for (OBJECT FREQ).
pub fn lfu_counter(access: u32) -> u32 {
    decayed(access, minutes(), DECAY_MINUTES.load(Relaxed))
}

/// Redis's LFUDecrAndReturn at `now` (minutes, 16 bits).
fn decayed(access: u32, now: u32, decay: u32) -> u32 {
    let (ldt, counter) = (access >> 8 & 0xffff, access & 0xff);
    let elapsed = if now >= ldt { now - ldt } else { 0xffff - ldt + now };
    let periods = elapsed.checked_div(decay).unwrap_or(0);
    counter.saturating_sub(periods)
}

/// Redis's LFULogIncr with `r` a uniform draw in [0, 1).
fn log_incr(counter: u32, factor: u32, r: f64) -> u32 {
    if counter >= 255 {
        return 255;
    }
    let base = counter.saturating_sub(LFU_INIT) as f64;
    if r < 1.0 / (base * factor as f64 + 1.0) {
        counter + 1
    } else {
        counter
    }
}

thread_local! {
    static RNG: std::cell::Cell<u64> = const { std::cell::Cell::new(0x9e37_79b9_7f4a_7c15) };
}

fn random_unit() -> f64 {
    RNG.with(|r| {
        let mut x = r.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        r.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    })
}

/// The access field after an access: LFU's decay then logarithmic increment (`lfu`), or
/// the time.
pub fn accessed_now(access: u32, lfu: bool) -> u32 {
    if !lfu {
        return super::clock();
    }
    let counter = log_incr(lfu_counter(access), LOG_FACTOR.load(Relaxed), random_unit());
    minutes() << 8 | counter
}

/// How good a candidate an entry is (higher goes first).
fn score(policy: Policy, db: &Db, i: usize, from_expires: bool, now_secs: u32) -> Option<(u64, Bytes)> {
    let entry = if from_expires {
        let key = db.expires.get_index(i)?;
        db.entries.get(&key[..])?
    } else {
        db.entries.get_index(i)?
    };
    let score = match policy {
        Policy::VolatileTtl => u64::MAX - entry.expire_at().unwrap_or(u64::MAX),
        p if p.lfu() => 255 - lfu_counter(entry.accessed()) as u64,
        _ => now_secs.saturating_sub(entry.accessed()) as u64,
    };
    Some((score, Bytes::copy_from_slice(entry.key())))
}

/// The pool of best candidates kept between evictions, as Redis's EvictionPoolLRU: sorted by
/// score, best last.
#[derive(Debug, Default)]
pub struct Pool {
    candidates: Vec<(u64, usize, Bytes)>,
}

const POOL_SIZE: usize = 16;

impl Pool {
    fn offer(&mut self, score: u64, db: usize, key: Bytes) {
        if self.candidates.iter().any(|(_, d, k)| *d == db && *k == key) {
            return;
        }
        if self.candidates.len() == POOL_SIZE && self.candidates[0].0 >= score {
            return;
        }
        let at = self.candidates.partition_point(|c| c.0 < score);
        self.candidates.insert(at, (score, db, key));
        if self.candidates.len() > POOL_SIZE {
            self.candidates.remove(0);
        }
    }
}

/// Picks the next key to evict under `policy` (None: no candidate at all), sampling
/// `samples` keys per database.
pub fn pick(
    dbs: &[Db],
    policy: Policy,
    samples: usize,
    pool: &mut Pool,
    rng: &mut Rng,
    next_db: &mut usize,
) -> Option<(usize, Bytes)> {
    let from_expires = policy.volatile();
    let size = |db: &Db| if from_expires { db.expires.len() } else { db.entries.len() };
    if policy.random() {
        // Databases in turn, a random key of the first that has one.
        for _ in 0..dbs.len() {
            let d = *next_db % dbs.len();
            *next_db = next_db.wrapping_add(1);
            let n = size(&dbs[d]);
            if n > 0 {
                let (_, key) = score(policy, &dbs[d], rng.below(n), from_expires, 0)?;
                return Some((d, key));
            }
        }
        return None;
    }
    let now = super::clock();
    // A few rounds, in case what the pool held is gone (deleted meanwhile).
    for _ in 0..4 {
        let mut any = false;
        for (d, db) in dbs.iter().enumerate() {
            let n = size(db);
            if n == 0 {
                continue;
            }
            any = true;
            for _ in 0..samples.min(n) {
                if let Some((s, key)) = score(policy, db, rng.below(n), from_expires, now) {
                    pool.offer(s, d, key);
                }
            }
        }
        if !any {
            return None;
        }
        while let Some((_, d, key)) = pool.candidates.pop() {
            let live = if from_expires {
                dbs[d].expires.contains(&key[..])
            } else {
                dbs[d].entries.contains(&key[..])
            };
            if live {
                return Some((d, key));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_keeps_the_best_sixteen() {
        let mut pool = Pool::default();
        for i in 0..40u64 {
            pool.offer(i % 20, 0, Bytes::from(format!("k{i}")));
        }
        assert_eq!(pool.candidates.len(), POOL_SIZE);
        assert!(pool.candidates.windows(2).all(|w| w[0].0 <= w[1].0));
        assert_eq!(pool.candidates.last().unwrap().0, 19);
        pool.offer(19, 0, Bytes::from("k19"));
        assert_eq!(pool.candidates.iter().filter(|c| c.2 == "k19").count(), 1, "no duplicates");
    }

    #[test]
    fn lfu_counter_grows_logarithmically_and_decays() {
        // 1,000 hits at factor 10 (deterministic draws spread over [0, 1)).
        let mut c = LFU_INIT;
        for i in 0..1000u32 {
            c = log_incr(c, 10, (i.wrapping_mul(2654435761) % 1000) as f64 / 1000.0);
        }
        // Redis's table for factor 10: about 18 after 1,000 hits.
        assert!((12..=25).contains(&c), "counter {c} after 1000 hits");
        assert_eq!(log_incr(255, 10, 0.0), 255);
        // Ten minutes later the counter has lost ten (one per decay minute), none with decay 0.
        let access = 100 << 8 | c;
        assert_eq!(decayed(access, 110, 1), c - 10);
        assert_eq!(decayed(access, 110, 0), c);
        assert_eq!(decayed(access, 100, 1), c);
    }
}
