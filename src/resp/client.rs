//! A small outbound RESP client: one connection, one request at a time, replies decoded by
//! redis-protocol. Shards use it to talk to info; the proxy and replication build on it.

use std::io;
use std::time::Duration;

use bytes::BytesMut;
use redis_protocol::resp2::decode::decode_bytes_mut;
use redis_protocol::resp2::types::BytesFrame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Client {
    stream: TcpStream,
    buf: BytesMut,
    out: BytesMut,
}

fn timeout_err(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("{what} timed out"))
}

/// Encodes a command as a RESP multibulk.
/// One reservation for the whole command and three copies per argument (its `$len` line,
/// its bytes, the CRLF): the write log encodes every write this way.
pub fn encode_command<A: AsRef<[u8]>>(args: &[A], out: &mut BytesMut) {
    // A length line is at most 1 + 20 digits + CRLF.
    out.reserve(23 + args.iter().map(|a| a.as_ref().len() + 25).sum::<usize>());
    let mut line = [0u8; 24];
    out.extend_from_slice(length_line(b'*', args.len(), &mut line));
    for a in args {
        let a = a.as_ref();
        out.extend_from_slice(length_line(b'$', a.len(), &mut line));
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// `*n\r\n` or `$n\r\n`, written into `buf`.
fn length_line(kind: u8, n: usize, buf: &mut [u8; 24]) -> &[u8] {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(n).as_bytes();
    buf[0] = kind;
    buf[1..1 + digits.len()].copy_from_slice(digits);
    buf[1 + digits.len()..3 + digits.len()].copy_from_slice(b"\r\n");
    &buf[..3 + digits.len()]
}

impl Client {
    pub async fn connect(addr: &str, timeout: Duration) -> io::Result<Client> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| timeout_err("connect"))??;
        stream.set_nodelay(true)?;
        Ok(Client { stream, buf: BytesMut::with_capacity(4096), out: BytesMut::new() })
    }

    /// Sends one command and returns its reply. An error reply is a successful call
    /// (`BytesFrame::Error`); I/O failures, timeouts and malformed replies are `Err`.
    pub async fn call<A: AsRef<[u8]>>(&mut self, args: &[A], timeout: Duration) -> io::Result<BytesFrame> {
        self.out.clear();
        encode_command(args, &mut self.out);
        let work = async {
            self.stream.write_all(&self.out).await?;
            loop {
                if let Some((frame, _, _)) = decode_bytes_mut(&mut self.buf)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?
                {
                    return Ok(frame);
                }
                if self.stream.read_buf(&mut self.buf).await? == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
                }
            }
        };
        tokio::time::timeout(timeout, work).await.map_err(|_| timeout_err("request"))?
    }
}

impl Client {
    /// Connects and authenticates as a cluster member (`AUTH edis <secret>`). A refused
    /// secret is an `Err` of kind PermissionDenied carrying the server's reply.
    pub async fn connect_member(addr: &str, secret: &str, timeout: Duration) -> io::Result<Client> {
        let mut c = Client::connect(addr, timeout).await?;
        let reply = c.call(&["AUTH", crate::roles::secret::MEMBER_USER, secret], timeout).await?;
        if let Some(why) = error_text(&reply) {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, why));
        }
        Ok(c)
    }
}

/// The text of an error reply, if the frame is one.
pub fn error_text(frame: &BytesFrame) -> Option<String> {
    match frame {
        BytesFrame::Error(e) => Some(e.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod encode_tests {
    use super::*;

    #[test]
    fn commands_encode_as_resp_multibulks() {
        let mut out = BytesMut::new();
        encode_command(&["SET", "key", ""], &mut out);
        assert_eq!(&out[..], b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$0\r\n\r\n");
        out.clear();
        let long = "x".repeat(12_345);
        encode_command::<&str>(&[], &mut out);
        encode_command(&[long.as_str()], &mut out);
        let want = format!("*0\r\n*1\r\n$12345\r\n{long}\r\n");
        assert_eq!(&out[..], want.as_bytes());
    }
}
