//! Redis's RDB format (version 9, as redis-server 7.0 writes for its replicas), the one
//! encoder and decoder of values: snapshots (SAVE, BGSAVE, the AOF preamble and rewrite, a
//! full resync, a replica's saved state) and DUMP/RESTORE payloads. Values are written in
//! Redis 7.0's type codes and encodings: strings, hashes as listpack or hashtable, sets as
//! intset or hashtable. The reader also takes LZF-compressed strings (redis-server's
//! `rdbcompression yes`) and the aux and resize fields Redis adds, and refuses anything else
//! clearly.

use bytes::{BufMut, Bytes, BytesMut};

use crate::keyspace::hash::Hash;
use crate::keyspace::intset::Intset;
use crate::keyspace::list::List;
use crate::keyspace::listpack::Listpack;
use crate::keyspace::set::Set;
use crate::keyspace::zset::ZSet;
use crate::keyspace::{Keyspace, Limits, Object, Value};

const MAGIC: &[u8] = b"REDIS0009";
/// A function library's code (Redis 7's RDB_OPCODE_FUNCTION2).
const OP_FUNCTION2: u8 = 0xF5;
const OP_AUX: u8 = 0xFA;
const OP_RESIZEDB: u8 = 0xFB;
const OP_EXPIRETIME_MS: u8 = 0xFC;
const OP_EXPIRETIME: u8 = 0xFD;
const OP_SELECTDB: u8 = 0xFE;
const OP_EOF: u8 = 0xFF;
const TYPE_STRING: u8 = 0;
const TYPE_LIST: u8 = 1;
const TYPE_SET: u8 = 2;
const TYPE_ZSET: u8 = 3;
const TYPE_HASH: u8 = 4;
const TYPE_ZSET_2: u8 = 5;
const TYPE_SET_INTSET: u8 = 11;
const TYPE_HASH_LISTPACK: u8 = 16;
const TYPE_LIST_QUICKLIST_2: u8 = 18;
/// A QUICKLIST_2 node holding one element as it is (Redis's PLAIN container).
const NODE_PLAIN: u64 = 1;
/// A QUICKLIST_2 node holding a listpack (PACKED).
const NODE_PACKED: u64 = 2;
const TYPE_ZSET_LISTPACK: u8 = 17;
const TYPE_SET_LISTPACK: u8 = 20;

/// The RDB version DUMP payloads carry (Redis 7.0's).
pub const DUMP_VERSION: u16 = 10;

/// Writes a value's type byte and encoding, as in an RDB file or a DUMP payload.
pub fn put_value(out: &mut BytesMut, value: Value<'_>) {
    match value {
        Value::Str(v) => {
            out.put_u8(TYPE_STRING);
            put_str(out, v);
        }
        // An entry shows a big string as Value::Str; a value made by hand may not.
        Value::Obj(Object::Str(v)) => {
            out.put_u8(TYPE_STRING);
            put_str(out, &v.bytes);
        }
        Value::Obj(Object::List(l)) => {
            out.put_u8(TYPE_LIST_QUICKLIST_2);
            put_len(out, l.nodes().len() as u64);
            for node in l.nodes() {
                put_len(out, NODE_PACKED);
                put_str(out, node.as_bytes());
            }
        }
        Value::Obj(Object::Hash(h)) => match h.listpack() {
            Some(lp) => {
                out.put_u8(TYPE_HASH_LISTPACK);
                put_str(out, lp.as_bytes());
            }
            None => {
                out.put_u8(TYPE_HASH);
                put_len(out, h.len() as u64);
                h.for_each(|f, v| {
                    put_str(out, f);
                    put_str(out, v);
                });
            }
        },
        Value::Obj(Object::ZSet(z)) => match z.listpack() {
            Some(lp) => {
                out.put_u8(TYPE_ZSET_LISTPACK);
                put_str(out, lp.as_bytes());
            }
            None => {
                // Redis writes a skiplist from the highest score down, so loading inserts at
                // the head.
                out.put_u8(TYPE_ZSET_2);
                put_len(out, z.len() as u64);
                for (m, s) in z.all().into_iter().rev() {
                    put_str(out, &m);
                    out.put_f64_le(s);
                }
            }
        },
        Value::Obj(Object::Set(s)) => match s.intset() {
            Some(ints) => {
                out.put_u8(TYPE_SET_INTSET);
                put_str(out, ints.as_bytes());
            }
            None => {
                out.put_u8(TYPE_SET);
                put_len(out, s.len() as u64);
                for m in s.members() {
                    put_str(out, &m);
                }
            }
        },
    }
}

/// A value read back: a string or a collection.
pub enum Loaded {
    Str(Bytes),
    Obj(Object),
}

/// Reads the value of type `kind` (its type byte already read), encoding collections by
/// `limits`.
fn get_value(r: &mut Reader<'_>, kind: u8, limits: &Limits) -> Result<Loaded, RdbError> {
    let bad = |what: &str| RdbError(format!("invalid {what}"));
    Ok(match kind {
        TYPE_STRING => Loaded::Str(r.string()?),
        TYPE_HASH => {
            let n = r.plain_len()?;
            let mut h = Hash::default();
            let big = Limits {
                hash_entries: if n > limits.hash_entries { 0 } else { limits.hash_entries },
                ..*limits
            };
            for _ in 0..n {
                let (f, v) = (r.string()?, r.string()?);
                h.set(&f, &v, &big);
            }
            Loaded::Obj(Object::Hash(h))
        }
        TYPE_HASH_LISTPACK => {
            let lp = Listpack::from_bytes(r.string()?.to_vec()).map_err(&bad)?;
            Loaded::Obj(Object::Hash(Hash::from_listpack(lp, limits).map_err(bad)?))
        }
        TYPE_SET => {
            let n = r.plain_len()?;
            let members = (0..n).map(|_| r.string().map(|m| m.to_vec())).collect::<Result<Vec<_>, _>>()?;
            Loaded::Obj(Object::Set(Set::from_members(members, limits)))
        }
        TYPE_SET_INTSET => {
            let ints = Intset::from_bytes(r.string()?.to_vec()).map_err(bad)?;
            Loaded::Obj(Object::Set(Set::from_intset(ints, limits)))
        }
        TYPE_LIST => {
            let n = r.plain_len()?;
            let mut l = List::default();
            for _ in 0..n {
                l.push(false, &r.string()?, &limits.list());
            }
            Loaded::Obj(Object::List(l))
        }
        TYPE_LIST_QUICKLIST_2 => {
            let n = r.plain_len()?;
            let mut nodes = Vec::with_capacity(n.min(1 << 16));
            for _ in 0..n {
                let container = r.plain_len()? as u64;
                let data = r.string()?;
                nodes.push(match container {
                    NODE_PLAIN => {
                        let mut lp = Listpack::new();
                        lp.push(&data);
                        lp
                    }
                    NODE_PACKED => Listpack::from_bytes(data.to_vec()).map_err(&bad)?,
                    _ => return Err(bad("quicklist node container")),
                });
            }
            Loaded::Obj(Object::List(List::from_nodes(nodes)))
        }
        TYPE_SET_LISTPACK => {
            let lp = Listpack::from_bytes(r.string()?.to_vec()).map_err(bad)?;
            let members = lp.iter().map(|(i, _)| i.to_bytes().to_vec());
            Loaded::Obj(Object::Set(Set::from_members(members, limits)))
        }
        TYPE_ZSET | TYPE_ZSET_2 => {
            let n = r.plain_len()?;
            let zl = limits.zset();
            let zl =
                crate::keyspace::zset::ZLimits { entries: if n > zl.entries { 0 } else { zl.entries }, ..zl };
            let mut z = ZSet::default();
            for _ in 0..n {
                let m = r.string()?;
                let score = if kind == TYPE_ZSET_2 {
                    f64::from_le_bytes(r.take(8)?.try_into().expect("8 bytes"))
                } else {
                    // The old form: a length byte and the score as text (253-255: nan, inf, -inf).
                    match r.u8()? {
                        253 => f64::NAN,
                        254 => f64::INFINITY,
                        255 => f64::NEG_INFINITY,
                        len => std::str::from_utf8(r.take(len as usize)?)
                            .ok()
                            .and_then(|t| t.parse().ok())
                            .ok_or_else(|| bad("sorted set score"))?,
                    }
                };
                if score.is_nan() {
                    return Err(bad("sorted set score (NaN)"));
                }
                z.set(&m, score, &zl);
            }
            Loaded::Obj(Object::ZSet(z))
        }
        TYPE_ZSET_LISTPACK => {
            let lp = Listpack::from_bytes(r.string()?.to_vec()).map_err(&bad)?;
            Loaded::Obj(Object::ZSet(ZSet::from_listpack(lp, &limits.zset()).map_err(&bad)?))
        }
        other => return Err(RdbError(format!("value type {other} is not supported"))),
    })
}

/// DUMP's payload: the value's RDB encoding, the RDB version (2 bytes LE) and a CRC64 of both
/// (8 bytes LE), as redis-server makes it.
pub fn dump(value: Value<'_>) -> Bytes {
    let mut out = BytesMut::new();
    put_value(&mut out, value);
    out.put_u16_le(DUMP_VERSION);
    let crc = crc64::crc64(0, &out);
    out.put_u64_le(crc);
    out.freeze()
}

/// FUNCTION DUMP's payload: each library's code after the function opcode, then the RDB
/// version and a CRC64 as DUMP has them.
pub fn dump_functions(codes: &[&Bytes]) -> Bytes {
    let mut out = BytesMut::new();
    for code in codes {
        out.put_u8(OP_FUNCTION2);
        put_str(&mut out, code);
    }
    out.put_u16_le(DUMP_VERSION);
    let crc = crc64::crc64(0, &out);
    out.put_u64_le(crc);
    out.freeze()
}

/// The library codes in a FUNCTION RESTORE payload; None when it is not one (version,
/// checksum or format).
pub fn undump_functions(payload: &[u8]) -> Option<Vec<Bytes>> {
    if payload.len() < 10 {
        return None;
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let crc = u64::from_le_bytes(footer[2..].try_into().expect("8 bytes"));
    if version > DUMP_VERSION || (crc != 0 && crc != crc64::crc64(0, &payload[..payload.len() - 8])) {
        return None;
    }
    let mut r = Reader { data: body, pos: 0 };
    let mut codes = Vec::new();
    while r.pos < body.len() {
        if r.u8().ok()? != OP_FUNCTION2 {
            return None;
        }
        codes.push(r.string().ok()?);
    }
    Some(codes)
}

/// Checks and decodes a RESTORE payload; the error is Redis's text.
pub fn undump(payload: &[u8], limits: &Limits) -> Result<Loaded, &'static str> {
    const BAD: &str = "ERR DUMP payload version or checksum are wrong";
    if payload.len() < 11 {
        return Err(BAD);
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let crc = u64::from_le_bytes(footer[2..].try_into().expect("8 bytes"));
    if version > DUMP_VERSION || (crc != 0 && crc != crc64::crc64(0, &payload[..payload.len() - 8])) {
        return Err(BAD);
    }
    let mut r = Reader { data: body, pos: 0 };
    let kind = r.u8().map_err(|_| BAD)?;
    let value = get_value(&mut r, kind, limits).map_err(|_| "ERR Bad data format")?;
    if r.pos != body.len() {
        return Err("ERR Bad data format");
    }
    Ok(value)
}

fn put_len(out: &mut BytesMut, len: u64) {
    if len < 1 << 6 {
        out.put_u8(len as u8);
    } else if len < 1 << 14 {
        out.put_u16(0x4000 | len as u16);
    } else if len <= u32::MAX as u64 {
        out.put_u8(0x80);
        out.put_u32(len as u32);
    } else {
        out.put_u8(0x81);
        out.put_u64(len);
    }
}

fn put_str(out: &mut BytesMut, s: &[u8]) {
    put_len(out, s.len() as u64);
    out.put_slice(s);
}

/// Writes every live key of `keyspace` (TTLs included) as an RDB file.
pub fn write(keyspace: &Keyspace, now: u64) -> Bytes {
    write_with(keyspace, now, None)
}

/// Replication position saved with a replica's dataset, as Redis's `repl-id` and
/// `repl-offset` aux fields, so a restarted replica can continue instead of resyncing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplPosition {
    pub replid: String,
    pub offset: u64,
}

/// Like [`write`], with the replication position a replica resumes from.
///
/// The payload is held aside from used_memory while it lives (see `alloc::Aside`): it is what
/// Redis's forked child would hold.
pub fn write_with(keyspace: &Keyspace, now: u64, position: Option<&ReplPosition>) -> Bytes {
    let mut out = BytesMut::with_capacity(64 * 1024);
    let mut aside = crate::alloc::Aside::default();
    aside.note(out.capacity());
    out.put_slice(MAGIC);
    out.put_u8(OP_AUX);
    put_str(&mut out, b"redis-ver");
    put_str(&mut out, crate::server::REDIS_VERSION.as_bytes());
    if let Some(p) = position {
        out.put_u8(OP_AUX);
        put_str(&mut out, b"repl-id");
        put_str(&mut out, p.replid.as_bytes());
        out.put_u8(OP_AUX);
        put_str(&mut out, b"repl-offset");
        put_str(&mut out, p.offset.to_string().as_bytes());
    }
    for (_, code) in keyspace.functions.iter() {
        out.put_u8(OP_FUNCTION2);
        put_str(&mut out, code);
    }
    for (index, db) in keyspace.dbs.iter().enumerate() {
        if db.is_empty() {
            continue;
        }
        out.put_u8(OP_SELECTDB);
        put_len(&mut out, index as u64);
        out.put_u8(OP_RESIZEDB);
        put_len(&mut out, db.len() as u64);
        put_len(&mut out, db.expires_len() as u64);
        db.for_each_live(now, |entry| {
            // Type, key, value: the type byte leads, so the value is encoded after it.
            let mut value = BytesMut::new();
            put_value(&mut value, entry.value());
            make_room(&mut out, &mut aside, 9 + 10 + entry.key().len() + value.len());
            if let Some(at) = entry.expire_at() {
                out.put_u8(OP_EXPIRETIME_MS);
                out.put_u64_le(at);
            }
            out.put_u8(value[0]);
            put_str(&mut out, entry.key());
            out.put_slice(&value[1..]);
        });
    }
    make_room(&mut out, &mut aside, 9);
    out.put_u8(OP_EOF);
    let checksum = crc64::crc64(0, &out);
    out.put_u64_le(checksum);
    Bytes::from_owner(Payload { bytes: out.freeze(), _aside: aside })
}

/// Grows `out` for `needed` more bytes, counting the new buffer aside before it is allocated:
/// while the old one is copied into it both are in the heap, and a shard checking maxmemory
/// meanwhile must not see them.
fn make_room(out: &mut BytesMut, aside: &mut crate::alloc::Aside, needed: usize) {
    if out.capacity() - out.len() >= needed {
        return;
    }
    let target = (out.capacity() * 2).max(out.len() + needed);
    aside.note(out.capacity() + target);
    out.reserve(target - out.len());
    aside.note(out.capacity());
}

/// A snapshot's bytes with their place in `alloc::aside`, given back with the last reference.
struct Payload {
    bytes: Bytes,
    _aside: crate::alloc::Aside,
}

impl AsRef<[u8]> for Payload {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

/// LZF decompression (liblzf's format, as Redis compresses strings in RDB files): literal
/// runs `000LLLLL` + L+1 bytes, back references `LLLooooo [LLLLLLLL] oooooooo`.
/// LZF-compresses `input` in liblzf's format (what [`lzf_decompress`] reads): literal runs
/// of up to 32 bytes and back references of 3-264 bytes within 8 KB. None when the result
/// would not be smaller.
pub fn lzf_compress(input: &[u8]) -> Option<Vec<u8>> {
    const HLOG: usize = 14;
    let mut table = vec![usize::MAX; 1 << HLOG];
    let mut out = Vec::with_capacity(input.len());
    let mut lit_start = 0;
    let hash = |i: usize| {
        let v = (input[i] as usize) << 16 | (input[i + 1] as usize) << 8 | input[i + 2] as usize;
        (v.wrapping_mul(2654435761) >> 8) & ((1 << HLOG) - 1)
    };
    let flush = |out: &mut Vec<u8>, from: usize, to: usize| {
        for chunk in input[from..to].chunks(32) {
            out.push(chunk.len() as u8 - 1);
            out.extend_from_slice(chunk);
        }
    };
    let mut i = 0;
    while i + 2 < input.len() {
        let h = hash(i);
        let candidate = table[h];
        table[h] = i;
        if candidate != usize::MAX
            && i - candidate <= 8192
            && input[candidate..candidate + 3] == input[i..i + 3]
        {
            let max = (input.len() - i).min(264);
            let mut len = 3;
            while len < max && input[candidate + len] == input[i + len] {
                len += 1;
            }
            flush(&mut out, lit_start, i);
            let off = i - candidate - 1;
            let l = len - 2;
            if l < 7 {
                out.push((l << 5) as u8 | (off >> 8) as u8);
            } else {
                out.push((7 << 5) as u8 | (off >> 8) as u8);
                out.push((l - 7) as u8);
            }
            out.push((off & 0xff) as u8);
            i += len;
            lit_start = i;
            if out.len() >= input.len() {
                return None;
            }
            continue;
        }
        i += 1;
    }
    flush(&mut out, lit_start, input.len());
    (out.len() < input.len()).then_some(out)
}

/// Decompresses liblzf's format into exactly `len` bytes.
pub fn lzf_decompress(input: &[u8], len: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(len);
    let mut i = 0;
    while i < input.len() {
        let ctrl = input[i] as usize;
        i += 1;
        if ctrl < 32 {
            let run = ctrl + 1;
            out.extend_from_slice(input.get(i..i + run)?);
            i += run;
        } else {
            let mut run = ctrl >> 5;
            if run == 7 {
                run += *input.get(i)? as usize;
                i += 1;
            }
            let back = ((ctrl & 0x1F) << 8) + *input.get(i)? as usize + 1;
            i += 1;
            let start = out.len().checked_sub(back)?;
            for k in 0..run + 2 {
                let b = out[start + k];
                out.push(b);
            }
        }
        if out.len() > len {
            return None;
        }
    }
    (out.len() == len).then_some(out)
}

/// Why a snapshot could not be loaded.
#[derive(Debug, PartialEq, Eq)]
pub struct RdbError(pub String);

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RdbError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| RdbError("truncated".into()))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, RdbError> {
        Ok(self.take(1)?[0])
    }
    /// A length, or `Err(encoding)` for the special integer encodings of strings.
    fn len(&mut self) -> Result<Result<u64, u8>, RdbError> {
        let first = self.u8()?;
        Ok(match first >> 6 {
            0 => Ok((first & 0x3F) as u64),
            1 => Ok((((first & 0x3F) as u64) << 8) | self.u8()? as u64),
            2 if first == 0x80 => Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")) as u64),
            2 if first == 0x81 => Ok(u64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes"))),
            3 => Err(first & 0x3F),
            _ => return Err(RdbError(format!("bad length byte {first:#x}"))),
        })
    }
    fn plain_len(&mut self) -> Result<usize, RdbError> {
        match self.len()? {
            Ok(n) => Ok(n as usize),
            Err(_) => Err(RdbError("unexpected encoded length".into())),
        }
    }
    fn string(&mut self) -> Result<Bytes, RdbError> {
        match self.len()? {
            Ok(n) => Ok(Bytes::copy_from_slice(self.take(n as usize)?)),
            // Integers stored as 8, 16 or 32 bits, as Redis writes small numbers.
            Err(0) => Ok(Bytes::from((self.u8()? as i8).to_string())),
            Err(1) => Ok(Bytes::from(i16::from_le_bytes(self.take(2)?.try_into().expect("2")).to_string())),
            Err(2) => Ok(Bytes::from(i32::from_le_bytes(self.take(4)?.try_into().expect("4")).to_string())),
            Err(3) => {
                let compressed = self.plain_len()?;
                let len = self.plain_len()?;
                let data = self.take(compressed)?;
                lzf_decompress(data, len).map(Bytes::from).ok_or_else(|| RdbError("bad LZF string".into()))
            }
            Err(e) => Err(RdbError(format!("unknown string encoding {e}"))),
        }
    }
}

/// Loads an RDB file into a fresh keyspace of `databases` databases.
pub fn read(data: &[u8], databases: usize) -> Result<Keyspace, RdbError> {
    read_with(data, databases).map(|(ks, _)| ks)
}

/// Like [`read`], also returning the replication position saved in it, if any.
pub fn read_with(data: &[u8], databases: usize) -> Result<(Keyspace, Option<ReplPosition>), RdbError> {
    read_prefix(data, databases).map(|(ks, position, _)| (ks, position))
}

/// Reads an RDB payload at the start of `data` (an AOF's preamble), returning also how many
/// bytes it took; what follows is not looked at.
pub fn read_prefix(
    data: &[u8],
    databases: usize,
) -> Result<(Keyspace, Option<ReplPosition>, usize), RdbError> {
    read_prefix_by(data, databases, &Limits::default())
}

/// [`read_prefix`], encoding collections by the configured size rules.
pub fn read_prefix_by(
    data: &[u8],
    databases: usize,
    limits: &Limits,
) -> Result<(Keyspace, Option<ReplPosition>, usize), RdbError> {
    let (mut replid, mut offset) = (None, None);
    if data.len() < 9 || &data[..5] != b"REDIS" {
        return Err(RdbError("not an RDB file".into()));
    }
    let mut ks = Keyspace::new(databases);
    let mut r = Reader { data, pos: 9 };
    let mut db = 0usize;
    let mut expire: Option<u64> = None;
    loop {
        let op = r.u8()?;
        match op {
            OP_EOF => {
                let end = r.pos;
                let sum = r.take(8).map_err(|_| RdbError(format!("truncated checksum at offset {end}")))?;
                let stored = u64::from_le_bytes(sum.try_into().expect("8 bytes"));
                if stored != 0 && stored != crc64::crc64(0, &data[..end]) {
                    return Err(RdbError("checksum mismatch".into()));
                }
                let position = match (replid, offset) {
                    (Some(replid), Some(offset)) => Some(ReplPosition { replid, offset }),
                    _ => None,
                };
                return Ok((ks, position, r.pos));
            }
            OP_AUX => {
                let name = r.string()?;
                let value = r.string()?;
                match name.as_ref() {
                    b"repl-id" => replid = Some(String::from_utf8_lossy(&value).into_owned()),
                    b"repl-offset" => offset = std::str::from_utf8(&value).ok().and_then(|v| v.parse().ok()),
                    _ => {}
                }
            }
            OP_FUNCTION2 => {
                let code = r.string()?;
                let name = crate::command::functions::library_name(&code)
                    .map_err(|e| RdbError(format!("a function library that does not load: {e:?}")))?;
                ks.functions.insert(name, code);
            }
            OP_RESIZEDB => {
                r.plain_len()?;
                r.plain_len()?;
            }
            OP_SELECTDB => {
                db = r.plain_len()?;
                if db >= ks.dbs.len() {
                    return Err(RdbError(format!("database {db} out of range")));
                }
            }
            OP_EXPIRETIME_MS => expire = Some(u64::from_le_bytes(r.take(8)?.try_into().expect("8 bytes"))),
            OP_EXPIRETIME => {
                expire = Some(u32::from_le_bytes(r.take(4)?.try_into().expect("4 bytes")) as u64 * 1000)
            }
            kind => {
                let key = r.string()?;
                match get_value(&mut r, kind, limits)? {
                    Loaded::Str(value) => ks.dbs[db].set(&key, Value::Str(&value), expire.take()),
                    Loaded::Obj(object) => ks.dbs[db].set_object(&key, object, expire.take()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lzf_round_trips() {
        let mut seed = 5u64;
        for size in [0usize, 1, 2, 3, 40, 300, 5000, 70_000] {
            for repetitive in [true, false] {
                let data: Vec<u8> = (0..size)
                    .map(|i| {
                        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                        if repetitive {
                            (i % 17) as u8 ^ (i / 1000) as u8
                        } else {
                            (seed >> 33) as u8
                        }
                    })
                    .collect();
                if let Some(c) = lzf_compress(&data) {
                    assert!(c.len() < data.len());
                    assert_eq!(lzf_decompress(&c, data.len()).unwrap(), data, "{size} {repetitive}");
                } else {
                    assert!(!repetitive || size < 40, "{size} compresses");
                }
            }
        }
    }

    #[test]
    fn a_snapshot_is_held_aside_from_used_memory_while_it_lives() {
        let mut ks = Keyspace::new(16);
        let value = vec![b'v'; 1000];
        for i in 0..3000 {
            ks.dbs[0].set(format!("key:{i}").as_bytes(), Value::Str(&value), None);
        }
        let payload = write(&ks, 0);
        assert!(payload.len() > 3_000_000);
        // Other tests' snapshots only add to the count.
        assert!(crate::alloc::aside() >= payload.len(), "{}", crate::alloc::aside());
        let copy = payload.clone();
        drop(payload);
        assert!(crate::alloc::aside() >= copy.len(), "the last reference keeps it aside");
        assert_eq!(read(&copy, 16).unwrap().dbs[0].len(), 3000);
    }

    #[test]
    fn growing_a_snapshot_counts_both_buffers_first() {
        let mut out = BytesMut::with_capacity(16);
        let mut aside = crate::alloc::Aside::default();
        aside.note(out.capacity());
        make_room(&mut out, &mut aside, 8);
        assert_eq!(out.capacity(), 16, "room enough: nothing grows");
        out.put_slice(&[0; 16]);
        make_room(&mut out, &mut aside, 100);
        assert!(out.capacity() >= 116);
        assert_eq!(aside.counted(), out.capacity());
        drop(aside);
    }

    #[test]
    fn crc64_is_redis_jones() {
        assert_eq!(crc64::crc64(0, b"123456789"), 0xe9c6d914c4b8d9ca);
    }

    #[test]
    fn round_trip_with_ttls_and_databases() {
        let mut ks = Keyspace::new(16);
        ks.dbs[0].set(b"a", Value::Str(b"1"), None);
        ks.dbs[0].set(b"t", Value::Str(b"x"), Some(9_999_999_999_999));
        ks.dbs[0].set(b"gone", Value::Str(b"x"), Some(5));
        let big = vec![b'z'; 70_000];
        ks.dbs[3].set(&big, Value::Str(&big), None);
        let rdb = write(&ks, 10);
        assert!(rdb.starts_with(b"REDIS0009"));
        let mut back = read(&rdb, 16).unwrap();
        assert_eq!(back.dbs[0].len(), 2, "expired keys are not written");
        assert_eq!(back.dbs[0].get(b"t", 10).unwrap().expire_at(), Some(9_999_999_999_999));
        assert_eq!(back.dbs[3].get(&big, 10).unwrap().str(), &big[..]);
    }

    #[test]
    fn replication_position_round_trips() {
        let ks = Keyspace::new(16);
        let p = ReplPosition { replid: "a".repeat(40), offset: 12345 };
        let (_, back) = read_with(&write_with(&ks, 0, Some(&p)), 16).unwrap();
        assert_eq!(back, Some(p));
        assert_eq!(read_with(&write(&ks, 0), 16).unwrap().1, None);
    }

    #[test]
    fn empty_and_damaged_files() {
        let empty = write(&Keyspace::new(16), 0);
        assert_eq!(read(&empty, 16).unwrap().dbs[0].len(), 0);
        assert!(read(b"garbage", 16).is_err());
        assert!(read(&empty[..empty.len() - 12], 16).is_err(), "truncated");
        let mut bad = empty.to_vec();
        let n = bad.len();
        bad[n - 1] ^= 1;
        assert_eq!(read(&bad, 16).err(), Some(RdbError("checksum mismatch".into())));
        // Redis's own empty RDB with the checksum left out (zeros) loads.
        let mut redis_empty = b"REDIS0009\xff".to_vec();
        redis_empty.extend_from_slice(&[0; 8]);
        assert!(read(&redis_empty, 16).is_ok());
    }

    #[test]
    fn integer_encoded_strings() {
        let mut data = b"REDIS0009\xfe\x00".to_vec();
        data.extend_from_slice(&[TYPE_STRING, 1, b'k', 0xC0, 0xFB]); // int8 -5
        data.extend_from_slice(&[TYPE_STRING, 1, b'm', 0xC1, 0x39, 0x30]); // int16 12345
        data.push(OP_EOF);
        data.extend_from_slice(&[0; 8]); // checksum left out, as Redis allows
        let mut ks = read(&data, 16).unwrap();
        assert_eq!(ks.dbs[0].get(b"k", 0).unwrap().str(), b"-5");
        assert_eq!(ks.dbs[0].get(b"m", 0).unwrap().str(), b"12345");
    }
}
