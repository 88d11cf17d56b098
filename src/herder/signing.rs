//! Internal request signing (KIP-507), as the Java worker does it.
//!
//! Only the leader writes task configs. A follower whose connector produced
//! new ones sends them to the leader's internal endpoint
//! `POST /connectors/{name}/tasks`. So that nobody but a worker of the
//! cluster can write task configs that way, when the group's negotiated
//! protocol is `sessioned` the request carries an HMAC of its exact body
//! bytes, keyed with a session key that the leader writes to the config
//! topic (`session-key`) and rotates after `inter.worker.key.ttl.ms`. Every
//! worker reads the key from the config topic, so only workers that can read
//! that topic can sign.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Sha256, Sha512};

use super::api::HerderError;

/// The MAC of the request body, base64.
pub const SIGNATURE_HEADER: &str = "X-Connect-Authorization";
/// The MAC algorithm's Java name.
pub const ALGORITHM_HEADER: &str = "X-Connect-Request-Signature-Algorithm";

/// The algorithms this worker can compute (Java names).
const SUPPORTED: &[&str] = &["HmacSHA256", "HmacSHA512"];

/// The session key of the cluster, as read from (or written to) the config
/// topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionKey {
    pub key: Vec<u8>,
    /// The key generation algorithm (`inter.worker.key.generation.algorithm`).
    pub algorithm: String,
    /// When the leader created it, in ms since the epoch.
    pub created_ms: i64,
}

/// The signing settings of this worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningSettings {
    pub key_ttl_ms: i64,
    pub key_algorithm: String,
    /// Key length in bits; `None` is the generator's default (the digest's
    /// output size, as Java's `KeyGenerator` for HmacSHA256 and HmacSHA512).
    pub key_bits: Option<u32>,
    pub signature_algorithm: String,
    pub verification_algorithms: Vec<String>,
}

impl Default for SigningSettings {
    fn default() -> Self {
        SigningSettings {
            key_ttl_ms: 3_600_000,
            key_algorithm: "HmacSHA256".into(),
            key_bits: None,
            signature_algorithm: "HmacSHA256".into(),
            verification_algorithms: vec!["HmacSHA256".into()],
        }
    }
}

/// The signature headers of a request, as received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestSignature {
    pub signature: Option<String>,
    pub algorithm: Option<String>,
}

fn mac(algorithm: &str, key: &[u8], body: &[u8]) -> Result<Vec<u8>, String> {
    // Both accept keys of any length (HMAC hashes long keys), so these
    // constructors cannot fail; the error arm only keeps us off `unwrap`.
    let bad_key = |e: hmac::digest::InvalidLength| format!("{algorithm} key: {e}");
    match algorithm {
        "HmacSHA256" => {
            let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).map_err(bad_key)?;
            m.update(body);
            Ok(m.finalize().into_bytes().to_vec())
        }
        "HmacSHA512" => {
            let mut m = <Hmac<Sha512> as KeyInit>::new_from_slice(key).map_err(bad_key)?;
            m.update(body);
            Ok(m.finalize().into_bytes().to_vec())
        }
        other => Err(format!(
            "the '{other}' signing algorithm is not supported by this worker (supported: {})",
            SUPPORTED.join(", ")
        )),
    }
}

impl SessionKey {
    /// A new random key for `settings`.
    pub fn generate(settings: &SigningSettings, now_ms: i64) -> Result<SessionKey, String> {
        let default_bits = match settings.key_algorithm.as_str() {
            "HmacSHA256" => 256,
            "HmacSHA512" => 512,
            other => {
                return Err(format!(
                    "cannot generate a session key with '{other}' (inter.worker.key.generation.algorithm); supported: {}",
                    SUPPORTED.join(", ")
                ))
            }
        };
        let bits = settings.key_bits.unwrap_or(default_bits);
        let mut key = vec![0u8; (bits as usize).div_ceil(8)];
        getrandom::fill(&mut key).map_err(|e| format!("no randomness for a session key: {e}"))?;
        Ok(SessionKey {
            key,
            algorithm: settings.key_algorithm.clone(),
            created_ms: now_ms,
        })
    }

    /// Whether the leader must write a new key (Java's rules: expired, or
    /// made with another algorithm or length than this worker's settings).
    pub fn needs_rotation(&self, settings: &SigningSettings, now_ms: i64) -> bool {
        let bits_differ = settings
            .key_bits
            .is_some_and(|b| (b as usize).div_ceil(8) != self.key.len());
        now_ms >= self.created_ms.saturating_add(settings.key_ttl_ms)
            || self.algorithm != settings.key_algorithm
            || bits_differ
    }

    /// The signature headers for `body`.
    pub fn sign(
        &self,
        algorithm: &str,
        body: &[u8],
    ) -> Result<Vec<(&'static str, String)>, String> {
        let mac = mac(algorithm, &self.key, body)?;
        Ok(vec![
            (
                SIGNATURE_HEADER,
                base64::engine::general_purpose::STANDARD.encode(mac),
            ),
            (ALGORITHM_HEADER, algorithm.to_string()),
        ])
    }
}

/// Checks a signed internal request; the errors are the Java worker's.
pub fn verify(
    key: Option<&SessionKey>,
    settings: &SigningSettings,
    sig: &RequestSignature,
    body: &[u8],
) -> Result<(), HerderError> {
    let (Some(signature), Some(algorithm)) = (&sig.signature, &sig.algorithm) else {
        return Err(HerderError::bad_request(
            "Internal request missing required signature",
        ));
    };
    if !settings.verification_algorithms.contains(algorithm) {
        return Err(HerderError::bad_request(format!(
            "This worker does not support the '{algorithm}' key signing algorithm used by other workers. This worker is currently configured to use: {:?}. Check that all workers' configuration files permit the same set of signature algorithms, and correct any misconfigured worker and restart it.",
            settings.verification_algorithms
        )));
    }
    let given = base64::engine::general_purpose::STANDARD
        .decode(signature)
        .map_err(|e| HerderError::bad_request(format!("Invalid request signature: {e}")))?;
    let Some(key) = key else {
        return Err(HerderError::new(
            503,
            "This worker is still starting up and has not been able to read a session key from the config topic yet",
        ));
    };
    let expected = mac(algorithm, &key.key, body).map_err(HerderError::bad_request)?;
    // Constant-time comparison: a timing difference would leak how many
    // leading bytes of a forged signature were right.
    let same = expected.len() == given.len()
        && expected
            .iter()
            .zip(&given)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(HerderError::new(
            403,
            "Internal request contained invalid signature.",
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn signed(key: &SessionKey, body: &[u8]) -> RequestSignature {
        let headers = key.sign("HmacSHA256", body).unwrap();
        RequestSignature {
            signature: Some(headers[0].1.clone()),
            algorithm: Some(headers[1].1.clone()),
        }
    }

    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let mac = mac("HmacSHA256", b"Jefe", b"what do ya want for nothing?").unwrap();
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_signed_body_verifies_and_anything_else_is_refused_as_java_does() {
        let s = SigningSettings::default();
        let key = SessionKey::generate(&s, 0).unwrap();
        assert_eq!(key.key.len(), 32);
        let body = br#"[{"task.class":"x"}]"#;
        verify(Some(&key), &s, &signed(&key, body), body).unwrap();

        let e = verify(Some(&key), &s, &signed(&key, body), b"[]").unwrap_err();
        assert_eq!(
            (e.status, e.message.as_str()),
            (403, "Internal request contained invalid signature.")
        );
        let other = SessionKey::generate(&s, 0).unwrap();
        assert_eq!(
            verify(Some(&other), &s, &signed(&key, body), body)
                .unwrap_err()
                .status,
            403
        );
        let e = verify(Some(&key), &s, &RequestSignature::default(), body).unwrap_err();
        assert_eq!(
            (e.status, e.message.as_str()),
            (400, "Internal request missing required signature")
        );
        let mut sha512 = signed(&key, body);
        sha512.algorithm = Some("HmacSHA512".into());
        let e = verify(Some(&key), &s, &sha512, body).unwrap_err();
        assert!(
            e.status == 400 && e.message.contains("'HmacSHA512'"),
            "{e:?}"
        );
        let mut garbled = signed(&key, body);
        garbled.signature = Some("not base64!".into());
        assert_eq!(
            verify(Some(&key), &s, &garbled, body).unwrap_err().status,
            400
        );
        let e = verify(None, &s, &signed(&key, body), body).unwrap_err();
        assert_eq!(e.status, 503, "{e:?}");
    }

    #[test]
    fn the_leader_rotates_an_expired_or_differently_made_key() {
        let s = SigningSettings::default();
        let key = SessionKey::generate(&s, 1_000).unwrap();
        assert!(!key.needs_rotation(&s, 1_000 + s.key_ttl_ms - 1));
        assert!(key.needs_rotation(&s, 1_000 + s.key_ttl_ms));
        let sha512 = SigningSettings {
            key_algorithm: "HmacSHA512".into(),
            ..s.clone()
        };
        assert!(key.needs_rotation(&sha512, 1_000));
        assert_eq!(SessionKey::generate(&sha512, 0).unwrap().key.len(), 64);
        let longer = SigningSettings {
            key_bits: Some(512),
            ..s.clone()
        };
        assert!(key.needs_rotation(&longer, 1_000));
        let unknown = SigningSettings {
            key_algorithm: "HmacMD5".into(),
            ..s
        };
        assert!(SessionKey::generate(&unknown, 0)
            .unwrap_err()
            .contains("HmacMD5"));
    }
}
