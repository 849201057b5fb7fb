use std::fmt;

/// A role name carried in the `roles` claim: 1 to 64 characters of `a-z 0-9 _ : -`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Role(String);

impl Role {
    pub(crate) const ADMIN: &'static str = "admin";

    pub fn parse(raw: &str) -> Result<Self, String> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_:-".contains(&b));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(format!(
                "role `{raw}` must be 1 to 64 characters of a-z 0-9 _ : -"
            ))
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
