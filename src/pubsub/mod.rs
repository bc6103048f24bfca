//! Pub/Sub, keyspace notifications, client tracking and MONITOR: everything a server sends a
//! client that did not ask for it in the same breath.
//!
//! Each connection has a [`Mailbox`] (in its [`ClientHandle`]): whoever has something for
//! it (a publisher, a write that invalidates a key it read, a command a monitor sees)
//! encodes the message into the mailbox under the server's lock and wakes the connection,
//! which writes it out between its own replies. The subscription tables ([`PubSub`]) and
//! the tracking table ([`tracking::Tracking`]) live in the server's state.
//!
//! In a cluster a PUBLISH reaches every node: the write shard it lands on (its home) delivers
//! it, logs it for its read shards and forwards it to the other write shards ([`bus`]). A
//! connection that asked for it (EDIS.LISTEN: the proxy's feeds) receives only messages whose
//! home is this node and events this node made, so a proxy listening to every write shard
//! sees each message once.

pub mod bus;
pub mod events;
pub mod tracking;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{BufMut, Bytes, BytesMut};
use indexmap::{IndexMap, IndexSet};
use tokio::sync::Notify;

use crate::keyspace::glob_match;
use crate::server::{ClientHandle, State};

type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// What others have for one connection, waiting to be written.
#[derive(Default)]
pub struct Mailbox {
    buf: Mutex<BytesMut>,
    wake: Notify,
    /// The connection is gone: nothing more is put in.
    closed: AtomicBool,
    /// The most that may wait (client-output-buffer-limit's pubsub hard limit; 0: none), and
    /// whether it was passed: the connection is then closed, as Redis closes it.
    limit: std::sync::atomic::AtomicUsize,
    overflowed: AtomicBool,
    /// The bytes waiting, kept beside the buffer so a connection can see there is nothing
    /// without taking the lock (it looks after every command).
    queued: std::sync::atomic::AtomicUsize,
}

impl Mailbox {
    /// Encodes something into the mailbox with `f` and wakes the connection.
    pub fn put(&self, f: impl FnOnce(&mut BytesMut)) {
        if self.closed.load(Ordering::Relaxed) {
            return;
        }
        let mut buf = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        let was_empty = buf.is_empty();
        let limit = self.limit.load(Ordering::Relaxed);
        if limit > 0 && buf.len() > limit {
            // Nothing more is kept for a client that does not read; it is closed.
            if !self.overflowed.swap(true, Ordering::Relaxed) {
                drop(buf);
                self.wake.notify_one();
            }
            return;
        }
        f(&mut buf);
        self.queued.store(buf.len(), Ordering::Relaxed);
        drop(buf);
        // A mailbox that held something already has its wake-up coming: the connection
        // takes everything at once (under the same lock), this too.
        if was_empty {
            self.wake.notify_one();
        }
    }

    /// What has been put in since the last call.
    pub fn take(&self) -> Option<BytesMut> {
        let mut buf = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        self.queued.store(0, Ordering::Relaxed);
        (!buf.is_empty()).then(|| buf.split())
    }

    /// Moves what has been put in to the end of `out`.
    pub fn drain_into(&self, out: &mut BytesMut) {
        if self.queued.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut buf = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        out.extend_from_slice(&buf);
        buf.clear();
        self.queued.store(0, Ordering::Relaxed);
    }

    /// Resolves once something has been put in (at once if it was while nobody waited).
    pub async fn ready(&self) {
        self.wake.notified().await
    }

    /// Sets the most that may wait before the connection is closed (0: no limit).
    pub fn set_limit(&self, bytes: usize) {
        self.limit.store(bytes, Ordering::Relaxed);
    }

    /// Whether more waited than the limit allows (the connection must be closed).
    pub fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Relaxed)
    }

    /// Wakes the connection as if something had been put in.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    pub fn pending(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

/// The header of an array of `n` (a push in RESP3).
pub fn push_header(out: &mut BytesMut, proto: u8, n: usize) {
    out.put_u8(if proto >= 3 { b'>' } else { b'*' });
    out.put_slice(itoa::Buffer::new().format(n).as_bytes());
    out.put_slice(b"\r\n");
}

pub fn bulk(out: &mut BytesMut, b: &[u8]) {
    out.put_u8(b'$');
    out.put_slice(itoa::Buffer::new().format(b.len()).as_bytes());
    out.put_slice(b"\r\n");
    out.put_slice(b);
    out.put_slice(b"\r\n");
}

pub fn int(out: &mut BytesMut, n: i64) {
    out.put_u8(b':');
    out.put_slice(itoa::Buffer::new().format(n).as_bytes());
    out.put_slice(b"\r\n");
}

/// A message as a subscriber receives it: `message`, `smessage` (channel, payload) or
/// `pmessage` (pattern, channel, payload).
pub fn encode_message(
    out: &mut BytesMut,
    proto: u8,
    kind: &[u8],
    pattern: Option<&[u8]>,
    channel: &[u8],
    msg: &[u8],
) {
    push_header(out, proto, if pattern.is_some() { 4 } else { 3 });
    bulk(out, kind);
    if let Some(p) = pattern {
        bulk(out, p);
    }
    bulk(out, channel);
    bulk(out, msg);
}

/// One subscriber's subscriptions.
#[derive(Default)]
pub struct Subs {
    pub channels: IndexSet<Bytes>,
    pub patterns: IndexSet<Bytes>,
    pub shard: IndexSet<Bytes>,
}

/// Which of the three kinds a (un)subscription is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Channel,
    Pattern,
    Shard,
}

/// The subscription tables.
#[derive(Default)]
pub struct PubSub {
    channels: Map<Bytes, Vec<Arc<ClientHandle>>>,
    patterns: IndexMap<Bytes, Vec<Arc<ClientHandle>>>,
    shard: Map<Bytes, Vec<Arc<ClientHandle>>>,
    clients: Map<u64, Subs>,
    /// Connections in MONITOR.
    pub monitors: Vec<Arc<ClientHandle>>,
    /// Bumped whenever a channel, pattern or shard channel gains its first subscriber or
    /// loses its last (the proxy's feeds follow its own).
    pub version: u64,
}

impl PubSub {
    fn table(&mut self, kind: Kind) -> &mut Map<Bytes, Vec<Arc<ClientHandle>>> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Shard => &mut self.shard,
            Kind::Pattern => unreachable!("patterns keep their order"),
        }
    }

    /// The subscriptions of client `id`.
    pub fn subs(&self, id: u64) -> Option<&Subs> {
        self.clients.get(&id)
    }

    /// Subscribes a client; returns whether it was new.
    pub fn subscribe(&mut self, handle: &Arc<ClientHandle>, kind: Kind, name: &Bytes) -> bool {
        let subs = self.clients.entry(handle.id).or_default();
        let set = match kind {
            Kind::Channel => &mut subs.channels,
            Kind::Pattern => &mut subs.patterns,
            Kind::Shard => &mut subs.shard,
        };
        if !set.insert(name.clone()) {
            return false;
        }
        let list = match kind {
            Kind::Pattern => self.patterns.entry(name.clone()).or_default(),
            Kind::Channel => self.channels.entry(name.clone()).or_default(),
            Kind::Shard => self.shard.entry(name.clone()).or_default(),
        };
        let first = list.is_empty();
        list.push(handle.clone());
        if first {
            self.version += 1;
        }
        true
    }

    /// Unsubscribes a client; returns whether it was subscribed.
    pub fn unsubscribe(&mut self, id: u64, kind: Kind, name: &[u8]) -> bool {
        let Some(subs) = self.clients.get_mut(&id) else { return false };
        let set = match kind {
            Kind::Channel => &mut subs.channels,
            Kind::Pattern => &mut subs.patterns,
            Kind::Shard => &mut subs.shard,
        };
        if !set.shift_remove(name) {
            return false;
        }
        if subs.channels.is_empty() && subs.patterns.is_empty() && subs.shard.is_empty() {
            self.clients.remove(&id);
        }
        let emptied = match kind {
            Kind::Pattern => {
                let list = self.patterns.get_mut(name).expect("subscribed");
                list.retain(|h| h.id != id);
                let empty = list.is_empty();
                if empty {
                    self.patterns.shift_remove(name);
                }
                empty
            }
            _ => {
                let table = self.table(kind);
                let list = table.get_mut(name).expect("subscribed");
                list.retain(|h| h.id != id);
                let empty = list.is_empty();
                if empty {
                    table.remove(name);
                }
                empty
            }
        };
        if emptied {
            self.version += 1;
        }
        true
    }

    /// Every subscription of a client of one kind, in the order made.
    pub fn names(&self, id: u64, kind: Kind) -> Vec<Bytes> {
        self.clients.get(&id).map_or_else(Vec::new, |s| {
            let set = match kind {
                Kind::Channel => &s.channels,
                Kind::Pattern => &s.patterns,
                Kind::Shard => &s.shard,
            };
            set.iter().cloned().collect()
        })
    }

    /// Drops every subscription of a client (it went away, or RESET).
    pub fn forget(&mut self, id: u64) {
        for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
            for name in self.names(id, kind) {
                self.unsubscribe(id, kind, &name);
            }
        }
        self.monitors.retain(|h| h.id != id);
    }

    /// (channels + patterns, shard channels) a client has.
    pub fn counts(&self, id: u64) -> (usize, usize) {
        self.clients.get(&id).map_or((0, 0), |s| (s.channels.len() + s.patterns.len(), s.shard.len()))
    }

    /// Delivers a message to channel subscribers and matching patterns; returns how many
    /// clients received it. `home`: published on this node (or made here: an event), so
    /// connections that take only those (EDIS.LISTEN, a proxy's feed) get it too. A feed is
    /// not counted: the proxy adds its own subscribers to the count.
    pub fn publish(&self, channel: &[u8], msg: &[u8], home: bool) -> usize {
        let mut n = 0;
        let mut to = |h: &ClientHandle| {
            let feed = h.home_only.load(Ordering::Relaxed);
            n += usize::from(!feed);
            home || !feed
        };
        if let Some(list) = self.channels.get(channel) {
            for h in list.iter().filter(|h| to(h)) {
                let proto = h.proto.load(Ordering::Relaxed);
                h.mailbox.put(|out| encode_message(out, proto, b"message", None, channel, msg));
            }
        }
        for (pattern, list) in &self.patterns {
            if !glob_match(pattern, channel) {
                continue;
            }
            for h in list.iter().filter(|h| to(h)) {
                let proto = h.proto.load(Ordering::Relaxed);
                h.mailbox.put(|out| encode_message(out, proto, b"pmessage", Some(pattern), channel, msg));
            }
        }
        n
    }

    /// Delivers a message a proxy's feed received from a node, which matched it already: to
    /// the subscribers of exactly that channel, pattern (`pattern` Some) or shard channel.
    pub fn deliver(&self, kind: Kind, pattern: &[u8], channel: &[u8], msg: &[u8]) {
        let (list, word) = match kind {
            Kind::Channel => (self.channels.get(channel), &b"message"[..]),
            Kind::Pattern => (self.patterns.get(pattern), &b"pmessage"[..]),
            Kind::Shard => (self.shard.get(channel), &b"smessage"[..]),
        };
        let pattern = (kind == Kind::Pattern).then_some(pattern);
        for h in list.into_iter().flatten() {
            let proto = h.proto.load(Ordering::Relaxed);
            h.mailbox.put(|out| encode_message(out, proto, word, pattern, channel, msg));
        }
    }

    /// How many would receive a message on `channel`.
    pub fn receivers(&self, channel: &[u8]) -> usize {
        self.channels.get(channel).map_or(0, Vec::len)
            + self
                .patterns
                .iter()
                .filter(|(p, _)| glob_match(p, channel))
                .map(|(_, l)| l.len())
                .sum::<usize>()
    }

    /// Delivers a shard-channel message; returns how many clients received it (a proxy's
    /// feed not counted, as for [`publish`](Self::publish)).
    pub fn spublish(&self, channel: &[u8], msg: &[u8]) -> usize {
        let Some(list) = self.shard.get(channel) else { return 0 };
        for h in list {
            let proto = h.proto.load(Ordering::Relaxed);
            h.mailbox.put(|out| encode_message(out, proto, b"smessage", None, channel, msg));
        }
        list.iter().filter(|h| !h.home_only.load(Ordering::Relaxed)).count()
    }

    /// How many of this node's clients would receive a shard-channel message.
    pub fn shard_receivers(&self, channel: &[u8]) -> usize {
        self.shard.get(channel).map_or(0, Vec::len)
    }

    /// Whether nobody subscribes to anything (events need not be made).
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty() && self.patterns.is_empty()
    }

    /// Active channels (or shard channels) matching `pattern` (all without one).
    pub fn active(&self, shard: bool, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let table = if shard { &self.shard } else { &self.channels };
        table.keys().filter(|c| pattern.is_none_or(|p| glob_match(p, c))).cloned().collect()
    }

    /// Subscribers of a channel (or shard channel).
    pub fn numsub(&self, shard: bool, channel: &[u8]) -> usize {
        let table = if shard { &self.shard } else { &self.channels };
        table.get(channel).map_or(0, Vec::len)
    }

    pub fn numpat(&self) -> usize {
        self.patterns.len()
    }

    /// Every channel, pattern and shard channel with a subscriber (the proxy's feeds
    /// subscribe to these on the shards).
    pub fn wanted(&self) -> (Vec<Bytes>, Vec<Bytes>, Vec<Bytes>) {
        (
            self.channels.keys().cloned().collect(),
            self.patterns.keys().cloned().collect(),
            self.shard.keys().cloned().collect(),
        )
    }

    /// Sends a MONITOR line about a command to every monitor.
    pub fn feed_monitors(&self, line: impl Fn(&mut BytesMut)) {
        for m in &self.monitors {
            m.mailbox.put(&line);
        }
    }
}

/// After a command (`name` and `args`; None for the server's own changes, as active expiry)
/// by client `by` (0: the server): the keyspace events and invalidations of the keys it
/// touched.
pub fn changes(state: &mut State, name: Option<&str>, args: &[Bytes], by: u64, now: u64) {
    let mut touched = Vec::new();
    let flushed = state.keyspace.take_touched(&mut touched);
    if touched.is_empty() && !flushed {
        return;
    }
    state.tracking.offset = state.node_offset();
    let State { tracking, pubsub, keyspace, notify: flags, .. } = state;
    if !tracking.is_empty() {
        tracking.current = by;
        if flushed {
            tracking.flushed(pubsub);
        }
        for (_, key, _) in &touched {
            tracking.invalidate(key, by, pubsub);
        }
    }
    if *flags != 0 && !pubsub.is_empty() {
        let mut made = Vec::new();
        events::for_command(name, args, &touched, |db, k| keyspace.dbs[db].peek(k, now).is_some(), &mut made);
        for (class, event, db, key) in made {
            notify(pubsub, *flags, class, event, db, &key);
        }
    }
}

/// Publishes one keyspace event on this node, as `notify-keyspace-events` asks.
pub fn notify(pubsub: &PubSub, flags: u32, class: u32, event: &str, db: usize, key: &[u8]) {
    if !events::wanted(flags, class) {
        return;
    }
    let mut channel = BytesMut::with_capacity(24 + key.len().max(event.len()));
    if flags & events::KEYSPACE != 0 {
        channel.extend_from_slice(format!("__keyspace@{db}__:").as_bytes());
        channel.extend_from_slice(key);
        pubsub.publish(&channel, event.as_bytes(), true);
        channel.clear();
    }
    if flags & events::KEYEVENT != 0 {
        channel.extend_from_slice(format!("__keyevent@{db}__:{event}").as_bytes());
        pubsub.publish(&channel, key, true);
    }
}

/// A read found no `key`: the `keymiss` event, when notify-keyspace-events has `m`.
#[inline]
pub fn key_miss(pubsub: &PubSub, flags: u32, db: usize, key: &[u8]) {
    if flags & events::KEY_MISS != 0 {
        notify(pubsub, flags, events::KEY_MISS, "keymiss", db, key);
    }
}

/// A MONITOR line: `+<unix time with microseconds> [<db> <addr>] "arg" ...`, each argument
/// quoted as Redis's sdscatrepr quotes it.
pub fn monitor_line(out: &mut BytesMut, db: usize, addr: &str, args: &[Bytes]) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    out.put_u8(b'+');
    out.put_slice(format!("{}.{:06} [{db} {addr}]", now.as_secs(), now.subsec_micros()).as_bytes());
    for (i, a) in args.iter().enumerate() {
        out.put_u8(b' ');
        if i >= 1 && args[0].eq_ignore_ascii_case(b"auth") {
            out.put_slice(b"\"(redacted)\"");
            continue;
        }
        quote(out, a);
    }
    out.put_slice(b"\r\n");
}

/// Quotes bytes as Redis's sdscatrepr does.
pub fn quote(out: &mut BytesMut, s: &[u8]) {
    out.put_u8(b'"');
    for &c in s {
        match c {
            b'\\' => out.put_slice(b"\\\\"),
            b'"' => out.put_slice(b"\\\""),
            b'\n' => out.put_slice(b"\\n"),
            b'\r' => out.put_slice(b"\\r"),
            b'\t' => out.put_slice(b"\\t"),
            7 => out.put_slice(b"\\a"),
            8 => out.put_slice(b"\\b"),
            c if c.is_ascii_graphic() || c == b' ' => out.put_u8(c),
            c => out.put_slice(format!("\\x{c:02x}").as_bytes()),
        }
    }
    out.put_u8(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_quotes_as_redis() {
        let mut out = BytesMut::new();
        quote(&mut out, b"a\"b\\\n\x01 c");
        assert_eq!(&out[..], b"\"a\\\"b\\\\\\n\\x01 c\"");
    }

    #[test]
    fn messages_in_both_protocols() {
        let mut out = BytesMut::new();
        encode_message(&mut out, 2, b"message", None, b"ch", b"hi");
        assert_eq!(&out[..], b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
        out.clear();
        encode_message(&mut out, 3, b"pmessage", Some(b"c*"), b"ch", b"hi");
        assert_eq!(&out[..], b">4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$2\r\nhi\r\n");
    }
}
