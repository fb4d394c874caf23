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

/// A fully validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub server: ServerConfig,
    pub upstream: UpstreamConfig,
    pub log: LogConfig,
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
    pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|source| ConfigError::Syntax {
            file: file.to_owned(),
            source: Box::new(source),
        })?;
        let field_error = |field: &'static str, problem: String| ConfigError::Field {
            file: file.to_owned(),
            field,
            problem,
        };
        let defaults = Config::default();

        let socket = raw.server.socket.unwrap_or(defaults.server.socket);
        check_socket_path(&socket).map_err(|p| field_error("server.socket", p))?;

        let socket_mode = match raw.server.socket_mode {
            None => defaults.server.socket_mode,
            Some(text) => parse_mode(&text).map_err(|p| field_error("server.socket_mode", p))?,
        };
        let socket_gid = match raw.server.socket_group {
            None => None,
            Some(name) => {
                Some(resolve_group(&name).map_err(|p| field_error("server.socket_group", p))?)
            }
        };
        let shutdown_grace = match raw.server.shutdown_grace {
            None => defaults.server.shutdown_grace,
            Some(text) => {
                let grace =
                    parse_duration(&text).map_err(|p| field_error("server.shutdown_grace", p))?;
                if grace > MAX_SHUTDOWN_GRACE {
                    return Err(field_error(
                        "server.shutdown_grace",
                        format!("{text:?} is longer than the maximum of 600s"),
                    ));
                }
                grace
            }
        };

        let worker_threads = raw
            .server
            .worker_threads
            .unwrap_or(defaults.server.worker_threads);
        if worker_threads == 0 || worker_threads > MAX_WORKER_THREADS {
            return Err(field_error(
                "server.worker_threads",
                format!("{worker_threads} is not between 1 and {MAX_WORKER_THREADS}"),
            ));
        }

        let containerd_socket = raw
            .upstream
            .containerd_socket
            .unwrap_or(defaults.upstream.containerd_socket);
        check_socket_path(&containerd_socket)
            .map_err(|p| field_error("upstream.containerd_socket", p))?;
        if containerd_socket == socket {
            return Err(field_error(
                "upstream.containerd_socket",
                format!(
                    "{} is also server.socket; pullgate would forward to itself",
                    containerd_socket.display()
                ),
            ));
        }
        let connect_timeout = match raw.upstream.connect_timeout {
            None => defaults.upstream.connect_timeout,
            Some(text) => {
                let timeout = parse_duration(&text)
                    .map_err(|p| field_error("upstream.connect_timeout", p))?;
                if timeout.is_zero() {
                    return Err(field_error(
                        "upstream.connect_timeout",
                        "must be greater than zero".to_owned(),
                    ));
                }
                timeout
            }
        };

        let format = raw.log.format.unwrap_or(defaults.log.format);
        let level = raw.log.level.unwrap_or(defaults.log.level);
        if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&level) {
            return Err(field_error(
                "log.level",
                format!("{level:?} is not a valid filter directive: {e}"),
            ));
        }

        Ok(Config {
            server: ServerConfig {
                socket,
                socket_mode,
                socket_gid,
                shutdown_grace,
                worker_threads,
            },
            upstream: UpstreamConfig {
                containerd_socket,
                connect_timeout,
            },
            log: LogConfig { format, level },
        })
    }
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

/// Parses durations written as `<integer><unit>` with unit `ms`, `s` or `m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration like \"500ms\", \"10s\" or \"2m\"");
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
        writeln!(f, "level = {:?}", self.log.level)
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
        assert!(parse_duration("1h").is_err());
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
    fn shipped_example_config_states_the_defaults() {
        let shipped = include_str!("../systemd/config.toml");
        assert_eq!(
            parse(shipped).expect("shipped config is valid"),
            Config::default()
        );
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
