//! The admin API under `/v1/admin`: needs an access token minted for Tessera itself
//! (its audience exactly the issuer) with the `admin` role (401 without such a token,
//! 403 without the role). Every change is audited with the acting admin.

mod audit;
mod clients;
mod keys;
mod revocations;
mod users;

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use serde::{Deserialize, Serialize};

use super::bearer::Caller;
use super::oauth::request_context;
use crate::auth::tokens::InvalidToken;
use crate::auth::Actor;
use crate::domain::Role;
use crate::error::Problem;

/// A caller holding the admin role.
pub(crate) struct Admin {
    pub actor: Actor,
}

impl FromRequest for Admin {
    type Error = Problem;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Problem>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let caller = Caller::from_request(req, payload);
        let ctx = request_context(req);
        let own_audience = req
            .app_data::<actix_web::web::Data<crate::http::AppState>>()
            .map(|state| state.settings().own_audience().to_owned())
            .unwrap_or_default();
        Box::pin(async move {
            let caller = caller.await?;
            // A token whose audience also names another API may have been handed to
            // that API, which could replay it here: the admin API takes only tokens
            // minted for Tessera alone.
            if !caller.claims.aud.is_exactly(&own_audience) {
                return Err(Problem::invalid_token(&InvalidToken::WrongAudience));
            }
            if !caller.claims.has_role(Role::ADMIN) {
                return Err(Problem::insufficient_scope(
                    "this endpoint needs the admin role",
                ));
            }
            let user_id = caller.user_id()?;
            Ok(Admin {
                actor: Actor::admin(user_id, ctx),
            })
        })
    }
}

/// `?limit=&cursor=`: keyset pagination; `cursor` is opaque to clients.
#[derive(Deserialize)]
pub(crate) struct PageQuery {
    // A string: query structs that embed this one with `#[serde(flatten)]` see every
    // value as text.
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

impl PageQuery {
    pub(crate) fn limit(&self) -> Result<i64, Problem> {
        // `50.0` is an integer to JSON Schema, so to clients built from the document.
        let whole = |raw: &str| {
            raw.parse::<i64>().ok().or_else(|| {
                raw.parse::<f64>()
                    .ok()
                    .filter(|f| f.fract() == 0.0 && f.abs() <= 1e6)
                    .map(|f| f as i64)
            })
        };
        match self.limit.as_deref().map(whole) {
            None => Ok(50),
            Some(Some(n)) if (1..=200).contains(&n) => Ok(n),
            Some(_) => Err(Problem::bad_request("limit must be a number from 1 to 200")),
        }
    }

    /// The cursor of lists ordered by a time-ordered id (audit log, revocations).
    pub(crate) fn id_cursor(&self) -> Result<Option<uuid::Uuid>, Problem> {
        self.cursor
            .as_deref()
            .map(|c| uuid::Uuid::parse_str(c).map_err(|_| Problem::bad_request("invalid cursor")))
            .transpose()
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// `rows` was fetched with `limit + 1` to learn whether more follow.
    pub(crate) fn from_rows(mut rows: Vec<T>, limit: i64, key: impl Fn(&T) -> String) -> Self {
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = if more { rows.last().map(key) } else { None };
        Page {
            items: rows,
            next_cursor,
        }
    }

    /// The same page with every item turned into its response type.
    pub(crate) fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

pub(crate) fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(
        utoipa_actix_web::scope("/v1/admin")
            .service(users::list)
            .service(users::create)
            .service(users::get)
            .service(users::update)
            .service(users::reset_password)
            .service(users::sessions)
            .service(users::revoke_everything)
            .service(users::unlock)
            .service(revocations::list)
            .service(revocations::create)
            .service(clients::list)
            .service(clients::create)
            .service(clients::get)
            .service(clients::update)
            .service(clients::rotate_secret)
            .service(clients::delete)
            .service(audit::list)
            .service(keys::list)
            .service(keys::rotate),
    );
}

pub(crate) fn parse_uuid(raw: &str, what: &str) -> Result<uuid::Uuid, Problem> {
    uuid::Uuid::parse_str(raw).map_err(|_| Problem::not_found(format!("no such {what}")))
}

pub(crate) fn created<T: Serialize>(body: &T) -> actix_web::HttpResponse {
    let mut res = actix_web::HttpResponse::Created();
    crate::error::no_store(&mut res);
    res.json(body)
}

pub(crate) fn ok<T: Serialize>(body: &T) -> actix_web::HttpResponse {
    let mut res = actix_web::HttpResponse::Ok();
    crate::error::no_store(&mut res);
    res.json(body)
}
