//! Client-side caching: CLIENT TRACKING's tables and invalidation messages, as Redis 7.0.
//!
//! Default mode remembers, per key, the clients that read it (any database: Redis's table
//! is keyed by name alone) and tells each once when it changes, then forgets. BCAST mode
//! tells every client with a matching prefix about every change, batched: the keys changed
//! by one batch of commands go out in one message per prefix.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use super::{bulk, push_header, PubSub};
use crate::server::ClientHandle;

type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The channel RESP2 clients take invalidations on, through REDIRECT.
pub const CHANNEL: &[u8] = b"__redis__:invalidate";

/// One tracking client's options.
pub struct Tracker {
    pub handle: Arc<ClientHandle>,
    /// The connection invalidations go to instead (REDIRECT), by id.
    pub redirect: Option<(u64, Arc<ClientHandle>)>,
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    pub prefixes: Vec<Bytes>,
    /// The redirect target went away (TRACKINGINFO's `broken_redirect`).
    pub broken: std::sync::atomic::AtomicBool,
}

/// A BCAST prefix: its clients, and the keys changed under it not yet told (with the
/// client that changed each, for NOLOOP).
#[derive(Default)]
struct Prefix {
    clients: Vec<u64>,
    pending: Vec<(Bytes, u64)>,
}

#[derive(Default)]
pub struct Tracking {
    pub clients: Map<u64, Tracker>,
    keys: Map<Bytes, Vec<u64>>,
    prefixes: Vec<(Bytes, Prefix)>,
    /// The client whose command is running, and the messages for it, which go after its
    /// reply (Redis 7.0 postpones them so they never land inside the reply).
    pub current: u64,
    pub own: BytesMut,
    /// Keep a key's readers after telling them (the proxy: it cannot tell whether a read in
    /// flight to a shard ran before or after the change it hears of, so it keeps telling).
    pub keep: bool,
    /// This node's replication offset as of the change being told: a proxy's feed gets it
    /// with each invalidation, so that its client's next read sees at least that much.
    pub offset: u64,
}

impl Tracking {
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// Turns tracking on (or changes its options) for a client.
    pub fn enable(&mut self, t: Tracker) {
        let id = t.handle.id;
        for p in &t.prefixes {
            let prefix = match self.prefixes.iter_mut().find(|(q, _)| q == p) {
                Some((_, prefix)) => prefix,
                None => {
                    self.prefixes.push((p.clone(), Prefix::default()));
                    &mut self.prefixes.last_mut().expect("pushed").1
                }
            };
            if !prefix.clients.contains(&id) {
                prefix.clients.push(id);
            }
        }
        self.clients.insert(id, t);
    }

    /// Turns tracking off for a client: its prefixes go; its keys are forgotten lazily.
    pub fn disable(&mut self, id: u64) {
        let Some(t) = self.clients.remove(&id) else { return };
        for p in &t.prefixes {
            if let Some(i) = self.prefixes.iter().position(|(q, _)| q == p) {
                let prefix = &mut self.prefixes[i].1;
                prefix.clients.retain(|c| *c != id);
                if prefix.clients.is_empty() {
                    self.prefixes.swap_remove(i);
                }
            }
        }
    }

    /// Whether a read by client `id` is to be remembered: default mode, and not opted out
    /// (OPTIN: only after CLIENT CACHING yes; OPTOUT: unless after CLIENT CACHING no).
    pub fn wants_read(&self, id: u64, caching: Option<bool>) -> bool {
        self.clients.get(&id).is_some_and(|t| {
            let opted_out = (t.optin && caching != Some(true)) || (t.optout && caching == Some(false));
            !t.bcast && !opted_out
        })
    }

    /// Remembers that client `id` read `keys` (default mode).
    pub fn remember<'a>(&mut self, id: u64, keys: impl Iterator<Item = &'a Bytes>) {
        for key in keys {
            let ids = self.keys.entry(key.clone()).or_default();
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }

    /// `key` changed, by client `by` (0: the server itself, as expiry): tells its readers at
    /// once and queues it for BCAST prefixes.
    pub fn invalidate(&mut self, key: &Bytes, by: u64, pubsub: &PubSub) {
        for (p, prefix) in &mut self.prefixes {
            if key.starts_with(p) {
                prefix.pending.push((key.clone(), by));
            }
        }
        let ids = if self.keep {
            let Some(ids) = self.keys.get_mut(key) else { return };
            ids.retain(|id| self.clients.contains_key(id));
            let ids = ids.clone();
            if ids.is_empty() {
                self.keys.remove(key);
            }
            ids
        } else {
            let Some(ids) = self.keys.remove(key) else { return };
            ids
        };
        for id in ids {
            let Some(t) = self.clients.get(&id) else { continue };
            if t.bcast || (t.noloop && id == by) {
                continue;
            }
            let keys = [key.clone()];
            Self::send(t, Some(&keys), self.current, self.offset, &mut self.own, pubsub);
        }
    }

    /// Tells BCAST clients about the keys changed under their prefixes since the last call.
    pub fn flush_bcast(&mut self, pubsub: &PubSub) {
        for (_, prefix) in &mut self.prefixes {
            if prefix.pending.is_empty() {
                continue;
            }
            let pending = std::mem::take(&mut prefix.pending);
            for id in &prefix.clients {
                let Some(t) = self.clients.get(id) else { continue };
                let keys: Vec<Bytes> = pending
                    .iter()
                    .filter(|(_, by)| !(t.noloop && by == id))
                    .map(|(k, _)| k.clone())
                    .collect();
                if !keys.is_empty() {
                    Self::send(t, Some(&keys), self.current, self.offset, &mut self.own, pubsub);
                }
            }
        }
    }

    /// Whether BCAST keys wait to be told.
    pub fn bcast_pending(&self) -> bool {
        self.prefixes.iter().any(|(_, p)| !p.pending.is_empty())
    }

    /// A database was flushed: every tracking client gets the null invalidation, and the
    /// table is forgotten.
    pub fn flushed(&mut self, pubsub: &PubSub) {
        if !self.keep {
            self.keys.clear();
        }
        for t in self.clients.values() {
            Self::send(t, None, self.current, self.offset, &mut self.own, pubsub);
        }
    }

    /// Sends one invalidation (`keys` None: everything) as Redis's sendTrackingMessage.
    fn send(
        t: &Tracker,
        keys: Option<&[Bytes]>,
        current: u64,
        offset: u64,
        own: &mut BytesMut,
        pubsub: &PubSub,
    ) {
        let (target, redirected) = match &t.redirect {
            None => (&t.handle, false),
            Some((id, target)) => {
                if target.mailbox.is_closed() {
                    t.broken.store(true, std::sync::atomic::Ordering::Relaxed);
                    // Told in RESP3 only, as Redis.
                    let proto = t.handle.proto.load(std::sync::atomic::Ordering::Relaxed);
                    if proto >= 3 {
                        put(&t.handle, current, own, |out| {
                            push_header(out, 3, 2);
                            bulk(out, b"tracking-redir-broken");
                            super::int(out, *id as i64);
                        });
                    }
                    return;
                }
                (target, true)
            }
        };
        let proto = target.proto.load(std::sync::atomic::Ordering::Relaxed);
        let subscribed = || pubsub.counts(target.id) != (0, 0);
        let value = |out: &mut BytesMut| match keys {
            Some(keys) => {
                out.put_u8(b'*');
                out.put_slice(itoa::Buffer::new().format(keys.len()).as_bytes());
                out.put_slice(b"\r\n");
                keys.iter().for_each(|k| bulk(out, k));
            }
            None => out.put_slice(if proto >= 3 { b"_\r\n" } else { b"$-1\r\n" }),
        };
        // A proxy's feed (EDIS.LISTEN) is told the node's offset too.
        let feed = target.home_only.load(std::sync::atomic::Ordering::Relaxed);
        if proto >= 3 {
            put(target, current, own, |out| {
                push_header(out, 3, if feed { 3 } else { 2 });
                bulk(out, b"invalidate");
                value(out);
                if feed {
                    super::int(out, offset as i64);
                }
            });
        } else if redirected && subscribed() {
            put(target, current, own, |out| {
                push_header(out, 2, 3);
                bulk(out, b"message");
                bulk(out, CHANNEL);
                value(out);
            });
        }
    }

    /// TRACKINGINFO's flags for a client.
    pub fn flags(&self, id: u64, caching: Option<bool>) -> Vec<&'static str> {
        let Some(t) = self.clients.get(&id) else { return vec!["off"] };
        let mut flags = vec!["on"];
        if t.bcast {
            flags.push("bcast");
        }
        if t.optin {
            flags.push("optin");
            if caching == Some(true) {
                flags.push("caching-yes");
            }
        }
        if t.optout {
            flags.push("optout");
            if caching == Some(false) {
                flags.push("caching-no");
            }
        }
        if t.noloop {
            flags.push("noloop");
        }
        if t.broken.load(std::sync::atomic::Ordering::Relaxed) {
            flags.push("broken_redirect");
        }
        flags
    }

    /// Keeps the table within `max` keys (tracking-table-max-keys; 0: no limit), as Redis
    /// does: keys over the limit are forgotten, their readers told as if they had changed.
    /// At most `effort` keys per call (the cron's), so a lowered limit takes a few ticks.
    pub fn limit(&mut self, max: usize, effort: usize, pubsub: &PubSub) {
        if max == 0 {
            return;
        }
        let over = self.keys.len().saturating_sub(max).min(effort);
        let victims: Vec<Bytes> = self.keys.keys().take(over).cloned().collect();
        for key in &victims {
            // Told only to its readers: BCAST prefixes are not about this table.
            let Some(ids) = self.keys.remove(key) else { continue };
            for id in ids {
                if let Some(t) = self.clients.get(&id).filter(|t| !t.bcast) {
                    Self::send(t, Some(std::slice::from_ref(key)), 0, self.offset, &mut self.own, pubsub);
                }
            }
        }
    }

    /// Keys remembered for default-mode clients (INFO's tracking_total_keys).
    pub fn total_keys(&self) -> usize {
        self.keys.len()
    }

    /// Reader entries over all keys (INFO's tracking_total_items).
    pub fn total_items(&self) -> usize {
        self.keys.values().map(Vec::len).sum()
    }

    pub fn total_prefixes(&self) -> usize {
        self.prefixes.len()
    }
}

/// Puts a message in a client's mailbox, or, for the client whose command is running, after
/// its reply.
fn put(target: &ClientHandle, current: u64, own: &mut BytesMut, f: impl FnOnce(&mut BytesMut)) {
    if target.id == current {
        f(own);
    } else {
        target.mailbox.put(f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(id: u64, proto: u8) -> Tracker {
        let addr = ([127, 0, 0, 1], 1).into();
        let handle = Arc::new(ClientHandle::new(id, addr, addr, -1));
        handle.proto.store(proto, std::sync::atomic::Ordering::Relaxed);
        Tracker {
            handle,
            redirect: None,
            bcast: false,
            optin: false,
            optout: false,
            noloop: false,
            prefixes: Vec::new(),
            broken: Default::default(),
        }
    }

    fn pushes(t: &Tracking, id: u64) -> usize {
        let out = t.clients[&id].handle.mailbox.take().unwrap_or_default();
        out.windows(10).filter(|w| w == b"invalidate").count()
    }

    #[test]
    fn readers_are_told_once_then_forgotten() {
        let (mut t, pubsub) = (Tracking::default(), PubSub::default());
        t.enable(tracker(1, 3));
        t.enable(tracker(2, 2)); // RESP2 without REDIRECT: nothing can be sent to it
        let k = Bytes::from_static(b"k");
        t.remember(1, [&k].into_iter());
        t.remember(2, [&k].into_iter());
        t.invalidate(&k, 0, &pubsub);
        assert_eq!(pushes(&t, 1), 1);
        assert_eq!(pushes(&t, 2), 0);
        t.invalidate(&k, 0, &pubsub);
        assert_eq!(pushes(&t, 1), 0, "told once until read again");
        assert_eq!(t.total_keys(), 0);
    }

    #[test]
    fn noloop_and_the_running_client() {
        let (mut t, pubsub) = (Tracking::default(), PubSub::default());
        let mut quiet = tracker(1, 3);
        quiet.noloop = true;
        t.enable(quiet);
        t.enable(tracker(2, 3));
        let k = Bytes::from_static(b"k");
        t.remember(1, [&k].into_iter());
        t.remember(2, [&k].into_iter());
        t.current = 2;
        t.invalidate(&k, 1, &pubsub);
        assert_eq!(pushes(&t, 1), 0, "NOLOOP: its own change");
        assert_eq!(pushes(&t, 2), 0, "the running client's message waits for its reply");
        assert!(t.own.windows(10).any(|w| w == b"invalidate"));
    }

    #[test]
    fn bcast_batches_per_prefix_and_the_table_is_bounded() {
        let (mut t, pubsub) = (Tracking::default(), PubSub::default());
        let mut b = tracker(1, 3);
        b.bcast = true;
        b.prefixes = vec![Bytes::from_static(b"user:")];
        t.enable(b);
        for key in [&b"user:1"[..], b"user:2", b"other"] {
            t.invalidate(&Bytes::copy_from_slice(key), 0, &pubsub);
        }
        assert!(t.bcast_pending());
        t.flush_bcast(&pubsub);
        let out = t.clients[&1].handle.mailbox.take().unwrap();
        assert_eq!(&out[..], b">2\r\n$10\r\ninvalidate\r\n*2\r\n$6\r\nuser:1\r\n$6\r\nuser:2\r\n");
        t.enable(tracker(2, 3));
        let keys: Vec<Bytes> = (0..10).map(|i| Bytes::from(format!("k{i}"))).collect();
        t.remember(2, keys.iter());
        t.limit(4, 100, &pubsub);
        assert_eq!(t.total_keys(), 4);
        assert_eq!(pushes(&t, 2), 6, "each forgotten key is told");
    }
}
