//! Lua scripting: EVAL/EVALSHA and SCRIPT on a write shard, through --role all's proxy, and
//! replicated by effects (to a read shard and into the AOF, as one MULTI/EXEC).

use std::time::Duration;

use redis::Value;

use crate::harness::*;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn scripts_convert_and_fail_as_redis_does() {
    let s = TestServer::start().await;
    let mut c = s.raw().await;
    let cases: &[(&[&str], &str)] = &[
        (
            &["EVAL", "return {1, 'a', 2.9, true, false, {ok='x'}, nil, 5}", "0"],
            "*6\r\n:1\r\n$1\r\na\r\n:2\r\n:1\r\n$-1\r\n+x\r\n",
        ),
        (&["EVAL", "return {err='BAD thing'}", "0"], "-BAD thing\r\n"),
        (&["EVAL", "return KEYS[1] .. ARGV[2]", "1", "k", "a", "b"], "$2\r\nkb\r\n"),
        (&["EVAL", "return redis.call('set', KEYS[1], 5)", "1", "n"], "+OK\r\n"),
        (&["EVAL", "return redis.call('incrby', KEYS[1], ARGV[1])", "1", "n", "2"], ":7\r\n"),
        (&["EVAL", "return type(redis.call('get', 'nokey'))", "0"], "$7\r\nboolean\r\n"),
        (&["EVAL", "return 1", "-1"], "-ERR Number of keys can't be negative\r\n"),
        (&["EVAL", "return 1", "2", "a"], "-ERR Number of keys can't be greater than number of args\r\n"),
        (
            &["EVAL", "return (", "0"],
            "-ERR Error compiling script (new function): user_script:1: unexpected symbol near '<eof>'\r\n",
        ),
        (
            &["EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "0"],
            "-NOSCRIPT No matching script. Please use EVAL.\r\n",
        ),
    ];
    for (args, want) in cases {
        assert_eq!(c.call(&resp(args)).await, *want, "{args:?}");
    }
    // Errors raised inside: Redis's text with the script's SHA1 and the line.
    let sandbox = c.call(&resp(&["EVAL", "local x = 1\nreturn os.time()", "0"])).await;
    assert!(
        sandbox.starts_with(
            "-ERR user_script:2: Script attempted to access nonexistent global variable 'os' script: "
        ) && sandbox.ends_with(", on @user_script:2.\r\n"),
        "{sandbox}"
    );
    let global = c.call(&resp(&["EVAL", "x = 5", "0"])).await;
    assert!(
        global.starts_with("-ERR user_script:1: Attempt to modify a readonly table script: "),
        "{global}"
    );
    // The libraries are read-only, raw writes too: a script cannot break the next one.
    for attack in ["redis.call = nil", "rawset(redis, 'call', nil)", "redis = nil", "setmetatable(_G, nil)"] {
        let refused = c.call(&resp(&["EVAL", attack, "0"])).await;
        assert!(refused.contains("Attempt to modify a readonly table script: "), "{attack}: {refused}");
    }
    assert_eq!(c.call(&resp(&["EVAL", "return redis.call('ping')", "0"])).await, "+PONG\r\n");
    // Code compiled by loadstring runs in the same read-only globals.
    let compiled = c.call(&resp(&["EVAL", "return loadstring('redis = nil')()", "0"])).await;
    assert!(
        compiled.starts_with("-ERR [string \"redis = nil\"]:1: Attempt to modify a readonly table"),
        "{compiled}"
    );
    assert!(c.call(&resp(&["EVAL", "return type(getfenv)", "0"])).await.starts_with("-ERR"), "no getfenv");
    assert!(c.call(&resp(&["HSET", "h", "f", "v"])).await.starts_with(':'));
    let wrongtype = c.call(&resp(&["EVAL", "return redis.call('incr', 'h')", "0"])).await;
    assert!(
        wrongtype.starts_with("-WRONGTYPE Operation against a key holding the wrong kind of value script: "),
        "{wrongtype}"
    );
    assert_eq!(
        c.call(&resp(&["EVAL", "local r = redis.pcall('incr', 'h') return r.err", "0"])).await,
        "$65\r\nWRONGTYPE Operation against a key holding the wrong kind of value\r\n"
    );
    let nested = c.call(&resp(&["EVAL", "return redis.call('eval', 'return 1', 0)", "0"])).await;
    assert!(nested.starts_with("-ERR This Redis command is not allowed from script script: "), "{nested}");
    let ro = c.call(&resp(&["EVAL_RO", "return redis.call('del', KEYS[1])", "1", "n"])).await;
    assert!(ro.starts_with("-ERR Write commands are not allowed from read-only scripts. script: "), "{ro}");
    // SCRIPT LOAD, EXISTS, EVALSHA, FLUSH.
    let sha = c.call(&resp(&["SCRIPT", "LOAD", "return 'hi'"])).await;
    let sha = sha.lines().nth(1).unwrap().to_string();
    assert_eq!(sha.len(), 40);
    assert_eq!(c.call(&resp(&["EVALSHA", &sha.to_uppercase(), "0"])).await, "$2\r\nhi\r\n");
    assert_eq!(c.call(&resp(&["SCRIPT", "EXISTS", &sha, "abc"])).await, "*2\r\n:1\r\n:0\r\n");
    assert_eq!(c.call(&resp(&["SCRIPT", "FLUSH", "ASYNC"])).await, "+OK\r\n");
    assert_eq!(c.call(&resp(&["SCRIPT", "EXISTS", &sha])).await, "*1\r\n:0\r\n");
    assert_eq!(c.call(&resp(&["SCRIPT", "KILL"])).await, "-NOTBUSY No scripts in execution right now.\r\n");
    assert_eq!(
        c.call(&resp(&["SCRIPT", "FLUSH", "NOW"])).await,
        "-ERR SCRIPT FLUSH only support SYNC|ASYNC option\r\n"
    );
    assert_eq!(
        c.call(&resp(&["EVAL", "return 1"])).await,
        "-ERR wrong number of arguments for 'eval' command\r\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_effects_reach_the_replica_as_one_transaction() {
    let primary = TestServer::start().await;
    let replica = TestServer::replica_of(primary.addr, "").await;
    let mut p = primary.conn().await;
    let r = replica.conn().await;
    let linked = eventually(WAIT, || {
        let mut r = r.clone();
        async move {
            let info: String = redis::cmd("INFO").arg("replication").query_async(&mut r).await.unwrap();
            info.contains("master_link_status:up")
        }
    })
    .await;
    assert!(linked);
    // A replica that watches the stream sees MULTI, the script's writes, EXEC: never EVAL.
    let mut monitor = replica.raw().await;
    monitor.send(&resp(&["MONITOR"])).await;
    assert_eq!(monitor.reply().await, "+OK\r\n");
    let script = "redis.call('set', KEYS[1], 1) redis.call('set', KEYS[2], 2) redis.call('incr', KEYS[1]) return redis.call('mget', KEYS[1], KEYS[2], KEYS[3])";
    let got = q(&mut p, &["EVAL", script, "3", "a{s}", "b{s}", "c{s}"]).await;
    assert_eq!(got, Value::Array(vec![bulk("2"), bulk("2"), Value::Nil]));
    let seen = eventually(WAIT, || {
        let mut r = r.clone();
        async move { q(&mut r, &["MGET", "a{s}", "b{s}"]).await == Value::Array(vec![bulk("2"), bulk("2")]) }
    })
    .await;
    assert!(seen, "the script's writes reached the replica");
    let mut lines = Vec::new();
    while lines.len() < 8 && !lines.last().is_some_and(|l: &String| l.contains("\"EXEC\"")) {
        lines.push(monitor.reply().await);
    }
    let text = lines.join("");
    assert!(!text.to_lowercase().contains("\"eval\""), "the script text is not replicated: {text}");
    let order: Vec<&str> = ["\"MULTI\"", "\"set\"", "\"set\"", "\"incr\"", "\"EXEC\""].to_vec();
    let mut at = 0;
    for word in order {
        let found = text[at..].to_lowercase().find(&word.to_lowercase()).map(|i| i + at);
        assert!(found.is_some(), "{word} after {at} in {text}");
        at = found.unwrap() + 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_through_the_proxy_follow_their_keys() {
    let all = crate::all::start("").await;
    let mut c = crate::cluster::conn_to(all.proxy).await;
    // The redis crate's Script: EVALSHA, NOSCRIPT, then EVAL, then EVALSHA again.
    let script = redis::Script::new("return redis.call('incrby', KEYS[1], ARGV[1])");
    for want in [5, 10] {
        let n: i64 = script.key("counter").arg(5).invoke_async(&mut c).await.unwrap();
        assert_eq!(n, want);
    }
    assert_eq!(q(&mut c, &["GET", "counter"]).await, bulk("10"));
    // SCRIPT LOAD reaches every write shard: EVALSHA works whichever one its keys pick.
    let sha = match q(&mut c, &["SCRIPT", "LOAD", "return redis.call('get', KEYS[1])"]).await {
        Value::BulkString(b) => String::from_utf8(b).unwrap(),
        other => panic!("{other:?}"),
    };
    for key in ["counter", "a", "b", "c", "d", "e"] {
        let got = q(&mut c, &["EVALSHA", &sha, "1", key]).await;
        assert!(matches!(got, Value::BulkString(_) | Value::Nil), "{key}: {got:?}");
    }
    assert_eq!(q(&mut c, &["SCRIPT", "EXISTS", &sha]).await, Value::Array(vec![int(1)]));
    // Keys in several slots: CROSSSLOT, declared or touched.
    assert!(err(&mut c, &["EVAL", "return 1", "2", "a", "b"]).await.starts_with("CROSSSLOT"));
    let undeclared =
        err(&mut c, &["EVAL", "redis.call('set', KEYS[1], 1) return redis.call('set', 'zz', 1)", "1", "a"])
            .await;
    assert!(undeclared.contains("Script attempted to access"), "{undeclared}");
    assert_eq!(q(&mut c, &["SCRIPT", "FLUSH"]).await, Value::Okay);
    assert_eq!(q(&mut c, &["SCRIPT", "EXISTS", &sha]).await, Value::Array(vec![int(0)]));
    // Declared flags: no-cluster refuses to run here; allow-cross-slot-keys lets a script
    // touch keys of other slots its shard serves (slots 10923.. are the third shard's).
    let refused = err(&mut c, &["EVAL", "#!lua flags=no-cluster\nreturn 1", "0"]).await;
    assert_eq!(refused, "ERR Can not run script on cluster, 'no-cluster' flag is set.");
    let slot_a = rust_edis::topology::key_slot(b"a");
    let other = (0..)
        .map(|i| format!("o{i}"))
        .find(|k| {
            let s = rust_edis::topology::key_slot(k.as_bytes());
            s >= 10923 && s != slot_a
        })
        .unwrap();
    let touch = "redis.call('set', KEYS[1], 1) return redis.call('set', ARGV[1], 2)";
    let strict = err(&mut c, &["EVAL", touch, "1", "a", &other]).await;
    assert!(strict.contains("do not hash to the same slot"), "{strict}");
    let relaxed = format!("#!lua flags=allow-cross-slot-keys\n{touch}");
    assert_eq!(q(&mut c, &["EVAL", &relaxed, "1", "a", &other]).await, Value::Okay);
    assert_eq!(q(&mut c, &["GET", &other]).await, bulk("2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_script_makes_others_busy_until_script_kill() {
    let s = TestServer::with_conf("busy-reply-threshold 100\n").await;
    let mut runner = s.raw().await;
    runner.send(&resp(&["EVAL", "while true do end", "0"])).await;
    let mut other = s.raw().await;
    // Past the threshold, others get BUSY instead of waiting forever.
    let until = std::time::Instant::now() + WAIT;
    loop {
        let r = other.call(&resp(&["GET", "x"])).await;
        if r.starts_with("-BUSY") {
            assert_eq!(
                r,
                "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n"
            );
            break;
        }
        assert!(std::time::Instant::now() < until, "never BUSY: {r}");
    }
    assert_eq!(other.call(&resp(&["SCRIPT", "KILL"])).await, "+OK\r\n");
    let killed = runner.reply().await;
    assert!(killed.starts_with("-ERR Script killed by user with SCRIPT KILL... script: "), "{killed}");
    assert_eq!(other.call(&resp(&["PING"])).await, "+PONG\r\n");
    // A script that wrote cannot be killed: it runs to its end.
    // (It runs for about a second, by the server's clock.)
    let wrote = "redis.call('set', 'w', 1) local s = tonumber(redis.call('TIME')[1]) \
                 while tonumber(redis.call('TIME')[1]) < s + 2 do end return 7";
    runner.send(&resp(&["EVAL", wrote, "0"])).await;
    let until = std::time::Instant::now() + WAIT;
    loop {
        let r = other.call(&resp(&["SCRIPT", "KILL"])).await;
        if r.starts_with("-UNKILLABLE") {
            break;
        }
        assert!(r.starts_with("-NOTBUSY") && std::time::Instant::now() < until, "{r}");
    }
    assert_eq!(runner.reply().await, ":7\r\n");
    assert_eq!(other.call(&resp(&["GET", "w"])).await, "$1\r\n1\r\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_s_writes_survive_kill_9_all_or_none() {
    use crate::persistence::{connect, spawn_with};
    let dir = temp_dir("script-aof");
    let flags = ["--appendonly", "yes", "--appendfsync", "always"];
    let proc = spawn_with(&dir, "write", &flags).await;
    let c = connect(proc.port).await.unwrap();
    // Each run adds 1 to three keys (one slot); kill -9 lands somewhere among the runs.
    let script = "for _, k in ipairs(KEYS) do redis.call('incr', k) end return redis.call('get', KEYS[1])";
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let port = proc.port;
    let runner = tokio::spawn(async move {
        let Some(mut c) = connect(port).await else { return 0 };
        let mut acked = 0i64;
        while !*stop.borrow() {
            let r: redis::RedisResult<i64> =
                cmd(&["EVAL", script, "3", "a{s}", "b{s}", "c{s}"]).query_async(&mut c).await;
            match r {
                Ok(n) => acked = n,
                Err(_) => break,
            }
        }
        acked
    });
    let started = eventually(WAIT, || {
        let mut c = c.clone();
        async move { q(&mut c, &["EXISTS", "a{s}"]).await == int(1) }
    })
    .await;
    assert!(started);
    // Some runs in the file first.
    let some = eventually(WAIT, || {
        let mut c = c.clone();
        async move {
            let r: redis::RedisResult<i64> = cmd(&["GET", "a{s}"]).query_async(&mut c).await;
            r.is_ok_and(|n| n >= 50)
        }
    })
    .await;
    assert!(some);
    drop(c);
    drop(proc); // SIGKILL, mid-stream
    let _ = stop_tx.send(true);
    let acked = runner.await.unwrap();
    // The file holds what the scripts did, each run as one transaction; never a script.
    let aof = std::fs::read(dir.join("appendonly.aof")).unwrap();
    let text = String::from_utf8_lossy(&aof).to_lowercase();
    assert!(!text.contains("eval"), "a script in the AOF");
    assert!(text.matches("multi").count() >= 50 && text.contains("incr"), "{} bytes", aof.len());
    let back = spawn_with(&dir, "write", &flags).await;
    let mut c = connect(back.port).await.unwrap();
    let got = q(&mut c, &["MGET", "a{s}", "b{s}", "c{s}"]).await;
    let Value::Array(values) = got else { panic!("{got:?}") };
    let counts: Vec<i64> = values
        .iter()
        .map(|v| match v {
            Value::BulkString(b) => std::str::from_utf8(b).unwrap().parse().unwrap(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(counts.iter().all(|&n| n == counts[0]), "a run came back in part: {counts:?}");
    assert!(counts[0] >= acked, "an acknowledged run was lost: {} < {acked}", counts[0]);
}

const COUNTER_LIB: &str = "#!lua name=counter\n\
    redis.register_function('bump', function(keys, args) return redis.call('incrby', keys[1], args[1]) end)\n\
    redis.register_function{function_name='peek', callback=function(keys) return redis.call('get', keys[1]) end, flags={'no-writes'}}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_load_run_list_and_fail_as_redis_does() {
    let s = TestServer::start().await;
    let mut c = s.conn().await;
    assert_eq!(q(&mut c, &["FUNCTION", "LOAD", COUNTER_LIB]).await, bulk("counter"));
    assert_eq!(q(&mut c, &["FCALL", "bump", "1", "n", "5"]).await, int(5));
    assert_eq!(q(&mut c, &["FCALL_RO", "peek", "1", "n"]).await, bulk("5"));
    let cases: &[(&[&str], &str)] = &[
        (&["FCALL_RO", "bump", "1", "n", "1"], "Can not execute a script with write flag using *_ro command."),
        (&["FCALL", "nosuch", "0"], "Function not found"),
        (&["FCALL", "bump", "x"], "Bad number of keys provided"),
        (&["FCALL", "bump", "3", "a"], "Number of keys can't be greater than number of args"),
        (&["FUNCTION", "LOAD", COUNTER_LIB], "Library 'counter' already exists"),
        (&["FUNCTION", "LOAD", "return 1"], "Missing library metadata"),
        (&["FUNCTION", "LOAD", "#!lua name=x\nreturn 1"], "No functions registered"),
        (&["FUNCTION", "LOAD", "#!py name=x\nreturn 1"], "Engine 'py' not found"),
        (
            &["FUNCTION", "LOAD", "#!lua name=x\nredis.call('ping')"],
            "Error registering functions: ERR user_function:2: Script attempted to access nonexistent global variable 'call'",
        ),
        (
            &["FUNCTION", "LOAD", "#!lua name=other\nredis.register_function('bump', function() return 1 end)"],
            "Function bump already exists",
        ),
        (&["FUNCTION", "DELETE", "nosuch"], "Library not found"),
        (&["FUNCTION", "RESTORE", "junk"], "DUMP payload version or checksum are wrong"),
    ];
    for (args, want) in cases {
        let got = err(&mut c, args).await;
        assert!(got.contains(want), "{args:?}: {got}");
    }
    // Library code that runs too long is stopped (500 ms, as Redis).
    let mut raw = s.raw().await;
    assert_eq!(
        raw.call(&resp(&["FUNCTION", "LOAD", "#!lua name=x\nwhile true do end"])).await,
        "-ERR Error registering functions: ERR FUNCTION LOAD timeout\r\n"
    );
    // A function's error names it and its line; one that writes under no-writes is refused.
    let ro = "#!lua name=ro\nredis.register_function{function_name='w', callback=function(keys)\n\
              return redis.call('set', keys[1], 1) end, flags={'no-writes'}}";
    assert_eq!(q(&mut c, &["FUNCTION", "LOAD", ro]).await, bulk("ro"));
    let refused = err(&mut c, &["FCALL", "w", "1", "k"]).await;
    assert_eq!(
        refused,
        "ERR Write commands are not allowed from read-only scripts. script: w, on @user_function:3."
    );
    // LIST, DUMP, FLUSH, RESTORE: the libraries come back as they were.
    let list = q(&mut c, &["FUNCTION", "LIST", "LIBRARYNAME", "count*", "WITHCODE"]).await;
    let text = format!("{list:?}");
    assert!(text.contains("counter") && text.contains("peek") && text.contains("no-writes"), "{text}");
    assert!(!text.contains("\"ro\""), "{text}");
    let dump = match q(&mut c, &["FUNCTION", "DUMP"]).await {
        Value::BulkString(b) => b,
        other => panic!("{other:?}"),
    };
    assert_eq!(q(&mut c, &["FUNCTION", "FLUSH"]).await, Value::Okay);
    assert!(err(&mut c, &["FCALL", "bump", "1", "n", "1"]).await.contains("Function not found"));
    let restored: Value = redis::cmd("FUNCTION").arg("RESTORE").arg(&dump).query_async(&mut c).await.unwrap();
    assert_eq!(restored, Value::Okay);
    assert_eq!(q(&mut c, &["FCALL", "bump", "1", "n", "1"]).await, int(6));
    let again: Result<Value, _> = redis::cmd("FUNCTION").arg("RESTORE").arg(&dump).query_async(&mut c).await;
    assert!(format!("{again:?}").contains("already exists"), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_reach_replicas_and_survive_a_restart() {
    let dir = temp_dir("functions");
    let conf = format!("dir \"{}\"\nappendonly yes\nappendfsync always\n", dir.display());
    let primary = TestServer::with_conf(&conf).await;
    let replica = TestServer::replica_of(primary.addr, "").await;
    let mut p = primary.conn().await;
    assert_eq!(q(&mut p, &["FUNCTION", "LOAD", COUNTER_LIB]).await, bulk("counter"));
    assert_eq!(q(&mut p, &["FCALL", "bump", "1", "n", "3"]).await, int(3));
    // The replica runs the library (FUNCTION LOAD went down the stream), read-only.
    let r = replica.conn().await;
    let replicated = eventually(WAIT, || {
        let mut r = r.clone();
        async move {
            matches!(
                redis::cmd("FCALL_RO").arg("peek").arg(1).arg("n").query_async::<Value>(&mut r).await,
                Ok(v) if v == bulk("3")
            )
        }
    })
    .await;
    assert!(replicated, "FCALL_RO on the replica");
    let mut r = replica.conn().await;
    assert!(err(&mut r, &["FCALL", "bump", "1", "n", "1"]).await.starts_with("READONLY"));
    // SCRIPT LOAD reaches it too, so EVALSHA_RO works there.
    let sha = match q(&mut p, &["SCRIPT", "LOAD", "return redis.call('get', KEYS[1])"]).await {
        Value::BulkString(b) => String::from_utf8(b).unwrap(),
        other => panic!("{other:?}"),
    };
    // Whether the replica's script cache comes to say `exists` (0 or 1) for the script.
    let watcher = r.clone();
    let replica_says = |exists: i64| {
        let (r, sha) = (watcher.clone(), sha.clone());
        eventually(WAIT, move || {
            let (mut r, sha) = (r.clone(), sha.clone());
            async move { q(&mut r, &["SCRIPT", "EXISTS", &sha]).await == Value::Array(vec![int(exists)]) }
        })
    };
    let cached = replica_says(1).await;
    assert!(cached, "SCRIPT LOAD reached the replica");
    assert_eq!(q(&mut r, &["EVALSHA_RO", &sha, "1", "n"]).await, bulk("3"));
    // And SCRIPT FLUSH empties its cache too.
    assert_eq!(q(&mut p, &["SCRIPT", "FLUSH"]).await, Value::Okay);
    let flushed = replica_says(0).await;
    assert!(flushed, "SCRIPT FLUSH reached the replica");
    // Stopped and started again in the same directory: the library is back (AOF).
    primary.stop().await;
    let again = TestServer::with_conf(&conf).await;
    let mut p = again.conn().await;
    assert_eq!(q(&mut p, &["FCALL", "bump", "1", "n", "1"]).await, int(4));
    // And from the RDB, after a SAVE and a restart.
    assert_eq!(q(&mut p, &["SAVE"]).await, Value::Okay);
    again.stop().await;
    let from_rdb = TestServer::with_conf(&format!("dir \"{}\"\n", dir.display())).await;
    let mut p = from_rdb.conn().await;
    assert_eq!(q(&mut p, &["FCALL_RO", "peek", "1", "n"]).await, bulk("4"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_through_the_proxy_on_every_shard() {
    let all = crate::all::start("").await;
    let mut c = crate::cluster::conn_to(all.proxy).await;
    assert_eq!(q(&mut c, &["FUNCTION", "LOAD", COUNTER_LIB]).await, bulk("counter"));
    // Keys on every write shard; reads through FCALL_RO go to read shards.
    for (i, key) in ["a", "b", "c", "d", "e", "f", "g", "h"].iter().enumerate() {
        assert_eq!(q(&mut c, &["FCALL", "bump", "1", key, &(i + 1).to_string()]).await, int(i as i64 + 1));
        assert_eq!(q(&mut c, &["FCALL_RO", "peek", "1", key]).await, bulk(&(i + 1).to_string()));
    }
    assert!(err(&mut c, &["FCALL", "bump", "2", "a", "b", "1"]).await.starts_with("CROSSSLOT"));
    // EVALSHA_RO after SCRIPT LOAD, wherever it lands.
    let sha = match q(&mut c, &["SCRIPT", "LOAD", "return redis.call('get', KEYS[1])"]).await {
        Value::BulkString(b) => String::from_utf8(b).unwrap(),
        other => panic!("{other:?}"),
    };
    for key in ["a", "b", "c", "d", "e", "f", "g", "h"] {
        assert!(matches!(q(&mut c, &["EVALSHA_RO", &sha, "1", key]).await, Value::BulkString(_)), "{key}");
    }
    assert_eq!(q(&mut c, &["FUNCTION", "DELETE", "counter"]).await, Value::Okay);
    for key in ["a", "b", "c", "d", "e", "f"] {
        assert!(err(&mut c, &["FCALL", "bump", "1", key, "1"]).await.contains("Function not found"), "{key}");
    }
}

/// The libraries Redis bundles, with outputs taken from redis-server 7.0.
#[tokio::test]
async fn bundled_libraries_answer_as_redis_s() {
    let s = TestServer::start().await;
    let mut c = s.raw().await;
    let cases: &[(&str, &str)] = &[
        ("return bit.tohex(bit.bxor(0xff, bit.lshift(1, 4)))", "$8\r\n000000ef\r\n"),
        (
            "return {bit.tobit(2^32+5), bit.arshift(-256, 4), bit.rol(1, 33), bit.bswap(0x12345678)}",
            "*4\r\n:5\r\n:-16\r\n:2\r\n:2018915346\r\n",
        ),
        (
            "return cjson.encode({1, 'x/y', 1.5, true, {a=cjson.null}})",
            "$30\r\n[1,\"x\\/y\",1.5,true,{\"a\":null}]\r\n",
        ),
        ("return hex(cjson.decode('{\"k\":[1,{\"x\":\"\\\\u00e9\"}]}').k[2].x)", "$4\r\nc3a9\r\n"),
        ("return cjson.encode(0.1 + 0.2)", "$3\r\n0.3\r\n"),
        ("return hex(struct.pack('>I2 b', 258, -1))", "$6\r\n0102ff\r\n"),
        (
            "return {struct.unpack('<i4 s', struct.pack('<i4 s', -5, 'hi'))}",
            "*3\r\n:-5\r\n$2\r\nhi\r\n:8\r\n",
        ),
        ("return hex(cmsgpack.pack({1, 200, -100, 'a'}))", "$16\r\n9401ccc8d09ca161\r\n"),
        ("return {cmsgpack.unpack(cmsgpack.pack(1, 'two', {3}))}", "*3\r\n:1\r\n$3\r\ntwo\r\n*1\r\n:3\r\n"),
        ("return 1/0", ":-9223372036854775808\r\n"),
    ];
    // Binary results as hex, by a helper the script defines.
    let hex = "local function hex(s) return (s:gsub('.', function(ch) return string.format('%02x', ch:byte()) end)) end ";
    for (script, want) in cases {
        let got = c.call(&resp(&["EVAL", &format!("{hex}{script}"), "0"])).await;
        assert_eq!(got, *want, "{script}");
    }
    let cases: &[(&str, &str)] = &[
        (
            "return cjson.decode('[1 2]')",
            "-ERR user_script:1: Expected comma or array end but found T_NUMBER at character 4 script: ",
        ),
        (
            "return cjson.encode({[1]=1,[100]=2})",
            "-ERR user_script:1: Cannot serialise table: excessively sparse array script: ",
        ),
        ("return cmsgpack.unpack('\\146\\1')", "-ERR user_script:1: Missing bytes in input. script: "),
        ("cjson.encode = nil", "-ERR user_script:1: Attempt to modify a readonly table script: "),
    ];
    for (script, want) in cases {
        let got = c.call(&resp(&["EVAL", script, "0"])).await;
        assert!(got.starts_with(want), "{script}: {got}");
    }
}

/// RESP3 both ways: redis.setresp(3) gives the script RESP3 shapes, and a script's RESP3
/// values reach a RESP3 client as RESP3 and a RESP2 client as arrays and bulk strings.
#[tokio::test]
async fn scripts_speak_resp3_when_asked() {
    let s = TestServer::start().await;
    let mut c = s.raw().await;
    c.call(&resp(&["HSET", "h", "a", "1"])).await;
    c.call(&resp(&["ZADD", "z", "1.5", "m"])).await;
    let inside =
        "redis.setresp(3) local h = redis.call('hgetall', 'h') local d = redis.call('zscore', 'z', 'm') \
                  local n = redis.call('get', 'nosuch') return {h.map.a, tostring(d.double), type(n)}";
    assert_eq!(c.call(&resp(&["EVAL", inside, "0"])).await, "*3\r\n$1\r\n1\r\n$3\r\n1.5\r\n$3\r\nnil\r\n");
    let shapes = "return {{map={a=1}}, {set={x=true}}, {double=2.5}, {big_number='123'}}";
    assert_eq!(
        c.call(&resp(&["EVAL", shapes, "0"])).await,
        "*4\r\n*2\r\n$1\r\na\r\n:1\r\n*1\r\n$1\r\nx\r\n$3\r\n2.5\r\n$3\r\n123\r\n"
    );
    assert!(c.call(&resp(&["HELLO", "3"])).await.starts_with('%'));
    assert_eq!(
        c.call(&resp(&["EVAL", shapes, "0"])).await,
        "*4\r\n%1\r\n$1\r\na\r\n:1\r\n~1\r\n$1\r\nx\r\n,2.5\r\n(123\r\n"
    );
    assert_eq!(
        c.call(&resp(&["EVAL", "redis.setresp(3) return redis.call('zscore', 'z', 'm')", "0"])).await,
        ",1.5\r\n"
    );
    assert!(c
        .call(&resp(&["EVAL", "redis.setresp(4)", "0"]))
        .await
        .starts_with("-ERR RESP version must be 2 or 3. script: "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_function_is_named_by_function_stats_and_stopped_by_function_kill() {
    let s = TestServer::with_conf("busy-reply-threshold 100\n").await;
    let mut runner = s.raw().await;
    let lib = "#!lua name=inf\nredis.register_function('inf', function(keys, args) while true do end end)";
    assert_eq!(runner.call(&resp(&["FUNCTION", "LOAD", lib])).await, "$3\r\ninf\r\n");
    runner.send(&resp(&["FCALL", "inf", "1", "k", "a"])).await;
    let mut other = s.raw().await;
    let until = std::time::Instant::now() + WAIT;
    let stats = loop {
        let r = other.call(&resp(&["FUNCTION", "STATS"])).await;
        if r.contains("duration_ms") {
            break r;
        }
        assert!(std::time::Instant::now() < until, "never busy: {r}");
    };
    assert!(
        stats.contains("$4\r\nname\r\n$3\r\ninf\r\n$7\r\ncommand\r\n*5\r\n$5\r\nFCALL\r\n$3\r\ninf\r\n"),
        "{stats}"
    );
    assert_eq!(
        other.call(&resp(&["SCRIPT", "KILL"])).await,
        "-BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.\r\n"
    );
    assert_eq!(other.call(&resp(&["FUNCTION", "KILL"])).await, "+OK\r\n");
    assert_eq!(
        runner.reply().await,
        "-ERR Script killed by user with SCRIPT KILL... script: inf, on @user_function:2.\r\n"
    );
    assert!(other.call(&resp(&["FUNCTION", "STATS"])).await.contains("$14\r\nrunning_script\r\n$-1\r\n"));
}

/// Whether the process ends within 5 s.
async fn exits(proc: &mut crate::persistence::Proc) -> bool {
    for _ in 0..200 {
        if proc.child.try_wait().ok().flatten().is_some() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

/// SHUTDOWN ends a server process as Redis's does: saving first when save points are set,
/// and SHUTDOWN NOSAVE gets through while a script keeps the server busy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_saves_and_gets_through_a_busy_script() {
    use crate::persistence::{connect, spawn_with};
    let dir = temp_dir("shutdown");
    let mut proc = spawn_with(&dir, "write", &[]).await;
    let mut c = connect(proc.port).await.unwrap();
    assert_eq!(q(&mut c, &["SET", "kept", "1"]).await, Value::Okay);
    assert_eq!(q(&mut c, &["CONFIG", "SET", "save", "3600 1"]).await, Value::Okay);
    assert_eq!(err(&mut c, &["SHUTDOWN", "ABORT"]).await, "ERR No shutdown in progress.");
    assert_eq!(err(&mut c, &["SHUTDOWN", "SAVE", "NOSAVE"]).await, "ERR syntax error");
    let mut raw = Raw::connect(([127, 0, 0, 1], proc.port).into()).await;
    raw.send(&resp(&["SHUTDOWN"])).await;
    assert!(raw.closed().await, "no reply: the connection closes");
    assert!(exits(&mut proc).await, "the process ended");
    assert!(dir.join("dump.rdb").exists(), "saved on the way out");
    drop(proc);
    // Back with its data; then a script that never ends, and SHUTDOWN NOSAVE still works.
    let mut proc = spawn_with(&dir, "write", &[]).await;
    let mut c = connect(proc.port).await.unwrap();
    assert_eq!(q(&mut c, &["GET", "kept"]).await, bulk("1"));
    assert_eq!(q(&mut c, &["CONFIG", "SET", "busy-reply-threshold", "100"]).await, Value::Okay);
    let mut runner = Raw::connect(([127, 0, 0, 1], proc.port).into()).await;
    runner.send(&resp(&["EVAL", "while true do end", "0"])).await;
    let mut other = Raw::connect(([127, 0, 0, 1], proc.port).into()).await;
    let until = std::time::Instant::now() + WAIT;
    while !other.call(&resp(&["PING"])).await.starts_with("-BUSY") {
        assert!(std::time::Instant::now() < until, "never BUSY");
    }
    assert!(other.call(&resp(&["SHUTDOWN"])).await.starts_with("-BUSY"), "a plain SHUTDOWN waits its turn");
    other.send(&resp(&["SHUTDOWN", "NOSAVE"])).await;
    assert!(exits(&mut proc).await, "SHUTDOWN NOSAVE ended the busy process");
    // --role all: SHUTDOWN through its proxy ends the whole process.
    let mut all = spawn_with(&temp_dir("shutdown-all"), "all", &[]).await;
    let mut raw = Raw::connect(([127, 0, 0, 1], all.port).into()).await;
    raw.send(&resp(&["SHUTDOWN"])).await;
    assert!(raw.closed().await);
    assert!(exits(&mut all).await, "SHUTDOWN through the proxy ended --role all");
}

/// A write shard that joins after libraries were loaded takes them from a peer, so FCALL
/// works on its slots too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_shard_that_joins_later_takes_the_libraries() {
    use crate::cluster::{member, start_node, Kind};
    let base = temp_dir("functions-join");
    let info = start_node(Kind::Info, base.join("info"), None, "write-shards 2\n").await;
    let first = start_node(Kind::Write, base.join("w0"), Some(info.addr), "").await;
    let mut c = member(first.addr).await;
    assert_eq!(c.call(&resp(&["FUNCTION", "LOAD", COUNTER_LIB])).await, "$7\r\ncounter\r\n");
    let later = start_node(Kind::Write, base.join("w1"), Some(info.addr), "").await;
    let mut l = member(later.addr).await;
    let until = std::time::Instant::now() + WAIT;
    loop {
        let list = l.call(&resp(&["FUNCTION", "LIST"])).await;
        if list.contains("counter") {
            break;
        }
        assert!(std::time::Instant::now() < until, "never took the library: {list}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A key of the later shard's slots (slot 16383 is the last shard's).
    let key =
        (0..).map(|i| format!("k{i}")).find(|k| rust_edis::topology::key_slot(k.as_bytes()) > 8192).unwrap();
    // (The library may come before the shard's slots do: CLUSTERDOWN until they have.)
    let got = l.call(&resp(&["FCALL", "bump", "1", &key, "2"])).await;
    assert!(got == ":2\r\n" || got.starts_with("-MOVED") || got.starts_with("-CLUSTERDOWN"), "{got}");
    let served = eventually(WAIT, || {
        let addr = later.addr;
        let key = key.clone();
        async move { member(addr).await.call(&resp(&["FCALL_RO", "peek", "1", &key])).await.starts_with('$') }
    })
    .await;
    assert!(served, "FCALL_RO of the library on the later shard's own key");
}

/// Redis's default save points: --role all stopped with Ctrl-C (SIGINT) saves, and started
/// again in the same directory has every key back; SHUTDOWN NOSAVE does not save.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_saves_with_the_default_save_points() {
    use crate::persistence::{connect, spawn_with};
    let dir = temp_dir("ctrl-c");
    let mut all = spawn_with(&dir, "all", &[]).await;
    let mut c = connect(all.port).await.unwrap();
    assert_eq!(
        q(&mut c, &["CONFIG", "GET", "save"]).await,
        Value::Array(vec![bulk("save"), bulk("3600 1 300 100 60 10000")])
    );
    let mut pipe = redis::pipe();
    for i in 0..1000 {
        pipe.cmd("SET").arg(format!("key:{i}")).arg(i).ignore();
    }
    pipe.query_async::<()>(&mut c).await.unwrap();
    assert_eq!(q(&mut c, &["DBSIZE"]).await, int(1000));
    let pid = all.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    assert!(exits(&mut all).await, "Ctrl-C ends --role all");
    drop(all);
    let again = spawn_with(&dir, "all", &[]).await;
    let mut c = connect(again.port).await.unwrap();
    assert_eq!(q(&mut c, &["DBSIZE"]).await, int(1000), "every key back after Ctrl-C");
    assert_eq!(q(&mut c, &["GET", "key:999"]).await, bulk("999"));
    // SHUTDOWN NOSAVE: what changed since is not saved.
    assert_eq!(q(&mut c, &["SET", "late", "1"]).await, Value::Okay);
    let mut raw = Raw::connect(([127, 0, 0, 1], again.port).into()).await;
    raw.send(&resp(&["SHUTDOWN", "NOSAVE"])).await;
    assert!(raw.closed().await);
    let mut again = again;
    assert!(exits(&mut again).await);
    drop(again);
    let third = spawn_with(&dir, "all", &[]).await;
    let mut c = connect(third.port).await.unwrap();
    assert_eq!(q(&mut c, &["DBSIZE"]).await, int(1000), "SHUTDOWN NOSAVE left the last save");
}

/// Out of memory (noeviction): a script that declared flags without allow-oom and may write
/// is refused before it starts; no-writes, allow-oom and flagless scripts run.
#[tokio::test]
async fn scripts_without_allow_oom_do_not_start_when_out_of_memory() {
    let s = TestServer::start().await;
    let mut c = s.raw().await;
    assert_eq!(c.call(&resp(&["CONFIG", "SET", "maxmemory", "1"])).await, "+OK\r\n");
    let oom = "-OOM command not allowed when used memory > 'maxmemory'.\r\n";
    assert_eq!(c.call(&resp(&["EVAL", "#!lua\nreturn 1", "0"])).await, oom);
    assert_eq!(c.call(&resp(&["EVAL", "#!lua flags=no-writes\nreturn 1", "0"])).await, ":1\r\n");
    assert_eq!(c.call(&resp(&["EVAL", "#!lua flags=allow-oom\nreturn 1", "0"])).await, ":1\r\n");
    assert_eq!(c.call(&resp(&["EVAL", "return 1", "0"])).await, ":1\r\n");
    let inside = c.call(&resp(&["EVAL", "return redis.call('set', 'x', '1')", "0"])).await;
    assert!(inside.starts_with("-OOM command not allowed"), "{inside}");
}

/// INFO memory counts the cached scripts, the function libraries and their interpreters.
#[tokio::test]
async fn info_memory_counts_scripts_and_functions() {
    let s = TestServer::start().await;
    let mut c = s.conn().await;
    let memory = |c: &mut redis::aio::MultiplexedConnection| {
        let mut c = c.clone();
        async move {
            let mut values = [0; 5];
            let fields = [
                "number_of_cached_scripts",
                "used_memory_lua",
                "number_of_libraries",
                "number_of_functions",
                "used_memory_vm_functions",
            ];
            for (value, field) in values.iter_mut().zip(fields) {
                *value = info_text(&mut c, "memory", field).await.parse::<i64>().unwrap();
            }
            values
        }
    };
    assert_eq!(memory(&mut c).await, [0, 0, 0, 0, 0], "nothing started");
    q(&mut c, &["EVAL", "return 1", "0"]).await;
    q(&mut c, &["SCRIPT", "LOAD", "return 2"]).await;
    q(&mut c, &["FUNCTION", "LOAD", COUNTER_LIB]).await;
    let [scripts, lua, libraries, functions, vm] = memory(&mut c).await;
    assert_eq!((scripts, libraries, functions), (2, 1, 2));
    assert!(lua > 0 && vm > 0, "{lua} {vm}");
    q(&mut c, &["SCRIPT", "FLUSH"]).await;
    q(&mut c, &["FUNCTION", "FLUSH"]).await;
    assert_eq!(memory(&mut c).await, [0, 0, 0, 0, 0], "all flushed");
}
