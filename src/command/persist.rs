//! SAVE, BGSAVE, LASTSAVE, BGREWRITEAOF.

use bytes::Bytes;

use super::Ctx;
use crate::keyspace::now_ms;
use crate::persistence;
use crate::resp::Reply;

/// Where SAVE and BGSAVE write: `dbfilename` in `dir`.
fn rdb_path(config: &crate::config::Config) -> std::path::PathBuf {
    config.dir().join(config.get("dbfilename"))
}

pub fn save(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    // The state lock is held: like Redis's SAVE, this blocks every client while it writes.
    match save_state(ctx.state) {
        Ok(()) => Reply::Ok,
        Err(e) => Reply::error(format!("ERR saving the snapshot failed: {e}")),
    }
}

pub fn bgsave(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    if ctx.state.bgsave_in_progress {
        return Reply::err("ERR Background save already in progress");
    }
    bgsave_state(ctx.server, ctx.state, "BGSAVE");
    Reply::simple("Background saving started")
}

/// Starts a background save of `state` (serialised now, under the lock, so consistent;
/// written to disk on a blocking thread).
pub fn bgsave_state(
    server: &std::sync::Arc<crate::server::Server>,
    state: &mut crate::server::State,
    why: &str,
) {
    let data = persistence::snapshot_of(state, now_ms());
    let path = rdb_path(&state.config);
    let server = server.clone();
    let dirty = state.keyspace.dirty();
    state.bgsave_in_progress = true;
    state.bgsave_tried = now_ms() / 1000;
    tracing::info!(reason = why, "background saving started");
    tokio::task::spawn_blocking(move || {
        let done = persistence::write_atomically(&path, &data);
        let mut state = server.state();
        state.bgsave_in_progress = false;
        state.bgsave_failed = done.is_err();
        match done {
            Ok(()) => {
                state.last_save = now_ms() / 1000;
                state.dirty_at_save = dirty;
            }
            Err(e) => tracing::warn!(file = %path.display(), error = %e, "background save failed"),
        }
    });
}

/// Seconds a save point waits after a failed background save before it tries again (Redis's
/// CONFIG_BGSAVE_RETRY_DELAY): a disk that refuses every save is not sent the whole dataset
/// every cron tick.
pub const BGSAVE_RETRY_DELAY: u64 = 5;

/// Whether one of the `save` points ("seconds changes" pairs) is reached: that many
/// changes since the last save, more than that many seconds after it (Redis's test).
pub fn save_point_reached(state: &crate::server::State, now_secs: u64) -> bool {
    let changes = state.keyspace.dirty().saturating_sub(state.dirty_at_save);
    if changes == 0 {
        return false;
    }
    let elapsed = now_secs.saturating_sub(state.last_save);
    let points: Vec<u64> =
        state.config.get("save").split_whitespace().filter_map(|n| n.parse().ok()).collect();
    points.chunks_exact(2).any(|p| elapsed > p[0] && changes >= p[1])
}

/// Saves `state` now (a clean stop with save points set); the error names the file.
pub fn save_state(state: &mut crate::server::State) -> Result<(), String> {
    let data = persistence::snapshot_of(state, now_ms());
    let path = rdb_path(&state.config);
    persistence::write_atomically(&path, &data).map_err(|e| format!("{}: {e}", path.display()))?;
    state.last_save = now_ms() / 1000;
    state.dirty_at_save = state.keyspace.dirty();
    // A save that worked clears a failed background save's status, as in Redis.
    state.bgsave_failed = false;
    Ok(())
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
