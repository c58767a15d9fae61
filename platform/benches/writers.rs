//! Concurrent writers on SQLite (or PostgreSQL): `BENCH_WRITERS` writers (20) create and
//! change clients and log calls through the whole actix stack for `BENCH_SECONDS` (30) while
//! an import of `BENCH_IMPORT_ROWS` (50,000) rows runs beside them, and print how many
//! requests failed (any 5xx or 409: "database is locked" used to be both).
//!
//!   cargo bench -p rapport-platform --bench writers
//!   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo bench -p rapport-platform --bench writers
//!
//! A fresh database each run (a temp file, or a throw-away schema on PostgreSQL).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mod.rs"]
mod support;

use support::env_or;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use rapport::app::build;
use rapport::domain::audit::AuditContext;
use rapport::domain::orgs::service;
use rapport::state::AppState;
use serde_json::json;

#[derive(Default)]
struct Tally {
    ok: usize,
    errors: Vec<(u16, String)>,
    latencies: Vec<Duration>,
}

#[actix_web::main]
async fn main() {
    // Failures are logged by the server with their cause; show them.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(env_or(
            "RUST_LOG", "error",
        )))
        .init();
    let writers: usize = env_or("BENCH_WRITERS", "20").parse().unwrap();
    let seconds: u64 = env_or("BENCH_SECONDS", "30").parse().unwrap();
    let import_rows: usize = env_or("BENCH_IMPORT_ROWS", "50000").parse().unwrap();
    let (target, pool, config) = support::fresh("writers", 10);
    let dir = config.data_dir.clone();
    let state = AppState::new(pool.clone(), config).await.unwrap();
    let (org, token) = {
        let mut c = pool.get().unwrap();
        let org = service::create_org(&mut c, "Writers").unwrap();
        let (m, _) = service::add_member(
            &mut c,
            &AuditContext::cli(&org.id),
            service::NewMember {
                email: "bench@writers.test",
                name: "Bench",
                password: Some("correct horse battery"),
                role: "admin",
            },
        )
        .unwrap();
        let (_, token) =
            service::create_token(&mut c, &AuditContext::cli(&org.id), &m.user.id, "bench")
                .unwrap();
        (org, token)
    };
    let app = test::init_service(build(state.clone())).await;
    let auth = format!("Bearer {token}");

    // The import beside the writers.
    let mut csv = String::from("External ID,First Name,Last Name,Email,Phone\n");
    for i in 0..import_rows {
        csv.push_str(&format!(
            "imp-{i},Imported,Person {i},imported{i}@bench.test,+1 212 555 {:04}\n",
            i % 10_000
        ));
    }
    let staged = test::call_service(
        &app,
        TestRequest::post()
            .uri("/api/imports?fileName=people.csv&preset=generic&kind=contacts")
            .insert_header(("authorization", auth.as_str()))
            .insert_header(("content-type", "text/csv"))
            .set_payload(csv)
            .to_request(),
    )
    .await;
    assert_eq!(staged.status(), StatusCode::CREATED);
    let staged: serde_json::Value = test::read_body_json(staged).await;
    let batch = staged["id"].as_str().unwrap().to_string();
    let started = test::call_service(
        &app,
        TestRequest::post()
            .uri(&format!("/api/imports/{batch}/run"))
            .insert_header(("authorization", auth.as_str()))
            .to_request(),
    )
    .await;
    assert_eq!(started.status(), StatusCode::ACCEPTED);

    let tally = Rc::new(RefCell::new(Tally::default()));
    let until = Instant::now() + Duration::from_secs(seconds);
    let import = {
        let state = state.clone();
        async move {
            let t = Instant::now();
            let r = rapport::jobs::run_pending(&state).await;
            (r.map_err(|e| e.to_string()), t.elapsed())
        }
    };
    let writer = |n: usize| {
        let (app, auth, tally) = (&app, auth.clone(), tally.clone());
        async move {
            let mut i = 0usize;
            while Instant::now() < until {
                i += 1;
                let requests: Vec<TestRequest> = vec![TestRequest::post()
                    .uri("/api/clients")
                    .set_json(json!({"type": "individual", "firstName": format!("W{n}"), "lastName": format!("Writer {i}"), "email": format!("w{n}-{i}@bench.test")}))];
                for req in requests {
                    let t = Instant::now();
                    let res = test::call_service(
                        app,
                        req.insert_header(("authorization", auth.as_str()))
                            .to_request(),
                    )
                    .await;
                    let status = res.status();
                    let body: serde_json::Value =
                        serde_json::from_slice(&test::read_body(res).await).unwrap_or_default();
                    let took = t.elapsed();
                    let id = body["id"].as_str().map(str::to_string);
                    record(&tally, status, &body, took);
                    let Some(id) = id else { continue };
                    for (method, uri, payload) in [
                        (
                            "PATCH",
                            format!("/api/clients/{id}"),
                            json!({"industry": format!("Industry {i}")}),
                        ),
                        (
                            "POST",
                            format!("/api/clients/{id}/interactions"),
                            json!({"type": "call", "subject": "Follow-up", "direction": "outbound"}),
                        ),
                        (
                            "PATCH",
                            format!("/api/clients/{id}"),
                            json!({"status": "prospect"}),
                        ),
                    ] {
                        let t = Instant::now();
                        let req = match method {
                            "PATCH" => TestRequest::patch(),
                            _ => TestRequest::post(),
                        };
                        let res = test::call_service(
                            app,
                            req.uri(&uri)
                                .insert_header(("authorization", auth.as_str()))
                                .set_json(payload)
                                .to_request(),
                        )
                        .await;
                        let status = res.status();
                        let body: serde_json::Value =
                            serde_json::from_slice(&test::read_body(res).await).unwrap_or_default();
                        record(&tally, status, &body, t.elapsed());
                    }
                }
            }
        }
    };
    let wall = Instant::now();
    let (import_result, _) = futures_util::future::join(
        import,
        futures_util::future::join_all((0..writers).map(writer)),
    )
    .await;
    let elapsed = wall.elapsed();
    let t = tally.borrow();
    let mut lat = t.latencies.clone();
    lat.sort();
    let p = |q: f64| lat[((lat.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e3;
    let imported: i64 = {
        use diesel::prelude::*;
        use rapport::db::schema::import_batches as b;
        let mut c = pool.get().unwrap();
        b::table
            .filter(b::id.eq(&batch))
            .select(b::created_count)
            .first::<i32>(&mut c)
            .unwrap()
            .into()
    };
    println!(
        "{:?}: {writers} writers for {:.1} s beside an import of {import_rows} rows",
        target.backend,
        elapsed.as_secs_f64()
    );
    println!(
        "  requests {}  errors {}  throughput {:.0} req/s  p50 {:.1} ms  p99 {:.1} ms",
        t.ok + t.errors.len(),
        t.errors.len(),
        (t.ok + t.errors.len()) as f64 / elapsed.as_secs_f64(),
        p(0.5),
        p(0.99)
    );
    println!(
        "  import: {:?} after {:.1} s, {imported} rows created",
        import_result.0.map(|_| "done"),
        import_result.1.as_secs_f64()
    );
    for (status, detail) in t.errors.iter().take(5) {
        println!("  error {status}: {detail}");
    }
    let _ = org;
    drop(state);
    let _ = std::fs::remove_dir_all(&dir);
}

fn record(
    tally: &Rc<RefCell<Tally>>,
    status: StatusCode,
    body: &serde_json::Value,
    took: Duration,
) {
    let mut t = tally.borrow_mut();
    t.latencies.push(took);
    if status.is_server_error() || status == StatusCode::CONFLICT || status.is_client_error() {
        t.errors.push((
            status.as_u16(),
            body["detail"].as_str().unwrap_or_default().to_string(),
        ));
    } else {
        t.ok += 1;
    }
}
