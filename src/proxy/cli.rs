//! `rust-edis client`: sends commands straight to the shards, routing exactly as the proxy
//! does (the same router), from the map info gives it. Prints replies as redis-cli does:
//! typed and quoted on a terminal, raw when piped.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::backend::Pool;
use super::router::{to_reply, Caller, ReadFrom, Req, Router};
use crate::command::lookup;
use crate::resp::client::Client;
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
            Reply::Double(d) => out.push_str(&crate::resp::reply::format_double(*d)),
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
            Reply::Map(pairs) => {
                let flat: Vec<Reply> = pairs.iter().flat_map(|(k, v)| [k.clone(), v.clone()]).collect();
                walk(&Reply::Array(flat), tty, indent, out);
            }
        }
    }
    let mut out = String::new();
    walk(reply, tty, 0, &mut out);
    out
}

async fn execute(router: &Arc<Router>, args: Vec<Bytes>) -> Reply {
    let Some(cmd) = lookup(&args[0]) else {
        return Reply::error(format!("ERR unknown command '{}'", String::from_utf8_lossy(&args[0])));
    };
    if Router::handles(cmd) {
        let req = Req { cmd, lane: 0, now: crate::keyspace::now_ms() };
        return router.route(&args, req, &Caller::new(ReadFrom::Replica, false)).get().await;
    }
    // Anything else is asked of the first write shard.
    let topology = router.topology();
    let Some(shard) = topology.shards.first() else { return Reply::err("CLUSTERDOWN no shard is known yet") };
    match tokio::time::timeout(
        Duration::from_secs(2),
        router.pool.send_command(&shard.primary.addr(), 0, &args),
    )
    .await
    {
        Ok(Ok(Ok(answered))) => to_reply(answered.frame),
        _ => Reply::error(format!("CLUSTERDOWN {} is unavailable", shard.primary.addr())),
    }
}

/// Runs `args` (or, when empty, an interactive prompt) against the cluster whose info role
/// listens at `info`. Returns the process exit code.
pub async fn run(info: &str, args: Vec<String>) -> i32 {
    let topology = match Client::connect(info, Duration::from_secs(2)).await {
        Ok(mut c) => match c.call(&["EDIS.TOPOLOGY"], Duration::from_secs(2)).await {
            Ok(frame) => Topology::from_frame(&frame),
            Err(_) => None,
        },
        Err(_) => None,
    };
    let Some(topology) = topology else {
        eprintln!("Could not read the cluster map from info at {info} (start one with `rust-edis`, or pass --info HOST:PORT)");
        return 1;
    };
    let router = Router::new(Pool::new(1, None), None);
    router.set_topology(topology);
    let tty = std::io::stdout().is_terminal();
    if !args.is_empty() {
        let reply = execute(&router, args.into_iter().map(Bytes::from).collect()).await;
        println!("{}", format_reply(&reply, tty));
        return 0;
    }
    let stdin = std::io::stdin();
    let prompt = format!("{info}> ");
    loop {
        if tty || stdin.is_terminal() {
            print!("{prompt}");
            let _ = std::io::stdout().flush();
        }
        let mut line = String::new();
        if stdin.lock().read_line(&mut line).unwrap_or(0) == 0 {
            return 0;
        }
        let words = match split_args(line.trim_end().as_bytes()) {
            Ok(w) if w.is_empty() => continue,
            Ok(w) => w,
            Err(_) => {
                println!("Invalid argument(s)");
                continue;
            }
        };
        if words[0].eq_ignore_ascii_case(b"quit") || words[0].eq_ignore_ascii_case(b"exit") {
            return 0;
        }
        let reply = execute(&router, words.into_iter().map(Bytes::from).collect()).await;
        println!("{}", format_reply(&reply, tty));
    }
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
}
