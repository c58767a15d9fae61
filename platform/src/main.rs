//! The `rapport` command: serve, migrate, demo, and administration from the shell.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rapport::cli::{self, admin, data, plugins, serve};
use rapport::config::Config;

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
        /// Listen address (default 127.0.0.1:8080); also RAPPORT_ADDR.
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
    /// Train the organization's churn model on its own history and print how well it
    /// ranks clients on later data it did not see (AUC; 0.5 is chance).
    ChurnModel {
        /// Organization slug or id.
        #[arg(long)]
        org: String,
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

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = Config::from_env()?;
    match cli.command {
        Command::Serve { addr } => {
            cli::init_tracing(config.log_json);
            config.addr = addr.unwrap_or(config.addr);
            let pool = cli::open_for_serving(&config)?;
            serve::serve(config, pool).await
        }
        Command::Demo { addr } => {
            cli::init_tracing(config.log_json);
            config.addr = addr.unwrap_or(config.addr);
            let pool = cli::open_for_serving(&config)?;
            let accounts = serve::seed_demo(&pool, &config)?;
            // Last, so the sign-in details are what the terminal shows.
            println!("\n{accounts}");
            serve::serve(config, pool).await
        }
        Command::Migrate => {
            cli::init_tracing(config.log_json);
            cli::open(&config)?;
            println!("migrations are up to date");
            Ok(())
        }
        Command::Org {
            command: OrgCommand::Create { name },
        } => admin::create_org(&config, &name),
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
            let user = admin::NewUser {
                org,
                email,
                password,
                role,
                name,
            };
            admin::create_user(&config, user)
        }
        Command::Token {
            command: TokenCommand::Create { org, email, name },
        } => admin::create_token(&config, &org, &email, &name),
        Command::ChurnModel { org } => data::churn_model(&config, &org),
        Command::Seed {
            org,
            clients,
            deals,
            seed,
        } => data::seed(&config, &org, clients, deals, seed),
        Command::Import {
            file,
            org,
            preset,
            kind,
            mode,
            actor,
        } => {
            let args = data::ImportFile {
                file,
                org,
                preset,
                kind,
                mode,
                actor,
            };
            data::import(&config, args)
        }
        Command::Search {
            command: SearchCommand::Reindex { org },
        } => {
            cli::init_tracing(config.log_json);
            data::reindex(&config, org).await
        }
        Command::Plugin { command } => match command {
            PluginCommand::Pack { dir, wasm, sign } => {
                plugins::pack(&dir, wasm.as_deref(), sign.as_deref())
            }
            PluginCommand::Keygen { out } => plugins::keygen(&out),
            PluginCommand::Sign { bundle, key } => plugins::sign(&bundle, &key),
            PluginCommand::Install {
                bundle,
                org,
                grant,
                grant_all,
            } => plugins::install(&config, &bundle, &org, grant, grant_all),
        },
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
