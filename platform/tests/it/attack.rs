//! The cross-organization attack, kept in the suite: every route the API and the console
//! register (read from their `routes` functions, so a new route joins by itself) is called
//! by org A's admin with org B's ids. Nothing of B may be read or changed: no success, no
//! server error, B's marker text never in a response, B's records intact afterwards. A
//! route with a path parameter the matrix does not know fails the test until it is added.

use std::collections::HashMap;

use actix_web::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::*;

const SECRET: &str = "VICTIM-SECRET";

/// (method, path) of every route in a `routes` function's source.
fn routes_of(source: &str) -> Vec<(Method, String)> {
    let body = &source[source.find("pub fn routes(").expect("a routes function")..];
    let body = &body[..body.find("\n}\n").unwrap_or(body.len())];
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find("\"/") {
        let after = &rest[start + 1..];
        let end = after.find('"').unwrap();
        let path = after[..end].to_string();
        let tail = &after[end + 1..];
        let until = tail.find("\"/").unwrap_or(tail.len());
        let segment = &tail[..until];
        for (verb, method) in [
            ("web::get()", Method::GET),
            ("web::post()", Method::POST),
            ("web::put()", Method::PUT),
            ("web::patch()", Method::PATCH),
            ("web::delete()", Method::DELETE),
        ] {
            if segment.contains(verb) {
                out.push((method, path.clone()));
            }
        }
        rest = &tail[until..];
    }
    out
}

/// B's id for a path parameter, by the segment before it and its name, and whether it
/// names one of B's records (a role or an action is no one's). `None`: the matrix has no
/// entry (the test fails and names the route).
fn value_for(
    prev: &str,
    param: &str,
    ids: &HashMap<&'static str, String>,
) -> Option<(String, bool)> {
    let key = match (prev, param) {
        (_, "parent:clients|opportunities|interactions") => return Some(("clients".into(), false)),
        ("clients", "id") => "client",
        ("opportunities", "id") => "deal",
        ("interactions", "id") | ("tasks", "id") => "interaction",
        ("attachments", "id") => "attachment",
        ("quotes", "id") => "quote",
        ("contracts", "id") => "contract",
        ("custom-fields", "id") => "field",
        ("tags", "id") => "tag",
        ("relations", "rel") => "relation",
        ("tags", "tag") => "tag",
        ("users", "id") => "user",
        ("tokens", "id") => "token",
        ("imports", "id") => "import",
        ("pipelines", "id") => "pipeline",
        ("stages", "stage") => "stage",
        ("loss-reasons", "id") => "loss_reason",
        ("views", "id") => "view",
        ("invitations", "id") => "invitation",
        ("merges", "id") => "merge",
        ("plugins", "id") => "plugin",
        ("trusted-keys", "id") => "trusted_key",
        ("mailboxes", "id") => "mailbox",
        ("messages", "id") => "message",
        ("templates", "id") => "template",
        ("sends", "id") => "send",
        ("attachments" | "files", "file") => "message_file",
        ("bounces", "address") => "bounce",
        ("webhooks", "id") => "webhook",
        ("workflows", "id") => "workflow",
        ("workflow-runs" | "runs", "id") => "workflow_run",
        ("segments", "id") => "segment",
        ("reports", "id") => "report",
        ("dashboards", "id") => "dashboard",
        ("schedules", "schedule") => "schedule",
        // A standard report's name is no record: the attacker's own figures answer.
        ("reports" | "standard", "type") => return Some(("sales-by-rep".into(), false)),
        // The incoming-call secret is B's credential, which A cannot know.
        ("workflows", "secret") => return Some(("wfh_guessed".into(), false)),
        // A reset link's token is B's secret, which A cannot know.
        ("reset", "token") => return Some(("guessed-reset-token".into(), false)),
        ("u" | "o" | "c", "rid") => "recipient",
        ("u" | "o" | "c", "tag") => return Some(("0".repeat(32), false)),
        ("move", "dir") => return Some(("up".into(), false)),
        (_, "action") if prev != "resource" => return Some(("disable".into(), false)),
        ("policies", "role") => return Some(("sales_rep".into(), false)),
        (_, "resource") => return Some(("client".into(), false)),
        ("resource", "action") => return Some(("read".into(), false)),
        _ => return None,
    };
    Some((
        ids.get(key)
            .cloned()
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
        true,
    ))
}

/// The path with B's ids in place of its parameters (and whether any names B's record),
/// or the parameter nobody mapped.
fn fill(path: &str, ids: &HashMap<&'static str, String>) -> Result<(String, bool), String> {
    let mut foreign = false;
    let mut out = String::new();
    let mut prev = "";
    let mut last_param: Option<String> = None;
    for seg in path.split('/').skip(1) {
        out.push('/');
        if let Some(param) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            // `{role}/{resource}/{action}`: the action follows the resource.
            let before = match last_param.as_deref() {
                Some("resource") => "resource",
                _ => prev,
            };
            let (v, theirs) =
                value_for(before, param, ids).ok_or_else(|| format!("{path}: {{{param}}}"))?;
            foreign |= theirs;
            out.push_str(&v);
            last_param = Some(param.to_string());
            if param.starts_with("parent:") {
                prev = "clients";
            }
        } else {
            out.push_str(seg);
            prev = seg;
            last_param = None;
        }
    }
    Ok((out, foreign))
}

#[actix_web::test]
async fn another_organizations_admin_reaches_nothing_on_any_route() {
    let t = TestApp::new().await;
    let app = t.service().await;
    let a = t.org("Attacker");
    let b = t.org("Victim");
    let a_admin = t.user(&a, "mallory@attacker.test", "admin");
    let b_admin = t.user(&b, "victor@victim.test", "admin");
    let b_rep = t.user(&b, "rep@victim.test", "sales_rep");
    t.user(&a, "ext@attacker.test", "sales_rep");
    let a_tok = t.token(&a, &a_admin);
    let b_tok = t.token(&b, &b_admin);

    // B's records, each carrying the marker where it has text.
    let mut ids: HashMap<&'static str, String> = HashMap::new();
    let post = |path: &str, body: Value| j(Method::POST, path, &b_tok, body);
    let id_of = |r: &Resp| r.json()["id"].as_str().map(str::to_string);
    let client = send(&app, post("/api/clients", json!({"type": "company", "companyName": format!("{SECRET} Corp"), "email": "ceo@victim.test"}))).await;
    assert_eq!(client.status, StatusCode::CREATED, "{}", client.body);
    let cid = id_of(&client).unwrap();
    ids.insert("client", cid.clone());
    let person = send(
        &app,
        post(
            "/api/clients",
            json!({"type": "individual", "firstName": SECRET, "lastName": "Person"}),
        ),
    )
    .await;
    let pid = id_of(&person).unwrap();
    let rel = send(
        &app,
        post(
            &format!("/api/clients/{cid}/relations"),
            json!({"clientId": pid, "label": "partner"}),
        ),
    )
    .await;
    if let Some(r) = id_of(&rel) {
        ids.insert("relation", r);
    }
    let deal = send(
        &app,
        post(
            "/api/opportunities",
            json!({"name": format!("{SECRET} deal"), "clientId": cid, "value": "1000"}),
        ),
    )
    .await;
    assert_eq!(deal.status, StatusCode::CREATED, "{}", deal.body);
    let did = id_of(&deal).unwrap();
    ids.insert("deal", did.clone());
    let note = send(
        &app,
        post(
            &format!("/api/clients/{cid}/interactions"),
            json!({"type": "note", "subject": SECRET, "content": SECRET}),
        ),
    )
    .await;
    assert_eq!(note.status, StatusCode::CREATED, "{}", note.body);
    ids.insert("interaction", id_of(&note).unwrap());
    let file = send(
        &app,
        api(
            Method::POST,
            &format!("/api/clients/{cid}/attachments?name=secret.txt"),
            &b_tok,
        )
        .insert_header(("content-type", "text/plain"))
        .set_payload(SECRET),
    )
    .await;
    assert_eq!(file.status, StatusCode::CREATED, "{}", file.body);
    ids.insert("attachment", id_of(&file).unwrap());
    let quote = send(&app, post("/api/quotes", json!({"opportunityId": did, "lines": [{"name": SECRET, "quantity": "1", "unitPrice": "10"}]}))).await;
    if let Some(q) = id_of(&quote) {
        ids.insert("quote", q);
    }
    let today = chrono::Utc::now().date_naive();
    let contract = send(&app, post("/api/contracts", json!({"name": SECRET, "clientId": cid, "startDate": today.to_string(), "endDate": (today + chrono::Duration::days(90)).to_string(), "value": "10", "currency": "EUR"}))).await;
    if let Some(k) = id_of(&contract) {
        ids.insert("contract", k);
    }
    let field = send(
        &app,
        post(
            "/api/custom-fields",
            json!({"key": "secret", "label": SECRET, "type": "text"}),
        ),
    )
    .await;
    if let Some(f) = id_of(&field) {
        ids.insert("field", f);
    }
    let tag = send(
        &app,
        post("/api/tags", json!({"name": SECRET, "color": "green"})),
    )
    .await;
    if let Some(tg) = id_of(&tag) {
        ids.insert("tag", tg);
    }
    ids.insert("user", b_rep.clone());
    let pipelines = send(&app, api(Method::GET, "/api/pipelines", &b_tok))
        .await
        .json();
    ids.insert(
        "pipeline",
        pipelines["data"][0]["id"].as_str().unwrap().to_string(),
    );
    ids.insert(
        "stage",
        pipelines["data"][0]["stages"][0]["id"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    let tokens = send(&app, api(Method::GET, "/api/tokens", &b_tok))
        .await
        .json();
    if let Some(tk) = tokens["data"][0]["id"].as_str() {
        ids.insert("token", tk.to_string());
    }
    let import = send(
        &app,
        api(
            Method::POST,
            "/api/imports?fileName=p.csv&kind=contacts",
            &b_tok,
        )
        .insert_header(("content-type", "text/csv"))
        .set_payload(format!("First Name,Last Name\n{SECRET},Imported\n")),
    )
    .await;
    if let Some(i) = id_of(&import) {
        ids.insert("import", i);
    }
    // B invites one of A's people: that invitation is B's, not A's.
    let inv = send(
        &app,
        post(
            "/api/users",
            json!({"email": "ext@attacker.test", "role": "manager"}),
        ),
    )
    .await;
    if let Some(i) = id_of(&inv) {
        ids.insert("invitation", i);
    }

    // E-mail: a mailbox, a message written to the client, a template, a bulk send.
    let mailbox = send(
        &app,
        post(
            "/api/mailboxes",
            json!({"name": SECRET, "address": "b@victim.test", "username": "b", "password": SECRET,
                   "imap": {"host": "127.0.0.1", "port": 9, "security": "none"},
                   "smtp": {"host": "127.0.0.1", "port": 9, "security": "none"}}),
        ),
    )
    .await;
    let mbid = id_of(&mailbox).unwrap();
    ids.insert("mailbox", mbid.clone());
    let message = send(
        &app,
        post(
            "/api/messages",
            json!({"mailboxId": mbid, "clientId": cid, "to": "ceo@victim.test", "subject": SECRET,
                   "text": SECRET, "attachmentIds": [ids["attachment"].clone()]}),
        ),
    )
    .await;
    assert_eq!(
        message.json()["attachments"].as_array().map(Vec::len),
        Some(1),
        "{}",
        message.body
    );
    ids.insert(
        "message_file",
        message.json()["attachments"][0]["id"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    ids.insert("message", id_of(&message).unwrap());
    let template = send(
        &app,
        post(
            "/api/templates",
            json!({"name": SECRET, "subject": SECRET, "body": SECRET}),
        ),
    )
    .await;
    let tid = id_of(&template).unwrap();
    ids.insert("template", tid.clone());
    let bulk = send(
        &app,
        post(
            "/api/sends",
            json!({"name": SECRET, "templateId": tid, "mailboxId": mbid, "audience": {"clientIds": [cid]}}),
        ),
    )
    .await;
    let sid = id_of(&bulk).unwrap();
    ids.insert("send", sid.clone());
    let rec = send(
        &app,
        api(Method::GET, &format!("/api/sends/{sid}/recipients"), &b_tok),
    )
    .await;
    ids.insert(
        "recipient",
        rec.json()["data"][0]["id"].as_str().unwrap().to_string(),
    );
    {
        // B's address bounced once: A's admin must not clear it.
        use diesel::prelude::*;
        use rapport::db::schema::mail_bounces;
        diesel::insert_into(mail_bounces::table)
            .values((
                mail_bounces::organization_id.eq(&b.id),
                mail_bounces::address.eq("ceo@victim.test"),
                mail_bounces::reason.eq(SECRET),
                mail_bounces::bounced_at.eq(rapport::db::now()),
            ))
            .execute(&mut t.pool.get().unwrap())
            .unwrap();
        ids.insert("bounce", "ceo@victim.test".to_string());
    }

    let hook = send(
        &app,
        post(
            "/api/webhooks",
            json!({"url": "http://127.0.0.1:9/x", "events": ["*"], "allowPrivateHost": true,
                   "description": SECRET}),
        ),
    )
    .await;
    assert_eq!(hook.status, StatusCode::CREATED, "{}", hook.body);
    ids.insert("webhook", id_of(&hook).unwrap());
    let flow = send(
        &app,
        post(
            "/api/workflows",
            json!({"name": SECRET, "trigger": {"type": "webhook"},
                   "steps": [{"type": "note", "body": SECRET}]}),
        ),
    )
    .await;
    assert_eq!(flow.status, StatusCode::CREATED, "{}", flow.body);
    ids.insert("workflow", id_of(&flow).unwrap());
    let seg = send(
        &app,
        post(
            "/api/segments",
            json!({"name": SECRET, "criteria": {"match": "all", "conditions": [
                {"field": "name", "op": "contains", "value": "a"}]}}),
        ),
    )
    .await;
    assert_eq!(seg.status, StatusCode::CREATED, "{}", seg.body);
    ids.insert("segment", id_of(&seg).unwrap());
    let report = send(
        &app,
        post(
            "/api/reports",
            json!({"name": SECRET, "definition": {"entity": "clients", "columns": ["name"]}, "sharedWith": "everyone"}),
        ),
    )
    .await;
    assert_eq!(report.status, StatusCode::CREATED, "{}", report.body);
    ids.insert("report", id_of(&report).unwrap());
    let board = send(
        &app,
        post(
            "/api/dashboards",
            json!({"name": SECRET, "tiles": [{"kind": "report", "ref": ids["report"]}], "sharedWith": "everyone"}),
        ),
    )
    .await;
    assert_eq!(board.status, StatusCode::CREATED, "{}", board.body);
    ids.insert("dashboard", id_of(&board).unwrap());
    let schedule = send(
        &app,
        post(
            &format!("/api/dashboards/{}/schedules", ids["dashboard"]),
            json!({"recipients": [b_admin], "cadence": "daily"}),
        ),
    )
    .await;
    assert_eq!(schedule.status, StatusCode::CREATED, "{}", schedule.body);
    ids.insert("schedule", id_of(&schedule).unwrap());
    let url = flow.json()["incomingUrl"].as_str().unwrap().to_string();
    let run = send(
        &app,
        actix_web::test::TestRequest::post()
            .uri(&url)
            .set_json(json!({"clientId": cid, "note": SECRET})),
    )
    .await;
    assert_eq!(run.status, StatusCode::ACCEPTED, "{}", run.body);
    ids.insert(
        "workflow_run",
        run.json()["runId"].as_str().unwrap().to_string(),
    );
    for key in [
        "segment",
        "report",
        "dashboard",
        "schedule",
        "workflow",
        "workflow_run",
        "webhook",
        "mailbox",
        "message",
        "message_file",
        "bounce",
        "template",
        "send",
        "recipient",
        "relation",
        "quote",
        "contract",
        "field",
        "tag",
        "token",
        "import",
        "invitation",
    ] {
        assert!(ids.contains_key(key), "B's {key} was not created: {ids:?}");
    }
    let mut api_routes = routes_of(include_str!("../../src/web/api/mod.rs"));
    api_routes
        .iter_mut()
        .for_each(|(_, p)| p.insert_str(0, "/api"));
    let console_routes = routes_of(include_str!("../../src/web/console/mod.rs"));
    assert!(api_routes.len() > 100 && console_routes.len() > 100);

    let mut unmapped = Vec::new();
    let mut failures = Vec::new();
    let mut mallory = Browser::new();
    mallory
        .sign_in(&app, "mallory@attacker.test", PASSWORD)
        .await;
    let skip = |path: &str| {
        // Signing out would end the attacker's own session mid-run.
        path == "/logout"
    };
    for (console, routes) in [(false, &api_routes), (true, &console_routes)] {
        for (method, path) in routes {
            if skip(path) {
                continue;
            }
            let (url, has_params) = match fill(path, &ids) {
                Ok(u) => u,
                Err(e) => {
                    unmapped.push(e);
                    continue;
                }
            };
            // B's own invitation of A's person is the one route where acting is allowed:
            // accepting is that person's right, not the admin's, and it is tested elsewhere.
            let r = if console {
                match *method {
                    Method::GET => mallory.get(&app, &url).await,
                    _ => {
                        mallory
                            .post_form(&app, &url, &[("name", "x"), ("version", "1")])
                            .await
                    }
                }
            } else {
                let req = api(method.clone(), &url, &a_tok);
                let req = if matches!(*method, Method::GET | Method::DELETE) {
                    req
                } else {
                    req.set_json(json!({"name": "x", "industry": "x"}))
                };
                send(&app, req).await
            };
            let what = format!("{method} {url} ({path})");
            if r.status.is_server_error() {
                failures.push(format!("{what}: server error {}", r.status));
            }
            if r.body.contains(SECRET) {
                failures.push(format!("{what}: B's data in the response"));
            }
            let success = r.status.is_success() || r.status == StatusCode::SEE_OTHER;
            if has_params && success {
                failures.push(format!("{what}: {} on B's record", r.status));
            }
        }
    }
    assert!(
        unmapped.is_empty(),
        "routes whose path parameters the attack matrix does not know (add them to value_for): {unmapped:?}"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // B's records are as B left them.
    let c = send(
        &app,
        api(Method::GET, &format!("/api/clients/{cid}"), &b_tok),
    )
    .await;
    assert_eq!(c.status, StatusCode::OK);
    assert_eq!(c.json()["displayName"], format!("{SECRET} Corp"));
    let d = send(
        &app,
        api(Method::GET, &format!("/api/opportunities/{did}"), &b_tok),
    )
    .await;
    assert_eq!(d.status, StatusCode::OK);
    assert_eq!(d.json()["name"], format!("{SECRET} deal"));
    let members = send(&app, api(Method::GET, "/api/users", &b_tok))
        .await
        .json();
    assert!(members["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["isActive"] == true));
}

fn j(method: Method, path: &str, token: &str, body: Value) -> actix_web::test::TestRequest {
    api(method, path, token).set_json(body)
}

#[test]
fn the_route_reader_sees_split_and_resource_routes() {
    let src = r#"
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/a", web::get().to(x))
        .route(
            "/b/{id}",
            web::post().to(y),
        )
        .service(
            web::resource("/c/{id}")
                .app_data(1)
                .route(web::get().to(z))
                .route(web::put().to(w)),
        );
}
"#;
    let r: Vec<String> = routes_of(src)
        .into_iter()
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    assert_eq!(
        r,
        vec!["GET /a", "POST /b/{id}", "GET /c/{id}", "PUT /c/{id}"]
    );
}
