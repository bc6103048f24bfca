//! Sorted sets: a listpack of member, score, member, score... in (score, member) order while
//! small (at most `zset-max-listpack-entries` members, none longer than
//! `zset-max-listpack-value`), then a skiplist with spans (Redis's structure: rank and range
//! queries in O(log n)) beside a hash table from member to node.
//!
//! Every query is answered in ranks: a score or lex range becomes the half-open rank range
//! [lower, upper) of the elements in it, and ranks become elements. The commands are written
//! once against that (command/zsets.rs).

use bytes::Bytes;
use hashbrown::HashTable;

use super::listpack::{Item, Listpack};
use std::hash::BuildHasher;

/// The size rules of the listpack encoding.
#[derive(Debug, Clone, Copy)]
pub struct ZLimits {
    pub entries: usize,
    pub value: usize,
}

/// A score bound: the value and whether it is excluded (`(`).
#[derive(Debug, Clone, Copy)]
pub struct ScoreBound {
    pub value: f64,
    pub exclusive: bool,
}

/// A lex bound: `-`, `+`, `[x` (inclusive) or `(x` (exclusive).
#[derive(Debug, Clone)]
pub enum LexBound {
    Min,
    Max,
    Incl(Vec<u8>),
    Excl(Vec<u8>),
}

/// Redis's `d2string` for scores kept in a listpack: integers as integers, else `%.17g`.
pub fn score_text(score: f64) -> String {
    if score.is_infinite() {
        return if score > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if score == score.trunc() && score.abs() < 1e17 {
        return format!("{}", score as i64);
    }
    g17(score)
}

/// C's `%.17g`: what Redis 7.0 prints a double as (replies and listpack scores).
pub fn g17(d: f64) -> String {
    g_fmt(d, 17)
}

/// C's `%.<precision>g` (precision 1 to 17): `%.14g` is how Lua prints a number.
pub fn g_fmt(d: f64, precision: usize) -> String {
    let precision = precision.clamp(1, 17);
    if d.is_nan() {
        return "nan".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    if d == d.trunc() && d.abs() < 10f64.powi(precision as i32) {
        // An integer of at most `precision` digits prints as itself (the common score).
        return itoa::Buffer::new().format(d as i64).to_string();
    }
    let sci = format!("{d:.*e}", precision - 1);
    let (mantissa, exp) = sci.split_once('e').expect("scientific form");
    let exp: i32 = exp.parse().expect("an exponent");
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if !(-4..precision as i32).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{}e{sign}{:02}", trim(mantissa), exp.abs());
    }
    let decimals = (precision as i32 - 1 - exp).max(0) as usize;
    trim(&format!("{d:.decimals$}"))
}

fn parse_score(item: Item<'_>) -> f64 {
    match item {
        Item::Int(n) => n as f64,
        Item::Str(s) => std::str::from_utf8(s).ok().and_then(|t| t.parse().ok()).unwrap_or(0.0),
    }
}

fn less(a_score: f64, a_member: &[u8], b_score: f64, b_member: &[u8]) -> bool {
    a_score < b_score || (a_score == b_score && a_member < b_member)
}

impl ScoreBound {
    /// Whether `score` is at or past this bound taken as a minimum.
    fn admits_min(&self, score: f64) -> bool {
        if self.exclusive {
            score > self.value
        } else {
            score >= self.value
        }
    }
    /// Whether `score` is at or before this bound taken as a maximum.
    fn admits_max(&self, score: f64) -> bool {
        if self.exclusive {
            score < self.value
        } else {
            score <= self.value
        }
    }
}

impl LexBound {
    fn admits_min(&self, m: &[u8]) -> bool {
        match self {
            LexBound::Min => true,
            LexBound::Max => false,
            LexBound::Incl(v) => m >= &v[..],
            LexBound::Excl(v) => m > &v[..],
        }
    }
    fn admits_max(&self, m: &[u8]) -> bool {
        match self {
            LexBound::Min => false,
            LexBound::Max => true,
            LexBound::Incl(v) => m <= &v[..],
            LexBound::Excl(v) => m < &v[..],
        }
    }
}

const MAX_LEVEL: usize = 32;
const NIL: u32 = u32::MAX;
const HEAD: u32 = 0;

/// A link: the next node at this level and how many places it skips.
#[derive(Debug, Clone, Copy)]
struct Level {
    next: u32,
    span: u32,
}

const NIL_LEVEL: Level = Level { next: NIL, span: 0 };

/// A node's levels: the first four in the node itself (all but one node in 256), higher ones
/// in their own allocation. A traversal step then reads one cache line, as Redis's nodes with
/// their level array inline. (Keeping the next node's score in each link, to spare reading
/// the next node when a search does not advance, measured slower: the links no longer fit.)
const INLINE: usize = 4;

#[derive(Debug, Clone)]
struct Levels {
    inline: [Level; INLINE],
    spill: Option<Box<[Level]>>,
    height: u8,
}

impl Levels {
    fn new(height: usize) -> Levels {
        Levels {
            inline: [NIL_LEVEL; INLINE],
            spill: (height > INLINE).then(|| vec![NIL_LEVEL; height - INLINE].into_boxed_slice()),
            height: height as u8,
        }
    }

    fn len(&self) -> usize {
        self.height as usize
    }
}

impl std::ops::Index<usize> for Levels {
    type Output = Level;
    fn index(&self, i: usize) -> &Level {
        if i < INLINE {
            &self.inline[i]
        } else {
            &self.spill.as_ref().expect("a level below the height")[i - INLINE]
        }
    }
}

impl std::ops::IndexMut<usize> for Levels {
    fn index_mut(&mut self, i: usize) -> &mut Level {
        if i < INLINE {
            &mut self.inline[i]
        } else {
            &mut self.spill.as_mut().expect("a level below the height")[i - INLINE]
        }
    }
}

#[derive(Debug, Clone)]
struct Node {
    member: Box<[u8]>,
    score: f64,
    backward: u32,
    levels: Levels,
}

/// The skiplist and the member index (a hash table of node numbers, hashed by member).
#[derive(Clone)]
pub struct SkipSet {
    nodes: Vec<Node>,
    free: Vec<u32>,
    level: usize,
    len: usize,
    tail: u32,
    index: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    seed: u64,
}

impl std::fmt::Debug for SkipSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SkipSet").field("len", &self.len).finish()
    }
}

impl SkipSet {
    fn new() -> SkipSet {
        let head = Node { member: Box::new([]), score: 0.0, backward: NIL, levels: Levels::new(MAX_LEVEL) };
        SkipSet {
            nodes: vec![head],
            free: Vec::new(),
            level: 1,
            len: 0,
            tail: NIL,
            index: HashTable::new(),
            hasher: Default::default(),
            seed: 0x9E37_79B9_7F4A_7C15,
        }
    }

    fn random_level(&mut self) -> usize {
        let mut level = 1;
        loop {
            self.seed ^= self.seed << 13;
            self.seed ^= self.seed >> 7;
            self.seed ^= self.seed << 17;
            if !self.seed.is_multiple_of(4) || level >= MAX_LEVEL {
                return level;
            }
            level += 1;
        }
    }

    fn hash(&self, member: &[u8]) -> u64 {
        self.hasher.hash_one(member)
    }

    fn find(&self, member: &[u8]) -> Option<u32> {
        let nodes = &self.nodes;
        self.index.find(self.hash(member), |&i| &*nodes[i as usize].member == member).copied()
    }

    fn score(&self, member: &[u8]) -> Option<f64> {
        self.find(member).map(|i| self.nodes[i as usize].score)
    }

    fn insert(&mut self, member: &[u8], score: f64) {
        let level = self.random_level();
        let node = Node { member: member.into(), score, backward: NIL, levels: Levels::new(level) };
        let id = match self.free.pop() {
            Some(id) => {
                self.nodes[id as usize] = node;
                id
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        self.attach(id);
        let h = self.hash(member);
        let (nodes, hasher) = (&self.nodes, &self.hasher);
        self.index.insert_unique(h, id, |&i| hasher.hash_one(&nodes[i as usize].member));
    }

    /// Gives node `id` a new score, as Redis's zslUpdateScore: in place when that keeps the
    /// order (between its neighbours, no search needed), else moved; the node, its member and
    /// its index entry stay either way, only links change.
    fn rescore(&mut self, id: u32, score: f64) {
        let n = &self.nodes[id as usize];
        let (back, next) = (n.backward, n.levels[0].next);
        let after_back = back == NIL || {
            let b = &self.nodes[back as usize];
            less(b.score, &b.member, score, &n.member)
        };
        let before_next = next == NIL || {
            let x = &self.nodes[next as usize];
            less(score, &n.member, x.score, &x.member)
        };
        if after_back && before_next {
            self.nodes[id as usize].score = score;
        } else {
            let update = self.predecessors(id);
            self.detach(id, &update);
            self.nodes[id as usize].score = score;
            self.attach(id);
        }
    }

    /// Links node `id` (not in the list; its score, member and height set) in at its place.
    fn attach(&mut self, id: u32) {
        let member = std::mem::take(&mut self.nodes[id as usize].member);
        let (score, level) = (self.nodes[id as usize].score, self.nodes[id as usize].levels.len());
        let mut update = [HEAD; MAX_LEVEL];
        let mut rank = [0u32; MAX_LEVEL];
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            rank[i] = if i == self.level - 1 { 0 } else { rank[i + 1] };
            loop {
                let l = self.nodes[x as usize].levels[i];
                if l.next == NIL {
                    break;
                }
                let n = &self.nodes[l.next as usize];
                if !less(n.score, &n.member, score, &member) {
                    break;
                }
                rank[i] += l.span;
                x = l.next;
            }
            update[i] = x;
        }
        self.nodes[id as usize].member = member;
        if level > self.level {
            for i in self.level..level {
                rank[i] = 0;
                update[i] = HEAD;
                self.nodes[HEAD as usize].levels[i].span = self.len as u32;
            }
            self.level = level;
        }
        self.nodes[id as usize].backward = if update[0] == HEAD { NIL } else { update[0] };
        for i in 0..level {
            let up = update[i] as usize;
            let up_level = self.nodes[up].levels[i];
            self.nodes[id as usize].levels[i] =
                Level { next: up_level.next, span: up_level.span - (rank[0] - rank[i]) };
            self.nodes[up].levels[i] = Level { next: id, span: (rank[0] - rank[i]) + 1 };
        }
        for (i, up) in update.iter().enumerate().take(self.level).skip(level) {
            self.nodes[*up as usize].levels[i].span += 1;
        }
        match self.nodes[id as usize].levels[0].next {
            NIL => self.tail = id,
            next => self.nodes[next as usize].backward = id,
        }
        self.len += 1;
    }

    fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let id = self.find(member)?;
        Some(self.unlink(id))
    }

    /// Removes node `id` (found by the caller); returns its score.
    fn unlink(&mut self, id: u32) -> f64 {
        let update = self.predecessors(id);
        self.detach(id, &update);
        let member = std::mem::take(&mut self.nodes[id as usize].member);
        let h = self.hash(&member);
        if let Ok(entry) = self.index.find_entry(h, |&i| i == id) {
            entry.remove();
        }
        self.nodes[id as usize].levels = Levels::new(0);
        self.free.push(id);
        self.nodes[id as usize].score
    }

    /// The last node before node `id` at each level below the list's height (for levels the
    /// node has, the one linking to it).
    fn predecessors(&self, id: u32) -> [u32; MAX_LEVEL] {
        let node = &self.nodes[id as usize];
        let (score, member) = (node.score, &node.member[..]);
        let mut update = [HEAD; MAX_LEVEL];
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            loop {
                let next = self.nodes[x as usize].levels[i].next;
                if next == NIL || next == id {
                    break;
                }
                let n = &self.nodes[next as usize];
                if !less(n.score, &n.member, score, member) {
                    break;
                }
                x = next;
            }
            update[i] = x;
        }
        update
    }

    /// Unlinks node `id`, whose predecessors are `update`; the node keeps its member, score
    /// and height.
    fn detach(&mut self, id: u32, update: &[u32; MAX_LEVEL]) {
        for (i, up) in update.iter().enumerate().take(self.level) {
            let up = *up as usize;
            if self.nodes[up].levels[i].next == id {
                let gone = self.nodes[id as usize].levels[i];
                self.nodes[up].levels[i] =
                    Level { next: gone.next, span: self.nodes[up].levels[i].span + gone.span - 1 };
            } else {
                self.nodes[up].levels[i].span -= 1;
            }
        }
        let (next, back) = (self.nodes[id as usize].levels[0].next, self.nodes[id as usize].backward);
        match next {
            NIL => self.tail = back,
            n => self.nodes[n as usize].backward = back,
        }
        while self.level > 1 && self.nodes[HEAD as usize].levels[self.level - 1].next == NIL {
            self.level -= 1;
        }
        self.len -= 1;
    }

    /// The number of elements before the first one `admit` accepts, where `admit` holds
    /// from some element on (a lower bound).
    fn count_before(&self, admit: impl Fn(&Node) -> bool) -> usize {
        let mut x = HEAD;
        let mut traversed = 0usize;
        for i in (0..self.level).rev() {
            loop {
                let next = self.nodes[x as usize].levels[i].next;
                if next == NIL || admit(&self.nodes[next as usize]) {
                    break;
                }
                traversed += self.nodes[x as usize].levels[i].span as usize;
                x = next;
            }
        }
        traversed
    }

    /// Checks every link: its span is the number of places it skips.
    #[cfg(test)]
    fn check_links(&self) {
        let mut rank_of = std::collections::HashMap::new();
        let (mut x, mut r) = (self.nodes[HEAD as usize].levels[0].next, 1u32);
        while x != NIL {
            rank_of.insert(x, r);
            (x, r) = (self.nodes[x as usize].levels[0].next, r + 1);
        }
        assert_eq!(rank_of.len(), self.len);
        let mut x = HEAD;
        loop {
            let n = &self.nodes[x as usize];
            let here = if x == HEAD { 0 } else { rank_of[&x] };
            for i in 0..n.levels.len().min(self.level) {
                let l = n.levels[i];
                if l.next != NIL {
                    assert_eq!(rank_of[&l.next] - here, l.span);
                }
            }
            if n.levels[0].next == NIL {
                break;
            }
            x = n.levels[0].next;
        }
    }

    /// The node at 0-based rank `r`.
    fn at_rank(&self, r: usize) -> u32 {
        let target = r + 1;
        let mut x = HEAD;
        let mut traversed = 0usize;
        for i in (0..self.level).rev() {
            loop {
                let l = self.nodes[x as usize].levels[i];
                if l.next == NIL || traversed + l.span as usize > target {
                    break;
                }
                traversed += l.span as usize;
                x = l.next;
            }
            if traversed == target {
                return x;
            }
        }
        NIL
    }
}

#[derive(Debug, Clone)]
pub enum ZSet {
    Packed(Listpack),
    Skip(Box<SkipSet>),
}

impl Default for ZSet {
    fn default() -> Self {
        ZSet::Packed(Listpack::new())
    }
}

impl ZSet {
    pub fn encoding(&self) -> &'static str {
        match self {
            ZSet::Packed(_) => "listpack",
            ZSet::Skip(_) => "skiplist",
        }
    }

    pub fn len(&self) -> usize {
        match self {
            ZSet::Packed(lp) => lp.len() / 2,
            ZSet::Skip(s) => s.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn heap_size(&self) -> usize {
        match self {
            ZSet::Packed(lp) => lp.heap_size(),
            ZSet::Skip(s) => {
                s.nodes.capacity() * std::mem::size_of::<Node>()
                    + s.nodes.iter().map(|n| n.member.len() + n.levels.len() * 8).sum::<usize>()
                    + s.index.capacity() * 5
            }
        }
    }

    /// Elements of a listpack, in order.
    fn packed_entries(lp: &Listpack) -> Vec<(Bytes, f64, usize)> {
        let mut out = Vec::with_capacity(lp.len() / 2);
        let mut it = lp.iter();
        while let (Some((m, at)), Some((s, _))) = (it.next(), it.next()) {
            out.push((m.to_bytes(), parse_score(s), at));
        }
        out
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            ZSet::Packed(lp) => {
                let mut it = lp.iter();
                while let (Some((m, _)), Some((s, _))) = (it.next(), it.next()) {
                    if m.eq_bytes(member) {
                        return Some(parse_score(s));
                    }
                }
                None
            }
            ZSet::Skip(s) => s.score(member),
        }
    }

    fn convert_to_skiplist(&mut self) {
        let ZSet::Packed(lp) = self else { return };
        let mut s = SkipSet::new();
        for (m, score, _) in Self::packed_entries(lp) {
            s.insert(&m, score);
        }
        *self = ZSet::Skip(Box::new(s));
    }

    /// ZADD's step for one member, with one lookup: `decide` gets the member's score (None when
    /// it is new) and says what it should become (None: leave it). Returns (old, new).
    pub fn update(
        &mut self,
        member: &[u8],
        decide: impl FnOnce(Option<f64>) -> Option<f64>,
        limits: &ZLimits,
    ) -> (Option<f64>, Option<f64>) {
        if let ZSet::Skip(s) = self {
            let found = s.find(member);
            let old = found.map(|id| s.nodes[id as usize].score);
            let Some(new) = decide(old) else { return (old, None) };
            match found {
                Some(id) => {
                    if old != Some(new) {
                        s.rescore(id, new);
                    }
                }
                None => s.insert(member, new),
            }
            return (old, Some(new));
        }
        let old = self.score(member);
        let Some(new) = decide(old) else { return (old, None) };
        if old != Some(new) {
            self.set(member, new, limits);
        }
        (old, Some(new))
    }

    /// Sets `member`'s score (adding it if new); returns its old score.
    pub fn set(&mut self, member: &[u8], score: f64, limits: &ZLimits) -> Option<f64> {
        if let ZSet::Skip(s) = self {
            // One hash lookup; a score change that keeps the node's place costs no traversal.
            if let Some(id) = s.find(member) {
                let old = s.nodes[id as usize].score;
                if old != score {
                    s.rescore(id, score);
                }
                return Some(old);
            }
            s.insert(member, score);
            return None;
        }
        let old = self.remove(member);
        if let ZSet::Packed(lp) = self {
            if member.len() > limits.value || lp.len() / 2 >= limits.entries {
                self.convert_to_skiplist();
            }
        }
        match self {
            ZSet::Packed(lp) => {
                let mut at = lp.end();
                let mut it = lp.iter();
                while let (Some((m, m_at)), Some((s, _))) = (it.next(), it.next()) {
                    let (s, m) = (parse_score(s), m.to_bytes());
                    if less(score, member, s, &m) {
                        at = m_at;
                        break;
                    }
                }
                lp.insert_all(at, &[member, score_text(score).as_bytes()]);
            }
            ZSet::Skip(s) => s.insert(member, score),
        }
        old
    }

    /// Removes `member`; its score if it was there.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match self {
            ZSet::Packed(lp) => {
                let mut found = None;
                let mut it = lp.iter();
                while let (Some((m, at)), Some((s, _))) = (it.next(), it.next()) {
                    if m.eq_bytes(member) {
                        found = Some((at, parse_score(s)));
                        break;
                    }
                }
                let (at, score) = found?;
                lp.remove(at, 2);
                Some(score)
            }
            ZSet::Skip(s) => s.remove(member),
        }
    }

    /// `member`'s 0-based rank in ascending order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        match self {
            ZSet::Packed(lp) => {
                let mut it = lp.iter();
                let mut r = 0;
                while let (Some((m, _)), Some(_)) = (it.next(), it.next()) {
                    if m.eq_bytes(member) {
                        return Some(r);
                    }
                    r += 1;
                }
                None
            }
            ZSet::Skip(s) => {
                let score = s.score(member)?;
                Some(s.count_before(|n| !less(n.score, &n.member, score, member)))
            }
        }
    }

    /// The rank range [lower, upper) of the elements whose scores are within `min`..`max`.
    pub fn score_range(&self, min: &ScoreBound, max: &ScoreBound) -> (usize, usize) {
        match self {
            ZSet::Packed(lp) => {
                let e = Self::packed_entries(lp);
                let lower = e.iter().take_while(|(_, s, _)| !min.admits_min(*s)).count();
                let upper = e.iter().take_while(|(_, s, _)| max.admits_max(*s)).count();
                (lower, upper.max(lower))
            }
            ZSet::Skip(s) => {
                let lower = s.count_before(|n| min.admits_min(n.score));
                let upper = s.count_before(|n| !max.admits_max(n.score));
                (lower, upper.max(lower))
            }
        }
    }

    /// The rank range [lower, upper) of the members within `min`..`max` in lex order (which is
    /// the set's order when all scores are equal, as Redis requires for these commands).
    pub fn lex_range(&self, min: &LexBound, max: &LexBound) -> (usize, usize) {
        match self {
            ZSet::Packed(lp) => {
                let e = Self::packed_entries(lp);
                let lower = e.iter().take_while(|(m, _, _)| !min.admits_min(m)).count();
                let upper = e.iter().take_while(|(m, _, _)| max.admits_max(m)).count();
                (lower, upper.max(lower))
            }
            ZSet::Skip(s) => {
                let lower = s.count_before(|n| min.admits_min(&n.member));
                let upper = s.count_before(|n| !max.admits_max(&n.member));
                (lower, upper.max(lower))
            }
        }
    }

    /// Elements with ranks in [from, to), ascending.
    pub fn range(&self, from: usize, to: usize) -> Vec<(Bytes, f64)> {
        let to = to.min(self.len());
        if from >= to {
            return vec![];
        }
        match self {
            ZSet::Packed(lp) => Self::packed_entries(lp)
                .into_iter()
                .skip(from)
                .take(to - from)
                .map(|(m, s, _)| (m, s))
                .collect(),
            ZSet::Skip(s) => {
                let mut out = Vec::with_capacity(to - from);
                let mut x = s.at_rank(from);
                while x != NIL && out.len() < to - from {
                    let n = &s.nodes[x as usize];
                    out.push((Bytes::copy_from_slice(&n.member), n.score));
                    x = n.levels[0].next;
                }
                out
            }
        }
    }

    /// Elements with ranks in [from, to), descending (from rank `to - 1` down).
    pub fn range_rev(&self, from: usize, to: usize) -> Vec<(Bytes, f64)> {
        let to = to.min(self.len());
        if from >= to {
            return vec![];
        }
        match self {
            ZSet::Skip(s) => {
                let mut out = Vec::with_capacity(to - from);
                let mut x = s.at_rank(to - 1);
                while x != NIL && x != HEAD && out.len() < to - from {
                    let n = &s.nodes[x as usize];
                    out.push((Bytes::copy_from_slice(&n.member), n.score));
                    x = n.backward;
                }
                out
            }
            ZSet::Packed(_) => {
                let mut v = self.range(from, to);
                v.reverse();
                v
            }
        }
    }

    /// Removes and returns the elements with ranks in [from, to), ascending.
    pub fn take_range(&mut self, from: usize, to: usize) -> Vec<(Bytes, f64)> {
        let gone = self.range(from, to);
        match self {
            ZSet::Packed(lp) => {
                if let Some((_, at)) = lp.iter().nth(2 * from) {
                    lp.remove(at, 2 * gone.len());
                }
            }
            ZSet::Skip(s) => {
                for (m, _) in &gone {
                    s.remove(m);
                }
            }
        }
        gone
    }

    /// Removes the elements with ranks in [from, to); returns how many.
    pub fn remove_range(&mut self, from: usize, to: usize) -> usize {
        self.take_range(from, to).len()
    }

    /// From a listpack read from an RDB file or a DUMP payload, re-encoded by today's rules.
    pub fn from_listpack(lp: Listpack, limits: &ZLimits) -> Result<ZSet, &'static str> {
        if !lp.len().is_multiple_of(2) {
            return Err("a sorted set listpack with an odd number of elements");
        }
        let mut z = ZSet::Packed(lp);
        let big = |z: &ZSet| match z {
            ZSet::Packed(lp) => {
                lp.len() / 2 > limits.entries || lp.iter().step_by(2).any(|(m, _)| m.str_len() > limits.value)
            }
            ZSet::Skip(_) => false,
        };
        if big(&z) {
            z.convert_to_skiplist();
        }
        Ok(z)
    }

    /// The listpack form, if that is how it is kept.
    pub fn listpack(&self) -> Option<&Listpack> {
        match self {
            ZSet::Packed(lp) => Some(lp),
            ZSet::Skip(_) => None,
        }
    }

    /// Every element, ascending.
    pub fn all(&self) -> Vec<(Bytes, f64)> {
        self.range(0, self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g17_is_c_printf() {
        assert_eq!(g17(0.1), "0.10000000000000001");
        assert_eq!(g17(2.5), "2.5");
        assert_eq!(g17(1e20), "1e+20");
        assert_eq!(g17(1.5e-5), "1.5e-05");
        assert_eq!(g17(1.0 / 3.0), "0.33333333333333331");
        assert_eq!(g17(123456.0), "123456");
        assert_eq!(g17(-0.0001), "-0.0001");
        assert_eq!(g17(1e16), "10000000000000000");
        assert_eq!(g17(1e17), "1e+17");
        assert_eq!(score_text(3.0), "3");
        assert_eq!(score_text(-2.0), "-2");
        assert_eq!(score_text(f64::INFINITY), "inf");
    }

    fn check_both(limits: ZLimits) {
        let mut z = ZSet::default();
        let mut model: Vec<(Vec<u8>, f64)> = Vec::new();
        let mut seed = 7u64;
        for step in 0..3000 {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let m = format!("m{}", (seed >> 33) % 300).into_bytes();
            let score = ((seed >> 20) % 50) as f64 - 10.0;
            if step % 4 == 3 {
                let a = z.remove(&m);
                let b = model.iter().position(|(x, _)| *x == m).map(|i| model.remove(i).1);
                assert_eq!(a, b);
            } else {
                let a = z.set(&m, score, &limits);
                let b = model.iter().position(|(x, _)| *x == m).map(|i| model.remove(i).1);
                assert_eq!(a, b);
                model.push((m, score));
            }
            model.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap().then(a.0.cmp(&b.0)));
            if step % 97 == 0 {
                if let ZSet::Skip(s) = &z {
                    s.check_links();
                }
                let all: Vec<(Vec<u8>, f64)> = z.all().into_iter().map(|(m, s)| (m.to_vec(), s)).collect();
                assert_eq!(all, model);
                for (i, (m, _)) in model.iter().enumerate() {
                    assert_eq!(z.rank(m), Some(i));
                }
                let lo = ScoreBound { value: -2.0, exclusive: true };
                let hi = ScoreBound { value: 20.0, exclusive: false };
                let (a, b) = z.score_range(&lo, &hi);
                let expected: Vec<_> =
                    model.iter().filter(|(_, s)| *s > -2.0 && *s <= 20.0).cloned().collect();
                let got: Vec<(Vec<u8>, f64)> =
                    z.range(a, b).into_iter().map(|(m, s)| (m.to_vec(), s)).collect();
                assert_eq!(got, expected);
                let rev: Vec<(Vec<u8>, f64)> =
                    z.range_rev(a, b).into_iter().map(|(m, s)| (m.to_vec(), s)).collect();
                let mut e2 = expected.clone();
                e2.reverse();
                assert_eq!(rev, e2);
            }
        }
        let n = z.len();
        assert_eq!(z.remove_range(1, 5), 4.min(n.saturating_sub(1)));
    }

    #[test]
    fn listpack_and_skiplist_agree_with_a_model() {
        check_both(ZLimits { entries: 10_000, value: 64 });
        check_both(ZLimits { entries: 0, value: 64 });
    }
}
