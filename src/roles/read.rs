//! The read role: a replica. With `--info` it joins the cluster as a read shard, follows the
//! write shard info assigns it (or the one `--replica-of` names) and serves reads of that
//! shard's slots; without `--info`, `--replica-of HOST:PORT` makes it a plain replica of
//! that server (a rust-edis write shard or any Redis primary). Writes get READONLY.

use std::io;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use super::agent::{node_id, Agent};
use crate::config::Config;
use crate::proxy::local::Locals;
use crate::replication::replica::{self, Primary};
use crate::server::{serve, Server};
use crate::topology::view::NodeKind;

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
    let info = config.info_addr().map(str::to_string);
    let replica_of = config.replica_of();
    if info.is_none() && replica_of.is_none() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--role read needs --info HOST:PORT (a read shard of a cluster) or --replica-of HOST:PORT (a plain replica)",
        ));
    }
    let mut config = config;
    let id = match &info {
        Some(info) => {
            super::secret::for_member(&mut config, info)?;
            Some(node_id(&config.dir())?)
        }
        None => {
            // A plain replica given a secret authenticates to its primary as a member.
            super::secret::if_configured(&mut config)?;
            None
        }
    };
    let dir = config.dir();
    let server = Arc::new(Server::new(config, listener.local_addr()?));
    let _local = match (&locals, &id) {
        (Some(locals), Some(id)) => Some(locals.add(id, &server)),
        _ => None,
    };
    let (_agent, link) = match (info, id) {
        (Some(info), Some(id)) => {
            let agent = Agent::start(server.clone(), NodeKind::Read, id, info, replica_of, dir.clone())?;
            (Some(agent), replica::start(server.clone(), super::failover::primary_from_map(), &dir)?)
        }
        _ => {
            let (host, port) = replica_of.expect("checked above");
            let fixed = Primary { host, port, id: None };
            (None, replica::start(server.clone(), Box::new(move |_: &Server| Some(fixed.clone())), &dir)?)
        }
    };
    serve("read shard", server.clone(), listener, shutdown).await;
    // Stop following first, so the saved position matches the saved data.
    drop(link);
    super::failover::clean_stop(&server, &dir).await;
    Ok(())
}
