//! The one Diesel schema both backends share. Written by hand to stay inside the
//! type subset SQLite and PostgreSQL have in common (Text, BigInt, Bool, Timestamp).

diesel::table! {
    organizations (id) {
        id -> Text,
        slug -> Text,
        name -> Text,
        default_currency -> Text,
        timezone -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        email -> Text,
        name -> Text,
        password_hash -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    memberships (id) {
        id -> Text,
        organization_id -> Text,
        user_id -> Text,
        role -> Text,
        is_active -> Bool,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> Text,
        organization_id -> Text,
        user_id -> Text,
        name -> Text,
        token_hash -> Text,
        token_prefix -> Text,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        organization_id -> Text,
        user_id -> Text,
        ip -> Text,
        user_agent -> Text,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    login_failures (id) {
        id -> Text,
        email -> Text,
        ip -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    casbin_rules (id) {
        id -> Text,
        ptype -> Text,
        v0 -> Text,
        v1 -> Text,
        v2 -> Text,
        v3 -> Text,
        v4 -> Text,
        v5 -> Text,
    }
}

diesel::table! {
    policy_revision (id) {
        id -> Integer,
        revision -> BigInt,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Text,
        organization_id -> Text,
        actor_user_id -> Nullable<Text>,
        actor_label -> Text,
        action -> Text,
        resource_type -> Text,
        resource_id -> Nullable<Text>,
        changes -> Text,
        ip -> Text,
        request_id -> Text,
        created_at -> Timestamp,
    }
}

diesel::joinable!(memberships -> organizations (organization_id));
diesel::joinable!(memberships -> users (user_id));
diesel::joinable!(api_tokens -> organizations (organization_id));
diesel::joinable!(api_tokens -> users (user_id));
diesel::joinable!(sessions -> organizations (organization_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(audit_log -> organizations (organization_id));

diesel::allow_tables_to_appear_in_same_query!(
    organizations,
    users,
    memberships,
    api_tokens,
    sessions,
    login_failures,
    casbin_rules,
    policy_revision,
    audit_log,
);
