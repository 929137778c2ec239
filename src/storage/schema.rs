//! Table definitions, written by hand with types that both backends share
//! (diesel's MultiConnection supports no Timestamptz, Jsonb or arrays).

diesel::table! {
    scopes (name) {
        name -> Text,
        parent -> Nullable<Text>,
        position -> Integer,
        alias -> Nullable<Text>,
        short_description -> Text,
        description -> Nullable<Text>,
        visibility -> Text,
        default_scope -> Bool,
        user_authorization_required -> Bool,
        access_duration_days -> Integer,
        max_access_count -> Integer,
        max_accesses_per_day -> Integer,
        security_level -> Text,
        auth_types -> Text,
        operations -> Text,
        bank_level -> Bool,
        parameterised -> Bool,
    }
}

diesel::table! {
    registry_version (id) {
        id -> Integer,
        version -> BigInt,
    }
}

diesel::table! {
    clients (client_id) {
        client_id -> Text,
        name -> Text,
        confidential -> Bool,
        secret_hash -> Nullable<Text>,
        redirect_uris -> Text,
        grant_types -> Text,
        security_level -> Text,
        token_format -> Text,
        can_introspect -> Bool,
        admin -> Bool,
        created_at -> Timestamp,
        token_endpoint_auth_method -> Text,
        jwks -> Nullable<Text>,
        require_pushed_authorization_requests -> Bool,
        dpop_bound_access_tokens -> Bool,
    }
}

diesel::table! {
    client_scopes (id) {
        id -> BigInt,
        client_id -> Text,
        scope_name -> Text,
        bank_id -> Text,
        assigned_at -> Timestamp,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        password_hash -> Text,
        display_name -> Nullable<Text>,
        created_at -> Timestamp,
        admin -> Bool,
        disabled_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    consents (id) {
        id -> Text,
        subject -> Text,
        user_id -> Nullable<Text>,
        client_id -> Text,
        is_default -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    grants (id) {
        id -> BigInt,
        consent_id -> Text,
        scope_name -> Text,
        scope -> Text,
        granted_at -> Timestamp,
        access_count -> BigInt,
        counted_day -> Nullable<Text>,
        day_count -> BigInt,
    }
}

diesel::table! {
    refresh_families (id) {
        id -> Text,
        client_id -> Text,
        subject -> Text,
        user_id -> Nullable<Text>,
        scope -> Text,
        created_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
        consent_id -> Nullable<Text>,
        dpop_jkt -> Nullable<Text>,
    }
}

diesel::table! {
    authorization_codes (code_hash) {
        code_hash -> Text,
        client_id -> Text,
        user_id -> Text,
        redirect_uri -> Text,
        scope -> Text,
        extensions -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        family_id -> Nullable<Text>,
        consent_id -> Nullable<Text>,
    }
}

diesel::table! {
    access_tokens (jti) {
        jti -> Text,
        token_hash -> Nullable<Text>,
        format -> Text,
        client_id -> Text,
        subject -> Text,
        user_id -> Nullable<Text>,
        scope -> Text,
        family_id -> Nullable<Text>,
        issued_at -> Timestamp,
        expires_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
        consent_id -> Nullable<Text>,
        dpop_jkt -> Nullable<Text>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Text,
        family_id -> Text,
        scope -> Text,
        issued_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        algorithm -> Text,
        public_key_pem -> Text,
        created_at -> Timestamp,
        retired_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    events (id) {
        id -> BigInt,
        at -> Timestamp,
        event_type -> Text,
        actor -> Text,
        client_id -> Nullable<Text>,
        username -> Nullable<Text>,
        scope -> Nullable<Text>,
        detail -> Text,
    }
}

diesel::table! {
    sessions (id_hash) {
        id_hash -> Text,
        user_id -> Text,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
    }
}

diesel::table! {
    login_failures (id) {
        id -> BigInt,
        username -> Text,
        address -> Text,
        failed_at -> Timestamp,
    }
}

diesel::table! {
    webhooks (id) {
        id -> BigInt,
        url -> Text,
        secret -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    webhook_subscriptions (webhook_id, event_type) {
        webhook_id -> BigInt,
        event_type -> Text,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> BigInt,
        webhook_id -> BigInt,
        event_id -> BigInt,
        state -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        last_status -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        delivered_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    webhook_attempts (id) {
        id -> BigInt,
        delivery_id -> BigInt,
        attempted_at -> Timestamp,
        status -> Nullable<Integer>,
        error -> Nullable<Text>,
    }
}

diesel::joinable!(client_scopes -> clients (client_id));
diesel::joinable!(client_scopes -> scopes (scope_name));
diesel::joinable!(grants -> consents (consent_id));
diesel::joinable!(consents -> clients (client_id));
diesel::joinable!(grants -> scopes (scope_name));
diesel::joinable!(refresh_tokens -> refresh_families (family_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(webhook_subscriptions -> webhooks (webhook_id));
diesel::joinable!(webhook_deliveries -> webhooks (webhook_id));
diesel::joinable!(webhook_deliveries -> events (event_id));
diesel::joinable!(webhook_attempts -> webhook_deliveries (delivery_id));

diesel::table! {
    pushed_requests (handle_hash) {
        handle_hash -> Text,
        client_id -> Text,
        parameters -> Text,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    used_jtis (jti_hash) {
        jti_hash -> Text,
        expires_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    scopes,
    registry_version,
    clients,
    client_scopes,
    users,
    consents,
    grants,
    refresh_families,
    authorization_codes,
    access_tokens,
    refresh_tokens,
    signing_keys,
    events,
    sessions,
    login_failures,
    webhooks,
    webhook_subscriptions,
    webhook_deliveries,
    webhook_attempts,
    pushed_requests,
    used_jtis,
);
