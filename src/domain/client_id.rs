use std::fmt;

/// An OAuth client identifier: 1 to 128 characters of `A-Z a-z 0-9 . _ : -`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientId(String);

impl ClientId {
    /// The built-in public client used when a token request names none.
    pub const BUILTIN: &'static str = "tessera";

    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() || raw.len() > 128 {
            return Err("client_id must be 1 to 128 characters".to_owned());
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
        {
            return Err("client_id may contain only letters, digits and . _ : -".to_owned());
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn builtin() -> Self {
        Self(Self::BUILTIN.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
