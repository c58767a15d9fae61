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
        plugin_signatures_required -> Bool,
        mail_tracking -> Bool,
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
        time_zone -> Text,
        locale -> Text,
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
        scopes -> Text,
        expires_at -> Nullable<Timestamp>,
        rate_limit -> Integer,
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
    password_resets (id) {
        id -> Text,
        user_id -> Nullable<Text>,
        email -> Text,
        ip -> Text,
        token_hash -> Nullable<Text>,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
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
        phone_key -> Nullable<Text>,
        name_key -> Nullable<Text>,
        website_key -> Nullable<Text>,
        last_contact_at -> Nullable<Timestamp>,
        tag_set -> Text,
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
        searchable -> Bool,
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

diesel::table! {
    pipelines (id) {
        id -> Text,
        organization_id -> Text,
        name -> Text,
        position -> Integer,
        rotting_days -> Nullable<Integer>,
        archived_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    pipeline_stages (id) {
        id -> Text,
        organization_id -> Text,
        pipeline_id -> Text,
        name -> Text,
        position -> Integer,
        probability -> Integer,
        kind -> Text,
        is_active -> Bool,
        color -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    loss_reasons (id) {
        id -> Text,
        organization_id -> Text,
        name -> Text,
        is_active -> Bool,
        created_at -> Timestamp,
    }
}

diesel::table! {
    opportunities (id) {
        id -> Text,
        organization_id -> Text,
        pipeline_id -> Text,
        stage_id -> Text,
        client_id -> Text,
        name -> Text,
        description -> Text,
        value_cents -> BigInt,
        currency -> Text,
        probability -> Integer,
        probability_set -> Bool,
        expected_close -> Nullable<Date>,
        actual_close -> Nullable<Date>,
        status -> Text,
        assigned_to -> Nullable<Text>,
        source -> Nullable<Text>,
        competitors -> Text,
        loss_reason -> Nullable<Text>,
        custom_fields -> Text,
        version -> BigInt,
        stage_entered_at -> Timestamp,
        created_by -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        deleted_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    opportunity_rollup (organization_id, pipeline_id, stage_id, assigned_to, currency, status, close_day) {
        organization_id -> Text,
        pipeline_id -> Text,
        stage_id -> Text,
        assigned_to -> Text,
        currency -> Text,
        status -> Text,
        close_day -> Text,
        deals -> BigInt,
        value_cents -> BigInt,
        weighted_x100 -> BigInt,
        commit_cents -> BigInt,
    }
}

diesel::table! {
    opportunity_stage_history (id) {
        id -> Text,
        organization_id -> Text,
        opportunity_id -> Text,
        from_stage_id -> Nullable<Text>,
        to_stage_id -> Text,
        from_probability -> Nullable<Integer>,
        to_probability -> Integer,
        moved_by -> Nullable<Text>,
        moved_at -> Timestamp,
    }
}

diesel::table! {
    opportunity_contacts (opportunity_id, client_id) {
        opportunity_id -> Text,
        client_id -> Text,
        organization_id -> Text,
        role -> Text,
    }
}

diesel::table! {
    quotes (id) {
        id -> Text,
        organization_id -> Text,
        opportunity_id -> Text,
        number -> Integer,
        status -> Text,
        currency -> Text,
        valid_until -> Nullable<Date>,
        terms -> Text,
        subtotal_cents -> BigInt,
        discount_cents -> BigInt,
        tax_cents -> BigInt,
        total_cents -> BigInt,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    quote_lines (id) {
        id -> Text,
        quote_id -> Text,
        organization_id -> Text,
        position -> Integer,
        name -> Text,
        quantity -> Text,
        unit_price_cents -> BigInt,
        discount_percent -> Text,
        tax_rate -> Text,
        total_cents -> BigInt,
    }
}

diesel::table! {
    contracts (id) {
        id -> Text,
        organization_id -> Text,
        client_id -> Text,
        opportunity_id -> Nullable<Text>,
        name -> Text,
        start_date -> Date,
        end_date -> Date,
        value_cents -> BigInt,
        currency -> Text,
        renewal_terms -> Text,
        notice_days -> Integer,
        status -> Text,
        document_name -> Nullable<Text>,
        document_type -> Nullable<Text>,
        document -> Nullable<Binary>,
        renewal_opportunity_id -> Nullable<Text>,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    plugin_installs (id) {
        id -> Text,
        organization_id -> Text,
        plugin_id -> Text,
        name -> Text,
        version -> Text,
        vendor -> Text,
        manifest -> Text,
        wasm -> Binary,
        wasm_sha256 -> Text,
        granted -> Text,
        settings -> Text,
        enabled -> Bool,
        calls -> BigInt,
        failures -> BigInt,
        consecutive_failures -> Integer,
        last_error -> Nullable<Text>,
        disabled_reason -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        approved_hosts -> Text,
        signer_key -> Nullable<Text>,
    }
}

diesel::table! {
    plugin_storage (organization_id, plugin_id, key) {
        organization_id -> Text,
        plugin_id -> Text,
        key -> Text,
        value -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    plugin_trusted_keys (id) {
        id -> Text,
        organization_id -> Text,
        name -> Text,
        public_key -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    search_outbox (id) {
        id -> BigInt,
        organization_id -> Text,
        entity -> Text,
        entity_id -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    interactions (id) {
        id -> Text,
        organization_id -> Text,
        client_id -> Text,
        opportunity_id -> Nullable<Text>,
        user_id -> Nullable<Text>,
        kind -> Text,
        subject -> Text,
        content -> Text,
        direction -> Nullable<Text>,
        status -> Text,
        scheduled_at -> Nullable<Timestamp>,
        completed_at -> Nullable<Timestamp>,
        occurred_at -> Timestamp,
        outcome -> Nullable<Text>,
        duration_minutes -> Nullable<Integer>,
        metadata -> Text,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        deleted_at -> Nullable<Timestamp>,
        due_at -> Nullable<Timestamp>,
        priority -> Nullable<Text>,
        assignee_id -> Nullable<Text>,
        remind_at -> Nullable<Timestamp>,
        reminded_at -> Nullable<Timestamp>,
        location -> Nullable<Text>,
        external_id -> Nullable<Text>,
    }
}

diesel::table! {
    interaction_participants (id) {
        id -> Text,
        interaction_id -> Text,
        organization_id -> Text,
        client_id -> Nullable<Text>,
        user_id -> Nullable<Text>,
    }
}

diesel::table! {
    contact_preferences (client_id) {
        client_id -> Text,
        organization_id -> Text,
        channels -> Text,
        do_not_contact -> Bool,
        preferred_channel -> Nullable<Text>,
        preferred_window -> Nullable<Text>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    calendar_feeds (token) {
        token -> Text,
        user_id -> Text,
        organization_id -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    notifications (id) {
        id -> Text,
        organization_id -> Text,
        user_id -> Text,
        kind -> Text,
        title -> Text,
        body -> Text,
        link -> Nullable<Text>,
        read_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    mailboxes (id) {
        id -> Text,
        organization_id -> Text,
        user_id -> Nullable<Text>,
        name -> Text,
        address -> Text,
        username -> Text,
        secret -> Text,
        imap_host -> Text,
        imap_port -> Integer,
        imap_security -> Text,
        smtp_host -> Text,
        smtp_port -> Integer,
        smtp_security -> Text,
        sent_folder -> Text,
        sync_enabled -> Bool,
        last_sync_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    mail_folders (mailbox_id, folder) {
        mailbox_id -> Text,
        folder -> Text,
        uid_validity -> BigInt,
        last_uid -> BigInt,
    }
}

diesel::table! {
    mail_messages (id) {
        id -> Text,
        organization_id -> Text,
        mailbox_id -> Nullable<Text>,
        user_id -> Nullable<Text>,
        direction -> Text,
        status -> Text,
        message_id -> Text,
        in_reply_to -> Nullable<Text>,
        thread_id -> Text,
        from_address -> Text,
        from_name -> Text,
        to_addresses -> Text,
        cc_addresses -> Text,
        bcc_addresses -> Text,
        subject -> Text,
        body_text -> Text,
        matched -> Bool,
        error -> Nullable<Text>,
        attempts -> Integer,
        next_attempt_at -> Nullable<Timestamp>,
        occurred_at -> Timestamp,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        body_html -> Nullable<Text>,
        list_unsubscribe -> Nullable<Text>,
        opportunity_id -> Nullable<Text>,
        latest -> Bool,
    }
}

diesel::table! {
    message_templates (id) {
        id -> Text,
        organization_id -> Text,
        name -> Text,
        subject -> Text,
        body -> Text,
        version -> Integer,
        created_by -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        kind -> Text,
    }
}

diesel::table! {
    message_template_versions (template_id, version) {
        template_id -> Text,
        version -> Integer,
        subject -> Text,
        body -> Text,
        created_by -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    sends (id) {
        id -> Text,
        organization_id -> Text,
        name -> Text,
        template_id -> Nullable<Text>,
        template_version -> Integer,
        subject -> Text,
        body -> Text,
        mailbox_id -> Nullable<Text>,
        created_by -> Nullable<Text>,
        audience -> Text,
        status -> Text,
        per_minute -> Integer,
        scheduled_at -> Timestamp,
        total -> Integer,
        excluded -> Integer,
        window_started_at -> Timestamp,
        window_count -> Integer,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    mail_attachments (id) {
        id -> Text,
        organization_id -> Text,
        mail_message_id -> Text,
        file_name -> Text,
        content_type -> Text,
        size_bytes -> BigInt,
        storage_key -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    webhook_subscriptions (id) {
        id -> Text,
        organization_id -> Text,
        url -> Text,
        description -> Text,
        events -> Text,
        secret -> Text,
        previous_secret -> Nullable<Text>,
        previous_until -> Nullable<Timestamp>,
        active -> Bool,
        allow_private -> Bool,
        disabled_reason -> Nullable<Text>,
        created_by -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Text,
        organization_id -> Text,
        subscription_id -> Text,
        event_type -> Text,
        record_id -> Text,
        payload -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Nullable<Timestamp>,
        response_status -> Nullable<Integer>,
        response_excerpt -> Nullable<Text>,
        duration_ms -> Nullable<Integer>,
        error -> Nullable<Text>,
        created_at -> Timestamp,
        delivered_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    workflows (id) {
        id -> Text,
        organization_id -> Text,
        name -> Text,
        enabled -> Bool,
        version -> Integer,
        trigger_type -> Text,
        hook_hash -> Nullable<Text>,
        last_assignee -> Nullable<Text>,
        scanned_until -> Nullable<Timestamp>,
        created_by -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        deleted_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    workflow_versions (id) {
        id -> Text,
        organization_id -> Text,
        workflow_id -> Text,
        version -> Integer,
        definition -> Text,
        created_by -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    workflow_runs (id) {
        id -> Text,
        organization_id -> Text,
        workflow_id -> Text,
        version_id -> Text,
        record_type -> Text,
        record_id -> Nullable<Text>,
        client_id -> Nullable<Text>,
        event -> Text,
        depth -> Integer,
        dedupe_key -> Nullable<Text>,
        status -> Text,
        step -> Integer,
        attempts -> Integer,
        next_at -> Nullable<Timestamp>,
        lease_until -> Nullable<Timestamp>,
        error -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    workflow_steps (id) {
        id -> Text,
        organization_id -> Text,
        run_id -> Text,
        position -> Integer,
        kind -> Text,
        status -> Text,
        outcome -> Text,
        attempts -> Integer,
        finished_at -> Timestamp,
    }
}

diesel::table! {
    mail_bounces (organization_id, address) {
        organization_id -> Text,
        address -> Text,
        reason -> Text,
        bounced_at -> Timestamp,
    }
}

diesel::table! {
    send_recipients (id) {
        id -> Text,
        send_id -> Text,
        organization_id -> Text,
        client_id -> Text,
        address -> Text,
        status -> Text,
        reason -> Nullable<Text>,
        mail_message_id -> Nullable<Text>,
        opened_at -> Nullable<Timestamp>,
        clicked_at -> Nullable<Timestamp>,
        unsubscribed_at -> Nullable<Timestamp>,
        bounced_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    mail_message_clients (mail_message_id, client_id) {
        mail_message_id -> Text,
        client_id -> Text,
        organization_id -> Text,
        interaction_id -> Nullable<Text>,
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
diesel::joinable!(pipeline_stages -> pipelines (pipeline_id));
diesel::joinable!(opportunities -> clients (client_id));
diesel::joinable!(quote_lines -> quotes (quote_id));

diesel::table! {
    import_batches (id) {
        id -> Text,
        organization_id -> Text,
        user_id -> Nullable<Text>,
        file_name -> Text,
        preset -> Text,
        kind -> Text,
        mode -> Text,
        mapping -> Text,
        status -> Text,
        total_rows -> Integer,
        processed_rows -> Integer,
        created_count -> Integer,
        updated_count -> Integer,
        skipped_count -> Integer,
        failed_count -> Integer,
        errors -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
        file_offset -> BigInt,
    }
}

diesel::table! {
    import_changes (id) {
        id -> Text,
        batch_id -> Text,
        organization_id -> Text,
        seq -> Integer,
        entity -> Text,
        record_id -> Text,
        action -> Text,
        before -> Nullable<Text>,
    }
}

diesel::table! {
    external_refs (organization_id, source, entity, external_id) {
        organization_id -> Text,
        source -> Text,
        entity -> Text,
        external_id -> Text,
        record_id -> Text,
        batch_id -> Nullable<Text>,
    }
}

diesel::table! {
    attachments (id) {
        id -> Text,
        organization_id -> Text,
        client_id -> Text,
        file_name -> Text,
        content_type -> Text,
        size_bytes -> BigInt,
        sha256 -> Text,
        storage_key -> Text,
        sensitive -> Bool,
        uploaded_by -> Nullable<Text>,
        created_at -> Timestamp,
        deleted_at -> Nullable<Timestamp>,
        opportunity_id -> Nullable<Text>,
        interaction_id -> Nullable<Text>,
    }
}

diesel::table! {
    duplicate_scans (organization_id) {
        organization_id -> Text,
        requested_at -> Nullable<Timestamp>,
        started_at -> Nullable<Timestamp>,
        finished_at -> Nullable<Timestamp>,
        scanned_clients -> BigInt,
        group_count -> Integer,
    }
}

diesel::table! {
    duplicate_groups (id) {
        id -> Text,
        organization_id -> Text,
        reason -> Text,
        client_ids -> Text,
        found_at -> Timestamp,
    }
}

diesel::table! {
    invitations (id) {
        id -> Text,
        organization_id -> Text,
        user_id -> Text,
        role -> Text,
        invited_by -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::joinable!(invitations -> organizations (organization_id));

diesel::table! {
    plugin_events (id) {
        id -> Text,
        organization_id -> Text,
        install_id -> Text,
        hook -> Text,
        input -> Text,
        created_at -> Timestamp,
        claimed_until -> Nullable<Timestamp>,
        depth -> Integer,
    }
}

diesel::table! {
    segments (id) {
        id -> Text,
        organization_id -> Text,
        name -> Text,
        description -> Text,
        criteria -> Text,
        version -> BigInt,
        member_count -> BigInt,
        evaluated_at -> Nullable<Timestamp>,
        created_by -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        lease_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    client_counts (organization_id, owner, status, slot) {
        organization_id -> Text,
        owner -> Text,
        status -> Text,
        n -> BigInt,
        slot -> SmallInt,
    }
}

diesel::table! {
    risk_counts (organization_id, owner) {
        organization_id -> Text,
        owner -> Text,
        n -> BigInt,
    }
}

diesel::table! {
    activity_daily (organization_id, day, user_id, kind, status) {
        organization_id -> Text,
        day -> Date,
        user_id -> Text,
        kind -> Text,
        status -> Text,
        n -> BigInt,
    }
}

diesel::table! {
    segment_members (segment_id, client_id) {
        segment_id -> Text,
        client_id -> Text,
        organization_id -> Text,
        entered_at -> Timestamp,
    }
}

diesel::table! {
    segment_events (id) {
        id -> Text,
        organization_id -> Text,
        segment_id -> Text,
        client_id -> Text,
        kind -> Text,
        at -> Timestamp,
    }
}

diesel::table! {
    segment_dirty (id) {
        id -> Text,
        organization_id -> Text,
        client_id -> Text,
    }
}

diesel::table! {
    segment_sizes (segment_id, day) {
        segment_id -> Text,
        day -> Date,
        members -> BigInt,
    }
}

diesel::table! {
    client_scores (client_id) {
        client_id -> Text,
        organization_id -> Text,
        engagement -> Integer,
        lifetime_value_cents -> BigInt,
        realised_cents -> BigInt,
        currency -> Text,
        churn_risk -> Integer,
        factors -> Text,
        computed_at -> Timestamp,
        inactive -> Bool,
        owner -> Text,
    }
}

diesel::table! {
    score_runs (organization_id) {
        organization_id -> Text,
        started_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
        clients -> BigInt,
    }
}

diesel::table! {
    reports (id) {
        id -> Text,
        organization_id -> Text,
        name -> Text,
        description -> Text,
        definition -> Text,
        shared_with -> Nullable<Text>,
        created_by -> Nullable<Text>,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    dashboards (id) {
        id -> Text,
        organization_id -> Text,
        name -> Text,
        tiles -> Text,
        shared_with -> Nullable<Text>,
        created_by -> Nullable<Text>,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    report_schedules (id) {
        id -> Text,
        organization_id -> Text,
        dashboard_id -> Text,
        recipients -> Text,
        cadence -> Text,
        day -> Integer,
        hour -> Integer,
        next_run_at -> Timestamp,
        last_run_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        created_by -> Nullable<Text>,
        created_at -> Timestamp,
        time_zone -> Text,
    }
}

diesel::table! {
    churn_models (organization_id) {
        organization_id -> Text,
        model -> Nullable<Text>,
        evaluation -> Text,
        trained_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    churn_models,
    reports,
    dashboards,
    report_schedules,
    organizations,
    invitations,
    plugin_events,
    duplicate_scans,
    duplicate_groups,
    users,
    memberships,
    api_tokens,
    sessions,
    login_failures,
    password_resets,
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
    pipelines,
    pipeline_stages,
    loss_reasons,
    opportunities,
    opportunity_stage_history,
    opportunity_rollup,
    opportunity_contacts,
    quotes,
    quote_lines,
    contracts,
    plugin_installs,
    plugin_storage,
    plugin_trusted_keys,
    notifications,
    search_outbox,
    interactions,
    interaction_participants,
    contact_preferences,
    calendar_feeds,
    import_batches,
    import_changes,
    external_refs,
    attachments,
    mailboxes,
    mail_folders,
    mail_messages,
    mail_message_clients,
    message_templates,
    message_template_versions,
    sends,
    send_recipients,
    mail_bounces,
    mail_attachments,
    webhook_subscriptions,
    webhook_deliveries,
    workflows,
    workflow_versions,
    workflow_runs,
    workflow_steps,
    segments,
    segment_members,
    segment_events,
    segment_dirty,
    segment_sizes,
    client_scores,
    score_runs,
    activity_daily,
    client_counts,
    risk_counts,
);
