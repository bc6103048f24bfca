//! One stored key: its name, value and expiry in a single heap allocation.
//!
//! Memory per key is what users compare with Redis, so a key costs one allocation sized to
//! fit, like Redis's embedded strings, instead of separate key and value buffers with their
//! handles. The layout is
//!
//! ```text
//! header (LEB128 of key_len << 2 | is_object << 1 | has_expiry) | expiry (8 bytes LE, if any) | key | value
//! ```
//!
//! so a 16-byte key with a 64-byte value and no TTL takes 82 bytes, and the map's slot holds
//! only the 16-byte box. The value's length is what is left after the key. The header's
//! second bit marks a collection: the value bytes are then a pointer to it.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};

use super::object::Object;

/// A stored value, borrowed from its entry: a string's bytes, or a collection.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    Str(&'a [u8]),
    Obj(&'a Object),
}

impl Value<'_> {
    /// The name TYPE reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Obj(o) => o.type_name(),
        }
    }
}

/// A key with its value and expiry (absolute Unix milliseconds), in one allocation. A
/// collection lives in its own allocation, which the entry owns through a pointer kept where a
/// string's bytes would be (as Redis's robj points at its value).
pub struct Entry(Box<[u8]>);

/// Where the parts of an entry are, decoded from its header.
struct Layout {
    expiry: Option<usize>,
    /// Where the last access time (4 bytes) is.
    access: usize,
    key: usize,
    key_len: usize,
    object: bool,
}

const PTR: usize = std::mem::size_of::<usize>();

fn varint_len(mut n: u64) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

/// The access clock: Unix seconds, read cheaply (the server's cron refreshes it, as Redis's
/// LRU clock), for each entry's last access (OBJECT IDLETIME).
static CLOCK: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// The access clock's current value (set from the real clock when it was never set).
pub fn clock() -> u32 {
    match CLOCK.load(std::sync::atomic::Ordering::Relaxed) {
        0 => tick_clock(super::now_ms()),
        c => c,
    }
}

/// Moves the access clock to `now_ms` (the cron does, every tick).
pub fn tick_clock(now_ms: u64) -> u32 {
    let secs = (now_ms / 1000) as u32;
    CLOCK.store(secs, std::sync::atomic::Ordering::Relaxed);
    secs
}

fn build(key: &[u8], value: &[u8], object: bool, expire_at: Option<u64>) -> Box<[u8]> {
    build_at(key, value, object, expire_at, clock())
}

fn build_at(key: &[u8], value: &[u8], object: bool, expire_at: Option<u64>, access: u32) -> Box<[u8]> {
    let header = (key.len() as u64) << 2 | (object as u64) << 1 | expire_at.is_some() as u64;
    let len = varint_len(header) + if expire_at.is_some() { 8 } else { 0 } + 4 + key.len() + value.len();
    let mut buf = Vec::with_capacity(len);
    let mut h = header;
    while h >= 0x80 {
        buf.push(h as u8 | 0x80);
        h >>= 7;
    }
    buf.push(h as u8);
    if let Some(at) = expire_at {
        buf.extend_from_slice(&at.to_le_bytes());
    }
    buf.extend_from_slice(&access.to_le_bytes());
    buf.extend_from_slice(key);
    buf.extend_from_slice(value);
    debug_assert_eq!(buf.len(), len);
    buf.into_boxed_slice()
}

impl Entry {
    /// An entry holding a string.
    pub fn new(key: &[u8], value: Value<'_>, expire_at: Option<u64>) -> Entry {
        match value {
            Value::Str(v) => Entry(build(key, v, false, expire_at)),
            Value::Obj(o) => Entry::with_object(key, Box::new(o.clone()), expire_at),
        }
    }

    /// An entry owning a collection.
    pub fn with_object(key: &[u8], object: Box<Object>, expire_at: Option<u64>) -> Entry {
        let ptr = Box::into_raw(object) as usize;
        Entry(build(key, &ptr.to_le_bytes(), true, expire_at))
    }

    #[inline]
    fn layout(&self) -> Layout {
        let first = self.0[0];
        if first < 0x80 {
            // Keys shorter than 32 bytes: a one-byte header.
            let expiry = (first & 1 == 1).then_some(1);
            let access = if expiry.is_some() { 9 } else { 1 };
            return Layout {
                expiry,
                access,
                key: access + 4,
                key_len: (first >> 2) as usize,
                object: first & 2 == 2,
            };
        }
        let (mut header, mut shift, mut i) = (0u64, 0, 0);
        loop {
            let b = self.0[i];
            header |= u64::from(b & 0x7f) << shift;
            i += 1;
            if b < 0x80 {
                break;
            }
            shift += 7;
        }
        let expiry = (header & 1 == 1).then_some(i);
        let access = i + if expiry.is_some() { 8 } else { 0 };
        Layout { expiry, access, key: access + 4, key_len: (header >> 2) as usize, object: header & 2 == 2 }
    }

    fn object_ptr(&self, l: &Layout) -> *mut Object {
        let at = l.key + l.key_len;
        let bytes: [u8; PTR] = self.0[at..at + PTR].try_into().expect("a pointer");
        usize::from_le_bytes(bytes) as *mut Object
    }

    pub fn key(&self) -> &[u8] {
        let l = self.layout();
        &self.0[l.key..l.key + l.key_len]
    }

    pub fn value(&self) -> Value<'_> {
        let l = self.layout();
        if l.object {
            // SAFETY: an object entry's value bytes are the pointer `with_object` leaked from a
            // Box, owned by this entry until it is dropped; shared access to the entry gives
            // shared access to the object.
            return Value::Obj(unsafe { &*self.object_ptr(&l) });
        }
        Value::Str(&self.0[l.key + l.key_len..])
    }

    /// The collection, for changing it in place.
    pub fn object_mut(&mut self) -> Option<&mut Object> {
        let l = self.layout();
        // SAFETY: as in `value`; `&mut self` makes this the only access.
        l.object.then(|| unsafe { &mut *self.object_ptr(&l) })
    }

    /// The string value (empty for a collection).
    pub fn str(&self) -> &[u8] {
        match self.value() {
            Value::Str(v) => v,
            Value::Obj(_) => &[],
        }
    }

    /// When the key was last read or written, in Unix seconds (the access clock).
    pub fn accessed(&self) -> u32 {
        let at = self.layout().access;
        u32::from_le_bytes(self.0[at..at + 4].try_into().expect("4 bytes"))
    }

    /// Records an access at `secs` (a lookup does, as Redis updates a key's LRU clock).
    pub fn set_accessed(&mut self, secs: u32) {
        let at = self.layout().access;
        self.0[at..at + 4].copy_from_slice(&secs.to_le_bytes());
    }

    pub fn expire_at(&self) -> Option<u64> {
        let at = self.layout().expiry?;
        let bytes: [u8; 8] = self.0[at..at + 8].try_into().expect("8 bytes");
        Some(u64::from_le_bytes(bytes))
    }

    pub fn is_expired(&self, now: u64) -> bool {
        self.expire_at().is_some_and(|at| at <= now)
    }

    /// The same key with another value and expiry.
    pub fn replaced(&self, value: Value<'_>, expire_at: Option<u64>) -> Entry {
        Entry::new(self.key(), value, expire_at)
    }

    /// Takes the collection out (the entry becomes an empty string).
    pub fn take_object(&mut self) -> Option<Box<Object>> {
        let l = self.layout();
        if !l.object {
            return None;
        }
        let ptr = self.object_ptr(&l);
        let expire = self.expire_at();
        // The new buffer no longer points at the object: ownership moves to the Box.
        self.0 = build(self.key(), &[], false, expire);
        // SAFETY: `ptr` came from Box::into_raw in `with_object` and no entry owns it now.
        Some(unsafe { Box::from_raw(ptr) })
    }

    /// Changes the expiry, in place when the entry already has one.
    pub fn set_expire(&mut self, expire_at: Option<u64>) {
        match (self.layout().expiry, expire_at) {
            (Some(at), Some(new)) => self.0[at..at + 8].copy_from_slice(&new.to_le_bytes()),
            (None, None) => {}
            _ => {
                let l = self.layout();
                let value = self.0[l.key + l.key_len..].to_vec();
                // The pointer bytes move to the new buffer with the same owner semantics.
                // Dropping the old buffer frees its bytes only: the object is not dropped.
                self.0 = build_at(self.key(), &value, l.object, expire_at, self.accessed());
            }
        }
    }

    /// The same entry under another key (RENAME), the value moved, not copied.
    pub fn renamed(mut self, key: &[u8]) -> Entry {
        let expire = self.expire_at();
        match self.take_object() {
            Some(object) => Entry::with_object(key, object, expire),
            None => Entry(build(key, self.str(), false, expire)),
        }
    }

    /// Bytes of heap this entry occupies (its allocation and its collection's, not counting
    /// the map's slot).
    pub fn heap_size(&self) -> usize {
        self.0.len()
            + match self.value() {
                Value::Obj(o) => std::mem::size_of::<Object>() + o.heap_size(),
                Value::Str(_) => 0,
            }
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        let l = self.layout();
        if l.object {
            // SAFETY: this entry owns the object (see `with_object`).
            drop(unsafe { Box::from_raw(self.object_ptr(&l)) });
        }
    }
}

impl Clone for Entry {
    fn clone(&self) -> Entry {
        match self.value() {
            Value::Obj(o) => Entry::with_object(self.key(), Box::new(o.clone()), self.expire_at()),
            Value::Str(_) => Entry(self.0.clone()),
        }
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("key", &String::from_utf8_lossy(self.key()))
            .field("value", &self.value())
            .field("expire_at", &self.expire_at())
            .finish()
    }
}

/// Entries are set members keyed by their key alone: hashing and equality look at the key,
/// consistently with `[u8]`, so a map of entries is looked up with a plain `&[u8]`.
impl Hash for Entry {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state)
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Entry) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Entry {}

impl Borrow<[u8]> for Entry {
    fn borrow(&self) -> &[u8] {
        self.key()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_round_trip() {
        for key_len in [0usize, 1, 63, 64, 127, 128, 8191, 8192, 70_000] {
            let key = vec![b'k'; key_len];
            for value in [&b""[..], b"v", &[7u8; 300][..]] {
                for at in [None, Some(0), Some(1_700_000_000_000), Some(u64::MAX)] {
                    let e = Entry::new(&key, Value::Str(value), at);
                    assert_eq!(e.key(), &key[..]);
                    assert_eq!(e.str(), value);
                    assert_eq!(e.expire_at(), at);
                }
            }
        }
    }

    #[test]
    fn one_allocation_sized_to_fit() {
        let e = Entry::new(b"key:000000000001", Value::Str(&[b'v'; 64]), None);
        assert_eq!(e.heap_size(), 1 + 4 + 16 + 64);
        let e = Entry::new(b"key:000000000001", Value::Str(&[b'v'; 64]), Some(5));
        assert_eq!(e.heap_size(), 1 + 8 + 4 + 16 + 64);
        assert_eq!(std::mem::size_of::<Entry>(), 16);
    }

    #[test]
    fn expiry_changes() {
        let mut e = Entry::new(b"k", Value::Str(b"v"), None);
        e.set_expire(Some(10));
        assert_eq!((e.key(), e.str(), e.expire_at()), (&b"k"[..], &b"v"[..], Some(10)));
        e.set_expire(Some(20));
        assert_eq!(e.expire_at(), Some(20));
        e.set_expire(None);
        assert_eq!((e.key(), e.str(), e.expire_at()), (&b"k"[..], &b"v"[..], None));
        let r = e.replaced(Value::Str(b"longer value"), Some(3));
        assert_eq!((r.key(), r.str(), r.expire_at()), (&b"k"[..], &b"longer value"[..], Some(3)));
    }

    #[test]
    fn hashes_and_compares_as_its_key() {
        use std::hash::BuildHasher;
        let s = std::collections::hash_map::RandomState::new();
        let e = Entry::new(b"name", Value::Str(b"value"), Some(1));
        assert_eq!(s.hash_one(&e), s.hash_one(&b"name"[..]));
        let mut set = indexmap::IndexSet::new();
        set.insert(e);
        assert!(set.contains(&b"name"[..]));
        assert!(!set.contains(&b"value"[..]));
    }
}
