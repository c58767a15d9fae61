//! `rapport seed`, `import` and `search reindex`: filling an organization and rebuilding
//! its search index from the command line.

use diesel::prelude::*;

use crate::config::Config;
use crate::db::Pool;
use crate::domain::imports::{self, Kind};
use crate::domain::orgs::{Member, OrganizationRow};

use super::{find_org, open, with_conn};

/// Adds deterministic synthetic clients and deals, then asks for fresh statistics and a
/// reindex.
pub fn seed(
    config: &Config,
    org: &str,
    clients: usize,
    deals: usize,
    seed: u64,
) -> anyhow::Result<()> {
    if clients == 0 && deals == 0 {
        anyhow::bail!("say what to add: --clients N and/or --deals N");
    }
    let pool = open(config)?;
    let org = find_org(&pool, org)?;
    let started = std::time::Instant::now();
    let progress = |what: &'static str| {
        move |done: usize| {
            if done % 50_000 == 0 {
                eprintln!("  {done} {what}…");
            }
        }
    };
    if clients > 0 {
        let report = with_conn(&pool, |c| {
            crate::seed::seed_clients(c, &org, clients, seed, progress("clients"))
        })?;
        println!(
            "Added {} clients ({} companies) to {}",
            report.clients, report.companies, org.slug
        );
    }
    if deals > 0 {
        let made = with_conn(&pool, |c| {
            crate::seed::seed_deals(c, &org, deals, seed, progress("deals"))
        })?;
        println!("Added {made} deals to {}", org.slug);
    }
    with_conn(&pool, |c| {
        crate::db::refresh_statistics(c)?;
        Ok(crate::domain::outbox::touch(
            c,
            &org.id,
            crate::domain::outbox::REINDEX,
            &org.id,
        )?)
    })?;
    println!(
        "Done in {:.1} s; the search index is rebuilt by the server (or `rapport search reindex`)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// What `rapport import` was asked to do.
pub struct ImportFile {
    pub file: std::path::PathBuf,
    pub org: String,
    pub preset: String,
    pub kind: Option<String>,
    pub mode: String,
    /// The member acting (e-mail); the first admin when left out.
    pub actor: Option<String>,
}

/// The member an import acts as.
fn acting_member(
    pool: &Pool,
    org: &OrganizationRow,
    actor: &Option<String>,
) -> anyhow::Result<Member> {
    with_conn(pool, |c| {
        let members = crate::domain::orgs::store::list_members(
            c,
            &org.id,
            &crate::domain::orgs::store::MemberFilter {
                limit: 1000,
                is_active: Some(true),
                ..Default::default()
            },
        )?;
        Ok(members.into_iter().find(|m| match actor {
            Some(email) => m.user.email.eq_ignore_ascii_case(email),
            None => m.membership.role == "admin",
        }))
    })?
    .ok_or_else(|| match actor {
        Some(e) => anyhow::anyhow!("{e} is not an active member of {}", org.slug),
        None => anyhow::anyhow!("{} has no active admin; name one with --as", org.slug),
    })
}

/// Runs the batch's next chunk, and on PostgreSQL the one after it alongside on a second
/// connection when the two cannot touch the same records (`imports::lanes`).
fn run_step(
    pool: &crate::db::Pool,
    conn: &mut crate::db::DbConn,
    data_dir: &std::path::Path,
    env: &imports::Env<'_>,
) -> Result<bool, crate::error::AppError> {
    use imports::lanes::{second_chunk, Started, TellOnDrop};
    use imports::Lane;
    let Some((from, offset)) = second_chunk(conn, data_dir, &env.ctx.org_id, &env.batch.id)? else {
        return imports::run_chunk(conn, data_dir, env);
    };
    let started = Started::default();
    // The second lane builds its own `Env` (its caches are its own) from the shared parts.
    let (ctx, access, batch, currency) = (env.ctx, env.access, env.batch, env.default_currency);
    let (started, pool) = (&started, pool);
    let (first, second) = std::thread::scope(|s| {
        let second = s.spawn(move || {
            let mut c2 = pool
                .get()
                .map_err(|e| crate::error::AppError::Internal(e.to_string()))?;
            let env2 = imports::Env {
                ctx,
                access,
                batch,
                external: &crate::domain::custom_fields::NoExternal,
                rules: &crate::domain::pipeline::service::NoRules,
                default_currency: currency,
                cache: Default::default(),
            };
            let lane = Lane::Second {
                from,
                offset,
                started,
            };
            imports::run_lane(&mut c2, data_dir, &env2, &lane)
        });
        let first = {
            let _tell = TellOnDrop(started);
            imports::run_lane(conn, data_dir, env, &Lane::First(started))
        };
        (first, second.join())
    });
    let more = first?;
    // A second chunk that rolled back runs next, alone.
    Ok(second.ok().and_then(Result::ok).unwrap_or(more))
}

/// Imports a file in this process (no server needed) and prints the counts.
pub fn import(config: &Config, args: ImportFile) -> anyhow::Result<()> {
    let kind = match args.kind.as_deref() {
        None => None,
        Some(k) => Some(
            Kind::parse(k)
                .ok_or_else(|| anyhow::anyhow!("--kind: companies, contacts or deals"))?,
        ),
    };
    let file = &args.file;
    let bytes =
        std::fs::read(file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let pool = open(config)?;
    let org = find_org(&pool, &args.org)?;
    let member = acting_member(&pool, &org, &args.actor)?;
    let mut ctx = crate::domain::audit::AuditContext::cli(&org.id);
    ctx.actor_user_id = Some(member.user.id.clone());
    ctx.actor_label = format!("cli ({})", member.user.email);
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let data_dir = config.data_dir.clone();
    let started = std::time::Instant::now();
    let batch = with_conn(&pool, |c| {
        let new = imports::NewBatch {
            file_name: &name,
            preset: &args.preset,
            kind,
            mode: &args.mode,
        };
        let staged = imports::stage(c, &ctx, &data_dir, &bytes, new)?;
        let batch = imports::start(c, &ctx, &staged.id)?;
        // The command line acts for the organization as a whole (no owner limits);
        // plugin field types and stage rules are not consulted here.
        let access = crate::domain::clients::service::Access {
            user_id: member.user.id.clone(),
            oversee: true,
            read_sensitive: true,
            write_sensitive: true,
            create_tags: true,
        };
        let env = imports::Env {
            ctx: &ctx,
            access: &access,
            batch: &batch,
            external: &crate::domain::custom_fields::NoExternal,
            rules: &crate::domain::pipeline::service::NoRules,
            default_currency: &org.default_currency,
            cache: Default::default(),
        };
        while run_step(&pool, c, &data_dir, &env)? {}
        imports::get(c, &org.id, &batch.id)
    })?;
    println!(
        "{} ({} {}, {} rows) in {:.1} s: created {}, updated {}, skipped {}, failed {}",
        name,
        batch.preset,
        batch.kind,
        batch.total_rows,
        started.elapsed().as_secs_f64(),
        batch.created_count,
        batch.updated_count,
        batch.skipped_count,
        batch.failed_count
    );
    let errors: Vec<serde_json::Value> = serde_json::from_str(&batch.errors).unwrap_or_default();
    for e in errors.iter().take(20) {
        println!(
            "  line {}: {}",
            e["row"],
            e["message"].as_str().unwrap_or_default()
        );
    }
    println!(
        "batch {} (revert with the console or POST /api/imports/{}/revert)",
        batch.id, batch.id
    );
    Ok(())
}

/// Rebuilds the search index of one organization in place, or of all of them (on
/// Meilisearch into a fresh index swapped in at the end); with the embedded index held by a
/// running server, queues the rebuild for it.
pub async fn reindex(config: &Config, org: Option<String>) -> anyhow::Result<()> {
    let pool = open(config)?;
    let whole = org.is_none();
    let orgs: Vec<String> = match org {
        Some(o) => vec![find_org(&pool, &o)?.id],
        None => with_conn(&pool, |c| {
            Ok(crate::db::schema::organizations::table
                .select(crate::db::schema::organizations::id)
                .load::<String>(c)?)
        })?,
    };
    let index = match crate::search::open(config).await {
        Ok(index) => index,
        Err(e) => {
            with_conn(&pool, |c| {
                for org in &orgs {
                    crate::domain::outbox::touch(c, org, crate::domain::outbox::REINDEX, org)?;
                }
                Ok(())
            })?;
            println!("The index is in use ({e}); the rebuild is queued for the running server.");
            return Ok(());
        }
    };
    with_conn(&pool, |c| {
        for org in &orgs {
            crate::search::clear_reindex_requests(c, org)?;
        }
        Ok(())
    })?;
    let started = std::time::Instant::now();
    let done = if whole {
        crate::search::reindex_all(&pool, &index, &orgs).await
    } else {
        let mut done = Vec::new();
        for org in &orgs {
            done.push((
                org.clone(),
                crate::search::reindex_org(&pool, &index, org).await?,
            ));
        }
        Ok(done)
    }
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let seconds = started.elapsed().as_secs_f64();
    let mut documents = 0;
    for (org, r) in &done {
        documents += r.clients + r.deals;
        println!(
            "{org}: {} clients, {} deals indexed, {} stale documents removed",
            r.clients, r.deals, r.removed
        );
    }
    println!(
        "{documents} documents in {seconds:.1} s ({:.0} documents/s){}",
        documents as f64 / seconds.max(0.001),
        if whole
            && index
                .stats()
                .await
                .is_ok_and(|s| s.backend == "meilisearch")
        {
            ", built beside the live index and swapped in"
        } else {
            ""
        }
    );
    crate::search::drain_all(&pool, &index)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

/// `rapport churn-model --org …`: trains the model, prints its evaluation, and scores the
/// organization's clients again with it (or with the rules when it is not good enough).
pub fn churn_model(config: &Config, org: &str) -> anyhow::Result<()> {
    let pool = open(config)?;
    let org = find_org(&pool, org)?;
    let ev = with_conn(&pool, |c| crate::domain::churn::train(c, &org.id))?;
    println!(
        "Snapshot {} days ago: {} clients, {} went quiet in the {} days after.",
        ev.horizon_days, ev.samples, ev.churned, ev.horizon_days
    );
    match ev.auc {
        Some(a) => println!(
            "AUC on later, held-out data (model fitted {} days earlier): {a:.3}",
            ev.horizon_days
        ),
        None => println!("AUC: not measurable (too little history)"),
    }
    if ev.in_use {
        println!("The churn risk now comes from this model.");
    } else {
        println!("The rules stay in use: {}", ev.reason);
    }
    let n = with_conn(&pool, |c| crate::domain::scores::compute_org(c, &org.id))?;
    println!("Scored {n} clients.");
    Ok(())
}
