//! The `rust-edis` binary: flags, logging, and the role to run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use rust_edis::config::Config;
use tracing::{error, info};

/// The roles a process can run.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Role {
    /// Everything on loopback in one process: info, write and read shards, and the proxy on
    /// --port (the default, for a first run).
    All,
    /// One Redis endpoint for the whole cluster (needs --info).
    Proxy,
    /// The registry: assigns slots to write shards and read shards to write shards.
    Info,
    /// A write shard; without --info, a standalone server that owns every slot.
    Write,
    /// A read shard of a write shard (needs --info).
    Read,
}

#[derive(Debug, Parser)]
#[command(
    name = "rust-edis",
    version,
    about = "A distributed key-value store that speaks the Redis protocol"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,
    /// Which role this process plays.
    #[arg(long, value_enum, default_value = "all")]
    role: Role,
    /// A redis.conf-style configuration file; flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long)]
    bind: Option<String>,
    /// Port to listen on (0: any free port).
    #[arg(long)]
    port: Option<u16>,
    /// Directory where the role keeps its files.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Password clients must AUTH with.
    #[arg(long)]
    requirepass: Option<String>,
    /// The info role's address (write and read roles): joins that cluster.
    #[arg(long, value_name = "HOST:PORT")]
    info: Option<String>,
    /// The host other nodes and clients reach this shard at (default: the bind address).
    #[arg(long)]
    announce_host: Option<String>,
    /// How many write shards info expects; the slots are split evenly among them (info role).
    #[arg(long)]
    write_shards: Option<usize>,
    /// Milliseconds without a heartbeat before info marks a shard failed (info role).
    #[arg(long, value_name = "MS")]
    node_timeout: Option<u64>,
    /// The write shard a read shard follows (default: the one with the fewest read shards).
    #[arg(long, value_name = "HOST:PORT")]
    replica_of: Option<String>,
    /// Password a plain replica gives its primary (the primary's requirepass).
    #[arg(long)]
    masterauth: Option<String>,
    /// User a plain replica authenticates to its primary as (with --masterauth).
    #[arg(long)]
    masteruser: Option<String>,
    /// A file holding the cluster secret that members (shards, proxies) prove themselves
    /// with; info creates <its --dir>/cluster.secret at its first start when none is given.
    #[arg(long, value_name = "FILE")]
    cluster_secret_file: Option<PathBuf>,
    /// Protected mode: with no password, only loopback clients may connect (yes or no).
    #[arg(long)]
    protected_mode: Option<String>,
    /// Who may run DEBUG: no (Redis 7's default), local (loopback clients) or yes.
    #[arg(long)]
    enable_debug_command: Option<String>,
    /// Size of the replication backlog a primary keeps for partial resyncs (e.g. 1mb).
    #[arg(long, value_name = "BYTES")]
    repl_backlog_size: Option<String>,
    /// Keep an append-only file in --dir: yes or no.
    #[arg(long)]
    appendonly: Option<String>,
    /// When the AOF is fsynced: always (before each reply), everysec, or no.
    #[arg(long)]
    appendfsync: Option<String>,
    /// Where the proxy sends reads: replica (read shards, with read-your-writes and monotonic
    /// reads per connection), primary, any (read shards and the primary, same guarantees),
    /// or eventual (read shards, no guarantee).
    #[arg(long)]
    read_from: Option<String>,
    /// Read shards per write shard (all-in-one role).
    #[arg(long)]
    read_replicas: Option<usize>,
    /// Log level: debug, verbose, notice, warning, nothing (Redis's names). RUST_LOG, when
    /// set, takes precedence with tracing's target=level syntax.
    #[arg(long)]
    loglevel: Option<String>,
}

fn build_config(cli: &Cli) -> Result<Config, String> {
    let mut config = match &cli.config {
        Some(path) => Config::from_file(path).map_err(|e| e.to_string())?,
        None => Config::default(),
    };
    let mut set = |name: &str, value: Option<String>| -> Result<(), String> {
        match value {
            Some(v) => config.set_startup(name, &v).map_err(|e| format!("--{name} {v}: {e}")),
            None => Ok(()),
        }
    };
    set("bind", cli.bind.clone())?;
    set("port", cli.port.map(|p| p.to_string()))?;
    set("dir", cli.dir.as_ref().map(|d| d.display().to_string()))?;
    set("requirepass", cli.requirepass.clone())?;
    set("loglevel", cli.loglevel.clone())?;
    set("info", cli.info.clone())?;
    set("announce-host", cli.announce_host.clone())?;
    set("write-shards", cli.write_shards.map(|n| n.to_string()))?;
    set("node-timeout", cli.node_timeout.map(|n| n.to_string()))?;
    set("replica-of", cli.replica_of.clone())?;
    set("masterauth", cli.masterauth.clone())?;
    set("masteruser", cli.masteruser.clone())?;
    set("cluster-secret-file", cli.cluster_secret_file.as_ref().map(|d| d.display().to_string()))?;
    set("protected-mode", cli.protected_mode.clone())?;
    set("enable-debug-command", cli.enable_debug_command.clone())?;
    set("repl-backlog-size", cli.repl_backlog_size.clone())?;
    set("read-from", cli.read_from.clone())?;
    set("appendonly", cli.appendonly.clone())?;
    set("appendfsync", cli.appendfsync.clone())?;
    set("read-replicas", cli.read_replicas.map(|n| n.to_string()))?;
    Ok(config)
}

/// Logs go to `logfile` when one is set (appended, as Redis does), else to stderr; colours
/// only on a terminal.
fn init_logging(loglevel: &str, logfile: &str) -> Result<(), String> {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let level = match loglevel {
        "debug" => LevelFilter::DEBUG,
        "verbose" => LevelFilter::DEBUG,
        "warning" => LevelFilter::WARN,
        "nothing" => LevelFilter::OFF,
        _ => LevelFilter::INFO,
    };
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(level));
    // Logs go to stderr: stdout is for what the user asked to see (the all-in-one's addresses,
    // the client's replies).
    use std::io::IsTerminal;
    let layer = tracing_subscriber::fmt::layer().with_target(false);
    if logfile.is_empty() {
        let layer = layer.with_ansi(std::io::stderr().is_terminal()).with_writer(std::io::stderr);
        tracing_subscriber::registry().with(layer).with(filter).init();
    } else {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(logfile)
            .map_err(|e| format!("cannot open logfile {logfile}: {e}"))?;
        let layer = layer.with_ansi(false).with_writer(std::sync::Mutex::new(file));
        tracing_subscriber::registry().with(layer).with(filter).init();
    }
    Ok(())
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Send a command (or, with none, read commands interactively) straight to the shards
    /// that own their keys, routing as the proxy does, with no proxy in between.
    Client {
        /// The info role of the cluster.
        #[arg(long, default_value = rust_edis::roles::all::DEFAULT_INFO)]
        info: String,
        /// The file holding the cluster secret (default: data/info/cluster.secret, where the
        /// all-in-one default started in this directory keeps it).
        #[arg(long, value_name = "FILE")]
        cluster_secret_file: Option<PathBuf>,
        /// The command and its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    // Before the allocator touches more memory; `disable-thp no` turns THP back on below.
    rust_edis::alloc::set_thp_disabled(true);
    rust_edis::alloc::purge_freed_memory_at_once();
    let cli = Cli::parse();
    if let Some(Sub::Client { info, cluster_secret_file, args }) = cli.command {
        let secret = match rust_edis::roles::secret::for_client(cluster_secret_file.as_deref()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("rust-edis: {e}");
                return ExitCode::from(2);
            }
        };
        // One worker: it follows the map while the prompt (or a pipe) blocks this thread.
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build();
        return match runtime {
            Ok(rt) => ExitCode::from(rt.block_on(rust_edis::proxy::cli::run(&info, secret, args)) as u8),
            Err(e) => {
                eprintln!("rust-edis: cannot start the runtime: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let config = match build_config(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rust-edis: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    if config.get("daemonize") == "yes" {
        eprintln!(
            "rust-edis: daemonize yes is not supported: run rust-edis under a service manager \
             (systemd, docker, launchd), or in the background with `nohup rust-edis ... &`"
        );
        return ExitCode::from(2);
    }
    if let Err(e) = init_logging(config.get("loglevel"), config.get("logfile")) {
        eprintln!("rust-edis: {e}");
        return ExitCode::from(2);
    }
    if config.get("disable-thp") == "no" {
        rust_edis::alloc::set_thp_disabled(false);
    }
    let dir = config.dir();
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("rust-edis: cannot use --dir {}: {e}", dir.display());
        return ExitCode::from(2);
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if matches!(cli.role, Role::Write | Role::Read) {
        // A shard's commands run one at a time under its state lock, so more workers only
        // contend for it: `io-threads` workers (1 by default, as Redis's io-threads). With a
        // benchmark client on the same two cores, one worker took 1.13 us of CPU per
        // pipelined SET/GET against two workers' 1.55 (redis-server: 1.38), and 3.15 against
        // 7.25 per pipelined EVALSHA. The proxy and --role all use every core.
        builder.worker_threads(config.get("io-threads").parse().unwrap_or(1).max(1));
    }
    builder.on_thread_park(rust_edis::alloc::collect_when_idle);
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rust-edis: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The role runs as a task on the workers, not on this thread: its accept loop then hands
    // each new connection's task to the worker it runs on (no thread woken per connection;
    // accepting from the main thread cost a context switch per connect, and 5,000 connects
    // took 30% longer than redis-server's).
    let role = runtime.spawn(async move {
        let addr = format!("{}:{}", config.bind(), config.port());
        let listener = match rust_edis::server::listen(&addr, config.tcp_backlog()).await {
            Ok(l) => l,
            Err(e) => {
                // Whatever the log level, the user is told which address.
                error!(%addr, error = %e, "cannot listen");
                eprintln!("rust-edis: cannot listen on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let (tx, rx) = tokio::sync::watch::channel(false);
        rust_edis::server::STANDALONE_PROCESS.store(true, std::sync::atomic::Ordering::Relaxed);
        tokio::spawn(async move {
            // SIGTERM (kill, systemd, docker stop) stops as cleanly as Ctrl-C.
            let term = async {
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => info!("received Ctrl-C, shutting down"),
                _ = term => info!("received SIGTERM, shutting down"),
                _ = rust_edis::server::PROCESS_STOP.notified() => info!("SHUTDOWN received, shutting down"),
            }
            let _ = tx.send(true);
        });
        info!(role = ?cli.role, %addr, "rust-edis starting");
        let result = match cli.role {
            Role::All => rust_edis::roles::all::run(config, listener, rx).await,
            Role::Proxy => rust_edis::roles::proxy::run(config, listener, rx).await,
            Role::Info => rust_edis::roles::info::run(config, listener, rx).await,
            Role::Write => rust_edis::roles::write::run(config, listener, rx).await,
            Role::Read => rust_edis::roles::read::run(config, listener, rx).await,
        };
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                // Whatever the log level: a server that will not start says why.
                error!(error = %e, "server stopped");
                eprintln!("rust-edis: {e}");
                ExitCode::FAILURE
            }
        }
    });
    runtime.block_on(role).unwrap_or(ExitCode::FAILURE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file() {
        let dir = std::env::temp_dir().join(format!("rust-edis-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("test.conf");
        std::fs::write(&file, "port 7001\nrequirepass fromfile\nhz 20\n").unwrap();
        let cli = Cli::parse_from(["rust-edis", "--config", file.to_str().unwrap(), "--port", "7002"]);
        let config = build_config(&cli).unwrap();
        assert_eq!(config.port(), 7002, "the flag wins");
        assert_eq!(config.requirepass(), Some("fromfile"), "the file fills the rest");
        assert_eq!(config.hz(), 20);
        let cli = Cli::parse_from([
            "rust-edis",
            "--role",
            "read",
            "--masterauth",
            "pw",
            "--repl-backlog-size",
            "2mb",
        ]);
        let config = build_config(&cli).unwrap();
        assert_eq!((config.get("masterauth"), config.get("repl-backlog-size")), ("pw", "2097152"));
        let cli = Cli::parse_from(["rust-edis", "--loglevel", "loud"]);
        assert!(build_config(&cli).unwrap_err().contains("--loglevel loud"));
        assert!(
            Cli::try_parse_from(["rust-edis", "--role", "gateway"]).is_err(),
            "only real roles are offered"
        );
        assert!(matches!(Cli::parse_from(["rust-edis"]).role, Role::All), "all-in-one is the default");
        let cli = Cli::parse_from(["rust-edis", "client", "--info", "127.0.0.1:1", "SET", "k", "-v"]);
        assert!(matches!(cli.command, Some(Sub::Client { ref args, .. }) if args == &["SET", "k", "-v"]));
        std::fs::remove_dir_all(&dir).ok();
    }
}
