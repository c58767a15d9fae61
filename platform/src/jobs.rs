//! Background imports: a worker in `serve` runs queued batches chunk by chunk as the user who
//! started them (their policy, their reach), and picks up a batch left half-way by a restart.

use crate::db;
use crate::domain::audit::AuditContext;
use crate::domain::clients::service::Access;
use crate::domain::imports::{self, BatchRow, Env};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// What the starting user may do, as the worker acts for them.
async fn access_of(state: &AppState, batch: &BatchRow) -> AppResult<(AuditContext, Access)> {
    let user = batch
        .user_id
        .clone()
        .ok_or_else(|| AppError::Conflict("The user who started this import is gone.".into()))?;
    let org = batch.organization_id.clone();
    let rev = {
        let p = state.pool.clone();
        db::run(&p, |c| Ok(crate::domain::policy::store::revision(c)?)).await?
    };
    state.authz.refresh(rev).await?;
    let can = |r: &'static str, a: &'static str| {
        let (u, o) = (user.clone(), org.clone());
        async move { state.authz.allows(&u, &o, r, a).await }
    };
    let access = Access {
        user_id: user.clone(),
        oversee: can("client", "oversee").await?,
        read_sensitive: can("sensitive_field", "read").await?,
        write_sensitive: can("sensitive_field", "write").await?,
        create_tags: can("tag", "write").await?,
    };
    let (o, u) = (org.clone(), user.clone());
    let label = db::run(&state.pool, move |c| {
        Ok(crate::domain::orgs::store::find_member(c, &o, &u)?
            .map(|m| m.user.email)
            .unwrap_or_default())
    })
    .await?;
    let ctx = AuditContext {
        org_id: org,
        actor_user_id: Some(user),
        actor_label: label,
        ip: "import".into(),
        request_id: batch.id.clone(),
        import_batch: None,
    };
    Ok((ctx, access))
}

/// Runs one batch to its end (each chunk its own transaction).
pub async fn run_import(state: &AppState, batch_id: &str) -> AppResult<()> {
    let org = {
        let id = batch_id.to_string();
        db::run(&state.pool, move |c| {
            use diesel::prelude::*;
            Ok(crate::db::schema::import_batches::table
                .filter(crate::db::schema::import_batches::id.eq(&id))
                .select(crate::db::schema::import_batches::organization_id)
                .first::<String>(c)?)
        })
        .await?
    };
    loop {
        let (id, o) = (batch_id.to_string(), org.clone());
        let batch = db::run(&state.pool, move |c| imports::get(c, &o, &id)).await?;
        if !matches!(batch.status.as_str(), "queued" | "running") {
            return Ok(());
        }
        let (ctx, access) = access_of(state, &batch).await?;
        let data_dir = state.config.data_dir.clone();
        let currency = {
            let o = org.clone();
            db::run(&state.pool, move |c| {
                Ok(crate::domain::orgs::store::find_org(c, &o)?
                    .map(|x| x.default_currency)
                    .unwrap_or_else(|| "USD".into()))
            })
            .await?
        };
        let second = {
            let (dir, o, id) = (data_dir.clone(), org.clone(), batch_id.to_string());
            db::run(&state.pool, move |c| {
                imports::lanes::second_chunk(c, &dir, &o, &id)
            })
            .await?
        };
        let started = std::sync::Arc::new(imports::lanes::Started::default());
        let lane_run = |lane: Option<(usize, i64)>| {
            let (paired, o, ctx, access, batch, currency, dir, started) = (
                second.is_some(),
                org.clone(),
                ctx.clone(),
                access.clone(),
                batch.clone(),
                currency.clone(),
                data_dir.clone(),
                started.clone(),
            );
            let tell = started.clone();
            async move {
                let run = crate::web::run_with_plugins(state, o, move |c, ext| {
                    let env = Env {
                        ctx: &ctx,
                        access: &access,
                        batch: &batch,
                        external: ext,
                        rules: ext,
                        default_currency: &currency,
                        cache: Default::default(),
                    };
                    let lane = match lane {
                        None if paired => imports::Lane::First(&started),
                        None => imports::Lane::Alone,
                        Some((from, offset)) => imports::Lane::Second {
                            from,
                            offset,
                            started: &started,
                        },
                    };
                    imports::run_lane(c, &dir, &env, &lane)
                });
                let out = run.await;
                // However the first lane ended, the second stops waiting for it.
                if lane.is_none() {
                    tell.set();
                }
                out
            }
        };
        let more = match second {
            None => lane_run(None).await,
            // Two chunks at once on PostgreSQL (`imports::lanes`); a second one that rolled
            // back runs next, alone.
            Some(at) => {
                let (first, second) = tokio::join!(lane_run(None), lane_run(Some(at)));
                first.map(|more| second.unwrap_or(more))
            }
        };
        match more {
            Ok(true) | Err(AppError::Stale(_)) => continue,
            Ok(false) => return Ok(()),
            Err(e) => {
                let (id, o, why) = (batch_id.to_string(), org.clone(), e.to_string());
                db::run(&state.pool, move |c| imports::fail(c, &o, &id, &why)).await?;
                return Err(e);
            }
        }
    }
}

/// Runs every queued or interrupted batch; returns how many it finished.
pub async fn run_pending(state: &AppState) -> AppResult<usize> {
    let pending = db::run(&state.pool, imports::pending).await?;
    let mut n = 0;
    for b in pending {
        match run_import(state, &b.id).await {
            Ok(()) => n += 1,
            Err(e) => tracing::warn!(batch = %b.id, error = %e, "import failed"),
        }
    }
    Ok(n)
}

/// The import worker: looks for work every second for as long as the process runs.
pub fn spawn_imports(state: actix_web::web::Data<AppState>) {
    actix_web::rt::spawn(async move {
        loop {
            if let Err(e) = run_pending(&state).await {
                tracing::warn!(error = %e, "import worker");
            }
            actix_web::rt::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    });
}

/// How long a deleted file stays in the trash before its bytes go.
pub const FILE_TRASH_DAYS: i64 = 30;

/// Empties the file trash of what has been there longer than [`FILE_TRASH_DAYS`]; returns how
/// many files went.
pub async fn empty_file_trash(state: &AppState) -> AppResult<usize> {
    let store = state.blobs.clone();
    let cutoff = crate::db::now() - chrono::Duration::days(FILE_TRASH_DAYS);
    db::run(&state.pool, move |c| {
        crate::domain::attachments::empty_trash(c, store.as_ref(), cutoff)
    })
    .await
}

/// The file-trash worker: once an hour.
pub fn spawn_file_trash(state: actix_web::web::Data<AppState>) {
    actix_web::rt::spawn(async move {
        loop {
            match empty_file_trash(&state).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(files = n, "emptied the file trash"),
                Err(e) => tracing::warn!(error = %e, "file trash worker"),
            }
            actix_web::rt::time::sleep(std::time::Duration::from_secs(3600)).await;
        }
    });
}

/// Runs every due duplicate scan; returns how many ran here.
pub async fn run_duplicate_scans(state: &AppState) -> AppResult<usize> {
    use crate::domain::clients::duplicates;
    let due = db::run(&state.pool, duplicates::due_scans).await?;
    let mut n = 0;
    for org in due {
        let o = org.clone();
        match db::run_unbounded(&state.pool, move |c| duplicates::run_scan(c, &o)).await {
            Ok(true) => n += 1,
            Ok(false) => {}
            Err(e) => tracing::warn!(org = %org, error = %e, "duplicate scan failed"),
        }
    }
    Ok(n)
}

/// The duplicate-scan worker: looks for due scans every five seconds.
pub fn spawn_duplicate_scans(state: actix_web::web::Data<AppState>) {
    actix_web::rt::spawn(async move {
        loop {
            if let Err(e) = run_duplicate_scans(&state).await {
                tracing::warn!(error = %e, "duplicate scan worker");
            }
            actix_web::rt::time::sleep(std::time::Duration::from_secs(5)).await;
        }
    });
}

/// The statistics worker: refreshes the planner's statistics once an hour (serving starts
/// with a refresh). why: tables grow by ordinary use too, not only by imports and seeds,
/// and a planner reading the statistics of a small table picks scans over indexes.
pub fn spawn_statistics(state: actix_web::web::Data<AppState>) {
    actix_web::rt::spawn(async move {
        loop {
            actix_web::rt::time::sleep(std::time::Duration::from_secs(3600)).await;
            let refreshed =
                db::run_unbounded(&state.pool, |c| Ok(crate::db::keep_statistics(c)?)).await;
            if let Err(e) = refreshed {
                tracing::warn!(error = %e, "statistics worker");
            }
        }
    });
}

/// How often each mailbox is polled for new mail (`RAPPORT_MAIL_SYNC_SECONDS`, default 30:
/// a reply shows on the timeline within the half minute).
fn sync_interval() -> std::time::Duration {
    let secs = std::env::var("RAPPORT_MAIL_SYNC_SECONDS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|s| (5..=86_400).contains(s))
        .unwrap_or(30);
    std::time::Duration::from_secs(secs)
}

/// The webhook sender: every second, what is due (new deliveries, and retries whose backoff
/// ran out) is signed and posted.
pub fn spawn_webhooks(state: actix_web::web::Data<AppState>) {
    actix_web::rt::spawn(async move {
        loop {
            match crate::ops::webhooks::deliver_due(&state.pool, &state.secret).await {
                // A full round: more may be due at once.
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "webhook sender"),
            }
            actix_web::rt::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    });
}

/// The workflow worker: every second, date and schedule triggers are looked at (every half
/// minute) and due runs are carried out, each step in its own transaction.
pub fn spawn_workflows(state: actix_web::web::Data<AppState>) {
    actix_web::rt::spawn(async move {
        let handles = crate::web::scope::handles(&state);
        loop {
            match crate::ops::workflows::run_due(&handles).await {
                // A full round: more may be due at once.
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "workflow worker"),
            }
            actix_web::rt::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    });
}

/// The segment worker: every two seconds, the memberships of clients whose data changed
/// are re-evaluated, and segments due a full evaluation (new, changed, or hourly) are.
pub fn spawn_segments(state: actix_web::web::Data<AppState>) {
    actix_web::rt::spawn(async move {
        loop {
            match crate::ops::segments::run_due(&state.pool).await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "segment worker"),
            }
            actix_web::rt::time::sleep(std::time::Duration::from_secs(2)).await;
        }
    });
}

/// The scores worker: every ten minutes, organizations whose scores are older than a day
/// (`RAPPORT_SCORES_HOURS`) get them computed again.
pub fn spawn_scores(state: actix_web::web::Data<AppState>) {
    actix_web::rt::spawn(async move {
        loop {
            if let Err(e) = crate::ops::scores::run_due(&state.pool).await {
                tracing::warn!(error = %e, "scores worker");
            }
            actix_web::rt::time::sleep(std::time::Duration::from_secs(600)).await;
        }
    });
}

/// The scheduled-report sender: every minute, dashboards whose e-mail schedule is due are
/// sent (see `ops::reports::send_due`).
pub fn spawn_report_schedules(state: actix_web::web::Data<AppState>) {
    actix_web::rt::spawn(async move {
        loop {
            let handles = crate::web::scope::handles(&state);
            match crate::ops::reports::send_due(&state.authz, handles).await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "scheduled reports"),
            }
            actix_web::rt::time::sleep(std::time::Duration::from_secs(60)).await;
        }
    });
}

/// How long one IDLE wait lasts before the watcher checks it should still watch.
const IDLE_WAIT: std::time::Duration = std::time::Duration::from_secs(240);

/// IMAP IDLE (RFC 2177): a thread per synced mailbox waits on its inbox and has it synced
/// the moment the server reports something new, so a reply shows within seconds rather
/// than at the next poll. A server without IDLE is left to the poll. Every minute the
/// watchers are matched to the mailboxes: a removed or changed mailbox's watcher stops at
/// its next wake, and a new one starts.
fn spawn_idle(state: actix_web::web::Data<AppState>) {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let syncer = state.clone();
    actix_web::rt::spawn(async move {
        while let Some(id) = rx.recv().await {
            let found = crate::db::run(&syncer.pool, {
                let id = id.clone();
                move |c| crate::domain::mail::find_mailbox(c, &id)
            })
            .await;
            if let Ok(Some(mb)) = found {
                if let Err(e) =
                    crate::ops::mail::sync(&syncer.pool, &syncer.secret, &syncer.blobs, mb).await
                {
                    tracing::warn!(mailbox = %id, error = %e, "sync after IDLE failed");
                }
            }
        }
    });
    actix_web::rt::spawn(async move {
        // Mailbox id → (when it last changed, the watcher's stop flag).
        let mut watchers: HashMap<String, (chrono::NaiveDateTime, Arc<AtomicBool>)> =
            HashMap::new();
        loop {
            let boxes = crate::db::run(&state.pool, |c| {
                use crate::db::schema::mailboxes;
                use diesel::prelude::*;
                Ok(mailboxes::table
                    .filter(mailboxes::sync_enabled.eq(true))
                    .select(crate::domain::mail::MailboxRow::as_select())
                    .load::<crate::domain::mail::MailboxRow>(c)?)
            })
            .await
            .unwrap_or_default();
            watchers.retain(|id, (changed, stop)| {
                let keep = boxes
                    .iter()
                    .any(|b| &b.id == id && b.updated_at == *changed)
                    && !stop.load(Ordering::Relaxed);
                if !keep {
                    stop.store(true, Ordering::Relaxed);
                }
                keep
            });
            for mb in boxes {
                if watchers.contains_key(&mb.id) {
                    continue;
                }
                let Ok(login) = mb.login(&state.secret) else {
                    continue;
                };
                let stop = Arc::new(AtomicBool::new(false));
                watchers.insert(mb.id.clone(), (mb.updated_at, stop.clone()));
                let (tx, server, id) = (tx.clone(), mb.imap(), mb.id.clone());
                std::thread::spawn(move || watch(&server, &login, &id, &stop, &tx));
            }
            actix_web::rt::time::sleep(std::time::Duration::from_secs(60)).await;
        }
    });

    fn pause(stop: &AtomicBool, minutes: u64) {
        for _ in 0..minutes * 6 {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_secs(10));
        }
    }

    fn watch(
        server: &crate::integrations::mail::Server,
        login: &crate::integrations::mail::Login,
        id: &str,
        stop: &AtomicBool,
        tx: &tokio::sync::mpsc::UnboundedSender<String>,
    ) {
        use crate::integrations::mail::{idle, imap_login, Idle};
        while !stop.load(Ordering::Relaxed) {
            let outcome =
                imap_login(server, login).and_then(|mut s| idle(&mut s, "INBOX", IDLE_WAIT));
            match outcome {
                Ok(Idle::Changed) => {
                    if tx.send(id.to_string()).is_err() {
                        return;
                    }
                }
                Ok(Idle::Quiet) => {}
                // The poll covers a server without IDLE; it is asked again in an hour.
                Ok(Idle::Unsupported) => pause(stop, 60),
                Err(e) => {
                    tracing::debug!(mailbox = %id, error = %e, "IDLE failed; retrying in a minute");
                    pause(stop, 1);
                }
            }
        }
    }
}

/// The mail workers: the sender looks for queued messages every two seconds; the sync
/// polls every mailbox with sync on, one after the other, every [`sync_interval`].
pub fn spawn_mail(state: actix_web::web::Data<AppState>) {
    let sender = state.clone();
    actix_web::rt::spawn(async move {
        let base = crate::config::public_url(&sender.config);
        loop {
            if let Err(e) = crate::ops::mail::hand_out(
                &sender.pool,
                &sender.secret,
                base.clone(),
                &sender.plugins,
            )
            .await
            {
                tracing::warn!(error = %e, "bulk sends");
            }
            if let Err(e) =
                crate::ops::mail::deliver_due(&sender.pool, &sender.secret, &sender.blobs).await
            {
                tracing::warn!(error = %e, "mail sender");
            }
            actix_web::rt::time::sleep(std::time::Duration::from_secs(2)).await;
        }
    });
    spawn_idle(state.clone());
    actix_web::rt::spawn(async move {
        loop {
            if let Err(e) =
                crate::ops::mail::sync_all(&state.pool, &state.secret, &state.blobs).await
            {
                tracing::warn!(error = %e, "mail sync");
            }
            actix_web::rt::time::sleep(sync_interval()).await;
        }
    });
}
