//! String commands: GET SET and the rest of Redis's string family.

use bytes::{Bytes, BytesMut};

use super::{expire_at, int_arg, Ctx, NOT_INTEGER, SYNTAX};
use crate::keyspace::Value;
use crate::resp::parser::parse_i64;
use crate::resp::reply::format_double;
use crate::resp::Reply;
use crate::tri;

fn eq(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

fn str_value(v: &[u8]) -> Value<'_> {
    Value::Str(v)
}

fn too_long() -> Reply {
    Reply::err("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
}

pub fn get(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    tri!(ctx.get_str(&args[1])).into()
}

/// The expiry options SET and GETEX share.
#[derive(Clone, Copy, PartialEq)]
enum Ttl {
    Keep,
    Persist,
    /// (amount, unit in ms, absolute)
    At(i64, i64, bool),
}

/// Parses `EX s | PX ms | EXAT s | PXAT ms` at `args[*i]`, advancing past its value.
fn ttl_option(args: &[Bytes], i: &mut usize) -> Option<Result<Ttl, Reply>> {
    let (unit, absolute) = match () {
        _ if eq(&args[*i], "ex") => (1000, false),
        _ if eq(&args[*i], "px") => (1, false),
        _ if eq(&args[*i], "exat") => (1000, true),
        _ if eq(&args[*i], "pxat") => (1, true),
        _ => return None,
    };
    let Some(value) = args.get(*i + 1) else {
        return Some(Err(Reply::err(SYNTAX)));
    };
    *i += 1;
    Some(int_arg(value).map(|n| Ttl::At(n, unit, absolute)))
}

/// SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]
pub fn set(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (mut nx, mut xx, mut get) = (false, false, false);
    let mut ttl: Option<Ttl> = None;
    let mut bad_number = None;
    let mut i = 3;
    while i < args.len() {
        let a = &args[i];
        if eq(a, "nx") && !xx {
            nx = true;
        } else if eq(a, "xx") && !nx {
            xx = true;
        } else if eq(a, "get") {
            get = true;
        } else if eq(a, "keepttl") && ttl.is_none() {
            ttl = Some(Ttl::Keep);
        } else if ttl.is_none() {
            match ttl_option(args, &mut i) {
                Some(Ok(t)) => ttl = Some(t),
                // Redis reports a malformed number only once the options parsed.
                Some(Err(e)) if e == Reply::err(NOT_INTEGER) => {
                    bad_number = Some(e);
                    ttl = Some(Ttl::Keep);
                }
                _ => return Reply::err(SYNTAX),
            }
        } else {
            return Reply::err(SYNTAX);
        }
        i += 1;
    }
    if let Some(e) = bad_number {
        return e;
    }
    let at = match ttl {
        Some(Ttl::At(n, unit, abs)) => Some(tri!(expire_at(n, unit, abs, ctx.now, "set", false))),
        _ => None,
    };
    let (key, now) = (&args[1], ctx.now);
    let old = if get { tri!(ctx.get_str(key)) } else { None };
    let exists = if get { old.is_some() } else { ctx.db().contains(key, now) };
    if (nx && exists) || (xx && !exists) {
        return if get { old.into() } else { Reply::Nil };
    }
    // Stored as the argument is: a big one by reference to the buffer it arrived in.
    let value = &args[2];
    let db = ctx.db();
    match (ttl, at) {
        (Some(Ttl::Keep), _) => db.set_keep_ttl(key, value, now),
        (_, at) => db.set(key, value, at.map(|t| t.max(0) as u64)),
    }
    // Replicated as an unconditional SET (it did write) with an absolute expiry; a plain
    // SET key value already is one, and goes as it came (no copy).
    let set = |more: &[&'static str]| {
        let mut v = vec![Bytes::from_static(b"SET"), key.clone(), args[2].clone()];
        v.extend(more.iter().map(|m| Bytes::from_static(m.as_bytes())));
        v
    };
    match (ttl, at) {
        (Some(Ttl::Keep), _) => ctx.propagate_args(|| set(&["KEEPTTL"])),
        (_, Some(at)) => ctx.propagate_args(|| {
            let mut v = set(&["PXAT"]);
            v.push(Bytes::from(at.max(0).to_string()));
            v
        }),
        _ if args.len() == 3 => {}
        _ => ctx.propagate_args(|| set(&[])),
    }
    if get {
        old.into()
    } else {
        Reply::Ok
    }
}

pub fn setnx(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let now = ctx.now;
    let db = ctx.db();
    if db.contains(&args[1], now) {
        return Reply::Int(0);
    }
    db.set(&args[1], &args[2], None);
    Reply::Int(1)
}

fn set_with_ttl(ctx: &mut Ctx, args: &[Bytes], unit: i64, name: &str) -> Reply {
    let n = tri!(int_arg(&args[2]));
    let at = tri!(expire_at(n, unit, false, ctx.now, name, false));
    ctx.db().set(&args[1], &args[3], Some(at as u64));
    ctx.propagate_args(|| {
        vec![
            Bytes::from_static(b"SET"),
            args[1].clone(),
            args[3].clone(),
            Bytes::from_static(b"PXAT"),
            Bytes::from(at.to_string()),
        ]
    });
    Reply::Ok
}

pub fn setex(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    set_with_ttl(ctx, args, 1000, "setex")
}

pub fn psetex(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    set_with_ttl(ctx, args, 1, "psetex")
}

pub fn getset(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let old = tri!(ctx.get_str(&args[1]));
    ctx.db().set(&args[1], &args[2], None);
    old.into()
}

pub fn getdel(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let old = tri!(ctx.get_str(&args[1]));
    if old.is_some() {
        ctx.db().remove(&args[1]);
        ctx.propagate(&[b"DEL", &args[1]]);
    }
    old.into()
}

/// GETEX key [EX s|PX ms|EXAT s|PXAT ms|PERSIST]
pub fn getex(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let mut ttl = None;
    let mut i = 2;
    while i < args.len() {
        if eq(&args[i], "persist") && ttl.is_none() {
            ttl = Some(Ttl::Persist);
        } else if ttl.is_none() {
            match ttl_option(args, &mut i) {
                Some(Ok(t)) => ttl = Some(t),
                Some(Err(e)) if e == Reply::err(NOT_INTEGER) => return e,
                _ => return Reply::err(SYNTAX),
            }
        } else {
            return Reply::err(SYNTAX);
        }
        i += 1;
    }
    let at = match ttl {
        Some(Ttl::At(n, unit, abs)) => Some(tri!(expire_at(n, unit, abs, ctx.now, "getex", false))),
        _ => None,
    };
    let value = tri!(ctx.get_str(&args[1]));
    if value.is_some() {
        let now = ctx.now;
        let db = ctx.db();
        match (ttl, at) {
            (Some(Ttl::Persist), _) => {
                db.persist(&args[1], now);
                ctx.propagate(&[b"PERSIST", &args[1]]);
            }
            (_, Some(at)) if at as u64 <= now => {
                db.remove(&args[1]);
                ctx.propagate(&[b"DEL", &args[1]]);
            }
            (_, Some(at)) => {
                db.set_expire(&args[1], at as u64, now);
                ctx.propagate(&[b"PEXPIREAT", &args[1], at.to_string().as_bytes()]);
            }
            _ => {}
        }
    }
    value.into()
}

pub fn mget(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let now = ctx.now;
    let db = ctx.db();
    Reply::Array(
        args[1..]
            .iter()
            .map(|k| match db.get(k, now) {
                Some(e) => match e.value() {
                    Value::Str(b) => Reply::Bulk(Bytes::copy_from_slice(b)),
                    // MGET answers nil for a key of another type, as Redis does.
                    Value::Obj(_) => Reply::Nil,
                },
                None => Reply::Nil,
            })
            .collect(),
    )
}

pub fn mset(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if args.len().is_multiple_of(2) {
        return super::wrong_arity("mset");
    }
    let db = ctx.db();
    for pair in args[1..].chunks(2) {
        db.set(&pair[0], &pair[1], None);
    }
    Reply::Ok
}

pub fn msetnx(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if args.len().is_multiple_of(2) {
        return super::wrong_arity("msetnx");
    }
    let now = ctx.now;
    let db = ctx.db();
    if args[1..].chunks(2).any(|pair| db.contains(&pair[0], now)) {
        return Reply::Int(0);
    }
    for pair in args[1..].chunks(2) {
        db.set(&pair[0], &pair[1], None);
    }
    Reply::Int(1)
}

/// Adds `by` to the integer at `key`, keeping its TTL.
fn incr_by(ctx: &mut Ctx, key: &[u8], by: i64) -> Reply {
    let current = match tri!(ctx.get_str(key)) {
        None => 0,
        Some(v) => match parse_i64(&v) {
            Some(n) => n,
            None => return Reply::err(NOT_INTEGER),
        },
    };
    let Some(new) = current.checked_add(by) else {
        return Reply::err("ERR increment or decrement would overflow");
    };
    let mut buf = itoa::Buffer::new();
    let value = str_value(buf.format(new).as_bytes());
    let now = ctx.now;
    let db = ctx.db();
    db.set_keep_ttl(key, value, now);
    Reply::Int(new)
}

pub fn incr(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    incr_by(ctx, &args[1], 1)
}

pub fn decr(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    incr_by(ctx, &args[1], -1)
}

pub fn incrby(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let by = tri!(int_arg(&args[2]));
    incr_by(ctx, &args[1], by)
}

pub fn decrby(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let by = tri!(int_arg(&args[2]));
    let Some(by) = by.checked_neg() else {
        return Reply::err("ERR decrement would overflow");
    };
    incr_by(ctx, &args[1], by)
}

/// Parses a float as Redis's `string2ld`: no blanks, no NaN.
pub fn parse_float(arg: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(arg).ok()?;
    if s.is_empty() || s.starts_with(|c: char| c.is_whitespace()) || s.ends_with(|c: char| c.is_whitespace())
    {
        return None;
    }
    let v: f64 = s.parse().ok()?;
    (!v.is_nan()).then_some(v)
}

pub fn incrbyfloat(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let not_float = || Reply::err("ERR value is not a valid float");
    let current = match tri!(ctx.get_str(&args[1])) {
        None => 0.0,
        Some(v) => match parse_float(&v) {
            Some(f) => f,
            None => return not_float(),
        },
    };
    let Some(by) = parse_float(&args[2]) else {
        return not_float();
    };
    let new = current + by;
    if !new.is_finite() {
        return Reply::err("ERR increment would produce NaN or Infinity");
    }
    let text = Bytes::from(format_double(new));
    let now = ctx.now;
    let db = ctx.db();
    db.set_keep_ttl(&args[1], Value::Str(&text), now);
    ctx.propagate(&[b"SET", &args[1], &text, b"KEEPTTL"]);
    Reply::Bulk(text)
}

pub fn append(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let current = tri!(ctx.get_str(&args[1])).unwrap_or_default();
    if current.len() + args[2].len() > ctx.max_string() {
        return too_long();
    }
    let mut joined = BytesMut::with_capacity(current.len() + args[2].len());
    joined.extend_from_slice(&current);
    joined.extend_from_slice(&args[2]);
    let len = joined.len() as i64;
    let now = ctx.now;
    let db = ctx.db();
    db.set_keep_ttl(&args[1], Value::Str(&joined), now);
    Reply::Int(len)
}

pub fn strlen(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    Reply::Int(tri!(ctx.get_str(&args[1])).map_or(0, |v| v.len() as i64))
}

pub fn getrange(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (mut start, mut end) = (tri!(int_arg(&args[2])), tri!(int_arg(&args[3])));
    let value = tri!(ctx.get_str(&args[1])).unwrap_or_default();
    let len = value.len() as i64;
    if start < 0 && end < 0 && start > end {
        return Reply::bulk_str("");
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0).min(len - 1);
    if len == 0 || start > end {
        return Reply::bulk_str("");
    }
    Reply::Bulk(value.slice(start as usize..=end as usize))
}

pub fn setrange(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let offset = tri!(int_arg(&args[2]));
    if offset < 0 {
        return Reply::err("ERR offset is out of range");
    }
    let patch = &args[3];
    let current = tri!(ctx.get_str(&args[1]));
    let current_len = current.as_ref().map_or(0, |v| v.len());
    if patch.is_empty() {
        return Reply::Int(current_len as i64);
    }
    let offset = offset as usize;
    if offset.saturating_add(patch.len()) > ctx.max_string() {
        return too_long();
    }
    let mut value = BytesMut::from(current.as_deref().unwrap_or_default());
    if value.len() < offset + patch.len() {
        value.resize(offset + patch.len(), 0);
    }
    value[offset..offset + patch.len()].copy_from_slice(patch);
    let len = value.len() as i64;
    let now = ctx.now;
    let db = ctx.db();
    db.set_keep_ttl(&args[1], Value::Str(&value), now);
    Reply::Int(len)
}

/// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]: the longest common
/// subsequence, by Redis's dynamic programming table and its walk back from the end (so the
/// same subsequence and ranges as redis-server when several are possible).
pub fn lcs(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let mut strings = Vec::with_capacity(2);
    for key in &args[1..3] {
        match ctx.get_str(key) {
            Ok(v) => strings.push(v.unwrap_or_default()),
            Err(_) => return Reply::err("ERR The specified keys must contain string values"),
        }
    }
    let (mut getlen, mut getidx, mut withmatchlen, mut minmatchlen) = (false, false, false, 0u64);
    let mut j = 3;
    while j < args.len() {
        let opt = &args[j];
        if opt.eq_ignore_ascii_case(b"idx") {
            getidx = true;
        } else if opt.eq_ignore_ascii_case(b"len") {
            getlen = true;
        } else if opt.eq_ignore_ascii_case(b"withmatchlen") {
            withmatchlen = true;
        } else if opt.eq_ignore_ascii_case(b"minmatchlen") && j + 1 < args.len() {
            minmatchlen = tri!(int_arg(&args[j + 1])).max(0) as u64;
            j += 1;
        } else {
            return Reply::err(SYNTAX);
        }
        j += 1;
    }
    if getidx && getlen {
        return Reply::err("ERR If you want both the length and indexes, please just use IDX.");
    }
    let (a, b) = (&strings[0], &strings[1]);
    let (alen, blen) = (a.len(), b.len());
    let cells = (alen + 1).saturating_mul(blen + 1);
    if cells.saturating_mul(4) > ctx.max_string().max(1 << 30) {
        return Reply::err("ERR Insufficient memory, failed allocating transient memory for LCS");
    }
    let w = blen + 1;
    let mut dp = vec![0u32; cells];
    for i in 1..=alen {
        for k in 1..=blen {
            dp[k + i * w] = if a[i - 1] == b[k - 1] {
                dp[k - 1 + (i - 1) * w] + 1
            } else {
                dp[k + (i - 1) * w].max(dp[k - 1 + i * w])
            };
        }
    }
    let total = dp[blen + alen * w];
    if getlen {
        return Reply::Int(total as i64);
    }
    let mut result = vec![0u8; total as usize];
    let mut matches = Vec::new();
    let (mut i, mut k, mut idx) = (alen, blen, total as usize);
    // alen marks "no range open", as in Redis.
    let (mut a_start, mut a_end, mut b_start, mut b_end) = (alen, 0, 0, 0);
    while i > 0 && k > 0 {
        let mut emit = false;
        if a[i - 1] == b[k - 1] {
            result[idx - 1] = a[i - 1];
            if a_start == alen {
                (a_start, a_end, b_start, b_end) = (i - 1, i - 1, k - 1, k - 1);
            } else if a_start == i && b_start == k {
                a_start -= 1;
                b_start -= 1;
            } else {
                emit = true;
            }
            if a_start == 0 || b_start == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            k -= 1;
        } else {
            if dp[k + (i - 1) * w] > dp[k - 1 + i * w] {
                i -= 1;
            } else {
                k -= 1;
            }
            if a_start != alen {
                emit = true;
            }
        }
        let match_len = (a_end + 1).saturating_sub(a_start) as u64;
        if emit {
            if getidx && (minmatchlen == 0 || match_len >= minmatchlen) {
                let mut m = vec![
                    Reply::Array(vec![Reply::Int(a_start as i64), Reply::Int(a_end as i64)]),
                    Reply::Array(vec![Reply::Int(b_start as i64), Reply::Int(b_end as i64)]),
                ];
                if withmatchlen {
                    m.push(Reply::Int(match_len as i64));
                }
                matches.push(Reply::Array(m));
            }
            a_start = alen;
        }
    }
    if getidx {
        return Reply::Map(vec![
            (Reply::bulk_str("matches"), Reply::Array(matches)),
            (Reply::bulk_str("len"), Reply::Int(total as i64)),
        ]);
    }
    Reply::Bulk(Bytes::from(result))
}
