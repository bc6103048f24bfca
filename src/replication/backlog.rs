//! The replication backlog: the tail of the write log, by byte offset, as Redis keeps it.
//! `end` is master_repl_offset (bytes ever appended); the backlog holds the last `capacity`
//! of them. A replica that has processed `n` bytes continues from `n` if the backlog still
//! holds it (PSYNC sends `n + 1`, Redis's one-based "next byte").

use std::collections::VecDeque;

#[derive(Debug)]
pub struct Backlog {
    buf: VecDeque<u8>,
    capacity: usize,
    /// Offset just past the last byte: master_repl_offset.
    end: u64,
}

impl Backlog {
    pub fn new(capacity: usize, start_offset: u64) -> Self {
        Backlog { buf: VecDeque::new(), capacity: capacity.max(16 * 1024), end: start_offset }
    }

    pub fn append(&mut self, bytes: &[u8]) {
        self.end += bytes.len() as u64;
        if bytes.len() >= self.capacity {
            self.buf.clear();
            self.buf.extend(&bytes[bytes.len() - self.capacity..]);
            return;
        }
        let overflow = (self.buf.len() + bytes.len()).saturating_sub(self.capacity);
        self.buf.drain(..overflow);
        self.buf.extend(bytes);
    }

    /// master_repl_offset.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Offset of the first byte held.
    pub fn start(&self) -> u64 {
        self.end - self.buf.len() as u64
    }

    pub fn histlen(&self) -> usize {
        self.buf.len()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity.max(16 * 1024);
        let overflow = self.buf.len().saturating_sub(self.capacity);
        self.buf.drain(..overflow);
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
