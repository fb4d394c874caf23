//! Registry credentials and the distribution token flow
//! (distribution docs/spec/auth/token.md, oauth.md).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use sha2::Digest as _;

use super::error::RegistryError;

/// Credentials passed with one call, as the kubelet hands them to the CRI
/// (`AuthConfig`). `None` means "use the node's credentials file, else anonymous".
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Credentials {
    #[default]
    None,
    Basic {
        username: String,
        password: String,
    },
    /// base64 of `username:password` (`AuthConfig.auth`, `config.json` `auth`).
    Auth(String),
    /// An OAuth2 refresh token for the registry's token service.
    IdentityToken(String),
    /// A bearer token to send to the registry as is.
    RegistryToken(String),
    /// Credentials passed for one host only (CRI `AuthConfig.server_address`): sent
    /// only to an endpoint on that host ([`server_address_matches`]), never
    /// replaced by the node's credentials file elsewhere.
    ForServer {
        server_address: String,
        credentials: Box<Credentials>,
    },
}

impl std::fmt::Debug for Credentials {
    // Never print secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::None => f.write_str("None"),
            Credentials::Basic { username, .. } => write!(f, "Basic({username:?}, ***)"),
            Credentials::Auth(_) => f.write_str("Auth(***)"),
            Credentials::IdentityToken(_) => f.write_str("IdentityToken(***)"),
            Credentials::RegistryToken(_) => f.write_str("RegistryToken(***)"),
            Credentials::ForServer {
                server_address,
                credentials,
            } => write!(f, "ForServer({server_address:?}, {credentials:?})"),
        }
    }
}

impl Credentials {
    /// From the fields of a CRI `AuthConfig` (empty string = unset), preferring
    /// the most specific: registry token, identity token, username/password, auth.
    pub fn from_auth_config(
        username: &str,
        password: &str,
        auth: &str,
        identity_token: &str,
        registry_token: &str,
    ) -> Credentials {
        if !registry_token.is_empty() {
            Credentials::RegistryToken(registry_token.to_owned())
        } else if !identity_token.is_empty() {
            Credentials::IdentityToken(identity_token.to_owned())
        } else if !username.is_empty() || !password.is_empty() {
            Credentials::Basic {
                username: username.to_owned(),
                password: password.to_owned(),
            }
        } else if !auth.is_empty() {
            Credentials::Auth(auth.to_owned())
        } else {
            Credentials::None
        }
    }

    /// These credentials, for the host `server_address` names only (the CRI
    /// `AuthConfig.server_address`; empty = no restriction, as in containerd).
    pub fn for_server_address(self, server_address: &str) -> Credentials {
        match self {
            Credentials::None => Credentials::None,
            _ if server_address.is_empty() => self,
            Credentials::ForServer { credentials, .. } => Credentials::ForServer {
                server_address: server_address.to_owned(),
                credentials,
            },
            other => Credentials::ForServer {
                server_address: server_address.to_owned(),
                credentials: Box::new(other),
            },
        }
    }

    /// The credentials themselves and the server address they are restricted to.
    pub(crate) fn scope(&self) -> (&Credentials, Option<&str>) {
        match self {
            Credentials::ForServer {
                server_address,
                credentials,
            } => (credentials, Some(server_address)),
            other => (other, None),
        }
    }
}

/// Whether credentials passed for `server_address` may go to the endpoint `host`
/// (`host[:port]`). containerd's CRI plugin (1.6, 1.7 `ParseAuth`) uses them only
/// when the host of `server_address` parsed as a URL equals the endpoint's host, and
/// withholds them otherwise: a server address without a scheme (`registry.example`)
/// has no URL host there and so matches no endpoint.
pub fn server_address_matches(server_address: &str, host: &str) -> bool {
    let Ok(uri) = server_address.parse::<http::Uri>() else {
        return false;
    };
    if uri.scheme().is_none() {
        return false;
    }
    let Some(authority) = uri.authority() else {
        return false;
    };
    // Go's `URL.Host` leaves out any `user@`.
    let address_host = authority
        .as_str()
        .rsplit_once('@')
        .map_or(authority.as_str(), |(_, host)| host);
    address_host == host
}

/// Credentials in the form requests use.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Secret {
    Anonymous,
    Basic { username: String, password: String },
    Refresh(String),
    Bearer(String),
}

impl Secret {
    pub(crate) fn from_credentials(
        credentials: &Credentials,
        registry: &str,
    ) -> Result<Secret, RegistryError> {
        Ok(match credentials {
            Credentials::None => Secret::Anonymous,
            Credentials::Basic { username, password } => Secret::Basic {
                username: username.clone(),
                password: password.clone(),
            },
            Credentials::Auth(auth) => {
                decode_auth(auth).map_err(|reason| RegistryError::InvalidCredentials {
                    registry: registry.to_owned(),
                    reason,
                })?
            }
            Credentials::IdentityToken(t) => Secret::Refresh(t.clone()),
            Credentials::RegistryToken(t) => Secret::Bearer(t.clone()),
            Credentials::ForServer { credentials, .. } => {
                Secret::from_credentials(credentials, registry)?
            }
        })
    }

    /// A stable fingerprint so that tokens obtained with one set of credentials
    /// are never reused for another.
    pub(crate) fn fingerprint(&self) -> [u8; 32] {
        let text = match self {
            Secret::Anonymous => "anonymous".to_owned(),
            Secret::Basic { username, password } => format!("basic\0{username}\0{password}"),
            Secret::Refresh(t) => format!("refresh\0{t}"),
            Secret::Bearer(t) => format!("bearer\0{t}"),
        };
        sha2::Sha256::digest(text.as_bytes()).into()
    }

    pub(crate) fn basic_header(username: &str, password: &str) -> String {
        let raw = format!("{username}:{password}");
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

fn decode_auth(auth: &str) -> Result<Secret, &'static str> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|_| "auth is not base64")?;
    let raw = String::from_utf8(raw).map_err(|_| "auth is not UTF-8")?;
    let (username, password) = raw
        .split_once(':')
        .ok_or("auth is not base64 of user:password")?;
    Ok(Secret::Basic {
        username: username.to_owned(),
        password: password.to_owned(),
    })
}

/// A docker `config.json`-style credentials file: `auths.<host>` with `auth`,
/// `username`/`password` or `identitytoken`.
#[derive(Default)]
pub(crate) struct CredentialsFile {
    by_host: HashMap<String, Secret>,
}

#[derive(serde::Deserialize)]
struct RawFile {
    #[serde(default)]
    auths: HashMap<String, RawEntry>,
}

#[derive(serde::Deserialize)]
struct RawEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

impl CredentialsFile {
    /// Reads `path`; a missing file is no credentials.
    pub(crate) fn load(path: &Path) -> Result<CredentialsFile, RegistryError> {
        let err = |reason: String| RegistryError::Credentials {
            path: PathBuf::from(path),
            reason,
        };
        let text = match std::fs::read(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(CredentialsFile::default())
            }
            Err(e) => return Err(err(format!("cannot read: {e}"))),
        };
        let raw: RawFile =
            serde_json::from_slice(&text).map_err(|e| err(format!("invalid JSON: {e}")))?;
        let mut by_host = HashMap::new();
        for (key, entry) in raw.auths {
            let secret = if let Some(token) = entry.identitytoken.filter(|t| !t.is_empty()) {
                Secret::Refresh(token)
            } else if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
                Secret::Basic {
                    username: username.clone(),
                    password: password.clone(),
                }
            } else if let Some(auth) = entry.auth.filter(|a| !a.is_empty()) {
                decode_auth(&auth).map_err(|reason| err(format!("auths.{key}: {reason}")))?
            } else {
                continue;
            };
            by_host.insert(normalise_host(&key), secret);
        }
        Ok(CredentialsFile { by_host })
    }

    pub(crate) fn lookup(&self, host: &str) -> Option<&Secret> {
        self.by_host.get(&normalise_host(host))
    }
}

/// `https://index.docker.io/v1/` → `docker.io`; `https://host:5000/` → `host:5000`.
fn normalise_host(key: &str) -> String {
    // Schemes are case-insensitive (RFC 3986 §3.1): `HTTPS://host` is `host` too.
    let key = ["https://", "http://"]
        .iter()
        .find_map(|scheme| {
            key.get(..scheme.len())
                .filter(|prefix| prefix.eq_ignore_ascii_case(scheme))
                .map(|_| &key[scheme.len()..])
        })
        .unwrap_or(key);
    // Host names are case-insensitive too (RFC 3986 §3.2.2).
    let host = key.split('/').next().unwrap_or(key).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_owned()
        }
        _ => host,
    }
}

/// A `WWW-Authenticate` challenge (RFC 7235 §4.1) we can answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    Bearer {
        realm: String,
        service: Option<String>,
    },
    Basic,
}

/// Parses the first Bearer or Basic challenge from a `WWW-Authenticate` value.
pub(crate) fn parse_challenge(value: &str) -> Option<Challenge> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(rest);
    let realm = params.get("realm")?.clone();
    Some(Challenge::Bearer {
        realm,
        service: params.get("service").cloned(),
    })
}

/// `key="value", key=token` auth-params.
fn parse_params(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end.min(quoted.len())..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        out.insert(key, value);
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

/// A token service's answer (token.md "Token Response Fields").
#[derive(serde::Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into())
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(r#"bearer realm=http://x/token , service="a\"b""#),
            Some(Challenge::Bearer {
                realm: "http://x/token".into(),
                service: Some("a\"b".into())
            })
        );
        assert_eq!(parse_challenge("Bearer service=x"), None);
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn cri_auth_config_maps_to_credentials() {
        assert_eq!(
            Credentials::from_auth_config("", "", "", "", ""),
            Credentials::None
        );
        assert_eq!(
            Credentials::from_auth_config("u", "p", "eA==", "", ""),
            Credentials::Basic {
                username: "u".into(),
                password: "p".into()
            }
        );
        assert_eq!(
            Credentials::from_auth_config("u", "p", "", "id", "rt"),
            Credentials::RegistryToken("rt".into())
        );
        let secret = Secret::from_credentials(&Credentials::Auth("dTpwOnE=".into()), "r")
            .expect("valid auth");
        assert!(
            secret
                == Secret::Basic {
                    username: "u".into(),
                    password: "p:q".into()
                }
        );
        assert!(matches!(
            Secret::from_credentials(&Credentials::Auth("!!".into()), "r"),
            Err(RegistryError::InvalidCredentials { .. })
        ));
    }

    /// Issue 9 item 8: containerd's `ParseAuth` host comparison.
    #[test]
    fn server_address_matches_the_endpoint_host_as_containerd_does() {
        assert!(server_address_matches(
            "https://registry.example",
            "registry.example"
        ));
        assert!(server_address_matches(
            "http://r.example:5000/v2/",
            "r.example:5000"
        ));
        assert!(server_address_matches("https://u@r.example", "r.example"));
        assert!(!server_address_matches(
            "https://r.example",
            "r.example:5000"
        ));
        assert!(!server_address_matches(
            "https://other.example",
            "r.example"
        ));
        assert!(!server_address_matches(
            "https://index.docker.io/v1/",
            "registry-1.docker.io"
        ));
        // No scheme: Go's url.Parse finds no host, so nothing matches.
        assert!(!server_address_matches("r.example", "r.example"));
        assert!(!server_address_matches("r.example:5000", "r.example:5000"));
        assert!(!server_address_matches("", "r.example"));
        let alice = Credentials::Basic {
            username: "alice".into(),
            password: "p".into(),
        };
        assert_eq!(alice.clone().for_server_address(""), alice);
        assert_eq!(
            Credentials::None.for_server_address("https://r"),
            Credentials::None
        );
        let scoped = alice
            .clone()
            .for_server_address("https://a")
            .for_server_address("https://b");
        assert_eq!(scoped.scope(), (&alice, Some("https://b")));
    }

    #[test]
    fn credentials_file_keys_normalise() {
        let dir = std::env::temp_dir().join(format!("pullgate-creds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let path = dir.join("config.json");
        std::fs::write(
            &path,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"},
                "host:5000":{"username":"a","password":"b"},
                "tok.example":{"identitytoken":"rt"}}}"#,
        )
        .expect("write");
        let file = CredentialsFile::load(&path).expect("loads");
        assert!(file.lookup("docker.io").is_some());
        assert!(file.lookup("host:5000").is_some());
        assert!(matches!(
            file.lookup("tok.example"),
            Some(Secret::Refresh(_))
        ));
        assert!(file.lookup("other").is_none());
        assert_eq!(normalise_host("HTTPS://Index.Docker.io/v1/"), "docker.io");
        assert_eq!(normalise_host("Http://host:5000/"), "host:5000");
        std::fs::write(&path, "{").expect("write");
        assert!(matches!(
            CredentialsFile::load(&path),
            Err(RegistryError::Credentials { .. })
        ));
        assert!(CredentialsFile::load(&dir.join("missing.json")).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
