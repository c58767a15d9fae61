//! Soak: `BENCH_REQUESTS` (20,000) mixed API requests (lists, filters, search, profiles,
//! creates, edits, timelines, an export) through the whole actix stack, printing the
//! process's resident memory every 2,000 requests. A line that keeps climbing is a leak;
//! a plateau is caches filling (the allocator keeps what it got).
//!
//!   cargo bench -p rapport-platform --bench soak
//!   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo bench -p rapport-platform --bench soak
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mod.rs"]
mod support;

use support::env_or;

use std::time::Instant;

use actix_web::test::{self, TestRequest};
use rapport::app::build;
use rapport::domain::audit::AuditContext;
use rapport::domain::orgs::service;
use rapport::state::AppState;
use serde_json::json;

/// Resident memory of this process, in MB (Linux).
fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

#[actix_web::main]
async fn main() {
    let total: usize = env_or("BENCH_REQUESTS", "20000").parse().unwrap();
    let (target, pool, config) = support::fresh("soak", 8);
    let dir = config.data_dir.clone();
    let state = AppState::new(pool.clone(), config).await.unwrap();
    let token = {
        let mut c = pool.get().unwrap();
        let org = service::create_org(&mut c, "Soak").unwrap();
        let (m, _) = service::add_member(
            &mut c,
            &AuditContext::cli(&org.id),
            service::NewMember {
                email: "soak@bench.test",
                name: "Soak",
                password: Some("correct horse battery"),
                role: "admin",
            },
        )
        .unwrap();
        service::create_token(&mut c, &AuditContext::cli(&org.id), &m.user.id, "soak")
            .unwrap()
            .1
    };
    let app = test::init_service(build(state.clone())).await;
    let auth = format!("Bearer {token}");
    let call = |req: TestRequest| {
        let req = req
            .insert_header(("authorization", auth.as_str()))
            .to_request();
        let app = &app;
        async move {
            let res = test::call_service(app, req).await;
            let status = res.status();
            let body = test::read_body(res).await;
            (status, body)
        }
    };
    let mut ids: Vec<String> = Vec::new();
    let started = Instant::now();
    let mut errors = 0usize;
    println!(
        "{:?}: {total} mixed requests; RSS at start {:.0} MB",
        target.backend,
        rss_mb()
    );
    for i in 0..total {
        let req = match i % 10 {
            0 | 5 => TestRequest::post().uri("/api/clients").set_json(json!({
                "type": "individual", "firstName": format!("Soak{i}"), "lastName": "Person",
                "email": format!("soak{i}@bench.test"), "phone": format!("+1 212 555 {:04}", i % 10_000)
            })),
            1 => TestRequest::get().uri("/api/clients?limit=50"),
            2 => TestRequest::get().uri("/api/clients?filter[status]=lead&sort=name"),
            3 => TestRequest::get().uri(&format!("/api/search?q=soak{}", i / 2)),
            4 | 8 => match ids.get(i % ids.len().max(1)) {
                Some(id) => TestRequest::get().uri(&format!("/api/clients/{id}")),
                None => TestRequest::get().uri("/api/me"),
            },
            6 => match ids.last() {
                Some(id) => TestRequest::patch()
                    .uri(&format!("/api/clients/{id}"))
                    .set_json(json!({"industry": format!("Industry {i}")})),
                None => TestRequest::get().uri("/api/me"),
            },
            7 => match ids.get(i % ids.len().max(1)) {
                Some(id) => TestRequest::post()
                    .uri(&format!("/api/clients/{id}/interactions"))
                    .set_json(json!({"type": "call", "subject": "Soak call", "direction": "outbound"})),
                None => TestRequest::get().uri("/api/me"),
            },
            _ => {
                if i % 1000 == 9 {
                    TestRequest::get().uri("/api/clients/export?format=csv")
                } else {
                    TestRequest::get().uri("/api/opportunities?limit=50")
                }
            }
        };
        let (status, body) = call(req).await;
        if status.is_server_error() {
            errors += 1;
        }
        if status.as_u16() == 201 {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
                if let Some(id) = v["id"].as_str() {
                    ids.push(id.to_string());
                }
            }
        }
        if (i + 1) % 2000 == 0 {
            println!(
                "  after {:>6} requests: RSS {:>6.0} MB  ({:.0} req/s, {errors} server errors)",
                i + 1,
                rss_mb(),
                (i + 1) as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    drop(state);
    let _ = std::fs::remove_dir_all(&dir);
}
