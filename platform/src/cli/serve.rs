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
    crate::db::spawn_checkpointer(&config.database)?;
    let state = AppState::new(pool, config).await?;
    match crate::search::rebuild_if_empty(&mut *state.pool.get()?, &state.search) {
        Ok(0) => {}
        Ok(orgs) => tracing::info!(orgs, "the search index is empty: rebuilding it"),
        Err(e) => tracing::warn!(error = %e, "could not queue the search index's rebuild"),
    }
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

/// Where the demo finds the example plugin's source: run from a checkout of Rapport.
const EXAMPLE_PLUGIN: &str = "plugins/real-estate";

/// Builds the real-estate example for wasm32 (plugins ship as source, none prebuilt),
/// packs it and installs it with every capability it asks for. Answers why not when the
/// source or the wasm32 target is missing, so the demo still starts.
fn install_example_plugin(pool: &Pool, org_id: &str) -> Result<String, String> {
    let dir = std::path::Path::new(EXAMPLE_PLUGIN);
    if !dir.join("plugin.toml").exists() {
        return Err(format!("{EXAMPLE_PLUGIN} is not here"));
    }
    eprintln!("Building the example plugin {EXAMPLE_PLUGIN} for wasm32 (once; about a minute)…");
    // why: its own target directory, so the build never waits on (or invalidates) the
    // host's, which `cargo run` may still hold.
    let target = dir.join("target");
    let built =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "build",
                "--quiet",
                "--release",
                "--target",
                "wasm32-unknown-unknown",
            ])
            .arg("--manifest-path")
            .arg(dir.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map_err(|e| format!("cargo could not run: {e}"))?;
    if !built.success() {
        return Err(
            "building it for wasm32-unknown-unknown failed; is the target installed?".into(),
        );
    }
    let wasm = target.join("wasm32-unknown-unknown/release/rapport_plugin_real_estate.wasm");
    let (bundle, _) = crate::plugins::bundle::pack_dir(dir, Some(&wasm), None)?;
    let bytes = std::fs::read(&bundle).map_err(|e| e.to_string())?;
    let manifest = crate::plugins::bundle::unpack(&bytes)?.manifest;
    let ctx = AuditContext::cli(org_id);
    with_conn(pool, |c| {
        crate::plugins::install(c, &ctx, &bytes, &manifest.capabilities)
    })
    .map_err(|e| e.to_string())?;
    Ok(manifest.name)
}

/// The demo organization, a user per role, and (the first time) demo data, its files
/// stored where `config` keeps uploads; answers what to print for the person who started
/// it: where plugins come from, then where to sign in and as whom.
pub fn seed_demo(pool: &Pool, config: &Config) -> anyhow::Result<String> {
    use std::fmt::Write;
    let addr = &config.addr;
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
    let plugins = with_conn(pool, |c| Ok(crate::plugins::list(c, &org.id)?.len()))?;
    if plugins == 0 {
        match install_example_plugin(pool, &org.id) {
            Ok(name) => {
                let _ = writeln!(out, "Installed the example plugin {name}.\n");
            }
            Err(why) => {
                let _ = writeln!(
                    out,
                    "No plugin is installed ({why}). To add the real-estate example:\n  \
                     rustup target add wasm32-unknown-unknown\n  \
                     rapport plugin pack plugins/real-estate    # prints the bundle's path\n  \
                     rapport plugin install <bundle> --org {} --grant-all\n",
                    org.slug
                );
            }
        }
    }
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
        let views = with_conn(pool, |c| crate::seed::seed_views(c, &org))?;
        with_conn(pool, |c| crate::seed::seed_templates(c, &org))?;
        let blobs = crate::domain::attachments::configured_store(config)?;
        let files = with_conn(pool, |c| {
            crate::seed::seed_files(c, &org, blobs.as_ref(), 4)
        })?;
        tracing::info!(
            clients = report.clients,
            companies = report.companies,
            deals,
            interactions = logged,
            quotes = papers,
            views,
            files,
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
