//! A global allocator that counts live heap bytes, for INFO's used_memory (Redis reports what
//! its allocator holds, and users compare the two). Underneath is mimalloc: glibc's malloc
//! and free were 12% of a proxy profile (many small short-lived buffers per request).
//!
//! Counting goes through a per-thread balance flushed to the shared total every 64 KiB, so
//! allocations on the hot path touch no shared cache line.

use std::alloc::{GlobalAlloc, Layout};

use mimalloc::MiMalloc as Inner;
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};

pub struct CountingAlloc;

static USED: AtomicIsize = AtomicIsize::new(0);
/// The most USED has been (INFO's used_memory_peak).
static PEAK: AtomicIsize = AtomicIsize::new(0);
const FLUSH_AT: isize = 64 * 1024;

thread_local! {
    static LOCAL: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    let flushed = LOCAL.try_with(|local| {
        let v = local.get() + delta;
        if v.abs() >= FLUSH_AT {
            let used = USED.fetch_add(v, Ordering::Relaxed) + v;
            if v > 0 {
                PEAK.fetch_max(used - ASIDE.load(Ordering::Relaxed), Ordering::Relaxed);
            }
            local.set(0);
        } else {
            local.set(v);
        }
    });
    if flushed.is_err() {
        USED.fetch_add(delta, Ordering::Relaxed);
    }
}

/// Turns transparent huge pages off (or back on) for this process, as Redis does with `disable-thp yes`
/// (its default). The allocator maps its arenas huge-page aligned, so with THP every touched
/// 2 MiB region is backed whole: a write shard holding 1.5 MB of data was measured at 12 MB of
/// resident growth with THP, 4 MB without. Also spares fork-free latency spikes from
/// khugepaged compaction. Kernels without the call keep THP; nothing else changes.
pub fn set_thp_disabled(disabled: bool) {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_THP_DISABLE takes integer arguments only.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, disabled as libc::c_ulong, 0, 0, 0);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = disabled;
}

extern "C" {
    // mimalloc's option setter and collector (linked in by the mimalloc crate).
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    fn mi_collect(force: bool);
    fn mi_good_size(size: usize) -> usize;
}

/// The bytes an allocation of `size` really takes (mimalloc's size class): used_memory counts
/// these, as Redis counts jemalloc's usable sizes. A 1 KB value with its key asks for 1,044
/// bytes and takes 1,280; counted as asked, maxmemory let 23% more data in than it said.
fn held(size: usize) -> isize {
    // SAFETY: mi_good_size is a pure function of its argument.
    unsafe { mi_good_size(size) as isize }
}

/// Returns what the calling thread's heap holds free to the OS (MEMORY PURGE).
pub fn purge() {
    // SAFETY: mi_collect takes a plain flag and is safe to call from any thread.
    unsafe { mi_collect(true) };
}
/// `mi_option_purge_delay` in mimalloc.h (the same position in its v2 and v3 headers).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

/// Gives freed memory back to the OS at once instead of 10-100 ms later. mimalloc purges
/// delayed frees only when the thread that owns them allocates again, and a server's worker
/// threads go idle: the buffers a 1,000,000-member sorted set outgrew while it was loaded
/// (its node arena and index double, about 70 MB freed) stayed resident in 3 of 4 runs
/// (resident growth 176-190 MB against 112 MB purged at once; redis-server 135 MB). Measured
/// with redis-benchmark -P 16 SET/GET/SADD/HSET/ZADD: no difference beyond run-to-run noise.
pub fn purge_freed_memory_at_once() {
    // SAFETY: setting an option is thread-safe in mimalloc and takes plain integers.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
}

/// How often at most a worker thread going idle gives back what its heap holds free.
const IDLE_COLLECT_EVERY: std::time::Duration = std::time::Duration::from_millis(20);

thread_local! {
    static COLLECTED_AT: Cell<Option<std::time::Instant>> = const { Cell::new(None) };
}

/// Called by a runtime worker as it parks: gives back the memory its heap holds free, at most
/// every IDLE_COLLECT_EVERY. mimalloc returns a page only when its owning thread collects it,
/// and memory freed by another worker (a connection's task moves between workers) waits on
/// the owner: with two workers, 9,000 connections that had sent a PING held 7.3 KB of
/// resident memory each after 3.5 s idle, 1.7 KB of it live (a worker's collection brought it
/// back to 3.7 KB). A thread that never parks allocates, and mimalloc collects as it does.
pub fn collect_when_idle() {
    let now = std::time::Instant::now();
    let due = COLLECTED_AT
        .try_with(|at| match at.get() {
            Some(last) if now.duration_since(last) < IDLE_COLLECT_EVERY => false,
            _ => {
                at.set(Some(now));
                true
            }
        })
        .unwrap_or(false);
    if due {
        // SAFETY: mi_collect takes a plain flag and collects the calling thread's heap.
        unsafe { mi_collect(false) };
    }
}

/// Live heap bytes, accurate to 64 KiB per thread.
pub fn used_memory() -> usize {
    USED.load(Ordering::Relaxed).max(0) as usize
}

/// Heap bytes held by snapshots (RDB payloads being built, saved or sent to a replica).
/// Redis builds those in a forked child, whose memory is not in used_memory and cannot make
/// the parent evict; here they are in the heap, and used_memory and maxmemory leave them out:
/// with `--role all`, the six shards' 60-second save point took a cache at maxmemory to
/// 117% and every write got OOM (the snapshots held ~50 MB while they were written).
static ASIDE: AtomicIsize = AtomicIsize::new(0);

pub fn aside() -> usize {
    ASIDE.load(Ordering::Relaxed).max(0) as usize
}

/// A buffer's heap bytes held aside while it is alive ([`aside`]): grow with [`Aside::note`],
/// given back on drop.
#[derive(Default)]
pub struct Aside {
    counted: usize,
}

impl Aside {
    /// The buffer now holds `capacity` bytes.
    pub fn note(&mut self, capacity: usize) {
        if capacity != self.counted {
            ASIDE.fetch_add(capacity as isize - self.counted as isize, Ordering::Relaxed);
            self.counted = capacity;
        }
    }

    pub fn counted(&self) -> usize {
        self.counted
    }
}

impl Drop for Aside {
    fn drop(&mut self) {
        self.note(0);
    }
}

/// Bytes read shards of this process hold by reference to their primary's memory (see
/// `keyspace::object::BigStr`): in the heap once, though two keyspaces hold them.
static BORROWED: AtomicIsize = AtomicIsize::new(0);

pub fn borrowed() -> usize {
    BORROWED.load(Ordering::Relaxed).max(0) as usize
}

pub fn add_borrowed(delta: isize) {
    BORROWED.fetch_add(delta, Ordering::Relaxed);
}

/// The most live heap bytes this process has held (INFO's used_memory_peak).
pub fn used_memory_peak() -> usize {
    PEAK.load(Ordering::Relaxed).max(0) as usize
}

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { Inner.alloc(layout) };
        if !p.is_null() {
            track(held(layout.size()));
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { Inner.alloc_zeroed(layout) };
        if !p.is_null() {
            track(held(layout.size()));
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { Inner.dealloc(ptr, layout) };
        track(-held(layout.size()));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { Inner.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            track(held(new_size) - held(layout.size()));
        }
        p
    }
}

/// Resident set size of this process in bytes (Linux), for used_memory_rss.
pub fn rss() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<usize>().ok()))
        .map_or(0, |pages| pages * 4096)
}
