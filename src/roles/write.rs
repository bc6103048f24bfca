//! The write role. Without `--info` it is a standalone server that owns every slot. With
//! `--info` it registers as a write shard, serves the keys of the slots info assigns it, and
//! answers the others with MOVED. With `--appendonly yes` it keeps an AOF in `--dir`; at
//! start it loads the AOF (or else the RDB snapshot) and continues the replication stream
//! where the files left it.

use std::io;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use super::agent::{node_id, Agent};
use crate::config::Config;
use crate::persistence::{self, Fsync};
use crate::proxy::local::Locals;
use crate::replication::log::WriteLog;
use crate::replication::replica;
use crate::server::{serve, Server};
use crate::topology::view::NodeKind;

/// Serves clients on `listener` until `shutdown` turns true or its sender is dropped.
pub async fn run(config: Config, listener: TcpListener, shutdown: watch::Receiver<bool>) -> io::Result<()> {
    run_in(config, listener, shutdown, None).await
}

/// [`run`], registering the shard in `locals` so a proxy in this process calls it directly.
pub async fn run_in(
    config: Config,
    listener: TcpListener,
    shutdown: watch::Receiver<bool>,
    locals: Option<Arc<Locals>>,
) -> io::Result<()> {
    let mut config = config;
    let cluster = match config.info_addr().map(str::to_string) {
        Some(info) => {
            super::secret::for_member(&mut config, &info)?;
            Some((info, node_id(&config.dir())?))
        }
        None => {
            super::secret::if_configured(&mut config)?;
            None
        }
    };
    let dir = config.dir();
    let appendonly = config.get("appendonly") == "yes";
    let aof_path = dir.join(config.get("appendfilename"));
    let rdb_path = dir.join(config.get("dbfilename"));
    let policy = Fsync::parse(config.get("appendfsync"));
    let server = Arc::new(Server::new(config, listener.local_addr()?));

    // The files on disk, if any: the AOF when appendonly is on, else the snapshot.
    std::fs::create_dir_all(&dir)?;
    // A node demoted by a failover and stopped cleanly saved as a read shard does: that is
    // its newest dataset (and position) unless a snapshot was written after it.
    let as_replica = dir.join(replica::SAVED);
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let from_replica =
        !appendonly && modified(&as_replica).is_some_and(|r| modified(&rdb_path).is_none_or(|d| r >= d));
    let snapshot = if from_replica { &as_replica } else { &rdb_path };
    let loaded = persistence::load(appendonly.then_some(aof_path.as_path()), Some(snapshot), &server)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    // Used once, as a read shard uses it.
    let _ = std::fs::remove_file(&as_replica);
    let restored = loaded.position.is_some();
    {
        let mut state = server.state();
        state.keyspace = loaded.keyspace;
        state.dirty_at_save = state.keyspace.dirty();
        state.refresh_recording();
        if appendonly {
            // The log exists from the start: it is what the AOF is made of.
            let (replid, base) = match loaded.position {
                Some(p) => (p.replid, p.offset),
                None => (server.run_id.clone(), 0),
            };
            let mut log = WriteLog::configured(replid, base, &state.config);
            log.backlog.append(&loaded.tail);
            if restored {
                log.shift_replid(server.run_id.clone());
            }
            log.aof_buf = Some(Vec::new());
            state.keyspace.set_log_expired(true);
            state.log = Some(log);
        } else {
            state.restored = loaded.position;
        }
    }
    let writer = if appendonly {
        // A restarted primary serves a new replication history (see WriteLog::shift_replid):
        // its AOF starts over from a snapshot naming it, or the next restart would read the
        // new history's commands as the old one's.
        let aof = persistence::start_writer(&server, aof_path, policy, restored)?;
        let _ = server.aof.set(aof.clone());
        Some(aof)
    } else {
        None
    };

    let _local = match (&locals, &cluster) {
        (Some(locals), Some((_, id))) => Some(locals.add(id, &server)),
        _ => None,
    };
    let (_agent, _link) = match cluster {
        Some((info, id)) => (
            Some(Agent::start(server.clone(), NodeKind::Write, id, info, None, dir.clone())?),
            // Idle unless a failover makes this node a read shard.
            Some(replica::standby(server.clone(), super::failover::primary_from_map(), &dir)),
        ),
        None => (None, None),
    };
    serve("write shard", server.clone(), listener, shutdown).await;
    drop(_link);
    super::failover::clean_stop(&server, &dir).await;
    drop(writer);
    Ok(())
}
