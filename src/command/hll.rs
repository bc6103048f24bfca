//! HyperLogLog: PFADD PFCOUNT PFMERGE, on strings laid out byte for byte as Redis 7.0 lays
//! them out ("HYLL" header, cached cardinality, sparse or dense registers), so counts equal
//! redis-server's for the same input and the values move both ways (DUMP/RESTORE, RDB,
//! replication). The sparse update is Redis's own algorithm, run for run, so the bytes match
//! too, not only the counts.

use bytes::Bytes;

use super::Ctx;
use crate::resp::Reply;
use crate::tri;

const P: u32 = 14;
const REGISTERS: usize = 1 << P;
const Q: u32 = 64 - P;
const BITS: usize = 6;
const REGISTER_MAX: u8 = (1 << BITS) - 1;
const HDR: usize = 16;
const DENSE_SIZE: usize = HDR + (REGISTERS * BITS).div_ceil(8);
const DENSE: u8 = 0;
const SPARSE: u8 = 1;
const ZERO_MAX_LEN: usize = 64;
const XZERO_MAX_LEN: usize = 16384;
const VAL_MAX_VALUE: u8 = 32;
const VAL_MAX_LEN: usize = 4;
const INVALID: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";

/// Redis's MurmurHash64A, seed 0xadc83b19.
fn murmur64a(key: &[u8]) -> u64 {
    const M: u64 = 0xc6a4a7935bd1e995;
    const R: u32 = 47;
    let mut h: u64 = 0xadc83b19u64 ^ (key.len() as u64).wrapping_mul(M);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let mut k = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        for (i, b) in rest.iter().enumerate().rev() {
            h ^= (*b as u64) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element goes to and the run of zeros it counts (1..=Q+1).
fn pattern(element: &[u8]) -> (usize, u8) {
    let hash = murmur64a(element);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    let rest = (hash >> P) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

fn dense_get(regs: &[u8], i: usize) -> u8 {
    let (byte, fb) = (i * BITS / 8, (i * BITS) & 7);
    let b0 = regs[byte] as u16;
    let b1 = *regs.get(byte + 1).unwrap_or(&0) as u16;
    (((b0 >> fb) | (b1 << (8 - fb))) & REGISTER_MAX as u16) as u8
}

fn dense_set(regs: &mut [u8], i: usize, v: u8) {
    let (byte, fb) = (i * BITS / 8, (i * BITS) & 7);
    let v = v as u16;
    regs[byte] &= !((REGISTER_MAX as u16) << fb) as u8;
    regs[byte] |= (v << fb) as u8;
    if let Some(next) = regs.get_mut(byte + 1) {
        *next &= !((REGISTER_MAX as u16) >> (8 - fb)) as u8;
        *next |= (v >> (8 - fb)) as u8;
    }
}

fn is_zero(b: u8) -> bool {
    b & 0xc0 == 0
}
fn is_xzero(b: u8) -> bool {
    b & 0xc0 == 0x40
}
fn is_val(b: u8) -> bool {
    b & 0x80 != 0
}
fn zero_len(b: u8) -> usize {
    (b & 0x3f) as usize + 1
}
fn xzero_len(b: &[u8], p: usize) -> usize {
    (((b[p] & 0x3f) as usize) << 8 | b[p + 1] as usize) + 1
}
fn val_value(b: u8) -> u8 {
    ((b >> 2) & 0x1f) + 1
}
fn val_len(b: u8) -> usize {
    (b & 0x3) as usize + 1
}
fn val_op(value: u8, len: usize) -> u8 {
    ((value - 1) << 2 | (len as u8 - 1)) | 0x80
}
fn zero_ops(len: usize, out: &mut Vec<u8>) {
    if len > ZERO_MAX_LEN {
        let l = len - 1;
        out.push((l >> 8) as u8 | 0x40);
        out.push((l & 0xff) as u8);
    } else {
        out.push((len - 1) as u8);
    }
}

/// A new, empty HyperLogLog: sparse, all registers zero, the cached count 0.
fn empty() -> Vec<u8> {
    let mut v = b"HYLL".to_vec();
    v.push(SPARSE);
    v.extend_from_slice(&[0; 11]);
    let mut left = REGISTERS;
    while left > 0 {
        let run = left.min(XZERO_MAX_LEN);
        zero_ops(run, &mut v);
        left -= run;
    }
    v
}

/// Whether `v` is a HyperLogLog Redis would accept.
fn valid(v: &[u8]) -> bool {
    v.len() >= HDR && &v[..4] == b"HYLL" && v[4] <= SPARSE && (v[4] != DENSE || v.len() == DENSE_SIZE)
}

fn invalidate(v: &mut [u8]) {
    v[15] |= 0x80;
}

/// The registers, from either encoding; None for a sparse one that does not add up.
fn registers(v: &[u8]) -> Option<Vec<u8>> {
    let mut regs = vec![0u8; REGISTERS];
    if v[4] == DENSE {
        for (i, r) in regs.iter_mut().enumerate() {
            *r = dense_get(&v[HDR..], i);
        }
        return Some(regs);
    }
    let (mut p, mut idx) = (HDR, 0usize);
    while p < v.len() {
        let b = v[p];
        if is_zero(b) {
            idx += zero_len(b);
            p += 1;
        } else if is_xzero(b) {
            idx += xzero_len(v, p);
            p += 2;
        } else {
            let (value, len) = (val_value(b), val_len(b));
            if idx + len > REGISTERS {
                return None;
            }
            regs[idx..idx + len].iter_mut().for_each(|r| *r = value);
            idx += len;
            p += 1;
        }
        if idx > REGISTERS {
            return None;
        }
    }
    (idx == REGISTERS).then_some(regs)
}

/// The sparse value made dense (header kept, encoding changed).
fn to_dense(v: &[u8]) -> Option<Vec<u8>> {
    let regs = registers(v)?;
    let mut d = v[..HDR].to_vec();
    d[4] = DENSE;
    d.resize(DENSE_SIZE, 0);
    for (i, r) in regs.iter().enumerate() {
        if *r != 0 {
            dense_set(&mut d[HDR..], i, *r);
        }
    }
    Some(d)
}

/// Redis's hllSparseSet: register `index` to `count` if that raises it, splitting the run
/// that holds it and merging equal neighbours as Redis does; promotes to dense when the value
/// does not fit the sparse form or it grows past `max_bytes`. Ok(changed).
fn sparse_set(v: &mut Vec<u8>, index: usize, count: u8, max_bytes: usize) -> Result<bool, ()> {
    if count > VAL_MAX_VALUE {
        return promote(v, index, count);
    }
    let end = v.len();
    let (mut p, mut first, mut prev, mut span) = (HDR, 0usize, None, 0usize);
    while p < end {
        let b = v[p];
        let oplen;
        if is_zero(b) {
            span = zero_len(b);
            oplen = 1;
        } else if is_val(b) {
            span = val_len(b);
            oplen = 1;
        } else {
            if p + 1 >= end {
                return Err(());
            }
            span = xzero_len(v, p);
            oplen = 2;
        }
        if index < first + span {
            break;
        }
        prev = Some(p);
        p += oplen;
        first += span;
    }
    if span == 0 || p >= end {
        return Err(());
    }
    let b = v[p];
    let (zero, xzero, val) = (is_zero(b), is_xzero(b), is_val(b));
    let runlen = if zero {
        zero_len(b)
    } else if xzero {
        xzero_len(v, p)
    } else {
        val_len(b)
    };
    let mut updated_in_place = false;
    if val {
        let old = val_value(b);
        if old >= count {
            return Ok(false);
        }
        if runlen == 1 {
            v[p] = val_op(count, 1);
            updated_in_place = true;
        }
    }
    if !updated_in_place && zero && runlen == 1 {
        v[p] = val_op(count, 1);
        updated_in_place = true;
    }
    if !updated_in_place {
        let last = first + span - 1;
        let mut seq = Vec::with_capacity(5);
        if zero || xzero {
            if index != first {
                zero_ops(index - first, &mut seq);
            }
            seq.push(val_op(count, 1));
            if index != last {
                zero_ops(last - index, &mut seq);
            }
        } else {
            let cur = val_value(b);
            if index != first {
                seq.push(val_op(cur, index - first));
            }
            seq.push(val_op(count, 1));
            if index != last {
                seq.push(val_op(cur, last - index));
            }
        }
        let oldlen = if xzero { 2 } else { 1 };
        if seq.len() > oldlen && v.len() + seq.len() - oldlen > max_bytes {
            return promote(v, index, count);
        }
        v.splice(p..p + oldlen, seq);
    }
    // Merge adjacent VAL opcodes of equal value, scanning up to 5 opcodes from the previous.
    let mut p = prev.unwrap_or(HDR);
    let mut scan = 5;
    while p < v.len() && scan > 0 {
        scan -= 1;
        let b = v[p];
        if is_xzero(b) {
            p += 2;
            continue;
        } else if is_zero(b) {
            p += 1;
            continue;
        }
        if p + 1 < v.len() && is_val(v[p + 1]) {
            let (v1, v2) = (val_value(b), val_value(v[p + 1]));
            if v1 == v2 {
                let len = val_len(b) + val_len(v[p + 1]);
                if len <= VAL_MAX_LEN {
                    v[p + 1] = val_op(v1, len);
                    v.remove(p);
                    continue;
                }
            }
        }
        p += 1;
    }
    invalidate(v);
    Ok(true)
}

fn promote(v: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, ()> {
    let mut d = to_dense(v).ok_or(())?;
    dense_set(&mut d[HDR..], index, count);
    invalidate(&mut d);
    *v = d;
    Ok(true)
}

/// Adds one element; whether a register changed.
fn add(v: &mut Vec<u8>, element: &[u8], max_bytes: usize) -> Result<bool, ()> {
    let (index, count) = pattern(element);
    if v[4] == DENSE {
        if dense_get(&v[HDR..], index) >= count {
            return Ok(false);
        }
        dense_set(&mut v[HDR..], index, count);
        invalidate(v);
        return Ok(true);
    }
    sparse_set(v, index, count, max_bytes)
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let (mut y, mut z) = (1.0, x);
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if before == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let (mut y, mut z) = (1.0, 1.0 - x);
    loop {
        x = x.sqrt();
        let before = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if before == z {
            return z / 3.0;
        }
    }
}

/// Redis 7's estimate from the registers (Ertl's improved estimator).
fn estimate(regs: &[u8]) -> u64 {
    let m = REGISTERS as f64;
    let mut histo = [0u32; 64];
    for r in regs {
        histo[*r as usize] += 1;
    }
    let mut z = m * tau((m - histo[Q as usize + 1] as f64) / m);
    for j in (1..=Q as usize).rev() {
        z += histo[j] as f64;
        z *= 0.5;
    }
    z += m * sigma(histo[0] as f64 / m);
    const ALPHA_INF: f64 = 0.721_347_520_444_481_7;
    (ALPHA_INF * m * m / z).round() as u64
}

fn max_bytes(ctx: &Ctx) -> usize {
    ctx.state.config.get("hll-sparse-max-bytes").parse().unwrap_or(3000)
}

/// The HyperLogLog at `key`: None when missing; WRONGTYPE (Redis's HLL text for a string that
/// is not one).
fn load(ctx: &mut Ctx, key: &[u8]) -> Result<Option<Vec<u8>>, Reply> {
    match ctx.get_str(key)? {
        None => Ok(None),
        // The Bytes get_str made is unshared: it becomes the Vec with no copy.
        Some(v) if valid(&v) => Ok(Some(Vec::from(v))),
        Some(_) => Err(Reply::err(INVALID)),
    }
}

/// PFADD key [element ...]
pub fn pfadd(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let max = max_bytes(ctx);
    let (mut v, mut changed) = match tri!(load(ctx, &args[1])) {
        Some(v) => (v, false),
        None => (empty(), true),
    };
    for element in &args[2..] {
        match add(&mut v, element, max) {
            Ok(c) => changed |= c,
            Err(()) => return Reply::err(INVALID),
        }
    }
    if changed {
        invalidate(&mut v);
        ctx.put_str_keep_ttl(&args[1], &v);
    }
    Reply::Int(changed as i64)
}

/// PFCOUNT key [key ...]: one key's count is cached in its header, as Redis does (on a
/// primary, and replicated, so its replicas keep the same bytes); several keys are merged
/// for the count, nothing stored.
pub fn pfcount(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if args.len() == 2 {
        let Some(mut v) = tri!(load(ctx, &args[1])) else { return Reply::Int(0) };
        if v[15] & 0x80 == 0 {
            return Reply::Int(u64::from_le_bytes(v[8..16].try_into().expect("8 bytes")) as i64);
        }
        let Some(regs) = registers(&v) else { return Reply::err(INVALID) };
        let n = estimate(&regs);
        let replica = ctx.state.upstream.is_some() && !ctx.client.is_master;
        if !replica {
            v[8..16].copy_from_slice(&n.to_le_bytes());
            ctx.put_str_keep_ttl(&args[1], &v);
            let db = ctx.client.db;
            if let Some(log) = &mut ctx.state.log {
                log.append(db, args);
            }
        }
        return Reply::Int(n as i64);
    }
    let mut max = vec![0u8; REGISTERS];
    for key in &args[1..] {
        let Some(v) = tri!(load(ctx, key)) else { continue };
        let Some(regs) = registers(&v) else { return Reply::err(INVALID) };
        for (m, r) in max.iter_mut().zip(regs) {
            *m = (*m).max(r);
        }
    }
    Reply::Int(estimate(&max) as i64)
}

/// PFMERGE destkey [sourcekey ...]: Redis's merge, register by register into the destination
/// (dense if any input is), so the bytes are redis-server's.
pub fn pfmerge(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let mut max = vec![0u8; REGISTERS];
    let mut dense = false;
    for key in &args[1..] {
        let Some(v) = tri!(load(ctx, key)) else { continue };
        dense |= v[4] == DENSE;
        let Some(regs) = registers(&v) else { return Reply::err(INVALID) };
        for (m, r) in max.iter_mut().zip(regs) {
            *m = (*m).max(r);
        }
    }
    let mut v = tri!(load(ctx, &args[1])).unwrap_or_else(empty);
    if dense && v[4] == SPARSE {
        let Some(d) = to_dense(&v) else { return Reply::err(INVALID) };
        v = d;
    }
    let limit = max_bytes(ctx);
    for (i, m) in max.iter().enumerate() {
        if *m == 0 {
            continue;
        }
        if v[4] == DENSE {
            dense_set(&mut v[HDR..], i, *m);
        } else if sparse_set(&mut v, i, *m, limit).is_err() {
            return Reply::err(INVALID);
        }
    }
    invalidate(&mut v);
    ctx.put_str_keep_ttl(&args[1], &v);
    Reply::Ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_in_range() {
        // Byte-for-byte agreement with redis-server is checked end to end (compare-with-redis
        // GETs of sparse and dense values, tests/it/types.rs).
        let (i, c) = pattern(b"a");
        assert!(i < REGISTERS && (1..=51).contains(&c));
        assert_eq!(murmur64a(b""), murmur64a(b""));
        assert_ne!(murmur64a(b"abcdefgh"), murmur64a(b"abcdefgi"));
    }

    #[test]
    fn counts_are_close_and_encodings_convert() {
        let mut v = empty();
        assert_eq!(v.len(), 18);
        for i in 0..100_000 {
            add(&mut v, format!("element:{i}").as_bytes(), 3000).unwrap();
        }
        assert_eq!(v[4], DENSE);
        let n = estimate(&registers(&v).unwrap()) as f64;
        assert!((n - 100_000.0).abs() / 100_000.0 < 0.02, "{n}");
        let mut s = empty();
        for i in 0..100 {
            add(&mut s, format!("x{i}").as_bytes(), 3000).unwrap();
        }
        assert_eq!(s[4], SPARSE);
        let n = estimate(&registers(&s).unwrap());
        assert!((95..=105).contains(&n), "{n}");
        let d = to_dense(&s).unwrap();
        assert_eq!(registers(&d).unwrap(), registers(&s).unwrap());
    }
}
