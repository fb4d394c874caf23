//! pullgate's own settings: one TOML file, every field optional with a documented
//! default, fully validated before any socket is bound.
//!
//! ```toml
//! [server]
//! socket = "/run/pullgate/pullgate.sock"   # where the kubelet connects
//! socket_mode = "0660"                     # octal permission bits of that socket
//! socket_group = "root"                    # group owning the socket (name or number)
//! shutdown_grace = "10s"                   # in-flight calls get this long on SIGTERM
//! worker_threads = 1                       # async runtime threads (1 = single-threaded)
//!
//! [upstream]
//! containerd_socket = "/run/containerd/containerd.sock"
//! connect_timeout = "2s"
//!
//! [log]
//! format = "text"                          # or "json"
//! level = "info"                           # tracing EnvFilter directive
//!
//! [policy]
//! dir = "/etc/pullgate/notation"           # notation layout: trust policy + truststore/
//! unmatched = "deny"                       # an image no statement covers: "deny" or "allow"
//! reload_interval = "5s"                   # how often the directory is checked for changes
//! # verdict_max_age = "24h"                # re-verify an image on the node after this long
//!                                          # (default: when its signature or certificates expire)
//!
//! # Pods in these Kubernetes namespaces are judged under their own policy directory
//! # (first match wins; `prefix-*` matches a prefix); every other pod under `dir`.
//! # Node configuration: never something a tenant controls.
//! # [[policy.namespace]]
//! # namespaces = ["kube-system"]
//! # dir = "/etc/pullgate/policies/platform"
//!
//! [registry]
//! hosts_dir = "/etc/containerd/certs.d"    # containerd hosts.toml directory
//! # credentials_file = "/etc/pullgate/config.json"   # docker config.json-style node credentials
//! insecure = []                            # host:port reached over plain http
//! timeout = "30s"                          # one verification: resolve, list, fetch
//!
//! [verify]
//! max_signatures = 100                     # notation's default
//!
//! [cache]
//! max_entries = 4096
//! allow_ttl = "1h"
//! deny_ttl = "30s"
//!
//! [metrics]
//! # listen = "127.0.0.1:9464"              # or "unix:/run/pullgate/metrics.sock"; unset = off
//!
//! [revocation]
//! cache_dir = "/var/cache/pullgate/crl"    # fetched CRLs; "" = memory only
//! max_cache_mib = 512                      # bound on cache_dir's total size
//! # crl_dir = "/etc/pullgate/crl"          # CRL files shipped to the node, used first
//! ```
//!
//! Errors name the file, the field and what is wrong, because the operator reading
//! them is looking at a systemd journal, not at this source.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Default location of the config file, used when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/pullgate/config.toml";
/// Default listening socket; `/run/pullgate` is the unit's RuntimeDirectory.
pub const DEFAULT_SOCKET: &str = "/run/pullgate/pullgate.sock";
/// containerd's default gRPC socket, which also serves the CRI plugin.
pub const DEFAULT_CONTAINERD_SOCKET: &str = "/run/containerd/containerd.sock";
/// Owner and group may connect; others may not. The kubelet runs as root.
pub const DEFAULT_SOCKET_MODE: u32 = 0o660;
/// Long enough for a pull already under way to return its answer, short enough that
/// systemd's own stop timeout (90 s by default) is never what ends us.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// A local unix socket either accepts at once or is not there; 2 s covers a loaded node.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// One runtime thread: lowest added latency on small nodes (see benches/passthrough.rs).
pub const DEFAULT_WORKER_THREADS: usize = 1;
/// More threads than this buys nothing for a node-local proxy.
const MAX_WORKER_THREADS: usize = 64;
/// `sun_path` is 108 bytes on Linux including the terminating NUL.
const MAX_UNIX_SOCKET_PATH: usize = 107;
/// Upper bound on the grace period; anything longer is almost certainly a typo.
const MAX_SHUTDOWN_GRACE: Duration = Duration::from_secs(600);

/// Default notation-layout policy directory.
pub const DEFAULT_POLICY_DIR: &str = "/etc/pullgate/notation";
/// containerd's default hosts directory.
pub const DEFAULT_HOSTS_DIR: &str = "/etc/containerd/certs.d";

/// A fully validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub server: ServerConfig,
    pub upstream: UpstreamConfig,
    pub log: LogConfig,
    pub policy: PolicyConfig,
    pub registry: RegistrySettings,
    pub verify: VerifySettings,
    pub cache: CacheSettings,
    pub metrics: MetricsConfig,
    pub revocation: RevocationConfig,
}

/// Where revocation data (NOTARY.md §7) is cached and found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationConfig {
    /// Fetched CRLs are cached here; `None`: in memory only.
    pub cache_dir: Option<PathBuf>,
    pub max_cache_bytes: u64,
    /// CRL files an operator ships to the node, tried before fetching.
    pub crl_dir: Option<PathBuf>,
}

impl RevocationConfig {
    /// The revocation checker's settings (its other settings at their defaults).
    pub fn settings(&self) -> crate::revocation::RevocationSettings {
        crate::revocation::RevocationSettings {
            cache_dir: self.cache_dir.clone(),
            max_cache_bytes: self.max_cache_bytes,
            crl_dir: self.crl_dir.clone(),
            ..Default::default()
        }
    }
}

/// Default CRL cache directory (the unit's `CacheDirectory=pullgate`).
pub const DEFAULT_CRL_CACHE_DIR: &str = "/var/cache/pullgate/crl";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyConfig {
    pub dir: PathBuf,
    /// What happens to an image that no trust policy statement covers.
    pub unmatched: Unmatched,
    pub reload_interval: Duration,
    /// How long an allow verdict lets an image on the node be used without a new
    /// verification; `None`: until what it rests on expires.
    pub verdict_max_age: Option<Duration>,
    /// Policies for pods of some Kubernetes namespaces, in file order.
    pub namespaces: Vec<NamespacePolicyConfig>,
}

/// One `[[policy.namespace]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespacePolicyConfig {
    /// Exact namespace names, or `prefix-*`.
    pub namespaces: Vec<String>,
    pub dir: PathBuf,
}

/// The node's answer for an image no statement covers (the gate's own type).
pub use crate::gate::Unmatched;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrySettings {
    pub hosts_dir: PathBuf,
    pub credentials_file: Option<PathBuf>,
    pub insecure: Vec<String>,
    /// The whole of one verification's registry work.
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifySettings {
    pub max_signatures: usize,
}

/// `[cache]`: the verdict cache's own settings type.
pub use crate::cache::CacheConfig as CacheSettings;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricsListen {
    Tcp(std::net::SocketAddr),
    Unix(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    pub listen: Option<MetricsListen>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    pub socket: PathBuf,
    pub socket_mode: u32,
    /// Numeric group id the socket is handed to; `None` keeps the process's group.
    pub socket_gid: Option<u32>,
    pub shutdown_grace: Duration,
    pub worker_threads: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamConfig {
    pub containerd_socket: PathBuf,
    pub connect_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing_subscriber::EnvFilter` directive, e.g. `info` or `pullgate=debug`.
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server: ServerConfig {
                socket: PathBuf::from(DEFAULT_SOCKET),
                socket_mode: DEFAULT_SOCKET_MODE,
                socket_gid: None,
                shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
                worker_threads: DEFAULT_WORKER_THREADS,
            },
            upstream: UpstreamConfig {
                containerd_socket: PathBuf::from(DEFAULT_CONTAINERD_SOCKET),
                connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            },
            log: LogConfig {
                format: LogFormat::Text,
                level: "info".to_owned(),
            },
            policy: PolicyConfig {
                dir: PathBuf::from(DEFAULT_POLICY_DIR),
                unmatched: Unmatched::Deny,
                reload_interval: Duration::from_secs(5),
                verdict_max_age: None,
                namespaces: Vec::new(),
            },
            registry: RegistrySettings {
                hosts_dir: PathBuf::from(DEFAULT_HOSTS_DIR),
                credentials_file: None,
                insecure: Vec::new(),
                timeout: Duration::from_secs(30),
            },
            verify: VerifySettings {
                max_signatures: 100,
            },
            cache: CacheSettings {
                max_entries: 4096,
                allow_ttl: Duration::from_secs(3600),
                deny_ttl: Duration::from_secs(30),
            },
            metrics: MetricsConfig { listen: None },
            revocation: RevocationConfig {
                cache_dir: Some(PathBuf::from(DEFAULT_CRL_CACHE_DIR)),
                max_cache_bytes: 512 * 1024 * 1024,
                crl_dir: None,
            },
        }
    }
}

/// Why a configuration was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {file}: cannot read: {source}")]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {file}: {source}")]
    Syntax {
        file: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("config file {file}: field `{field}`: {problem}")]
    Field {
        file: PathBuf,
        field: &'static str,
        problem: String,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    upstream: RawUpstream,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    policy: RawPolicy,
    #[serde(default)]
    registry: RawRegistry,
    #[serde(default)]
    verify: RawVerify,
    #[serde(default)]
    cache: RawCache,
    #[serde(default)]
    metrics: RawMetrics,
    #[serde(default)]
    revocation: RawRevocation,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRevocation {
    cache_dir: Option<PathBuf>,
    max_cache_mib: Option<u64>,
    crl_dir: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    dir: Option<PathBuf>,
    unmatched: Option<Unmatched>,
    reload_interval: Option<String>,
    verdict_max_age: Option<String>,
    #[serde(default)]
    namespace: Vec<RawNamespacePolicy>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNamespacePolicy {
    namespaces: Vec<String>,
    dir: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegistry {
    hosts_dir: Option<PathBuf>,
    credentials_file: Option<PathBuf>,
    insecure: Option<Vec<String>>,
    timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVerify {
    max_signatures: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCache {
    max_entries: Option<usize>,
    allow_ttl: Option<String>,
    deny_ttl: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    socket: Option<PathBuf>,
    socket_mode: Option<String>,
    socket_group: Option<String>,
    shutdown_grace: Option<String>,
    worker_threads: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    containerd_socket: Option<PathBuf>,
    connect_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: Option<LogFormat>,
    level: Option<String>,
}

impl Config {
    /// Reads and validates `file`.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
            file: file.to_owned(),
            source,
        })?;
        Config::parse(file, &text)
    }

    /// Reads `file` if given; without one, reads [`DEFAULT_CONFIG_PATH`] when it
    /// exists and otherwise uses the defaults. An explicitly named file must exist.
    pub fn load_or_default(file: Option<&Path>) -> Result<Config, ConfigError> {
        match file {
            Some(file) => Config::load(file),
            None => {
                let default = Path::new(DEFAULT_CONFIG_PATH);
                if default.exists() {
                    Config::load(default)
                } else {
                    Ok(Config::default())
                }
            }
        }
    }

    /// Parses and validates the TOML `text`; `file` is only used in error messages.
    /// Sections are checked in the order the file documents them, so the first
    /// error reported is the first one an operator reading top-down meets.
    pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|source| ConfigError::Syntax {
            file: file.to_owned(),
            source: Box::new(source),
        })?;
        let fields = Fields { file };
        let defaults = Config::default();
        let server = fields.server(raw.server, defaults.server)?;
        let upstream = fields.upstream(raw.upstream, defaults.upstream, &server.socket)?;
        let log = fields.log(raw.log, defaults.log)?;
        let policy = fields.policy(raw.policy, defaults.policy)?;
        let registry = fields.registry(raw.registry, defaults.registry)?;
        let verify = fields.verify(raw.verify, defaults.verify)?;
        let cache = fields.cache(raw.cache, defaults.cache)?;
        let metrics = fields.metrics(raw.metrics)?;
        let revocation = fields.revocation(raw.revocation, defaults.revocation)?;
        Ok(Config {
            server,
            upstream,
            log,
            policy,
            registry,
            verify,
            cache,
            metrics,
            revocation,
        })
    }
}

/// Checks the fields of one config file, one section at a time; every error names
/// the file and the field.
struct Fields<'a> {
    file: &'a Path,
}

impl Fields<'_> {
    fn error(&self, field: &'static str, problem: String) -> ConfigError {
        ConfigError::Field {
            file: self.file.to_owned(),
            field,
            problem,
        }
    }

    /// `path` unless it is relative.
    fn absolute(&self, field: &'static str, path: PathBuf) -> Result<PathBuf, ConfigError> {
        if path.is_absolute() {
            Ok(path)
        } else {
            Err(self.error(field, format!("{} is not an absolute path", path.display())))
        }
    }

    /// An optional duration within `range`, else `default`.
    fn duration(
        &self,
        field: &'static str,
        text: Option<String>,
        default: Duration,
        range: std::ops::RangeInclusive<Duration>,
    ) -> Result<Duration, ConfigError> {
        let Some(text) = text else {
            return Ok(default);
        };
        let value = parse_duration(&text).map_err(|p| self.error(field, p))?;
        if !range.contains(&value) {
            return Err(self.error(
                field,
                format!(
                    "{text:?} is outside {}ms..{}s",
                    range.start().as_millis(),
                    range.end().as_secs()
                ),
            ));
        }
        Ok(value)
    }

    fn server(&self, raw: RawServer, default: ServerConfig) -> Result<ServerConfig, ConfigError> {
        let socket = raw.socket.unwrap_or(default.socket);
        check_socket_path(&socket).map_err(|p| self.error("server.socket", p))?;
        let socket_mode = match raw.socket_mode {
            None => default.socket_mode,
            Some(text) => parse_mode(&text).map_err(|p| self.error("server.socket_mode", p))?,
        };
        let socket_gid = match raw.socket_group {
            None => None,
            Some(name) => {
                Some(resolve_group(&name).map_err(|p| self.error("server.socket_group", p))?)
            }
        };
        let shutdown_grace = match raw.shutdown_grace {
            None => default.shutdown_grace,
            Some(text) => {
                let grace =
                    parse_duration(&text).map_err(|p| self.error("server.shutdown_grace", p))?;
                if grace > MAX_SHUTDOWN_GRACE {
                    return Err(self.error(
                        "server.shutdown_grace",
                        format!("{text:?} is longer than the maximum of 600s"),
                    ));
                }
                grace
            }
        };
        let worker_threads = raw.worker_threads.unwrap_or(default.worker_threads);
        if worker_threads == 0 || worker_threads > MAX_WORKER_THREADS {
            return Err(self.error(
                "server.worker_threads",
                format!("{worker_threads} is not between 1 and {MAX_WORKER_THREADS}"),
            ));
        }
        Ok(ServerConfig {
            socket,
            socket_mode,
            socket_gid,
            shutdown_grace,
            worker_threads,
        })
    }

    /// `socket` is the server's own, which containerd's must differ from.
    fn upstream(
        &self,
        raw: RawUpstream,
        default: UpstreamConfig,
        socket: &Path,
    ) -> Result<UpstreamConfig, ConfigError> {
        let containerd_socket = raw.containerd_socket.unwrap_or(default.containerd_socket);
        check_socket_path(&containerd_socket)
            .map_err(|p| self.error("upstream.containerd_socket", p))?;
        if containerd_socket == socket {
            return Err(self.error(
                "upstream.containerd_socket",
                format!(
                    "{} is also server.socket; pullgate would forward to itself",
                    containerd_socket.display()
                ),
            ));
        }
        let connect_timeout = match raw.connect_timeout {
            None => default.connect_timeout,
            Some(text) => {
                let timeout =
                    parse_duration(&text).map_err(|p| self.error("upstream.connect_timeout", p))?;
                if timeout.is_zero() {
                    return Err(self.error(
                        "upstream.connect_timeout",
                        "must be greater than zero".to_owned(),
                    ));
                }
                timeout
            }
        };
        Ok(UpstreamConfig {
            containerd_socket,
            connect_timeout,
        })
    }

    fn log(&self, raw: RawLog, default: LogConfig) -> Result<LogConfig, ConfigError> {
        let format = raw.format.unwrap_or(default.format);
        let level = raw.level.unwrap_or(default.level);
        if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&level) {
            return Err(self.error(
                "log.level",
                format!("{level:?} is not a valid filter directive: {e}"),
            ));
        }
        Ok(LogConfig { format, level })
    }

    fn policy(&self, raw: RawPolicy, default: PolicyConfig) -> Result<PolicyConfig, ConfigError> {
        let verdict_max_age = match raw.verdict_max_age {
            None => None,
            Some(text) => Some(self.duration(
                "policy.verdict_max_age",
                Some(text),
                Duration::ZERO,
                Duration::from_secs(60)..=Duration::from_secs(366 * 24 * 3600),
            )?),
        };
        let mut namespaces = Vec::new();
        for (index, table) in raw.namespace.into_iter().enumerate() {
            namespaces.push(self.namespace_policy(index, table)?);
        }
        Ok(PolicyConfig {
            dir: self.absolute("policy.dir", raw.dir.unwrap_or(default.dir))?,
            unmatched: raw.unmatched.unwrap_or(default.unmatched),
            reload_interval: self.duration(
                "policy.reload_interval",
                raw.reload_interval,
                default.reload_interval,
                Duration::from_millis(100)..=Duration::from_secs(3600),
            )?,
            verdict_max_age,
            namespaces,
        })
    }

    /// A `[[policy.namespace]]` table (the `index`th): at least one namespace
    /// pattern, each a Kubernetes namespace name (RFC 1123 label) or such a prefix
    /// followed by `*`.
    fn namespace_policy(
        &self,
        index: usize,
        raw: RawNamespacePolicy,
    ) -> Result<NamespacePolicyConfig, ConfigError> {
        let invalid = |problem: String| {
            self.error(
                "policy.namespace.namespaces",
                format!("table {}: {problem}", index + 1),
            )
        };
        if raw.namespaces.is_empty() {
            return Err(invalid("lists no namespace".into()));
        }
        for pattern in &raw.namespaces {
            let name = pattern.strip_suffix('*').unwrap_or(pattern);
            let label_chars = name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if name.is_empty() {
                return Err(invalid(format!(
                    "{pattern:?} would match every namespace; that is what `policy.dir` is for"
                )));
            }
            if name.len() > 63 || !label_chars {
                return Err(invalid(format!(
                    "{pattern:?} is not a Kubernetes namespace name or a `prefix-*` pattern"
                )));
            }
        }
        Ok(NamespacePolicyConfig {
            namespaces: raw.namespaces,
            dir: self.absolute("policy.namespace.dir", raw.dir)?,
        })
    }

    fn registry(
        &self,
        raw: RawRegistry,
        default: RegistrySettings,
    ) -> Result<RegistrySettings, ConfigError> {
        let hosts_dir = self.absolute(
            "registry.hosts_dir",
            raw.hosts_dir.unwrap_or(default.hosts_dir),
        )?;
        let credentials_file = raw
            .credentials_file
            .map(|file| self.absolute("registry.credentials_file", file))
            .transpose()?;
        let insecure = raw.insecure.unwrap_or_default();
        if let Some(bad) = insecure
            .iter()
            .find(|h| h.is_empty() || h.contains('/') || h.contains("://"))
        {
            return Err(self.error("registry.insecure", format!("{bad:?} is not a host[:port]")));
        }
        Ok(RegistrySettings {
            hosts_dir,
            credentials_file,
            insecure,
            timeout: self.duration(
                "registry.timeout",
                raw.timeout,
                default.timeout,
                Duration::from_millis(100)..=Duration::from_secs(600),
            )?,
        })
    }

    fn verify(
        &self,
        raw: RawVerify,
        default: VerifySettings,
    ) -> Result<VerifySettings, ConfigError> {
        let max_signatures = raw.max_signatures.unwrap_or(default.max_signatures);
        if max_signatures == 0 || max_signatures > 1000 {
            return Err(self.error(
                "verify.max_signatures",
                format!("{max_signatures} is not between 1 and 1000"),
            ));
        }
        Ok(VerifySettings { max_signatures })
    }

    fn cache(&self, raw: RawCache, default: CacheSettings) -> Result<CacheSettings, ConfigError> {
        let max_entries = raw.max_entries.unwrap_or(default.max_entries);
        if max_entries == 0 || max_entries > 1_000_000 {
            return Err(self.error(
                "cache.max_entries",
                format!("{max_entries} is not between 1 and 1000000"),
            ));
        }
        Ok(CacheSettings {
            max_entries,
            allow_ttl: self.duration(
                "cache.allow_ttl",
                raw.allow_ttl,
                default.allow_ttl,
                Duration::ZERO..=Duration::from_secs(7 * 24 * 3600),
            )?,
            deny_ttl: self.duration(
                "cache.deny_ttl",
                raw.deny_ttl,
                default.deny_ttl,
                Duration::ZERO..=Duration::from_secs(3600),
            )?,
        })
    }

    fn metrics(&self, raw: RawMetrics) -> Result<MetricsConfig, ConfigError> {
        let error = |p| self.error("metrics.listen", p);
        let listen = raw
            .listen
            .map(|text| parse_metrics_listen(&text).map_err(error))
            .transpose()?;
        if let Some(MetricsListen::Unix(path)) = &listen {
            check_socket_path(path).map_err(error)?;
        }
        Ok(MetricsConfig { listen })
    }

    fn revocation(
        &self,
        raw: RawRevocation,
        default: RevocationConfig,
    ) -> Result<RevocationConfig, ConfigError> {
        let cache_dir = match raw.cache_dir {
            None => default.cache_dir,
            // "" turns the disk cache off.
            Some(dir) if dir.as_os_str().is_empty() => None,
            Some(dir) => Some(self.absolute("revocation.cache_dir", dir)?),
        };
        let max_cache_bytes = match raw.max_cache_mib {
            None => default.max_cache_bytes,
            Some(mib) if (1..=65536).contains(&mib) => mib * 1024 * 1024,
            Some(mib) => {
                return Err(self.error(
                    "revocation.max_cache_mib",
                    format!("{mib} is not between 1 and 65536"),
                ))
            }
        };
        let crl_dir = raw
            .crl_dir
            .map(|dir| self.absolute("revocation.crl_dir", dir))
            .transpose()?;
        Ok(RevocationConfig {
            cache_dir,
            max_cache_bytes,
            crl_dir,
        })
    }
}

/// `127.0.0.1:9464`, `[::1]:9464` or `unix:/path/metrics.sock`.
fn parse_metrics_listen(text: &str) -> Result<MetricsListen, String> {
    if let Some(path) = text.strip_prefix("unix:") {
        return Ok(MetricsListen::Unix(PathBuf::from(path)));
    }
    text.parse::<std::net::SocketAddr>()
        .map(MetricsListen::Tcp)
        .map_err(|_| format!("{text:?} is neither ADDRESS:PORT nor unix:/PATH"))
}

fn check_socket_path(path: &Path) -> Result<(), String> {
    if !path.is_absolute() {
        return Err(format!("{} is not an absolute path", path.display()));
    }
    if path.file_name().is_none() {
        return Err(format!("{} names no file", path.display()));
    }
    let len = path.as_os_str().len();
    if len > MAX_UNIX_SOCKET_PATH {
        return Err(format!(
            "{} is {len} bytes long; unix socket paths are limited to {MAX_UNIX_SOCKET_PATH}",
            path.display()
        ));
    }
    Ok(())
}

/// Parses an octal permission string such as `"0660"` or `"660"`.
fn parse_mode(text: &str) -> Result<u32, String> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if mode <= 0o777 && !digits.is_empty() => Ok(mode),
        _ => Err(format!(
            "{text:?} is not an octal permission mode between 0000 and 0777 (e.g. \"0660\")"
        )),
    }
}

/// Parses durations written as `<integer><unit>` with unit `ms`, `s`, `m` or `h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration like \"500ms\", \"10s\", \"2m\" or \"1h\"");
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| bad())?;
    match unit {
        "ms" => Ok(Duration::from_millis(number)),
        "s" => Ok(Duration::from_secs(number)),
        "m" => number
            .checked_mul(60)
            .map(Duration::from_secs)
            .ok_or_else(bad),
        "h" => number
            .checked_mul(3600)
            .map(Duration::from_secs)
            .ok_or_else(bad),
        _ => Err(bad()),
    }
}

/// Resolves a group name (from `/etc/group`) or a numeric gid.
fn resolve_group(name: &str) -> Result<u32, String> {
    if let Ok(gid) = name.parse::<u32>() {
        return Ok(gid);
    }
    let groups = std::fs::read_to_string("/etc/group")
        .map_err(|e| format!("cannot read /etc/group to resolve {name:?}: {e}"))?;
    groups
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let group = fields.next()?;
            let gid = fields.nth(1)?.parse::<u32>().ok()?;
            Some((group, gid))
        })
        .find(|(group, _)| *group == name)
        .map(|(_, gid)| gid)
        .ok_or_else(|| format!("group {name:?} does not exist in /etc/group"))
}

/// Renders the effective configuration as TOML (`pullgate check-config`).
impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.server;
        writeln!(f, "[server]")?;
        writeln!(f, "socket = {:?}", s.socket.display().to_string())?;
        writeln!(f, "socket_mode = \"{:04o}\"", s.socket_mode)?;
        match s.socket_gid {
            Some(gid) => writeln!(f, "socket_group = \"{gid}\"")?,
            None => writeln!(f, "# socket_group: the process's group")?,
        }
        writeln!(f, "shutdown_grace = \"{}ms\"", s.shutdown_grace.as_millis())?;
        writeln!(f, "worker_threads = {}", s.worker_threads)?;
        let u = &self.upstream;
        writeln!(f, "\n[upstream]")?;
        writeln!(
            f,
            "containerd_socket = {:?}",
            u.containerd_socket.display().to_string()
        )?;
        writeln!(
            f,
            "connect_timeout = \"{}ms\"",
            u.connect_timeout.as_millis()
        )?;
        writeln!(f, "\n[log]")?;
        writeln!(f, "format = \"{}\"", self.log.format)?;
        writeln!(f, "level = {:?}", self.log.level)?;
        let p = &self.policy;
        writeln!(f, "\n[policy]")?;
        writeln!(f, "dir = {:?}", p.dir.display().to_string())?;
        writeln!(
            f,
            "unmatched = \"{}\"",
            match p.unmatched {
                Unmatched::Deny => "deny",
                Unmatched::Allow => "allow",
            }
        )?;
        writeln!(
            f,
            "reload_interval = \"{}ms\"",
            p.reload_interval.as_millis()
        )?;
        if let Some(age) = p.verdict_max_age {
            writeln!(f, "verdict_max_age = \"{}s\"", age.as_secs())?;
        }
        for namespace in &p.namespaces {
            writeln!(f, "\n[[policy.namespace]]")?;
            writeln!(f, "namespaces = {:?}", namespace.namespaces)?;
            writeln!(f, "dir = {:?}", namespace.dir.display().to_string())?;
        }
        let r = &self.registry;
        writeln!(f, "\n[registry]")?;
        writeln!(f, "hosts_dir = {:?}", r.hosts_dir.display().to_string())?;
        if let Some(file) = &r.credentials_file {
            writeln!(f, "credentials_file = {:?}", file.display().to_string())?;
        }
        writeln!(f, "insecure = {:?}", r.insecure)?;
        writeln!(f, "timeout = \"{}ms\"", r.timeout.as_millis())?;
        writeln!(f, "\n[verify]")?;
        writeln!(f, "max_signatures = {}", self.verify.max_signatures)?;
        let c = &self.cache;
        writeln!(f, "\n[cache]")?;
        writeln!(f, "max_entries = {}", c.max_entries)?;
        writeln!(f, "allow_ttl = \"{}ms\"", c.allow_ttl.as_millis())?;
        writeln!(f, "deny_ttl = \"{}ms\"", c.deny_ttl.as_millis())?;
        writeln!(f, "\n[metrics]")?;
        match &self.metrics.listen {
            None => writeln!(f, "# listen: off")?,
            Some(MetricsListen::Tcp(addr)) => writeln!(f, "listen = \"{addr}\"")?,
            Some(MetricsListen::Unix(path)) => writeln!(f, "listen = \"unix:{}\"", path.display())?,
        }
        let v = &self.revocation;
        writeln!(f, "\n[revocation]")?;
        match &v.cache_dir {
            None => writeln!(f, "cache_dir = \"\"")?,
            Some(dir) => writeln!(f, "cache_dir = {:?}", dir.display().to_string())?,
        }
        writeln!(f, "max_cache_mib = {}", v.max_cache_bytes / (1024 * 1024))?;
        match &v.crl_dir {
            None => writeln!(f, "# crl_dir: none"),
            Some(dir) => writeln!(f, "crl_dir = {:?}", dir.display().to_string()),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/pullgate/config.toml"), text)
    }

    fn field_error(text: &str) -> (String, String) {
        match parse(text) {
            Err(ConfigError::Field { field, problem, .. }) => (field.to_owned(), problem),
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn empty_file_gives_documented_defaults() {
        let config = parse("").expect("empty config is valid");
        assert_eq!(config, Config::default());
        assert_eq!(
            config.server.socket,
            Path::new("/run/pullgate/pullgate.sock")
        );
        assert_eq!(config.server.socket_mode, 0o660);
        assert_eq!(
            config.upstream.containerd_socket,
            Path::new("/run/containerd/containerd.sock")
        );
        assert_eq!(config.server.shutdown_grace, Duration::from_secs(10));
        assert_eq!(config.log.format, LogFormat::Text);
    }

    #[test]
    fn every_field_is_read() {
        let config = parse(
            r#"
            [server]
            socket = "/tmp/pg/pg.sock"
            socket_mode = "0600"
            socket_group = "0"
            shutdown_grace = "1500ms"
            worker_threads = 4
            [upstream]
            containerd_socket = "/tmp/ctd/ctd.sock"
            connect_timeout = "1m"
            [log]
            format = "json"
            level = "pullgate=debug"
            "#,
        )
        .expect("valid config");
        assert_eq!(config.server.socket, Path::new("/tmp/pg/pg.sock"));
        assert_eq!(config.server.socket_mode, 0o600);
        assert_eq!(config.server.socket_gid, Some(0));
        assert_eq!(config.server.shutdown_grace, Duration::from_millis(1500));
        assert_eq!(config.server.worker_threads, 4);
        assert_eq!(
            config.upstream.containerd_socket,
            Path::new("/tmp/ctd/ctd.sock")
        );
        assert_eq!(config.upstream.connect_timeout, Duration::from_secs(60));
        assert_eq!(config.log.format, LogFormat::Json);
        assert_eq!(config.log.level, "pullgate=debug");
    }

    #[test]
    fn group_name_resolves_from_etc_group() {
        let config = parse("[server]\nsocket_group = \"root\"\n").expect("root exists");
        assert_eq!(config.server.socket_gid, Some(0));
        let (field, problem) = field_error("[server]\nsocket_group = \"no-such-group-xyz\"\n");
        assert_eq!(field, "server.socket_group");
        assert!(problem.contains("does not exist"), "{problem}");
    }

    #[test]
    fn bad_mode_names_field() {
        let (field, problem) = field_error("[server]\nsocket_mode = \"0999\"\n");
        assert_eq!(field, "server.socket_mode");
        assert!(problem.contains("\"0999\""), "{problem}");
        let (field, _) = field_error("[server]\nsocket_mode = \"1777\"\n");
        assert_eq!(field, "server.socket_mode");
    }

    #[test]
    fn relative_and_overlong_socket_paths_are_rejected() {
        let (field, problem) = field_error("[server]\nsocket = \"pg.sock\"\n");
        assert_eq!(field, "server.socket");
        assert!(problem.contains("not an absolute path"), "{problem}");
        let long = format!("/{}", "a".repeat(120));
        let (field, problem) =
            field_error(&format!("[upstream]\ncontainerd_socket = \"{long}\"\n"));
        assert_eq!(field, "upstream.containerd_socket");
        assert!(problem.contains("limited to 107"), "{problem}");
    }

    #[test]
    fn forwarding_to_itself_is_rejected() {
        let (field, problem) = field_error(
            "[server]\nsocket = \"/run/x.sock\"\n[upstream]\ncontainerd_socket = \"/run/x.sock\"\n",
        );
        assert_eq!(field, "upstream.containerd_socket");
        assert!(problem.contains("forward to itself"), "{problem}");
    }

    #[test]
    fn bad_durations_are_rejected() {
        let (field, _) = field_error("[server]\nshutdown_grace = \"10\"\n");
        assert_eq!(field, "server.shutdown_grace");
        let (field, _) = field_error("[server]\nshutdown_grace = \"11m\"\n");
        assert_eq!(field, "server.shutdown_grace");
        let (field, _) = field_error("[upstream]\nconnect_timeout = \"0s\"\n");
        assert_eq!(field, "upstream.connect_timeout");
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("1d").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn unknown_fields_and_bad_enums_are_syntax_errors_naming_the_file() {
        for text in [
            "[server]\nsockett = \"/x\"\n",
            "[nonsense]\n",
            "[log]\nformat = \"xml\"\n",
            "[server]\nsocket = 5\n",
        ] {
            let err = parse(text).expect_err(text);
            let message = err.to_string();
            assert!(matches!(err, ConfigError::Syntax { .. }), "{message}");
            assert!(
                message.starts_with("config file /etc/pullgate/config.toml: "),
                "{message}"
            );
        }
        let message = parse("[server]\nsockett = \"/x\"\n")
            .unwrap_err()
            .to_string();
        assert!(message.contains("sockett"), "{message}");
    }

    #[test]
    fn rendered_config_parses_back_to_itself() {
        let config = parse(
            "[server]\nsocket_mode = \"0640\"\nsocket_group = \"0\"\n[log]\nformat = \"json\"\n",
        )
        .expect("valid");
        let rendered = config.to_string();
        assert!(rendered.contains("socket_mode = \"0640\""), "{rendered}");
        assert_eq!(parse(&rendered).expect("rendered config is valid"), config);
    }

    #[test]
    fn namespace_policies_and_verdict_age_are_read_and_validated() {
        let config = parse(
            r#"
            [policy]
            verdict_max_age = "24h"
            [[policy.namespace]]
            namespaces = ["kube-system"]
            dir = "/etc/pullgate/platform"
            [[policy.namespace]]
            namespaces = ["team-a-*", "team-a"]
            dir = "/etc/pullgate/team-a"
            "#,
        )
        .expect("valid");
        assert_eq!(
            config.policy.verdict_max_age,
            Some(Duration::from_secs(24 * 3600))
        );
        assert_eq!(
            config.policy.namespaces,
            vec![
                NamespacePolicyConfig {
                    namespaces: vec!["kube-system".into()],
                    dir: "/etc/pullgate/platform".into(),
                },
                NamespacePolicyConfig {
                    namespaces: vec!["team-a-*".into(), "team-a".into()],
                    dir: "/etc/pullgate/team-a".into(),
                },
            ]
        );
        assert_eq!(parse(&config.to_string()).expect("rendered"), config);
        let table = |namespaces: &str, dir: &str| {
            format!("[[policy.namespace]]\nnamespaces = {namespaces}\ndir = {dir:?}\n")
        };
        for (text, field, problem) in [
            (
                table("[]", "/p"),
                "policy.namespace.namespaces",
                "table 1: lists no namespace",
            ),
            (
                table(r#"["*"]"#, "/p"),
                "policy.namespace.namespaces",
                "table 1: \"*\" would match every namespace; that is what `policy.dir` is for",
            ),
            (
                table(r#"["Team_A"]"#, "/p"),
                "policy.namespace.namespaces",
                "table 1: \"Team_A\" is not a Kubernetes namespace name or a `prefix-*` pattern",
            ),
            (
                table(r#"["a"]"#, "relative"),
                "policy.namespace.dir",
                "relative is not an absolute path",
            ),
            (
                "[policy]\nverdict_max_age = \"1s\"\n".to_owned(),
                "policy.verdict_max_age",
                "\"1s\" is outside 60000ms..31622400s",
            ),
        ] {
            assert_eq!(
                field_error(&text),
                (field.to_owned(), problem.to_owned()),
                "{text}"
            );
        }
    }

    #[test]
    fn shipped_example_config_states_the_defaults() {
        let shipped = include_str!("../systemd/config.toml");
        assert_eq!(
            parse(shipped).expect("shipped config is valid"),
            Config::default()
        );
    }

    #[test]
    fn gate_sections_are_read_and_validated() {
        let config = parse(
            r#"
            [policy]
            dir = "/srv/notation"
            unmatched = "allow"
            reload_interval = "2s"
            [registry]
            hosts_dir = "/srv/certs.d"
            credentials_file = "/srv/config.json"
            insecure = ["127.0.0.1:5000"]
            timeout = "10s"
            [verify]
            max_signatures = 5
            [cache]
            max_entries = 10
            allow_ttl = "10m"
            deny_ttl = "0s"
            [metrics]
            listen = "127.0.0.1:9464"
            "#,
        )
        .expect("valid");
        assert_eq!(config.policy.dir, Path::new("/srv/notation"));
        assert_eq!(config.policy.unmatched, Unmatched::Allow);
        assert_eq!(config.registry.insecure, vec!["127.0.0.1:5000".to_owned()]);
        assert_eq!(config.registry.timeout, Duration::from_secs(10));
        assert_eq!(config.verify.max_signatures, 5);
        assert_eq!(config.cache.deny_ttl, Duration::ZERO);
        assert_eq!(
            config.metrics.listen,
            Some(MetricsListen::Tcp("127.0.0.1:9464".parse().expect("addr")))
        );
        assert_eq!(parse(&config.to_string()).expect("round trip"), config);
        let unix =
            parse("[metrics]\nlisten = \"unix:/run/pullgate/metrics.sock\"\n").expect("unix");
        assert_eq!(
            unix.metrics.listen,
            Some(MetricsListen::Unix(PathBuf::from(
                "/run/pullgate/metrics.sock"
            )))
        );
        for (text, field) in [
            ("[policy]\ndir = \"relative\"\n", "policy.dir"),
            (
                "[policy]\nreload_interval = \"1ms\"\n",
                "policy.reload_interval",
            ),
            (
                "[registry]\ninsecure = [\"http://x\"]\n",
                "registry.insecure",
            ),
            ("[registry]\ntimeout = \"0s\"\n", "registry.timeout"),
            ("[verify]\nmax_signatures = 0\n", "verify.max_signatures"),
            ("[cache]\nmax_entries = 0\n", "cache.max_entries"),
            ("[metrics]\nlisten = \"localhost\"\n", "metrics.listen"),
        ] {
            assert_eq!(field_error(text).0, field, "{text}");
        }
        assert!(matches!(
            parse("[policy]\nunmatched = \"maybe\"\n"),
            Err(ConfigError::Syntax { .. })
        ));
    }

    #[test]
    fn revocation_section_is_read_and_validated() {
        let config = parse(
            "[revocation]\ncache_dir = \"/var/tmp/crl\"\nmax_cache_mib = 8\ncrl_dir = \"/etc/pullgate/crl\"\n",
        )
        .expect("valid");
        assert_eq!(
            config.revocation,
            RevocationConfig {
                cache_dir: Some(PathBuf::from("/var/tmp/crl")),
                max_cache_bytes: 8 * 1024 * 1024,
                crl_dir: Some(PathBuf::from("/etc/pullgate/crl")),
            }
        );
        assert_eq!(parse(&config.to_string()).expect("renders"), config);
        let memory_only = parse("[revocation]\ncache_dir = \"\"\n").expect("valid");
        assert_eq!(memory_only.revocation.cache_dir, None);
        assert_eq!(
            parse(&memory_only.to_string()).expect("renders"),
            memory_only
        );
        for (text, field) in [
            (
                "[revocation]\ncache_dir = \"crl\"\n",
                "revocation.cache_dir",
            ),
            ("[revocation]\ncrl_dir = \"crl\"\n", "revocation.crl_dir"),
            (
                "[revocation]\nmax_cache_mib = 0\n",
                "revocation.max_cache_mib",
            ),
        ] {
            assert_eq!(field_error(text).0, field, "{text}");
        }
    }

    #[test]
    fn worker_threads_are_bounded() {
        let (field, _) = field_error("[server]\nworker_threads = 0\n");
        assert_eq!(field, "server.worker_threads");
        let (field, _) = field_error("[server]\nworker_threads = 65\n");
        assert_eq!(field, "server.worker_threads");
    }

    #[test]
    fn bad_log_level_is_rejected() {
        let (field, _) = field_error("[log]\nlevel = \"pullgate=loud\"\n");
        assert_eq!(field, "log.level");
    }

    #[test]
    fn missing_explicit_file_is_a_read_error() {
        let err = Config::load_or_default(Some(Path::new("/nonexistent/pullgate.toml")))
            .expect_err("missing file");
        assert!(matches!(err, ConfigError::Read { .. }));
        assert!(err.to_string().contains("/nonexistent/pullgate.toml"));
    }
}
