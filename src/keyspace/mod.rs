//! The keyspace engine shared by the write and read roles: binary-safe keys and values,
//! millisecond TTLs with lazy expiry on access and active expiry by sampling, and the
//! per-key versions that WATCH compares.
//!
//! Time is always passed in (`now`, Unix milliseconds), so expiry logic is deterministic
//! under test. Each database is an `IndexMap`: O(1) lookups like a hash table, plus positions,
//! which give RANDOMKEY and expiry sampling in O(1) and a SCAN cursor that never misses a key
//! (see [`Db::scan`]).

mod entry;
pub mod evict;
pub mod glob;
pub mod hash;
pub mod intset;
pub mod list;
pub mod listpack;
pub mod object;
pub mod set;
pub mod thin;
pub mod zset;

use std::collections::HashMap;

use bytes::Bytes;
use indexmap::set::MutableValues;
use indexmap::IndexSet;

/// The hasher for keys: foldhash, seeded at random per map (keys come from clients, so the
/// seed must not be guessable), several times faster than SipHash on short keys.
type Hasher = foldhash::fast::RandomState;
/// Entries hash and compare as their key, so the set is a map from key to entry.
type EntrySet = IndexSet<Entry, Hasher>;
type KeySet = IndexSet<Bytes, Hasher>;

pub use entry::{clock, tick_clock, Entry, Stored, Value};

pub use glob::glob_match;
pub use object::{Limits, Object};

/// Current time in Unix milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The positions one SCAN call visits in an indexed collection: at most `count` going down
/// from `cursor` (0 starts at the top), highest first; the next cursor is the window's start
/// (0 when done). See [`Db::scan`] for why this never misses an element that stays.
pub fn scan_window(len: usize, cursor: u64, count: usize) -> std::ops::Range<usize> {
    let top = if cursor == 0 { len } else { (cursor as usize).min(len) };
    top.saturating_sub(count)..top
}

/// A tiny xorshift generator: sampling needs speed and spread, not cryptographic quality.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// One numbered database.
#[derive(Debug, Default)]
pub struct Db {
    entries: EntrySet,
    /// Keys that have a TTL, so active expiry samples only those.
    expires: KeySet,
    /// Versions of watched keys: (version, number of watchers). A write to a watched key bumps
    /// its version; EXEC compares. Empty unless someone WATCHes, so writes pay one branch.
    watched: HashMap<Bytes, (u64, u32)>,
    /// Whether an expired key is deleted when found. A replica only hides it: its primary
    /// sends the DEL.
    delete_expired: bool,
    /// Keys deleted because they expired, since the last time the caller took the count.
    pub expired: u64,
    /// Bumped by every change, so a caller can tell whether a command wrote anything.
    pub dirty: u64,
    /// Keys deleted on expiry, kept for the write log (which replicates them as DEL) while
    /// `log_expired` is on.
    pub expired_keys: Vec<Bytes>,
    log_expired: bool,
    /// While on (keyspace notifications or client tracking want them), every touched key is
    /// kept in `touched` with what happened to it, and a flush sets `flushed`.
    record: bool,
    /// Entries keep LFU counters in their access field (an LFU maxmemory policy), not times.
    lfu: bool,
    pub touched: Vec<(Bytes, Touch)>,
    pub flushed: bool,
}

/// What happened to a touched key (see [`Db::touched`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Touch {
    /// Written or deleted.
    Changed,
    /// Added: it was not there before.
    Created,
    /// Deleted because its TTL had passed.
    Expired,
    /// Deleted to free memory (maxmemory).
    Evicted,
}

/// Outcome of one active-expiry pass over a database.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ExpireStats {
    pub sampled: usize,
    pub expired: usize,
}

impl Db {
    pub fn new() -> Self {
        Db { delete_expired: true, ..Default::default() }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn expires_len(&self) -> usize {
        self.expires.len()
    }

    /// Average remaining TTL of a sample of keys with a TTL, as INFO keyspace's avg_ttl.
    pub fn avg_ttl(&self, now: u64) -> u64 {
        let n = self.expires.len().min(64);
        if n == 0 {
            return 0;
        }
        let total: u64 = (0..n)
            .filter_map(|i| self.expires.get_index(i))
            .filter_map(|k| self.entries.get(&k[..]).and_then(Entry::expire_at))
            .map(|at| at.saturating_sub(now))
            .sum();
        total / n as u64
    }

    fn touch(&mut self, key: &[u8]) {
        self.dirty += 1;
        if self.record {
            self.touched.push((Bytes::copy_from_slice(key), Touch::Changed));
        }
        if !self.watched.is_empty() {
            if let Some((version, _)) = self.watched.get_mut(key) {
                *version += 1;
            }
        }
    }

    /// Deletes `key` if its TTL has passed (or hides it on a replica). Returns whether the key
    /// is live afterwards.
    fn expire_if_needed(&mut self, key: &[u8], now: u64) -> bool {
        self.live_index(key, now).is_some()
    }

    /// The position of `key` if it is live (one hash lookup); an expired key is deleted (or
    /// hidden on a replica).
    fn live_index(&mut self, key: &[u8], now: u64) -> Option<usize> {
        let i = self.entries.get_index_of(key)?;
        if !self.entries[i].is_expired(now) {
            return Some(i);
        }
        if self.delete_expired {
            if self.log_expired {
                self.expired_keys.push(Bytes::copy_from_slice(key));
            }
            self.remove(key);
            self.mark(Touch::Expired);
            self.expired += 1;
        }
        None
    }

    /// The live entry for `key`, for reading.
    pub fn get(&mut self, key: &[u8], now: u64) -> Option<&Entry> {
        let i = self.live_index(key, now)?;
        let lfu = self.lfu;
        let entry = self.entries.get_index_mut2(i)?;
        entry.set_accessed(evict::accessed_now(entry.accessed(), lfu));
        Some(entry)
    }

    /// The live entry for `key` without touching anything (an expired one is not returned,
    /// nor deleted): for reading several keys at once.
    pub fn peek(&self, key: &[u8], now: u64) -> Option<&Entry> {
        self.entries.get(key).filter(|e| !e.is_expired(now))
    }

    /// Sets when `key` was last accessed, `idle` seconds ago (RESTORE ... IDLETIME).
    pub fn set_idle(&mut self, key: &[u8], idle: u64) {
        if let Some((_, e)) = self.entries.get_full_mut2(key) {
            e.set_accessed(entry::clock().saturating_sub(idle.min(u32::MAX as u64) as u32));
        }
    }

    pub fn contains(&mut self, key: &[u8], now: u64) -> bool {
        self.expire_if_needed(key, now)
    }

    /// Stores `value` under `key` with the given expiry (None: no TTL), replacing any value.
    pub fn set<'a>(&mut self, key: &[u8], value: impl Into<Stored<'a>>, expire_at: Option<u64>) {
        let value = value.into();
        self.touch(key);
        match self.entries.get_full_mut2(key) {
            Some((_, entry)) => {
                match (entry.expire_at().is_some(), expire_at.is_some()) {
                    (false, true) => {
                        self.expires.insert(Bytes::copy_from_slice(key));
                    }
                    (true, false) => {
                        self.expires.swap_remove(key);
                    }
                    _ => {}
                }
                *entry = entry.replaced(value, expire_at);
            }
            None => {
                if expire_at.is_some() {
                    self.expires.insert(Bytes::copy_from_slice(key));
                }
                self.entries.insert(Entry::stored(key, value, expire_at));
                self.mark(Touch::Created);
                self.new_counter(key);
            }
        }
    }

    /// Stores a collection under `key` with the given expiry, replacing any value.
    pub fn set_object(&mut self, key: &[u8], object: Object, expire_at: Option<u64>) {
        self.touch(key);
        match self.entries.swap_take(key) {
            Some(old) => {
                if old.expire_at().is_some() && expire_at.is_none() {
                    self.expires.swap_remove(key);
                }
            }
            None => self.mark(Touch::Created),
        }
        if expire_at.is_some() {
            self.expires.insert(Bytes::copy_from_slice(key));
        }
        self.entries.insert(Entry::with_object(key, object, expire_at));
        self.new_counter(key);
    }

    /// Stores an entry as it is (RENAME, COPY, RESTORE), replacing any value of its key.
    pub fn put(&mut self, entry: Entry) {
        let key = Bytes::copy_from_slice(entry.key());
        self.touch(&key);
        match self.entries.swap_take(&key[..]) {
            Some(old) => {
                if old.expire_at().is_some() {
                    self.expires.swap_remove(&key[..]);
                }
            }
            None => self.mark(Touch::Created),
        }
        if entry.expire_at().is_some() {
            self.expires.insert(key);
        }
        self.entries.insert(entry);
    }

    /// The live entry for `key`, for changing its collection in place. Counts as a write of
    /// the key (WATCH, dirty).
    pub fn get_mut(&mut self, key: &[u8], now: u64) -> Option<&mut Entry> {
        let i = self.live_index(key, now)?;
        let lfu = self.lfu;
        self.touch(key);
        let entry = self.entries.get_index_mut2(i)?;
        entry.set_accessed(evict::accessed_now(entry.accessed(), lfu));
        Some(entry)
    }

    /// Replaces the value of `key`, keeping its TTL if it has one (SET ... KEEPTTL, INCR,
    /// APPEND).
    pub fn set_keep_ttl<'a>(&mut self, key: &[u8], value: impl Into<Stored<'a>>, now: u64) {
        let value = value.into();
        let Some(i) = self.live_index(key, now) else {
            return self.set(key, value, None);
        };
        self.touch(key);
        if let Some(entry) = self.entries.get_index_mut2(i) {
            *entry = entry.replaced(value, entry.expire_at());
        }
    }

    /// Removes `key` whether or not it has expired; returns the entry if there was one.
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let entry = self.entries.swap_take(key)?;
        self.touch(key);
        if entry.expire_at().is_some() {
            self.expires.swap_remove(key);
        }
        Some(entry)
    }

    /// Removes a key; returns whether it was live. On a replica an expired key is only
    /// hidden, and this is how it goes: the primary's DEL removes it whatever its TTL.
    pub fn delete(&mut self, key: &[u8], now: u64) -> bool {
        let live = self.expire_if_needed(key, now);
        if !live && self.delete_expired {
            return false;
        }
        self.remove(key).is_some() && live
    }

    /// Sets the absolute expiry of a live key; returns false when there is no such key.
    pub fn set_expire(&mut self, key: &[u8], at: u64, now: u64) -> bool {
        if !self.expire_if_needed(key, now) {
            return false;
        }
        self.touch(key);
        let Some((_, entry)) = self.entries.get_full_mut2(key) else {
            return false;
        };
        if entry.expire_at().is_none() {
            self.expires.insert(Bytes::copy_from_slice(key));
        }
        entry.set_expire(Some(at));
        true
    }

    /// Removes the TTL of a live key; returns whether it had one.
    pub fn persist(&mut self, key: &[u8], now: u64) -> bool {
        if !self.expire_if_needed(key, now) {
            return false;
        }
        let Some((_, entry)) = self.entries.get_full_mut2(key) else {
            return false;
        };
        if entry.expire_at().is_none() {
            return false;
        }
        entry.set_expire(None);
        self.expires.swap_remove(key);
        self.touch(key);
        true
    }

    /// Under LFU, a key written gets a new key's counter (the entry was made with a time).
    fn new_counter(&mut self, key: &[u8]) {
        if self.lfu {
            if let Some((_, e)) = self.entries.get_full_mut2(key) {
                e.set_accessed(evict::lfu_init());
            }
        }
    }

    /// Deletes `key` to free memory; returns whether it was there.
    pub fn evict(&mut self, key: &[u8]) -> bool {
        let gone = self.remove(key).is_some();
        if gone {
            self.mark(Touch::Evicted);
        }
        gone
    }

    /// Says what happened to the key touched last (recording only).
    fn mark(&mut self, how: Touch) {
        if let Some(last) = self.touched.last_mut().filter(|_| self.record) {
            last.1 = how;
        }
    }

    /// Removes every key; returns how many there were.
    pub fn flush(&mut self) -> usize {
        let n = self.entries.len();
        self.dirty += 1;
        self.flushed |= self.record;
        if !self.watched.is_empty() {
            let keys: Vec<Bytes> =
                self.watched.keys().filter(|k| self.entries.contains(&k[..])).cloned().collect();
            keys.iter().for_each(|k| self.touch(k));
        }
        self.entries = EntrySet::default();
        self.expires = KeySet::default();
        n
    }

    /// A random live key, or None when there is none. Expired picks are deleted (on a
    /// primary) and another is drawn; after 100 expired picks it gives up with None rather
    /// than loop, as Redis bounds the same search.
    pub fn random_key(&mut self, rng: &mut Rng, now: u64) -> Option<Bytes> {
        for _ in 0..100 {
            if self.entries.is_empty() {
                return None;
            }
            let i = rng.below(self.entries.len());
            let entry = self.entries.get_index(i)?;
            let key = Bytes::copy_from_slice(entry.key());
            if !entry.is_expired(now) {
                return Some(key);
            }
            self.expire_if_needed(&key, now);
        }
        None
    }

    /// Visits up to `count` positions going down from `cursor` (0 starts at the top) and
    /// returns the next cursor (0 when done).
    ///
    /// Why this never misses a key that stays present: removal moves the last entry into the
    /// hole (`swap_remove`) and insertion appends. Walking from the top down, a hole below the
    /// cursor is filled from above it (already visited: at worst visited twice), and new keys
    /// land above it (SCAN need not return them).
    pub fn scan(&mut self, cursor: u64, count: usize, now: u64, mut f: impl FnMut(&Entry)) -> u64 {
        let window = scan_window(self.entries.len(), cursor, count);
        for pos in window.clone().rev() {
            if let Some(e) = self.entries.get_index(pos) {
                if !e.is_expired(now) {
                    f(e);
                }
            }
        }
        window.start as u64
    }

    /// Calls `f` on every live key.
    pub fn for_each_live(&self, now: u64, mut f: impl FnMut(&Entry)) {
        for e in &self.entries {
            if !e.is_expired(now) {
                f(e);
            }
        }
    }

    /// One round of active expiry: samples up to `sample` keys with a TTL and deletes the
    /// expired ones. The caller repeats while a large share of the sample was expired.
    pub fn expire_sample(&mut self, sample: usize, rng: &mut Rng, now: u64) -> ExpireStats {
        let mut stats = ExpireStats::default();
        if !self.delete_expired {
            return stats;
        }
        for _ in 0..sample.min(self.expires.len()) {
            let i = rng.below(self.expires.len());
            let Some(key) = self.expires.get_index(i).cloned() else {
                break;
            };
            stats.sampled += 1;
            if !self.expire_if_needed(&key, now) {
                stats.expired += 1;
            }
            if self.expires.is_empty() {
                break;
            }
        }
        stats
    }

    /// Starts watching `key`; returns the version to compare at EXEC.
    pub fn watch(&mut self, key: &Bytes) -> u64 {
        let slot = self.watched.entry(key.clone()).or_insert((0, 0));
        slot.1 += 1;
        slot.0
    }

    /// Stops one watch of `key`.
    pub fn unwatch(&mut self, key: &[u8]) {
        if let Some(slot) = self.watched.get_mut(key) {
            slot.1 -= 1;
            if slot.1 == 0 {
                self.watched.remove(key);
            }
        }
    }

    /// Whether `key` changed since WATCH returned `version`. A watched key that has expired
    /// by now also counts as changed, as in Redis.
    pub fn watch_changed(&self, key: &[u8], version: u64, now: u64) -> bool {
        let expired = self.entries.get(key).is_some_and(|e| e.is_expired(now));
        expired || self.watched.get(key).is_none_or(|(v, _)| *v != version)
    }
}

/// All numbered databases of one server.
#[derive(Debug)]
pub struct Keyspace {
    pub dbs: Vec<Db>,
    pub rng: Rng,
    /// The database active expiry resumes with, so a busy db 0 cannot starve the others.
    expire_cursor: usize,
    /// Eviction's pool of candidates, and the database a random eviction looks at next.
    evict_pool: evict::Pool,
    evict_next: usize,
    /// Redis 7 function libraries: data as keys are (saved, loaded, replicated).
    pub functions: Libraries,
}

/// The function libraries a server holds (FUNCTION LOAD): their names and code. The
/// interpreter that runs them is built from here (see `command::functions`).
#[derive(Debug, Default)]
pub struct Libraries {
    libs: std::collections::BTreeMap<String, Bytes>,
    /// Different after every change, and between keyspaces: the compiled functions are
    /// rebuilt when theirs differs.
    version: u64,
    /// Changes made, counted into [`Keyspace::dirty`] so they are logged and saved.
    changes: u64,
}

impl Libraries {
    pub fn get(&self, name: &str) -> Option<&Bytes> {
        self.libs.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Bytes)> {
        self.libs.iter()
    }

    pub fn len(&self) -> usize {
        self.libs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.libs.is_empty()
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn insert(&mut self, name: String, code: Bytes) {
        self.libs.insert(name, code);
        self.changed();
    }

    pub fn remove(&mut self, name: &str) -> Option<Bytes> {
        let gone = self.libs.remove(name);
        if gone.is_some() {
            self.changed();
        }
        gone
    }

    pub fn clear(&mut self) {
        self.libs.clear();
        self.changed();
    }

    fn changed(&mut self) {
        static VERSIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        self.version = VERSIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.changes += 1;
    }
}

impl Keyspace {
    /// SWAPDB: the two databases' keys change places; WATCHers of either see a change (their
    /// watches stay with the database number, as in Redis).
    pub fn swap_dbs(&mut self, a: usize, b: usize) {
        if a == b {
            return;
        }
        let (lo, hi) = (a.min(b), a.max(b));
        let (left, right) = self.dbs.split_at_mut(hi);
        let (x, y) = (&mut left[lo], &mut right[0]);
        std::mem::swap(&mut x.entries, &mut y.entries);
        std::mem::swap(&mut x.expires, &mut y.expires);
        for db in [x, y] {
            db.dirty += 1;
            db.watched.values_mut().for_each(|(version, _)| *version += 1);
        }
    }

    pub fn new(databases: usize) -> Self {
        Keyspace {
            dbs: (0..databases.max(1)).map(|_| Db::new()).collect(),
            rng: Rng::new(now_ms() ^ std::process::id() as u64),
            expire_cursor: 0,
            evict_pool: Default::default(),
            evict_next: 0,
            functions: Libraries::default(),
        }
    }

    /// One round of active expiry over the databases, bounded by `budget` sampled keys. As in
    /// Redis, each database is sampled 20 keys at a time until at most 25% of a sample had
    /// expired. Returns what was sampled and deleted; `sampled >= budget` means the round
    /// stopped on its budget with work left, and the caller may run another.
    pub fn active_expire(&mut self, now: u64, budget: usize) -> ExpireStats {
        let mut total = ExpireStats::default();
        let n = self.dbs.len();
        for _ in 0..n {
            let db = &mut self.dbs[self.expire_cursor];
            loop {
                let s = db.expire_sample(20, &mut self.rng, now);
                total.expired += s.expired;
                total.sampled += s.sampled;
                if s.sampled == 0 || s.expired * 4 <= s.sampled || total.sampled >= budget {
                    break;
                }
            }
            if total.sampled >= budget {
                return total;
            }
            self.expire_cursor = (self.expire_cursor + 1) % n;
        }
        total
    }

    /// Evicts one key under `policy`, sampling `samples` keys per database; returns its
    /// database and name, or None when no key is a candidate.
    pub fn evict_one(&mut self, policy: evict::Policy, samples: usize) -> Option<(usize, Bytes)> {
        let (db, key) = evict::pick(
            &self.dbs,
            policy,
            samples,
            &mut self.evict_pool,
            &mut self.rng,
            &mut self.evict_next,
        )?;
        self.dbs[db].evict(&key);
        Some((db, key))
    }

    /// Total changes so far, over every database (compare two readings to see if a command
    /// wrote).
    pub fn dirty(&self) -> u64 {
        self.dbs.iter().map(|db| db.dirty).sum::<u64>() + self.functions.changes
    }

    /// Starts or stops recording touched keys (see [`Db::touched`]).
    pub fn set_record(&mut self, on: bool) {
        for db in &mut self.dbs {
            db.record = on;
            db.touched.clear();
            db.flushed = false;
        }
    }

    /// Whether entries keep LFU counters (an LFU maxmemory policy) rather than access times.
    pub fn set_lfu(&mut self, on: bool) {
        if self.dbs.first().is_some_and(|db| db.lfu != on) {
            for db in &mut self.dbs {
                db.lfu = on;
                // Switching at run time: every key starts from a new key's state, as the
                // fields mean something else now.
                let fresh = if on { evict::lfu_init() } else { clock() };
                for i in 0..db.entries.len() {
                    if let Some(e) = db.entries.get_index_mut2(i) {
                        e.set_accessed(fresh);
                    }
                }
            }
        }
    }

    /// Whether touched keys are being recorded.
    pub fn recording(&self) -> bool {
        self.dbs.first().is_some_and(|db| db.record)
    }

    /// The keys touched since the last call, with their database, in order; and whether a
    /// database was flushed.
    pub fn take_touched(&mut self, out: &mut Vec<(usize, Bytes, Touch)>) -> bool {
        let mut flushed = false;
        for (i, db) in self.dbs.iter_mut().enumerate() {
            out.extend(db.touched.drain(..).map(|(k, t)| (i, k, t)));
            flushed |= std::mem::take(&mut db.flushed);
        }
        flushed
    }

    /// Starts or stops keeping expired keys for the write log.
    pub fn set_log_expired(&mut self, on: bool) {
        for db in &mut self.dbs {
            db.log_expired = on;
            db.expired_keys.clear();
        }
    }

    /// Makes this a replica's keyspace: expired keys are hidden, never deleted (the
    /// primary's DEL does that).
    pub fn set_replica(&mut self, replica: bool) {
        for db in &mut self.dbs {
            db.delete_expired = !replica;
        }
    }

    /// Keys deleted on expiry since the last call, with their database.
    pub fn drain_expired(&mut self, mut f: impl FnMut(usize, Bytes)) {
        for (i, db) in self.dbs.iter_mut().enumerate().filter(|(_, db)| !db.expired_keys.is_empty()) {
            for key in db.expired_keys.drain(..) {
                f(i, key);
            }
        }
    }

    /// Count of keys deleted by lazy or active expiry since the last call.
    pub fn take_expired(&mut self) -> u64 {
        self.dbs.iter_mut().map(|db| std::mem::take(&mut db.expired)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value<'_> {
        Value::Str(v.as_bytes())
    }

    #[test]
    fn lazy_expiry() {
        let mut db = Db::new();
        db.set(b"k", s("v"), Some(1_000));
        assert!(db.get(b"k", 999).is_some());
        assert!(db.get(b"k", 1_000).is_none());
        assert_eq!(db.len(), 0);
        assert_eq!(db.expires_len(), 0);
        assert_eq!(db.expired, 1);
    }

    #[test]
    fn ttl_bookkeeping() {
        let mut db = Db::new();
        db.set(b"k", s("v"), None);
        assert_eq!(db.expires_len(), 0);
        assert!(db.set_expire(b"k", 5_000, 0));
        assert_eq!(db.expires_len(), 1);
        db.set_keep_ttl(b"k", s("w"), 0);
        assert_eq!(db.get(b"k", 0).unwrap().expire_at(), Some(5_000));
        assert_eq!(db.get(b"k", 0).unwrap().str(), b"w");
        db.set(b"k", s("x"), None);
        assert_eq!(db.expires_len(), 0);
        assert!(!db.persist(b"k", 0));
        db.set(b"k", s("x"), Some(9));
        assert!(db.persist(b"k", 0));
        assert_eq!(db.expires_len(), 0);
        assert!(db.delete(b"k", 0));
        assert!(!db.delete(b"k", 0));
    }

    #[test]
    fn replica_hides_but_keeps_expired_keys() {
        let mut db = Db::new();
        db.delete_expired = false;
        db.set(b"k", s("v"), Some(10));
        assert!(db.get(b"k", 20).is_none());
        assert_eq!(db.len(), 1);
        assert!(!db.delete(b"k", 20), "it was not live");
        assert_eq!(db.len(), 0, "but the primary's DEL removes it");
    }

    #[test]
    fn active_expiry_samples_until_few_expired() {
        let mut ks = Keyspace::new(2);
        for i in 0..1000 {
            ks.dbs[0].set(format!("t{i}").as_bytes(), s("v"), Some(100));
            ks.dbs[1].set(format!("p{i}").as_bytes(), s("v"), None);
        }
        let mut total = 0;
        for _ in 0..100 {
            total += ks.active_expire(200, 10_000).expired;
            if ks.dbs[0].is_empty() {
                break;
            }
        }
        assert!(total >= 990, "expired {total}");
        assert_eq!(ks.dbs[1].len(), 1000);
        // Nothing due: a pass deletes what is left and stops after one sample per db.
        let left = ks.dbs[0].len();
        assert_eq!(ks.active_expire(200, 10_000).expired, left);
        assert_eq!(ks.active_expire(200, 10_000), ExpireStats::default());
    }

    #[test]
    fn active_expiry_round_stops_on_budget_and_resumes() {
        let mut ks = Keyspace::new(2);
        for i in 0..500 {
            ks.dbs[0].set(format!("a{i}").as_bytes(), s("v"), Some(1));
            ks.dbs[1].set(format!("b{i}").as_bytes(), s("v"), Some(1));
        }
        let first = ks.active_expire(10, 100);
        assert!(first.sampled >= 100, "the budget ends the round: {first:?}");
        // Rounds continue until both databases are clean; neither starves.
        for _ in 0..100 {
            if ks.active_expire(10, 100).sampled < 100 {
                break;
            }
        }
        assert!(ks.dbs[0].len() < 50 && ks.dbs[1].len() < 50, "{} {}", ks.dbs[0].len(), ks.dbs[1].len());
    }

    #[test]
    fn scan_never_misses_keys_present_throughout() {
        let mut db = Db::new();
        for i in 0..500 {
            db.set(format!("k{i}").as_bytes(), s("v"), None);
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut round = 0;
        loop {
            cursor = db.scan(cursor, 10, 0, |e| {
                seen.insert(e.key().to_vec());
            });
            // Churn between calls: delete some keys (never the even ones), add new ones.
            round += 1;
            db.delete(format!("k{}", ((round * 7) % 500) | 1).as_bytes(), 0);
            db.set(format!("new{round}").as_bytes(), s("v"), None);
            if cursor == 0 {
                break;
            }
        }
        for i in (0..500).step_by(2) {
            assert!(seen.contains(format!("k{i}").as_bytes()), "missed k{i}");
        }
    }

    #[test]
    fn watch_versions() {
        let mut db = Db::new();
        let key = Bytes::from_static(b"w");
        let v = db.watch(&key);
        assert!(!db.watch_changed(b"w", v, 0));
        db.set(b"other", s("1"), None);
        assert!(!db.watch_changed(b"w", v, 0));
        db.set(b"w", s("1"), None);
        assert!(db.watch_changed(b"w", v, 0));
        db.unwatch(b"w");
        assert!(db.watched.is_empty());
        let v = db.watch(&key);
        db.flush();
        assert!(db.watch_changed(b"w", v, 0));
    }

    #[test]
    fn random_key() {
        let mut db = Db::new();
        let mut rng = Rng::new(7);
        assert_eq!(db.random_key(&mut rng, 0), None);
        db.set(b"a", s("1"), None);
        assert_eq!(db.random_key(&mut rng, 0).as_deref(), Some(&b"a"[..]));
        db.set(b"a", s("1"), Some(5));
        assert_eq!(db.random_key(&mut rng, 10), None);
    }
}
