#![forbid(unsafe_code)]
// No function over 100 lines (clippy.toml), tests excepted.
#![warn(clippy::too_many_lines)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use pullgate::{app, config::Config};

/// pullgate: verifies Notary Project signatures before containerd pulls an image.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the CRI on pullgate's socket and forward it to containerd.
    Serve {
        /// Config file (TOML). Default: /etc/pullgate/config.toml if it exists,
        /// else built-in defaults.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Validate a config file and print the effective settings.
    CheckConfig {
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Verify an artifact's Notary Project signatures against the trust policy
    /// (output and exit status like `notation verify`).
    Verify(Box<VerifyArgs>),
    /// Check that this node's kubelet cannot pull around pullgate: its effective CRI
    /// endpoints, its connections to pullgate, the trust policy.
    Doctor(pullgate::doctor::DoctorArgs),
    /// Every image on the node with its verdict, and what `strict` would refuse.
    ///
    /// Every image in containerd's `k8s.io` namespace with its verdict under the
    /// current trust policy, and what a `strict` level would refuse and why: the
    /// check to run before switching a node from `audit` to `strict`. Exit status:
    /// 0 when every image would pass under strict, 1 when some would be refused or
    /// could not be verified, 2 when no report could be made (arguments, config,
    /// policy, containerd).
    Images(pullgate::images_cmd::ImagesArgs),
    /// Trust policy commands.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Revocation data commands.
    Revocation {
        #[command(subcommand)]
        command: RevocationCommand,
    },
}

#[derive(Subcommand)]
enum RevocationCommand {
    /// Fetch the CRLs that certificates name into a directory, for the `crl_dir`
    /// of nodes that cannot reach the CA. Certificates: every one in the trust
    /// stores of `--policy-dir`, and every one in each `--cert` file (PEM or DER;
    /// give the signing certificate chains your images are signed with).
    Fetch {
        #[arg(long, value_name = "DIR", default_value = DEFAULT_POLICY_DIR)]
        policy_dir: PathBuf,
        /// A certificate file (PEM bundle or DER), e.g. a signing chain.
        #[arg(long, value_name = "FILE")]
        cert: Vec<PathBuf>,
        /// Where to write the CRLs (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Seconds allowed for each download.
        #[arg(long, value_name = "SECONDS", default_value_t = 30)]
        timeout: u64,
    },
}

#[derive(clap::Args)]
struct VerifyArgs {
    /// An OCI image layout reference: `<dir>@<digest>` or `<dir>:<tag>`.
    #[arg(long, value_name = "DIR@DIGEST|DIR:TAG")]
    oci_layout: Option<String>,
    /// An image reference in a registry, e.g. `registry.example/app:v1` or
    /// `…@sha256:…` (normalised as containerd does: `busybox` is docker.io/library/busybox:latest).
    #[arg(value_name = "REFERENCE", conflicts_with = "oci_layout")]
    reference: Option<String>,
    /// Registry user name (with --password); otherwise the credentials file, then anonymous.
    #[arg(long, short = 'u', requires = "password")]
    username: Option<String>,
    /// Registry password or token (with --username).
    #[arg(long, short = 'p', requires = "username")]
    password: Option<String>,
    /// A docker config.json-style file with registry credentials.
    #[arg(long, value_name = "FILE")]
    credentials_file: Option<PathBuf>,
    /// Reach this registry (host:port) over plain http; for tests and local registries.
    #[arg(long, value_name = "HOST:PORT")]
    insecure_registry: Vec<String>,
    /// containerd's hosts directory (mirrors, CAs, client certificates, plain http).
    #[arg(long, value_name = "DIR", default_value = "/etc/containerd/certs.d")]
    hosts_dir: PathBuf,
    /// Time allowed for resolving, listing and fetching, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    timeout: u64,
    /// notation-layout directory with trustpolicy.oci.json / trustpolicy.json and truststore/.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_POLICY_DIR)]
    policy_dir: PathBuf,
    /// The repository the policy's registryScopes are matched against
    /// (default for a layout: `local/<directory name>`).
    #[arg(long, value_name = "REPOSITORY")]
    scope: Option<String>,
    /// Verify as of this time (RFC 3339) instead of now.
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// Most signatures to evaluate.
    #[arg(long, value_name = "N", default_value_t = pullgate::verify::MAX_SIGNATURE_ATTEMPTS)]
    max_signatures: usize,
    /// CRL files (PEM or DER) to use before fetching CRLs, e.g. ones fetched with
    /// `pullgate revocation fetch` on a machine that can reach the CA.
    #[arg(long, value_name = "DIR")]
    crl_dir: Option<PathBuf>,
    /// Cache fetched CRLs in this directory (default: in memory only).
    #[arg(long, value_name = "DIR")]
    crl_cache: Option<PathBuf>,
    /// Print every signature's checks.
    #[arg(long, short)]
    verbose: bool,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OutputFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Load and validate the trust policy and the trust stores it names.
    Check {
        #[arg(long, value_name = "DIR", default_value = DEFAULT_POLICY_DIR)]
        policy_dir: PathBuf,
    },
}

/// Where a node keeps its notation-layout trust policy and stores.
const DEFAULT_POLICY_DIR: &str = "/etc/pullgate/notation";
/// Exit status when verification ran and failed.
const EXIT_VERIFICATION_FAILED: u8 = 1;
/// Exit status when no verdict could be reached (bad arguments, policy, layout).
const EXIT_ERROR: u8 = 2;

/// Exit status for an unusable configuration (as sysexits' EX_CONFIG).
const EXIT_CONFIG: u8 = 78;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { config } => match Config::load_or_default(config.as_deref()) {
            Ok(config) => {
                use std::io::Write;
                // A closed stdout (`| head`) is not an error worth a panic.
                let _ = write!(std::io::stdout(), "{config}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("pullgate: {error}");
                ExitCode::from(EXIT_CONFIG)
            }
        },
        Command::Serve { config } => serve(config),
        Command::Verify(args) => verify(*args),
        Command::Doctor(args) => pullgate::doctor::main(&args),
        Command::Images(args) => pullgate::images_cmd::main(&args),
        Command::Policy {
            command: PolicyCommand::Check { policy_dir },
        } => policy_check(&policy_dir),
        Command::Revocation {
            command:
                RevocationCommand::Fetch {
                    policy_dir,
                    cert,
                    out,
                    timeout,
                },
        } => revocation_fetch(&policy_dir, &cert, &out, timeout),
    }
}

fn revocation_fetch(
    policy_dir: &std::path::Path,
    files: &[PathBuf],
    out: &std::path::Path,
    timeout: u64,
) -> ExitCode {
    let certs = match certificates(policy_dir, files) {
        Ok(certs) => certs,
        Err(message) => return error_exit(&message),
    };
    if let Err(error) = std::fs::create_dir_all(out) {
        return error_exit(&format!("{}: {error}", out.display()));
    }
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(message) => return error_exit(&message),
    };
    let fetched = runtime.block_on(pullgate::revocation::fetch_crls(
        &certs,
        out,
        std::time::Duration::from_secs(timeout.max(1)),
    ));
    if fetched.is_empty() {
        println!(
            "No certificate names a CRL distribution point ({} certificate(s) read).",
            certs.len()
        );
    }
    let mut failed = false;
    for one in &fetched {
        match &one.result {
            Ok(path) => println!("{} -> {}", one.url, path.display()),
            Err(error) => {
                failed = true;
                println!("{}: not fetched: {error}", one.url)
            }
        }
    }
    if failed {
        ExitCode::from(EXIT_VERIFICATION_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}

/// The certificates `revocation fetch` reads: every one in the trust stores of
/// `policy_dir`, then every one in each of `files`.
fn certificates(
    policy_dir: &std::path::Path,
    files: &[PathBuf],
) -> Result<Vec<pullgate::pki::Certificate>, String> {
    use pullgate::pki::Certificate;
    let loaded =
        pullgate::policy_dir::load_policy_dir(policy_dir).map_err(|error| error.to_string())?;
    let mut certs = Vec::new();
    for store in &loaded.stores {
        for der in &store.certificates_der {
            let cert = Certificate::from_der(der)
                .map_err(|error| format!("trust store {:?}: {error}", store.name))?;
            certs.push(cert);
        }
    }
    for file in files {
        let mut found = std::fs::read(file)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                Certificate::parse_pem_or_der_bundle(&bytes).map_err(|e| e.to_string())
            })
            .map_err(|error| format!("{}: {error}", file.display()))?;
        certs.append(&mut found);
    }
    Ok(certs)
}

fn verify(args: VerifyArgs) -> ExitCode {
    let (output, verbose) = (args.output, args.verbose);
    let outcome = match run_verification(args) {
        Ok(outcome) => outcome,
        Err(message) => return error_exit(&message),
    };
    let text = match output {
        OutputFormat::Json => match serde_json::to_string_pretty(&outcome) {
            Ok(json) => json + "\n",
            Err(error) => return error_exit(&format!("cannot encode the result: {error}")),
        },
        OutputFormat::Text => outcome.to_text(verbose),
    };
    use std::io::Write;
    let _ = std::io::stdout().write_all(text.as_bytes());
    if outcome.verified() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_VERIFICATION_FAILED)
    }
}

/// Runs `pullgate verify` up to its outcome; `Err` is the message for a run that
/// reached no verdict (bad arguments, policy, layout, registry).
fn run_verification(args: VerifyArgs) -> Result<pullgate::verify::run::Outcome, String> {
    use pullgate::verify::run::{
        parse_rfc3339, verify_layout, verify_remote, LayoutVerification, RemoteVerification,
    };
    let now = match args.at.as_deref() {
        None => pullgate::clock::wall_now(),
        Some(at) => {
            parse_rfc3339(at).ok_or_else(|| format!("--at {at:?} is not an RFC 3339 time"))?
        }
    };
    if args.max_signatures == 0 {
        return Err("--max-signatures must be at least 1".to_owned());
    }
    let budgets = pullgate::verify::Budgets {
        max_signature_attempts: args.max_signatures,
        ..Default::default()
    };
    let revocation = pullgate::revocation::RevocationSettings {
        cache_dir: args.crl_cache,
        crl_dir: args.crl_dir,
        ..Default::default()
    };
    let result = match (args.oci_layout, args.reference) {
        (Some(reference), _) => verify_layout(&LayoutVerification {
            reference,
            policy_dir: args.policy_dir,
            scope: args.scope,
            now,
            budgets,
            revocation,
        }),
        (None, Some(_)) if args.scope.is_some() => {
            return Err(
                "--scope applies to --oci-layout; a registry reference is its own scope".to_owned(),
            )
        }
        (None, Some(reference)) => {
            let credentials = match (args.username, args.password) {
                (Some(username), Some(password)) => {
                    pullgate::registry::Credentials::Basic { username, password }
                }
                _ => pullgate::registry::Credentials::None,
            };
            let request = RemoteVerification {
                reference,
                policy_dir: args.policy_dir,
                credentials,
                registry: pullgate::registry::RegistryConfig {
                    hosts_dir: Some(args.hosts_dir),
                    credentials_file: args.credentials_file,
                    insecure_registries: args.insecure_registry,
                    ..Default::default()
                },
                budget: std::time::Duration::from_secs(args.timeout.max(1)),
                now,
                budgets,
                revocation,
            };
            runtime()?.block_on(verify_remote(&request))
        }
        (None, None) => {
            return Err("give an image reference or --oci-layout <dir>@<digest>".to_owned())
        }
    };
    result.map_err(|error| error.to_string())
}

/// The single-threaded runtime a one-shot command's network work runs on.
fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the async runtime: {error}"))
}

/// Prints `Error: <message>` and gives the exit status of a run without a verdict.
fn error_exit(message: &str) -> ExitCode {
    eprintln!("Error: {message}");
    ExitCode::from(EXIT_ERROR)
}

fn policy_check(dir: &std::path::Path) -> ExitCode {
    match pullgate::policy_dir::load_policy_dir(dir) {
        Ok(loaded) => {
            use std::io::Write;
            let mut out = format!("Trust policy {} is valid.\n", loaded.policy_file.display());
            for statement in &loaded.document.statements {
                out.push_str(&format!(
                    "  statement {:?}: scopes {:?}, level {:?}, stores [{}]\n",
                    statement.name,
                    statement.registry_scopes,
                    statement.level.name,
                    statement
                        .trust_stores
                        .iter()
                        .map(|s| s.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            if let Some(statement) = loaded.document.global_skip() {
                out.push_str(&format!(
                    "Warning: {}\n",
                    pullgate::policy_dir::global_skip_warning(&statement.name)
                ));
            }
            for store in &loaded.stores {
                out.push_str(&format!(
                    "  trust store {:?} ({:?}): {} certificate(s)\n",
                    store.name,
                    store.store_type,
                    store.certificates_der.len()
                ));
            }
            let _ = std::io::stdout().write_all(out.as_bytes());
            ExitCode::SUCCESS
        }
        Err(error) => error_exit(&error.to_string()),
    }
}

fn serve(config_path: Option<PathBuf>) -> ExitCode {
    // Validate everything before binding anything.
    let config = match Config::load_or_default(config_path.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("pullgate: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    app::init_logging(&config.log);
    // One thread by default: measured lower added latency and higher throughput
    // than a work-stealing pool on a 2-core node (fewer cross-thread wake-ups), and
    // the kubelet's call rate is small. More can be configured.
    let mut builder = if config.server.worker_threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(config.server.worker_threads);
        builder
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("pullgate: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        // The trust policy, its stores and the registry settings must be valid
        // before anything is bound: a node never serves with a policy it could not read.
        let prepared = match app::prepare(&config) {
            Ok(prepared) => prepared,
            Err(error) => {
                eprintln!("pullgate: {error}");
                return ExitCode::from(EXIT_CONFIG);
            }
        };
        let socket = match app::bind_socket(&config.server) {
            Ok(socket) => socket,
            Err(error) => {
                tracing::error!(%error, "cannot listen");
                eprintln!("pullgate: {error}");
                return ExitCode::FAILURE;
            }
        };
        app::serve(&config, prepared, socket, app::termination_signal()).await;
        ExitCode::SUCCESS
    })
}
