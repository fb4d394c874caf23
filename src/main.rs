#![forbid(unsafe_code)]

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
    Verify(VerifyArgs),
    /// Trust policy commands.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
}

#[derive(clap::Args)]
struct VerifyArgs {
    /// An OCI image layout reference: `<dir>@<digest>` or `<dir>:<tag>`.
    #[arg(long, value_name = "DIR@DIGEST|DIR:TAG")]
    oci_layout: Option<String>,
    /// A registry reference (needs registry access, not available yet).
    #[arg(value_name = "REFERENCE", conflicts_with = "oci_layout")]
    reference: Option<String>,
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
        Command::Verify(args) => verify(args),
        Command::Policy {
            command: PolicyCommand::Check { policy_dir },
        } => policy_check(&policy_dir),
    }
}

fn verify(args: VerifyArgs) -> ExitCode {
    use pullgate::verify::run::{parse_rfc3339, verify_layout, LayoutVerification};
    let Some(reference) = args.oci_layout else {
        eprintln!(
            "Error: verifying a registry reference ({}) needs registry access, which this build \
             does not have yet; use --oci-layout <dir>@<digest>",
            args.reference.as_deref().unwrap_or("none given")
        );
        return ExitCode::from(EXIT_ERROR);
    };
    let now = match args.at.as_deref().map(parse_rfc3339) {
        None => std::time::SystemTime::now(),
        Some(Some(at)) => at,
        Some(None) => {
            eprintln!(
                "Error: --at {:?} is not an RFC 3339 time",
                args.at.unwrap_or_default()
            );
            return ExitCode::from(EXIT_ERROR);
        }
    };
    if args.max_signatures == 0 {
        eprintln!("Error: --max-signatures must be at least 1");
        return ExitCode::from(EXIT_ERROR);
    }
    let request = LayoutVerification {
        reference,
        policy_dir: args.policy_dir,
        scope: args.scope,
        now,
        budgets: pullgate::verify::Budgets {
            max_signature_attempts: args.max_signatures,
            ..Default::default()
        },
    };
    match verify_layout(&request) {
        Ok(outcome) => {
            let text = match args.output {
                OutputFormat::Json => match serde_json::to_string_pretty(&outcome) {
                    Ok(json) => json + "\n",
                    Err(error) => {
                        eprintln!("Error: cannot encode the result: {error}");
                        return ExitCode::from(EXIT_ERROR);
                    }
                },
                OutputFormat::Text => outcome.to_text(args.verbose),
            };
            use std::io::Write;
            let _ = std::io::stdout().write_all(text.as_bytes());
            if outcome.verified() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_VERIFICATION_FAILED)
            }
        }
        Err(error) => {
            eprintln!("Error: {error}");
            ExitCode::from(EXIT_ERROR)
        }
    }
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
        Err(error) => {
            eprintln!("Error: {error}");
            ExitCode::from(EXIT_ERROR)
        }
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
        let socket = match app::bind_socket(&config.server) {
            Ok(socket) => socket,
            Err(error) => {
                tracing::error!(%error, "cannot listen");
                eprintln!("pullgate: {error}");
                return ExitCode::FAILURE;
            }
        };
        app::serve(&config, socket, app::termination_signal()).await;
        ExitCode::SUCCESS
    })
}
