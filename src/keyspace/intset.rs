//! Redis's intset, byte for byte: the compact encoding of small sets of integers. Sorted
//! values of one width (2, 4 or 8 bytes, little endian), widened when a bigger value comes:
//!
//! ```text
//! encoding u32 LE (2, 4 or 8) | length u32 LE | values...
//! ```
//!
//! Membership is a binary search; an RDB snapshot or DUMP copies the bytes.

#[derive(Clone, PartialEq, Eq)]
pub struct Intset(Vec<u8>);

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
        let mut b = Vec::with_capacity(8);
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        Intset(b)
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
        let set = Intset(bytes);
        if set.iter().zip(set.iter().skip(1)).any(|(a, b)| a >= b) {
            return Err(bad);
        }
        Ok(set)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn heap_size(&self) -> usize {
        self.0.capacity()
    }

    fn width(&self) -> usize {
        u32::from_le_bytes(self.0[..4].try_into().unwrap()) as usize
    }

    pub fn len(&self) -> usize {
        u32::from_le_bytes(self.0[4..8].try_into().unwrap()) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value at position `i` (ascending order).
    pub fn get(&self, i: usize) -> i64 {
        let w = self.width();
        let at = 8 + i * w;
        let b = &self.0[at..at + w];
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

    fn write(&mut self, i: usize, v: i64) {
        let w = self.width();
        let at = 8 + i * w;
        match w {
            2 => self.0[at..at + 2].copy_from_slice(&(v as i16).to_le_bytes()),
            4 => self.0[at..at + 4].copy_from_slice(&(v as i32).to_le_bytes()),
            _ => self.0[at..at + 8].copy_from_slice(&v.to_le_bytes()),
        }
    }

    fn set_len(&mut self, len: usize) {
        self.0[4..8].copy_from_slice(&(len as u32).to_le_bytes());
        // Give back what removals left far beyond its size.
        if self.0.capacity() > self.0.len() + self.0.len() / 2 + 16 {
            self.0.shrink_to_fit();
        }
    }

    /// Adds `v`; false if it was there.
    pub fn insert(&mut self, v: i64) -> bool {
        if width_for(v) > self.width() {
            // Widen every value, then the new one goes at an end (it is out of the old range).
            let old: Vec<i64> = self.iter().collect();
            let w = width_for(v);
            let mut wider = Intset(Vec::with_capacity(8 + (old.len() + 1) * w));
            wider.0.extend_from_slice(&(w as u32).to_le_bytes());
            wider.0.extend_from_slice(&0u32.to_le_bytes());
            wider.0.resize(8 + old.len() * w, 0);
            wider.set_len(old.len());
            for (i, x) in old.iter().enumerate() {
                wider.write(i, *x);
            }
            *self = wider;
        }
        let Err(pos) = self.search(v) else { return false };
        let w = self.width();
        let at = 8 + pos * w;
        // Exact growth, as Redis reallocates an intset by one value.
        self.0.reserve_exact(w);
        self.0.splice(at..at, std::iter::repeat_n(0u8, w));
        let len = self.len();
        self.set_len(len + 1);
        self.write(pos, v);
        true
    }

    /// Removes `v`; false if it was not there.
    pub fn remove(&mut self, v: i64) -> bool {
        let Ok(pos) = self.search(v) else { return false };
        let w = self.width();
        let at = 8 + pos * w;
        self.0.drain(at..at + w);
        let len = self.len();
        self.set_len(len - 1);
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
