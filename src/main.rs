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
}

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
