//! containerd's sandbox (pause) image (issue 12). containerd pulls it itself inside
//! `RunPodSandbox`, through its own mirrors, so whoever controls that registry or
//! mirror would choose what runs in every pod. pullgate:
//!
//! 1. learns the image from containerd (CRI `Status` with `verbose`: `info["config"]`
//!    is containerd's CRI config as JSON, with `sandboxImage` on 1.6 and 1.7);
//! 2. verifies it under each policy at start and after every policy reload, and on
//!    an allow pulls it pinned to the verified digest through containerd's CRI, then
//!    records the image's own name pointing at that digest (with the verdict label),
//!    so containerd finds it locally by name and never fetches it itself;
//! 3. forwards `RunPodSandbox` only while the image has standing
//!    ([`super::before_run::check`]) where an enforcing statement (`strict`,
//!    `permissive`) of the pod's namespace policy covers it; without standing it
//!    verifies once more inline, then refuses with `PermissionDenied` and the reason.
//!
//! An image no statement covers is let through (warned once) even on a node that
//! denies unmatched images: the node's pods would otherwise all stop for a policy
//! that never named the image. `audit` and `skip` let it through as pulls do.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;

use super::before_run::{check, read_unary};
use super::{record_tag, record_verdict, refuse_call, CallError, Shared};
use crate::cri::{self, box_body, ProxyBody};
use crate::gate::{Credentials, NotVerified, Pass, PolicyWatch, Refusal, StandingCall};
use crate::policy::LevelName;
use crate::reference::{Reference, ReferenceError};
use crate::verdict::Fingerprint;
use crate::verify::LoadedPolicy;

/// First wait before asking containerd or the registry again; doubled per failure.
const FIRST_RETRY: Duration = Duration::from_millis(500);
/// Longest wait between attempts: a node whose containerd or registry comes back
/// gets its sandbox image verified within a minute.
const MAX_RETRY: Duration = Duration::from_secs(60);
/// How long to wait for containerd's CRI image list to show a name recorded
/// through its images API (it follows the images service's events).
const VISIBLE_WITHIN: Duration = Duration::from_secs(5);

/// Why containerd's answer did not name its sandbox image.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxImageError {
    #[error("CRI Status failed: {0}")]
    Status(#[source] tonic::Status),
    #[error("CRI Status (verbose) has no \"config\" entry")]
    NoConfig,
    #[error("CRI Status (verbose) \"config\" is not JSON: {0}")]
    UnreadableConfig(#[source] serde_json::Error),
    #[error("containerd's config names no sandbox image (neither \"sandboxImage\" nor \"pinnedImages.sandbox\")")]
    NoSandboxImage,
}

/// What pullgate knows about the sandbox image, shared by every call.
#[derive(Default)]
pub(super) struct SandboxImage {
    /// The image containerd runs pods' sandboxes from, once learnt.
    name: std::sync::Mutex<Option<String>>,
    /// One ensure at a time.
    flight: tokio::sync::Mutex<()>,
    /// Per policy fingerprint: the ensures finished. A caller that waited behind
    /// another's ensure of the same policy takes its result instead of running it
    /// again.
    flights: std::sync::Mutex<HashMap<Fingerprint, Flights>>,
    /// The "no statement covers the sandbox image" warning was logged.
    unmatched_warned: AtomicBool,
}

/// The ensures of the sandbox image under one policy.
#[derive(Clone, Default)]
struct Flights {
    finished: u64,
    /// How the last one failed (`None`: it did not).
    failure: Option<Arc<CallError>>,
}

/// How a policy treats the sandbox image.
#[derive(Debug, PartialEq, Eq)]
enum Coverage {
    /// A `strict` or `permissive` statement: the image needs standing.
    Enforcing,
    /// An `audit` or `skip` statement: a pull of it would not be refused either.
    NotEnforcing,
    /// No statement covers `scope`.
    Unmatched { scope: String },
}

/// The statement of `policy` for `image`, by level.
fn coverage(policy: &LoadedPolicy, image: &Reference) -> Coverage {
    let scope = image.scope();
    match policy.dir.document.statement_for(&scope) {
        Err(_) => Coverage::Unmatched { scope },
        Ok(statement) => match statement.level.name {
            LevelName::Strict | LevelName::Permissive => Coverage::Enforcing,
            LevelName::Audit | LevelName::Skip => Coverage::NotEnforcing,
        },
    }
}

/// The sandbox image in containerd's CRI `Status` (verbose) `info`: containerd 1.6
/// and 1.7 put their CRI config as JSON under `config`, with `sandboxImage`;
/// containerd 2 names it under `pinnedImages.sandbox`.
fn sandbox_image_of(info: &HashMap<String, String>) -> Result<String, SandboxImageError> {
    let config = info.get("config").ok_or(SandboxImageError::NoConfig)?;
    let config: serde_json::Value =
        serde_json::from_str(config).map_err(SandboxImageError::UnreadableConfig)?;
    let name = [
        config.get("sandboxImage"),
        config.pointer("/pinnedImages/sandbox"),
    ]
    .into_iter()
    .flatten()
    .filter_map(serde_json::Value::as_str)
    .find(|name| !name.is_empty())
    .map(str::to_owned);
    name.ok_or(SandboxImageError::NoSandboxImage)
}

/// containerd's sandbox image: what was learnt, else asked now.
async fn learn(shared: &Shared) -> Result<String, CallError> {
    let known = shared
        .sandbox
        .name
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if let Some(name) = known {
        return Ok(name);
    }
    let unknown = |source| CallError::SandboxImageUnknown {
        socket: shared.upstream.socket().to_owned(),
        source,
    };
    let answer = shared
        .cri
        .runtime
        .clone()
        .status(cri::v1::StatusRequest { verbose: true })
        .await
        .map_err(|status| unknown(SandboxImageError::Status(status)))?;
    let name = sandbox_image_of(&answer.into_inner().info).map_err(unknown)?;
    tracing::info!(image = name.as_str(), "containerd's sandbox image");
    *shared
        .sandbox
        .name
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = Some(name.clone());
    Ok(name)
}

/// Verifies the sandbox image under the policy of `namespace` and, when allowed,
/// pulls it pinned and records its name; single-flight per policy.
async fn ensure(shared: &Shared, namespace: Option<&str>) -> Result<(), Arc<CallError>> {
    let fingerprint = shared.gate.policy_for(namespace).dir.fingerprint.clone();
    let finished = |fingerprint: &Fingerprint| {
        shared
            .sandbox
            .flights
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(fingerprint)
            .cloned()
    };
    let before = finished(&fingerprint).map_or(0, |flights| flights.finished);
    let _flight = shared.sandbox.flight.lock().await;
    if let Some(flights) = finished(&fingerprint) {
        if flights.finished != before {
            // Another caller's ensure of the same policy ended while this one waited.
            return flights.failure.map_or(Ok(()), Err);
        }
    }
    let result = ensure_now(shared, namespace).await.map_err(Arc::new);
    let mut flights = shared
        .sandbox
        .flights
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let entry = flights.entry(fingerprint).or_default();
    entry.finished += 1;
    entry.failure = result.as_ref().err().cloned();
    result
}

async fn ensure_now(shared: &Shared, namespace: Option<&str>) -> Result<(), CallError> {
    let image = learn(shared).await?;
    match shared
        .gate
        .decide_in(&image, &Credentials::None, namespace)
        .await
    {
        Ok(Pass::Forward) => Ok(()),
        Err(Refusal::Unmatched { scope, .. }) => {
            warn_unmatched(shared, &image, &scope);
            Ok(())
        }
        Err(refusal) => Err(refusal.into()),
        Ok(Pass::Pinned {
            pinned,
            tag,
            target,
            verdict,
        }) => {
            let request = cri::v1::PullImageRequest {
                image: Some(cri::v1::ImageSpec {
                    image: pinned.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            };
            if let Err(source) = shared.cri.image.clone().pull_image(request).await {
                return Err(CallError::SandboxPull {
                    image: pinned,
                    socket: shared.upstream.socket().to_owned(),
                    source,
                });
            }
            // The verdict first: once the name points at the digest, its record
            // has the verdict that gives it standing.
            record_verdict(shared, &pinned, &target, Some(&verdict)).await;
            record_tag(shared, &image, tag.as_ref(), &target).await;
            visible(shared, &image).await;
            tracing::info!(
                image = image.as_str(),
                pinned = pinned.as_str(),
                namespace = namespace.unwrap_or("-"),
                "sandbox image verified and pulled pinned"
            );
            Ok(())
        }
    }
}

/// Waits until containerd's CRI finds `image` by name, so a `RunPodSandbox` right
/// after finds it locally instead of pulling it; logs if it does not in time.
async fn visible(shared: &Shared, image: &str) {
    let deadline = crate::clock::monotonic_now() + VISIBLE_WITHIN;
    loop {
        let request = cri::v1::ImageStatusRequest {
            image: Some(cri::v1::ImageSpec {
                image: image.to_owned(),
                ..Default::default()
            }),
            verbose: false,
        };
        let found = shared.cri.image.clone().image_status(request).await;
        if found.is_ok_and(|answer| answer.into_inner().image.is_some()) {
            return;
        }
        if crate::clock::monotonic_now() >= deadline {
            tracing::warn!(
                image,
                "containerd's CRI does not list the recorded sandbox image yet"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn warn_unmatched(shared: &Shared, image: &str, scope: &str) {
    if !shared
        .sandbox
        .unmatched_warned
        .swap(true, Ordering::Relaxed)
    {
        tracing::warn!(
            image,
            scope,
            "no trust policy statement covers containerd's sandbox image; pods run it unverified"
        );
    }
}

/// The background task: learns the sandbox image (retrying until containerd
/// answers), then ensures it under every policy, and again whenever one changes.
pub(super) async fn keep(shared: Arc<Shared>) {
    let mut wait = FIRST_RETRY;
    while let Err(error) = learn(&shared).await {
        tracing::warn!(%error, retry_in = ?wait, "sandbox image not known yet");
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(MAX_RETRY);
    }
    let watches = shared.gate.policy_watches();
    futures_util::future::join_all(watches.into_iter().map(|watch| keep_under(&shared, watch)))
        .await;
}

/// Ensures the sandbox image under one policy now and after each of its reloads.
async fn keep_under(shared: &Shared, watch: PolicyWatch) {
    let PolicyWatch {
        namespace,
        mut policy,
    } = watch;
    loop {
        policy.borrow_and_update();
        let mut wait = FIRST_RETRY;
        loop {
            match ensure(shared, namespace.as_deref()).await {
                Ok(()) => break,
                Err(error) if transient(&error) => {
                    tracing::warn!(%error, retry_in = ?wait, "sandbox image not verified yet");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(MAX_RETRY);
                }
                Err(error) => {
                    tracing::warn!(
                        error = %super::error_chain(&*error),
                        namespace = namespace.as_deref().unwrap_or("-"),
                        "sandbox image not verified; RunPodSandbox is refused where an enforcing statement covers it"
                    );
                    break;
                }
            }
        }
        if policy.changed().await.is_err() {
            return;
        }
    }
}

/// A failure that asking again may cure (containerd or the registry away), as
/// opposed to a verdict.
fn transient(error: &CallError) -> bool {
    !matches!(
        error,
        CallError::Refused(
            Refusal::Denied { .. } | Refusal::InvalidReference(_) | Refusal::Unmatched { .. }
        ) | CallError::SandboxImageUnknown {
            source: SandboxImageError::NoConfig
                | SandboxImageError::UnreadableConfig(_)
                | SandboxImageError::NoSandboxImage,
            ..
        }
    )
}

/// The reason a failed ensure gives a refused `RunPodSandbox`: the verdict's, or
/// what kept it from being reached.
fn reason_of(error: &CallError) -> String {
    match error {
        CallError::Refused(Refusal::Denied { reason, .. }) => reason.to_string(),
        CallError::Refused(
            Refusal::Unresolved { error, .. } | Refusal::Unavailable { error, .. },
        ) => error.to_string(),
        other => super::error_chain(other),
    }
}

pub(super) async fn run_pod_sandbox(
    shared: &Shared,
    request: Request<Incoming>,
) -> Response<ProxyBody> {
    const CALL: &str = "RunPodSandbox";
    let started = crate::clock::monotonic_now();
    let (parts, body) = request.into_parts();
    let (bytes, run): (_, cri::v1::RunPodSandboxRequest) =
        match read_unary(body, CALL, "runtime.v1.RunPodSandboxRequest").await {
            Ok(read) => read,
            Err(error) => return refuse_call(CALL, "", started, error),
        };
    let namespace = run
        .config
        .as_ref()
        .and_then(|config| config.metadata.as_ref())
        .map(|metadata| metadata.namespace.as_str())
        .filter(|namespace| !namespace.is_empty());
    let image = match learn(shared).await {
        Ok(image) => image,
        Err(error) => return refuse_call(CALL, "", started, error),
    };
    if let Err(error) = admit(shared, &image, namespace).await {
        return refuse_call(CALL, &image, started, error);
    }
    let forwarded = Request::from_parts(parts, box_body(Full::new(bytes)));
    match shared.upstream.forward(forwarded).await {
        Ok(response) => response.map(box_body),
        Err(error) => refuse_call(CALL, &image, started, error.into()),
    }
}

/// Whether a pod in `namespace` may run its sandbox from `image`.
async fn admit(shared: &Shared, image: &str, namespace: Option<&str>) -> Result<(), CallError> {
    let reference: Reference = image
        .parse()
        .map_err(|error: ReferenceError| Refusal::InvalidReference(error))?;
    match coverage(&shared.gate.policy_for(namespace), &reference) {
        Coverage::Enforcing => {}
        Coverage::NotEnforcing => return Ok(()),
        Coverage::Unmatched { scope } => {
            warn_unmatched(shared, image, &scope);
            return Ok(());
        }
    }
    let call = StandingCall::RunPodSandbox;
    match check(shared, call, image, image, namespace).await {
        Err(CallError::NotVerified(_)) => {}
        other => return other,
    }
    let ensured = ensure(shared, namespace).await;
    match check(shared, call, image, image, namespace).await {
        Err(CallError::NotVerified(NotVerified::Unverified {
            image,
            statement,
            why,
        })) => {
            let why = ensured.err().map_or(why, |failure| reason_of(&failure));
            tracing::info!(
                target: "pullgate::audit",
                call = call.as_str(),
                image = image.as_str(),
                namespace = namespace.unwrap_or("-"),
                policy = statement.as_str(),
                outcome = "denied",
                reason = why.as_str(),
                "sandbox image not verified"
            );
            Err(NotVerified::Unverified {
                image,
                statement,
                why,
            }
            .into())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(config: &str) -> HashMap<String, String> {
        HashMap::from([("config".to_owned(), config.to_owned())])
    }

    #[test]
    fn the_sandbox_image_is_read_from_containerd_1_6_1_7_and_2_configs() {
        // containerd 1.6 and 1.7: the CRI plugin config, flattened.
        let v1 = info(r#"{"containerd":{},"sandboxImage":"127.0.0.1:5000/pause:3.9"}"#);
        assert_eq!(
            sandbox_image_of(&v1).ok().as_deref(),
            Some("127.0.0.1:5000/pause:3.9")
        );
        // containerd 2: the image service's pinned images.
        let v2 = info(r#"{"pinnedImages":{"sandbox":"registry.k8s.io/pause:3.10"}}"#);
        assert_eq!(
            sandbox_image_of(&v2).ok().as_deref(),
            Some("registry.k8s.io/pause:3.10")
        );
    }

    #[test]
    fn an_answer_without_a_sandbox_image_says_why() {
        assert!(matches!(
            sandbox_image_of(&HashMap::new()),
            Err(SandboxImageError::NoConfig)
        ));
        assert!(matches!(
            sandbox_image_of(&info("not json")),
            Err(SandboxImageError::UnreadableConfig(_))
        ));
        assert!(matches!(
            sandbox_image_of(&info(r#"{"sandboxImage":""}"#)),
            Err(SandboxImageError::NoSandboxImage)
        ));
    }

    fn policy(statements: serde_json::Value) -> LoadedPolicy {
        let document = serde_json::json!({"version": "1.0", "trustPolicies": statements});
        let document = crate::policy::TrustPolicyDocument::parse(document.to_string().as_bytes())
            .expect("policy");
        LoadedPolicy {
            generation: 1,
            dir: Arc::new(crate::policy_dir::PolicyDir {
                document,
                stores: Vec::new(),
                policy_file: "trustpolicy.json".into(),
                fingerprint: Fingerprint::from_hex("0123456789abcdef"),
            }),
        }
    }

    fn statement(scope: &str, level: &str) -> serde_json::Value {
        if level == "skip" {
            return serde_json::json!({
                "name": level, "registryScopes": [scope],
                "signatureVerification": {"level": level},
            });
        }
        serde_json::json!({
            "name": level, "registryScopes": [scope],
            "signatureVerification": {"level": level},
            "trustStores": ["ca:acme"], "trustedIdentities": ["*"],
        })
    }

    #[test]
    fn only_an_enforcing_statement_makes_the_sandbox_image_need_standing() {
        let pause: Reference = "r.test/pause:3.9".parse().expect("reference");
        for (level, expected) in [
            ("strict", Coverage::Enforcing),
            ("permissive", Coverage::Enforcing),
            ("audit", Coverage::NotEnforcing),
            ("skip", Coverage::NotEnforcing),
        ] {
            let exact = policy(serde_json::json!([statement("r.test/pause", level)]));
            assert_eq!(coverage(&exact, &pause), expected, "{level}");
            let wildcard = policy(serde_json::json!([statement("*", level)]));
            assert_eq!(coverage(&wildcard, &pause), expected, "* {level}");
        }
        let other = policy(serde_json::json!([statement("r.test/app", "strict")]));
        assert_eq!(
            coverage(&other, &pause),
            Coverage::Unmatched {
                scope: "r.test/pause".into()
            }
        );
    }

    #[test]
    fn a_verdict_is_final_and_an_absent_peer_is_asked_again() {
        let denied = CallError::Refused(Refusal::Unmatched {
            image: "r.test/pause:3.9".into(),
            scope: "r.test/pause".into(),
        });
        assert!(!transient(&denied));
        let away = CallError::SandboxImageUnknown {
            socket: "/run/containerd/containerd.sock".into(),
            source: SandboxImageError::Status(tonic::Status::unavailable("gone")),
        };
        assert!(transient(&away));
        assert_eq!(super::super::status(&away).code(), tonic::Code::Unavailable);
        let unreadable = CallError::SandboxImageUnknown {
            socket: "/run/containerd/containerd.sock".into(),
            source: SandboxImageError::NoSandboxImage,
        };
        assert!(!transient(&unreadable));
        assert_eq!(
            super::super::status(&unreadable).code(),
            tonic::Code::Internal
        );
    }

    #[test]
    fn a_refused_sandbox_names_the_image_the_policy_and_the_reason() {
        let refusal = CallError::NotVerified(NotVerified::Unverified {
            image: "r.test/pause:3.9".into(),
            statement: "pause".into(),
            why: "no signature is associated with \"r.test/pause@sha256:00\"".into(),
        });
        let status = super::super::status(&refusal);
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
        assert_eq!(
            status.message(),
            "pullgate: r.test/pause:3.9: not verified under trust policy \"pause\" \
             (no signature is associated with \"r.test/pause@sha256:00\")"
        );
    }
}
