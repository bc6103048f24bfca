//! The replication backlog: the tail of the write log, by byte offset, as Redis keeps it.
//! `end` is master_repl_offset (bytes ever appended); the backlog holds the last `capacity`
//! of them. A replica that has processed `n` bytes continues from `n` if the backlog still
//! holds it (PSYNC sends `n + 1`, Redis's one-based "next byte").
//!
//! Replicas are fed from here. A feed that lags keeps the bytes it has yet to send past
//! `capacity`, up to `limit` (Redis's replica output buffer hard limit, 256 MB by default):
//! a replica slower for a moment is not cut off, one that stays behind costs at most that.

use std::collections::VecDeque;

/// The hard limit Redis puts on a replica's output buffer by default.
pub const DEFAULT_FEED_LIMIT: usize = 256 << 20;

#[derive(Debug)]
pub struct Backlog {
    buf: VecDeque<u8>,
    capacity: usize,
    /// Offset just past the last byte: master_repl_offset.
    end: u64,
    /// Feeds sending from here: (feed id, offset of the next byte it sends).
    feeds: Vec<(u64, u64)>,
    /// Most bytes kept for lagging feeds.
    limit: usize,
    /// The largest append bigger than `limit` since every feed was last caught up: such a
    /// command (a 512 MB SET) is kept on top of the limit, so it reaches a replica that was
    /// keeping up instead of cutting it off into a full resync of the whole dataset.
    burst: usize,
}

impl Backlog {
    pub fn new(capacity: usize, start_offset: u64) -> Self {
        Backlog {
            buf: VecDeque::new(),
            capacity: capacity.max(16 * 1024),
            end: start_offset,
            feeds: Vec::new(),
            limit: DEFAULT_FEED_LIMIT,
            burst: 0,
        }
    }

    pub fn append(&mut self, bytes: &[u8]) {
        self.end += bytes.len() as u64;
        if bytes.len() >= self.capacity && self.feeds.is_empty() {
            self.buf.clear();
            self.buf.extend(&bytes[bytes.len() - self.capacity..]);
            return;
        }
        if !self.feeds.is_empty() && bytes.len() > self.limit {
            self.burst = self.burst.max(bytes.len());
        }
        self.buf.extend(bytes);
        self.trim();
    }

    /// Drops what neither the backlog's capacity nor a lagging feed (within `limit`) keeps.
    fn trim(&mut self) {
        let lagging =
            self.feeds.iter().map(|&(_, next)| self.end.saturating_sub(next)).max().unwrap_or(0) as usize;
        if lagging <= self.capacity {
            self.burst = 0;
        }
        let keep = self.capacity.max(lagging.min(self.limit + self.burst));
        let overflow = self.buf.len().saturating_sub(keep);
        self.buf.drain(..overflow);
        // Memory a burst took (a 512 MB value a replica was still receiving) comes back once
        // it is sent: the allocation follows what is kept, not the most ever kept.
        let want = self.buf.len().max(self.capacity);
        if self.buf.capacity() > 2 * want {
            self.buf.shrink_to(want);
        }
    }

    /// Feed `id` sends from `offset` next: the bytes from there stay (up to the limit).
    pub fn retain(&mut self, id: u64, offset: u64) {
        match self.feeds.iter_mut().find(|(f, _)| *f == id) {
            Some(feed) if feed.1 == offset => return,
            Some(feed) => feed.1 = offset,
            None => self.feeds.push((id, offset)),
        }
        // What the feed has now sent may go, without waiting for the next write.
        if self.buf.len() > self.capacity {
            self.trim();
        }
    }

    /// Feed `id` ended.
    pub fn release(&mut self, id: u64) {
        self.feeds.retain(|(f, _)| *f != id);
        self.trim();
    }

    /// The most bytes kept for lagging feeds (at least the capacity).
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
        self.trim();
    }

    /// master_repl_offset.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Offset of the first byte held.
    pub fn start(&self) -> u64 {
        self.end - self.buf.len() as u64
    }

    /// Bytes the backlog has allocated (INFO's mem_replication_backlog).
    pub fn allocated(&self) -> usize {
        self.buf.capacity()
    }

    pub fn histlen(&self) -> usize {
        self.buf.len()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity.max(16 * 1024);
        self.trim();
    }

    /// Whether a replica that has processed `offset` bytes can continue from here.
    pub fn can_continue_from(&self, offset: u64) -> bool {
        self.start() <= offset && offset <= self.end
    }

    /// Up to `max` bytes from `offset` on, or None when `offset` is no longer held.
    pub fn read_from(&self, offset: u64, max: usize, out: &mut Vec<u8>) -> Option<()> {
        if !self.can_continue_from(offset) {
            return None;
        }
        let skip = (offset - self.start()) as usize;
        let take = (self.buf.len() - skip).min(max);
        let (a, b) = self.buf.as_slices();
        let range = skip..skip + take;
        if range.end <= a.len() {
            out.extend_from_slice(&a[range]);
        } else if range.start >= a.len() {
            out.extend_from_slice(&b[range.start - a.len()..range.end - a.len()]);
        } else {
            out.extend_from_slice(&a[range.start..]);
            out.extend_from_slice(&b[..range.end - a.len()]);
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_bounds() {
        let mut b = Backlog::new(16 * 1024, 100);
        assert_eq!((b.start(), b.end()), (100, 100));
        assert!(b.can_continue_from(100));
        assert!(!b.can_continue_from(99) && !b.can_continue_from(101));
        b.append(b"hello");
        let mut out = Vec::new();
        b.read_from(102, 100, &mut out).unwrap();
        assert_eq!(out, b"llo");
        // Past the capacity the oldest bytes go, and so does the right to continue from them.
        let chunk = vec![7u8; 10_000];
        b.append(&chunk);
        b.append(&chunk);
        assert_eq!(b.histlen(), 16 * 1024);
        assert_eq!(b.end(), 100 + 5 + 20_000);
        assert!(!b.can_continue_from(100));
        assert!(b.can_continue_from(b.end() - 16 * 1024));
        out.clear();
        assert!(b.read_from(100, 10, &mut out).is_none());
        b.read_from(b.end() - 3, 10, &mut out).unwrap();
        assert_eq!(out, vec![7, 7, 7]);
    }

    #[test]
    fn a_lagging_feed_keeps_its_bytes_up_to_the_limit() {
        let mut b = Backlog::new(16 * 1024, 0);
        b.set_limit(64 * 1024);
        b.retain(7, 0);
        b.append(&vec![1u8; 40_000]);
        assert_eq!(b.histlen(), 40_000, "kept past the capacity for feed 7");
        assert!(b.can_continue_from(0));
        // The feed moves on: what it sent may go.
        b.retain(7, 30_000);
        b.append(&[2u8; 100]);
        assert_eq!(b.start(), 40_100 - 16 * 1024);
        // Past the limit the oldest go even though the feed still needs them: it is cut off.
        b.retain(7, 40_100);
        b.append(&vec![3u8; 50_000]);
        b.append(&vec![3u8; 50_000]);
        assert_eq!(b.histlen(), 64 * 1024);
        assert!(!b.can_continue_from(40_100));
        // Two feeds: the slower one counts; when it ends, back to the capacity.
        b.retain(8, b.end() - 20_000);
        b.retain(7, b.end());
        b.append(&[4u8; 10]);
        assert_eq!(b.histlen(), 20_010);
        b.release(8);
        assert_eq!(b.histlen(), 16 * 1024);
        b.release(7);
        b.append(&vec![5u8; 50_000]);
        assert_eq!(b.histlen(), 16 * 1024);
    }

    #[test]
    fn memory_a_burst_took_comes_back_once_sent() {
        let mut b = Backlog::new(16 * 1024, 0);
        b.retain(1, 0);
        b.append(&vec![9u8; 4 << 20]);
        assert!(b.allocated() >= 4 << 20);
        // The feed sends it: no further write is needed for the memory to go.
        b.retain(1, b.end());
        assert_eq!(b.histlen(), 16 * 1024);
        assert!(b.allocated() <= 2 * 16 * 1024, "allocated {}", b.allocated());
        // A feed that hangs up mid-burst frees it too.
        b.release(1);
        b.retain(2, b.end());
        b.append(&vec![8u8; 1 << 20]);
        b.release(2);
        assert!(b.allocated() <= 2 * 16 * 1024, "allocated {}", b.allocated());
        assert!(b.can_continue_from(b.end() - 16 * 1024));
    }

    #[test]
    fn one_command_bigger_than_the_limit_reaches_a_feed_that_kept_up() {
        let mut b = Backlog::new(16 * 1024, 0);
        b.set_limit(64 * 1024);
        b.retain(1, 0);
        b.append(&vec![1u8; 200_000]);
        assert!(b.can_continue_from(0), "the feed was caught up: it gets the whole command");
        b.retain(1, 150_000);
        b.append(&[2u8; 10]);
        assert!(b.can_continue_from(150_000));
        // Once it has caught up, the allowance ends: lagging past the limit cuts it off again.
        b.retain(1, b.end());
        b.append(&vec![3u8; 50_000]);
        b.append(&vec![3u8; 50_000]);
        assert!(!b.can_continue_from(200_010));
        assert_eq!(b.histlen(), 64 * 1024);
    }

    #[test]
    fn reads_across_the_ring_seam() {
        let mut b = Backlog::new(16 * 1024, 0);
        let data: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
        for chunk in data.chunks(777) {
            b.append(chunk);
        }
        let mut out = Vec::new();
        let from = b.start();
        while out.len() < b.histlen() {
            b.read_from(from + out.len() as u64, 1000, &mut out).unwrap();
        }
        assert_eq!(out, data[data.len() - 16 * 1024..]);
        b.append(&vec![1u8; 50_000]);
        assert_eq!(b.histlen(), 16 * 1024, "a huge append keeps only the tail");
    }
}
