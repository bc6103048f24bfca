//! Session guarantees for reads served by read shards: read-your-writes and monotonic reads,
//! per client connection and shard.
//!
//! Every reply from a shard comes with the node's replication offset as of that reply (offset
//! marks on router connections, or the node itself in this process). Per shard a connection
//! keeps `need`: the highest offset its replies have shown, its writes' included. A read sent
//! to a read shard carries `need` (EDIS.AT), and the read shard answers only once it has
//! applied that much; otherwise the primary answers. A reply that is older than what earlier
//! replies of the same pipeline showed is asked again.
//!
//! Requests of one connection to different nodes of a shard may run in any order, so:
//! - while a request to a shard's primary is in flight, reads of that shard go to the primary
//!   too (after it, on the same connection);
//! - a request for a primary waits until the connection's reads in flight on read shards have
//!   settled ([`Consistency::replica_reads_in_flight`]), so that it cannot run before them.
//!
//! Shards are known by their slot-range index (stable across maps). The first few have their
//! track in the connection's state; the others' tracks are allocated when one is first used
//! (every proxy connection holds this state: 64 tracks each cost 780 bytes per connection).
//! Indexes past 63 share the last track; a primary's lower offset does not lower a shared
//! track (another shard's reads may need it), so their reads only go to primaries more often.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;

const TRACKS: usize = 64;
/// Tracks held inline: clusters of up to this many write shards allocate no more.
const NEAR: usize = 4;

#[derive(Default)]
struct Track {
    need: AtomicU64,
    to_primary: AtomicU32,
}

/// One connection's state. Shared with the replies it is waiting for (they settle on the
/// connection's own task, so the atomics are never contended).
#[derive(Default)]
pub struct Consistency {
    near: [Track; NEAR],
    far: OnceLock<Box<[Track]>>,
    wrote: AtomicU64,
    replica_reads: AtomicU32,
}

fn track_of(shard: u16) -> usize {
    (shard as usize).min(TRACKS - 1)
}

impl Consistency {
    fn track(&self, shard: u16) -> &Track {
        match track_of(shard) {
            i if i < NEAR => &self.near[i],
            i => &self.far.get_or_init(|| (NEAR..TRACKS).map(|_| Track::default()).collect())[i - NEAR],
        }
    }

    /// The offset a read of `shard` must see.
    pub fn need(&self, shard: u16) -> u64 {
        self.track(shard).need.load(Relaxed)
    }

    /// Takes in a reply's offset. A primary that answers below what the connection already
    /// saw has restarted with less than it had: its history is the truth from now on (on a
    /// track of its own).
    pub fn observe(&self, shard: u16, offset: u64, primary: bool) {
        let need = &self.track(shard).need;
        if primary && offset < need.load(Relaxed) && track_of(shard) < TRACKS - 1 {
            need.store(offset, Relaxed);
        } else {
            need.fetch_max(offset, Relaxed);
        }
    }

    /// A write of this connection reached `shard` (for WAIT).
    pub fn wrote(&self, shard: u16) {
        self.wrote.fetch_or(1 << track_of(shard), Relaxed);
    }

    /// The shards the connection wrote to, as a mask for [`wrote_to`](Self::wrote_to).
    pub fn wrote_mask(&self) -> u64 {
        self.wrote.load(Relaxed)
    }

    pub fn wrote_to(mask: u64, shard: u16) -> bool {
        mask & (1 << track_of(shard)) != 0
    }

    /// A request left for `shard`'s primary (`primary`) or one of its read shards.
    pub fn sent(&self, shard: u16, primary: bool) {
        if primary {
            self.track(shard).to_primary.fetch_add(1, Relaxed);
        } else {
            self.replica_reads.fetch_add(1, Relaxed);
        }
    }

    /// That request was answered (or failed).
    pub fn settled(&self, shard: u16, primary: bool) {
        let counter = if primary { &self.track(shard).to_primary } else { &self.replica_reads };
        let _ = counter.fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
    }

    /// Whether a request to `shard`'s primary is still unanswered.
    pub fn primary_in_flight(&self, shard: u16) -> bool {
        self.track(shard).to_primary.load(Relaxed) > 0
    }

    /// Whether reads sent to read shards are still unanswered.
    pub fn replica_reads_in_flight(&self) -> bool {
        self.replica_reads.load(Relaxed) > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn need_grows_with_replies_and_follows_a_restarted_primary_down() {
        let c = Consistency::default();
        assert_eq!(c.need(3), 0);
        c.observe(3, 100, true);
        c.observe(3, 80, false);
        assert_eq!(c.need(3), 100, "an older read shard reply does not lower it");
        c.observe(3, 150, false);
        assert_eq!(c.need(3), 150);
        assert_eq!(c.need(4), 0, "shards are separate");
        c.observe(3, 20, true);
        assert_eq!(c.need(3), 20, "a primary below the need restarted: its offset is the truth");
    }

    #[test]
    fn in_flight_counts_and_far_shards_share_a_track() {
        let c = Consistency::default();
        c.sent(1, true);
        assert!(c.primary_in_flight(1) && !c.primary_in_flight(2));
        c.settled(1, true);
        c.settled(1, true);
        assert!(!c.primary_in_flight(1), "never below zero");
        c.sent(1, false);
        assert!(c.replica_reads_in_flight());
        c.settled(1, false);
        assert!(!c.replica_reads_in_flight());
        c.observe(70, 5, false);
        assert_eq!(c.need(200), 5);
        c.wrote(2);
        c.wrote(100);
        let mask = c.wrote_mask();
        assert!(
            Consistency::wrote_to(mask, 2)
                && Consistency::wrote_to(mask, 63)
                && !Consistency::wrote_to(mask, 1)
        );
        assert_eq!(c.wrote_mask(), mask, "remembered for the next WAIT");
    }

    #[test]
    fn near_shards_allocate_nothing_and_far_ones_keep_their_own_tracks() {
        let c = Consistency::default();
        for shard in 0..NEAR as u16 {
            c.observe(shard, 10 + shard as u64, true);
            c.sent(shard, true);
        }
        assert!(c.far.get().is_none(), "tracks past the first {NEAR} come when used");
        assert_eq!(c.need(2), 12);
        c.observe(5, 50, false);
        c.observe(6, 60, false);
        assert_eq!((c.need(5), c.need(6), c.need(2)), (50, 60, 12));
        c.sent(9, true);
        assert!(c.primary_in_flight(9) && !c.primary_in_flight(10));
        c.observe(5, 7, true);
        assert_eq!(c.need(5), 7, "a far shard's restarted primary is followed down too");
    }

    #[test]
    fn a_shared_track_is_not_lowered_by_one_of_its_primaries() {
        let c = Consistency::default();
        c.observe(70, 500, false);
        c.observe(80, 20, true);
        assert_eq!(c.need(70), 500, "shard 70's reads still need what they saw");
        assert_eq!(c.need(80), 500, "shard 80's reads go to its primary meanwhile (safe)");
    }
}
