//! The replication backlog: the tail of the write log, by byte offset, as Redis keeps it.
//! `end` is master_repl_offset (bytes ever appended); the backlog holds the last `capacity`
//! of them. A replica that has processed `n` bytes continues from `n` if the backlog still
//! holds it (PSYNC sends `n + 1`, Redis's one-based "next byte").
//!
//! Replicas are fed from here. A feed that lags keeps the bytes it has yet to send past
//! `capacity`, up to `limit` (Redis's replica output buffer hard limit, 256 MB by default):
//! a replica slower for a moment is not cut off, one that stays behind costs at most that.

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};

/// The hard limit Redis puts on a replica's output buffer by default.
pub const DEFAULT_FEED_LIMIT: usize = 256 << 20;

/// Small appends gather into pieces of about this size.
const PIECE: usize = 16 * 1024;

/// Held bytes: the offset of the first, the bytes, and whether the backlog made them (a copy
/// of small appends) or shares them (a big argument, held by reference to the buffer it
/// arrived in, which the keyspace may hold too).
#[derive(Debug)]
struct Piece {
    start: u64,
    /// A shared piece keeps its whole buffer (an in-process replica takes it whole, and
    /// whether the backlog alone still holds it shows), `skip` bytes of it no longer held.
    bytes: Bytes,
    skip: usize,
    own: bool,
    /// The size it was appended at (its allocation's, near enough).
    size: usize,
}

impl Piece {
    fn own(start: u64, bytes: Bytes) -> Piece {
        Piece { start, size: bytes.len(), bytes, skip: 0, own: true }
    }

    /// The bytes held.
    fn data(&self) -> &[u8] {
        &self.bytes[self.skip..]
    }

    fn len(&self) -> usize {
        self.bytes.len() - self.skip
    }
}

#[derive(Debug)]
pub struct Backlog {
    /// Held bytes, oldest first, then the newest ones not yet made a piece.
    pieces: VecDeque<Piece>,
    /// Where the shared pieces among them start (as appended), oldest first.
    shared: VecDeque<u64>,
    tail: BytesMut,
    /// Bytes held (pieces and tail), and of those the pieces the backlog made.
    held: usize,
    own: usize,
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
            pieces: VecDeque::new(),
            shared: VecDeque::new(),
            tail: BytesMut::new(),
            held: 0,
            own: 0,
            capacity: capacity.max(16 * 1024),
            end: start_offset,
            feeds: Vec::new(),
            limit: DEFAULT_FEED_LIMIT,
            burst: 0,
        }
    }

    /// Offset of the tail's first byte.
    fn tail_start(&self) -> u64 {
        self.end - self.tail.len() as u64
    }

    /// Makes the tail a piece.
    fn seal(&mut self) {
        if !self.tail.is_empty() {
            let start = self.tail_start();
            let bytes = self.tail.split().freeze();
            self.own += bytes.len();
            self.pieces.push_back(Piece::own(start, bytes));
        }
    }

    /// What every append does first: with no feed, one at least the capacity leaves only its
    /// end held (true: nothing more to do); with feeds, one past the limit is a burst.
    fn kept_only(&mut self, bytes: &[u8]) -> bool {
        if bytes.len() >= self.capacity && self.feeds.is_empty() {
            self.end += bytes.len() as u64;
            self.keep_only(&bytes[bytes.len() - self.capacity..]);
            return true;
        }
        if !self.feeds.is_empty() && bytes.len() > self.limit {
            self.burst = self.burst.max(bytes.len());
        }
        false
    }

    pub fn append(&mut self, bytes: &[u8]) {
        if self.kept_only(bytes) {
            return;
        }
        if bytes.len() >= PIECE {
            // A piece of its own size (through the tail, the tail's allocation would keep
            // its size after it).
            self.seal();
            self.own += bytes.len();
            self.pieces.push_back(Piece::own(self.end, Bytes::copy_from_slice(bytes)));
        } else {
            if self.tail.capacity() - self.tail.len() < bytes.len() {
                self.seal();
                self.tail.reserve(PIECE);
            }
            self.tail.extend_from_slice(bytes);
        }
        self.end += bytes.len() as u64;
        self.held += bytes.len();
        if self.tail.len() >= PIECE {
            self.seal();
        }
        self.trim();
    }

    /// Appends `bytes` by reference (a big argument: the stream holds no copy of it).
    pub fn append_shared(&mut self, bytes: Bytes) {
        if self.kept_only(&bytes) {
            return;
        }
        self.seal();
        let len = bytes.len();
        self.shared.push_back(self.end);
        self.pieces.push_back(Piece { start: self.end, bytes, skip: 0, own: false, size: len });
        self.held += len;
        self.end += len as u64;
        self.trim();
    }

    /// Holds nothing but `last`, the newest bytes (whose end is `end`).
    fn keep_only(&mut self, last: &[u8]) {
        self.pieces.clear();
        self.shared.clear();
        self.tail = BytesMut::from(last);
        self.held = last.len();
        self.own = 0;
    }

    /// Drops what neither the backlog's capacity nor a lagging feed (within `limit`) keeps.
    fn trim(&mut self) {
        let lagging =
            self.feeds.iter().map(|&(_, next)| self.end.saturating_sub(next)).max().unwrap_or(0) as usize;
        if lagging <= self.capacity {
            self.burst = 0;
        }
        let keep = self.capacity.max(lagging.min(self.limit + self.burst));
        let mut overflow = self.held.saturating_sub(keep);
        // Whole pieces go first: their memory comes back (a 512 MB value a replica was still
        // receiving, once it is sent).
        while let Some(front) = self.pieces.front() {
            if front.len() > overflow {
                break;
            }
            overflow -= front.len();
            self.held -= front.len();
            if front.own {
                self.own -= front.len();
            } else {
                self.shared.pop_front();
            }
            self.pieces.pop_front();
        }
        if overflow == 0 {
            return;
        }
        self.held -= overflow;
        let Some(front) = self.pieces.front_mut() else {
            self.tail.advance(overflow);
            return;
        };
        front.start += overflow as u64;
        if front.own {
            self.own -= overflow;
        }
        let kept = front.len() - overflow;
        if kept <= self.capacity && kept < front.size / 2 && front.size > PIECE {
            // The end of a big piece, kept for the capacity alone: a copy of it, so that the
            // rest of the piece's memory can go.
            let copy = Bytes::copy_from_slice(&front.data()[overflow..]);
            if !front.own {
                self.own += kept;
                self.shared.pop_front();
            }
            *front = Piece::own(front.start, copy);
        } else if front.own {
            front.bytes.advance(overflow);
        } else {
            front.skip += overflow;
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
        if self.held > self.capacity {
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
        self.end - self.held as u64
    }

    /// Bytes the backlog has allocated (INFO's mem_replication_backlog, and what maxmemory
    /// leaves out): what it copied, and the big arguments it holds alone (their key deleted
    /// or evicted), not those the keyspace holds too.
    pub fn allocated(&self) -> usize {
        let alone: usize = self
            .shared
            .iter()
            .filter_map(|&at| self.shared_piece(at))
            .filter(|p| p.bytes.is_unique())
            .map(|p| p.bytes.len())
            .sum();
        self.own + self.tail.capacity() + alone
    }

    pub fn histlen(&self) -> usize {
        self.held
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
        let mut at = offset;
        let mut left = max;
        // The piece holding `offset`, then on in order.
        let first = self.pieces.partition_point(|p| p.start + p.len() as u64 <= offset);
        for piece in self.pieces.range(first..) {
            if left == 0 {
                break;
            }
            let from = (at - piece.start) as usize;
            let take = (piece.len() - from).min(left);
            out.extend_from_slice(&piece.data()[from..from + take]);
            at += take as u64;
            left -= take;
        }
        if left > 0 {
            let from = (at - self.tail_start()) as usize;
            let take = (self.tail.len() - from).min(left);
            out.extend_from_slice(&self.tail[from..from + take]);
        }
        Some(())
    }

    /// A big argument appended by reference whose first byte is at `offset` and that is `len`
    /// bytes long, if still held whole: an in-process replica takes it instead of a copy.
    pub fn shared_at(&self, offset: u64, len: usize) -> Option<Bytes> {
        let piece = self.shared_piece(offset)?;
        (piece.bytes.len() == len).then(|| piece.bytes.clone())
    }

    /// The shared piece appended at `offset`, if still held.
    fn shared_piece(&self, offset: u64) -> Option<&Piece> {
        let i = self.pieces.partition_point(|p| p.start + (p.len() as u64) <= offset);
        self.pieces.get(i).filter(|p| !p.own && p.start - p.skip as u64 == offset)
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
    fn a_big_argument_is_held_by_reference_and_let_go_once_sent() {
        let mut b = Backlog::new(16 * 1024, 0);
        b.append(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1000000\r\n");
        let at = b.end();
        let big = Bytes::from(vec![5u8; 1_000_000]);
        b.retain(1, 0);
        b.append_shared(big.clone());
        b.append(b"\r\n");
        assert!(b.allocated() < 64 * 1024, "not counted as the backlog's: {}", b.allocated());
        // Its key deleted, the backlog alone holds it: counted then.
        let ptr = big.as_ptr();
        drop(big);
        assert!(b.allocated() >= 1_000_000, "held alone: {}", b.allocated());
        let big = b.shared_at(at, 1_000_000).unwrap();
        assert_eq!(big.as_ptr(), ptr);
        assert!(b.allocated() < 64 * 1024, "held by a key again: {}", b.allocated());
        assert_eq!(b.shared_at(at, 1_000_000).map(|s| s.as_ptr()), Some(big.as_ptr()));
        assert!(b.shared_at(at + 1, 1_000_000).is_none() && b.shared_at(at, 999).is_none());
        let mut out = Vec::new();
        b.read_from(at - 3, 10, &mut out).unwrap();
        assert_eq!(out, b"0\r\n\x05\x05\x05\x05\x05\x05\x05");
        // The feed sends half: the front may go, the whole is still there for a replica.
        b.retain(1, at + 500_000);
        assert_eq!(b.start(), at + 500_000);
        assert!(b.shared_at(at, 1_000_000).is_some());
        out.clear();
        b.read_from(b.end() - 4, 10, &mut out).unwrap();
        assert_eq!(out, b"\x05\x05\r\n");
        // Sent: the capacity's tail of it is kept as a copy, and the big buffer is let go.
        b.retain(1, b.end());
        assert_eq!(b.histlen(), 16 * 1024);
        assert!(b.shared_at(at, 1_000_000).is_none());
        assert!(big.is_unique(), "the backlog let the big buffer go");
        out.clear();
        b.read_from(b.start(), 100_000, &mut out).unwrap();
        assert_eq!(out.len(), 16 * 1024);
        assert!(out[..16 * 1024 - 2].iter().all(|&x| x == 5) && out.ends_with(b"\r\n"));
        // With no feed, one bigger than the capacity is not held at all.
        b.release(1);
        let big = Bytes::from(vec![6u8; 100_000]);
        b.append_shared(big.clone());
        assert!(big.is_unique() && b.histlen() == 16 * 1024);
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
