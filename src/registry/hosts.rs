//! containerd's registry host configuration: `<dir>/<host>/hosts.toml`, with
//! `<dir>/_default/hosts.toml` as the fallback (containerd docs/hosts.md).
//!
//! ```toml
//! server = "https://registry.example.com"
//! [host."https://mirror.example.com"]
//!   capabilities = ["pull", "resolve"]
//!   ca = "/etc/certs/mirror.pem"
//!   client = [["/etc/certs/client.pem", "/etc/certs/client.key"]]
//!   skip_verify = false
//! ```
//! Mirrors are tried in file order, then the server.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::error::RegistryError;

/// What an endpoint may be used for (containerd's `capabilities`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Capability {
    /// Fetch content by digest (manifests, blobs, referrers).
    Pull,
    /// Resolve a tag to a digest.
    Resolve,
}

impl Capability {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Capability::Pull => "pull",
            Capability::Resolve => "resolve",
        }
    }
}

/// TLS settings of one endpoint; endpoints with equal settings share a client
/// (and so its connection pool).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct TlsSettings {
    pub ca: Vec<PathBuf>,
    /// (certificate, key); the key path equals the certificate path when one PEM
    /// file holds both.
    pub client: Option<(PathBuf, PathBuf)>,
    pub skip_verify: bool,
}

/// One place to send requests for a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// `scheme://authority`.
    pub origin: String,
    /// The API root path, normally `/v2`.
    pub path: String,
    /// `host[:port]`: the key for credentials and the concurrency cap.
    pub authority: String,
    pub tls: TlsSettings,
    pub pull: bool,
    pub resolve: bool,
    /// The registry's own server (not a mirror): credentials passed for the
    /// registry may be sent here.
    pub is_server: bool,
}

impl Endpoint {
    pub(crate) fn can(&self, capability: Capability) -> bool {
        match capability {
            Capability::Pull => self.pull,
            Capability::Resolve => self.resolve,
        }
    }

    /// `origin + path + rest`, `rest` starting with `/`.
    pub(crate) fn url(&self, rest: &str) -> String {
        format!("{}{}{}", self.origin, self.path, rest)
    }
}

/// The default server of a registry host (containerd: Docker Hub's API lives on
/// registry-1.docker.io).
fn default_server(registry: &str, plain_http: bool) -> String {
    let host = if registry == "docker.io" {
        "registry-1.docker.io"
    } else {
        registry
    };
    let scheme = if plain_http { "http" } else { "https" };
    format!("{scheme}://{host}")
}

/// The endpoints for `registry`, in the order to try them. `dir` is the hosts
/// directory (missing files mean "the server, over https"); `plain_http` says the
/// registry is listed as insecure in pullgate's own config.
pub(crate) fn endpoints(
    dir: Option<&Path>,
    registry: &str,
    plain_http: bool,
) -> Result<Vec<Endpoint>, RegistryError> {
    let file = candidates(dir, registry).find(|path| path.is_file());
    match file {
        None => Ok(vec![server_endpoint(
            &default_server(registry, plain_http),
            TlsSettings::default(),
            None,
        )
        .map_err(|reason| RegistryError::HostsConfig {
            path: PathBuf::from(registry),
            reason,
        })?]),
        Some(path) => {
            let text = std::fs::read_to_string(&path).map_err(|e| RegistryError::HostsConfig {
                path: path.clone(),
                reason: format!("cannot read: {e}"),
            })?;
            parse(&path, &text, registry, plain_http)
        }
    }
}

/// The files `endpoints` reads for `registry`, in order: containerd names a
/// host:port directory with the port; `_default` applies to hosts without their
/// own directory.
fn candidates<'a>(dir: Option<&'a Path>, registry: &'a str) -> impl Iterator<Item = PathBuf> + 'a {
    dir.into_iter().flat_map(move |dir| {
        [registry, "_default"]
            .into_iter()
            .map(move |name| dir.join(name).join("hosts.toml"))
    })
}

/// Which version of each hosts.toml file `endpoints` may read for a registry is on
/// disk: (device, inode, size, modification time), or nothing for a missing file.
/// containerd reads hosts.toml on every pull; comparing stamps (two `stat` calls)
/// gives the same answer without parsing the files each time. The inode notices a
/// file replaced by rename (a Kubernetes ConfigMap's symlink swap); the path is
/// followed through symlinks.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct FilesStamp(Vec<Option<FileVersion>>);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FileVersion {
    device: u64,
    inode: u64,
    size: u64,
    modified: Option<SystemTime>,
}

pub(crate) fn stamp(dir: Option<&Path>, registry: &str) -> FilesStamp {
    stamp_of(candidates(dir, registry))
}

impl TlsSettings {
    /// The version on disk of the CA and client certificate files these settings
    /// name, so a client built from them is rebuilt when one is replaced.
    pub(crate) fn files_stamp(&self) -> FilesStamp {
        let client = self
            .client
            .iter()
            .flat_map(|(cert, key)| [cert.clone(), key.clone()]);
        stamp_of(self.ca.iter().cloned().chain(client))
    }
}

fn stamp_of(paths: impl Iterator<Item = PathBuf>) -> FilesStamp {
    FilesStamp(
        paths
            .map(|path| {
                let meta = std::fs::metadata(path).ok()?;
                Some(FileVersion {
                    device: meta.dev(),
                    inode: meta.ino(),
                    size: meta.len(),
                    modified: meta.modified().ok(),
                })
            })
            .collect(),
    )
}

fn server_endpoint(
    url: &str,
    tls: TlsSettings,
    table: Option<&toml::Table>,
) -> Result<Endpoint, String> {
    let mut endpoint = endpoint_from_url(url, table)?;
    endpoint.tls = tls;
    endpoint.is_server = true;
    Ok(endpoint)
}

fn endpoint_from_url(url: &str, table: Option<&toml::Table>) -> Result<Endpoint, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("invalid URL {url:?}: {e}"))?;
    let scheme = match uri.scheme_str() {
        Some(s @ ("http" | "https")) => s,
        _ => return Err(format!("URL {url:?} must start with http:// or https://")),
    };
    let authority = uri
        .authority()
        .ok_or_else(|| format!("URL {url:?} has no host"))?
        .as_str()
        .to_owned();
    if authority.contains('@') {
        return Err(format!("URL {url:?} must not carry credentials"));
    }
    let override_path = match table.and_then(|t| t.get("override_path")) {
        None => false,
        Some(toml::Value::Boolean(b)) => *b,
        Some(_) => return Err("override_path must be a boolean".into()),
    };
    let mut path = uri.path().trim_end_matches('/').to_owned();
    // containerd appends /v2 unless the host says its path is the API root.
    if !override_path && !path.ends_with("/v2") {
        path.push_str("/v2");
    }
    let (pull, resolve) = match table.and_then(|t| t.get("capabilities")) {
        None => (true, true),
        Some(toml::Value::Array(items)) => {
            let mut caps = (false, false);
            for item in items {
                match item.as_str() {
                    Some("pull") => caps.0 = true,
                    Some("resolve") => caps.1 = true,
                    Some("push") => {}
                    _ => return Err(format!("unknown capability {item}")),
                }
            }
            caps
        }
        Some(_) => return Err("capabilities must be an array of strings".into()),
    };
    Ok(Endpoint {
        origin: format!("{scheme}://{authority}"),
        path,
        authority,
        tls: TlsSettings::default(),
        pull,
        resolve,
        is_server: false,
    })
}

fn parse(
    path: &Path,
    text: &str,
    registry: &str,
    plain_http: bool,
) -> Result<Vec<Endpoint>, RegistryError> {
    let err = |reason: String| RegistryError::HostsConfig {
        path: path.to_owned(),
        reason,
    };
    let base = path.parent().unwrap_or(Path::new("/"));
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| err(e.to_string()))?;
    let mut endpoints = Vec::new();
    if let Some(hosts) = table.get("host") {
        let hosts = hosts
            .as_table()
            .ok_or_else(|| err("[host] must be a table of URLs".into()))?;
        for (url, host) in hosts {
            let host = host
                .as_table()
                .ok_or_else(|| err(format!("[host.{url:?}] must be a table")))?;
            let mut endpoint = endpoint_from_url(url, Some(host)).map_err(&err)?;
            endpoint.tls = tls_settings(host, base).map_err(&err)?;
            endpoints.push(endpoint);
        }
    }
    let server = match table.get("server") {
        None => default_server(registry, plain_http),
        Some(toml::Value::String(s)) => s.clone(),
        Some(_) => return Err(err("server must be a string".into())),
    };
    let tls = tls_settings(&table, base).map_err(&err)?;
    endpoints.push(server_endpoint(&server, tls, Some(&table)).map_err(&err)?);
    Ok(endpoints)
}

fn tls_settings(table: &toml::Table, base: &Path) -> Result<TlsSettings, String> {
    let resolve = |p: &str| -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_owned()
        } else {
            base.join(p)
        }
    };
    let ca = match table.get("ca") {
        None => Vec::new(),
        Some(toml::Value::String(s)) => vec![resolve(s)],
        Some(toml::Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(resolve).ok_or("ca entries must be strings"))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("ca must be a path or an array of paths".into()),
    };
    let client = match table.get("client") {
        None => None,
        Some(toml::Value::String(s)) => Some((resolve(s), resolve(s))),
        Some(toml::Value::Array(items)) => {
            let mut pairs = Vec::new();
            for item in items {
                match item {
                    toml::Value::String(s) => pairs.push((resolve(s), resolve(s))),
                    toml::Value::Array(pair) => match pair.as_slice() {
                        [toml::Value::String(c), toml::Value::String(k)] => {
                            pairs.push((resolve(c), resolve(k)))
                        }
                        [toml::Value::String(c)] => pairs.push((resolve(c), resolve(c))),
                        _ => return Err("client pairs must be [cert, key]".into()),
                    },
                    _ => return Err("client must be a path, paths or [cert, key] pairs".into()),
                }
            }
            if pairs.len() > 1 {
                return Err("only one client certificate per host is supported".into());
            }
            pairs.pop()
        }
        Some(_) => return Err("client must be a path, paths or [cert, key] pairs".into()),
    };
    let skip_verify = match table.get("skip_verify") {
        None => false,
        Some(toml::Value::Boolean(b)) => *b,
        Some(_) => return Err("skip_verify must be a boolean".into()),
    };
    Ok(TlsSettings {
        ca,
        client,
        skip_verify,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_file_means_the_server_over_https() {
        let e = endpoints(None, "docker.io", false).expect("default");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].url("/x"), "https://registry-1.docker.io/v2/x");
        assert!(e[0].is_server && e[0].pull && e[0].resolve);
        let e = endpoints(None, "127.0.0.1:5000", true).expect("insecure");
        assert_eq!(e[0].url("/"), "http://127.0.0.1:5000/v2/");
    }

    /// Issue 9 item 7: a hosts.toml URL's scheme is case-insensitive too.
    #[test]
    fn upper_case_schemes_in_hosts_toml_are_http_and_https() {
        let e = parse(
            Path::new("/d/h/hosts.toml"),
            "server = \"HTTP://h:5000\"\n[host.\"HTTPS://m\"]\n",
            "h:5000",
            false,
        )
        .expect("parses");
        assert_eq!(e[0].origin, "https://m");
        assert_eq!(e[1].origin, "http://h:5000");
    }

    #[test]
    fn mirrors_come_first_in_file_order() {
        let text = r#"
server = "http://registry.test:5000"
skip_verify = true
[host."https://z-mirror.test"]
capabilities = ["pull"]
ca = "ca.pem"
[host."https://a-mirror.test/base"]
client = [["c.pem", "k.pem"]]
[host."https://root.test/api"]
override_path = true
"#;
        let e = parse(
            Path::new("/etc/certs.d/registry.test:5000/hosts.toml"),
            text,
            "registry.test:5000",
            false,
        )
        .expect("parses");
        let urls: Vec<_> = e.iter().map(|e| e.url("/")).collect();
        assert_eq!(
            urls,
            [
                "https://z-mirror.test/v2/",
                "https://a-mirror.test/base/v2/",
                "https://root.test/api/",
                "http://registry.test:5000/v2/"
            ]
        );
        assert!(e[0].pull && !e[0].resolve);
        assert_eq!(
            e[0].tls.ca,
            [PathBuf::from("/etc/certs.d/registry.test:5000/ca.pem")]
        );
        assert_eq!(
            e[1].tls.client,
            Some((
                PathBuf::from("/etc/certs.d/registry.test:5000/c.pem"),
                PathBuf::from("/etc/certs.d/registry.test:5000/k.pem")
            ))
        );
        assert!(e[3].is_server && e[3].tls.skip_verify && !e[0].is_server);
    }

    #[test]
    fn bad_files_are_errors() {
        for text in [
            "server = 5",
            "server = \"ftp://x\"",
            "[host.\"https://m\"]\ncapabilities = [\"fly\"]",
            "skip_verify = \"yes\"",
            "not toml ===",
        ] {
            assert!(
                matches!(
                    parse(Path::new("/d/h/hosts.toml"), text, "h", false),
                    Err(RegistryError::HostsConfig { .. })
                ),
                "{text}"
            );
        }
    }
}
