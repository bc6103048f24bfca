//! The request parser: turns the bytes a client sent into commands (lists of arguments).
//!
//! Why our own and not redis-protocol's decoder (see shared/DEPENDENCIES.md): requests need
//! inline commands, Redis's limits checked before anything is allocated, bulk-only arguments,
//! and resumption: a 3 MB SET arriving in 16 KB reads must not be re-scanned from its start
//! on every read. The parser keeps its place between calls; arguments are zero-copy slices of
//! the received buffer.
//!
//! Semantics follow Redis's `processMultibulkBuffer` / `processInlineBuffer`, including the
//! error texts, which a client sees as `-ERR Protocol error: ...` before the server closes the
//! connection.
//!
//! A big argument ([`BIG_ARG`] bytes or more) is, as in Redis, received into a buffer of
//! exactly its size, which then becomes the argument: a 512 MB SET costs one 512 MB buffer,
//! kept as the stored value, not a buffer doubled up to it and a copy. Every argument of that
//! size the parser returns owns its allocation (one that arrived inside a larger read is
//! copied out), so whoever keeps it pins nothing else.

use bytes::{Bytes, BytesMut};
use memchr::memchr;

use super::split::split_args;

/// Longest inline command or `*`/`$` header line, as Redis's PROTO_INLINE_MAX_SIZE.
pub const INLINE_MAX: usize = 64 * 1024;
/// Default largest bulk argument (Redis's proto-max-bulk-len).
pub const DEFAULT_MAX_BULK: usize = 512 * 1024 * 1024;
/// Most argument slots reserved up front, whatever count the client claims.
const MAX_PREALLOC_ARGS: usize = 1024;
/// An argument at least this big gets a buffer of its own (Redis's PROTO_MBULK_BIG_ARG is
/// 32 KB; values below this are cheaper copied into their key's entry).
pub const BIG_ARG: usize = 64 * 1024;

/// Gives, for a big argument at a stream offset, the same bytes already in this process (an
/// in-process read shard takes its primary's copy): called with the offset of the argument's
/// first byte and its length.
pub type Share = Box<dyn FnMut(u64, usize) -> Option<Bytes> + Send>;

/// The protocol error for a stream whose bytes are not those the [`Share`] gave.
const SHARED_DIFFERS: &str = "a shared argument differs from the stream";

/// A [`Share`], where the arguments it gave start (until the caller takes them), and the
/// bytes of whole commands parsed since it was given (from the offset it was given at).
struct Sharing {
    share: Share,
    given: Vec<usize>,
    consumed: u64,
}

/// The arguments of a command with a big one that already left the buffer, and the big one
/// being received.
#[derive(Default)]
struct Split {
    done: Vec<Bytes>,
    big: Option<Big>,
}

/// A big argument being received.
struct Big {
    len: usize,
    /// The same bytes, given by the [`Share`]: what arrives is checked against them and
    /// dropped; `seen` counts it (the closing CRLF included).
    shared: Option<Bytes>,
    seen: usize,
}

/// A malformed request. The text is what Redis puts after `ERR Protocol error: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Protocol error: {}", self.0)
    }
}

fn perr(msg: impl Into<String>) -> ProtocolError {
    ProtocolError(msg.into())
}

/// Parses Redis's integer syntax strictly (as `string2ll`): optional `-`, digits, no `+`, no
/// blanks, no leading zeros.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 19 || (digits[0] == b'0' && (s.len() > 1)) {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let d = (d - b'0') as i64;
        v = v.checked_mul(10)?;
        v = if neg { v.checked_sub(d)? } else { v.checked_add(d)? };
    }
    Some(v)
}

#[derive(Debug, Default)]
enum State {
    /// Between commands.
    #[default]
    Start,
    /// Inside a multibulk: `pos` bytes of the buffer belong to this command so far,
    /// `remaining` arguments are still to come.
    Multibulk { pos: usize, remaining: usize },
}

/// Resumable request parser; one per connection.
pub struct RequestParser {
    state: State,
    /// Argument ranges (relative to the buffer start) of the command being parsed.
    spans: Vec<(usize, usize)>,
    /// Arguments of the command being parsed already taken out of the buffer (those before
    /// and including a big one), and how many bytes of the command they took.
    /// (Boxed, as the sharing below, and only while a command has a big argument: every
    /// idle connection holds a parser.)
    split: Option<Box<Split>>,
    taken: usize,
    /// The size of the last whole command.
    last_len: usize,
    share: Option<Box<Sharing>>,
    /// Big arguments get their buffer from the header alone (a primary's stream).
    trusted: bool,
    /// Bytes still missing for the bulk argument being received, a hint for buffer sizing.
    missing: usize,
    max_bulk: usize,
    /// Before AUTH (when a password is required), Redis caps request sizes much lower.
    authenticated: bool,
}

impl std::fmt::Debug for RequestParser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestParser")
            .field("state", &self.state)
            .field("taken", &self.taken)
            .field("missing", &self.missing)
            .finish()
    }
}

impl Default for RequestParser {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_BULK)
    }
}

impl RequestParser {
    pub fn new(max_bulk: usize) -> Self {
        Self {
            state: State::Start,
            spans: Vec::new(),
            split: None,
            taken: 0,
            last_len: 0,
            share: None,
            trusted: false,
            missing: 0,
            max_bulk,
            authenticated: true,
        }
    }

    /// A big argument gets a buffer of its size as soon as its header is read (the stream
    /// of a primary, trusted as Redis trusts it), not once part of it has come.
    pub fn trust_claims(&mut self) {
        self.trusted = true;
    }

    /// Big arguments are asked of `share` first, with their offset in the stream counted from
    /// `offset` (where the next byte parsed is). The stream is a primary's: claims are trusted.
    pub fn share(&mut self, offset: u64, share: Share) {
        self.share = Some(Box::new(Sharing { share, given: Vec::new(), consumed: offset }));
        self.trusted = true;
    }

    /// Where the arguments the [`Share`] gave since the last call start (see
    /// `keyspace::object::lent`).
    pub fn take_shared(&mut self) -> Vec<usize> {
        self.share.as_mut().map(|s| std::mem::take(&mut s.given)).unwrap_or_default()
    }

    /// Bytes the last command returned took in the stream.
    pub fn last_len(&self) -> usize {
        self.last_len
    }

    /// Whether the buffer is one sized exactly for the rest of a big argument: the caller
    /// must read into it as it is, not grow it (that would copy the argument).
    pub fn receiving_big(&self) -> bool {
        self.split.as_ref().and_then(|s| s.big.as_ref()).is_some_and(|b| b.shared.is_none())
    }

    /// Makes room in `buf` for at least `want` more bytes before a read, unless `buf` is a
    /// big argument's, already sized to it (growing it would copy it).
    pub fn grow(&self, buf: &mut BytesMut, want: usize) {
        if !self.receiving_big() && buf.capacity() - buf.len() < want {
            buf.reserve(want);
        }
    }

    /// Bytes of the command in progress held outside the buffer (big arguments received),
    /// for the query buffer limit.
    pub fn held(&self) -> usize {
        self.taken
    }

    pub fn set_authenticated(&mut self, yes: bool) {
        self.authenticated = yes;
    }

    pub fn set_max_bulk(&mut self, max_bulk: usize) {
        self.max_bulk = max_bulk;
    }

    /// How many more bytes the command in progress needs at least (0 when unknown), so the
    /// caller can grow its buffer by what has been promised and is arriving, not by a claim.
    pub fn missing(&self) -> usize {
        self.missing
    }

    /// Parse the next complete command at the front of `buf`, appending its arguments to
    /// `args` and removing its bytes from `buf`. Returns the number of arguments appended, or
    /// `None` when more bytes are needed. Empty commands (`*0`, blank inline lines) are
    /// skipped.
    pub fn next(
        &mut self,
        buf: &mut BytesMut,
        args: &mut Vec<Bytes>,
    ) -> Result<Option<usize>, ProtocolError> {
        loop {
            if let State::Start = self.state {
                if buf.is_empty() {
                    return Ok(None);
                }
                if buf[0] != b'*' {
                    match self.inline(buf, args)? {
                        Some(0) => continue,
                        other => return Ok(other),
                    }
                }
                let Some(cr) = memchr(b'\r', buf) else {
                    if buf.len() > INLINE_MAX {
                        return Err(perr("too big mbulk count string"));
                    }
                    return Ok(None);
                };
                if cr + 1 >= buf.len() {
                    return Ok(None);
                }
                let count = parse_i64(&buf[1..cr])
                    .filter(|&n| n <= i32::MAX as i64)
                    .ok_or_else(|| perr("invalid multibulk length"))?;
                if !self.authenticated && count > 10 {
                    return Err(perr("unauthenticated multibulk length"));
                }
                if count <= 0 {
                    let _ = buf.split_to(cr + 2);
                    self.taken += cr + 2;
                    continue;
                }
                self.spans.clear();
                self.spans.reserve((count as usize).min(MAX_PREALLOC_ARGS));
                self.state = State::Multibulk { pos: cr + 2, remaining: count as usize };
            }
            return self.multibulk(buf, args);
        }
    }

    fn multibulk(
        &mut self,
        buf: &mut BytesMut,
        args: &mut Vec<Bytes>,
    ) -> Result<Option<usize>, ProtocolError> {
        let State::Multibulk { mut pos, mut remaining } = self.state else {
            unreachable!("multibulk called between commands")
        };
        while remaining > 0 {
            if self.split.as_ref().is_some_and(|s| s.big.is_some()) {
                // The buffer starts with (the rest of) the big argument.
                match self.big_arg(buf)? {
                    true => {
                        remaining -= 1;
                        continue;
                    }
                    false => break,
                }
            }
            if pos >= buf.len() {
                break;
            }
            if buf[pos] != b'$' {
                return Err(perr(format!("expected '$', got '{}'", buf[pos] as char)));
            }
            let Some(off) = memchr(b'\r', &buf[pos..]) else {
                if buf.len() - pos > INLINE_MAX {
                    return Err(perr("too big bulk count string"));
                }
                break;
            };
            let cr = pos + off;
            if cr + 1 >= buf.len() {
                break;
            }
            let len = parse_i64(&buf[pos + 1..cr])
                .filter(|&n| n >= 0 && n as u64 <= self.max_bulk as u64)
                .ok_or_else(|| perr("invalid bulk length"))? as usize;
            if !self.authenticated && len > 16384 {
                return Err(perr("unauthenticated bulk length"));
            }
            let start = cr + 2;
            let end = start + len;
            if buf.len() < end + 2 {
                // A client's claim alone allocates nothing: its buffer grows with what
                // arrives, and a buffer of the argument's size comes once an eighth of it is
                // here (what is copied into it stays small). A primary is trusted at once.
                if len >= BIG_ARG && (self.trusted || buf.len() - start >= len / 8) {
                    self.start_big(buf, start, len);
                    pos = 0;
                    continue;
                }
                self.missing = end + 2 - buf.len();
                break;
            }
            self.spans.push((start, end));
            pos = end + 2;
            remaining -= 1;
        }
        if remaining > 0 {
            self.state = State::Multibulk { pos, remaining };
            return Ok(None);
        }
        self.state = State::Start;
        self.missing = 0;
        let frame = buf.split_to(pos).freeze();
        let done = self.split.take().map(|s| s.done).unwrap_or_default();
        let n = done.len() + self.spans.len();
        args.extend(done);
        for i in 0..self.spans.len() {
            let (a, b) = self.spans[i];
            if b - a < BIG_ARG {
                args.push(frame.slice(a..b));
                continue;
            }
            // Came whole inside a larger read: the same bytes from the Share if it has them
            // (checked), else copied out, so that keeping it pins nothing else (see the
            // module's comment).
            let at = self.stream_offset() + (self.taken + a) as u64;
            let shared = self.share.as_mut().and_then(|s| (s.share)(at, b - a));
            match shared {
                Some(shared) if shared[..] == frame[a..b] => args.push(self.given(shared)),
                Some(_) => return Err(perr(SHARED_DIFFERS)),
                None => args.push(Bytes::copy_from_slice(&frame[a..b])),
            }
        }
        self.finished(self.taken + pos);
        Ok(Some(n))
    }

    fn finished(&mut self, len: usize) {
        self.last_len = len;
        if let Some(s) = self.share.as_mut() {
            s.consumed += len as u64;
        }
        self.taken = 0;
    }

    /// Where in the stream the command being parsed starts (with a [`Share`]).
    fn stream_offset(&self) -> u64 {
        self.share.as_ref().map_or(0, |s| s.consumed)
    }

    /// A big argument of `len` bytes starts at `start` and has not all arrived: the command's
    /// bytes before it leave the buffer (its arguments so far kept as they are), and the
    /// buffer becomes one of exactly the argument's size, or the argument is taken from the
    /// [`Share`] and what arrives of it is only checked.
    fn start_big(&mut self, buf: &mut BytesMut, start: usize, len: usize) {
        let head = buf.split_to(start).freeze();
        let split = self.split.get_or_insert_with(Box::default);
        split.done.extend(self.spans.drain(..).map(|(a, b)| head.slice(a..b)));
        self.taken += start;
        let at = self.stream_offset() + self.taken as u64;
        let shared = self.share.as_mut().and_then(|s| (s.share)(at, len)).filter(|b| b.len() == len);
        if shared.is_none() {
            let mut exact = BytesMut::with_capacity(len + 2);
            exact.extend_from_slice(buf);
            *buf = exact;
        }
        self.split.get_or_insert_with(Box::default).big = Some(Big { len, shared, seen: 0 });
    }

    /// Goes on with the big argument at the front of `buf`; true once it is complete.
    fn big_arg(&mut self, buf: &mut BytesMut) -> Result<bool, ProtocolError> {
        let split = self.split.as_mut().expect("a command with a big argument");
        let big = split.big.as_mut().expect("a big argument in progress");
        let whole = big.len + 2;
        let Some(shared) = &big.shared else {
            if buf.len() < whole {
                self.missing = whole - buf.len();
                return Ok(false);
            }
            let arg = buf.split_to(whole).freeze().slice(..big.len);
            self.taken += whole;
            split.done.push(arg);
            split.big = None;
            return Ok(true);
        };
        let n = buf.len().min(whole - big.seen);
        let data_end = (big.seen + n).min(big.len);
        if big.seen < data_end && buf[..data_end - big.seen] != shared[big.seen..data_end] {
            return Err(perr(SHARED_DIFFERS));
        }
        let _ = buf.split_to(n);
        big.seen += n;
        self.taken += n;
        if big.seen < whole {
            self.missing = whole - big.seen;
            return Ok(false);
        }
        let arg = shared.clone();
        split.big = None;
        let arg = self.given(arg);
        if let Some(split) = self.split.as_mut() {
            split.done.push(arg);
        }
        Ok(true)
    }

    /// An argument the [`Share`] gave, noted (see [`take_shared`](Self::take_shared)).
    fn given(&mut self, arg: Bytes) -> Bytes {
        if let Some(s) = self.share.as_mut() {
            s.given.push(arg.as_ptr() as usize);
        }
        arg
    }

    fn inline(&mut self, buf: &mut BytesMut, args: &mut Vec<Bytes>) -> Result<Option<usize>, ProtocolError> {
        let Some(nl) = memchr(b'\n', buf) else {
            if buf.len() > INLINE_MAX {
                return Err(perr("too big inline request"));
            }
            return Ok(None);
        };
        let line = buf.split_to(nl + 1);
        let line = line[..nl].strip_suffix(b"\r").unwrap_or(&line[..nl]);
        let parts = split_args(line).map_err(|_| perr("unbalanced quotes in request"))?;
        let n = parts.len();
        args.extend(parts.into_iter().map(Bytes::from));
        match n {
            // A blank line is skipped: its bytes count with the next command's.
            0 => self.taken += nl + 1,
            _ => self.finished(self.taken + nl + 1),
        }
        Ok(Some(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> (Vec<Vec<String>>, Option<ProtocolError>, usize) {
        let mut p = RequestParser::default();
        let mut buf = BytesMut::from(input);
        let mut cmds = Vec::new();
        loop {
            let mut args = Vec::new();
            match p.next(&mut buf, &mut args) {
                Ok(Some(_)) => {
                    cmds.push(args.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect())
                }
                Ok(None) => return (cmds, None, buf.len()),
                Err(e) => return (cmds, Some(e), buf.len()),
            }
        }
    }

    #[test]
    fn integers_are_strict() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [&b""[..], b"-", b"+1", b" 1", b"1 ", b"01", b"-0", b"9223372036854775808", b"1a"] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn multibulk_and_pipeline() {
        let (cmds, err, rest) = parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n*1\r\n$4\r\nPING\r\n");
        assert_eq!(cmds, vec![vec!["GET", "a"], vec!["PING"]]);
        assert!(err.is_none());
        assert_eq!(rest, 0);
    }

    #[test]
    fn binary_and_empty_args() {
        let (cmds, _, _) = parse_all(b"*3\r\n$3\r\nSET\r\n$0\r\n\r\n$4\r\na\r\nb\r\n");
        assert_eq!(cmds, vec![vec!["SET", "", "a\r\nb"]]);
    }

    #[test]
    fn inline_commands() {
        let (cmds, err, _) = parse_all(b"PING\r\nset a \"b c\"\n\r\n   \r\necho x\r\n");
        assert_eq!(cmds, vec![vec!["PING"], vec!["set", "a", "b c"], vec!["echo", "x"]]);
        assert!(err.is_none());
    }

    #[test]
    fn empty_multibulk_is_skipped() {
        let (cmds, _, _) = parse_all(b"*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n");
        assert_eq!(cmds, vec![vec!["PING"]]);
    }

    #[test]
    fn resumes_byte_by_byte() {
        let input = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$10\r\n0123456789\r\nPING\r\n";
        let mut p = RequestParser::default();
        let mut buf = BytesMut::new();
        let mut args = Vec::new();
        let mut done = Vec::new();
        for &b in input.iter() {
            buf.extend_from_slice(&[b]);
            while let Some(n) = p.next(&mut buf, &mut args).unwrap() {
                done.push(n);
            }
        }
        assert_eq!(done, vec![3, 1]);
        assert_eq!(args, vec!["SET", "key", "0123456789", "PING"]);
    }

    #[test]
    fn tracks_missing_bytes_of_a_large_bulk() {
        let mut p = RequestParser::default();
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nSET\r\n$60000\r\nabc"[..]);
        let mut args = Vec::new();
        assert_eq!(p.next(&mut buf, &mut args).unwrap(), None);
        assert_eq!(p.missing(), 60_000 - 3 + 2);
        assert!(buf.capacity() < 1000, "a claim below BIG_ARG does not allocate");
        assert!(!p.receiving_big());
    }

    /// Feeds `wire` in `step`-byte reads as a connection would: reading only into the room
    /// the buffer has while a big argument is received.
    fn feed(p: &mut RequestParser, wire: &[u8], step: usize) -> (Vec<Bytes>, Vec<usize>) {
        let (mut buf, mut args, mut lens) = (BytesMut::new(), Vec::new(), Vec::new());
        let mut at = 0;
        loop {
            while p.next(&mut buf, &mut args).unwrap().is_some() {
                lens.push(p.last_len());
            }
            if at == wire.len() {
                return (args, lens);
            }
            let room = if p.receiving_big() { buf.capacity() - buf.len() } else { step };
            let n = room.min(step).min(wire.len() - at);
            assert!(n > 0, "no room to read into");
            buf.extend_from_slice(&wire[at..at + n]);
            at += n;
        }
    }

    #[test]
    fn a_big_argument_gets_a_buffer_of_its_size() {
        let big = vec![b'v'; 300_000];
        let mut wire = BytesMut::new();
        crate::resp::client::encode_command(&[&b"MSET"[..], b"k", &big, b"k2", &big], &mut wire);
        let first = wire.len();
        crate::resp::client::encode_command(&[&b"GET"[..], b"k"], &mut wire);
        let mut p = RequestParser::default();
        let mut buf = BytesMut::from(&wire[..100]);
        let mut args = Vec::new();
        assert_eq!(p.next(&mut buf, &mut args).unwrap(), None);
        assert!(!p.receiving_big(), "a claim alone allocates nothing");
        buf.extend_from_slice(&wire[100..40_000]);
        assert_eq!(p.next(&mut buf, &mut args).unwrap(), None);
        assert!(p.receiving_big(), "an eighth of it came");
        assert_eq!(buf.capacity(), 300_002, "exactly the argument and its CRLF");
        let mut p = RequestParser::default();
        p.trust_claims();
        let mut buf = BytesMut::from(&wire[..100]);
        assert_eq!(p.next(&mut buf, &mut args).unwrap(), None);
        assert!(p.receiving_big(), "a primary's claim is trusted");
        for (step, trusted) in [(1000, false), (16 * 1024, true), (16 * 1024, false), (1 << 20, false)] {
            let mut p = RequestParser::default();
            if trusted {
                p.trust_claims();
            }
            let (args, lens) = feed(&mut p, &wire, step);
            assert_eq!(args.len(), 7);
            assert!(args[2] == big[..] && args[4] == big[..] && args[3] == "k2" && args[6] == "k");
            assert_eq!(lens, vec![first, wire.len() - first], "each command's bytes, step {step}");
        }
    }

    #[test]
    fn a_shared_big_argument_is_checked_and_taken() {
        let big = Bytes::from(vec![b'x'; 100_000]);
        let mut wire = BytesMut::new();
        crate::resp::client::encode_command(&[&b"SET"[..], b"k", &big], &mut wire);
        let at = wire.len() - big.len() - 2;
        // A parser whose stream starts at offset 1000, given `big` where it is in the stream.
        let sharing = || {
            let mut p = RequestParser::default();
            let given = big.clone();
            p.share(
                1000,
                Box::new(move |offset, len| {
                    (offset == 1000 + at as u64 && len == 100_000).then(|| given.clone())
                }),
            );
            p
        };
        let mut p = sharing();
        let (args, lens) = feed(&mut p, &wire, 4096);
        assert_eq!(args[2].as_ptr(), big.as_ptr(), "the same bytes, not a copy");
        assert_eq!(lens, vec![wire.len()]);
        // The same when the whole command came in one read.
        let mut p = sharing();
        let (args, _) = feed(&mut p, &wire, 1 << 20);
        assert_eq!(args[2].as_ptr(), big.as_ptr(), "the same bytes, not a copy");
        assert_eq!(p.take_shared(), vec![big.as_ptr() as usize]);
        // Bytes that differ from what was given break the stream.
        let mut p = RequestParser::default();
        let given = Bytes::from(vec![b'y'; 100_000]);
        p.share(0, Box::new(move |_, _| Some(given.clone())));
        let mut buf = BytesMut::from(&wire[..at + 10]);
        let mut args = Vec::new();
        assert!(p.next(&mut buf, &mut args).is_err());
    }

    #[test]
    fn protocol_errors() {
        let cases: &[(&[u8], &str)] = &[
            (b"*abc\r\n", "invalid multibulk length"),
            (b"*3000000000\r\n", "invalid multibulk length"),
            (b"*1\r\n:5\r\n", "expected '$', got ':'"),
            (b"*1\r\n*1\r\n", "expected '$', got '*'"),
            (b"*1\r\n$-1\r\n", "invalid bulk length"),
            (b"*1\r\n$x\r\n", "invalid bulk length"),
            (b"*1\r\n$536870913\r\n", "invalid bulk length"),
            (b"set \"a\r\n", "unbalanced quotes in request"),
        ];
        for (input, msg) in cases {
            let (_, err, _) = parse_all(input);
            assert_eq!(err, Some(ProtocolError(msg.to_string())), "{:?}", String::from_utf8_lossy(input));
        }
        let (_, err, _) = parse_all(&vec![b'a'; INLINE_MAX + 1]);
        assert_eq!(err.unwrap().0, "too big inline request");
        let mut big = b"*".to_vec();
        big.extend(vec![b'1'; INLINE_MAX + 1]);
        assert_eq!(parse_all(&big).1.unwrap().0, "too big mbulk count string");
        let mut big = b"*1\r\n$".to_vec();
        big.extend(vec![b'1'; INLINE_MAX + 1]);
        assert_eq!(parse_all(&big).1.unwrap().0, "too big bulk count string");
    }

    #[test]
    fn unauthenticated_limits() {
        let mut p = RequestParser::default();
        p.set_authenticated(false);
        let mut args = Vec::new();
        let err = p.next(&mut BytesMut::from(&b"*11\r\n"[..]), &mut args).unwrap_err();
        assert_eq!(err.0, "unauthenticated multibulk length");
        let mut p = RequestParser::default();
        p.set_authenticated(false);
        let err = p.next(&mut BytesMut::from(&b"*1\r\n$16385\r\n"[..]), &mut args).unwrap_err();
        assert_eq!(err.0, "unauthenticated bulk length");
    }

    #[test]
    fn garbage_never_panics_or_stalls() {
        // Random bytes biased toward protocol characters, fed in random chunks: the parser
        // either yields commands, asks for more, or reports an error; it never panics, and a
        // complete command is never left unconsumed.
        let alphabet = b"*$\r\n0123456789-+:\"' abcPING";
        let mut x: u64 = 0xDEAD_BEEF;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        for _ in 0..3000 {
            let len = next(200) as usize;
            let input: Vec<u8> = (0..len)
                .map(|_| {
                    if next(4) == 0 {
                        next(256) as u8
                    } else {
                        alphabet[next(alphabet.len() as u64) as usize]
                    }
                })
                .collect();
            let mut p = RequestParser::default();
            let mut buf = BytesMut::new();
            let mut args = Vec::new();
            let mut pos = 0;
            'feed: while pos < input.len() {
                let take = (next(16) as usize + 1).min(input.len() - pos);
                buf.extend_from_slice(&input[pos..pos + take]);
                pos += take;
                loop {
                    match p.next(&mut buf, &mut args) {
                        Ok(Some(_)) => continue,
                        Ok(None) => break,
                        Err(_) => break 'feed,
                    }
                }
            }
        }
    }

    #[test]
    fn agrees_with_redis_protocol_on_well_formed_requests() {
        use redis_protocol::resp2::{decode::decode_bytes_mut, types::BytesFrame};
        let mut x: u32 = 12345;
        for _ in 0..500 {
            let mut wire = BytesMut::new();
            let mut expected = Vec::new();
            for _ in 0..(x % 5 + 1) {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let n = (x >> 16) % 4 + 1;
                wire.extend_from_slice(format!("*{n}\r\n").as_bytes());
                for a in 0..n {
                    let arg: Vec<u8> = (0..(x >> (a * 3)) % 40).map(|i| (i as u8) ^ (x as u8)).collect();
                    wire.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
                    wire.extend_from_slice(&arg);
                    wire.extend_from_slice(b"\r\n");
                    expected.push(arg);
                }
            }
            let mut oracle = wire.clone();
            let mut oracle_args = Vec::new();
            while let Some((frame, _, _)) = decode_bytes_mut(&mut oracle).unwrap() {
                let BytesFrame::Array(items) = frame else { panic!("not an array") };
                for item in items {
                    let BytesFrame::BulkString(b) = item else { panic!("not a bulk") };
                    oracle_args.push(b.to_vec());
                }
            }
            let mut p = RequestParser::default();
            let mut args = Vec::new();
            while p.next(&mut wire, &mut args).unwrap().is_some() {}
            let ours: Vec<Vec<u8>> = args.iter().map(|a| a.to_vec()).collect();
            assert_eq!(ours, oracle_args);
            assert_eq!(ours, expected);
        }
    }
}
