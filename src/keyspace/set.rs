//! Sets: an intset while every member is an integer and there are at most
//! `set-max-intset-entries`, else a hash table (Redis 7.0's two encodings for sets).

use bytes::Bytes;
use indexmap::IndexSet;

use super::intset::Intset;
use super::object::Limits;
use crate::resp::parser::parse_i64;

type Table = IndexSet<Box<[u8]>, foldhash::fast::RandomState>;

#[derive(Debug, Clone)]
pub enum Set {
    Ints(Intset),
    /// Boxed, so a small set's object stays small.
    Table(Box<Table>),
}

impl Set {
    /// An empty set suited to its first member.
    pub fn for_member(member: &[u8]) -> Set {
        match parse_i64(member) {
            Some(_) => Set::Ints(Intset::new()),
            None => Set::Table(Box::default()),
        }
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            Set::Ints(_) => "intset",
            Set::Table(_) => "hashtable",
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Set::Ints(i) => i.len(),
            Set::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn heap_size(&self) -> usize {
        match self {
            Set::Ints(i) => i.heap_size(),
            Set::Table(t) => {
                t.capacity() * (std::mem::size_of::<Box<[u8]>>() + 16)
                    + t.iter().map(|m| m.len()).sum::<usize>()
            }
        }
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        match self {
            Set::Ints(i) => parse_i64(member).is_some_and(|n| i.contains(n)),
            Set::Table(t) => t.contains(member),
        }
    }

    fn convert_to_table(&mut self) {
        let Set::Ints(ints) = self else { return };
        let mut t = Table::with_capacity_and_hasher(ints.len() + 1, Default::default());
        for n in ints.iter() {
            t.insert(itoa::Buffer::new().format(n).as_bytes().into());
        }
        *self = Set::Table(Box::new(t));
    }

    /// Adds `member`; true if it is new.
    pub fn add(&mut self, member: &[u8], limits: &Limits) -> bool {
        if let Set::Ints(ints) = self {
            match parse_i64(member) {
                Some(n) if ints.contains(n) => return false,
                Some(n) if ints.len() < limits.set_intset_entries => return ints.insert(n),
                _ => self.convert_to_table(),
            }
        }
        let Set::Table(t) = self else { unreachable!("converted above") };
        t.insert(member.into())
    }

    /// Removes `member`; true if it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match self {
            Set::Ints(i) => parse_i64(member).is_some_and(|n| i.remove(n)),
            Set::Table(t) => t.swap_remove(member),
        }
    }

    /// The member at position `i` (0 <= i < len), for random picks and SSCAN.
    pub fn member_at(&self, i: usize) -> Bytes {
        match self {
            Set::Ints(s) => Bytes::copy_from_slice(itoa::Buffer::new().format(s.get(i)).as_bytes()),
            Set::Table(t) => Bytes::copy_from_slice(t.get_index(i).expect("in range")),
        }
    }

    /// Every member.
    pub fn members(&self) -> Vec<Bytes> {
        (0..self.len()).map(|i| self.member_at(i)).collect()
    }

    /// SSCAN: an intset whole (cursor 0 after), a table from the top down by position.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(Bytes)) -> u64 {
        match self {
            Set::Ints(_) => {
                self.members().into_iter().for_each(f);
                0
            }
            Set::Table(t) => {
                let window = super::scan_window(t.len(), cursor, count);
                for pos in window.clone().rev() {
                    f(Bytes::copy_from_slice(t.get_index(pos).expect("in range")));
                }
                window.start as u64
            }
        }
    }

    /// From an intset read from an RDB file or a DUMP payload, re-encoded by today's rules.
    pub fn from_intset(ints: Intset, limits: &Limits) -> Set {
        let mut s = Set::Ints(ints);
        if s.len() > limits.set_intset_entries {
            s.convert_to_table();
        }
        s
    }

    /// From members (an RDB hashtable set), encoded by the rules.
    pub fn from_members(members: impl IntoIterator<Item = Vec<u8>>, limits: &Limits) -> Set {
        let members: Vec<Vec<u8>> = members.into_iter().collect();
        let mut s = match members.first() {
            Some(m) if members.len() <= limits.set_intset_entries => Set::for_member(m),
            _ => Set::Table(Box::new(Table::with_capacity_and_hasher(members.len(), Default::default()))),
        };
        for m in &members {
            s.add(m, limits);
        }
        s
    }

    /// The intset form, if that is how it is kept.
    pub fn intset(&self) -> Option<&Intset> {
        match self {
            Set::Ints(i) => Some(i),
            Set::Table(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intset_until_a_string_or_the_size_rule() {
        let limits = Limits { set_intset_entries: 3, ..Default::default() };
        let mut s = Set::for_member(b"1");
        assert!(s.add(b"1", &limits) && !s.add(b"1", &limits));
        s.add(b"2", &limits);
        s.add(b"3", &limits);
        assert_eq!(s.encoding(), "intset");
        s.add(b"4", &limits);
        assert_eq!(s.encoding(), "hashtable");
        assert!(s.contains(b"4") && s.contains(b"1"));
        let mut t = Set::for_member(b"1");
        t.add(b"1", &limits);
        t.add(b"a", &limits);
        assert_eq!(t.encoding(), "hashtable");
        assert!(t.contains(b"1") && t.remove(b"1") && !t.contains(b"1"));
        let mut u = Set::for_member(b"7");
        u.add(b"7", &limits);
        assert!(!u.contains(b"07") && !u.remove(b"x"));
        assert_eq!(Set::for_member(b"a").encoding(), "hashtable");
    }
}
