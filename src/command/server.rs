//! Server commands: INFO CONFIG TIME, and the FUNCTION/SCRIPT FLUSH that tools send.

use bytes::Bytes;

use super::{text, Ctx, SYNTAX};
use crate::alloc::{rss, used_memory};
use crate::resp::Reply;
use crate::server::REDIS_VERSION;

fn human(bytes: usize) -> String {
    let b = bytes as f64;
    match bytes {
        n if n < 1024 => format!("{n}B"),
        n if n < 1024 * 1024 => format!("{:.2}K", b / 1024.0),
        n if n < 1024 * 1024 * 1024 => format!("{:.2}M", b / 1048576.0),
        _ => format!("{:.2}G", b / 1073741824.0),
    }
}

/// Where this process's memory goes, as INFO memory and MEMORY STATS report it.
pub struct MemoryReport {
    /// The heap, with the data counted once (see `counted_once`).
    pub used: usize,
    /// The whole heap.
    pub process: usize,
    pub peak: usize,
    pub rss: usize,
    /// used_memory when this server started.
    pub startup: usize,
    pub backlog: usize,
    /// Connections' buffers and per-connection state; replicas' feeds apart.
    pub clients_normal: usize,
    pub clients_replicas: usize,
    pub keys: usize,
    pub system: usize,
}

impl MemoryReport {
    pub fn of(server: &crate::server::Server, state: &crate::server::State) -> Self {
        let replicas: Vec<u64> = state.replicas.iter().map(|r| r.id).collect();
        let (mut normal, mut feeds) = (0, 0);
        for h in server.clients().values() {
            if replicas.contains(&h.id) {
                feeds += h.memory() + crate::replication::FEED_CHUNK;
            } else {
                normal += h.memory();
            }
        }
        let once = |bytes| crate::server::counted_once(bytes, state.memory.copies);
        let heap = crate::server::used_memory();
        MemoryReport {
            used: once(heap),
            peak: once(crate::alloc::used_memory_peak().max(heap)),
            process: used_memory(),
            rss: rss(),
            startup: server.startup_memory,
            backlog: state.log.as_ref().map_or(0, |l| l.backlog.allocated()),
            clients_normal: normal,
            clients_replicas: feeds,
            keys: state.keyspace.dbs.iter().map(|db| db.len()).sum(),
            system: system_memory(),
        }
    }

    pub fn overhead(&self) -> usize {
        self.startup + self.backlog + self.clients_normal + self.clients_replicas
    }

    pub fn dataset(&self) -> usize {
        self.used.saturating_sub(self.overhead())
    }
}

/// Total RAM of the machine (/proc/meminfo's MemTotal), for total_system_memory.
fn system_memory() -> usize {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}

const DEFAULT_SECTIONS: &[&str] =
    &["server", "clients", "memory", "persistence", "stats", "replication", "cpu", "cluster", "keyspace"];
/// Every section, in Redis's order (`all` and `everything`; commandstats is not a default).
const ALL_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "commandstats",
    "cluster",
    "keyspace",
];

fn cpu_seconds() -> (f64, f64) {
    // utime and stime, fields 14 and 15 of /proc/self/stat, in clock ticks (100 per second).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / 100.0;
    (ticks(11), ticks(12))
}

fn section(ctx: &mut Ctx, name: &str, out: &mut String) {
    // The function libraries are compiled if they changed (INFO needs their counts).
    let functions = if name == "memory" { super::functions::memory(ctx) } else { (0, 0, 0, 0) };
    let state = &*ctx.state;
    let server = ctx.server;
    let mut w = |line: String| {
        out.push_str(&line);
        out.push_str("\r\n");
    };
    match name {
        "server" => {
            let uptime = server.started.elapsed().as_secs();
            w("# Server".into());
            w(format!("redis_version:{REDIS_VERSION}"));
            w(format!("rust_edis_version:{}", env!("CARGO_PKG_VERSION")));
            w("redis_git_sha1:00000000".into());
            w("redis_git_dirty:0".into());
            w(format!("redis_mode:{}", if state.cluster.is_some() { "cluster" } else { "standalone" }));
            w(format!("os:{} {}", std::env::consts::OS, std::env::consts::ARCH));
            w(format!("arch_bits:{}", usize::BITS));
            w("multiplexing_api:epoll".into());
            w(format!("process_id:{}", std::process::id()));
            w(format!("run_id:{}", server.run_id));
            w(format!("tcp_port:{}", server.local_addr.port()));
            w(format!("server_time_usec:{}", ctx.now * 1000));
            w(format!("uptime_in_seconds:{uptime}"));
            w(format!("uptime_in_days:{}", uptime / 86400));
            w(format!("hz:{}", state.config.hz()));
            w(format!("configured_hz:{}", state.config.hz()));
            let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default();
            w(format!("executable:{exe}"));
            let file = state.config.file.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
            w(format!("config_file:{file}"));
        }
        "clients" => {
            w("# Clients".into());
            w(format!("connected_clients:{}", server.clients().len()));
            w("cluster_connections:0".into());
            w(format!("maxclients:{}", state.config.maxclients()));
            // A proxy's clients block at the shards, on connections of their own.
            let through_proxy =
                server.proxy.get().map_or(0, |p| p.blocked.load(std::sync::atomic::Ordering::Relaxed));
            w(format!("blocked_clients:{}", state.blocking.len() + through_proxy));
            w(format!("tracking_clients:{}", state.tracking.clients.len()));
            w("clients_in_timeout_table:0".into());
        }
        "memory" => {
            let m = MemoryReport::of(ctx.server, state);
            let max: usize = state.config.get("maxmemory").parse().unwrap_or(0);
            w("# Memory".into());
            w(format!("used_memory:{}", m.used));
            w(format!("used_memory_human:{}", human(m.used)));
            if m.process != m.used {
                // --role all: the read shards' copies apart, and with them; and snapshots
                // being written, which used_memory leaves out (a fork's memory in Redis).
                w(format!("used_memory_process:{}", m.process));
            }
            w(format!("used_memory_rss:{}", m.rss));
            w(format!("used_memory_rss_human:{}", human(m.rss)));
            w(format!("used_memory_peak:{}", m.peak));
            w(format!("used_memory_peak_human:{}", human(m.peak)));
            w(format!("used_memory_peak_perc:{:.2}%", m.used as f64 * 100.0 / m.peak.max(1) as f64));
            w(format!("used_memory_overhead:{}", m.overhead()));
            w(format!("used_memory_startup:{}", m.startup));
            w(format!("used_memory_dataset:{}", m.dataset()));
            w(format!(
                "used_memory_dataset_perc:{:.2}%",
                m.dataset() as f64 * 100.0 / m.used.saturating_sub(m.startup).max(1) as f64
            ));
            w(format!("total_system_memory:{}", m.system));
            w(format!("total_system_memory_human:{}", human(m.system)));
            let (vm_eval, scripts_eval, cached) = super::scripting::memory(&state.scripts);
            let (libraries, function_count, vm_functions, functions_bytes) = functions;
            w(format!("used_memory_lua:{vm_eval}"));
            w(format!("used_memory_vm_eval:{vm_eval}"));
            w(format!("used_memory_lua_human:{}", human(vm_eval)));
            w(format!("used_memory_scripts_eval:{scripts_eval}"));
            w(format!("number_of_cached_scripts:{cached}"));
            w(format!("number_of_functions:{function_count}"));
            w(format!("number_of_libraries:{libraries}"));
            w(format!("used_memory_vm_functions:{vm_functions}"));
            w(format!("used_memory_vm_total:{}", vm_eval + vm_functions));
            w(format!("used_memory_vm_total_human:{}", human(vm_eval + vm_functions)));
            w(format!("used_memory_functions:{functions_bytes}"));
            w(format!("used_memory_scripts:{}", scripts_eval + functions_bytes));
            w(format!("used_memory_scripts_human:{}", human(scripts_eval + functions_bytes)));
            w(format!("maxmemory:{max}"));
            w(format!("maxmemory_human:{}", human(max)));
            w(format!("maxmemory_policy:{}", state.config.get("maxmemory-policy")));
            w(format!("mem_fragmentation_ratio:{:.2}", m.rss as f64 / m.used.max(1) as f64));
            w(format!("mem_fragmentation_bytes:{}", m.rss as i64 - m.used as i64));
            w(format!("mem_not_counted_for_evict:{}", m.backlog));
            w(format!("mem_replication_backlog:{}", m.backlog));
            w(format!("mem_total_replication_buffers:{}", m.backlog));
            w(format!("mem_clients_slaves:{}", m.clients_replicas));
            w(format!("mem_clients_normal:{}", m.clients_normal));
            w("mem_cluster_links:0".into());
            w("mem_aof_buffer:0".into());
            w("mem_allocator:mimalloc".into());
        }
        "persistence" => {
            let aof = server.aof.get();
            let flag = |b: bool| b as u8;
            w("# Persistence".into());
            w("loading:0".into());
            w("async_loading:0".into());
            w(format!(
                "rdb_changes_since_last_save:{}",
                state.keyspace.dirty().saturating_sub(state.dirty_at_save)
            ));
            w(format!("rdb_bgsave_in_progress:{}", flag(state.bgsave_in_progress)));
            w(format!("rdb_last_save_time:{}", state.last_save));
            w(format!("rdb_last_bgsave_status:{}", if state.bgsave_failed { "err" } else { "ok" }));
            w(format!("aof_enabled:{}", flag(aof.is_some())));
            let ordering = std::sync::atomic::Ordering::Relaxed;
            w(format!("aof_rewrite_in_progress:{}", aof.map_or(0, |a| flag(a.rewriting.load(ordering)))));
            w(format!(
                "aof_rewrite_scheduled:{}",
                aof.map_or(0, |a| flag(a.rewrite_requested.load(ordering)))
            ));
            w(format!("aof_rewrites:{}", aof.map_or(0, |a| a.rewrites.load(ordering))));
            let status = aof.is_none_or(|a| a.last_write_ok.load(ordering));
            w(format!("aof_last_write_status:{}", if status { "ok" } else { "err" }));
            if let Some(a) = aof {
                w(format!("aof_current_size:{}", a.size.load(ordering)));
                w(format!("aof_base_size:{}", a.base_size.load(ordering)));
            }
        }
        "stats" => {
            let with_forwarded = server.stats_with_forwarded(&state.stats);
            let s = &with_forwarded;
            w("# Stats".into());
            w(format!("total_connections_received:{}", s.connections));
            w(format!("total_commands_processed:{}", s.commands));
            w(format!("instantaneous_ops_per_sec:{}", s.ops_per_sec()));
            w(format!("total_net_input_bytes:{}", s.net_input_bytes));
            w(format!("total_net_output_bytes:{}", s.net_output_bytes));
            w(format!("rejected_connections:{}", s.rejected_connections));
            w(format!("expired_keys:{}", s.expired_keys));
            w(format!("evicted_keys:{}", s.evicted_keys));
            w(format!("keyspace_hits:{}", s.keyspace_hits));
            w(format!("keyspace_misses:{}", s.keyspace_misses));
            w(format!("pubsub_channels:{}", state.pubsub.active(false, None).len()));
            w(format!("pubsub_patterns:{}", state.pubsub.numpat()));
            w(format!("pubsubshard_channels:{}", state.pubsub.active(true, None).len()));
            w(format!("tracking_total_keys:{}", state.tracking.total_keys()));
            w(format!("tracking_total_items:{}", state.tracking.total_items()));
            w(format!("tracking_total_prefixes:{}", state.tracking.total_prefixes()));
        }
        "replication" => {
            w("# Replication".into());
            let backlog = state.log.as_ref().map(|l| &l.backlog);
            match &state.upstream {
                Some(up) => {
                    w("role:slave".into());
                    w(format!("master_host:{}", up.host));
                    w(format!("master_port:{}", up.port));
                    w(format!("master_link_status:{}", if up.link_up { "up" } else { "down" }));
                    w(format!("master_last_io_seconds_ago:{}", up.last_io.elapsed().as_secs()));
                    w(format!("master_sync_in_progress:{}", up.syncing as u8));
                    w(format!("slave_read_repl_offset:{}", up.offset));
                    w(format!("slave_repl_offset:{}", up.offset));
                    w("slave_priority:100".into());
                    w("slave_read_only:1".into());
                    w("replica_announced:1".into());
                    w("connected_slaves:0".into());
                    w(format!("master_full_syncs:{}", up.full_syncs));
                    w(format!("master_partial_syncs:{}", up.partial_syncs));
                    w(format!("master_replid:{}", up.replid.clone().unwrap_or_else(|| "0".repeat(40))));
                    w(format!("master_repl_offset:{}", up.offset));
                }
                None => {
                    w("role:master".into());
                    w(format!("connected_slaves:{}", state.replicas.len()));
                    let offset = state.log.as_ref().map_or(0, |l| l.offset());
                    for (i, r) in state.replicas.iter().enumerate() {
                        w(format!(
                            "slave{i}:ip={},port={},state=online,offset={},lag={}",
                            r.ip,
                            r.port,
                            r.ack,
                            r.ack_at.elapsed().as_secs()
                        ));
                    }
                    w("master_failover_state:no-failover".into());
                    let replid = state.log.as_ref().map_or(server.run_id.clone(), |l| l.replid.clone());
                    w(format!("master_replid:{replid}"));
                    w(format!("master_repl_offset:{offset}"));
                }
            }
            match state.log.as_ref().and_then(|l| l.replid2.as_ref()) {
                Some((old, end)) => {
                    w(format!("master_replid2:{old}"));
                    w(format!("second_repl_offset:{}", end + 1));
                }
                None => {
                    w("master_replid2:0000000000000000000000000000000000000000".into());
                    w("second_repl_offset:-1".into());
                }
            }
            w(format!("repl_backlog_active:{}", backlog.is_some() as u8));
            w(format!("repl_backlog_size:{}", backlog.map_or(1 << 20, |b| b.capacity())));
            w(format!("repl_backlog_first_byte_offset:{}", backlog.map_or(0, |b| b.start() + 1)));
            w(format!("repl_backlog_histlen:{}", backlog.map_or(0, |b| b.histlen())));
        }
        "cpu" => {
            let (user, sys) = cpu_seconds();
            w("# CPU".into());
            w(format!("used_cpu_sys:{sys:.6}"));
            w(format!("used_cpu_user:{user:.6}"));
        }
        "cluster" => {
            w("# Cluster".into());
            w(format!("cluster_enabled:{}", state.cluster.is_some() as u8));
        }
        "commandstats" => {
            w("# Commandstats".into());
            let stats = server.stats_with_forwarded(&state.stats);
            let mut rows: Vec<(String, crate::server::CallStats)> =
                stats.calls.iter().map(|(&addr, s)| (command_name(addr), *s)).collect();
            rows.sort_by(|a, b| a.0.cmp(&b.0));
            for (name, s) in rows {
                w(format!(
                    "cmdstat_{name}:calls={},rejected_calls={},failed_calls={}",
                    s.calls, s.rejected, s.failed
                ));
            }
        }
        "keyspace" => {
            w("# Keyspace".into());
            let now = ctx.now;
            for (i, db) in state.keyspace.dbs.iter().enumerate() {
                if !db.is_empty() {
                    w(format!(
                        "db{i}:keys={},expires={},avg_ttl={}",
                        db.len(),
                        db.expires_len(),
                        db.avg_ttl(now)
                    ));
                }
            }
        }
        _ => {}
    }
}

/// The name INFO commandstats prints for the table entry at `addr`: `get`, `config|get`.
fn command_name(addr: usize) -> String {
    use crate::command::{Command, COMMANDS};
    let at = |c: &Command| c as *const Command as usize == addr;
    for c in COMMANDS {
        if at(c) {
            return c.name.to_string();
        }
        if let Some(sub) = c.subcommands.iter().find(|s| at(s)) {
            return format!("{}|{}", c.name, sub.name);
        }
    }
    "unknown".to_string()
}

/// INFO [section ...]: sections as Redis names them; `all`, `everything` and `default`.
pub fn info(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let mut wanted: Vec<String> = Vec::new();
    for a in &args[1..] {
        match text(a).to_ascii_lowercase().as_str() {
            "all" | "everything" => wanted.extend(ALL_SECTIONS.iter().map(|s| s.to_string())),
            "default" => wanted.extend(DEFAULT_SECTIONS.iter().map(|s| s.to_string())),
            s => wanted.push(s.to_string()),
        }
    }
    if wanted.is_empty() {
        wanted = DEFAULT_SECTIONS.iter().map(|s| s.to_string()).collect();
    }
    let mut out = String::new();
    let mut done: Vec<&str> = Vec::new();
    for name in ALL_SECTIONS {
        if wanted.iter().any(|w| w == name) && !done.contains(name) {
            if !out.is_empty() {
                out.push_str("\r\n");
            }
            section(ctx, name, &mut out);
            done.push(name);
        }
    }
    Reply::Verbatim(Bytes::from(out))
}

pub fn config_get(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let patterns: Vec<&[u8]> = args[2..].iter().map(|a| a.as_ref()).collect();
    let pairs = ctx.state.config.get_matching(&patterns);
    Reply::Map(
        pairs.into_iter().map(|(k, v)| (Reply::Bulk(Bytes::from(k)), Reply::Bulk(Bytes::from(v)))).collect(),
    )
}

pub fn config_set(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if !args.len().is_multiple_of(2) {
        return Reply::err(SYNTAX);
    }
    let pairs: Vec<(String, String)> = args[2..].chunks(2).map(|p| (text(&p[0]), text(&p[1]))).collect();
    let local = crate::server::is_local(&ctx.client.handle.addr);
    match ctx.state.config.set_runtime(&pairs, local) {
        Ok(()) => {
            // Settings that live outside the config table follow it.
            ctx.state.limits = crate::server::limits_of(&ctx.state.config);
            ctx.state.memory = crate::server::memory_limit_of(&ctx.state.config);
            ctx.server.refresh_limits(&ctx.state.config);
            ctx.state.notify =
                crate::pubsub::events::parse(ctx.state.config.get("notify-keyspace-events")).unwrap_or(0);
            ctx.state.refresh_recording();
            let backlog = ctx.state.config.repl_backlog_size();
            if let Some(log) = &mut ctx.state.log {
                log.backlog.set_capacity(backlog);
            }
            Reply::Ok
        }
        Err(e) => Reply::error(e),
    }
}

pub fn config_resetstat(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    ctx.state.stats = Default::default();
    ctx.server.admission.accepted.store(0, std::sync::atomic::Ordering::Relaxed);
    ctx.server.admission.rejected.store(0, std::sync::atomic::Ordering::Relaxed);
    // On a proxy, what live connections forwarded counts too.
    for client in ctx.server.clients().values() {
        client.forwarded.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
    Reply::Ok
}

pub fn help(lines: &[&'static str]) -> Reply {
    Reply::Array(lines.iter().map(|l| Reply::simple(l)).collect())
}

pub fn config_help(_ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    help(&[
        "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET <pattern>",
        "    Return parameters matching the glob-like <pattern> and their values.",
        "SET <directive> <value>",
        "    Set the configuration <directive> to <value>.",
        "RESETSTAT",
        "    Reset statistics reported by the INFO command.",
        "HELP",
        "    Print this help.",
    ])
}

pub fn time(_ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Reply::Array(vec![
        Reply::bulk(Bytes::from(now.as_secs().to_string())),
        Reply::bulk(Bytes::from(now.subsec_micros().to_string())),
    ])
}

/// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]: saves first when asked to or when save
/// points are set (not with NOSAVE; a failed save stops the shutdown unless FORCE), then the
/// server stops as on Ctrl-C: no reply, the connection closes.
pub fn shutdown(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (mut nosave, mut save, mut force, mut abort) = (false, false, false, false);
    for a in &args[1..] {
        match text(a).to_ascii_lowercase().as_str() {
            "nosave" => nosave = true,
            "save" => save = true,
            "now" => {}
            "force" => force = true,
            "abort" => abort = true,
            _ => return Reply::err(SYNTAX),
        }
    }
    if (nosave && save) || (abort && args.len() > 2) {
        return Reply::err(SYNTAX);
    }
    if abort {
        return Reply::err("ERR No shutdown in progress.");
    }
    let is_proxy = ctx.server.proxy.get().is_some();
    if !is_proxy && (save || (!nosave && !ctx.state.config.get("save").is_empty())) {
        if let Reply::Error(e) = super::persist::save(ctx, args) {
            tracing::warn!(error = %e, "error trying to save the DB, can't exit");
            if !force {
                return Reply::err("ERR Errors trying to SHUTDOWN. Check logs.");
            }
        }
    }
    tracing::warn!("User requested shutdown...");
    if nosave {
        ctx.server.stop_nosave.store(true, std::sync::atomic::Ordering::Relaxed);
        if crate::server::STANDALONE_PROCESS.load(std::sync::atomic::Ordering::Relaxed) {
            crate::server::PROCESS_NOSAVE.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
    ctx.server.request_stop();
    ctx.client.close = true;
    Reply::Raw(Bytes::new())
}

pub fn client_help(_ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    help(&[
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GETNAME",
        "    Return the name of the current connection.",
        "ID",
        "    Return the ID of the current connection.",
        "INFO",
        "    Return information about the current client connection.",
        "KILL <ip:port>",
        "    Kill connection made from <ip:port>.",
        "KILL <option> <value> [<option> <value> [...]]",
        "    Kill connections. Options are: ID, ADDR, LADDR, SKIPME (yes|no).",
        "LIST [options ...]",
        "    Return information about client connections. Options: TYPE, ID.",
        "SETINFO <option> <value>",
        "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
        "SETNAME <name>",
        "    Assign the name <name> to the current connection.",
        "HELP",
        "    Print this help.",
    ])
}

/// MEMORY STATS: Redis's breakdown of where memory goes (a map; RESP2 a flat array).
pub fn memory_stats(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    let (.., functions) = super::functions::memory(ctx);
    let (_, scripts, _) = super::scripting::memory(&ctx.state.scripts);
    let m = MemoryReport::of(ctx.server, ctx.state);
    let int = |n: usize| Reply::Int(n as i64);
    let key = |k: &'static str| Reply::Simple(k.into());
    let mut pairs = vec![
        (key("peak.allocated"), int(m.peak)),
        (key("total.allocated"), int(m.used)),
        (key("startup.allocated"), int(m.startup)),
        (key("replication.backlog"), int(m.backlog)),
        (key("clients.slaves"), int(m.clients_replicas)),
        (key("clients.normal"), int(m.clients_normal)),
        (key("cluster.links"), int(0)),
        (key("aof.buffer"), int(0)),
        (key("lua.caches"), int(scripts)),
        (key("functions.caches"), int(functions)),
    ];
    for (i, db) in ctx.state.keyspace.dbs.iter().enumerate() {
        if db.is_empty() {
            continue;
        }
        // The tables' own arrays: a hash and a pointer per slot.
        let table = [
            (key("overhead.hashtable.main"), int(db.len() * 16)),
            (key("overhead.hashtable.expires"), int(db.expires_len() * 16)),
            (key("overhead.hashtable.slot-to-keys"), int(0)),
        ];
        pairs.push((Reply::Simple(format!("db.{i}").into()), Reply::Map(table.into())));
    }
    let dataset = m.dataset();
    let net = m.used.saturating_sub(m.startup).max(1);
    pairs.extend([
        (key("overhead.total"), int(m.overhead())),
        (key("keys.count"), int(m.keys)),
        (key("keys.bytes-per-key"), int(m.used.saturating_sub(m.startup).checked_div(m.keys).unwrap_or(0))),
        (key("dataset.bytes"), int(dataset)),
        (key("dataset.percentage"), Reply::Double(dataset as f64 * 100.0 / net as f64)),
        (key("peak.percentage"), Reply::Double(m.used as f64 * 100.0 / m.peak.max(1) as f64)),
        (key("allocator.allocated"), int(m.used)),
        (key("allocator.active"), int(m.used)),
        (key("allocator.resident"), int(m.rss)),
        (key("allocator-fragmentation.ratio"), Reply::Double(1.0)),
        (key("allocator-fragmentation.bytes"), int(0)),
        (key("allocator-rss.ratio"), Reply::Double(m.rss as f64 / m.used.max(1) as f64)),
        (key("allocator-rss.bytes"), Reply::Int(m.rss as i64 - m.used as i64)),
        (key("rss-overhead.ratio"), Reply::Double(1.0)),
        (key("rss-overhead.bytes"), int(0)),
        (key("fragmentation"), Reply::Double(m.rss as f64 / m.used.max(1) as f64)),
        (key("fragmentation.bytes"), Reply::Int(m.rss as i64 - m.used as i64)),
    ]);
    Reply::Map(pairs)
}

/// MEMORY DOCTOR: Redis's report, on what it can judge here.
pub fn memory_doctor(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    let m = MemoryReport::of(ctx.server, ctx.state);
    let mut issues = Vec::new();
    if m.used < 5 << 20 {
        return Reply::Verbatim(Bytes::from_static(
            b"Hi Sam, this instance is empty or is using very little memory, my issues detector \
can't be used in these conditions. Please, leave for your mission on Earth and fill it with some \
data. The new Sam and I will be back to our programming as soon as I finished rebooting.\n",
        ));
    }
    if m.peak > m.used * 3 / 2 {
        issues.push(" * Peak memory: In the past this instance used more than 150% the memory that is currently using. The allocator is normally not able to release memory after a peak, so you can expect to see a big fragmentation ratio, however this is actually harmless and is only due to the memory peak, and if the Redis instance Resident Set Size (RSS) is currently bigger than expected, the memory will be used as soon as you fill the Redis instance with more data. If the memory peak was only occasional and you want to try to reclaim memory, please try the MEMORY PURGE command, otherwise the only other option is to shutdown and restart the instance.");
    }
    if m.rss > m.used * 14 / 10 && m.rss - m.used > 10 << 20 {
        issues.push(" * High total RSS: This instance has a memory fragmentation and RSS overhead greater than 1.4 (this means that the Resident Set Size of the Redis process is much larger than the sum of the logical allocations Redis performed). This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. If the problem is a large peak memory, then there is no issue. Otherwise, make sure you are using the Jemalloc allocator and not the default libc malloc.");
    }
    if m.clients_normal > 200 << 20 {
        issues.push(" * Big client buffers: The client output buffers are too big, occupying more than 200 MB. Check CLIENT LIST for clients with big omem.");
    }
    if m.backlog > 200 << 20 {
        issues.push(" * Big replication backlog: The replication backlog is very big. Lower repl-backlog-size if a replica does not need it.");
    }
    let text = if issues.is_empty() {
        "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n".to_string()
    } else {
        format!("Sam, I detected a few issues in this Redis instance memory implants:\n\n{}\n\nI'm here to keep you safe, Sam. I want to help you.\n", issues.join("\n\n"))
    };
    Reply::Verbatim(Bytes::from(text))
}

/// MEMORY MALLOC-STATS: the allocator's own figures.
pub fn memory_malloc_stats(_ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    let text = format!(
        "mimalloc (counted by rust-edis)\nallocated: {}\npeak: {}\nresident: {}\n",
        used_memory(),
        crate::alloc::used_memory_peak(),
        rss()
    );
    Reply::Verbatim(Bytes::from(text))
}

/// MEMORY PURGE: free pages go back to the OS.
pub fn memory_purge(_ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    crate::alloc::purge();
    Reply::Ok
}
