//! Password hashing (argon2id, PHC strings), the password policy, and generated passwords.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// Shortest accepted password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest accepted password, in bytes; bounds the hashing work an attacker can ask for.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Checks a new password against the policy; the error is a sentence for the user.
pub fn check_policy(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "password must be at least {MIN_PASSWORD_CHARS} characters long"
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!(
            "password must be at most {MAX_PASSWORD_BYTES} bytes long"
        ));
    }
    let mut chars = password.chars();
    let first = chars.next();
    if chars.all(|c| Some(c) == first) {
        return Err("password must not repeat a single character".into());
    }
    Ok(())
}

/// Hashes a password with argon2id and a random salt.
#[must_use]
pub fn hash(password: &str) -> String {
    // Hashing with default parameters into a PHC string fails only if the system random
    // generator does, which leaves nothing safe to do.
    Argon2::default()
        .hash_password(password.as_bytes())
        .expect("argon2 hashing with a random salt")
        .to_string()
}

/// Whether `password` matches the PHC string. Malformed hashes never match.
#[must_use]
pub fn verify(password: &str, phc: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    PasswordHash::new(phc).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A random password that satisfies the policy, for first start and new users.
#[must_use]
pub fn generate() -> String {
    crate::keys::random_token::<15>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_only_the_same_password() {
        let phc = hash("correct horse battery");
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", &phc));
        assert!(!verify("correct horse battery!", &phc));
        assert!(!verify("anything", "not a phc string"));
    }

    #[test]
    fn policy_rejects_short_and_trivial_passwords() {
        assert!(check_policy("short").is_err());
        assert!(check_policy("aaaaaaaaaaaaaaaa").is_err());
        assert!(check_policy(&"ab".repeat(600)).is_err());
        assert!(check_policy(&generate()).is_ok());
    }
}
