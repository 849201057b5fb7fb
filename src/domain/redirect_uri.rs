//! Redirect URIs (RFC 6749 §3.1.2): what a client may register, and whether a URI in a
//! request is one it registered.

/// The longest redirect URI a client may register.
const MAX_LEN: usize = 256;

/// A registered redirect URI, checked when the client is created or changed: absolute,
/// `https` (or `http` on a loopback host, for development and native apps: RFC 8252
/// §7.3), no fragment (RFC 6749 §3.1.2), no user info, no wildcard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedirectUri(String);

impl RedirectUri {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() || raw.len() > MAX_LEN || raw.chars().any(|c| c.is_control() || c == ' ')
        {
            return Err(format!(
                "a redirect URI must be 1 to {MAX_LEN} characters, with no spaces"
            ));
        }
        if raw.contains('*') {
            return Err("a redirect URI cannot hold a wildcard: register each URI".to_owned());
        }
        if raw.contains('#') {
            return Err("a redirect URI cannot have a fragment (RFC 6749 §3.1.2)".to_owned());
        }
        let url = url::Url::parse(raw).map_err(|_| "a redirect URI must be an absolute URL")?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err("a redirect URI cannot hold a user name or password".to_owned());
        }
        match url.scheme() {
            "https" => {}
            "http" if is_loopback_host(url.host_str()) => {}
            _ => {
                return Err(
                    "a redirect URI must use https (http only on localhost, 127.0.0.1 or [::1])"
                        .to_owned(),
                )
            }
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is this URI: the same string, character for character (no
    /// normalisation: a trailing dot, another case or an extra slash is another URI).
    /// The one exception is RFC 8252 §7.3: for `http` on a loopback IP literal, a
    /// native app's port is chosen at run time, so any port matches.
    pub fn matches(&self, presented: &str) -> bool {
        if self.0 == presented {
            return true;
        }
        ["http://127.0.0.1", "http://[::1]"].iter().any(|host| {
            match (without_port(&self.0, host), without_port(presented, host)) {
                (Some(registered), Some(given)) => registered == given,
                _ => false,
            }
        })
    }
}

fn is_loopback_host(host: Option<&str>) -> bool {
    matches!(host, Some("localhost" | "127.0.0.1" | "[::1]"))
}

/// What follows `scheme://host` once an optional `:port` (1 to 65535) is taken off, when
/// `uri` starts with `scheme_host` followed by a port, a path, a query or nothing.
fn without_port<'a>(uri: &'a str, scheme_host: &str) -> Option<&'a str> {
    let rest = uri.strip_prefix(scheme_host)?;
    let Some(after_colon) = rest.strip_prefix(':') else {
        return (rest.is_empty() || rest.starts_with(['/', '?'])).then_some(rest);
    };
    let digits = after_colon
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(after_colon.len());
    let port: u16 = after_colon[..digits].parse().ok()?;
    let rest = &after_colon[digits..];
    (port > 0 && (rest.is_empty() || rest.starts_with(['/', '?']))).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> RedirectUri {
        RedirectUri::parse(s).unwrap()
    }

    #[test]
    fn https_and_loopback_http_register_and_nothing_else() {
        for ok in [
            "https://app.example.com/callback",
            "https://app.example.com/cb?x=1",
            "http://localhost:5173/callback",
            "http://127.0.0.1/cb",
            "http://[::1]:8000/cb",
        ] {
            assert!(RedirectUri::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/callback",
            "http://app.example.com/cb",
            "https://*.example.com/cb",
            "https://app.example.com/cb#frag",
            "https://user:pw@app.example.com/cb",
            "javascript:alert(1)",
            "https://app.example.com/a b",
            "ftp://app.example.com/cb",
        ] {
            assert!(RedirectUri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn matching_is_exact() {
        let cb = uri("https://app.example.com/callback");
        assert!(cb.matches("https://app.example.com/callback"));
        for other in [
            "https://app.example.com/callback/",
            "https://app.example.com/callback/extra",
            "https://app.example.com:8443/callback",
            "http://app.example.com/callback",
            "https://app.example.com./callback",
            "https://APP.example.com/callback",
            "https://app.example.com/callback?x=1",
            "https://app.example.com.evil.test/callback",
        ] {
            assert!(!cb.matches(other), "{other}");
        }
    }

    #[test]
    fn loopback_ip_literals_match_on_any_port_only() {
        let native = uri("http://127.0.0.1/cb");
        assert!(native.matches("http://127.0.0.1:51234/cb"));
        assert!(native.matches("http://127.0.0.1/cb"));
        assert!(!native.matches("http://127.0.0.1:51234/cb/x"));
        assert!(!native.matches("http://127.0.0.1:0/cb"));
        assert!(!native.matches("http://127.0.0.1:99999/cb"));
        assert!(!native.matches("http://127.0.0.1.evil.test/cb"));
        assert!(uri("http://[::1]:1/cb").matches("http://[::1]:2/cb"));
        // `localhost` is a name, which RFC 8252 §8.3 advises against: it matches exactly.
        assert!(!uri("http://localhost:1/cb").matches("http://localhost:2/cb"));
    }
}
