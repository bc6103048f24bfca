//! Lua scripting as Redis 7 has it: EVAL, EVALSHA, their _RO forms and SCRIPT LOAD / EXISTS /
//! FLUSH / KILL. Scripts run in Lua 5.1 (mlua, vendored: no system library), in a sandbox
//! (no os, io, require, loadfile, dofile; globals read-only), atomically under the state lock,
//! and replicate by their effects: the writes a script makes reach replicas and the AOF as
//! one MULTI/EXEC, never the script text.
//!
//! Values cross as Redis documents: a Lua number becomes an integer (truncated), a string a
//! bulk string, true 1, false and nil a nil, a table with `ok` a status, with `err` an error,
//! any other table an array up to its first nil; replies come into Lua as numbers, strings,
//! false for nil, tables for arrays, `{ok=...}` for a status and `{err=...}` for an error.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mlua::{Lua, LuaOptions, MultiValue, StdLib, Table, Value};

use super::{flags, lookup, text, Ctx};
use crate::resp::Reply;

/// The script cache and the interpreter, made at the first script.
#[derive(Default)]
pub struct Scripts {
    engine: Option<Engine>,
    /// Redis 7 functions (FUNCTION LOAD, FCALL): their own interpreter, as in Redis.
    pub(super) functions: Option<super::functions::Functions>,
}

pub(super) struct Engine {
    pub(super) lua: Lua,
    /// The chunk name its code gets (`@user_script`, `@user_function`), which errors quote.
    chunk: &'static str,
    /// Compiled scripts by SHA1 (lowercase hex), with their text.
    cache: HashMap<String, (Bytes, mlua::Function, Shebang)>,
    /// What every run uses, made once: the globals, xpcall and the error handler that notes
    /// the line an error came from.
    pub(super) globals: Table,
    /// What scripts see as their globals: a read-only view of `globals`.
    pub(super) env: Table,
    xpcall: mlua::Function,
    handler: mlua::Function,
    /// fcall(f, handler, keys, args): f(keys, args) under xpcall (Lua 5.1's xpcall passes
    /// no arguments on).
    fcall: mlua::Function,
}

/// What [`execute`] runs: an EVAL script (KEYS and ARGV as globals) or a function (called
/// with the two tables).
pub(super) enum Target<'a> {
    Script(&'a mlua::Function),
    Function(&'a mlua::Function, crate::server::RunningFunction),
}

/// The script running on this thread: what redis.call and the hook reach it by. Set for the
/// extent of one run (see [`run`]); redis.call takes it out while its command runs.
#[derive(Clone, Copy)]
struct Running {
    ctx: *mut Ctx<'static>,
    server: *const crate::server::Server,
    read_only: bool,
    cross_slot: bool,
}

/// The chunk name scripts get, which Redis's errors quote (`user_script:1: ...`).
const CHUNK: &str = "@user_script";
/// EVAL_RO / FCALL_RO of a script or function that did not declare no-writes.
pub(super) const WRITE_FLAG_RO: &str = "ERR Can not execute a script with write flag using *_ro command.";

/// The chunk name of a function library's code.
pub(super) const FUNCTION_CHUNK: &str = "@user_function";

impl Engine {
    /// An interpreter for EVAL scripts (`chunk` CHUNK) or for functions (FUNCTION_CHUNK).
    pub(super) fn new(chunk: &'static str) -> mlua::Result<Engine> {
        let lua = Lua::new_with(StdLib::TABLE | StdLib::STRING | StdLib::MATH, LuaOptions::default())?;
        let g = lua.globals();
        for name in ["dofile", "loadfile", "require", "module", "print", "newproxy"] {
            g.raw_set(name, Value::Nil)?;
        }
        let redis = lua.create_table()?;
        redis.set(
            "error_reply",
            lua.create_function(|lua, msg: mlua::String| reply_table(lua, "err", msg))?,
        )?;
        redis.set(
            "status_reply",
            lua.create_function(|lua, msg: mlua::String| reply_table(lua, "ok", msg))?,
        )?;
        redis.set(
            "sha1hex",
            lua.create_function(|_, s: Option<mlua::String>| match s {
                Some(s) => Ok(sha1_hex(&s.as_bytes())),
                None => Err(mlua::Error::runtime("wrong number of arguments")),
            })?,
        )?;
        redis.set(
            "log",
            lua.create_function(|_, (level, msg): (i64, mlua::String)| {
                let msg = msg.to_string_lossy();
                match level {
                    0 | 1 => tracing::debug!(target: "script", "{msg}"),
                    2 => tracing::info!(target: "script", "{msg}"),
                    _ => tracing::warn!(target: "script", "{msg}"),
                }
                Ok(())
            })?,
        )?;
        redis.set(
            "setresp",
            lua.create_function(|_, args: MultiValue| {
                if args.len() != 1 {
                    return Err(mlua::Error::runtime("redis.setresp() requires one argument."));
                }
                match args[0].as_number().or(args[0].as_integer().map(|n| n as f64)) {
                    Some(v) if v == 2.0 || v == 3.0 => {
                        SCRIPT_RESP.set(v as u8);
                        Ok(())
                    }
                    _ => Err(mlua::Error::runtime("RESP version must be 2 or 3.")),
                }
            })?,
        )?;
        redis.set(
            "set_repl",
            lua.create_function(|_, v: i64| match v {
                0..=3 => Ok(()),
                _ => Err(mlua::Error::runtime(
                    "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
                )),
            })?,
        )?;
        redis.set("replicate_commands", lua.create_function(|_, ()| Ok(true))?)?;
        // The debugger's hooks, inert outside a debugging session as in production Redis.
        redis.set("breakpoint", lua.create_function(|_, _: MultiValue| Ok(false))?)?;
        redis.set("debug", lua.create_function(|_, _: MultiValue| Ok(()))?)?;
        // Every user may run every command here (no ACL rules): known commands are allowed.
        redis.set(
            "acl_check_cmd",
            lua.create_function(|_, args: MultiValue| match args.front() {
                None => {
                    Err(mlua::Error::runtime("Please specify at least one argument for this redis lib call"))
                }
                Some(Value::String(name)) if lookup(&name.as_bytes()).is_some() => Ok(true),
                Some(_) => Err(mlua::Error::runtime("Invalid command passed to redis.acl_check_cmd()")),
            })?,
        )?;
        redis.set("call", lua.create_function(|lua, args: MultiValue| redis_call(lua, args, true))?)?;
        redis.set("pcall", lua.create_function(|lua, args: MultiValue| redis_call(lua, args, false))?)?;
        for (name, v) in [
            ("LOG_DEBUG", 0),
            ("LOG_VERBOSE", 1),
            ("LOG_NOTICE", 2),
            ("LOG_WARNING", 3),
            ("REPL_NONE", 0),
            ("REPL_AOF", 1),
            ("REPL_SLAVE", 2),
            ("REPL_REPLICA", 2),
            ("REPL_ALL", 3),
        ] {
            redis.set(name, v)?;
        }
        redis.set("REDIS_VERSION", crate::server::REDIS_VERSION)?;
        let num = crate::server::REDIS_VERSION
            .split('.')
            .fold(0i64, |n, part| (n << 8) | part.parse::<i64>().unwrap_or(0));
        redis.set("REDIS_VERSION_NUM", num)?;
        g.raw_set("redis", redis)?;
        // math.random as Redis: its own generator, seeded the same before every script, so a
        // script gives the same numbers on the primary and wherever it is replayed.
        let math: Table = g.get("math")?;
        math.set("random", lua.create_function(random)?)?;
        math.set(
            "randomseed",
            lua.create_function(|_, seed: i64| {
                RAND48.with(|r| r.set(rand48_seed(seed as u32)));
                Ok(())
            })?,
        )?;
        // Globals are read-only, and reading one that does not exist is an error.
        let meta = lua.create_table()?;
        meta.set(
            "__newindex",
            lua.create_function(|lua, (_t, _k, _v): (Value, Value, Value)| -> mlua::Result<()> {
                Err(mlua::Error::runtime(at_line(lua, "Attempt to modify a readonly table")))
            })?,
        )?;
        meta.set("__index", lua.create_function(nonexistent_global)?)?;
        super::lualibs::install(&lua, &g)?;
        g.set_metatable(Some(meta));
        let env = protect(&lua, &g)?;
        // The line an error came from, for Redis's "on @user_script:N." (Lua 5.1's xpcall
        // passes on one value from the handler: both go in a table.)
        let handler = lua.create_function(|lua, err: Value| {
            let wrapped = lua.create_table()?;
            wrapped.raw_set(1, err)?;
            if let Some((source, _, line)) = script_frame(lua) {
                wrapped.raw_set(2, line)?;
                wrapped.raw_set(3, source)?;
            }
            Ok(wrapped)
        })?;
        g.raw_set("__redis__err__handler", &handler)?;
        let xpcall: mlua::Function = g.raw_get("xpcall")?;
        let fcall = lua
            .load("local xpcall = ... return function(f, h, k, a) return xpcall(function() return f(k, a) end, h) end")
            .into_function()?
            .call(&xpcall)?;
        // SCRIPT KILL reaches a running script through this hook, every 10,000 instructions.
        lua.set_hook(mlua::HookTriggers::new().every_nth_instruction(10_000), |_, _| hook());
        Ok(Engine { chunk, cache: HashMap::new(), globals: g, env, xpcall, handler, fcall, lua })
    }

    /// The compiled script `body` (cached by its SHA1), or Redis's compile error.
    fn compile(&mut self, sha: &str, body: &Bytes) -> Result<(mlua::Function, Shebang), Reply> {
        if let Some((_, f, shebang)) = self.cache.get(sha) {
            return Ok((f.clone(), *shebang));
        }
        let (shebang, code) = shebang(body)?;
        let f =
            self.lua.load(code).set_name(CHUNK).set_environment(self.env.clone()).into_function().map_err(
                |e| Reply::error(format!("ERR Error compiling script (new function): {}", lua_message(&e))),
            )?;
        self.cache.insert(sha.to_string(), (body.clone(), f.clone(), shebang));
        Ok((f, shebang))
    }
}

/// What a script's `#!lua flags=...` line declares (Redis 7). Without one, a script may
/// write (and runs read-only only through EVAL_RO).
#[derive(Clone, Copy, Default)]
struct Shebang {
    declared: bool,
    no_writes: bool,
    flags: RunFlags,
}

/// The declared flags that change how a script or function runs (beyond no-writes).
#[derive(Clone, Copy, Default)]
pub(super) struct RunFlags {
    /// EVAL_RO / FCALL_RO, or no-writes declared: write commands are refused.
    pub read_only: bool,
    /// no-cluster: refused on a cluster node.
    pub no_cluster: bool,
    /// allow-cross-slot-keys: keys it touches may be in other slots served here.
    pub cross_slot: bool,
    /// Flags were declared (a shebang, or any function) and allow-oom was not among them:
    /// a script that may write is refused while memory is over maxmemory.
    pub deny_oom: bool,
}

impl RunFlags {
    pub(super) fn of(flags: &[&str], read_only: bool) -> RunFlags {
        RunFlags {
            read_only: read_only || flags.contains(&"no-writes"),
            no_cluster: flags.contains(&"no-cluster"),
            cross_slot: flags.contains(&"allow-cross-slot-keys"),
            deny_oom: !flags.contains(&"allow-oom"),
        }
    }
}

/// The flags a script may declare, as Redis 7 knows them.
pub(super) const SCRIPT_FLAGS: &[&str] =
    &["no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys"];

/// A script's shebang, and the code Lua compiles: the shebang line is left empty so the
/// lines keep their numbers.
fn shebang(body: &[u8]) -> Result<(Shebang, &[u8]), Reply> {
    if !body.starts_with(b"#!") {
        return Ok((Shebang::default(), body));
    }
    let Some(end) = body.iter().position(|&b| b == b'\n') else {
        return Err(Reply::err("ERR Invalid script shebang"));
    };
    let line = String::from_utf8_lossy(&body[..end]);
    let mut words = line.split(' ').filter(|w| !w.is_empty());
    let engine = words.next().unwrap_or("");
    if engine != "#!lua" {
        return Err(Reply::error(format!("ERR Unexpected engine in script shebang: {engine}")));
    }
    let mut shebang = Shebang { declared: true, ..Default::default() };
    let mut allow_oom = false;
    for word in words {
        let Some(flags) = word.strip_prefix("flags=") else {
            return Err(Reply::error(format!("ERR Unknown lua shebang option: {word}")));
        };
        for flag in flags.split(',').filter(|f| !f.is_empty()) {
            if !SCRIPT_FLAGS.contains(&flag) {
                return Err(Reply::error(format!("ERR Unexpected flag in script shebang: {flag}")));
            }
            shebang.no_writes |= flag == "no-writes";
            shebang.flags.no_cluster |= flag == "no-cluster";
            shebang.flags.cross_slot |= flag == "allow-cross-slot-keys";
            allow_oom |= flag == "allow-oom";
        }
    }
    shebang.flags.deny_oom = !allow_oom;
    Ok((shebang, &body[end..]))
}

/// The name of the sandbox's own Lua code, whose frames errors do not point at.
const SANDBOX_CHUNK: &str = "=sandbox";

/// The libraries scripts may not change, as Redis makes them read-only tables.
const READ_ONLY: &[&str] = &["redis", "math", "string", "table", "bit", "cjson", "cmsgpack", "struct"];

/// Makes the globals and the libraries read-only as Redis's patched Lua does (its tables
/// refuse every write, raw ones too): each library becomes an empty view whose reads go to
/// the real table and whose writes fail, rawset and setmetatable refuse them, and pairs,
/// next and rawget see through the views. Returns the view of the globals scripts run in.
fn protect(lua: &Lua, g: &Table) -> mlua::Result<Table> {
    let readonly = lua.create_function(|lua, _: MultiValue| -> mlua::Result<()> {
        Err(mlua::Error::runtime(at_line(lua, "Attempt to modify a readonly table")))
    })?;
    let refuse = lua.create_function(|_, _: MultiValue| -> mlua::Result<()> {
        Err(mlua::Error::runtime("Attempt to modify a readonly table"))
    })?;
    let setup: mlua::Function = lua
        .load(
            r#"
            local G, readonly, refuse, names = ...
            local rawset, rawget, setmetatable, next = rawset, rawget, setmetatable, next
            local protected, real = {}, {}
            local function view(t)
                local v = setmetatable({}, { __index = t, __newindex = readonly, __metatable = false })
                protected[v], protected[t], real[v] = true, true, t
                return v
            end
            for _, name in ipairs(names) do
                local t = rawget(G, name)
                if type(t) == "table" then rawset(G, name, view(t)) end
            end
            local env = view(G)
            rawset(G, "_G", env)
            -- Code a script compiles runs in the same read-only view, not in the real globals.
            local loadstring, load, setfenv = loadstring, load, setfenv
            rawset(G, "loadstring", function(...)
                local f, e = loadstring(...)
                if f then setfenv(f, env) end
                return f, e
            end)
            rawset(G, "load", function(...)
                local f, e = load(...)
                if f then setfenv(f, env) end
                return f, e
            end)
            rawset(G, "getfenv", nil)
            rawset(G, "setfenv", nil)
            rawset(G, "rawset", function(t, k, v)
                if protected[t] then return refuse() end
                return rawset(t, k, v)
            end)
            rawset(G, "setmetatable", function(t, m)
                if protected[t] then return refuse() end
                return setmetatable(t, m)
            end)
            rawset(G, "rawget", function(t, k) return rawget(real[t] or t, k) end)
            rawset(G, "next", function(t, k) return next(real[t] or t, k) end)
            rawset(G, "pairs", function(t) return next, real[t] or t, nil end)
            return env
            "#,
        )
        .set_name(SANDBOX_CHUNK)
        .into_function()?;
    setup.call((g, readonly, refuse, READ_ONLY))
}

fn reply_table(lua: &Lua, field: &str, msg: mlua::String) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(field, msg)?;
    Ok(t)
}

/// A SHA1 as the cache keys it (40 lowercase hex digits), without allocating; None when it
/// cannot be one.
fn lowercase_sha(arg: &[u8]) -> Option<ShaText> {
    let mut out = [0u8; 40];
    if arg.len() != 40 {
        return None;
    }
    for (o, b) in out.iter_mut().zip(arg) {
        *o = b.to_ascii_lowercase();
    }
    Some(ShaText(out))
}

struct ShaText([u8; 40]);

impl ShaText {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

pub fn sha1_hex(bytes: &[u8]) -> String {
    sha1_smol::Sha1::from(bytes).digest().to_string()
}

thread_local! {
    /// The slot of the keys the running script declared or touched first (in a cluster).
    static SCRIPT_SLOT: std::cell::Cell<Option<u16>> = const { std::cell::Cell::new(None) };
    /// The state of math.random (Redis's rand48), reset before every script.
    static RAND48: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// The protocol redis.call replies come to the script in (redis.setresp), 2 at each start.
    static SCRIPT_RESP: std::cell::Cell<u8> = const { std::cell::Cell::new(2) };
    /// The script running on this thread, if any.
    static RUNNING: std::cell::Cell<Option<Running>> = const { std::cell::Cell::new(None) };
    /// When (ms into the running script) the hook next hands this worker's tasks off.
    static HAND_OFF_AT: std::cell::Cell<u64> = const { std::cell::Cell::new(u64::MAX) };
}

fn fresh_seed() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(crate::keyspace::now_ms());
    h.finish() as u32
}

/// rand48's state for `seed`, as srand48 sets it.
fn rand48_seed(seed: u32) -> u64 {
    ((seed as u64) << 16) | 0x330E
}

/// The next 31-bit number of rand48 (lrand48).
fn lrand48() -> u32 {
    RAND48.with(|r| {
        let next = (r.get().wrapping_mul(0x5DEECE66D).wrapping_add(0xB)) & ((1 << 48) - 1);
        r.set(next);
        (next >> 17) as u32
    })
}

/// math.random with Lua 5.1's arguments over rand48, as Redis replaces it.
fn random(_lua: &Lua, args: MultiValue) -> mlua::Result<f64> {
    // Redis divides by RAND_MAX of its rand48 (2^31 - 1).
    let r = (lrand48() % 0x7fff_ffff) as f64 / 0x7fff_ffff as f64;
    let nums: Vec<f64> =
        args.iter().filter_map(|v| v.as_number().or(v.as_integer().map(|i| i as f64))).collect();
    match (args.len(), nums.as_slice()) {
        (0, _) => Ok(r),
        (1, [u]) if *u >= 1.0 => Ok((r * u.floor()).floor() + 1.0),
        (2, [l, u]) if l <= u => Ok((r * (u.floor() - l.floor() + 1.0)).floor() + l.floor()),
        (1 | 2, _) => {
            Err(mlua::Error::runtime(at_line(_lua, "bad argument #1 to 'random' (interval is empty)")))
        }
        _ => Err(mlua::Error::runtime("wrong number of arguments")),
    }
}

/// The text of a Lua error without mlua's decorations (its traceback, "runtime error: ").
pub(super) fn lua_message(e: &mlua::Error) -> String {
    match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::RuntimeError(m) => m.split("\nstack traceback:").next().unwrap_or(m).to_string(),
        mlua::Error::CallbackError { cause, .. } => lua_message(cause),
        other => other.to_string(),
    }
}

/// The globals' `__index`: reading a global that does not exist is an error, in Redis's words.
pub(super) fn nonexistent_global(lua: &Lua, (_t, k): (Value, Value)) -> mlua::Result<Value> {
    let name = match &k {
        Value::String(s) => s.to_string_lossy(),
        _ => return Ok(Value::Nil),
    };
    Err(mlua::Error::runtime(at_line(
        lua,
        &format!("Script attempted to access nonexistent global variable '{name}'"),
    )))
}

/// An error a script raised: a table with `err` (from redis.call or error({err=...})) or a
/// message, with the line it came from.
struct Raised {
    text: String,
    line: Option<i64>,
    /// From a table (redis.call's errors, error_reply): the text is the reply as it is.
    table: bool,
}

/// EVAL script numkeys [key ...] [arg ...], and EVALSHA sha1 numkeys ... (`by_sha`).
fn eval_with(ctx: &mut Ctx, args: &[Bytes], by_sha: bool, read_only: bool) -> Reply {
    let numkeys = match super::int_arg(&args[2]) {
        Ok(n) => n,
        Err(e) => return e,
    };
    if numkeys < 0 {
        return Reply::err("ERR Number of keys can't be negative");
    }
    if numkeys as usize > args.len() - 3 {
        return Reply::err("ERR Number of keys can't be greater than number of args");
    }
    let (keys, argv) = args[3..].split_at(numkeys as usize);
    let mut scripts = std::mem::take(&mut ctx.state.scripts);
    let reply = run(ctx, &mut scripts, &args[1], by_sha, read_only, keys, argv);
    ctx.state.scripts = scripts;
    reply
}

fn run(
    ctx: &mut Ctx,
    scripts: &mut Scripts,
    script: &Bytes,
    by_sha: bool,
    read_only: bool,
    keys: &[Bytes],
    argv: &[Bytes],
) -> Reply {
    if scripts.engine.is_none() {
        match Engine::new(CHUNK) {
            Ok(e) => scripts.engine = Some(e),
            Err(e) => return Reply::error(format!("ERR cannot start Lua: {e}")),
        }
    }
    let Some(engine) = scripts.engine.as_mut() else { return Reply::err("ERR no Lua") };
    // The cached script, borrowed: nothing is copied per EVALSHA.
    let key = if by_sha {
        lowercase_sha(script)
    } else {
        let sha = sha1_hex(script);
        if let Err(e) = engine.compile(&sha, script) {
            return e;
        }
        lowercase_sha(sha.as_bytes())
    };
    let engine = &*engine;
    let Some((sha, (_, f, flags))) = key.and_then(|k| engine.cache.get_key_value(k.as_str())) else {
        return Reply::err("NOSCRIPT No matching script. Please use EVAL.");
    };
    if read_only && flags.declared && !flags.no_writes {
        return Reply::err(WRITE_FLAG_RO);
    }
    let run = RunFlags { read_only: read_only || flags.no_writes, ..flags.flags };
    execute(ctx, engine, Target::Script(f), keys, argv, sha, run)
}

/// Runs a script or a function atomically: others wait (then get BUSY), its writes reach
/// replicas and the AOF as one MULTI/EXEC, its errors come back in Redis's words naming
/// `name` (a SHA1 or a function name) and the line.
pub(super) fn execute(
    ctx: &mut Ctx,
    engine: &Engine,
    target: Target<'_>,
    keys: &[Bytes],
    argv: &[Bytes],
    name: &str,
    flags: RunFlags,
) -> Reply {
    if flags.no_cluster && ctx.state.cluster.is_some() {
        return Reply::err("ERR Can not run script on cluster, 'no-cluster' flag is set.");
    }
    // As Redis: a script that declared its flags without allow-oom, and may write, does not
    // start while memory is over maxmemory (one without flags fails at its first write).
    if flags.deny_oom
        && !flags.read_only
        && !ctx.client.is_master
        && ctx.state.memory.maxmemory > 0
        && !ctx.state.free_memory(ctx.now)
    {
        return Reply::err(crate::server::OOM);
    }
    let lua = &engine.lua;
    let array = |values: &[Bytes]| -> mlua::Result<Table> {
        let t = lua.create_table_with_capacity(values.len(), 0)?;
        for (i, v) in values.iter().enumerate() {
            t.raw_set(i + 1, lua.create_string(&v[..])?)?;
        }
        Ok(t)
    };
    let tables = match (array(keys), array(argv)) {
        (Ok(k), Ok(a)) => (k, a),
        (Err(e), _) | (_, Err(e)) => return Reply::error(format!("ERR {e}")),
    };
    if let Target::Script(_) = &target {
        if let Err(e) =
            engine.globals.raw_set("KEYS", &tables.0).and_then(|()| engine.globals.raw_set("ARGV", &tables.1))
        {
            return Reply::error(format!("ERR {e}"));
        }
    }
    // A new seed per script, as Redis 7 (scripts replicate by effects, so nothing needs the
    // numbers to repeat).
    RAND48.with(|r| r.set(rand48_seed(fresh_seed())));
    SCRIPT_RESP.set(2);
    let resp3 = ctx.client.proto == 3;
    SCRIPT_SLOT.with(|s| s.set(keys.first().map(|k| crate::topology::key_slot(k))));
    if let Some(log) = &mut ctx.state.log {
        log.begin_exec();
    }
    let was_in_exec = ctx.client.in_exec;
    ctx.client.in_exec = true;
    // Others see it running (they wait, then get BUSY); SCRIPT KILL reaches it through the
    // hook.
    let server = ctx.server.clone();
    server.script.start(ctx.now);
    let target = match target {
        Target::Function(f, running) => {
            server.script.set_function(running);
            Target::Function(f, crate::server::RunningFunction::default())
        }
        other => other,
    };
    // When to hand this thread's tasks to another worker (ms into the script): after 2 ms,
    // then again at growing intervals in case a hand-off did not take (see `hand_off`).
    HAND_OFF_AT.set(if crate::server::in_multi_thread_runtime() { 2 } else { u64::MAX });
    let running = Running {
        ctx: (ctx as *mut Ctx<'_>).cast::<Ctx<'static>>(),
        server: Arc::as_ptr(&server),
        read_only: flags.read_only,
        cross_slot: flags.cross_slot,
    };
    RUNNING.set(Some(running));
    let outcome = (|| -> mlua::Result<Result<Reply, (Raised, Option<String>)>> {
        let mut out: MultiValue = match target {
            Target::Script(f) => engine.xpcall.call((f, &engine.handler))?,
            Target::Function(f, _) => engine.fcall.call((f, &engine.handler, tables.0, tables.1))?,
        };
        let ok = matches!(out.pop_front(), Some(Value::Boolean(true)));
        let result = out.pop_front().unwrap_or(Value::Nil);
        if ok {
            return Ok(Ok(from_lua(&result, 0, resp3)));
        }
        let (err, line) = match &result {
            Value::Table(t) => (t.raw_get::<Value>(1)?, t.raw_get::<Option<i64>>(2)?),
            other => (other.clone(), None),
        };
        let source = match &result {
            Value::Table(t) => t.raw_get::<Option<String>>(3)?,
            _ => None,
        };
        Ok(Err((raised(&err, line), source)))
    })();
    RUNNING.set(None);
    server.script.end();
    ctx.client.in_exec = was_in_exec;
    if let Some(log) = &mut ctx.state.log {
        log.end_exec();
    }
    match outcome {
        Ok(Ok(reply)) => reply,
        Ok(Err((r, source))) => {
            let source = source.as_deref().unwrap_or(engine.chunk);
            let at = r.line.map_or(String::new(), |l| format!(", on {source}:{l}."));
            let text = if r.table { r.text } else { format!("ERR {}", r.text) };
            Reply::error(format!("{text} script: {name}{at}"))
        }
        Err(e) => Reply::error(format!("ERR {} script: {name}", lua_message(&e))),
    }
}

/// redis.call (`raise`: its errors are raised) and redis.pcall (returned as `{err=...}`).
fn redis_call(lua: &Lua, args: MultiValue, raise: bool) -> mlua::Result<Value> {
    // Taken out while the command runs, so nothing else reaches the context meanwhile.
    let Some(running) = RUNNING.take() else {
        return Err(mlua::Error::runtime("redis.call is only available while a script runs"));
    };
    // SAFETY: `run` set this from its `&mut Ctx` for the extent of the script it runs on this
    // thread and clears it before that borrow ends; taking it out of the cell makes this the
    // only use of the pointer until it is put back.
    let ctx = unsafe { &mut *running.ctx };
    let reply = call_from_script(ctx, &args, running.read_only, running.cross_slot);
    RUNNING.set(Some(running));
    match reply {
        Reply::Error(e) if raise => {
            let t = lua.create_table()?;
            t.raw_set("err", e.as_ref())?;
            Err(mlua::Error::external(TableError(t, script_line(lua))))
        }
        other => to_lua(lua, other, SCRIPT_RESP.get() == 3),
    }
}

/// The instruction hook: SCRIPT KILL, and handing this worker's other tasks to another
/// thread once a script has run a while.
fn hook() -> mlua::Result<mlua::VmState> {
    let Some(running) = RUNNING.get() else {
        // A function library's code at FUNCTION LOAD has a time limit instead.
        if super::functions::LOAD_DEADLINE.get().is_some_and(|d| std::time::Instant::now() >= d) {
            return Err(mlua::Error::runtime("FUNCTION LOAD timeout"));
        }
        return Ok(mlua::VmState::Continue);
    };
    // SAFETY: the server outlives the run that set `running` (run holds an Arc to it).
    let server = unsafe { &*running.server };
    if server.script.kill.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(mlua::Error::runtime("Script killed by user with SCRIPT KILL..."));
    }
    let ran = crate::keyspace::now_ms().saturating_sub(server.script.running_since().unwrap_or(0));
    if ran >= HAND_OFF_AT.get() {
        // Running for a while: another worker must serve the other clients (BUSY, SCRIPT
        // KILL) while the script runs on here. Short scripts never pay for it.
        HAND_OFF_AT.set(ran.max(1) * 4);
        hand_off();
    }
    Ok(mlua::VmState::Continue)
}

/// Hands this worker thread's runtime core (its queued tasks, its LIFO slot, its turn at the
/// I/O driver) to a new worker thread, and lets the script run on here without it: other
/// connections are then served (BUSY, SCRIPT KILL) while it runs. tokio's block_in_place
/// takes the core back when its closure returns unless the new thread has claimed it, so the
/// closure gives it a moment to.
fn hand_off() {
    if crate::server::in_multi_thread_runtime() {
        tokio::task::block_in_place(|| std::thread::sleep(Duration::from_millis(5)));
    }
}

/// redis.call's error, carried through Lua as a table with `err`, and the line it was raised at.
#[derive(Debug)]
struct TableError(Table, Option<i64>);

impl std::fmt::Display for TableError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.get::<String>("err").unwrap_or_default())
    }
}

impl std::error::Error for TableError {}

/// What a failed script raised, in the words Redis's reply uses.
fn raised(err: &Value, line: Option<i64>) -> Raised {
    match err {
        Value::Table(t) => match t.get::<Option<String>>("err") {
            Ok(Some(e)) => Raised { text: e, line, table: true },
            _ => Raised { text: "Error running script: a table without err".into(), line, table: false },
        },
        Value::String(s) => Raised { text: s.to_string_lossy(), line, table: false },
        Value::Error(e) => {
            // A Rust callback's error: redis.call's table, or a message.
            if let Some(TableError(t, at)) = find_table_error(e) {
                let text = t.get::<String>("err").unwrap_or_default();
                return Raised { text, line: at.or(line), table: true };
            }
            Raised { text: lua_message(e), line, table: false }
        }
        other => Raised { text: format!("{other:?}"), line, table: false },
    }
}

fn find_table_error(e: &mlua::Error) -> Option<&TableError> {
    match e {
        mlua::Error::ExternalError(inner) => inner.downcast_ref::<TableError>(),
        mlua::Error::CallbackError { cause, .. } => find_table_error(cause),
        mlua::Error::WithContext { cause, .. } => find_table_error(cause),
        _ => None,
    }
}

/// Where the script is now: the innermost Lua frame's source (`@user_script`, or the text
/// of a chunk it compiled with loadstring), its short form as Lua's messages print it
/// (`user_script`, `[string "..."]`) and the line.
fn script_frame(lua: &Lua) -> Option<(String, String, i64)> {
    (0..32).find_map(|level| {
        let frame = lua.inspect_stack(level)?;
        let src = frame.source();
        if frame.curr_line() <= 0 || src.source.as_deref() == Some(SANDBOX_CHUNK) {
            return None;
        }
        let source = src.source.as_deref().unwrap_or("?").to_string();
        let short = src.short_src.as_deref().unwrap_or("?").to_string();
        Some((source, short, frame.curr_line() as i64))
    })
}

/// The line of the script running now.
fn script_line(lua: &Lua) -> Option<i64> {
    script_frame(lua).map(|(_, _, line)| line)
}

/// `message` with the script position Lua's own errors start with (`user_script:1: `).
pub(super) fn at_line(lua: &Lua, message: &str) -> String {
    match script_frame(lua) {
        Some((_, short, line)) => format!("{short}:{line}: {message}"),
        None => message.to_string(),
    }
}

/// Runs one command for redis.call / redis.pcall: Redis's checks first, in its words.
fn call_from_script(ctx: &mut Ctx, args: &MultiValue, read_only: bool, cross_slot: bool) -> Reply {
    if args.is_empty() {
        return Reply::err("ERR Please specify at least one argument for this redis lib call");
    }
    let mut argv: Vec<Bytes> = Vec::with_capacity(args.len());
    for v in args.iter() {
        match v {
            Value::String(s) => argv.push(Bytes::copy_from_slice(&s.as_bytes())),
            Value::Integer(n) => argv.push(Bytes::from(n.to_string())),
            // As Redis turns a Lua number into an argument: %.17g.
            Value::Number(n) => argv.push(Bytes::from(crate::keyspace::zset::g17(*n))),
            _ => return Reply::err("ERR Lua redis lib command arguments must be strings or integers"),
        }
    }
    let Some(cmd) = lookup(&argv[0]) else {
        return Reply::err("ERR Unknown Redis command called from script");
    };
    if !cmd.arity_ok(argv.len()) {
        return Reply::err("ERR Wrong number of args calling Redis command from script");
    }
    // A container's flags are its subcommand's (CONFIG GET may not run from a script).
    let cmd = match argv.get(1).and_then(|sub| cmd.subcommand(sub)) {
        Some(sub) if sub.arity_ok(argv.len()) => sub,
        _ => cmd,
    };
    if cmd.has(flags::NOSCRIPT) {
        return Reply::err("ERR This Redis command is not allowed from script");
    }
    if read_only && cmd.has(flags::WRITE) {
        return Reply::err("ERR Write commands are not allowed from read-only scripts.");
    }
    // In a cluster, as Redis Cluster: every key a script touches, declared or not, is in one
    // slot, and that slot is this node's.
    if let Some(view) = &ctx.state.cluster {
        if !ctx.client.is_master {
            for key in cmd.keys_of(&argv) {
                let slot = crate::topology::key_slot(key);
                match SCRIPT_SLOT.with(|s| s.get()) {
                    Some(first) if first != slot && !cross_slot => {
                        return Reply::err(
                            "ERR Script attempted to access keys that do not hash to the same slot",
                        )
                    }
                    _ => SCRIPT_SLOT.with(|s| s.set(Some(slot))),
                }
                if view.serve(slot).is_err() {
                    return Reply::err("ERR Script attempted to access a non local key in a cluster node");
                }
            }
        }
    }
    if cmd.has(flags::WRITE) {
        // From here SCRIPT KILL may not stop it: it would leave half its writes.
        ctx.server.script.wrote.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    super::dispatch(ctx, &argv)
}

/// A reply as a script sees it: RESP2's conversions, or with `resp3` (redis.setresp(3))
/// RESP3's: nil for a null, booleans, `{double=n}`, `{map={...}}`, `{set={m=true}}`, pairs
/// as two-element arrays, `{verbatim_string={format=, string=}}`.
fn to_lua(lua: &Lua, reply: Reply, resp3: bool) -> mlua::Result<Value> {
    let wrap = |field: &str, v: Value| -> mlua::Result<Value> {
        let t = lua.create_table()?;
        t.raw_set(field, v)?;
        Ok(Value::Table(t))
    };
    Ok(match reply {
        Reply::Ok => Value::Table(reply_table(lua, "ok", lua.create_string("OK")?)?),
        Reply::Simple(s) => Value::Table(reply_table(lua, "ok", lua.create_string(s.as_bytes())?)?),
        Reply::Error(e) => Value::Table(reply_table(lua, "err", lua.create_string(e.as_bytes())?)?),
        Reply::Int(n) => Value::Number(n as f64),
        Reply::Bulk(b) => Value::String(lua.create_string(&b[..])?),
        Reply::Verbatim(b) if resp3 => {
            let t = lua.create_table()?;
            t.raw_set("format", "txt")?;
            t.raw_set("string", lua.create_string(&b[..])?)?;
            wrap("verbatim_string", Value::Table(t))?
        }
        Reply::Verbatim(b) => Value::String(lua.create_string(&b[..])?),
        // A reply some commands encode at once (LRANGE): decoded for the script.
        Reply::Raw(b) => match redis_protocol::resp2::decode::decode_bytes(&b) {
            Ok(Some((frame, _))) => to_lua(lua, crate::proxy::router::to_reply(frame), resp3)?,
            _ => Value::String(lua.create_string(&b[..])?),
        },
        Reply::Nil | Reply::NilArray if resp3 => Value::Nil,
        Reply::Nil | Reply::NilArray => Value::Boolean(false),
        Reply::Double(d) if resp3 => wrap("double", Value::Number(d))?,
        // A double is a bulk string in RESP2 (Redis 7.0's %.17g).
        Reply::Double(d) => Value::String(lua.create_string(crate::keyspace::zset::g17(d))?),
        Reply::Bool(b) if resp3 => Value::Boolean(b),
        Reply::Bool(b) => Value::Number(b as i64 as f64),
        Reply::Set(items) if resp3 => {
            let t = lua.create_table()?;
            for item in items {
                t.raw_set(to_lua(lua, item, resp3)?, true)?;
            }
            wrap("set", Value::Table(t))?
        }
        Reply::Array(items) | Reply::Set(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.into_iter().enumerate() {
                t.raw_set(i + 1, to_lua(lua, item, resp3)?)?;
            }
            Value::Table(t)
        }
        Reply::Map(pairs) if resp3 => {
            let t = lua.create_table()?;
            for (k, v) in pairs {
                t.raw_set(to_lua(lua, k, resp3)?, to_lua(lua, v, resp3)?)?;
            }
            wrap("map", Value::Table(t))?
        }
        Reply::Pairs(pairs) if resp3 => {
            let t = lua.create_table_with_capacity(pairs.len(), 0)?;
            for (i, (k, v)) in pairs.into_iter().enumerate() {
                let pair = lua.create_table_with_capacity(2, 0)?;
                pair.raw_set(1, to_lua(lua, k, resp3)?)?;
                pair.raw_set(2, to_lua(lua, v, resp3)?)?;
                t.raw_set(i + 1, pair)?;
            }
            Value::Table(t)
        }
        Reply::Map(pairs) | Reply::Pairs(pairs) => {
            let t = lua.create_table_with_capacity(pairs.len() * 2, 0)?;
            for (i, (k, v)) in pairs.into_iter().enumerate() {
                t.raw_set(2 * i + 1, to_lua(lua, k, resp3)?)?;
                t.raw_set(2 * i + 2, to_lua(lua, v, resp3)?)?;
            }
            Value::Table(t)
        }
    })
}

/// A script's value as a reply for a client of `resp3` or RESP2: Redis's conversions, with
/// the RESP3 shapes a script may return (`{map=}`, `{set=}`, `{double=}`, `{big_number=}`,
/// `{verbatim_string=}`), which a RESP2 client gets as arrays and bulk strings. Nested
/// tables deeper than Redis allows are cut off.
fn from_lua(v: &Value, depth: usize, resp3: bool) -> Reply {
    match v {
        Value::Nil | Value::Boolean(false) => Reply::Nil,
        Value::Boolean(true) => Reply::Int(1),
        Value::Integer(n) => Reply::Int(*n),
        // As C converts (what Redis does): out of range or NaN is the smallest integer.
        Value::Number(n)
            if n.is_nan() || *n >= 9_223_372_036_854_775_808.0 || *n < -9_223_372_036_854_775_808.0 =>
        {
            Reply::Int(i64::MIN)
        }
        Value::Number(n) => Reply::Int(n.trunc() as i64),
        Value::String(s) => Reply::Bulk(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Table(t) => {
            if let Ok(Value::String(e)) = t.raw_get::<Value>("err") {
                return Reply::Error(String::from_utf8_lossy(&e.as_bytes()).into_owned().into());
            }
            if let Ok(Value::String(s)) = t.raw_get::<Value>("ok") {
                return Reply::Simple(String::from_utf8_lossy(&s.as_bytes()).into_owned().into());
            }
            if depth > 100 {
                return Reply::err("ERR reached lua stack limit");
            }
            if let Some(d) = t
                .raw_get::<Value>("double")
                .ok()
                .and_then(|v| v.as_number().or(v.as_integer().map(|n| n as f64)))
            {
                return Reply::Double(d);
            }
            if let Ok(Value::String(b)) = t.raw_get::<Value>("big_number") {
                let b = b.as_bytes();
                if resp3 {
                    let mut raw = Vec::with_capacity(b.len() + 3);
                    raw.push(b'(');
                    raw.extend(b.iter().map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }));
                    raw.extend_from_slice(b"\r\n");
                    return Reply::Raw(raw.into());
                }
                return Reply::Bulk(Bytes::copy_from_slice(&b));
            }
            if let Ok(Value::Table(m)) = t.raw_get::<Value>("map") {
                let mut pairs = Vec::new();
                for (k, v) in m.pairs::<Value, Value>().flatten() {
                    pairs.push((from_lua(&k, depth + 1, resp3), from_lua(&v, depth + 1, resp3)));
                }
                return Reply::Map(pairs);
            }
            if let Ok(Value::Table(m)) = t.raw_get::<Value>("set") {
                let items = m
                    .pairs::<Value, Value>()
                    .flatten()
                    .map(|(k, _)| from_lua(&k, depth + 1, resp3))
                    .collect();
                return Reply::Set(items);
            }
            if let Ok(Value::Table(v)) = t.raw_get::<Value>("verbatim_string") {
                let text = match v.raw_get::<Value>("string") {
                    Ok(Value::String(s)) => s.as_bytes().to_vec(),
                    _ => Vec::new(),
                };
                let format = match v.raw_get::<Value>("format") {
                    Ok(Value::String(s)) => s.as_bytes().to_vec(),
                    _ => b"txt".to_vec(),
                };
                if resp3 && format.len() == 3 {
                    let mut raw = format!("={}\r\n", text.len() + 4).into_bytes();
                    raw.extend_from_slice(&format);
                    raw.push(b':');
                    raw.extend_from_slice(&text);
                    raw.extend_from_slice(b"\r\n");
                    return Reply::Raw(raw.into());
                }
                return Reply::Bulk(text.into());
            }
            let mut items = Vec::new();
            for i in 1.. {
                match t.raw_get::<Value>(i) {
                    Ok(Value::Nil) | Err(_) => break,
                    Ok(item) => items.push(from_lua(&item, depth + 1, resp3)),
                }
            }
            Reply::Array(items)
        }
        _ => Reply::Nil,
    }
}

pub fn eval(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    eval_with(ctx, args, false, false)
}

pub fn evalsha(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    eval_with(ctx, args, true, false)
}

pub fn eval_ro(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    eval_with(ctx, args, false, true)
}

pub fn evalsha_ro(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    eval_with(ctx, args, true, true)
}

/// SCRIPT LOAD script: compiled and cached; its SHA1.
pub fn script_load(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let scripts = &mut ctx.state.scripts;
    if scripts.engine.is_none() {
        match Engine::new(CHUNK) {
            Ok(e) => scripts.engine = Some(e),
            Err(e) => return Reply::error(format!("ERR cannot start Lua: {e}")),
        }
    }
    let Some(engine) = scripts.engine.as_mut() else { return Reply::err("ERR no Lua") };
    let sha = sha1_hex(&args[2]);
    match engine.compile(&sha, &args[2]) {
        Ok(_) => {
            // Read shards get it too (down the replication stream, as Redis 6 sent it), so
            // EVALSHA_RO finds it wherever the proxy sends it.
            if let Some(log) = &mut ctx.state.log {
                log.append_control(args);
            }
            Reply::bulk(sha)
        }
        Err(e) => e,
    }
}

/// INFO memory's view of the EVAL scripts: the interpreter's bytes, the cached scripts'
/// text, and how many are cached.
pub fn memory(scripts: &Scripts) -> (usize, usize, usize) {
    scripts.engine.as_ref().map_or((0, 0, 0), |e| {
        let text = e.cache.iter().map(|(sha, (body, _, _))| sha.len() + body.len()).sum();
        (e.lua.used_memory(), text, e.cache.len())
    })
}

/// SCRIPT EXISTS sha1 [sha1 ...]: 1 or 0 each.
pub fn script_exists(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let engine = ctx.state.scripts.engine.as_ref();
    Reply::Array(
        args[2..]
            .iter()
            .map(|sha| {
                let known = engine.is_some_and(|e| e.cache.contains_key(&text(sha).to_ascii_lowercase()));
                Reply::Int(known as i64)
            })
            .collect(),
    )
}

/// SCRIPT FLUSH [ASYNC|SYNC]: the cache and the interpreter go.
pub fn script_flush(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if args.len() > 3
        || (args.len() == 3
            && !args[2].eq_ignore_ascii_case(b"async")
            && !args[2].eq_ignore_ascii_case(b"sync"))
    {
        return Reply::err("ERR SCRIPT FLUSH only support SYNC|ASYNC option");
    }
    ctx.state.scripts.engine = None;
    // Read shards drop theirs too (SCRIPT LOAD reaches them down the stream as well).
    if let Some(log) = &mut ctx.state.log {
        log.append_control(&args[..2]);
    }
    Reply::Ok
}

/// SCRIPT KILL: scripts run to their end under the state lock here, so none is ever running
/// when another client's command is.
pub fn script_kill(_ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    Reply::err("NOTBUSY No scripts in execution right now.")
}

/// SCRIPT DEBUG YES|SYNC|NO: the Lua debugger (LDB) is not here; NO is what scripts run with.
pub fn script_debug(_ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match text(&args[2]).to_ascii_lowercase().as_str() {
        "no" => Reply::Ok,
        "yes" | "sync" => Reply::err("ERR SCRIPT DEBUG (the Lua debugger) is not supported by rust-edis"),
        _ => Reply::err("ERR Use SCRIPT DEBUG YES/SYNC/NO"),
    }
}

pub fn script_help(_ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    super::server::help(&[
        "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DEBUG (YES|SYNC|NO)",
        "    Set the debug mode for subsequent scripts executed.",
        "EXISTS <sha1> [<sha1> ...]",
        "    Return information about the existence of the scripts in the script cache.",
        "FLUSH [ASYNC|SYNC]",
        "    Flush the Lua scripts cache. Very dangerous on replicas.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the scripts cache.",
        "    * SYNC: Synchronously flush the scripts cache.",
        "KILL",
        "    Kill the currently executing Lua script.",
        "LOAD <script>",
        "    Load a script into the scripts cache without executing it.",
        "HELP",
        "    Prints this help.",
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rand48_is_redis_s() {
        // srand48(0) then lrand48(): the sequence every Redis script starts from.
        RAND48.with(|r| r.set(rand48_seed(0)));
        let first: Vec<u32> = (0..3).map(|_| lrand48()).collect();
        RAND48.with(|r| r.set(rand48_seed(0)));
        assert_eq!(first, (0..3).map(|_| lrand48()).collect::<Vec<_>>(), "reseeded, the same again");
        assert_eq!(first[0], 366_850_414);
    }

    #[test]
    fn sha1_of_scripts() {
        assert_eq!(sha1_hex(b"return 1"), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
        assert_eq!(sha1_hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    }
}
