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

use super::thin::{Header, ThinBytes};
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
pub struct Listpack(ThinBytes<ListpackHeader>);

/// A listpack's length: its first four bytes.
pub struct ListpackHeader;

impl Header for ListpackHeader {
    const PREFIX: usize = 4;
    fn stored_len(prefix: &[u8]) -> usize {
        u32::from_le_bytes(prefix[..4].try_into().expect("4 bytes")) as usize
    }
}

/// Writes the header of a listpack of `count` elements (its total bytes and count).
fn write_header(buf: &mut [u8], count: usize) {
    let c = if count >= 65535 { 65535 } else { count as u16 };
    buf[4..6].copy_from_slice(&c.to_le_bytes());
    let total = buf.len() as u32;
    buf[..4].copy_from_slice(&total.to_le_bytes());
}

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
        Listpack(ThinBytes::new(vec![7, 0, 0, 0, 0, 0, EOF]))
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
        let mut bytes = bytes;
        write_header(&mut bytes, count);
        Ok(Listpack(ThinBytes::new(bytes)))
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_slice()
    }

    /// Elements in it.
    pub fn len(&self) -> usize {
        let b = self.as_bytes();
        let n = u16::from_le_bytes([b[4], b[5]]) as usize;
        if n != 65535 {
            return n;
        }
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.as_bytes().len() == HEADER + 1
    }

    /// Heap bytes held (exactly its length: every change reallocates to fit, as in Redis).
    pub fn heap_size(&self) -> usize {
        self.as_bytes().len()
    }

    /// Elements with their offsets (for [`Listpack::remove`] and [`Listpack::replace`]).
    pub fn iter(&self) -> Iter<'_> {
        Iter { buf: self.as_bytes(), at: HEADER }
    }

    /// Elements from offset `at` on.
    pub fn iter_from(&self, at: usize) -> Iter<'_> {
        Iter { buf: self.as_bytes(), at }
    }

    /// Appends an element.
    pub fn push(&mut self, s: &[u8]) {
        let count = self.len();
        self.0.edit(|b| {
            b.reserve_exact(s.len() + 11);
            b.pop();
            encode(item_of(s), b);
            b.push(EOF);
            write_header(b, count + 1);
        });
    }

    /// Inserts `s` before the element at offset `at` (or at the end: the EOF byte's offset).
    pub fn insert(&mut self, at: usize, s: &[u8]) {
        self.insert_all(at, &[s]);
    }

    /// Inserts `items` in order before the element at offset `at`, with one reallocation (a
    /// hash's field and value, a sorted set's member and score).
    pub fn insert_all(&mut self, at: usize, items: &[&[u8]]) {
        let mut encoded = Vec::with_capacity(items.iter().map(|s| s.len() + 11).sum());
        for s in items {
            encode(item_of(s), &mut encoded);
        }
        let count = self.len();
        self.0.edit(|b| {
            b.reserve_exact(encoded.len());
            b.splice(at..at, encoded);
            write_header(b, count + items.len());
        });
    }

    /// The element at offset `at`.
    pub fn get(&self, at: usize) -> Item<'_> {
        decode(self.as_bytes(), at).expect("an element's offset").0
    }

    /// The offset of the first element.
    pub fn first(&self) -> Option<usize> {
        (!self.is_empty()).then_some(HEADER)
    }

    /// The offset of the last element.
    pub fn last(&self) -> Option<usize> {
        self.prev(self.end())
    }

    /// The offset of the element after the one at `at`.
    pub fn next(&self, at: usize) -> Option<usize> {
        let (_, next) = decode(self.as_bytes(), at).expect("an element's offset");
        (next < self.end()).then_some(next)
    }

    /// The offset of the element before offset `at` (an element's, or the end's), read from
    /// the backlen that ends each element, as Redis walks a listpack backwards.
    pub fn prev(&self, at: usize) -> Option<usize> {
        if at <= HEADER {
            return None;
        }
        let b = self.as_bytes();
        let (mut len, mut shift, mut p) = (0usize, 0, at - 1);
        loop {
            len |= ((b[p] & 127) as usize) << shift;
            if b[p] & 128 == 0 {
                break;
            }
            shift += 7;
            p -= 1;
        }
        Some(at - backlen_size(len) - len)
    }

    /// The offset just past the last element (where [`Listpack::insert`] appends).
    pub fn end(&self) -> usize {
        self.as_bytes().len() - 1
    }

    /// Replaces the element at offset `at` with `s`.
    pub fn replace(&mut self, at: usize, s: &[u8]) {
        let (_, next) = decode(self.as_bytes(), at).expect("an element's offset");
        let mut encoded = Vec::with_capacity(s.len() + 11);
        encode(item_of(s), &mut encoded);
        let count = self.len();
        self.0.edit(|b| {
            b.reserve_exact(encoded.len().saturating_sub(next - at));
            b.splice(at..next, encoded);
            write_header(b, count);
        });
    }

    /// Removes `n` elements starting at offset `at`.
    pub fn remove(&mut self, at: usize, n: usize) {
        let mut end = at;
        for _ in 0..n {
            end = decode(self.as_bytes(), end).expect("an element's offset").1;
        }
        let count = self.len();
        self.0.edit(|b| {
            b.drain(at..end);
            write_header(b, count - n);
        });
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
