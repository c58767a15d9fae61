//! Plugins end to end: the example plugins are built for wasm32 here (never committed),
//! packed, installed through the API, and exercised through client writes.

use std::path::PathBuf;
use std::sync::OnceLock;

use actix_web::http::{Method, StatusCode};
use serde_json::json;

use crate::support::*;

/// Builds a plugin crate under `plugins/` once per test run and returns its bundle.
fn bundle(name: &str) -> Vec<u8> {
    static BUILT: OnceLock<std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>> =
        OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut map = built.lock().unwrap();
    if let Some(b) = map.get(name) {
        return b.clone();
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins")
        .join(name);
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("plugins");
    std::env::set_var("CARGO_TARGET_DIR", &target);
    let path = rapport::plugins::bundle::pack_dir(&dir, None, None)
        .unwrap_or_else(|e| panic!("building plugin {name}: {e}"));
    let bytes = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    map.insert(name.to_string(), bytes.clone());
    bytes
}

fn install(token: &str, bytes: Vec<u8>, query: &str) -> actix_web::test::TestRequest {
    api(Method::POST, &format!("/api/plugins{query}"), token)
        .insert_header(("content-type", "application/octet-stream"))
        .set_payload(bytes)
}

struct World {
    t: TestApp,
    admin: String,
    manager: String,
}

async fn world() -> World {
    let t = TestApp::new().await;
    let org = t.org("Clinic");
    let a = t.user(&org, "admin@clinic.test", "admin");
    let m = t.user(&org, "manager@clinic.test", "manager");
    World {
        admin: t.token(&org, &a),
        manager: t.token(&org, &m),
        t,
    }
}

/// The bar: install healthcare, define "NPI", a manager's form refuses
/// 1234567890 and accepts a valid NPI.
#[actix_web::test]
async fn the_healthcare_plugin_adds_a_checked_npi_field() {
    let w = world().await;
    let app = w.t.service().await;
    let r = send(&app, install(&w.manager, bundle("healthcare"), "")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "only admins install");
    let r = send(&app, install(&w.admin, bundle("healthcare"), "")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let p = r.json();
    assert_eq!(p["pluginId"], "com.rapport.healthcare");
    assert_eq!(
        p["fieldTypes"][0]["type"],
        "plugin:com.rapport.healthcare/npi"
    );

    let f = send(
        &app,
        api(Method::POST, "/api/custom-fields", &w.manager).set_json(
            json!({"key": "npi", "label": "NPI", "type": "plugin:com.rapport.healthcare/npi"}),
        ),
    )
    .await;
    assert_eq!(f.status, StatusCode::CREATED, "{}", f.body);
    let bad = send(
        &app,
        api(Method::POST, "/api/clients", &w.manager)
            .set_json(json!({"lastName": "House", "customFields": {"npi": "1234567890"}})),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.json()["errors"][0]["field"], "customFields.npi");
    assert!(bad.body.contains("check digit"), "{}", bad.body);
    let ok = send(
        &app,
        api(Method::POST, "/api/clients", &w.manager)
            .set_json(json!({"lastName": "House", "customFields": {"npi": "123-456-7893"}})),
    )
    .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    assert_eq!(
        ok.json()["customFields"]["npi"],
        "1234567893",
        "stored as the plugin normalised it"
    );

    let mut b = Browser::new();
    b.sign_in(&app, "manager@clinic.test", PASSWORD).await;
    let form = b.get(&app, "/clients/new").await.body;
    assert!(
        form.contains("name=\"cf.npi\"") && form.contains(">NPI"),
        "the form shows the field"
    );
    let refused = b
        .hx_post(
            &app,
            "/clients",
            &[
                ("type", "individual"),
                ("lastName", "Wilson"),
                ("cf.npi", "1234567890"),
                ("version", "0"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("check digit"));
    let accepted = b
        .hx_post(
            &app,
            "/clients",
            &[
                ("type", "individual"),
                ("lastName", "Wilson"),
                ("cf.npi", "1245319599"),
                ("version", "0"),
            ],
        )
        .await;
    assert!(
        accepted.header("hx-redirect").is_some(),
        "{}",
        accepted.body
    );

    let list = send(&app, api(Method::GET, "/api/plugins", &w.manager))
        .await
        .json();
    assert!(
        list["data"][0]["calls"].as_i64().unwrap() >= 4,
        "calls are counted"
    );
    assert!(
        list["data"][0]["p99Micros"]
            .as_u64()
            .is_some_and(|us| us > 0),
        "{}",
        list["data"][0]
    );
    let mut admin = Browser::new();
    admin.sign_in(&app, "admin@clinic.test", PASSWORD).await;
    let page = admin.get(&app, "/admin/plugins").await.body;
    assert!(page.contains("(recent calls on this server)"), "{page}");
    // Upgrading (same bundle again) keeps the install and its grants.
    let again = send(&app, install(&w.admin, bundle("healthcare"), "")).await;
    assert_eq!(again.json()["id"], p["id"]);
    let audit = send(&app, api(Method::GET, "/api/audit-log?limit=100", &w.admin))
        .await
        .json();
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"plugin.install") && actions.contains(&"plugin.upgrade"));
}

/// Loops, memory bombs, traps and garbage fail their call alone; the plugin is disabled
/// after repeated failures; other requests keep answering.
#[actix_web::test]
async fn a_misbehaving_plugin_is_contained_and_then_disabled() {
    let w = world().await;
    let app = w.t.service().await;
    let r = send(&app, install(&w.admin, bundle("misbehave"), "")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    send(
        &app,
        api(Method::POST, "/api/custom-fields", &w.admin).set_json(
            json!({"key": "chaos", "label": "Chaos", "type": "plugin:com.rapport.misbehave/chaos"}),
        ),
    )
    .await;
    let fine = send(
        &app,
        api(Method::POST, "/api/clients", &w.manager)
            .set_json(json!({"lastName": "Calm", "customFields": {"chaos": "fine"}})),
    )
    .await;
    assert_eq!(fine.status, StatusCode::CREATED, "{}", fine.body);
    for bad in ["loop", "oom", "trap", "garbage"] {
        let started = std::time::Instant::now();
        let r = send(
            &app,
            api(Method::POST, "/api/clients", &w.manager)
                .set_json(json!({"lastName": bad, "customFields": {"chaos": bad}})),
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {}",
            r.body
        );
        assert!(
            r.body.contains("could not check this value"),
            "{bad}: {}",
            r.body
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{bad} took {:?}",
            started.elapsed()
        );
        // Everything else keeps working.
        assert_eq!(
            send(&app, api(Method::GET, "/api/clients", &w.manager))
                .await
                .status,
            StatusCode::OK
        );
    }
    let p = send(&app, api(Method::GET, "/api/plugins", &w.admin))
        .await
        .json();
    assert_eq!(p["data"][0]["failures"], 4);
    assert_eq!(p["data"][0]["enabled"], true);
    send(
        &app,
        api(Method::POST, "/api/clients", &w.manager)
            .set_json(json!({"lastName": "x", "customFields": {"chaos": "trap"}})),
    )
    .await;
    let p = send(&app, api(Method::GET, "/api/plugins", &w.admin))
        .await
        .json();
    assert_eq!(
        p["data"][0]["enabled"], false,
        "disabled after 5 failures in a row"
    );
    assert!(p["data"][0]["disabledReason"]
        .as_str()
        .unwrap()
        .contains("5 failed calls"));
    let r = send(
        &app,
        api(Method::POST, "/api/clients", &w.manager)
            .set_json(json!({"lastName": "y", "customFields": {"chaos": "fine"}})),
    )
    .await;
    assert!(
        r.body.contains("not installed or is disabled"),
        "{}",
        r.body
    );
    let audit = send(&app, api(Method::GET, "/api/audit-log?limit=100", &w.admin))
        .await
        .json();
    assert!(audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["action"] == "plugin.auto_disable"));
    // An admin can turn it back on.
    let on = send(
        &app,
        api(
            Method::PATCH,
            &format!("/api/plugins/{}", p["data"][0]["id"].as_str().unwrap()),
            &w.admin,
        )
        .set_json(json!({"enabled": true})),
    )
    .await;
    assert_eq!(on.json()["enabled"], true);
}

#[actix_web::test]
async fn bundles_are_checked_before_anything_runs() {
    let w = world().await;
    let app = w.t.service().await;
    let good = bundle("healthcare");
    let b = rapport::plugins::bundle::unpack(&good).unwrap();
    let newer = b
        .manifest_toml
        .replace("api_version = \"0.1.0\"", "api_version = \"9.0.0\"");
    let r = send(
        &app,
        install(
            &w.admin,
            rapport::plugins::bundle::pack(&newer, &b.wasm),
            "",
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("plugin API 0.1.0"), "{}", r.body);
    let r = send(
        &app,
        install(
            &w.admin,
            rapport::plugins::bundle::pack(&b.manifest_toml, b"not wasm"),
            "",
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = send(&app, install(&w.admin, b"hello".to_vec(), "")).await;
    assert!(r.body.contains("not a Rapport plugin bundle"));
    // A pipeline template without a won stage could never close a deal.
    let no_won = format!(
        "{}\n[[pipeline_templates]]\nkey = \"p\"\nname = \"P\"\nstages = [{{ name = \"A\", probability = 10 }}, {{ name = \"L\", probability = 0, kind = \"lost\" }}]\n",
        b.manifest_toml
    );
    let r = send(
        &app,
        install(
            &w.admin,
            rapport::plugins::bundle::pack(&no_won, &b.wasm),
            "",
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("pipeline_templates"), "{}", r.body);
    let r = send(&app, install(&w.admin, good.clone(), "?grant=http")).await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a capability it did not request"
    );
    assert!(r.body.contains("does not request"));

    // Another organization sees none of it and cannot use its types.
    send(&app, install(&w.admin, good, "")).await;
    let other = w.t.org("Other");
    let oa = w.t.user(&other, "a@other.test", "admin");
    let ot = w.t.token(&other, &oa);
    assert_eq!(
        send(&app, api(Method::GET, "/api/plugins", &ot))
            .await
            .json()["data"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let f = send(
        &app,
        api(Method::POST, "/api/custom-fields", &ot).set_json(
            json!({"key": "npi", "label": "NPI", "type": "plugin:com.rapport.healthcare/npi"}),
        ),
    )
    .await;
    assert_eq!(f.status, StatusCode::UNPROCESSABLE_ENTITY);
    let id = send(&app, api(Method::GET, "/api/plugins", &w.admin))
        .await
        .json()["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        send(
            &app,
            api(Method::DELETE, &format!("/api/plugins/{id}"), &ot)
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(
            &app,
            api(Method::DELETE, &format!("/api/plugins/{id}"), &w.admin)
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
}

/// A vendor's stage rule: the real-estate plugin refuses to mark a listing sold without
/// a price, through the move endpoint and through an edit that changes the stage; the
/// rule stops applying once the plugin is disabled.
#[actix_web::test]
async fn a_stage_rule_plugin_can_refuse_a_move() {
    let w = world().await;
    let app = w.t.service().await;
    let r = send(&app, install(&w.admin, bundle("real-estate"), "?grant=log")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let install_id = r.json()["id"].as_str().unwrap().to_string();
    let p = send(&app, api(Method::GET, "/api/pipelines", &w.manager))
        .await
        .json();
    let stage = |name: &str| {
        p["data"][0]["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let client = send(
        &app,
        api(Method::POST, "/api/clients", &w.manager)
            .set_json(json!({"type": "individual", "firstName": "Ada", "lastName": "Buyer"})),
    )
    .await
    .json();
    let deal = send(
        &app,
        api(Method::POST, "/api/opportunities", &w.manager).set_json(json!({
            "name": "12 Elm Street", "clientId": client["id"], "value": "0",
            "stage": stage("Proposal")
        })),
    )
    .await;
    assert_eq!(deal.status, StatusCode::CREATED, "{}", deal.body);
    let id = deal.json()["id"].as_str().unwrap().to_string();
    let mv = |token: &str, body: serde_json::Value| {
        api(
            Method::POST,
            &format!("/api/opportunities/{id}/move"),
            token,
        )
        .set_json(body)
    };

    let refused = send(&app, mv(&w.manager, json!({"stage": stage("Won")}))).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert_eq!(refused.json()["errors"][0]["field"], "stage");
    assert!(
        refused.body.contains("sale price of 12 Elm Street"),
        "{}",
        refused.body
    );
    let still = send(
        &app,
        api(Method::GET, &format!("/api/opportunities/{id}"), &w.manager),
    )
    .await
    .json();
    assert_eq!(still["status"], "open", "a refused move changes nothing");

    // On the board, the refusal is the plugin's own words, as an error toast.
    let mut b = Browser::new();
    b.sign_in(&app, "manager@clinic.test", PASSWORD).await;
    let board = b
        .hx_post(
            &app,
            &format!("/opportunities/{id}/board-move"),
            &[("stage", &stage("Won")), ("version", "1")],
        )
        .await;
    assert!(
        board.body.contains("toast-error") && board.body.contains("sale price of 12 Elm Street"),
        "{}",
        board.body
    );

    // Other moves are the plugin's business too, and it allows them.
    let ok = send(&app, mv(&w.manager, json!({"stage": stage("Negotiation")}))).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);

    // An edit that changes the stage is checked against the deal as edited.
    let edit = |body: serde_json::Value| {
        api(
            Method::PATCH,
            &format!("/api/opportunities/{id}"),
            &w.manager,
        )
        .set_json(body)
    };
    let r = send(&app, edit(json!({"stage": stage("Won")}))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let health = || async {
        let p = send(&app, api(Method::GET, "/api/plugins", &w.admin))
            .await
            .json();
        (
            p["data"][0]["calls"].as_i64().unwrap(),
            p["data"][0]["failures"].as_i64().unwrap(),
        )
    };
    let (calls, _) = health().await;
    let r = send(
        &app,
        edit(json!({"stage": stage("Won"), "value": "350000"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["status"], "won");
    // The rule, then the sale event (which logs with the granted capability).
    let (after, failures) = health().await;
    assert_eq!(after - calls, 2, "before_move and after_won were called");
    assert_eq!(failures, 0);

    // Disabled, the rule no longer runs.
    let second = send(
        &app,
        api(Method::POST, "/api/opportunities", &w.manager).set_json(json!({
            "name": "3 Oak Lane", "clientId": client["id"], "value": "0",
            "stage": stage("Proposal")
        })),
    )
    .await
    .json();
    let off = send(
        &app,
        api(
            Method::PATCH,
            &format!("/api/plugins/{install_id}"),
            &w.admin,
        )
        .set_json(json!({"enabled": false})),
    )
    .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.body);
    let r = send(
        &app,
        api(
            Method::POST,
            &format!("/api/opportunities/{}/move", second["id"].as_str().unwrap()),
            &w.manager,
        )
        .set_json(json!({"stage": stage("Won")})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// The real-estate plugin's listing pipeline: offered in the API and on the Pipelines
/// page once installed, created with its stages, refused once the plugin is disabled.
#[actix_web::test]
async fn plugins_offer_pipeline_templates() {
    let w = world().await;
    let app = w.t.service().await;
    let r = send(&app, install(&w.admin, bundle("real-estate"), "")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let install_id = r.json()["id"].as_str().unwrap().to_string();
    let template = json!({"template": "com.rapport.real-estate/listings"});
    let made = send(
        &app,
        api(Method::POST, "/api/pipelines", &w.admin).set_json(template.clone()),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let p = made.json();
    assert_eq!(p["name"], "Listings");
    let stages: Vec<(&str, i64)> = p["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap(),
                s["probability"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(stages[0], ("Listed", 10));
    assert_eq!(stages[4], ("Sold", 100));
    assert_eq!(p["stages"][4]["kind"], "won");
    assert_eq!(p["stages"][5]["kind"], "lost");

    let unknown = send(
        &app,
        api(Method::POST, "/api/pipelines", &w.admin)
            .set_json(json!({"template": "com.rapport.real-estate/nope"})),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(unknown.json()["errors"][0]["field"], "template");

    // The console offers it and names the new pipeline as the admin asks.
    let mut b = Browser::new();
    b.sign_in(&app, "admin@clinic.test", PASSWORD).await;
    let page = b.get(&app, "/admin/pipelines").await.body;
    assert!(page.contains("Listings (Real estate plugin)"), "{page}");
    let created = b
        .hx_post(
            &app,
            "/admin/pipelines",
            &[
                ("do", "create_pipeline"),
                ("name", "Commercial listings"),
                ("template", "com.rapport.real-estate/listings"),
            ],
        )
        .await;
    assert!(created.status.is_success() || created.status.is_redirection());
    let page = b.get(&app, "/admin/pipelines").await.body;
    assert!(page.contains("Commercial listings"), "{page}");
    assert!(page.contains("Under contract"));
    let plugins = b.get(&app, "/admin/plugins").await.body;
    assert!(
        plugins.contains("Listings pipeline template, stage rules for deals, reacts to deal moves"),
        "{plugins}"
    );

    // A sale in the new pipeline: the event hook's log is not granted here, so the hook
    // fails — and the sale stands.
    let client = send(
        &app,
        api(Method::POST, "/api/clients", &w.admin)
            .set_json(json!({"type": "individual", "firstName": "Bo", "lastName": "Buyer"})),
    )
    .await
    .json();
    let deal = send(
        &app,
        api(Method::POST, "/api/opportunities", &w.admin).set_json(json!({
            "name": "9 Pine Road", "clientId": client["id"], "value": "420000",
            "pipeline": p["id"], "stage": p["stages"][1]["id"]
        })),
    )
    .await;
    assert_eq!(deal.status, StatusCode::CREATED, "{}", deal.body);
    let sold = send(
        &app,
        api(
            Method::POST,
            &format!(
                "/api/opportunities/{}/move",
                deal.json()["id"].as_str().unwrap()
            ),
            &w.admin,
        )
        .set_json(json!({"stage": p["stages"][4]["id"]})),
    )
    .await;
    assert_eq!(sold.status, StatusCode::OK, "{}", sold.body);
    assert_eq!(sold.json()["status"], "won");
    let health = send(&app, api(Method::GET, "/api/plugins", &w.admin))
        .await
        .json();
    assert_eq!(health["data"][0]["failures"], 1, "{}", health["data"][0]);
    assert!(health["data"][0]["lastError"]
        .as_str()
        .unwrap()
        .contains("log capability is not granted"));

    // A disabled plugin offers nothing.
    send(
        &app,
        api(
            Method::PATCH,
            &format!("/api/plugins/{install_id}"),
            &w.admin,
        )
        .set_json(json!({"enabled": false})),
    )
    .await;
    let r = send(
        &app,
        api(Method::POST, "/api/pipelines", &w.admin).set_json(template),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let page = b.get(&app, "/admin/pipelines").await.body;
    assert!(!page.contains("Listings (Real estate plugin)"));
}

/// Host functions answer only with the admin's grant: the same plugin logging is refused
/// in an organization that did not grant `log` and works in one that did; a module that
/// uses a host function its manifest does not ask for is refused at install.
#[actix_web::test]
async fn host_functions_need_their_capability_granted() {
    let w = world().await;
    let app = w.t.service().await;
    let other = w.t.org("Granting");
    let oa = w.t.user(&other, "admin@granting.test", "admin");
    let granting = w.t.token(&other, &oa);
    for (token, query) in [(&w.admin, ""), (&granting, "?grant=log")] {
        let r = send(&app, install(token, bundle("misbehave"), query)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let f = send(
            &app,
            api(Method::POST, "/api/custom-fields", token).set_json(
                json!({"key": "chaos", "label": "Chaos", "type": "plugin:com.rapport.misbehave/chaos"}),
            ),
        )
        .await;
        assert_eq!(f.status, StatusCode::CREATED, "{}", f.body);
    }
    let write = |token: &str| {
        api(Method::POST, "/api/clients", token)
            .set_json(json!({"lastName": "Logger", "customFields": {"chaos": "log"}}))
    };
    let denied = send(&app, write(&w.admin)).await;
    assert_eq!(
        denied.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        denied.body
    );
    assert!(
        denied.body.contains("log capability is not granted"),
        "{}",
        denied.body
    );
    let allowed = send(&app, write(&granting)).await;
    assert_eq!(allowed.status, StatusCode::CREATED, "{}", allowed.body);
    assert_eq!(allowed.json()["customFields"]["chaos"], "logged");

    // Event hooks run after the client is saved: one that traps is counted, the client stays.
    let health = || async {
        let p = send(&app, api(Method::GET, "/api/plugins", &w.admin))
            .await
            .json();
        p["data"][0].clone()
    };
    let before = health().await;
    let boom = send(
        &app,
        api(Method::POST, "/api/clients", &w.admin).set_json(json!({"lastName": "Explode"})),
    )
    .await;
    assert_eq!(boom.status, StatusCode::CREATED, "{}", boom.body);
    let id = boom.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        send(
            &app,
            api(Method::GET, &format!("/api/clients/{id}"), &w.admin)
        )
        .await
        .status,
        StatusCode::OK
    );
    let after = health().await;
    assert_eq!(
        after["calls"].as_i64(),
        before["calls"].as_i64().map(|n| n + 1)
    );
    assert_eq!(
        after["failures"].as_i64(),
        before["failures"].as_i64().map(|n| n + 1)
    );
    let calm = send(
        &app,
        api(Method::POST, "/api/clients", &w.admin).set_json(json!({"lastName": "Calm"})),
    )
    .await;
    assert_eq!(calm.status, StatusCode::CREATED);
    let last = health().await;
    assert_eq!(
        last["calls"].as_i64(),
        after["calls"].as_i64().map(|n| n + 1)
    );
    assert_eq!(last["failures"], after["failures"]);

    let b = rapport::plugins::bundle::unpack(&bundle("misbehave")).unwrap();
    let no_log = b
        .manifest_toml
        .replace("capabilities = [\"log\"]", "capabilities = []");
    let r = send(
        &app,
        install(
            &w.admin,
            rapport::plugins::bundle::pack(&no_log, &b.wasm),
            "",
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("needs the log capability"), "{}", r.body);
}
