//! MONITOR through the proxy: the commands every node runs, in one stream. A client in
//! MONITOR gets a connection in MONITOR to each node of the map; their lines go to the
//! client's mailbox as they come, until it leaves MONITOR (RESET) or goes away.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::Proxy;
use crate::resp::client::encode_command;
use crate::server::ClientHandle;

/// Starts monitoring every node for `client`.
pub fn start(proxy: &Arc<Proxy>, client: Arc<ClientHandle>) {
    let topology = proxy.router.topology();
    let secret = proxy.router.pool.secret().map(str::to_string);
    for shard in &topology.shards {
        for node in std::iter::once(&shard.primary).chain(&shard.replicas) {
            tokio::spawn(watch(node.addr(), secret.clone(), client.clone()));
        }
    }
}

async fn watch(addr: String, secret: Option<String>, client: Arc<ClientHandle>) {
    let Ok(Ok(mut stream)) = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(&addr)).await
    else {
        return;
    };
    let mut hello = BytesMut::new();
    if let Some(s) = &secret {
        encode_command(&["AUTH", crate::roles::secret::MEMBER_USER, s], &mut hello);
    }
    encode_command(&["MONITOR"], &mut hello);
    if stream.write_all(&hello).await.is_err() {
        return;
    }
    let mut lines = BufReader::new(stream);
    let mut line = Vec::new();
    // The replies to AUTH and MONITOR are not the client's.
    let skip = if secret.is_some() { 2 } else { 1 };
    let mut seen = 0;
    let mut check = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            n = lines.read_until(b'\n', &mut line) => {
                if !matches!(n, Ok(n) if n > 0) {
                    return;
                }
                seen += 1;
                if seen > skip {
                    client.mailbox.put(|out| out.extend_from_slice(&line));
                }
                line.clear();
            }
            _ = check.tick() => {}
        }
        if client.mailbox.is_closed() || !client.monitor.load(Ordering::Relaxed) {
            return;
        }
    }
}
