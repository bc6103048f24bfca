//! MULTI / EXEC / DISCARD / WATCH / UNWATCH. Queuing happens in dispatch; EXEC runs the
//! queue inside the batch's lock, so a transaction is atomic like in Redis.

use bytes::Bytes;

use super::{dispatch, Ctx, Multi};
use crate::resp::Reply;

pub fn multi(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    if ctx.client.multi.is_some() {
        return Reply::err("ERR MULTI calls can not be nested");
    }
    ctx.client.multi = Some(Multi::default());
    Reply::Ok
}

/// Drops the queued transaction and every watch.
pub fn discard_state(ctx: &mut Ctx) {
    ctx.client.multi = None;
    unwatch_all(ctx);
}

fn unwatch_all(ctx: &mut Ctx) {
    for (db, key, _) in ctx.client.watched.drain(..) {
        ctx.state.keyspace.dbs[db].unwatch(&key);
    }
}

pub fn discard(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    if ctx.client.multi.is_none() {
        return Reply::err("ERR DISCARD without MULTI");
    }
    discard_state(ctx);
    Reply::Ok
}

pub fn exec(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    let Some(multi) = ctx.client.multi.take() else {
        return Reply::err("ERR EXEC without MULTI");
    };
    if multi.aborted {
        unwatch_all(ctx);
        return Reply::err("EXECABORT Transaction discarded because of previous errors.");
    }
    let now = ctx.now;
    let dbs = &ctx.state.keyspace.dbs;
    let changed = ctx.client.watched.iter().any(|(db, key, v)| dbs[*db].watch_changed(key, *v, now));
    unwatch_all(ctx);
    if changed {
        return Reply::NilArray;
    }
    if let Some(log) = &mut ctx.state.log {
        log.begin_exec();
    }
    ctx.client.in_exec = true;
    let replies = multi.queued.iter().map(|args| dispatch(ctx, args)).collect();
    ctx.client.in_exec = false;
    if let Some(log) = &mut ctx.state.log {
        log.end_exec();
    }
    Reply::Array(replies)
}

pub fn watch(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if ctx.client.multi.is_some() {
        return Reply::err("ERR WATCH inside MULTI is not allowed");
    }
    let db_index = ctx.client.db;
    for key in &args[1..] {
        if ctx.client.watched.iter().any(|(d, k, _)| *d == db_index && k == key) {
            continue;
        }
        let key = Bytes::copy_from_slice(key);
        let version = ctx.state.keyspace.dbs[db_index].watch(&key);
        ctx.client.watched.push((db_index, key, version));
    }
    Reply::Ok
}

pub fn unwatch(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    unwatch_all(ctx);
    Reply::Ok
}
