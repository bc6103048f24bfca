//! Server commands: INFO CONFIG COMMAND TIME FUNCTION/SCRIPT FLUSH.

use redis::Value;

use crate::harness::*;

async fn info(c: &mut redis::aio::MultiplexedConnection, args: &[&str]) -> String {
    let mut cmd = redis::cmd("INFO");
    for a in args {
        cmd.arg(*a);
    }
    cmd.query_async(c).await.unwrap()
}

fn field(info: &str, name: &str) -> String {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in {info}"))
        .trim()
        .to_string()
}

#[tokio::test]
async fn info_sections() {
    let s = TestServer::start().await;
    let mut c = s.conn().await;
    q(&mut c, &["SET", "a", "1", "EX", "100"]).await;
    q(&mut c, &["SET", "b", "1"]).await;
    q(&mut c, &["GET", "a"]).await;
    q(&mut c, &["GET", "nokey"]).await;
    let all = info(&mut c, &[]).await;
    for section in ["# Server", "# Clients", "# Memory", "# Stats", "# Replication", "# Keyspace"] {
        assert!(all.contains(section), "{section} missing");
    }
    assert_eq!(field(&all, "redis_version"), "7.0.15");
    assert_eq!(field(&all, "tcp_port"), s.addr.port().to_string());
    assert_eq!(field(&all, "role"), "master");
    assert_eq!(field(&all, "redis_mode"), "standalone");
    assert_eq!(field(&all, "cluster_enabled"), "0");
    let db0 = field(&all, "db0");
    let avg_ttl: u64 = db0.strip_prefix("keys=2,expires=1,avg_ttl=").expect(&db0).parse().unwrap();
    assert!((90_000..=100_000).contains(&avg_ttl), "{db0}");
    assert_eq!(field(&all, "keyspace_hits"), "1");
    assert_eq!(field(&all, "keyspace_misses"), "1");
    assert_eq!(field(&all, "connected_clients"), "1");
    assert!(field(&all, "used_memory").parse::<u64>().unwrap() > 0);
    assert_eq!(field(&all, "master_replid").len(), 40);
    let keyspace = info(&mut c, &["keyspace"]).await;
    assert!(!keyspace.contains("# Server") && keyspace.contains("# Keyspace"));
    let two = info(&mut c, &["clients", "STATS"]).await;
    assert!(two.contains("# Clients") && two.contains("# Stats") && !two.contains("# Memory"));
    assert!(info(&mut c, &["nosuchsection"]).await.is_empty());
}

#[tokio::test]
async fn config_get_set_resetstat() {
    let s = TestServer::start().await;
    let mut c = s.conn().await;
    let Value::Array(pairs) = q(&mut c, &["CONFIG", "GET", "maxmemory*"]).await else { panic!() };
    assert_eq!(pairs.len(), 6);
    assert_eq!(q(&mut c, &["CONFIG", "GET", "nosuchparam"]).await, Value::Array(vec![]));
    // What redis-benchmark and client libraries send at start-up.
    assert_eq!(q(&mut c, &["CONFIG", "GET", "save"]).await, Value::Array(vec![bulk("save"), bulk("")]));
    assert_eq!(
        q(&mut c, &["CONFIG", "GET", "appendonly"]).await,
        Value::Array(vec![bulk("appendonly"), bulk("no")])
    );
    assert_eq!(q(&mut c, &["CONFIG", "SET", "hash-max-ziplist-entries", "256"]).await, Value::Okay);
    assert_eq!(
        q(&mut c, &["CONFIG", "GET", "hash-max-listpack-entries"]).await,
        Value::Array(vec![bulk("hash-max-listpack-entries"), bulk("256")])
    );
    // A limit far above what the test process holds (maxmemory now evicts or refuses: this
    // server shares its process's heap with the other tests).
    assert_eq!(q(&mut c, &["CONFIG", "SET", "save", "", "maxmemory", "10gb"]).await, Value::Okay);
    assert_eq!(
        q(&mut c, &["CONFIG", "GET", "maxmemory"]).await,
        Value::Array(vec![bulk("maxmemory"), bulk("10737418240")])
    );
    let Value::Array(two) = q(&mut c, &["CONFIG", "GET", "port", "databases"]).await else { panic!() };
    assert_eq!(two, vec![bulk("port"), bulk("6379"), bulk("databases"), bulk("16")]);
    assert_eq!(
        err(&mut c, &["CONFIG", "SET", "nosuchparam", "1"]).await,
        "ERR Unknown option or number of arguments for CONFIG SET - 'nosuchparam'"
    );
    assert_eq!(
        err(&mut c, &["CONFIG", "SET", "hz", "fast"]).await,
        "ERR CONFIG SET failed (possibly related to argument 'hz') - argument couldn't be parsed into an integer"
    );
    assert_eq!(
        err(&mut c, &["CONFIG", "SET", "hz"]).await,
        "ERR wrong number of arguments for 'config|set' command"
    );
    assert_eq!(err(&mut c, &["CONFIG", "SET", "hz", "10", "maxmemory"]).await, "ERR syntax error");
    assert_eq!(
        err(&mut c, &["CONFIG", "GET"]).await,
        "ERR wrong number of arguments for 'config|get' command"
    );
    assert_eq!(err(&mut c, &["CONFIG", "FOO"]).await, "ERR unknown subcommand 'FOO'. Try CONFIG HELP.");
    assert_eq!(err(&mut c, &["CONFIG"]).await, "ERR wrong number of arguments for 'config' command");
    q(&mut c, &["SET", "a", "1"]).await;
    assert_eq!(q(&mut c, &["CONFIG", "RESETSTAT"]).await, Value::Okay);
    let stats = info(&mut c, &["stats"]).await;
    assert_eq!(field(&stats, "total_commands_processed"), "1", "only INFO itself since the reset");
}

#[tokio::test]
async fn requirepass_set_at_runtime() {
    let s = TestServer::start().await;
    let mut c = s.conn().await;
    q(&mut c, &["CONFIG", "SET", "requirepass", "pw"]).await;
    let mut raw = s.raw().await;
    assert_eq!(raw.call(&resp(&["PING"])).await, "-NOAUTH Authentication required.\r\n");
    assert_eq!(raw.call(&resp(&["AUTH", "pw"])).await, "+OK\r\n");
}

#[tokio::test]
async fn command_introspection() {
    let s = TestServer::start().await;
    let mut c = s.conn().await;
    let Value::Int(count) = q(&mut c, &["COMMAND", "COUNT"]).await else { panic!() };
    let Value::Array(all) = q(&mut c, &["COMMAND"]).await else { panic!() };
    assert_eq!(all.len() as i64, count);
    let Value::Array(list) = q(&mut c, &["COMMAND", "LIST"]).await else { panic!() };
    assert_eq!(list.len() as i64, count);
    for name in ["get", "set", "mset", "multi", "hello", "config", "scan", "client"] {
        assert!(list.contains(&bulk(name)), "{name} missing from COMMAND LIST");
    }

    let mut raw = s.raw().await;
    let get = raw.call(&resp(&["COMMAND", "INFO", "get", "nosuch"])).await;
    assert!(
        get.starts_with("*2\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n*3\r\n+@read\r\n+@string\r\n+@fast\r\n"),
        "{get}"
    );
    assert!(get.ends_with("$-1\r\n"), "unknown commands are nil: {get}");
    let sub = raw.call(&resp(&["COMMAND", "INFO", "config|get"])).await;
    assert!(sub.contains("config|get") && sub.contains(":-3\r\n"), "{sub}");

    assert_eq!(
        q(&mut c, &["COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"]).await,
        Value::Array(vec![bulk("a"), bulk("b")])
    );
    assert_eq!(q(&mut c, &["COMMAND", "GETKEYS", "get", "k"]).await, Value::Array(vec![bulk("k")]));
    assert_eq!(err(&mut c, &["COMMAND", "GETKEYS", "nosuch", "a"]).await, "ERR Invalid command specified");
    assert_eq!(
        err(&mut c, &["COMMAND", "GETKEYS", "get", "a", "b"]).await,
        "ERR Invalid number of arguments specified for command"
    );
    assert_eq!(
        err(&mut c, &["COMMAND", "GETKEYS", "ping", "a"]).await,
        "ERR The command has no key arguments"
    );
    assert_eq!(
        err(&mut c, &["COMMAND", "GETKEYS", "get"]).await,
        "ERR wrong number of arguments for 'command|getkeys' command"
    );
}

#[tokio::test]
async fn command_docs_shape_for_redis_cli() {
    let s = TestServer::start().await;
    let mut c = s.conn().await;
    let Value::Array(docs) = q(&mut c, &["COMMAND", "DOCS"]).await else {
        panic!("RESP2 map is a flat array")
    };
    let Value::Array(list) = q(&mut c, &["COMMAND", "LIST"]).await else { panic!() };
    assert_eq!(docs.len(), 2 * list.len());
    let Value::Array(set) = q(&mut c, &["COMMAND", "DOCS", "set"]).await else { panic!() };
    assert_eq!(set[0], bulk("set"));
    let Value::Array(fields) = &set[1] else { panic!() };
    let get = |name: &str| fields.chunks(2).find(|p| p[0] == bulk(name)).map(|p| p[1].clone());
    assert_eq!(get("group"), Some(bulk("string")));
    assert_eq!(get("since"), Some(bulk("1.0.0")));
    let Some(Value::Array(args)) = get("arguments") else { panic!("arguments") };
    assert_eq!(args.len(), 5);
    let Value::Array(config) = q(&mut c, &["COMMAND", "DOCS", "config"]).await else { panic!() };
    let Value::Array(fields) = &config[1] else { panic!() };
    let subs = fields.chunks(2).find(|p| p[0] == bulk("subcommands")).map(|p| p[1].clone());
    let Some(Value::Array(subs)) = subs else { panic!("subcommands") };
    assert!(subs.contains(&bulk("config|get")));
}

#[tokio::test]
async fn time_and_script_flushes() {
    let s = TestServer::start().await;
    let mut c = s.conn().await;
    let Value::Array(t) = q(&mut c, &["TIME"]).await else { panic!() };
    let Value::BulkString(secs) = &t[0] else { panic!() };
    let secs: u64 = String::from_utf8(secs.clone()).unwrap().parse().unwrap();
    assert!(secs > 1_700_000_000);
    assert_eq!(q(&mut c, &["FUNCTION", "FLUSH"]).await, Value::Okay);
    assert_eq!(q(&mut c, &["FUNCTION", "FLUSH", "ASYNC"]).await, Value::Okay);
    assert_eq!(q(&mut c, &["SCRIPT", "FLUSH", "sync"]).await, Value::Okay);
    assert_eq!(
        err(&mut c, &["SCRIPT", "FLUSH", "later"]).await,
        "ERR SCRIPT FLUSH only support SYNC|ASYNC option"
    );
    assert_eq!(
        err(&mut c, &["FUNCTION", "FLUSH", "later"]).await,
        "ERR FUNCTION FLUSH only supports SYNC|ASYNC option"
    );
    assert_eq!(q(&mut c, &["FUNCTION", "LIST"]).await, Value::Array(vec![]));
    assert_eq!(
        err(&mut c, &["FUNCTION", "NOSUCH"]).await,
        "ERR unknown subcommand 'NOSUCH'. Try FUNCTION HELP."
    );
}
