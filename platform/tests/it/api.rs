//! API conventions: problem+json, validation, ETags, paging, Location.

use actix_web::http::{Method, StatusCode};

use crate::support::*;

async fn admin_app() -> (TestApp, String, rapport::domain::orgs::OrganizationRow) {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    let admin = t.user(&org, "admin@acme.test", "admin");
    let token = t.token(&org, &admin);
    (t, token, org)
}

#[actix_web::test]
async fn bad_bodies_get_problem_json() {
    let (t, token, _) = admin_app().await;
    let app = t.service().await;

    let malformed = send(
        &app,
        api(Method::POST, "/api/users", &token)
            .insert_header(("content-type", "application/json"))
            .set_payload("{\"email\": "),
    )
    .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert!(malformed.is_problem());
    let p = malformed.json();
    assert_eq!(p["type"], "/problems/bad-request");
    assert_eq!(p["status"], 400);
    assert!(p["detail"].as_str().unwrap().contains("not valid JSON"));

    let wrong_type = send(
        &app,
        api(Method::POST, "/api/users", &token)
            .insert_header(("content-type", "text/plain"))
            .set_payload("{}"),
    )
    .await;
    assert_eq!(wrong_type.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(wrong_type.is_problem());

    let huge = format!(
        "{{\"email\": \"a@b.test\", \"role\": \"admin\", \"name\": \"{}\"}}",
        "x".repeat(20_000)
    );
    let oversized = send(
        &app,
        api(Method::POST, "/api/users", &token)
            .insert_header(("content-type", "application/json"))
            .set_payload(huge),
    )
    .await;
    assert_eq!(oversized.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(oversized.is_problem());

    let unknown = send(
        &app,
        api(Method::POST, "/api/users", &token)
            .set_json(serde_json::json!({"email": "a@b.test", "role": "admin", "bogus": 1})),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    let p = unknown.json();
    assert_eq!(p["errors"][0]["field"], "bogus");

    let invalid = send(
        &app,
        api(Method::POST, "/api/users", &token).set_json(
            serde_json::json!({"email": "not-an-email", "role": "wizard", "password": "short"}),
        ),
    )
    .await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<String> = invalid.json()["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(fields, vec!["email", "role", "password"]);

    let not_found = send(&app, api(Method::GET, "/api/nothing-here", &token)).await;
    assert_eq!(not_found.status, StatusCode::NOT_FOUND);
    assert!(not_found.is_problem());
    let bad_query = send(&app, api(Method::GET, "/api/users?limit=100000", &token)).await;
    assert_eq!(bad_query.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad_query.json()["errors"][0]["field"], "limit");
}

#[actix_web::test]
async fn users_are_created_paged_and_updated_with_etags() {
    let (t, token, _) = admin_app().await;
    let app = t.service().await;

    let created = send(
        &app,
        api(Method::POST, "/api/users", &token).set_json(
            serde_json::json!({"email": "Rep@Acme.test", "name": "Rita Rep", "role": "sales_rep"}),
        ),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let body = created.json();
    let id = body["id"].as_str().unwrap().to_string();
    assert_eq!(
        created.header("location"),
        Some(format!("/api/users/{id}").as_str())
    );
    assert_eq!(body["email"], "rep@acme.test");
    let temp = body["temporaryPassword"].as_str().unwrap().to_string();
    assert!(temp.len() >= 12);
    let mut b = Browser::new();
    assert_eq!(
        b.sign_in(&app, "rep@acme.test", &temp).await.status,
        StatusCode::SEE_OTHER,
        "the one-time password works"
    );

    let dup = send(
        &app,
        api(Method::POST, "/api/users", &token)
            .set_json(serde_json::json!({"email": "rep@acme.test", "role": "manager"})),
    )
    .await;
    assert_eq!(dup.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(dup.json()["errors"][0]["field"], "email");

    for i in 0..4 {
        send(
            &app,
            api(Method::POST, "/api/users", &token).set_json(
                serde_json::json!({"email": format!("p{i}@acme.test"), "role": "read_only"}),
            ),
        )
        .await;
    }
    // Six members, pages of four: the cursor walks them all once.
    let first = send(&app, api(Method::GET, "/api/users?limit=4", &token))
        .await
        .json();
    assert_eq!(first["data"].as_array().unwrap().len(), 4);
    let cursor = first["nextCursor"].as_str().unwrap();
    let second = send(
        &app,
        api(
            Method::GET,
            &format!("/api/users?limit=4&cursor={cursor}"),
            &token,
        ),
    )
    .await
    .json();
    assert_eq!(second["data"].as_array().unwrap().len(), 2);
    assert!(second["nextCursor"].is_null());
    let filtered = send(
        &app,
        api(Method::GET, "/api/users?filter[role]=read_only", &token),
    )
    .await
    .json();
    assert_eq!(filtered["data"].as_array().unwrap().len(), 4);
    let q = send(&app, api(Method::GET, "/api/users?q=rita", &token))
        .await
        .json();
    assert_eq!(q["data"][0]["email"], "rep@acme.test");
    let bad_filter = send(
        &app,
        api(Method::GET, "/api/users?filter[password]=x", &token),
    )
    .await;
    assert_eq!(bad_filter.status, StatusCode::UNPROCESSABLE_ENTITY);

    let got = send(&app, api(Method::GET, &format!("/api/users/{id}"), &token)).await;
    let etag = got.header("etag").unwrap().to_string();
    let ok = send(
        &app,
        api(Method::PATCH, &format!("/api/users/{id}"), &token)
            .insert_header(("if-match", etag.clone()))
            .set_json(serde_json::json!({"role": "manager"})),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.json()["role"], "manager");
    assert_ne!(ok.header("etag").unwrap(), etag);
    let stale = send(
        &app,
        api(Method::PATCH, &format!("/api/users/{id}"), &token)
            .insert_header(("if-match", etag))
            .set_json(serde_json::json!({"role": "read_only"})),
    )
    .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    assert!(stale.is_problem());
    let now = send(&app, api(Method::GET, &format!("/api/users/{id}"), &token))
        .await
        .json();
    assert_eq!(now["role"], "manager", "the stale write changed nothing");

    let reset = send(
        &app,
        api(
            Method::POST,
            &format!("/api/users/{id}/reset-password"),
            &token,
        ),
    )
    .await
    .json();
    let fresh = reset["temporaryPassword"].as_str().unwrap();
    assert_eq!(
        Browser::new()
            .sign_in(&app, "rep@acme.test", &temp)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        Browser::new()
            .sign_in(&app, "rep@acme.test", fresh)
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        b.get(&app, "/").await.status,
        StatusCode::SEE_OTHER,
        "a reset ends existing sessions"
    );

    let audit = send(&app, api(Method::GET, "/api/audit-log", &token))
        .await
        .json();
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"user.reset_password"));
    let update = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "user.update")
        .unwrap();
    assert_eq!(
        update["changes"]["role"],
        serde_json::json!(["sales_rep", "manager"])
    );
    assert_eq!(update["actor"], "admin@acme.test");
}

#[actix_web::test]
async fn health_and_readiness() {
    let t = TestApp::new().await;
    let app = t.service().await;
    let h = send(&app, actix_web::test::TestRequest::get().uri("/healthz")).await;
    assert_eq!(h.status, StatusCode::OK);
    let r = send(&app, actix_web::test::TestRequest::get().uri("/readyz")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["database"], "ok");
    assert!(r.header("x-request-id").is_some());
}

#[actix_web::test]
async fn an_update_that_changes_nothing_is_not_recorded() {
    let (t, token, _) = admin_app().await;
    let app = t.service().await;
    let created = send(
        &app,
        api(Method::POST, "/api/users", &token)
            .set_json(serde_json::json!({"email": "same@acme.test", "role": "manager"})),
    )
    .await
    .json();
    let id = created["id"].as_str().unwrap();
    let r = send(
        &app,
        api(Method::PATCH, &format!("/api/users/{id}"), &token)
            .set_json(serde_json::json!({"role": "manager"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.header("etag"),
        Some("\"v1\""),
        "no change, no new version"
    );
    let audit = send(&app, api(Method::GET, "/api/audit-log", &token))
        .await
        .json();
    assert!(!audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["action"] == "user.update"));
}

#[actix_web::test]
async fn idempotency_keys_make_retries_safe() {
    let (t, token, _) = admin_app().await;
    let app = t.service().await;
    let post = |key: &str, body: serde_json::Value| {
        api(Method::POST, "/api/clients", &token)
            .insert_header(("idempotency-key", key.to_string()))
            .set_json(body)
    };
    let first = send(&app, post("k-1", serde_json::json!({"lastName": "Once"}))).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let retry = send(&app, post("k-1", serde_json::json!({"lastName": "Once"}))).await;
    assert_eq!(retry.status, StatusCode::CREATED);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(
        retry.json()["id"],
        first.json()["id"],
        "the retry gets the first response"
    );
    assert_eq!(retry.header("location"), first.header("location"));
    let list = send(&app, api(Method::GET, "/api/clients", &token))
        .await
        .json();
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "created once");

    let other = send(&app, post("k-1", serde_json::json!({"lastName": "Twice"}))).await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(other.is_problem());
    // Without a key, or with a new one, each POST acts.
    send(&app, post("k-2", serde_json::json!({"lastName": "Once"}))).await;
    send(
        &app,
        api(Method::POST, "/api/clients", &token).set_json(serde_json::json!({"lastName": "Once"})),
    )
    .await;
    assert_eq!(
        send(&app, api(Method::GET, "/api/clients", &token))
            .await
            .json()["data"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // A refused request is replayed as refused, not retried into a success.
    let bad = send(&app, post("k-3", serde_json::json!({"email": "x"}))).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        send(&app, post("k-3", serde_json::json!({"email": "x"})))
            .await
            .header("idempotent-replayed"),
        Some("true")
    );
}
