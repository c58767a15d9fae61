//! Client API latency at scale: seeds an organization to `BENCH_CLIENTS` clients
//! (1,000,000 by default; reused across runs) and prints p50/p99 latency and
//! sequential throughput for list page 1, a custom-field filter, a profile and a create.
//!
//! SQLite (default file under the system temp dir):
//!   cargo bench -p rapport-platform --bench clients
//! PostgreSQL (a schema of its own, created if missing):
//!   BENCH_DATABASE_URL='postgres://postgres@127.0.0.1:5432/test?options=-csearch_path%3Drapport_bench' \
//!     cargo bench -p rapport-platform --bench clients
//!
//! Requests go through the whole actix stack in-process (auth, policy, handlers, SQL),
//! without a network hop.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use actix_web::test::{self, TestRequest};
use diesel::connection::SimpleConnection;
use diesel::Connection;
use rapport::app::build;
use rapport::config::Config;
use rapport::db::{self, DbTarget};
use rapport::domain::audit::AuditContext;
use rapport::domain::clients::store as clients;
use rapport::domain::orgs::{service, store};
use rapport::state::AppState;

/// Builds the i-th request of a scenario.
type RequestMaker<'a> = Box<dyn Fn(usize) -> TestRequest + 'a>;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let total: Duration = samples.iter().sum();
    let mean = total / samples.len() as u32;
    println!(
        "{name:<34} n={:<5} p50={:>8.2} ms  p99={:>8.2} ms  mean={:>8.2} ms  throughput={:>8.1} req/s",
        samples.len(),
        percentile(&samples, 0.50).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        mean.as_secs_f64() * 1e3,
        samples.len() as f64 / total.as_secs_f64(),
    );
}

fn main() {
    let url = env_or(
        "BENCH_DATABASE_URL",
        &format!(
            "sqlite://{}",
            std::env::temp_dir().join("rapport-bench.db").display()
        ),
    );
    let target = DbTarget::parse(&url).unwrap();
    if let (db::Backend::Postgres, Some((base, _))) = (target.backend, url.split_once('?')) {
        let schema = url
            .split("search_path%3D")
            .nth(1)
            .unwrap_or("rapport_bench")
            .split('&')
            .next()
            .unwrap_or("rapport_bench");
        let mut admin = diesel::PgConnection::establish(base).unwrap();
        admin
            .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .unwrap();
    }
    let wanted: usize = env_or("BENCH_CLIENTS", "1000000").parse().unwrap();
    let requests: usize = env_or("BENCH_REQUESTS", "400").parse().unwrap();
    let pool = db::connect(&target, 8).unwrap();
    db::migrate(&mut pool.get().unwrap()).unwrap();

    let mut conn = pool.get().unwrap();
    let org = match store::find_org_by_ref(&mut conn, "bench").unwrap() {
        Some(o) => o,
        None => service::create_org(&mut conn, "Bench").unwrap(),
    };
    let manager = match store::find_user_by_email(&mut conn, "manager@bench.test").unwrap() {
        Some(u) => u.id,
        None => {
            let ctx = AuditContext::cli(&org.id);
            for (email, role) in [
                ("manager@bench.test", "manager"),
                ("rep1@bench.test", "sales_rep"),
                ("rep2@bench.test", "sales_rep"),
            ] {
                service::add_member(
                    &mut conn,
                    &ctx,
                    service::NewMember {
                        email,
                        name: email,
                        password: Some("bench-password-1"),
                        role,
                    },
                )
                .unwrap();
            }
            store::find_user_by_email(&mut conn, "manager@bench.test")
                .unwrap()
                .unwrap()
                .id
        }
    };
    let have: i64 = clients::counts_by_status(&mut conn, &org.id, None)
        .unwrap()
        .iter()
        .map(|(_, n)| n)
        .sum();
    if (have as usize) < wanted {
        let missing = wanted - have as usize;
        println!(
            "seeding {missing} clients into {:?} ({})…",
            target.backend, url
        );
        let started = Instant::now();
        rapport::seed::seed_clients(&mut conn, &org, missing, have as u64 + 1, |done| {
            if done % 100_000 == 0 {
                println!(
                    "  {done} / {missing} ({:.0} s)",
                    started.elapsed().as_secs_f64()
                );
            }
        })
        .unwrap();
        println!("seeded in {:.1} s", started.elapsed().as_secs_f64());
        // why: fresh statistics, or the planners guess badly about the new rows.
        conn.batch_execute("ANALYZE").unwrap();
    }
    let token = service::create_token(&mut conn, &AuditContext::cli(&org.id), &manager, "bench")
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
        pool_size: 8,
        search: rapport::config::SearchConfig::Memory,
        max_upload_bytes: rapport::domain::attachments::DEFAULT_MAX_BYTES,
        blob_store: Default::default(),
        system_mail: None,
    };
    actix_web::rt::System::new().block_on(async move {
        let state = AppState::new(pool, config).await.unwrap();
        let app = test::init_service(build(state)).await;
        let auth = ("authorization", format!("Bearer {token}"));
        let today = chrono::Utc::now().date_naive();
        let filter = format!(
            "/api/clients?filter[customFields.renewalDate][gte]={}&filter[customFields.renewalDate][lte]={}",
            today,
            today + chrono::Duration::days(30)
        );
        // Profile targets: ids from a few pages of the default list.
        let mut ids: Vec<String> = Vec::new();
        let mut cursor = String::new();
        while ids.len() < 400 {
            let res = test::call_service(&app, TestRequest::get().uri(&format!("/api/clients?limit=100&cursor={cursor}")).insert_header(auth.clone()).to_request()).await;
            let body: serde_json::Value = test::read_body_json(res).await;
            ids.extend(body["data"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()));
            match body["nextCursor"].as_str() {
                Some(c) => cursor = c.to_string(),
                None => break,
            }
        }
        println!("\n{:?}, {wanted} clients, {requests} sequential requests per scenario", target.backend);
        let scenarios: Vec<(&str, RequestMaker)> = vec![
            ("GET /api/clients (page 1)", Box::new(|_| TestRequest::get().uri("/api/clients?limit=50"))),
            ("GET /api/clients (renewal filter)", Box::new(|_| TestRequest::get().uri(&filter))),
            ("GET /api/clients/:id (profile)", Box::new(|i| TestRequest::get().uri(&format!("/api/clients/{}", ids[i % ids.len()])))),
            (
                "POST /api/clients (create)",
                Box::new(|i| {
                    TestRequest::post().uri("/api/clients").set_json(serde_json::json!({
                        "firstName": "Bench", "lastName": format!("Person {i}"), "email": format!("bench{i}.{}@example.test", today),
                        "customFields": {"renewalDate": today.to_string(), "seats": 3}
                    }))
                }),
            ),
        ];
        for (name, make) in scenarios {
            for i in 0..20 {
                let res = test::call_service(&app, make(i).insert_header(auth.clone()).to_request()).await;
                assert!(res.status().is_success(), "{name}: {}", res.status());
            }
            let mut samples = Vec::with_capacity(requests);
            for i in 0..requests {
                let req = make(i + 20).insert_header(auth.clone()).to_request();
                let started = Instant::now();
                let res = test::call_service(&app, req).await;
                let status = res.status();
                let _ = test::read_body(res).await;
                samples.push(started.elapsed());
                // why: an error answers fast; one in the samples would flatter the figures.
                assert!(status.is_success(), "{name}: {status}");
            }
            report(name, samples);
        }
    });
}
