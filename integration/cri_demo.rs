//! `cargo run --example cri -- --socket SOCK <command>`: a tiny crictl stand-in used
//! by integration/demo to show calls going through pullgate.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use pullgate::cri::client::CriClient;
use pullgate::cri::v1;

#[derive(Parser)]
struct Cli {
    /// CRI socket to talk to (pullgate's or containerd's).
    #[arg(long)]
    socket: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// RuntimeService/Version
    Version,
    /// ImageService/PullImage
    Pull { image: String },
    /// ImageService/ListImages
    Images,
    /// Any unary method with an empty request, e.g. containerd's own API.
    Call { path: String },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let client = match CriClient::connect(&cli.socket) {
        Ok(client) => client,
        Err(error) => {
            eprintln!("cannot connect to {}: {error}", cli.socket.display());
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Version => client
            .runtime
            .clone()
            .version(v1::VersionRequest::default())
            .await
            .map(|r| {
                let v = r.into_inner();
                println!(
                    "runtime {} {} (CRI {})",
                    v.runtime_name, v.runtime_version, v.runtime_api_version
                );
            }),
        Command::Pull { image } => client
            .image
            .clone()
            .pull_image(v1::PullImageRequest {
                image: Some(v1::ImageSpec {
                    image: image.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .map(|r| println!("pulled {image} -> {}", r.into_inner().image_ref)),
        Command::Images => client
            .image
            .clone()
            .list_images(v1::ListImagesRequest::default())
            .await
            .map(|r| {
                for image in r.into_inner().images {
                    println!("{}  {}", image.id, image.repo_tags.join(","));
                }
            }),
        Command::Call { path } => {
            let path: &'static str = Box::leak(path.into_boxed_str());
            client
                .call_empty(path)
                .await
                .map(|()| println!("{path}: OK"))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(status) => {
            println!("error: {:?}: {}", status.code(), status.message());
            ExitCode::FAILURE
        }
    }
}
