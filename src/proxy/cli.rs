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
        _ => {
            let args: Vec<Bytes> = words.into_iter().map(Bytes::from).collect();
            let tty = std::io::stdout().is_terminal();
            Some(format_reply(&driver.call(&args).await, tty))
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
    let router = Router::new(Pool::new(1, Some(secret)), None);
    router.set_topology(topology);
    let mut driver = Driver::new(router, ReadFrom::Replica);
    if !args.is_empty() {
        let words = args.into_iter().map(String::into_bytes).collect();
        if let Some(out) = line(&mut driver, words).await {
            println!("{out}");
        }
        return 0;
    }
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
