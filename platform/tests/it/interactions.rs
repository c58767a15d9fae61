//! Interactions: the timeline API and the quick log on the profile.

use actix_web::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::*;

struct World {
    t: TestApp,
    rep: String,
    other_rep: String,
    viewer: String,
    manager: String,
    admin: String,
    outsider: String,
}

async fn world() -> World {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    let r = t.user(&org, "rep@acme.test", "sales_rep");
    let r2 = t.user(&org, "rep2@acme.test", "sales_rep");
    let v = t.user(&org, "viewer@acme.test", "read_only");
    let m = t.user(&org, "manager@acme.test", "manager");
    let a = t.user(&org, "admin@acme.test", "admin");
    let other = t.org("Globex");
    let o = t.user(&other, "manager@globex.test", "manager");
    World {
        rep: t.token(&org, &r),
        other_rep: t.token(&org, &r2),
        viewer: t.token(&org, &v),
        manager: t.token(&org, &m),
        admin: t.token(&org, &a),
        outsider: t.token(&other, &o),
        t,
    }
}

fn titles(v: &Value) -> Vec<String> {
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["subject"].as_str().unwrap().to_string())
        .collect()
}

#[actix_web::test]
async fn the_timeline_api_logs_pages_and_guards() {
    let w = world().await;
    let app = w.t.service().await;
    let client = send(
        &app,
        api(Method::POST, "/api/clients", &w.rep)
            .set_json(json!({"type": "individual", "lastName": "Lovelace"})),
    )
    .await
    .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/clients/{client}/interactions");
    let log = |token: &str, body: Value| api(Method::POST, &path, token).set_json(body);
    for (subject, at) in [
        ("First call", "2026-11-01T09:00:00Z"),
        ("Second call", "2026-11-02T09:00:00Z"),
        ("Third call", "2026-11-03T09:00:00Z"),
    ] {
        let r = send(
            &app,
            log(
                &w.rep,
                json!({"type": "call", "subject": subject, "completedAt": at,
                "direction": "outbound", "outcome": "connected", "durationMinutes": 12}),
            ),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert!(r
            .header("location")
            .unwrap()
            .starts_with("/api/interactions/"));
    }
    // Newest first, in pages.
    let p1 = send(&app, api(Method::GET, &format!("{path}?limit=2"), &w.rep))
        .await
        .json();
    assert_eq!(titles(&p1), vec!["Third call", "Second call"]);
    let cursor = p1["nextCursor"].as_str().unwrap().to_string();
    let p2 = send(
        &app,
        api(
            Method::GET,
            &format!("{path}?limit=2&cursor={cursor}"),
            &w.rep,
        ),
    )
    .await
    .json();
    assert_eq!(titles(&p2), vec!["First call"]);
    assert_eq!(p2["nextCursor"], Value::Null);
    // A meeting planned for tomorrow is scheduled, then completed.
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let m = send(
        &app,
        log(
            &w.rep,
            json!({"type": "meeting", "subject": "Demo", "scheduledAt": tomorrow}),
        ),
    )
    .await
    .json();
    assert_eq!(m["status"], "scheduled");
    assert_eq!(m["completedAt"], Value::Null);
    let id = m["id"].as_str().unwrap().to_string();
    let done = send(
        &app,
        api(Method::PUT, &format!("/api/interactions/{id}"), &w.rep)
            .insert_header(("if-match", "\"v1\""))
            .set_json(json!({"status": "completed", "content": "Went well."})),
    )
    .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let done = done.json();
    assert_eq!(done["status"], "completed");
    assert!(done["completedAt"].is_string());
    let stale = send(
        &app,
        api(Method::PUT, &format!("/api/interactions/{id}"), &w.rep)
            .insert_header(("if-match", "\"v1\""))
            .set_json(json!({"subject": "Lost update"})),
    )
    .await;
    assert_eq!(
        stale.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        stale.body
    );
    // Bad input is a clear problem.
    let bad = send(
        &app,
        log(
            &w.rep,
            json!({"type": "fax", "outcome": "maybe", "durationMinutes": -3}),
        ),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.is_problem());
    let fields: Vec<String> = bad.json()["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(fields, vec!["type", "outcome", "durationMinutes"]);
    let bad = send(
        &app,
        log(&w.rep, json!({"type": "meeting", "status": "scheduled"})),
    )
    .await;
    assert_eq!(bad.json()["errors"][0]["field"], "scheduledAt");
    // Reach: another rep, another organization, a read-only role.
    assert_eq!(
        send(&app, api(Method::GET, &path, &w.other_rep))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(
            &app,
            api(Method::GET, &format!("/api/interactions/{id}"), &w.outsider)
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(&app, api(Method::GET, &path, &w.viewer)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, log(&w.viewer, json!({"type": "note"})))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&app, api(Method::GET, &path, &w.manager)).await.status,
        StatusCode::OK
    );
    // Deleting hides it; every change is audited.
    let d = send(
        &app,
        api(Method::DELETE, &format!("/api/interactions/{id}"), &w.rep),
    )
    .await;
    assert_eq!(d.status, StatusCode::NO_CONTENT);
    assert_eq!(
        send(
            &app,
            api(Method::GET, &format!("/api/interactions/{id}"), &w.rep)
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    let audit = send(&app, api(Method::GET, "/api/audit-log?limit=100", &w.admin))
        .await
        .json();
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    for a in [
        "interaction.create",
        "interaction.update",
        "interaction.delete",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
}

#[actix_web::test]
async fn a_rep_logs_a_call_from_the_profile_and_hostile_content_stays_text() {
    let w = world().await;
    let app = w.t.service().await;
    let client = send(
        &app,
        api(Method::POST, "/api/clients", &w.rep)
            .set_json(json!({"type": "individual", "lastName": "Hopper"})),
    )
    .await
    .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut b = Browser::new();
    b.sign_in(&app, "rep@acme.test", PASSWORD).await;
    let profile = b.get(&app, &format!("/clients/{client}")).await.body;
    assert!(profile.contains("id=\"timeline\"") && profile.contains("Nothing logged yet."));
    let r = b
        .hx_post(
            &app,
            &format!("/clients/{client}/interactions"),
            &[
                ("type", "call"),
                ("subject", ""),
                ("content", "<script>alert('x')</script> Wants a quote"),
                ("direction", "outbound"),
                ("outcome", "connected"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body.contains("<strong>Call</strong>"),
        "default subject: {}",
        r.body
    );
    assert!(
        !r.body.contains("<script>alert"),
        "stored script never runs"
    );
    assert!(
        r.body.contains("&#60;script&#62;") || r.body.contains("&lt;script&gt;"),
        "shown as text: {}",
        r.body
    );
    assert!(r.body.contains("Today"));
    assert!(
        r.body.contains("hx-swap-oob=\"beforeend:#toasts\"")
            && r.body.contains("class=\"toast toast-ok\"")
            && r.body.contains("Call logged."),
        "the form clears, so a toast says it was kept: {}",
        r.body
    );
    let refused = b
        .hx_post(
            &app,
            &format!("/clients/{client}/interactions"),
            &[
                ("type", "call"),
                ("subject", "Follow-up"),
                ("outcome", "maybe"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.body.contains("Choose connected, voicemail"),
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("value=\"Follow-up\""),
        "the form keeps what was typed"
    );
    assert!(
        !refused.body.contains("toast-ok"),
        "nothing was logged: {}",
        refused.body
    );
    let notes = b
        .get(&app, &format!("/clients/{client}/timeline?type=note"))
        .await
        .body;
    assert!(notes.contains("Nothing logged yet."), "filtered to notes");
    let api_list = send(
        &app,
        api(
            Method::GET,
            &format!("/api/clients/{client}/interactions"),
            &w.rep,
        ),
    )
    .await
    .json();
    assert_eq!(
        api_list["data"][0]["content"], "<script>alert('x')</script> Wants a quote",
        "kept as typed, as text"
    );
    let note = b
        .hx_post(
            &app,
            &format!("/clients/{client}/interactions"),
            &[("type", "note"), ("content", "Prefers e-mail")],
        )
        .await;
    assert_eq!(note.status, StatusCode::OK, "{}", note.body);
    assert!(note.body.contains("Note added."), "{}", note.body);
}

/// The bar, last part: a client who opted out of phone shows a warning before the
/// next call is logged, and an outbound call needs an explicit "log anyway".
#[actix_web::test]
async fn opting_out_of_phone_warns_before_the_next_call() {
    let w = world().await;
    let app = w.t.service().await;
    let client = send(
        &app,
        api(Method::POST, "/api/clients", &w.rep)
            .set_json(json!({"type": "individual", "lastName": "Liskov"})),
    )
    .await
    .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let prefs = format!("/api/clients/{client}/preferences");
    let bad = send(
        &app,
        api(Method::PUT, &prefs, &w.rep)
            .set_json(json!({"channels": {"fax": {"status": "opt_out"}}, "doNotContact": "yes"})),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.json()["errors"].as_array().unwrap().len(), 2);
    let ok = send(
        &app,
        api(Method::PUT, &prefs, &w.rep).set_json(json!({
            "channels": {"phone": {"status": "opt_out", "source": "asked on a call"},
                         "email": {"status": "opt_in", "source": "web form"}},
            "preferredChannel": "email", "preferredWindow": "weekdays 9-12"
        })),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    let p = send(&app, api(Method::GET, &prefs, &w.rep)).await.json();
    assert_eq!(p["channels"]["phone"]["status"], "opt_out");
    assert_eq!(p["channels"]["phone"]["source"], "asked on a call");
    assert_eq!(p["channels"]["sms"]["status"], "unknown");
    assert_eq!(p["preferredChannel"], "email");
    assert_eq!(
        send(&app, api(Method::GET, &prefs, &w.other_rep))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let path = format!("/api/clients/{client}/interactions");
    let call = |ack: bool| {
        api(Method::POST, &path, &w.rep).set_json(json!({
            "type": "call", "direction": "outbound", "acknowledgeOptOut": ack
        }))
    };
    let refused = send(&app, call(false)).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused.json()["errors"][0]["field"], "acknowledgeOptOut");
    assert!(
        refused.body.contains("opted out of phone contact"),
        "{}",
        refused.body
    );
    assert_eq!(send(&app, call(true)).await.status, StatusCode::CREATED);
    let inbound = send(
        &app,
        api(Method::POST, &path, &w.rep).set_json(json!({"type": "call", "direction": "inbound"})),
    )
    .await;
    assert_eq!(inbound.status, StatusCode::CREATED, "they may call us");
    let mail = send(
        &app,
        api(Method::POST, &path, &w.rep)
            .set_json(json!({"type": "email", "direction": "outbound"})),
    )
    .await;
    assert_eq!(mail.status, StatusCode::CREATED, "e-mail is opted in");

    // The console warns before logging, and the quick log needs the acknowledgement.
    let mut b = Browser::new();
    b.sign_in(&app, "rep@acme.test", PASSWORD).await;
    let profile = b.get(&app, &format!("/clients/{client}")).await.body;
    assert!(
        profile.contains("Calls: This client opted out of phone contact (asked on a call"),
        "{profile}"
    );
    let log = |ack: &'static str| {
        vec![
            ("type", "call"),
            ("direction", "outbound"),
            ("content", "Tried again"),
            ("acknowledgeOptOut", ack),
        ]
    };
    let r = b
        .hx_post(
            &app,
            &format!("/clients/{client}/interactions"),
            &log("false"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Confirm to log it anyway."));
    let r = b
        .hx_post(
            &app,
            &format!("/clients/{client}/interactions"),
            &log("true"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("Tried again"));
    // Do-not-contact from the profile's form blocks e-mail too.
    let saved = b
        .hx_post(
            &app,
            &format!("/clients/{client}/preferences"),
            &[
                ("phone", "opt_out"),
                ("email", "opt_in"),
                ("doNotContact", "true"),
                ("source", "GDPR request"),
            ],
        )
        .await;
    assert!(
        saved.status.is_success() || saved.status.is_redirection(),
        "{}",
        saved.body
    );
    let mail = send(
        &app,
        api(Method::POST, &path, &w.rep)
            .set_json(json!({"type": "email", "direction": "outbound"})),
    )
    .await;
    assert_eq!(mail.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(mail.body.contains("asked not to be contacted"));
}

/// A meeting scheduled for tomorrow appears in the rep's private iCalendar feed, which a
/// standard parser reads; a new URL revokes the old one.
#[actix_web::test]
async fn a_meeting_for_tomorrow_is_in_the_reps_calendar_feed() {
    let w = world().await;
    let app = w.t.service().await;
    let client = send(
        &app,
        api(Method::POST, "/api/clients", &w.rep)
            .set_json(json!({"type": "company", "companyName": "Tyrell, Inc."})),
    )
    .await
    .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
        .date_naive()
        .and_hms_opt(14, 30, 0)
        .unwrap();
    let r = send(
        &app,
        api(
            Method::POST,
            &format!("/api/clients/{client}/interactions"),
            &w.rep,
        )
        .set_json(json!({
            "type": "meeting", "subject": "Kick-off; agenda, budget",
            "content": "Bring the Nexus brochure\nand the contract",
            "scheduledAt": format!("{}Z", tomorrow.format("%Y-%m-%dT%H:%M:%S")),
            "durationMinutes": 45
        })),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let url = send(&app, api(Method::GET, "/api/me/calendar-feed", &w.rep))
        .await
        .json()["url"]
        .as_str()
        .unwrap()
        .to_string();
    let again = send(&app, api(Method::GET, "/api/me/calendar-feed", &w.rep))
        .await
        .json();
    assert_eq!(
        again["url"],
        url.as_str(),
        "the URL is stable until renewed"
    );
    let path = url[url.find("/calendar/").unwrap()..].to_string();
    let feed = send(&app, actix_web::test::TestRequest::get().uri(&path)).await;
    assert_eq!(feed.status, StatusCode::OK);
    assert!(feed
        .header("content-type")
        .unwrap()
        .starts_with("text/calendar"));
    let mut parser = ical::IcalParser::new(std::io::BufReader::new(feed.body.as_bytes()));
    let cal = parser.next().expect("a calendar").expect("parses");
    assert_eq!(cal.events.len(), 1);
    let prop = |name: &str| {
        cal.events[0]
            .properties
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| p.value.clone())
            .unwrap_or_default()
    };
    assert_eq!(
        prop("SUMMARY"),
        "Meeting: Kick-off\\; agenda\\, budget — Tyrell\\, Inc."
    );
    assert_eq!(
        prop("DTSTART"),
        tomorrow.format("%Y%m%dT%H%M%SZ").to_string()
    );
    assert_eq!(
        prop("DTEND"),
        (tomorrow + chrono::Duration::minutes(45))
            .format("%Y%m%dT%H%M%SZ")
            .to_string()
    );
    assert_eq!(
        prop("DESCRIPTION"),
        "Bring the Nexus brochure\\nand the contract"
    );
    // Another rep's feed does not show it.
    let other = send(
        &app,
        api(Method::GET, "/api/me/calendar-feed", &w.other_rep),
    )
    .await
    .json()["url"]
        .as_str()
        .unwrap()
        .to_string();
    let other_path = other[other.find("/calendar/").unwrap()..].to_string();
    let other_feed = send(&app, actix_web::test::TestRequest::get().uri(&other_path)).await;
    assert!(!other_feed.body.contains("Kick-off"));
    // A new URL; the old one is gone.
    let renewed = send(&app, api(Method::POST, "/api/me/calendar-feed", &w.rep))
        .await
        .json()["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(renewed, url);
    let mut b = Browser::new();
    b.sign_in(&app, "rep@acme.test", PASSWORD).await;
    let page = b.get(&app, "/account/tokens").await.body;
    let renewed_path = &renewed[renewed.find("/calendar/").unwrap()..];
    assert!(
        page.contains(renewed_path),
        "the console shows the feed address"
    );
    assert_eq!(
        send(&app, actix_web::test::TestRequest::get().uri(&path))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

/// A task given to someone who may read interactions but not change them (read only)
/// shows on their tasks page without a "Done" button, and completing it is refused alike in
/// the console and the API (the console used to offer the button and ask for client rights).
#[actix_web::test]
async fn a_reader_of_interactions_sees_their_tasks_without_done() {
    let t = TestApp::new().await;
    let app = t.service().await;
    let org = t.org("Acme");
    let rep = t.user(&org, "rep@acme.test", "sales_rep");
    let marketer = t.user(&org, "mk@acme.test", "read_only");
    let (rep_token, mk_token) = (t.token(&org, &rep), t.token(&org, &marketer));
    let client = send(
        &app,
        api(Method::POST, "/api/clients", &rep_token)
            .set_json(json!({"type": "individual", "lastName": "Lovelace"})),
    )
    .await
    .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let task = send(
        &app,
        api(Method::POST, "/api/tasks", &rep_token).set_json(json!({
            "clientId": client, "subject": "Check the newsletter list", "assigneeId": marketer
        })),
    )
    .await;
    assert_eq!(task.status, StatusCode::CREATED, "{}", task.body);
    let id = task.json()["id"].as_str().unwrap().to_string();
    let mut b = Browser::new();
    b.sign_in(&app, "mk@acme.test", PASSWORD).await;
    let page = b.get(&app, "/tasks").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("Check the newsletter list"),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains("/complete"),
        "no Done for a reader: {}",
        page.body
    );
    let console = b.hx_post(&app, &format!("/tasks/{id}/complete"), &[]).await;
    assert_eq!(console.status, StatusCode::FORBIDDEN, "{}", console.body);
    let api_done = send(
        &app,
        api(
            Method::POST,
            &format!("/api/tasks/{id}/complete"),
            &mk_token,
        ),
    )
    .await;
    assert_eq!(api_done.status, StatusCode::FORBIDDEN, "{}", api_done.body);
    // Nothing changed: the task is still open for the one it was given to.
    let open = send(&app, api(Method::GET, "/api/tasks", &mk_token))
        .await
        .json();
    assert_eq!(open["data"][0]["status"], "scheduled");
}

/// Tasks: due dates put them overdue, today or upcoming; one click completes them; the
/// dashboard shows what is due.
#[actix_web::test]
async fn tasks_are_bucketed_and_done_in_one_click() {
    let w = world().await;
    let app = w.t.service().await;
    let client = send(
        &app,
        api(Method::POST, "/api/clients", &w.rep)
            .set_json(json!({"type": "individual", "lastName": "Wirth"})),
    )
    .await
    .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let now = chrono::Utc::now();
    let at = |days: i64| (now + chrono::Duration::days(days)).to_rfc3339();
    let mut ids = Vec::new();
    for (subject, due) in [
        ("Send the quote", Some(at(-1))),
        ("Call back", Some(now.to_rfc3339())),
        ("Plan the renewal", Some(at(7))),
        ("Someday", None),
    ] {
        let r = send(
            &app,
            api(Method::POST, "/api/tasks", &w.rep).set_json(json!({
                "clientId": client, "subject": subject, "dueAt": due, "priority": "high"
            })),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let t = r.json();
        assert_eq!(t["type"], "task");
        assert_eq!(t["status"], "scheduled", "open until done");
        ids.push(t["id"].as_str().unwrap().to_string());
    }
    let list = send(&app, api(Method::GET, "/api/tasks", &w.rep))
        .await
        .json();
    let got: Vec<(String, String)> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["subject"].as_str().unwrap().to_string(),
                t["bucket"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("Send the quote", "overdue"),
        ("Call back", "today"),
        ("Plan the renewal", "upcoming"),
        ("Someday", "upcoming"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(got, want);
    assert_eq!(list["data"][0]["clientName"], "Wirth");
    // Someone else's view: nothing assigned to them; bad input is refused.
    let other = send(&app, api(Method::GET, "/api/tasks", &w.other_rep))
        .await
        .json();
    assert_eq!(other["data"], json!([]));
    let bad = send(
        &app,
        api(Method::POST, "/api/tasks", &w.rep)
            .set_json(json!({"clientId": client, "priority": "urgent", "assigneeId": "nobody"})),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let errors = bad.json();
    let fields: Vec<&str> = errors["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"priority") && fields.contains(&"assigneeId"));
    // Done via the API…
    let done = send(
        &app,
        api(
            Method::POST,
            &format!("/api/tasks/{}/complete", ids[0]),
            &w.rep,
        ),
    )
    .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(done.json()["status"], "completed");
    // …and in one click in the console; the dashboard shows what is due.
    let mut b = Browser::new();
    b.sign_in(&app, "rep@acme.test", PASSWORD).await;
    let home = b.get(&app, "/").await.body;
    assert!(
        home.contains("id=\"due-tasks\"") && home.contains("Call back"),
        "{home}"
    );
    assert!(
        !home.contains("Send the quote"),
        "done tasks leave the dashboard"
    );
    let page = b.get(&app, "/tasks").await.body;
    assert!(page.contains("Overdue") && page.contains("Plan the renewal"));
    let r = b
        .hx_post(&app, &format!("/tasks/{}/complete", ids[1]), &[])
        .await;
    assert!(
        r.status.is_success() || r.status.is_redirection(),
        "{}",
        r.body
    );
    let list = send(&app, api(Method::GET, "/api/tasks", &w.rep))
        .await
        .json();
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    // A call is not a task.
    let call = send(
        &app,
        api(
            Method::POST,
            &format!("/api/clients/{client}/interactions"),
            &w.rep,
        )
        .set_json(json!({"type": "note"})),
    )
    .await
    .json();
    let r = send(
        &app,
        api(
            Method::POST,
            &format!("/api/tasks/{}/complete", call["id"].as_str().unwrap()),
            &w.rep,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

/// "New task" on My tasks: pick a client, name the task, it is the signed-in user's; without
/// a client the form answers inline with everything typed kept; a reader gets no form.
#[actix_web::test]
async fn my_tasks_makes_a_new_task_for_a_picked_client() {
    let t = TestApp::new().await;
    let app = t.service().await;
    let org = t.org("Acme");
    let rep = t.user(&org, "rep@acme.test", "sales_rep");
    t.user(&org, "ro@acme.test", "read_only");
    let token = t.token(&org, &rep);
    let client = send(
        &app,
        api(Method::POST, "/api/clients", &token)
            .set_json(json!({"type": "individual", "lastName": "Lovelace"})),
    )
    .await
    .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut b = Browser::new();
    b.sign_in(&app, "rep@acme.test", PASSWORD).await;
    let page = b.get(&app, "/tasks").await.body;
    assert!(page.contains("id=\"new-task\"") && page.contains("New task"));
    let refused = b
        .hx_post(
            &app,
            "/tasks",
            &[
                ("q", "Lov"),
                ("clientId", ""),
                ("subject", "Call about the renewal"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("Choose the client the task is for"));
    assert!(
        refused.body.contains("value=\"Call about the renewal\""),
        "typed text kept"
    );
    let made = b
        .hx_post(
            &app,
            "/tasks",
            &[
                ("q", "Lovelace"),
                ("clientId", &client),
                ("subject", "Call about the renewal"),
                ("due", "2030-01-15T09:30"),
                ("priority", "high"),
            ],
        )
        .await;
    assert!(
        made.status.is_redirection() || made.header("hx-redirect").is_some(),
        "{}",
        made.body
    );
    let tasks = send(&app, api(Method::GET, "/api/tasks", &token))
        .await
        .json();
    assert_eq!(tasks["data"][0]["subject"], "Call about the renewal");
    assert_eq!(tasks["data"][0]["priority"], "high");
    assert_eq!(tasks["data"][0]["assigneeId"], rep);
    assert!(b
        .get(&app, "/tasks")
        .await
        .body
        .contains("Call about the renewal"));
    let mut ro = Browser::new();
    ro.sign_in(&app, "ro@acme.test", PASSWORD).await;
    assert!(!ro
        .get(&app, "/tasks")
        .await
        .body
        .contains("id=\"new-task\""));
}
