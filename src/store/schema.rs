// @generated automatically by Diesel CLI.

diesel::table! {
    audit_log (id) {
        id -> Uuid,
        at -> Timestamptz,
        action -> Text,
        actor_id -> Nullable<Uuid>,
        user_id -> Nullable<Uuid>,
        client_id -> Nullable<Text>,
        session_id -> Nullable<Uuid>,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        details -> Jsonb,
    }
}

diesel::table! {
    authorization_codes (code_hash) {
        code_hash -> Bytea,
        client_id -> Text,
        user_id -> Uuid,
        browser_session_id -> Uuid,
        redirect_uri -> Text,
        scope -> Text,
        code_challenge -> Nullable<Text>,
        nonce -> Nullable<Text>,
        auth_time -> Timestamptz,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
        session_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    browser_sessions (id) {
        id -> Uuid,
        secret_hash -> Bytea,
        user_id -> Uuid,
        auth_time -> Timestamptz,
        expires_at -> Timestamptz,
        ended_at -> Nullable<Timestamptz>,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
    }
}

diesel::table! {
    clients (client_id) {
        client_id -> Text,
        name -> Text,
        confidential -> Bool,
        secret_hash -> Nullable<Bytea>,
        grant_types -> Array<Text>,
        scopes -> Array<Text>,
        audiences -> Array<Text>,
        access_token_ttl_seconds -> Nullable<Int4>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        previous_secret_hash -> Nullable<Bytea>,
        previous_secret_expires_at -> Nullable<Timestamptz>,
        browser_mode -> Bool,
        introspect_any -> Bool,
        redirects -> Jsonb,
        first_party -> Bool,
    }
}

diesel::table! {
    consents (user_id, client_id) {
        user_id -> Uuid,
        client_id -> Text,
        scopes -> Array<Text>,
        granted_at -> Timestamptz,
    }
}

diesel::table! {
    denylist_generation (singleton) {
        singleton -> Bool,
        generation -> Int8,
    }
}

diesel::table! {
    revocations (id) {
        id -> Uuid,
        kind -> Text,
        value -> Text,
        not_before -> Nullable<Timestamptz>,
        reason -> Text,
        revoked_by -> Text,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        synced_at -> Nullable<Timestamptz>,
        generation -> Int8,
    }
}

diesel::table! {
    sessions (id) {
        id -> Uuid,
        user_id -> Uuid,
        client_id -> Text,
        scope -> Text,
        created_at -> Timestamptz,
        last_used_at -> Timestamptz,
        expires_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        revoked_reason -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        ip -> Nullable<Text>,
        generation -> Int8,
        rotated_at -> Nullable<Timestamptz>,
        refresh_expires_at -> Timestamptz,
        username -> Text,
        roles -> Array<Text>,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        algorithm -> Text,
        state -> Text,
        public_jwk -> Jsonb,
        private_key_sealed -> Bytea,
        created_at -> Timestamptz,
        activated_at -> Nullable<Timestamptz>,
        retired_at -> Nullable<Timestamptz>,
        publish_until -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        username -> Text,
        password_hash -> Text,
        roles -> Array<Text>,
        disabled -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        password_changed_at -> Timestamptz,
    }
}

diesel::joinable!(authorization_codes -> browser_sessions (browser_session_id));
diesel::joinable!(authorization_codes -> clients (client_id));
diesel::joinable!(authorization_codes -> users (user_id));
diesel::joinable!(browser_sessions -> users (user_id));
diesel::joinable!(consents -> clients (client_id));
diesel::joinable!(consents -> users (user_id));
diesel::joinable!(sessions -> clients (client_id));
diesel::joinable!(sessions -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    audit_log,
    authorization_codes,
    browser_sessions,
    clients,
    consents,
    denylist_generation,
    revocations,
    sessions,
    signing_keys,
    users,
);
