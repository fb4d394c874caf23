//! `pullgate doctor`: can this node's kubelet pull around the gate?
//!
//! A gate the kubelet does not talk to verifies nothing and reports nothing. The usual
//! way that happens is quiet: a drop-in whose `KUBELET_EXTRA_ARGS` is overridden by
//! `/etc/default/kubelet`, a KubeletConfiguration whose endpoint a command-line flag
//! overrides, a kubelet too old to read `containerRuntimeEndpoint`, a kubelet not
//! restarted since the install. So the doctor looks at the running kubelet, not at
//! the files meant to configure it:
//!
//! 1. the pullgate config loads (socket, containerd socket, policy directory);
//! 2. the trust policy loads, as `pullgate policy check` and `pullgate serve` load it;
//! 3. something accepts connections on pullgate's socket;
//! 4. the kubelet process(es): `/proc/*/cmdline` with an argv[0] named `kubelet`;
//! 5. for each, its effective endpoints, worked out as the kubelet does: flags
//!    (`--container-runtime-endpoint`, `--image-service-endpoint`; last one wins) over
//!    the `--config-dir` drop-ins (`*.conf`, in name order, later wins) over the
//!    `--config` file over the default (`unix:///run/containerd/containerd.sock`,
//!    kubelet ≥ 1.27); the image endpoint defaults to the runtime endpoint. Both must
//!    be pullgate's socket, and neither may be containerd's;
//! 6. pullgate has accepted a connection from that very process (pid and start time,
//!    from the peer credentials pullgate records, see [`crate::clients`]). This is
//!    what catches a kubelet that reads its configuration differently than step 5
//!    thinks (kubelets before 1.27 ignore `containerRuntimeEndpoint`, for one).
//!
//! Each check prints `ok|warn|FAIL <check>: <what was found> — <fix>`.
//! Exit status: 0 nothing failed ([`EXIT_OK`]); 1 something failed, the gate can be
//! bypassed or is not working ([`EXIT_FAIL`]); 3 the only failure is that no kubelet
//! is running, so there was nothing to check it against ([`EXIT_NO_KUBELET`]).
//!
//! Files the kubelet names are read as the kubelet sees them, through
//! `/proc/<pid>/root` (and `/proc/<pid>/cwd` for relative paths), so a kubelet in its
//! own mount namespace is judged by its own files. That needs root.

use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::clients::{ClientsError, ClientsFile};
use crate::config::Config;

/// Exit status: every check passed (warnings allowed).
pub const EXIT_OK: u8 = 0;
/// Exit status: at least one check failed.
pub const EXIT_FAIL: u8 = 1;
/// Exit status: no kubelet process was found, and nothing else failed.
pub const EXIT_NO_KUBELET: u8 = 3;

/// The kubelet's default CRI endpoint when neither a flag nor the configuration sets
/// one (KubeletConfiguration v1beta1 default since kubelet 1.27).
pub const KUBELET_DEFAULT_ENDPOINT: &str = "unix:///run/containerd/containerd.sock";

/// A kubelet configuration file larger than this is not a kubelet configuration file.
const MAX_KUBELET_CONFIG_BYTES: u64 = 1 << 20;
/// Drop-ins read from a `--config-dir` at most.
const MAX_DROPINS: usize = 256;

/// `pullgate doctor` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct DoctorArgs {
    /// pullgate's config file (as for `serve`). Default: /etc/pullgate/config.toml if
    /// it exists, else built-in defaults.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Check this kubelet process instead of every process named `kubelet`.
    #[arg(long, value_name = "PID")]
    pub kubelet_pid: Option<u32>,
    /// The proc filesystem to read (for tests).
    #[arg(long, value_name = "DIR", default_value = "/proc")]
    pub proc_root: PathBuf,
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        })
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub status: Status,
    pub name: String,
    pub found: String,
    /// What to do about it; `None` for a passing check.
    pub fix: Option<String>,
}

impl Check {
    fn ok(name: impl Into<String>, found: impl Into<String>) -> Check {
        Check {
            status: Status::Ok,
            name: name.into(),
            found: found.into(),
            fix: None,
        }
    }

    fn fail(name: impl Into<String>, found: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            status: Status::Fail,
            name: name.into(),
            found: found.into(),
            fix: Some(fix.into()),
        }
    }

    fn warn(name: impl Into<String>, found: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            status: Status::Warn,
            ..Check::fail(name, found, fix)
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.name, self.found)?;
        if let Some(fix) = &self.fix {
            write!(f, " — {fix}")?;
        }
        Ok(())
    }
}

/// Every check, in the order they ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub checks: Vec<Check>,
}

/// The name of the check that finds the kubelet process.
const KUBELET_CHECK: &str = "kubelet";

impl Report {
    pub fn exit_code(&self) -> u8 {
        let mut failed = self.checks.iter().filter(|c| c.status == Status::Fail);
        match (failed.next(), failed.next()) {
            (None, _) => EXIT_OK,
            (Some(only), None) if only.name == KUBELET_CHECK => EXIT_NO_KUBELET,
            _ => EXIT_FAIL,
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for check in &self.checks {
            writeln!(f, "{check}")?;
        }
        Ok(())
    }
}

/// Runs every check.
pub fn run(args: &DoctorArgs) -> Report {
    let mut checks = Vec::new();
    let Some(config) = config_check(args, &mut checks) else {
        return Report { checks };
    };
    let socket = &config.server.socket;
    let containerd = &config.upstream.containerd_socket;
    checks.push(policy_check(&config.policy.dir));
    // Read before the socket check connects, so the doctor's own connection is not
    // among the clients it reports.
    let clients = ClientsFile::read(&crate::clients::state_file_path(socket));
    checks.push(socket_check(socket));

    let Some(kubelets) = kubelets_to_check(args, &mut checks) else {
        return Report { checks };
    };
    let several = kubelets.len() > 1;
    for kubelet in &kubelets {
        let suffix = if several {
            format!(" (pid {})", kubelet.pid)
        } else {
            String::new()
        };
        if args.kubelet_pid.is_none() || kubelet.is_kubelet() {
            checks.push(Check::ok(
                format!("{KUBELET_CHECK}{suffix}"),
                format!("pid {}: {}", kubelet.pid, kubelet.argv0()),
            ));
        }
        check_kubelet(
            kubelet,
            &args.proc_root,
            socket,
            containerd,
            &clients,
            &suffix,
            &mut checks,
        );
    }
    Report { checks }
}

/// pullgate's own config (the file, or the built-in defaults), with its check line;
/// `None` when it does not load (nothing else can be checked then).
fn config_check(args: &DoctorArgs, checks: &mut Vec<Check>) -> Option<Config> {
    let config_name = match &args.config {
        Some(path) => path.display().to_string(),
        None if Path::new(crate::config::DEFAULT_CONFIG_PATH).exists() => {
            crate::config::DEFAULT_CONFIG_PATH.to_owned()
        }
        None => format!(
            "built-in defaults (no {})",
            crate::config::DEFAULT_CONFIG_PATH
        ),
    };
    let config = match Config::load_or_default(args.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            checks.push(Check::fail(
                "config",
                error.to_string(),
                format!("fix the file (pullgate check-config --config {config_name})"),
            ));
            return None;
        }
    };
    checks.push(Check::ok(
        "config",
        format!(
            "{config_name}: pullgate listens on {}, forwards to containerd at {}",
            config.server.socket.display(),
            config.upstream.containerd_socket.display()
        ),
    ));
    Some(config)
}

/// The kubelet(s) to check: the one `--kubelet-pid` names, else every process whose
/// program is named kubelet; `None` (with the failing line pushed) when there is none.
fn kubelets_to_check(args: &DoctorArgs, checks: &mut Vec<Check>) -> Option<Vec<KubeletProcess>> {
    let kubelets = match args.kubelet_pid {
        Some(pid) => match KubeletProcess::read(&args.proc_root, pid) {
            Ok(process) => {
                if !process.is_kubelet() {
                    checks.push(Check::warn(
                        KUBELET_CHECK,
                        format!(
                            "pid {pid} runs {}, not a program named kubelet",
                            process.argv0()
                        ),
                        "checking it anyway, as --kubelet-pid asked",
                    ));
                }
                vec![process]
            }
            Err(error) => {
                checks.push(Check::fail(
                    KUBELET_CHECK,
                    format!("no process {pid}: {error}"),
                    "name the running kubelet's pid (pidof kubelet)",
                ));
                return None;
            }
        },
        None => match find_kubelets(&args.proc_root) {
            Ok(found) => found,
            Err(error) => {
                checks.push(Check::fail(
                    KUBELET_CHECK,
                    error.to_string(),
                    "run pullgate doctor as root on the node",
                ));
                return None;
            }
        },
    };
    if kubelets.is_empty() {
        checks.push(Check::fail(
            KUBELET_CHECK,
            format!(
                "no kubelet process is running (no {}/*/cmdline names a program kubelet)",
                args.proc_root.display()
            ),
            "start the kubelet (systemctl start kubelet) and run pullgate doctor again",
        ));
        return None;
    }
    Some(kubelets)
}

fn policy_check(dir: &Path) -> Check {
    match crate::policy_dir::load_policy_dir(dir) {
        Ok(policy) => Check::ok(
            "policy",
            format!(
                "{} loads: {} statement(s), {} trust store(s)",
                policy.policy_file.display(),
                policy.document.statements.len(),
                policy.stores.len()
            ),
        ),
        Err(error) => Check::fail(
            "policy",
            error.to_string(),
            format!(
                "pullgate refuses to start (and to reload) with it; see pullgate policy check --policy-dir {}",
                dir.display()
            ),
        ),
    }
}

fn socket_check(socket: &Path) -> Check {
    match std::os::unix::net::UnixStream::connect(socket) {
        Ok(_) => Check::ok(
            "pullgate socket",
            format!("{} accepts connections", socket.display()),
        ),
        Err(error) => Check::fail(
            "pullgate socket",
            format!("{}: {error}", socket.display()),
            "start pullgate (systemctl enable --now pullgate), then restart the kubelet",
        ),
    }
}

fn check_kubelet(
    kubelet: &KubeletProcess,
    proc_root: &Path,
    socket: &Path,
    containerd: &Path,
    clients: &Result<ClientsFile, ClientsError>,
    suffix: &str,
    checks: &mut Vec<Check>,
) {
    let flags = KubeletFlags::parse(&kubelet.argv);
    let files = KubeletFiles {
        proc_root,
        pid: kubelet.pid,
    };
    let layers = ConfigLayers::read(&flags, &files);
    let endpoints = effective_endpoints(&flags, &layers);
    let to_pullgate = format!(
        "point the kubelet at unix://{} with the pullgate kubelet drop-in (its flags come last and override the rest) and restart the kubelet",
        socket.display()
    );
    let mut direct = Vec::new();
    for (name, endpoint) in [
        ("runtime endpoint", &endpoints.runtime),
        ("image endpoint", &endpoints.image),
    ] {
        let name = format!("{name}{suffix}");
        match endpoint {
            Err(error) => checks.push(Check::fail(
                name,
                format!("cannot tell: {error}"),
                to_pullgate.clone(),
            )),
            Ok(setting) => {
                let target = Endpoint::parse(&setting.value);
                if target.is_socket(socket) {
                    checks.push(Check::ok(name, setting.to_string()));
                } else {
                    if target.is_socket(containerd) {
                        direct.push((name.clone(), setting.clone()));
                    }
                    checks.push(Check::fail(
                        name,
                        format!("{setting}, not pullgate's socket {}", socket.display()),
                        to_pullgate.clone(),
                    ));
                }
            }
        }
    }
    let name = format!("containerd socket{suffix}");
    if direct.is_empty() {
        checks.push(Check::ok(
            name,
            format!(
                "the kubelet does not use containerd's socket {} directly",
                containerd.display()
            ),
        ));
    } else {
        let which = direct
            .iter()
            .map(|(name, setting)| format!("{name} is {}", setting.value))
            .collect::<Vec<_>>()
            .join(", ");
        checks.push(Check::fail(
            name,
            format!(
                "{which}: the kubelet talks to containerd ({}) directly and its pulls skip the gate",
                containerd.display()
            ),
            to_pullgate.clone(),
        ));
    }
    checks.push(connection_check(kubelet, clients, suffix));
}

fn connection_check(
    kubelet: &KubeletProcess,
    clients: &Result<ClientsFile, ClientsError>,
    suffix: &str,
) -> Check {
    let name = format!("kubelet connected{suffix}");
    let clients =
        match clients {
            Ok(clients) => clients,
            Err(error) => return Check::fail(
                name,
                format!("no record of pullgate's clients: {error}"),
                "start pullgate (it writes the record beside its socket), then restart the kubelet",
            ),
        };
    match clients.find(kubelet.pid, kubelet.start_ticks) {
        Some(record) => {
            let at = |secs: u64| {
                crate::pki::time::rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
            };
            Check::ok(
                name,
                format!(
                    "pid {} connected to pullgate {} time(s), first {}, last {}",
                    kubelet.pid,
                    record.connections,
                    at(record.first_connect),
                    at(record.last_connect)
                ),
            )
        }
        None => Check::fail(
            name,
            format!(
                "pullgate has accepted no connection from pid {} ({} client process(es) on record)",
                kubelet.pid,
                clients.clients.len()
            ),
            "the kubelet is not talking to pullgate: fix the endpoints and restart the kubelet (systemctl restart kubelet)",
        ),
    }
}

/// Why the kubelet process or its configuration could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DoctorError {
    #[error("cannot list {dir}: {source}")]
    ListProc {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: larger than {limit} bytes")]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("{path}: more than {MAX_DROPINS} drop-in files")]
    TooManyDropins { path: PathBuf },
    #[error("{path}: {source}")]
    KubeletConfig {
        path: PathBuf,
        #[source]
        source: KubeletConfigError,
    },
    #[error("the kubelet's containerRuntimeEndpoint ({from}) is empty; the kubelet does not start like that")]
    EmptyRuntimeEndpoint { from: Source },
}

/// A running process that may be the kubelet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeletProcess {
    pub pid: u32,
    pub argv: Vec<String>,
    pub start_ticks: Option<u64>,
}

impl KubeletProcess {
    /// Reads `<proc_root>/<pid>/cmdline` (and `stat`, for the start time).
    pub fn read(proc_root: &Path, pid: u32) -> Result<KubeletProcess, DoctorError> {
        let dir = proc_root.join(pid.to_string());
        let path = dir.join("cmdline");
        let bytes = std::fs::read(&path).map_err(|source| DoctorError::Read { path, source })?;
        Ok(KubeletProcess {
            pid,
            argv: split_cmdline(&bytes),
            start_ticks: std::fs::read_to_string(dir.join("stat"))
                .ok()
                .and_then(|stat| crate::clients::start_ticks(&stat)),
        })
    }

    pub fn argv0(&self) -> &str {
        self.argv.first().map(String::as_str).unwrap_or("")
    }

    /// argv[0]'s last path component is `kubelet`.
    pub fn is_kubelet(&self) -> bool {
        Path::new(self.argv0()).file_name() == Some(std::ffi::OsStr::new("kubelet"))
    }
}

/// `/proc/<pid>/cmdline`: arguments each ended by a NUL.
fn split_cmdline(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_suffix(b"\0").unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes
        .split(|b| *b == 0)
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect()
}

/// Every process under `proc_root` whose argv[0] is a program named `kubelet`.
pub fn find_kubelets(proc_root: &Path) -> Result<Vec<KubeletProcess>, DoctorError> {
    let entries = std::fs::read_dir(proc_root).map_err(|source| DoctorError::ListProc {
        dir: proc_root.to_owned(),
        source,
    })?;
    let mut found: Vec<KubeletProcess> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        // A process may exit between the listing and the read: not a kubelet then.
        .filter_map(|pid| KubeletProcess::read(proc_root, pid).ok())
        .filter(KubeletProcess::is_kubelet)
        .collect();
    found.sort_by_key(|p| p.pid);
    Ok(found)
}

/// The kubelet flags that decide its endpoints, as pflag reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeletFlags {
    pub runtime_endpoint: Option<String>,
    pub image_endpoint: Option<String>,
    pub config: Option<String>,
    pub config_dir: Option<String>,
}

impl KubeletFlags {
    /// Parses a kubelet command line (argv[0] first). `--flag=value` and
    /// `--flag value` both count, the last occurrence wins, `_` in a flag name reads
    /// as `-` (the kubelet's word-separator normalisation), and `--` ends the flags.
    pub fn parse(argv: &[String]) -> KubeletFlags {
        let mut flags = KubeletFlags::default();
        let mut args = argv.iter().skip(1);
        while let Some(arg) = args.next() {
            if arg == "--" {
                break;
            }
            let Some(flag) = arg.strip_prefix("--") else {
                continue;
            };
            let (name, inline) = match flag.split_once('=') {
                Some((name, value)) => (name, Some(value.to_owned())),
                None => (flag, None),
            };
            let slot = match name.replace('_', "-").as_str() {
                "container-runtime-endpoint" => &mut flags.runtime_endpoint,
                "image-service-endpoint" => &mut flags.image_endpoint,
                "config" => &mut flags.config,
                "config-dir" => &mut flags.config_dir,
                // Other flags' values are never taken for these: a separate value
                // of a flag we do not know cannot start with `--` in practice.
                _ => continue,
            };
            // These four are string flags: without `=` the next argument is the value.
            *slot = match inline {
                Some(value) => Some(value),
                None => args.next().cloned(),
            };
        }
        flags
    }
}

/// Where an endpoint setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag(&'static str),
    ConfigFile(PathBuf),
    ConfigDropin(PathBuf),
    /// The image endpoint is unset, so it is the runtime endpoint.
    RuntimeEndpoint,
    KubeletDefault,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag(flag) => write!(f, "flag --{flag}"),
            Source::ConfigFile(path) => write!(f, "--config {}", path.display()),
            Source::ConfigDropin(path) => write!(f, "--config-dir drop-in {}", path.display()),
            Source::RuntimeEndpoint => f.write_str("unset, so the runtime endpoint"),
            Source::KubeletDefault => f.write_str("set nowhere, so the kubelet's default"),
        }
    }
}

/// An effective endpoint and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub value: String,
    pub source: Source,
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.value, self.source)
    }
}

/// The endpoints set by one KubeletConfiguration file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigEndpoints {
    pub runtime: Option<String>,
    pub image: Option<String>,
}

/// The kubelet's configuration files, lowest precedence first, each read or not.
#[derive(Debug)]
pub struct ConfigLayers {
    layers: Vec<(Source, Result<ConfigEndpoints, DoctorError>)>,
}

/// Reads files as the kubelet `pid` sees them.
struct KubeletFiles<'a> {
    proc_root: &'a Path,
    pid: u32,
}

impl KubeletFiles<'_> {
    /// The path as seen by the kubelet (`cwd`-relative ones made absolute) and the
    /// path through which the doctor reads it.
    fn locate(&self, path: &str) -> (PathBuf, PathBuf) {
        let process = self.proc_root.join(self.pid.to_string());
        let path = Path::new(path);
        if path.is_absolute() {
            let inside = path.strip_prefix("/").unwrap_or(path);
            (path.to_owned(), process.join("root").join(inside))
        } else {
            let cwd = std::fs::read_link(process.join("cwd")).unwrap_or_default();
            (cwd.join(path), process.join("cwd").join(path))
        }
    }

    fn read_config(&self, shown: &Path, real: &Path) -> Result<ConfigEndpoints, DoctorError> {
        let read = |source| DoctorError::Read {
            path: shown.to_owned(),
            source,
        };
        let meta = std::fs::metadata(real).map_err(read)?;
        if meta.len() > MAX_KUBELET_CONFIG_BYTES {
            return Err(DoctorError::TooLarge {
                path: shown.to_owned(),
                limit: MAX_KUBELET_CONFIG_BYTES,
            });
        }
        let text = std::fs::read_to_string(real).map_err(read)?;
        read_kubelet_config(&text).map_err(|source| DoctorError::KubeletConfig {
            path: shown.to_owned(),
            source,
        })
    }
}

impl ConfigLayers {
    fn read(flags: &KubeletFlags, files: &KubeletFiles<'_>) -> ConfigLayers {
        let mut layers = Vec::new();
        if let Some(config) = flags.config.as_deref().filter(|c| !c.is_empty()) {
            let (shown, real) = files.locate(config);
            let result = files.read_config(&shown, &real);
            layers.push((Source::ConfigFile(shown), result));
        }
        if let Some(dir) = flags.config_dir.as_deref().filter(|c| !c.is_empty()) {
            let (shown, real) = files.locate(dir);
            match dropin_names(&real) {
                Ok(names) if names.len() > MAX_DROPINS => layers.push((
                    Source::ConfigDropin(shown.clone()),
                    Err(DoctorError::TooManyDropins { path: shown }),
                )),
                Ok(names) => {
                    for name in names {
                        let shown = shown.join(&name);
                        let result = files.read_config(&shown, &real.join(&name));
                        layers.push((Source::ConfigDropin(shown), result));
                    }
                }
                Err(source) => layers.push((
                    Source::ConfigDropin(shown.clone()),
                    Err(DoctorError::Read {
                        path: shown,
                        source,
                    }),
                )),
            }
        }
        ConfigLayers { layers }
    }
}

/// The `*.conf` files of a `--config-dir`, in the order the kubelet merges them
/// (by name).
fn dropin_names(dir: &Path) -> std::io::Result<Vec<std::ffi::OsString>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if Path::new(&name).extension() == Some(std::ffi::OsStr::new("conf"))
            && !entry.file_type()?.is_dir()
        {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// The endpoints the kubelet uses.
#[derive(Debug)]
pub struct EffectiveEndpoints {
    pub runtime: Result<Setting, DoctorError>,
    pub image: Result<Setting, DoctorError>,
}

/// Flags over drop-ins (later over earlier) over the config file over the default;
/// an unset or empty image endpoint is the runtime endpoint. A file that could not be
/// read leaves the answer unknown unless a flag decides it anyway.
pub fn effective_endpoints(flags: &KubeletFlags, layers: &ConfigLayers) -> EffectiveEndpoints {
    let from_files = |field: fn(&ConfigEndpoints) -> &Option<String>| {
        for (source, layer) in layers.layers.iter().rev() {
            match layer {
                Err(error) => return Err(error.clone_for_report()),
                Ok(endpoints) => {
                    if let Some(value) = field(endpoints) {
                        return Ok(Some(Setting {
                            value: value.clone(),
                            source: source.clone(),
                        }));
                    }
                }
            }
        }
        Ok(None)
    };
    let runtime = match &flags.runtime_endpoint {
        Some(value) => Ok(Setting {
            value: value.clone(),
            source: Source::Flag("container-runtime-endpoint"),
        }),
        None => from_files(|e| &e.runtime).map(|setting| {
            setting.unwrap_or_else(|| Setting {
                value: KUBELET_DEFAULT_ENDPOINT.to_owned(),
                source: Source::KubeletDefault,
            })
        }),
    };
    let runtime = runtime.and_then(|setting| {
        if setting.value.is_empty() {
            Err(DoctorError::EmptyRuntimeEndpoint {
                from: setting.source,
            })
        } else {
            Ok(setting)
        }
    });
    let image = match &flags.image_endpoint {
        Some(value) => Ok(Some(Setting {
            value: value.clone(),
            source: Source::Flag("image-service-endpoint"),
        })),
        None => from_files(|e| &e.image),
    };
    let image = match image {
        Ok(Some(setting)) if !setting.value.is_empty() => Ok(setting),
        Ok(_) => match &runtime {
            Ok(runtime) => Ok(Setting {
                value: runtime.value.clone(),
                source: Source::RuntimeEndpoint,
            }),
            Err(error) => Err(error.clone_for_report()),
        },
        Err(error) => Err(error),
    };
    EffectiveEndpoints { runtime, image }
}

impl DoctorError {
    /// The same error for a second line of the report (`io::Error` is not `Clone`).
    fn clone_for_report(&self) -> DoctorError {
        match self {
            DoctorError::ListProc { dir, source } => DoctorError::ListProc {
                dir: dir.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            DoctorError::Read { path, source } => DoctorError::Read {
                path: path.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            DoctorError::TooLarge { path, limit } => DoctorError::TooLarge {
                path: path.clone(),
                limit: *limit,
            },
            DoctorError::TooManyDropins { path } => {
                DoctorError::TooManyDropins { path: path.clone() }
            }
            DoctorError::KubeletConfig { path, source } => DoctorError::KubeletConfig {
                path: path.clone(),
                source: source.clone(),
            },
            DoctorError::EmptyRuntimeEndpoint { from } => {
                DoctorError::EmptyRuntimeEndpoint { from: from.clone() }
            }
        }
    }
}

/// A CRI endpoint as the kubelet dials it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    /// `tcp://…`, `npipe://…` or anything else: never pullgate's socket.
    Other(String),
}

impl Endpoint {
    /// As the kubelet parses it: `unix://<host>/<path>` dials `/<path>`, a bare
    /// absolute path is taken as a unix socket (with a deprecation warning).
    pub fn parse(endpoint: &str) -> Endpoint {
        if let Some(rest) = endpoint.strip_prefix("unix:") {
            let path = match rest.strip_prefix("//") {
                // The URL's host part (normally empty) is ignored.
                Some(authority_and_path) => match authority_and_path.find('/') {
                    Some(slash) => &authority_and_path[slash..],
                    None => "",
                },
                None => rest,
            };
            return Endpoint::Unix(PathBuf::from(path));
        }
        if endpoint.starts_with('/') {
            return Endpoint::Unix(PathBuf::from(endpoint));
        }
        Endpoint::Other(endpoint.to_owned())
    }

    /// Whether this endpoint is the unix socket `socket`, after normalising both
    /// paths: `//` and `.` collapsed, `..` resolved, `/var/run` read as `/run` (a
    /// symlink on every current distribution), and symlinks resolved where the path
    /// exists.
    pub fn is_socket(&self, socket: &Path) -> bool {
        match self {
            Endpoint::Unix(path) => {
                !path.as_os_str().is_empty() && normalise_path(path) == normalise_path(socket)
            }
            Endpoint::Other(_) => false,
        }
    }
}

fn normalise_path(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    if let Ok(rest) = out.strip_prefix("/var/run") {
        out = Path::new("/run").join(rest);
    }
    match std::fs::canonicalize(&out) {
        Ok(real) => real,
        Err(_) => out,
    }
}

/// Why a KubeletConfiguration file could not be read for its endpoints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KubeletConfigError {
    #[error("not valid JSON: {reason}")]
    Json { reason: String },
    #[error("{key} is not a string")]
    NotAString { key: &'static str },
    #[error("line {line}: {key} is set twice")]
    Duplicate { line: usize, key: &'static str },
    #[error("line {line}: {key} is not a one-line value (block scalar, flow collection, anchor, alias or tag); write it as key: value")]
    UnsupportedValue { line: usize, key: &'static str },
    #[error("line {line}: the value of {key} continues on the next line; write it on one line")]
    MultiLineValue { line: usize, key: &'static str },
    #[error("line {line}: an unterminated quoted value")]
    UnterminatedQuote { line: usize },
    #[error("line {line}: unsupported escape in a double-quoted value")]
    UnsupportedEscape { line: usize },
    #[error("line {line}: not a top-level key: value line")]
    NotAKeyLine { line: usize },
    #[error("line {line}: a second YAML document; a KubeletConfiguration file has one")]
    SecondDocument { line: usize },
}

/// The two top-level keys the doctor reads.
const RUNTIME_KEY: &str = "containerRuntimeEndpoint";
const IMAGE_KEY: &str = "imageServiceEndpoint";

/// Reads `containerRuntimeEndpoint` and `imageServiceEndpoint` from a
/// KubeletConfiguration file, YAML (as kubeadm writes it) or JSON.
///
/// Not a YAML parser: the two fields are top-level strings, and a top-level key of a
/// block mapping is always a line starting in column 0 (a value's continuation lines,
/// nested mappings and block scalars are indented; only a block sequence may sit at
/// its key's indentation, and its lines start with `- `). So every other column-0 line
/// must be a `key: value` line, a comment or a document marker, and the two keys' values must
/// be one-line plain, single- or double-quoted scalars. Anything else (a flow-style
/// document, an anchor, a block scalar, a second document, an unterminated quote) is
/// an error rather than a guess: the doctor would rather say "cannot tell" than
/// report a gate as closed on a misreading. A file starting with `{` is JSON.
pub fn read_kubelet_config(text: &str) -> Result<ConfigEndpoints, KubeletConfigError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim_start().starts_with('{') {
        return read_json_config(text);
    }
    let mut endpoints = ConfigEndpoints::default();
    let mut seen_key = false;
    // The key whose value must not continue on the following lines.
    let mut open: Option<(usize, &'static str)> = None;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        // Indented lines, and `- item` lines of a sequence written at its key's own
        // indentation (`clusterDNS:\n- 10.96.0.10`, as kubeadm writes it), belong to
        // the value of the key above.
        let sequence_entry = seen_key && (line == "-" || line.starts_with("- "));
        if line.starts_with([' ', '\t']) || sequence_entry {
            if let Some((line, key)) = open {
                return Err(KubeletConfigError::MultiLineValue { line, key });
            }
            continue;
        }
        open = None;
        if line.starts_with("---") && is_marker_end(&line[3..]) {
            if seen_key {
                return Err(KubeletConfigError::SecondDocument { line: number });
            }
            continue;
        }
        if line.starts_with("...") && is_marker_end(&line[3..]) {
            break;
        }
        if line.starts_with('%') && !seen_key {
            continue; // a directive (%YAML 1.2)
        }
        let (key, value) = split_key_line(line, number)?;
        seen_key = true;
        let (slot, name) = match key.as_str() {
            RUNTIME_KEY => (&mut endpoints.runtime, RUNTIME_KEY),
            IMAGE_KEY => (&mut endpoints.image, IMAGE_KEY),
            _ => {
                // Another key: only a quote left open on its line could hide a
                // column-0 line inside its value.
                if let Err(ScalarError::Unterminated) = scalar(value) {
                    return Err(KubeletConfigError::UnterminatedQuote { line: number });
                }
                continue;
            }
        };
        if slot.is_some() {
            return Err(KubeletConfigError::Duplicate {
                line: number,
                key: name,
            });
        }
        match scalar(value) {
            Ok(Some(Scalar::Plain(text))) if is_null(&text) => *slot = Some(String::new()),
            Ok(Some(Scalar::Plain(text)) | Some(Scalar::Quoted(text))) => *slot = Some(text),
            // `key:` with nothing after it: null, unless indented lines follow.
            Ok(None) => *slot = Some(String::new()),
            Err(ScalarError::Unsupported) => {
                return Err(KubeletConfigError::UnsupportedValue {
                    line: number,
                    key: name,
                })
            }
            Err(ScalarError::Unterminated) => {
                return Err(KubeletConfigError::UnterminatedQuote { line: number })
            }
            Err(ScalarError::Escape) => {
                return Err(KubeletConfigError::UnsupportedEscape { line: number })
            }
        }
        open = Some((number, name));
    }
    // An empty value (YAML null) leaves the field at the kubelet's default.
    endpoints.runtime = endpoints.runtime.filter(|v| !v.is_empty());
    endpoints.image = endpoints.image.filter(|v| !v.is_empty());
    Ok(endpoints)
}

fn read_json_config(text: &str) -> Result<ConfigEndpoints, KubeletConfigError> {
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|error| KubeletConfigError::Json {
            reason: error.to_string(),
        })?;
    let field = |key: &'static str| match map.get(key) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) if s.is_empty() => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(KubeletConfigError::NotAString { key }),
    };
    Ok(ConfigEndpoints {
        runtime: field(RUNTIME_KEY)?,
        image: field(IMAGE_KEY)?,
    })
}

fn is_marker_end(rest: &str) -> bool {
    rest.is_empty() || rest.starts_with([' ', '\t'])
}

fn is_null(text: &str) -> bool {
    matches!(text, "~" | "null" | "Null" | "NULL")
}

/// Splits a column-0 `key: value` line; the key may be quoted.
fn split_key_line(line: &str, number: usize) -> Result<(String, &str), KubeletConfigError> {
    let not_a_key = KubeletConfigError::NotAKeyLine { line: number };
    let (key, rest) = if line.starts_with(['"', '\'']) {
        let (key, consumed) = quoted(line).map_err(|_| not_a_key.clone())?;
        (key, &line[consumed..])
    } else {
        if line.starts_with(['-', '?', '[', '{', '&', '*', '!', '|', '>']) {
            return Err(not_a_key);
        }
        let colon = line
            .char_indices()
            .find(|&(i, c)| {
                c == ':'
                    && line[i + 1..]
                        .chars()
                        .next()
                        .is_none_or(|n| n == ' ' || n == '\t')
            })
            .map(|(i, _)| i)
            .ok_or_else(|| not_a_key.clone())?;
        (line[..colon].trim_end().to_owned(), &line[colon..])
    };
    let rest = rest.trim_start_matches([' ', '\t']);
    let value = rest.strip_prefix(':').ok_or(not_a_key)?;
    if !value.is_empty() && !value.starts_with([' ', '\t']) {
        return Err(KubeletConfigError::NotAKeyLine { line: number });
    }
    Ok((key, value))
}

enum Scalar {
    Plain(String),
    Quoted(String),
}

/// Why a value is not a one-line scalar the reader accepts.
enum ScalarError {
    /// A block scalar, flow collection, anchor, alias or tag.
    Unsupported,
    /// A quote not closed on its line.
    Unterminated,
    /// A double-quoted escape other than `\\`, `\"` and `\/`.
    Escape,
}

/// A one-line scalar value and its trailing comment; `None` when there is none.
fn scalar(value: &str) -> Result<Option<Scalar>, ScalarError> {
    let value = value.trim_matches([' ', '\t']);
    if value.is_empty() || value.starts_with('#') {
        return Ok(None);
    }
    if value.starts_with(['"', '\'']) {
        let (text, consumed) = quoted(value)?;
        let rest = value[consumed..].trim_start_matches([' ', '\t']);
        if !rest.is_empty() && !rest.starts_with('#') {
            return Err(ScalarError::Unsupported);
        }
        return Ok(Some(Scalar::Quoted(text)));
    }
    if value.starts_with(['[', '{', '|', '>', '&', '*', '!', '%', '@', '`']) {
        return Err(ScalarError::Unsupported);
    }
    // A plain scalar ends at ` #` (a comment).
    let end = value
        .char_indices()
        .find(|&(i, c)| c == '#' && value[..i].ends_with([' ', '\t']))
        .map(|(i, _)| i)
        .unwrap_or(value.len());
    Ok(Some(Scalar::Plain(value[..end].trim_end().to_owned())))
}

/// A single- or double-quoted scalar at the start of `text`: its value and the bytes
/// it took, closing quote included.
fn quoted(text: &str) -> Result<(String, usize), ScalarError> {
    let mut chars = text.char_indices();
    let Some((_, quote)) = chars.next() else {
        return Err(ScalarError::Unterminated);
    };
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match (quote, c) {
            ('\'', '\'') => {
                if text[i + 1..].starts_with('\'') {
                    chars.next();
                    out.push('\'');
                } else {
                    return Ok((out, i + 1));
                }
            }
            ('"', '"') => return Ok((out, i + 1)),
            ('"', '\\') => match chars.next() {
                Some((_, escaped @ ('\\' | '"' | '/'))) => out.push(escaped),
                _ => return Err(ScalarError::Escape),
            },
            _ => out.push(c),
        }
    }
    Err(ScalarError::Unterminated)
}

/// `pullgate doctor`: prints the report, returns the exit status.
pub fn main(args: &DoctorArgs) -> std::process::ExitCode {
    use std::io::Write;
    let report = run(args);
    // A closed stdout (`| head`) is not worth a panic.
    let _ = std::io::stdout().write_all(report.to_string().as_bytes());
    std::process::ExitCode::from(report.exit_code())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn flags_in_both_forms_last_wins_and_underscores_normalise() {
        let flags = KubeletFlags::parse(&argv(
            "/usr/bin/kubelet --bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf \
             --kubeconfig=/etc/kubernetes/kubelet.conf --config=/var/lib/kubelet/config.yaml \
             --container-runtime-endpoint=unix:///var/run/containerd/containerd.sock \
             --pod-infra-container-image=registry.k8s.io/pause:3.9 \
             --container_runtime_endpoint unix:///run/pullgate/pullgate.sock \
             --image-service-endpoint /run/pullgate/pullgate.sock --fail-swap-on=false",
        ));
        assert_eq!(
            flags,
            KubeletFlags {
                runtime_endpoint: Some("unix:///run/pullgate/pullgate.sock".into()),
                image_endpoint: Some("/run/pullgate/pullgate.sock".into()),
                config: Some("/var/lib/kubelet/config.yaml".into()),
                config_dir: None,
            }
        );
        let flags = KubeletFlags::parse(&argv("kubelet -- --config=/x"));
        assert_eq!(flags, KubeletFlags::default());
        // A flag at the very end without its value is unset, as pflag would refuse it.
        let flags = KubeletFlags::parse(&argv("kubelet --config-dir"));
        assert_eq!(flags.config_dir, None);
    }

    /// `/var/lib/kubelet/config.yaml` as kubeadm 1.30 writes it (nested mappings,
    /// lists, quoted and plain values); the same file the doctor's integration tests use.
    const KUBEADM_CONFIG: &str = include_str!("../tests/data/kubeadm-config.yaml");

    #[test]
    fn kubeadm_config_reads_empty_endpoint_as_unset() {
        assert_eq!(
            read_kubelet_config(KUBEADM_CONFIG),
            Ok(ConfigEndpoints::default())
        );
        let with = KUBEADM_CONFIG.replace(
            "containerRuntimeEndpoint: \"\"",
            "containerRuntimeEndpoint: unix:///run/pullgate/pullgate.sock # pullgate\nimageServiceEndpoint: 'unix:///run/pullgate/pullgate.sock'",
        );
        assert_eq!(
            read_kubelet_config(&with),
            Ok(ConfigEndpoints {
                runtime: Some("unix:///run/pullgate/pullgate.sock".into()),
                image: Some("unix:///run/pullgate/pullgate.sock".into()),
            })
        );
    }

    #[test]
    fn yaml_forms_it_will_not_guess_at_are_errors() {
        let cases: &[(&str, KubeletConfigError)] = &[
            (
                "kind: KubeletConfiguration\ncontainerRuntimeEndpoint: unix:///run/a\n  .sock\n",
                KubeletConfigError::MultiLineValue {
                    line: 2,
                    key: RUNTIME_KEY,
                },
            ),
            (
                "containerRuntimeEndpoint: >-\n  unix:///run/a.sock\n",
                KubeletConfigError::UnsupportedValue {
                    line: 1,
                    key: RUNTIME_KEY,
                },
            ),
            (
                "containerRuntimeEndpoint: &e unix:///run/a.sock\nimageServiceEndpoint: *e\n",
                KubeletConfigError::UnsupportedValue {
                    line: 1,
                    key: RUNTIME_KEY,
                },
            ),
            (
                "containerRuntimeEndpoint: a\ncontainerRuntimeEndpoint: b\n",
                KubeletConfigError::Duplicate {
                    line: 2,
                    key: RUNTIME_KEY,
                },
            ),
            (
                "containerRuntimeEndpoint:\n  unix:///run/a.sock\n",
                KubeletConfigError::MultiLineValue {
                    line: 1,
                    key: RUNTIME_KEY,
                },
            ),
            (
                "kind: KubeletConfiguration\n---\ncontainerRuntimeEndpoint: a\n",
                KubeletConfigError::SecondDocument { line: 2 },
            ),
            (
                "staticPodPath: \"/etc/kubernetes\nmanifests\"\n",
                KubeletConfigError::UnterminatedQuote { line: 1 },
            ),
            (
                "containerRuntimeEndpoint: \"unix:\\x2frun\"\n",
                KubeletConfigError::UnsupportedEscape { line: 1 },
            ),
            (
                "{containerRuntimeEndpoint: unix:///run/a.sock}\n",
                KubeletConfigError::Json {
                    reason: "key must be a string at line 1 column 2".into(),
                },
            ),
            ("- a\n", KubeletConfigError::NotAKeyLine { line: 1 }),
        ];
        for (text, expected) in cases {
            assert_eq!(read_kubelet_config(text).as_ref(), Err(expected), "{text}");
        }
    }

    #[test]
    fn yaml_forms_it_reads() {
        let text = "%YAML 1.2\n---\n# pullgate\n\"containerRuntimeEndpoint\" : \"unix:///run/p.sock\"  # c\nimageServiceEndpoint: ~\nother: 'it''s: #not a comment'\n...\nignored: [\n";
        assert_eq!(
            read_kubelet_config(text),
            Ok(ConfigEndpoints {
                runtime: Some("unix:///run/p.sock".into()),
                image: None,
            })
        );
        let json = r#"{"apiVersion":"kubelet.config.k8s.io/v1beta1","kind":"KubeletConfiguration","containerRuntimeEndpoint":"unix:///run/p.sock"}"#;
        assert_eq!(
            read_kubelet_config(json),
            Ok(ConfigEndpoints {
                runtime: Some("unix:///run/p.sock".into()),
                image: None,
            })
        );
        assert_eq!(
            read_kubelet_config(r#"{"containerRuntimeEndpoint": 5}"#),
            Err(KubeletConfigError::NotAString { key: RUNTIME_KEY })
        );
    }

    fn layers(files: Vec<(Source, Result<ConfigEndpoints, DoctorError>)>) -> ConfigLayers {
        ConfigLayers { layers: files }
    }

    #[test]
    fn precedence_flags_then_dropins_then_config_then_default() {
        let config = Source::ConfigFile("/var/lib/kubelet/config.yaml".into());
        let dropin = Source::ConfigDropin("/etc/kubernetes/kubelet.conf.d/50-pullgate.conf".into());
        let files = layers(vec![
            (
                config.clone(),
                Ok(ConfigEndpoints {
                    runtime: Some("unix:///run/containerd/containerd.sock".into()),
                    image: Some("unix:///run/containerd/containerd.sock".into()),
                }),
            ),
            (
                dropin.clone(),
                Ok(ConfigEndpoints {
                    runtime: Some("unix:///run/pullgate/pullgate.sock".into()),
                    image: None,
                }),
            ),
        ]);
        let effective = effective_endpoints(&KubeletFlags::default(), &files);
        assert_eq!(effective.runtime.expect("runtime").source, dropin);
        // The drop-in does not set the image endpoint; the config file's stands.
        assert_eq!(
            effective.image.expect("image"),
            Setting {
                value: "unix:///run/containerd/containerd.sock".into(),
                source: config,
            }
        );

        let flags = KubeletFlags {
            runtime_endpoint: Some("unix:///var/run/containerd/containerd.sock".into()),
            image_endpoint: Some(String::new()),
            ..Default::default()
        };
        let effective = effective_endpoints(&flags, &files);
        let runtime = effective.runtime.expect("runtime");
        assert_eq!(runtime.source, Source::Flag("container-runtime-endpoint"));
        // An explicitly empty image flag means "same as the runtime endpoint".
        assert_eq!(effective.image.expect("image").value, runtime.value);

        let effective = effective_endpoints(&KubeletFlags::default(), &layers(vec![]));
        assert_eq!(
            effective.runtime.expect("runtime"),
            Setting {
                value: KUBELET_DEFAULT_ENDPOINT.into(),
                source: Source::KubeletDefault
            }
        );
        assert_eq!(
            effective.image.expect("image").source,
            Source::RuntimeEndpoint
        );
    }

    #[test]
    fn an_unreadable_file_is_unknown_unless_a_flag_decides() {
        let unreadable = || {
            layers(vec![(
                Source::ConfigFile("/var/lib/kubelet/config.yaml".into()),
                Err(DoctorError::KubeletConfig {
                    path: "/var/lib/kubelet/config.yaml".into(),
                    source: KubeletConfigError::SecondDocument { line: 3 },
                }),
            )])
        };
        let effective = effective_endpoints(&KubeletFlags::default(), &unreadable());
        assert!(matches!(
            effective.runtime,
            Err(DoctorError::KubeletConfig { .. })
        ));
        assert!(matches!(
            effective.image,
            Err(DoctorError::KubeletConfig { .. })
        ));
        let flags = KubeletFlags {
            runtime_endpoint: Some("unix:///run/p.sock".into()),
            image_endpoint: Some("unix:///run/p.sock".into()),
            ..Default::default()
        };
        let effective = effective_endpoints(&flags, &unreadable());
        assert!(effective.runtime.is_ok() && effective.image.is_ok());
    }

    #[test]
    fn endpoints_normalise_like_the_kubelet_dials_them() {
        let socket = Path::new("/run/pullgate-doctor-test/pullgate.sock");
        for same in [
            "unix:///run/pullgate-doctor-test/pullgate.sock",
            "unix:///var/run/pullgate-doctor-test/pullgate.sock",
            "unix://localhost/run/pullgate-doctor-test/pullgate.sock",
            "unix:/run//pullgate-doctor-test/./pullgate.sock",
            "/run/x/../pullgate-doctor-test/pullgate.sock",
        ] {
            assert!(Endpoint::parse(same).is_socket(socket), "{same}");
        }
        for other in [
            "unix:///run/containerd/containerd.sock",
            "tcp://127.0.0.1:10010",
            "run/pullgate-doctor-test/pullgate.sock",
            "unix://",
        ] {
            assert!(!Endpoint::parse(other).is_socket(socket), "{other}");
        }
    }

    #[test]
    fn report_lines_and_exit_codes() {
        let ok = Check::ok("policy", "loads");
        let fail = Check::fail("runtime endpoint", "x", "do y");
        assert_eq!(ok.to_string(), "ok policy: loads");
        assert_eq!(fail.to_string(), "FAIL runtime endpoint: x — do y");
        assert_eq!(
            Check::warn("kubelet", "a", "b").to_string(),
            "warn kubelet: a — b"
        );
        let report = |checks: Vec<Check>| Report { checks }.exit_code();
        assert_eq!(report(vec![ok.clone()]), EXIT_OK);
        assert_eq!(report(vec![ok.clone(), fail.clone()]), EXIT_FAIL);
        assert_eq!(
            report(vec![
                ok.clone(),
                Check::fail(KUBELET_CHECK, "none", "start it")
            ]),
            EXIT_NO_KUBELET
        );
        assert_eq!(
            report(vec![fail, Check::fail(KUBELET_CHECK, "none", "start it")]),
            EXIT_FAIL
        );
    }
}
