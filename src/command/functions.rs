//! Redis 7 functions: FUNCTION LOAD / LIST / DELETE / FLUSH / DUMP / RESTORE / STATS / KILL
//! and FCALL / FCALL_RO. A library is Lua code that starts with `#!lua name=<library>` and
//! registers functions with `redis.register_function`; its code is data (kept in the
//! keyspace, saved in the RDB, replicated as FUNCTION LOAD), and an interpreter of its own
//! runs it, rebuilt from the code whenever the keyspace's libraries change underneath it
//! (a load from disk, a full resync).
//!
//! While a library's code runs (at FUNCTION LOAD), its globals hold only `redis` with
//! `register_function`, `log` and the constants, as in Redis; the functions it registered
//! later run with the whole API, as scripts do.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use mlua::{Lua, MultiValue, Table, Value};

use super::scripting::{
    execute, lua_message, Engine, RunFlags, Target, FUNCTION_CHUNK, SCRIPT_FLAGS, WRITE_FLAG_RO,
};
use super::{text, Ctx};
use crate::resp::Reply;
use crate::server::RunningFunction;

/// The compiled libraries, for the keyspace's libraries at `version`.
pub struct Functions {
    engine: Engine,
    version: u64,
    /// Library name → the names of its functions, in the order it registered them.
    libraries: BTreeMap<String, Vec<String>>,
    functions: HashMap<String, Function>,
    /// What the library code sees as `redis` while it loads, and the globals' usual lookup
    /// (swapped in and out of the globals' view around a load).
    load_api: Table,
    load_globals: Table,
}

struct Function {
    library: String,
    callback: mlua::Function,
    flags: Vec<&'static str>,
    description: Option<String>,
}

thread_local! {
    /// The functions a library registers while its code runs.
    static REGISTERED: RefCell<Option<Vec<(String, Function)>>> = const { RefCell::new(None) };
    /// When a library's code runs out of time (FUNCTION LOAD timeout, 500 ms as in Redis).
    pub(super) static LOAD_DEADLINE: std::cell::Cell<Option<std::time::Instant>> = const { std::cell::Cell::new(None) };
}

const LOAD_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);

impl Functions {
    fn new(version: u64) -> mlua::Result<Functions> {
        let engine = Engine::new(FUNCTION_CHUNK)?;
        let lua = &engine.lua;
        let load_api = lua.create_table()?;
        load_api.raw_set("register_function", lua.create_function(register_function)?)?;
        let redis: Table = engine.globals.raw_get("redis")?;
        let runtime_redis = redis.metatable().and_then(|m| m.raw_get::<Table>("__index").ok());
        for name in [
            "log",
            "LOG_DEBUG",
            "LOG_VERBOSE",
            "LOG_NOTICE",
            "LOG_WARNING",
            "REDIS_VERSION",
            "REDIS_VERSION_NUM",
        ] {
            if let Some(real) = &runtime_redis {
                load_api.raw_set(name, real.raw_get::<Value>(name)?)?;
            }
        }
        // Anything else is "nonexistent", in the words Redis uses for globals.
        let missing = lua.create_function(super::scripting::nonexistent_global)?;
        let meta = lua.create_table()?;
        meta.raw_set("__index", &missing)?;
        load_api.set_metatable(Some(meta.clone()));
        let load_globals = lua.create_table()?;
        load_globals.raw_set("redis", &load_api)?;
        load_globals.set_metatable(Some(meta));
        Ok(Functions {
            engine,
            version,
            libraries: BTreeMap::new(),
            functions: HashMap::new(),
            load_api,
            load_globals,
        })
    }

    /// Runs a library's code and returns the functions it registered, or Redis's error.
    fn run_library(&self, code: &[u8]) -> Result<Vec<(String, Function)>, Reply> {
        let lua = &self.engine.lua;
        // The metadata line stays, empty, so that lines keep their numbers in errors.
        let code = &code[code.iter().position(|&b| b == b'\n').unwrap_or(0)..];
        let chunk = lua
            .load(code)
            .set_name(FUNCTION_CHUNK)
            .set_environment(self.engine.env.clone())
            .into_function()
            .map_err(|e| Reply::error(format!("ERR Error compiling function: {}", lua_message(&e))))?;
        let view_meta = self.engine.env.metatable().ok_or_else(|| Reply::err("ERR no globals"))?;
        let runtime_lookup: Value = view_meta.raw_get("__index").unwrap_or(Value::Nil);
        let _ = view_meta.raw_set("__index", &self.load_globals);
        REGISTERED.with(|r| *r.borrow_mut() = Some(Vec::new()));
        LOAD_DEADLINE.set(Some(std::time::Instant::now() + LOAD_TIMEOUT));
        let ran = chunk.call::<()>(());
        LOAD_DEADLINE.set(None);
        let registered = REGISTERED.with(|r| r.borrow_mut().take()).unwrap_or_default();
        let _ = view_meta.raw_set("__index", runtime_lookup);
        let _ = &self.load_api;
        if let Err(e) = ran {
            return Err(Reply::error(format!("ERR Error registering functions: ERR {}", lua_message(&e))));
        }
        if registered.is_empty() {
            return Err(Reply::err("ERR No functions registered"));
        }
        Ok(registered)
    }

    /// Adds a library (its functions already registered and checked).
    fn add(&mut self, name: &str, registered: Vec<(String, Function)>) {
        let names = registered.iter().map(|(n, _)| n.clone()).collect();
        for (fname, f) in registered {
            self.functions.insert(fname, f);
        }
        self.libraries.insert(name.to_string(), names);
    }

    fn remove(&mut self, name: &str) {
        for fname in self.libraries.remove(name).unwrap_or_default() {
            self.functions.remove(&fname);
        }
    }
}

/// Letters, digits and underscores, at least one: what library and function names may be.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

const BAD_NAME: &str =
    "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

/// redis.register_function(name, callback) or redis.register_function{function_name=...,
/// callback=..., flags={...}, description=...}, while a library loads.
fn register_function(_lua: &Lua, args: MultiValue) -> mlua::Result<()> {
    let fail = |m: &str| Err(mlua::Error::runtime(m.to_string()));
    let (name, callback, flags, description) = match args.len() {
        1 => {
            let Value::Table(t) = &args[0] else {
                return fail("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).");
            };
            let (mut name, mut callback, mut flags, mut description) = (None, None, Vec::new(), None);
            for pair in t.clone().pairs::<Value, Value>() {
                let (k, v) = pair?;
                let key = match &k {
                    Value::String(s) => s.to_string_lossy(),
                    _ => return fail("named argument key given to redis.register_function is not a string"),
                };
                match key.as_str() {
                    "function_name" => name = lua_text(&v),
                    "callback" => callback = v.as_function().cloned(),
                    "description" => description = lua_text(&v),
                    "flags" => {
                        let Value::Table(list) = &v else {
                            return fail("flags argument to redis.register_function must be a table representing function flags");
                        };
                        for flag in list.clone().sequence_values::<Value>() {
                            let flag = flag?;
                            match lua_text(&flag).and_then(|f| SCRIPT_FLAGS.iter().find(|k| **k == f)) {
                                Some(known) => flags.push(*known),
                                None => return fail("unknown flag given"),
                            }
                        }
                    }
                    _ => return fail("unknown argument given to redis.register_function"),
                }
            }
            let Some(name) = name else {
                return fail("redis.register_function must get a function name argument");
            };
            let Some(callback) = callback else {
                return fail("redis.register_function must get a callback argument");
            };
            (name, callback, flags, description)
        }
        2 => {
            let name = lua_text(&args[0]).unwrap_or_default();
            let Some(callback) = args[1].as_function().cloned() else {
                return fail("second argument to redis.register_function must be a function");
            };
            (name, callback, Vec::new(), None)
        }
        _ => return fail("wrong number of arguments to redis.register_function"),
    };
    if !valid_name(&name) {
        return fail(BAD_NAME);
    }
    REGISTERED.with(|r| {
        let mut r = r.borrow_mut();
        let Some(list) = r.as_mut() else {
            return fail("redis.register_function can only be called on FUNCTION LOAD command");
        };
        if list.iter().any(|(n, _)| *n == name) {
            return fail("Function already exists in the library");
        }
        list.push((name, Function { library: String::new(), callback, flags, description }));
        Ok(())
    })
}

/// A Lua string or number as text (what lua_tostring gives).
fn lua_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.to_string_lossy()),
        Value::Integer(n) => Some(n.to_string()),
        Value::Number(n) => Some(crate::keyspace::zset::g17(*n)),
        _ => None,
    }
}

/// A library's name from its first line (`#!lua name=mylib`), or Redis's error.
pub fn library_name(code: &[u8]) -> Result<String, Reply> {
    if !code.starts_with(b"#!") {
        return Err(Reply::err("ERR Missing library metadata"));
    }
    let Some(end) = code.iter().position(|&b| b == b'\n') else {
        return Err(Reply::err("ERR Invalid library metadata"));
    };
    let line = String::from_utf8_lossy(&code[2..end]);
    let mut words = line.split(' ').filter(|w| !w.is_empty());
    let engine = words.next().unwrap_or("");
    let mut name = None;
    for word in words {
        match word.strip_prefix("name=") {
            Some(n) if name.is_none() => name = Some(n.to_string()),
            Some(_) => {
                return Err(Reply::err("ERR Invalid metadata value, name argument was given multiple times"))
            }
            None => return Err(Reply::error(format!("ERR Invalid metadata value given: {word}"))),
        }
    }
    let Some(name) = name else { return Err(Reply::err("ERR Library name was not given")) };
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(Reply::error(format!("ERR Engine '{engine}' not found")));
    }
    if !valid_name(&name) {
        return Err(Reply::error(format!("ERR {BAD_NAME}")));
    }
    Ok(name)
}

/// INFO memory's view of the functions: libraries, functions, their interpreter's bytes, and
/// the bytes of their names and descriptions (Redis's used_memory_functions). Nothing starts
/// while no library is loaded.
pub fn memory(ctx: &mut Ctx) -> (usize, usize, usize, usize) {
    if ctx.state.keyspace.functions.is_empty() {
        return (0, 0, 0, 0);
    }
    let Ok(f) = compiled(ctx) else { return (0, 0, 0, 0) };
    let names = f.libraries.keys().map(|l| l.len()).sum::<usize>()
        + f.functions
            .iter()
            .map(|(n, f)| n.len() + f.description.as_ref().map_or(0, |d| d.len()))
            .sum::<usize>();
    (f.libraries.len(), f.functions.len(), f.engine.lua.used_memory(), names)
}

/// The compiled functions for the keyspace's libraries, built (again) if they changed.
fn compiled<'a>(ctx: &'a mut Ctx) -> Result<&'a mut Functions, Reply> {
    let libs = &ctx.state.keyspace.functions;
    let stale = ctx.state.scripts.functions.as_ref().is_none_or(|f| f.version != libs.version());
    if stale {
        let mut fresh =
            Functions::new(libs.version()).map_err(|e| Reply::error(format!("ERR cannot start Lua: {e}")))?;
        for (name, code) in libs.iter() {
            match fresh.run_library(code) {
                Ok(mut registered) => {
                    for (_, f) in &mut registered {
                        f.library = name.clone();
                    }
                    fresh.add(name, registered);
                }
                Err(e) => tracing::warn!("function library {name} did not load: {e:?}"),
            }
        }
        ctx.state.scripts.functions = Some(fresh);
    }
    ctx.state.scripts.functions.as_mut().ok_or_else(|| Reply::err("ERR no Lua"))
}

/// Loads `code` as a library (replacing one of the same name when `replace`); its name.
fn load(ctx: &mut Ctx, code: &Bytes, replace: bool) -> Result<String, Reply> {
    let name = library_name(code)?;
    if !replace && ctx.state.keyspace.functions.get(&name).is_some() {
        return Err(Reply::error(format!("ERR Library '{name}' already exists")));
    }
    let functions = compiled(ctx)?;
    let mut registered = functions.run_library(code)?;
    for (fname, f) in &mut registered {
        if let Some(other) = functions.functions.get(fname.as_str()) {
            if other.library != name {
                return Err(Reply::error(format!("ERR Function {fname} already exists")));
            }
        }
        f.library = name.clone();
    }
    functions.remove(&name);
    functions.add(&name, registered);
    let libs = &mut ctx.state.keyspace.functions;
    libs.insert(name.clone(), code.clone());
    if let Some(f) = ctx.state.scripts.functions.as_mut() {
        f.version = ctx.state.keyspace.functions.version();
    }
    Ok(name)
}

/// FUNCTION LOAD [REPLACE] code
pub fn function_load(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (replace, code) = match args.len() {
        3 => (false, &args[2]),
        4 if args[2].eq_ignore_ascii_case(b"replace") => (true, &args[3]),
        4 => return Reply::error(format!("ERR Unknown option given: {}", text(&args[2]))),
        _ => return super::wrong_arity("function|load"),
    };
    match load(ctx, code, replace) {
        Ok(name) => Reply::bulk(Bytes::from(name)),
        Err(e) => e,
    }
}

/// FCALL function numkeys [key ...] [arg ...], and FCALL_RO (`read_only`).
fn fcall_with(ctx: &mut Ctx, args: &[Bytes], read_only: bool) -> Reply {
    let numkeys = match super::int_arg(&args[2]) {
        Ok(n) => n,
        Err(_) => return Reply::err("ERR Bad number of keys provided"),
    };
    if numkeys < 0 {
        return Reply::err("ERR Number of keys can't be negative");
    }
    if numkeys as usize > args.len() - 3 {
        return Reply::err("ERR Number of keys can't be greater than number of args");
    }
    let (keys, argv) = args[3..].split_at(numkeys as usize);
    let name = text(&args[1]);
    let scripts = match compiled(ctx) {
        Ok(_) => std::mem::take(&mut ctx.state.scripts),
        Err(e) => return e,
    };
    let reply = (|| {
        let Some(functions) = scripts.functions.as_ref() else { return Reply::err("ERR no Lua") };
        let Some(f) = functions.functions.get(&name) else { return Reply::err("ERR Function not found") };
        let no_writes = f.flags.contains(&"no-writes");
        if read_only && !no_writes {
            return Reply::err(WRITE_FLAG_RO);
        }
        let running = RunningFunction {
            name: name.clone(),
            command: args.to_vec(),
            libraries: functions.libraries.len() as i64,
            functions: functions.functions.len() as i64,
        };
        let target = Target::Function(&f.callback, running);
        let flags = RunFlags::of(&f.flags, read_only);
        execute(ctx, &functions.engine, target, keys, argv, &name, flags)
    })();
    ctx.state.scripts = scripts;
    reply
}

pub fn fcall(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    fcall_with(ctx, args, false)
}

pub fn fcall_ro(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    fcall_with(ctx, args, true)
}

/// FUNCTION DELETE library-name
pub fn function_delete(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let name = text(&args[2]);
    if ctx.state.keyspace.functions.remove(&name).is_none() {
        return Reply::err("ERR Library not found");
    }
    if let Some(f) = ctx.state.scripts.functions.as_mut() {
        f.remove(&name);
        f.version = ctx.state.keyspace.functions.version();
    }
    Reply::Ok
}

/// FUNCTION FLUSH [ASYNC|SYNC]
pub fn function_flush(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match args.get(2) {
        None => {}
        Some(mode)
            if args.len() == 3
                && (mode.eq_ignore_ascii_case(b"async") || mode.eq_ignore_ascii_case(b"sync")) => {}
        Some(_) if args.len() == 3 => {
            return Reply::err("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
        }
        Some(_) => {
            return Reply::error(format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try FUNCTION HELP.",
                text(&args[1])
            ))
        }
    }
    ctx.state.keyspace.functions.clear();
    ctx.state.scripts.functions = None;
    Reply::Ok
}

/// FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE]
pub fn function_list(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (mut pattern, mut with_code) = (None, false);
    let mut i = 2;
    while i < args.len() {
        if args[i].eq_ignore_ascii_case(b"withcode") && !with_code {
            with_code = true;
        } else if args[i].eq_ignore_ascii_case(b"libraryname") && pattern.is_none() {
            match args.get(i + 1) {
                Some(p) => pattern = Some(p.clone()),
                None => return Reply::err("ERR library name argument was not given"),
            }
            i += 1;
        } else {
            return Reply::error(format!("ERR Unknown argument {}", text(&args[i])));
        }
        i += 1;
    }
    if let Err(e) = compiled(ctx) {
        return e;
    }
    let Some(functions) = ctx.state.scripts.functions.as_ref() else { return Reply::err("ERR no Lua") };
    let mut out = Vec::new();
    for (name, fnames) in &functions.libraries {
        if pattern.as_ref().is_some_and(|p| !crate::keyspace::glob_match(p, name.as_bytes())) {
            continue;
        }
        let list = fnames
            .iter()
            .filter_map(|n| functions.functions.get(n).map(|f| (n, f)))
            .map(|(n, f)| {
                Reply::Map(vec![
                    (Reply::bulk("name"), Reply::bulk(Bytes::from(n.clone()))),
                    (
                        Reply::bulk("description"),
                        f.description.clone().map_or(Reply::Nil, |d| Reply::bulk(Bytes::from(d))),
                    ),
                    (Reply::bulk("flags"), Reply::Set(f.flags.iter().map(|fl| Reply::simple(fl)).collect())),
                ])
            })
            .collect();
        let mut lib = vec![
            (Reply::bulk("library_name"), Reply::bulk(Bytes::from(name.clone()))),
            (Reply::bulk("engine"), Reply::bulk("LUA")),
            (Reply::bulk("functions"), Reply::Array(list)),
        ];
        if with_code {
            let code = ctx.state.keyspace.functions.get(name).cloned().unwrap_or_default();
            lib.push((Reply::bulk("library_code"), Reply::bulk(code)));
        }
        out.push(Reply::Map(lib));
    }
    Reply::Array(out)
}

/// FUNCTION STATS: no function is running when a command gets here (a running one holds
/// the server), and the counts.
pub fn function_stats(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    let (libraries, functions) = match compiled(ctx) {
        Ok(f) => (f.libraries.len() as i64, f.functions.len() as i64),
        Err(e) => return e,
    };
    stats_reply(None, libraries, functions)
}

/// FUNCTION STATS's reply: the running function (and for how long, in ms) and the counts.
pub fn stats_reply(running: Option<(&RunningFunction, u64)>, libraries: i64, functions: i64) -> Reply {
    let running = match running {
        None => Reply::Nil,
        Some((f, ran)) => Reply::Map(vec![
            (Reply::bulk("name"), Reply::bulk(Bytes::from(f.name.clone()))),
            (Reply::bulk("command"), Reply::Array(f.command.iter().cloned().map(Reply::Bulk).collect())),
            (Reply::bulk("duration_ms"), Reply::Int(ran as i64)),
        ]),
    };
    Reply::Map(vec![
        (Reply::bulk("running_script"), running),
        (
            Reply::bulk("engines"),
            Reply::Map(vec![(
                Reply::bulk("LUA"),
                Reply::Map(vec![
                    (Reply::bulk("libraries_count"), Reply::Int(libraries)),
                    (Reply::bulk("functions_count"), Reply::Int(functions)),
                ]),
            )]),
        ),
    ])
}

/// FUNCTION KILL: as SCRIPT KILL, nothing is running when a command gets here (a running
/// function is stopped from the busy path).
pub fn function_kill(_ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    Reply::err("NOTBUSY No scripts in execution right now.")
}

/// FUNCTION DUMP: every library's code in Redis's payload (RDB function opcodes, the RDB
/// version and a CRC64), which FUNCTION RESTORE takes here or on redis-server.
pub fn function_dump(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    let codes: Vec<&Bytes> = ctx.state.keyspace.functions.iter().map(|(_, c)| c).collect();
    Reply::bulk(crate::persistence::rdb::dump_functions(&codes))
}

/// FUNCTION RESTORE payload [FLUSH|APPEND|REPLACE]
pub fn function_restore(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    #[derive(PartialEq)]
    enum Policy {
        Flush,
        Append,
        Replace,
    }
    let policy = match args.get(3) {
        None => Policy::Append,
        Some(p) if args.len() == 4 && p.eq_ignore_ascii_case(b"flush") => Policy::Flush,
        Some(p) if args.len() == 4 && p.eq_ignore_ascii_case(b"append") => Policy::Append,
        Some(p) if args.len() == 4 && p.eq_ignore_ascii_case(b"replace") => Policy::Replace,
        Some(_) => {
            return Reply::err(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            )
        }
    };
    let Some(codes) = crate::persistence::rdb::undump_functions(&args[2]) else {
        return Reply::err("ERR DUMP payload version or checksum are wrong");
    };
    // Checked whole before anything changes: names, clashes, and that each library loads.
    let mut names = Vec::new();
    for code in &codes {
        let name = match library_name(code) {
            Ok(n) => n,
            Err(e) => return e,
        };
        if policy == Policy::Append && ctx.state.keyspace.functions.get(&name).is_some() {
            return Reply::error(format!("ERR Library {name} already exists"));
        }
        names.push(name);
    }
    let saved: Vec<(String, Bytes)> =
        ctx.state.keyspace.functions.iter().map(|(n, c)| (n.clone(), c.clone())).collect();
    if policy == Policy::Flush {
        ctx.state.keyspace.functions.clear();
    }
    for code in &codes {
        if let Err(e) = load(ctx, code, true) {
            // Put back what was there: RESTORE is all or nothing.
            ctx.state.keyspace.functions.clear();
            for (n, c) in saved {
                ctx.state.keyspace.functions.insert(n, c);
            }
            return e;
        }
    }
    Reply::Ok
}

pub fn function_help(_ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    super::server::help(&[
        "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "LOAD [REPLACE] <FUNCTION CODE>",
        "    Create a new library with the given library name and code.",
        "DELETE <LIBRARY NAME>",
        "    Delete the given library.",
        "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
        "    Return general information on all the libraries:",
        "    * Library name",
        "    * The engine used to run the Library",
        "    * Library description",
        "    * Functions list",
        "    * Library code (if WITHCODE is given)",
        "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
        "STATS",
        "    Return information about the current function running:",
        "    * Function name",
        "    * Command used to run the function",
        "    * Duration in MS that the function is running",
        "    If no function is running, return nil",
        "    In addition, returns a list of available engines.",
        "KILL",
        "    Kill the current running function.",
        "FLUSH [ASYNC|SYNC]",
        "    Delete all the libraries.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the libraries.",
        "    * SYNC: Synchronously flush the libraries.",
        "DUMP",
        "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
        "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
        "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
        "    control how to handle existing libraries (default APPEND):",
        "    * FLUSH: delete all existing libraries.",
        "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
        "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
        "      libraries with the new libraries (notice that even on this option there is a chance of failure",
        "      in case of functions name collision with another library).",
        "HELP",
        "    Prints this help.",
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_metadata_as_redis_reads_it() {
        assert_eq!(library_name(b"#!lua name=mylib\nreturn 1").unwrap(), "mylib");
        assert_eq!(library_name(b"#!lua  name=x \n").unwrap(), "x");
        let err = |code: &[u8]| match library_name(code) {
            Err(Reply::Error(e)) => e.to_string(),
            other => panic!("{other:?}"),
        };
        assert_eq!(err(b"return 1"), "ERR Missing library metadata");
        assert_eq!(err(b"#!lua name=x"), "ERR Invalid library metadata");
        assert_eq!(err(b"#!lua\n"), "ERR Library name was not given");
        assert_eq!(err(b"#!py name=x\n"), "ERR Engine 'py' not found");
        assert_eq!(err(b"#!lua name=x foo=bar\n"), "ERR Invalid metadata value given: foo=bar");
        assert_eq!(
            err(b"#!lua name=x name=y\n"),
            "ERR Invalid metadata value, name argument was given multiple times"
        );
        assert!(err(b"#!lua name=a-b\n").starts_with("ERR Library names can only contain"));
    }
}
