//! Replies, as handlers return them, and their encoding for RESP2 or RESP3.
//!
//! Handlers build a [`Reply`]; only the connection encodes it, into the output buffer that a
//! whole pipeline's replies share. Common replies carry no heap allocation (`Ok`, static
//! strings and errors, integers, a refcounted `Bytes` for bulk values).

use std::borrow::Cow;

use bytes::{BufMut, Bytes, BytesMut};

/// A reply to one command.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK`
    Ok,
    /// A simple string such as `PONG` or `QUEUED`.
    Simple(Cow<'static, str>),
    /// An error; the text starts with its code (`ERR ...`, `WRONGTYPE ...`).
    Error(Cow<'static, str>),
    Int(i64),
    Bulk(Bytes),
    /// The null bulk string (`$-1`; `_` in RESP3).
    Nil,
    /// The null array (`*-1`; `_` in RESP3), as EXEC answers an aborted transaction.
    NilArray,
    Array(Vec<Reply>),
    /// A map in RESP3, a flat array of pairs in RESP2.
    Map(Vec<(Reply, Reply)>),
    /// A set in RESP3, an array in RESP2.
    Set(Vec<Reply>),
    /// Pairs (member and score, field and value): an array of 2-element arrays in RESP3, a
    /// flat array in RESP2, as Redis answers WITHSCORES and WITHVALUES.
    Pairs(Vec<(Reply, Reply)>),
    /// A double in RESP3, a bulk string in RESP2.
    Double(f64),
    /// A boolean in RESP3, the integer 1 or 0 in RESP2.
    Bool(bool),
    /// Verbatim text (`=` with `txt:`) in RESP3, a bulk string in RESP2.
    Verbatim(Bytes),
    /// Bytes sent as they are: the replication handshake's `+FULLRESYNC` line and snapshot,
    /// which are not one RESP value.
    Raw(Bytes),
}

impl Reply {
    pub fn simple(s: &'static str) -> Reply {
        Reply::Simple(Cow::Borrowed(s))
    }

    /// An error reply with a static text, e.g. `Reply::err("ERR syntax error")`.
    pub fn err(s: &'static str) -> Reply {
        Reply::Error(Cow::Borrowed(s))
    }

    pub fn error(s: String) -> Reply {
        Reply::Error(Cow::Owned(s))
    }

    pub fn bulk(b: impl Into<Bytes>) -> Reply {
        Reply::Bulk(b.into())
    }

    pub fn bulk_str(s: &'static str) -> Reply {
        Reply::Bulk(Bytes::from_static(s.as_bytes()))
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// Encode this reply for protocol version `proto` (2 or 3).
    pub fn encode(&self, proto: u8, out: &mut BytesMut) {
        let resp3 = proto >= 3;
        match self {
            Reply::Ok => out.put_slice(b"+OK\r\n"),
            Reply::Simple(s) => line(out, b'+', s.as_bytes()),
            Reply::Error(s) => {
                // An error text must stay on one line, as Redis guarantees.
                out.put_u8(b'-');
                out.extend(s.bytes().map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
                out.put_slice(b"\r\n");
            }
            Reply::Int(n) => int_line(out, b':', *n),
            Reply::Bulk(b) => bulk(out, b'$', b),
            Reply::Nil if resp3 => out.put_slice(b"_\r\n"),
            Reply::Nil => out.put_slice(b"$-1\r\n"),
            Reply::NilArray if resp3 => out.put_slice(b"_\r\n"),
            Reply::NilArray => out.put_slice(b"*-1\r\n"),
            Reply::Array(items) => {
                int_line(out, b'*', items.len() as i64);
                items.iter().for_each(|r| r.encode(proto, out));
            }
            Reply::Set(items) => {
                int_line(out, if resp3 { b'~' } else { b'*' }, items.len() as i64);
                items.iter().for_each(|r| r.encode(proto, out));
            }
            Reply::Pairs(pairs) => {
                if resp3 {
                    int_line(out, b'*', pairs.len() as i64);
                    for (a, b) in pairs {
                        int_line(out, b'*', 2);
                        a.encode(proto, out);
                        b.encode(proto, out);
                    }
                } else {
                    int_line(out, b'*', 2 * pairs.len() as i64);
                    for (a, b) in pairs {
                        a.encode(proto, out);
                        b.encode(proto, out);
                    }
                }
            }
            Reply::Map(pairs) => {
                if resp3 {
                    int_line(out, b'%', pairs.len() as i64);
                } else {
                    int_line(out, b'*', 2 * pairs.len() as i64);
                }
                for (k, v) in pairs {
                    k.encode(proto, out);
                    v.encode(proto, out);
                }
            }
            Reply::Double(d) => {
                // As Redis 7.0's addReplyDouble: %.17g, inf, -inf.
                let text = crate::keyspace::zset::g17(*d);
                if resp3 {
                    line(out, b',', text.as_bytes());
                } else {
                    bulk(out, b'$', text.as_bytes());
                }
            }
            Reply::Bool(b) if resp3 => out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
            Reply::Bool(b) => int_line(out, b':', *b as i64),
            Reply::Verbatim(text) if resp3 => {
                int_line(out, b'=', text.len() as i64 + 4);
                out.put_slice(b"txt:");
                out.put_slice(text);
                out.put_slice(b"\r\n");
            }
            Reply::Verbatim(text) => bulk(out, b'$', text),
            Reply::Raw(bytes) => out.put_slice(bytes),
        }
    }
}

impl From<i64> for Reply {
    fn from(n: i64) -> Self {
        Reply::Int(n)
    }
}

impl From<Bytes> for Reply {
    fn from(b: Bytes) -> Self {
        Reply::Bulk(b)
    }
}

impl From<Option<Bytes>> for Reply {
    fn from(b: Option<Bytes>) -> Self {
        b.map_or(Reply::Nil, Reply::Bulk)
    }
}

/// Formats a double as Redis does for human-facing values: integral values without a
/// fraction, others in their shortest exact form, `inf`/`-inf` for infinities.
pub fn format_double(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if d.is_nan() {
        return "nan".into();
    }
    let mut s = format!("{d}");
    if s == "-0" {
        s = "0".into();
    }
    s
}

fn line(out: &mut BytesMut, prefix: u8, s: &[u8]) {
    out.reserve(s.len() + 3);
    out.put_u8(prefix);
    out.put_slice(s);
    out.put_slice(b"\r\n");
}

fn int_line(out: &mut BytesMut, prefix: u8, n: i64) {
    let mut buf = itoa::Buffer::new();
    line(out, prefix, buf.format(n).as_bytes());
}

fn bulk(out: &mut BytesMut, prefix: u8, b: &[u8]) {
    let mut len = itoa::Buffer::new();
    let len = len.format(b.len());
    out.reserve(b.len() + len.len() + 5);
    out.put_u8(prefix);
    out.put_slice(len.as_bytes());
    out.put_slice(b"\r\n");
    out.put_slice(b);
    out.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(r: &Reply, proto: u8) -> String {
        let mut out = BytesMut::new();
        r.encode(proto, &mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn resp2_and_resp3() {
        assert_eq!(enc(&Reply::Ok, 2), "+OK\r\n");
        assert_eq!(enc(&Reply::Nil, 2), "$-1\r\n");
        assert_eq!(enc(&Reply::Nil, 3), "_\r\n");
        assert_eq!(enc(&Reply::NilArray, 2), "*-1\r\n");
        assert_eq!(enc(&Reply::Int(-5), 2), ":-5\r\n");
        assert_eq!(enc(&Reply::bulk_str("hi"), 2), "$2\r\nhi\r\n");
        let map = Reply::Map(vec![(Reply::bulk_str("a"), Reply::Int(1))]);
        assert_eq!(enc(&map, 2), "*2\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(&map, 3), "%1\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(&Reply::Double(1.5), 2), "$3\r\n1.5\r\n");
        assert_eq!(enc(&Reply::Double(1.5), 3), ",1.5\r\n");
        assert_eq!(enc(&Reply::Bool(true), 3), "#t\r\n");
        assert_eq!(enc(&Reply::Bool(true), 2), ":1\r\n");
        assert_eq!(enc(&Reply::Verbatim(Bytes::from_static(b"ab")), 3), "=6\r\ntxt:ab\r\n");
        assert_eq!(enc(&Reply::err("ERR a\r\nb"), 2), "-ERR a  b\r\n");
    }

    #[test]
    fn decodes_with_redis_protocol() {
        use redis_protocol::resp3::decode::complete::decode;
        let r = Reply::Array(vec![
            Reply::Map(vec![(Reply::bulk_str("k"), Reply::Set(vec![Reply::Int(1)]))]),
            Reply::Double(2.25),
            Reply::Nil,
            Reply::Verbatim(Bytes::from_static(b"x")),
        ]);
        let mut out = BytesMut::new();
        r.encode(3, &mut out);
        let (_, used) = decode(&out).unwrap().unwrap();
        assert_eq!(used, out.len());
    }

    #[test]
    fn doubles() {
        assert_eq!(format_double(3.0), "3");
        assert_eq!(format_double(10.5), "10.5");
        assert_eq!(format_double(-0.0), "0");
        assert_eq!(format_double(f64::INFINITY), "inf");
    }
}
