//! OAuth client authentication (RFC 6749 §2.3) and what a client may ask for.

use aws_lc_rs::digest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use super::recent::RecentReads;
use super::{AuthError, Tessera};
use crate::domain::{AccessTokenTtl, ClientId, GrantType, RedirectUri, Scope};
pub(crate) use crate::store::clients::ClientRow;
use crate::store::{self, Db};

/// What the request offered to prove which client it is.
pub(crate) enum ClientCredentials {
    /// Nothing: the built-in public client.
    None,
    /// `client_id` alone: a public client.
    Public(ClientId),
    /// `client_id` and `client_secret`, from HTTP Basic or the body.
    Secret(ClientId, SecretString),
}

impl ClientCredentials {
    /// The client id presented, if any.
    pub(crate) fn client_id(&self) -> Option<&ClientId> {
        match self {
            Self::None => None,
            Self::Public(id) | Self::Secret(id, _) => Some(id),
        }
    }
}

/// A client whose identity has been established for this request.
#[derive(Clone, Debug)]
pub(crate) struct Client {
    pub id: ClientId,
    /// The display name, shown on the consent page.
    pub name: String,
    pub confidential: bool,
    pub grant_types: Vec<GrantType>,
    pub scopes: Scope,
    pub audiences: Vec<String>,
    pub access_token_ttl: Option<std::time::Duration>,
    /// The refresh token travels only in an HttpOnly cookie (see `http::browser`).
    pub browser_mode: bool,
    /// Introspection answers about every token, not only its own and its audiences'.
    pub introspect_any: bool,
    /// Where `/oauth/authorize` may send a browser back with a code.
    pub redirect_uris: Vec<RedirectUri>,
    /// Where `/oauth/logout` may send a browser after signing out.
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    /// The operator's own app: no consent page.
    pub first_party: bool,
}

impl Client {
    fn from_row(row: ClientRow) -> Result<Self, AuthError> {
        let corrupt = |what: String| {
            AuthError::Store(store::StoreError::Corrupt(format!(
                "client {}: {what}",
                row.client_id
            )))
        };
        let uris = |list: &[String]| {
            list.iter()
                .map(|u| RedirectUri::parse(u))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Self {
            id: ClientId::parse(&row.client_id).map_err(corrupt)?,
            name: row.name.clone(),
            redirect_uris: uris(&row.redirects.redirect_uris).map_err(corrupt)?,
            post_logout_redirect_uris: uris(&row.redirects.post_logout_redirect_uris)
                .map_err(corrupt)?,
            first_party: row.first_party,
            confidential: row.confidential,
            scopes: Scope::from_tokens(&row.scopes).map_err(corrupt)?,
            // A name this version does not know grants nothing.
            grant_types: row
                .grant_types
                .iter()
                .filter_map(|g| GrantType::parse(g))
                .collect(),
            audiences: row.audiences,
            access_token_ttl: row
                .access_token_ttl_seconds
                .and_then(|s| u64::try_from(s).ok())
                .map(std::time::Duration::from_secs),
            browser_mode: row.browser_mode,
            introspect_any: row.introspect_any,
        })
    }

    /// The registered redirect URI that `presented` is (RFC 6749 §3.1.2.3), if any.
    pub(crate) fn redirect_uri(&self, presented: &str) -> Option<&RedirectUri> {
        self.redirect_uris.iter().find(|uri| uri.matches(presented))
    }

    /// The client as it is now, for a step that names it by id (a login page posted a
    /// while after the request began): unknown or deleted clients are `None`.
    pub(crate) async fn current(tessera: &Tessera, id: &str) -> Result<Option<Self>, AuthError> {
        match tessera.clients.find(id).await? {
            Some(row) => Ok(Some(Self::from_row(row)?)),
            None => Ok(None),
        }
    }

    pub(crate) fn may_use_grant(&self, grant_type: GrantType) -> Result<(), AuthError> {
        if self.grant_types.contains(&grant_type) {
            Ok(())
        } else {
            Err(AuthError::UnauthorizedClient(format!(
                "client `{}` may not use the {grant_type} grant",
                self.id
            )))
        }
    }

    /// RFC 6749 §3.3: the requested scope, which must lie within what the client may
    /// have; with none requested, everything it may have.
    pub(crate) fn grant_scope(&self, requested: Option<&Scope>) -> Result<Scope, AuthError> {
        match requested {
            None => Ok(self.scopes.clone()),
            Some(scope) if scope.is_subset(&self.scopes) => Ok(scope.clone()),
            Some(scope) => Err(AuthError::InvalidScope(format!(
                "scope not allowed for this client: {}",
                scope
                    .excess_over(&self.scopes)
                    .collect::<Vec<_>>()
                    .join(" ")
            ))),
        }
    }
}

pub(crate) const SECRET_PREFIX: &str = "cs_";

/// A new client secret (256 random bits) and the hash that is stored.
pub(crate) fn generate_secret() -> (SecretString, [u8; 32]) {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random generator failed");
    let secret = format!("{SECRET_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash_secret(&secret);
    (SecretString::from(secret), hash)
}

pub fn hash_secret(secret: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, secret.as_bytes()).as_ref());
    out
}

/// The current secret, or the previous one during its overlap. Both comparisons
/// always run, in constant time, so timing tells nothing about which matched.
fn secret_matches(row: &ClientRow, presented: &[u8; 32]) -> bool {
    let current = row
        .secret_hash
        .as_deref()
        .map(|h| presented.as_slice().ct_eq(h))
        .unwrap_or_else(|| 0u8.ct_eq(&1u8));
    let previous_live = row
        .previous_secret_expires_at
        .is_some_and(|until| until > chrono::Utc::now());
    let previous = row
        .previous_secret_hash
        .as_deref()
        .map(|h| presented.as_slice().ct_eq(h))
        .unwrap_or_else(|| 0u8.ct_eq(&1u8));
    bool::from(current | (previous & subtle::Choice::from(u8::from(previous_live))))
}

/// Client records, remembered for a moment (see [`RecentReads`]): every token,
/// refresh, revocation and introspection request authenticates a client, and clients
/// change rarely.
pub(crate) struct Directory {
    db: Db,
    recent: RecentReads<String, Option<ClientRow>>,
}

impl Directory {
    pub(crate) fn new(db: Db) -> Self {
        // Unknown ids are remembered too, so a flood of made-up ids costs one lookup
        // each per TTL; the bound keeps that flood from growing memory.
        Self {
            db,
            recent: RecentReads::new(super::CLIENT_CACHE_TTL, 10_000),
        }
    }

    #[tracing::instrument(name = "clients.directory.find", level = "debug", skip_all, fields(%client_id), err(level = "debug"))]
    pub(crate) async fn find(
        &self,
        client_id: &str,
    ) -> Result<Option<ClientRow>, store::StoreError> {
        let key = client_id.to_owned();
        if let Some(row) = self.recent.get(&key) {
            return Ok(row);
        }
        let lookup = key.clone();
        let row = self
            .db
            .run(move |conn| store::clients::find(conn, &lookup))
            .await?;
        self.recent.put(key, row.clone());
        Ok(row)
    }

    /// Drops a remembered record after a change made here.
    pub(crate) fn forget(&self, client_id: &str) {
        self.recent.forget(&client_id.to_owned());
    }
}

/// Establishes which client is calling. Every failure is `invalid_client`, and says
/// no more than needed.
#[tracing::instrument(name = "clients.authenticate", level = "debug", skip_all, fields(client_id = credentials.client_id().map(ClientId::as_str)), err(level = "debug"))]
pub(crate) async fn authenticate(
    tessera: &Tessera,
    credentials: ClientCredentials,
) -> Result<Client, AuthError> {
    let (id, secret) = match credentials {
        ClientCredentials::None => (ClientId::builtin(), None),
        ClientCredentials::Public(id) => (id, None),
        ClientCredentials::Secret(id, secret) => (id, Some(secret)),
    };
    let row = tessera.clients.find(id.as_str()).await?;
    let presented = secret.as_ref().map(|s| hash_secret(s.expose_secret()));
    // One answer for every failure, so a caller cannot tell an unknown client from a
    // wrong secret, or learn whether a client is public or confidential.
    let failed = || AuthError::InvalidClient("client authentication failed".to_owned());
    let Some(row) = row else {
        return Err(failed());
    };
    match (row.confidential, presented) {
        (false, None) => Client::from_row(row),
        (true, Some(presented)) if secret_matches(&row, &presented) => Client::from_row(row),
        _ => Err(failed()),
    }
}

/// A client as an administrator describes it, before validation.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientSpec {
    pub client_id: Option<String>,
    pub name: Option<String>,
    pub confidential: Option<bool>,
    pub grant_types: Option<Vec<String>>,
    pub scopes: Option<Vec<String>>,
    pub audiences: Option<Vec<String>>,
    /// Seconds (10 to 86400); `null` in an update clears the override.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub access_token_ttl_seconds: Option<Option<i64>>,
    /// For single-page apps: the refresh token is set as an `HttpOnly; Secure;
    /// SameSite=Strict` cookie scoped to `/oauth`, never returned in a body, and
    /// cookie-borne requests need an allowed `Origin` and the `X-Tessera-CSRF` header.
    pub browser_mode: Option<bool>,
    /// Lets this confidential client introspect every token. Without it, introspection
    /// answers `active: true` only for tokens issued to this client or whose audience
    /// names one of this client's audiences (other than Tessera's own) or its id.
    pub introspect_any: Option<bool>,
    /// For `authorization_code`: where the browser may be sent back with a code, each
    /// matched exactly; `https`, or `http` on localhost, 127.0.0.1 or [::1] (on a
    /// loopback IP literal any port matches, RFC 8252 §7.3). No fragments, no wildcards.
    pub redirect_uris: Option<Vec<String>>,
    /// Where `/oauth/logout` may send the browser after signing out, by the same rules.
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// The operator's own app: its users are not asked for consent, and its user
    /// tokens carry roles and work on Tessera's own API. Default: true for a client with
    /// the password grant (it sees passwords), false otherwise.
    pub first_party: Option<bool>,
}

/// Tells a missing field (`None`) from an explicit `null` (`Some(None)`).
fn double_option<'de, D>(de: D) -> Result<Option<Option<i64>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    crate::domain::whole_number(de).map(Some)
}

fn invalid(msg: impl Into<String>) -> AuthError {
    AuthError::InvalidRequest(msg.into())
}

fn check_name(name: &str) -> Result<String, AuthError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
        return Err(invalid("name must be 1 to 128 printable characters"));
    }
    Ok(name.to_owned())
}

fn check_grant_types(grants: &[String], confidential: bool) -> Result<Vec<String>, AuthError> {
    let mut out: Vec<GrantType> = Vec::new();
    for g in grants {
        let Ok(grant) = g.parse::<GrantType>() else {
            return Err(invalid(format!(
                "unknown grant type `{}`; use {}",
                g.chars().take(40).collect::<String>(),
                GrantType::names(", ", ", ")
            )));
        };
        if !out.contains(&grant) {
            out.push(grant);
        }
    }
    if out.is_empty() {
        return Err(invalid("a client needs at least one grant type"));
    }
    if let Some(grant) = out.iter().find(|g| g.needs_confidential_client()) {
        if !confidential {
            return Err(invalid(format!(
                "only confidential clients may use {grant}"
            )));
        }
    }
    // The column holds the names.
    Ok(out.iter().map(|g| g.as_str().to_owned()).collect())
}

fn check_redirect_uris(uris: &[String], what: &str) -> Result<Vec<String>, AuthError> {
    if uris.len() > 10 {
        return Err(invalid(format!("at most 10 {what}")));
    }
    let mut out: Vec<String> = Vec::new();
    for uri in uris {
        let uri = RedirectUri::parse(uri).map_err(|e| invalid(format!("{what}: {e}")))?;
        if !out.iter().any(|u| u == uri.as_str()) {
            out.push(uri.as_str().to_owned());
        }
    }
    Ok(out)
}

/// The client's redirect URIs after an update that changes either list, if it does.
fn redirects_changed(
    current: &ClientRow,
    spec: &ClientSpec,
) -> Result<Option<store::clients::Redirects>, AuthError> {
    if spec.redirect_uris.is_none() && spec.post_logout_redirect_uris.is_none() {
        return Ok(None);
    }
    let checked = |given: &Option<Vec<String>>, kept: &[String], what| match given {
        Some(uris) => check_redirect_uris(uris, what),
        None => Ok(kept.to_vec()),
    };
    Ok(Some(store::clients::Redirects {
        redirect_uris: checked(
            &spec.redirect_uris,
            &current.redirects.redirect_uris,
            "redirect_uris",
        )?,
        post_logout_redirect_uris: checked(
            &spec.post_logout_redirect_uris,
            &current.redirects.post_logout_redirect_uris,
            "post_logout_redirect_uris",
        )?,
    }))
}

/// The code flow needs somewhere to send the browser back to.
fn check_grant_needs(grants: &[String], redirect_uris: &[String]) -> Result<(), AuthError> {
    let has_code_grant = grants
        .iter()
        .any(|name| name == GrantType::AuthorizationCode.as_str());
    if has_code_grant && redirect_uris.is_empty() {
        return Err(invalid(
            "the authorization_code grant needs at least one redirect_uris entry",
        ));
    }
    Ok(())
}

fn check_scopes(scopes: &[String]) -> Result<Vec<String>, AuthError> {
    let scope = Scope::from_tokens(scopes).map_err(invalid)?;
    Ok(scope.iter().map(str::to_owned).collect())
}

fn check_audiences(audiences: &[String]) -> Result<Vec<String>, AuthError> {
    let mut out: Vec<String> = Vec::new();
    for a in audiences {
        let ok = !a.is_empty() && a.len() <= 256 && a.bytes().all(|b| b.is_ascii_graphic());
        if !ok {
            return Err(invalid(
                "each audience must be 1 to 256 visible ASCII characters",
            ));
        }
        if !out.contains(a) {
            out.push(a.clone());
        }
    }
    Ok(out)
}

fn check_introspect_any(any: bool, confidential: bool) -> Result<(), AuthError> {
    if any && !confidential {
        return Err(invalid(
            "only confidential clients may introspect, so only they may have introspect_any",
        ));
    }
    Ok(())
}

fn check_ttl(seconds: i64) -> Result<i32, AuthError> {
    let ttl = AccessTokenTtl::from_secs(seconds)
        .map_err(|e| invalid(format!("access_token_ttl_seconds {e}")))?;
    Ok(i32::try_from(ttl.as_secs()).expect("a day in seconds fits an i32"))
}

/// A new client id when none is given: `c_` and 96 random bits.
fn generate_client_id() -> ClientId {
    let mut bytes = [0u8; 12];
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random generator failed");
    ClientId::parse(&format!("c_{}", URL_SAFE_NO_PAD.encode(bytes)).replace('-', "_"))
        .expect("generated ids are valid")
}

/// Creates a client. A confidential client's secret is generated here and returned
/// once; only its hash is stored.
#[tracing::instrument(name = "clients.create", level = "debug", skip_all, fields(client_id = spec.client_id.as_deref()), err(level = "debug"))]
pub async fn create(
    tessera: &Tessera,
    spec: ClientSpec,
    actor: &super::Actor,
) -> Result<(ClientRow, Option<SecretString>), AuthError> {
    let id = match spec.client_id.as_deref() {
        Some(raw) => ClientId::parse_new(raw).map_err(invalid)?,
        None => generate_client_id(),
    };
    let name = check_name(spec.name.as_deref().unwrap_or(id.as_str()))?;
    let confidential = spec.confidential.unwrap_or(false);
    let grant_types = check_grant_types(
        spec.grant_types
            .as_deref()
            .ok_or_else(|| invalid("grant_types is required"))?,
        confidential,
    )?;
    let scopes = check_scopes(spec.scopes.as_deref().unwrap_or_default())?;
    let audiences = check_audiences(spec.audiences.as_deref().unwrap_or_default())?;
    let ttl = spec
        .access_token_ttl_seconds
        .flatten()
        .map(check_ttl)
        .transpose()?;
    let introspect_any = spec.introspect_any.unwrap_or(false);
    check_introspect_any(introspect_any, confidential)?;
    let redirect_uris = check_redirect_uris(
        spec.redirect_uris.as_deref().unwrap_or_default(),
        "redirect_uris",
    )?;
    let post_logout_redirect_uris = check_redirect_uris(
        spec.post_logout_redirect_uris
            .as_deref()
            .unwrap_or_default(),
        "post_logout_redirect_uris",
    )?;
    // A client trusted with passwords is the operator's own, whatever else it is.
    let first_party = spec.first_party.unwrap_or_else(|| {
        grant_types
            .iter()
            .any(|g| g == GrantType::Password.as_str())
    });
    check_grant_needs(&grant_types, &redirect_uris)?;
    let (secret, hash) = if confidential {
        let (secret, hash) = generate_secret();
        (Some(secret), Some(hash))
    } else {
        (None, None)
    };
    let event = actor
        .event(super::audit::action::CLIENT_CREATED)
        .client(id.as_str())
        .detail("confidential", confidential);
    let ctx = actor.ctx.clone();
    let result = tessera
        .db
        .run(move |conn| {
            use diesel::Connection;
            conn.transaction(|conn| {
                let row = store::clients::insert(
                    conn,
                    &store::clients::NewClient {
                        client_id: id.as_str(),
                        name: &name,
                        confidential,
                        secret_hash: hash.as_ref().map(|h| h.as_slice()),
                        grant_types: &grant_types,
                        scopes: &scopes,
                        audiences: &audiences,
                        access_token_ttl_seconds: ttl,
                        browser_mode: spec.browser_mode.unwrap_or(false),
                        introspect_any,
                        redirects: &store::clients::Redirects {
                            redirect_uris,
                            post_logout_redirect_uris,
                        },
                        first_party,
                    },
                )?;
                super::audit::record(conn, &[event], &ctx)?;
                Ok::<_, store::StoreError>(row)
            })
        })
        .await;
    match result {
        Err(e) if e.is_unique_violation() => Err(AuthError::Conflict(
            "a client with this client_id already exists".to_owned(),
        )),
        other => {
            let row = other?;
            // An id looked up (and remembered as unknown) a moment ago exists now.
            tessera.clients.forget(&row.client_id);
            Ok((row, secret))
        }
    }
}

/// One client, as stored (fresh from the database, not the few-second cache).
#[tracing::instrument(name = "clients.find", level = "debug", skip_all, fields(%client_id), err(level = "debug"))]
pub(crate) async fn find(tessera: &Tessera, client_id: &str) -> Result<ClientRow, AuthError> {
    let id = client_id.to_owned();
    tessera
        .db
        .run(move |conn| store::clients::find(conn, &id))
        .await?
        .ok_or_else(|| AuthError::NotFound("no such client".to_owned()))
}

/// Clients by id; `after` is the last id of the previous page. The admin API and
/// `tessera client list` read them through here.
#[tracing::instrument(name = "clients.list", level = "debug", skip_all, err(level = "debug"))]
pub async fn list(
    tessera: &Tessera,
    after: Option<ClientId>,
    limit: i64,
) -> Result<Vec<ClientRow>, AuthError> {
    Ok(tessera
        .db
        .run(move |conn| store::clients::list(conn, after.as_ref().map(|c| c.as_str()), limit))
        .await?)
}

/// Updates what a client may do. Its type (public/confidential) never changes.
#[tracing::instrument(name = "clients.update", level = "debug", skip_all, fields(%client_id), err(level = "debug"))]
pub(crate) async fn update(
    tessera: &Tessera,
    client_id: &str,
    spec: ClientSpec,
    actor: &super::Actor,
) -> Result<ClientRow, AuthError> {
    if spec.client_id.is_some() || spec.confidential.is_some() {
        return Err(invalid("client_id and confidential cannot be changed"));
    }
    let id = client_id.to_owned();
    let current = tessera
        .db
        .run({
            let id = id.clone();
            move |conn| store::clients::find(conn, &id)
        })
        .await?
        .ok_or_else(|| AuthError::NotFound("no such client".to_owned()))?;
    let changes = store::clients::ClientChanges {
        name: spec.name.as_deref().map(check_name).transpose()?,
        grant_types: spec
            .grant_types
            .as_deref()
            .map(|g| {
                let needs_confidential = g
                    .iter()
                    .filter_map(|g| GrantType::parse(g))
                    .find(|g| g.needs_confidential_client());
                if let (false, Some(grant)) = (current.confidential, needs_confidential) {
                    // The request is fine; this client's type is what it conflicts with.
                    return Err(AuthError::Conflict(format!(
                        "this client is public; only confidential clients may use {grant}"
                    )));
                }
                check_grant_types(g, current.confidential)
            })
            .transpose()?,
        scopes: spec.scopes.as_deref().map(check_scopes).transpose()?,
        audiences: spec.audiences.as_deref().map(check_audiences).transpose()?,
        access_token_ttl_seconds: spec
            .access_token_ttl_seconds
            .map(|ttl| ttl.map(check_ttl).transpose())
            .transpose()?,
        browser_mode: spec.browser_mode,
        introspect_any: spec.introspect_any,
        redirects: redirects_changed(&current, &spec)?,
        first_party: spec.first_party,
    };
    // The client as it will be, judged whole: a change of one field can break a rule
    // that ties it to another.
    if let Err(AuthError::InvalidRequest(why)) = check_grant_needs(
        changes.grant_types.as_ref().unwrap_or(&current.grant_types),
        &changes
            .redirects
            .as_ref()
            .unwrap_or(&current.redirects)
            .redirect_uris,
    ) {
        return Err(AuthError::Conflict(why));
    }
    if spec.introspect_any == Some(true) && !current.confidential {
        // As with client_credentials: the request is fine, the client's type is not.
        return Err(AuthError::Conflict(
            "this client is public; only confidential clients may introspect, so only \
             they may have introspect_any"
                .to_owned(),
        ));
    }
    let event = actor
        .event(super::audit::action::CLIENT_UPDATED)
        .client(&id);
    let ctx = actor.ctx.clone();
    let row = tessera
        .db
        .run(move |conn| {
            use diesel::Connection;
            conn.transaction(|conn| {
                let row = store::clients::update(conn, &id, &changes)?
                    .ok_or_else(|| AuthError::NotFound("no such client".to_owned()))?;
                super::audit::record(conn, &[event], &ctx)?;
                Ok::<_, AuthError>(row)
            })
        })
        .await?;
    tessera.clients.forget(client_id);
    Ok(row)
}

/// Issues a new secret; the old one keeps working for `overlap`.
#[tracing::instrument(name = "clients.rotate_secret", level = "debug", skip_all, fields(%client_id), err(level = "debug"))]
pub(crate) async fn rotate_secret(
    tessera: &Tessera,
    client_id: &str,
    overlap: std::time::Duration,
    actor: &super::Actor,
) -> Result<(ClientRow, SecretString), AuthError> {
    let (secret, hash) = generate_secret();
    let id = client_id.to_owned();
    let event = actor
        .event(super::audit::action::CLIENT_SECRET_ROTATED)
        .client(&id)
        .detail("overlap_seconds", overlap.as_secs());
    let ctx = actor.ctx.clone();
    let row = tessera
        .db
        .run(move |conn| {
            use diesel::Connection;
            conn.transaction(|conn| {
                let Some(row) =
                    store::clients::rotate_secret(conn, &id, &hash, overlap.as_secs_f64())?
                else {
                    // A public client exists but has no secret: its type is what the
                    // request conflicts with, as for client_credentials.
                    return Err(match store::clients::find(conn, &id)? {
                        Some(_) => AuthError::Conflict(
                            "this client is public; only confidential clients have a secret"
                                .to_owned(),
                        ),
                        None => AuthError::NotFound("no such client".to_owned()),
                    });
                };
                super::audit::record(conn, &[event], &ctx)?;
                Ok::<_, AuthError>(row)
            })
        })
        .await?;
    tessera.clients.forget(client_id);
    Ok((row, secret))
}

/// Deletes a client: its sessions go with it, and every access token minted through it
/// is denied at once.
#[tracing::instrument(name = "clients.delete", level = "debug", skip_all, fields(%client_id), err(level = "debug"))]
pub(crate) async fn delete(
    tessera: &Tessera,
    client_id: &str,
    actor: &super::Actor,
) -> Result<(), AuthError> {
    let id = client_id.to_owned();
    super::revocation::revoke_with(
        tessera,
        move |conn| {
            if !store::clients::delete(conn, &id)? {
                return Err(AuthError::NotFound("no such client".to_owned()));
            }
            Ok(((), vec![super::revocation::Target::Client(id)]))
        },
        "client_deleted",
        &actor.label(),
        vec![actor
            .event(super::audit::action::CLIENT_DELETED)
            .client(client_id)],
        &actor.ctx,
    )
    .await?;
    tessera.clients.forget(client_id);
    Ok(())
}
