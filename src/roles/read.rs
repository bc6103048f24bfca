//! The read role. For now it joins the cluster through info (registration, heartbeats, the
//! map) and redirects keyed commands to its write shard with MOVED, as a Redis Cluster
//! replica does for a connection that has not asked for READONLY; replicating the data comes
//! with the replication stream.

use std::io;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use super::agent::{node_id, Agent};
use crate::config::Config;
use crate::server::{serve, Server};
use crate::topology::view::NodeKind;

pub async fn run(config: Config, listener: TcpListener, shutdown: watch::Receiver<bool>) -> io::Result<()> {
    let Some(info) = config.info_addr().map(str::to_string) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--role read needs --info HOST:PORT (a plain replica with --replica-of alone comes with replication)",
        ));
    };
    let id = node_id(&config.dir())?;
    let replica_of = config.replica_of();
    let server = Arc::new(Server::new(config, listener.local_addr()?));
    let _agent = Agent::start(server.clone(), NodeKind::Read, id, info, replica_of);
    serve(server, listener, shutdown).await;
    Ok(())
}
