//! `/api/openapi.json` describes the whole API: every route `web::api::routes` registers is
//! there with its method (and nothing that is not registered), it is served without a token,
//! and the console shows it as a reference page. That every answer matches it is checked on
//! every API call of the suite (`contract.rs`).

use std::collections::BTreeSet;

use actix_web::http::{Method, StatusCode};
use actix_web::test::TestRequest;

use crate::support::{self, Browser, TestApp};

/// `/clients/{id}` and `/{parent:a|b}/x` → `/clients/{}`, `/{}/x`.
fn shape(path: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in path.chars() {
        match c {
            '{' => {
                if depth == 0 {
                    out.push_str("{}");
                }
                depth += 1;
            }
            '}' => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// What `routes()` registers, read from its source: each `web::get()`/`post()`/… belongs to
/// the path literal written before it.
fn registered() -> BTreeSet<(String, String)> {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/web/api/mod.rs"))
        .unwrap();
    let start = src.find("pub fn routes(").unwrap();
    let end = start + src[start..].find(".default_service(").unwrap();
    let body = &src[start..end];
    let mut out = BTreeSet::new();
    let mut current: Option<String> = None;
    let mut rest = body;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("\"/") {
            let close = after.find('"').unwrap();
            current = Some(format!("/api/{}", &after[..close]));
            rest = &after[close + 1..];
            continue;
        }
        if let Some(after) = rest.strip_prefix("web::") {
            for m in ["get", "post", "put", "patch", "delete"] {
                if after.starts_with(&format!("{m}()")) {
                    let path = current.clone().expect("a method before any path");
                    out.insert((m.to_uppercase(), shape(&path)));
                }
            }
        }
        let mut chars = rest.chars();
        chars.next();
        rest = chars.as_str();
    }
    out
}

fn documented() -> BTreeSet<(String, String)> {
    let doc = rapport::web::api::openapi::json_value();
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in ["get", "post", "put", "patch", "delete"] {
            if !item[m].is_null() {
                out.insert((m.to_uppercase(), shape(path)));
            }
        }
    }
    out
}

#[test]
fn every_registered_route_is_described_and_nothing_else() {
    let registered = registered();
    let documented = documented();
    assert!(
        registered.len() > 150,
        "the route reader found {registered:?}"
    );
    let missing: Vec<_> = registered.difference(&documented).collect();
    let invented: Vec<_> = documented.difference(&registered).collect();
    assert!(
        missing.is_empty() && invented.is_empty(),
        "registered but not described: {missing:#?}\ndescribed but not registered: {invented:#?}"
    );
}

#[test]
fn every_operation_says_what_it_answers() {
    let doc = rapport::web::api::openapi::json_value();
    assert_eq!(doc["openapi"].as_str().map(|v| &v[..3]), Some("3.1"));
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(responses) = op["responses"].as_object() else {
                continue;
            };
            let id = op["operationId"].as_str().unwrap_or_default().to_string();
            assert!(
                !id.is_empty() && ids.insert(id.clone()),
                "{method} {path}: operationId `{id}` is missing or not unique"
            );
            assert!(
                responses.keys().any(|k| k.starts_with('2')),
                "{method} {path} documents no success answer"
            );
            assert!(
                op["tags"].as_array().is_some_and(|t| !t.is_empty()),
                "{method} {path} has no tag, so the reference page cannot place it"
            );
            let text = op["summary"].as_str().or(op["description"].as_str());
            assert!(
                text.is_some_and(|t| !t.trim().is_empty()),
                "{method} {path} is not explained"
            );
            // Every `{param}` of the path is described.
            for seg in path.split('/').filter(|s| s.starts_with('{')) {
                let name = seg.trim_matches(|c| c == '{' || c == '}');
                let params = op["parameters"].as_array().cloned().unwrap_or_default();
                assert!(
                    params
                        .iter()
                        .any(|p| p["name"] == name && p["in"] == "path"),
                    "{method} {path}: the path parameter `{name}` is not described"
                );
            }
        }
    }
}

#[actix_rt::test]
async fn the_description_is_served_without_a_token_and_shown_in_the_console() {
    let t = TestApp::new().await;
    let app = t.service().await;
    let res = support::send(&app, TestRequest::default().uri("/api/openapi.json")).await;
    assert_eq!(res.status, StatusCode::OK);
    let doc = res.json();
    assert_eq!(doc["info"]["title"], "Rapport API");
    assert!(doc["paths"]["/api/clients"]["post"].is_object());
    assert_eq!(
        doc["components"]["securitySchemes"]["token"]["scheme"],
        "bearer"
    );

    let org = t.org("Acme");
    t.user(&org, "rep@acme.test", "sales_rep");
    let mut b = Browser::new();
    b.sign_in(&app, "rep@acme.test", support::PASSWORD).await;
    let page = b.get(&app, "/developers/api").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("/api/clients/{id}"), "{}", page.body);
    assert!(page.body.contains("Create a client") || page.body.contains("Creates a client"));
    // The schema of an answer is spelled out field by field.
    assert!(page.body.contains("nextCursor"));
    // The raw description is one click away.
    assert!(page.body.contains("href=\"/api/openapi.json\""));

    let anonymous = support::send(
        &app,
        TestRequest::default()
            .method(Method::GET)
            .uri("/developers/api"),
    )
    .await;
    assert_ne!(anonymous.status, StatusCode::OK);
}
