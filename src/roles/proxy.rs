//! The proxy role: one Redis endpoint for the whole cluster. It follows the map from info,
//! routes each command to the shard that owns its keys (see proxy/router.rs), and to cluster-
//! aware clients presents itself as a one-node cluster owning every slot.

use std::io;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use super::agent::follow_topology;
use crate::config::Config;
use crate::proxy::backend::Pool;
use crate::proxy::local::Locals;
use crate::proxy::router::{ReadFrom, Router};
use crate::proxy::Proxy;
use crate::server::{random_hex40, serve, AbortOnDrop, Server};
use crate::topology::map::{NodeAddr, Shard};
use crate::topology::view::{ClusterView, NodeKind};
use crate::topology::Topology;

/// Backend connections per shard node, shared by every client. One, as twemproxy's default:
/// a shard runs its commands one at a time under its lock anyway, and every client's request
/// in a round can leave in one write (benches/load.sh, -P 1 GET through eight processes:
/// 0.6 of twemproxy with four connections and no yield in the writer, 1.1 with one and it).
const CONNECTIONS_PER_NODE: usize = 1;

/// The map the proxy shows clients: itself, owning every slot.
fn as_one_node(me: &NodeAddr, real: &Topology) -> Topology {
    Topology {
        epoch: real.epoch,
        ok: real.ok,
        shards: vec![Shard { primary: me.clone(), index: 0, slots: (0, 16383), replicas: vec![] }],
    }
}

pub async fn run(config: Config, listener: TcpListener, shutdown: watch::Receiver<bool>) -> io::Result<()> {
    run_in(config, listener, shutdown, None).await
}

/// [`run`], calling the shards registered in `locals` (those of this process) directly.
pub async fn run_in(
    config: Config,
    listener: TcpListener,
    shutdown: watch::Receiver<bool>,
    locals: Option<Arc<Locals>>,
) -> io::Result<()> {
    let mut config = config;
    let Some(info) = config.info_addr().map(str::to_string) else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "--role proxy needs --info HOST:PORT"));
    };
    let secret = super::secret::for_member(&mut config, &info)?;
    let read_from = ReadFrom::parse(config.get("read-from")).unwrap_or(ReadFrom::Replica);
    let addr = listener.local_addr()?;
    let me = NodeAddr {
        id: random_hex40(),
        host: config.announce_host().to_string(),
        port: addr.port(),
        ..Default::default()
    };
    let router = Router::new(Pool::new(CONNECTIONS_PER_NODE, Some(secret.clone())), locals);
    let server = Arc::new(Server::new(config, addr));
    {
        let mut view = ClusterView::new(me.id.clone(), NodeKind::Write);
        view.update(as_one_node(&me, &Topology::default()));
        server.state().cluster = Some(view);
    }
    // Keys its tracking clients read stay remembered (see Tracking::keep).
    server.state().tracking.keep = true;
    let (feeds, _feeds_task) =
        crate::proxy::feed::Feeds::start(server.clone(), router.clone(), Some(secret.clone()));
    let _ = server.proxy.set(Arc::new(Proxy {
        router: router.clone(),
        read_from,
        rest_to_shard: false,
        feeds: Some(feeds),
        blocked: Default::default(),
    }));
    let _watcher = {
        let server = server.clone();
        AbortOnDrop(tokio::spawn(follow_topology(info, secret, move |t| {
            let shown = as_one_node(&me, &t);
            router.set_topology(t);
            let epoch = shown.epoch;
            if let Some(view) = &mut server.state().cluster {
                view.update(shown);
            }
            server.epoch.send_replace(epoch);
        })))
    };
    serve("proxy", server, listener, shutdown).await;
    Ok(())
}
