//! `rust-edis client`: sends commands straight to the shards, routing exactly as the proxy
//! does (the same router and the same per-connection session: MULTI/EXEC on the key's shard,
//! WATCH, WAIT, read-your-writes), from the map info gives it. Prints replies as redis-cli
//! does: typed and quoted on a terminal, raw when piped. The prompt has line editing and
//! history, and `help` reads the command table.

use std::io::{BufRead, IsTerminal};
use std::time::Duration;

use bytes::Bytes;

use super::backend::Pool;
use super::router::{ReadFrom, Router};
use super::session::Driver;
use crate::command::{lookup, Command};
use crate::resp::split::split_args;
use crate::resp::Reply;
use crate::topology::Topology;

/// Formats a reply like redis-cli: `tty` is its interactive style, otherwise its raw style.
pub fn format_reply(reply: &Reply, tty: bool) -> String {
    fn quoted(b: &[u8]) -> String {
        let mut s = String::from("\"");
        for &c in b {
            match c {
                b'"' => s.push_str("\\\""),
                b'\\' => s.push_str("\\\\"),
                b'\n' => s.push_str("\\n"),
                b'\r' => s.push_str("\\r"),
                b'\t' => s.push_str("\\t"),
                0x20..=0x7e => s.push(c as char),
                _ => s.push_str(&format!("\\x{c:02x}")),
            }
        }
        s.push('"');
        s
    }
    fn walk(reply: &Reply, tty: bool, indent: usize, out: &mut String) {
        match reply {
            Reply::Ok => out.push_str("OK"),
            Reply::Simple(s) => out.push_str(s),
            Reply::Error(e) if tty => out.push_str(&format!("(error) {e}")),
            Reply::Error(e) => out.push_str(e),
            Reply::Int(n) if tty => out.push_str(&format!("(integer) {n}")),
            Reply::Int(n) => out.push_str(&n.to_string()),
            Reply::Bulk(b) | Reply::Verbatim(b) | Reply::Raw(b) if tty => out.push_str(&quoted(b)),
            Reply::Bulk(b) | Reply::Verbatim(b) | Reply::Raw(b) => out.push_str(&String::from_utf8_lossy(b)),
            Reply::Nil | Reply::NilArray if tty => out.push_str("(nil)"),
            Reply::Nil | Reply::NilArray => {}
            Reply::Double(d) => out.push_str(&crate::keyspace::zset::g17(*d)),
            Reply::Bool(b) => out.push_str(if *b { "(true)" } else { "(false)" }),
            Reply::Array(items) | Reply::Set(items) => {
                if items.is_empty() && tty {
                    out.push_str("(empty array)");
                }
                let width = items.len().to_string().len();
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push('\n');
                        if tty {
                            out.push_str(&" ".repeat(indent));
                        }
                    }
                    if tty {
                        out.push_str(&format!("{:>width$}) ", i + 1));
                    }
                    walk(item, tty, indent + width + 2, out);
                }
            }
            Reply::Map(pairs) | Reply::Pairs(pairs) => {
                let flat: Vec<Reply> = pairs.iter().flat_map(|(k, v)| [k.clone(), v.clone()]).collect();
                walk(&Reply::Array(flat), tty, indent, out);
            }
        }
    }
    let mut out = String::new();
    walk(reply, tty, 0, &mut out);
    out
}

/// `help`, `help <command>` and `help @<group>`, from the command table, in redis-cli's shape.
pub fn help(topic: Option<&str>) -> String {
    let entry = |c: &Command| {
        format!(
            "\n  {} {}\n  summary: {}\n  since: {}\n  group: {}\n",
            c.name.to_ascii_uppercase(),
            c.syntax,
            c.summary,
            c.since,
            c.group
        )
    };
    match topic {
        None => format!(
            "rust-edis client {}\nType: \"help @<group>\" to get a list of commands in <group>\n      \"help <command>\" for help on <command>\n      \"quit\" to exit\n\nGroups: {}\n",
            env!("CARGO_PKG_VERSION"),
            groups().join(", ")
        ),
        Some(t) if t.starts_with('@') => {
            let group = &t[1..];
            let found: Vec<String> = crate::command::COMMANDS
                .iter()
                .filter(|c| c.group.eq_ignore_ascii_case(group) && !c.name.starts_with("edis."))
                .map(entry)
                .collect();
            if found.is_empty() {
                format!("No such group '{group}'. Groups: {}\n", groups().join(", "))
            } else {
                found.concat()
            }
        }
        Some(t) => match lookup(t.as_bytes()) {
            Some(c) if c.subcommands.is_empty() => entry(c),
            Some(c) => {
                let mut out = entry(c);
                for sub in c.subcommands {
                    out.push_str(&format!(
                        "\n  {} {} {}\n  summary: {}\n",
                        c.name.to_ascii_uppercase(),
                        sub.name.to_ascii_uppercase(),
                        sub.syntax,
                        sub.summary
                    ));
                }
                out
            }
            None => format!("No help for '{t}'. Try \"help @<group>\".\n"),
        },
    }
}

fn groups() -> Vec<&'static str> {
    let mut g: Vec<&'static str> = crate::command::COMMANDS.iter().map(|c| c.group).collect();
    g.sort_unstable();
    g.dedup();
    g
}

/// One line of input: a command's reply to print, or nothing (quit).
async fn line(driver: &mut Driver, words: Vec<Vec<u8>>) -> Option<String> {
    let first = String::from_utf8_lossy(&words[0]).to_ascii_lowercase();
    match first.as_str() {
        "quit" | "exit" => None,
        "help" => {
            let topic = words.get(1).map(|w| String::from_utf8_lossy(w).into_owned());
            Some(help(topic.as_deref()).trim_end_matches('\n').to_string())
        }
        "subscribe" | "psubscribe" | "ssubscribe" | "monitor" if !driver.in_multi() => {
            listen(driver, words).await;
            None
        }
        _ => {
            let args: Vec<Bytes> = words.into_iter().map(Bytes::from).collect();
            let tty = std::io::stdout().is_terminal();
            Some(format_reply(&driver.call(&args).await, tty))
        }
    }
}

/// SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and MONITOR: prints what arrives until Ctrl-C, as
/// redis-cli does. Subscriptions are made on every write shard as the proxy makes them
/// (EDIS.LISTEN: each message and keyspace event comes once, from the shard where it
/// started); shard channels on the shard that owns them; MONITOR on every node.
async fn listen(driver: &Driver, words: Vec<Vec<u8>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let router = driver.router();
    let topology = router.topology();
    let kind = String::from_utf8_lossy(&words[0]).to_ascii_lowercase();
    let mut targets: Vec<String> = match kind.as_str() {
        "monitor" => topology
            .shards
            .iter()
            .flat_map(|s| std::iter::once(s.primary.addr()).chain(s.replicas.iter().map(|r| r.addr())))
            .collect(),
        "ssubscribe" => {
            let slot = words.get(1).map_or(0, |c| crate::topology::key_slot(c));
            topology.owner(slot).map(|s| s.primary.addr()).into_iter().collect()
        }
        _ => topology.shards.iter().map(|s| s.primary.addr()).collect(),
    };
    targets.dedup();
    let secret = router.pool.secret().map(str::to_string);
    let tty = std::io::stdout().is_terminal();
    if tty {
        println!("Reading messages... (press Ctrl-C to quit)");
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Reply)>();
    let mut tasks = Vec::new();
    for (i, addr) in targets.into_iter().enumerate() {
        let (tx, secret, words) = (tx.clone(), secret.clone(), words.clone());
        let listen = kind != "monitor" && kind != "ssubscribe";
        tasks.push(crate::server::AbortOnDrop(tokio::spawn(async move {
            let Ok(mut stream) = tokio::net::TcpStream::connect(&addr).await else {
                let _ = tx.send((i, Reply::error(format!("ERR could not connect to {addr}"))));
                return;
            };
            let mut out = bytes::BytesMut::new();
            let mut skip = 0;
            if let Some(s) = &secret {
                crate::resp::client::encode_command(
                    &["AUTH", crate::roles::secret::MEMBER_USER, s],
                    &mut out,
                );
                skip += 1;
            }
            if listen {
                crate::resp::client::encode_command(&["EDIS.LISTEN"], &mut out);
                skip += 1;
            }
            crate::resp::client::encode_command(&words, &mut out);
            if stream.write_all(&out).await.is_err() {
                return;
            }
            let mut buf = bytes::BytesMut::new();
            loop {
                while let Ok(Some((frame, _, _))) = redis_protocol::resp2::decode::decode_bytes_mut(&mut buf)
                {
                    if skip > 0 {
                        skip -= 1;
                        continue;
                    }
                    if tx.send((i, super::router::to_reply(frame))).is_err() {
                        return;
                    }
                }
                if !matches!(stream.read_buf(&mut buf).await, Ok(n) if n > 0) {
                    return;
                }
            }
        })));
    }
    drop(tx);
    loop {
        tokio::select! {
            got = rx.recv() => {
                let Some((from, reply)) = got else { break };
                // Each shard confirms the subscriptions; the first one's confirmations stand
                // for all.
                let confirmation = match &reply {
                    Reply::Array(items) => matches!(items.first(), Some(Reply::Bulk(w)) if w.ends_with(b"subscribe")),
                    Reply::Ok => true,
                    _ => false,
                };
                if from == 0 || !confirmation {
                    println!("{}", format_reply(&reply, tty));
                }
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
}

/// Runs `args` (or, when empty, an interactive prompt) against the cluster whose info role
/// listens at `info`. Returns the process exit code. One session: its MULTI, WATCH and
/// read-your-writes hold from one line to the next.
pub async fn run(info: &str, secret: Option<String>, args: Vec<String>) -> i32 {
    let Some(secret) = secret else {
        eprintln!(
            "The routing client talks to shards as a cluster member: pass --cluster-secret-file <info's --dir>/cluster.secret \
             (the all-in-one default keeps it in data/info/cluster.secret under the directory it started in)"
        );
        return 2;
    };
    let wait = Duration::from_secs(2);
    let topology = match crate::resp::client::Client::connect_member(info, &secret, wait).await {
        Ok(mut c) => match c.call(&["EDIS.TOPOLOGY"], wait).await {
            Ok(frame) => Topology::from_frame(&frame).ok_or_else(|| format!("{frame:?}")),
            Err(e) => Err(e.to_string()),
        },
        Err(e) => Err(e.to_string()),
    };
    let topology = match topology {
        Ok(t) => t,
        Err(why) => {
            eprintln!("Could not read the cluster map from info at {info}: {why} (start one with `rust-edis`, or pass --info HOST:PORT)");
            return 1;
        }
    };
    let router = Router::new(Pool::new(1, Some(secret.clone())), None);
    router.set_topology(topology);
    let mut driver = Driver::new(router.clone(), ReadFrom::Replica);
    if !args.is_empty() {
        let words = args.into_iter().map(String::into_bytes).collect();
        if let Some(out) = line(&mut driver, words).await {
            println!("{out}");
        }
        return 0;
    }
    // A session follows the map as the proxy does (a failover moves slots to another node).
    let _watcher = crate::server::AbortOnDrop(tokio::spawn(crate::roles::agent::follow_topology(
        info.to_string(),
        secret,
        move |t| router.set_topology(t),
    )));
    if std::io::stdin().is_terminal() {
        return prompt(info, driver).await;
    }
    // Commands piped in, one per line.
    let stdin = std::io::stdin();
    loop {
        let mut text = String::new();
        if stdin.lock().read_line(&mut text).unwrap_or(0) == 0 {
            return 0;
        }
        match split_args(text.trim_end().as_bytes()) {
            Ok(w) if w.is_empty() => continue,
            Ok(w) => match line(&mut driver, w).await {
                Some(out) => println!("{out}"),
                None => return 0,
            },
            Err(_) => println!("Invalid argument(s)"),
        }
    }
}

/// The interactive prompt: line editing and history (kept in ~/.rust-edis_history, as
/// redis-cli keeps ~/.rediscli_history).
async fn prompt(info: &str, mut driver: Driver) -> i32 {
    let mut editor = match rustyline::DefaultEditor::new() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("Could not start the prompt: {e}");
            return 1;
        }
    };
    let history = std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".rust-edis_history"));
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    loop {
        let prompt = if driver.in_multi() { format!("{info}(TX)> ") } else { format!("{info}> ") };
        let text = match editor.readline(&prompt) {
            Ok(text) => text,
            Err(rustyline::error::ReadlineError::Interrupted) => continue,
            Err(_) => break,
        };
        let words = match split_args(text.trim().as_bytes()) {
            Ok(w) if w.is_empty() => continue,
            Ok(w) => w,
            Err(_) => {
                println!("Invalid argument(s)");
                continue;
            }
        };
        let _ = editor.add_history_entry(text.trim());
        match line(&mut driver, words).await {
            Some(out) => println!("{out}"),
            None => break,
        }
    }
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_redis_cli() {
        let r = Reply::Array(vec![
            Reply::bulk_str("a\"b"),
            Reply::Int(3),
            Reply::Nil,
            Reply::Array(vec![Reply::Ok]),
        ]);
        assert_eq!(format_reply(&r, true), "1) \"a\\\"b\"\n2) (integer) 3\n3) (nil)\n4) 1) OK");
        assert_eq!(format_reply(&r, false), "a\"b\n3\n\nOK");
        assert_eq!(format_reply(&Reply::err("ERR x"), true), "(error) ERR x");
        assert_eq!(format_reply(&Reply::Array(vec![]), true), "(empty array)");
    }

    #[test]
    fn help_reads_the_command_table() {
        let set = help(Some("set"));
        assert!(set.contains("SET key value") && set.contains("group: string"), "{set}");
        assert!(help(Some("@transactions")).contains("MULTI"));
        assert!(help(None).contains("help @<group>"));
        assert!(help(Some("nosuch")).starts_with("No help"));
        assert!(help(Some("config")).contains("CONFIG GET"));
    }
}
