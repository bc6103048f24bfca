//! Collections: the values a key holds besides a string. Each type has Redis's compact
//! encoding for small sizes (listpack, intset) and turns into an indexed one past the size
//! rules of its `*-max-*` parameters, as Redis does; it never turns back while it lives.

use bytes::Bytes;

use super::hash::Hash;
use super::set::Set;

#[derive(Debug, Clone)]
pub enum Object {
    Hash(Hash),
    Set(Set),
}

impl Object {
    /// The name TYPE reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Object::Hash(_) => "hash",
            Object::Set(_) => "set",
        }
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self {
            Object::Hash(h) => h.encoding(),
            Object::Set(s) => s.encoding(),
        }
    }

    /// Elements (fields, members).
    pub fn len(&self) -> usize {
        match self {
            Object::Hash(h) => h.len(),
            Object::Set(s) => s.len(),
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
            Object::Hash(h) => h.for_each(|f, v| acc ^= one(&[f, v])),
            Object::Set(s) => s.members().iter().for_each(|m| acc ^= one(&[m])),
        }
        acc
    }

    /// Heap bytes held by the collection (not its own box).
    pub fn heap_size(&self) -> usize {
        match self {
            Object::Hash(h) => h.heap_size(),
            Object::Set(s) => s.heap_size(),
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
}

impl Default for Limits {
    fn default() -> Self {
        Limits { hash_entries: 512, hash_value: 64, set_intset_entries: 512 }
    }
}

/// Bytes for a client from an element kept as bytes.
pub fn bytes(b: &[u8]) -> Bytes {
    Bytes::copy_from_slice(b)
}
