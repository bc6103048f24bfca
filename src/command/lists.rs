//! List commands: LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP LLEN LRANGE LINDEX LSET LINSERT LREM
//! LTRIM LPOS LMOVE RPOPLPUSH LMPOP, with Redis 7.0's replies, error texts and the order in
//! which it checks arguments and keys. Every one of them is deterministic, so each replicates
//! as it was sent.

use bytes::Bytes;

use super::{int_arg, Ctx, SYNTAX};
use crate::keyspace::list::List;
use crate::keyspace::Object;
use crate::resp::Reply;
use crate::tri;

fn pick(o: &Object) -> Option<&List> {
    match o {
        Object::List(l) => Some(l),
        _ => None,
    }
}

fn pick_mut(o: &mut Object) -> Option<&mut List> {
    match o {
        Object::List(l) => Some(l),
        _ => None,
    }
}

fn new_list() -> Object {
    Object::List(List::default())
}

/// LEFT or RIGHT: whether it is the head.
pub(crate) fn side(arg: &[u8]) -> Result<bool, Reply> {
    if arg.eq_ignore_ascii_case(b"left") {
        Ok(true)
    } else if arg.eq_ignore_ascii_case(b"right") {
        Ok(false)
    } else {
        Err(Reply::err(SYNTAX))
    }
}

fn push(ctx: &mut Ctx, args: &[Bytes], front: bool, only_existing: bool) -> Reply {
    let limits = ctx.limits().list();
    let create: Option<&dyn Fn() -> Object> = if only_existing { None } else { Some(&new_list) };
    let Some(l) = tri!(ctx.write_obj(&args[1], create, pick_mut)) else {
        return Reply::Int(0);
    };
    for v in &args[2..] {
        l.push(front, v, &limits);
    }
    Reply::Int(l.len() as i64)
}

pub fn lpush(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    push(ctx, args, true, false)
}

pub fn rpush(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    push(ctx, args, false, false)
}

pub fn lpushx(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    push(ctx, args, true, true)
}

pub fn rpushx(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    push(ctx, args, false, true)
}

/// Pops up to `count` elements of the list at `key` from one end, deleting it when emptied.
/// None when there is no such key.
pub(crate) fn pop_n(
    ctx: &mut Ctx,
    key: &[u8],
    front: bool,
    count: usize,
) -> Result<Option<Vec<Bytes>>, Reply> {
    let Some(l) = ctx.write_obj(key, None, pick_mut)? else { return Ok(None) };
    let mut out = Vec::with_capacity(count.min(l.len()));
    while out.len() < count {
        match l.pop(front) {
            Some(v) => out.push(v),
            None => break,
        }
    }
    ctx.drop_if_empty(key);
    Ok(Some(out))
}

fn pop(ctx: &mut Ctx, args: &[Bytes], front: bool) -> Reply {
    let count = match args.len() {
        2 => None,
        3 => match int_arg(&args[2]) {
            Ok(n) if n >= 0 => Some(n as usize),
            _ => return Reply::err("ERR value is out of range, must be positive"),
        },
        _ => {
            return Reply::error(format!(
                "ERR wrong number of arguments for '{}' command",
                if front { "lpop" } else { "rpop" }
            ))
        }
    };
    match (tri!(pop_n(ctx, &args[1], front, count.unwrap_or(1))), count) {
        (None, None) => Reply::Nil,
        (None, Some(_)) => Reply::NilArray,
        (Some(mut v), None) => v.pop().map_or(Reply::Nil, Reply::Bulk),
        (Some(v), Some(_)) => Reply::Array(v.into_iter().map(Reply::Bulk).collect()),
    }
}

pub fn lpop(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    pop(ctx, args, true)
}

pub fn rpop(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    pop(ctx, args, false)
}

pub fn llen(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    Reply::Int(tri!(ctx.read_obj(&args[1], pick)).map_or(0, |l| l.len() as i64))
}

/// Redis's start/stop normalization for LRANGE and LTRIM: the positions kept, if any.
fn span(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 { (len + start).max(0) } else { start };
    let stop = if stop < 0 { len + stop } else { stop };
    if start > stop || start >= len {
        return None;
    }
    Some((start as usize, stop.min(len - 1) as usize))
}

pub fn lrange(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (start, stop) = (tri!(int_arg(&args[2])), tri!(int_arg(&args[3])));
    let Some(l) = tri!(ctx.read_obj(&args[1], pick)) else { return Reply::Array(vec![]) };
    match span(start, stop, l.len()) {
        // Encoded at once: an array of bulk strings is the same in RESP2 and RESP3.
        Some((from, to)) => Reply::Raw(l.encode_range(from, to)),
        None => Reply::Array(vec![]),
    }
}

pub fn lindex(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let Some(l) = tri!(ctx.read_obj(&args[1], pick)) else { return Reply::Nil };
    let i = tri!(int_arg(&args[2]));
    l.get(i).map_or(Reply::Nil, Reply::Bulk)
}

pub fn lset(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let limits = ctx.limits().list();
    let Some(l) = tri!(ctx.write_obj(&args[1], None, pick_mut)) else {
        return Reply::err("ERR no such key");
    };
    let i = tri!(int_arg(&args[2]));
    match l.index(i) {
        Some(i) if l.set(i, &args[3], &limits) => Reply::Ok,
        _ => Reply::err("ERR index out of range"),
    }
}

pub fn linsert(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let after = if args[2].eq_ignore_ascii_case(b"after") {
        true
    } else if args[2].eq_ignore_ascii_case(b"before") {
        false
    } else {
        return Reply::err(SYNTAX);
    };
    let limits = ctx.limits().list();
    let Some(l) = tri!(ctx.write_obj(&args[1], None, pick_mut)) else { return Reply::Int(0) };
    if l.insert(&args[3], after, &args[4], &limits) {
        Reply::Int(l.len() as i64)
    } else {
        Reply::Int(-1)
    }
}

pub fn lrem(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let count = tri!(int_arg(&args[2]));
    let limits = ctx.limits().list();
    let Some(l) = tri!(ctx.write_obj(&args[1], None, pick_mut)) else { return Reply::Int(0) };
    let removed = l.remove(count, &args[3], &limits);
    ctx.drop_if_empty(&args[1]);
    Reply::Int(removed as i64)
}

pub fn ltrim(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (start, stop) = (tri!(int_arg(&args[2])), tri!(int_arg(&args[3])));
    let limits = ctx.limits().list();
    let Some(l) = tri!(ctx.write_obj(&args[1], None, pick_mut)) else { return Reply::Ok };
    match span(start, stop, l.len()) {
        Some((from, to)) => l.trim(from, to, &limits),
        None => *l = List::default(),
    }
    ctx.drop_if_empty(&args[1]);
    Reply::Ok
}

/// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]
pub fn lpos(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (mut rank, mut count, mut maxlen) = (1i64, None, 0usize);
    let mut i = 3;
    while i < args.len() {
        let Some(value) = args.get(i + 1) else { return Reply::err(SYNTAX) };
        let opt = &args[i];
        let n = tri!(int_arg(value));
        if opt.eq_ignore_ascii_case(b"rank") {
            if n == 0 {
                return Reply::err("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list");
            }
            rank = n;
        } else if opt.eq_ignore_ascii_case(b"count") {
            if n < 0 {
                return Reply::err("ERR COUNT can't be negative");
            }
            count = Some(n as usize);
        } else if opt.eq_ignore_ascii_case(b"maxlen") {
            if n < 0 {
                return Reply::err("ERR MAXLEN can't be negative");
            }
            maxlen = n as usize;
        } else {
            return Reply::err(SYNTAX);
        }
        i += 2;
    }
    let Some(l) = tri!(ctx.read_obj(&args[1], pick)) else {
        return if count.is_some() { Reply::Array(vec![]) } else { Reply::Nil };
    };
    let found = l.positions(&args[2], rank, count.unwrap_or(1), maxlen);
    match count {
        Some(_) => Reply::Array(found.into_iter().map(|p| Reply::Int(p as i64)).collect()),
        None => found.first().map_or(Reply::Nil, |&p| Reply::Int(p as i64)),
    }
}

/// Moves one element from an end of `src` to an end of `dst` (LMOVE, RPOPLPUSH): the
/// destination's type is checked before anything is popped, as in Redis.
fn move_one(ctx: &mut Ctx, src: &[u8], dst: &[u8], from_left: bool, to_left: bool) -> Reply {
    if tri!(ctx.read_obj(src, pick)).is_none() {
        return Reply::Nil;
    }
    tri!(ctx.read_obj(dst, pick));
    let limits = ctx.limits().list();
    let Some(v) = tri!(pop_n(ctx, src, from_left, 1)).and_then(|mut v| v.pop()) else {
        return Reply::Nil;
    };
    let l = tri!(ctx.write_obj(dst, Some(&new_list), pick_mut)).expect("created");
    l.push(to_left, &v, &limits);
    Reply::Bulk(v)
}

pub fn lmove(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (from, to) = (tri!(side(&args[3])), tri!(side(&args[4])));
    move_one(ctx, &args[1], &args[2], from, to)
}

pub fn rpoplpush(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    move_one(ctx, &args[1], &args[2], false, true)
}

/// What LMPOP (and, later, BLMPOP) asks: the keys, the end, how many.
pub struct MpopArgs<'a> {
    pub keys: &'a [Bytes],
    pub front: bool,
    pub count: usize,
}

/// Parses `numkeys key [key ...] LEFT|RIGHT [COUNT count]` (from `args[at]` on).
pub fn mpop_args(args: &[Bytes], at: usize) -> Result<MpopArgs<'_>, Reply> {
    let numkeys = match int_arg(&args[at]) {
        Ok(n) if n > 0 => n as usize,
        _ => return Err(Reply::err("ERR numkeys should be greater than 0")),
    };
    let rest = &args[at + 1..];
    if numkeys >= rest.len() {
        return Err(Reply::err(SYNTAX));
    }
    let keys = &rest[..numkeys];
    let front = side(&rest[numkeys])?;
    let mut count = None;
    let mut i = numkeys + 1;
    while i < rest.len() {
        if rest[i].eq_ignore_ascii_case(b"count") && count.is_none() && i + 1 < rest.len() {
            match int_arg(&rest[i + 1]) {
                Ok(n) if n > 0 => count = Some(n as usize),
                _ => return Err(Reply::err("ERR count should be greater than 0")),
            }
            i += 2;
        } else {
            return Err(Reply::err(SYNTAX));
        }
    }
    Ok(MpopArgs { keys, front, count: count.unwrap_or(1) })
}

pub fn lmpop(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let m = tri!(mpop_args(args, 1));
    for key in m.keys {
        if let Some(popped) = tri!(pop_n(ctx, key, m.front, m.count)) {
            return Reply::Array(vec![
                Reply::Bulk(key.clone()),
                Reply::Array(popped.into_iter().map(Reply::Bulk).collect()),
            ]);
        }
    }
    Reply::NilArray
}
