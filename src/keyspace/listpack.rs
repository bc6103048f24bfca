//! Redis's listpack, byte for byte: the compact encoding of small hashes (and, later, sorted
//! sets and lists). Kept in memory exactly as Redis 7.0 writes it into an RDB file, so a
//! snapshot or DUMP copies the bytes, and memory per element is Redis's.
//!
//! ```text
//! total-bytes u32 LE | count u16 LE (65535: count by walking) | entry... | 0xFF
//! entry = encoding+data | backlen (the entry's encoding+data length, 1-5 bytes)
//! ```
//!
//! A string that is a canonical integer is stored as an integer (7, 13, 16, 24, 32 or 64 bits),
//! as Redis does; everything else as a string with a 6, 12 or 32-bit length. Small
//! collections scan it linearly, which is what Redis does too (they stay under
//! `*-max-listpack-entries`).

use crate::resp::parser::parse_i64;

const HEADER: usize = 6;
const EOF: u8 = 0xFF;

/// One element: a string or an integer (which reads back as its decimal string).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item<'a> {
    Str(&'a [u8]),
    Int(i64),
}

impl Item<'_> {
    /// What a client sees: the bytes, or the integer's decimal digits.
    pub fn to_bytes(self) -> bytes::Bytes {
        match self {
            Item::Str(s) => bytes::Bytes::copy_from_slice(s),
            Item::Int(n) => bytes::Bytes::copy_from_slice(itoa::Buffer::new().format(n).as_bytes()),
        }
    }

    /// The element's length as a string (HSTRLEN, the size rules).
    pub fn str_len(self) -> usize {
        match self {
            Item::Str(s) => s.len(),
            Item::Int(n) => itoa::Buffer::new().format(n).len(),
        }
    }

    /// Appends the client's view of the element to `out`.
    pub fn write_to(self, out: &mut Vec<u8>) {
        match self {
            Item::Str(s) => out.extend_from_slice(s),
            Item::Int(n) => out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
        }
    }

    /// Whether this element equals the string `s` (as Redis compares: integers by value).
    pub fn eq_bytes(self, s: &[u8]) -> bool {
        match self {
            Item::Str(v) => v == s,
            Item::Int(n) => parse_i64(s) == Some(n),
        }
    }
}

/// How `s` is stored: an integer when it is one in canonical form.
pub fn item_of(s: &[u8]) -> Item<'_> {
    match parse_i64(s) {
        Some(n) => Item::Int(n),
        None => Item::Str(s),
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct Listpack(Vec<u8>);

impl std::fmt::Debug for Listpack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter().map(|(i, _)| i)).finish()
    }
}

impl Default for Listpack {
    fn default() -> Self {
        Listpack::new()
    }
}

fn backlen_size(l: usize) -> usize {
    match l {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

fn encode_backlen(l: usize, out: &mut Vec<u8>) {
    let l = l as u64;
    match backlen_size(l as usize) {
        1 => out.push(l as u8),
        2 => out.extend_from_slice(&[(l >> 7) as u8, (l & 127) as u8 | 128]),
        3 => out.extend_from_slice(&[(l >> 14) as u8, ((l >> 7) & 127) as u8 | 128, (l & 127) as u8 | 128]),
        4 => out.extend_from_slice(&[
            (l >> 21) as u8,
            ((l >> 14) & 127) as u8 | 128,
            ((l >> 7) & 127) as u8 | 128,
            (l & 127) as u8 | 128,
        ]),
        _ => out.extend_from_slice(&[
            (l >> 28) as u8,
            ((l >> 21) & 127) as u8 | 128,
            ((l >> 14) & 127) as u8 | 128,
            ((l >> 7) & 127) as u8 | 128,
            (l & 127) as u8 | 128,
        ]),
    }
}

/// Encodes one element (encoding, data and backlen) onto `out`.
fn encode(item: Item<'_>, out: &mut Vec<u8>) {
    let start = out.len();
    match item {
        Item::Int(n) if (0..=127).contains(&n) => out.push(n as u8),
        Item::Int(n) if (-4096..=4095).contains(&n) => {
            let u = (n as u16) & 0x1FFF;
            out.extend_from_slice(&[0xC0 | (u >> 8) as u8, u as u8]);
        }
        Item::Int(n) if i16::try_from(n).is_ok() => {
            out.push(0xF1);
            out.extend_from_slice(&(n as i16).to_le_bytes());
        }
        Item::Int(n) if (-(1 << 23)..(1 << 23)).contains(&n) => {
            out.push(0xF2);
            out.extend_from_slice(&(n as i32).to_le_bytes()[..3]);
        }
        Item::Int(n) if i32::try_from(n).is_ok() => {
            out.push(0xF3);
            out.extend_from_slice(&(n as i32).to_le_bytes());
        }
        Item::Int(n) => {
            out.push(0xF4);
            out.extend_from_slice(&n.to_le_bytes());
        }
        Item::Str(s) if s.len() < 64 => {
            out.push(0x80 | s.len() as u8);
            out.extend_from_slice(s);
        }
        Item::Str(s) if s.len() < 4096 => {
            out.extend_from_slice(&[0xE0 | (s.len() >> 8) as u8, s.len() as u8]);
            out.extend_from_slice(s);
        }
        Item::Str(s) => {
            out.push(0xF0);
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s);
        }
    }
    let len = out.len() - start;
    encode_backlen(len, out);
}

/// Decodes the element at `at`: the element and the offset of the next one. None when the
/// bytes are not a valid element.
fn decode(buf: &[u8], at: usize) -> Option<(Item<'_>, usize)> {
    let b = *buf.get(at)?;
    let (item, len) = if b & 0x80 == 0 {
        (Item::Int(b as i64), 1)
    } else if b & 0xC0 == 0x80 {
        let n = (b & 0x3F) as usize;
        (Item::Str(buf.get(at + 1..at + 1 + n)?), 1 + n)
    } else if b & 0xE0 == 0xC0 {
        let u = ((b as u16 & 0x1F) << 8) | *buf.get(at + 1)? as u16;
        // Sign-extend 13 bits.
        let n = ((u << 3) as i16 >> 3) as i64;
        (Item::Int(n), 2)
    } else if b & 0xF0 == 0xE0 {
        let n = ((b as usize & 0x0F) << 8) | *buf.get(at + 1)? as usize;
        (Item::Str(buf.get(at + 2..at + 2 + n)?), 2 + n)
    } else {
        match b {
            0xF1 => (Item::Int(i16::from_le_bytes(buf.get(at + 1..at + 3)?.try_into().ok()?) as i64), 3),
            0xF2 => {
                let d = buf.get(at + 1..at + 4)?;
                let n = (i32::from_le_bytes([0, d[0], d[1], d[2]]) >> 8) as i64;
                (Item::Int(n), 4)
            }
            0xF3 => (Item::Int(i32::from_le_bytes(buf.get(at + 1..at + 5)?.try_into().ok()?) as i64), 5),
            0xF4 => (Item::Int(i64::from_le_bytes(buf.get(at + 1..at + 9)?.try_into().ok()?)), 9),
            0xF0 => {
                let n = u32::from_le_bytes(buf.get(at + 1..at + 5)?.try_into().ok()?) as usize;
                (Item::Str(buf.get(at + 5..at + 5 + n)?), 5 + n)
            }
            _ => return None,
        }
    };
    let next = at + len + backlen_size(len);
    (next <= buf.len()).then_some((item, next))
}

impl Listpack {
    pub fn new() -> Self {
        let mut b = Vec::with_capacity(HEADER + 1);
        b.extend_from_slice(&7u32.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.push(EOF);
        Listpack(b)
    }

    /// A listpack from its serialized form (an RDB or DUMP payload), checked end to end.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, &'static str> {
        let bad = "invalid listpack";
        if bytes.len() < HEADER + 1
            || u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize != bytes.len()
        {
            return Err(bad);
        }
        if *bytes.last().unwrap() != EOF {
            return Err(bad);
        }
        let mut at = HEADER;
        let mut count = 0usize;
        while at < bytes.len() - 1 {
            let (_, next) = decode(&bytes, at).ok_or(bad)?;
            at = next;
            count += 1;
        }
        if at != bytes.len() - 1 {
            return Err(bad);
        }
        let header_count = u16::from_le_bytes([bytes[4], bytes[5]]) as usize;
        if header_count != 65535 && header_count != count {
            return Err(bad);
        }
        let mut lp = Listpack(bytes);
        lp.set_count(count);
        Ok(lp)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Elements in it.
    pub fn len(&self) -> usize {
        let n = u16::from_le_bytes([self.0[4], self.0[5]]) as usize;
        if n != 65535 {
            return n;
        }
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.0.len() == HEADER + 1
    }

    /// Heap bytes held.
    pub fn heap_size(&self) -> usize {
        self.0.capacity()
    }

    /// After a change that shrank it: give back what is far beyond its size. Growth is exact
    /// (`reserve_exact` before adding), as Redis reallocates a listpack to its exact size.
    fn fit(&mut self) {
        if self.0.capacity() > self.0.len() + self.0.len() / 2 + 16 {
            self.0.shrink_to_fit();
        }
    }

    fn set_count(&mut self, count: usize) {
        let c = if count >= 65535 { 65535 } else { count as u16 };
        self.0[4..6].copy_from_slice(&c.to_le_bytes());
        let total = self.0.len() as u32;
        self.0[..4].copy_from_slice(&total.to_le_bytes());
        self.fit();
    }

    /// Elements with their offsets (for [`Listpack::remove`] and [`Listpack::replace`]).
    pub fn iter(&self) -> Iter<'_> {
        Iter { buf: &self.0, at: HEADER }
    }

    /// Elements from offset `at` on.
    pub fn iter_from(&self, at: usize) -> Iter<'_> {
        Iter { buf: &self.0, at }
    }

    /// Appends an element.
    pub fn push(&mut self, s: &[u8]) {
        let count = self.len();
        self.0.reserve_exact(s.len() + 11);
        self.0.pop();
        encode(item_of(s), &mut self.0);
        self.0.push(EOF);
        self.set_count(count + 1);
    }

    /// Inserts `s` before the element at offset `at` (or at the end: the EOF byte's offset).
    pub fn insert(&mut self, at: usize, s: &[u8]) {
        let mut encoded = Vec::with_capacity(s.len() + 11);
        encode(item_of(s), &mut encoded);
        self.0.reserve_exact(encoded.len());
        self.0.splice(at..at, encoded);
        let count = self.len();
        self.set_count(count + 1);
    }

    /// The offset just past the last element (where [`Listpack::insert`] appends).
    pub fn end(&self) -> usize {
        self.0.len() - 1
    }

    /// Replaces the element at offset `at` with `s`.
    pub fn replace(&mut self, at: usize, s: &[u8]) {
        let (_, next) = decode(&self.0, at).expect("an element's offset");
        let mut encoded = Vec::with_capacity(s.len() + 11);
        encode(item_of(s), &mut encoded);
        self.0.reserve_exact(encoded.len().saturating_sub(next - at));
        self.0.splice(at..next, encoded);
        let count = self.len();
        self.set_count(count);
    }

    /// Removes `n` elements starting at offset `at`.
    pub fn remove(&mut self, at: usize, n: usize) {
        let mut end = at;
        for _ in 0..n {
            end = decode(&self.0, end).expect("an element's offset").1;
        }
        let count = self.len();
        self.0.drain(at..end);
        self.set_count(count - n);
    }

    /// Gives back capacity beyond what it holds.
    pub fn shrink(&mut self) {
        self.0.shrink_to_fit();
    }
}

pub struct Iter<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Iter<'a> {
    /// The element and its offset.
    type Item = (Item<'a>, usize);

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.buf.len() - 1 {
            return None;
        }
        let at = self.at;
        let (item, next) = decode(self.buf, at).expect("a valid listpack");
        self.at = next;
        Some((item, at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_encoding_round_trips() {
        let long = vec![b'x'; 5000];
        let mid = vec![b'y'; 300];
        let values: Vec<Vec<u8>> = [
            "0",
            "127",
            "128",
            "-1",
            "-4096",
            "4095",
            "4096",
            "-4097",
            "32767",
            "-32768",
            "32768",
            "8388607",
            "-8388608",
            "8388608",
            "2147483647",
            "-2147483648",
            "2147483648",
            "9223372036854775807",
            "-9223372036854775808",
            "",
            "a",
            "01",
            "-0",
            "+1",
            "1.5",
            "field",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .chain([long.clone(), mid.clone()])
        .collect();
        let mut lp = Listpack::new();
        for v in &values {
            lp.push(v);
        }
        assert_eq!(lp.len(), values.len());
        let back: Vec<Vec<u8>> = lp.iter().map(|(i, _)| i.to_bytes().to_vec()).collect();
        assert_eq!(back, values);
        let again = Listpack::from_bytes(lp.as_bytes().to_vec()).unwrap();
        assert_eq!(again, lp);
        assert!(matches!(lp.iter().nth(1).unwrap().0, Item::Int(127)));
        assert!(matches!(lp.iter().nth(21).unwrap().0, Item::Str(b"01")));
    }

    #[test]
    fn a_known_redis_listpack() {
        // HSET h a 1 bb 300 in redis-server 7.0, from DUMP: 4 elements.
        let redis = [0x17, 0, 0, 0, 4, 0, 0x81, b'a', 2, 1, 1, 0x82, b'b', b'b', 3, 0xC1, 0x2C, 2, 0xFF];
        let mut bytes = redis.to_vec();
        bytes[0] = bytes.len() as u8;
        let lp = Listpack::from_bytes(bytes.clone()).unwrap();
        let items: Vec<Vec<u8>> = lp.iter().map(|(i, _)| i.to_bytes().to_vec()).collect();
        assert_eq!(items, [&b"a"[..], b"1", b"bb", b"300"]);
        let mut ours = Listpack::new();
        for i in &items {
            ours.push(i);
        }
        assert_eq!(ours.as_bytes(), &bytes[..], "the same bytes Redis writes");
    }

    #[test]
    fn edits_keep_it_valid() {
        let mut lp = Listpack::new();
        for s in ["a", "1", "b", "2", "c", "3"] {
            lp.push(s.as_bytes());
        }
        let at = lp.iter().nth(2).unwrap().1;
        lp.remove(at, 2);
        let at = lp.iter().nth(1).unwrap().1;
        lp.replace(at, &[b'z'; 100]);
        let items: Vec<Vec<u8>> = lp.iter().map(|(i, _)| i.to_bytes().to_vec()).collect();
        assert_eq!(items, [b"a".to_vec(), vec![b'z'; 100], b"c".to_vec(), b"3".to_vec()]);
        assert_eq!(Listpack::from_bytes(lp.as_bytes().to_vec()).unwrap(), lp);
        assert!(Listpack::from_bytes(vec![1, 2, 3]).is_err());
        let mut broken = lp.as_bytes().to_vec();
        broken[6] = 0xF7; // not an encoding
        assert!(Listpack::from_bytes(broken).is_err());
    }
}
