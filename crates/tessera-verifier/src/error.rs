//! Error helpers; the error types themselves are `tessera_token`'s.

/// A request error as text, with its causes: reqwest's own `Display` stops at "error
/// sending request", which says nothing about refused connections or certificates.
pub(crate) fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
