//! A lean HTTP/1.1 client: one hyper connection per simulated client, kept alive,
//! one request at a time, and requests cloned from prebuilt templates. No pool, no
//! redirects, no TLS: the driver shares the CPU with the server and must stay cheap.

use std::net::SocketAddr;

use anyhow::Context;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::fixtures::Secret;

pub type Body = Full<Bytes>;

/// Sent on every request: Tessera stores it on the session when a refresh rotates
/// (the pgbench script writes the same value).
pub const USER_AGENT: &str = "tessera-bench";

pub struct Connection {
    sender: SendRequest<Body>,
}

impl Connection {
    pub async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        // Requests are small and sent whole; never wait for Nagle.
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        // Ends by itself when `sender` is dropped or the server closes.
        tokio::spawn(connection);
        Ok(Self { sender })
    }

    /// Sends one request and reads the whole response body.
    pub async fn send(&mut self, request: Request<Body>) -> anyhow::Result<(StatusCode, Bytes)> {
        let (status, _, body) = self.send_with_headers(request).await?;
        Ok((status, body))
    }

    /// [`Self::send`], keeping the response headers (`Retry-After` on a 503).
    pub async fn send_with_headers(
        &mut self,
        request: Request<Body>,
    ) -> anyhow::Result<(StatusCode, hyper::HeaderMap, Bytes)> {
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok((parts.status, parts.headers, body))
    }
}

/// One request on a fresh connection, for set-up steps (readiness, a token).
pub async fn send_once(
    addr: SocketAddr,
    request: Request<Body>,
) -> anyhow::Result<(StatusCode, Bytes)> {
    let mut connection = Connection::open(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    connection.send(request).await
}

/// A request built once and cloned for every send (headers and all).
#[derive(Clone)]
pub struct RequestTemplate(Request<Body>);

impl RequestTemplate {
    fn new(addr: SocketAddr, method: Method, path: &str, body: Bytes) -> Self {
        let request = Request::builder()
            .method(method)
            .uri(path)
            // The connection-level client leaves Host to us; HTTP/1.1 requires it.
            .header(header::HOST, addr.to_string())
            .header(header::USER_AGENT, USER_AGENT)
            .body(Full::new(body))
            .expect("a request from valid parts");
        Self(request)
    }

    pub fn get(addr: SocketAddr, path: &str) -> Self {
        Self::new(addr, Method::GET, path, Bytes::new())
    }

    /// `application/x-www-form-urlencoded`, as RFC 6749 has clients send.
    pub fn post_form(addr: SocketAddr, path: &str, body: String) -> Self {
        let mut template = Self::new(addr, Method::POST, path, Bytes::from(body));
        template.0.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        template
    }

    /// HTTP Basic client authentication (RFC 6749 §2.3.1).
    pub fn basic_auth(mut self, client_id: &str, secret: &Secret) -> Self {
        let credentials = STANDARD.encode(format!("{client_id}:{}", secret.expose()));
        self.0.headers_mut().insert(
            header::AUTHORIZATION,
            sensitive(&format!("Basic {credentials}")),
        );
        self
    }

    pub fn bearer(mut self, token: &str) -> Self {
        self.0
            .headers_mut()
            .insert(header::AUTHORIZATION, sensitive(&format!("Bearer {token}")));
        self
    }

    pub fn request(&self) -> Request<Body> {
        self.0.clone()
    }

    /// The template with another body (a form with a fresh refresh token).
    pub fn request_with_body(&self, body: String) -> Request<Body> {
        let mut request = Request::new(Full::new(Bytes::from(body)));
        *request.method_mut() = self.0.method().clone();
        *request.uri_mut() = self.0.uri().clone();
        *request.headers_mut() = self.0.headers().clone();
        request
    }
}

fn sensitive(value: &str) -> HeaderValue {
    let mut value = HeaderValue::from_str(value).expect("credentials are visible ASCII");
    value.set_sensitive(true);
    value
}
