//! Bitmaps and bit fields on strings: SETBIT GETBIT BITCOUNT BITPOS BITOP BITFIELD
//! BITFIELD_RO, with Redis 7.0's ranges (BYTE and BIT), offset limits, overflow modes
//! (WRAP, SAT, FAIL) and error texts. Bit 0 is the most significant bit of the first byte.

use bytes::{Bytes, BytesMut};

use super::{int_arg, Ctx, SYNTAX};
use crate::keyspace::Value;
use crate::resp::Reply;
use crate::tri;

const BAD_OFFSET: &str = "ERR bit offset is not an integer or out of range";

/// A bit offset argument, within what a string may hold (proto-max-bulk-len). With `hash`
/// (BITFIELD's `#n`), the offset counts fields of `width` bits.
fn bit_offset(ctx: &Ctx, arg: &[u8], hash: bool, width: u64) -> Result<u64, Reply> {
    let (digits, times) = match arg.strip_prefix(b"#") {
        Some(rest) if hash => (rest, width),
        _ => (arg, 1),
    };
    let n = int_arg(digits).map_err(|_| Reply::err(BAD_OFFSET))?;
    let n = (n as i128) * times as i128;
    if n < 0 || (n >> 3) >= ctx.max_string() as i128 {
        return Err(Reply::err(BAD_OFFSET));
    }
    Ok(n as u64)
}

fn get_bit(s: &[u8], bit: u64) -> u8 {
    let byte = (bit >> 3) as usize;
    s.get(byte).map_or(0, |b| (b >> (7 - (bit & 7))) & 1)
}

fn set_bit(s: &mut [u8], bit: u64, on: bool) {
    let byte = (bit >> 3) as usize;
    let mask = 1u8 << (7 - (bit & 7));
    if on {
        s[byte] |= mask;
    } else {
        s[byte] &= !mask;
    }
}

pub fn setbit(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let bit = tri!(bit_offset(ctx, &args[2], false, 1));
    let on = match &args[3][..] {
        b"1" => true,
        b"0" => false,
        _ => return Reply::err("ERR bit is not an integer or out of range"),
    };
    let current = tri!(ctx.get_str(&args[1]));
    let mut value = BytesMut::from(current.as_deref().unwrap_or_default());
    let need = (bit >> 3) as usize + 1;
    if value.len() < need {
        value.resize(need, 0);
    }
    let old = get_bit(&value, bit);
    set_bit(&mut value, bit, on);
    ctx.put_str_keep_ttl(&args[1], &value);
    Reply::Int(old as i64)
}

pub fn getbit(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let bit = tri!(bit_offset(ctx, &args[2], false, 1));
    let value = tri!(ctx.get_str(&args[1])).unwrap_or_default();
    Reply::Int(get_bit(&value, bit) as i64)
}

/// A start/end range as BITCOUNT and BITPOS read it, in bits: None when empty.
fn bit_range(start: i64, end: i64, len: usize, bits: bool) -> Option<(u64, u64)> {
    let total = if bits { len as i64 * 8 } else { len as i64 };
    let (mut start, mut end) = (start, end);
    if start < 0 {
        start += total;
    }
    if end < 0 {
        end += total;
    }
    start = start.max(0);
    end = end.max(0).min(total - 1);
    if start > end || total == 0 {
        return None;
    }
    Some(if bits { (start as u64, end as u64) } else { (start as u64 * 8, end as u64 * 8 + 7) })
}

fn unit_is_bit(arg: &[u8]) -> Result<bool, Reply> {
    if arg.eq_ignore_ascii_case(b"bit") {
        Ok(true)
    } else if arg.eq_ignore_ascii_case(b"byte") {
        Ok(false)
    } else {
        Err(Reply::err(SYNTAX))
    }
}

/// Set bits in `s` from bit `from` to bit `to`, both included.
fn count_bits(s: &[u8], from: u64, to: u64) -> u64 {
    let (first, last) = ((from >> 3) as usize, (to >> 3) as usize);
    let mut n: u64 = s[first..=last].iter().map(|b| b.count_ones() as u64).sum();
    // Bits of the end bytes outside the range.
    let head = s[first] & !(0xFFu8 >> (from & 7));
    let tail = s[last] & 0xFFu8.checked_shr((to & 7) as u32 + 1).unwrap_or(0);
    n -= head.count_ones() as u64 + tail.count_ones() as u64;
    n
}

/// BITCOUNT key [start end [BYTE|BIT]]
pub fn bitcount(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let Some(value) = tri!(ctx.get_str(&args[1])) else { return Reply::Int(0) };
    let range = match args.len() {
        2 => bit_range(0, -1, value.len(), false),
        4 | 5 => {
            let (start, end) = (tri!(int_arg(&args[2])), tri!(int_arg(&args[3])));
            let bits = match args.get(4) {
                Some(u) => tri!(unit_is_bit(u)),
                None => false,
            };
            bit_range(start, end, value.len(), bits)
        }
        _ => return Reply::err(SYNTAX),
    };
    Reply::Int(range.map_or(0, |(from, to)| count_bits(&value, from, to)) as i64)
}

/// BITPOS key bit [start [end [BYTE|BIT]]]
pub fn bitpos(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let want = match tri!(int_arg(&args[2])) {
        1 => 1u8,
        0 => 0u8,
        _ => return Reply::err("ERR The bit argument must be 1 or 0."),
    };
    let Some(value) = tri!(ctx.get_str(&args[1])) else {
        return Reply::Int(if want == 1 { -1 } else { 0 });
    };
    if args.len() > 6 {
        return Reply::err(SYNTAX);
    }
    let bits = match args.get(5) {
        Some(u) => tri!(unit_is_bit(u)),
        None => false,
    };
    let start = match args.get(3) {
        Some(a) => tri!(int_arg(a)),
        None => 0,
    };
    let end_given = args.len() >= 5;
    let end = match args.get(4) {
        Some(a) => tri!(int_arg(a)),
        None => -1,
    };
    let Some((from, to)) = bit_range(start, end, value.len(), bits) else { return Reply::Int(-1) };
    let mut bit = from;
    while bit <= to {
        // Whole bytes that cannot hold the bit looked for are skipped at once.
        if bit & 7 == 0 && bit + 7 <= to {
            let b = value[(bit >> 3) as usize];
            if (want == 1 && b == 0) || (want == 0 && b == 0xFF) {
                bit += 8;
                continue;
            }
        }
        if get_bit(&value, bit) == want {
            return Reply::Int(bit as i64);
        }
        bit += 1;
    }
    // No such bit in range: a clear bit is found past the end of the string, unless the
    // range had an explicit end.
    if want == 0 && !end_given {
        Reply::Int(to as i64 + 1)
    } else {
        Reply::Int(-1)
    }
}

/// BITOP AND|OR|XOR|NOT destkey key [key ...]
pub fn bitop(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let op = args[1].to_ascii_lowercase();
    if !matches!(&op[..], b"and" | b"or" | b"xor" | b"not") {
        return Reply::err(SYNTAX);
    }
    let sources = &args[3..];
    if op == b"not" && sources.len() != 1 {
        return Reply::err("ERR BITOP NOT must be called with a single source key.");
    }
    let mut values = Vec::with_capacity(sources.len());
    for key in sources {
        values.push(tri!(ctx.get_str(key)).unwrap_or_default());
    }
    let len = values.iter().map(Bytes::len).max().unwrap_or(0);
    let mut out = vec![0u8; len];
    for (i, byte) in out.iter_mut().enumerate() {
        let at = |v: &Bytes| v.get(i).copied().unwrap_or(0);
        *byte = match &op[..] {
            b"not" => !at(&values[0]),
            b"and" => values.iter().fold(0xFF, |acc, v| acc & at(v)),
            b"or" => values.iter().fold(0, |acc, v| acc | at(v)),
            _ => values.iter().fold(0, |acc, v| acc ^ at(v)),
        };
    }
    let db = ctx.db();
    if out.is_empty() {
        db.remove(&args[2]);
    } else {
        db.set(&args[2], Value::Str(&out), None);
    }
    Reply::Int(len as i64)
}

#[derive(Clone, Copy)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy)]
struct Field {
    signed: bool,
    bits: u32,
    offset: u64,
}

enum Step {
    Get(Field),
    Set(Field, i64, Overflow),
    Incr(Field, i64, Overflow),
}

fn field_type(arg: &[u8]) -> Result<(bool, u32), Reply> {
    const BAD: &str =
        "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";
    let signed = match arg.first() {
        Some(b'i' | b'I') => true,
        Some(b'u' | b'U') => false,
        _ => return Err(Reply::err(BAD)),
    };
    let bits: u32 =
        std::str::from_utf8(&arg[1..]).ok().and_then(|s| s.parse().ok()).ok_or(Reply::err(BAD))?;
    if bits == 0 || (signed && bits > 64) || (!signed && bits > 63) {
        return Err(Reply::err(BAD));
    }
    Ok((signed, bits))
}

/// Reads a field's bits as an unsigned number.
fn read_field(s: &[u8], f: Field) -> u64 {
    let mut v = 0u64;
    for i in 0..f.bits as u64 {
        v = v << 1 | get_bit(s, f.offset + i) as u64;
    }
    v
}

fn write_field(s: &mut [u8], f: Field, v: u64) {
    for i in 0..f.bits as u64 {
        let bit = (v >> (f.bits as u64 - 1 - i)) & 1;
        set_bit(s, f.offset + i, bit == 1);
    }
}

/// The field's value as the client sees it (sign-extended for signed fields).
fn as_value(raw: u64, f: Field) -> i64 {
    if f.signed && f.bits < 64 && raw >> (f.bits - 1) & 1 == 1 {
        (raw | !0u64 << f.bits) as i64
    } else {
        raw as i64
    }
}

/// `value` brought into the field's range by the overflow mode; None for FAIL on overflow.
fn fit(value: i128, f: Field, mode: Overflow) -> Option<i64> {
    let (min, max): (i128, i128) = if f.signed {
        (-(1i128 << (f.bits - 1)), (1i128 << (f.bits - 1)) - 1)
    } else {
        (0, (1i128 << f.bits) - 1)
    };
    if (min..=max).contains(&value) {
        return Some(value as i64);
    }
    match mode {
        Overflow::Fail => None,
        Overflow::Sat => Some(if value > max { max } else { min } as i64),
        Overflow::Wrap => {
            let span = 1i128 << f.bits;
            let wrapped = value.rem_euclid(span);
            Some(if f.signed && wrapped > max { wrapped - span } else { wrapped } as i64)
        }
    }
}

fn bitfield_common(ctx: &mut Ctx, args: &[Bytes], read_only: bool) -> Reply {
    let mut steps = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut i = 2;
    while i < args.len() {
        let sub = args[i].to_ascii_lowercase();
        let need = match &sub[..] {
            b"get" => 3,
            b"set" | b"incrby" => 4,
            b"overflow" => 2,
            _ => return Reply::err(SYNTAX),
        };
        if i + need > args.len() {
            return Reply::err(SYNTAX);
        }
        if sub == b"overflow" {
            let mode = args[i + 1].to_ascii_lowercase();
            overflow = match &mode[..] {
                b"wrap" => Overflow::Wrap,
                b"sat" => Overflow::Sat,
                b"fail" => Overflow::Fail,
                _ => return Reply::err("ERR Invalid OVERFLOW type specified"),
            };
            i += 2;
            continue;
        }
        let (signed, bits) = tri!(field_type(&args[i + 1]));
        let offset = tri!(bit_offset(ctx, &args[i + 2], true, bits as u64));
        let f = Field { signed, bits, offset };
        steps.push(match &sub[..] {
            b"get" => Step::Get(f),
            b"set" => Step::Set(f, tri!(int_arg(&args[i + 3])), overflow),
            _ => Step::Incr(f, tri!(int_arg(&args[i + 3])), overflow),
        });
        i += need;
    }
    let writes = steps.iter().any(|s| !matches!(s, Step::Get(_)));
    if read_only && writes {
        return Reply::err("ERR BITFIELD_RO only supports the GET subcommand");
    }
    let current = tri!(ctx.get_str(&args[1]));
    if !writes {
        let value = current.unwrap_or_default();
        return Reply::Array(
            steps
                .iter()
                .map(|s| match s {
                    Step::Get(f) => Reply::Int(as_value(read_field(&value, *f), *f)),
                    _ => unreachable!("only GETs"),
                })
                .collect(),
        );
    }
    let mut value = BytesMut::from(current.as_deref().unwrap_or_default());
    let mut replies = Vec::with_capacity(steps.len());
    let mut changed = false;
    for step in &steps {
        let f = match step {
            Step::Get(f) | Step::Set(f, ..) | Step::Incr(f, ..) => *f,
        };
        let need = ((f.offset + f.bits as u64 - 1) >> 3) as usize + 1;
        if !matches!(step, Step::Get(_)) && value.len() < need {
            value.resize(need, 0);
            changed = true;
        }
        let old = as_value(read_field(&value, f), f);
        let mask = if f.bits == 64 { u64::MAX } else { (1u64 << f.bits) - 1 };
        replies.push(match *step {
            Step::Get(_) => Reply::Int(old),
            Step::Set(_, v, mode) => match fit(v as i128, f, mode) {
                Some(v) => {
                    write_field(&mut value, f, v as u64 & mask);
                    changed = true;
                    Reply::Int(old)
                }
                None => Reply::Nil,
            },
            Step::Incr(_, by, mode) => match fit(old as i128 + by as i128, f, mode) {
                Some(v) => {
                    write_field(&mut value, f, v as u64 & mask);
                    changed = true;
                    Reply::Int(v)
                }
                None => Reply::Nil,
            },
        });
    }
    if changed {
        ctx.put_str_keep_ttl(&args[1], &value);
    }
    Reply::Array(replies)
}

pub fn bitfield(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    bitfield_common(ctx, args, false)
}

pub fn bitfield_ro(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    bitfield_common(ctx, args, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_counts() {
        let s = [0b1111_0000u8, 0b0000_1111, 0xFF];
        assert_eq!(count_bits(&s, 0, 23), 16);
        assert_eq!(count_bits(&s, 2, 13), 4);
        assert_eq!(bit_range(0, -1, 3, false), Some((0, 23)));
        assert_eq!(bit_range(1, 1, 3, false), Some((8, 15)));
        assert_eq!(bit_range(5, 100, 3, true), Some((5, 23)));
        assert_eq!(bit_range(2, 1, 3, false), None);
        assert_eq!(bit_range(0, -1, 0, false), None);
    }

    #[test]
    fn overflow_modes() {
        let u8f = Field { signed: false, bits: 8, offset: 0 };
        let i8f = Field { signed: true, bits: 8, offset: 0 };
        assert_eq!(fit(300, u8f, Overflow::Wrap), Some(44));
        assert_eq!(fit(300, u8f, Overflow::Sat), Some(255));
        assert_eq!(fit(-1, u8f, Overflow::Sat), Some(0));
        assert_eq!(fit(300, u8f, Overflow::Fail), None);
        assert_eq!(fit(200, i8f, Overflow::Wrap), Some(-56));
        assert_eq!(fit(-200, i8f, Overflow::Sat), Some(-128));
        let i64f = Field { signed: true, bits: 64, offset: 0 };
        assert_eq!(fit(i64::MAX as i128 + 1, i64f, Overflow::Wrap), Some(i64::MIN));
        let mut s = [0u8; 2];
        write_field(&mut s, Field { signed: true, bits: 5, offset: 3 }, (-3i64 as u64) & 31);
        assert_eq!(as_value(read_field(&s, Field { signed: true, bits: 5, offset: 3 }), i8f_bits(5)), -3);
    }

    fn i8f_bits(bits: u32) -> Field {
        Field { signed: true, bits, offset: 3 }
    }
}
