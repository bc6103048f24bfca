//! The all-in-one role, the default for a first run: info, `--write-shards` write shards with
//! `--read-replicas` read shards each, and the proxy on `--port`, in one process on loopback.
//! Every part is the same role code a real deployment runs, each on its own port, keeping its
//! files under `<dir>/data/<part>`; Ctrl-C stops them all.

use std::io;
use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::info;

use crate::config::Config;
use crate::proxy::local::Locals;

/// Where info listens in all-in-one mode unless `--info` says otherwise, so that
/// `rust-edis client` finds it by default.
pub const DEFAULT_INFO: &str = "127.0.0.1:7379";

/// The configuration of one part: the user's (requirepass included: every port this process
/// opens asks for it), its own directory, and the cluster's address.
fn part(base: &Config, dir: &str, info: &SocketAddr) -> Result<Config, io::Error> {
    let mut c = base.clone();
    let bad = |e: String| io::Error::new(io::ErrorKind::InvalidInput, e);
    c.set_startup("dir", &base.dir().join("data").join(dir).display().to_string()).map_err(bad)?;
    c.set_startup("info", &info.to_string()).map_err(bad)?;
    Ok(c)
}

pub async fn run(config: Config, listener: TcpListener, shutdown: watch::Receiver<bool>) -> io::Result<()> {
    let info_addr = config.info_addr().unwrap_or(DEFAULT_INFO).to_string();
    let info_listener = crate::server::listen(&info_addr, config.tcp_backlog()).await.map_err(|e| {
        io::Error::new(e.kind(), format!("cannot listen on {info_addr} (the info role's --info): {e}"))
    })?;
    run_with(config, listener, info_listener, shutdown).await
}

/// [`run`] with info's listener given (tests bind it to port 0).
pub async fn run_with(
    config: Config,
    listener: TcpListener,
    info_listener: TcpListener,
    shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let bind = config.bind().to_string();
    let config_logfile = config.get("logfile").to_string();
    let info_at = info_listener.local_addr()?;
    let (writes, reads) = (config.write_shards(), config.get("read-replicas").parse::<usize>().unwrap_or(1));
    let mut tasks = tokio::task::JoinSet::new();
    // The shards register here and the proxy calls them directly rather than over loopback.
    let locals = Locals::new();

    let mut info_config = part(&config, "info", &info_at)?;
    info_config.set_startup("info", "").map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // Info's secret (kept in its directory, made at the first start) is every part's.
    let secret = super::secret::for_info(&mut info_config)?;
    let mut config = config;
    config
        .set_startup("cluster-secret", &secret)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // Each primary's data is here 1 + `reads` times: used_memory and maxmemory count it once,
    // as a primary's used_memory leaves its replicas' copies out.
    config
        .set_startup("data-copies", &(1 + reads).to_string())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    tasks.spawn(super::info::run(info_config, info_listener, shutdown.clone()));
    let mut lines = vec![format!("info on {info_at}")];
    for i in 0..writes {
        let l = crate::server::listen((bind.as_str(), 0), config.tcp_backlog()).await?;
        lines.push(format!("write shard {} on {}", i + 1, l.local_addr()?));
        tasks.spawn(super::write::run_in(
            part(&config, &format!("write{}", i + 1), &info_at)?,
            l,
            shutdown.clone(),
            Some(locals.clone()),
        ));
    }
    for i in 0..writes * reads {
        let l = crate::server::listen((bind.as_str(), 0), config.tcp_backlog()).await?;
        lines.push(format!("read shard {} on {}", i + 1, l.local_addr()?));
        tasks.spawn(super::read::run_in(
            part(&config, &format!("read{}", i + 1), &info_at)?,
            l,
            shutdown.clone(),
            Some(locals.clone()),
        ));
    }
    // The proxy keeps the user's settings (requirepass included) and the main port.
    let mut proxy_config = config.clone();
    proxy_config
        .set_startup("info", &info_at.to_string())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    lines.push(format!(
        "proxy on {}   <- point redis-cli, clients and redis-benchmark here",
        listener.local_addr()?
    ));
    tasks.spawn(super::proxy::run_in(proxy_config, listener, shutdown.clone(), Some(locals)));
    // Printed for the user (stdout), and logged too when the log goes elsewhere than the
    // terminal they are printed on (not the same lines twice on one screen).
    use std::io::IsTerminal;
    let same_screen =
        std::io::stdout().is_terminal() && std::io::stderr().is_terminal() && config_logfile.is_empty();
    for line in &lines {
        if !same_screen {
            info!("{line}");
        }
        println!("{line}");
    }
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Err(e)) => return Err(e),
            Err(e) if e.is_panic() => return Err(io::Error::other(format!("a role panicked: {e}"))),
            _ => {}
        }
    }
    Ok(())
}
