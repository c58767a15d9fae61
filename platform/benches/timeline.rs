//! Timeline latency: one client with `BENCH_INTERACTIONS` interactions (10,000 by default)
//! and p50/p99 for the first timeline page as the console renders it (the htmx card and
//! the whole profile page) and as the API answers it. Target: p99 under 30 ms.
//!
//! SQLite (a fresh file under the system temp dir):
//!   cargo bench -p rapport-platform --bench timeline
//! PostgreSQL (a schema of its own, created if missing; a new organization per run):
//!   BENCH_DATABASE_URL='postgres://postgres@127.0.0.1:5432/test?options=-csearch_path%3Drapport_bench' \
//!     cargo bench -p rapport-platform --bench timeline
//!
//! Requests go through the whole actix stack in-process (session, CSRF, policy, SQL,
//! templates), without a network hop.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use actix_web::test::{self, TestRequest};
use diesel::connection::SimpleConnection;
use diesel::{Connection, RunQueryDsl};
use rapport::app::build;
use rapport::config::Config;
use rapport::db::{self, DbTarget};
use rapport::domain::audit::AuditContext;
use rapport::domain::interactions::InteractionRow;
use rapport::domain::orgs::service;
use rapport::state::AppState;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |p: f64| {
        let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
        samples[i].as_secs_f64() * 1e3
    };
    println!(
        "{name:<44} n={:<5} p50={:>7.2} ms  p99={:>7.2} ms  max={:>7.2} ms",
        samples.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
}

/// The value of `name` among a response's Set-Cookie headers.
fn cookie<B>(res: &actix_web::dev::ServiceResponse<B>, name: &str) -> Option<String> {
    res.headers()
        .get_all(actix_web::http::header::SET_COOKIE)
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| actix_web::cookie::Cookie::parse(v.to_string()).ok())
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

fn main() {
    let path = std::env::temp_dir().join("rapport-bench-timeline.db");
    let url = std::env::var("BENCH_DATABASE_URL").unwrap_or_else(|_| {
        let _ = std::fs::remove_file(&path);
        format!("sqlite://{}", path.display())
    });
    let target = DbTarget::parse(&url).unwrap();
    if let (db::Backend::Postgres, Some((base, _))) = (target.backend, url.split_once('?')) {
        let schema = url
            .split("search_path%3D")
            .nth(1)
            .and_then(|s| s.split('&').next())
            .unwrap_or("rapport_bench");
        let mut admin = diesel::PgConnection::establish(base).unwrap();
        admin
            .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .unwrap();
    }
    let wanted: usize = env_or("BENCH_INTERACTIONS", "10000").parse().unwrap();
    let requests: usize = env_or("BENCH_REQUESTS", "300").parse().unwrap();
    let pool = db::connect(&target, 4).unwrap();
    db::migrate(&mut pool.get().unwrap()).unwrap();

    let mut conn = pool.get().unwrap();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let org = service::create_org(&mut conn, &format!("Timeline bench {}", &run[..8])).unwrap();
    let ctx = AuditContext::cli(&org.id);
    let email = format!("rep-{}@bench.test", &run[..8]);
    service::add_member(
        &mut conn,
        &ctx,
        service::NewMember {
            email: &email,
            name: "Bench Rep",
            password: Some("bench-password-1"),
            role: "sales_rep",
        },
    )
    .unwrap();
    let user = rapport::domain::orgs::store::find_user_by_email(&mut conn, &email)
        .unwrap()
        .unwrap()
        .id;
    let token = service::create_token(&mut conn, &ctx, &user, "bench")
        .unwrap()
        .1;
    drop(conn);

    let config = Config {
        data_dir: std::env::temp_dir(),
        database: target.clone(),
        addr: "127.0.0.1:0".into(),
        log_json: false,
        trust_proxy: false,
        json_limit: 1 << 20,
        pool_size: 4,
        search: rapport::config::SearchConfig::Memory,
        max_upload_bytes: rapport::domain::attachments::DEFAULT_MAX_BYTES,
        blob_store: Default::default(),
        system_mail: None,
    };
    actix_web::rt::System::new().block_on(async move {
        let state = AppState::new(pool.clone(), config).await.unwrap();
        let app = test::init_service(build(state)).await;
        let auth = ("authorization", format!("Bearer {token}"));
        let res = test::call_service(
            &app,
            TestRequest::post()
                .uri("/api/clients")
                .insert_header(auth.clone())
                .set_json(serde_json::json!({"type": "company", "companyName": "Busy Corp"}))
                .to_request(),
        )
        .await;
        let client: serde_json::Value = test::read_body_json(res).await;
        let client = client["id"].as_str().unwrap().to_string();

        let started = Instant::now();
        let mut conn = pool.get().unwrap();
        let base = rapport::db::now() - chrono::Duration::days(3650);
        let kinds = ["call", "meeting", "email", "note", "task"];
        let rows: Vec<InteractionRow> = (0..wanted)
            .map(|i| {
                let at = base + chrono::Duration::minutes(i as i64 * 37);
                InteractionRow {
                    id: uuid::Uuid::now_v7().to_string(),
                    organization_id: org.id.clone(),
                    client_id: client.clone(),
                    opportunity_id: None,
                    user_id: Some(user.clone()),
                    kind: kinds[i % kinds.len()].into(),
                    subject: format!("Interaction {i}"),
                    content: "Talked about the renewal, the budget for next year and who signs."
                        .into(),
                    direction: Some("outbound".into()),
                    status: "completed".into(),
                    scheduled_at: None,
                    completed_at: Some(at),
                    occurred_at: at,
                    outcome: None,
                    duration_minutes: Some(15),
                    metadata: "{}".into(),
                    version: 1,
                    created_at: at,
                    updated_at: at,
                    deleted_at: None,
                    due_at: None,
                    priority: None,
                    assignee_id: None,
                    remind_at: None,
                    reminded_at: None,
                    location: None,
                    external_id: None,
                }
            })
            .collect();
        // why: the multi-backend connection has no batch insert; one transaction keeps
        // row-at-a-time inserts quick.
        conn.transaction::<_, diesel::result::Error, _>(|c| {
            for r in &rows {
                diesel::insert_into(rapport::db::schema::interactions::table)
                    .values(r)
                    .execute(c)?;
            }
            Ok(())
        })
        .unwrap();
        conn.batch_execute("ANALYZE").unwrap();
        drop(conn);
        println!(
            "seeded {wanted} interactions on one client in {:.1} s ({:?})",
            started.elapsed().as_secs_f64(),
            target.backend
        );

        // Sign in to the console as a browser does.
        let res = test::call_service(&app, TestRequest::get().uri("/login").to_request()).await;
        let csrf = cookie(&res, "rapport_csrf").unwrap();
        let form = serde_urlencoded::to_string([
            ("email", email.as_str()),
            ("password", "bench-password-1"),
            ("csrf_token", csrf.as_str()),
        ])
        .unwrap();
        let res = test::call_service(
            &app,
            TestRequest::post()
                .uri("/login")
                .insert_header(("cookie", format!("rapport_csrf={csrf}")))
                .insert_header(("content-type", "application/x-www-form-urlencoded"))
                .set_payload(form)
                .to_request(),
        )
        .await;
        let session = cookie(&res, "rapport_session").expect("signed in");
        let cookies = format!("rapport_csrf={csrf}; rapport_session={session}");

        let newest = format!("Interaction {}", wanted - 1);
        // Calls are every fifth row from the first.
        let newest_call = format!("Interaction {}", (wanted - 1) / 5 * 5);
        let scenarios: Vec<(&str, String, bool, &str)> = vec![
            (
                "console: timeline card (first page)",
                format!("/clients/{client}/timeline"),
                true,
                &newest,
            ),
            (
                "console: whole profile page",
                format!("/clients/{client}"),
                false,
                &newest,
            ),
            (
                "console: My tasks page (layout only)",
                "/tasks".to_string(),
                false,
                "My tasks",
            ),
            (
                "api: GET /api/clients/:id/interactions",
                format!("/api/clients/{client}/interactions?limit=20"),
                false,
                &newest,
            ),
            (
                "console: timeline, calls only",
                format!("/clients/{client}/timeline?type=call"),
                true,
                &newest_call,
            ),
        ];
        println!("{requests} sequential requests per scenario");
        for (name, uri, htmx, expect) in scenarios {
            let make = || {
                let mut r = TestRequest::get().uri(&uri);
                if uri.starts_with("/api/") {
                    r = r.insert_header(auth.clone());
                } else {
                    r = r.insert_header(("cookie", cookies.clone()));
                }
                if htmx {
                    r = r.insert_header(("HX-Request", "true"));
                }
                r.to_request()
            };
            for _ in 0..20 {
                let res = test::call_service(&app, make()).await;
                assert!(res.status().is_success(), "{name}: {}", res.status());
                let body = test::read_body(res).await;
                assert!(
                    String::from_utf8_lossy(&body).contains(expect),
                    "{name}: the newest interaction is on the first page"
                );
            }
            let mut samples = Vec::with_capacity(requests);
            for _ in 0..requests {
                let req = make();
                let t = Instant::now();
                let res = test::call_service(&app, req).await;
                let status = res.status();
                let _ = test::read_body(res).await;
                samples.push(t.elapsed());
                // why: an error answers fast; one in the samples would flatter the figures.
                assert!(status.is_success(), "{name}: {status}");
            }
            report(name, samples);
        }
    });
}
