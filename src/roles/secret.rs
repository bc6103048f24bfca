//! The cluster secret: what cluster members (info, write and read shards, proxies, the routing
//! client) prove themselves with before any internal command (EDIS.*, PSYNC, SYNC, REPLCONF,
//! router connections) is accepted. A member authenticates as Redis's ACL form does, with
//! `AUTH edis <secret>`; clients never need it (they AUTH as the default user with
//! `requirepass`), and it never appears in logs, CONFIG GET or CLUSTER output.
//!
//! Where it comes from, first match wins: `cluster-secret` (config file), `cluster-secret-file`
//! (a file holding it), `<dir>/cluster.secret`. Info creates that file with a random secret at
//! its first start when none is given, so a first run needs no set-up (`--role all` hands it
//! to its parts in memory); an operator copies it to where shards and proxies can read it.

use std::io;
use std::path::{Path, PathBuf};

use crate::config::Config;

/// The internal user a member authenticates as: `AUTH edis <secret>`.
pub const MEMBER_USER: &str = "edis";

/// The file info keeps its secret in, under its `--dir`.
pub const FILE: &str = "cluster.secret";

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what)
}

/// Reads a secret file: its first line, trimmed; an empty one is an error.
fn read_file(path: &Path) -> io::Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        io::Error::new(e.kind(), format!("cannot read the cluster secret file {}: {e}", path.display()))
    })?;
    let secret = text.lines().next().unwrap_or("").trim().to_string();
    if secret.is_empty() {
        return Err(invalid(format!("the cluster secret file {} is empty", path.display())));
    }
    Ok(secret)
}

/// The secret the configuration gives this node, if any.
pub fn configured(config: &Config) -> io::Result<Option<String>> {
    let inline = config.get("cluster-secret");
    if !inline.is_empty() {
        return Ok(Some(inline.to_string()));
    }
    let file = config.get("cluster-secret-file");
    if !file.is_empty() {
        return read_file(Path::new(file)).map(Some);
    }
    let default = config.dir().join(FILE);
    if default.exists() {
        return read_file(&default).map(Some);
    }
    Ok(None)
}

/// Info's secret: the configured one, else a new random one written to `<dir>/cluster.secret`
/// (readable by its owner only). Stored in `config` so the server checks members against it.
pub fn for_info(config: &mut Config) -> io::Result<String> {
    if let Some(secret) = configured(config)? {
        set(config, &secret)?;
        return Ok(secret);
    }
    let dir = config.dir();
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(FILE);
    let secret = generate();
    crate::persistence::write_private(&path, format!("{secret}\n").as_bytes())?;
    tracing::info!(
        file = %path.display(),
        "created the cluster secret; shards and proxies of this cluster need it: --cluster-secret-file {}",
        path.display()
    );
    set(config, &secret)?;
    Ok(secret)
}

/// The secret of a node joining a cluster (a shard with `--info`, a proxy): it must have one.
pub fn for_member(config: &mut Config, info: &str) -> io::Result<String> {
    match configured(config)? {
        Some(secret) => {
            set(config, &secret)?;
            Ok(secret)
        }
        None => Err(invalid(format!(
            "joining the cluster at {info} needs its secret: pass --cluster-secret-file <info's --dir>/{FILE} \
             (info writes it at its first start), or put `cluster-secret` in the config file"
        ))),
    }
}

/// A node outside a cluster (a standalone write shard, a plain replica): a secret it is given
/// still makes internal commands members-only, and a plain replica authenticates with it.
pub fn if_configured(config: &mut Config) -> io::Result<()> {
    match configured(config)? {
        Some(secret) => set(config, &secret),
        None => Ok(()),
    }
}

fn set(config: &mut Config, secret: &str) -> io::Result<()> {
    config.set_startup("cluster-secret", secret).map_err(invalid)
}

/// Where `rust-edis client` looks for the secret when none is given: the all-in-one default's
/// info directory under the current directory.
pub fn default_client_file() -> PathBuf {
    PathBuf::from("data").join("info").join(FILE)
}

/// The routing client's secret: the file given, else the all-in-one default's if it exists.
pub fn for_client(file: Option<&Path>) -> io::Result<Option<String>> {
    match file {
        Some(f) => read_file(f).map(Some),
        None => {
            let default = default_client_file();
            if default.exists() {
                read_file(&default).map(Some)
            } else {
                Ok(None)
            }
        }
    }
}

/// 64 hex characters from the system's random source.
pub fn generate() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    let from_os = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if from_os.is_err() {
        // No /dev/urandom: std's hasher keys are random per process, mixed with the clock.
        let more = format!("{}{}", crate::server::random_hex40(), crate::server::random_hex40());
        return more[..64].to_string();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares a password with a secret in time independent of where they differ.
pub fn matches(given: &[u8], secret: &[u8]) -> bool {
    if given.len() != secret.len() {
        return false;
    }
    given.iter().zip(secret).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_creates_one_and_members_read_it() {
        let dir = std::env::temp_dir().join(format!("rust-edis-secret-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut info = Config::default();
        info.set_startup("dir", dir.to_str().unwrap()).unwrap();
        let made = for_info(&mut info).unwrap();
        assert_eq!(made.len(), 64);
        assert_eq!(for_info(&mut info.clone()).unwrap(), made, "a restart keeps it");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "only the owner reads it");
        }
        let mut shard = Config::default();
        let err = for_member(&mut shard, "127.0.0.1:7379").unwrap_err().to_string();
        assert!(err.contains("--cluster-secret-file"), "{err}");
        shard.set_startup("cluster-secret-file", dir.join(FILE).to_str().unwrap()).unwrap();
        assert_eq!(for_member(&mut shard, "x").unwrap(), made);
        assert_eq!(shard.get("cluster-secret"), made);
        std::fs::write(dir.join("empty"), "\n").unwrap();
        shard.set_startup("cluster-secret", "").unwrap();
        shard.set_startup("cluster-secret-file", dir.join("empty").to_str().unwrap()).unwrap();
        assert!(configured(&shard).unwrap_err().to_string().contains("is empty"));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn comparison() {
        assert!(matches(b"abc", b"abc"));
        assert!(!matches(b"abd", b"abc"));
        assert!(!matches(b"ab", b"abc"));
    }
}
