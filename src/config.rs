//! Configuration: one table of parameters with their defaults ([`PARAMS`]), read from a
//! redis.conf-style file, overridden by command-line flags, and read and changed at run time
//! by CONFIG GET / CONFIG SET.
//!
//! Some parameters steer Redis features we do not have (encoding thresholds such as
//! `hash-max-listpack-entries`, `save`). Tools and client libraries set them at start-up, so
//! they are accepted, validated and reported back like any other.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::keyspace::glob::glob_match_nocase;
use crate::resp::split::split_args;

/// Redis's default save points: a snapshot after an hour with a change, 5 minutes with 100,
/// a minute with 10,000.
pub const DEFAULT_SAVE: &str = "3600 1 300 100 60 10000";

#[derive(Debug, Clone, Copy)]
enum Kind {
    /// An integer within bounds.
    Int(i64, i64),
    /// An integer within the first bounds, kept within the second (Redis takes any hz and
    /// runs its cron at 1-500; CONFIG GET shows the value kept).
    IntKept(i64, i64, i64, i64),
    /// Bytes, with optional units (`1mb`, `512k`).
    Memory,
    /// Bytes, at least this many.
    MemoryAtLeast(i64),
    Bool,
    Enum(&'static [&'static str]),
    Str,
    /// notify-keyspace-events: Redis's class characters, kept in Redis's normal form.
    Events,
    /// client-output-buffer-limit: classes given are changed, the others kept.
    OutputLimits,
    /// save: "seconds changes" pairs (seconds at least 1), or "" for none.
    SavePoints,
}

struct Param {
    name: &'static str,
    default: &'static str,
    kind: Kind,
    /// Fixed for the life of the process (CONFIG SET refuses it).
    immutable: bool,
    /// Old names that still work, as Redis 7 keeps them.
    alias: Option<&'static str>,
    /// Redis 7's protected configs: CONFIG SET refuses them unless `enable-protected-configs`
    /// allows it (they choose where files are written).
    protected: bool,
    /// Never reported by CONFIG GET (a secret).
    hidden: bool,
}

const fn p(name: &'static str, default: &'static str, kind: Kind) -> Param {
    Param { name, default, kind, immutable: false, alias: None, protected: false, hidden: false }
}
const fn fixed(name: &'static str, default: &'static str, kind: Kind) -> Param {
    Param { immutable: true, ..p(name, default, kind) }
}
const fn aka(name: &'static str, alias: &'static str, default: &'static str, kind: Kind) -> Param {
    Param { alias: Some(alias), ..p(name, default, kind) }
}
const fn protected(name: &'static str, default: &'static str) -> Param {
    Param { protected: true, ..p(name, default, Kind::Str) }
}

const I64: Kind = Kind::Int(i64::MIN, i64::MAX);
const NONNEG: Kind = Kind::Int(0, i64::MAX);
/// Redis's `int` parameters that cannot be negative (0 to INT_MAX).
const NONNEG_INT: Kind = Kind::Int(0, i32::MAX as i64);
const LOGLEVELS: &[&str] = &["debug", "verbose", "notice", "warning", "nothing"];

/// Every parameter, with its default: the one place defaults live.
static PARAMS: &[Param] = &[
    fixed("bind", "127.0.0.1", Kind::Str),
    fixed("port", "6379", Kind::Int(0, 65535)),
    fixed("databases", "16", Kind::Int(1, 1_000_000)),
    fixed("daemonize", "no", Kind::Bool),
    fixed("disable-thp", "yes", Kind::Bool),
    protected("dir", "."),
    p("requirepass", "", Kind::Str),
    p("loglevel", "notice", Kind::Enum(LOGLEVELS)),
    fixed("logfile", "", Kind::Str),
    p("hz", "10", Kind::IntKept(0, i32::MAX as i64, 1, 500)),
    p("maxclients", "10000", Kind::Int(1, 1_000_000)),
    p("timeout", "0", NONNEG_INT),
    p("tcp-keepalive", "300", NONNEG_INT),
    fixed("tcp-backlog", "511", Kind::Int(1, 65535)),
    p("proto-max-bulk-len", "536870912", Kind::Memory),
    p("client-query-buffer-limit", "1073741824", Kind::MemoryAtLeast(1 << 20)),
    p("maxmemory", "0", Kind::Memory),
    p(
        "maxmemory-policy",
        "noeviction",
        Kind::Enum(&[
            "volatile-lru",
            "volatile-lfu",
            "volatile-random",
            "volatile-ttl",
            "allkeys-lru",
            "allkeys-lfu",
            "allkeys-random",
            "noeviction",
        ]),
    ),
    p("maxmemory-samples", "5", Kind::Int(1, i32::MAX as i64)),
    p("save", DEFAULT_SAVE, Kind::SavePoints),
    fixed("appendonly", "no", Kind::Bool),
    p("appendfsync", "everysec", Kind::Enum(&["always", "everysec", "no"])),
    fixed("appendfilename", "appendonly.aof", Kind::Str),
    p("auto-aof-rewrite-percentage", "100", NONNEG_INT),
    p("auto-aof-rewrite-min-size", "67108864", Kind::Memory),
    p("aof-load-truncated", "yes", Kind::Bool),
    protected("dbfilename", "dump.rdb"),
    fixed("enable-protected-configs", "no", Kind::Enum(&["yes", "no", "local"])),
    fixed("enable-debug-command", "no", Kind::Enum(&["yes", "no", "local"])),
    p("replica-read-only", "yes", Kind::Bool),
    p("masterauth", "", Kind::Str),
    p("masteruser", "", Kind::Str),
    p("repl-backlog-size", "1048576", Kind::Memory),
    aka("min-replicas-to-write", "min-slaves-to-write", "0", NONNEG_INT),
    aka("min-replicas-max-lag", "min-slaves-max-lag", "10", NONNEG_INT),
    fixed("cluster-enabled", "no", Kind::Bool),
    // What cluster members (info, shards, proxies) prove themselves with: the secret itself
    // (never shown by CONFIG GET), or a file holding it. See roles/secret.rs.
    Param { hidden: true, ..fixed("cluster-secret", "", Kind::Str) },
    fixed("cluster-secret-file", "", Kind::Str),
    // With --role all: how many copies of the data the process holds (a primary's and its
    // read shards'), so that used_memory and maxmemory count the data once (never shown).
    Param { hidden: true, ..fixed("data-copies", "1", Kind::Int(1, 1024)) },
    // Cluster roles (see roles/): where info listens, the address a shard announces, how
    // many write shards info expects, how long silence means failure, and a read shard's
    // chosen write shard.
    fixed("info", "", Kind::Str),
    fixed("announce-host", "", Kind::Str),
    fixed("write-shards", "3", Kind::Int(1, 16384)),
    fixed("node-timeout", "5000", Kind::Int(10, 3_600_000)),
    fixed("replica-of", "", Kind::Str),
    // The proxy: where reads go (replica: read shards round-robin, primary, or any), and the
    // all-in-one role's read shards per write shard.
    p("read-from", "replica", Kind::Enum(&["replica", "primary", "any", "eventual"])),
    fixed("read-replicas", "1", Kind::Int(0, 64)),
    p("protected-mode", "yes", Kind::Bool),
    fixed("io-threads", "1", Kind::Int(1, 128)),
    p("slowlog-log-slower-than", "10000", I64),
    p("slowlog-max-len", "128", NONNEG),
    p("latency-monitor-threshold", "0", NONNEG),
    p("notify-keyspace-events", "", Kind::Events),
    p("tracking-table-max-keys", "1000000", NONNEG),
    p("lazyfree-lazy-eviction", "no", Kind::Bool),
    p("lazyfree-lazy-expire", "no", Kind::Bool),
    p("lazyfree-lazy-server-del", "no", Kind::Bool),
    p("lazyfree-lazy-user-del", "no", Kind::Bool),
    p("lazyfree-lazy-user-flush", "no", Kind::Bool),
    p("activerehashing", "yes", Kind::Bool),
    p("active-expire-effort", "1", Kind::Int(1, 10)),
    aka("busy-reply-threshold", "lua-time-limit", "5000", NONNEG),
    aka("hash-max-listpack-entries", "hash-max-ziplist-entries", "512", NONNEG),
    aka("hash-max-listpack-value", "hash-max-ziplist-value", "64", NONNEG),
    aka("list-max-listpack-size", "list-max-ziplist-size", "-2", I64),
    p("list-compress-depth", "0", NONNEG_INT),
    p("set-max-intset-entries", "512", NONNEG),
    aka("zset-max-listpack-entries", "zset-max-ziplist-entries", "128", NONNEG),
    aka("zset-max-listpack-value", "zset-max-ziplist-value", "64", NONNEG),
    p("stream-node-max-bytes", "4096", Kind::Memory),
    p("stream-node-max-entries", "100", NONNEG),
    p("hll-sparse-max-bytes", "3000", Kind::Memory),
    p("lfu-log-factor", "10", NONNEG_INT),
    p("lfu-decay-time", "1", NONNEG_INT),
    p(
        "client-output-buffer-limit",
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
        Kind::OutputLimits,
    ),
];

fn find(name: &str) -> Option<&'static Param> {
    PARAMS
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(name) || p.alias.is_some_and(|a| a.eq_ignore_ascii_case(name)))
}

/// Parses a memory amount as Redis's `memtoull`: a number with an optional unit
/// (`k`, `kb`, `m`, `mb`, `g`, `gb`; `k` is 1000 and `kb` 1024).
pub fn parse_memory(s: &str) -> Option<i64> {
    let lower = s.to_ascii_lowercase();
    let split = lower.find(|c: char| !c.is_ascii_digit() && c != '-').unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    let mul: i64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    num.parse::<i64>().ok()?.checked_mul(mul)
}

/// One class's `client-output-buffer-limit`: a hard limit in bytes, and a soft limit that
/// may be exceeded for at most `soft_seconds` (0: no limit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputLimit {
    pub hard: usize,
    pub soft: usize,
    pub soft_seconds: u64,
}

/// The client classes of `client-output-buffer-limit`, in Redis's order.
const OUTPUT_CLASSES: [&str; 3] = ["normal", "slave", "pubsub"];

/// Parses `class hard soft seconds ...` over `current` (the same form, every class), as Redis
/// does: only the classes given change. Returns the normal form.
fn output_limits(current: &str, value: &str) -> Result<String, String> {
    let mut limits: Vec<[String; 3]> = OUTPUT_CLASSES
        .iter()
        .map(|class| {
            let words: Vec<&str> = current.split_whitespace().collect();
            let at = words.iter().position(|w| w == class).unwrap_or(words.len());
            let word = |i: usize| words.get(at + i).copied().unwrap_or("0").to_string();
            [word(1), word(2), word(3)]
        })
        .collect();
    let words: Vec<&str> = value.split_whitespace().collect();
    if words.is_empty() || !words.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    for group in words.chunks(4) {
        let class = match group[0].to_ascii_lowercase().as_str() {
            "normal" => 0,
            "slave" | "replica" => 1,
            "pubsub" => 2,
            _ => return Err("Invalid client class specified in buffer limit configuration.".into()),
        };
        let memory = |w: &str| parse_memory(w).filter(|n| *n >= 0);
        let (Some(hard), Some(soft), Ok(secs)) =
            (memory(group[1]), memory(group[2]), group[3].parse::<u64>())
        else {
            return Err("Error in hard, soft or soft_seconds setting in buffer limit configuration.".into());
        };
        limits[class] = [hard.to_string(), soft.to_string(), secs.to_string()];
    }
    Ok(OUTPUT_CLASSES
        .iter()
        .zip(&limits)
        .map(|(class, [h, s, t])| format!("{class} {h} {s} {t}"))
        .collect::<Vec<_>>()
        .join(" "))
}

/// `value` as an integer from `lo` to `hi`, or Redis's reason it is not.
fn int_within(value: &str, lo: i64, hi: i64) -> Result<i64, String> {
    let n: i64 = value.parse().map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
    if n < lo || n > hi {
        return Err(format!("argument must be between {lo} and {hi} inclusive"));
    }
    Ok(n)
}

/// Why a value was refused; the text is what Redis puts after the parameter name. `current`
/// is the value it replaces.
fn validate(param: &Param, value: &str, current: &str) -> Result<String, String> {
    match param.kind {
        Kind::OutputLimits => output_limits(current, value),
        Kind::Int(lo, hi) => int_within(value, lo, hi).map(|n| n.to_string()),
        Kind::IntKept(lo, hi, min, max) => int_within(value, lo, hi).map(|n| n.clamp(min, max).to_string()),
        Kind::MemoryAtLeast(lo) => {
            let n = parse_memory(value).ok_or("argument must be a memory value")?;
            if n < lo {
                return Err(format!("argument must be between {lo} and {} inclusive", i64::MAX));
            }
            Ok(n.to_string())
        }
        Kind::Memory => {
            let n = parse_memory(value).ok_or("argument must be a memory value")?;
            if n < 0 {
                return Err("argument must be a memory value".into());
            }
            Ok(n.to_string())
        }
        Kind::Bool => match value.to_ascii_lowercase().as_str() {
            "yes" | "no" => Ok(value.to_ascii_lowercase()),
            _ => Err("argument must be 'yes' or 'no'".into()),
        },
        Kind::Enum(options) => {
            let v = value.to_ascii_lowercase();
            if options.contains(&v.as_str()) {
                Ok(v)
            } else {
                Err(format!("argument(s) must be one of the following: {}", options.join(", ")))
            }
        }
        Kind::Str => Ok(value.to_string()),
        Kind::SavePoints => {
            // Split on single spaces, as Redis does (two spaces make an empty, invalid field).
            let nums: Vec<Option<i64>> = if value.is_empty() {
                Vec::new()
            } else {
                value.split(' ').map(|n| n.parse().ok()).collect()
            };
            let valid = nums.len().is_multiple_of(2)
                && nums
                    .iter()
                    .enumerate()
                    .all(|(i, n)| matches!(n, Some(v) if *v >= if i % 2 == 0 { 1 } else { 0 }));
            if valid {
                Ok(value.to_string())
            } else {
                Err("Invalid save parameters".to_string())
            }
        }
        Kind::Events => crate::pubsub::events::parse(value)
            .map(crate::pubsub::events::format)
            .ok_or_else(|| "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".to_string()),
    }
}

/// An error in a configuration file or flag, reported at start-up.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The values of every parameter, by canonical name.
#[derive(Debug, Clone)]
pub struct Config {
    values: BTreeMap<&'static str, String>,
    /// The file the configuration was read from, for INFO's config_file.
    pub file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config { values: PARAMS.iter().map(|p| (p.name, p.default.to_string())).collect(), file: None }
    }
}

impl Config {
    /// Reads a redis.conf-style file over the defaults: `name value...` per line, `#` comments.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read config file {}: {e}", path.display())))?;
        let mut config = Config::parse(&text)?;
        config.file = Some(path.to_path_buf());
        Ok(config)
    }

    /// Parses configuration text over the defaults.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        let mut saves_seen = false;
        for (n, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let fail = |why: &str| ConfigError(format!("config line {}: '{trimmed}': {why}", n + 1));
            let args = split_args(trimmed.as_bytes()).map_err(|_| fail("unbalanced quotes"))?;
            let args: Vec<String> = args.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect();
            let Some((name, rest)) = args.split_first() else {
                continue;
            };
            if rest.is_empty() && name != "save" {
                return Err(fail("Bad directive or wrong number of arguments"));
            }
            let mut value = rest.join(" ");
            // Several `save` lines add up, as in redis.conf (`save 900 1` then `save 300 10`).
            if name.eq_ignore_ascii_case("save") {
                if saves_seen && !value.is_empty() && !config.get("save").is_empty() {
                    value = format!("{} {value}", config.get("save"));
                }
                saves_seen = true;
            }
            config.set_startup(name, &value).map_err(|e| fail(&e))?;
        }
        Ok(config)
    }

    /// Sets a parameter at start-up (file or flag), where immutable ones may still change.
    pub fn set_startup(&mut self, name: &str, value: &str) -> Result<(), String> {
        let param = find(name).ok_or("Bad directive or wrong number of arguments")?;
        let value = validate(param, value, self.get(param.name))?;
        self.values.insert(param.name, value);
        Ok(())
    }

    /// CONFIG SET of name/value pairs: all or nothing, as in Redis 7. The error is the reply's
    /// full text. `local`: the client is on loopback (`enable-protected-configs local`).
    pub fn set_runtime(&mut self, pairs: &[(String, String)], local: bool) -> Result<(), String> {
        let protected_ok = match self.get("enable-protected-configs") {
            "yes" => true,
            "local" => local,
            _ => false,
        };
        let mut staged = Vec::with_capacity(pairs.len());
        for (name, value) in pairs {
            let Some(param) = find(name) else {
                return Err(format!("ERR Unknown option or number of arguments for CONFIG SET - '{name}'"));
            };
            if staged.iter().any(|(n, _)| *n == param.name) {
                return Err(format!(
                    "ERR CONFIG SET failed (possibly related to argument '{name}') - duplicate parameter"
                ));
            }
            if param.immutable {
                return Err(format!("ERR CONFIG SET failed (possibly related to argument '{name}') - can't set immutable config"));
            }
            if param.protected && !protected_ok {
                return Err(format!("ERR CONFIG SET failed (possibly related to argument '{name}') - can't set protected config"));
            }
            let value = validate(param, value, self.get(param.name)).map_err(|why| {
                format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {why}")
            })?;
            staged.push((param.name, value));
        }
        self.values.extend(staged);
        Ok(())
    }

    /// CONFIG GET: every (name, value) whose name, or alias, matches one of the patterns. An
    /// alias is reported only when asked for by its exact name, as Redis does.
    pub fn get_matching(&self, patterns: &[&[u8]]) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for param in PARAMS.iter().filter(|p| !p.hidden) {
            let value = &self.values[param.name];
            let mut names = vec![param.name];
            names.extend(param.alias);
            for name in names {
                let hit = patterns.iter().any(|pat| {
                    let is_glob = pat.iter().any(|c| b"*?[".contains(c));
                    if Some(name) == param.alias && is_glob {
                        return false;
                    }
                    glob_match_nocase(pat, name.as_bytes())
                });
                if hit && !out.iter().any(|(n, _)| n == name) {
                    out.push((name.to_string(), value.clone()));
                }
            }
        }
        out
    }

    /// The value of a parameter by canonical name.
    pub fn get(&self, name: &str) -> &str {
        self.values.get(name).map(String::as_str).unwrap_or("")
    }

    fn int(&self, name: &str) -> i64 {
        self.get(name).parse().unwrap_or(0)
    }

    pub fn port(&self) -> u16 {
        self.int("port") as u16
    }
    pub fn bind(&self) -> &str {
        self.get("bind").split_whitespace().next().unwrap_or("127.0.0.1")
    }
    pub fn databases(&self) -> usize {
        self.int("databases") as usize
    }
    pub fn hz(&self) -> u64 {
        self.int("hz").clamp(1, 500) as u64
    }
    pub fn maxclients(&self) -> usize {
        self.int("maxclients") as usize
    }
    /// One class of `client-output-buffer-limit`: "normal", "slave" or "pubsub".
    pub fn output_limit(&self, class: &str) -> OutputLimit {
        let words: Vec<&str> = self.get("client-output-buffer-limit").split_whitespace().collect();
        let at = words.iter().position(|w| *w == class).unwrap_or(words.len());
        let n = |i: usize| words.get(at + i).and_then(|w| w.parse::<u64>().ok()).unwrap_or(0);
        OutputLimit { hard: n(1) as usize, soft: n(2) as usize, soft_seconds: n(3) }
    }

    /// repl-backlog-size in bytes.
    pub fn repl_backlog_size(&self) -> usize {
        parse_memory(self.get("repl-backlog-size")).unwrap_or(1 << 20).max(0) as usize
    }

    /// The hard limit of the replica (`slave`) class: the most a lagging replica may hold
    /// back in the backlog before it is cut off (0 in the setting: no limit).
    pub fn replica_output_limit(&self) -> usize {
        match self.output_limit("slave").hard {
            0 => usize::MAX,
            n => n,
        }
    }

    /// The hard limit of the pubsub class: the most a subscriber (or a monitor) may have
    /// waiting before it is disconnected (0: no limit).
    pub fn pubsub_output_limit(&self) -> usize {
        self.output_limit("pubsub").hard
    }

    /// The listen queue's length (tcp-backlog; the kernel caps it at net.core.somaxconn).
    pub fn tcp_backlog(&self) -> u32 {
        self.int("tcp-backlog").clamp(1, 65535) as u32
    }

    pub fn proto_max_bulk_len(&self) -> usize {
        self.int("proto-max-bulk-len") as usize
    }
    /// The password clients must give, if any.
    pub fn requirepass(&self) -> Option<&str> {
        Some(self.get("requirepass")).filter(|p| !p.is_empty())
    }
    pub fn dir(&self) -> PathBuf {
        PathBuf::from(self.get("dir"))
    }
    /// The info role's address, when this node is part of a cluster.
    pub fn info_addr(&self) -> Option<&str> {
        Some(self.get("info")).filter(|a| !a.is_empty())
    }
    /// The host this node tells others to reach it at: announce-host, else the bind address.
    pub fn announce_host(&self) -> &str {
        Some(self.get("announce-host")).filter(|h| !h.is_empty()).unwrap_or_else(|| self.bind())
    }
    pub fn write_shards(&self) -> usize {
        self.int("write-shards") as usize
    }
    pub fn node_timeout_ms(&self) -> u64 {
        self.int("node-timeout") as u64
    }
    /// `replica-of` as (host, port).
    pub fn replica_of(&self) -> Option<(String, u16)> {
        let v = self.get("replica-of");
        let (host, port) = v.rsplit_once(':').or_else(|| v.split_once(' '))?;
        Some((host.to_string(), port.trim().parse().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_file() {
        let c = Config::parse(
            "# a comment\nport 7001\n\nrequirepass \"s3 cret\"\nsave \"\"\nhash-max-ziplist-entries 10\n",
        )
        .unwrap();
        assert_eq!(c.port(), 7001);
        assert_eq!(c.requirepass(), Some("s3 cret"));
        assert_eq!(c.get("save"), "");
        assert_eq!(c.get("hash-max-listpack-entries"), "10");
        // Several save lines add up, as in redis.conf; a bad one is refused.
        let c = Config::parse("save 900 1\nsave 300 10\n").unwrap();
        assert_eq!(c.get("save"), "900 1 300 10");
        assert_eq!(Config::default().get("save"), DEFAULT_SAVE);
        assert!(Config::parse("save 0 1\n").is_err());
        assert_eq!(c.databases(), 16);
    }

    #[test]
    fn output_buffer_limits_change_only_the_classes_given() {
        let mut c = Config::default();
        assert_eq!(c.output_limit("normal"), OutputLimit::default());
        c.set_runtime(&[("client-output-buffer-limit".into(), "normal 10mb 5mb 10".into())], true).unwrap();
        assert_eq!(
            c.get("client-output-buffer-limit"),
            "normal 10485760 5242880 10 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
        );
        assert_eq!(c.output_limit("normal"), OutputLimit { hard: 10 << 20, soft: 5 << 20, soft_seconds: 10 });
        c.set_runtime(&[("client-output-buffer-limit".into(), "replica 0 0 0 pubsub 1kb 1k 1".into())], true)
            .unwrap();
        assert_eq!(c.replica_output_limit(), usize::MAX, "0: no limit");
        assert_eq!(c.pubsub_output_limit(), 1024);
        assert_eq!(c.output_limit("pubsub").soft, 1000);
        for (value, why) in [
            ("normal 10mb 5mb", "Wrong number of arguments in buffer limit configuration."),
            ("bogus 1 1 1", "Invalid client class specified in buffer limit configuration."),
            ("normal x 1 1", "Error in hard, soft or soft_seconds setting in buffer limit configuration."),
            ("normal 1 1 -1", "Error in hard, soft or soft_seconds setting in buffer limit configuration."),
        ] {
            let e = c.set_runtime(&[("client-output-buffer-limit".into(), value.into())], true).unwrap_err();
            assert!(e.ends_with(why), "{value}: {e}");
        }
        // A file gives one class per line; each keeps the others.
        let mut f = Config::default();
        f.set_startup("client-output-buffer-limit", "normal 1mb 0 0").unwrap();
        f.set_startup("client-output-buffer-limit", "pubsub 2mb 0 0").unwrap();
        assert_eq!(
            f.get("client-output-buffer-limit"),
            "normal 1048576 0 0 slave 268435456 67108864 60 pubsub 2097152 0 0"
        );
    }

    #[test]
    fn file_errors() {
        assert!(Config::parse("nosuch 1").unwrap_err().0.contains("Bad directive"));
        assert!(Config::parse("port").unwrap_err().0.contains("Bad directive"));
        assert!(Config::parse("port abc").unwrap_err().0.contains("integer"));
        assert!(Config::parse("port \"7").unwrap_err().0.contains("unbalanced"));
    }

    #[test]
    fn int_parameters_take_redis_ranges() {
        let mut c = Config::default();
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        for name in ["timeout", "tcp-keepalive", "lfu-log-factor", "lfu-decay-time", "min-replicas-to-write"]
        {
            let err = c.set_runtime(&[pair(name, "-1")], true).unwrap_err();
            assert!(err.ends_with("argument must be between 0 and 2147483647 inclusive"), "{name}: {err}");
            assert!(c.set_runtime(&[pair(name, "2147483648")], true).is_err());
        }
        // Redis takes any sample count and any hz, and keeps hz within 1-500 itself.
        assert!(c.set_runtime(&[pair("maxmemory-samples", "100")], true).is_ok());
        assert!(c.set_runtime(&[pair("maxmemory-samples", "0")], true).is_err());
        assert!(c.set_runtime(&[pair("hz", "0")], true).is_ok());
        assert_eq!((c.hz(), c.get("hz")), (1, "1"));
        assert!(c.set_runtime(&[pair("hz", "1000")], true).is_ok());
        assert_eq!((c.hz(), c.get("hz")), (500, "500"));
    }

    #[test]
    fn runtime_set_is_validated_and_atomic() {
        let mut c = Config::default();
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert!(c.set_runtime(&[pair("maxmemory", "1mb"), pair("hz", "20")], true).is_ok());
        assert_eq!(c.get("maxmemory"), "1048576");
        let err = c.set_runtime(&[pair("hz", "30"), pair("nosuch", "1")], true).unwrap_err();
        assert_eq!(err, "ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'");
        assert_eq!(c.get("hz"), "20");
        let err = c.set_runtime(&[pair("hz", "abc")], true).unwrap_err();
        assert_eq!(err, "ERR CONFIG SET failed (possibly related to argument 'hz') - argument couldn't be parsed into an integer");
        assert!(c.set_runtime(&[pair("port", "1")], true).unwrap_err().contains("immutable"));
        assert!(c
            .set_runtime(&[pair("activerehashing", "maybe")], true)
            .unwrap_err()
            .contains("'yes' or 'no'"));
    }

    #[test]
    fn protected_configs_as_redis_7() {
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        let mut c = Config::default();
        for name in ["dir", "dbfilename"] {
            assert_eq!(
                c.set_runtime(&[pair(name, "/tmp/x")], true).unwrap_err(),
                format!("ERR CONFIG SET failed (possibly related to argument '{name}') - can't set protected config")
            );
        }
        for name in
            ["appendfilename", "enable-protected-configs", "cluster-secret", "cluster-secret-file", "logfile"]
        {
            assert!(c
                .set_runtime(&[pair(name, "x")], true)
                .unwrap_err()
                .contains("can't set immutable config"));
        }
        assert_eq!((c.get("dir"), c.get("dbfilename")), (".", "dump.rdb"), "nothing changed");
        c.set_startup("enable-protected-configs", "local").unwrap();
        assert!(c.set_runtime(&[pair("dbfilename", "a.rdb")], false).unwrap_err().contains("protected"));
        assert!(c.set_runtime(&[pair("dbfilename", "a.rdb")], true).is_ok(), "local clients may");
        c.set_startup("cluster-secret", "s3").unwrap();
        assert!(c.get_matching(&[b"*"]).iter().all(|(n, v)| n != "cluster-secret" && v != "s3"));
        assert!(c.get_matching(&[b"cluster-secret"]).is_empty(), "CONFIG GET never shows it");
    }

    #[test]
    fn get_by_glob() {
        let c = Config::default();
        let names: Vec<String> = c.get_matching(&[b"maxmemory*"]).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["maxmemory", "maxmemory-policy", "maxmemory-samples"]);
        assert!(c.get_matching(&[b"nosuch"]).is_empty());
        assert_eq!(
            c.get_matching(&[b"hash-max-ziplist-entries"]),
            [("hash-max-ziplist-entries".to_string(), "512".to_string())]
        );
        assert!(!c.get_matching(&[b"*"]).iter().any(|(n, _)| n.contains("ziplist")));
        assert_eq!(parse_memory("1gb"), Some(1 << 30));
        assert_eq!(parse_memory("10k"), Some(10_000));
        assert_eq!(parse_memory("x"), None);
    }
}
