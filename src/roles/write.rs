//! The write role. Without `--info` it is a standalone server that owns every slot. With
//! `--info` it registers as a write shard, serves the keys of the slots info assigns it, and
//! answers the others with MOVED.

use std::io;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use super::agent::{node_id, Agent};
use crate::config::Config;
use crate::server::{serve, Server};
use crate::topology::view::NodeKind;

/// Serves clients on `listener` until `shutdown` turns true or its sender is dropped.
pub async fn run(config: Config, listener: TcpListener, shutdown: watch::Receiver<bool>) -> io::Result<()> {
    let cluster = match config.info_addr() {
        Some(info) => Some((info.to_string(), node_id(&config.dir())?)),
        None => None,
    };
    let server = Arc::new(Server::new(config, listener.local_addr()?));
    let _agent = cluster.map(|(info, id)| Agent::start(server.clone(), NodeKind::Write, id, info, None));
    serve(server, listener, shutdown).await;
    Ok(())
}
