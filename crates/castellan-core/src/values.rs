//! Validated values. A `Name` or an `Email` that exists is valid; parse at the edge.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a value was rejected. Messages are lowercase and quote the input in backticks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// An empty (or all-blank) name.
    #[error("{field} must not be empty")]
    Empty {
        /// The field being validated.
        field: &'static str,
    },
    /// A name longer than the limit.
    #[error("{field} is {len} characters long; the limit is {max}")]
    TooLong {
        /// The field being validated.
        field: &'static str,
        /// Its length in characters.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A control character (newline, NUL, …) in a name.
    #[error("{field} must not contain control characters")]
    ControlCharacter {
        /// The field being validated.
        field: &'static str,
    },
    /// Not an email address.
    #[error("`{0}` is not a valid email address")]
    BadEmail(String),
}

/// The longest name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 256;

/// A display name of an object (project, group, role, key, …): 1 to 256 characters,
/// no control characters, no leading or trailing whitespace (it is trimmed).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Name(String);

impl Name {
    /// Validates `raw` as the value of `field`.
    pub fn parse(field: &'static str, raw: &str) -> Result<Name, ValueError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(ValueError::Empty { field });
        }
        let len = trimmed.chars().count();
        if len > MAX_NAME_CHARS {
            return Err(ValueError::TooLong { field, len, max: MAX_NAME_CHARS });
        }
        if trimmed.chars().any(char::is_control) {
            return Err(ValueError::ControlCharacter { field });
        }
        Ok(Name(trimmed.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Takes the inner string.
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Name::parse("name", &s).map_err(serde::de::Error::custom)
    }
}

/// An email address, lowercased. The check is deliberately simple (one `@`, a dot in
/// the domain, no spaces): mail delivery is the real test.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// Validates and lowercases an email address.
    pub fn parse(raw: &str) -> Result<Email, ValueError> {
        let s = raw.trim().to_lowercase();
        let bad = || ValueError::BadEmail(raw.to_owned());
        if s.len() > 320 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let (local, domain) = s.split_once('@').ok_or_else(bad)?;
        if local.is_empty()
            || domain.contains('@')
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
        {
            return Err(bad());
        }
        Ok(Email(s))
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Email::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_trimmed_and_kept() {
        assert_eq!(Name::parse("name", "  proj a ").map(|n| n.into_inner()), Ok("proj a".into()));
    }

    #[test]
    fn blank_long_and_control_names_are_rejected() {
        assert_eq!(Name::parse("name", "   "), Err(ValueError::Empty { field: "name" }));
        assert!(matches!(Name::parse("name", &"x".repeat(257)), Err(ValueError::TooLong { len: 257, .. })));
        assert_eq!(Name::parse("name", "a\nb"), Err(ValueError::ControlCharacter { field: "name" }));
    }

    #[test]
    fn emails_are_lowercased_and_checked() {
        assert_eq!(Email::parse("Ada@Example.COM").map(|e| e.to_string()), Ok("ada@example.com".into()));
        for bad in ["", "ada", "ada@", "@x.com", "a b@x.com", "a@b@c.com", "a@nodot", "a@.x"] {
            assert!(Email::parse(bad).is_err(), "{bad} should be rejected");
        }
    }
}
