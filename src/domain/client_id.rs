use std::fmt;

/// An OAuth client identifier: 1 to 128 characters of `A-Z a-z 0-9 . _ : -`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientId(String);

impl ClientId {
    /// The built-in public client used when a token request names none.
    pub(crate) const BUILTIN: &'static str = "tessera";

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

    /// The id of a client being created: as [`ClientId::parse`], and not shaped like a
    /// UUID (in any spelling the `uuid` crate reads), because a client_credentials
    /// token's `sub` is the client id and must never equal a user's id.
    pub(crate) fn parse_new(raw: &str) -> Result<Self, String> {
        let id = Self::parse(raw)?;
        if uuid::Uuid::try_parse(raw).is_ok() {
            return Err(
                "client_id must not look like a UUID (a user's id): it becomes the `sub` of \
                 the client's tokens"
                    .to_owned(),
            );
        }
        Ok(id)
    }

    pub(crate) fn builtin() -> Self {
        Self(Self::BUILTIN.to_owned())
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::ClientId;

    #[test]
    fn a_new_client_id_may_not_be_uuid_shaped() {
        for raw in [
            "0192f1e6-7b3c-7d2e-9f00-123456789abc",
            "0192F1E6-7B3C-7D2E-9F00-123456789ABC",
            "0192f1e67b3c7d2e9f00123456789abc",
            "urn:uuid:0192f1e6-7b3c-7d2e-9f00-123456789abc",
        ] {
            assert!(ClientId::parse_new(raw).is_err(), "{raw}");
            // Stored clients keep loading (and authenticating) as before.
            assert!(ClientId::parse(raw).is_ok(), "{raw}");
        }
        for raw in [
            "orders-api",
            "c_abc",
            "0192f1e6-7b3c-7d2e-9f00-123456789abcd",
        ] {
            assert!(ClientId::parse_new(raw).is_ok(), "{raw}");
        }
    }
}
