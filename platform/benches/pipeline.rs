//! Board and forecast latency with many open deals: seeds an organization with
//! `BENCH_DEALS` deals (250,000 by default, ~200,000 of them open; reused across runs)
//! and prints p50/p99 latency and sequential throughput for the board page, the
//! forecast page and the forecast API.
//!
//!   cargo bench -p rapport-platform --bench pipeline
//!   BENCH_DATABASE_URL='postgres://postgres@127.0.0.1:5432/test?options=-csearch_path%3Drapport_bench_deals' \
//!     cargo bench -p rapport-platform --bench pipeline
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use actix_web::test::{self, TestRequest};
use diesel::connection::SimpleConnection;
use diesel::Connection;
use rapport::app::build;
use rapport::auth::session::{sign_in, SignInAttempt};
use rapport::config::Config;
use rapport::db::{self, DbTarget};
use rapport::domain::audit::AuditContext;
use rapport::domain::orgs::{service, store};
use rapport::state::AppState;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let total: Duration = samples.iter().sum();
    let p =
        |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e3;
    println!(
        "{name:<32} n={:<5} p50={:>8.2} ms  p99={:>8.2} ms  throughput={:>8.1} req/s",
        samples.len(),
        p(0.5),
        p(0.99),
        samples.len() as f64 / total.as_secs_f64()
    );
}

fn main() {
    let url = env_or(
        "BENCH_DATABASE_URL",
        &format!(
            "sqlite://{}",
            std::env::temp_dir()
                .join("rapport-bench-deals.db")
                .display()
        ),
    );
    let target = DbTarget::parse(&url).unwrap();
    if let (db::Backend::Postgres, Some((base, _))) = (target.backend, url.split_once('?')) {
        let schema = url
            .split("search_path%3D")
            .nth(1)
            .unwrap_or("rapport_bench_deals")
            .split('&')
            .next()
            .unwrap_or("rapport_bench_deals");
        diesel::PgConnection::establish(base)
            .unwrap()
            .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .unwrap();
    }
    let wanted: usize = env_or("BENCH_DEALS", "250000").parse().unwrap();
    let requests: usize = env_or("BENCH_REQUESTS", "200").parse().unwrap();
    let pool = db::connect(&target, 8).unwrap();
    db::migrate(&mut pool.get().unwrap()).unwrap();
    let mut conn = pool.get().unwrap();
    let org = match store::find_org_by_ref(&mut conn, "bench").unwrap() {
        Some(o) => o,
        None => {
            let org = service::create_org(&mut conn, "Bench").unwrap();
            let ctx = AuditContext::cli(&org.id);
            for (email, role) in [
                ("manager@bench.test", "manager"),
                ("rep1@bench.test", "sales_rep"),
                ("rep2@bench.test", "sales_rep"),
                ("rep3@bench.test", "sales_rep"),
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
            rapport::seed::seed_clients(&mut conn, &org, 20_000, 1, |_| {}).unwrap();
            org
        }
    };
    let have: i64 = {
        use diesel::prelude::*;
        use rapport::db::schema::opportunities;
        opportunities::table
            .filter(opportunities::organization_id.eq(&org.id))
            .count()
            .get_result(&mut *conn)
            .unwrap()
    };
    if (have as usize) < wanted {
        let missing = wanted - have as usize;
        println!("seeding {missing} deals into {:?}…", target.backend);
        let started = Instant::now();
        rapport::seed::seed_deals(&mut conn, &org, missing, have as u64 + 11, |done| {
            if done % 50_000 == 0 {
                println!(
                    "  {done} / {missing} ({:.0} s)",
                    started.elapsed().as_secs_f64()
                );
            }
        })
        .unwrap();
        conn.batch_execute("ANALYZE").unwrap();
        println!("seeded in {:.1} s", started.elapsed().as_secs_f64());
    }
    let open: i64 = {
        use diesel::prelude::*;
        use rapport::db::schema::opportunities;
        opportunities::table
            .filter(opportunities::organization_id.eq(&org.id))
            .filter(opportunities::status.eq("open"))
            .count()
            .get_result(&mut *conn)
            .unwrap()
    };
    let session = sign_in(
        &mut conn,
        SignInAttempt {
            email: "manager@bench.test",
            password: "bench-password-1",
            ip: "127.0.0.1",
            user_agent: "bench",
            previous_session: None,
            request_id: "bench",
        },
    )
    .unwrap()
    .token;
    let manager = store::find_user_by_email(&mut conn, "manager@bench.test")
        .unwrap()
        .unwrap();
    let token = service::create_token(&mut conn, &AuditContext::cli(&org.id), &manager.id, "bench")
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
        let cookie = ("cookie", format!("rapport_session={session}"));
        let bearer = ("authorization", format!("Bearer {token}"));
        println!(
            "\n{:?}, {wanted} deals ({open} open), {requests} sequential requests per scenario",
            target.backend
        );
        let scenarios: Vec<(&str, &str, (&str, String))> = vec![
            ("GET /pipeline (board page)", "/pipeline", cookie.clone()),
            ("GET /forecast (page)", "/forecast", cookie.clone()),
            (
                "GET /api/crm/analytics/pipeline",
                "/api/crm/analytics/pipeline?months=6",
                bearer.clone(),
            ),
        ];
        for (name, path, auth) in scenarios {
            for _ in 0..10 {
                let res = test::call_service(
                    &app,
                    TestRequest::get()
                        .uri(path)
                        .insert_header(auth.clone())
                        .to_request(),
                )
                .await;
                assert!(res.status().is_success(), "{name}: {}", res.status());
                let _ = test::read_body(res).await;
            }
            let mut samples = Vec::with_capacity(requests);
            for _ in 0..requests {
                let req = TestRequest::get()
                    .uri(path)
                    .insert_header(auth.clone())
                    .to_request();
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
