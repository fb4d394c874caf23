//! `notary-sign`: signs an image that is already in a registry, the way `notation
//! sign` does, and writes the result as an OCI layout holding only the signature
//! manifest (subject = the given descriptor) and the referrers tag-schema index
//! `sha256-<hex>`, ready for `integration/harness push-layout DIR HOST:PORT REPO`.
//! Used by integration/demo; the key and chain come from openssl.
//!
//!   cargo run --example notary-sign -- --registry 127.0.0.1:5000 --repository library/busybox \
//!     --digest sha256:… --media-type application/vnd.oci.image.manifest.v1+json --size 1234 \
//!     --key leaf.key --cert-chain chain.pem --format cose --out DIR

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use pullgate::reference::Digest;

use pullgate_testkit::envelope_builder::{Format, Target};
use pullgate_testkit::signed_layout::{Blob, Layout, SignatureForm};
use pullgate_testkit::signer;

#[derive(Clone, Copy, ValueEnum)]
enum EnvelopeFormat {
    Jws,
    Cose,
}

#[derive(Parser)]
#[command(about = "Sign an image in a registry; write the signature as an OCI layout")]
struct Cli {
    /// Registry host:port of the image (printed in the push hint).
    #[arg(long)]
    registry: String,
    /// Repository of the image (printed in the push hint).
    #[arg(long)]
    repository: String,
    /// The image manifest's digest.
    #[arg(long)]
    digest: String,
    /// The image manifest's media type.
    #[arg(long)]
    media_type: String,
    /// The image manifest's size in bytes.
    #[arg(long)]
    size: u64,
    /// Private key (PEM): RSA 2048/3072/4096 or EC P-256/P-384/P-521.
    #[arg(long)]
    key: PathBuf,
    /// Certificate chain (PEM), leaf first.
    #[arg(long)]
    cert_chain: PathBuf,
    #[arg(long, value_enum, default_value = "cose")]
    format: EnvelopeFormat,
    /// Output directory (created).
    #[arg(long)]
    out: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("notary-sign: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<(), String> {
    let digest: Digest = cli
        .digest
        .parse()
        .map_err(|e| format!("--digest {}: {e}", cli.digest))?;
    if cli.size > 4 << 20 {
        return Err(format!(
            "--size {}: larger than a manifest can be",
            cli.size
        ));
    }
    let signer = signer::Signer::load(&cli.key, &cli.cert_chain)?;
    let format = match cli.format {
        EnvelopeFormat::Jws => Format::Jws,
        EnvelopeFormat::Cose => Format::Cose,
    };
    let target = Target {
        media_type: cli.media_type.clone(),
        digest: digest.to_string(),
        size: cli.size,
        annotations: Vec::new(),
        artifact_type: None,
    };
    let envelope = signer.envelope(target, format)?;
    // The subject only contributes its descriptor (media type, digest, size); its
    // bytes are never written, only counted.
    let subject = Blob {
        media_type: cli.media_type.clone(),
        digest,
        bytes: vec![0; cli.size as usize],
    };
    let mut layout = Layout::new();
    let signature = layout.signature(
        &subject,
        format.media_type(),
        envelope,
        SignatureForm::ArtifactType,
    );
    layout.referrers_index(&subject, &[&signature]);
    layout.write(&cli.out);
    eprintln!(
        "notary-sign: {}/{}@{} signed ({}, {}); signature manifest {}; push with: \
         integration/harness push-layout {} {} {}",
        cli.registry,
        cli.repository,
        subject.digest,
        format.media_type(),
        signer.alg(),
        signature.digest,
        cli.out.display(),
        cli.registry,
        cli.repository
    );
    Ok(())
}
