//! Access tokens (EdDSA-signed JWTs) and refresh tokens (256 random bits, stored hashed).

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, spki::der::pem::LineEnding};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The signing key's file name in the data directory, unless `SURVEY_JWT_KEY_FILE` names another.
pub const KEY_FILE: &str = "jwt-ed25519.pem";

/// Who issues tokens and for whom; checked on every request.
const ISSUER: &str = "survey-server";
const AUDIENCE: &str = "survey-server-api";

/// The claims of an access token. Every one is required when verifying.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// Lower-case username.
    pub sub: String,
    /// Role code at issue (the current role is read from the store on every request).
    pub role: String,
    pub iat: u64,
    pub exp: u64,
    pub iss: String,
    pub aud: String,
    /// The user's `token_version` at issue; a change of password, role, scope or status bumps it.
    pub ver: u64,
}

/// The signing key pair, loaded once at start-up.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

/// Why the key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {problem}")]
    File { path: String, problem: String },
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

    fn from_signing_key(key: &SigningKey) -> Result<Self, String> {
        let der = key.to_pkcs8_der().map_err(|e| e.to_string())?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = 0;
        Ok(Self {
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            decoding: DecodingKey::from_ed_der(key.verifying_key().as_bytes()),
            validation,
        })
    }

    /// Signs an access token for `username` valid `ttl_secs` from `now`.
    pub fn issue(
        &self,
        username: &str,
        role: &str,
        version: u64,
        now: u64,
        ttl_secs: u64,
    ) -> Result<String, String> {
        let claims = Claims {
            sub: username.to_owned(),
            role: role.to_owned(),
            iat: now,
            exp: now + ttl_secs,
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            ver: version,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &self.encoding)
            .map_err(|e| e.to_string())
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

    #[test]
    fn an_issued_token_verifies_with_all_its_claims() {
        let keys = keys();
        let now = jsonwebtoken::get_current_timestamp();
        let token = keys.issue("wei", "field_worker", 3, now, 900).unwrap();
        let claims = keys.verify(&token).unwrap();
        assert_eq!(
            (claims.sub.as_str(), claims.ver, claims.exp),
            ("wei", 3, now + 900)
        );
    }

    #[test]
    fn a_token_from_another_key_or_expired_is_refused() {
        let now = jsonwebtoken::get_current_timestamp();
        let token = keys().issue("wei", "admin", 0, now, 900).unwrap();
        assert!(keys().verify(&token).is_none());
        let keys = keys();
        let expired = keys.issue("wei", "admin", 0, now - 1000, 900).unwrap();
        assert!(keys.verify(&expired).is_none());
    }

    #[test]
    fn refresh_tokens_are_long_random_and_hashed() {
        let (a, b) = (new_refresh_token(), new_refresh_token());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert_ne!(refresh_hash(&a), refresh_hash(&b));
    }
}
