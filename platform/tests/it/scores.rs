//! Client scores end to end, on both backends: the nightly computation over real rows
//! (interactions, deals), each score's reasons, the at-risk list within a rep's reach, the
//! prevent-churn task, and segments on scores.

use actix_web::http::{Method, StatusCode};
use serde_json::json;

use crate::support::{api, send, Browser, TestApp, PASSWORD};

fn days_ago(n: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::days(n))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[actix_web::test]
async fn scores_follow_the_data_and_name_their_reasons() {
    let t = TestApp::new().await;
    let org = t.org("Scores");
    let admin_id = t.user(&org, "admin@scores.test", "admin");
    let rep_id = t.user(&org, "rep@scores.test", "sales_rep");
    let other_id = t.user(&org, "other@scores.test", "sales_rep");
    let (admin, rep) = (t.token(&org, &admin_id), t.token(&org, &rep_id));
    let app = t.service().await;

    let client = |name: &str, owner: &str| json!({"firstName": name, "lastName": "Test", "status": "customer", "assignedTo": owner});
    let mut ids = Vec::new();
    for (name, owner) in [
        ("Active", &rep_id),
        ("Quiet", &rep_id),
        ("Elsewhere", &other_id),
    ] {
        let r = send(
            &app,
            api(Method::POST, "/api/clients", &admin).set_json(client(name, owner)),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        ids.push(r.json()["id"].as_str().unwrap().to_string());
    }
    let (active, quiet, elsewhere) = (ids[0].clone(), ids[1].clone(), ids[2].clone());
    // Active: six calls in the last month; Quiet and Elsewhere: one call 100 days ago.
    let log =
        |id: &str, days: i64| {
            api(Method::POST, &format!("/api/clients/{id}/interactions"), &admin).set_json(json!({
            "type": "call", "subject": "Call", "status": "completed", "completedAt": days_ago(days)
        }))
        };
    for d in [1, 3, 6, 10, 15, 20] {
        let r = send(&app, log(&active, d)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    for id in [&quiet, &elsewhere] {
        let r = send(&app, log(id, 100)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert!(
            r.json()["occurredAt"]
                .as_str()
                .unwrap()
                .starts_with(&days_ago(100)[..10]),
            "{}",
            r.body
        );
    }

    let n = {
        let mut c = t.pool.get().unwrap();
        rapport::domain::scores::compute_org(&mut c, &org.id).unwrap()
    };
    assert_eq!(n, 3);

    let a = send(
        &app,
        api(Method::GET, &format!("/api/clients/{active}/scores"), &rep),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let q = send(
        &app,
        api(Method::GET, &format!("/api/clients/{quiet}/scores"), &rep),
    )
    .await
    .json();
    let a = a.json();
    assert!(a["engagement"].as_i64().unwrap() > q["engagement"].as_i64().unwrap());
    assert_eq!(a["churnRisk"], 0, "{a}");
    assert!(q["churnRisk"].as_i64().unwrap() >= 35, "{q}");
    let reasons: Vec<&str> = q["factors"]["churnRisk"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["factor"].as_str().unwrap())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("No contact for 100 days")),
        "{reasons:?}"
    );

    // A rep sees only their own clients' scores and at-risk list.
    let theirs = send(
        &app,
        api(
            Method::GET,
            &format!("/api/clients/{elsewhere}/scores"),
            &rep,
        ),
    )
    .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    let risk = send(
        &app,
        api(Method::GET, "/api/scores/at-risk?minRisk=30", &rep),
    )
    .await
    .json();
    let listed: Vec<&str> = risk["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["clientId"].as_str().unwrap())
        .collect();
    assert_eq!(listed, vec![quiet.as_str()], "{risk}");
    let all = send(
        &app,
        api(Method::GET, "/api/scores/at-risk?minRisk=30", &admin),
    )
    .await
    .json();
    assert_eq!(all["data"].as_array().unwrap().len(), 2, "{all}");

    // Prevent churn: a high-priority task for the owner, with the reasons.
    let planned = send(
        &app,
        api(
            Method::POST,
            &format!("/api/clients/{quiet}/prevent-churn"),
            &rep,
        ),
    )
    .await;
    assert_eq!(planned.status, StatusCode::CREATED, "{}", planned.body);
    let tasks = send(&app, api(Method::GET, "/api/tasks", &rep)).await;
    assert!(
        tasks.body.contains("Check in with Quiet Test")
            && tasks.body.contains("No contact for 100 days"),
        "{}",
        tasks.body
    );

    // New contact, scored on demand: the risk falls.
    assert_eq!(send(&app, log(&quiet, 0)).await.status, StatusCode::CREATED);
    let again = send(
        &app,
        api(Method::POST, &format!("/api/clients/{quiet}/scores"), &rep),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert!(again.json()["churnRisk"].as_i64().unwrap() < q["churnRisk"].as_i64().unwrap());

    // Segments filter on scores.
    let seg = send(&app, api(Method::POST, "/api/segments/preview", &admin).set_json(json!({
        "criteria": {"match": "all", "conditions": [{"field": "scores.churnRisk", "op": "gte", "value": 30}]}
    }))).await;
    assert_eq!(seg.status, StatusCode::OK, "{}", seg.body);
    assert_eq!(
        seg.json()["count"],
        1,
        "only Elsewhere is still at risk: {}",
        seg.body
    );
    let bad = send(&app, api(Method::POST, "/api/segments/preview", &admin).set_json(json!({
        "criteria": {"match": "all", "conditions": [{"field": "scores.engagement", "op": "gte", "value": 101}]}
    }))).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);

    // The console: the profile's Scores card and the dashboard's at-risk list.
    let mut b = Browser::new();
    b.sign_in(&app, "rep@scores.test", PASSWORD).await;
    let profile = b.get(&app, &format!("/clients/{active}")).await;
    assert!(
        profile.body.contains("id=\"scores\"") && profile.body.contains("Engagement"),
        "{}",
        profile.body
    );
    let mut c = t.pool.get().unwrap();
    rapport::domain::scores::compute_org(&mut c, &org.id).unwrap();
    drop(c);
    let dash = b.get(&app, "/").await;
    assert!(
        !dash.body.contains("id=\"at-risk\""),
        "nobody of the rep's is at risk after the new call"
    );
    let mut b = Browser::new();
    b.sign_in(&app, "admin@scores.test", PASSWORD).await;
    let dash = b.get(&app, "/").await;
    assert!(
        dash.body.contains("id=\"at-risk\"") && dash.body.contains("Elsewhere Test"),
        "{}",
        dash.body
    );
}

#[actix_web::test]
async fn the_overview_counts_what_the_caller_may_see_in_the_period() {
    let t = TestApp::new().await;
    let org = t.org("Overview");
    let admin_id = t.user(&org, "admin@overview.test", "admin");
    let rep_id = t.user(&org, "rep@overview.test", "sales_rep");
    let (admin, rep) = (t.token(&org, &admin_id), t.token(&org, &rep_id));
    let app = t.service().await;
    for (name, status, owner) in [
        ("A", "customer", &rep_id),
        ("B", "lead", &rep_id),
        ("C", "customer", &admin_id),
    ] {
        let r = send(
            &app,
            api(Method::POST, "/api/clients", &admin).set_json(
                json!({"firstName": name, "lastName": "X", "status": status, "assignedTo": owner}),
            ),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let all = send(
        &app,
        api(Method::GET, "/api/crm/analytics/overview", &admin),
    )
    .await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    let all = all.json();
    assert_eq!(all["newClients"], 3);
    let customers = all["clientsByStatus"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["status"] == "customer")
        .unwrap()["clients"]
        .clone();
    assert_eq!(customers, 2);
    assert_eq!(all["winRate"]["rate"], serde_json::Value::Null);
    let mine = send(&app, api(Method::GET, "/api/crm/analytics/overview", &rep))
        .await
        .json();
    assert_eq!(
        mine["newClients"], 2,
        "a rep counts their own clients: {mine}"
    );
    // A period before anyone was created counts no new client; a reversed one is refused.
    let old = send(
        &app,
        api(
            Method::GET,
            "/api/crm/analytics/overview?from=2020-01-01&to=2020-01-31",
            &admin,
        ),
    )
    .await
    .json();
    assert_eq!(old["newClients"], 0);
    let bad = send(
        &app,
        api(
            Method::GET,
            "/api/crm/analytics/overview?from=2026-02-01&to=2026-01-01",
            &admin,
        ),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
}
