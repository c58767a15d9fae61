//! `rapport serve` and `rapport demo`: the server with its background workers, and the
//! demo organization with one user per role.

use crate::config::Config;
use crate::db::Pool;
use crate::domain::audit::AuditContext;
use crate::domain::orgs::{service, store, Role};
use crate::state::AppState;

use super::with_conn;

/// Sends due task and meeting reminders every half minute for as long as the process runs.
fn spawn_reminders(pool: Pool) {
    actix_web::rt::spawn(async move {
        loop {
            let at = crate::db::now();
            match crate::db::run(&pool, move |c| {
                crate::domain::interactions::send_reminders(c, at)
            })
            .await
            {
                Ok(n) if n > 0 => tracing::info!(reminded = n, "reminders sent"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "sending reminders failed"),
            }
            actix_web::rt::time::sleep(std::time::Duration::from_secs(30)).await;
        }
    });
}

pub async fn serve(config: Config, pool: Pool) -> anyhow::Result<()> {
    let addr = config.addr.clone();
    // why: a database filled by an older version, a restore or a bulk load may have no
    // planner statistics.
    if let Err(e) = crate::db::keep_statistics(&mut *pool.get()?) {
        tracing::warn!(error = %e, "could not refresh the planner statistics");
    }
    let state = AppState::new(pool, config).await?;
    crate::search::spawn_indexer(state.pool.clone(), state.search.clone());
    spawn_reminders(state.pool.clone());
    crate::jobs::spawn_imports(state.clone());
    crate::jobs::spawn_file_trash(state.clone());
    crate::jobs::spawn_duplicate_scans(state.clone());
    crate::jobs::spawn_statistics(state.clone());
    crate::jobs::spawn_mail(state.clone());
    crate::jobs::spawn_webhooks(state.clone());
    crate::jobs::spawn_workflows(state.clone());
    crate::jobs::spawn_segments(state.clone());
    crate::jobs::spawn_report_schedules(state.clone());
    crate::jobs::spawn_scores(state.clone());
    tracing::info!(%addr, "serving Rapport");
    // why: actix-web stops on SIGTERM/SIGINT by finishing in-flight requests first.
    actix_web::HttpServer::new(move || crate::app::build(state.clone()))
        .shutdown_timeout(30)
        .bind(&addr)
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?
        .run()
        .await?;
    tracing::info!("stopped");
    Ok(())
}

pub const DEMO_PASSWORD: &str = "rapport-demo-2026";

/// The demo organization, a user per role, and (the first time) demo data; answers what to
/// print for the person who started it: where to sign in and as whom.
pub fn seed_demo(pool: &Pool, addr: &str) -> anyhow::Result<String> {
    use std::fmt::Write;
    let org = with_conn(pool, |c| match store::find_org_by_ref(c, "demo")? {
        Some(org) => Ok(org),
        None => service::create_org(c, "Demo"),
    })?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Rapport demo ({}) is starting at http://{addr}/",
        org.name
    );
    let _ = writeln!(
        out,
        "Sign in with any of these accounts, password {DEMO_PASSWORD}:"
    );
    for role in Role::ALL {
        let email = format!("{}@demo.rapport.test", role.as_str().replace('_', "."));
        let ctx = AuditContext::cli(&org.id);
        with_conn(pool, |c| {
            if store::find_user_by_email(c, &email)?.is_none() {
                service::add_member(
                    c,
                    &ctx,
                    service::NewMember {
                        email: &email,
                        name: &format!("Demo {}", role.label()),
                        password: Some(DEMO_PASSWORD),
                        role: role.as_str(),
                    },
                )?;
            }
            Ok(())
        })?;
        let _ = writeln!(out, "  {:<12} {email}", role.label());
    }
    let has_clients = with_conn(pool, |c| {
        Ok(!crate::domain::clients::store::counts_by_status(c, &org.id, None)?.is_empty())
    })?;
    if !has_clients {
        let report = with_conn(pool, |c| crate::seed::seed_clients(c, &org, 300, 7, |_| {}))?;
        let deals = with_conn(pool, |c| crate::seed::seed_deals(c, &org, 120, 7, |_| {}))?;
        let logged = with_conn(pool, |c| crate::seed::seed_interactions(c, &org, 200, 7))?;
        let papers = with_conn(pool, |c| crate::seed::seed_papers(c, &org, 12))?;
        with_conn(pool, |c| crate::seed::seed_segments(c, &org))?;
        with_conn(pool, |c| crate::seed::seed_reports(c, &org))?;
        tracing::info!(
            clients = report.clients,
            companies = report.companies,
            deals,
            interactions = logged,
            quotes = papers,
            "added demo data"
        );
        // Seeded rows skip the stores; the server's indexer builds their documents.
        with_conn(pool, |c| {
            Ok(crate::domain::outbox::touch(
                c,
                &org.id,
                crate::domain::outbox::REINDEX,
                &org.id,
            )?)
        })?;
    }
    Ok(out)
}
