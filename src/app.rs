//! Composition: binds pullgate's socket, routes each gRPC call (gate, pass-through or
//! refusal), sets up logging, and shuts down gracefully.

use std::convert::Infallible;
use std::future::Future;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::UnixListener;
use tower::ServiceExt;

use crate::config::{Config, LogConfig, LogFormat, ServerConfig};
use crate::cri::{self, box_body, status_response, ProxyBody, Route};
use crate::gate::{Decision, Gate, GateSettings};
use crate::intercept::{status, CallError, PullImageGate};
use crate::metrics::Metrics;
use crate::upstream::Upstream;
use crate::verify::LoadedPolicy;
use std::sync::Arc;

/// Why pullgate could not start serving.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("trust policy: {0}")]
    Policy(#[from] crate::policy_dir::PolicyDirError),
    #[error("registry settings: {0}")]
    Registry(#[from] crate::registry::RegistryError),
    #[error("metrics listener {listen}: {source}")]
    Metrics {
        listen: String,
        #[source]
        source: std::io::Error,
    },
    #[error("socket {path} is in use by a running process; refusing to take it over")]
    SocketInUse { path: PathBuf },
    #[error("{path} exists and is not a socket; refusing to replace it")]
    NotASocket { path: PathBuf },
    #[error("cannot prepare socket {path}: {source}")]
    Socket {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Routes one gRPC call. Cheap to clone: one per connection.
#[derive(Clone)]
pub struct CriRouter {
    upstream: Upstream,
    gate: PullImageGate,
}

impl CriRouter {
    pub fn new(upstream: Upstream, gate: PullImageGate) -> CriRouter {
        CriRouter { gate, upstream }
    }

    pub async fn handle(&self, mut request: Request<Incoming>) -> Response<ProxyBody> {
        match cri::route(request.uri().path()) {
            Route::PullImage(api) => {
                request.extensions_mut().insert(api);
                match self.gate.clone().oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                }
            }
            Route::ImageStatus(_) => self.gate.image_status(request).await,
            Route::CreateContainer(_) => self.gate.create_container(request).await,
            Route::RunPodSandbox(_) => self.gate.run_pod_sandbox(request).await,
            Route::PassThrough { .. } => self.pass_through(request).await,
            Route::Refused { service } => {
                tracing::warn!(service, "refused a call to a non-CRI service");
                let service = service.to_owned();
                status_response(status(&CallError::NotCri { service }))
            }
        }
    }

    async fn pass_through(&self, request: Request<Incoming>) -> Response<ProxyBody> {
        let started = crate::clock::monotonic_now();
        let path = request.uri().path().to_owned();
        let request = request.map(box_body);
        match self.upstream.forward(request).await {
            Ok(response) => {
                tracing::debug!(
                    path,
                    elapsed_us = started.elapsed().as_micros() as u64,
                    "forwarded"
                );
                response.map(box_body)
            }
            Err(error) => {
                tracing::warn!(path, %error, "forwarding failed");
                status_response(status(&CallError::Upstream(error)))
            }
        }
    }
}

/// Installs the global tracing subscriber. `RUST_LOG`, when set, overrides the
/// configured level so an operator can turn on debug output without editing files.
pub fn init_logging(log: &LogConfig) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| tracing_subscriber::EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(&log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let result = match log.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // A second init (tests) keeps the first subscriber; that is harmless.
    drop(result);
}

/// A bound listening socket, removed again on shutdown if it is still ours.
pub struct BoundSocket {
    listener: UnixListener,
    path: PathBuf,
    identity: (u64, u64),
}

impl BoundSocket {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the socket file unless something else has replaced it meanwhile.
    fn remove(&self) {
        match std::fs::symlink_metadata(&self.path) {
            Ok(meta) if (meta.dev(), meta.ino()) == self.identity => {
                if let Err(error) = std::fs::remove_file(&self.path) {
                    tracing::warn!(path = %self.path.display(), %error, "could not remove socket");
                }
            }
            _ => {}
        }
    }
}

/// Binds `server.socket` (see [`claim_socket_path`] for what may be replaced).
pub fn bind_socket(server: &ServerConfig) -> Result<BoundSocket, AppError> {
    let path = &server.socket;
    let socket_error = |source| AppError::Socket {
        path: path.clone(),
        source,
    };
    claim_socket_path(path)?;
    // bind() creates the socket with the umask's mode, which without group/other
    // write bits nobody else can connect to; the configured mode is applied before
    // the first accept.
    let listener = UnixListener::bind(path).map_err(socket_error)?;
    if let Some(gid) = server.socket_gid {
        std::os::unix::fs::chown(path, None, Some(gid)).map_err(socket_error)?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(server.socket_mode))
        .map_err(socket_error)?;
    let meta = std::fs::symlink_metadata(path).map_err(socket_error)?;
    Ok(BoundSocket {
        listener,
        path: path.clone(),
        identity: (meta.dev(), meta.ino()),
    })
}

/// Makes `path` ready for a listening socket, for the CRI socket and a unix
/// metrics socket alike: a stale socket file (nobody listening) is removed, a live
/// one is left alone, anything that is not a socket is never deleted; the parent
/// directory is created.
fn claim_socket_path(path: &Path) -> Result<(), AppError> {
    let socket_error = |source| AppError::Socket {
        path: path.to_owned(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(_) => {
                    return Err(AppError::SocketInUse {
                        path: path.to_owned(),
                    })
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    tracing::info!(path = %path.display(), "replacing stale socket");
                    std::fs::remove_file(path).map_err(socket_error)?;
                }
                Err(e) => return Err(socket_error(e)),
            }
        }
        Ok(_) => {
            return Err(AppError::NotASocket {
                path: path.to_owned(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(socket_error(e)),
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(socket_error)?;
    }
    Ok(())
}

/// What must be loaded and valid before anything is bound: the trust policy and
/// stores, and the registry settings (hosts directory, credentials file).
pub struct Prepared {
    policy: crate::policy_dir::PolicyDir,
    /// One per `[[policy.namespace]]` table, in config order.
    namespace_policies: Vec<crate::policy_dir::PolicyDir>,
    registry: crate::registry::RegistryClient,
}

/// Loads the policy and builds the registry client; any error stops the start.
pub fn prepare(config: &Config) -> Result<Prepared, AppError> {
    let policy = crate::policy_dir::load_policy_dir(&config.policy.dir)?;
    let namespace_policies = config
        .policy
        .namespaces
        .iter()
        .map(|namespace| crate::policy_dir::load_policy_dir(&namespace.dir))
        .collect::<Result<Vec<_>, _>>()?;
    let registry = crate::registry::RegistryClient::new(crate::registry::RegistryConfig {
        hosts_dir: Some(config.registry.hosts_dir.clone()),
        credentials_file: config.registry.credentials_file.clone(),
        insecure_registries: config.registry.insecure.clone(),
        ..Default::default()
    })?;
    Ok(Prepared {
        policy,
        namespace_policies,
        registry,
    })
}

/// Serves the CRI on `socket` until `shutdown` completes, then stops accepting,
/// removes the socket and gives in-flight calls `config.server.shutdown_grace`.
pub async fn serve(
    config: &Config,
    prepared: Prepared,
    socket: BoundSocket,
    shutdown: impl Future<Output = ()>,
) {
    let upstream = Upstream::new(
        &config.upstream.containerd_socket,
        config.upstream.connect_timeout,
    );
    let metrics = Arc::new(Metrics::new());
    metrics.set_policy_generation(1);
    let (gate, reloads) = gate_and_reloads(config, prepared, &metrics);
    let gate = PullImageGate::new(
        upstream.clone(),
        crate::upstream::ImageStore::new(&config.upstream.containerd_socket),
        gate,
    );
    // In the background: serving does not wait for containerd to answer.
    let sandbox_image = gate.keep_sandbox_image();
    let router = CriRouter::new(upstream, gate);
    // Who connects (SO_PEERCRED), for `pullgate doctor` and the client metrics.
    let (clients, clients_writer) =
        crate::clients::ClientTracker::new(&socket.path, Arc::clone(&metrics));
    let clients_writer = tokio::spawn(clients_writer);
    let metrics_server = match &config.metrics.listen {
        Some(listen) => match serve_metrics(listen, Arc::clone(&metrics)).await {
            Ok(task) => Some(task),
            Err(error) => {
                tracing::error!(%error, "metrics listener not started");
                None
            }
        },
        None => None,
    };
    let graceful = GracefulShutdown::new();

    tracing::info!(
        socket = %socket.path.display(),
        containerd = %config.upstream.containerd_socket.display(),
        "serving the CRI"
    );
    notify_systemd_ready();

    accept(&socket, &router, &clients, &graceful, shutdown).await;

    socket.remove();
    drop(socket);
    for reload in &reloads {
        reload.abort();
    }
    clients_writer.abort();
    sandbox_image.abort();
    if let Some(task) = metrics_server {
        task.abort();
    }
    let grace = config.server.shutdown_grace;
    tracing::info!(
        ?grace,
        "shutting down: no new connections, waiting for in-flight calls"
    );
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all calls finished"),
        () = tokio::time::sleep(grace) => {
            tracing::warn!(?grace, "grace period over; dropping the remaining calls");
        }
    }
}

/// The gate over the default and the namespace policies, and the tasks that
/// reload each policy directory.
fn gate_and_reloads(
    config: &Config,
    prepared: Prepared,
    metrics: &Arc<Metrics>,
) -> (Gate, Vec<tokio::task::JoinHandle<()>>) {
    // One generation counter for every policy: the cache drops entries older than
    // the newest reload of any of them (a loss of cached verdicts, never a wrong one:
    // cache keys name the policy's fingerprint).
    let generations = Arc::new(std::sync::atomic::AtomicU64::new(1));
    let (policy_tx, policy_rx) = tokio::sync::watch::channel(Arc::new(LoadedPolicy {
        generation: 1,
        dir: Arc::new(prepared.policy),
    }));
    let cache = crate::cache::VerdictCache::new(config.cache.clone());
    let mut reloads = vec![tokio::spawn(reload_policy(
        config.policy.dir.clone(),
        config.policy.reload_interval,
        policy_tx,
        Reloaded {
            cache: cache.clone(),
            metrics: Arc::clone(metrics),
            generations: Arc::clone(&generations),
        },
    ))];
    let mut namespaces = Vec::new();
    for (table, dir) in config
        .policy
        .namespaces
        .iter()
        .zip(prepared.namespace_policies)
    {
        let (tx, rx) = tokio::sync::watch::channel(Arc::new(LoadedPolicy {
            generation: 1,
            dir: Arc::new(dir),
        }));
        reloads.push(tokio::spawn(reload_policy(
            table.dir.clone(),
            config.policy.reload_interval,
            tx,
            Reloaded {
                cache: cache.clone(),
                metrics: Arc::clone(metrics),
                generations: Arc::clone(&generations),
            },
        )));
        namespaces.push(crate::gate::NamespacePolicy {
            patterns: table.namespaces.clone(),
            policy: rx,
        });
    }
    let gate = Gate::new(
        prepared.registry,
        policy_rx,
        cache,
        gate_settings(config, metrics),
    )
    .with_metrics(Arc::clone(metrics))
    .with_namespace_policies(namespaces);
    (gate, reloads)
}

/// The gate's settings from the config file; revocation checks report to `metrics`.
fn gate_settings(config: &Config, metrics: &Arc<Metrics>) -> GateSettings {
    let revocation = crate::revocation::Checker::new(
        config.revocation.settings(),
        tokio::runtime::Handle::current(),
    )
    .with_observer(Arc::new(RevocationMetrics(Arc::clone(metrics))));
    GateSettings {
        unmatched: config.policy.unmatched,
        registry_timeout: config.registry.timeout,
        budgets: crate::verify::Budgets {
            max_signature_attempts: config.verify.max_signatures,
            ..Default::default()
        },
        revocation: Some(Arc::new(revocation)),
        verdict_max_age: config.policy.verdict_max_age,
    }
}

/// Accepts CRI connections on `socket` and serves each with `router` until
/// `shutdown` completes.
async fn accept(
    socket: &BoundSocket,
    router: &CriRouter,
    clients: &crate::clients::ClientTracker,
    graceful: &GracefulShutdown,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder.timer(TokioTimer::new());
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = socket.listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let peer = stream.peer_cred().ok();
                    let clients = clients.clone();
                    let router = router.clone();
                    let service = hyper::service::service_fn(move |request| {
                        let router = router.clone();
                        async move { Ok::<_, Infallible>(router.handle(request).await) }
                    });
                    let connection = builder.serve_connection(TokioIo::new(stream), service);
                    let connection = graceful.watch(connection);
                    tokio::spawn(async move {
                        // Recorded here, off the accept loop: it reads the peer's procfs.
                        let _open = clients.connected(peer, crate::clock::wall_now());
                        if let Err(error) = connection.await {
                            tracing::debug!(%error, "client connection ended with an error");
                        }
                    });
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

/// Reloads the policy directory on SIGHUP and when its files change (checked every
/// `interval`). A new policy gets the next generation; an invalid one keeps the
/// last good policy in force and says why.
/// Where a policy reload is reported.
struct Reloaded {
    cache: crate::cache::VerdictCache<Decision>,
    metrics: Arc<Metrics>,
    /// The generation counter all policies share.
    generations: Arc<std::sync::atomic::AtomicU64>,
}

async fn reload_policy(
    dir: PathBuf,
    interval: Duration,
    policy: tokio::sync::watch::Sender<Arc<LoadedPolicy>>,
    reloaded: Reloaded,
) {
    let Reloaded {
        cache,
        metrics,
        generations,
    } = reloaded;
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangup = signal(SignalKind::hangup()).ok();
    let mut seen = fingerprint(&dir);
    loop {
        let forced = tokio::select! {
            _ = async {
                match hangup.as_mut() {
                    Some(s) => { s.recv().await; }
                    None => std::future::pending::<()>().await,
                }
            } => true,
            () = tokio::time::sleep(interval) => false,
        };
        let now = fingerprint(&dir);
        if !forced && now == seen {
            continue;
        }
        seen = now;
        let generation = generations.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        match crate::policy_dir::load_policy_dir(&dir) {
            Ok(loaded) => {
                tracing::info!(generation, forced, dir = %dir.display(), "trust policy reloaded");
                policy.send_replace(Arc::new(LoadedPolicy {
                    generation,
                    dir: Arc::new(loaded),
                }));
                cache.retain_generation(generation);
                metrics.set_policy_generation(generation);
            }
            Err(error) => {
                metrics.reload_failures.inc();
                tracing::error!(%error, "trust policy reload rejected; the last good policy stays in force");
            }
        }
    }
}

/// Sizes and modification times of every file under `dir` (bounded), to notice
/// edits without a file-watching dependency.
fn fingerprint(dir: &Path) -> Vec<(PathBuf, u64, Option<std::time::SystemTime>)> {
    const MAX_ENTRIES: usize = 10_000;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(path) = stack.pop() {
        if out.len() >= MAX_ENTRIES {
            break;
        }
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            out.push((path, 0, None));
            continue;
        };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.filter_map(|e| e.ok().map(|e| e.path())));
            }
        }
        out.push((path, meta.len(), meta.modified().ok()));
    }
    out.sort();
    out
}

/// Serves `GET /metrics` (Prometheus text format) on a TCP address or unix socket.
async fn serve_metrics(
    listen: &crate::config::MetricsListen,
    metrics: Arc<crate::metrics::Metrics>,
) -> Result<tokio::task::JoinHandle<()>, AppError> {
    use crate::config::MetricsListen;
    let service = move |request: Request<Incoming>| -> MetricsResponse {
        let metrics = Arc::clone(&metrics);
        Box::pin(async move {
            let response = if request.uri().path() == "/metrics" {
                Response::builder()
                    .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                    .body(http_body_util::Full::new(bytes::Bytes::from(
                        metrics.encode(),
                    )))
            } else {
                Response::builder()
                    .status(http::StatusCode::NOT_FOUND)
                    .body(http_body_util::Full::new(bytes::Bytes::from_static(
                        b"not found\n",
                    )))
            };
            response.map_err(std::io::Error::other)
        })
    };
    match listen {
        MetricsListen::Tcp(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| AppError::Metrics {
                    listen: addr.to_string(),
                    source,
                })?;
            tracing::info!(%addr, "serving metrics");
            Ok(tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    serve_http1(stream, service.clone());
                }
            }))
        }
        MetricsListen::Unix(path) => {
            // The CRI socket's rules: never delete a non-socket, never steal a live one.
            claim_socket_path(path)?;
            let listener = UnixListener::bind(path).map_err(|source| AppError::Metrics {
                listen: path.display().to_string(),
                source,
            })?;
            tracing::info!(path = %path.display(), "serving metrics");
            Ok(tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    serve_http1(stream, service.clone());
                }
            }))
        }
    }
}

/// Serves one HTTP/1 connection with `service`, on its own task.
fn serve_http1<S, F>(stream: S, service: F)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    F: Fn(Request<Incoming>) -> MetricsResponse + Send + 'static,
{
    tokio::spawn(async move {
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), hyper::service::service_fn(service))
            .await;
    });
}

/// What the metrics endpoint answers one request with.
type MetricsResponse = std::pin::Pin<
    Box<
        dyn Future<Output = Result<Response<http_body_util::Full<bytes::Bytes>>, std::io::Error>>
            + Send,
    >,
>;

/// Resolves when SIGTERM or SIGINT arrives.
pub async fn termination_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop pullgate with SIGKILL");
        return std::future::pending().await;
    };
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!(signal = name, "stop requested");
}

/// Tells systemd (Type=notify) that the socket is bound and calls are served, so
/// the kubelet, ordered after pullgate, never finds the socket missing.
fn notify_systemd_ready() {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let socket = match std::os::unix::net::UnixDatagram::unbound() {
        Ok(socket) => socket,
        Err(error) => {
            tracing::warn!(%error, "sd_notify: cannot create socket");
            return;
        }
    };
    let bytes = target.as_encoded_bytes();
    let result = if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name)
            .and_then(|addr| socket.send_to_addr(b"READY=1", &addr))
    } else {
        socket.send_to(b"READY=1", Path::new(&target))
    };
    if let Err(error) = result {
        tracing::warn!(%error, "sd_notify READY=1 failed");
    }
}

/// Revocation checks reported to the Prometheus metrics.
struct RevocationMetrics(Arc<crate::metrics::Metrics>);

impl crate::revocation::Observer for RevocationMetrics {
    fn checked(&self, method: &'static str, result: &'static str) {
        self.0.revocation_checked(method, result);
    }
    fn cache_hit(&self, source: &'static str) {
        self.0.revocation_cache_hit(source);
    }
    fn fetched(&self, kind: &'static str, ok: bool, seconds: f64) {
        self.0.revocation_fetched(kind, ok, seconds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn server_config(dir: &Path) -> ServerConfig {
        ServerConfig {
            socket: dir.join("sub/pullgate.sock"),
            ..Config::default().server
        }
    }

    #[tokio::test]
    async fn binds_with_configured_mode_and_creates_parent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut server = server_config(dir.path());
        server.socket_mode = 0o600;
        let bound = bind_socket(&server).expect("binds");
        let meta = std::fs::symlink_metadata(bound.path()).expect("exists");
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        bound.remove();
        assert!(!server.socket.exists());
    }

    #[tokio::test]
    async fn stale_socket_is_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = server_config(dir.path());
        std::fs::create_dir_all(server.socket.parent().expect("parent")).expect("mkdir");
        // A listener that is closed again leaves its socket file behind.
        drop(std::os::unix::net::UnixListener::bind(&server.socket).expect("bind stale"));
        assert!(server.socket.exists());
        let bound = bind_socket(&server).expect("stale socket replaced");
        assert!(std::os::unix::net::UnixStream::connect(bound.path()).is_ok());
    }

    #[tokio::test]
    async fn live_socket_is_not_stolen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = server_config(dir.path());
        let first = bind_socket(&server).expect("first bind");
        match bind_socket(&server) {
            Err(AppError::SocketInUse { path }) => assert_eq!(path, server.socket),
            other => panic!("expected SocketInUse, got {:?}", other.map(|b| b.path)),
        }
        // The first listener still owns a working socket.
        assert!(std::os::unix::net::UnixStream::connect(first.path()).is_ok());
    }

    #[tokio::test]
    async fn regular_file_is_never_deleted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = server_config(dir.path());
        std::fs::create_dir_all(server.socket.parent().expect("parent")).expect("mkdir");
        std::fs::write(&server.socket, b"precious").expect("write");
        match bind_socket(&server) {
            Err(AppError::NotASocket { path }) => assert_eq!(path, server.socket),
            other => panic!("expected NotASocket, got {:?}", other.map(|b| b.path)),
        }
        assert_eq!(
            std::fs::read(&server.socket).expect("still there"),
            b"precious"
        );
    }

    #[tokio::test]
    async fn replaced_socket_is_not_removed_on_shutdown() {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = server_config(dir.path());
        let bound = bind_socket(&server).expect("binds");
        std::fs::remove_file(&server.socket).expect("rm");
        std::fs::write(&server.socket, b"someone else's").expect("write");
        bound.remove();
        assert!(server.socket.exists());
    }
}
