//! Lists: Redis 7.0's quicklist, a sequence of listpack nodes, each bounded by
//! `list-max-listpack-size` (a negative value: bytes per node, -2 = 8 KB; a positive one:
//! elements per node, and at most 8 KB). Pushes and pops at either end touch one node; an
//! index walks the nodes by their counts from the nearer end, as Redis does.
//!
//! A list of one node (most lists) is that listpack alone: the key's entry points at it
//! directly, with no node array. OBJECT ENCODING says `quicklist` for every list, as Redis
//! 7.0 does, and RDB and DUMP carry the nodes as Redis 7.0's QUICKLIST_2 type.

use std::borrow::Cow;

use bytes::Bytes;

use super::listpack::{Item, Listpack};
use crate::persistence::rdb::{lzf_compress, lzf_decompress};

/// The size rule for nodes (`list-max-listpack-size`) and how many nodes at each end stay
/// uncompressed (`list-compress-depth`; 0: none is compressed).
#[derive(Debug, Clone, Copy)]
pub struct ListLimits {
    pub fill: i64,
    pub compress: usize,
}

impl Default for ListLimits {
    fn default() -> Self {
        ListLimits { fill: -2, compress: 0 }
    }
}

/// The most bytes a node takes when the rule counts elements (Redis's SIZE_SAFETY_LIMIT).
const SAFETY_LIMIT: usize = 8192;

impl ListLimits {
    /// Whether `node` may take one more element of `len` bytes.
    fn allows(&self, node: &Listpack, len: usize) -> bool {
        if node.is_empty() {
            return true;
        }
        // An element costs its bytes plus at most 11 of encoding and backlen.
        let size = node.as_bytes().len() + len + 11;
        if self.fill >= 0 {
            return node.len() < self.fill as usize && size <= SAFETY_LIMIT;
        }
        size <= self.max_bytes()
    }

    fn max_bytes(&self) -> usize {
        4096 << (self.fill.clamp(-5, -1).unsigned_abs() - 1)
    }

    /// Whether `node` is past the rule (after a replacement or an insertion in its middle).
    fn exceeded(&self, node: &Listpack) -> bool {
        node.len() > 1
            && if self.fill >= 0 {
                node.len() > self.fill.max(1) as usize || node.as_bytes().len() > SAFETY_LIMIT
            } else {
                node.as_bytes().len() > self.max_bytes()
            }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum List {
    /// A list of one node.
    Packed(Listpack),
    /// Several nodes (never empty ones), with the element count.
    Quick(Box<Quick>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quick {
    nodes: Vec<Node>,
    len: usize,
}

/// A node: its listpack, or (an interior node of a list with `list-compress-depth`) the
/// listpack LZF-compressed, as Redis's quicklist compresses nodes away from the ends.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Plain(Listpack),
    Lzf { data: Box<[u8]>, raw: usize, count: usize },
}

/// Nodes smaller than this are not worth compressing (Redis's MIN_COMPRESS_BYTES).
const MIN_COMPRESS_BYTES: usize = 48;

impl Node {
    fn count(&self) -> usize {
        match self {
            Node::Plain(lp) => lp.len(),
            Node::Lzf { count, .. } => *count,
        }
    }

    fn open(&self) -> Cow<'_, Listpack> {
        match self {
            Node::Plain(lp) => Cow::Borrowed(lp),
            Node::Lzf { data, raw, .. } => Cow::Owned(
                lzf_decompress(data, *raw)
                    .and_then(|b| Listpack::from_bytes(b).ok())
                    .expect("a node compressed here decompresses"),
            ),
        }
    }

    fn into_plain(self) -> Listpack {
        match self {
            Node::Plain(lp) => lp,
            lzf => lzf.open().into_owned(),
        }
    }

    fn plain(&mut self) -> &mut Listpack {
        if let Node::Lzf { .. } = self {
            *self = Node::Plain(self.open().into_owned());
        }
        match self {
            Node::Plain(lp) => lp,
            Node::Lzf { .. } => unreachable!("decompressed above"),
        }
    }

    /// Compressed or not, as its place asks; compression is kept only when it saves 8 bytes.
    fn settle(&mut self, compressed: bool) {
        match (&*self, compressed) {
            (Node::Plain(lp), true) if lp.as_bytes().len() >= MIN_COMPRESS_BYTES => {
                let bytes = lp.as_bytes();
                if let Some(data) = lzf_compress(bytes).filter(|d| d.len() + 8 <= bytes.len()) {
                    *self = Node::Lzf { data: data.into_boxed_slice(), raw: bytes.len(), count: lp.len() };
                }
            }
            (Node::Lzf { .. }, false) => {
                self.plain();
            }
            _ => {}
        }
    }

    fn heap_size(&self) -> usize {
        match self {
            Node::Plain(lp) => lp.heap_size(),
            Node::Lzf { data, .. } => data.len(),
        }
    }
}

impl Quick {
    /// Compresses the nodes more than `depth` away from both ends and keeps the others plain.
    fn settle(&mut self, depth: usize) {
        let n = self.nodes.len();
        if depth == 0 && !self.nodes.iter().any(|node| matches!(node, Node::Lzf { .. })) {
            return;
        }
        for (i, node) in self.nodes.iter_mut().enumerate() {
            node.settle(depth > 0 && i >= depth && i + depth < n);
        }
    }
}

impl Default for List {
    fn default() -> Self {
        List::Packed(Listpack::new())
    }
}

/// Where element `i` of a list is: its node and its offset in the node.
struct At {
    node: usize,
    offset: usize,
}

impl List {
    pub fn len(&self) -> usize {
        match self {
            List::Packed(lp) => lp.len(),
            List::Quick(q) => q.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The listpack nodes, in order (what RDB saves); compressed ones decompressed.
    pub fn nodes(&self) -> Vec<Cow<'_, Listpack>> {
        match self {
            List::Packed(lp) => vec![Cow::Borrowed(lp)],
            List::Quick(q) => q.nodes.iter().map(Node::open).collect(),
        }
    }

    /// How many nodes there are.
    fn node_len(&self) -> usize {
        match self {
            List::Packed(_) => 1,
            List::Quick(q) => q.nodes.len(),
        }
    }

    /// How many elements node `i` holds, without decompressing it.
    fn count_of(&self, i: usize) -> usize {
        match self {
            List::Packed(lp) => lp.len(),
            List::Quick(q) => q.nodes[i].count(),
        }
    }

    /// Node `i`'s listpack (decompressed if it is compressed).
    fn node(&self, i: usize) -> Cow<'_, Listpack> {
        match self {
            List::Packed(lp) => Cow::Borrowed(lp),
            List::Quick(q) => q.nodes[i].open(),
        }
    }

    /// A list of these nodes (from RDB); empty ones are dropped.
    pub fn from_nodes(nodes: Vec<Listpack>) -> List {
        List::from_nodes_compressed(nodes, 0)
    }

    /// [`List::from_nodes`], compressing interior nodes past `depth` from each end.
    fn from_nodes_compressed(nodes: Vec<Listpack>, depth: usize) -> List {
        let mut nodes: Vec<Listpack> = nodes.into_iter().filter(|n| !n.is_empty()).collect();
        match nodes.len() {
            0 => List::default(),
            1 => List::Packed(nodes.pop().expect("one node")),
            _ => {
                let len = nodes.iter().map(Listpack::len).sum();
                let mut q = Quick { nodes: nodes.into_iter().map(Node::Plain).collect(), len };
                q.settle(depth);
                List::Quick(Box::new(q))
            }
        }
    }

    pub fn heap_size(&self) -> usize {
        match self {
            List::Packed(lp) => lp.heap_size(),
            List::Quick(q) => {
                std::mem::size_of::<Quick>()
                    + q.nodes.capacity() * std::mem::size_of::<Node>()
                    + q.nodes.iter().map(Node::heap_size).sum::<usize>()
            }
        }
    }

    /// Every element, in order.
    pub fn for_each(&self, mut f: impl FnMut(Item<'_>)) {
        for node in self.nodes() {
            node.iter().for_each(|(item, _)| f(item));
        }
    }

    /// Changes the nodes as a Vec: afterwards empty nodes go, nodes past the rule are split,
    /// and a single node is kept alone again.
    fn edit<R>(&mut self, limits: &ListLimits, f: impl FnOnce(&mut Vec<Listpack>) -> R) -> R {
        let mut nodes = match std::mem::take(self) {
            List::Packed(lp) => vec![lp],
            List::Quick(q) => q.nodes.into_iter().map(Node::into_plain).collect(),
        };
        let out = f(&mut nodes);
        let mut fixed = Vec::with_capacity(nodes.len());
        for node in nodes {
            if limits.exceeded(&node) {
                split(node, limits, &mut fixed);
            } else {
                fixed.push(node);
            }
        }
        *self = List::from_nodes_compressed(fixed, limits.compress);
        out
    }

    /// Adds `v` at the head (`front`) or the tail.
    pub fn push(&mut self, front: bool, v: &[u8], limits: &ListLimits) {
        match self {
            List::Packed(lp) if limits.allows(lp, v.len()) => push_into(lp, front, v),
            List::Quick(q) => {
                let end = if front { 0 } else { q.nodes.len() - 1 };
                let node = q.nodes[end].plain();
                if limits.allows(node, v.len()) {
                    push_into(node, front, v);
                } else {
                    let mut lp = Listpack::new();
                    lp.push(v);
                    q.nodes.insert(if front { 0 } else { q.nodes.len() }, Node::Plain(lp));
                    q.settle(limits.compress);
                }
                q.len += 1;
            }
            List::Packed(lp) => {
                let mut fresh = Listpack::new();
                fresh.push(v);
                let old = std::mem::take(lp);
                let nodes = if front { vec![fresh, old] } else { vec![old, fresh] };
                let len = nodes.iter().map(Listpack::len).sum();
                let nodes = nodes.into_iter().map(Node::Plain).collect();
                *self = List::Quick(Box::new(Quick { nodes, len }));
            }
        }
    }

    /// Takes the element at the head (`front`) or the tail.
    pub fn pop(&mut self, front: bool) -> Option<Bytes> {
        match self {
            List::Packed(lp) => {
                let at = if front { lp.first()? } else { lp.last()? };
                let v = lp.get(at).to_bytes();
                lp.remove(at, 1);
                Some(v)
            }
            List::Quick(q) => {
                let end = if front { 0 } else { q.nodes.len() - 1 };
                let node = q.nodes[end].plain();
                let at = if front { node.first() } else { node.last() }.expect("no empty nodes");
                let v = node.get(at).to_bytes();
                node.remove(at, 1);
                q.len -= 1;
                if node.is_empty() {
                    q.nodes.remove(end);
                    if q.nodes.len() == 1 {
                        let last = q.nodes.pop().expect("one node").into_plain();
                        *self = List::Packed(last);
                    } else {
                        // A node that was interior may be at an end now.
                        let n = q.nodes.len();
                        let next = if front { 0 } else { n - 1 };
                        q.nodes[next].plain();
                    }
                }
                Some(v)
            }
        }
    }

    /// Where element `i` (0-based, < len) is, walking from the nearer end.
    fn locate(&self, i: usize) -> At {
        // Node counts from the nearer end (each read from its node's header, so a walk stops
        // as soon as it can); only the node that holds `i` is opened (decompressed).
        let len = self.len();
        if i < len / 2 + 1 {
            let mut skipped = 0;
            for n in 0..self.node_len() {
                let count = self.count_of(n);
                if i < skipped + count {
                    let node = self.node(n);
                    let mut at = node.first().expect("no empty nodes");
                    for _ in 0..i - skipped {
                        at = node.next(at).expect("within the node's count");
                    }
                    return At { node: n, offset: at };
                }
                skipped += count;
            }
        } else {
            let mut from_end = len - 1 - i;
            for n in (0..self.node_len()).rev() {
                let count = self.count_of(n);
                if from_end < count {
                    let node = self.node(n);
                    let mut at = node.last().expect("no empty nodes");
                    for _ in 0..from_end {
                        at = node.prev(at).expect("within the node's count");
                    }
                    return At { node: n, offset: at };
                }
                from_end -= count;
            }
        }
        unreachable!("index {i} within a list of {len}")
    }

    /// Element `i`, counted from the head (negative: from the tail, as LINDEX).
    pub fn get(&self, i: i64) -> Option<Bytes> {
        let i = self.index(i)?;
        let at = self.locate(i);
        Some(self.node(at.node).get(at.offset).to_bytes())
    }

    /// A Redis index (negative from the end) as a position, if within the list.
    pub fn index(&self, i: i64) -> Option<usize> {
        let len = self.len() as i64;
        let i = if i < 0 { len + i } else { i };
        (0..len).contains(&i).then_some(i as usize)
    }

    /// Every element, in order.
    pub fn range_all(&self) -> Vec<Bytes> {
        if self.is_empty() {
            return Vec::new();
        }
        self.range(0, self.len() - 1)
    }

    /// Elements `from..=to` (positions within the list), in order.
    pub fn range(&self, from: usize, to: usize) -> Vec<Bytes> {
        let mut out = Vec::with_capacity(to + 1 - from);
        let At { node, offset } = self.locate(from);
        let mut at = Some(offset);
        'nodes: for n in node..self.node_len() {
            let lp = self.node(n);
            let mut off = at.take().or_else(|| lp.first());
            while let Some(o) = off {
                out.push(lp.get(o).to_bytes());
                if out.len() == to + 1 - from {
                    break 'nodes;
                }
                off = lp.next(o);
            }
        }
        out
    }

    /// Elements `from..=to` encoded as a RESP array of bulk strings (the same bytes in RESP2
    /// and RESP3), written straight from the nodes: LRANGE's reply with no per-element copy.
    pub fn encode_range(&self, from: usize, to: usize) -> Bytes {
        let n = to + 1 - from;
        let mut out = Vec::with_capacity(16 + n * 16);
        out.push(b'*');
        out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        out.extend_from_slice(b"\r\n");
        let At { node, offset } = self.locate(from);
        let mut left = n;
        let mut at = Some(offset);
        let mut digits = itoa::Buffer::new();
        let mut value = Vec::new();
        'nodes: for n in node..self.node_len() {
            let lp = self.node(n);
            let mut off = at.take().or_else(|| lp.first());
            while let Some(o) = off {
                let bytes: &[u8] = match lp.get(o) {
                    Item::Str(s) => s,
                    Item::Int(i) => {
                        value.clear();
                        value.extend_from_slice(digits.format(i).as_bytes());
                        &value
                    }
                };
                out.push(b'$');
                out.extend_from_slice(itoa::Buffer::new().format(bytes.len()).as_bytes());
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(bytes);
                out.extend_from_slice(b"\r\n");
                left -= 1;
                if left == 0 {
                    break 'nodes;
                }
                off = lp.next(o);
            }
        }
        Bytes::from(out)
    }

    /// Replaces element `i` (a position); false if there is none.
    pub fn set(&mut self, i: usize, v: &[u8], limits: &ListLimits) -> bool {
        if i >= self.len() {
            return false;
        }
        let at = self.locate(i);
        self.edit(limits, |nodes| nodes[at.node].replace(at.offset, v));
        true
    }

    /// Inserts `v` before or after the first element equal to `pivot`; false when there is none.
    pub fn insert(&mut self, pivot: &[u8], after: bool, v: &[u8], limits: &ListLimits) -> bool {
        let found = self.nodes().iter().enumerate().find_map(|(n, lp)| {
            lp.iter().find(|(item, _)| item.eq_bytes(pivot)).map(|(_, offset)| At { node: n, offset })
        });
        let Some(at) = found else { return false };
        self.edit(limits, |nodes| {
            let lp = &mut nodes[at.node];
            let offset = if after { lp.next(at.offset).unwrap_or(lp.end()) } else { at.offset };
            lp.insert(offset, v);
        });
        true
    }

    /// Removes up to `count` elements equal to `v` (all when 0), from the head (count > 0) or
    /// the tail (count < 0), as LREM; returns how many.
    pub fn remove(&mut self, count: i64, v: &[u8], limits: &ListLimits) -> usize {
        let limit = if count == 0 { usize::MAX } else { count.unsigned_abs() as usize };
        let from_tail = count < 0;
        self.edit(limits, |nodes| {
            let mut removed = 0;
            let order: Vec<usize> =
                if from_tail { (0..nodes.len()).rev().collect() } else { (0..nodes.len()).collect() };
            for n in order {
                if removed == limit {
                    break;
                }
                let lp = &mut nodes[n];
                let mut hits: Vec<usize> =
                    lp.iter().filter(|(item, _)| item.eq_bytes(v)).map(|(_, offset)| offset).collect();
                if from_tail {
                    hits.reverse();
                }
                hits.truncate(limit - removed);
                removed += hits.len();
                // Later offsets first, so earlier ones stay valid.
                hits.sort_unstable_by(|a, b| b.cmp(a));
                for offset in hits {
                    lp.remove(offset, 1);
                }
            }
            removed
        })
    }

    /// Keeps only positions `from..=to` (nothing when `from > to`), as LTRIM.
    pub fn trim(&mut self, from: usize, to: usize, limits: &ListLimits) {
        let len = self.len();
        if from > to || from >= len {
            *self = List::default();
            return;
        }
        let (head, tail) = (from, len - 1 - to.min(len - 1));
        self.edit(limits, |nodes| {
            drop_elements(nodes, head, true);
            drop_elements(nodes, tail, false);
        });
    }

    /// Positions of elements equal to `v` as LPOS looks for them: from the `rank`th match
    /// (negative: counting from the tail), at most `count` (0: all), within the first
    /// `maxlen` elements compared (0: all).
    pub fn positions(&self, v: &[u8], rank: i64, count: usize, maxlen: usize) -> Vec<usize> {
        let len = self.len();
        let maxlen = if maxlen == 0 { usize::MAX } else { maxlen };
        let mut skip = rank.unsigned_abs() as usize - 1;
        let mut out = Vec::new();
        let mut check = |pos: usize, item: Item<'_>| {
            if item.eq_bytes(v) {
                if skip > 0 {
                    skip -= 1;
                } else {
                    out.push(pos);
                    if count != 0 && out.len() == count {
                        return false;
                    }
                }
            }
            true
        };
        let nodes = self.nodes();
        if rank > 0 {
            let mut pos = 0;
            'f: for lp in nodes {
                for (item, _) in lp.iter() {
                    if pos == maxlen || !check(pos, item) {
                        break 'f;
                    }
                    pos += 1;
                }
            }
        } else {
            let mut pos = len;
            'b: for lp in nodes.iter().rev() {
                let mut at = lp.last();
                while let Some(o) = at {
                    if len - pos == maxlen {
                        break 'b;
                    }
                    pos -= 1;
                    if !check(pos, lp.get(o)) {
                        break 'b;
                    }
                    at = lp.prev(o);
                }
            }
        }
        out
    }
}

/// Adds `v` at the head or tail of a node.
fn push_into(lp: &mut Listpack, front: bool, v: &[u8]) {
    if front {
        lp.insert(lp.first().unwrap_or(lp.end()), v);
    } else {
        lp.push(v);
    }
}

/// Removes `n` elements from the head (`front`) or the tail of the nodes.
fn drop_elements(nodes: &mut Vec<Listpack>, mut n: usize, front: bool) {
    while n > 0 && !nodes.is_empty() {
        let end = if front { 0 } else { nodes.len() - 1 };
        let count = nodes[end].len();
        if count <= n {
            nodes.remove(end);
            n -= count;
            continue;
        }
        let lp = &mut nodes[end];
        if front {
            lp.remove(lp.first().expect("not empty"), n);
        } else {
            let mut at = lp.last().expect("not empty");
            for _ in 1..n {
                at = lp.prev(at).expect("within the node's count");
            }
            lp.remove(at, n);
        }
        n = 0;
    }
}

/// Splits a node past the rule into nodes that keep it, in order.
fn split(node: Listpack, limits: &ListLimits, out: &mut Vec<Listpack>) {
    let mut current = Listpack::new();
    for (item, _) in node.iter() {
        let mut bytes = Vec::new();
        item.write_to(&mut bytes);
        if !current.is_empty() && !limits.allows(&current, bytes.len()) {
            out.push(std::mem::take(&mut current));
        }
        current.push(&bytes);
    }
    if !current.is_empty() {
        out.push(current);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(l: &List) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        l.for_each(|i| {
            let mut b = Vec::new();
            i.write_to(&mut b);
            out.push(b)
        });
        out
    }

    /// Every operation against a VecDeque model, with nodes of 3 elements (so lists span many
    /// nodes) and of 128 bytes.
    #[test]
    fn agrees_with_a_model() {
        for (fill, compress) in [(3, 0), (-1, 0), (0, 0), (3, 1), (2, 2), (-1, 1)] {
            let limits = ListLimits { fill, compress };
            let mut l = List::default();
            let mut model: std::collections::VecDeque<Vec<u8>> = Default::default();
            let mut seed = 11u64.wrapping_add(fill as u64).wrapping_add(compress as u64 * 7);
            let mut packed_seen = false;
            for step in 0..4000 {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let r = (seed >> 33) as usize;
                // Wide values where nodes are compressed, so interior nodes pass the
                // compression threshold (48 bytes).
                let width = if compress > 0 { 20 } else { 1 };
                let v = format!("{:0>width$}", r % 13).into_bytes();
                match r % 11 {
                    0..=2 => {
                        l.push(true, &v, &limits);
                        model.push_front(v.clone());
                    }
                    3..=4 => {
                        l.push(false, &v, &limits);
                        model.push_back(v.clone());
                    }
                    5 => assert_eq!(l.pop(true).map(|b| b.to_vec()), model.pop_front()),
                    6 => assert_eq!(l.pop(false).map(|b| b.to_vec()), model.pop_back()),
                    7 if !model.is_empty() => {
                        let i = r % model.len();
                        assert!(l.set(i, b"x", &limits));
                        model[i] = b"x".to_vec();
                        if let List::Quick(q) = &l {
                            // The end nodes, where pushes and pops go, are never compressed.
                            let n = q.nodes.len();
                            assert!(
                                matches!(q.nodes[0], Node::Plain(_))
                                    && matches!(q.nodes[n - 1], Node::Plain(_))
                            );
                            packed_seen |= q.nodes.iter().any(|node| matches!(node, Node::Lzf { .. }));
                        }
                    }
                    8 => {
                        let after = r.is_multiple_of(2);
                        let found = model.iter().position(|e| *e == v);
                        assert_eq!(l.insert(&v, after, b"in", &limits), found.is_some());
                        if let Some(p) = found {
                            model.insert(p + after as usize, b"in".to_vec());
                        }
                    }
                    9 => {
                        let count = (r % 5) as i64 - 2;
                        let removed = l.remove(count, &v, &limits);
                        let mut want = if count == 0 { usize::MAX } else { count.unsigned_abs() as usize };
                        let mut kept: Vec<Vec<u8>> = Vec::new();
                        let mut n = 0;
                        let items: Vec<Vec<u8>> = if count < 0 {
                            model.iter().rev().cloned().collect()
                        } else {
                            model.iter().cloned().collect()
                        };
                        for e in items {
                            if e == v && want > 0 {
                                want -= 1;
                                n += 1;
                            } else {
                                kept.push(e);
                            }
                        }
                        if count < 0 {
                            kept.reverse();
                        }
                        model = kept.into();
                        assert_eq!(removed, n);
                    }
                    10 if step % 50 == 0 && model.len() > 4 => {
                        let (a, b) = (1, model.len() - 2);
                        l.trim(a, b, &limits);
                        model = model.iter().skip(a).take(b + 1 - a).cloned().collect();
                    }
                    _ => {}
                }
                assert_eq!(l.len(), model.len());
                if step % 37 == 0 {
                    assert_eq!(all(&l), model.iter().cloned().collect::<Vec<_>>());
                    for (i, e) in model.iter().enumerate() {
                        assert_eq!(l.get(i as i64).unwrap().to_vec(), *e);
                    }
                    if !model.is_empty() {
                        let got: Vec<Vec<u8>> =
                            l.range(0, model.len() - 1).iter().map(|b| b.to_vec()).collect();
                        assert_eq!(got, model.iter().cloned().collect::<Vec<_>>());
                        let mid = model.len() / 2;
                        assert_eq!(l.range(mid, mid)[0].to_vec(), model[mid]);
                        let mut resp = format!("*{}\r\n", model.len() - mid).into_bytes();
                        for e in model.iter().skip(mid) {
                            resp.extend_from_slice(format!("${}\r\n", e.len()).as_bytes());
                            resp.extend_from_slice(e);
                            resp.extend_from_slice(b"\r\n");
                        }
                        assert_eq!(l.encode_range(mid, model.len() - 1).to_vec(), resp);
                    }
                    assert!(l.nodes().iter().all(|n| !n.is_empty() || model.is_empty()));
                    let pos: Vec<usize> =
                        model.iter().enumerate().filter(|(_, e)| **e == v).map(|(i, _)| i).collect();
                    assert_eq!(l.positions(&v, 1, 0, 0), pos);
                    let mut rev = pos.clone();
                    rev.reverse();
                    assert_eq!(l.positions(&v, -1, 0, 0), rev);
                    assert_eq!(
                        l.positions(&v, 2, 1, 0),
                        pos.iter().skip(1).take(1).cloned().collect::<Vec<_>>()
                    );
                }
            }
            // Where nodes are compressed, some interior node was while the model ran.
            assert_eq!(packed_seen, compress > 0, "fill {fill} compress {compress}");
        }
    }

    #[test]
    fn nodes_keep_the_size_rule() {
        let limits = ListLimits { fill: -1, compress: 0 };
        let mut l = List::default();
        for i in 0..10_000 {
            l.push(i % 2 == 0, format!("element-{i:06}").as_bytes(), &limits);
        }
        assert!(l.nodes().len() > 10);
        assert!(l.nodes().iter().all(|n| n.as_bytes().len() <= 4096));
        let one = List::from_nodes(vec![l.nodes()[0].clone().into_owned()]);
        assert!(matches!(one, List::Packed(_)));
        // list-compress-depth 1: every node but the two ends is compressed, and reads see
        // the same elements.
        let deep = ListLimits { fill: -1, compress: 1 };
        let mut c = List::default();
        for i in 0..10_000 {
            c.push(i % 2 == 0, format!("element-{i:06}").as_bytes(), &deep);
        }
        let List::Quick(q) = &c else { panic!("several nodes") };
        let n = q.nodes.len();
        assert!(matches!(q.nodes[0], Node::Plain(_)) && matches!(q.nodes[n - 1], Node::Plain(_)));
        assert!(q.nodes[1..n - 1].iter().all(|node| matches!(node, Node::Lzf { .. })));
        assert!(c.heap_size() * 2 < l.heap_size(), "{} vs {}", c.heap_size(), l.heap_size());
        assert_eq!(c.range_all(), l.range_all());
        assert_eq!(c.get(5000), l.get(5000));
        assert_eq!(c.encode_range(100, 9000), l.encode_range(100, 9000));
    }
}
