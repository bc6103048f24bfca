//! One stored key: its name, value and expiry in a single heap allocation, held by one
//! pointer.
//!
//! Memory per key is what users compare with Redis, so a key costs one allocation sized to
//! fit, like Redis's embedded strings, instead of separate key and value buffers with their
//! handles, and the map's slot holds only that pointer (8 bytes; a boxed slice would be 16).
//! The layout is
//!
//! ```text
//! string:     header | value length | expiry (8 bytes LE, if any) | access (4) | key | value
//! collection: header | expiry (if any) | access (4) | key | padding to 8 | Object
//! header = LEB128 of key_len << 2 | is_object << 1 | has_expiry; value length = LEB128
//! ```
//!
//! so a 16-byte key with a 64-byte value and no TTL takes 86 bytes. A collection's `Object`
//! (two words: a tag and a pointer to its compact bytes or its table) lives in the entry
//! itself, as Redis's robj would if it were embedded in the dict entry.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout as AllocLayout};
use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::ptr::NonNull;

use bytes::Bytes;

use super::object::Object;
use crate::resp::parser::BIG_ARG;

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

/// A string to store: bytes borrowed are copied into the entry; an argument (Bytes) may be
/// kept by reference (see [`Entry::shared`]).
#[derive(Clone, Copy)]
pub enum Stored<'a> {
    Copy(Value<'a>),
    Arg(&'a Bytes),
}

impl<'a> From<Value<'a>> for Stored<'a> {
    fn from(v: Value<'a>) -> Self {
        Stored::Copy(v)
    }
}

impl<'a> From<&'a Bytes> for Stored<'a> {
    fn from(b: &'a Bytes) -> Self {
        Stored::Arg(b)
    }
}

/// A key with its value and expiry (absolute Unix milliseconds), in one allocation (aligned
/// to 8, so that a collection's Object inside it is aligned).
pub struct Entry(NonNull<u8>);

// SAFETY: an Entry owns its allocation (and the Object in it) alone, as a Box would.
unsafe impl Send for Entry {}
// SAFETY: shared access only reads.
unsafe impl Sync for Entry {}

/// Where the parts of an entry are, decoded from its header.
struct Layout {
    expiry: Option<usize>,
    /// Where the last access time (4 bytes) is.
    access: usize,
    key: usize,
    key_len: usize,
    /// Where the value starts: a string's bytes, or the Object (aligned).
    value: usize,
    /// The whole allocation's size.
    total: usize,
    object: bool,
}

const ALIGN: usize = 8;
const OBJECT: usize = std::mem::size_of::<Object>();

/// The header of an entry, built on the stack (two LEB128 numbers of at most 10 bytes, an
/// expiry and the access time): an entry costs one allocation, not two.
struct Head {
    bytes: [u8; 32],
    len: usize,
}

impl Head {
    fn varint(&mut self, mut n: u64) {
        while n >= 0x80 {
            self.bytes[self.len] = n as u8 | 0x80;
            self.len += 1;
            n >>= 7;
        }
        self.bytes[self.len] = n as u8;
        self.len += 1;
    }

    fn extend(&mut self, b: &[u8]) {
        self.bytes[self.len..self.len + b.len()].copy_from_slice(b);
        self.len += b.len();
    }
}

fn object_offset(before: usize) -> usize {
    before.div_ceil(ALIGN) * ALIGN
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

/// Allocates an entry: header, key and (for a string) value written; for a collection, the
/// Object's place is left for the caller to fill.
fn build(key: &[u8], value: &[u8], object: bool, expire_at: Option<u64>, access: u32) -> NonNull<u8> {
    let header = (key.len() as u64) << 2 | (object as u64) << 1 | expire_at.is_some() as u64;
    let mut head = Head { bytes: [0; 32], len: 0 };
    head.varint(header);
    if !object {
        head.varint(value.len() as u64);
    }
    if let Some(at) = expire_at {
        head.extend(&at.to_le_bytes());
    }
    head.extend(&access.to_le_bytes());
    let before = head.len + key.len();
    let total = if object { object_offset(before) + OBJECT } else { before + value.len() };
    let layout = AllocLayout::from_size_align(total, ALIGN).expect("an entry's size");
    // SAFETY: `total` is at least 5 (header and access), so the layout is not zero-sized.
    let ptr = unsafe { alloc(layout) };
    let Some(ptr) = NonNull::new(ptr) else { handle_alloc_error(layout) };
    // SAFETY: the allocation holds `total` bytes: head, key, then the value (a string's bytes
    // fill the rest; a collection's place is written by the caller).
    unsafe {
        let p = ptr.as_ptr();
        std::ptr::copy_nonoverlapping(head.bytes.as_ptr(), p, head.len);
        std::ptr::copy_nonoverlapping(key.as_ptr(), p.add(head.len), key.len());
        if !object {
            std::ptr::copy_nonoverlapping(value.as_ptr(), p.add(before), value.len());
        }
    }
    ptr
}

/// Reads a LEB128 number at `p`; returns it and the bytes it took.
///
/// # Safety
/// `p` must point into an entry's header.
unsafe fn read_varint(p: *const u8) -> (u64, usize) {
    let (mut n, mut shift, mut i) = (0u64, 0, 0);
    loop {
        // SAFETY: a header's varint ends within the entry (its last byte is below 0x80).
        let b = unsafe { *p.add(i) };
        n |= u64::from(b & 0x7f) << shift;
        i += 1;
        if b < 0x80 {
            return (n, i);
        }
        shift += 7;
    }
}

impl Entry {
    /// An entry holding a string.
    pub fn new(key: &[u8], value: Value<'_>, expire_at: Option<u64>) -> Entry {
        match value {
            Value::Str(v) => Entry(build(key, v, false, expire_at, clock())),
            Value::Obj(o) => Entry::holding(key, o.clone(), expire_at, clock()),
        }
    }

    /// An entry holding a string by reference to `value`'s buffer when it is big (the
    /// request parser gives every argument of [`BIG_ARG`] bytes or more a buffer of its own,
    /// so keeping it pins nothing else), copied in otherwise.
    pub fn shared(key: &[u8], value: &Bytes, expire_at: Option<u64>) -> Entry {
        if value.len() < BIG_ARG {
            return Entry::new(key, Value::Str(value), expire_at);
        }
        Entry::holding(
            key,
            Object::Str(Box::new(super::object::BigStr::new(value.clone()))),
            expire_at,
            clock(),
        )
    }

    /// An entry owning a collection.
    pub fn with_object(key: &[u8], object: Object, expire_at: Option<u64>) -> Entry {
        Entry::holding(key, object, expire_at, clock())
    }

    fn holding(key: &[u8], object: Object, expire_at: Option<u64>, access: u32) -> Entry {
        let e = Entry(build(key, &[], true, expire_at, access));
        let l = e.layout();
        // SAFETY: the object's place is inside the allocation, aligned, and not yet written.
        unsafe { std::ptr::write(e.0.as_ptr().add(l.value) as *mut Object, object) };
        e
    }

    #[inline]
    fn layout(&self) -> Layout {
        let p = self.0.as_ptr();
        // SAFETY: every entry starts with its header (and a string's with its value length).
        let (header, mut at) = unsafe { read_varint(p) };
        let object = header & 2 == 2;
        let mut value_len = 0;
        if !object {
            // SAFETY: as above.
            let (n, len) = unsafe { read_varint(p.add(at)) };
            value_len = n as usize;
            at += len;
        }
        let expiry = (header & 1 == 1).then_some(at);
        let access = at + if expiry.is_some() { 8 } else { 0 };
        let key = access + 4;
        let key_len = (header >> 2) as usize;
        let (value, total) = if object {
            let v = object_offset(key + key_len);
            (v, v + OBJECT)
        } else {
            (key + key_len, key + key_len + value_len)
        };
        Layout { expiry, access, key, key_len, value, total, object }
    }

    fn bytes(&self, at: usize, len: usize) -> &[u8] {
        // SAFETY: callers pass ranges from `layout`, inside the allocation.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().add(at), len) }
    }

    fn bytes_mut(&mut self, at: usize, len: usize) -> &mut [u8] {
        // SAFETY: as in `bytes`; `&mut self` makes this the only access.
        unsafe { std::slice::from_raw_parts_mut(self.0.as_ptr().add(at), len) }
    }

    pub fn key(&self) -> &[u8] {
        let l = self.layout();
        self.bytes(l.key, l.key_len)
    }

    /// The Object in the entry, a big string's included.
    fn object(&self) -> Option<&Object> {
        let l = self.layout();
        // SAFETY: an object entry holds an initialized, aligned Object at `value`, owned by
        // the entry; shared access to the entry gives shared access to it.
        l.object.then(|| unsafe { &*(self.0.as_ptr().add(l.value) as *const Object) })
    }

    pub fn value(&self) -> Value<'_> {
        match self.object() {
            Some(Object::Str(b)) => Value::Str(&b.bytes),
            Some(o) => Value::Obj(o),
            None => {
                let l = self.layout();
                Value::Str(self.bytes(l.value, l.total - l.value))
            }
        }
    }

    /// The string value as Bytes: a big one by reference, a small one copied.
    pub fn str_bytes(&self) -> Option<Bytes> {
        match self.object() {
            Some(Object::Str(b)) => Some(b.bytes.clone()),
            Some(_) => None,
            None => Some(Bytes::copy_from_slice(self.str())),
        }
    }

    /// The collection, for changing it in place.
    pub fn object_mut(&mut self) -> Option<&mut Object> {
        let l = self.layout();
        // SAFETY: as in `value`; `&mut self` makes this the only access.
        let object = l.object.then(|| unsafe { &mut *(self.0.as_ptr().add(l.value) as *mut Object) });
        object.filter(|o| !matches!(o, Object::Str(_)))
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
        u32::from_le_bytes(self.bytes(at, 4).try_into().expect("4 bytes"))
    }

    /// Records an access at `secs` (a lookup does, as Redis updates a key's LRU clock).
    pub fn set_accessed(&mut self, secs: u32) {
        let at = self.layout().access;
        self.bytes_mut(at, 4).copy_from_slice(&secs.to_le_bytes());
    }

    pub fn expire_at(&self) -> Option<u64> {
        let at = self.layout().expiry?;
        Some(u64::from_le_bytes(self.bytes(at, 8).try_into().expect("8 bytes")))
    }

    pub fn is_expired(&self, now: u64) -> bool {
        self.expire_at().is_some_and(|at| at <= now)
    }

    /// The same key with another value and expiry.
    pub fn replaced<'a>(&self, value: impl Into<Stored<'a>>, expire_at: Option<u64>) -> Entry {
        Entry::stored(self.key(), value.into(), expire_at)
    }

    pub fn stored(key: &[u8], value: Stored<'_>, expire_at: Option<u64>) -> Entry {
        match value {
            Stored::Copy(v) => Entry::new(key, v, expire_at),
            Stored::Arg(b) => Entry::shared(key, b, expire_at),
        }
    }

    /// Moves the collection out of the entry, which becomes an empty string: the Object's
    /// place is no longer the entry's to drop.
    fn take_object_value(&mut self) -> Option<Object> {
        let l = self.layout();
        if !l.object {
            return None;
        }
        // SAFETY: the Object is initialized; the old allocation is freed below without
        // dropping it, so it is moved exactly once.
        let object = unsafe { std::ptr::read(self.0.as_ptr().add(l.value) as *const Object) };
        let fresh = build(self.key(), &[], false, self.expire_at(), self.accessed());
        // SAFETY: the old allocation's layout is `l.total` aligned to ALIGN, as built.
        unsafe { dealloc(self.0.as_ptr(), AllocLayout::from_size_align_unchecked(l.total, ALIGN)) };
        self.0 = fresh;
        Some(object)
    }

    /// Changes the expiry, in place when the entry already has one.
    pub fn set_expire(&mut self, expire_at: Option<u64>) {
        match (self.layout().expiry, expire_at) {
            (Some(at), Some(new)) => self.bytes_mut(at, 8).copy_from_slice(&new.to_le_bytes()),
            (None, None) => {}
            _ => {
                let key = self.key().to_vec();
                let access = self.accessed();
                *self = match self.take_object_value() {
                    Some(object) => Entry::holding(&key, object, expire_at, access),
                    None => Entry(build(&key, self.str(), false, expire_at, access)),
                };
            }
        }
    }

    /// The same entry under another key (RENAME), the value moved, not copied.
    pub fn renamed(mut self, key: &[u8]) -> Entry {
        let (expire, access) = (self.expire_at(), self.accessed());
        match self.take_object_value() {
            Some(object) => Entry::holding(key, object, expire, access),
            None => Entry(build(key, self.str(), false, expire, access)),
        }
    }

    /// Bytes of heap this entry occupies (its allocation and its collection's, not counting
    /// the map's slot).
    pub fn heap_size(&self) -> usize {
        self.layout().total + self.object().map_or(0, Object::heap_size)
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        let l = self.layout();
        // SAFETY: this entry owns its Object (if any) and its allocation, of `l.total` bytes
        // aligned to ALIGN, as `build` made it.
        unsafe {
            if l.object {
                std::ptr::drop_in_place(self.0.as_ptr().add(l.value) as *mut Object);
            }
            dealloc(self.0.as_ptr(), AllocLayout::from_size_align_unchecked(l.total, ALIGN));
        }
    }
}

impl Clone for Entry {
    fn clone(&self) -> Entry {
        match self.object() {
            Some(o) => Entry::holding(self.key(), o.clone(), self.expire_at(), self.accessed()),
            None => Entry(build(self.key(), self.str(), false, self.expire_at(), self.accessed())),
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
        assert_eq!(e.heap_size(), 1 + 1 + 4 + 16 + 64);
        let e = Entry::new(b"key:000000000001", Value::Str(&[b'v'; 64]), Some(5));
        assert_eq!(e.heap_size(), 1 + 1 + 8 + 4 + 16 + 64);
        assert_eq!(std::mem::size_of::<Entry>(), 8);
    }

    fn a_set(members: &[i64]) -> Object {
        let mut s = crate::keyspace::set::Set::for_member(b"1");
        for m in members {
            s.add(m.to_string().as_bytes(), &Default::default());
        }
        Object::Set(s)
    }

    fn members(e: &Entry) -> Vec<bytes::Bytes> {
        match e.value() {
            Value::Obj(Object::Set(s)) => {
                let mut m = s.members();
                m.sort();
                m
            }
            other => panic!("not a set: {other:?}"),
        }
    }

    #[test]
    fn a_collection_lives_in_the_entry_through_every_change() {
        for key_len in [0usize, 3, 8, 13, 64, 200] {
            let key = vec![b'k'; key_len];
            let mut e = Entry::with_object(&key, a_set(&[1, 2, 3]), None);
            assert_eq!((e.key(), e.expire_at()), (&key[..], None));
            assert_eq!(members(&e).len(), 3);
            e.set_expire(Some(77));
            assert_eq!((e.key(), e.expire_at(), members(&e).len()), (&key[..], Some(77), 3));
            if let Some(Object::Set(s)) = e.object_mut() {
                s.add(b"4", &Default::default());
            }
            let c = e.clone();
            e.set_expire(None);
            assert_eq!((e.expire_at(), members(&e).len()), (None, 4));
            let e = e.renamed(b"other");
            assert_eq!((e.key(), members(&e).len()), (&b"other"[..], 4));
            assert_eq!((c.key(), c.expire_at(), members(&c).len()), (&key[..], Some(77), 4));
            let mut e = e;
            let taken = e.take_object_value().expect("a collection");
            assert_eq!((e.key(), e.str(), taken.len()), (&b"other"[..], &b""[..], 4));
        }
    }

    #[test]
    fn a_big_string_is_kept_by_reference_through_every_change() {
        let big = Bytes::from(vec![7u8; BIG_ARG]);
        let e = Entry::shared(b"k", &big, None);
        assert_eq!(e.str().as_ptr(), big.as_ptr(), "not copied");
        assert!(matches!(e.value(), Value::Str(v) if v == &big[..]), "shown as a string");
        assert_eq!(e.str_bytes().unwrap().as_ptr(), big.as_ptr());
        assert!(e.heap_size() >= BIG_ARG);
        let mut e = e.renamed(b"other");
        e.set_expire(Some(5));
        assert_eq!((e.key(), e.expire_at(), e.str().as_ptr()), (&b"other"[..], Some(5), big.as_ptr()));
        let mut copy = e.clone();
        assert!(copy.object_mut().is_none(), "not a collection to change in place");
        assert_eq!(copy.str().as_ptr(), big.as_ptr());
        // Below BIG_ARG, the bytes are copied into the entry as before.
        let small = Bytes::from(vec![1u8; BIG_ARG - 1]);
        let e = Entry::shared(b"k", &small, None);
        assert_ne!(e.str().as_ptr(), small.as_ptr());
        assert_eq!(e.str(), &small[..]);
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
