//! Image reference and digest types. (Reference parsing and normalisation as
//! containerd does it arrive with registry access; digests are needed already.)

use std::fmt;
use std::str::FromStr;

use sha2::Digest as _;

/// Digest algorithms accepted for OCI content (OCI image-spec descriptor.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    Sha256,
    Sha384,
    Sha512,
}

impl DigestAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha256 => "sha256",
            DigestAlgorithm::Sha384 => "sha384",
            DigestAlgorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            DigestAlgorithm::Sha256 => 64,
            DigestAlgorithm::Sha384 => 96,
            DigestAlgorithm::Sha512 => 128,
        }
    }

    fn hash(self, bytes: &[u8]) -> Vec<u8> {
        match self {
            DigestAlgorithm::Sha256 => sha2::Sha256::digest(bytes).to_vec(),
            DigestAlgorithm::Sha384 => sha2::Sha384::digest(bytes).to_vec(),
            DigestAlgorithm::Sha512 => sha2::Sha512::digest(bytes).to_vec(),
        }
    }
}

/// A validated content digest, `<algorithm>:<lowercase hex>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Digest {
    algorithm: DigestAlgorithm,
    hex: String,
}

/// Why a digest string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("digest {0:?} has no algorithm prefix (expected e.g. sha256:<hex>)")]
    MissingAlgorithm(String),
    #[error("digest {digest:?}: unsupported algorithm {algorithm:?} (sha256, sha384, sha512)")]
    UnsupportedAlgorithm { digest: String, algorithm: String },
    #[error("digest {digest:?}: expected {expected} lowercase hex characters")]
    BadEncoding { digest: String, expected: usize },
}

impl Digest {
    /// The digest of `bytes` with `algorithm`.
    pub fn of(algorithm: DigestAlgorithm, bytes: &[u8]) -> Digest {
        let hex = algorithm
            .hash(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Digest { algorithm, hex }
    }

    pub fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    /// The encoded part after the colon.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// True iff `bytes` hash to this digest.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        Digest::of(self.algorithm, bytes) == *self
    }

    /// The referrers tag schema's tag for this digest: `<alg>-<hex>`.
    pub fn referrers_tag(&self) -> String {
        format!("{}-{}", self.algorithm.as_str(), self.hex)
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(text: &str) -> Result<Digest, DigestError> {
        let (algorithm, hex) = text
            .split_once(':')
            .ok_or_else(|| DigestError::MissingAlgorithm(text.to_owned()))?;
        let algorithm = match algorithm {
            "sha256" => DigestAlgorithm::Sha256,
            "sha384" => DigestAlgorithm::Sha384,
            "sha512" => DigestAlgorithm::Sha512,
            other => {
                return Err(DigestError::UnsupportedAlgorithm {
                    digest: text.to_owned(),
                    algorithm: other.to_owned(),
                })
            }
        };
        let expected = algorithm.hex_len();
        if hex.len() != expected || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(DigestError::BadEncoding {
                digest: text.to_owned(),
                expected,
            });
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_owned(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.as_str(), self.hex)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_valid_digests() {
        let text = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9";
        let digest: Digest = text.parse().expect("valid");
        assert_eq!(digest.algorithm(), DigestAlgorithm::Sha256);
        assert_eq!(digest.to_string(), text);
        assert_eq!(
            digest.referrers_tag(),
            "sha256-b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9"
        );
        let sha512 = format!("sha512:{}", "a".repeat(128));
        assert!(sha512.parse::<Digest>().is_ok());
    }

    #[test]
    fn rejects_bad_digests() {
        assert!(matches!(
            "abc".parse::<Digest>(),
            Err(DigestError::MissingAlgorithm(_))
        ));
        assert!(matches!(
            format!("md5:{}", "a".repeat(32)).parse::<Digest>(),
            Err(DigestError::UnsupportedAlgorithm { .. })
        ));
        for bad in [
            format!("sha256:{}", "a".repeat(63)),
            format!("sha256:{}", "A".repeat(64)),
            format!("sha256:{}", "g".repeat(64)),
            format!("sha384:{}", "a".repeat(64)),
        ] {
            assert!(
                matches!(bad.parse::<Digest>(), Err(DigestError::BadEncoding { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn digest_of_bytes_matches() {
        // sha256("{}") is the OCI empty descriptor's digest.
        let empty = Digest::of(DigestAlgorithm::Sha256, b"{}");
        assert_eq!(
            empty.to_string(),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert!(empty.matches(b"{}"));
        assert!(!empty.matches(b"{} "));
    }
}
