//! COMMAND and its subcommands, printed from the command table: COMMAND, COUNT, INFO, DOCS,
//! LIST, GETKEYS. DOCS turns each command's syntax line into Redis's argument descriptions,
//! which redis-cli 7 uses for its hints and HELP.

use bytes::Bytes;

use super::{flags, lookup, resolve, Command, Ctx, COMMANDS};
use crate::resp::Reply;

fn s(v: &str) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(v.as_bytes()))
}

fn status(v: &str) -> Reply {
    Reply::Simple(v.to_string().into())
}

fn full_name(parent: Option<&Command>, cmd: &Command) -> String {
    match parent {
        Some(p) => format!("{}|{}", p.name, cmd.name),
        None => cmd.name.to_string(),
    }
}

/// ACL categories, derived from the flags and the group as Redis assigns them.
fn acl_categories(cmd: &Command) -> Vec<&'static str> {
    let mut cats = Vec::new();
    if cmd.has(flags::WRITE) {
        cats.push("@write");
    }
    if cmd.has(flags::READONLY) {
        cats.push("@read");
    }
    match cmd.group {
        "string" => cats.push("@string"),
        "generic" => cats.push("@keyspace"),
        "connection" => cats.push("@connection"),
        "transactions" => cats.push("@transaction"),
        _ => {}
    }
    if cmd.has(flags::ADMIN) {
        cats.push("@admin");
    }
    cats.push(if cmd.has(flags::FAST) { "@fast" } else { "@slow" });
    if cmd.has(flags::ADMIN) {
        cats.push("@dangerous");
    }
    cats
}

fn key_specs(cmd: &Command) -> Reply {
    if cmd.first_key <= 0 {
        return Reply::Set(vec![]);
    }
    let access: &[&str] = if cmd.has(flags::WRITE) { &["RW", "update"] } else { &["RO", "access"] };
    let lastkey = if cmd.last_key < 0 { cmd.last_key as i64 } else { (cmd.last_key - cmd.first_key) as i64 };
    Reply::Set(vec![Reply::Map(vec![
        (s("flags"), Reply::Set(access.iter().map(|f| status(f)).collect())),
        (
            s("begin_search"),
            Reply::Map(vec![
                (s("type"), s("index")),
                (s("spec"), Reply::Map(vec![(s("index"), Reply::Int(cmd.first_key as i64))])),
            ]),
        ),
        (
            s("find_keys"),
            Reply::Map(vec![
                (s("type"), s("range")),
                (
                    s("spec"),
                    Reply::Map(vec![
                        (s("lastkey"), Reply::Int(lastkey)),
                        (s("keystep"), Reply::Int(cmd.step as i64)),
                        (s("limit"), Reply::Int(0)),
                    ]),
                ),
            ]),
        ),
    ])])
}

/// One COMMAND INFO entry, in Redis 7's ten-element shape.
fn info_entry(parent: Option<&Command>, cmd: &Command) -> Reply {
    let flag_names = flags::NAMES.iter().filter(|(f, _)| cmd.has(*f)).map(|(_, n)| status(n)).collect();
    Reply::Array(vec![
        s(&full_name(parent, cmd)),
        Reply::Int(cmd.arity as i64),
        Reply::Set(flag_names),
        Reply::Int(cmd.first_key as i64),
        Reply::Int(cmd.last_key as i64),
        Reply::Int(cmd.step as i64),
        Reply::Set(acl_categories(cmd).into_iter().map(status).collect()),
        Reply::Set(vec![]),
        key_specs(cmd),
        Reply::Set(cmd.subcommands.iter().map(|sub| info_entry(Some(cmd), sub)).collect()),
    ])
}

/// One argument of a command's syntax, as COMMAND DOCS describes it.
#[derive(Debug, Clone, PartialEq)]
struct Arg {
    name: String,
    kind: &'static str,
    token: Option<String>,
    optional: bool,
    multiple: bool,
    children: Vec<Arg>,
}

impl Arg {
    fn leaf(name: &str, kind: &'static str) -> Arg {
        Arg { name: name.to_string(), kind, token: None, optional: false, multiple: false, children: vec![] }
    }

    fn reply(&self) -> Reply {
        let mut fields = vec![(s("name"), s(&self.name)), (s("type"), s(self.kind))];
        if let Some(t) = &self.token {
            fields.push((s("token"), s(t)));
        }
        let mut flag_list = Vec::new();
        if self.optional {
            flag_list.push(status("optional"));
        }
        if self.multiple {
            flag_list.push(status("multiple"));
        }
        if !flag_list.is_empty() {
            fields.push((s("flags"), Reply::Array(flag_list)));
        }
        if !self.children.is_empty() {
            fields.push((s("arguments"), Reply::Array(self.children.iter().map(Arg::reply).collect())));
        }
        Reply::Map(fields)
    }
}

fn value_kind(name: &str) -> &'static str {
    match name {
        "key" | "newkey" | "destination" | "source" => "key",
        "pattern" => "pattern",
        "unix-time-seconds" | "unix-time-milliseconds" => "unix-time",
        "seconds" | "milliseconds" | "count" | "offset" | "start" | "end" | "increment" | "decrement"
        | "index" | "cursor" | "protover" | "client-id" => "integer",
        _ => "string",
    }
}

fn is_token(word: &str) -> bool {
    word.chars().any(|c| c.is_ascii_uppercase()) && !word.chars().any(|c| c.is_ascii_lowercase())
}

/// Parses a syntax line such as `key value [NX|XX] [EX seconds|KEEPTTL] [key ...]`.
fn parse_syntax(syntax: &str) -> Vec<Arg> {
    let spaced = syntax.replace('[', " [ ").replace(']', " ] ").replace('|', " | ");
    let tokens: Vec<&str> = spaced.split_whitespace().collect();
    let mut pos = 0;
    let mut alts = parse_alternatives(&tokens, &mut pos);
    alts.pop().unwrap_or_default()
}

/// Parses `seq ('|' seq)*` until a closing bracket or the end.
fn parse_alternatives(tokens: &[&str], pos: &mut usize) -> Vec<Vec<Arg>> {
    let mut alts: Vec<Vec<Arg>> = vec![Vec::new()];
    while let Some(&t) = tokens.get(*pos) {
        *pos += 1;
        let seq = alts.last_mut().expect("never empty");
        match t {
            "]" => break,
            "|" => alts.push(Vec::new()),
            "..." => {
                if let Some(last) = seq.last_mut() {
                    last.multiple = true;
                }
            }
            "[" => {
                let mut inner = parse_alternatives(tokens, pos);
                // `[field value ...]`: the ellipsis repeats the whole group.
                let repeat =
                    inner.len() == 1 && inner[0].len() > 1 && inner[0].last().is_some_and(|a| a.multiple);
                if repeat {
                    inner[0].last_mut().expect("checked").multiple = false;
                }
                let mut arg = group(inner);
                arg.multiple |= repeat;
                arg.optional = true;
                // `key [key ...]` is one argument that repeats.
                if arg.multiple
                    && seq.last().is_some_and(|prev| prev.name == arg.name && prev.token == arg.token)
                {
                    seq.last_mut().expect("checked").multiple = true;
                    continue;
                }
                seq.push(arg);
            }
            word if is_token(word) => {
                let next =
                    tokens.get(*pos).copied().filter(|n| !is_token(n) && !["[", "]", "|", "..."].contains(n));
                let mut arg = match next {
                    Some(value) => {
                        *pos += 1;
                        Arg::leaf(value, value_kind(value))
                    }
                    None => Arg::leaf(&word.to_ascii_lowercase(), "pure-token"),
                };
                arg.token = Some(word.to_string());
                seq.push(arg);
            }
            word => seq.push(Arg::leaf(word, value_kind(word))),
        }
    }
    alts
}

/// One argument from a bracketed group: itself, a block of several, or a choice.
fn group(mut alts: Vec<Vec<Arg>>) -> Arg {
    let block = |seq: Vec<Arg>| {
        if seq.len() == 1 {
            seq.into_iter().next().expect("one")
        } else {
            let name = seq.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join("-");
            Arg { children: seq, ..Arg::leaf(&name, "block") }
        }
    };
    if alts.len() == 1 {
        return block(alts.pop().expect("one"));
    }
    let children: Vec<Arg> = alts.into_iter().map(block).collect();
    let name = children.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join("-");
    Arg { children, ..Arg::leaf(&name, "oneof") }
}

fn docs_entry(cmd: &Command) -> Reply {
    let mut fields = vec![
        (s("summary"), s(cmd.summary)),
        (s("since"), s(cmd.since)),
        (s("group"), s(cmd.group)),
        (s("complexity"), s(cmd.complexity)),
    ];
    let args = parse_syntax(cmd.syntax);
    if !args.is_empty() {
        fields.push((s("arguments"), Reply::Array(args.iter().map(Arg::reply).collect())));
    }
    if !cmd.subcommands.is_empty() {
        let subs =
            cmd.subcommands.iter().map(|sub| (s(&full_name(Some(cmd), sub)), docs_entry(sub))).collect();
        fields.push((s("subcommands"), Reply::Map(subs)));
    }
    Reply::Map(fields)
}

/// COMMAND: every command's info entry.
pub fn command(_ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    Reply::Array(COMMANDS.iter().map(|c| info_entry(None, c)).collect())
}

pub fn count(_ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    Reply::Int(COMMANDS.len() as i64)
}

/// Finds `name` or `container|sub`.
fn find(name: &[u8]) -> Option<(Option<&'static Command>, &'static Command)> {
    match name.iter().position(|&b| b == b'|') {
        None => lookup(name).map(|c| (None, c)),
        Some(bar) => {
            let parent = lookup(&name[..bar])?;
            parent.subcommand(&name[bar + 1..]).map(|sub| (Some(parent), sub))
        }
    }
}

pub fn info(_ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if args.len() == 2 {
        return Reply::Array(COMMANDS.iter().map(|c| info_entry(None, c)).collect());
    }
    Reply::Array(
        args[2..]
            .iter()
            .map(|name| find(name).map_or(Reply::Nil, |(parent, cmd)| info_entry(parent, cmd)))
            .collect(),
    )
}

pub fn docs(_ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let pairs = if args.len() == 2 {
        COMMANDS.iter().map(|c| (s(c.name), docs_entry(c))).collect()
    } else {
        args[2..]
            .iter()
            .filter_map(|name| find(name).map(|(parent, cmd)| (s(&full_name(parent, cmd)), docs_entry(cmd))))
            .collect()
    };
    Reply::Map(pairs)
}

pub fn list(_ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if args.len() > 2 {
        return Reply::err(super::SYNTAX);
    }
    Reply::Array(COMMANDS.iter().map(|c| s(c.name)).collect())
}

/// COMMAND GETKEYS command arg...: the key arguments, found from the table.
pub fn getkeys(_ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let call = &args[2..];
    let cmd = match resolve(call) {
        Ok(cmd) => cmd,
        Err(_) if lookup(&call[0]).is_none() => return Reply::err("ERR Invalid command specified"),
        Err(_) => return Reply::err("ERR Invalid number of arguments specified for command"),
    };
    if !cmd.has_keys() {
        return Reply::err("ERR The command has no key arguments");
    }
    Reply::Array(cmd.keys_of(call).map(|k| Reply::Bulk(k.clone())).collect())
}

pub fn help(_ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    let lines = [
        "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "(no subcommand)",
        "    Return details about all commands.",
        "COUNT",
        "    Return the total number of commands in this server.",
        "LIST",
        "    Return a list of all commands in this server.",
        "INFO [<command-name> ...]",
        "    Return details about multiple commands.",
        "DOCS [<command-name> ...]",
        "    Return documentation details about multiple commands.",
        "GETKEYS <full-command>",
        "    Return the keys from a full command.",
        "HELP",
        "    Print this help.",
    ];
    Reply::Array(lines.iter().map(|l| status(l)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_of_set() {
        let args = parse_syntax("key value [NX|XX] [GET] [EX seconds|PX milliseconds|KEEPTTL]");
        assert_eq!(args.len(), 5);
        assert_eq!((args[0].name.as_str(), args[0].kind), ("key", "key"));
        assert_eq!((args[1].name.as_str(), args[1].kind), ("value", "string"));
        assert_eq!(args[2].kind, "oneof");
        assert!(args[2].optional);
        assert_eq!(
            args[2].children.iter().map(|c| c.token.as_deref().unwrap()).collect::<Vec<_>>(),
            ["NX", "XX"]
        );
        assert_eq!(
            (args[3].kind, args[3].token.as_deref(), args[3].optional),
            ("pure-token", Some("GET"), true)
        );
        let ex = &args[4].children[0];
        assert_eq!((ex.name.as_str(), ex.kind, ex.token.as_deref()), ("seconds", "integer", Some("EX")));
        assert_eq!(args[4].children[2].kind, "pure-token");
    }

    #[test]
    fn repeated_keys_collapse() {
        let args = parse_syntax("key [key ...]");
        assert_eq!(args.len(), 1);
        assert!(args[0].multiple && !args[0].optional);
        let args = parse_syntax("key value [key value ...]");
        assert_eq!(args.len(), 3);
        assert!(args[2].multiple && args[2].optional && args[2].kind == "block");
    }

    #[test]
    fn every_syntax_parses() {
        fn walk(cmd: &Command) {
            if !cmd.syntax.is_empty() {
                assert!(!parse_syntax(cmd.syntax).is_empty(), "{}", cmd.name);
            }
            cmd.subcommands.iter().for_each(walk);
        }
        COMMANDS.iter().for_each(walk);
    }
}
