//! Image names.

use crate::RepoError;
use std::fmt;

/// A validated image name: 1 to 128 characters from `A-Z a-z 0-9 . _ - + @`, not starting
/// with `.` or `-`, so it is a safe single path component on every backend (no separators,
/// no `..`, no hidden or temporary files, no option-like names).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImageName(String);

impl ImageName {
    /// Validates `s`.
    pub fn new(s: &str) -> Result<Self, RepoError> {
        let bad = |reason: &str| RepoError::InvalidName {
            name: s.to_string(),
            reason: reason.to_string(),
        };
        if s.is_empty() {
            return Err(bad("it is empty"));
        }
        if s.len() > 128 {
            return Err(bad("it is longer than 128 characters"));
        }
        if s.contains('/') || s.contains('\\') {
            return Err(bad("it contains a path separator"));
        }
        if s.contains("..") {
            return Err(bad("it contains '..'"));
        }
        if s.starts_with('.') || s.starts_with('-') {
            return Err(bad("it starts with '.' or '-'"));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "._-+@".contains(*c)))
        {
            return Err(bad(&format!(
                "character {c:?} is not allowed (use letters, digits, . _ - + @)"
            )));
        }
        Ok(ImageName(s.to_string()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ImageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_traversal_and_oddities() {
        for bad in [
            "", "..", "../x", "a/b", "a\\b", ".hidden", "-rf", "a..b", "a b", "a\0b", "ä", "x\n",
        ] {
            assert!(ImageName::new(bad).is_err(), "{bad:?} accepted");
        }
        assert!(ImageName::new(&"a".repeat(129)).is_err());
        for good in ["web01-2026-11-25", "a", "A.b_c+d@e", "2026-11-25-21-img"] {
            assert_eq!(ImageName::new(good).unwrap().as_str(), good);
        }
    }
}
