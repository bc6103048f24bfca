//! Hashes: a listpack of field, value, field, value... while small (at most
//! `hash-max-listpack-entries` fields, none longer than `hash-max-listpack-value`), then a hash
//! table.

use std::borrow::Borrow;

use bytes::Bytes;
use indexmap::IndexSet;

use super::listpack::{item_of, Item, Listpack};
use super::object::Limits;

/// A field and its value in one allocation, `[LEB128 field length | field | value]`, hashed
/// and compared as its field (so the table is looked up with the field alone).
#[derive(Clone)]
pub struct Pair(Box<[u8]>);

impl Pair {
    fn new(field: &[u8], value: &[u8]) -> Pair {
        let mut b = Vec::with_capacity(field.len() + value.len() + 3);
        let mut n = field.len();
        while n >= 0x80 {
            b.push(n as u8 | 0x80);
            n >>= 7;
        }
        b.push(n as u8);
        b.extend_from_slice(field);
        b.extend_from_slice(value);
        Pair(b.into_boxed_slice())
    }

    fn split(&self) -> (&[u8], &[u8]) {
        let (mut len, mut shift, mut i) = (0usize, 0, 0);
        loop {
            let b = self.0[i];
            len |= ((b & 0x7f) as usize) << shift;
            i += 1;
            if b < 0x80 {
                break;
            }
            shift += 7;
        }
        self.0[i..].split_at(len)
    }

    pub fn field(&self) -> &[u8] {
        self.split().0
    }

    pub fn value(&self) -> &[u8] {
        self.split().1
    }
}

impl std::fmt::Debug for Pair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (k, v) = self.split();
        write!(f, "{}={}", String::from_utf8_lossy(k), String::from_utf8_lossy(v))
    }
}

impl std::hash::Hash for Pair {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.field().hash(state)
    }
}

impl PartialEq for Pair {
    fn eq(&self, other: &Pair) -> bool {
        self.field() == other.field()
    }
}

impl Eq for Pair {}

impl Borrow<[u8]> for Pair {
    fn borrow(&self) -> &[u8] {
        self.field()
    }
}

type Table = IndexSet<Pair, foldhash::fast::RandomState>;

#[derive(Debug, Clone)]
pub enum Hash {
    Packed(Listpack),
    /// Boxed, so a small hash's object stays small.
    Table(Box<Table>),
}

impl Default for Hash {
    fn default() -> Self {
        Hash::Packed(Listpack::new())
    }
}

/// An element's bytes, with integers written out into `buf`.
fn item_bytes<'a>(item: Item<'a>, buf: &'a mut itoa::Buffer) -> &'a [u8] {
    match item {
        Item::Str(s) => s,
        Item::Int(n) => buf.format(n).as_bytes(),
    }
}

impl Hash {
    pub fn encoding(&self) -> &'static str {
        match self {
            Hash::Packed(_) => "listpack",
            Hash::Table(_) => "hashtable",
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Hash::Packed(lp) => lp.len() / 2,
            Hash::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn heap_size(&self) -> usize {
        match self {
            Hash::Packed(lp) => lp.heap_size(),
            Hash::Table(t) => {
                t.capacity() * (std::mem::size_of::<Pair>() + 16) + t.iter().map(|p| p.0.len()).sum::<usize>()
            }
        }
    }

    /// Offsets of the field and its value in a listpack.
    fn find(lp: &Listpack, field: &[u8]) -> Option<(usize, usize)> {
        let mut it = lp.iter();
        while let Some((f, at)) = it.next() {
            let (_, value_at) = it.next()?;
            if f.eq_bytes(field) {
                return Some((at, value_at));
            }
        }
        None
    }

    pub fn get(&self, field: &[u8]) -> Option<Bytes> {
        match self {
            Hash::Packed(lp) => {
                let (_, at) = Self::find(lp, field)?;
                lp.iter_from(at).next().map(|(v, _)| v.to_bytes())
            }
            Hash::Table(t) => t.get(field).map(|p| Bytes::copy_from_slice(p.value())),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        match self {
            Hash::Packed(lp) => Self::find(lp, field).is_some(),
            Hash::Table(t) => t.contains(field),
        }
    }

    /// Sets `field` to `value`; true when the field is new.
    pub fn set(&mut self, field: &[u8], value: &[u8], limits: &Limits) -> bool {
        if let Hash::Packed(lp) = self {
            let fits = field.len() <= limits.hash_value && value.len() <= limits.hash_value;
            match Self::find(lp, field) {
                Some((_, at)) if fits => {
                    lp.replace(at, value);
                    return false;
                }
                None if fits && lp.len() / 2 < limits.hash_entries => {
                    lp.insert_all(lp.end(), &[field, value]);
                    return true;
                }
                _ => self.convert_to_table(),
            }
        }
        let Hash::Table(t) = self else { unreachable!("converted above") };
        // Found by the field alone (no second pair to compare), replaced in its place.
        match t.get_index_of(field) {
            Some(i) => {
                use indexmap::set::MutableValues;
                *t.get_index_mut2(i).expect("just found") = Pair::new(field, value);
                false
            }
            None => {
                t.insert(Pair::new(field, value));
                true
            }
        }
    }

    fn convert_to_table(&mut self) {
        let Hash::Packed(lp) = self else { return };
        let mut t = Table::with_capacity_and_hasher(lp.len() / 2 + 1, Default::default());
        let mut it = lp.iter();
        while let (Some((f, _)), Some((v, _))) = (it.next(), it.next()) {
            t.insert(Pair::new(&f.to_bytes(), &v.to_bytes()));
        }
        *self = Hash::Table(Box::new(t));
    }

    /// Removes `field`; true if it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self {
            Hash::Packed(lp) => match Self::find(lp, field) {
                Some((at, _)) => {
                    lp.remove(at, 2);
                    true
                }
                None => false,
            },
            Hash::Table(t) => t.swap_remove(field),
        }
    }

    /// Calls `f` on every field and value, in the hash's order.
    pub fn for_each(&self, mut f: impl FnMut(&[u8], &[u8])) {
        match self {
            Hash::Packed(lp) => {
                let mut it = lp.iter();
                while let (Some((k, _)), Some((v, _))) = (it.next(), it.next()) {
                    let (mut kb, mut vb) = (itoa::Buffer::new(), itoa::Buffer::new());
                    f(item_bytes(k, &mut kb), item_bytes(v, &mut vb));
                }
            }
            Hash::Table(t) => t.iter().for_each(|p| {
                let (k, v) = p.split();
                f(k, v)
            }),
        }
    }

    /// The field and value at position `i` (0 <= i < len), for random picks.
    pub fn pair_at(&self, i: usize) -> (Bytes, Bytes) {
        match self {
            Hash::Packed(lp) => {
                let mut it = lp.iter().skip(2 * i);
                let (f, _) = it.next().expect("in range");
                let (v, _) = it.next().expect("a value");
                (f.to_bytes(), v.to_bytes())
            }
            Hash::Table(t) => {
                let (f, v) = t.get_index(i).expect("in range").split();
                (Bytes::copy_from_slice(f), Bytes::copy_from_slice(v))
            }
        }
    }

    /// HSCAN: a listpack is returned whole (cursor 0 after), as Redis does; a table from the top
    /// down by position, as [`super::Db::scan`] explains.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8], &[u8])) -> u64 {
        match self {
            Hash::Packed(_) => {
                self.for_each(f);
                0
            }
            Hash::Table(t) => {
                let window = super::scan_window(t.len(), cursor, count);
                for pos in window.clone().rev() {
                    let (k, v) = t.get_index(pos).expect("in range").split();
                    f(k, v);
                }
                window.start as u64
            }
        }
    }

    /// From a listpack read from an RDB file or a DUMP payload, re-encoded by today's rules.
    pub fn from_listpack(lp: Listpack, limits: &Limits) -> Result<Hash, &'static str> {
        if !lp.len().is_multiple_of(2) {
            return Err("a hash listpack with an odd number of elements");
        }
        let mut h = Hash::Packed(lp);
        let too_big = |h: &Hash| {
            let Hash::Packed(lp) = h else { return false };
            lp.len() / 2 > limits.hash_entries || lp.iter().any(|(i, _)| i.str_len() > limits.hash_value)
        };
        if too_big(&h) {
            h.convert_to_table();
        }
        Ok(h)
    }

    /// The listpack form, if that is how it is kept.
    pub fn listpack(&self) -> Option<&Listpack> {
        match self {
            Hash::Packed(lp) => Some(lp),
            Hash::Table(_) => None,
        }
    }

    #[cfg(test)]
    fn fields(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        self.for_each(|f, v| out.push((f.to_vec(), v.to_vec())));
        out
    }
}

/// Whether `s` would be kept as an integer in a listpack (tests).
#[allow(dead_code)]
fn is_int(s: &[u8]) -> bool {
    matches!(item_of(s), Item::Int(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_until_the_size_rules_then_a_table() {
        let limits = Limits { hash_entries: 3, hash_value: 8, ..Default::default() };
        let mut h = Hash::default();
        assert!(h.set(b"a", b"1", &limits));
        assert!(h.set(b"b", b"two", &limits));
        assert!(!h.set(b"a", b"100", &limits), "an update");
        assert_eq!(h.get(b"a").as_deref(), Some(&b"100"[..]));
        assert!(h.set(b"c", b"3", &limits));
        assert_eq!(h.encoding(), "listpack");
        assert!(h.set(b"d", b"4", &limits), "a fourth field: past the entries rule");
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.len(), 4);
        assert_eq!(h.get(b"b").as_deref(), Some(&b"two"[..]));
        let mut h2 = Hash::default();
        h2.set(b"f", b"v", &limits);
        h2.set(b"f", b"a value past eight", &limits);
        assert_eq!(h2.encoding(), "hashtable", "a long value");
        assert!(h.remove(b"a") && !h.remove(b"a"));
        assert!(h2.remove(b"f") && h2.is_empty());
    }

    #[test]
    fn packed_edits() {
        let limits = Limits::default();
        let mut h = Hash::default();
        for (f, v) in [("x", "1"), ("y", "2"), ("z", "3")] {
            h.set(f.as_bytes(), v.as_bytes(), &limits);
        }
        assert!(h.remove(b"y"));
        assert!(h.contains(b"z") && !h.contains(b"y"));
        assert_eq!(h.fields(), [(b"x".to_vec(), b"1".to_vec()), (b"z".to_vec(), b"3".to_vec())]);
        assert_eq!(h.pair_at(1), (Bytes::from_static(b"z"), Bytes::from_static(b"3")));
        assert!(is_int(b"12") && !is_int(b"012"));
    }
}
