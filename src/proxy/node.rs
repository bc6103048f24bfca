//! One interface to a shard node, whether it runs in this process (called under its lock)
//! or across TCP (a shared, pipelined connection): [`Backend`]. The router picks nodes from
//! the map and asks them the same way; what comes back is a [`Sent`] either way.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::oneshot;

use super::backend::Progress;
use super::backend::{Answer, Answered, Dedicated, Failure, Pool};
use super::local::{Called, LocalSession};
use super::router::{answer, Got, Req, REQUEST_TIMEOUT};

/// A shard node as the router reaches it.
pub trait Backend: Send + Sync {
    /// Its address, as the map and error replies name it.
    fn addr(&self) -> &Arc<str>;

    /// Whether it runs in this process (answers at once, takes arguments, not bytes).
    fn in_process(&self) -> bool;

    /// Sends one command, to run once the node's replication offset has reached `min`
    /// (0: at once).
    fn send(&self, req: Req, what: &What, min: u64) -> Sent;

    /// Sends commands to run back to back with nothing of another caller's between them (a
    /// transaction); the answer is the last one's.
    fn send_all(&self, req: Req, commands: &[&[Bytes]]) -> Sent;

    /// A link to this node for one caller alone (WATCH ... EXEC, WAIT).
    fn own(&self) -> Link;
}

/// A node across TCP, on the pool's shared connections.
pub struct Tcp {
    pub addr: Arc<str>,
    pub pool: Arc<Pool>,
}

impl Backend for Tcp {
    fn addr(&self) -> &Arc<str> {
        &self.addr
    }

    fn in_process(&self) -> bool {
        false
    }

    fn send(&self, req: Req, what: &What, min: u64) -> Sent {
        let encoded;
        let bytes = match what {
            What::Encoded(bytes) => bytes,
            What::Args(args) => {
                encoded = encode(args);
                &encoded
            }
        };
        // EDIS.AT only when this connection has not already seen the node at `min` or past.
        let sent = self.pool.send_with(&self.addr, req.lane, 1, req.now, |known| {
            if min > known {
                at_from_encoded(min, bytes)
            } else {
                bytes.clone()
            }
        });
        Sent::Remote(sent.into())
    }

    fn send_all(&self, req: Req, commands: &[&[Bytes]]) -> Sent {
        let bytes = encode_all(commands);
        Sent::Remote(self.pool.send_with(&self.addr, req.lane, commands.len(), req.now, |_| bytes).into())
    }

    fn own(&self) -> Link {
        Link::Tcp(self.pool.dedicated(&self.addr))
    }
}

/// A connection of one caller's own to one node.
pub enum Link {
    InProcess(LocalSession),
    Tcp(Dedicated),
}

impl Link {
    /// Whether requests can still go over it.
    pub fn open(&self) -> bool {
        match self {
            Link::InProcess(_) => true,
            Link::Tcp(conn) => conn.open(),
        }
    }

    /// Sends commands to run back to back; the answer is the last one's.
    pub fn send(&mut self, commands: &[&[Bytes]], now: u64) -> Sent {
        match self {
            Link::InProcess(session) => Sent::Local(session.run(commands, now)),
            Link::Tcp(conn) => Sent::Remote(conn.send(encode_all(commands), commands.len()).into()),
        }
    }
}

/// A request sent over TCP: its reply, and its connection's progress (the reply timeout
/// counts from the last progress, see [`answer`]).
pub struct Remote {
    rx: oneshot::Receiver<Answer>,
    progress: Option<Progress>,
}

impl From<(oneshot::Receiver<Answer>, Option<Progress>)> for Remote {
    fn from((rx, progress): (oneshot::Receiver<Answer>, Option<Progress>)) -> Remote {
        Remote { rx, progress }
    }
}

/// A request on its way to a node.
pub enum Sent {
    Local(Called),
    Remote(Remote),
    /// Already answered (a reply awaited before the rest of the routing went on).
    Done(Result<Got, Failure>),
}

impl Sent {
    pub async fn settle(self) -> Result<Got, Failure> {
        self.settle_within(Some(REQUEST_TIMEOUT)).await
    }

    pub async fn settle_within(self, limit: Option<Duration>) -> Result<Got, Failure> {
        match self {
            Sent::Local(Called::Gone) => Err(Failure::not_sent("stopped")),
            Sent::Local(Called::Behind(_)) => Err(Failure::not_sent("behind")),
            Sent::Local(Called::Now(r, offset)) => Ok(Got::Reply(r, Some(offset))),
            Sent::Local(Called::AfterFsync(r, server, to, offset)) => {
                crate::server::session::durable_to(&server, to).await;
                Ok(Got::Reply(r, Some(offset)))
            }
            Sent::Local(Called::Later(later)) => Ok(Got::Reply(later.await, None)),
            Sent::Remote(Remote { rx, progress }) => answer(rx, limit, progress.as_ref())
                .await
                .map(|Answered { frame, bytes, offset }| Got::Frame(frame, bytes, offset)),
            Sent::Done(result) => result,
        }
    }
}

/// A command encoded as RESP.
pub fn encode(args: &[Bytes]) -> Bytes {
    let mut out = BytesMut::new();
    crate::resp::client::encode_command(args, &mut out);
    out.freeze()
}

/// `EDIS.AT min <command>` from the command's encoding: the command, to run once the node
/// reached `min`. Only the array header changes; the arguments' bytes are copied as they are.
pub fn at_from_encoded(min: u64, encoded: &[u8]) -> Bytes {
    let header_end = encoded.iter().position(|&b| b == b'\n').map_or(0, |p| p + 1);
    let argc: usize = std::str::from_utf8(&encoded[1..header_end.saturating_sub(2).max(1)])
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let min = itoa::Buffer::new().format(min).to_string();
    let mut out = BytesMut::with_capacity(encoded.len() + 32);
    out.put_u8(b'*');
    out.put_slice(itoa::Buffer::new().format(argc + 2).as_bytes());
    out.put_slice(b"\r\n$7\r\nEDIS.AT\r\n$");
    out.put_slice(itoa::Buffer::new().format(min.len()).as_bytes());
    out.put_slice(b"\r\n");
    out.put_slice(min.as_bytes());
    out.put_slice(b"\r\n");
    out.put_slice(&encoded[header_end..]);
    out.freeze()
}

/// What a request re-sends when it tries another node: the arguments (nodes of this
/// process), or the command's encoding (over TCP).
pub enum What<'a> {
    Args(std::borrow::Cow<'a, [Bytes]>),
    Encoded(Bytes),
}

impl<'a> What<'a> {
    pub fn args(args: &'a [Bytes]) -> What<'a> {
        What::Args(std::borrow::Cow::Borrowed(args))
    }

    /// The same, owned, for a reply future to keep.
    pub fn owned(&self) -> What<'static> {
        match self {
            What::Args(args) => What::Args(std::borrow::Cow::Owned(args.to_vec())),
            What::Encoded(b) => What::Encoded(b.clone()),
        }
    }
}

/// Commands encoded back to back, as one request.
fn encode_all(commands: &[&[Bytes]]) -> Bytes {
    let mut out = BytesMut::new();
    for c in commands {
        crate::resp::client::encode_command(c, &mut out);
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edis_at_wraps_an_encoded_command() {
        let get = encode(&[Bytes::from_static(b"GET"), Bytes::from_static(b"k")]);
        assert_eq!(
            &at_from_encoded(1234, &get)[..],
            b"*4\r\n$7\r\nEDIS.AT\r\n$4\r\n1234\r\n$3\r\nGET\r\n$1\r\nk\r\n"
        );
    }
}
