//! The info role: the registry. It speaks RESP like every role; shards register and
//! heartbeat with EDIS.* commands, and anyone reads the map with CLUSTER SLOTS/NODES/... or
//! waits for changes with EDIS.TOPOLOGY WAIT. A ticker marks silent shards failed.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::command::cluster::tick_registry;
use crate::config::Config;
use crate::keyspace::now_ms;
use crate::server::{serve, AbortOnDrop, Server};
use crate::topology::registry::Registry;
use crate::topology::view::{ClusterView, NodeKind};

/// The file in info's `--dir` that keeps the map across restarts.
pub const MAP_FILE: &str = "cluster.map";

/// How often the failure detector looks: a fraction of the node timeout, at most 100 ms.
fn tick_period(node_timeout_ms: u64) -> Duration {
    Duration::from_millis((node_timeout_ms / 10).clamp(5, 100))
}

pub async fn run(config: Config, listener: TcpListener, shutdown: watch::Receiver<bool>) -> io::Result<()> {
    let mut config = config;
    super::secret::for_info(&mut config)?;
    let id = super::agent::node_id(&config.dir())?;
    let (writes, timeout) = (config.write_shards(), config.node_timeout_ms());
    // The map a previous run kept: every placement, slot range and epoch as they were.
    let file = config.dir().join(MAP_FILE);
    let mut registry = match std::fs::read_to_string(&file) {
        Ok(text) => Registry::from_text(&text, writes, timeout, now_ms())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", file.display())))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Registry::new(writes, timeout),
        Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", file.display()))),
    };
    if registry.epoch() > 0 {
        tracing::info!(file = %file.display(), epoch = registry.epoch(), "loaded the cluster map");
    }
    registry.file = Some(file);
    let server = Arc::new(Server::new(config, listener.local_addr()?));
    {
        let mut state = server.state();
        let mut view = ClusterView::new(id, NodeKind::Info);
        view.update(registry.topology());
        server.epoch.send_replace(registry.epoch());
        state.registry = Some(registry);
        state.cluster = Some(view);
    }
    let ticker = {
        let server = server.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(tick_period(timeout));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                tick_registry(&server, now_ms());
            }
        })
    };
    let _ticker = AbortOnDrop(ticker);
    tracing::info!(write_shards = writes, node_timeout_ms = timeout, "info role: waiting for shards");
    serve("info", server, listener, shutdown).await;
    Ok(())
}
