//! The write role. Without `--info` it is a standalone server that owns every slot.

use std::io;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::server::{serve, Server};

/// Serves clients on `listener` until `shutdown` turns true or its sender is dropped.
pub async fn run(config: Config, listener: TcpListener, shutdown: watch::Receiver<bool>) -> io::Result<()> {
    let server = Arc::new(Server::new(config, listener.local_addr()?));
    serve(server, listener, shutdown).await;
    Ok(())
}
