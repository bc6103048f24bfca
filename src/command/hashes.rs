//! Hash commands: HSET HSETNX HGET HMGET HMSET HGETALL HDEL HLEN HSTRLEN HEXISTS HKEYS HVALS
//! HINCRBY HINCRBYFLOAT HRANDFIELD HSCAN, with Redis's replies and error texts.

use bytes::Bytes;

use super::strings::parse_float;
use super::{int_arg, Ctx, SYNTAX};
use crate::keyspace::hash::Hash;
use crate::keyspace::{glob_match, Object};
use crate::resp::reply::format_double;
use crate::resp::Reply;
use crate::tri;

fn pick(o: &Object) -> Option<&Hash> {
    match o {
        Object::Hash(h) => Some(h),
        _ => None,
    }
}

fn pick_mut(o: &mut Object) -> Option<&mut Hash> {
    match o {
        Object::Hash(h) => Some(h),
        _ => None,
    }
}

fn new_hash() -> Object {
    Object::Hash(Hash::default())
}

fn eq(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

fn set_pairs(ctx: &mut Ctx, args: &[Bytes], name: &str) -> Result<i64, Reply> {
    if args.len() < 4 || !args.len().is_multiple_of(2) {
        return Err(super::wrong_arity(name));
    }
    let limits = ctx.limits();
    let h = ctx.write_obj(&args[1], Some(&new_hash), pick_mut)?.expect("created");
    Ok(args[2..].chunks(2).filter(|p| h.set(&p[0], &p[1], &limits)).count() as i64)
}

pub fn hset(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    Reply::Int(tri!(set_pairs(ctx, args, "hset")))
}

pub fn hmset(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    tri!(set_pairs(ctx, args, "hmset"));
    Reply::Ok
}

pub fn hsetnx(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if tri!(ctx.read_obj(&args[1], pick)).is_some_and(|h| h.contains(&args[2])) {
        return Reply::Int(0);
    }
    let limits = ctx.limits();
    let h = tri!(ctx.write_obj(&args[1], Some(&new_hash), pick_mut)).expect("created");
    h.set(&args[2], &args[3], &limits);
    Reply::Int(1)
}

pub fn hget(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    tri!(ctx.read_obj(&args[1], pick)).and_then(|h| h.get(&args[2])).into()
}

pub fn hmget(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let h = tri!(ctx.read_obj(&args[1], pick));
    Reply::Array(args[2..].iter().map(|f| h.and_then(|h| h.get(f)).into()).collect())
}

pub fn hgetall(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let mut pairs = Vec::new();
    if let Some(h) = tri!(ctx.read_obj(&args[1], pick)) {
        pairs.reserve(h.len());
        h.for_each(|f, v| {
            pairs.push((Reply::Bulk(Bytes::copy_from_slice(f)), Reply::Bulk(Bytes::copy_from_slice(v))))
        });
    }
    Reply::Map(pairs)
}

fn keys_or_values(ctx: &mut Ctx, key: &[u8], values: bool) -> Reply {
    let mut out = Vec::new();
    if let Some(h) = tri!(ctx.read_obj(key, pick)) {
        out.reserve(h.len());
        h.for_each(|f, v| out.push(Reply::Bulk(Bytes::copy_from_slice(if values { v } else { f }))));
    }
    Reply::Array(out)
}

pub fn hkeys(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    keys_or_values(ctx, &args[1], false)
}

pub fn hvals(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    keys_or_values(ctx, &args[1], true)
}

pub fn hdel(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let Some(h) = tri!(ctx.write_obj(&args[1], None, pick_mut)) else {
        return Reply::Int(0);
    };
    let removed = args[2..].iter().filter(|f| h.remove(f)).count();
    ctx.drop_if_empty(&args[1]);
    Reply::Int(removed as i64)
}

pub fn hlen(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    Reply::Int(tri!(ctx.read_obj(&args[1], pick)).map_or(0, |h| h.len() as i64))
}

pub fn hstrlen(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    Reply::Int(tri!(ctx.read_obj(&args[1], pick)).and_then(|h| h.get(&args[2])).map_or(0, |v| v.len() as i64))
}

pub fn hexists(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    Reply::Int(tri!(ctx.read_obj(&args[1], pick)).is_some_and(|h| h.contains(&args[2])) as i64)
}

pub fn hincrby(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let by = tri!(int_arg(&args[3]));
    let current = match tri!(ctx.read_obj(&args[1], pick)).and_then(|h| h.get(&args[2])) {
        None => 0,
        Some(v) => match crate::resp::parser::parse_i64(&v) {
            Some(n) => n,
            None => return Reply::err("ERR hash value is not an integer"),
        },
    };
    let Some(new) = current.checked_add(by) else {
        return Reply::err("ERR increment or decrement would overflow");
    };
    let limits = ctx.limits();
    let h = tri!(ctx.write_obj(&args[1], Some(&new_hash), pick_mut)).expect("created");
    h.set(&args[2], itoa::Buffer::new().format(new).as_bytes(), &limits);
    Reply::Int(new)
}

pub fn hincrbyfloat(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let Some(by) = parse_float(&args[3]) else {
        return Reply::err("ERR value is not a valid float");
    };
    if !by.is_finite() {
        return Reply::err("ERR value is NaN or Infinity");
    }
    let current = match tri!(ctx.read_obj(&args[1], pick)).and_then(|h| h.get(&args[2])) {
        None => 0.0,
        Some(v) => match parse_float(&v) {
            Some(f) => f,
            None => return Reply::err("ERR hash value is not a float"),
        },
    };
    let new = current + by;
    if !new.is_finite() {
        return Reply::err("ERR increment would produce NaN or Infinity");
    }
    let text = Bytes::from(format_double(new));
    let limits = ctx.limits();
    let h = tri!(ctx.write_obj(&args[1], Some(&new_hash), pick_mut)).expect("created");
    h.set(&args[2], &text, &limits);
    // Replicated as its effect, so a replica's float arithmetic cannot differ.
    ctx.propagate(&[b"HSET", &args[1], &args[2], &text]);
    Reply::Bulk(text)
}

/// HRANDFIELD key [count [WITHVALUES]]
pub fn hrandfield(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (count, with_values) = match args.len() {
        2 => (None, false),
        3 => (Some(tri!(int_arg(&args[2]))), false),
        4 if eq(&args[3], "withvalues") => (Some(tri!(int_arg(&args[2]))), true),
        _ => return Reply::err(SYNTAX),
    };
    if let Some(n) = count {
        // Redis refuses counts whose reply size would overflow.
        if n < -(i64::MAX / 2) || (with_values && n.unsigned_abs() > (i64::MAX / 2) as u64) {
            return Reply::err("ERR value is out of range");
        }
    }
    let mut rng = std::mem::replace(&mut ctx.state.keyspace.rng, crate::keyspace::Rng::new(1));
    let reply = (|| {
        let Some(h) = ctx.read_obj(&args[1], pick)? else {
            return Ok(if count.is_some() { Reply::Array(vec![]) } else { Reply::Nil });
        };
        let len = h.len();
        let Some(n) = count else {
            return Ok(Reply::Bulk(h.pair_at(rng.below(len)).0));
        };
        let picks: Vec<usize> = super::sets::random_positions(&mut rng, len, n);
        if with_values {
            return Ok(Reply::Pairs(
                picks
                    .into_iter()
                    .map(|i| h.pair_at(i))
                    .map(|(f, v)| (Reply::Bulk(f), Reply::Bulk(v)))
                    .collect(),
            ));
        }
        Ok(Reply::Array(picks.into_iter().map(|i| Reply::Bulk(h.pair_at(i).0)).collect()))
    })();
    ctx.state.keyspace.rng = rng;
    match reply {
        Ok(r) => r,
        Err(e) => e,
    }
}

/// The options of HSCAN, SSCAN and ZSCAN: cursor [MATCH pattern] [COUNT count].
pub fn scan_args(args: &[Bytes]) -> Result<(u64, Option<&Bytes>, usize), Reply> {
    let cursor = super::keys::parse_cursor(&args[2]).ok_or(Reply::err("ERR invalid cursor"))?;
    let (mut pattern, mut count) = (None, 10usize);
    let mut i = 3;
    while i < args.len() {
        let value = args.get(i + 1).ok_or(Reply::err(SYNTAX))?;
        if eq(&args[i], "match") {
            pattern = Some(value).filter(|p| p.as_ref() != b"*");
        } else if eq(&args[i], "count") {
            let n = int_arg(value)?;
            if n < 1 {
                return Err(Reply::err(SYNTAX));
            }
            count = n as usize;
        } else {
            return Err(Reply::err(SYNTAX));
        }
        i += 2;
    }
    Ok((cursor, pattern, count))
}

/// SCAN's reply: the next cursor and the elements.
pub fn scan_reply(next: u64, items: Vec<Reply>) -> Reply {
    let mut c = itoa::Buffer::new();
    Reply::Array(vec![Reply::Bulk(Bytes::copy_from_slice(c.format(next).as_bytes())), Reply::Array(items)])
}

/// HSCAN key cursor [MATCH pattern] [COUNT count]
pub fn hscan(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (cursor, pattern, count) = tri!(scan_args(args));
    let mut items = Vec::new();
    let next = match tri!(ctx.read_obj(&args[1], pick)) {
        None => 0,
        Some(h) => h.scan(cursor, count, |f, v| {
            if pattern.is_none_or(|p| glob_match(p, f)) {
                items.push(Reply::Bulk(Bytes::copy_from_slice(f)));
                items.push(Reply::Bulk(Bytes::copy_from_slice(v)));
            }
        }),
    };
    scan_reply(next, items)
}
