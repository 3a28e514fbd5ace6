//! Password rules and argon2id hashing (the crate's defaults: 19 MiB, t=2, p=1, as OWASP advises).

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// Shorter passwords are refused.
pub const MIN_LENGTH: usize = 8;
/// Longer ones too: hashing cost grows with length, and nobody types more on a phone.
pub const MAX_LENGTH: usize = 256;

/// Why a password is not acceptable, for the person choosing it.
pub fn check_rules(username: &str, password: &str) -> Result<(), &'static str> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err("the password must have at least 8 characters");
    }
    if length > MAX_LENGTH {
        return Err("the password must have at most 256 characters");
    }
    if password.trim().eq_ignore_ascii_case(username) {
        return Err("the password must not be the username");
    }
    Ok(())
}

/// Hashes with a fresh salt. CPU- and memory-heavy: call from a blocking thread.
pub fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Whether `password` matches the PHC string `hash`. CPU- and memory-heavy: call from a blocking thread.
pub fn verify(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let hashed = hash("correct horse").unwrap();
        assert!(
            hashed.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hashed}"
        );
        assert!(verify("correct horse", &hashed));
        assert!(!verify("correct horsf", &hashed));
        assert!(!verify("correct horse", "not a hash"));
    }

    #[test]
    fn short_passwords_and_the_username_are_refused() {
        assert!(check_rules("wei", "1234567").is_err());
        assert!(check_rules("weixiuying", "WeiXiuYing").is_err());
        assert!(check_rules("wei", "思林镇调查员2026").is_ok());
    }
}
