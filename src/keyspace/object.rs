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
}

impl Object {
    /// The name TYPE reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Object::List(_) => "list",
            Object::Hash(_) => "hash",
            Object::Set(_) => "set",
            Object::ZSet(_) => "zset",
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
        }
    }

    /// Elements (fields, members).
    pub fn len(&self) -> usize {
        match self {
            Object::List(l) => l.len(),
            Object::Hash(h) => h.len(),
            Object::Set(s) => s.len(),
            Object::ZSet(z) => z.len(),
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
