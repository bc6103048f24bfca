//! Redis's intset, byte for byte: the compact encoding of small sets of integers. Sorted
//! values of one width (2, 4 or 8 bytes, little endian), widened when a bigger value comes:
//!
//! ```text
//! encoding u32 LE (2, 4 or 8) | length u32 LE | values...
//! ```
//!
//! Membership is a binary search; an RDB snapshot or DUMP copies the bytes.

use super::thin::{Header, ThinBytes};

#[derive(Clone, PartialEq, Eq)]
pub struct Intset(ThinBytes<IntsetHeader>);

/// An intset's length: its header, then `count` values of `width` bytes.
pub struct IntsetHeader;

impl Header for IntsetHeader {
    const PREFIX: usize = 8;
    fn stored_len(prefix: &[u8]) -> usize {
        let width = u32::from_le_bytes(prefix[..4].try_into().expect("4 bytes")) as usize;
        let count = u32::from_le_bytes(prefix[4..8].try_into().expect("4 bytes")) as usize;
        8 + width * count
    }
}

impl std::fmt::Debug for Intset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Default for Intset {
    fn default() -> Self {
        Intset::new()
    }
}

/// Writes `v` as value `i` of an intset of width `w`.
fn write_at(buf: &mut [u8], w: usize, i: usize, v: i64) {
    let at = 8 + i * w;
    match w {
        2 => buf[at..at + 2].copy_from_slice(&(v as i16).to_le_bytes()),
        4 => buf[at..at + 4].copy_from_slice(&(v as i32).to_le_bytes()),
        _ => buf[at..at + 8].copy_from_slice(&v.to_le_bytes()),
    }
}

fn width_for(v: i64) -> usize {
    if i16::try_from(v).is_ok() {
        2
    } else if i32::try_from(v).is_ok() {
        4
    } else {
        8
    }
}

impl Intset {
    pub fn new() -> Self {
        Intset(ThinBytes::new(vec![2, 0, 0, 0, 0, 0, 0, 0]))
    }

    /// An intset from its serialized form, checked (width, length, sorted and distinct).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, &'static str> {
        let bad = "invalid intset";
        if bytes.len() < 8 {
            return Err(bad);
        }
        let width = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
        let len = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
        if ![2, 4, 8].contains(&width) || bytes.len() != 8 + width * len {
            return Err(bad);
        }
        let set = Intset(ThinBytes::new(bytes));
        if set.iter().zip(set.iter().skip(1)).any(|(a, b)| a >= b) {
            return Err(bad);
        }
        Ok(set)
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_slice()
    }

    pub fn heap_size(&self) -> usize {
        self.as_bytes().len()
    }

    fn width(&self) -> usize {
        u32::from_le_bytes(self.as_bytes()[..4].try_into().unwrap()) as usize
    }

    pub fn len(&self) -> usize {
        u32::from_le_bytes(self.as_bytes()[4..8].try_into().unwrap()) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value at position `i` (ascending order).
    pub fn get(&self, i: usize) -> i64 {
        let w = self.width();
        let at = 8 + i * w;
        let b = &self.as_bytes()[at..at + w];
        match w {
            2 => i16::from_le_bytes([b[0], b[1]]) as i64,
            4 => i32::from_le_bytes(b.try_into().unwrap()) as i64,
            _ => i64::from_le_bytes(b.try_into().unwrap()),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    fn search(&self, v: i64) -> Result<usize, usize> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.get(mid).cmp(&v) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    pub fn contains(&self, v: i64) -> bool {
        self.search(v).is_ok()
    }

    /// Adds `v`; false if it was there.
    pub fn insert(&mut self, v: i64) -> bool {
        let len = self.len();
        if width_for(v) > self.width() {
            // Widen every value, then the new one goes at an end (it is out of the old range).
            let w = width_for(v);
            let mut wider = vec![0u8; 8 + len * w];
            wider[..4].copy_from_slice(&(w as u32).to_le_bytes());
            wider[4..8].copy_from_slice(&(len as u32).to_le_bytes());
            for (i, x) in self.iter().enumerate() {
                write_at(&mut wider, w, i, x);
            }
            self.0 = ThinBytes::new(wider);
        }
        let Err(pos) = self.search(v) else { return false };
        let w = self.width();
        // Exact growth, as Redis reallocates an intset by one value.
        self.0.edit(|b| {
            b.reserve_exact(w);
            b.splice(8 + pos * w..8 + pos * w, std::iter::repeat_n(0u8, w));
            b[4..8].copy_from_slice(&(len as u32 + 1).to_le_bytes());
            write_at(b, w, pos, v);
        });
        true
    }

    /// Removes `v`; false if it was not there.
    pub fn remove(&mut self, v: i64) -> bool {
        let Ok(pos) = self.search(v) else { return false };
        let (w, len) = (self.width(), self.len());
        self.0.edit(|b| {
            b.drain(8 + pos * w..8 + (pos + 1) * w);
            b[4..8].copy_from_slice(&(len as u32 - 1).to_le_bytes());
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_widened_and_as_redis_writes_it() {
        let mut s = Intset::new();
        for v in [3, 1, 2, 2] {
            s.insert(v);
        }
        // SADD si 1 2 3 in redis-server 7.0, from DUMP.
        assert_eq!(s.as_bytes(), &[2, 0, 0, 0, 3, 0, 0, 0, 1, 0, 2, 0, 3, 0]);
        assert!(s.insert(70_000));
        assert!(s.insert(-5_000_000_000));
        assert_eq!(s.iter().collect::<Vec<_>>(), [-5_000_000_000, 1, 2, 3, 70_000]);
        assert!(s.contains(70_000) && !s.contains(4));
        assert!(s.remove(2) && !s.remove(2));
        assert_eq!(s.len(), 4);
        assert_eq!(Intset::from_bytes(s.as_bytes().to_vec()).unwrap(), s);
        assert!(Intset::from_bytes(vec![2, 0, 0, 0, 2, 0, 0, 0, 5, 0, 1, 0]).is_err(), "unsorted");
        assert!(Intset::from_bytes(vec![3, 0, 0, 0, 0, 0, 0, 0]).is_err(), "bad width");
    }
}
