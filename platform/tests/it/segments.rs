//! Segments through the API: criteria with AND/OR groups agree wherever they are evaluated
//! (preview, saved count, member list, client list filter, export), each field's operators
//! on hand-checked data, the checks that name the bad condition, entries and exits kept by
//! the worker (a silent baseline first, then events, webhooks and workflows), and who may
//! see, change, delete and export what.

use std::collections::BTreeSet;

use actix_http::Request;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use chrono::{Duration, Utc};
use diesel::prelude::*;
use serde_json::{json, Value};

use crate::support::{api, send, Resp, TestApp};

/// Runs the segment worker until it has nothing left to do.
async fn keep(app: &TestApp) -> usize {
    let mut total = 0;
    for _ in 0..10 {
        let n = rapport::ops::segments::run_due(&app.pool).await.unwrap();
        total += n;
        if n == 0 {
            break;
        }
    }
    total
}

async fn call<S, B>(svc: &S, method: Method, path: &str, token: &str, body: Option<Value>) -> Resp
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let req = api(method, path, token);
    match body {
        Some(b) => send(svc, req.set_json(b)).await,
        None => send(svc, req).await,
    }
}

async fn get<S, B>(svc: &S, path: &str, token: &str) -> Resp
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    call(svc, Method::GET, path, token, None).await
}

/// Creates a client; answers its id.
async fn client<S, B>(svc: &S, token: &str, body: Value) -> String
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let r = call(svc, Method::POST, "/api/clients", token, Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.json()["id"].as_str().unwrap().to_string()
}

/// Saves a segment; answers its id.
async fn segment<S, B>(svc: &S, token: &str, name: &str, criteria: Value) -> String
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let r = call(
        svc,
        Method::POST,
        "/api/segments",
        token,
        Some(json!({"name": name, "criteria": criteria})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.json()["id"].as_str().unwrap().to_string()
}

/// The client ids of a page's `data`.
fn ids(page: &Value) -> BTreeSet<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

fn set(items: &[&String]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Every member listed by `/api/segments/{id}/clients`, following the cursor.
async fn members<S, B>(svc: &S, token: &str, id: &str, limit: usize) -> Vec<String>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..50 {
        let path = match &cursor {
            Some(c) => format!("/api/segments/{id}/clients?limit={limit}&cursor={c}"),
            None => format!("/api/segments/{id}/clients?limit={limit}"),
        };
        let r = get(svc, &path, token).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let page = r.json();
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= limit);
        out.extend(data.iter().map(|c| c["id"].as_str().unwrap().to_string()));
        cursor = page["nextCursor"].as_str().map(str::to_string);
        if cursor.is_none() {
            return out;
        }
    }
    panic!("the member list does not end");
}

/// What the criteria match now, by display name (the data sets stay within the sample of five).
async fn matching<S, B>(svc: &S, token: &str, criteria: Value) -> BTreeSet<String>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let r = call(
        svc,
        Method::POST,
        "/api/segments/preview",
        token,
        Some(json!({"criteria": criteria})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{criteria}: {}", r.body);
    let p = r.json();
    let sample = p["sample"].as_array().unwrap();
    assert_eq!(
        p["count"].as_u64().unwrap() as usize,
        sample.len(),
        "{criteria}: the count is the sample's size here"
    );
    sample
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

fn names(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn all(conditions: Value) -> Value {
    json!({"match": "all", "conditions": conditions})
}

fn one(field: &str, op: &str, value: Value) -> Value {
    all(json!([{"field": field, "op": op, "value": value}]))
}

/// The `errors[].field` of a 422.
fn error_fields(r: &Resp) -> BTreeSet<String> {
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.is_problem(), "{:?}", r.header("content-type"));
    r.json()["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors: {}", r.body))
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_string())
        .collect()
}

fn days_ago(n: i64) -> String {
    (Utc::now() - Duration::days(n)).to_rfc3339()
}

#[actix_web::test]
async fn preview_count_members_and_the_client_filter_agree_on_an_and_or_segment() {
    let app = TestApp::new().await;
    let svc = app.service().await;
    let org = app.org("Segment Co");
    let admin = app.user(&org, "admin@seg.test", "admin");
    let marketer = app.user(&org, "mk@seg.test", "marketer");
    let (admin, mk) = (app.token(&org, &admin), app.token(&org, &marketer));
    let r = call(
        &svc,
        Method::POST,
        "/api/tags",
        &admin,
        Some(json!({"name": "VIP"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    let person = |first: &str, country: Option<&str>, vip: bool, status: &str| {
        let mut body =
            json!({"type": "individual", "firstName": first, "lastName": "Test", "status": status});
        if let Some(c) = country {
            body["address"] = json!({"country": c});
        }
        if vip {
            body["tags"] = json!(["VIP"]);
        }
        body
    };
    let anna = client(&svc, &mk, person("Anna", Some("DE"), true, "lead")).await;
    let bernd = client(&svc, &mk, person("Bernd", Some("DE"), false, "customer")).await;
    let _carla = client(&svc, &mk, person("Carla", Some("DE"), false, "lead")).await;
    let _dave = client(&svc, &mk, person("Dave", Some("FR"), true, "customer")).await;
    let eve = client(&svc, &mk, person("Eve", Some("DE"), true, "customer")).await;
    let _frank = client(&svc, &mk, person("Frank", None, true, "customer")).await;
    let expected = set(&[&anna, &bernd, &eve]);

    // Germany, and VIP or customer; the tag is named in another case.
    let criteria = all(json!([
        {"field": "country", "op": "eq", "value": "de"},
        {"match": "any", "conditions": [
            {"field": "tags", "op": "has", "value": "vip"},
            {"field": "status", "op": "eq", "value": "customer"}
        ]}
    ]));
    let r = call(
        &svc,
        Method::POST,
        "/api/segments/preview",
        &mk,
        Some(json!({"criteria": criteria})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let preview = r.json();
    assert_eq!(preview["count"], 3);
    let sampled: BTreeSet<String> = preview["sample"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(sampled, expected);
    assert_eq!(
        preview["summary"],
        "Country is de and (Tags has VIP or Status is customer)"
    );

    let r = call(
        &svc,
        Method::POST,
        "/api/segments",
        &mk,
        Some(json!({"name": "German VIPs and customers", "description": "For the Berlin fair", "criteria": criteria})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let saved = r.json();
    let id = saved["id"].as_str().unwrap().to_string();
    assert_eq!(
        r.header("location"),
        Some(format!("/api/segments/{id}").as_str())
    );
    assert_eq!(r.header("etag"), Some("\"v1\""));
    assert_eq!(saved["criteria"], criteria);
    assert_eq!(saved["version"], 1);
    assert!(saved["evaluatedAt"].is_null(), "not evaluated yet");

    let shown = get(&svc, &format!("/api/segments/{id}"), &mk).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(shown.json()["description"], "For the Berlin fair");
    let listed = get(&svc, "/api/segments", &mk).await.json();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert_eq!(listed["data"][0]["id"], id.as_str());

    let count = get(&svc, &format!("/api/segments/{id}/count"), &mk).await;
    assert_eq!(count.status, StatusCode::OK, "{}", count.body);
    assert_eq!(count.json()["count"], 3);

    // Two to a page: the pages hold each member once.
    let listed = members(&svc, &mk, &id, 2).await;
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert_eq!(listed.iter().cloned().collect::<BTreeSet<_>>(), expected);

    let filtered = get(
        &svc,
        &format!("/api/clients?filter[segment]={id}&count=true"),
        &mk,
    )
    .await;
    assert_eq!(filtered.status, StatusCode::OK, "{}", filtered.body);
    let page = filtered.json();
    assert_eq!(page["total"]["count"], 3);
    assert_eq!(ids(&page), expected);
    // The filter combines with the list's others.
    let customers = get(
        &svc,
        &format!("/api/clients?filter[segment]={id}&filter[status]=customer"),
        &mk,
    )
    .await
    .json();
    assert_eq!(ids(&customers), set(&[&bernd, &eve]));

    // Live: a new matching client counts at once, without waiting for the worker.
    let gina = client(&svc, &mk, person("Gina", Some("DE"), false, "customer")).await;
    assert_eq!(
        get(&svc, &format!("/api/segments/{id}/count"), &mk)
            .await
            .json()["count"],
        4
    );
    let listed: BTreeSet<String> = members(&svc, &mk, &id, 50).await.into_iter().collect();
    assert!(listed.contains(&gina) && listed.len() == 4);

    // An unknown segment in the filter is refused, not ignored.
    let r = get(&svc, "/api/clients?filter[segment]=nope", &mk).await;
    assert_eq!(error_fields(&r), names(&["filter[segment]"]));
}

#[actix_web::test]
async fn bad_criteria_are_refused_naming_the_condition() {
    let app = TestApp::new().await;
    let svc = app.service().await;
    let org = app.org("Checks Co");
    let mk = app.user(&org, "mk@checks.test", "marketer");
    let mk = app.token(&org, &mk);

    let post = |name: &str, criteria: Value| {
        api(Method::POST, "/api/segments", &mk)
            .set_json(json!({"name": name, "criteria": criteria}))
    };
    // Each condition wrong in its own way: every one is reported at its own path.
    let r = send(
        &svc,
        post(
            "Broken",
            all(json!([
                {"field": "shoeSize", "op": "eq", "value": "42"},
                {"field": "status", "op": "contains", "value": "cust"},
                {"field": "city", "op": "eq"},
                {"field": "tags", "op": "has", "value": "No such tag"},
                {"match": "some", "conditions": [{"field": "city", "op": "notEmpty"}]},
                {"field": "city", "op": "notEmpty"}
            ])),
        ),
    )
    .await;
    assert_eq!(
        error_fields(&r),
        names(&[
            "criteria.conditions[0].field",
            "criteria.conditions[1].op",
            "criteria.conditions[2].value",
            "criteria.conditions[3].value",
            "criteria.conditions[4].match",
        ])
    );
    assert!(r.body.contains("No such tag"), "{}", r.body);

    let r = send(
        &svc,
        post(
            "Bad match",
            json!({"match": "every", "conditions": [{"field": "city", "op": "empty"}]}),
        ),
    )
    .await;
    assert_eq!(error_fields(&r), names(&["criteria.match"]));

    // The root is depth 1; a group at depth 5 is too deep.
    let mut deep = json!({"field": "city", "op": "empty"});
    for _ in 0..5 {
        deep = all(json!([deep]));
    }
    let r = send(&svc, post("Deep", deep.clone())).await;
    assert_eq!(
        error_fields(&r),
        names(&["criteria.conditions[0].conditions[0].conditions[0].conditions[0]"])
    );
    // One level less is fine.
    let shallow = deep["conditions"][0].clone();
    let r = send(&svc, post("Deep enough", shallow)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    // Numbers of days out of range, and extras a field does not take.
    let r = send(
        &svc,
        post(
            "Extras",
            all(json!([
                {"field": "createdAt", "op": "withinDays", "value": 0},
                {"field": "city", "op": "eq", "value": "Bonn", "days": 3},
                {"field": "interactions.count", "op": "gte", "value": 1, "kind": "fax"}
            ])),
        ),
    )
    .await;
    assert_eq!(
        error_fields(&r),
        names(&[
            "criteria.conditions[0].value",
            "criteria.conditions[1].days",
            "criteria.conditions[2].kind",
        ])
    );

    // A segment may not include itself, directly or through another one.
    let a = segment(&svc, &mk, "Cities", one("city", "notEmpty", Value::Null)).await;
    let r = send(
        &svc,
        api(Method::PUT, &format!("/api/segments/{a}"), &mk).set_json(json!({
            "name": "Cities",
            "criteria": all(json!([
                {"field": "city", "op": "notEmpty"},
                {"field": "segment", "op": "in", "value": a}
            ]))
        })),
    )
    .await;
    assert_eq!(error_fields(&r), names(&["criteria.conditions[1].value"]));
    assert!(r.body.contains("cannot include itself"), "{}", r.body);
    let b = segment(&svc, &mk, "Cities too", one("segment", "in", json!(a))).await;
    let r = send(
        &svc,
        api(Method::PUT, &format!("/api/segments/{a}"), &mk)
            .set_json(json!({"name": "Cities", "criteria": one("segment", "notIn", json!(b))})),
    )
    .await;
    assert_eq!(error_fields(&r), names(&["criteria.conditions[0].value"]));
    // The preview of an edit checks the same.
    let r = send(
        &svc,
        api(Method::POST, "/api/segments/preview", &mk)
            .set_json(json!({"criteria": one("segment", "in", json!(b)), "segmentId": a})),
    )
    .await;
    assert_eq!(error_fields(&r), names(&["criteria.conditions[0].value"]));
    // Nothing was changed by the refused saves.
    let kept = get(&svc, &format!("/api/segments/{a}"), &mk).await.json();
    assert_eq!(kept["version"], 1);
    assert_eq!(kept["criteria"], one("city", "notEmpty", Value::Null));

    // Names are unique without regard to case, on create and on rename.
    let r = send(&svc, post("  cities ", one("city", "empty", Value::Null))).await;
    assert_eq!(error_fields(&r), names(&["name"]));
    let r = send(
        &svc,
        api(Method::PUT, &format!("/api/segments/{b}"), &mk)
            .set_json(json!({"name": "CITIES", "criteria": one("segment", "in", json!(a))})),
    )
    .await;
    assert_eq!(error_fields(&r), names(&["name"]));
    let r = send(&svc, post("", one("city", "empty", Value::Null))).await;
    assert_eq!(error_fields(&r), names(&["name"]));
    let r = send(
        &svc,
        api(Method::POST, "/api/segments", &mk).set_json(json!({"name": "No criteria"})),
    )
    .await;
    assert_eq!(error_fields(&r), names(&["criteria"]));
    let list = get(&svc, "/api/segments", &mk).await.json();
    let saved: BTreeSet<String> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(saved, names(&["Cities", "Cities too", "Deep enough"]));

    // If-Match: a save based on an old version is refused with 412.
    let r = send(
        &svc,
        api(Method::PUT, &format!("/api/segments/{a}"), &mk)
            .insert_header((header::IF_MATCH, "\"v1\""))
            .set_json(json!({"name": "Cities", "criteria": one("city", "startsWith", json!("B"))})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.header("etag"), Some("\"v2\""));
    assert_eq!(r.json()["version"], 2);
    let r = send(
        &svc,
        api(Method::PUT, &format!("/api/segments/{a}"), &mk)
            .insert_header((header::IF_MATCH, "\"v1\""))
            .set_json(json!({"name": "Stale", "criteria": one("city", "empty", Value::Null)})),
    )
    .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{}", r.body);
    let kept = get(&svc, &format!("/api/segments/{a}"), &mk).await;
    assert_eq!(kept.json()["name"], "Cities");
    assert_eq!(kept.header("etag"), Some("\"v2\""));
}

#[actix_web::test]
async fn each_operator_matches_the_hand_checked_clients() {
    let app = TestApp::new().await;
    let svc = app.service().await;
    let org = app.org("Operators Co");
    let admin = app.user(&org, "admin@ops.test", "admin");
    let admin = app.token(&org, &admin);

    let r = call(
        &svc,
        Method::POST,
        "/api/custom-fields",
        &admin,
        Some(json!({"entity": "client", "key": "seats", "label": "Seats", "type": "integer"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    let company = |name: &str,
                   email: Option<&str>,
                   city: Option<&str>,
                   country: Option<&str>,
                   industry: Option<&str>,
                   seats: Option<i64>| {
        let mut address = serde_json::Map::new();
        if let Some(c) = city {
            address.insert("city".into(), json!(c));
        }
        if let Some(c) = country {
            address.insert("country".into(), json!(c));
        }
        let mut body = json!({"type": "company", "companyName": name, "address": address});
        if let Some(e) = email {
            body["email"] = json!(e);
        }
        if let Some(i) = industry {
            body["industry"] = json!(i);
        }
        if let Some(s) = seats {
            body["customFields"] = json!({"seats": s});
        }
        body
    };
    let alpha = client(
        &svc,
        &admin,
        company(
            "Alpha GmbH",
            Some("alpha@example.com"),
            Some("Berlin"),
            Some("DE"),
            Some("Software"),
            Some(5),
        ),
    )
    .await;
    let beta = client(
        &svc,
        &admin,
        company(
            "Beta Ltd",
            Some("beta@sample.org"),
            Some("London"),
            Some("GB"),
            None,
            Some(50),
        ),
    )
    .await;
    let gamma = client(
        &svc,
        &admin,
        company(
            "Gamma Inc",
            None,
            Some("Bern"),
            Some("CH"),
            Some("Software services"),
            Some(20),
        ),
    )
    .await;
    let delta = client(
        &svc,
        &admin,
        company(
            "Delta AG",
            Some("delta@example.com"),
            None,
            Some("DE"),
            None,
            None,
        ),
    )
    .await;
    let epsilon = client(
        &svc,
        &admin,
        company(
            "Epsilon SA",
            Some("eps@example.org"),
            Some("Paris"),
            None,
            None,
            None,
        ),
    )
    .await;
    // Epsilon has been a client for a hundred days.
    {
        use rapport::db::schema::clients as cl;
        let mut c = app.pool.get().unwrap();
        let n = diesel::update(cl::table.filter(cl::id.eq(&epsilon)))
            .set(cl::created_at.eq(Utc::now().naive_utc() - Duration::days(100)))
            .execute(&mut c)
            .unwrap();
        assert_eq!(n, 1);
    }

    // Contact history: what happened, when. Gamma only has an open task, which is no contact.
    let mut beta_note = String::new();
    for (who, kind, ago) in [
        (&alpha, "call", 5),
        (&alpha, "meeting", 10),
        (&alpha, "call", 100),
        (&beta, "note", 2),
        (&beta, "call", 90),
        (&beta, "call", 95),
        (&delta, "call", 90),
    ] {
        let r = call(
            &svc,
            Method::POST,
            &format!("/api/clients/{who}/interactions"),
            &admin,
            Some(json!({"type": kind, "subject": format!("{kind} {ago} days ago"), "completedAt": days_ago(ago)})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(r.json()["status"], "completed", "{}", r.body);
        if who == &beta && kind == "note" {
            beta_note = r.json()["id"].as_str().unwrap().to_string();
        }
    }
    let r = call(
        &svc,
        Method::POST,
        &format!("/api/clients/{gamma}/interactions"),
        &admin,
        Some(json!({"type": "task", "subject": "Call Gamma", "dueAt": days_ago(-3)})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    let mut gamma_deal = String::new();
    // Open deals: Alpha 1,500 USD (the organization's currency), Beta 600 + 600 USD,
    // Gamma 5,000 EUR.
    for (who, value, currency) in [
        (&alpha, "1500.00", None),
        (&beta, "600", None),
        (&beta, "600", None),
        (&gamma, "5000", Some("EUR")),
    ] {
        let mut body = json!({"name": format!("Deal {value}"), "clientId": who, "value": value});
        if let Some(c) = currency {
            body["currency"] = json!(c);
        }
        let r = call(&svc, Method::POST, "/api/opportunities", &admin, Some(body)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        if who == &gamma {
            gamma_deal = r.json()["id"].as_str().unwrap().to_string();
        }
    }
    // Gamma's deal moves on to the proposal.
    let pipelines = get(&svc, "/api/pipelines", &admin).await.json();
    let stage = |name: &str| crate::support::stage_named(&pipelines, name);
    let (qualification, proposal) = (stage("Qualification"), stage("Proposal"));
    let r = call(
        &svc,
        Method::POST,
        &format!("/api/opportunities/{gamma_deal}/move"),
        &admin,
        Some(json!({"stage": proposal})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let (a, b, g, d, e) = (
        "Alpha GmbH",
        "Beta Ltd",
        "Gamma Inc",
        "Delta AG",
        "Epsilon SA",
    );
    let m = |c: Value| matching(&svc, &admin, c);

    // Text: case-insensitive, LIKE wildcards taken literally, "is not" includes the empty.
    assert_eq!(
        m(one("email", "contains", json!("EXAMPLE.com"))).await,
        names(&[a, d])
    );
    assert_eq!(m(one("email", "contains", json!("_"))).await, names(&[]));
    assert_eq!(m(one("name", "startsWith", json!("ga"))).await, names(&[g]));
    assert_eq!(
        m(one("city", "startsWith", json!("BER"))).await,
        names(&[a, g])
    );
    assert_eq!(
        m(one("city", "neq", json!("berlin"))).await,
        names(&[b, g, d, e])
    );
    assert_eq!(m(one("country", "eq", json!("de"))).await, names(&[a, d]));
    assert_eq!(
        m(one("country", "in", json!(["GB", "ch"]))).await,
        names(&[b, g])
    );
    assert_eq!(
        m(one("industry", "empty", Value::Null)).await,
        names(&[b, d, e])
    );
    assert_eq!(
        m(one("industry", "notEmpty", Value::Null)).await,
        names(&[a, g])
    );
    assert_eq!(
        m(one("industry", "contains", json!("soft"))).await,
        names(&[a, g])
    );
    assert_eq!(m(one("email", "empty", Value::Null)).await, names(&[g]));

    // Dates.
    assert_eq!(
        m(one("createdAt", "withinDays", json!(30))).await,
        names(&[a, b, g, d])
    );
    assert_eq!(
        m(one("createdAt", "olderThanDays", json!(30))).await,
        names(&[e])
    );
    let fifty_days_ago = (Utc::now() - Duration::days(50))
        .format("%Y-%m-%d")
        .to_string();
    assert_eq!(
        m(one("createdAt", "before", json!(fifty_days_ago))).await,
        names(&[e])
    );
    assert_eq!(
        m(one("createdAt", "after", json!(fifty_days_ago))).await,
        names(&[a, b, g, d])
    );

    // A custom field.
    assert_eq!(
        m(one("customFields.seats", "gt", json!(10))).await,
        names(&[b, g])
    );
    assert_eq!(
        m(one("customFields.seats", "lte", json!("5"))).await,
        names(&[a])
    );
    assert_eq!(
        m(one("customFields.seats", "empty", Value::Null)).await,
        names(&[d, e])
    );
    assert_eq!(
        m(one("customFields.seats", "notEmpty", Value::Null)).await,
        names(&[a, b, g])
    );

    // Interactions: counted overall, within days, of a kind.
    assert_eq!(
        m(one("interactions.count", "gte", json!(2))).await,
        names(&[a, b])
    );
    assert_eq!(
        m(all(
            json!([{"field": "interactions.count", "op": "gte", "value": 2, "days": 30}])
        ))
        .await,
        names(&[a])
    );
    assert_eq!(
        m(all(json!([{"field": "interactions.count", "op": "gte", "value": 1, "days": 30, "kind": "call"}]))).await,
        names(&[a])
    );
    assert_eq!(
        m(one("interactions.count", "eq", json!(0))).await,
        names(&[g, e])
    );
    // "No contact for 60 days" includes those never contacted.
    assert_eq!(
        m(one("interactions.last", "olderThanDays", json!(60))).await,
        names(&[g, d, e])
    );
    assert_eq!(
        m(one("interactions.last", "withinDays", json!(3))).await,
        names(&[b])
    );
    assert_eq!(
        m(one("interactions.last", "withinDays", json!(7))).await,
        names(&[a, b])
    );
    assert_eq!(
        m(all(json!([{"field": "interactions.last", "op": "never"}]))).await,
        names(&[g, e])
    );
    // The last contact follows the history: Beta's note deleted, its last contact is the
    // call 90 days ago; a text to Gamma yesterday is Gamma's first contact.
    let r = call(
        &svc,
        Method::DELETE,
        &format!("/api/interactions/{beta_note}"),
        &admin,
        None,
    )
    .await;
    assert!(r.status.is_success(), "{}", r.body);
    let r = call(
        &svc,
        Method::POST,
        &format!("/api/clients/{gamma}/interactions"),
        &admin,
        Some(json!({"type": "sms", "direction": "outbound", "subject": "Text", "completedAt": days_ago(1)})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        m(one("interactions.last", "withinDays", json!(3))).await,
        names(&[g])
    );
    assert_eq!(
        m(one("interactions.last", "olderThanDays", json!(60))).await,
        names(&[b, d, e])
    );
    assert_eq!(
        m(all(json!([{"field": "interactions.last", "op": "never"}]))).await,
        names(&[e])
    );
    // Moved back in time (an edit of when it happened), the text no longer counts as recent.
    let sms = r.json()["id"].as_str().unwrap().to_string();
    let r = call(
        &svc,
        Method::PUT,
        &format!("/api/interactions/{sms}"),
        &admin,
        Some(json!({"completedAt": days_ago(200)})),
    )
    .await;
    assert!(r.status.is_success(), "{}", r.body);
    assert_eq!(
        m(one("interactions.last", "olderThanDays", json!(60))).await,
        names(&[b, g, d, e])
    );

    // Deals: open value in the organization's currency unless another is named.
    assert_eq!(
        m(one("deals.openValue", "gt", json!("1000"))).await,
        names(&[a, b])
    );
    assert_eq!(
        m(one("deals.openValue", "gte", json!("1500.00"))).await,
        names(&[a])
    );
    assert_eq!(
        m(all(
            json!([{"field": "deals.openValue", "op": "gt", "value": "1000", "currency": "eur"}])
        ))
        .await,
        names(&[g])
    );
    assert_eq!(m(one("deals.count", "gte", json!(2))).await, names(&[b]));
    assert_eq!(m(one("deals.count", "eq", json!(0))).await, names(&[d, e]));
    assert_eq!(
        m(all(
            json!([{"field": "deals.count", "op": "eq", "value": 2, "status": "open"}])
        ))
        .await,
        names(&[b])
    );
    assert_eq!(
        m(one("deals.stage", "in", json!([proposal]))).await,
        names(&[g])
    );
    assert_eq!(
        m(one("deals.stage", "in", json!([qualification]))).await,
        names(&[a, b])
    );
    assert_eq!(
        m(one("deals.stage", "in", json!([qualification, proposal]))).await,
        names(&[a, b, g])
    );

    // Membership of another segment, in and not in (not in includes those whose country
    // is empty: they are not in "Germany").
    let germany = segment(&svc, &admin, "Germany", one("country", "eq", json!("DE"))).await;
    assert_eq!(
        m(one("segment", "in", json!(germany))).await,
        names(&[a, d])
    );
    assert_eq!(
        m(one("segment", "notIn", json!(germany))).await,
        names(&[b, g, e])
    );

    // Groups: (Germany or Swiss) and no contact for 60 days.
    assert_eq!(
        m(all(json!([
            {"match": "any", "conditions": [
                {"field": "country", "op": "eq", "value": "DE"},
                {"field": "country", "op": "eq", "value": "CH"}
            ]},
            {"field": "interactions.last", "op": "olderThanDays", "value": 60}
        ])))
        .await,
        names(&[g, d])
    );

    // What the preview says is what a saved segment's members are.
    let quiet = segment(
        &svc,
        &admin,
        "Quiet",
        one("interactions.last", "olderThanDays", json!(60)),
    )
    .await;
    let listed: BTreeSet<String> = members(&svc, &admin, &quiet, 50)
        .await
        .into_iter()
        .collect();
    assert_eq!(listed, set(&[&beta, &gamma, &delta, &epsilon]));
}

#[actix_web::test]
async fn entries_and_exits_are_recorded_after_a_silent_baseline_and_start_workflows() {
    use rapport::db::schema::{webhook_deliveries as wd, workflow_runs as wr};
    let app = TestApp::new().await;
    let svc = app.service().await;
    let org = app.org("Events Co");
    let admin = app.user(&org, "admin@events.test", "admin");
    let admin = app.token(&org, &admin);

    let person = |last: &str, status: &str| json!({"type": "individual", "lastName": last, "status": status});
    let ada = client(&svc, &admin, person("Ada", "customer")).await;
    let bob = client(&svc, &admin, person("Bob", "lead")).await;
    let cy = client(&svc, &admin, person("Cy", "lead")).await;

    let seg = segment(
        &svc,
        &admin,
        "Customers",
        one("status", "eq", json!("customer")),
    )
    .await;
    let path = format!("/api/segments/{seg}");
    let events = |query: &str| format!("/api/segments/{seg}/events{query}");

    // Before the worker: nothing kept yet.
    let shown = get(&svc, &path, &admin).await.json();
    assert_eq!(shown["memberCount"], 0);
    assert!(shown["evaluatedAt"].is_null());

    // The first evaluation fills the members silently.
    assert!(keep(&app).await >= 1);
    let shown = get(&svc, &path, &admin).await.json();
    assert_eq!(shown["memberCount"], 1);
    assert!(shown["evaluatedAt"].is_string());
    let r = get(&svc, &events(""), &admin).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["data"], json!([]), "a baseline records no events");
    let sizes = get(&svc, &format!("{path}/sizes"), &admin).await.json();
    assert_eq!(sizes["data"].as_array().unwrap().len(), 1);
    assert_eq!(sizes["data"][0]["members"], 1);
    assert_eq!(
        sizes["data"][0]["day"],
        Utc::now().date_naive().format("%Y-%m-%d").to_string()
    );
    // Nothing changed since: nothing to do.
    assert_eq!(keep(&app).await, 0);

    // A workflow starts when a client enters, and a webhook is told of entries and exits.
    let r = call(
        &svc,
        Method::POST,
        "/api/workflows",
        &admin,
        Some(json!({
            "name": "Welcome new customers",
            "trigger": {"type": "segment.entered", "segment": seg},
            "steps": [{"type": "task", "title": "Welcome {{ client.name }}", "assignee": "manager", "inDays": 1}]
        })),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let flow = r.json()["id"].as_str().unwrap().to_string();
    let r = call(
        &svc,
        Method::POST,
        "/api/webhooks",
        &admin,
        Some(json!({
            "url": "http://127.0.0.1:9/segments", "allowPrivateHost": true,
            "events": ["segment.entered", "segment.left"]
        })),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let runs = || -> Vec<(Option<String>, String)> {
        let mut c = app.pool.get().unwrap();
        wr::table
            .filter(wr::workflow_id.eq(&flow))
            .order(wr::id.asc())
            .select((wr::client_id, wr::record_type))
            .load(&mut c)
            .unwrap()
    };
    let deliveries = || -> Vec<(String, String)> {
        let mut c = app.pool.get().unwrap();
        wd::table
            .order(wd::id.asc())
            .select((wd::event_type, wd::record_id))
            .load(&mut c)
            .unwrap()
    };

    // Bob becomes a customer: he enters.
    let r = call(
        &svc,
        Method::PATCH,
        &format!("/api/clients/{bob}"),
        &admin,
        Some(json!({"status": "customer"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        get(&svc, &events(""), &admin).await.json()["data"]
            .as_array()
            .unwrap()
            .is_empty(),
        "the worker records entries, not the request"
    );
    assert!(keep(&app).await >= 1);
    let list = get(&svc, &events(""), &admin).await.json();
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{list}");
    assert_eq!(data[0]["kind"], "entered");
    assert_eq!(data[0]["clientId"], bob.as_str());
    assert_eq!(data[0]["clientName"], "Bob");
    assert_eq!(data[0]["segmentId"], seg.as_str());
    assert_eq!(data[0]["segmentName"], "Customers");
    assert_eq!(get(&svc, &path, &admin).await.json()["memberCount"], 2);
    assert_eq!(runs(), vec![(Some(bob.clone()), "client".to_string())]);
    assert_eq!(
        deliveries(),
        vec![("segment.entered".to_string(), bob.clone())]
    );

    // A change that keeps everyone where they are records nothing.
    let r = call(
        &svc,
        Method::PATCH,
        &format!("/api/clients/{ada}"),
        &admin,
        Some(json!({"lastName": "Ada Lovelace"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    keep(&app).await;
    assert_eq!(
        get(&svc, &events(""), &admin).await.json()["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Bob goes back to lead: he leaves; the entry workflow does not start again.
    let r = call(
        &svc,
        Method::PATCH,
        &format!("/api/clients/{bob}"),
        &admin,
        Some(json!({"status": "lead"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(keep(&app).await >= 1);
    let list = get(&svc, &events(""), &admin).await.json();
    let kinds: Vec<(&str, &str)> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["clientId"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        vec![("left", bob.as_str()), ("entered", bob.as_str())],
        "newest first"
    );
    assert_eq!(get(&svc, &path, &admin).await.json()["memberCount"], 1);
    assert_eq!(runs().len(), 1);
    assert_eq!(
        deliveries(),
        vec![
            ("segment.entered".to_string(), bob.clone()),
            ("segment.left".to_string(), bob.clone())
        ]
    );
    // One to a page, newest first, then the older one.
    let first = get(&svc, &events("?limit=1"), &admin).await.json();
    assert_eq!(first["data"][0]["kind"], "left");
    let cursor = first["nextCursor"].as_str().unwrap().to_string();
    let second = get(&svc, &events(&format!("?limit=1&cursor={cursor}")), &admin)
        .await
        .json();
    assert_eq!(second["data"].as_array().unwrap().len(), 1);
    assert_eq!(second["data"][0]["kind"], "entered");

    // A deleted client leaves too.
    let r = call(
        &svc,
        Method::DELETE,
        &format!("/api/clients/{ada}"),
        &admin,
        None,
    )
    .await;
    assert!(r.status.is_success(), "{}", r.body);
    keep(&app).await;
    let latest = get(&svc, &events("?limit=1"), &admin).await.json();
    assert_eq!(latest["data"][0]["kind"], "left", "{latest}");
    assert_eq!(latest["data"][0]["clientId"], ada.as_str());
    assert_eq!(get(&svc, &path, &admin).await.json()["memberCount"], 0);

    // New criteria start a new baseline: members change without events or workflow runs.
    let before = get(&svc, &events(""), &admin).await.json()["data"]
        .as_array()
        .unwrap()
        .len();
    let r = call(
        &svc,
        Method::PUT,
        &path,
        &admin,
        Some(json!({"name": "Leads", "criteria": one("status", "eq", json!("lead"))})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.json()["evaluatedAt"].is_null());
    assert!(keep(&app).await >= 1);
    let shown = get(&svc, &path, &admin).await.json();
    assert_eq!(shown["memberCount"], 2, "Bob and Cy");
    assert_eq!(
        get(&svc, &events(""), &admin).await.json()["data"]
            .as_array()
            .unwrap()
            .len(),
        before
    );
    assert_eq!(runs().len(), 1);

    // Evaluating on demand finds nothing new…
    let r = call(
        &svc,
        Method::POST,
        &format!("{path}/evaluate"),
        &admin,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json(), json!({"entered": 0, "left": 0}));
    // …until something changed that no audited write reported (as time passing does):
    // the full evaluation records it as an exit.
    {
        use rapport::db::schema::clients as cl;
        let mut c = app.pool.get().unwrap();
        diesel::update(cl::table.filter(cl::id.eq(&cy)))
            .set(cl::status.eq("customer"))
            .execute(&mut c)
            .unwrap();
    }
    assert_eq!(keep(&app).await, 0, "nothing marked it for the worker");
    let r = call(
        &svc,
        Method::POST,
        &format!("{path}/evaluate"),
        &admin,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json(), json!({"entered": 0, "left": 1}));
    let latest = get(&svc, &events("?limit=1"), &admin).await.json();
    assert_eq!(latest["data"][0]["kind"], "left");
    assert_eq!(latest["data"][0]["clientId"], cy.as_str());
    assert_eq!(get(&svc, &path, &admin).await.json()["memberCount"], 1);

    // The workflow uses the segment: it cannot be deleted.
    let r = call(&svc, Method::DELETE, &path, &admin, None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.body.contains("Welcome new customers"), "{}", r.body);
    let r = call(
        &svc,
        Method::DELETE,
        &format!("/api/workflows/{flow}"),
        &admin,
        None,
    )
    .await;
    assert!(r.status.is_success(), "{}", r.body);
    let r = call(&svc, Method::DELETE, &path, &admin, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(get(&svc, &path, &admin).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        get(&svc, &events(""), &admin).await.status,
        StatusCode::NOT_FOUND
    );
}

#[actix_web::test]
async fn reach_rights_and_organizations_bound_what_a_segment_shows() {
    let app = TestApp::new().await;
    let svc = app.service().await;
    let org = app.org("Rights Co");
    let admin = app.user(&org, "admin@rights.test", "admin");
    let manager_id = app.user(&org, "boss@rights.test", "manager");
    let mk = app.user(&org, "mk@rights.test", "marketer");
    let rep_id = app.user(&org, "rep@rights.test", "sales_rep");
    let ro = app.user(&org, "ro@rights.test", "read_only");
    let (admin, manager, mk, rep, ro) = (
        app.token(&org, &admin),
        app.token(&org, &manager_id),
        app.token(&org, &mk),
        app.token(&org, &rep_id),
        app.token(&org, &ro),
    );
    let other = app.org("Elsewhere");
    let stranger = app.user(&other, "admin@elsewhere.test", "admin");
    let stranger = app.token(&other, &stranger);

    let mut reps = BTreeSet::new();
    let mut everyone = BTreeSet::new();
    let mut leads = Vec::new();
    for (name, owner, status) in [
        ("Rep One", &rep_id, "customer"),
        ("Rep Two", &rep_id, "customer"),
        ("Rep Lead", &rep_id, "lead"),
        ("Boss One", &manager_id, "customer"),
        ("Boss Two", &manager_id, "customer"),
        ("Boss Lead", &manager_id, "lead"),
    ] {
        let id = client(
            &svc,
            &manager,
            json!({"type": "individual", "lastName": name, "status": status, "assignedTo": owner}),
        )
        .await;
        if status == "customer" {
            everyone.insert(id.clone());
            if owner == &rep_id {
                reps.insert(id);
            }
        } else {
            leads.push(id);
        }
    }
    let seg = segment(
        &svc,
        &mk,
        "Customers",
        one("status", "eq", json!("customer")),
    )
    .await;

    // Everyone may read it; a rep counts and lists only their own clients.
    let count = |token: &str| {
        let path = format!("/api/segments/{seg}/count");
        let token = token.to_string();
        let svc = &svc;
        async move {
            let r = get(svc, &path, &token).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            r.json()["count"].as_i64().unwrap()
        }
    };
    assert_eq!(count(&manager).await, 4);
    assert_eq!(count(&mk).await, 4);
    assert_eq!(count(&ro).await, 4);
    assert_eq!(count(&rep).await, 2);
    let listed: BTreeSet<String> = members(&svc, &rep, &seg, 50).await.into_iter().collect();
    assert_eq!(listed, reps);
    let filtered = get(
        &svc,
        &format!("/api/clients?filter[segment]={seg}&count=true"),
        &rep,
    )
    .await
    .json();
    assert_eq!(ids(&filtered), reps);
    assert_eq!(filtered["total"]["count"], 2);
    let preview = call(
        &svc,
        Method::POST,
        "/api/segments/preview",
        &rep,
        Some(json!({"criteria": one("status", "eq", json!("customer"))})),
    )
    .await
    .json();
    assert_eq!(preview["count"], 2);

    // Both leads become customers: the rep sees only their own client's entry.
    keep(&app).await;
    for lead in &leads {
        let r = call(
            &svc,
            Method::PATCH,
            &format!("/api/clients/{lead}"),
            &manager,
            Some(json!({"status": "customer"})),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    keep(&app).await;
    let entered = |token: &str| {
        let path = format!("/api/segments/{seg}/events");
        let token = token.to_string();
        let svc = &svc;
        async move {
            let r = get(svc, &path, &token).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            r.json()["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["clientId"].as_str().unwrap().to_string())
                .collect::<BTreeSet<String>>()
        }
    };
    assert_eq!(entered(&manager).await, leads.iter().cloned().collect());
    assert_eq!(entered(&rep).await, set(&[&leads[0]]));
    assert_eq!(count(&rep).await, 3);
    assert_eq!(count(&manager).await, 6);
    everyone.extend(leads.iter().cloned());

    // Reps and read-only users read segments but do not build, change or delete them.
    let r = call(
        &svc,
        Method::POST,
        "/api/segments",
        &rep,
        Some(json!({"name": "Mine", "criteria": one("status", "eq", json!("lead"))})),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = call(
        &svc,
        Method::PUT,
        &format!("/api/segments/{seg}"),
        &ro,
        Some(json!({"name": "Renamed", "criteria": one("status", "eq", json!("lead"))})),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = call(
        &svc,
        Method::DELETE,
        &format!("/api/segments/{seg}"),
        &ro,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = call(
        &svc,
        Method::DELETE,
        &format!("/api/segments/{seg}"),
        &rep,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = call(
        &svc,
        Method::POST,
        &format!("/api/segments/{seg}/evaluate"),
        &ro,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(
        get(&svc, &format!("/api/segments/{seg}"), &ro).await.status,
        StatusCode::OK
    );

    // Another organization does not find it at all.
    for path in [
        format!("/api/segments/{seg}"),
        format!("/api/segments/{seg}/count"),
        format!("/api/segments/{seg}/clients"),
        format!("/api/segments/{seg}/events"),
        format!("/api/segments/{seg}/sizes"),
    ] {
        let r = get(&svc, &path, &stranger).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.body);
    }
    let r = call(
        &svc,
        Method::PUT,
        &format!("/api/segments/{seg}"),
        &stranger,
        Some(json!({"name": "Mine now", "criteria": one("status", "eq", json!("lead"))})),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = call(
        &svc,
        Method::DELETE,
        &format!("/api/segments/{seg}"),
        &stranger,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = get(
        &svc,
        &format!("/api/clients?filter[segment]={seg}"),
        &stranger,
    )
    .await;
    assert_eq!(error_fields(&r), names(&["filter[segment]"]));
    assert!(get(&svc, "/api/segments", &stranger).await.json()["data"]
        .as_array()
        .unwrap()
        .is_empty());
    // Nor may it refer to it from its own criteria.
    let r = call(
        &svc,
        Method::POST,
        "/api/segments",
        &stranger,
        Some(json!({"name": "Theirs", "criteria": one("segment", "in", json!(seg))})),
    )
    .await;
    assert_eq!(error_fields(&r), names(&["criteria.conditions[0].value"]));

    // A manager exports the members.
    let export = |token: &str| {
        api(
            Method::GET,
            &format!("/api/clients/export?format=csv&filter[segment]={seg}"),
            token,
        )
    };
    let r = send(&svc, export(&manager)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mut reader = csv::Reader::from_reader(r.body.as_bytes());
    let id_col = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "id")
        .unwrap();
    let exported: BTreeSet<String> = reader
        .records()
        .map(|row| row.unwrap()[id_col].to_string())
        .collect();
    assert_eq!(exported, everyone);
    // Without the segment's export right, the members are not exported, though other
    // clients still are.
    let r = send(&svc, export(&ro)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = send(&svc, export(&mk)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = call(
        &svc,
        Method::DELETE,
        "/api/policies/marketer/segment/export",
        &admin,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = send(&svc, export(&mk)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = get(&svc, "/api/clients/export?format=csv", &mk).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // A count would tell a sensitive field's values: a role that may not read them may
    // neither preview nor save criteria on it; one that may, can.
    let r = call(
        &svc,
        Method::POST,
        "/api/custom-fields",
        &admin,
        Some(json!({"entity": "client", "key": "salary", "label": "Salary", "type": "integer", "sensitive": true})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let rich = one("customFields.salary", "gt", json!(100000));
    let r = call(
        &svc,
        Method::POST,
        "/api/segments/preview",
        &mk,
        Some(json!({"criteria": rich})),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = call(
        &svc,
        Method::POST,
        "/api/segments",
        &mk,
        Some(json!({"name": "Rich", "criteria": rich})),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = call(
        &svc,
        Method::POST,
        "/api/segments/preview",
        &manager,
        Some(json!({"criteria": rich})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["count"], 0);
}

#[actix_web::test]
async fn a_segment_another_one_uses_is_deleted_only_once_unused() {
    let app = TestApp::new().await;
    let svc = app.service().await;
    let org = app.org("Chain Co");
    let mk = app.user(&org, "mk@chain.test", "marketer");
    let mk = app.token(&org, &mk);
    let berlin = client(
        &svc,
        &mk,
        json!({"type": "individual", "lastName": "Berliner", "status": "customer", "address": {"city": "Berlin"}}),
    )
    .await;
    let _paris = client(
        &svc,
        &mk,
        json!({"type": "individual", "lastName": "Parisienne", "status": "customer", "address": {"city": "Paris"}}),
    )
    .await;

    let base = segment(
        &svc,
        &mk,
        "Customers",
        one("status", "eq", json!("customer")),
    )
    .await;
    let user = segment(
        &svc,
        &mk,
        "Berlin customers",
        all(json!([
            {"field": "segment", "op": "in", "value": base},
            {"field": "city", "op": "eq", "value": "Berlin"}
        ])),
    )
    .await;
    assert_eq!(
        get(&svc, &format!("/api/segments/{user}/count"), &mk)
            .await
            .json()["count"],
        1
    );
    let listed = members(&svc, &mk, &user, 50).await;
    assert_eq!(listed, vec![berlin]);

    let r = call(
        &svc,
        Method::DELETE,
        &format!("/api/segments/{base}"),
        &mk,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.is_problem());
    assert!(r.body.contains("Berlin customers"), "{}", r.body);
    assert_eq!(
        get(&svc, &format!("/api/segments/{base}"), &mk)
            .await
            .status,
        StatusCode::OK,
        "still there"
    );

    // Once the other segment no longer refers to it, it goes.
    let r = call(
        &svc,
        Method::PUT,
        &format!("/api/segments/{user}"),
        &mk,
        Some(json!({"name": "Berlin customers", "criteria": all(json!([
            {"field": "status", "op": "eq", "value": "customer"},
            {"field": "city", "op": "eq", "value": "Berlin"}
        ]))})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = call(
        &svc,
        Method::DELETE,
        &format!("/api/segments/{base}"),
        &mk,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(
        get(&svc, &format!("/api/segments/{base}"), &mk)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&svc, &format!("/api/segments/{user}/count"), &mk)
            .await
            .json()["count"],
        1
    );
    let r = call(
        &svc,
        Method::DELETE,
        &format!("/api/segments/{user}"),
        &mk,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert!(get(&svc, "/api/segments", &mk).await.json()["data"]
        .as_array()
        .unwrap()
        .is_empty());
}

/// The kinds and clients of a segment's events, newest first.
async fn history<S, B>(svc: &S, token: &str, seg: &str) -> Vec<(String, String)>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let r = get(svc, &format!("/api/segments/{seg}/events"), token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["clientId"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[actix_web::test]
async fn deals_interactions_and_tags_move_clients_in_and_out() {
    let app = TestApp::new().await;
    let svc = app.service().await;
    let org = app.org("Moves Co");
    let admin = app.user(&org, "admin@moves.test", "admin");
    let admin = app.token(&org, &admin);
    let r = call(
        &svc,
        Method::POST,
        "/api/tags",
        &admin,
        Some(json!({"name": "VIP"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let ada = client(&svc, &admin, json!({"lastName": "Ada"})).await;
    let bob = client(&svc, &admin, json!({"lastName": "Bob"})).await;
    let pipeline = segment(
        &svc,
        &admin,
        "Big pipeline",
        one("deals.openValue", "gt", json!("1000")),
    )
    .await;
    let contacted = segment(
        &svc,
        &admin,
        "Contacted",
        one("interactions.count", "gte", json!(1)),
    )
    .await;
    let vip = segment(&svc, &admin, "VIP", one("tags", "has", json!("VIP"))).await;
    keep(&app).await;
    for s in [&pipeline, &contacted, &vip] {
        assert!(history(&svc, &admin, s).await.is_empty());
    }

    let r = call(
        &svc,
        Method::POST,
        "/api/opportunities",
        &admin,
        Some(json!({"name": "Big one", "clientId": ada, "value": "2000"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let deal = r.json()["id"].as_str().unwrap().to_string();
    let r = call(
        &svc,
        Method::POST,
        &format!("/api/clients/{bob}/interactions"),
        &admin,
        Some(json!({"type": "call", "subject": "Intro"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let intro = r.json()["id"].as_str().unwrap().to_string();
    let r = call(
        &svc,
        Method::POST,
        &format!("/api/clients/{bob}/tags"),
        &admin,
        Some(json!({"tag": "VIP"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    keep(&app).await;
    let entered = |c: &String| vec![("entered".to_string(), c.clone())];
    assert_eq!(history(&svc, &admin, &pipeline).await, entered(&ada));
    assert_eq!(history(&svc, &admin, &contacted).await, entered(&bob));
    assert_eq!(history(&svc, &admin, &vip).await, entered(&bob));

    for path in [
        format!("/api/opportunities/{deal}"),
        format!("/api/interactions/{intro}"),
        format!("/api/clients/{bob}/tags/VIP"),
    ] {
        let r = call(&svc, Method::DELETE, &path, &admin, None).await;
        assert!(r.status.is_success(), "{path}: {}", r.body);
    }
    keep(&app).await;
    let both = |c: &String| {
        vec![
            ("left".to_string(), c.clone()),
            ("entered".to_string(), c.clone()),
        ]
    };
    assert_eq!(history(&svc, &admin, &pipeline).await, both(&ada));
    assert_eq!(history(&svc, &admin, &contacted).await, both(&bob));
    assert_eq!(history(&svc, &admin, &vip).await, both(&bob));
    for s in [&pipeline, &contacted, &vip] {
        let shown = get(&svc, &format!("/api/segments/{s}"), &admin)
            .await
            .json();
        assert_eq!(shown["memberCount"], 0, "{shown}");
    }
}

// ---------------------------------------------------------------------------------------
// The console's builder: what a user clicks, types and sees.
// ---------------------------------------------------------------------------------------

use crate::support::{Browser, PASSWORD};

/// The builder's form for "in Germany, and VIP or customer", as the browser posts it.
fn german_form<'a>(name: &'a str, country: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("name", name),
        ("description", "For the Berlin fair"),
        ("id", ""),
        ("version", "0"),
        ("root", "all"),
        ("g.0.match", "all"),
        ("c.0.0.field", "country"),
        ("c.0.0.op", "eq"),
        ("c.0.0.value", country),
        ("g.1.match", "any"),
        ("c.1.0.field", "tags"),
        ("c.1.0.op", "has"),
        ("c.1.0.value", "VIP"),
        ("c.1.1.field", "status"),
        ("c.1.1.op", "eq"),
        ("c.1.1.value", "customer"),
    ]
}

/// The form with one field's value replaced (or added).
fn with<'a>(
    mut form: Vec<(&'a str, &'a str)>,
    key: &'a str,
    value: &'a str,
) -> Vec<(&'a str, &'a str)> {
    match form.iter_mut().find(|(k, _)| *k == key) {
        Some(pair) => pair.1 = value,
        None => form.push((key, value)),
    }
    form
}

/// The HTML of one condition row of the builder (`row-<g>-<r>`).
fn row_html(body: &str, g: usize, r: usize) -> &str {
    let start = body
        .find(&format!("id=\"row-{g}-{r}\""))
        .unwrap_or_else(|| panic!("no row {g}.{r}: {body}"));
    // From the row's opening tag (its classes come before the id) to its end.
    let start = body[..start].rfind("<div").unwrap_or(start);
    let rest = &body[start..];
    &rest[..rest.find("</div>").unwrap_or(rest.len())]
}

/// Makes the VIP tag and six people: Anna, Bernd and Eve are German and VIP or customer.
async fn germans<S, B>(svc: &S, admin: &str, token: &str)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let r = call(
        svc,
        Method::POST,
        "/api/tags",
        admin,
        Some(json!({"name": "VIP"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    for (first, country, vip, status) in [
        ("Anna", Some("DE"), true, "lead"),
        ("Bernd", Some("DE"), false, "customer"),
        ("Carla", Some("DE"), false, "lead"),
        ("Dave", Some("FR"), true, "customer"),
        ("Eve", Some("DE"), true, "customer"),
        ("Frank", None, true, "customer"),
    ] {
        let mut body = json!({"type": "individual", "firstName": first, "lastName": "Tester", "status": status});
        if let Some(c) = country {
            body["address"] = json!({"country": c});
        }
        if vip {
            body["tags"] = json!(["VIP"]);
        }
        client(svc, token, body).await;
    }
}

/// Signs a console user in.
async fn signed_in<S, B>(svc: &S, email: &str) -> Browser
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let mut b = Browser::new();
    let r = b.sign_in(svc, email, PASSWORD).await;
    assert!(
        r.status.is_redirection(),
        "{email}: {} {}",
        r.status,
        r.body
    );
    b
}

/// The segment id a save redirected to.
fn saved_id(r: &Resp) -> String {
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let to = r.header("location").unwrap_or_default();
    let id = to
        .strip_prefix("/segments/")
        .unwrap_or_else(|| panic!("redirected to {to}"));
    assert!(!id.is_empty() && !id.contains('/'), "{to}");
    id.to_string()
}

#[actix_web::test]
async fn a_marketer_builds_previews_saves_and_opens_a_segment_in_the_console() {
    let app = TestApp::new().await;
    let svc = app.service().await;
    let org = app.org("Builder Co");
    let admin = app.user(&org, "admin@builder.test", "admin");
    let mk = app.user(&org, "mk@builder.test", "marketer");
    let (admin, mk) = (app.token(&org, &admin), app.token(&org, &mk));
    germans(&svc, &admin, &mk).await;
    let mut b = signed_in(&svc, "mk@builder.test").await;

    // The list is empty and offers a new one; the builder starts with one blank row.
    let list = b.get(&svc, "/segments").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert!(list.body.contains("No segments yet"), "{}", list.body);
    assert!(
        list.body.contains("href=\"/segments/new\""),
        "{}",
        list.body
    );
    let page = b.get(&svc, "/segments/new").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("id=\"segment-builder\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("name=\"c.0.0.field\""), "{}", page.body);
    assert!(!page.body.contains("name=\"g.1.match\""), "{}", page.body);
    assert!(page.body.contains("Save segment"), "{}", page.body);
    assert!(
        page.body
            .contains("Add a condition to see how many clients match"),
        "{}",
        page.body
    );

    // "Add a group" answers the builder with a second group, keeping what was typed.
    let typed = [
        ("name", "German VIPs and customers"),
        ("id", ""),
        ("version", "0"),
        ("root", "all"),
        ("g.0.match", "all"),
        ("c.0.0.field", "country"),
        ("c.0.0.op", "eq"),
        ("c.0.0.value", "DE"),
    ];
    let r = b
        .hx_post(
            &svc,
            "/segments/compose",
            &[&typed[..], &[("op", "add_group")]].concat(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("name=\"g.1.match\""), "{}", r.body);
    assert!(r.body.contains("name=\"c.1.0.field\""), "{}", r.body);
    assert!(r.body.contains("Group 2"), "{}", r.body);
    assert!(
        r.body.contains("value=\"German VIPs and customers\""),
        "{}",
        r.body
    );
    assert!(
        row_html(&r.body, 0, 0).contains("value=\"DE\""),
        "{}",
        r.body
    );
    assert!(
        row_html(&r.body, 0, 0).contains("<option value=\"country\" selected>"),
        "{}",
        r.body
    );
    // The field picked, the country row already counts its four Germans.
    assert!(r.body.contains("<strong>4</strong>"), "{}", r.body);
    // "Add a condition" and "Remove" work on the right group and row.
    let mut two = german_form("German VIPs and customers", "DE");
    two.push(("op", "add_row:1"));
    let r = b.hx_post(&svc, "/segments/compose", &two).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("name=\"c.1.2.field\""), "{}", r.body);
    assert!(!r.body.contains("name=\"c.0.1.field\""), "{}", r.body);
    let r = b
        .hx_post(
            &svc,
            "/segments/compose",
            &with(
                german_form("German VIPs and customers", "DE"),
                "op",
                "remove_row:1:0",
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(!r.body.contains("name=\"c.1.1.field\""), "{}", r.body);
    assert!(
        row_html(&r.body, 1, 0).contains("<option value=\"status\" selected>"),
        "the status row moved up: {}",
        r.body
    );

    // The live count for the three conditions, with the matching clients.
    let form = german_form("German VIPs and customers", "DE");
    let r = b.hx_post(&svc, "/segments/preview", &form).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("id=\"segment-preview\""), "{}", r.body);
    assert!(
        r.body.contains("<strong>3</strong> clients match"),
        "{}",
        r.body
    );
    for name in ["Anna Tester", "Bernd Tester", "Eve Tester"] {
        assert!(r.body.contains(name), "{name}: {}", r.body);
    }
    for name in ["Carla", "Dave", "Frank"] {
        assert!(!r.body.contains(name), "{name}: {}", r.body);
    }
    assert!(
        r.body
            .contains("Country is DE and (Tags has VIP or Status is customer)"),
        "{}",
        r.body
    );

    // Saving leads to the segment's page.
    let r = b.post_form(&svc, "/segments", &form).await;
    let id = saved_id(&r);
    let page = b.get(&svc, &format!("/segments/{id}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let body = &page.body;
    assert!(
        body.contains("German VIPs and customers saved"),
        "flash: {body}"
    );
    assert!(
        body.contains("<h1>German VIPs and customers</h1>"),
        "{body}"
    );
    assert!(body.contains("value=\"For the Berlin fair\""), "{body}");
    assert!(body.contains("name=\"version\" value=\"1\""), "{body}");
    let country = row_html(body, 0, 0);
    assert!(
        country.contains("<option value=\"country\" selected>"),
        "{country}"
    );
    assert!(
        country.contains("<option value=\"eq\" selected>"),
        "{country}"
    );
    assert!(country.contains("value=\"DE\""), "{country}");
    let tags = row_html(body, 1, 0);
    assert!(tags.contains("<option value=\"tags\" selected>"), "{tags}");
    assert!(tags.contains("<option value=\"has\" selected>"), "{tags}");
    assert!(tags.contains("<option value=\"VIP\" selected>"), "{tags}");
    let status = row_html(body, 1, 1);
    assert!(
        status.contains("<option value=\"status\" selected>"),
        "{status}"
    );
    assert!(
        status.contains("<option value=\"customer\" selected>"),
        "{status}"
    );
    assert!(
        body.contains("name=\"g.1.match\" aria-label=\"How the conditions combine\"><option value=\"all\">all of these</option><option value=\"any\" selected>"),
        "the second group matches any: {body}"
    );
    assert!(body.contains("<strong>3</strong> clients match"), "{body}");
    assert!(body.contains("Anna Tester"), "{body}");
    assert!(
        body.contains(&format!("href=\"/clients?filter%5Bsegment%5D={id}\"")),
        "{body}"
    );
    assert!(
        body.contains(&format!("action=\"/segments/{id}/delete\"")),
        "{body}"
    );

    // The list shows it.
    let list = b.get(&svc, "/segments").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert!(
        list.body.contains(&format!(
            "<a href=\"/segments/{id}\">German VIPs and customers</a>"
        )),
        "{}",
        list.body
    );
    assert!(list.body.contains("For the Berlin fair"), "{}", list.body);

    // Opened as a client list: the banner, and the members only.
    let clients = b.get(&svc, &format!("/clients?filter[segment]={id}")).await;
    assert_eq!(clients.status, StatusCode::OK, "{}", clients.body);
    assert!(
        clients.body.contains("id=\"segment-banner\""),
        "{}",
        clients.body
    );
    assert!(
        clients
            .body
            .contains("<strong>German VIPs and customers</strong>"),
        "{}",
        clients.body
    );
    for name in ["Anna", "Bernd", "Eve"] {
        assert!(clients.body.contains(name), "{name}: {}", clients.body);
    }
    for name in ["Carla", "Dave", "Frank"] {
        assert!(!clients.body.contains(name), "{name}: {}", clients.body);
    }
    let all_clients = b.get(&svc, "/clients").await;
    assert!(!all_clients.body.contains("id=\"segment-banner\""));
    assert!(all_clients.body.contains("Carla"), "{}", all_clients.body);
}

#[actix_web::test]
async fn builder_mistakes_keep_what_was_typed_and_say_which_condition_is_wrong() {
    let app = TestApp::new().await;
    let svc = app.service().await;
    let org = app.org("Mistakes Co");
    let admin = app.user(&org, "admin@mistakes.test", "admin");
    let mk = app.user(&org, "mk@mistakes.test", "marketer");
    let (admin, mk) = (app.token(&org, &admin), app.token(&org, &mk));
    germans(&svc, &admin, &mk).await;
    let mut b = signed_in(&svc, "mk@mistakes.test").await;

    // No name: 422, everything typed still there.
    let r = b.post_form(&svc, "/segments", &german_form("", "DE")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("Give the segment a name"), "{}", r.body);
    assert!(r.body.contains("id=\"segment-errors\""), "{}", r.body);
    assert!(
        r.body.contains("value=\"For the Berlin fair\""),
        "{}",
        r.body
    );
    assert!(
        row_html(&r.body, 0, 0).contains("value=\"DE\""),
        "{}",
        r.body
    );
    assert!(
        row_html(&r.body, 1, 0).contains("<option value=\"VIP\" selected>"),
        "{}",
        r.body
    );
    assert!(
        row_html(&r.body, 1, 1).contains("<option value=\"customer\" selected>"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("<option value=\"any\" selected>"),
        "{}",
        r.body
    );
    // Nothing was saved.
    let listed = get(&svc, "/api/segments", &mk).await.json();
    assert!(listed["data"].as_array().unwrap().is_empty(), "{listed}");
    // The same through htmx: the builder again, not a redirect.
    let r = b.hx_post(&svc, "/segments", &german_form("", "DE")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.header("hx-redirect").is_none());
    assert!(r.body.contains("Give the segment a name"), "{}", r.body);

    // A number that is not one: the error sits next to its row, in words.
    let bad = [
        german_form("Chatty Germans", "DE"),
        vec![
            ("c.1.2.field", "interactions.count"),
            ("c.1.2.op", "gte"),
            ("c.1.2.value", "abc"),
            ("c.1.2.days", "90"),
        ],
    ]
    .concat();
    let r = b.post_form(&svc, "/segments", &bad).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let row = row_html(&r.body, 1, 2);
    assert!(row.contains("has-error"), "{row}");
    assert!(row.contains("class=\"field-error\""), "{row}");
    assert!(row.contains("whole number"), "{row}");
    assert!(row.contains("value=\"abc\""), "{row}");
    assert!(row.contains("value=\"90\""), "{row}");
    for (g, r_) in [(0, 0), (1, 0), (1, 1)] {
        assert!(
            !row_html(&r.body, g, r_).contains("field-error"),
            "row {g}.{r_}: {}",
            r.body
        );
    }
    assert!(r.body.contains("Group 2, condition 3:"), "{}", r.body);
    assert!(!r.body.contains("conditions["), "a raw path: {}", r.body);
    assert!(r.body.contains("value=\"Chatty Germans\""), "{}", r.body);

    // With one group the words say only the condition.
    let single = [
        ("name", "Chatty"),
        ("root", "all"),
        ("g.0.match", "all"),
        ("c.0.0.field", "country"),
        ("c.0.0.op", "eq"),
        ("c.0.0.value", "DE"),
        ("c.0.1.field", "interactions.count"),
        ("c.0.1.op", "gte"),
        ("c.0.1.value", "abc"),
    ];
    let r = b.post_form(&svc, "/segments", &single).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(
        row_html(&r.body, 0, 1).contains("class=\"field-error\""),
        "{}",
        r.body
    );
    assert!(
        !row_html(&r.body, 0, 0).contains("field-error"),
        "{}",
        r.body
    );
    assert!(r.body.contains("Condition 2:"), "{}", r.body);
    assert!(!r.body.contains("conditions["), "{}", r.body);
    let r = b.hx_post(&svc, "/segments/preview", &single).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("Condition 2:"), "{}", r.body);
    assert!(r.body.contains("whole number"), "{}", r.body);

    // A blank row or group left in the form does not move the error off its row.
    let gap = [
        ("name", "Gaps"),
        ("root", "all"),
        ("g.0.match", "all"),
        ("c.0.0.field", ""),
        ("g.1.match", "all"),
        ("c.1.0.field", ""),
        ("c.1.1.field", "country"),
        ("c.1.1.op", "eq"),
        ("c.1.1.value", "DE"),
        ("c.1.2.field", "interactions.count"),
        ("c.1.2.op", "gte"),
        ("c.1.2.value", "abc"),
    ];
    let r = b.post_form(&svc, "/segments", &gap).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(
        row_html(&r.body, 1, 2).contains("class=\"field-error\""),
        "{}",
        r.body
    );
    assert!(
        !row_html(&r.body, 1, 1).contains("field-error"),
        "{}",
        r.body
    );
    assert!(r.body.contains("Group 2, condition"), "{}", r.body);
    assert!(!r.body.contains("Group 1, condition"), "{}", r.body);

    // An unknown tag posted straight to the preview: the reason, not a server error.
    let r = b
        .hx_post(
            &svc,
            "/segments/preview",
            &[
                ("root", "all"),
                ("g.0.match", "all"),
                ("c.0.0.field", "tags"),
                ("c.0.0.op", "has"),
                ("c.0.0.value", "Nonexistent"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("There is no tag"), "{}", r.body);
    assert!(r.body.contains("Nonexistent"), "{}", r.body);
    assert!(r.body.contains("Condition 1:"), "{}", r.body);
    assert!(!r.body.contains("<strong>"), "no count: {}", r.body);
    // Nothing chosen yet: the hint, not an error.
    let r = b
        .hx_post(
            &svc,
            "/segments/preview",
            &[("g.0.match", "all"), ("c.0.0.field", "")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("Add a condition"), "{}", r.body);
}

#[actix_web::test]
async fn read_only_users_look_and_reps_count_only_their_own_clients_in_the_console() {
    let app = TestApp::new().await;
    let svc = app.service().await;
    let org = app.org("Roles Co");
    let manager = app.user(&org, "boss@roles.test", "manager");
    let mk = app.user(&org, "mk@roles.test", "marketer");
    let rep = app.user(&org, "rep@roles.test", "sales_rep");
    app.user(&org, "ro@roles.test", "read_only");
    let (manager_token, mk_token) = (app.token(&org, &manager), app.token(&org, &mk));
    for (name, owner, status) in [
        ("Repsone", &rep, "customer"),
        ("Repstwo", &rep, "customer"),
        ("Repslead", &rep, "lead"),
        ("Bossone", &manager, "customer"),
        ("Bosstwo", &manager, "customer"),
    ] {
        client(
            &svc,
            &manager_token,
            json!({"type": "individual", "lastName": name, "status": status, "assignedTo": owner}),
        )
        .await;
    }
    let seg = segment(
        &svc,
        &mk_token,
        "Customers",
        one("status", "eq", json!("customer")),
    )
    .await;
    let customers = [
        ("root", "all"),
        ("g.0.match", "all"),
        ("c.0.0.field", "status"),
        ("c.0.0.op", "eq"),
        ("c.0.0.value", "customer"),
    ];

    // Read-only: sees the list and the segment, is offered no way to change them.
    let mut ro = signed_in(&svc, "ro@roles.test").await;
    let list = ro.get(&svc, "/segments").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert!(
        list.body.contains(&format!("href=\"/segments/{seg}\"")),
        "{}",
        list.body
    );
    assert!(
        !list.body.contains("href=\"/segments/new\""),
        "{}",
        list.body
    );
    assert!(!list.body.contains("New segment"), "{}", list.body);
    let page = ro.get(&svc, &format!("/segments/{seg}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("<h1>Customers</h1>"), "{}", page.body);
    assert!(page.body.contains("<strong>4</strong>"), "{}", page.body);
    assert!(
        row_html(&page.body, 0, 0).contains("<option value=\"customer\" selected>"),
        "{}",
        page.body
    );
    for absent in [
        "Save segment",
        "New segment",
        "/delete\"",
        ">Delete<",
        "/evaluate\"",
        "Add a group",
        "Add a condition",
        ">Remove<",
        // The builder is no form that saves for them (a shown action they may not use).
        " action=\"/segments",
    ] {
        assert!(!page.body.contains(absent), "{absent}: {}", page.body);
    }
    assert!(
        page.body.contains(" disabled"),
        "the inputs are read only: {}",
        page.body
    );
    let new = ro.get(&svc, "/segments/new").await;
    assert_eq!(new.status, StatusCode::FORBIDDEN, "{}", new.body);
    // Posting anyway changes nothing.
    let r = ro
        .post_form(
            &svc,
            "/segments",
            &[&customers[..], &[("name", "Mine")]].concat(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = ro
        .post_form(&svc, &format!("/segments/{seg}/delete"), &[])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(
        get(&svc, &format!("/api/segments/{seg}"), &mk_token)
            .await
            .status,
        StatusCode::OK
    );

    // A sales rep's live count and sample hold their own clients only.
    let mut b = signed_in(&svc, "rep@roles.test").await;
    let r = b.hx_post(&svc, "/segments/preview", &customers).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body.contains("<strong>2</strong> clients match"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("Repsone") && r.body.contains("Repstwo"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("Boss"), "{}", r.body);
    let page = b.get(&svc, &format!("/segments/{seg}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("<strong>2</strong>"), "{}", page.body);
    assert!(!page.body.contains("Bossone"), "{}", page.body);
    assert!(!page.body.contains("Save segment"), "{}", page.body);
    assert!(
        !page.body.contains(&format!(" action=\"/segments/{seg}\"")),
        "{}",
        page.body
    );
    // The manager sees all four.
    let mut m = signed_in(&svc, "boss@roles.test").await;
    let r = m.hx_post(&svc, "/segments/preview", &customers).await;
    assert!(
        r.body.contains("<strong>4</strong> clients match"),
        "{}",
        r.body
    );
}

#[actix_web::test]
async fn editing_a_segment_in_the_console_and_a_stale_save_is_refused_keeping_the_typing() {
    let app = TestApp::new().await;
    let svc = app.service().await;
    let org = app.org("Edit Co");
    let admin = app.user(&org, "admin@edit.test", "admin");
    let mk = app.user(&org, "mk@edit.test", "marketer");
    let (admin, mk) = (app.token(&org, &admin), app.token(&org, &mk));
    germans(&svc, &admin, &mk).await;
    let mut b = signed_in(&svc, "mk@edit.test").await;
    let id = saved_id(
        &b.post_form(&svc, "/segments", &german_form("Fair list", "DE"))
            .await,
    );
    let edit = |country: &'static str, version: &'static str| {
        with(
            with(
                with(german_form("Fair list", country), "id", &id),
                "version",
                version,
            ),
            "description",
            "Now for Paris",
        )
    };

    // Version 1 is what the page holds; saving with it goes through.
    let page = b.get(&svc, &format!("/segments/{id}")).await;
    assert!(
        page.body.contains("name=\"version\" value=\"1\""),
        "{}",
        page.body
    );
    let r = b
        .post_form(&svc, &format!("/segments/{id}"), &edit("FR", "1"))
        .await;
    assert_eq!(saved_id(&r), id);
    let page = b.get(&svc, &format!("/segments/{id}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        row_html(&page.body, 0, 0).contains("value=\"FR\""),
        "{}",
        page.body
    );
    assert!(
        !row_html(&page.body, 0, 0).contains("value=\"DE\""),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("value=\"Now for Paris\""),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("name=\"version\" value=\"2\""),
        "{}",
        page.body
    );
    // Dave is the French customer.
    assert!(
        page.body.contains("<strong>1</strong> client matches"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Dave Tester"), "{}", page.body);
    let saved = get(&svc, &format!("/api/segments/{id}"), &mk).await.json();
    assert_eq!(saved["version"], 2);
    assert_eq!(
        saved["criteria"]["conditions"][0]["conditions"][0]["value"],
        "FR"
    );

    // The same page, saved a second time from the old version: refused, typing kept.
    let r = b
        .post_form(&svc, &format!("/segments/{id}"), &edit("AT", "1"))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(
        r.body.contains("Someone changed this segment"),
        "{}",
        r.body
    );
    assert!(r.body.contains("id=\"segment-errors\""), "{}", r.body);
    assert!(
        row_html(&r.body, 0, 0).contains("value=\"AT\""),
        "{}",
        r.body
    );
    assert!(
        row_html(&r.body, 1, 0).contains("<option value=\"VIP\" selected>"),
        "{}",
        r.body
    );
    assert!(r.body.contains("value=\"Now for Paris\""), "{}", r.body);
    let saved = get(&svc, &format!("/api/segments/{id}"), &mk).await.json();
    assert_eq!(saved["version"], 2, "not saved");
    assert_eq!(
        saved["criteria"]["conditions"][0]["conditions"][0]["value"],
        "FR"
    );

    // Through htmx, a save answers with HX-Redirect.
    let r = b
        .hx_post(&svc, &format!("/segments/{id}"), &edit("DE", "2"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.header("hx-redirect"),
        Some(format!("/segments/{id}").as_str())
    );
    let saved = get(&svc, &format!("/api/segments/{id}"), &mk).await.json();
    assert_eq!(saved["version"], 3);

    // Deleting from the page leaves the list empty.
    let r = b
        .post_form(&svc, &format!("/segments/{id}/delete"), &[])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.header("location"), Some("/segments"));
    assert_eq!(
        b.get(&svc, &format!("/segments/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    let list = b.get(&svc, "/segments").await;
    assert!(list.body.contains("No segments yet"), "{}", list.body);
}

/// A segment's composition: its live members grouped by status, owner and country, in the
/// API and on the segment page, within the reader's reach.
#[actix_web::test]
async fn a_segments_members_are_broken_down_by_status_owner_and_country() {
    let app = TestApp::new().await;
    let svc = app.service().await;
    let org = app.org("Parts Co");
    let mk_id = app.user(&org, "mk@parts.test", "marketer");
    let mk = app.token(&org, &mk_id);
    for (name, status, country) in [
        ("Anna", "customer", "DE"),
        ("Bernd", "customer", "DE"),
        ("Claire", "lead", "FR"),
        ("Dan", "lead", "GB"),
    ] {
        client(
            &svc,
            &mk,
            json!({"lastName": name, "status": status, "address": {"country": country}}),
        )
        .await;
    }
    let seg = segment(
        &svc,
        &mk,
        "Continent",
        all(json!([one("country", "in", json!(["DE", "FR"]))])),
    )
    .await;
    let by = |b: &str| format!("/api/segments/{seg}/composition?by={b}");
    let status = get(&svc, &by("status"), &mk).await;
    assert_eq!(status.status, StatusCode::OK, "{}", status.body);
    let parts: Vec<(String, i64)> = status.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["label"].as_str().unwrap().to_string(),
                p["clients"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        parts,
        vec![("Customer".to_string(), 2), ("Lead".to_string(), 1)]
    );
    let country = get(&svc, &by("country"), &mk).await.json();
    assert_eq!(country["data"][0]["value"], "DE");
    assert_eq!(country["data"][0]["clients"], 2);
    let owner = get(&svc, &by("owner"), &mk).await.json();
    assert_eq!(owner["data"][0]["clients"], 3, "{owner}");
    let bad = get(&svc, &by("email"), &mk).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);

    // The score distributions: nobody is scored yet, then everyone (never contacted: low
    // engagement, no value bought), in band order.
    let risk = get(&svc, &by("churnRisk"), &mk).await.json();
    assert_eq!(risk["data"][0]["label"], "Not scored yet", "{risk}");
    assert_eq!(risk["data"][0]["clients"], 3);
    rapport::domain::scores::compute_org(&mut app.pool.get().unwrap(), &org.id).unwrap();
    let engagement = get(&svc, &by("engagement"), &mk).await.json();
    assert_eq!(engagement["data"][0]["label"], "0–24", "{engagement}");
    assert_eq!(engagement["data"][0]["clients"], 3);
    let value = get(&svc, &by("lifetimeValue"), &mk).await.json();
    assert_eq!(value["data"][0]["label"], "under 1,000", "{value}");
    let risk = get(&svc, &by("churnRisk"), &mk).await.json();
    let total: i64 = risk["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["clients"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 3, "{risk}");

    let mut b = Browser::new();
    b.sign_in(&svc, "mk@parts.test", PASSWORD).await;
    let page = b.get(&svc, &format!("/segments/{seg}")).await.body;
    assert!(page.contains(&format!("hx-get=\"/segments/{seg}/composition\"")));
    let card = b
        .hx_get(&svc, &format!("/segments/{seg}/composition"))
        .await;
    assert_eq!(card.status, StatusCode::OK);
    assert!(
        card.body.contains("By status")
            && card.body.contains("Customer")
            && card.body.contains("FR")
            && card.body.contains("By churn risk")
            && card.body.contains("0–24"),
        "{}",
        card.body
    );
}

#[actix_web::test]
async fn a_segment_being_evaluated_elsewhere_is_not_evaluated_twice() {
    use rapport::db::schema::segments as s;
    let app = TestApp::new().await;
    let svc = app.service().await;
    let org = app.org("Lease Co");
    let admin = app.user(&org, "admin@lease.test", "admin");
    let admin = app.token(&org, &admin);
    client(
        &svc,
        &admin,
        json!({"type": "individual", "lastName": "Ada", "status": "customer"}),
    )
    .await;
    let seg = segment(
        &svc,
        &admin,
        "Customers",
        one("status", "eq", json!("customer")),
    )
    .await;
    assert!(keep(&app).await >= 1, "the baseline");

    // Another instance holds the segment, and its hourly evaluation is due.
    let two_hours_ago = rapport::db::now() - Duration::hours(2);
    let hold = |until: chrono::NaiveDateTime| {
        let mut c = app.pool.get().unwrap();
        diesel::update(s::table.filter(s::id.eq(&seg)))
            .set((
                s::lease_until.eq(Some(until)),
                s::evaluated_at.eq(Some(two_hours_ago)),
            ))
            .execute(&mut c)
            .unwrap();
    };
    let state = || -> (Option<chrono::NaiveDateTime>, Option<chrono::NaiveDateTime>) {
        let mut c = app.pool.get().unwrap();
        s::table
            .filter(s::id.eq(&seg))
            .select((s::evaluated_at, s::lease_until))
            .first(&mut c)
            .unwrap()
    };
    hold(rapport::db::now() + Duration::minutes(5));
    assert_eq!(
        keep(&app).await,
        0,
        "the worker leaves a held segment alone"
    );
    assert_eq!(state().0, Some(two_hours_ago));
    let r = call(
        &svc,
        Method::POST,
        &format!("/api/segments/{seg}/evaluate"),
        &admin,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.is_problem());
    assert!(r.json()["detail"]
        .as_str()
        .unwrap()
        .contains("being evaluated right now"));

    // A holder that died: its lease runs out and the next round takes the segment.
    hold(rapport::db::now() - Duration::seconds(1));
    assert!(keep(&app).await >= 1);
    let (evaluated, lease) = state();
    assert!(evaluated.unwrap() > two_hours_ago);
    assert_eq!(lease, None, "released when done");
    let r = call(
        &svc,
        Method::POST,
        &format!("/api/segments/{seg}/evaluate"),
        &admin,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(state().1, None);
}

/// "Has tag" reads each client's kept set of tags: clients inserted in bulk (the seed, an
/// import) carry their set from the start, and adding or removing a tag moves it.
#[actix_web::test]
async fn tag_conditions_count_bulk_inserted_and_retagged_clients() {
    use rapport::db::schema::{client_tags as ct, tags as tg};
    let t = TestApp::new().await;
    let org = t.org("Tag sets");
    let admin_id = t.user(&org, "admin@tag-sets.test", "admin");
    let admin = t.token(&org, &admin_id);
    let svc = t.service().await;
    let linked = |name: &str| -> i64 {
        let mut c = t.pool.get().unwrap();
        ct::table
            .inner_join(tg::table.on(tg::id.eq(ct::tag_id)))
            .filter(ct::organization_id.eq(&org.id))
            .filter(tg::name.eq(name))
            .count()
            .get_result(&mut c)
            .unwrap()
    };
    {
        let mut c = t.pool.get().unwrap();
        rapport::seed::seed_clients(&mut c, &org, 120, 11, |_| {}).unwrap();
    }
    let count = |criteria: Value| {
        let svc = &svc;
        let admin = &admin;
        async move {
            let r = call(
                svc,
                Method::POST,
                "/api/segments/preview",
                admin,
                Some(json!({ "criteria": criteria })),
            )
            .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            r.json()["count"].as_i64().unwrap()
        }
    };
    let has = |tag: &str| json!({"match": "all", "conditions": [{"field": "tags", "op": "has", "value": tag}]});
    let vip = linked("VIP");
    assert!(
        vip > 0 && vip < 120,
        "the seed tags some clients VIP: {vip}"
    );
    assert_eq!(count(has("VIP")).await, vip);
    assert_eq!(count(has("Renewal")).await, linked("Renewal"));
    // Under an OR and a NOT, as a marketer combines them.
    let either = json!({"match": "any", "conditions": [
        {"field": "tags", "op": "has", "value": "VIP"},
        {"field": "tags", "op": "has", "value": "Renewal"}
    ]});
    let neither = json!({"match": "all", "conditions": [
        {"field": "tags", "op": "hasNot", "value": "VIP"},
        {"field": "tags", "op": "hasNot", "value": "Renewal"}
    ]});
    assert_eq!(count(either).await + count(neither).await, 120);

    // A client tagged and untagged through the API moves the count each time.
    let someone: String = {
        let mut c = t.pool.get().unwrap();
        use rapport::db::schema::clients as cl;
        let vip_id: String = tg::table
            .filter(tg::organization_id.eq(&org.id))
            .filter(tg::name.eq("VIP"))
            .select(tg::id)
            .first(&mut c)
            .unwrap();
        cl::table
            .filter(cl::organization_id.eq(&org.id))
            .filter(diesel::dsl::not(diesel::dsl::exists(
                ct::table
                    .filter(ct::client_id.eq(cl::id))
                    .filter(ct::tag_id.eq(vip_id)),
            )))
            .select(cl::id)
            .first(&mut c)
            .unwrap()
    };
    let r = call(
        &svc,
        Method::POST,
        &format!("/api/clients/{someone}/tags"),
        &admin,
        Some(json!({"tag": "VIP"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(count(has("VIP")).await, vip + 1);
    let r = call(
        &svc,
        Method::DELETE,
        &format!("/api/clients/{someone}/tags/VIP"),
        &admin,
        None,
    )
    .await;
    assert!(r.status.is_success(), "{}", r.body);
    assert_eq!(count(has("VIP")).await, vip);
}
