//! The command table: every command this server knows, declared once.

use super::flags::*;
use super::{
    bits, blocking as blk, cluster, connection as conn, functions as func, hashes as h, hll,
    introspection as intro, keys, lists as l, persist, pubsub as ps, scripting as lua, server as srv,
    sets as s, sort, strings, transactions as tx, zsets as z,
};
use super::{Command, Handler, Merge, Route};
use crate::replication::{primary as repl, replica};

/// Declares a command. Keys are (first, last, step) as in Redis's legacy key positions.
#[allow(clippy::too_many_arguments)]
const fn c(
    name: &'static str,
    arity: i32,
    flags: u32,
    keys: (i32, i32, i32),
    group: &'static str,
    since: &'static str,
    summary: &'static str,
    complexity: &'static str,
    syntax: &'static str,
    handler: Handler,
) -> Command {
    Command {
        name,
        arity,
        flags,
        first_key: keys.0,
        last_key: keys.1,
        step: keys.2,
        group,
        since,
        summary,
        complexity,
        syntax,
        handler,
        subcommands: &[],
        route: if keys.0 > 0 { Route::Slot } else { Route::Proxy },
        keynum: 0,
    }
}

/// A container command (CONFIG, CLIENT, COMMAND ...) dispatching to `subs`.
const fn container(
    name: &'static str,
    arity: i32,
    group: &'static str,
    since: &'static str,
    summary: &'static str,
    handler: Handler,
    subs: &'static [Command],
) -> Command {
    Command {
        subcommands: subs,
        ..c(name, arity, 0, NOKEYS, group, since, summary, "Depends on subcommand.", "", handler)
    }
}

/// The HELP subcommand every container has.
const fn help(group: &'static str, handler: Handler) -> Command {
    c(
        "help",
        2,
        LOADING | STALE,
        NOKEYS,
        group,
        "5.0.0",
        "Returns helpful text about the different subcommands.",
        O1,
        "",
        handler,
    )
}

const NOKEYS: (i32, i32, i32) = (0, 0, 0);
const KEY1: (i32, i32, i32) = (1, 1, 1);
const ALLKEYS: (i32, i32, i32) = (1, -1, 1);
const O1: &str = "O(1)";
const ON: &str = "O(N) where N is the number of keys.";
const W: u32 = WRITE;
const WD: u32 = WRITE | DENYOOM;
const WDF: u32 = WRITE | DENYOOM | FAST;
const WF: u32 = WRITE | FAST;
const RF: u32 = READONLY | FAST;
const CONN: u32 = NOSCRIPT | LOADING | STALE | FAST;
const R: u32 = READONLY;
const RR: u32 = READONLY;
const ALLKEYS_AFTER1: (i32, i32, i32) = (1, -1, 1);
const KEY12: (i32, i32, i32) = (1, 2, 1);
/// Keys from the first argument to the one before the last (a timeout).
const LAST_IS_TIMEOUT: (i32, i32, i32) = (1, -2, 1);
const ON_FIELDS: &str = "O(N) where N is the number of fields being requested.";
const ON_HASH: &str = "O(N) where N is the size of the hash.";
const ON_SET: &str = "O(N) where N is the set cardinality.";
const ON_SETS: &str = "O(N) where N is the total number of elements in all given sets.";
const ZLOG: &str = "O(log(N))";
const ZRANGE_CX: &str = "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned.";
const ZREM_CX: &str = "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.";
const ZPOP_CX: &str = "O(log(N)*M) with N being the number of elements in the sorted set, and M being the number of elements popped.";
const ZCOMBINE_CX: &str = "O(N)+O(M*log(M)) with N being the sum of the sizes of the input sorted sets, and M being the number of elements in the resulting sorted set.";
const ONE_OR_N: &str = "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.";

/// The handler of a container whose arity requires a subcommand (CONFIG, CLIENT ...). Dispatch
/// resolves the subcommand first, so this runs only if a container is declared with an arity
/// that admits no subcommand; it then answers as Redis does for too few arguments.
fn container_usage(_ctx: &mut super::Ctx, args: &[bytes::Bytes]) -> crate::resp::Reply {
    super::wrong_arity(&String::from_utf8_lossy(&args[0]).to_ascii_lowercase())
}

#[rustfmt::skip]
static CONFIG_SUBS: &[Command] = &[
    c("get", -3, ADMIN | NOSCRIPT | LOADING | STALE, NOKEYS, "server", "2.0.0", "Returns the effective values of configuration parameters.", "O(N) when N is the number of configuration parameters provided", "parameter [parameter ...]", srv::config_get),
    c("set", -4, ADMIN | NOSCRIPT | LOADING | STALE, NOKEYS, "server", "2.0.0", "Sets configuration parameters in-flight.", "O(N) when N is the number of configuration parameters provided", "parameter value [parameter value ...]", srv::config_set),
    c("resetstat", 2, ADMIN | NOSCRIPT | LOADING | STALE, NOKEYS, "server", "2.0.0", "Resets the server's statistics.", O1, "", srv::config_resetstat),
    help("server", srv::config_help),
];

#[rustfmt::skip]
static OBJECT_SUBS: &[Command] = &[
    c("encoding", 3, R, (2, 2, 1), "generic", "2.2.3", "Returns the internal encoding of a Redis object.", O1, "key", keys::object_encoding),
    c("refcount", 3, R, (2, 2, 1), "generic", "2.2.3", "Returns the reference count of a value of a key.", O1, "key", keys::object_refcount),
    c("idletime", 3, R, (2, 2, 1), "generic", "2.2.3", "Returns the time since the last access to a Redis object.", O1, "key", keys::object_idletime),
    c("freq", 3, R, (2, 2, 1), "generic", "4.0.0", "Returns the logarithmic access frequency counter of a Redis object.", O1, "key", keys::object_freq),
    help("generic", keys::object_help),
];

#[rustfmt::skip]
static MEMORY_SUBS: &[Command] = &[
    c("usage", -3, R, (2, 2, 1), "server", "4.0.0", "Estimates the memory usage of a key.", "O(N) where N is the number of samples.", "key [SAMPLES count]", keys::memory_usage),
    c("stats", 2, 0, NOKEYS, "server", "4.0.0", "Returns details about memory usage.", O1, "", srv::memory_stats),
    c("doctor", 2, 0, NOKEYS, "server", "4.0.0", "Outputs a memory problems report.", O1, "", srv::memory_doctor),
    c("malloc-stats", 2, 0, NOKEYS, "server", "4.0.0", "Returns the allocator statistics.", "Depends on how much memory is allocated, could be slow", "", srv::memory_malloc_stats),
    c("purge", 2, 0, NOKEYS, "server", "4.0.0", "Asks the allocator to release memory.", "Depends on how much memory is allocated, could be slow", "", srv::memory_purge),
    help("server", keys::memory_help),
];

#[rustfmt::skip]
static PUBSUB_SUBS: &[Command] = &[
    c("channels", -2, PUBSUB | LOADING | STALE, NOKEYS, "pubsub", "2.8.0", "Returns the active channels.", "O(N) where N is the number of active channels, and assuming constant time pattern matching (relatively short channels and patterns)", "[pattern]", ps::pubsub_channels),
    c("numsub", -2, PUBSUB | LOADING | STALE, NOKEYS, "pubsub", "2.8.0", "Returns a count of subscribers to channels.", "O(N) for the NUMSUB subcommand, where N is the number of requested channels", "[channel [channel ...]]", ps::pubsub_numsub),
    c("numpat", 2, PUBSUB | LOADING | STALE, NOKEYS, "pubsub", "2.8.0", "Returns a count of unique pattern subscriptions.", O1, "", ps::pubsub_numpat),
    c("shardchannels", -2, PUBSUB | LOADING | STALE, NOKEYS, "pubsub", "7.0.0", "Returns the active shard channels.", "O(N) where N is the number of active shard channels, and assuming constant time pattern matching (relatively short shard channels).", "[pattern]", ps::pubsub_shardchannels),
    c("shardnumsub", -2, PUBSUB | LOADING | STALE, NOKEYS, "pubsub", "7.0.0", "Returns the count of subscribers of shard channels.", "O(N) for the SHARDNUMSUB subcommand, where N is the number of requested shard channels", "[shardchannel [shardchannel ...]]", ps::pubsub_shardnumsub),
    help("pubsub", ps::pubsub_help),
];

#[rustfmt::skip]
static CLIENT_SUBS: &[Command] = &[
    c("id", 2, CONN, NOKEYS, "connection", "5.0.0", "Returns the unique client ID of the connection.", O1, "", conn::client_id),
    c("setname", 3, CONN, NOKEYS, "connection", "2.6.9", "Sets the connection name.", O1, "connection-name", conn::client_setname),
    c("getname", 2, CONN, NOKEYS, "connection", "2.6.9", "Returns the name of the connection.", O1, "", conn::client_getname),
    c("info", 2, CONN, NOKEYS, "connection", "6.2.0", "Returns information about the connection.", O1, "", conn::client_info),
    c("tracking", -3, NOSCRIPT | LOADING | STALE, NOKEYS, "connection", "6.0.0", "Controls server-assisted client-side caching for the connection.", "O(1). Some options may introduce additional complexity.", "ON|OFF [REDIRECT client-id] [PREFIX prefix [PREFIX prefix ...]] [BCAST] [OPTIN] [OPTOUT] [NOLOOP]", ps::client_tracking),
    c("caching", 3, CONN, NOKEYS, "connection", "6.0.0", "Instructs the server whether to track the keys in the next request.", O1, "YES|NO", ps::client_caching),
    c("getredir", 2, CONN, NOKEYS, "connection", "6.0.0", "Returns the client ID to which the connection's tracking notifications are redirected.", O1, "", ps::client_getredir),
    c("trackinginfo", 2, CONN, NOKEYS, "connection", "6.2.0", "Returns information about server-assisted client-side caching for the connection.", O1, "", ps::client_trackinginfo),
    c("list", -2, ADMIN | NOSCRIPT | LOADING | STALE, NOKEYS, "connection", "2.4.0", "Lists open connections.", "O(N) where N is the number of client connections", "[TYPE NORMAL|MASTER|REPLICA|PUBSUB] [ID client-id [client-id ...]]", conn::client_list),
    c("setinfo", 4, CONN, NOKEYS, "connection", "7.2.0", "Sets information specific to the client or connection.", O1, "LIB-NAME libname|LIB-VER libver", conn::client_setinfo),
    c("unblock", -3, ADMIN | NOSCRIPT | LOADING | STALE, NOKEYS, "connection", "5.0.0", "Unblocks a client blocked by a blocking command from a different connection.", "O(log N) where N is the number of client connections", "client-id [TIMEOUT|ERROR]", blk::client_unblock),
    c("kill", -3, ADMIN | NOSCRIPT | LOADING | STALE, NOKEYS, "connection", "2.4.0", "Terminates open connections.", "O(N) where N is the number of client connections", "[ID client-id] [ADDR ip:port] [LADDR ip:port] [SKIPME yes/no]", conn::client_kill),
    help("connection", srv::client_help),
];

#[rustfmt::skip]
static COMMAND_SUBS: &[Command] = &[
    c("count", 2, LOADING | STALE, NOKEYS, "server", "2.8.13", "Returns a count of commands.", O1, "", intro::count),
    c("info", -2, LOADING | STALE, NOKEYS, "server", "2.8.13", "Returns information about one, multiple or all commands.", "O(N) where N is the number of commands to look up", "[command-name [command-name ...]]", intro::info),
    c("docs", -2, LOADING | STALE, NOKEYS, "server", "7.0.0", "Returns documentary information about one, multiple or all commands.", "O(N) where N is the number of commands to look up", "[command-name [command-name ...]]", intro::docs),
    c("list", -2, LOADING | STALE, NOKEYS, "server", "7.0.0", "Returns a list of command names.", "O(N) where N is the total number of Redis commands", "", intro::list),
    c("getkeys", -4, LOADING | STALE, NOKEYS, "server", "2.8.13", "Extracts the key names from an arbitrary command.", "O(N) where N is the number of arguments to the command", "command [arg [arg ...]]", intro::getkeys),
    help("server", intro::help),
];

#[rustfmt::skip]
static CLUSTER_SUBS: &[Command] = &[
    c("slots", 2, LOADING | STALE, NOKEYS, "cluster", "3.0.0", "Returns the mapping of cluster slots to nodes.", "O(N) where N is the total number of Cluster nodes", "", cluster::slots),
    c("shards", 2, LOADING | STALE, NOKEYS, "cluster", "7.0.0", "Returns the mapping of cluster slots to shards.", "O(N) where N is the total number of cluster nodes", "", cluster::shards),
    c("nodes", 2, LOADING | STALE, NOKEYS, "cluster", "3.0.0", "Returns the cluster configuration for a node.", "O(N) where N is the total number of Cluster nodes", "", cluster::nodes),
    c("info", 2, LOADING | STALE, NOKEYS, "cluster", "3.0.0", "Returns information about the state of a node.", O1, "", cluster::info),
    c("keyslot", 3, LOADING | STALE, NOKEYS, "cluster", "3.0.0", "Returns the hash slot for a key.", "O(N) where N is the number of bytes in the key", "key", cluster::keyslot),
    c("myid", 2, LOADING | STALE, NOKEYS, "cluster", "3.0.0", "Returns the ID of a node.", O1, "", cluster::myid),
    c("failover", -2, ADMIN | NOSCRIPT | STALE, NOKEYS, "cluster", "3.0.0", "Forces a replica to perform a manual failover of its master.", O1, "[FORCE|TAKEOVER]", cluster::failover_cmd),
    help("cluster", cluster::help),
];

#[rustfmt::skip]
static DEBUG_SUBS: &[Command] = &[
    c("digest", 2, DEBUG | ADMIN | NOSCRIPT | LOADING | STALE, NOKEYS, "server", "1.0.0", "Returns a digest of the whole dataset: equal datasets give equal digests.", "O(N) where N is the number of keys", "", replica::digest).routed(Route::Primaries(Merge::Digest)),
    c("set-active-expire", 3, DEBUG | ADMIN | NOSCRIPT | LOADING | STALE, NOKEYS, "server", "1.0.0", "Turns active expiry of keys off (0) or on (1).", O1, "flag", replica::set_active_expire),
];

#[rustfmt::skip]
static FUNCTION_SUBS: &[Command] = &[
    c("delete", 3, WRITE | NOSCRIPT, NOKEYS, "scripting", "7.0.0", "Deletes a library and its functions.", O1, "library-name", func::function_delete).routed(Route::Primaries(Merge::AllOk)),
    c("dump", 2, NOSCRIPT, NOKEYS, "scripting", "7.0.0", "Dumps all libraries into a serialized binary payload.", "O(N) where N is the number of functions", "", func::function_dump).routed(Route::Primaries(Merge::AllOk)),
    c("flush", -2, WRITE | NOSCRIPT, NOKEYS, "scripting", "7.0.0", "Deletes all libraries and functions.", "O(N) where N is the number of functions deleted", "[ASYNC|SYNC]", func::function_flush).routed(Route::Primaries(Merge::AllOk)),
    help("scripting", func::function_help),
    c("kill", 2, NOSCRIPT | ALLOW_BUSY, NOKEYS, "scripting", "7.0.0", "Terminates a function during execution.", O1, "", func::function_kill).routed(Route::Primaries(Merge::AnyOk)),
    c("list", -2, NOSCRIPT, NOKEYS, "scripting", "7.0.0", "Returns information about all libraries.", "O(N) where N is the number of functions", "[LIBRARYNAME library-name-pattern] [WITHCODE]", func::function_list).routed(Route::Primaries(Merge::AllOk)),
    c("load", -3, WRITE | DENYOOM | NOSCRIPT, NOKEYS, "scripting", "7.0.0", "Creates a library.", "O(1) (considering compilation time is redundant)", "[REPLACE] function-code", func::function_load).routed(Route::Primaries(Merge::AllOk)),
    c("restore", -3, WRITE | DENYOOM | NOSCRIPT, NOKEYS, "scripting", "7.0.0", "Restores all libraries from a payload.", "O(N) where N is the number of functions on the payload", "serialized-value [FLUSH|APPEND|REPLACE]", func::function_restore).routed(Route::Primaries(Merge::AllOk)),
    c("stats", 2, NOSCRIPT | ALLOW_BUSY, NOKEYS, "scripting", "7.0.0", "Returns information about a function during execution.", O1, "", func::function_stats).routed(Route::Primaries(Merge::AllOk)),
];

#[rustfmt::skip]
static SCRIPT_SUBS: &[Command] = &[
    c("debug", 3, NOSCRIPT, NOKEYS, "scripting", "3.2.0", "Sets the debug mode of server-side Lua scripts.", O1, "YES|SYNC|NO", lua::script_debug),
    c("exists", -3, NOSCRIPT, NOKEYS, "scripting", "2.6.0", "Determines whether server-side Lua scripts exist in the script cache.", "O(N) with N being the number of scripts to check (so checking a single script is an O(1) operation).", "sha1 [sha1 ...]", lua::script_exists).routed(Route::Primaries(Merge::AllOk)),
    c("flush", -2, NOSCRIPT, NOKEYS, "scripting", "2.6.0", "Removes all server-side Lua scripts from the script cache.", "O(N) with N being the number of scripts in cache", "[ASYNC|SYNC]", lua::script_flush).routed(Route::Primaries(Merge::AllOk)),
    c("kill", 2, NOSCRIPT | ALLOW_BUSY, NOKEYS, "scripting", "2.6.0", "Terminates a server-side Lua script during execution.", O1, "", lua::script_kill).routed(Route::Primaries(Merge::AnyOk)),
    c("load", 3, NOSCRIPT | STALE, NOKEYS, "scripting", "2.6.0", "Loads a server-side Lua script to the script cache.", "O(N) with N being the length in bytes of the script body.", "script", lua::script_load).routed(Route::Primaries(Merge::AllOk)),
    help("scripting", lua::script_help),
];

/// Every top-level command.
#[rustfmt::skip]
pub static COMMANDS: &[Command] = &[
    c("eval", -3, NOSCRIPT | STALE | MAY_REPLICATE, NOKEYS, "scripting", "2.6.0", "Executes a server-side Lua script.", "Depends on the script that is executed.", "script numkeys [key [key ...]] [arg [arg ...]]", lua::eval).numkeys(2),
    c("evalsha", -3, NOSCRIPT | STALE | MAY_REPLICATE, NOKEYS, "scripting", "2.6.0", "Executes a server-side Lua script by SHA1 digest.", "Depends on the script that is executed.", "sha1 numkeys [key [key ...]] [arg [arg ...]]", lua::evalsha).numkeys(2),
    c("eval_ro", -3, NOSCRIPT | STALE | READONLY, NOKEYS, "scripting", "7.0.0", "Executes a read-only server-side Lua script.", "Depends on the script that is executed.", "script numkeys [key [key ...]] [arg [arg ...]]", lua::eval_ro).numkeys(2),
    c("fcall", -3, NOSCRIPT | STALE | MAY_REPLICATE, NOKEYS, "scripting", "7.0.0", "Invokes a function.", "Depends on the function that is executed.", "function numkeys [key [key ...]] [arg [arg ...]]", func::fcall).numkeys(2),
    c("fcall_ro", -3, NOSCRIPT | STALE | READONLY, NOKEYS, "scripting", "7.0.0", "Invokes a read-only function.", "Depends on the function that is executed.", "function numkeys [key [key ...]] [arg [arg ...]]", func::fcall_ro).numkeys(2),
    c("evalsha_ro", -3, NOSCRIPT | STALE | READONLY, NOKEYS, "scripting", "7.0.0", "Executes a read-only server-side Lua script by SHA1 digest.", "Depends on the script that is executed.", "sha1 numkeys [key [key ...]] [arg [arg ...]]", lua::evalsha_ro).numkeys(2),
    // strings
    c("get", 2, RF, KEY1, "string", "1.0.0", "Returns the string value of a key.", O1, "key", strings::get),
    c("set", -3, WD, KEY1, "string", "1.0.0", "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", O1, "key value [NX|XX] [GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|KEEPTTL]", strings::set),
    c("setnx", 3, WDF, KEY1, "string", "1.0.0", "Set the string value of a key only when the key doesn't exist.", O1, "key value", strings::setnx),
    c("setex", 4, WD, KEY1, "string", "2.0.0", "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.", O1, "key seconds value", strings::setex),
    c("psetex", 4, WD, KEY1, "string", "2.6.0", "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.", O1, "key milliseconds value", strings::psetex),
    c("getset", 3, WDF, KEY1, "string", "1.0.0", "Returns the previous string value of a key after setting it to a new value.", O1, "key value", strings::getset),
    c("getdel", 2, WF, KEY1, "string", "6.2.0", "Returns the string value of a key after deleting the key.", O1, "key", strings::getdel),
    c("getex", -2, WF, KEY1, "string", "6.2.0", "Returns the string value of a key after setting its expiration time.", O1, "key [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|PERSIST]", strings::getex),
    c("mget", -2, RF, ALLKEYS, "string", "1.0.0", "Atomically returns the string values of one or more keys.", ON, "key [key ...]", strings::mget).routed(Route::Split { per: 1, merge: Merge::Concat }),
    c("mset", -3, WD, (1, -1, 2), "string", "1.0.1", "Atomically creates or modifies the string values of one or more keys.", ON, "key value [key value ...]", strings::mset).routed(Route::Split { per: 2, merge: Merge::AllOk }),
    c("msetnx", -3, WD, (1, -1, 2), "string", "1.0.1", "Atomically modifies the string values of one or more keys only when all keys don't exist.", ON, "key value [key value ...]", strings::msetnx),
    c("incr", 2, WDF, KEY1, "string", "1.0.0", "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", O1, "key", strings::incr),
    c("decr", 2, WDF, KEY1, "string", "1.0.0", "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", O1, "key", strings::decr),
    c("incrby", 3, WDF, KEY1, "string", "1.0.0", "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.", O1, "key increment", strings::incrby),
    c("decrby", 3, WDF, KEY1, "string", "1.0.0", "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.", O1, "key decrement", strings::decrby),
    c("incrbyfloat", 3, WDF, KEY1, "string", "2.6.0", "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.", O1, "key increment", strings::incrbyfloat),
    c("append", 3, WDF, KEY1, "string", "2.0.0", "Appends a string to the value of a key. Creates the key if it doesn't exist.", O1, "key value", strings::append),
    c("strlen", 2, RF, KEY1, "string", "2.2.0", "Returns the length of a string value.", O1, "key", strings::strlen),
    c("getrange", 4, READONLY, KEY1, "string", "2.4.0", "Returns a substring of the string stored at a key.", "O(N) where N is the length of the returned string.", "key start end", strings::getrange),
    c("lcs", -3, READONLY, KEY12, "string", "7.0.0", "Finds the longest common substring.", "O(N*M) where N and M are the lengths of s1 and s2, respectively", "key1 key2 [LEN] [IDX] [MINMATCHLEN min-match-len] [WITHMATCHLEN]", strings::lcs),
    c("substr", 4, READONLY, KEY1, "string", "1.0.0", "Returns a substring from a string value.", "O(N) where N is the length of the returned string. The complexity is ultimately determined by the returned length, but because creating a substring from an existing string is very cheap, it can be considered O(1) for small strings.", "key start end", strings::getrange),
    c("setbit", 4, WD, KEY1, "bitmap", "2.2.0", "Sets or clears the bit at offset of the string value. Creates the key if it doesn't exist.", O1, "key offset value", bits::setbit),
    c("getbit", 3, RF, KEY1, "bitmap", "2.2.0", "Returns a bit value by offset.", O1, "key offset", bits::getbit),
    c("bitcount", -2, R, KEY1, "bitmap", "2.6.0", "Counts the number of set bits (population counting) in a string.", "O(N)", "key [start end [BYTE|BIT]]", bits::bitcount),
    c("bitpos", -3, R, KEY1, "bitmap", "2.8.7", "Finds the first set (1) or clear (0) bit in a string.", "O(N)", "key bit [start [end [BYTE|BIT]]]", bits::bitpos),
    c("bitop", -4, WD, (2, -1, 1), "bitmap", "2.6.0", "Performs bitwise operations on multiple strings, and stores the result.", "O(N)", "AND|OR|XOR|NOT destkey key [key ...]", bits::bitop),
    c("bitfield", -2, WD, KEY1, "bitmap", "3.2.0", "Performs arbitrary bitfield integer operations on strings.", "O(1) for each subcommand specified", "key [GET encoding offset|[OVERFLOW WRAP|SAT|FAIL] SET encoding offset value|INCRBY encoding offset increment [GET encoding offset|[OVERFLOW WRAP|SAT|FAIL] SET encoding offset value|INCRBY encoding offset increment ...]]", bits::bitfield),
    c("bitfield_ro", -2, RF, KEY1, "bitmap", "6.0.0", "Performs arbitrary read-only bitfield integer operations on strings.", "O(1) for each subcommand specified", "key [GET encoding offset [GET encoding offset ...]]", bits::bitfield_ro),
    c("pfadd", -2, WDF, KEY1, "hyperloglog", "2.8.9", "Adds elements to a HyperLogLog key. Creates the key if it doesn't exist.", "O(1) to add every element.", "key [element [element ...]]", hll::pfadd),
    c("pfcount", -2, READONLY | MAY_REPLICATE, ALLKEYS, "hyperloglog", "2.8.9", "Returns the approximated cardinality of the set(s) observed by the HyperLogLog key(s).", "O(1) with a very small average constant time when called with a single key. O(N) with N being the number of keys, and much bigger constant times, when called with multiple keys.", "key [key ...]", hll::pfcount),
    c("pfmerge", -2, WD, ALLKEYS, "hyperloglog", "2.8.9", "Merges one or more HyperLogLog values into a single key.", "O(N) to merge N HyperLogLogs, but with high constant times.", "destkey [sourcekey [sourcekey ...]]", hll::pfmerge),
    c("setrange", 4, WD, KEY1, "string", "2.2.0", "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.", O1, "key offset value", strings::setrange),
    // keys
    c("hset", -4, WDF, KEY1, "hash", "2.0.0", "Creates or modifies the value of a field in a hash.", "O(1) for each field/value pair added, so O(N) to add N field/value pairs when the command is called with multiple field/value pairs.", "key field value [field value ...]", h::hset),
    c("hsetnx", 4, WDF, KEY1, "hash", "2.0.0", "Sets the value of a field in a hash only when the field doesn't exist.", O1, "key field value", h::hsetnx),
    c("hmset", -4, WDF, KEY1, "hash", "2.0.0", "Sets the values of multiple fields.", "O(N) where N is the number of fields being set.", "key field value [field value ...]", h::hmset),
    c("hget", 3, RF, KEY1, "hash", "2.0.0", "Returns the value of a field in a hash.", O1, "key field", h::hget),
    c("hmget", -3, RF, KEY1, "hash", "2.0.0", "Returns the values of all fields in a hash.", ON_FIELDS, "key field [field ...]", h::hmget),
    c("hgetall", 2, R, KEY1, "hash", "2.0.0", "Returns all fields and values in a hash.", ON_HASH, "key", h::hgetall),
    c("hdel", -3, WF, KEY1, "hash", "2.0.0", "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.", "O(N) where N is the number of fields to be removed.", "key field [field ...]", h::hdel),
    c("hlen", 2, RF, KEY1, "hash", "2.0.0", "Returns the number of fields in a hash.", O1, "key", h::hlen),
    c("hstrlen", 3, RF, KEY1, "hash", "3.2.0", "Returns the length of the value of a field.", O1, "key field", h::hstrlen),
    c("hexists", 3, RF, KEY1, "hash", "2.0.0", "Determines whether a field exists in a hash.", O1, "key field", h::hexists),
    c("hkeys", 2, R, KEY1, "hash", "2.0.0", "Returns all fields in a hash.", ON_HASH, "key", h::hkeys),
    c("hvals", 2, R, KEY1, "hash", "2.0.0", "Returns all values in a hash.", ON_HASH, "key", h::hvals),
    c("hincrby", 4, WDF, KEY1, "hash", "2.0.0", "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.", O1, "key field increment", h::hincrby),
    c("hincrbyfloat", 4, WDF, KEY1, "hash", "2.6.0", "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist.", O1, "key field increment", h::hincrbyfloat),
    c("hrandfield", -2, R, KEY1, "hash", "6.2.0", "Returns one or more random fields from a hash.", "O(N) where N is the number of fields returned", "key [count [WITHVALUES]]", h::hrandfield),
    c("hscan", -3, R, KEY1, "hash", "2.8.0", "Iterates over fields and values of a hash.", ONE_OR_N, "key cursor [MATCH pattern] [COUNT count]", h::hscan),
    c("lpush", -3, WDF, KEY1, "list", "1.0.0", "Prepends one or more elements to a list. Creates the key if it doesn't exist.", "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.", "key element [element ...]", l::lpush),
    c("rpush", -3, WDF, KEY1, "list", "1.0.0", "Appends one or more elements to a list. Creates the key if it doesn't exist.", "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.", "key element [element ...]", l::rpush),
    c("lpushx", -3, WDF, KEY1, "list", "2.2.0", "Prepends one or more elements to a list only when the list exists.", "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.", "key element [element ...]", l::lpushx),
    c("rpushx", -3, WDF, KEY1, "list", "2.2.0", "Appends an element to a list only when the list exists.", "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.", "key element [element ...]", l::rpushx),
    c("lpop", -2, WF, KEY1, "list", "1.0.0", "Returns the first elements in a list after removing it. Deletes the list if the last element was popped.", "O(N) where N is the number of elements returned", "key [count]", l::lpop),
    c("rpop", -2, WF, KEY1, "list", "1.0.0", "Returns and removes the last elements of the list. Deletes the list if the last element was popped.", "O(N) where N is the number of elements returned", "key [count]", l::rpop),
    c("llen", 2, RF, KEY1, "list", "1.0.0", "Returns the length of a list.", O1, "key", l::llen),
    c("lrange", 4, R, KEY1, "list", "1.0.0", "Returns a range of elements from a list.", "O(S+N) where S is the distance of start offset from HEAD for small lists, from nearest end (HEAD or TAIL) for large lists; and N is the number of elements in the specified range.", "key start stop", l::lrange),
    c("lindex", 3, R, KEY1, "list", "1.0.0", "Returns an element from a list by its index.", "O(N) where N is the number of elements to traverse to get to the element at index. This makes asking for the first or the last element of the list O(1).", "key index", l::lindex),
    c("lset", 4, WD, KEY1, "list", "1.0.0", "Sets the value of an element in a list by its index.", "O(N) where N is the length of the list. Setting either the first or the last element of the list is O(1).", "key index element", l::lset),
    c("linsert", 5, WD, KEY1, "list", "2.2.0", "Inserts an element before or after another element in a list.", "O(N) where N is the number of elements to traverse before seeing the value pivot. This means that inserting somewhere on the left end on the list (head) can be considered O(1) and inserting somewhere on the right end (tail) is O(N).", "key BEFORE|AFTER pivot element", l::linsert),
    c("lrem", 4, W, KEY1, "list", "1.0.0", "Removes elements from a list. Deletes the list if the last element was removed.", "O(N+M) where N is the length of the list and M is the number of elements removed.", "key count element", l::lrem),
    c("ltrim", 4, W, KEY1, "list", "1.0.0", "Removes elements from both ends a list. Deletes the list if all elements were trimmed.", "O(N) where N is the number of elements to be removed by the operation.", "key start stop", l::ltrim),
    c("lpos", -3, R, KEY1, "list", "6.0.6", "Returns the index of matching elements in a list.", "O(N) where N is the number of elements in the list, for the average case. When searching for elements near the head or the tail of the list, or when the MAXLEN option is provided, the command may run in constant time.", "key element [RANK rank] [COUNT num-matches] [MAXLEN len]", l::lpos),
    c("lmove", 5, WD, KEY12, "list", "6.2.0", "Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved.", O1, "source destination LEFT|RIGHT LEFT|RIGHT", l::lmove),
    c("rpoplpush", 3, WD, KEY12, "list", "1.2.0", "Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped.", O1, "source destination", l::rpoplpush),
    c("lmpop", -4, W, NOKEYS, "list", "7.0.0", "Returns multiple elements from a list after removing them. Deletes the list if the last element was popped.", "O(N+M) where N is the number of provided keys and M is the number of elements returned.", "numkeys key [key ...] LEFT|RIGHT [COUNT count]", l::lmpop).numkeys(1),
    c("blpop", -3, W | NOSCRIPT, LAST_IS_TIMEOUT, "list", "2.0.0", "Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", "O(N) where N is the number of provided keys.", "key [key ...] timeout", blk::blpop),
    c("brpop", -3, W | NOSCRIPT, LAST_IS_TIMEOUT, "list", "2.0.0", "Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", "O(N) where N is the number of provided keys.", "key [key ...] timeout", blk::brpop),
    c("blmove", 6, WD | NOSCRIPT, KEY12, "list", "6.2.0", "Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved.", O1, "source destination LEFT|RIGHT LEFT|RIGHT timeout", blk::blmove),
    c("brpoplpush", 4, WD | NOSCRIPT, KEY12, "list", "2.2.0", "Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped.", O1, "source destination timeout", blk::brpoplpush),
    c("blmpop", -5, W | NOSCRIPT, NOKEYS, "list", "7.0.0", "Pops the first element from one of multiple lists. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", "O(N+M) where N is the number of provided keys and M is the number of elements returned.", "timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]", blk::blmpop).numkeys(2),
    c("bzpopmin", -3, W | NOSCRIPT | FAST, LAST_IS_TIMEOUT, "sorted-set", "5.0.0", "Removes and returns the member with the lowest score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.", "O(log(N)) with N being the number of elements in the sorted set.", "key [key ...] timeout", blk::bzpopmin),
    c("bzpopmax", -3, W | NOSCRIPT | FAST, LAST_IS_TIMEOUT, "sorted-set", "5.0.0", "Removes and returns the member with the highest score from one or more sorted sets. Blocks until a member available otherwise.  Deletes the sorted set if the last element was popped.", "O(log(N)) with N being the number of elements in the sorted set.", "key [key ...] timeout", blk::bzpopmax),
    c("bzmpop", -5, W | NOSCRIPT, NOKEYS, "sorted-set", "7.0.0", "Removes and returns a member by score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.", "O(K) + O(M*log(N)) where K is the number of provided keys, N being the number of elements in the sorted set, and M being the number of elements popped.", "timeout numkeys key [key ...] MIN|MAX [COUNT count]", blk::bzmpop).numkeys(2),
    c("sadd", -3, WDF, KEY1, "set", "1.0.0", "Adds one or more members to a set. Creates the key if it doesn't exist.", "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.", "key member [member ...]", s::sadd),
    c("srem", -3, WF, KEY1, "set", "1.0.0", "Removes one or more members from a set. Deletes the set if the last member was removed.", "O(N) where N is the number of members to be removed.", "key member [member ...]", s::srem),
    c("smembers", 2, R, KEY1, "set", "1.0.0", "Returns all members of a set.", ON_SET, "key", s::smembers),
    c("sismember", 3, RF, KEY1, "set", "1.0.0", "Determines whether a member belongs to a set.", O1, "key member", s::sismember),
    c("smismember", -3, RF, KEY1, "set", "6.2.0", "Determines whether multiple members belong to a set.", "O(N) where N is the number of elements being checked for membership", "key member [member ...]", s::smismember),
    c("scard", 2, RF, KEY1, "set", "1.0.0", "Returns the number of members in a set.", O1, "key", s::scard),
    c("spop", -2, WF, KEY1, "set", "1.0.0", "Returns one or more random members from a set after removing them. Deletes the set if the last member was popped.", "Without the count argument O(1), otherwise O(N) where N is the value of the passed count.", "key [count]", s::spop),
    c("srandmember", -2, RR, KEY1, "set", "1.0.0", "Get one or multiple random members from a set", "Without the count argument O(1), otherwise O(N) where N is the absolute value of the passed count.", "key [count]", s::srandmember),
    c("smove", 4, WF, KEY12, "set", "1.0.0", "Moves a member from one set to another.", O1, "source destination member", s::smove),
    c("sinter", -2, R, ALLKEYS_AFTER1, "set", "1.0.0", "Returns the intersect of multiple sets.", "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.", "key [key ...]", s::sinter),
    c("sintercard", -3, R, NOKEYS, "set", "7.0.0", "Returns the number of members of the intersect of multiple sets.", "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.", "numkeys key [key ...] [LIMIT limit]", s::sintercard).numkeys(1),
    c("sinterstore", -3, WD, ALLKEYS_AFTER1, "set", "1.0.0", "Stores the intersect of multiple sets in a key.", "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.", "destination key [key ...]", s::sinterstore),
    c("sunion", -2, R, ALLKEYS_AFTER1, "set", "1.0.0", "Returns the union of multiple sets.", ON_SETS, "key [key ...]", s::sunion),
    c("sunionstore", -3, WD, ALLKEYS_AFTER1, "set", "1.0.0", "Stores the union of multiple sets in a key.", ON_SETS, "destination key [key ...]", s::sunionstore),
    c("sdiff", -2, R, ALLKEYS_AFTER1, "set", "1.0.0", "Returns the difference of multiple sets.", ON_SETS, "key [key ...]", s::sdiff),
    c("sdiffstore", -3, WD, ALLKEYS_AFTER1, "set", "1.0.0", "Stores the difference of multiple sets in a key.", ON_SETS, "destination key [key ...]", s::sdiffstore),
    c("sscan", -3, R, KEY1, "set", "2.0.0", "Iterates over members of a set.", ONE_OR_N, "key cursor [MATCH pattern] [COUNT count]", s::sscan),
    c("zadd", -4, WDF, KEY1, "sorted-set", "1.2.0", "Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist.", "O(log(N)) for each item added, where N is the number of elements in the sorted set.", "key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]", z::zadd),
    c("zincrby", 4, WDF, KEY1, "sorted-set", "1.2.0", "Increments the score of a member in a sorted set.", ZLOG, "key increment member", z::zincrby),
    c("zrem", -3, WF, KEY1, "sorted-set", "1.2.0", "Removes one or more members from a sorted set. Deletes the sorted set if all members were removed.", "O(M*log(N)) with N being the number of elements in the sorted set and M the number of elements to be removed.", "key member [member ...]", z::zrem),
    c("zcard", 2, RF, KEY1, "sorted-set", "1.2.0", "Returns the number of members in a sorted set.", O1, "key", z::zcard),
    c("zscore", 3, RF, KEY1, "sorted-set", "1.2.0", "Returns the score of a member in a sorted set.", O1, "key member", z::zscore),
    c("zmscore", -3, RF, KEY1, "sorted-set", "6.2.0", "Returns the score of one or more members in a sorted set.", "O(N) where N is the number of members being requested.", "key member [member ...]", z::zmscore),
    c("zrank", 3, RF, KEY1, "sorted-set", "2.0.0", "Returns the index of a member in a sorted set ordered by ascending scores.", ZLOG, "key member", z::zrank),
    c("zrevrank", 3, RF, KEY1, "sorted-set", "2.0.0", "Returns the index of a member in a sorted set ordered by descending scores.", ZLOG, "key member", z::zrevrank),
    c("zcount", 4, RF, KEY1, "sorted-set", "2.0.0", "Returns the count of members in a sorted set that have scores within a range.", ZLOG, "key min max", z::zcount),
    c("zlexcount", 4, RF, KEY1, "sorted-set", "2.8.9", "Returns the number of members in a sorted set within a lexicographical range.", ZLOG, "key min max", z::zlexcount),
    c("zrange", -4, R, KEY1, "sorted-set", "1.2.0", "Returns members in a sorted set within a range of indexes.", ZRANGE_CX, "key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]", z::zrange),
    c("zrangestore", -5, WD, KEY12, "sorted-set", "6.2.0", "Stores a range of members from sorted set in a key.", ZRANGE_CX, "dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]", z::zrangestore),
    c("zrevrange", -4, R, KEY1, "sorted-set", "1.2.0", "Returns members in a sorted set within a range of indexes in reverse order.", ZRANGE_CX, "key start stop [WITHSCORES]", z::zrevrange),
    c("zrangebyscore", -4, R, KEY1, "sorted-set", "1.0.5", "Returns members in a sorted set within a range of scores.", ZRANGE_CX, "key min max [WITHSCORES] [LIMIT offset count]", z::zrangebyscore),
    c("zrevrangebyscore", -4, R, KEY1, "sorted-set", "2.2.0", "Returns members in a sorted set within a range of scores in reverse order.", ZRANGE_CX, "key max min [WITHSCORES] [LIMIT offset count]", z::zrevrangebyscore),
    c("zrangebylex", -4, R, KEY1, "sorted-set", "2.8.9", "Returns members in a sorted set within a lexicographical range.", ZRANGE_CX, "key min max [LIMIT offset count]", z::zrangebylex),
    c("zrevrangebylex", -4, R, KEY1, "sorted-set", "2.8.9", "Returns members in a sorted set within a lexicographical range in reverse order.", ZRANGE_CX, "key max min [LIMIT offset count]", z::zrevrangebylex),
    c("zremrangebyrank", 4, W, KEY1, "sorted-set", "2.0.0", "Removes members in a sorted set within a range of indexes. Deletes the sorted set if all members were removed.", ZREM_CX, "key start stop", z::zremrangebyrank),
    c("zremrangebyscore", 4, W, KEY1, "sorted-set", "1.2.0", "Removes members in a sorted set within a range of scores. Deletes the sorted set if all members were removed.", ZREM_CX, "key min max", z::zremrangebyscore),
    c("zremrangebylex", 4, W, KEY1, "sorted-set", "2.8.9", "Removes members in a sorted set within a lexicographical range. Deletes the sorted set if all members were removed.", ZREM_CX, "key min max", z::zremrangebylex),
    c("zpopmin", -2, WF, KEY1, "sorted-set", "5.0.0", "Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.", ZPOP_CX, "key [count]", z::zpopmin),
    c("zpopmax", -2, WF, KEY1, "sorted-set", "5.0.0", "Returns the highest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.", ZPOP_CX, "key [count]", z::zpopmax),
    c("zmpop", -4, W, NOKEYS, "sorted-set", "7.0.0", "Returns the highest- or lowest-scoring members from one or more sorted sets after removing them. Deletes the sorted set if the last member was popped.", ZPOP_CX, "numkeys key [key ...] MIN|MAX [COUNT count]", z::zmpop).numkeys(1),
    c("zrandmember", -2, R, KEY1, "sorted-set", "6.2.0", "Returns one or more random members from a sorted set.", "O(N) where N is the number of members returned", "key [count [WITHSCORES]]", z::zrandmember),
    c("zunion", -3, R, NOKEYS, "sorted-set", "6.2.0", "Returns the union of multiple sorted sets.", ZCOMBINE_CX, "numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]", z::zunion).numkeys(1),
    c("zinter", -3, R, NOKEYS, "sorted-set", "6.2.0", "Returns the intersect of multiple sorted sets.", ZCOMBINE_CX, "numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]", z::zinter).numkeys(1),
    c("zdiff", -3, R, NOKEYS, "sorted-set", "6.2.0", "Returns the difference between multiple sorted sets.", ZCOMBINE_CX, "numkeys key [key ...] [WITHSCORES]", z::zdiff).numkeys(1),
    c("zunionstore", -4, WD, KEY1, "sorted-set", "2.0.0", "Stores the union of multiple sorted sets in a key.", ZCOMBINE_CX, "destination numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM|MIN|MAX]", z::zunionstore).numkeys(2),
    c("zinterstore", -4, WD, KEY1, "sorted-set", "2.0.0", "Stores the intersect of multiple sorted sets in a key.", ZCOMBINE_CX, "destination numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM|MIN|MAX]", z::zinterstore).numkeys(2),
    c("zdiffstore", -4, WD, KEY1, "sorted-set", "6.2.0", "Stores the difference of multiple sorted sets in a key.", ZCOMBINE_CX, "destination numkeys key [key ...]", z::zdiffstore).numkeys(2),
    c("zintercard", -3, R, NOKEYS, "sorted-set", "7.0.0", "Returns the number of members of the intersect of multiple sorted sets.", ZCOMBINE_CX, "numkeys key [key ...] [LIMIT limit]", z::zintercard).numkeys(1),
    c("zscan", -3, R, KEY1, "sorted-set", "2.8.0", "Iterates over members and scores of a sorted set.", ONE_OR_N, "key cursor [MATCH pattern] [COUNT count]", z::zscan),
    c("del", -2, W, ALLKEYS, "generic", "1.0.0", "Deletes one or more keys.", ON, "key [key ...]", keys::del).routed(Route::Split { per: 1, merge: Merge::Sum }),
    c("unlink", -2, WF, ALLKEYS, "generic", "4.0.0", "Asynchronously deletes one or more keys.", ON, "key [key ...]", keys::del).routed(Route::Split { per: 1, merge: Merge::Sum }),
    c("exists", -2, RF, ALLKEYS, "generic", "1.0.0", "Determines whether one or more keys exist.", ON, "key [key ...]", keys::exists).routed(Route::Split { per: 1, merge: Merge::Sum }),
    c("touch", -2, RF, ALLKEYS, "generic", "3.2.1", "Returns the number of existing keys out of those specified after updating the time they were last accessed.", ON, "key [key ...]", keys::exists).routed(Route::Split { per: 1, merge: Merge::Sum }),
    c("type", 2, RF, KEY1, "generic", "1.0.0", "Determines the type of value stored at a key.", O1, "key", keys::type_),
    c("expire", -3, WF, KEY1, "generic", "1.0.0", "Sets the expiration time of a key in seconds.", O1, "key seconds [NX|XX|GT|LT]", keys::expire),
    c("pexpire", -3, WF, KEY1, "generic", "2.6.0", "Sets the expiration time of a key in milliseconds.", O1, "key milliseconds [NX|XX|GT|LT]", keys::pexpire),
    c("expireat", -3, WF, KEY1, "generic", "1.2.0", "Sets the expiration time of a key to a Unix timestamp.", O1, "key unix-time-seconds [NX|XX|GT|LT]", keys::expireat),
    c("pexpireat", -3, WF, KEY1, "generic", "2.6.0", "Sets the expiration time of a key to a Unix milliseconds timestamp.", O1, "key unix-time-milliseconds [NX|XX|GT|LT]", keys::pexpireat),
    c("ttl", 2, RF, KEY1, "generic", "1.0.0", "Returns the expiration time in seconds of a key.", O1, "key", keys::ttl),
    c("pttl", 2, RF, KEY1, "generic", "2.6.0", "Returns the expiration time in milliseconds of a key.", O1, "key", keys::pttl),
    c("expiretime", 2, RF, KEY1, "generic", "7.0.0", "Returns the expiration time of a key as a Unix timestamp.", O1, "key", keys::expiretime),
    c("pexpiretime", 2, RF, KEY1, "generic", "7.0.0", "Returns the expiration time of a key as a Unix milliseconds timestamp.", O1, "key", keys::pexpiretime),
    c("persist", 2, WF, KEY1, "generic", "2.2.0", "Removes the expiration time of a key.", O1, "key", keys::persist),
    c("rename", 3, W, (1, 2, 1), "generic", "1.0.0", "Renames a key and overwrites the destination.", O1, "key newkey", keys::rename),
    c("renamenx", 3, WF, (1, 2, 1), "generic", "1.0.0", "Renames a key only when the target key name doesn't exist.", O1, "key newkey", keys::renamenx),
    c("keys", 2, READONLY, NOKEYS, "generic", "1.0.0", "Returns all key names that match a pattern.", "O(N) with N being the number of keys in the database", "pattern", keys::keys).routed(Route::Primaries(Merge::Concat)),
    c("scan", -2, READONLY, NOKEYS, "generic", "2.8.0", "Iterates over the key names in the database.", "O(1) for every call. O(N) for a complete iteration.", "cursor [MATCH pattern] [COUNT count] [TYPE type]", keys::scan).routed(Route::Scan),
    c("randomkey", 1, READONLY, NOKEYS, "generic", "1.0.0", "Returns a random key name from the database.", O1, "", keys::randomkey).routed(Route::Primaries(Merge::FirstNonNil)),
    c("dbsize", 1, RF, NOKEYS, "server", "1.0.0", "Returns the number of keys in the database.", O1, "", keys::dbsize).routed(Route::Primaries(Merge::Sum)),
    c("flushdb", -1, W, NOKEYS, "server", "1.0.0", "Remove all keys from the current database.", "O(N) where N is the number of keys in the selected database", "[ASYNC|SYNC]", keys::flushdb).routed(Route::Primaries(Merge::AllOk)),
    c("flushall", -1, W, NOKEYS, "server", "1.0.0", "Removes all keys from all databases.", "O(N) where N is the total number of keys in all databases", "[ASYNC|SYNC]", keys::flushall).routed(Route::Primaries(Merge::AllOk)),
    // transactions
    c("multi", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, NOKEYS, "transactions", "1.2.0", "Starts a transaction.", O1, "", tx::multi),
    c("exec", 1, NOSCRIPT | LOADING | STALE | SKIP_SLOWLOG, NOKEYS, "transactions", "1.2.0", "Executes all commands in a transaction.", "Depends on commands in the transaction", "", tx::exec),
    c("discard", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, NOKEYS, "transactions", "2.0.0", "Discards a transaction.", "O(N), when N is the number of queued commands", "", tx::discard),
    c("watch", -2, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, ALLKEYS, "transactions", "2.2.0", "Monitors changes to keys to determine the execution of a transaction.", "O(1) for every key.", "key [key ...]", tx::watch),
    c("unwatch", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, NOKEYS, "transactions", "2.2.0", "Forgets about watched keys of a transaction.", O1, "", tx::unwatch),
    // connection
    c("ping", -1, FAST, NOKEYS, "connection", "1.0.0", "Returns the server's liveliness response.", O1, "[message]", conn::ping),
    c("echo", 2, FAST, NOKEYS, "connection", "1.0.0", "Returns the given string.", O1, "message", conn::echo),
    c("hello", -1, CONN | NO_AUTH | ALLOW_BUSY, NOKEYS, "connection", "6.0.0", "Handshakes with the Redis server.", O1, "[protover [AUTH username password] [SETNAME clientname]]", conn::hello),
    c("auth", -2, CONN | NO_AUTH | ALLOW_BUSY, NOKEYS, "connection", "1.0.0", "Authenticates the connection.", "O(N) where N is the number of passwords defined for the user", "[username] password", conn::auth),
    c("select", 2, LOADING | STALE | FAST, NOKEYS, "connection", "1.0.0", "Changes the selected database.", O1, "index", conn::select),
    c("quit", -1, CONN | NO_AUTH | ALLOW_BUSY, NOKEYS, "connection", "1.0.0", "Closes the connection.", O1, "", conn::quit),
    c("reset", 1, CONN | NO_AUTH | ALLOW_BUSY, NOKEYS, "connection", "6.2.0", "Resets the connection.", O1, "", conn::reset),
    c("subscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE, NOKEYS, "pubsub", "2.0.0", "Listens for messages published to channels.", "O(N) where N is the number of channels to subscribe to.", "channel [channel ...]", ps::subscribe),
    c("unsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE, NOKEYS, "pubsub", "2.0.0", "Stops listening to messages posted to channels.", "O(N) where N is the number of channels to unsubscribe.", "[channel [channel ...]]", ps::unsubscribe),
    c("psubscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE, NOKEYS, "pubsub", "2.0.0", "Listens for messages published to channels that match one or more patterns.", "O(N) where N is the number of patterns to subscribe to.", "pattern [pattern ...]", ps::psubscribe),
    c("punsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE, NOKEYS, "pubsub", "2.0.0", "Stops listening to messages published to channels that match one or more patterns.", "O(N) where N is the number of patterns to unsubscribe.", "[pattern [pattern ...]]", ps::punsubscribe),
    c("publish", 3, PUBSUB | LOADING | STALE | FAST, NOKEYS, "pubsub", "2.0.0", "Posts a message to a channel.", "O(N+M) where N is the number of clients subscribed to the receiving channel and M is the total number of subscribed patterns (by any client).", "channel message", ps::publish),
    c("ssubscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE, ALLKEYS, "pubsub", "7.0.0", "Listens for messages published to shard channels.", "O(N) where N is the number of shard channels to subscribe to.", "shardchannel [shardchannel ...]", ps::ssubscribe),
    c("sunsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE, ALLKEYS, "pubsub", "7.0.0", "Stops listening to messages posted to shard channels.", "O(N) where N is the number of shard channels to unsubscribe.", "[shardchannel [shardchannel ...]]", ps::sunsubscribe),
    c("spublish", 3, PUBSUB | LOADING | STALE | FAST, KEY1, "pubsub", "7.0.0", "Post a message to a shard channel", "O(N) where N is the number of clients subscribed to the receiving shard channel.", "shardchannel message", ps::spublish),
    container("pubsub", -2, "pubsub", "2.8.0", "A container for Pub/Sub commands.", container_usage, PUBSUB_SUBS),
    c("monitor", 1, ADMIN | NOSCRIPT | LOADING | STALE, NOKEYS, "server", "1.0.0", "Listens for all requests received by the server in real-time.", "", "", ps::monitor),
    container("client", -2, "connection", "2.4.0", "A container for client connection commands.", container_usage, CLIENT_SUBS),
    // server
    c("shutdown", -1, ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | ALLOW_BUSY, NOKEYS, "server", "1.0.0", "Synchronously saves the database(s) to disk and shuts down the Redis server.", "O(N) when saving, where N is the total number of keys in all databases when saving data, otherwise O(1)", "[NOSAVE|SAVE] [NOW] [FORCE] [ABORT]", srv::shutdown),
    c("save", 1, ADMIN | NOSCRIPT | NO_MULTI, NOKEYS, "server", "1.0.0", "Synchronously saves the database(s) to disk.", "O(N) where N is the total number of keys in all databases", "", persist::save).routed(Route::Primaries(Merge::AllOk)),
    c("bgsave", -1, ADMIN | NOSCRIPT | NO_MULTI, NOKEYS, "server", "1.0.0", "Asynchronously saves the database(s) to disk.", "O(1)", "[SCHEDULE]", persist::bgsave).routed(Route::Primaries(Merge::AllOk)),
    c("lastsave", 1, LOADING | STALE | FAST, NOKEYS, "server", "1.0.0", "Returns the Unix timestamp of the last successful save to disk.", O1, "", persist::lastsave).routed(Route::Primaries(Merge::Oldest)),
    c("bgrewriteaof", 1, ADMIN | NOSCRIPT | NO_MULTI, NOKEYS, "server", "1.0.0", "Asynchronously rewrites the append-only file to disk.", O1, "", persist::bgrewriteaof).routed(Route::Primaries(Merge::AllOk)),
    c("time", 1, LOADING | STALE | FAST, NOKEYS, "server", "2.6.0", "Returns the server time.", O1, "", srv::time),
    c("info", -1, LOADING | STALE, NOKEYS, "server", "1.0.0", "Returns information and statistics about the server.", O1, "[section [section ...]]", srv::info).routed(Route::Primaries(Merge::Keyspace)),
    container("memory", -2, "server", "4.0.0", "A container for memory diagnostics commands.", container_usage, MEMORY_SUBS),
    c("dump", 2, R, KEY1, "generic", "2.6.0", "Returns a serialized representation of the value stored at a key.", "O(1) to access the key and additional O(N*M) to serialize it, where N is the number of Redis objects composing the value and M their average size.", "key", keys::dump),
    c("restore", -4, WD, KEY1, "generic", "2.6.0", "Creates a key from the serialized representation of a value.", "O(1) to create the new key and additional O(N*M) to reconstruct the serialized value, where N is the number of Redis objects composing the value and M their average size.", "key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]", keys::restore),
    c("move", 3, WF, KEY1, "generic", "1.0.0", "Moves a key to another database.", O1, "key db", keys::move_key),
    c("swapdb", 3, W, NOKEYS, "server", "4.0.0", "Swaps two Redis databases.", "O(N) where N is the count of clients watching or blocking on keys from both databases.", "index1 index2", keys::swapdb),
    c("sort", -2, WD, KEY1, "generic", "1.0.0", "Sorts the elements in a list, a set, or a sorted set, optionally storing the result.", "O(N+M*log(M)) where N is the number of elements in the list or set to sort, and M the number of returned elements. When the elements are not sorted, complexity is O(N).", "key [BY pattern] [LIMIT offset count] [GET pattern [GET pattern ...]] [ASC|DESC] [ALPHA] [STORE destination]", sort::sort_cmd),
    c("sort_ro", -2, READONLY, KEY1, "generic", "7.0.0", "Returns the sorted elements of a list, a set, or a sorted set.", "O(N+M*log(M)) where N is the number of elements in the list or set to sort, and M the number of returned elements. When the elements are not sorted, complexity is O(N).", "key [BY pattern] [LIMIT offset count] [GET pattern [GET pattern ...]] [ASC|DESC] [ALPHA]", sort::sort_ro),
    c("copy", -3, WD, KEY12, "generic", "6.2.0", "Copies the value of a key to a new key.", "O(N) worst case for collections, where N is the number of nested items. O(1) for string values.", "source destination [DB destination-db] [REPLACE]", keys::copy),
    container("object", -2, "generic", "2.2.3", "A container for object introspection commands.", container_usage, OBJECT_SUBS),
    container("config", -2, "server", "2.0.0", "A container for server configuration commands.", container_usage, CONFIG_SUBS),
    container("command", -1, "server", "2.8.13", "Returns detailed information about all commands.", intro::command, COMMAND_SUBS),
    // replication
    c("replconf", -1, INTERNAL | ADMIN | NOSCRIPT | LOADING | STALE | ALLOW_BUSY, NOKEYS, "server", "3.0.0", "An internal command for configuring the replication stream.", O1, "", repl::replconf),
    c("psync", -3, INTERNAL | ADMIN | NOSCRIPT | NO_MULTI, NOKEYS, "server", "2.8.0", "An internal command used in replication.", "", "replicationid offset", repl::psync),
    c("sync", 1, INTERNAL | ADMIN | NOSCRIPT | NO_MULTI, NOKEYS, "server", "1.0.0", "An internal command used in replication.", "", "", repl::sync),
    c("wait", 3, NOSCRIPT, NOKEYS, "generic", "3.0.0", "Blocks until the asynchronous replication of all preceding write commands sent by the connection is completed.", O1, "numreplicas timeout", repl::wait).routed(Route::Wait),
    c("role", 1, NOSCRIPT | LOADING | STALE | FAST, NOKEYS, "server", "2.8.12", "Returns the replication role.", O1, "", repl::role),
    container("debug", -2, "server", "1.0.0", "A container for debugging commands.", container_usage, DEBUG_SUBS),
    c("readonly", 1, LOADING | STALE | FAST, NOKEYS, "cluster", "3.0.0", "Enables read-only queries for a connection to a Redis Cluster replica node.", O1, "", cluster::readonly),
    c("readwrite", 1, LOADING | STALE | FAST, NOKEYS, "cluster", "3.0.0", "Enables read-write queries for a connection to a Redis Cluster replica node.", O1, "", cluster::readonly),
    container("cluster", -2, "cluster", "3.0.0", "A container for Redis Cluster commands.", container_usage, CLUSTER_SUBS),
    // The registry's own commands (see command/cluster.rs).
    c("edis.register", -5, INTERNAL | ADMIN | NOSCRIPT | LOADING | STALE, NOKEYS, "cluster", "0.1.0", "Registers a shard with the info role and returns its assignment.", O1, "id role host port TOKEN token [INDEX index] [OFFSET offset] [REPLICAOF host port] [FOLLOWS primary-id synced offset]", cluster::register),
    c("edis.heartbeat", -3, INTERNAL | ADMIN | NOSCRIPT | LOADING | STALE | FAST, NOKEYS, "cluster", "0.1.0", "Tells the info role a shard is alive (and what a read shard follows); returns the topology epoch.", O1, "id token [FOLLOWS primary-id synced offset]", cluster::heartbeat),
    c("edis.failover", -3, INTERNAL | ADMIN | NOSCRIPT | LOADING | STALE, NOKEYS, "cluster", "0.1.0", "Gives a write shard's slots to one of its read shards (the last step of CLUSTER FAILOVER).", O1, "id token [FORCE]", cluster::failover),
    c("edis.pause", 2, INTERNAL | ADMIN | NOSCRIPT | LOADING | STALE, NOKEYS, "cluster", "0.1.0", "Holds writes on a write shard for a manual failover; returns its replication offset.", O1, "milliseconds", cluster::pause),
    c("edis.leave", 3, INTERNAL | ADMIN | NOSCRIPT | LOADING | STALE, NOKEYS, "cluster", "0.1.0", "Removes a read shard from the topology.", O1, "id token", cluster::leave),
    c("edis.at", -3, INTERNAL | NOSCRIPT | LOADING | STALE | FAST | NO_MULTI, NOKEYS, "cluster", "0.1.0", "Runs a command once this node has reached a replication offset (a router's session guarantees).", O1, "offset command [arg ...]", cluster::at),
    c("edis.listen", 1, INTERNAL | NOSCRIPT | LOADING | STALE | FAST, NOKEYS, "cluster", "0.1.0", "Marks the connection as a proxy's feed: it receives only messages published on this node and events made here.", O1, "", ps::listen),
    c("edis.published", 3, INTERNAL | PUBSUB | LOADING | STALE | FAST, NOKEYS, "cluster", "0.1.0", "Delivers a message another write shard published (not forwarded again).", O1, "channel message", ps::published),
    c("edis.router", 1, INTERNAL | NOSCRIPT | LOADING | STALE | FAST, NOKEYS, "cluster", "0.1.0", "Marks the connection as a proxy's: multi-key commands may span slots this node serves.", O1, "", cluster::router),
    c("edis.topology", -1, INTERNAL | NOSCRIPT | LOADING | STALE | NO_MULTI, NOKEYS, "cluster", "0.1.0", "Returns the shard map, or waits for one newer than an epoch.", "O(N) where N is the number of shards", "[WAIT epoch timeout]", cluster::topology),
    container("function", -2, "scripting", "7.0.0", "A container for function commands.", container_usage, FUNCTION_SUBS),
    container("script", -2, "scripting", "2.6.0", "A container for Lua scripts management commands.", container_usage, SCRIPT_SUBS),
];
