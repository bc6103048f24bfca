//! Blocking pops: BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP BZPOPMIN BZPOPMAX BZMPOP, and CLIENT
//! UNBLOCK.
//!
//! A blocking command first tries as its non-blocking form. When every key is empty (and it
//! is not inside MULTI/EXEC, where Redis never blocks) the client waits: it is queued on each
//! of its keys, first come first served. A write command (or EXEC, once it has run) that
//! touched a waited key marks it ready, and before the next command runs, under the same
//! lock, [`serve`] pops for the waiters in their order and hands each its reply. What was
//! popped is what replicates (LPOP, LMOVE, ZPOPMIN ... as the served command would have
//! done), never the blocking command. A timeout answers the null reply; a client that goes
//! away while waiting is taken off every queue.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::lists::{mpop_args, pop_n, side as lr_side};
use super::{Ctx, SYNTAX};
use crate::keyspace::Object;
use crate::resp::Reply;
use crate::server::Server;
use crate::tri;

/// What a blocked client waits to do.
#[derive(Debug, Clone)]
pub enum Op {
    /// BLPOP / BRPOP.
    Pop { front: bool },
    /// BLMPOP.
    MPop { front: bool, count: usize },
    /// BLMOVE / BRPOPLPUSH: onto `dst`.
    Move { dst: Bytes, from_left: bool, to_left: bool },
    /// BZPOPMIN / BZPOPMAX.
    ZPop { max: bool },
    /// BZMPOP.
    ZMPop { max: bool, count: usize },
}

impl Op {
    /// Whether `o` is what this op pops from (a list, or a sorted set).
    fn takes(&self, o: &Object) -> bool {
        match self {
            Op::ZPop { .. } | Op::ZMPop { .. } => matches!(o, Object::ZSet(_)),
            _ => matches!(o, Object::List(_)),
        }
    }

    /// The reply when the wait ends with nothing: the null array, for BLMOVE too (as
    /// redis-server 7.0 answers).
    fn timed_out(&self) -> Reply {
        Reply::NilArray
    }
}

struct Waiter {
    client: u64,
    db: usize,
    keys: Vec<Bytes>,
    op: Op,
    tx: oneshot::Sender<Reply>,
}

/// The blocked clients of a server, in its state.
#[derive(Default)]
pub struct Blocking {
    waiters: HashMap<u64, Waiter>,
    /// Waiter ids per (db, key), in arrival order.
    queues: HashMap<(usize, Bytes), VecDeque<u64>>,
    /// Waited keys a write touched since the last [`serve`].
    ready: Vec<(usize, Bytes)>,
    next: u64,
}

impl Blocking {
    /// The ids of the clients blocked now.
    pub fn clients(&self) -> std::collections::HashSet<u64> {
        self.waiters.values().map(|w| w.client).collect()
    }

    /// Clients blocked now (INFO's blocked_clients).
    pub fn len(&self) -> usize {
        self.waiters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiters.is_empty()
    }

    /// Marks `key` ready if someone waits on it (a write touched it).
    pub fn touched(&mut self, db: usize, key: &[u8]) {
        if self.waiters.is_empty() {
            return;
        }
        let k = (db, Bytes::copy_from_slice(key));
        if self.queues.contains_key(&k) && !self.ready.contains(&k) {
            self.ready.push(k);
        }
    }

    /// Marks every waited key of database `db` ready (SWAPDB brought other keys in).
    pub fn touched_db(&mut self, db: usize) {
        let keys: Vec<(usize, Bytes)> = self.queues.keys().filter(|(d, _)| *d == db).cloned().collect();
        for k in keys {
            if !self.ready.contains(&k) {
                self.ready.push(k);
            }
        }
    }

    /// Whether keys are ready to be served.
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    fn add(&mut self, w: Waiter) -> u64 {
        self.next += 1;
        let id = self.next;
        for key in &w.keys {
            let queue = self.queues.entry((w.db, key.clone())).or_default();
            if !queue.contains(&id) {
                queue.push_back(id);
            }
        }
        self.waiters.insert(id, w);
        id
    }

    fn remove(&mut self, id: u64) -> Option<Waiter> {
        let w = self.waiters.remove(&id)?;
        for key in &w.keys {
            let k = (w.db, key.clone());
            if let Some(queue) = self.queues.get_mut(&k) {
                queue.retain(|&x| x != id);
                if queue.is_empty() {
                    self.queues.remove(&k);
                }
            }
        }
        Some(w)
    }

    /// The waiter of client `client`, if it is blocked.
    fn of_client(&self, client: u64) -> Option<u64> {
        self.waiters.iter().find(|(_, w)| w.client == client).map(|(&id, _)| id)
    }

    /// Answers every blocked client `reply` (a primary turned replica: Redis's
    /// disconnectAllBlockedClients), leaving none blocked.
    pub fn unblock_all(&mut self, reply: &Reply) {
        self.queues.clear();
        self.ready.clear();
        for (_, w) in self.waiters.drain() {
            let _ = w.tx.send(reply.clone());
        }
    }

    /// Whether client `client` is blocked (CLIENT LIST's `b` flag).
    pub fn is_blocked(&self, client: u64) -> bool {
        self.of_client(client).is_some()
    }
}

/// Redis's timeout argument: seconds, fractional allowed, 0 for ever.
fn parse_timeout(arg: &[u8]) -> Result<Option<Duration>, Reply> {
    let t: f64 = std::str::from_utf8(arg)
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|t: &f64| !t.is_nan())
        .ok_or(Reply::err("ERR timeout is not a float or out of range"))?;
    // Redis converts to integer milliseconds first: past i64 (inf included) that is negative.
    if t < 0.0 || t * 1000.0 >= i64::MAX as f64 {
        return Err(Reply::err("ERR timeout is negative"));
    }
    let ms = (t * 1000.0).ceil() as u64;
    Ok((ms > 0).then(|| Duration::from_millis(ms)))
}

fn side(front: bool) -> &'static [u8] {
    if front {
        b"LEFT"
    } else {
        b"RIGHT"
    }
}

/// Does `op` on `key` (in the client's database) if it holds something to pop: the reply and
/// the command that replicates it. None when the key is missing or empty; WRONGTYPE when it
/// holds another type.
fn perform(ctx: &mut Ctx, key: &Bytes, op: &Op) -> Result<Option<(Reply, Vec<Bytes>)>, Reply> {
    let now = ctx.now;
    match ctx.db().get(key, now).map(|e| e.value()) {
        None => return Ok(None),
        Some(crate::keyspace::Value::Obj(o)) if op.takes(o) => {}
        Some(_) => return Err(Reply::err(super::WRONGTYPE)),
    }
    let b = |s: &[u8]| Bytes::copy_from_slice(s);
    Ok(Some(match op {
        Op::Pop { front } => {
            let mut v = pop_n(ctx, key, *front, 1)?.unwrap_or_default();
            let Some(v) = v.pop() else { return Ok(None) };
            let name = if *front { "LPOP" } else { "RPOP" };
            (
                Reply::Array(vec![Reply::Bulk(key.clone()), Reply::Bulk(v)]),
                vec![b(name.as_bytes()), key.clone()],
            )
        }
        Op::MPop { front, count } => {
            let v = pop_n(ctx, key, *front, *count)?.unwrap_or_default();
            let name = if *front { "LPOP" } else { "RPOP" };
            let propagated = vec![b(name.as_bytes()), key.clone(), b(count.to_string().as_bytes())];
            let popped = Reply::Array(v.into_iter().map(Reply::Bulk).collect());
            (Reply::Array(vec![Reply::Bulk(key.clone()), popped]), propagated)
        }
        Op::Move { dst, from_left, to_left } => {
            match ctx.db().get(dst, now).map(|e| e.value()) {
                Some(crate::keyspace::Value::Obj(Object::List(_))) | None => {}
                Some(_) => return Err(Reply::err(super::WRONGTYPE)),
            }
            let mut v = pop_n(ctx, key, *from_left, 1)?.unwrap_or_default();
            let Some(v) = v.pop() else { return Ok(None) };
            let limits = ctx.limits().list();
            let create = || Object::List(Default::default());
            if let Some(Object::List(l)) = ctx.write_obj(dst, Some(&create), |o| Some(o))? {
                l.push(*to_left, &v, &limits);
            }
            let db = ctx.client.db;
            ctx.state.blocking.touched(db, dst);
            let propagated =
                vec![b(b"LMOVE"), key.clone(), dst.clone(), b(side(*from_left)), b(side(*to_left))];
            (Reply::Bulk(v), propagated)
        }
        Op::ZPop { max } => {
            let items = super::zsets::pop(ctx, key, *max, 1)?;
            let Some((m, s)) = items.into_iter().next() else { return Ok(None) };
            let name = if *max { "ZPOPMAX" } else { "ZPOPMIN" };
            let reply =
                Reply::Array(vec![Reply::Bulk(key.clone()), Reply::Bulk(m), super::zsets::score_reply(s)]);
            (reply, vec![b(name.as_bytes()), key.clone()])
        }
        Op::ZMPop { max, count } => {
            let items = super::zsets::pop(ctx, key, *max, *count)?;
            let name = if *max { "ZPOPMAX" } else { "ZPOPMIN" };
            let pairs = items
                .into_iter()
                .map(|(m, s)| Reply::Array(vec![Reply::Bulk(m), super::zsets::score_reply(s)]))
                .collect();
            let propagated = vec![b(name.as_bytes()), key.clone(), b(count.to_string().as_bytes())];
            (Reply::Array(vec![Reply::Bulk(key.clone()), Reply::Array(pairs)]), propagated)
        }
    }))
}

/// Tries `op` on `keys` in order; else blocks the client for `timeout` (None: for ever).
fn block(ctx: &mut Ctx, keys: Vec<Bytes>, timeout: Option<Duration>, op: Op) -> Reply {
    for key in &keys {
        if let Some((reply, propagated)) = tri!(perform(ctx, key, &op)) {
            let args: Vec<&[u8]> = propagated.iter().map(|a| &a[..]).collect();
            ctx.propagate(&args);
            return reply;
        }
    }
    if ctx.client.in_exec || ctx.client.multi.is_some() {
        // Inside a transaction nothing blocks: the command answers its null at once (BLMOVE
        // a null bulk string there, as redis-server 7.0 does).
        return match op {
            Op::Move { .. } => Reply::Nil,
            _ => op.timed_out(),
        };
    }
    let (tx, rx) = oneshot::channel();
    let timed_out = op.timed_out();
    let waiter = Waiter { client: ctx.client.id, db: ctx.client.db, keys, op, tx };
    let id = ctx.state.blocking.add(waiter);
    let guard = Unblock { server: ctx.server.clone(), id };
    ctx.deferred = Some(Box::pin(async move {
        let guard = guard;
        let mut rx = rx;
        let reply = match timeout {
            None => (&mut rx).await.ok(),
            Some(t) => tokio::time::timeout(t, &mut rx).await.ok().and_then(Result::ok),
        };
        if let Some(reply) = reply {
            return reply;
        }
        // Timed out: off the queues, unless it was served meanwhile (under the lock taken
        // here, so a reply sent before it is in the channel now).
        let removed = guard.server.state().blocking.remove(guard.id).is_some();
        if removed {
            timed_out
        } else {
            rx.try_recv().unwrap_or(timed_out)
        }
    }));
    Reply::Nil
}

/// Takes a waiter off the queues when its wait is dropped (the client went away).
struct Unblock {
    server: Arc<Server>,
    id: u64,
}

impl Drop for Unblock {
    fn drop(&mut self) {
        self.server.state().blocking.remove(self.id);
    }
}

/// Serves the waiters of the keys writes made ready, in their arrival order, until no ready
/// key has both a waiter and something to pop. Each pop replicates as its non-blocking form.
pub fn serve(ctx: &mut Ctx) {
    let own_db = ctx.client.db;
    let mut budget = 1_000_000usize;
    while let Some((db, key)) = ctx.state.blocking.ready.pop() {
        loop {
            budget -= 1;
            if budget == 0 {
                break;
            }
            let Some(&id) = ctx.state.blocking.queues.get(&(db, key.clone())).and_then(|q| q.front()) else {
                break;
            };
            if ctx.state.blocking.waiters.get(&id).is_some_and(|w| w.tx.is_closed()) {
                ctx.state.blocking.remove(id);
                continue;
            }
            let op = ctx.state.blocking.waiters[&id].op.clone();
            ctx.client.db = db;
            let outcome = perform(ctx, &key, &op);
            ctx.client.db = own_db;
            let reply = match outcome {
                Ok(None) => break,
                Ok(Some((reply, propagated))) => {
                    if let Some(log) = &mut ctx.state.log {
                        log.append(db, &propagated);
                    }
                    if ctx.state.keyspace.recording() {
                        let name = super::lookup(&propagated[0]).map(|c| c.name);
                        crate::pubsub::changes(ctx.state, name, &propagated, id, ctx.now);
                    }
                    reply
                }
                Err(e) => e,
            };
            if let Some(w) = ctx.state.blocking.remove(id) {
                let _ = w.tx.send(reply);
            }
        }
    }
    ctx.client.db = own_db;
}

/// Signals the keys a write command touched, for [`serve`].
pub fn touched_keys<'a>(ctx: &mut Ctx, keys: impl Iterator<Item = &'a Bytes>) {
    let db = ctx.client.db;
    for key in keys {
        ctx.state.blocking.touched(db, key);
    }
}

fn keys_and_timeout(args: &[Bytes]) -> Result<(Vec<Bytes>, Option<Duration>), Reply> {
    let timeout = parse_timeout(&args[args.len() - 1])?;
    Ok((args[1..args.len() - 1].to_vec(), timeout))
}

pub fn blpop(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (keys, timeout) = tri!(keys_and_timeout(args));
    block(ctx, keys, timeout, Op::Pop { front: true })
}

pub fn brpop(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (keys, timeout) = tri!(keys_and_timeout(args));
    block(ctx, keys, timeout, Op::Pop { front: false })
}

pub fn blmove(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (from_left, to_left) = (tri!(lr_side(&args[3])), tri!(lr_side(&args[4])));
    let timeout = tri!(parse_timeout(&args[5]));
    block(ctx, vec![args[1].clone()], timeout, Op::Move { dst: args[2].clone(), from_left, to_left })
}

pub fn brpoplpush(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let timeout = tri!(parse_timeout(&args[3]));
    block(
        ctx,
        vec![args[1].clone()],
        timeout,
        Op::Move { dst: args[2].clone(), from_left: false, to_left: true },
    )
}

pub fn blmpop(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let timeout = tri!(parse_timeout(&args[1]));
    let m = tri!(mpop_args(args, 2));
    let keys = m.keys.to_vec();
    block(ctx, keys, timeout, Op::MPop { front: m.front, count: m.count })
}

pub fn bzpopmin(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (keys, timeout) = tri!(keys_and_timeout(args));
    block(ctx, keys, timeout, Op::ZPop { max: false })
}

pub fn bzpopmax(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (keys, timeout) = tri!(keys_and_timeout(args));
    block(ctx, keys, timeout, Op::ZPop { max: true })
}

/// BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]
pub fn bzmpop(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let timeout = tri!(parse_timeout(&args[1]));
    let (keys, max, count) = tri!(super::zsets::zmpop_args(args, 2));
    let keys = keys.to_vec();
    block(ctx, keys, timeout, Op::ZMPop { max, count })
}

/// CLIENT UNBLOCK client-id [TIMEOUT|ERROR]
pub fn client_unblock(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let Ok(client) = super::int_arg(&args[2]) else {
        return Reply::err("ERR value is not an integer or out of range");
    };
    let error = match args.get(3) {
        None => false,
        Some(a) if a.eq_ignore_ascii_case(b"timeout") => false,
        Some(a) if a.eq_ignore_ascii_case(b"error") => true,
        Some(_) => return Reply::err("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"),
    };
    if args.len() > 4 {
        return Reply::err(SYNTAX);
    }
    let Some(id) = ctx.state.blocking.of_client(client as u64) else { return Reply::Int(0) };
    let Some(w) = ctx.state.blocking.remove(id) else { return Reply::Int(0) };
    let reply =
        if error { Reply::err("UNBLOCKED client unblocked via CLIENT UNBLOCK") } else { w.op.timed_out() };
    let _ = w.tx.send(reply);
    Reply::Int(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_as_redis_reads_them() {
        assert_eq!(parse_timeout(b"0").unwrap(), None);
        assert_eq!(parse_timeout(b"0.1").unwrap(), Some(Duration::from_millis(100)));
        assert_eq!(parse_timeout(b"2").unwrap(), Some(Duration::from_secs(2)));
        assert_eq!(parse_timeout(b"0.0001").unwrap(), Some(Duration::from_millis(1)));
        assert!(parse_timeout(b"-1").is_err());
        assert!(parse_timeout(b"abc").is_err());
        assert!(parse_timeout(b"inf").is_err());
        assert!(parse_timeout(b"nan").is_err());
    }

    #[test]
    fn queues_keep_arrival_order_and_forget_the_gone() {
        let mut b = Blocking::default();
        let w = |client, keys: &[&str]| Waiter {
            client,
            db: 0,
            keys: keys.iter().map(|k| Bytes::copy_from_slice(k.as_bytes())).collect(),
            op: Op::Pop { front: true },
            tx: oneshot::channel().0,
        };
        let a = b.add(w(1, &["k", "j"]));
        let c = b.add(w(2, &["k"]));
        assert_eq!(b.queues[&(0, Bytes::from_static(b"k"))], [a, c]);
        b.touched(0, b"k");
        b.touched(0, b"k");
        b.touched(0, b"nobody");
        assert_eq!(b.ready.len(), 1);
        assert_eq!(b.of_client(2), Some(c));
        b.remove(a);
        assert_eq!(b.queues[&(0, Bytes::from_static(b"k"))], [c]);
        assert!(!b.queues.contains_key(&(0, Bytes::from_static(b"j"))));
        b.remove(c);
        assert!(b.is_empty() && b.queues.is_empty());
    }
}
