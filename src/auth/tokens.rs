//! Access tokens (EdDSA-signed JWTs) and refresh tokens (256 random bits, stored hashed).

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, spki::der::pem::LineEnding};
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Role;

/// The signing key's file name in the data directory, unless `SURVEY_JWT_KEY_FILE` names another.
pub const KEY_FILE: &str = "jwt-ed25519.pem";

/// Who issues tokens and for whom; checked on every request.
const ISSUER: &str = "survey-server";
const AUDIENCE: &str = "survey-server-api";

/// The claims of an access token. Every one is required when verifying: a token without
/// `sid` (issued before sessions were checked on every request) is refused.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// Lower-case username.
    pub sub: String,
    /// Role at issue (the current role is read from the store on every request).
    pub role: Role,
    pub iat: u64,
    pub exp: u64,
    pub iss: String,
    pub aud: String,
    /// The user's `token_version` at issue; a change of password, role, scope or status bumps it.
    pub ver: u64,
    /// The login (refresh-token family) it belongs to: logging out or a detected token theft
    /// revokes the family, and with it this token, at once.
    pub sid: String,
}

/// What an access token is issued for.
pub struct Grant<'a> {
    pub username: &'a str,
    pub role: Role,
    pub version: u64,
    pub session: &'a str,
    /// Unix seconds of issue; the same grant issued at the same second is the same token.
    pub issued_at: u64,
}

/// The signing key pair, loaded once at start-up.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// Derives a refresh token's successor (see [`TokenKeys::successor`]).
    successor_key: [u8; 32],
}

/// Why the key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {problem}")]
    File { path: String, problem: String },
    #[error("the signing key in the database: {0}")]
    Shared(String),
}

impl TokenKeys {
    /// Reads an Ed25519 private key (PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` writes),
    /// creating one with mode 0600 if `create` and the file does not exist.
    pub fn load_or_create(path: &Path, create: bool) -> Result<Self, KeyError> {
        let problem = |problem: String| KeyError::File {
            path: path.display().to_string(),
            problem,
        };
        if create && !path.exists() {
            let key = SigningKey::generate(&mut OsRng);
            let pem = key
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| problem(e.to_string()))?;
            write_secret_file(path, pem.as_bytes()).map_err(|e| problem(e.to_string()))?;
            tracing::info!(path = %path.display(), "created the token signing key");
        }
        let pem = std::fs::read_to_string(path).map_err(|e| problem(e.to_string()))?;
        let key = SigningKey::from_pkcs8_pem(&pem)
            .map_err(|e| problem(format!("not an Ed25519 PKCS#8 PEM private key: {e}")))?;
        Self::from_signing_key(&key).map_err(problem)
    }

    /// A new Ed25519 private key, as PKCS#8 PEM.
    pub fn new_pem() -> Result<String, KeyError> {
        SigningKey::generate(&mut OsRng)
            .to_pkcs8_pem(LineEnding::LF)
            .map(|pem| pem.to_string())
            .map_err(|e| KeyError::Shared(e.to_string()))
    }

    /// The keys of a PKCS#8 PEM private key kept in the database (several API nodes share it).
    pub fn from_shared_pem(pem: &str) -> Result<Self, KeyError> {
        let key = SigningKey::from_pkcs8_pem(pem)
            .map_err(|e| KeyError::Shared(format!("not an Ed25519 PKCS#8 PEM private key: {e}")))?;
        Self::from_signing_key(&key).map_err(KeyError::Shared)
    }

    fn from_signing_key(key: &SigningKey) -> Result<Self, String> {
        let der = key.to_pkcs8_der().map_err(|e| e.to_string())?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = 0;
        // A key of its own for successors, derived from the signing key with a label, so the
        // one secret file still holds everything and neither use can stand in for the other.
        let successor_key = Sha256::new()
            .chain_update(b"survey-server refresh successor v1\0")
            .chain_update(key.to_bytes())
            .finalize()
            .into();
        Ok(Self {
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            decoding: DecodingKey::from_ed_der(key.verifying_key().as_bytes()),
            validation,
            successor_key,
        })
    }

    /// Signs an access token for `grant`, valid `ttl_secs` from its issue time. Ed25519 is
    /// deterministic: the same grant gives the same token, which a refresh retry relies on.
    pub fn issue(&self, grant: &Grant<'_>, ttl_secs: u64) -> Result<String, String> {
        let claims = Claims {
            sub: grant.username.to_owned(),
            role: grant.role,
            iat: grant.issued_at,
            exp: grant.issued_at + ttl_secs,
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            ver: grant.version,
            sid: grant.session.to_owned(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &self.encoding)
            .map_err(|e| e.to_string())
    }

    /// The refresh token that replaces `token` when it is exchanged: a MAC of it under a server
    /// key, so a phone that lost the answer and asks again gets the very same successor, while
    /// the store keeps only hashes and nobody without the key can compute one.
    pub fn successor(&self, token: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.successor_key)
            .expect("HMAC takes a key of any length");
        mac.update(token.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// The claims of a token this server signed and that has not expired; `None` for anything else.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|data| data.claims)
    }
}

/// Writes a new file only its owner can read: the signing key, the first admin's password.
pub fn write_secret_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// A new refresh token: 256 random bits, URL-safe text.
pub fn new_refresh_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// What the store keeps of a refresh token: its SHA-256, so a stolen database signs nobody in.
pub fn refresh_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A random id for a login family.
pub fn new_family_id() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<16>())
}

/// A generated password for the first admin: 120 random bits as 20 URL-safe characters.
pub fn new_password() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<15>())
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0; N];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::from_signing_key(&SigningKey::generate(&mut OsRng)).unwrap()
    }

    fn grant(issued_at: u64) -> Grant<'static> {
        Grant {
            username: "wei",
            role: Role::FieldWorker,
            version: 3,
            session: "family-1",
            issued_at,
        }
    }

    #[test]
    fn an_issued_token_verifies_with_all_its_claims_and_is_the_same_when_issued_again() {
        let keys = keys();
        let now = jsonwebtoken::get_current_timestamp();
        let token = keys.issue(&grant(now), 900).unwrap();
        let claims = keys.verify(&token).unwrap();
        assert_eq!(
            (
                claims.sub.as_str(),
                claims.ver,
                claims.exp,
                claims.sid.as_str()
            ),
            ("wei", 3, now + 900, "family-1")
        );
        assert_eq!(keys.issue(&grant(now), 900).unwrap(), token);
    }

    #[test]
    fn a_token_from_another_key_or_expired_is_refused() {
        let now = jsonwebtoken::get_current_timestamp();
        let token = keys().issue(&grant(now), 900).unwrap();
        assert!(keys().verify(&token).is_none());
        let keys = keys();
        let expired = keys.issue(&grant(now - 1000), 900).unwrap();
        assert!(keys.verify(&expired).is_none());
    }

    #[test]
    fn a_successor_is_fixed_by_the_token_and_the_key() {
        let keys = keys();
        let token = new_refresh_token();
        assert_eq!(keys.successor(&token), keys.successor(&token));
        assert_ne!(keys.successor(&token), keys.successor(&new_refresh_token()));
        assert_ne!(keys.successor(&token), self::keys().successor(&token));
        assert_eq!(keys.successor(&token).len(), 43);
    }

    #[test]
    fn refresh_tokens_are_long_random_and_hashed() {
        let (a, b) = (new_refresh_token(), new_refresh_token());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert_ne!(refresh_hash(&a), refresh_hash(&b));
    }
}
