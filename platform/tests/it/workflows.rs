//! Workflows end to end: built through the API and in the console, started by the changes
//! that trigger them (after commit, by the worker), each step type carried out once, runs
//! that resume after a failure or a dead worker without repeating a step, conditions on
//! custom fields and tags, branches, waits, loop protection, versions, the dry run, date
//! and incoming-call triggers, and who may do what.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;

use actix_web::http::{Method, StatusCode};
use diesel::prelude::*;
use serde_json::{json, Value};

use crate::support::{api, send, Browser, TestApp, PASSWORD};
use crate::webhooks::{header, receiver};

async fn work(app: &TestApp) -> usize {
    let h = rapport::web::scope::handles(&app.state);
    let mut total = 0;
    // Runs a workflow's changes start are carried out in the following rounds.
    for _ in 0..10 {
        let n = rapport::ops::workflows::run_due(&h).await.unwrap();
        total += n;
        if n == 0 {
            break;
        }
    }
    total
}

fn runs_of(app: &TestApp, workflow: &str) -> Vec<(String, String, Option<String>)> {
    use rapport::db::schema::workflow_runs as r;
    let mut c = app.pool.get().unwrap();
    r::table
        .filter(r::workflow_id.eq(workflow))
        .order(r::id.asc())
        .select((r::id, r::status, r::error))
        .load(&mut c)
        .unwrap()
}

fn steps_of(app: &TestApp, run: &str) -> Vec<(i32, String, String)> {
    use rapport::db::schema::workflow_steps as s;
    let mut c = app.pool.get().unwrap();
    s::table
        .filter(s::run_id.eq(run))
        .order(s::position.asc())
        .select((s::position, s::status, s::outcome))
        .load(&mut c)
        .unwrap()
}

/// Makes every waiting or retrying run due now.
fn due_now(app: &TestApp) {
    use rapport::db::schema::workflow_runs as r;
    let mut c = app.pool.get().unwrap();
    diesel::update(r::table.filter(r::status.eq_any(["pending", "waiting"])))
        .set(r::next_at.eq(Some(
            chrono::Utc::now().naive_utc() - chrono::Duration::seconds(1),
        )))
        .execute(&mut c)
        .unwrap();
}

struct Org {
    admin: String,
    manager_id: String,
    manager: String,
    rep_id: String,
    rep: String,
}

fn org(app: &TestApp, name: &str) -> Org {
    let org = app.org(name);
    let slug = name.to_lowercase().replace(' ', "");
    let admin = app.user(&org, &format!("admin@{slug}.test"), "admin");
    let manager_id = app.user(&org, &format!("boss@{slug}.test"), "manager");
    let rep_id = app.user(&org, &format!("rep@{slug}.test"), "sales_rep");
    Org {
        admin: app.token(&org, &admin),
        manager: app.token(&org, &manager_id),
        rep: app.token(&org, &rep_id),
        manager_id,
        rep_id,
    }
}

/// A client's timeline, newest first, as "subject content" lines.
async fn timeline<S, B>(svc: &S, token: &str, client: &str) -> Vec<String>
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let page = send(
        svc,
        api(
            Method::GET,
            &format!("/api/clients/{client}/interactions?limit=100"),
            token,
        ),
    )
    .await
    .json();
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "{} {}",
                i["subject"].as_str().unwrap_or(""),
                i["content"].as_str().unwrap_or("")
            )
        })
        .collect()
}

async fn stage_id<S, B>(svc: &S, token: &str, name: &str) -> String
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let p = send(svc, api(Method::GET, "/api/pipelines", token))
        .await
        .json();
    crate::support::stage_named(&p, name)
}

#[actix_web::test]
async fn a_deal_entering_negotiation_creates_a_task_for_the_manager_and_calls_out() {
    let app = TestApp::new().await;
    let svc = app.service().await;
    let o = org(&app, "Flow Co");
    let status = Arc::new(AtomicU16::new(200));
    let (port, seen) = receiver(status.clone());
    let negotiation = stage_id(&svc, &o.admin, "Negotiation").await;

    // Only admins build workflows; managers read them; reps neither.
    let body = json!({
        "name": "Negotiation follow-up",
        "trigger": {"type": "deal.stage_changed", "stage": negotiation},
        "steps": [
            {"type": "task", "title": "Review the terms for {{ client.name }}", "assignee": "manager", "inDays": 2},
            {"type": "webhook", "url": format!("http://127.0.0.1:{port}/flow"), "allowPrivateHost": true}
        ]
    });
    let r = send(
        &svc,
        api(Method::POST, "/api/workflows", &o.manager).set_json(body.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(&svc, api(Method::GET, "/api/workflows", &o.rep)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Without allowing the private host, this machine is refused (SSRF).
    let mut refused = body.clone();
    refused["steps"][1]["allowPrivateHost"] = json!(false);
    let r = send(
        &svc,
        api(Method::POST, "/api/workflows", &o.admin).set_json(refused),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Step 2"), "{}", r.body);
    let created = send(
        &svc,
        api(Method::POST, "/api/workflows", &o.admin).set_json(body),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let flow = created.json()["id"].as_str().unwrap().to_string();
    let r = send(
        &svc,
        api(Method::GET, &format!("/api/workflows/{flow}"), &o.manager),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["version"], 1);

    // A rep moves a deal: the request does not do the work, the worker does.
    let client = send(
        &svc,
        api(Method::POST, "/api/clients", &o.rep)
            .set_json(json!({"type": "company", "companyName": "Initech"})),
    )
    .await
    .json();
    let deal = send(
        &svc,
        api(Method::POST, "/api/opportunities", &o.rep).set_json(json!({
            "name": "Initech renewal", "clientId": client["id"], "value": "1200.00", "currency": "EUR",
            "stage": stage_id(&svc, &o.rep, "Qualification").await
        })),
    )
    .await
    .json();
    let deal_id = deal["id"].as_str().unwrap().to_string();
    // Another stage does not start it.
    let r = send(
        &svc,
        api(
            Method::POST,
            &format!("/api/opportunities/{deal_id}/move"),
            &o.rep,
        )
        .set_json(json!({"stage": stage_id(&svc, &o.rep, "Proposal").await})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(runs_of(&app, &flow).is_empty());
    let r = send(
        &svc,
        api(
            Method::POST,
            &format!("/api/opportunities/{deal_id}/move"),
            &o.rep,
        )
        .set_json(json!({"stage": negotiation})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let runs = runs_of(&app, &flow);
    assert_eq!(runs.len(), 1);
    assert_eq!(
        runs[0].1, "pending",
        "written with the move, carried out after it"
    );
    assert!(seen.lock().unwrap().is_empty());

    work(&app).await;
    let runs = runs_of(&app, &flow);
    assert_eq!(runs[0].1, "done", "{runs:?}");
    let steps = steps_of(&app, &runs[0].0);
    assert_eq!(steps.len(), 2);
    assert!(
        steps[0].2.contains("Review the terms for Initech"),
        "{steps:?}"
    );
    // The manager has the task, on the deal.
    let tasks = send(&svc, api(Method::GET, "/api/tasks", &o.manager)).await;
    assert!(
        tasks.body.contains("Review the terms for Initech"),
        "{}",
        tasks.body
    );
    // The receiver got the call, with the deal in it.
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let call: Value = serde_json::from_str(&got[0].1).unwrap();
    assert_eq!(call["record"]["id"], deal_id.as_str());
    assert_eq!(call["record"]["type"], "deal");
    assert!(header(&got[0].0, "webhook-id").starts_with("wfs_"));
    // The run is on the client's timeline and in the API's history of the record.
    let tl = send(
        &svc,
        api(
            Method::GET,
            &format!(
                "/api/clients/{}/interactions",
                client["id"].as_str().unwrap()
            ),
            &o.rep,
        ),
    )
    .await;
    assert!(
        tl.body.contains("Workflow “Negotiation follow-up” ran"),
        "{}",
        tl.body
    );
    let r = send(
        &svc,
        api(
            Method::GET,
            &format!("/api/workflow-runs?recordId={deal_id}"),
            &o.manager,
        ),
    )
    .await;
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 1);
    let detail = send(
        &svc,
        api(
            Method::GET,
            &format!("/api/workflow-runs/{}", runs[0].0),
            &o.manager,
        ),
    )
    .await
    .json();
    assert_eq!(detail["steps"][1]["status"], "done");

    // The receiver is down: the step is retried with backoff, the task is not made twice.
    status.store(500, Ordering::SeqCst);
    let back = stage_id(&svc, &o.rep, "Proposal").await;
    for stage in [&back, &negotiation] {
        send(
            &svc,
            api(
                Method::POST,
                &format!("/api/opportunities/{deal_id}/move"),
                &o.rep,
            )
            .set_json(json!({"stage": stage})),
        )
        .await;
    }
    work(&app).await;
    let runs = runs_of(&app, &flow);
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[1].1, "pending", "waiting to retry: {runs:?}");
    assert!(
        runs[1].2.as_deref().unwrap_or("").contains("Step 2"),
        "{runs:?}"
    );
    assert_eq!(
        steps_of(&app, &runs[1].0).len(),
        1,
        "the task step is done and recorded"
    );
    status.store(200, Ordering::SeqCst);
    due_now(&app);
    work(&app).await;
    let runs = runs_of(&app, &flow);
    assert_eq!(runs[1].1, "done");
    let tasks = send(&svc, api(Method::GET, "/api/tasks", &o.manager))
        .await
        .json();
    let n = tasks["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["subject"].as_str().unwrap_or("").contains("Initech"))
        .count();
    assert_eq!(n, 2, "one task per run, none repeated");

    // A worker that died before its progress was saved: the lease runs out, the run is taken
    // again from its first step, and every step that has a row is passed over, not redone.
    {
        use rapport::db::schema::workflow_runs as r;
        let mut c = app.pool.get().unwrap();
        diesel::update(r::table.filter(r::id.eq(&runs[1].0)))
            .set((
                r::status.eq("running"),
                r::lease_until.eq(Some(
                    chrono::Utc::now().naive_utc() - chrono::Duration::seconds(1),
                )),
            ))
            .execute(&mut c)
            .unwrap();
    }
    let before = seen.lock().unwrap().len();
    work(&app).await;
    assert_eq!(runs_of(&app, &flow)[1].1, "done");
    assert_eq!(seen.lock().unwrap().len(), before, "no step repeated");
    let tasks = send(&svc, api(Method::GET, "/api/tasks", &o.manager))
        .await
        .json();
    let n = tasks["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["subject"].as_str().unwrap_or("").contains("Initech"))
        .count();
    assert_eq!(n, 2, "no task made again");

    // In the console, the run's page shows its steps and leads to the deal.
    let mut b = Browser::new();
    b.sign_in(&svc, "admin@flowco.test", PASSWORD).await;
    let page = b
        .get(&svc, &format!("/admin/workflows/runs/{}", runs[0].0))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("Review the terms for Initech"),
        "{}",
        page.body
    );
    let link = format!("/opportunities/{deal_id}");
    assert!(page.body.contains(&link));
    assert_eq!(b.get(&svc, &link).await.status, StatusCode::OK);
    let page = b.get(&svc, &format!("/admin/workflows/{flow}")).await;
    assert!(
        page.body.contains("Recent runs") && page.body.contains("Done"),
        "{}",
        page.body
    );
}

#[actix_web::test]
async fn conditions_steps_branches_waits_versions_and_loops() {
    let app = TestApp::new().await;
    let svc = app.service().await;
    let o = org(&app, "Rules Co");
    // A custom field the conditions read.
    let r = send(
        &svc,
        api(Method::POST, "/api/custom-fields", &o.admin).set_json(
            json!({"entity": "client", "key": "budget", "label": "Budget", "type": "integer"}),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // A condition on an unknown field is refused with a clear error.
    let r = send(
        &svc,
        api(Method::POST, "/api/workflows", &o.admin).set_json(json!({
            "name": "Bad", "trigger": {"type": "client.created"},
            "conditions": ["filter[customFields.nope][gte]=1"], "steps": [{"type": "note", "body": "x"}]
        })),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Condition group 1"), "{}", r.body);

    let flow = send(
        &svc,
        api(Method::POST, "/api/workflows", &o.admin).set_json(json!({
            "name": "Big leads",
            "trigger": {"type": "client.created"},
            "conditions": ["filter[customFields.budget][gte]=1000", "filter[status]=customer"],
            "steps": [
                {"type": "tag", "tag": "Big"},
                {"type": "note", "body": "Budget {{ client.customFields.budget }}"},
                {"type": "branch", "condition": "filter[tag]=Big&filter[customFields.budget][gte]=5000", "elseSkip": 1},
                {"type": "update", "field": "status", "value": "prospect"},
                {"type": "assign", "mode": "round_robin", "role": "sales_rep"},
                {"type": "meeting", "title": "Kick-off", "inDays": 3},
                {"type": "wait", "minutes": 60},
                {"type": "untag", "tag": "Big"}
            ]
        })),
    )
    .await;
    assert_eq!(flow.status, StatusCode::CREATED, "{}", flow.body);
    let flow = flow.json()["id"].as_str().unwrap().to_string();
    let mk = |name: &str, budget: i64| {
        api(Method::POST, "/api/clients", &o.admin)
            .set_json(json!({"type": "individual", "firstName": name, "lastName": "Test", "customFields": {"budget": budget}}))
    };
    let small = send(&svc, mk("Small", 10)).await;
    assert_eq!(small.status, StatusCode::CREATED, "{}", small.body);
    let small = small.json();
    let mid = send(&svc, mk("Mid", 2000)).await.json();
    let big = send(&svc, mk("Big", 9000)).await.json();
    // Dry run on the big one: what would happen, nothing done.
    let dry = send(
        &svc,
        api(
            Method::POST,
            &format!("/api/workflows/{flow}/dry-run"),
            &o.admin,
        )
        .set_json(json!({"recordType": "client", "recordId": big["id"]})),
    )
    .await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.body);
    assert!(dry.body.contains("would tag the client"), "{}", dry.body);
    let dry_small = send(
        &svc,
        api(
            Method::POST,
            &format!("/api/workflows/{flow}/dry-run"),
            &o.admin,
        )
        .set_json(json!({"recordType": "client", "recordId": small["id"]})),
    )
    .await;
    assert!(
        dry_small.body.contains("would not run"),
        "{}",
        dry_small.body
    );

    // Editing makes version 2; the runs already started keep version 1.
    let r = send(
        &svc,
        api(Method::PATCH, &format!("/api/workflows/{flow}"), &o.admin).set_json(json!({
            "trigger": {"type": "client.created"}, "steps": [{"type": "note", "body": "version two"}]
        })),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["version"], 2);
    let versions = send(
        &svc,
        api(
            Method::GET,
            &format!("/api/workflows/{flow}/versions"),
            &o.admin,
        ),
    )
    .await
    .json();
    assert_eq!(versions["data"].as_array().unwrap().len(), 2);

    work(&app).await;
    let runs = runs_of(&app, &flow);
    assert_eq!(runs.len(), 3);
    assert_eq!(runs[0].1, "skipped", "the small budget does not match");
    assert_eq!(
        runs[1].1,
        "waiting",
        "mid: {:?} {:?}",
        steps_of(&app, &runs[1].0),
        runs
    );
    assert_eq!(runs[2].1, "waiting", "big: {runs:?}");
    let client = |id: &Value| {
        let id = id.as_str().unwrap().to_string();
        let svc = &svc;
        let t = o.admin.clone();
        async move {
            send(svc, api(Method::GET, &format!("/api/clients/{id}"), &t))
                .await
                .json()
        }
    };
    let m = client(&mid["id"]).await;
    let b = client(&big["id"]).await;
    assert!(m["tags"].to_string().contains("Big"));
    // The branch held only for the big budget: mid skipped the status change.
    assert_eq!(m["status"], "lead");
    assert_eq!(b["status"], "prospect");
    // Round robin among the reps (one rep: both go to them).
    assert_eq!(b["assignedTo"], o.rep_id.as_str());
    let notes = send(
        &svc,
        api(
            Method::GET,
            &format!("/api/clients/{}/interactions", big["id"].as_str().unwrap()),
            &o.admin,
        ),
    )
    .await;
    assert!(notes.body.contains("Budget 9000"), "{}", notes.body);
    assert!(notes.body.contains("Kick-off"));
    assert!(
        !notes.body.contains("version two"),
        "runs keep their version"
    );
    // After the wait, the last step.
    due_now(&app);
    work(&app).await;
    let runs = runs_of(&app, &flow);
    assert_eq!(runs[2].1, "done");
    let b = client(&big["id"]).await;
    assert!(!b["tags"].to_string().contains("Big"), "{b}");
    let _ = o.manager_id;

    // Loop protection: a workflow whose own change triggers it stops after a few links.
    let looping = send(
        &svc,
        api(Method::POST, "/api/workflows", &o.admin).set_json(json!({
            "name": "Ping pong", "trigger": {"type": "client.updated", "field": "source"},
            "steps": [{"type": "update", "field": "source", "value": "loop {{ client.source }}"}]
        })),
    )
    .await;
    assert_eq!(looping.status, StatusCode::CREATED, "{}", looping.body);
    let looping = looping.json()["id"].as_str().unwrap().to_string();
    send(
        &svc,
        api(
            Method::PATCH,
            &format!("/api/clients/{}", small["id"].as_str().unwrap()),
            &o.admin,
        )
        .set_json(json!({"source": "web"})),
    )
    .await;
    work(&app).await;
    let runs = runs_of(&app, &looping);
    let max = rapport::domain::workflows::MAX_DEPTH as usize;
    assert_eq!(runs.len(), max + 2, "{runs:?}");
    assert!(runs[..=max].iter().all(|r| r.1 == "done"));
    assert_eq!(runs[max + 1].1, "stopped");
    assert!(
        runs[max + 1].2.as_deref().unwrap().contains("chain"),
        "{runs:?}"
    );
}

#[actix_web::test]
async fn dates_incoming_calls_and_the_console_builder() {
    let app = TestApp::new().await;
    let svc = app.service().await;
    let o = org(&app, "Dates Co");
    // An incoming call starts a run about the client it names.
    let created = send(
        &svc,
        api(Method::POST, "/api/workflows", &o.admin).set_json(json!({
            "name": "From the shop", "trigger": {"type": "webhook"},
            "steps": [{"type": "note", "body": "Order {{ event.body.order }}"}]
        })),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let url = created.json()["incomingUrl"].as_str().unwrap().to_string();
    let flow = created.json()["id"].as_str().unwrap().to_string();
    let client = send(
        &svc,
        api(Method::POST, "/api/clients", &o.admin)
            .set_json(json!({"type": "individual", "firstName": "Ann", "lastName": "Shop", "email": "ann@shop.test"})),
    )
    .await;
    assert_eq!(client.status, StatusCode::CREATED, "{}", client.body);
    let client = client.json();
    let r = send(
        &svc,
        actix_web::test::TestRequest::post()
            .uri(&url)
            .set_json(json!({"email": "ann@shop.test", "order": "A-17"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let r = send(
        &svc,
        actix_web::test::TestRequest::post()
            .uri("/api/hooks/workflows/wfh_wrong")
            .set_json(json!({})),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    work(&app).await;
    let runs = runs_of(&app, &flow);
    assert_eq!(runs[0].1, "done", "{runs:?}");
    let tl = send(
        &svc,
        api(
            Method::GET,
            &format!(
                "/api/clients/{}/interactions",
                client["id"].as_str().unwrap()
            ),
            &o.admin,
        ),
    )
    .await;
    assert!(tl.body.contains("Order A-17"), "{}", tl.body);

    // A date trigger: three days before a deal's expected close.
    // Three days before it is midnight today: within the last day the scan looks at.
    let close = (chrono::Utc::now() + chrono::Duration::days(3)).date_naive();
    let deal = send(
        &svc,
        api(Method::POST, "/api/opportunities", &o.admin).set_json(json!({
            "name": "Closing soon", "clientId": client["id"], "value": "10.00", "currency": "EUR",
            "stage": stage_id(&svc, &o.admin, "Proposal").await, "expectedCloseDate": close.to_string()
        })),
    )
    .await;
    assert_eq!(deal.status, StatusCode::CREATED, "{}", deal.body);
    let dated = send(
        &svc,
        api(Method::POST, "/api/workflows", &o.admin).set_json(json!({
            "name": "Closing reminder", "trigger": {"type": "date", "date": "deal.expectedClose", "offsetDays": -3},
            "steps": [{"type": "task", "title": "Close it", "assignee": o.rep_id}]
        })),
    )
    .await
    .json();
    let dated = dated["id"].as_str().unwrap().to_string();
    // The scan looks from the workflow's last scan; pretend it last looked a day ago.
    {
        use rapport::db::schema::workflows as w;
        let mut c = app.pool.get().unwrap();
        diesel::update(w::table.filter(w::id.eq(&dated)))
            .set(w::scanned_until.eq(Some(
                chrono::Utc::now().naive_utc() - chrono::Duration::days(1),
            )))
            .execute(&mut c)
            .unwrap();
    }
    let n = app
        .pool
        .get()
        .map(|mut c| {
            rapport::domain::workflows::run::scan(&mut c, chrono::Utc::now().naive_utc()).unwrap()
        })
        .unwrap();
    assert_eq!(n, 1);
    work(&app).await;
    let runs = runs_of(&app, &dated);
    assert_eq!(runs[0].1, "done", "{runs:?}");

    // The console: an admin builds a workflow by clicking, without JSON.
    let mut b = Browser::new();
    b.sign_in(&svc, "admin@datesco.test", PASSWORD).await;
    let page = b.get(&svc, "/admin/workflows/new").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("1. When"));
    let negotiation = stage_id(&svc, &o.admin, "Negotiation").await;
    let form = [
        ("name", "Console flow"),
        ("enabled", "1"),
        ("t.type", "deal.stage_changed"),
        ("t.stage", negotiation.as_str()),
        ("newStep", "task"),
        ("op", "add_step"),
    ];
    let built = b.hx_post(&svc, "/admin/workflows/compose", &form).await;
    assert_eq!(built.status, StatusCode::OK);
    assert!(built.body.contains("s.0.title"), "the task's fields appear");
    assert!(
        built.body.contains("Into stage"),
        "the trigger's options appear"
    );
    // Saving without a title: the error names the step, next to nothing technical.
    let mut save: Vec<(&str, &str)> = form[..4].to_vec();
    save.extend([
        ("s.0.type", "task"),
        ("s.0.assignee", "manager"),
        ("s.0.inDays", "1"),
    ]);
    let r = b.hx_post(&svc, "/admin/workflows", &save).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Step 1: Give it a title."), "{}", r.body);
    assert!(r.body.contains("Console flow"), "what was typed is kept");
    save.push(("s.0.title", "Call the client"));
    let r = b.hx_post(&svc, "/admin/workflows", &save).await;
    assert!(
        r.status.is_success() || r.status.is_redirection(),
        "{}",
        r.body
    );
    let list = b.get(&svc, "/admin/workflows").await;
    assert!(list.body.contains("Console flow"));
    assert!(list.body.contains("A deal moves to a stage"));
    // A manager sees the list but no builder buttons; a rep is refused.
    let mut m = Browser::new();
    m.sign_in(&svc, "boss@datesco.test", PASSWORD).await;
    let list = m.get(&svc, "/admin/workflows").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(!list.body.contains("New workflow"));
    let mut r = Browser::new();
    r.sign_in(&svc, "rep@datesco.test", PASSWORD).await;
    assert_eq!(
        r.get(&svc, "/admin/workflows").await.status,
        StatusCode::FORBIDDEN
    );
    let _ = (&o.manager, &o.rep);
}

#[actix_web::test]
async fn scoped_tokens_never_exceed_their_scopes_expire_and_are_rate_limited() {
    let app = TestApp::new().await;
    let svc = app.service().await;
    let o = org(&app, "Tokens Co");
    let made = send(
        &svc,
        api(Method::POST, "/api/tokens", &o.admin).set_json(json!({
            "name": "Reader", "scopes": ["clients:read"], "expiresInDays": 30, "rateLimit": 4
        })),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let narrow = made.json()["token"].as_str().unwrap().to_string();
    assert_eq!(made.json()["scopes"], json!(["clients:read"]));
    assert!(made.json()["expiresAt"].is_string());
    // An unknown scope is refused by name.
    let r = send(
        &svc,
        api(Method::POST, "/api/tokens", &o.admin)
            .set_json(json!({"name": "x", "scopes": ["everything"]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body.contains("\\\"everything\\\" is not a scope"),
        "{}",
        r.body
    );

    // It reads clients, and nothing else; it makes no token.
    assert_eq!(
        send(&svc, api(Method::GET, "/api/clients", &narrow))
            .await
            .status,
        StatusCode::OK
    );
    let r = send(
        &svc,
        api(Method::POST, "/api/clients", &narrow)
            .set_json(json!({"type": "company", "companyName": "Nope"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("scopes"), "{}", r.body);
    let r = send(&svc, api(Method::GET, "/api/opportunities", &narrow)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        send(&svc, api(Method::GET, "/api/clients", &narrow))
            .await
            .status,
        StatusCode::OK
    );
    // The fifth request in the minute is refused with when to come back.
    let r = send(
        &svc,
        api(Method::POST, "/api/tokens", &narrow).set_json(json!({"name": "wider"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=61).contains(&wait), "{wait}");
    assert!(r.is_problem());

    // A wide token of a rep still has only the rep's rights.
    let r = send(&svc, api(Method::GET, "/api/audit-log", &o.rep)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // A narrow token may not mint a wide one (a fresh narrow token, under its limit).
    let made = send(
        &svc,
        api(Method::POST, "/api/tokens", &o.admin)
            .set_json(json!({"name": "Deals", "scopes": ["deals:write"]})),
    )
    .await
    .json();
    let deals = made["token"].as_str().unwrap().to_string();
    let r = send(
        &svc,
        api(Method::POST, "/api/tokens", &deals).set_json(json!({"name": "wider"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // Expired: refused as if unknown.
    {
        use rapport::db::schema::api_tokens as t;
        let mut c = app.pool.get().unwrap();
        diesel::update(t::table.filter(t::id.eq(made["id"].as_str().unwrap())))
            .set(t::expires_at.eq(Some(
                chrono::Utc::now().naive_utc() - chrono::Duration::minutes(1),
            )))
            .execute(&mut c)
            .unwrap();
    }
    assert_eq!(
        send(&svc, api(Method::GET, "/api/opportunities", &deals))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    // The console makes scoped tokens too, and lists what each may do and when it expires.
    let mut b = Browser::new();
    b.sign_in(&svc, "admin@tokensco.test", PASSWORD).await;
    let r = b
        .hx_post(
            &svc,
            "/account/tokens",
            &[
                ("name", "Zapier"),
                ("scopes", "read"),
                ("scopes", "interactions:write"),
                ("expiresInDays", "90"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body
            .contains("Read everything its user may read; Log and change calls"),
        "{}",
        r.body
    );
    let _ = (&o.manager, &o.manager_id, &o.rep_id);
}

#[actix_web::test]
async fn won_deals_logged_calls_moves_least_loaded_owners_and_e_mail_steps() {
    let app = TestApp::new().await;
    let svc = app.service().await;
    let o = org(&app, "Steps Co");
    let negotiation = stage_id(&svc, &o.admin, "Negotiation").await;
    let proposal = stage_id(&svc, &o.admin, "Proposal").await;
    // A shared mailbox (nothing is sent in this test: the message is queued) and a template.
    let mb = send(
        &svc,
        api(Method::POST, "/api/mailboxes", &o.admin).set_json(json!({
            "name": "Sales", "address": "sales@steps.test", "username": "sales@steps.test",
            "password": "pw", "shared": true,
            "imap": {"host": "127.0.0.1", "port": 9, "security": "none"},
            "smtp": {"host": "127.0.0.1", "port": 9, "security": "none"},
        })),
    )
    .await;
    assert_eq!(mb.status, StatusCode::CREATED, "{}", mb.body);
    let tpl = send(
        &svc,
        api(Method::POST, "/api/templates", &o.admin).set_json(json!({
            "name": "Proposal", "subject": "Your proposal, {{ client.firstName }}", "body": "Here it is."
        })),
    )
    .await;
    assert_eq!(tpl.status, StatusCode::CREATED, "{}", tpl.body);

    // A deal reaching Proposal: the proposal template is e-mailed, the deal moves on and gets
    // the least loaded rep.
    let called = send(
        &svc,
        api(Method::POST, "/api/workflows", &o.admin).set_json(json!({
            "name": "Proposal follow-up", "trigger": {"type": "deal.stage_changed", "stage": proposal},
            "steps": [
                {"type": "email", "template": tpl.json()["id"], "mailbox": mb.json()["id"]},
                {"type": "move", "stage": negotiation},
                {"type": "assign", "mode": "least_loaded", "role": "sales_rep"}
            ]
        })),
    )
    .await;
    assert_eq!(called.status, StatusCode::CREATED, "{}", called.body);
    let called = called.json()["id"].as_str().unwrap().to_string();
    let won = send(
        &svc,
        api(Method::POST, "/api/workflows", &o.admin).set_json(json!({
            "name": "Won", "trigger": {"type": "deal.won"},
            "steps": [{"type": "note", "body": "Won: thank them"}]
        })),
    )
    .await
    .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let logged = send(
        &svc,
        api(Method::POST, "/api/workflows", &o.admin).set_json(json!({
            "name": "Calls", "trigger": {"type": "interaction.created", "interaction": "call"},
            "steps": [{"type": "tag", "tag": "Called"}]
        })),
    )
    .await
    .json()["id"]
        .as_str()
        .unwrap()
        .to_string();

    let mk = |first: &str, email: &str| {
        api(Method::POST, "/api/clients", &o.admin).set_json(
            json!({"type": "individual", "firstName": first, "lastName": "Steps", "email": email}),
        )
    };
    let ann = send(&svc, mk("Ann", "ann@steps.test")).await.json();
    let bob = send(&svc, mk("Bob", "bob@steps.test")).await.json();
    // Bob opted out of e-mail: the e-mail step fails his run with the reason, at once.
    let r = send(
        &svc,
        api(
            Method::PUT,
            &format!("/api/clients/{}/preferences", bob["id"].as_str().unwrap()),
            &o.admin,
        )
        .set_json(json!({"channels": {"email": {"status": "opt_out", "source": "unsubscribed"}}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let deal = |client: &Value, name: &str| {
        api(Method::POST, "/api/opportunities", &o.admin).set_json(json!({
            "name": name, "clientId": client["id"], "value": "100.00", "currency": "EUR",
            "stage": stage_id_sync(&app, "Qualification")
        }))
    };
    let d_ann = send(&svc, deal(&ann, "Ann's deal")).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let d_bob = send(&svc, deal(&bob, "Bob's deal")).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    for d in [&d_ann, &d_bob] {
        let r = send(
            &svc,
            api(
                Method::POST,
                &format!("/api/opportunities/{d}/move"),
                &o.admin,
            )
            .set_json(json!({"stage": proposal})),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    // A call on Ann, a note on Bob: only the call starts "Calls".
    for (c, kind) in [(&ann, "call"), (&bob, "note")] {
        let r = send(
            &svc,
            api(
                Method::POST,
                &format!("/api/clients/{}/interactions", c["id"].as_str().unwrap()),
                &o.admin,
            )
            .set_json(json!({"type": kind, "subject": "Talked", "direction": "inbound"})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    work(&app).await;
    let runs = runs_of(&app, &called);
    assert_eq!(runs.len(), 2, "{runs:?}");
    let ann_run = runs
        .iter()
        .find(|r| r.1 == "done")
        .expect("Ann's run is done");
    let bob_run = runs
        .iter()
        .find(|r| r.1 == "failed")
        .expect("Bob's run failed");
    assert!(
        bob_run.2.as_deref().unwrap().contains("Step 1"),
        "{bob_run:?}"
    );
    let steps = steps_of(&app, &ann_run.0);
    assert!(steps[0].2.contains("queued to ann@steps.test"), "{steps:?}");
    assert!(steps[1].2.contains("Negotiation"), "{steps:?}");
    assert!(steps[2].2.contains("assigned to"), "{steps:?}");
    {
        use rapport::db::schema::mail_messages as m;
        let mut c = app.pool.get().unwrap();
        let to: Vec<String> = m::table.select(m::to_addresses).load(&mut c).unwrap();
        assert_eq!(to, ["ann@steps.test"], "one message, none to the opted-out");
    }
    let d = send(
        &svc,
        api(
            Method::GET,
            &format!("/api/opportunities/{d_ann}"),
            &o.admin,
        ),
    )
    .await
    .json();
    assert_eq!(d["stage"], negotiation.as_str());
    assert_eq!(
        d["assignedTo"],
        o.rep_id.as_str(),
        "the only rep is the least loaded"
    );
    assert_eq!(
        runs_of(&app, &logged).len(),
        1,
        "the note does not start it"
    );
    let a = send(
        &svc,
        api(
            Method::GET,
            &format!("/api/clients/{}", ann["id"].as_str().unwrap()),
            &o.admin,
        ),
    )
    .await
    .json();
    assert!(a["tags"].to_string().contains("Called"), "{a}");

    // Winning starts "Won".
    let r = send(
        &svc,
        api(
            Method::POST,
            &format!("/api/opportunities/{d_ann}/move"),
            &o.admin,
        )
        .set_json(json!({"stage": stage_id_sync(&app, "Won")})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    work(&app).await;
    assert_eq!(runs_of(&app, &won).len(), 1);
    assert_eq!(runs_of(&app, &won)[0].1, "done");
    let _ = (&o.manager, &o.manager_id, &o.rep);
}

/// A stage of the organization's default pipeline by name, straight from the database.
fn stage_id_sync(app: &TestApp, name: &str) -> String {
    use rapport::db::schema::pipeline_stages as s;
    let mut c = app.pool.get().unwrap();
    s::table
        .filter(s::name.eq(name))
        .order(s::id.desc())
        .select(s::id)
        .first(&mut c)
        .unwrap()
}

#[test]
fn schedules_tick_hourly_daily_and_weekly() {
    use chrono::NaiveDate;
    use rapport::domain::workflows::{run::ticks, Trigger};
    let at = |d: u32, h: u32, m: u32| {
        NaiveDate::from_ymd_opt(2026, 12, d)
            .unwrap()
            .and_hms_opt(h, m, 0)
            .unwrap()
    };
    let t = |every: &str, at: &str, weekday: Option<u32>| Trigger {
        kind: "schedule".into(),
        every: Some(every.into()),
        at: Some(at.into()),
        weekday,
        ..Default::default()
    };
    // 2026-12-07 is a Monday.
    assert_eq!(
        ticks(&t("day", "08:00", None), at(6, 9, 0), at(7, 9, 0)),
        [at(7, 8, 0)]
    );
    assert!(
        ticks(&t("day", "08:00", None), at(7, 8, 0), at(7, 9, 0)).is_empty(),
        "the tick at the start was the last scan's"
    );
    assert_eq!(
        ticks(&t("hour", "00:15", None), at(7, 8, 0), at(7, 10, 0)),
        [at(7, 8, 15), at(7, 9, 15)]
    );
    assert_eq!(
        ticks(&t("week", "07:30", Some(1)), at(1, 0, 0), at(14, 23, 0)),
        [at(7, 7, 30), at(14, 7, 30)]
    );
}

/// The bar for durable runs with a real process: a run is killed (SIGKILL) while its second
/// step, a web call, waits for the receiver's answer. Started again, the server carries the
/// run to its end: the first step (a task) is not done twice, the call is made again with the
/// same `webhook-id` (so the receiver can tell), and the last step follows once.
#[actix_web::test]
async fn a_run_killed_mid_way_resumes_without_repeating_a_step() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::sync::Mutex;

    let app = TestApp::new().await;
    let svc = app.service().await;
    let o = org(&app, "Killed Run");

    // Holds the first call for a while (the server dies meanwhile); answers the others.
    let calls: Arc<Mutex<Vec<String>>> = Arc::default();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = calls.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let (mut id, mut len, mut line) = (String::new(), 0usize, String::new());
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("webhook-id:") {
                        id = v.trim().to_string();
                    }
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; len];
                let _ = reader.read_exact(&mut body);
                let first = {
                    let mut s = seen.lock().unwrap();
                    s.push(id);
                    s.len() == 1
                };
                if first {
                    std::thread::sleep(std::time::Duration::from_secs(6));
                }
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                );
            });
        }
    });

    let r = send(
        &svc,
        api(Method::POST, "/api/workflows", &o.admin).set_json(json!({
            "name": "Call the shop", "enabled": true,
            "trigger": {"type": "client.created"},
            "steps": [
                {"type": "task", "title": "Welcome {{ client.name }}", "inDays": 1},
                {"type": "webhook", "url": format!("http://127.0.0.1:{port}/shop"), "allowPrivateHost": true},
                {"type": "note", "body": "The shop knows"}
            ]
        })),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let flow = r.json()["id"].as_str().unwrap().to_string();
    let c = send(
        &svc,
        api(Method::POST, "/api/clients", &o.admin)
            .set_json(json!({"type": "company", "companyName": "Killed Corp"})),
    )
    .await;
    assert_eq!(c.status, StatusCode::CREATED, "{}", c.body);
    let client = c.json()["id"].as_str().unwrap().to_string();

    let start = || app.serve_binary();
    let wait_for = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
        while !done() {
            assert!(
                std::time::Instant::now() < deadline,
                "waited in vain: {what}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };

    let mut first = start();
    wait_for("the first call", &|| calls.lock().unwrap().len() == 1);
    first.0.kill().unwrap(); // SIGKILL while the call waits for its answer.
    first.0.wait().unwrap();
    let runs = runs_of(&app, &flow);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].1, "running", "the dead worker held the run");
    assert_eq!(
        steps_of(&app, &runs[0].0).len(),
        1,
        "only the task was recorded before the kill"
    );
    // The dead worker's lease runs out (five minutes, passed here at once).
    {
        use rapport::db::schema::workflow_runs as wr;
        let mut conn = app.pool.get().unwrap();
        diesel::update(wr::table.find(&runs[0].0))
            .set(wr::lease_until.eq(Some(
                chrono::Utc::now().naive_utc() - chrono::Duration::seconds(1),
            )))
            .execute(&mut conn)
            .unwrap();
    }

    let second = start();
    wait_for("the run's end", &|| runs_of(&app, &flow)[0].1 == "done");
    drop(second);

    let steps = steps_of(&app, &runs[0].0);
    assert_eq!(
        steps.iter().map(|s| s.0).collect::<Vec<_>>(),
        vec![0, 1, 2],
        "each step recorded once: {steps:?}"
    );
    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2, "the unanswered call is made again");
    assert!(
        !calls[0].is_empty() && calls[0] == calls[1],
        "with the same webhook-id: {calls:?}"
    );
    let subjects = timeline(&svc, &o.admin, &client).await;
    let count = |s: &str| subjects.iter().filter(|x| x.contains(s)).count();
    assert_eq!(count("Welcome Killed Corp"), 1, "{subjects:?}");
    assert_eq!(count("The shop knows"), 1, "{subjects:?}");
}

/// Runs are carried in batches, several to a transaction, without looking for each step's
/// row first: a step another worker recorded meanwhile (its lease ran out while it still
/// worked) must roll the batch back and be passed over, not done a second time. Every run of
/// the batch still ends, each with its line on the timeline.
#[actix_web::test]
async fn a_batch_passes_over_a_step_another_worker_recorded() {
    let app = TestApp::new().await;
    let svc = app.service().await;
    let o = org(&app, "Batch Co");
    let r = send(
        &svc,
        api(Method::POST, "/api/workflows", &o.admin).set_json(json!({
            "name": "Two notes", "enabled": true,
            "trigger": {"type": "client.updated", "field": "industry"},
            "steps": [{"type": "note", "body": "First note"}, {"type": "note", "body": "Second note"}]
        })),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let flow = r.json()["id"].as_str().unwrap().to_string();
    let mut clients = Vec::new();
    for name in ["Ada", "Ben", "Cy"] {
        let c = send(
            &svc,
            api(Method::POST, "/api/clients", &o.admin)
                .set_json(json!({"type": "individual", "firstName": name, "lastName": "Batch"})),
        )
        .await
        .json();
        let id = c["id"].as_str().unwrap().to_string();
        let r = send(
            &svc,
            api(Method::PATCH, &format!("/api/clients/{id}"), &o.admin)
                .set_json(json!({"industry": "Rail"})),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        clients.push(id);
    }
    let runs = runs_of(&app, &flow);
    assert_eq!(runs.len(), 3);
    // Another worker did the middle run's first step and recorded it; this worker's view of
    // that run is still at step one.
    {
        use rapport::db::schema::{organizations, workflow_steps as s};
        let mut c = app.pool.get().unwrap();
        let org_id: String = organizations::table
            .filter(organizations::name.eq("Batch Co"))
            .select(organizations::id)
            .first(&mut c)
            .unwrap();
        diesel::insert_into(s::table)
            .values((
                s::id.eq("other-worker-step"),
                s::organization_id.eq(org_id),
                s::run_id.eq(&runs[1].0),
                s::position.eq(0),
                s::kind.eq("note"),
                s::status.eq("done"),
                s::outcome.eq("Note added by the other worker"),
                s::attempts.eq(1),
                s::finished_at.eq(chrono::Utc::now().naive_utc()),
            ))
            .execute(&mut c)
            .unwrap();
    }
    work(&app).await;
    let runs = runs_of(&app, &flow);
    assert!(runs.iter().all(|r| r.1 == "done"), "{runs:?}");
    let middle = steps_of(&app, &runs[1].0);
    assert_eq!(middle.len(), 2, "{middle:?}");
    assert_eq!(middle[0].2, "Note added by the other worker");
    for (i, client) in clients.iter().enumerate() {
        let lines = timeline(&svc, &o.admin, client).await;
        let count = |s: &str| lines.iter().filter(|x| x.contains(s)).count();
        let first = if i == 1 { 0 } else { 1 };
        assert_eq!(count("First note"), first, "client {i}: {lines:?}");
        assert_eq!(count("Second note"), 1, "client {i}: {lines:?}");
        assert_eq!(
            count("Workflow “Two notes” ran"),
            1,
            "client {i}: {lines:?}"
        );
    }
    // The batch that met the other worker's step rolled back with what it held: each note
    // has one audit entry and each run its two step rows, none from the batch.
    use rapport::db::schema::audit_log as al;
    let mut c = app.pool.get().unwrap();
    let logged: i64 = al::table
        .filter(al::action.eq("interaction.create"))
        .count()
        .get_result(&mut c)
        .unwrap();
    assert_eq!(logged, 5, "audit entries of the five notes");
    for r in &runs {
        assert_eq!(steps_of(&app, &r.0).len(), 2, "run {}", r.0);
    }
}

/// A round's runs on many clients (two batches side by side on PostgreSQL; their notes,
/// timeline lines, audit entries, webhook deliveries and step rows written at each batch's
/// end): every client gets its note, its tag, its last contact, its timeline line, its
/// audit entry and its delivery once, every run its step row and its end, and the day's
/// activity count moves by as many.
#[actix_web::test]
async fn a_round_over_many_clients_leaves_each_its_note_tag_and_last_contact() {
    let app = TestApp::new().await;
    let svc = app.service().await;
    let o = org(&app, "Round Co");
    // Nothing listens there: the deliveries are only looked at, not sent.
    let r = send(
        &svc,
        api(Method::POST, "/api/webhooks", &o.admin).set_json(json!({
            "url": "http://127.0.0.1:9/hook", "events": ["client.updated"],
            "allowPrivateHost": true
        })),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    for (name, step) in [
        (
            "Note it",
            json!({"type": "note", "body": "Industry now {{ client.industry }}"}),
        ),
        ("Tag it", json!({"type": "tag", "tag": "Touched"})),
    ] {
        let r = send(
            &svc,
            api(Method::POST, "/api/workflows", &o.admin).set_json(json!({
                "name": name, "enabled": true,
                "trigger": {"type": "client.updated", "field": "industry"},
                "steps": [step]
            })),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let mut clients = Vec::new();
    for i in 0..12 {
        let c = send(
            &svc,
            api(Method::POST, "/api/clients", &o.admin).set_json(
                json!({"type": "individual", "firstName": format!("P{i}"), "lastName": "Round"}),
            ),
        )
        .await
        .json();
        clients.push(c["id"].as_str().unwrap().to_string());
    }
    let notes_before: i64 = {
        use rapport::db::schema::activity_daily as a;
        let mut c = app.pool.get().unwrap();
        a::table
            .filter(a::kind.eq("note"))
            .select(a::n)
            .load::<i64>(&mut c)
            .unwrap()
            .iter()
            .sum::<i64>()
    };
    for (i, id) in clients.iter().enumerate() {
        let r = send(
            &svc,
            api(Method::PATCH, &format!("/api/clients/{id}"), &o.admin)
                .set_json(json!({"industry": format!("Rail {i}")})),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    assert_eq!(work(&app).await, 24);
    for (i, id) in clients.iter().enumerate() {
        let lines = timeline(&svc, &o.admin, id).await;
        let count = |s: &str| lines.iter().filter(|x| x.contains(s)).count();
        assert_eq!(count(&format!("Industry now Rail {i}")), 1, "{lines:?}");
        assert_eq!(count("Workflow “Note it” ran"), 1, "{lines:?}");
        assert_eq!(count("Workflow “Tag it” ran"), 1, "{lines:?}");
        let client = send(
            &svc,
            api(Method::GET, &format!("/api/clients/{id}"), &o.admin),
        )
        .await
        .json();
        assert!(client.to_string().contains("Touched"), "{client}");
        use rapport::db::schema::clients as cl;
        let mut c = app.pool.get().unwrap();
        let last: Option<chrono::NaiveDateTime> = cl::table
            .find(id)
            .select(cl::last_contact_at)
            .first(&mut c)
            .unwrap();
        assert!(last.is_some(), "client {i} has no last contact");
        use rapport::db::schema::{audit_log as al, webhook_deliveries as wd};
        let tagged: i64 = al::table
            .filter(al::resource_id.eq(id))
            .filter(al::action.eq("client.tag"))
            .count()
            .get_result(&mut c)
            .unwrap();
        assert_eq!(tagged, 1, "client {i}: audit entries of its tag");
        // One for the change that fired the workflows, one for the tag a run added.
        let owed: i64 = wd::table
            .filter(wd::record_id.eq(id))
            .filter(wd::event_type.eq("client.updated"))
            .count()
            .get_result(&mut c)
            .unwrap();
        assert_eq!(owed, 2, "client {i}: webhook deliveries");
    }
    use rapport::db::schema::{workflow_runs as wr, workflow_steps as ws};
    let mut c = app.pool.get().unwrap();
    let runs: Vec<(String, String, i32, Option<chrono::NaiveDateTime>)> = wr::table
        .select((wr::id, wr::status, wr::step, wr::finished_at))
        .load(&mut c)
        .unwrap();
    assert_eq!(runs.len(), 24);
    for (run, status, step, finished) in &runs {
        assert_eq!((status.as_str(), *step), ("done", 1), "run {run}");
        assert!(finished.is_some(), "run {run} has no end time");
        let steps: Vec<String> = ws::table
            .filter(ws::run_id.eq(run))
            .select(ws::status)
            .load(&mut c)
            .unwrap();
        assert_eq!(steps, vec!["done".to_string()], "run {run}");
    }
    use rapport::db::schema::activity_daily as a;
    let notes: i64 = a::table
        .filter(a::kind.eq("note"))
        .select(a::n)
        .load::<i64>(&mut c)
        .unwrap()
        .iter()
        .sum();
    assert_eq!(notes - notes_before, 12);
}
