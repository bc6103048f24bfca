//! Collections: the values a key holds besides a string. Each type has Redis's compact
//! encoding for small sizes (listpack, intset) and turns into an indexed one past the size
//! rules of its `*-max-*` parameters, as Redis does; it never turns back while it lives.

use bytes::Bytes;

use super::hash::Hash;
use super::list::List;
use super::set::Set;
use super::zset::ZSet;

#[derive(Debug, Clone)]
pub enum Object {
    List(List),
    Hash(Hash),
    Set(Set),
    ZSet(ZSet),
    /// A big string kept by reference to the buffer it arrived in (see [`Entry::shared`](super::Entry::shared)); an entry
    /// shows it as a string, never as this.
    Str(Box<BigStr>),
}

/// A big string kept by reference to the buffer it arrived in. `borrowed` when those are
/// another shard's bytes in this process (an in-process read shard's value, taken from its
/// primary): counted in `alloc::borrowed` while held, so memory reports count it per copy.
#[derive(Debug)]
pub struct BigStr {
    pub bytes: Bytes,
    borrowed: bool,
}

thread_local! {
    /// Where the arguments being applied that are another shard's bytes start (see [`lent`]).
    static LENT: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` (a read shard applying its stream) with the arguments starting at `ptrs` known
/// to be its primary's bytes: big strings stored from them are counted as borrowed.
pub fn lent<R>(ptrs: &[usize], f: impl FnOnce() -> R) -> R {
    if ptrs.is_empty() {
        return f();
    }
    LENT.with(|l| l.borrow_mut().extend_from_slice(ptrs));
    let r = f();
    LENT.with(|l| l.borrow_mut().clear());
    r
}

impl BigStr {
    pub fn new(bytes: Bytes) -> BigStr {
        let ptr = bytes.as_ptr() as usize;
        let borrowed = LENT.with(|l| l.borrow().contains(&ptr));
        if borrowed {
            crate::alloc::add_borrowed(bytes.len() as isize);
        }
        BigStr { bytes, borrowed }
    }
}

impl Clone for BigStr {
    fn clone(&self) -> BigStr {
        if self.borrowed {
            crate::alloc::add_borrowed(self.bytes.len() as isize);
        }
        BigStr { bytes: self.bytes.clone(), borrowed: self.borrowed }
    }
}

impl Drop for BigStr {
    fn drop(&mut self) {
        if self.borrowed {
            crate::alloc::add_borrowed(-(self.bytes.len() as isize));
        }
    }
}

impl Object {
    /// The name TYPE reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Object::List(_) => "list",
            Object::Hash(_) => "hash",
            Object::Set(_) => "set",
            Object::ZSet(_) => "zset",
            Object::Str(_) => "string",
        }
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self {
            // Redis 7.0 reports every list as a quicklist.
            Object::List(_) => "quicklist",
            Object::Hash(h) => h.encoding(),
            Object::Set(s) => s.encoding(),
            Object::ZSet(z) => z.encoding(),
            Object::Str(_) => "raw",
        }
    }

    /// Elements (fields, members).
    pub fn len(&self) -> usize {
        match self {
            Object::List(l) => l.len(),
            Object::Hash(h) => h.len(),
            Object::Set(s) => s.len(),
            Object::ZSet(z) => z.len(),
            Object::Str(b) => b.bytes.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A hash of the contents that does not depend on the order elements are kept in (DEBUG
    /// DIGEST: equal collections, equal digests, whatever their encoding).
    pub fn digest(&self, seed: u64) -> u64 {
        use std::hash::{BuildHasher, Hash as _, Hasher};
        let one = |parts: &[&[u8]]| {
            let mut h = foldhash::fast::FixedState::with_seed(seed).build_hasher();
            parts.iter().for_each(|p| p.hash(&mut h));
            h.finish()
        };
        let mut acc = 0u64;
        match self {
            // A list's order is part of its value: one hash over the elements in turn.
            Object::List(l) => {
                let mut h = foldhash::fast::FixedState::with_seed(seed).build_hasher();
                let mut buf = Vec::new();
                l.for_each(|item| {
                    buf.clear();
                    item.write_to(&mut buf);
                    buf.hash(&mut h);
                });
                acc = h.finish();
            }
            Object::Hash(h) => h.for_each(|f, v| acc ^= one(&[f, v])),
            Object::Set(s) => s.members().iter().for_each(|m| acc ^= one(&[m])),
            Object::ZSet(z) => z.all().iter().for_each(|(m, s)| acc ^= one(&[m, &s.to_bits().to_le_bytes()])),
            Object::Str(b) => acc = one(&[&b.bytes]),
        }
        acc
    }

    /// Heap bytes held by the collection (not its own box).
    pub fn heap_size(&self) -> usize {
        match self {
            Object::List(l) => l.heap_size(),
            Object::Hash(h) => h.heap_size(),
            Object::Set(s) => s.heap_size(),
            Object::ZSet(z) => z.heap_size(),
            Object::Str(b) => std::mem::size_of::<BigStr>() + b.bytes.len(),
        }
    }
}

/// The size rules for compact encodings, from the configuration (CONFIG SET changes them
/// for what is created or grown afterwards, as in Redis).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub hash_entries: usize,
    pub hash_value: usize,
    pub set_intset_entries: usize,
    pub zset_entries: usize,
    pub zset_value: usize,
    /// list-max-listpack-size.
    pub list_fill: i64,
    /// list-compress-depth.
    pub list_compress: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            hash_entries: 512,
            hash_value: 64,
            set_intset_entries: 512,
            zset_entries: 128,
            zset_value: 64,
            list_fill: -2,
            list_compress: 0,
        }
    }
}

impl Limits {
    pub fn list(&self) -> super::list::ListLimits {
        super::list::ListLimits { fill: self.list_fill, compress: self.list_compress }
    }

    pub fn zset(&self) -> super::zset::ZLimits {
        super::zset::ZLimits { entries: self.zset_entries, value: self.zset_value }
    }
}

/// Bytes for a client from an element kept as bytes.
pub fn bytes(b: &[u8]) -> Bytes {
    Bytes::copy_from_slice(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_collection_value_is_three_words() {
        // What a collection adds to its key's entry (see keyspace::entry): a tag and a
        // one-pointer value (compact bytes, see keyspace::thin, or a boxed table).
        assert_eq!(std::mem::size_of::<Object>(), 24);
    }
}
