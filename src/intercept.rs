//! The gate: every `PullImage` (both CRI API versions) is decided here, as
//! DESIGN.md's PullImage path describes: reference → trust-policy statement →
//! resolve → verdict (cached per digest and policy generation, single-flight) →
//! allow (forward pinned to the verified digest, then record the tag) or deny.
//! No error path allows: anything that prevents a verdict answers `Unavailable`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use futures_util::future::BoxFuture;
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use prost::Message;
use tokio::sync::watch;

use crate::cache::{CacheKey, Cacheable, Lookup, VerdictCache};
use crate::cri::{self, box_body, status_response, CriApi, ProxyBody};
use crate::metrics::{CacheLabels, Metrics};
use crate::reference::Reference;
use crate::registry::{Credentials, RegistryClient, RegistryError};
use crate::upstream::{ImageStore, ImageTarget, Upstream};
use crate::verify::engine::{Check, TimeSource, Verdict, VerificationError};
use crate::verify::{Budgets, LoadedPolicy};

/// Largest `PullImageRequest` accepted. The message carries an image reference,
/// credentials and a sandbox config; the kubelet's are a few KiB. gRPC's own default
/// receive limit is 4 MiB, so nothing a real client sends is larger.
pub const MAX_PULL_REQUEST_BYTES: usize = 4 * 1024 * 1024;
/// Largest `PullImageResponse` read back from containerd (an image ref, ~100 bytes).
const MAX_PULL_RESPONSE_BYTES: usize = 1024 * 1024;
/// Label containerd's CRI plugin puts on the images it manages; a tag record
/// without it is invisible to `ImageStatus`/`ListImages`.
const CRI_MANAGED_LABEL: (&str, &str) = ("io.cri-containerd.image", "managed");

/// What the node does with an image that no trust policy statement covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnmatchedAction {
    Deny,
    Allow,
}

/// The gate's settings (from the config file).
#[derive(Debug, Clone)]
pub struct GateSettings {
    pub unmatched: UnmatchedAction,
    /// Time for one verification's registry work.
    pub registry_timeout: Duration,
    pub budgets: Budgets,
    /// OCSP and CRL checks of the signing and timestamping chains.
    pub revocation: Option<Arc<dyn crate::revocation::RevocationCheck>>,
}

/// A cached verdict for one (digest, policy generation, statement + repository).
#[derive(Debug, Clone)]
pub enum Decision {
    Allow {
        statement: String,
        time_source: String,
        outcome: AllowOutcome,
        /// Failures only logged (audit / permissive / overrides), with their reasons.
        logged: Vec<String>,
        /// The checks that failed but were only logged, as `failed_check_name` gives.
        failed_checks: Vec<&'static str>,
        /// How each certificate was checked for revocation (method, URL, status);
        /// empty when revocation was not checked.
        revocation: String,
    },
    Deny {
        statement: String,
        reason: String,
        class: &'static str,
    },
    /// No verdict could be reached (registry, timeout); never cached.
    Unavailable { reason: String },
}

/// Why an image was let through; the tag record is labelled with it, so only an
/// image that passed every check is ever labelled verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllowOutcome {
    /// A signature passed every check the level runs.
    Verified,
    /// A signature passed the enforced checks; others failed and were only logged
    /// (`audit`, `permissive`, a `log` override).
    AllowedWithFailures,
    /// Level `skip`: nothing was verified.
    Skipped,
}

impl AllowOutcome {
    /// The value of the `io.pullgate.outcome` label.
    pub fn as_str(self) -> &'static str {
        match self {
            AllowOutcome::Verified => "verified",
            AllowOutcome::AllowedWithFailures => "allowed-with-failures",
            AllowOutcome::Skipped => "skipped",
        }
    }
}

/// The labels pullgate puts on a tag record it writes: `io.pullgate.verified` is
/// `true` only for [`AllowOutcome::Verified`] (and `false` otherwise, so a record
/// verified before and re-pulled under a weaker policy loses it);
/// `io.pullgate.outcome` says what happened and `io.pullgate.failed-checks` lists
/// the checks that failed but were only logged (`none` when none did).
pub fn tag_labels(
    outcome: AllowOutcome,
    failed_checks: &[&str],
    statement: &str,
    digest: &str,
    at: SystemTime,
) -> BTreeMap<String, String> {
    let failed = if failed_checks.is_empty() {
        "none".to_owned()
    } else {
        failed_checks.join(",")
    };
    BTreeMap::from([
        (
            CRI_MANAGED_LABEL.0.to_owned(),
            CRI_MANAGED_LABEL.1.to_owned(),
        ),
        (
            "io.pullgate.verified".to_owned(),
            (outcome == AllowOutcome::Verified).to_string(),
        ),
        (
            "io.pullgate.outcome".to_owned(),
            outcome.as_str().to_owned(),
        ),
        ("io.pullgate.failed-checks".to_owned(), failed),
        ("io.pullgate.policy".to_owned(), statement.to_owned()),
        ("io.pullgate.digest".to_owned(), digest.to_owned()),
        (
            "io.pullgate.verified-at".to_owned(),
            crate::pki::time::rfc3339(at),
        ),
    ])
}

/// Everything the gate shares between calls.
struct Shared {
    upstream: Upstream,
    /// containerd's CRI, to see whether a verified digest is already present.
    cri: cri::client::CriClient,
    images: ImageStore,
    registry: RegistryClient,
    policy: watch::Receiver<Arc<LoadedPolicy>>,
    cache: VerdictCache<Decision>,
    metrics: Arc<Metrics>,
    settings: GateSettings,
}

/// The `PullImage` gate, as a tower service.
#[derive(Clone)]
pub struct PullImageGate {
    shared: Arc<Shared>,
}

impl PullImageGate {
    pub fn new(
        upstream: Upstream,
        images: ImageStore,
        registry: RegistryClient,
        policy: watch::Receiver<Arc<LoadedPolicy>>,
        cache: VerdictCache<Decision>,
        metrics: Arc<Metrics>,
        settings: GateSettings,
    ) -> PullImageGate {
        PullImageGate {
            shared: Arc::new(Shared {
                // The channel dials lazily; building it cannot fail.
                cri: cri::client::CriClient::connect(upstream.socket())
                    .expect("a lazily connecting channel over a unix socket"),
                upstream,
                images,
                registry,
                policy,
                cache,
                metrics,
                settings,
            }),
        }
    }
}

impl tower::Service<Request<Incoming>> for PullImageGate {
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move { Ok(pull_image(&shared, request).await) })
    }
}

async fn pull_image(shared: &Shared, request: Request<Incoming>) -> Response<ProxyBody> {
    let started = Instant::now();
    let api = request
        .extensions()
        .get::<CriApi>()
        .copied()
        .unwrap_or(CriApi::V1);
    let (mut parts, body) = request.into_parts();

    // 1. Read the whole request message (bounded) and decode it.
    let bytes = match Limited::new(body, MAX_PULL_REQUEST_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            let status = tonic::Status::invalid_argument(format!(
                "pullgate: PullImage request could not be read (limit {MAX_PULL_REQUEST_BYTES} bytes): {error}"
            ));
            return finish(api, "", started, status_response(status));
        }
    };
    let mut pull = match cri::decode_pull_image_request(&bytes) {
        Ok(pull) => pull,
        Err(error) => {
            let status =
                tonic::Status::invalid_argument(format!("pullgate: malformed PullImage: {error}"));
            return finish(api, "", started, status_response(status));
        }
    };
    let image = pull
        .image
        .as_ref()
        .map(|spec| spec.image.clone())
        .unwrap_or_default();

    // 2. Decide.
    let decided = decide(shared, &image, pull.auth.as_ref()).await;
    let (forward_image, target) = match decided {
        Gate::Forward => (None, None),
        Gate::Pinned {
            pinned,
            tag,
            target,
        } => (Some(pinned), Some((tag, target))),
        Gate::Refuse(status) => return finish(api, &image, started, status_response(status)),
    };

    // 3. A verified digest that containerd already has needs no pull: asking the
    //    registry again would add a request to every warm pull and change nothing,
    //    since content is addressed by the digest that was verified. Only when the
    //    call brought its own credentials, though: without them the registry was
    //    asked with the node's credentials file, and answering from the store would
    //    hand a private image to a pod whose own (no) credentials containerd would
    //    have refused at the registry (`imagePullPolicy: Always` relies on that
    //    check). Such a pull goes on to containerd, pinned.
    let own_credentials = !matches!(credentials_of(pull.auth.as_ref()), Credentials::None);
    if let (true, Some(pinned), Some((tag, target))) = (own_credentials, &forward_image, &target) {
        if let Some(image_ref) = present_in_containerd(&shared.cri, pinned).await {
            record_tag(shared, &image, tag.as_ref(), target).await;
            let response = pull_response(image_ref);
            let mut ok = HeaderMap::new();
            ok.insert("grpc-status", http::HeaderValue::from_static("0"));
            log_outcome(api, &image, started, response.headers(), Some(&ok));
            return response;
        }
    }

    // 4. Forward: unchanged, or with the image pinned to the verified digest.
    let body = match &forward_image {
        None => bytes,
        Some(pinned) => {
            if let Some(spec) = pull.image.as_mut() {
                spec.image = pinned.clone();
            }
            parts.headers.remove(http::header::CONTENT_LENGTH);
            frame(&pull.encode_to_vec())
        }
    };
    let forwarded = Request::from_parts(parts, box_body(Full::new(body)));
    let response = match shared.upstream.forward(forwarded).await {
        Ok(response) => response,
        Err(error) => return finish(api, &image, started, status_response(error.to_status())),
    };

    // 5. Read containerd's answer whole so its status can be reported, then hand
    //    it back byte for byte, trailers included.
    let (parts, body) = response.into_parts();
    let collected = match Limited::new(body, MAX_PULL_RESPONSE_BYTES).collect().await {
        Ok(collected) => collected,
        Err(error) => {
            let status = tonic::Status::unavailable(format!(
                "pullgate: reading containerd's PullImage response from {} failed: {error}",
                shared.upstream.socket().display()
            ));
            return finish(api, &image, started, status_response(status));
        }
    };
    let trailers = collected.trailers().cloned();
    let pulled = grpc_ok(&parts.headers, trailers.as_ref());

    // 6. A tag the user asked for points at what was verified (DESIGN.md step 8).
    if let (true, Some((tag, target))) = (pulled, &target) {
        record_tag(shared, &image, tag.as_ref(), target).await;
    }
    log_outcome(api, &image, started, &parts.headers, trailers.as_ref());
    let bytes = collected.to_bytes();
    let body = match trailers {
        // A trailers-only answer (the status in the headers, no message) goes back
        // as one HEADERS frame with END_STREAM: gRPC clients other than tonic take
        // a status only from the stream's last HEADERS frame, so an empty DATA
        // frame ending the stream after it loses the status.
        None => box_body(Full::new(bytes)),
        Some(trailers) => {
            box_body(Full::new(bytes).with_trailers(async move { Some(Ok(trailers)) }))
        }
    };
    Response::from_parts(parts, body)
}

/// The id of the image containerd has under `pinned` (`repo@sha256:…`), if any.
async fn present_in_containerd(cri: &cri::client::CriClient, pinned: &str) -> Option<String> {
    let status = cri
        .image
        .clone()
        .image_status(cri::v1::ImageStatusRequest {
            image: Some(cri::v1::ImageSpec {
                image: pinned.to_owned(),
                ..Default::default()
            }),
            verbose: false,
        })
        .await
        .ok()?;
    status.into_inner().image.map(|image| image.id)
}

/// Records the tag the user asked for; a failure is logged: the pull itself is
/// pinned and done, and without the record the kubelet pulls again and the cached
/// verdict answers at once.
async fn record_tag(
    shared: &Shared,
    image: &str,
    tag: Option<&(String, BTreeMap<String, String>)>,
    target: &ImageTarget,
) {
    if let Some((name, labels)) = tag {
        if let Err(error) = shared.images.tag(name, target, labels).await {
            tracing::warn!(image, tag = %name, %error, "could not record the tag in containerd");
        }
    }
}

/// A successful `PullImageResponse` answered by pullgate itself.
fn pull_response(image_ref: String) -> Response<ProxyBody> {
    let body = frame(&cri::v1::PullImageResponse { image_ref }.encode_to_vec());
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
    let mut response = Response::new(box_body(
        Full::new(body).with_trailers(async move { Some(Ok(trailers)) }),
    ));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    response
}

/// What the gate does with one pull.
enum Gate {
    /// Forward unchanged (level `skip`, or an unmatched image on an `allow` node).
    Forward,
    /// Verified: forward pinned; record `tag` (name, labels) if the user asked for one.
    Pinned {
        pinned: String,
        tag: Option<(String, BTreeMap<String, String>)>,
        target: ImageTarget,
    },
    Refuse(tonic::Status),
}

async fn decide(shared: &Shared, image: &str, auth: Option<&cri::v1::AuthConfig>) -> Gate {
    let metrics = &shared.metrics;
    // Step 1: the reference.
    let reference: Reference = match image.parse() {
        Ok(reference) => reference,
        Err(error) => {
            metrics.decision("denied", "invalid_reference");
            return Gate::Refuse(tonic::Status::invalid_argument(format!(
                "pullgate: {error}"
            )));
        }
    };
    // Step 2: the statement, from the policy in force now.
    let policy = Arc::clone(&shared.policy.borrow());
    let scope = reference.scope();
    let statement = match policy.dir.document.statement_for(&scope) {
        Ok(statement) => statement,
        Err(_) => {
            return match shared.settings.unmatched {
                UnmatchedAction::Deny => {
                    audit(
                        image,
                        None,
                        "-",
                        "denied",
                        "no trust policy statement",
                        "-",
                        "-",
                    );
                    metrics.decision("denied", "unmatched");
                    Gate::Refuse(PullFailure::SignatureValidationFailed.status(format!(
                        "pullgate: {image}: no trust policy statement applies to {scope} (this node denies unmatched images)"
                    )))
                }
                UnmatchedAction::Allow => {
                    audit(
                        image,
                        None,
                        "-",
                        "allowed",
                        "no trust policy statement; node allows unmatched images",
                        "-",
                        "-",
                    );
                    metrics.decision("allowed", "unmatched");
                    Gate::Forward
                }
            };
        }
    };
    // Step 3: skip never contacts the registry.
    if statement.level.name == crate::policy::LevelName::Skip {
        audit(
            image,
            None,
            &statement.name,
            "skipped",
            "level skip",
            "-",
            "-",
        );
        metrics.decision("skipped", "level_skip");
        return Gate::Forward;
    }
    // Step 4: resolve with the call's credentials (else node file, else anonymous).
    let credentials = credentials_of(auth);
    let deadline = Instant::now() + shared.settings.registry_timeout;
    let target = match shared
        .registry
        .resolve(&reference, &credentials, deadline)
        .await
    {
        Ok(target) => target,
        Err(error) => {
            audit(
                image,
                None,
                &statement.name,
                "unavailable",
                &error.to_string(),
                "-",
                "-",
            );
            metrics.decision("unavailable", "registry");
            return Gate::Refuse(registry_status(image, &error));
        }
    };
    // Steps 5–7: the verdict, cached and shared between concurrent pulls.
    let key = CacheKey {
        digest: target.digest.clone(),
        policy_generation: policy.generation,
        statement: format!("{}\u{0}{}", statement.name, scope),
    };
    let started = Instant::now();
    let verify = {
        let registry = shared.registry.clone();
        let reference = reference.clone();
        let target = target.clone();
        let policy = Arc::clone(&policy);
        let statement_name = statement.name.clone();
        let budgets = shared.settings.budgets.clone();
        let revocation = shared.settings.revocation.clone();
        move || async move {
            let source = crate::verify::RegistrySource {
                client: &registry,
                reference: &reference,
                credentials: &credentials,
                deadline,
            };
            let judge = crate::verify::Judge {
                policy: Arc::clone(&policy.dir),
                statement: statement_name,
                now: SystemTime::now(),
                budgets,
                revocation,
            };
            let shown = reference.pinned(&target.digest);
            let verdict = crate::verify::verify_signatures(&source, &judge, &shown, &target).await;
            classify(verdict, SystemTime::now())
        }
    };
    let (decision, lookup) = shared.cache.get_or_verify(key, verify).await;
    let cache_label = match lookup {
        Lookup::Hit => "hit",
        Lookup::Miss => "miss",
        Lookup::Joined => "joined",
    };
    metrics
        .verification_seconds
        .get_or_create(&CacheLabels {
            cache: cache_label.to_owned(),
        })
        .observe(started.elapsed().as_secs_f64());
    metrics.set_cache_entries(shared.cache.len());
    let stats = shared.registry.stats();
    let mut totals: Vec<(String, u64)> = stats
        .by_status
        .iter()
        .map(|(status, count)| (status.to_string(), *count))
        .collect();
    totals.push(("transport_error".into(), stats.transport_errors));
    totals.push(("timeout".into(), stats.timeouts));
    metrics.observe_registry_totals(&totals);

    let digest = target.digest.to_string();
    match decision {
        Decision::Allow {
            statement,
            time_source,
            outcome,
            logged,
            failed_checks,
            revocation,
        } => {
            let mut reason = if logged.is_empty() {
                outcome.as_str().to_owned()
            } else {
                format!("{}; logged: {}", outcome.as_str(), logged.join("; "))
            };
            if !revocation.is_empty() {
                reason = format!("{reason}; revocation: {revocation}");
            }
            audit(
                image,
                Some(&digest),
                &statement,
                "allowed",
                &reason,
                &time_source,
                cache_label,
            );
            metrics.decision(
                "allowed",
                match outcome {
                    AllowOutcome::Verified => "verified",
                    AllowOutcome::AllowedWithFailures => "logged_failures",
                    AllowOutcome::Skipped => "level_skip",
                },
            );
            let tag = reference
                .tag()
                .filter(|_| reference.digest().is_none())
                .map(|tag| {
                    let labels = tag_labels(
                        outcome,
                        &failed_checks,
                        &statement,
                        &digest,
                        SystemTime::now(),
                    );
                    (
                        format!("{}/{}:{tag}", reference.registry(), reference.repository()),
                        labels,
                    )
                });
            Gate::Pinned {
                pinned: reference.pinned(&target.digest),
                tag,
                target: ImageTarget {
                    media_type: target.media_type.clone(),
                    digest: digest.clone(),
                    size: i64::try_from(target.size).unwrap_or(i64::MAX),
                },
            }
        }
        Decision::Deny {
            statement,
            reason,
            class,
        } => {
            audit(
                image,
                Some(&digest),
                &statement,
                "denied",
                &reason,
                "-",
                cache_label,
            );
            metrics.decision("denied", class);
            Gate::Refuse(PullFailure::SignatureValidationFailed.status(format!(
                "pullgate: {image}: {reason} (trust policy \"{statement}\")"
            )))
        }
        Decision::Unavailable { reason } => {
            audit(
                image,
                Some(&digest),
                &statement.name,
                "unavailable",
                &reason,
                "-",
                cache_label,
            );
            metrics.decision("unavailable", "registry");
            Gate::Refuse(
                PullFailure::RegistryUnavailable.status(format!("pullgate: {image}: {reason}")),
            )
        }
    }
}

/// Turns the engine's verdict into what the gate does and the cache keeps. The
/// verdict alone decides, exactly as it decides `pullgate verify`'s exit status
/// (`verify::run`): `Verified` and `Skipped` allow, `Failed` denies, whatever the
/// level is called. Nothing here looks at the policy's levels or overrides, so the
/// gate and the CLI cannot disagree on an image (issue 9: a gate that let unsigned
/// images through whenever the level was *named* `audit` allowed what `pullgate
/// verify` refused under `audit` with every check overridden to `enforce`).
///
/// An allow is reused only until what it rests on ends (`valid_until`: the
/// signature's expiry, a certificate's notAfter checked against the clock), counted
/// from `now`, the time the verdict is handed to the cache.
pub fn classify(
    verdict: Result<Verdict, crate::verify::VerifyError<RegistryError>>,
    now: SystemTime,
) -> Cacheable<Decision> {
    match verdict {
        Ok(Verdict::Verified(verified)) => {
            let report = verified.report();
            let valid_for = report
                .valid_until()
                .map(|until| until.duration_since(now).unwrap_or(Duration::ZERO));
            let failed_checks: Vec<&'static str> = report
                .logged_failures()
                .map(|c| failed_check_name(c.check))
                .collect();
            let revocation = report
                .revocation
                .iter()
                .chain(&report.timestamp_revocation)
                .map(|check| check.summary())
                .filter(|summary| !summary.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
            let decision = Decision::Allow {
                revocation,
                statement: verified.statement().to_owned(),
                time_source: report
                    .time_source
                    .as_ref()
                    .map(time_source_text)
                    .unwrap_or_else(|| "-".into()),
                outcome: if failed_checks.is_empty() {
                    AllowOutcome::Verified
                } else {
                    AllowOutcome::AllowedWithFailures
                },
                logged: report
                    .logged_failures()
                    .map(|c| format!("{}: {}", c.check.as_str(), c.error.as_deref().unwrap_or("")))
                    .collect(),
                failed_checks,
            };
            match valid_for {
                Some(left) => Cacheable::AllowUntil(decision, left),
                None => Cacheable::Allow(decision),
            }
        }
        Ok(Verdict::Skipped { statement }) => Cacheable::Allow(Decision::Allow {
            statement,
            time_source: "-".into(),
            outcome: AllowOutcome::Skipped,
            logged: Vec::new(),
            failed_checks: Vec::new(),
            revocation: String::new(),
        }),
        Ok(Verdict::Failed {
            reason, statement, ..
        }) => {
            let class = match &reason {
                VerificationError::NoSignature { .. } => "no_signature",
                VerificationError::SignatureLimit { .. } => "signature_limit",
                VerificationError::SignatureFailed { check, .. } => check_class(check),
            };
            Cacheable::Deny(Decision::Deny {
                statement,
                reason: reason.to_string(),
                class,
            })
        }
        // No verdict: a registry error (or a statement gone by a reload) is never
        // cached, and never allows.
        Err(error) => Cacheable::Transient(Decision::Unavailable {
            reason: error.to_string(),
        }),
    }
}

fn check_class(check: &str) -> &'static str {
    [
        Check::Integrity,
        Check::Authenticity,
        Check::TrustedIdentity,
        Check::Expiry,
        Check::AuthenticTimestamp,
        Check::Revocation,
        Check::TargetArtifact,
    ]
    .into_iter()
    .find(|c| c.as_str() == check)
    .map(failed_check_name)
    .unwrap_or("failed")
}

/// A check's name in metrics and in the `io.pullgate.failed-checks` label.
fn failed_check_name(check: Check) -> &'static str {
    match check {
        Check::Integrity => "integrity",
        Check::Authenticity => "authenticity",
        Check::TrustedIdentity => "trusted_identity",
        Check::Expiry => "expiry",
        Check::AuthenticTimestamp => "authentic_timestamp",
        Check::Revocation => "revocation",
        Check::TargetArtifact => "target_artifact",
    }
}

fn time_source_text(source: &TimeSource) -> String {
    match source {
        TimeSource::TimestampAuthority { gen_time, .. } => {
            format!("timestamp authority ({gen_time})")
        }
        TimeSource::SigningAuthority { time } => format!("signing authority ({time})"),
        TimeSource::LocalClock { time } => format!("local clock ({time})"),
    }
}

/// A registry failure without a verdict: `NotFound` for an image the registry
/// does not have, `RegistryUnavailable` for everything else (the kubelet retries
/// with back-off either way).
fn registry_status(image: &str, error: &RegistryError) -> tonic::Status {
    match error {
        RegistryError::NotFound { .. } => {
            tonic::Status::not_found(format!("pullgate: {image}: {error}"))
        }
        _ => PullFailure::RegistryUnavailable.status(format!("pullgate: {image}: {error}")),
    }
}

/// A refused pull in the form the kubelet turns into a container reason. Since
/// Kubernetes 1.28 (kubernetes/kubernetes#117717, `evalCRIPullErr` in the kubelet's
/// image manager) a `PullImage` error whose status is `Unknown` and whose message
/// starts with a CRI error name (`k8s.io/cri-api/pkg/errors`) becomes that reason:
/// `kubectl describe pod` shows `SignatureValidationFailed` and "image pull failed
/// for <image> because the signature validation failed: <the rest>". Any other
/// status is a generic `ErrImagePull`. CRI-O answers its signature denials this way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PullFailure {
    /// A trust-policy denial: no signature passed, or no statement covers the image.
    SignatureValidationFailed,
    /// The registry could not be asked (resolve, referrers, signature fetch).
    RegistryUnavailable,
}

impl PullFailure {
    fn name(self) -> &'static str {
        match self {
            PullFailure::SignatureValidationFailed => "SignatureValidationFailed",
            PullFailure::RegistryUnavailable => "RegistryUnavailable",
        }
    }

    /// `detail` is pullgate's own message (`pullgate: <image>: <reason> …`).
    fn status(self, detail: String) -> tonic::Status {
        tonic::Status::unknown(format!("{}: {detail}", self.name()))
    }
}

fn credentials_of(auth: Option<&cri::v1::AuthConfig>) -> Credentials {
    match auth {
        None => Credentials::None,
        // As containerd's CRI plugin: credentials the kubelet names a server for are
        // only for an endpoint on that host (`registry::server_address_matches`).
        Some(auth) => Credentials::from_auth_config(
            &auth.username,
            &auth.password,
            &auth.auth,
            &auth.identity_token,
            &auth.registry_token,
        )
        .for_server_address(&auth.server_address),
    }
}

/// The audit line of one decision (JSON when JSON logging is on).
fn audit(
    image: &str,
    digest: Option<&str>,
    policy: &str,
    outcome: &str,
    reason: &str,
    time_source: &str,
    cache: &str,
) {
    tracing::info!(
        target: "pullgate::audit",
        image,
        digest = digest.unwrap_or("-"),
        policy,
        outcome,
        reason,
        time_source,
        cache,
        "decision"
    );
}

/// One uncompressed gRPC message frame.
fn frame(message: &[u8]) -> bytes::Bytes {
    let mut out = Vec::with_capacity(message.len() + 5);
    out.push(0);
    out.extend_from_slice(
        &u32::try_from(message.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(message);
    bytes::Bytes::from(out)
}

/// Whether a response's gRPC status is OK.
fn grpc_ok(headers: &HeaderMap, trailers: Option<&HeaderMap>) -> bool {
    tonic::Status::from_header_map(headers)
        .or_else(|| trailers.and_then(tonic::Status::from_header_map))
        .is_some_and(|status| status.code() == tonic::Code::Ok)
}

/// Logs the outcome of a call that ends in pullgate's own status response.
fn finish(
    api: CriApi,
    image: &str,
    started: Instant,
    response: Response<ProxyBody>,
) -> Response<ProxyBody> {
    log_outcome(api, image, started, response.headers(), None);
    response
}

/// The one log line per intercepted call.
fn log_outcome(
    api: CriApi,
    image: &str,
    started: Instant,
    headers: &HeaderMap,
    trailers: Option<&HeaderMap>,
) {
    let (code, message) = grpc_outcome(headers, trailers);
    tracing::info!(
        api = api.as_str(),
        image,
        grpc_status = code,
        grpc_message = message,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "PullImage"
    );
}

/// The gRPC status of a response: from the headers of a trailers-only response, else
/// from the trailers; an absent status is reported as `-`.
fn grpc_outcome(headers: &HeaderMap, trailers: Option<&HeaderMap>) -> (String, String) {
    let status = tonic::Status::from_header_map(headers)
        .or_else(|| trailers.and_then(tonic::Status::from_header_map));
    match status {
        Some(status) => (format!("{:?}", status.code()), status.message().to_owned()),
        None => ("-".to_owned(), String::new()),
    }
}
