//! The `rapport` command: serve, migrate, demo, and administration from the shell.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use diesel::prelude::*;
use rapport::app;
use rapport::config::Config;
use rapport::db::{self, DbConn, Pool};
use rapport::domain::audit::AuditContext;
use rapport::domain::orgs::{service, store, Role};
use rapport::error::AppError;
use rapport::state::AppState;

#[derive(Parser)]
#[command(name = "rapport", version, about = "Rapport CRM")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the console and the API (migrates first).
    Serve {
        /// Listen address; also RAPPORT_ADDR.
        #[arg(long)]
        addr: Option<String>,
    },
    /// Apply pending database migrations.
    Migrate,
    /// Migrate, seed a demo organization with one user per role, and serve.
    Demo {
        #[arg(long)]
        addr: Option<String>,
    },
    /// Organizations.
    Org {
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// Users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Plugins: pack a plugin crate into a bundle, install a bundle.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Import a CSV export (HubSpot, Salesforce or a spreadsheet) and print the counts.
    Import {
        /// The CSV file.
        file: std::path::PathBuf,
        /// Organization slug or id.
        #[arg(long)]
        org: String,
        /// hubspot, salesforce or generic.
        #[arg(long, default_value = "generic")]
        preset: String,
        /// companies, contacts or deals (recognised from the headers when omitted).
        #[arg(long)]
        kind: Option<String>,
        /// For rows matching an existing record: update, skip or create.
        #[arg(long, default_value = "update")]
        mode: String,
        /// The member the import acts as (audit, owner of new records); the first admin by
        /// default.
        #[arg(long = "as")]
        actor: Option<String>,
    },
    /// The search index.
    Search {
        #[command(subcommand)]
        command: SearchCommand,
    },
    /// Add deterministic synthetic clients (companies, people, tags, custom values).
    Seed {
        /// Organization slug or id.
        #[arg(long)]
        org: String,
        /// How many clients to add.
        #[arg(long, default_value_t = 0)]
        clients: usize,
        /// How many deals to add over the organization's clients (with stage history).
        #[arg(long, default_value_t = 0)]
        deals: usize,
        /// The random seed; the same seed gives the same data.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
}

#[derive(Subcommand)]
enum SearchCommand {
    /// Rebuild the index from the database, in place (searches keep answering). With the
    /// embedded index held by a running server, the rebuild is queued for that server.
    Reindex {
        /// Only this organization (slug or id); all when omitted.
        #[arg(long)]
        org: Option<String>,
    },
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Create an organization; prints its slug.
    Create { name: String },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user (or add an existing one) in an organization.
    Create {
        /// Organization slug or id.
        #[arg(long)]
        org: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
        #[arg(long, value_parser = ["admin", "manager", "sales_rep", "service_rep", "marketer", "read_only"])]
        role: String,
        #[arg(long, default_value = "")]
        name: String,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Build the plugin crate in DIR for wasm32 and pack it with its plugin.toml;
    /// prints the bundle's path on the last line.
    Pack {
        dir: std::path::PathBuf,
        /// Use this already-built module instead of building.
        #[arg(long)]
        wasm: Option<std::path::PathBuf>,
        /// Sign the bundle with this key file (from `rapport plugin keygen`).
        #[arg(long)]
        sign: Option<std::path::PathBuf>,
    },
    /// Make an ed25519 signing key for bundles: writes the key file, prints the public key
    /// that organizations add to their trusted vendor keys.
    Keygen {
        /// Where to write the key file (kept secret; refused if it exists).
        out: std::path::PathBuf,
    },
    /// Sign an existing bundle in place.
    Sign {
        bundle: std::path::PathBuf,
        #[arg(long)]
        key: std::path::PathBuf,
    },
    /// Install (or upgrade) a bundle in an organization.
    Install {
        bundle: std::path::PathBuf,
        #[arg(long)]
        org: String,
        /// Capabilities to grant, comma-separated (each must be requested by the plugin).
        #[arg(long, value_delimiter = ',')]
        grant: Vec<String>,
        /// Grant every capability the plugin requests.
        #[arg(long)]
        grant_all: bool,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create an API token; prints the token alone on the last line.
    Create {
        #[arg(long)]
        org: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
    },
}

fn init_tracing(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("RAPPORT_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        builder.init();
    }
}

/// The pool of a one-shot command (see `db::connect_for_command`).
fn open(config: &Config) -> anyhow::Result<Pool> {
    open_pool(db::connect_for_command(&config.database, config.pool_size)?)
}

/// The pool of a server, which keeps a connection ready.
fn open_for_serving(config: &Config) -> anyhow::Result<Pool> {
    open_pool(db::connect(&config.database, config.pool_size)?)
}

fn open_pool(pool: Pool) -> anyhow::Result<Pool> {
    let mut conn = pool.get()?;
    let applied = db::migrate(&mut conn)?;
    for m in applied {
        tracing::info!(migration = %m, "applied migration");
    }
    Ok(pool)
}

fn with_conn<T>(
    pool: &Pool,
    f: impl FnOnce(&mut DbConn) -> Result<T, AppError>,
) -> anyhow::Result<T> {
    let mut conn = pool.get()?;
    f(&mut conn).map_err(|e| match e {
        AppError::Validation(msg, fields) => {
            let detail: Vec<String> = fields
                .iter()
                .map(|f| format!("{}: {}", f.field, f.message))
                .collect();
            anyhow::anyhow!("{msg} {}", detail.join("; "))
        }
        AppError::NotFound => anyhow::anyhow!("not found"),
        other => anyhow::anyhow!("{other}"),
    })
}

fn find_org(
    pool: &Pool,
    reference: &str,
) -> anyhow::Result<rapport::domain::orgs::OrganizationRow> {
    with_conn(pool, |c| service::find_org(c, reference))
        .map_err(|_| anyhow::anyhow!("no organization with slug or id {reference:?}"))
}

/// Sends due task and meeting reminders every half minute for as long as the process runs.
fn spawn_reminders(pool: Pool) {
    actix_web::rt::spawn(async move {
        loop {
            let at = rapport::db::now();
            match rapport::db::run(&pool, move |c| {
                rapport::domain::interactions::send_reminders(c, at)
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

async fn serve(config: Config, pool: Pool) -> anyhow::Result<()> {
    let addr = config.addr.clone();
    // why: a database filled by an older version, a restore or a bulk load may have no
    // planner statistics.
    if let Err(e) = rapport::db::keep_statistics(&mut *pool.get()?) {
        tracing::warn!(error = %e, "could not refresh the planner statistics");
    }
    let state = AppState::new(pool, config).await?;
    rapport::search::spawn_indexer(state.pool.clone(), state.search.clone());
    spawn_reminders(state.pool.clone());
    rapport::jobs::spawn_imports(state.clone());
    rapport::jobs::spawn_file_trash(state.clone());
    rapport::jobs::spawn_duplicate_scans(state.clone());
    rapport::jobs::spawn_statistics(state.clone());
    tracing::info!(%addr, "serving Rapport");
    // why: actix-web stops on SIGTERM/SIGINT by finishing in-flight requests first.
    actix_web::HttpServer::new(move || app::build(state.clone()))
        .shutdown_timeout(30)
        .bind(&addr)
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?
        .run()
        .await?;
    tracing::info!("stopped");
    Ok(())
}

const DEMO_PASSWORD: &str = "rapport-demo-2026";

fn seed_demo(pool: &Pool, addr: &str) -> anyhow::Result<()> {
    let org = with_conn(pool, |c| match store::find_org_by_ref(c, "demo")? {
        Some(org) => Ok(org),
        None => service::create_org(c, "Demo"),
    })?;
    println!("Demo organization: {} (slug {})", org.name, org.slug);
    println!("Sign in at http://{addr}/login with any of these (password {DEMO_PASSWORD}):");
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
        println!("  {:<12} {email}", role.label());
    }
    let has_clients = with_conn(pool, |c| {
        Ok(!rapport::domain::clients::store::counts_by_status(c, &org.id, None)?.is_empty())
    })?;
    if !has_clients {
        let report = with_conn(pool, |c| {
            rapport::seed::seed_clients(c, &org, 300, 7, |_| {})
        })?;
        let deals = with_conn(pool, |c| rapport::seed::seed_deals(c, &org, 120, 7, |_| {}))?;
        let logged = with_conn(pool, |c| rapport::seed::seed_interactions(c, &org, 200, 7))?;
        println!(
            "Added {} demo clients ({} companies), {deals} deals and {logged} interactions.",
            report.clients, report.companies
        );
        // Seeded rows skip the stores; the server's indexer builds their documents.
        with_conn(pool, |c| {
            Ok(rapport::domain::outbox::touch(
                c,
                &org.id,
                rapport::domain::outbox::REINDEX,
                &org.id,
            )?)
        })?;
    }
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = Config::from_env()?;
    match cli.command {
        Command::Serve { addr } => {
            init_tracing(config.log_json);
            if let Some(a) = addr {
                config.addr = a;
            }
            let pool = open_for_serving(&config)?;
            serve(config, pool).await
        }
        Command::Demo { addr } => {
            init_tracing(config.log_json);
            if let Some(a) = addr {
                config.addr = a;
            }
            let pool = open_for_serving(&config)?;
            seed_demo(&pool, &config.addr)?;
            println!("Open http://{}/", config.addr);
            serve(config, pool).await
        }
        Command::Migrate => {
            init_tracing(config.log_json);
            open(&config)?;
            println!("migrations are up to date");
            Ok(())
        }
        Command::Org {
            command: OrgCommand::Create { name },
        } => {
            let pool = open(&config)?;
            let org = with_conn(&pool, |c| service::create_org(c, &name))?;
            println!("{}", org.slug);
            Ok(())
        }
        Command::User {
            command:
                UserCommand::Create {
                    org,
                    email,
                    password,
                    role,
                    name,
                },
        } => {
            let pool = open(&config)?;
            let org = find_org(&pool, &org)?;
            let ctx = AuditContext::cli(&org.id);
            let (member, _) = with_conn(&pool, |c| {
                service::add_member(
                    c,
                    &ctx,
                    service::NewMember {
                        email: &email,
                        name: &name,
                        password: Some(&password),
                        role: &role,
                    },
                )
            })?;
            println!(
                "{} is {} in {}",
                member.user.email, member.membership.role, org.slug
            );
            Ok(())
        }
        Command::Seed {
            org,
            clients,
            deals,
            seed,
        } => {
            if clients == 0 && deals == 0 {
                anyhow::bail!("say what to add: --clients N and/or --deals N");
            }
            let pool = open(&config)?;
            let org = find_org(&pool, &org)?;
            let started = std::time::Instant::now();
            if clients > 0 {
                let report = with_conn(&pool, |c| {
                    rapport::seed::seed_clients(c, &org, clients, seed, |done| {
                        if done % 50_000 == 0 {
                            eprintln!("  {done} clients…");
                        }
                    })
                })?;
                println!(
                    "Added {} clients ({} companies) to {}",
                    report.clients, report.companies, org.slug
                );
            }
            if deals > 0 {
                let made = with_conn(&pool, |c| {
                    rapport::seed::seed_deals(c, &org, deals, seed, |done| {
                        if done % 50_000 == 0 {
                            eprintln!("  {done} deals…");
                        }
                    })
                })?;
                println!("Added {made} deals to {}", org.slug);
            }
            with_conn(&pool, |c| {
                rapport::db::refresh_statistics(c)?;
                Ok(rapport::domain::outbox::touch(
                    c,
                    &org.id,
                    rapport::domain::outbox::REINDEX,
                    &org.id,
                )?)
            })?;
            println!(
                "Done in {:.1} s; the search index is rebuilt by the server (or `rapport search reindex`)",
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Import {
            file,
            org,
            preset,
            kind,
            mode,
            actor,
        } => {
            let kind = match kind.as_deref() {
                None => None,
                Some(k) => Some(
                    rapport::domain::imports::Kind::parse(k)
                        .ok_or_else(|| anyhow::anyhow!("--kind: companies, contacts or deals"))?,
                ),
            };
            let bytes = std::fs::read(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let pool = open(&config)?;
            let org = find_org(&pool, &org)?;
            let member = with_conn(&pool, |c| {
                let members = rapport::domain::orgs::store::list_members(
                    c,
                    &org.id,
                    &rapport::domain::orgs::store::MemberFilter {
                        limit: 1000,
                        is_active: Some(true),
                        ..Default::default()
                    },
                )?;
                Ok(members.into_iter().find(|m| match &actor {
                    Some(email) => m.user.email.eq_ignore_ascii_case(email),
                    None => m.membership.role == "admin",
                }))
            })?
            .ok_or_else(|| match &actor {
                Some(e) => anyhow::anyhow!("{e} is not an active member of {}", org.slug),
                None => anyhow::anyhow!("{} has no active admin; name one with --as", org.slug),
            })?;
            let mut ctx = rapport::domain::audit::AuditContext::cli(&org.id);
            ctx.actor_user_id = Some(member.user.id.clone());
            ctx.actor_label = format!("cli ({})", member.user.email);
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let data_dir = config.data_dir.clone();
            let started = std::time::Instant::now();
            let batch = with_conn(&pool, |c| {
                let staged = rapport::domain::imports::stage(
                    c,
                    &ctx,
                    &data_dir,
                    &bytes,
                    rapport::domain::imports::NewBatch {
                        file_name: &name,
                        preset: &preset,
                        kind,
                        mode: &mode,
                    },
                )?;
                let batch = rapport::domain::imports::start(c, &ctx, &staged.id)?;
                // The command line acts for the organization as a whole (no owner limits);
                // plugin field types and stage rules are not consulted here.
                let access = rapport::domain::clients::service::Access {
                    user_id: member.user.id.clone(),
                    oversee: true,
                    read_sensitive: true,
                    write_sensitive: true,
                    create_tags: true,
                };
                let env = rapport::domain::imports::Env {
                    ctx: &ctx,
                    access: &access,
                    batch: &batch,
                    external: &rapport::domain::custom_fields::NoExternal,
                    rules: &rapport::domain::pipeline::service::NoRules,
                    default_currency: &org.default_currency,
                    cache: Default::default(),
                };
                while rapport::domain::imports::run_chunk(c, &data_dir, &env)? {}
                rapport::domain::imports::get(c, &org.id, &batch.id)
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
            let errors: Vec<serde_json::Value> =
                serde_json::from_str(&batch.errors).unwrap_or_default();
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
        Command::Search {
            command: SearchCommand::Reindex { org },
        } => {
            init_tracing(config.log_json);
            let pool = open(&config)?;
            let orgs: Vec<String> = match org {
                Some(o) => vec![find_org(&pool, &o)?.id],
                None => with_conn(&pool, |c| {
                    Ok(rapport::db::schema::organizations::table
                        .select(rapport::db::schema::organizations::id)
                        .load::<String>(c)?)
                })?,
            };
            match rapport::search::open(&config).await {
                Ok(index) => {
                    for org in &orgs {
                        with_conn(&pool, |c| {
                            Ok(rapport::search::clear_reindex_requests(c, org)?)
                        })?;
                        let started = std::time::Instant::now();
                        let r = rapport::search::reindex_org(&pool, &index, org)
                            .await
                            .map_err(|e| anyhow::anyhow!("{e}"))?;
                        println!(
                            "{org}: {} clients, {} deals indexed, {} stale documents removed in {:.1} s",
                            r.clients,
                            r.deals,
                            r.removed,
                            started.elapsed().as_secs_f64()
                        );
                    }
                    rapport::search::drain_all(&pool, &index)
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                }
                Err(e) => {
                    with_conn(&pool, |c| {
                        for org in &orgs {
                            rapport::domain::outbox::touch(
                                c,
                                org,
                                rapport::domain::outbox::REINDEX,
                                org,
                            )?;
                        }
                        Ok(())
                    })?;
                    println!(
                        "The index is in use ({e}); the rebuild is queued for the running server."
                    );
                }
            }
            Ok(())
        }
        Command::Plugin {
            command: PluginCommand::Pack { dir, wasm, sign },
        } => {
            let path = rapport::plugins::bundle::pack_dir(&dir, wasm.as_deref(), sign.as_deref())
                .map_err(|e| anyhow::anyhow!(e))?;
            println!("{}", path.display());
            Ok(())
        }
        Command::Plugin {
            command: PluginCommand::Keygen { out },
        } => {
            use rapport::plugins::signature;
            let (secret, public) = signature::generate();
            let mut file = std::fs::OpenOptions::new();
            file.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
            let mut file = file
                .open(&out)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", out.display()))?;
            std::io::Write::write_all(
                &mut file,
                signature::key_file_text(&secret, &public).as_bytes(),
            )?;
            println!("wrote the signing key to {}", out.display());
            println!("public key (add it to an organization's trusted vendor keys):");
            println!("{public}");
            Ok(())
        }
        Command::Plugin {
            command: PluginCommand::Sign { bundle, key },
        } => {
            use rapport::plugins::signature;
            let bytes = std::fs::read(&bundle)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", bundle.display()))?;
            let key = signature::read_key_file(&key).map_err(|e| anyhow::anyhow!(e))?;
            let signed = signature::sign(&bytes, &key).map_err(|e| anyhow::anyhow!(e))?;
            std::fs::write(&bundle, signed)?;
            println!("{}", bundle.display());
            Ok(())
        }
        Command::Plugin {
            command:
                PluginCommand::Install {
                    bundle,
                    org,
                    grant,
                    grant_all,
                },
        } => {
            let bytes = std::fs::read(&bundle)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", bundle.display()))?;
            let pool = open(&config)?;
            let org = find_org(&pool, &org)?;
            let grants = if grant_all {
                rapport::plugins::bundle::unpack(&bytes)
                    .map_err(|e| anyhow::anyhow!(e))?
                    .manifest
                    .capabilities
            } else {
                grant
            };
            let ctx = AuditContext::cli(&org.id);
            let row = with_conn(&pool, |c| {
                rapport::plugins::install(c, &ctx, &bytes, &grants)
            })?;
            println!(
                "installed {} {} in {} (granted: {})",
                row.plugin_id,
                row.version,
                org.slug,
                row.granted_list().join(", ")
            );
            Ok(())
        }
        Command::Token {
            command: TokenCommand::Create { org, email, name },
        } => {
            let pool = open(&config)?;
            let org = find_org(&pool, &org)?;
            let ctx = AuditContext::cli(&org.id);
            let email = email.trim().to_lowercase();
            let (_, secret) = with_conn(&pool, |c| {
                let user = store::find_user_by_email(c, &email)?.ok_or_else(|| {
                    AppError::invalid(
                        "email",
                        "No user with this e-mail is a member of the organization.",
                    )
                })?;
                service::create_token(c, &ctx, &user.id, &name).map_err(|e| match e {
                    AppError::NotFound => AppError::invalid(
                        "email",
                        "This user is not an active member of the organization.",
                    ),
                    other => other,
                })
            })?;
            println!("{secret}");
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    // why: these variables change Extism's sandbox (WASI output, dumps, profiling); a plugin's
    // behaviour must not depend on the operator's shell. Cleared before any thread starts.
    for var in [
        "EXTISM_ENABLE_WASI_OUTPUT",
        "EXTISM_MEMDUMP",
        "EXTISM_COREDUMP",
        "EXTISM_DEBUG",
        "EXTISM_PROFILE",
        "EXTISM_CACHE_CONFIG",
    ] {
        std::env::remove_var(var);
    }
    let cli = Cli::parse();
    let result = actix_web::rt::System::new().block_on(run(cli));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
