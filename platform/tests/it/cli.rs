//! The `rapport` command as an operator uses it.

use std::process::Command;

use crate::support::*;

fn rapport(db_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rapport"))
        .args(args)
        .env("DATABASE_URL", db_url)
        .env("RAPPORT_LOG", "warn")
        .output()
        .unwrap()
}

fn url_of(t: &TestApp) -> String {
    match t.target.backend {
        rapport::db::Backend::Postgres => t.target.location.clone(),
        rapport::db::Backend::Sqlite => format!("sqlite://{}", t.target.location),
    }
}

fn last_line(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

#[actix_web::test]
async fn operators_create_orgs_users_and_tokens() {
    let t = TestApp::new().await;
    let url = url_of(&t);
    let out = rapport(&url, &["org", "create", "Wayne Enterprises"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(last_line(&out), "wayne-enterprises");
    let again = rapport(&url, &["org", "create", "Wayne Enterprises"]);
    assert_eq!(
        last_line(&again),
        "wayne-enterprises-2",
        "slugs stay unique"
    );

    let out = rapport(
        &url,
        &[
            "user",
            "create",
            "--org",
            "wayne-enterprises",
            "--email",
            "bruce@wayne.test",
            "--password",
            "batcave-1939",
            "--role",
            "admin",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = rapport(
        &url,
        &[
            "token",
            "create",
            "--org",
            "wayne-enterprises",
            "--email",
            "bruce@wayne.test",
            "--name",
            "ci",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = last_line(&out);
    assert!(token.starts_with("rpt_"));

    let app = t.service().await;
    let me = send(&app, api(actix_web::http::Method::GET, "/api/me", &token))
        .await
        .json();
    assert_eq!(me["organization"]["slug"], "wayne-enterprises");
    assert_eq!(me["role"], "admin");
}

#[actix_web::test]
async fn bad_arguments_and_unreachable_databases_fail_clearly() {
    let t = TestApp::new().await;
    let url = url_of(&t);
    let out = rapport(
        &url,
        &[
            "user",
            "create",
            "--org",
            "nowhere",
            "--email",
            "a@b.test",
            "--password",
            "long enough pw",
            "--role",
            "admin",
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no organization"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = rapport(
        &url,
        &[
            "user",
            "create",
            "--org",
            "x",
            "--email",
            "a@b.test",
            "--password",
            "p",
            "--role",
            "wizard",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("wizard"));

    rapport(&url, &["org", "create", "Acme"]);
    let out = rapport(
        &url,
        &[
            "user",
            "create",
            "--org",
            "acme",
            "--email",
            "a@b.test",
            "--password",
            "short",
            "--role",
            "admin",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 10 characters"));

    let out = rapport("mysql://localhost/db", &["migrate"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported DATABASE_URL scheme"));

    // Nothing listens on port 1: a clear error, and no SQLite file appears by mistake.
    let out = rapport("postgres://nobody@127.0.0.1:1/nothing", &["migrate"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot connect to the Postgres database"),
        "{err}"
    );
    assert!(!std::path::Path::new("postgres:").exists());
}

/// `rapport seed` then `rapport search reindex`: the rebuild reads every client from the
/// database into the embedded index under the data directory, and a second run finds the
/// same records (in place, nothing duplicated).
#[actix_web::test]
async fn search_reindex_rebuilds_the_embedded_index() {
    let t = TestApp::new().await;
    let url = url_of(&t);
    let data = std::env::temp_dir().join(format!("rapport-cli-search-{}", uuid::Uuid::new_v4()));
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_rapport"))
            .args(args)
            .env("DATABASE_URL", &url)
            .env("RAPPORT_DATA_DIR", &data)
            .env("RAPPORT_LOG", "warn")
            .output()
            .unwrap()
    };
    assert!(run(&["org", "create", "Seeded"]).status.success());
    let out = run(&[
        "seed",
        "--org",
        "seeded",
        "--clients",
        "40",
        "--deals",
        "10",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for _ in 0..2 {
        let out = run(&["search", "reindex", "--org", "seeded"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = last_line(&out);
        assert!(
            line.contains(": 40 clients, 10 deals indexed, 0 stale documents removed"),
            "{line}"
        );
    }
    let bad = run(&["search", "reindex", "--org", "nope"]);
    assert!(!bad.status.success());
    let _ = std::fs::remove_dir_all(&data);
}

/// `rapport import` recognises the kind, prints the counts and refuses a broken file.
#[actix_web::test]
async fn operators_import_crm_exports_from_the_command_line() {
    let t = TestApp::new().await;
    let url = url_of(&t);
    let org = t.org("Initech");
    t.user(&org, "admin@initech.test", "admin");
    let data = std::env::temp_dir().join(format!("rapport-cli-import-{}", uuid::Uuid::new_v4()));
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/imports");
    let run = |file: &str, extra: &[&str]| {
        let path = format!("{dir}/{file}");
        let mut args = vec!["import", path.as_str(), "--org", org.slug.as_str()];
        args.extend_from_slice(extra);
        Command::new(env!("CARGO_BIN_EXE_rapport"))
            .args(&args)
            .env("DATABASE_URL", &url)
            .env("RAPPORT_DATA_DIR", &data)
            .env("RAPPORT_LOG", "warn")
            .output()
            .unwrap()
    };
    let out = run("hubspot-companies.csv", &["--preset", "hubspot"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("hubspot companies, 40 rows")
            && text.contains("created 35, updated 5, skipped 0, failed 0"),
        "{text}"
    );
    let out = run(
        "hubspot-contacts.csv",
        &[
            "--preset", "hubspot", "--kind", "contacts", "--mode", "skip",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("created 107, updated 0, skipped 11, failed 0"),
        "{text}"
    );
    let out = run("MANIFEST.txt", &["--kind", "contacts"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("None of the columns"), "{err}");
}
