//! Password hashing (argon2id, PHC strings), the password policy, and generated passwords.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// Shortest accepted password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest accepted password, in bytes; bounds the hashing work an attacker can ask for.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Characters of a password the strength estimate reads (it costs more with length; what
/// follows cannot make a password weaker).
const ESTIMATED_CHARS: usize = 100;

/// Checks `username`'s new password against the policy: at least [`MIN_PASSWORD_CHARS`]
/// characters, not the user name or built on it, and not easy to guess by the estimate of
/// `zxcvbn` (common passwords and their variants, dictionary words, keyboard walks, dates,
/// repeats: at least score 3 of 4). The error is a sentence for the user.
pub fn check_policy(password: &str, username: &str) -> Result<(), String> {
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
    let name = username.trim().to_lowercase();
    if name.chars().count() >= 3 && password.to_lowercase().contains(&name) {
        return Err("password must not contain the user name".into());
    }
    let head: String = password.chars().take(ESTIMATED_CHARS).collect();
    let estimate = zxcvbn::zxcvbn(&head, &[username, "securify", "admin"]);
    if estimate.score() < zxcvbn::Score::Three {
        let why = estimate
            .feedback()
            .and_then(zxcvbn::feedback::Feedback::warning)
            .map_or_else(String::new, |w| {
                format!(" ({})", w.to_string().trim_end_matches('.'))
            });
        return Err(format!(
            "password is too easy to guess{why}; a few unrelated words make a strong one"
        ));
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
        assert!(check_policy("short", "ann").is_err());
        assert!(check_policy("aaaaaaaaaaaaaaaa", "ann").is_err());
        assert!(check_policy(&"ab".repeat(600), "ann").is_err());
        assert!(check_policy(&generate(), "ann").is_ok());
        assert!(check_policy("correct horse battery staple", "ann").is_ok());
        // Common passwords and their variants, keyboard walks, the user's own name.
        for weak in [
            "Password1234",
            "qwertyuiop123",
            "iloveyou2024!",
            "123456789012",
        ] {
            let error = check_policy(weak, "ann").unwrap_err();
            assert!(error.contains("too easy to guess"), "{weak}: {error}");
        }
        let error = check_policy("Rosalind-Franklin-88", "rosalind").unwrap_err();
        assert!(error.contains("user name"), "{error}");
        // Long passwords are estimated on their beginning only: bounded work.
        assert!(check_policy(&"correct horse battery staple ".repeat(30), "ann").is_ok());
    }
}
