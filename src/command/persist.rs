//! SAVE, BGSAVE, LASTSAVE, BGREWRITEAOF.

use bytes::Bytes;

use super::Ctx;
use crate::keyspace::now_ms;
use crate::persistence;
use crate::resp::Reply;

fn rdb_path(ctx: &Ctx) -> std::path::PathBuf {
    ctx.state.config.dir().join(ctx.state.config.get("dbfilename"))
}

fn saved(ctx: &mut Ctx) {
    ctx.state.last_save = now_ms() / 1000;
    ctx.state.dirty_at_save = ctx.state.keyspace.dirty();
}

/// The dataset and the stream position, as an RDB payload, from the handler's locked state.
fn snapshot(ctx: &Ctx) -> Bytes {
    persistence::snapshot_of(ctx.state, ctx.now)
}

pub fn save(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    // The state lock is held: like Redis's SAVE, this blocks every client while it writes.
    let data = snapshot(ctx);
    match persistence::write_atomically(&rdb_path(ctx), &data) {
        Ok(()) => {
            saved(ctx);
            Reply::Ok
        }
        Err(e) => Reply::error(format!("ERR saving the snapshot failed: {e}")),
    }
}

pub fn bgsave(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    // Serialised under the lock (consistent), written to disk in the background.
    let data = snapshot(ctx);
    let path = rdb_path(ctx);
    let server = ctx.server.clone();
    let dirty = ctx.state.keyspace.dirty();
    tokio::task::spawn_blocking(move || match persistence::write_atomically(&path, &data) {
        Ok(()) => {
            let mut state = server.state();
            state.last_save = now_ms() / 1000;
            state.dirty_at_save = dirty;
        }
        Err(e) => tracing::warn!(file = %path.display(), error = %e, "background save failed"),
    });
    Reply::simple("Background saving started")
}

pub fn lastsave(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    Reply::Int(ctx.state.last_save as i64)
}

pub fn bgrewriteaof(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    match ctx.server.aof.get() {
        Some(aof) => {
            aof.request_rewrite();
            Reply::simple("Background append only file rewriting started")
        }
        None => Reply::err("ERR appendonly is off: start the server with --appendonly yes to keep an AOF"),
    }
}
