//! Snapshots in Redis's RDB format (version 9), for full resyncs: what a rust-edis replica
//! loads and what a stock redis-server replica loads too. Only what the keyspace holds is
//! written: string values with their TTLs, per database. The reader takes what the writer
//! writes plus the aux and resize fields Redis adds, and refuses anything else clearly.

use bytes::{BufMut, Bytes, BytesMut};

use crate::keyspace::{Keyspace, Value};

const MAGIC: &[u8] = b"REDIS0009";
const OP_AUX: u8 = 0xFA;
const OP_RESIZEDB: u8 = 0xFB;
const OP_EXPIRETIME_MS: u8 = 0xFC;
const OP_EXPIRETIME: u8 = 0xFD;
const OP_SELECTDB: u8 = 0xFE;
const OP_EOF: u8 = 0xFF;
const TYPE_STRING: u8 = 0;

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
pub fn write_with(keyspace: &Keyspace, now: u64, position: Option<&ReplPosition>) -> Bytes {
    let mut out = BytesMut::with_capacity(64 * 1024);
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
            if let Some(at) = entry.expire_at() {
                out.put_u8(OP_EXPIRETIME_MS);
                out.put_u64_le(at);
            }
            match entry.value() {
                Value::Str(v) => {
                    out.put_u8(TYPE_STRING);
                    put_str(&mut out, entry.key());
                    put_str(&mut out, v);
                }
            }
        });
    }
    out.put_u8(OP_EOF);
    let checksum = crc64::crc64(0, &out);
    out.put_u64_le(checksum);
    out.freeze()
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
            Err(e) => Err(RdbError(format!("string encoding {e} (LZF) is not supported"))),
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
            TYPE_STRING => {
                let key = r.string()?;
                let value = r.string()?;
                ks.dbs[db].set(&key, Value::Str(&value), expire.take());
            }
            other => return Err(RdbError(format!("value type {other} is not supported"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(back.dbs[3].get(&big, 10).unwrap().value(), Value::Str(&big));
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
        assert_eq!(ks.dbs[0].get(b"k", 0).unwrap().value(), Value::Str(b"-5"));
        assert_eq!(ks.dbs[0].get(b"m", 0).unwrap().value(), Value::Str(b"12345"));
    }
}
