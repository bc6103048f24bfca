//! The write log on a primary: every applied write, in apply order, as a RESP command,
//! appended to the backlog that replicas stream from. Commands arrive already rewritten to be
//! deterministic (see `Ctx::propagate`); the log adds SELECT when the database changes and
//! wraps a transaction's writes in MULTI ... EXEC so replicas apply them atomically.

use bytes::{BufMut, Bytes, BytesMut};

use super::backlog::Backlog;
use crate::resp::client::encode_command;
/// An argument at least this big goes to the log without being encoded into a buffer first,
/// by reference when it is one the command got (see [`LogArg`]).
use crate::resp::parser::BIG_ARG;

/// An argument of a logged command. One given as Bytes (what a client sent) is kept in the
/// backlog by reference when it is big: a 512 MB SET is not copied into the stream.
pub trait LogArg: AsRef<[u8]> {
    fn shared(&self) -> Option<Bytes> {
        None
    }
}

impl LogArg for &[u8] {}
impl LogArg for &str {}
impl LogArg for Bytes {
    fn shared(&self) -> Option<Bytes> {
        Some(self.clone())
    }
}

#[derive(Debug)]
pub struct WriteLog {
    /// This primary's replication id (40 hex characters).
    pub replid: String,
    /// The id of the history this one continues, and the offset up to which that history is
    /// also ours (PSYNC2's replid2): after a restart, replicas of the stream the files ended
    /// with may continue, but no further than the files went.
    pub replid2: Option<(String, u64)>,
    pub backlog: Backlog,
    /// The database the stream is in, as replicas will see it; None forces a SELECT.
    db: Option<usize>,
    /// Inside EXEC: the first write emits MULTI, and the end emits EXEC if it did.
    in_exec: bool,
    multi_emitted: bool,
    scratch: BytesMut,
    /// With appendonly on: what the AOF writer has yet to write, the same bytes as the
    /// backlog gets (Redis's aof_buf). Filled under the state lock, so nothing is missed.
    pub aof_buf: Option<Vec<u8>>,
}

impl WriteLog {
    pub fn new(replid: String, capacity: usize) -> Self {
        Self::resume(replid, capacity, 0)
    }

    /// A log continuing a stream at `offset`, its backlog sized and bounded as `config`
    /// says (repl-backlog-size, the replica class's hard limit).
    pub fn configured(replid: String, offset: u64, config: &crate::config::Config) -> Self {
        let mut log = Self::resume(replid, config.repl_backlog_size(), offset);
        log.backlog.set_limit(config.replica_output_limit());
        log
    }

    /// A log that continues a stream at `offset` (after a restart).
    pub fn resume(replid: String, capacity: usize, offset: u64) -> Self {
        WriteLog {
            replid,
            replid2: None,
            backlog: Backlog::new(capacity, offset),
            db: None,
            in_exec: false,
            multi_emitted: false,
            scratch: BytesMut::new(),
            aof_buf: None,
        }
    }

    fn emit_arg<A: LogArg>(&mut self, arg: &A) {
        let bytes = arg.as_ref();
        if let Some(buf) = &mut self.aof_buf {
            buf.extend_from_slice(bytes);
        }
        match arg.shared() {
            Some(shared) => self.backlog.append_shared(shared),
            None => self.backlog.append(bytes),
        }
    }

    fn emit(&mut self) {
        self.backlog.append(&self.scratch);
        if let Some(buf) = &mut self.aof_buf {
            buf.extend_from_slice(&self.scratch);
        }
        if self.scratch.capacity() > 1 << 20 {
            // One huge write (a 512 MB SET) must not pin its encoding for the log's life.
            self.scratch = BytesMut::new();
        }
    }

    /// Starts a new history, `replid`, at the current offset; the old one stays valid up to
    /// here. A restarted primary does this, as Redis does: a replica may hold bytes of the old
    /// history beyond what the files kept (sent before the crash, never written), and must not
    /// continue from them into the new one.
    pub fn shift_replid(&mut self, replid: String) {
        let old = std::mem::replace(&mut self.replid, replid);
        self.replid2 = Some((old, self.offset()));
    }

    /// Whether a replica holding `offset` bytes of history `replid` can continue here.
    pub fn can_continue(&self, replid: &[u8], offset: u64) -> bool {
        let ours = replid == self.replid.as_bytes()
            || self.replid2.as_ref().is_some_and(|(old, end)| replid == old.as_bytes() && offset <= *end);
        ours && self.backlog.can_continue_from(offset)
    }

    /// master_repl_offset.
    pub fn offset(&self) -> u64 {
        self.backlog.end()
    }

    /// Appends one command applied in database `db`.
    pub fn append<A: LogArg>(&mut self, db: usize, args: &[A]) {
        self.scratch.clear();
        if self.in_exec && !self.multi_emitted {
            encode_command(&["MULTI"], &mut self.scratch);
            self.multi_emitted = true;
        }
        if self.db != Some(db) {
            encode_command(&["SELECT".as_bytes(), db.to_string().as_bytes()], &mut self.scratch);
            self.db = Some(db);
        }
        if args.iter().map(|a| a.as_ref().len()).sum::<usize>() < BIG_ARG {
            encode_command(args, &mut self.scratch);
            self.emit();
            return;
        }
        // A big command (a 512 MB SET) goes in pieces, its big arguments straight from where
        // they are: encoding it whole first would hold a second copy of it.
        self.scratch.put_u8(b'*');
        self.scratch.put_slice(args.len().to_string().as_bytes());
        self.scratch.put_slice(b"\r\n");
        for arg in args {
            let a = arg.as_ref();
            self.scratch.put_u8(b'$');
            self.scratch.put_slice(a.len().to_string().as_bytes());
            self.scratch.put_slice(b"\r\n");
            if a.len() >= BIG_ARG {
                self.emit();
                self.scratch.clear();
                self.emit_arg(arg);
            } else {
                self.scratch.put_slice(a);
            }
            self.scratch.put_slice(b"\r\n");
        }
        self.emit();
    }

    /// Appends a command that belongs to no database (PING, REPLCONF GETACK, PUBLISH).
    pub fn append_control<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        self.scratch.clear();
        encode_command(args, &mut self.scratch);
        self.emit();
    }

    pub fn begin_exec(&mut self) {
        self.in_exec = true;
        self.multi_emitted = false;
    }

    pub fn end_exec(&mut self) {
        if self.multi_emitted {
            self.scratch.clear();
            encode_command(&["EXEC"], &mut self.scratch);
            self.emit();
        }
        self.in_exec = false;
        self.multi_emitted = false;
    }

    /// The next write states its database: a replica that just loaded a snapshot does not
    /// know which one the stream is in.
    pub fn force_select(&mut self) {
        self.db = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(log: &WriteLog) -> String {
        let mut out = Vec::new();
        log.backlog.read_from(log.backlog.start(), usize::MAX, &mut out).unwrap();
        String::from_utf8(out).unwrap().replace("\r\n", " ")
    }

    #[test]
    fn a_shifted_history_continues_only_up_to_where_it_ended() {
        let (old, new) = ("a".repeat(40), "b".repeat(40));
        let mut log = WriteLog::resume(old.clone(), 1 << 20, 1000);
        log.append(0, &["SET", "k", "v"]);
        let end = log.offset();
        log.shift_replid(new.clone());
        assert_eq!(log.replid2, Some((old.clone(), end)));
        log.append(0, &["SET", "k", "w"]);
        // The old history up to the restart point: yes; beyond it (bytes the replica got but
        // the files lost): no. The new history: anywhere in the backlog.
        assert!(log.can_continue(old.as_bytes(), 1000));
        assert!(log.can_continue(old.as_bytes(), end));
        assert!(!log.can_continue(old.as_bytes(), end + 1));
        assert!(log.can_continue(new.as_bytes(), log.offset()));
        assert!(!log.can_continue(new.as_bytes(), log.offset() + 1));
        assert!(!log.can_continue(b"c", 1000));
        // Before the backlog: nobody.
        assert!(!log.can_continue(old.as_bytes(), 999));
    }

    #[test]
    fn a_big_command_is_logged_as_it_would_be_encoded() {
        let mut log = WriteLog::new("x".repeat(40), 1 << 20);
        log.aof_buf = Some(Vec::new());
        let big = "v".repeat(100_000);
        log.begin_exec();
        log.append(3, &["SET", "k", big.as_str()]);
        log.append(3, &["MSET", big.as_str(), "1", "k2", big.as_str()]);
        log.end_exec();
        let mut want = BytesMut::new();
        encode_command(&["MULTI"], &mut want);
        encode_command(&["SELECT", "3"], &mut want);
        encode_command(&["SET", "k", big.as_str()], &mut want);
        encode_command(&["MSET", big.as_str(), "1", "k2", big.as_str()], &mut want);
        encode_command(&["EXEC"], &mut want);
        let mut got = Vec::new();
        log.backlog.read_from(log.backlog.start(), usize::MAX, &mut got).unwrap();
        assert!(got == want[..], "the backlog holds the same bytes");
        assert!(log.aof_buf.as_deref() == Some(&want[..]), "and so does the AOF buffer");
    }

    #[test]
    fn select_only_when_the_database_changes() {
        let mut log = WriteLog::new("x".repeat(40), 1 << 20);
        log.append(0, &["SET", "a", "1"]);
        log.append(0, &["DEL", "a"]);
        log.append(2, &["SET", "b", "2"]);
        assert_eq!(
            text(&log),
            "*2 $6 SELECT $1 0 *3 $3 SET $1 a $1 1 *2 $3 DEL $1 a *2 $6 SELECT $1 2 *3 $3 SET $1 b $1 2 "
        );
        let raw = text(&log).replace(' ', "\r\n");
        assert_eq!(log.offset() as usize, raw.len(), "the offset counts every byte");
        log.force_select();
        log.append(2, &["DEL", "b"]);
        assert!(text(&log).ends_with("*2 $6 SELECT $1 2 *2 $3 DEL $1 b "));
    }

    #[test]
    fn transactions_are_wrapped_only_when_they_wrote() {
        let mut log = WriteLog::new("x".repeat(40), 1 << 20);
        log.begin_exec();
        log.end_exec();
        assert_eq!(log.offset(), 0, "a read-only EXEC logs nothing");
        log.begin_exec();
        log.append(0, &["INCR", "a"]);
        log.append(0, &["INCR", "b"]);
        log.end_exec();
        let t = text(&log);
        assert!(t.starts_with("*1 $5 MULTI *2 $6 SELECT") && t.ends_with("$1 b *1 $4 EXEC "), "{t}");
    }
}
