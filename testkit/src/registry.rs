//! A small in-process OCI distribution-spec registry for the registry client's
//! tests: manifests, tags and blobs in memory, the referrers API (paged,
//! switchable), Bearer token auth with a token endpoint on the same server, and
//! fault injection. It records every request and counts TCP connections.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use pullgate::oci::Descriptor;
use pullgate::reference::{Digest, DigestAlgorithm};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;

type Body = BoxBody<Bytes, Infallible>;

/// What a matching request gets instead of the normal answer.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status (and an empty body).
    Status(u16),
    /// 429 with this `Retry-After` value.
    TooManyRequests(String),
    /// Headers and half the body, then nothing.
    Stall,
    /// The real body plus this many bytes (Content-Length tells the truth about
    /// what is sent, not about the descriptor), optionally chunked.
    ExtraBytes { bytes: usize, chunked: bool },
    /// The body with its first byte changed (same length).
    Corrupt,
    /// The normal body with another Content-Type.
    ContentType(String),
    /// 307 to the same URL, forever.
    RedirectLoop,
    /// 307 to `<base><path and query>`.
    RedirectTo(String),
}

#[derive(Debug, Clone)]
pub struct Logged {
    pub method: Method,
    pub path: String,
    pub authorization: Option<String>,
}

#[derive(Default)]
struct State {
    /// (repo, digest) → (media type, bytes), in push order.
    manifests: Vec<(String, Digest, String, Vec<u8>)>,
    tags: HashMap<(String, String), Digest>,
    blobs: HashMap<Digest, Vec<u8>>,
    referrers_api: bool,
    filter_referrers: bool,
    page_size: usize,
    /// Extra notary-signature entries appended to every referrers listing.
    synthetic_referrers: usize,
    bearer: bool,
    basic: Option<(String, String)>,
    /// The OAuth2 refresh token the token endpoint requires (POST form, oauth.md);
    /// when set, GET token requests are refused.
    refresh: Option<String>,
    /// The decoded form of every POST to the token endpoint.
    token_forms: Vec<HashMap<String, String>>,
    tokens: Vec<String>,
    /// `expires_in` of issued tokens (a JSON number, so tests can send any).
    token_expires_in: u64,
    /// The Bearer challenge's realm; `None` = this server's own `/token`.
    realm: Option<String>,
    faults: Vec<(String, Fault, usize)>,
    log: Vec<Logged>,
    connections: usize,
    /// TLS mode: connections that did not start with a TLS handshake.
    plain_http: usize,
}

/// The running registry; dropped → the listener task ends.
pub struct TestRegistry {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl TestRegistry {
    pub async fn start() -> TestRegistry {
        TestRegistry::serve(None).await
    }

    /// The same registry over TLS with this certificate chain and key (PEM files).
    /// A connection whose first byte is not a TLS handshake record is counted as a
    /// plain-http attempt and closed.
    pub async fn start_tls(cert: &Path, key: &Path) -> TestRegistry {
        let chain = CertificateDer::pem_file_iter(cert)
            .expect("read certificate")
            .collect::<Result<Vec<_>, _>>()
            .expect("certificate PEM");
        let key = PrivateKeyDer::from_pem_file(key).expect("key PEM");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server certificate");
        TestRegistry::serve(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn serve(tls: Option<tokio_rustls::TlsAcceptor>) -> TestRegistry {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local addr");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let state = Arc::new(Mutex::new(State {
            referrers_api: true,
            page_size: 1000,
            token_expires_in: 300,
            ..State::default()
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                lock(&shared).connections += 1;
                let state = shared.clone();
                let counts = shared.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let state = state.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let req = Request::from_parts(parts, body);
                            Ok::<_, Infallible>(handle(&state, scheme, addr, req))
                        }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                        Some(acceptor) => {
                            let mut first = [0u8; 1];
                            // 0x16: a TLS handshake record (RFC 8446 §5.1).
                            if stream.peek(&mut first).await.ok() != Some(1) || first[0] != 0x16 {
                                lock(&counts).plain_http += 1;
                                return;
                            }
                            let Ok(stream) = acceptor.accept(stream).await else {
                                return;
                            };
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                });
            }
        });
        TestRegistry { addr, state, task }
    }

    /// `127.0.0.1:<port>`: the registry part of references to this registry.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn set_referrers_api(&self, on: bool) {
        lock(&self.state).referrers_api = on;
    }
    pub fn set_filter_referrers(&self, on: bool) {
        lock(&self.state).filter_referrers = on;
    }
    pub fn set_page_size(&self, n: usize) {
        lock(&self.state).page_size = n.max(1);
    }
    pub fn set_synthetic_referrers(&self, n: usize) {
        lock(&self.state).synthetic_referrers = n;
    }
    /// Bearer auth on every /v2/ request; `basic` = credentials the token
    /// endpoint requires (else anonymous tokens).
    pub fn set_bearer(&self, basic: Option<(&str, &str)>) {
        let mut state = lock(&self.state);
        state.bearer = true;
        state.basic = basic.map(|(u, p)| (u.to_owned(), p.to_owned()));
    }
    /// The next `times` requests whose path contains `path` get `fault`.
    pub fn fault(&self, path: &str, fault: Fault, times: usize) {
        lock(&self.state)
            .faults
            .push((path.to_owned(), fault, times));
    }
    pub fn log(&self) -> Vec<Logged> {
        lock(&self.state).log.clone()
    }
    pub fn connections(&self) -> usize {
        lock(&self.state).connections
    }
    /// TLS mode: connections that did not open with a TLS handshake.
    pub fn plain_http_attempts(&self) -> usize {
        lock(&self.state).plain_http
    }
    /// Bearer auth whose token endpoint takes only an OAuth2 refresh token
    /// (POST `grant_type=refresh_token`, distribution oauth.md).
    pub fn set_bearer_refresh(&self, refresh_token: &str) {
        let mut state = lock(&self.state);
        state.bearer = true;
        state.refresh = Some(refresh_token.to_owned());
    }
    /// The decoded form fields of every POST to the token endpoint.
    pub fn token_forms(&self) -> Vec<HashMap<String, String>> {
        lock(&self.state).token_forms.clone()
    }
    /// The `expires_in` the token endpoint puts in its answers.
    pub fn set_token_expires_in(&self, seconds: u64) {
        lock(&self.state).token_expires_in = seconds;
    }
    /// The realm the Bearer challenge names (e.g. another server's token endpoint).
    pub fn set_realm(&self, realm: &str) {
        lock(&self.state).realm = Some(realm.to_owned());
    }
    pub fn clear_log(&self) {
        lock(&self.state).log.clear();
    }

    pub fn push_blob(&self, bytes: &[u8]) -> Digest {
        let digest = Digest::of(DigestAlgorithm::Sha256, bytes);
        lock(&self.state)
            .blobs
            .insert(digest.clone(), bytes.to_vec());
        digest
    }

    pub fn push_manifest(&self, repo: &str, media_type: &str, bytes: &[u8]) -> Descriptor {
        let digest = Digest::of(DigestAlgorithm::Sha256, bytes);
        lock(&self.state).manifests.push((
            repo.to_owned(),
            digest.clone(),
            media_type.to_owned(),
            bytes.to_vec(),
        ));
        Descriptor {
            media_type: media_type.to_owned(),
            digest,
            size: bytes.len() as u64,
            annotations: Default::default(),
            artifact_type: None,
        }
    }

    pub fn tag(&self, repo: &str, tag: &str, digest: &Digest) {
        lock(&self.state)
            .tags
            .insert((repo.to_owned(), tag.to_owned()), digest.clone());
    }

    /// An image manifest with one layer, tagged `tag`.
    pub fn push_image(&self, repo: &str, tag: &str) -> Descriptor {
        let config = self.push_blob(b"{}");
        let layer = self.push_blob(format!("layer of {repo}:{tag}").as_bytes());
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(), "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.to_string(), "size": format!("layer of {repo}:{tag}").len()}]
        });
        let bytes = serde_json::to_vec(&manifest).expect("json");
        let descriptor =
            self.push_manifest(repo, "application/vnd.oci.image.manifest.v1+json", &bytes);
        self.tag(repo, tag, &descriptor.digest);
        descriptor
    }

    /// A Notary signature manifest (artifactType form) for `target` with one
    /// envelope layer. Returns the manifest descriptor as a referrers listing has it.
    pub fn push_signature(&self, repo: &str, target: &Descriptor, envelope: &[u8]) -> Descriptor {
        let empty = self.push_blob(b"{}");
        let blob = self.push_blob(envelope);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/vnd.cncf.notary.signature",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.to_string(), "size": 2},
            "layers": [{"mediaType": "application/jose+json", "digest": blob.to_string(), "size": envelope.len()}],
            "subject": {"mediaType": target.media_type, "digest": target.digest.to_string(), "size": target.size},
        });
        let bytes = serde_json::to_vec(&manifest).expect("json");
        let mut descriptor =
            self.push_manifest(repo, "application/vnd.oci.image.manifest.v1+json", &bytes);
        descriptor.artifact_type = Some("application/vnd.cncf.notary.signature".into());
        descriptor
    }

    /// Pushes the `<alg>-<hex>` referrers tag index listing `referrers` for `target`.
    pub fn push_referrers_tag(&self, repo: &str, target: &Descriptor, referrers: &[Descriptor]) {
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": referrers,
        });
        let bytes = serde_json::to_vec(&index).expect("json");
        let descriptor =
            self.push_manifest(repo, "application/vnd.oci.image.index.v1+json", &bytes);
        self.tag(repo, &target.digest.referrers_tag(), &descriptor.digest);
    }
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

fn status(code: u16) -> Response<Body> {
    let mut response = Response::new(full(Bytes::new()));
    *response.status_mut() = StatusCode::from_u16(code).expect("valid status");
    response
}

fn handle(
    state: &Mutex<State>,
    scheme: &str,
    addr: SocketAddr,
    req: Request<Bytes>,
) -> Response<Body> {
    let path = req
        .uri()
        .path_and_query()
        .map_or("/".to_owned(), |p| p.as_str().to_owned());
    let authorization = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut st = lock(state);
    st.log.push(Logged {
        method: req.method().clone(),
        path: path.clone(),
        authorization: authorization.clone(),
    });
    let fault = st
        .faults
        .iter_mut()
        .find(|(p, _, left)| *left > 0 && path.contains(p.as_str()))
        .map(|(_, fault, left)| {
            *left -= 1;
            fault.clone()
        });
    match fault {
        Some(Fault::Status(code)) => return status(code),
        Some(Fault::TooManyRequests(after)) => {
            let mut r = status(429);
            r.headers_mut()
                .insert("retry-after", after.parse().expect("header"));
            return r;
        }
        Some(Fault::RedirectLoop) => {
            let mut r = status(307);
            r.headers_mut()
                .insert("location", path.parse().expect("header"));
            return r;
        }
        Some(Fault::RedirectTo(base)) => {
            let mut r = status(307);
            r.headers_mut()
                .insert("location", format!("{base}{path}").parse().expect("header"));
            return r;
        }
        _ => {}
    }

    if path.starts_with("/token") && req.method() == Method::POST {
        let form = parse_form(req.body());
        st.token_forms.push(form.clone());
        let granted = st.refresh.is_some()
            && form.get("grant_type").map(String::as_str) == Some("refresh_token")
            && form.get("refresh_token") == st.refresh.as_ref();
        if !granted {
            return status(401);
        }
        let token = format!("token-{}", st.tokens.len() + 1);
        st.tokens.push(token.clone());
        let body =
            serde_json::to_vec(&json!({"access_token": token, "expires_in": st.token_expires_in}))
                .expect("json");
        return respond(&req, fault, "application/json", body);
    }
    if path.starts_with("/token") {
        if st.refresh.is_some() {
            return status(401);
        }
        if let Some((user, pass)) = &st.basic {
            let expected = format!(
                "Basic {}",
                base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    format!("{user}:{pass}")
                )
            );
            if authorization.as_deref() != Some(expected.as_str()) {
                return status(401);
            }
        }
        let token = format!("token-{}", st.tokens.len() + 1);
        st.tokens.push(token.clone());
        let body = serde_json::to_vec(&json!({"token": token, "expires_in": st.token_expires_in}))
            .expect("json");
        return respond(&req, fault, "application/json", body);
    }
    if st.bearer && path.starts_with("/v2/") {
        let ok = authorization
            .as_deref()
            .and_then(|a| a.strip_prefix("Bearer "))
            .is_some_and(|t| st.tokens.iter().any(|issued| issued == t));
        if !ok {
            let mut r = status(401);
            let realm = st
                .realm
                .clone()
                .unwrap_or_else(|| format!("{scheme}://{addr}/token"));
            r.headers_mut().insert(
                "www-authenticate",
                format!(r#"Bearer realm="{realm}",service="test-registry""#)
                    .parse()
                    .expect("header"),
            );
            return r;
        }
    }
    if path == "/v2/" {
        return respond(&req, fault, "application/json", b"{}".to_vec());
    }
    let (route, query) = path.split_once('?').unwrap_or((&path, ""));
    let Some(rest) = route.strip_prefix("/v2/") else {
        return status(404);
    };
    if let Some((repo, reference)) = rest.rsplit_once("/manifests/") {
        let digest = match reference.parse::<Digest>() {
            Ok(d) => Some(d),
            Err(_) => st
                .tags
                .get(&(repo.to_owned(), reference.to_owned()))
                .cloned(),
        };
        let found = digest.and_then(|d| {
            st.manifests
                .iter()
                .find(|(r, md, _, _)| r == repo && *md == d)
                .cloned()
        });
        return match found {
            Some((_, digest, media_type, bytes)) => {
                let mut r = respond(&req, fault, &media_type, bytes);
                r.headers_mut().insert(
                    "docker-content-digest",
                    digest.to_string().parse().expect("header"),
                );
                r
            }
            None => status(404),
        };
    }
    if let Some((_, digest)) = rest.rsplit_once("/blobs/") {
        return match digest
            .parse::<Digest>()
            .ok()
            .and_then(|d| st.blobs.get(&d).cloned())
        {
            Some(bytes) => respond(&req, fault, "application/octet-stream", bytes),
            None => status(404),
        };
    }
    if let Some((repo, digest)) = rest.rsplit_once("/referrers/") {
        if !st.referrers_api {
            return status(404);
        }
        let params: HashMap<&str, &str> = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let artifact_type = params
            .get("artifactType")
            .map(|t| t.replace("%2F", "/").replace("%2E", "."));
        let page: usize = params.get("page").and_then(|p| p.parse().ok()).unwrap_or(0);
        let mut all: Vec<serde_json::Value> = Vec::new();
        for (r, d, media_type, bytes) in &st.manifests {
            if r != repo {
                continue;
            }
            let Ok(parsed) = serde_json::from_slice::<serde_json::Value>(bytes) else {
                continue;
            };
            if parsed["subject"]["digest"].as_str() != Some(digest) {
                continue;
            }
            let kind = parsed["artifactType"]
                .as_str()
                .or(parsed["config"]["mediaType"].as_str())
                .unwrap_or_default()
                .to_owned();
            all.push(json!({"mediaType": media_type, "digest": d.to_string(), "size": bytes.len(), "artifactType": kind}));
        }
        for i in 0..st.synthetic_referrers {
            let fake = Digest::of(DigestAlgorithm::Sha256, format!("synthetic {i}").as_bytes());
            all.push(json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": fake.to_string(), "size": 100, "artifactType": "application/vnd.cncf.notary.signature"}));
        }
        // Another artifact type, to see client-side filtering.
        all.push(json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": Digest::of(DigestAlgorithm::Sha256, b"sbom").to_string(), "size": 10, "artifactType": "application/spdx+json"}));
        let filtered = st.filter_referrers && artifact_type.is_some();
        if filtered {
            all.retain(|d| {
                Some(d["artifactType"].as_str().unwrap_or_default()) == artifact_type.as_deref()
            });
        }
        let size = st.page_size;
        let chunk: Vec<_> = all.iter().skip(page * size).take(size).cloned().collect();
        let body = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": chunk})).expect("json");
        let mut r = respond(&req, fault, "application/vnd.oci.image.index.v1+json", body);
        if filtered {
            r.headers_mut().insert(
                "oci-filters-applied",
                "artifactType".parse().expect("header"),
            );
        }
        if (page + 1) * size < all.len() {
            let next = format!(
                "</v2/{repo}/referrers/{digest}?artifactType=application%2Fvnd.cncf.notary.signature&page={}>; rel=\"next\"",
                page + 1
            );
            r.headers_mut()
                .insert("link", next.parse().expect("header"));
        }
        return r;
    }
    status(404)
}

/// An `application/x-www-form-urlencoded` body, decoded.
fn parse_form(body: &[u8]) -> HashMap<String, String> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

/// A 200 with `bytes`, shaped by a body fault if any.
fn respond(
    req: &Request<Bytes>,
    fault: Option<Fault>,
    content_type: &str,
    mut bytes: Vec<u8>,
) -> Response<Body> {
    let mut content_type = content_type.to_owned();
    let mut chunked = false;
    let mut stall = false;
    match fault {
        Some(Fault::Corrupt) => {
            if let Some(b) = bytes.first_mut() {
                *b ^= 0xff;
            }
        }
        Some(Fault::ExtraBytes {
            bytes: n,
            chunked: c,
        }) => {
            bytes.extend(std::iter::repeat_n(b'x', n));
            chunked = c;
        }
        Some(Fault::ContentType(t)) => content_type = t,
        Some(Fault::Stall) => stall = true,
        _ => {}
    }
    let length = bytes.len();
    let body: Body = if req.method() == Method::HEAD {
        full(Bytes::new())
    } else if stall {
        let half = Bytes::from(bytes[..length / 2].to_vec());
        let stream =
            futures_util::stream::once(async move { Ok::<_, Infallible>(Frame::data(half)) })
                .chain(futures_util::stream::pending());
        BodyExt::boxed(StreamBody::new(stream))
    } else if chunked {
        let stream = futures_util::stream::iter(
            bytes
                .chunks(4096)
                .map(|c| Ok::<_, Infallible>(Frame::data(Bytes::from(c.to_vec()))))
                .collect::<Vec<_>>(),
        );
        BodyExt::boxed(StreamBody::new(stream))
    } else {
        full(bytes)
    };
    let mut r = Response::new(body);
    r.headers_mut()
        .insert("content-type", content_type.parse().expect("header"));
    if !chunked {
        r.headers_mut().insert(
            "content-length",
            length.to_string().parse().expect("header"),
        );
    }
    r
}
