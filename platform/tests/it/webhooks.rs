//! Webhooks against a real HTTP receiver on this machine: a deal won in Rapport is posted,
//! signed so that an independent Standard Webhooks implementation accepts it; a receiver
//! that is down only delays delivery, in order per record; after three days of failure the
//! subscription is switched off and the admins told; deliveries replay; targets on private
//! or metadata addresses are refused unless allowed.

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::http::{Method, StatusCode};
use serde_json::json;

use crate::support::{api, send, Browser, TestApp, PASSWORD};

/// What the receiver was sent: headers (lower-case names) and body.
pub type Seen = Arc<Mutex<Vec<(Vec<(String, String)>, String)>>>;

/// An HTTP endpoint that records each POST and answers with `status`.
pub fn receiver(status: Arc<AtomicU16>) -> (u16, Seen) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let out = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = Vec::new();
            let mut line = String::new();
            reader.read_line(&mut line).unwrap_or(0);
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((k, v)) = line.trim_end().split_once(':') {
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                }
            }
            let len: usize = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0u8; len];
            reader.read_exact(&mut body).unwrap_or(());
            let code = status.load(Ordering::SeqCst);
            if code == 200 {
                seen.lock()
                    .unwrap()
                    .push((headers, String::from_utf8_lossy(&body).into()));
            }
            let _ = write!(
                stream,
                "HTTP/1.1 {code} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
            );
        }
    });
    (port, out)
}

pub fn header<'a>(h: &'a [(String, String)], k: &str) -> &'a str {
    h.iter()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// The event types the receiver was sent, in the order it got them.
fn types(seen: &Seen) -> Vec<String> {
    seen.lock()
        .unwrap()
        .iter()
        .map(|(_, b)| {
            serde_json::from_str::<serde_json::Value>(b).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

async fn deliver(app: &TestApp) -> usize {
    rapport::ops::webhooks::deliver_due(&app.pool, &app.state.secret)
        .await
        .unwrap()
}

#[actix_web::test]
async fn a_won_deal_is_posted_signed_retried_in_order_and_replayed() {
    use diesel::prelude::*;
    use rapport::db::schema::{webhook_deliveries as d, webhook_subscriptions as s};
    let app = TestApp::new().await;
    let svc = app.service().await;
    let org = app.org("Hooks Co");
    let admin = app.user(&org, "admin@hooks.test", "admin");
    let manager = app.user(&org, "boss@hooks.test", "manager");
    let rep = app.user(&org, "rep@hooks.test", "sales_rep");
    let (admin_t, manager_t, rep_t) = (
        app.token(&org, &admin),
        app.token(&org, &manager),
        app.token(&org, &rep),
    );
    let status = Arc::new(AtomicU16::new(200));
    let (port, seen) = receiver(status.clone());
    let url = format!("http://127.0.0.1:{port}/hook");

    // SSRF: this machine and metadata are refused unless the admin allows a private host.
    let r = send(
        &svc,
        api(Method::POST, "/api/webhooks", &admin_t)
            .set_json(json!({"url": url, "events": ["deal.won"]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("private network"), "{}", r.body);
    let r = send(
        &svc,
        api(Method::POST, "/api/webhooks", &admin_t).set_json(json!({
            "url": "http://169.254.169.254/latest/meta-data", "events": ["*"], "allowPrivateHost": true
        })),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = send(
        &svc,
        api(Method::POST, "/api/webhooks", &admin_t)
            .set_json(json!({"url": url, "events": ["bogus.event"], "allowPrivateHost": true})),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Only an admin manages them; a manager reads them; a rep does neither.
    let r = send(
        &svc,
        api(Method::POST, "/api/webhooks", &manager_t)
            .set_json(json!({"url": url, "events": ["*"], "allowPrivateHost": true})),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let created = send(
        &svc,
        api(Method::POST, "/api/webhooks", &admin_t).set_json(json!({
            "url": url, "events": ["deal.won", "deal.stage_changed"], "allowPrivateHost": true,
            "description": "Billing"
        })),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let hook = created.json();
    let hook_id = hook["id"].as_str().unwrap().to_string();
    let secret = hook["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    let shown = send(
        &svc,
        api(Method::GET, &format!("/api/webhooks/{hook_id}"), &manager_t),
    )
    .await;
    assert_eq!(shown.status, StatusCode::OK);
    assert!(!shown.body.contains(&secret), "the secret is shown once");
    assert_eq!(
        send(&svc, api(Method::GET, "/api/webhooks", &rep_t))
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // A rep wins a deal: the webhook is written with the move and posted after it.
    let client = send(
        &svc,
        api(Method::POST, "/api/clients", &rep_t)
            .set_json(json!({"type": "company", "companyName": "Initech"})),
    )
    .await
    .json();
    let p = send(&svc, api(Method::GET, "/api/pipelines", &rep_t))
        .await
        .json();
    let stages = p["data"][0]["stages"].as_array().unwrap().clone();
    let stage = |name: &str| {
        stages
            .iter()
            .find(|x| x["name"] == name)
            .and_then(|x| x["id"].as_str())
            .unwrap()
            .to_string()
    };
    let deal = send(
        &svc,
        api(Method::POST, "/api/opportunities", &rep_t).set_json(json!({
            "name": "Initech renewal", "clientId": client["id"], "value": "1200.00",
            "currency": "EUR", "stage": stage("Qualification")
        })),
    )
    .await;
    assert_eq!(deal.status, StatusCode::CREATED, "{}", deal.body);
    let deal_id = deal.json()["id"].as_str().unwrap().to_string();
    let moved = send(
        &svc,
        api(
            Method::POST,
            &format!("/api/opportunities/{deal_id}/move"),
            &rep_t,
        )
        .set_json(json!({"stage": stage("Won")})),
    )
    .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    // One delivery per record per round: the second waits until the first is answered.
    assert_eq!(deliver(&app).await, 1, "stage_changed first");
    assert_eq!(deliver(&app).await, 1, "then won");
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    assert_eq!(
        types(&seen),
        ["deal.stage_changed", "deal.won"],
        "in the order of the change"
    );
    // An independent implementation of the scheme accepts the signature.
    let verifier = standardwebhooks::Webhook::new(&secret).unwrap();
    for (h, body) in &got {
        let mut headers = http::HeaderMap::new();
        for k in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            headers.insert(k, header(h, k).parse().unwrap());
        }
        verifier
            .verify(body.as_bytes(), &headers)
            .unwrap_or_else(|e| panic!("{e:?}: {h:?}"));
        // A tampered body is refused by the same verifier.
        assert!(verifier.verify(b"{\"type\":\"x\"}", &headers).is_err());
    }
    let won: serde_json::Value = serde_json::from_str(&got[1].1).unwrap();
    assert_eq!(won["data"]["id"], deal_id.as_str());
    assert_eq!(won["data"]["object"], "deal");

    // The receiver is down: the delivery waits and retries; a later change to the same
    // deal waits behind it.
    status.store(500, Ordering::SeqCst);
    let moved = send(
        &svc,
        api(
            Method::POST,
            &format!("/api/opportunities/{deal_id}/move"),
            &rep_t,
        )
        .set_json(json!({"stage": stage("Negotiation")})),
    )
    .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    assert_eq!(deliver(&app).await, 1);
    let mut c = app.pool.get().unwrap();
    let (st, attempts, next): (String, i32, Option<chrono::NaiveDateTime>) = d::table
        .filter(d::subscription_id.eq(&hook_id))
        .order(d::id.desc())
        .select((d::status, d::attempts, d::next_attempt_at))
        .first(&mut c)
        .unwrap();
    assert_eq!((st.as_str(), attempts), ("pending", 1));
    assert!(
        next.unwrap() > rapport::db::now(),
        "retried later, not at once"
    );
    let moved = send(
        &svc,
        api(
            Method::POST,
            &format!("/api/opportunities/{deal_id}/move"),
            &rep_t,
        )
        .set_json(json!({"stage": stage("Proposal")})),
    )
    .await;
    assert_eq!(moved.status, StatusCode::OK);
    assert_eq!(
        deliver(&app).await,
        0,
        "the later change waits behind the failing one"
    );
    // Back up: the backoff runs out, both go, oldest first.
    status.store(200, Ordering::SeqCst);
    diesel::update(d::table.filter(d::status.eq("pending")))
        .set(d::next_attempt_at.eq(Some(rapport::db::now())))
        .execute(&mut c)
        .unwrap();
    deliver(&app).await;
    deliver(&app).await;
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), 4);
    let to = |b: &str| {
        serde_json::from_str::<serde_json::Value>(b).unwrap()["data"]["changes"]["stage"][1].clone()
    };
    assert_eq!(to(&got[2].1), json!(stage("Negotiation")));
    assert_eq!(to(&got[3].1), json!(stage("Proposal")));

    // The log, and a replay of one delivery (a new webhook-id, the same payload).
    let log = send(
        &svc,
        api(
            Method::GET,
            &format!("/api/webhooks/{hook_id}/deliveries?status=delivered"),
            &manager_t,
        ),
    )
    .await
    .json();
    assert_eq!(log["data"].as_array().unwrap().len(), 4, "{log}");
    let first = log["data"][3]["id"].as_str().unwrap().to_string();
    let r = send(
        &svc,
        api(
            Method::POST,
            &format!("/api/webhooks/{hook_id}/replay"),
            &admin_t,
        )
        .set_json(json!({"deliveryId": first})),
    )
    .await;
    assert_eq!(r.json()["replayed"], 1, "{}", r.body);
    deliver(&app).await;
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), 5);
    assert_ne!(
        header(&got[4].0, "webhook-id"),
        header(&got[0].0, "webhook-id")
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&got[4].1).unwrap()["data"],
        serde_json::from_str::<serde_json::Value>(&got[0].1).unwrap()["data"]
    );

    // Rotation: for a day both secrets sign, so a receiver with either accepts.
    let rotated = send(
        &svc,
        api(
            Method::POST,
            &format!("/api/webhooks/{hook_id}/rotate-secret"),
            &admin_t,
        ),
    )
    .await
    .json();
    let new_secret = rotated["secret"].as_str().unwrap().to_string();
    let r = send(
        &svc,
        api(
            Method::POST,
            &format!("/api/webhooks/{hook_id}/test"),
            &admin_t,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    deliver(&app).await;
    let (h, body) = seen.lock().unwrap().last().cloned().unwrap();
    let mut headers = http::HeaderMap::new();
    for k in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        headers.insert(k, header(&h, k).parse().unwrap());
    }
    for s in [&secret, &new_secret] {
        standardwebhooks::Webhook::new(s)
            .unwrap()
            .verify(body.as_bytes(), &headers)
            .unwrap();
    }

    // Three days of failure: given up, the subscription switched off, the admins told.
    status.store(500, Ordering::SeqCst);
    send(
        &svc,
        api(
            Method::POST,
            &format!("/api/opportunities/{deal_id}/move"),
            &rep_t,
        )
        .set_json(json!({"stage": stage("Won")})),
    )
    .await;
    diesel::update(d::table.filter(d::status.eq("pending")))
        .set(d::created_at.eq(rapport::db::now() - chrono::Duration::days(4)))
        .execute(&mut c)
        .unwrap();
    deliver(&app).await;
    let (active, why): (bool, Option<String>) = s::table
        .find(&hook_id)
        .select((s::active, s::disabled_reason))
        .first(&mut c)
        .unwrap();
    assert!(!active, "switched off");
    assert!(why.unwrap().contains("three days"));
    let mut b = Browser::new();
    b.sign_in(&svc, "admin@hooks.test", PASSWORD).await;
    let bell = b.get(&svc, "/notifications").await;
    assert!(bell.body.contains("was switched off"), "{}", bell.body);
    let page = b.get(&svc, &format!("/admin/webhooks/{hook_id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Given up") && page.body.contains("Switch on"));
    let list = b.get(&svc, "/admin/webhooks").await;
    assert!(list.body.contains(&url));
}

/// In the console, an admin adds a webhook without typing JSON and sees its secret once.
#[actix_web::test]
async fn an_admin_adds_a_webhook_in_the_console() {
    let app = TestApp::new().await;
    let svc = app.service().await;
    let org = app.org("Console Hooks");
    app.user(&org, "admin@chooks.test", "admin");
    let mut b = Browser::new();
    b.sign_in(&svc, "admin@chooks.test", PASSWORD).await;
    let page = b.get(&svc, "/admin/webhooks").await;
    assert!(page.body.contains("Add a webhook"));
    let r = b
        .post_form(
            &svc,
            "/admin/webhooks",
            &[
                ("url", "http://127.0.0.1:9/x"),
                ("events", "client.created"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("private network"), "the reason inline");
    assert!(
        r.body.contains("http://127.0.0.1:9/x"),
        "what was typed stays"
    );
    let r = b
        .post_form(
            &svc,
            "/admin/webhooks",
            &[
                ("url", "http://127.0.0.1:9/x"),
                ("events", "client.created"),
                ("events", "deal.won"),
                ("allowPrivateHost", "1"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("whsec_"), "the secret, once");
    let again = b.get(&svc, "/admin/webhooks").await;
    assert!(!again.body.contains("whsec_"));
    assert!(again.body.contains("A client was created, A deal was won"));
}

/// A round carries one delivery per subscription and record, several records and
/// subscriptions at once, and records each outcome in its own columns: a receiver that
/// answers 2xx gets its deliveries marked delivered with code, excerpt and time; one that
/// answers 500 gets them retried later; past three days they are given up and the
/// subscription switched off, and a test event still goes to it.
#[actix_web::test]
async fn a_round_records_each_delivery_of_many_records_and_two_subscriptions() {
    use diesel::prelude::*;
    use rapport::db::schema::{webhook_deliveries as d, webhook_subscriptions as s};
    type Row = (
        String,
        String,
        i32,
        Option<i32>,
        Option<String>,
        Option<i32>,
        Option<chrono::NaiveDateTime>,
        Option<chrono::NaiveDateTime>,
    );
    let app = TestApp::new().await;
    let svc = app.service().await;
    let org = app.org("Rounds Co");
    let admin = app.user(&org, "admin@rounds.test", "admin");
    let t = app.token(&org, &admin);
    let (ok_status, down_status) = (Arc::new(AtomicU16::new(200)), Arc::new(AtomicU16::new(500)));
    let (ok_port, ok_seen) = receiver(ok_status);
    let (down_port, down_seen) = receiver(down_status.clone());
    let mut hooks = Vec::new();
    for port in [ok_port, down_port] {
        let r = send(
            &svc,
            api(Method::POST, "/api/webhooks", &t).set_json(json!({
                "url": format!("http://127.0.0.1:{port}/hook"),
                "events": ["client.created", "client.updated"], "allowPrivateHost": true
            })),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        hooks.push(r.json()["id"].as_str().unwrap().to_string());
    }
    let (ok_hook, down_hook) = (hooks[0].clone(), hooks[1].clone());
    // Three clients, each created then changed: two deliveries per record and subscription.
    let mut clients = Vec::new();
    for name in ["Alpha", "Beta", "Gamma"] {
        let r = send(
            &svc,
            api(Method::POST, "/api/clients", &t)
                .set_json(json!({"type": "company", "companyName": name})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let id = r.json()["id"].as_str().unwrap().to_string();
        let r = send(
            &svc,
            api(Method::PATCH, &format!("/api/clients/{id}"), &t)
                .set_json(json!({"industry": "Retail"})),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        clients.push(id);
    }
    let mut c = app.pool.get().unwrap();
    let rows = |c: &mut rapport::db::DbConn, hook: &str, event: &str| -> Vec<Row> {
        d::table
            .filter(d::subscription_id.eq(hook))
            .filter(d::event_type.eq(event))
            .order(d::record_id.asc())
            .select((
                d::record_id,
                d::status,
                d::attempts,
                d::response_status,
                d::response_excerpt,
                d::duration_ms,
                d::next_attempt_at,
                d::delivered_at,
            ))
            .load(c)
            .unwrap()
    };
    let mut sorted = clients.clone();
    sorted.sort();

    // First round: each record's creation to each subscription, not its change behind it.
    assert_eq!(deliver(&app).await, 6);
    let now = rapport::db::now();
    let delivered = rows(&mut c, &ok_hook, "client.created");
    assert_eq!(
        delivered.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
        sorted
    );
    for (_, status, attempts, code, excerpt, ms, next, at) in &delivered {
        assert_eq!((status.as_str(), *attempts), ("delivered", 1));
        assert_eq!((*code, excerpt.as_deref()), (Some(200), Some("ok")));
        assert!(ms.is_some() && next.is_none() && at.is_some_and(|at| at <= now));
    }
    for (_, status, attempts, code, excerpt, _, next, at) in
        rows(&mut c, &down_hook, "client.created")
    {
        assert_eq!((status.as_str(), attempts), ("pending", 1));
        assert_eq!((code, excerpt.as_deref()), (Some(500), Some("ok")));
        assert!(next.is_some_and(|n| n > now), "retried later");
        assert!(at.is_none());
    }
    for hook in [&ok_hook, &down_hook] {
        for (_, status, attempts, ..) in rows(&mut c, hook, "client.updated") {
            assert_eq!(
                (status.as_str(), attempts),
                ("pending", 0),
                "waits its turn"
            );
        }
    }
    assert_eq!(types(&ok_seen), ["client.created"; 3]);

    // Second round: the changes to the receiver that answered; the other's wait behind
    // their retried creations.
    assert_eq!(deliver(&app).await, 3);
    for (_, status, attempts, code, ..) in rows(&mut c, &ok_hook, "client.updated") {
        assert_eq!(
            (status.as_str(), attempts, code),
            ("delivered", 1, Some(200))
        );
    }
    assert_eq!(deliver(&app).await, 0, "nothing else is due");

    // Three days on, the retried creations fail once more: given up, the subscription
    // switched off, its changes never sent.
    diesel::update(
        d::table
            .filter(d::subscription_id.eq(&down_hook))
            .filter(d::event_type.eq("client.created")),
    )
    .set((
        d::created_at.eq(rapport::db::now() - chrono::Duration::days(4)),
        d::next_attempt_at.eq(Some(rapport::db::now())),
    ))
    .execute(&mut c)
    .unwrap();
    assert_eq!(deliver(&app).await, 3);
    for (_, status, attempts, code, _, _, next, at) in rows(&mut c, &down_hook, "client.created") {
        assert_eq!((status.as_str(), attempts, code), ("dead", 2, Some(500)));
        assert!(next.is_none() && at.is_none());
    }
    let (active, why): (bool, Option<String>) = s::table
        .find(&down_hook)
        .select((s::active, s::disabled_reason))
        .first(&mut c)
        .unwrap();
    assert!(!active);
    assert!(why.unwrap().contains("HTTP 500"));
    assert_eq!(
        deliver(&app).await,
        0,
        "a switched-off subscription is not sent to"
    );
    assert!(down_seen.lock().unwrap().is_empty());

    // The receiver is mended: a test event reaches the switched-off subscription, so the
    // admin can check it before switching it back on.
    down_status.store(200, Ordering::SeqCst);
    let r = send(
        &svc,
        api(Method::POST, &format!("/api/webhooks/{down_hook}/test"), &t),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(deliver(&app).await, 1);
    assert_eq!(types(&down_seen), ["webhook.test"]);
    assert_eq!(
        types(&ok_seen).len(),
        6,
        "the other receiver got nothing more"
    );
}
