//! The password policy of docs/security.md §2 (ASVS 6.2): 8 to 128 characters, no composition
//! rules, never truncated, and not one of the 3,000 most common passwords
//! (`fixtures/common_passwords.txt`, compared case-insensitively).

use std::collections::HashSet;
use std::sync::OnceLock;

pub const MIN_CHARS: usize = 8;
pub const MAX_CHARS: usize = 128;

const COMMON: &str = include_str!("../../../../fixtures/common_passwords.txt");

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordProblem {
    #[error("the password must have at least {MIN_CHARS} characters")]
    TooShort,
    #[error("the password must have at most {MAX_CHARS} characters")]
    TooLong,
    #[error("the password is one of the most common passwords; choose another")]
    Common,
}

fn common() -> &'static HashSet<String> {
    static SET: OnceLock<HashSet<String>> = OnceLock::new();
    SET.get_or_init(|| {
        COMMON
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_lowercase)
            .collect()
    })
}

/// How many passwords the bundled list holds.
pub fn common_count() -> usize {
    common().len()
}

/// Whether `password` may be set. Characters are Unicode scalar values, so a password of
/// emoji is measured as a person would count it.
pub fn check(password: &str) -> Result<(), PasswordProblem> {
    let chars = password.chars().count();
    if chars < MIN_CHARS {
        return Err(PasswordProblem::TooShort);
    }
    if chars > MAX_CHARS {
        return Err(PasswordProblem::TooLong);
    }
    if common().contains(&password.to_lowercase()) {
        return Err(PasswordProblem::Common);
    }
    Ok(())
}

/// A login attempt's password longer than this is refused before hashing (docs/security.md §2:
/// a 10,000-character password must cost nothing).
pub fn too_long_to_try(password: &str) -> bool {
    password.len() > MAX_CHARS * 4 || password.chars().count() > MAX_CHARS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_list_holds_three_thousand_passwords() {
        assert_eq!(common_count(), 3000);
    }

    #[test]
    fn lengths_of_security_md() {
        assert_eq!(check("abcdefg"), Err(PasswordProblem::TooShort));
        assert_eq!(check(&"x".repeat(129)), Err(PasswordProblem::TooLong));
        assert_eq!(check(&"x".repeat(128)), Ok(()));
        assert_eq!(check("correct horse"), Ok(()));
        // Counted in characters, not bytes: eight emoji are eight characters.
        assert_eq!(check("🏠🏠🏠🏠🏠🏠🏠🏠"), Ok(()));
        assert_eq!(check("🏠🏠🏠🏠🏠🏠🏠"), Err(PasswordProblem::TooShort));
        // No composition rules, spaces allowed and kept.
        assert_eq!(check("        x"), Ok(()));
    }

    #[test]
    fn common_passwords_are_refused_in_any_case() {
        for p in [
            "password", "PASSWORD", "12345678", "baseball", "iloveyou", "trustno1", "Football",
        ] {
            assert_eq!(check(p), Err(PasswordProblem::Common), "{p}");
        }
        assert_eq!(check("harbor-realty-2026"), Ok(()));
    }

    #[test]
    fn overlong_attempts_are_not_hashed() {
        assert!(too_long_to_try(&"a".repeat(10_000)));
        assert!(too_long_to_try(&"a".repeat(129)));
        assert!(!too_long_to_try(&"a".repeat(128)));
        assert!(!too_long_to_try(&"é".repeat(128)));
    }
}
