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
    // A client marked inactive scores 100 but is never "at risk": it has already gone.
    let gone = send(
        &app,
        api(Method::POST, "/api/clients", &admin).set_json(json!({
            "firstName": "Gone", "lastName": "Test", "status": "inactive", "assignedTo": &rep_id
        })),
    )
    .await;
    assert_eq!(gone.status, StatusCode::CREATED, "{}", gone.body);
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
    assert_eq!(n, 4);

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
    // The overview counts the same clients at risk (50 and up), each reader their own.
    for (token, min) in [(&admin, 50), (&rep, 50)] {
        let listed = send(
            &app,
            api(
                Method::GET,
                &format!("/api/scores/at-risk?minRisk={min}"),
                token,
            ),
        )
        .await
        .json()["data"]
            .as_array()
            .unwrap()
            .len();
        let o = send(&app, api(Method::GET, "/api/crm/analytics/overview", token))
            .await
            .json();
        assert_eq!(o["atRisk"], listed as i64, "{o}");
    }

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
    // A segment filters on the score as stored: Gone (inactive, 100) matches, though no
    // at-risk list shows it.
    assert_eq!(
        seg.json()["count"],
        2,
        "only Elsewhere and Gone are still at risk: {}",
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
        "nobody of the rep's is at risk after the new call (Gone is inactive, not at risk)"
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

    // The counts by status follow every change: a new status, a new owner, the trash, a
    // restore, a purge, and agree with the client list's own count each time.
    let ids: Vec<String> = send(&app, api(Method::GET, "/api/clients?sort=name", &admin))
        .await
        .json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    let (a, b, c) = (&ids[0], &ids[1], &ids[2]);
    let check = |step: &'static str| {
        let app = &app;
        let (admin, rep) = (admin.clone(), rep.clone());
        async move {
            for token in [&admin, &rep] {
                let o = send(app, api(Method::GET, "/api/crm/analytics/overview", token))
                    .await
                    .json();
                let by: std::collections::BTreeMap<String, i64> = o["clientsByStatus"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| {
                        (
                            s["status"].as_str().unwrap().to_string(),
                            s["clients"].as_i64().unwrap(),
                        )
                    })
                    .collect();
                for status in ["lead", "prospect", "customer", "inactive"] {
                    let listed = send(
                        app,
                        api(
                            Method::GET,
                            &format!("/api/clients?filter[status]={status}&count=true&limit=1"),
                            token,
                        ),
                    )
                    .await
                    .json()["total"]["count"]
                        .as_i64()
                        .unwrap();
                    assert_eq!(
                        by.get(status).copied().unwrap_or(0),
                        listed,
                        "{step}: {status}: {o}"
                    );
                }
            }
        }
    };
    check("created").await;
    let patch = |id: &str, body: serde_json::Value| {
        api(Method::PATCH, &format!("/api/clients/{id}"), &admin).set_json(body)
    };
    assert_eq!(
        send(&app, patch(b, json!({"status": "customer"})))
            .await
            .status,
        StatusCode::OK
    );
    check("status changed").await;
    assert_eq!(
        send(&app, patch(c, json!({"assignedTo": rep_id})))
            .await
            .status,
        StatusCode::OK
    );
    check("owner changed").await;
    let r = send(
        &app,
        api(Method::DELETE, &format!("/api/clients/{a}"), &admin),
    )
    .await;
    assert!(r.status.is_success(), "{}", r.body);
    check("trashed").await;
    let r = send(
        &app,
        api(Method::POST, &format!("/api/clients/{a}/restore"), &admin),
    )
    .await;
    assert!(r.status.is_success(), "{}", r.body);
    check("restored").await;
    let r = send(
        &app,
        api(Method::DELETE, &format!("/api/clients/{a}"), &admin),
    )
    .await;
    assert!(r.status.is_success(), "{}", r.body);
    let r = send(
        &app,
        api(Method::POST, &format!("/api/clients/{a}/purge"), &admin),
    )
    .await;
    assert!(r.status.is_success(), "{}", r.body);
    check("purged").await;
    let o = send(
        &app,
        api(Method::GET, "/api/crm/analytics/overview", &admin),
    )
    .await
    .json();
    let total: i64 = o["clientsByStatus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["clients"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 2, "{o}");
}

/// Two transactions creating clients for one owner at once: the second does not wait for the
/// first to commit (PostgreSQL; SQLite has one writer at a time). With one counter row per
/// owner and status, every create locked that row until its commit, and sixteen connections
/// creating for one person ran one after another.
#[actix_web::test]
async fn creates_for_one_owner_do_not_wait_for_each_others_commit() {
    use diesel::connection::SimpleConnection;
    use rapport::domain::clients::store;
    let t = TestApp::new().await;
    if !t._db.is_postgres() {
        return;
    }
    let org = t.org("Counters");
    let admin_id = t.user(&org, "admin@counters.test", "admin");
    let admin = t.token(&org, &admin_id);
    let app = t.service().await;
    let r = send(
        &app,
        api(Method::POST, "/api/clients", &admin).set_json(
            json!({"firstName": "Ada", "lastName": "One", "status": "lead", "assignedTo": admin_id}),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_string();
    let row = store::find(&mut t.pool.get().unwrap(), &org.id, &id)
        .unwrap()
        .unwrap();
    let another = |name: &str| {
        let mut r = row.clone();
        r.id = uuid::Uuid::new_v4().to_string();
        r.display_name = name.to_string();
        r
    };

    let mut first = t.pool.get().unwrap();
    first.batch_execute("BEGIN").unwrap();
    store::insert(&mut first, &another("Held Open")).unwrap();
    // why three tries: the counter has sixteen slots taken by transaction id, so a second
    // transaction shares the first's slot about once in sixteen and must then wait; three
    // in a row would be one in four thousand. With one row, every try waits.
    let mut second = t.pool.get().unwrap();
    let mut waited = Vec::new();
    let created = (0..3).any(|_| {
        let r = diesel::Connection::transaction(&mut *second, |c| {
            c.batch_execute("SET LOCAL lock_timeout = '2s'")?;
            store::insert(c, &another("Beside It"))
        });
        r.map_err(|e| waited.push(e.to_string())).is_ok()
    });
    assert!(
        created,
        "the second create waited for the first: {waited:?}"
    );
    first.batch_execute("COMMIT").unwrap();

    let o = send(
        &app,
        api(Method::GET, "/api/crm/analytics/overview", &admin),
    )
    .await
    .json();
    let leads = o["clientsByStatus"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["status"] == "lead")
        .map(|s| s["clients"].as_i64().unwrap());
    assert_eq!(leads, Some(3), "{o}");
}

/// A history of `n` clients over 400 days, contacts every 15 days; with a signal, a third
/// of them stop at a random day and never come back (silence predicts silence), without one
/// every contact is a coin toss (nothing predicts anything). Answers the client ids.
async fn history<S, B>(t: &TestApp, app: &S, admin: &str, n: usize, signal: bool) -> Vec<String>
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    use diesel::prelude::*;
    use rapport::db::schema::{clients as cl, interactions as it};
    let mut ids = Vec::new();
    for k in 0..n {
        let r = send(
            app,
            api(Method::POST, "/api/clients", admin).set_json(
                json!({"firstName": format!("H{k}"), "lastName": "History", "status": "customer"}),
            ),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        ids.push(r.json()["id"].as_str().unwrap().to_string());
    }
    let mut c = t.pool.get().unwrap();
    let now = chrono::Utc::now().naive_utc();
    let org: String = cl::table
        .filter(cl::id.eq(&ids[0]))
        .select(cl::organization_id)
        .first(&mut c)
        .unwrap();
    diesel::update(cl::table.filter(cl::id.eq_any(&ids)))
        .set(cl::created_at.eq(now - chrono::Duration::days(400)))
        .execute(&mut c)
        .unwrap();
    // A small deterministic generator, so the history is the same every run.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut rand = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 10_000) as f64 / 10_000.0
    };
    for id in &ids {
        let stops_at = if signal && rand() < 0.35 {
            Some((rand() * 380.0) as i64)
        } else {
            None
        };
        let mut day = 400 - (rand() * 15.0) as i64;
        while day > 0 {
            let keep = match stops_at {
                Some(s) => day > s,
                None => signal || rand() < 0.5,
            };
            if keep {
                let at = now - chrono::Duration::days(day);
                diesel::insert_into(it::table)
                    .values((
                        it::id.eq(rapport::db::new_id()),
                        it::organization_id.eq(&org),
                        it::client_id.eq(id),
                        it::kind.eq("call"),
                        it::subject.eq("Call"),
                        it::content.eq(""),
                        it::status.eq("completed"),
                        it::occurred_at.eq(at),
                        it::metadata.eq("{}"),
                        it::version.eq(1i64),
                        it::created_at.eq(at),
                        it::updated_at.eq(at),
                    ))
                    .execute(&mut c)
                    .unwrap();
            }
            day -= if signal { 15 } else { 30 };
        }
    }
    ids
}

#[actix_web::test]
async fn the_churn_model_learns_a_known_signal_and_ignores_noise() {
    let t = TestApp::new().await;
    let app = t.service().await;
    let org = t.org("Churn history");
    let manager_id = t.user(&org, "manager@churn.test", "manager");
    let rep_id = t.user(&org, "rep@churn.test", "sales_rep");
    let (manager, rep) = (t.token(&org, &manager_id), t.token(&org, &rep_id));
    let r = send(&app, api(Method::GET, "/api/scores/churn-model", &manager)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "not trained yet");
    let ids = history(&t, &app, &manager, 260, true).await;

    let r = send(&app, api(Method::POST, "/api/scores/churn-model", &rep)).await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "training needs report:write"
    );
    let r = send(&app, api(Method::POST, "/api/scores/churn-model", &manager)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let ev = r.json();
    let auc = ev["auc"].as_f64().unwrap_or_else(|| panic!("{ev}"));
    assert!(auc > 0.8, "silence predicts silence: {ev}");
    assert_eq!(ev["inUse"], true, "{ev}");
    assert_eq!(ev["samples"], 260);
    let shown = send(&app, api(Method::GET, "/api/scores/churn-model", &rep))
        .await
        .json();
    assert_eq!(shown["auc"], ev["auc"]);

    // Every client is scored by the model now, with the reasons that pushed its risk up;
    // one that went quiet long ago is riskier than one called last week.
    let mut quiet = None;
    let mut active = None;
    for id in &ids {
        let s = send(
            &app,
            api(Method::GET, &format!("/api/clients/{id}/scores"), &manager),
        )
        .await
        .json();
        assert_eq!(s["factors"]["churnBasis"], "learned", "{s}");
        let reasons = s["factors"]["churnRisk"].as_array().unwrap().clone();
        let silent = reasons.iter().any(|r| {
            r["factor"]
                .as_str()
                .is_some_and(|f| f.starts_with("No contact for") && !f.contains(" 1 days"))
        });
        let risk = s["churnRisk"].as_i64().unwrap();
        if silent && risk >= 50 {
            quiet = Some(risk);
        } else if risk < 50 {
            active = Some(risk);
        }
    }
    let (quiet, active) = (
        quiet.expect("a quiet client at risk"),
        active.expect("an active client"),
    );
    assert!(quiet > active, "{quiet} > {active}");

    // Noise: contacts are coin tosses; the model is no better than chance and the rules stay.
    let org2 = t.org("Churn noise");
    let admin_id = t.user(&org2, "admin@noise.test", "admin");
    let admin = t.token(&org2, &admin_id);
    history(&t, &app, &admin, 260, false).await;
    let ev = send(&app, api(Method::POST, "/api/scores/churn-model", &admin))
        .await
        .json();
    let auc = ev["auc"].as_f64().unwrap_or(0.5);
    assert!((0.35..0.65).contains(&auc), "noise: {ev}");
    assert_eq!(ev["inUse"], false, "{ev}");
    assert!(ev["reason"].as_str().unwrap().contains("chance"), "{ev}");
}

#[actix_web::test]
async fn the_client_list_sorts_by_a_score_and_shows_it_as_a_column() {
    use diesel::prelude::*;
    use rapport::db::schema::client_scores as s;
    let t = TestApp::new().await;
    let org = t.org("Sorted");
    let admin_id = t.user(&org, "admin@sorted.test", "admin");
    let admin = t.token(&org, &admin_id);
    let app = t.service().await;
    let mut ids = Vec::new();
    for name in ["Low", "High", "Middle", "Unscored"] {
        let r = send(
            &app,
            api(Method::POST, "/api/clients", &admin)
                .set_json(json!({"firstName": name, "lastName": "Risk", "status": "customer"})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        ids.push(r.json()["id"].as_str().unwrap().to_string());
    }
    {
        let mut c = t.pool.get().unwrap();
        for (id, risk, engagement, ltv) in [
            (&ids[0], 10, 90, 50_000),
            (&ids[1], 80, 5, 12_000_000),
            (&ids[2], 45, 40, 900_000),
        ] {
            diesel::insert_into(s::table)
                .values((
                    s::client_id.eq(id),
                    s::organization_id.eq(&org.id),
                    s::engagement.eq(engagement),
                    s::lifetime_value_cents.eq(ltv as i64),
                    s::realised_cents.eq(0i64),
                    s::currency.eq("EUR"),
                    s::churn_risk.eq(risk),
                    s::factors.eq("{}"),
                    s::computed_at.eq(rapport::db::now()),
                ))
                .execute(&mut c)
                .unwrap();
        }
    }
    // Page by page, one client a page: highest risk first, the unscored one last.
    let names = |sort: &str| {
        let app = &app;
        let admin = admin.clone();
        let sort = sort.to_string();
        async move {
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            for _ in 0..6 {
                let path = match &cursor {
                    Some(c) => format!("/api/clients?sort={sort}&limit=1&cursor={c}"),
                    None => format!("/api/clients?sort={sort}&limit=1"),
                };
                let r = send(app, api(Method::GET, &path, &admin)).await;
                assert_eq!(r.status, StatusCode::OK, "{}", r.body);
                let page = r.json();
                seen.push(page["data"][0]["firstName"].as_str().unwrap().to_string());
                match page["nextCursor"].as_str() {
                    Some(c) => cursor = Some(c.to_string()),
                    None => break,
                }
            }
            seen
        }
    };
    assert_eq!(
        names("-churnRisk").await,
        ["High", "Middle", "Low", "Unscored"]
    );
    assert_eq!(
        names("churnRisk").await,
        ["Low", "Middle", "High", "Unscored"]
    );
    assert_eq!(
        names("-scores.engagement").await,
        ["Low", "Middle", "High", "Unscored"]
    );
    assert_eq!(
        names("-lifetimeValue").await,
        ["High", "Middle", "Low", "Unscored"]
    );
    let bad = send(&app, api(Method::GET, "/api/clients?sort=risk", &admin)).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("churnRisk"), "{}", bad.body);

    // The console: score columns from the columns menu, sorted by their header.
    let mut b = Browser::new();
    b.sign_in(&app, "admin@sorted.test", PASSWORD).await;
    let page = b
        .get(
            &app,
            "/clients?columns=status,churnRisk,lifetimeValue&sort=-churnRisk",
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let body = &page.body;
    assert!(body.contains("Churn risk") && body.contains("Lifetime value"));
    let at = |s: &str| {
        body.find(s)
            .unwrap_or_else(|| panic!("{s} missing: {body}"))
    };
    assert!(at("High Risk") < at("Middle Risk") && at("Middle Risk") < at("Low Risk"));
    assert!(at("Low Risk") < at("Unscored Risk"));
    assert!(body.contains("data-label=\"Churn risk\">80<"), "{body}");
    assert!(body.contains("120,000.00"), "{body}");
    assert!(
        body.contains("sort=churnRisk"),
        "the current header flips the order: {body}"
    );
}

/// The overview's "at risk" figure and the at-risk list, as a reader sees them.
async fn at_risk<S, B>(app: &S, token: &str) -> (i64, usize)
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let o = send(app, api(Method::GET, "/api/crm/analytics/overview", token))
        .await
        .json();
    let listed = send(
        app,
        api(Method::GET, "/api/scores/at-risk?minRisk=50", token),
    )
    .await
    .json()["data"]
        .as_array()
        .unwrap()
        .len();
    (o["atRisk"].as_i64().unwrap(), listed)
}

#[actix_web::test]
async fn the_at_risk_figure_follows_clients_without_waiting_for_the_next_scoring() {
    use diesel::prelude::*;
    use rapport::db::schema::client_scores as s;
    let t = TestApp::new().await;
    let org = t.org("Live risk");
    let admin_id = t.user(&org, "admin@live-risk.test", "admin");
    let rep_id = t.user(&org, "rep@live-risk.test", "sales_rep");
    let (admin, rep) = (t.token(&org, &admin_id), t.token(&org, &rep_id));
    let app = t.service().await;
    let mut ids = Vec::new();
    for name in ["Alpha", "Beta", "Gamma"] {
        let r = send(
            &app,
            api(Method::POST, "/api/clients", &admin).set_json(json!({
                "firstName": name, "lastName": "Risk", "status": "customer", "assignedTo": &rep_id
            })),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        ids.push(r.json()["id"].as_str().unwrap().to_string());
    }
    {
        let mut c = t.pool.get().unwrap();
        rapport::domain::scores::compute_org(&mut c, &org.id).unwrap();
    }
    // Where the model put them does not matter here: a rescoring stores these risks.
    let rescore = |id: &str, risk: i32| {
        let mut c = t.pool.get().unwrap();
        diesel::update(s::table.filter(s::client_id.eq(id)))
            .set(s::churn_risk.eq(risk))
            .execute(&mut c)
            .unwrap();
    };
    for (id, risk) in [(&ids[0], 80), (&ids[1], 60), (&ids[2], 10)] {
        rescore(id, risk);
    }
    assert_eq!(at_risk(&app, &admin).await, (2, 2));
    assert_eq!(at_risk(&app, &rep).await, (2, 2));

    // Reassigned to the admin: the rep's figure drops at once, the organization's stays.
    let moved = send(
        &app,
        api(Method::PATCH, &format!("/api/clients/{}", ids[0]), &admin)
            .set_json(json!({"assignedTo": &admin_id})),
    )
    .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    assert_eq!(at_risk(&app, &rep).await, (1, 1));
    assert_eq!(at_risk(&app, &admin).await, (2, 2));
    // And back: the rep's list, read through the score's copy of the owner, finds it again
    // without a rescoring.
    let owner_of = |id: &str| -> String {
        let mut c = t.pool.get().unwrap();
        s::table.find(id).select(s::owner).first(&mut c).unwrap()
    };
    assert_eq!(owner_of(&ids[0]), admin_id);
    for (to, mine) in [(&rep_id, (2, 2)), (&admin_id, (1, 1))] {
        let moved = send(
            &app,
            api(Method::PATCH, &format!("/api/clients/{}", ids[0]), &admin)
                .set_json(json!({"assignedTo": to})),
        )
        .await;
        assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
        assert_eq!(at_risk(&app, &rep).await, mine);
        assert_eq!(owner_of(&ids[0]), *to);
    }
    // A scoring that read the client's page before a reassignment and stores it after:
    // the stored score still names the owner the client has now.
    let read_before = {
        let mut c = t.pool.get().unwrap();
        rapport::domain::scores::get(&mut c, &org.id, &ids[0])
            .unwrap()
            .unwrap()
    };
    assert_eq!(read_before.owner, admin_id);
    let reassign = |to: &str| {
        api(Method::PATCH, &format!("/api/clients/{}", ids[0]), &admin)
            .set_json(json!({"assignedTo": to}))
    };
    let moved = send(&app, reassign(&rep_id)).await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    {
        let mut c = t.pool.get().unwrap();
        rapport::domain::scores::store(&mut c, &org.id, vec![read_before]).unwrap();
    }
    assert_eq!(owner_of(&ids[0]), rep_id);
    assert_eq!(at_risk(&app, &rep).await, (2, 2));
    let moved = send(&app, reassign(&admin_id)).await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    assert_eq!(at_risk(&app, &rep).await, (1, 1));

    // Trashed, it leaves the figure; restored, it is back.
    let trashed = send(
        &app,
        api(Method::DELETE, &format!("/api/clients/{}", ids[1]), &admin),
    )
    .await;
    assert_eq!(trashed.status, StatusCode::NO_CONTENT);
    assert_eq!(at_risk(&app, &rep).await, (0, 0));
    let restored = send(
        &app,
        api(
            Method::POST,
            &format!("/api/clients/{}/restore", ids[1]),
            &admin,
        ),
    )
    .await;
    assert_eq!(restored.status, StatusCode::OK, "{}", restored.body);
    assert_eq!(at_risk(&app, &rep).await, (1, 1));

    // Marked inactive, a client has already gone: it is no longer "at risk".
    let gone = send(
        &app,
        api(Method::PATCH, &format!("/api/clients/{}", ids[1]), &admin)
            .set_json(json!({"status": "inactive"})),
    )
    .await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.body);
    assert_eq!(at_risk(&app, &rep).await, (0, 0));
    assert_eq!(at_risk(&app, &admin).await, (1, 1));

    // Rescored across the line, either way.
    rescore(&ids[2], 75);
    assert_eq!(at_risk(&app, &admin).await, (2, 2));
    rescore(&ids[0], 20);
    assert_eq!(at_risk(&app, &admin).await, (1, 1));

    // Deleted outright (as an import's undo deletes the clients it created), counted once:
    // before the delete, not again when the score goes with it.
    {
        let mut c = t.pool.get().unwrap();
        use rapport::db::schema::clients as cl;
        diesel::delete(cl::table.filter(cl::id.eq(&ids[2])))
            .execute(&mut c)
            .unwrap();
    }
    assert_eq!(at_risk(&app, &admin).await, (0, 0));

    // The next full scoring agrees with what the triggers kept.
    rescore(&ids[0], 90);
    let kept = at_risk(&app, &admin).await;
    {
        let mut c = t.pool.get().unwrap();
        rapport::domain::scores::compute_org(&mut c, &org.id).unwrap();
    }
    let (figure, listed) = at_risk(&app, &admin).await;
    assert_eq!(figure, listed as i64);
    assert_eq!(kept, (1, 1));
}

/// The clients at risk per owner as the triggers keep them, and as recounted from the
/// scores (owners with none left out).
fn risk_counts_agree(
    c: &mut rapport::db::DbConn,
    org: &str,
) -> std::collections::BTreeMap<String, i64> {
    use diesel::prelude::*;
    use diesel::sql_types::{BigInt, Text};
    use rapport::db::schema::risk_counts as r;
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        owner: String,
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let kept: std::collections::BTreeMap<String, i64> = r::table
        .filter(r::organization_id.eq(org))
        .filter(r::n.ne(0))
        .select((r::owner, r::n))
        .load(c)
        .unwrap()
        .into_iter()
        .collect();
    let recounted: std::collections::BTreeMap<String, i64> = diesel::sql_query(format!(
        "SELECT COALESCE(c.assigned_to, '') AS owner, COUNT(*) AS n
         FROM client_scores s JOIN clients c ON c.id = s.client_id
         WHERE c.organization_id = '{org}' AND s.churn_risk >= 50
           AND c.deleted_at IS NULL AND c.status <> 'inactive'
         GROUP BY COALESCE(c.assigned_to, '')"
    ))
    .load::<Row>(c)
    .unwrap()
    .into_iter()
    .map(|r| (r.owner, r.n))
    .collect();
    assert_eq!(kept, recounted);
    kept
}

/// Statements over many rows on a connection that first ran them over one: the counts, the
/// scores' owners and the last contact the triggers keep still follow, and on PostgreSQL the
/// statement stays linear. (PL/pgSQL kept a statement trigger's first plan: a nested loop
/// over its two transition tables, which took 19 s for 20,000 rows and hours for a million.)
#[actix_web::test]
async fn bulk_statements_after_one_row_statements_keep_the_kept_figures() {
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    let t = TestApp::new().await;
    let org = t.org("Bulk risk");
    let admin_id = t.user(&org, "admin@bulk-risk.test", "admin");
    let rep_id = t.user(&org, "rep@bulk-risk.test", "sales_rep");
    let mut c = t.pool.get().unwrap();
    let n = 20_000;
    rapport::seed::seed_clients(&mut c, &org, n, 7, |_| {}).unwrap();
    let o = &org.id;
    c.batch_execute(&format!(
        "INSERT INTO client_scores (client_id, organization_id, engagement, lifetime_value_cents,
           realised_cents, currency, churn_risk, factors, computed_at, inactive, owner)
         SELECT id, organization_id, 0, 0, 0, 'EUR', 60, '{{}}', created_at, status = 'inactive',
           COALESCE(assigned_to, '')
         FROM clients WHERE organization_id = '{o}';
         INSERT INTO interactions (id, organization_id, client_id, kind, subject, content,
           status, occurred_at, metadata, version, created_at, updated_at)
         SELECT id || '-i', organization_id, id, 'call', 'Bulk', '', 'completed',
           '2026-01-02 03:04:05', '{{}}', 1, created_at, created_at
         FROM clients WHERE organization_id = '{o}';"
    ))
    .unwrap();
    // As after a seed or an import: the planner knows the tables' sizes.
    rapport::db::refresh_statistics(&mut c).unwrap();
    let before = risk_counts_agree(&mut c, o);
    assert!(before.values().sum::<i64>() > (n as i64) / 2, "{before:?}");
    let pg = t._db.is_postgres();
    // A yardstick: a bulk reassignment whose trigger statements are planned for its size
    // (DISCARD PLANS drops the plans PL/pgSQL keeps). Each bulk statement below follows a
    // one-row one whose plans it inherits; it must stay within a few times this. A fixed
    // timeout failed a loaded CI machine while the statement was linear; the nested loop
    // was 20 times slower than linear at this size, and grows with it.
    let fresh = std::time::Instant::now();
    if pg {
        c.batch_execute("DISCARD PLANS; SET statement_timeout = '120s'")
            .unwrap();
    }
    c.batch_execute(&format!(
        "UPDATE clients SET assigned_to = '{admin_id}' WHERE organization_id = '{o}'"
    ))
    .unwrap();
    let yardstick = fresh.elapsed();
    risk_counts_agree(&mut c, o);
    let bulk = |c: &mut rapport::db::PooledConn, sql: String| {
        let started = std::time::Instant::now();
        c.batch_execute(&sql).unwrap();
        let took = started.elapsed();
        assert!(
            !pg || took < yardstick * 5 + std::time::Duration::from_secs(2),
            "{sql}: {took:?} after one-row plans, against {yardstick:?} planned for its size"
        );
    };
    // The organization's first row of `table`, by id; on PostgreSQL the triggers' plans
    // are dropped first, so the one-row statement plans them.
    let first = |c: &mut rapport::db::PooledConn, sql: &str, table: &str| {
        if pg {
            c.batch_execute("DISCARD PLANS").unwrap();
        }
        c.batch_execute(&format!(
            "{sql} WHERE {table}.id = (SELECT MIN(id) FROM {table} WHERE organization_id = '{o}')"
        ))
        .unwrap();
    };
    // Reassigned: one client, then all of them, to the rep.
    first(
        &mut c,
        &format!("UPDATE clients SET assigned_to = '{rep_id}'"),
        "clients",
    );
    risk_counts_agree(&mut c, o);
    bulk(
        &mut c,
        format!("UPDATE clients SET assigned_to = '{rep_id}' WHERE organization_id = '{o}'"),
    );
    let after = risk_counts_agree(&mut c, o);
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[&rep_id], before.values().sum::<i64>());
    use rapport::db::schema::client_scores as sc;
    let owners: Vec<String> = sc::table
        .filter(sc::organization_id.eq(o))
        .select(sc::owner)
        .distinct()
        .load(&mut c)
        .unwrap();
    assert_eq!(owners, vec![rep_id.clone()]);
    // Rescored: one, then all, out of risk.
    if pg {
        c.batch_execute("DISCARD PLANS").unwrap();
    }
    c.batch_execute(&format!(
        "UPDATE client_scores SET churn_risk = 10 WHERE client_id = (SELECT MIN(client_id) FROM client_scores WHERE organization_id = '{o}')"
    ))
    .unwrap();
    assert_eq!(
        risk_counts_agree(&mut c, o)[&rep_id],
        before.values().sum::<i64>() - 1
    );
    bulk(
        &mut c,
        format!("UPDATE client_scores SET churn_risk = 10 WHERE organization_id = '{o}'"),
    );
    assert!(risk_counts_agree(&mut c, o).is_empty());
    // Each client's one contact moved: one, then all of them; the last contact follows.
    first(
        &mut c,
        "UPDATE interactions SET occurred_at = '2026-03-04 05:06:07'",
        "interactions",
    );
    bulk(
        &mut c,
        format!(
            "UPDATE interactions SET occurred_at = '2026-05-06 07:08:09' WHERE organization_id = '{o}'"
        ),
    );
    use rapport::db::schema::clients as cl;
    let last: Vec<Option<chrono::NaiveDateTime>> = cl::table
        .filter(cl::organization_id.eq(o))
        .select(cl::last_contact_at)
        .distinct()
        .load(&mut c)
        .unwrap();
    let want = chrono::NaiveDate::from_ymd_opt(2026, 5, 6)
        .unwrap()
        .and_hms_opt(7, 8, 9)
        .unwrap();
    assert_eq!(last, vec![Some(want)]);
}
