//! JSON request bodies of the API, read by the extractor but judged by the handler.
//!
//! Every route answers in one order: method and route, authentication, authorisation,
//! then the body's size and content type, then the body itself. Extractors run side by
//! side, so a body extractor that could fail would race the token check and tell a
//! caller without the right what the body should look like. [`JsonBody`] never fails
//! as an extractor; the handler calls [`JsonBody::parse`] once the caller is known.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::mime;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use serde::de::DeserializeOwned;

use crate::error::{describe_json_error, Problem};

/// Why a body could not be read.
pub(crate) enum Unread {
    TooLarge,
    Broken,
}

/// Tells an oversized body from a broken connection in an extractor's error.
pub(crate) fn unread(err: &actix_web::Error) -> Unread {
    use actix_web::error::PayloadError;
    let too_large = err
        .as_error::<PayloadError>()
        .is_some_and(|p| matches!(p, PayloadError::Overflow))
        || err.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE;
    if too_large {
        Unread::TooLarge
    } else {
        Unread::Broken
    }
}

/// What a request's `Content-Type` names, judged by type and subtype alone (RFC 9110
/// §8.3.1: case-insensitive; parameters such as `charset` are not looked at).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MediaType {
    /// No `Content-Type` header.
    Absent,
    Json,
    Form,
    /// Any other media type, or a header that does not parse as one.
    Other,
}

pub(crate) fn media_type(req: &HttpRequest) -> MediaType {
    match req.mime_type() {
        Ok(None) => MediaType::Absent,
        Ok(Some(mime)) if mime.essence_str() == mime::APPLICATION_JSON.essence_str() => {
            MediaType::Json
        }
        Ok(Some(mime))
            if mime.essence_str() == mime::APPLICATION_WWW_FORM_URLENCODED.essence_str() =>
        {
            MediaType::Form
        }
        Ok(Some(_)) | Err(_) => MediaType::Other,
    }
}

/// A request body as read (up to `TESSERA_MAX_BODY_BYTES`), not yet checked.
pub(crate) struct JsonBody {
    media_type: MediaType,
    bytes: Result<Bytes, actix_web::Error>,
    limit: usize,
}

impl FromRequest for JsonBody {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let media_type = media_type(req);
        let limit = req
            .app_data::<actix_web::web::Data<crate::http::AppState>>()
            .map_or(16 * 1024, |s| s.settings().http.max_body_bytes);
        let read = Bytes::from_request(req, payload);
        Box::pin(async move {
            Ok(JsonBody {
                media_type,
                bytes: read.await,
                limit,
            })
        })
    }
}

impl JsonBody {
    /// A required JSON document: 413 when too large, 400 when absent, 415 when not
    /// `application/json`, 400 when it does not parse (never echoing a value sent).
    pub(crate) fn parse<T: DeserializeOwned>(self) -> Result<T, Problem> {
        let bytes = self.read()?;
        if is_blank(&bytes) {
            return Err(Problem::bad_request(
                "a JSON request body (Content-Type: application/json) is required",
            ));
        }
        check_json_type(self.media_type)?;
        from_json(&bytes)
    }

    /// An optional JSON document: no body (or `null`) is `None`.
    pub(crate) fn parse_optional<T: DeserializeOwned>(self) -> Result<Option<T>, Problem> {
        let bytes = self.read()?;
        if is_blank(&bytes) {
            return Ok(None);
        }
        check_json_type(self.media_type)?;
        from_json(&bytes)
    }

    fn read(&self) -> Result<Bytes, Problem> {
        match &self.bytes {
            Ok(bytes) => Ok(bytes.clone()),
            Err(e) => Err(match unread(e) {
                Unread::TooLarge => too_large(self.limit),
                Unread::Broken => Problem::bad_request("the request body could not be read"),
            }),
        }
    }
}

/// 413, as a problem document.
pub(crate) fn too_large(limit: usize) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the request body is larger than {limit} bytes"),
    )
}

fn is_blank(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}

fn check_json_type(media_type: MediaType) -> Result<(), Problem> {
    if media_type == MediaType::Json {
        Ok(())
    } else {
        Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the request body must be sent as Content-Type: application/json",
        ))
    }
}

fn from_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    if !is_object_or_null(body) {
        return Err(Problem::bad_request(
            "the request body must be a JSON object",
        ));
    }
    serde_json::from_slice(body).map_err(|e| Problem::bad_request(describe_json_error(&e)))
}

/// Every body is an object: serde would also read a struct from an array (`[null]`).
fn is_object_or_null(body: &[u8]) -> bool {
    let text = body.trim_ascii_start();
    text.starts_with(b"{") || text.starts_with(b"null")
}

/// A query string, read by the extractor but judged by the handler (after the caller
/// is known), for the same reason as [`JsonBody`].
pub(crate) struct QueryString(String);

impl FromRequest for QueryString {
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Ok(Self(req.query_string().to_owned())))
    }
}

impl QueryString {
    /// The parameters, or a 400 that says what was wrong with them.
    pub(crate) fn parse<T: DeserializeOwned>(&self) -> Result<T, Problem> {
        serde_urlencoded::from_str(&self.0)
            .map_err(|e| Problem::bad_request(format!("invalid query string: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::{media_type, MediaType};

    fn of(content_type: &str) -> MediaType {
        media_type(
            &TestRequest::default()
                .insert_header(("content-type", content_type))
                .to_http_request(),
        )
    }

    #[test]
    fn media_types_are_judged_by_type_and_subtype() {
        assert_eq!(of("application/json"), MediaType::Json);
        assert_eq!(of("Application/JSON; charset=UTF-8"), MediaType::Json);
        assert_eq!(
            of("application/x-www-form-urlencoded;charset=utf-8"),
            MediaType::Form
        );
        assert_eq!(of("application/ld+json"), MediaType::Other);
        assert_eq!(of("text/plain"), MediaType::Other);
        assert_eq!(of("json"), MediaType::Other);
        assert_eq!(
            media_type(&TestRequest::default().to_http_request()),
            MediaType::Absent
        );
    }
}
