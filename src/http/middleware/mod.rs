//! The middleware every request passes, one job each. `startup` wraps them in this
//! order, outermost first: [`request_id`] (the id, its span and its response header),
//! [`access_log`] (the log line and the request metrics), [`timeout`] (the overall time
//! limit), [`security_headers`] (head size limit, response headers), then the handler.
//! Only the method, route and status of a request are logged: never its query string,
//! headers or body, where tokens and passwords travel.

pub(crate) mod access_log;
pub(crate) mod request_id;
pub(crate) mod security_headers;
pub(crate) mod timeout;
