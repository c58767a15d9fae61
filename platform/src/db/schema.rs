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

diesel::table! {
    clients (id) {
        id -> Text,
        organization_id -> Text,
        kind -> Text,
        first_name -> Nullable<Text>,
        last_name -> Nullable<Text>,
        company_name -> Nullable<Text>,
        display_name -> Text,
        sort_name -> Text,
        email -> Nullable<Text>,
        phone -> Nullable<Text>,
        street -> Nullable<Text>,
        city -> Nullable<Text>,
        region -> Nullable<Text>,
        postal_code -> Nullable<Text>,
        country -> Nullable<Text>,
        website -> Nullable<Text>,
        industry -> Nullable<Text>,
        source -> Nullable<Text>,
        status -> Text,
        assigned_to -> Nullable<Text>,
        employer_id -> Nullable<Text>,
        custom_fields -> Text,
        version -> BigInt,
        created_by -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        deleted_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    tags (id) {
        id -> Text,
        organization_id -> Text,
        name -> Text,
        color -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    client_tags (client_id, tag_id) {
        client_id -> Text,
        tag_id -> Text,
        organization_id -> Text,
    }
}

diesel::table! {
    client_relations (id) {
        id -> Text,
        organization_id -> Text,
        from_client_id -> Text,
        to_client_id -> Text,
        label -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    custom_fields (id) {
        id -> Text,
        organization_id -> Text,
        entity -> Text,
        field_key -> Text,
        label -> Text,
        field_type -> Text,
        required -> Bool,
        options -> Text,
        default_value -> Nullable<Text>,
        help_text -> Text,
        display_group -> Text,
        position -> Integer,
        sensitive -> Bool,
        currency -> Nullable<Text>,
        archived_at -> Nullable<Timestamp>,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    custom_field_values (id) {
        id -> Text,
        organization_id -> Text,
        field_id -> Text,
        record_id -> Text,
        text_value -> Nullable<Text>,
        num_value -> Nullable<BigInt>,
    }
}

diesel::table! {
    saved_views (id) {
        id -> Text,
        organization_id -> Text,
        user_id -> Text,
        entity -> Text,
        name -> Text,
        query -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    idempotency_keys (id) {
        id -> Text,
        organization_id -> Text,
        user_id -> Text,
        idem_key -> Text,
        request_hash -> Text,
        status_code -> Nullable<Integer>,
        response_body -> Text,
        response_headers -> Text,
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
diesel::joinable!(clients -> users (assigned_to));
diesel::joinable!(client_tags -> tags (tag_id));
diesel::joinable!(client_tags -> clients (client_id));
diesel::joinable!(custom_field_values -> custom_fields (field_id));

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
    clients,
    tags,
    client_tags,
    client_relations,
    custom_fields,
    custom_field_values,
    saved_views,
    idempotency_keys,
);
