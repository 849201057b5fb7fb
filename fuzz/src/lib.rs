//! What the fuzz targets share: one request builder, one key set.

use std::sync::LazyLock;

use actix_web::test::TestRequest;
use actix_web::web::Bytes;
use tessera::auth::keys::KeySet;
use tessera::auth::tokens;
use tessera::domain::SigningAlgorithm;
use tessera::http::form;
use tessera::http::oauth::TokenParams;

pub const ISSUER: &str = "https://tessera.fuzz";
const BODY_LIMIT: usize = 16 * 1024;

/// Parses `body` as the token endpoint does for this content type. Errors are
/// expected; a panic is the bug the fuzzer looks for.
pub fn parse_token_request(content_type: &str, body: &[u8]) {
    let req = TestRequest::post()
        .uri("/oauth/token")
        .insert_header(("content-type", content_type))
        .to_http_request();
    let _ = form::parse_body::<TokenParams>(&req, Ok(Bytes::copy_from_slice(body)), BODY_LIMIT);
}

static KEYS: LazyLock<KeySet> =
    LazyLock::new(|| KeySet::ephemeral(SigningAlgorithm::Es256).expect("an ES256 key"));

/// A token that `KEYS` really signed, whose payload and signature the header
/// variants below reuse.
static SIGNED: LazyLock<String> = LazyLock::new(|| {
    let request = tokens::TokenRequest {
        issuer: ISSUER,
        subject: tokens::Subject::Client,
        client_id: "fuzz",
        scope: "orders:read",
        audiences: vec![ISSUER.to_owned()],
        ttl: std::time::Duration::from_secs(3600),
        issued_at: None,
    };
    tokens::mint(&KEYS, request)
        .expect("minting with a fresh key")
        .token
});

/// Data starting with `{` is taken as a JOSE header and put in front of a real
/// payload and signature (so the header parser sees JSON, not base64 noise); anything
/// else is presented as the whole token.
pub fn verify_access_token(data: &[u8]) {
    let token = if data.first() == Some(&b'{') {
        let mut parts = SIGNED.splitn(2, '.');
        let _header = parts.next();
        let rest = parts.next().unwrap_or_default();
        format!("{}.{rest}", base64url(data))
    } else {
        match std::str::from_utf8(data) {
            Ok(text) => text.to_owned(),
            Err(_) => return,
        }
    };
    if let Ok(claims) = tokens::verify(&KEYS, &token, ISSUER, None) {
        // Only the header that was signed verifies: any other must have been refused.
        assert_eq!(
            token, *SIGNED,
            "a token Tessera did not sign verified: {claims:?}"
        );
    }
}

fn base64url(data: &[u8]) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    URL_SAFE_NO_PAD.encode(data)
}
