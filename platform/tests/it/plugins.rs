//! Plugins end to end: the example plugins are built for wasm32 here (never committed),
//! packed, installed through the API, and exercised through client writes.

use std::path::PathBuf;
use std::sync::OnceLock;

use actix_web::http::{Method, StatusCode};
use serde_json::json;

use crate::support::*;

/// How long a test waits for queued plugin events to run: returns as soon as they have;
/// generous because CI runs two backends' suites on two loaded cores (20 s once ran out).
const IDLE: std::time::Duration = std::time::Duration::from_secs(90);

/// Builds a plugin crate under `plugins/` once per test run and returns its bundle.
pub(crate) fn bundle(name: &str) -> Vec<u8> {
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
    // Unchecked: some example plugins misbehave on purpose, for the host to refuse.
    let (path, _) = rapport::plugins::bundle::pack_dir_with(&dir, None, None, false)
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

    // The plugin's `format` hook decides how its values read on the profile.
    let f = send(
        &app,
        api(Method::POST, "/api/custom-fields", &w.manager).set_json(json!({
            "key": "member", "label": "Member id",
            "type": "plugin:com.rapport.healthcare/insurance_member_id"
        })),
    )
    .await;
    assert_eq!(f.status, StatusCode::CREATED, "{}", f.body);
    let c = send(
        &app,
        api(Method::POST, "/api/clients", &w.manager)
            .set_json(json!({"lastName": "Cuddy", "customFields": {"member": "abcd123456"}})),
    )
    .await;
    assert_eq!(c.status, StatusCode::CREATED, "{}", c.body);
    assert_eq!(c.json()["customFields"]["member"], "ABCD123456");
    let profile = b
        .get(
            &app,
            &format!("/clients/{}", c.json()["id"].as_str().unwrap()),
        )
        .await
        .body;
    assert!(profile.contains("ABCD 1234 56"), "formatted by the plugin");
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
    // Its client_after_create runs after the response; let it finish before counting.
    assert!(w.t.state.plugins.wait_idle(IDLE), "event hooks drained");
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
    // Its admins are told; other roles are not.
    let n = send(&app, api(Method::GET, "/api/me/notifications", &w.admin))
        .await
        .json();
    assert_eq!(n["unread"], 1, "{n}");
    assert_eq!(n["data"][0]["title"], "The Misbehave plugin was disabled");
    let n = send(&app, api(Method::GET, "/api/me/notifications", &w.manager))
        .await
        .json();
    assert_eq!(n["unread"], 0);
    let mut b = Browser::new();
    b.sign_in(&app, "admin@clinic.test", PASSWORD).await;
    let page = b.get(&app, "/notifications").await.body;
    assert!(page.contains("The Misbehave plugin was disabled"), "{page}");
    assert!(page.contains("class=\"badge\">1<"), "the header counts it");
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

/// The console's upload refuses a file that is no bundle in words, as a toast: never the
/// request's field name (`bundle: this file is not …`).
#[actix_web::test]
async fn a_refused_upload_says_why_without_field_names() {
    let w = world().await;
    let app = w.t.service().await;
    let mut b = Browser::new();
    b.sign_in(&app, "admin@clinic.test", PASSWORD).await;
    for query in ["", "?grantAll=true"] {
        let r = b
            .hx_put_raw(
                &app,
                &format!("/admin/plugins/upload{query}"),
                "application/octet-stream",
                b"hello".to_vec(),
            )
            .await;
        assert!(r.status.is_client_error(), "{query}: {}", r.status);
        assert!(
            r.body.contains("class=\"toast toast-error\"")
                && r.body.contains("This file is not a Rapport plugin bundle"),
            "{query}: {}",
            r.body
        );
        assert!(!r.body.contains("bundle:"), "{query}: {}", r.body);
    }
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
    let stage = |name: &str| crate::support::stage_named(&p, name);
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
        assert!(w.t.state.plugins.wait_idle(IDLE), "event hooks drained");
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
    // The rule, the deal's computed fields for the answer, then the sale event (which
    // logs with the granted capability).
    let (after, failures) = health().await;
    assert_eq!(
        after - calls,
        3,
        "before_move, compute and after_won were called"
    );
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
    // A computed field: the commission at the rate set in the plugin's settings.
    let sid = second["id"].as_str().unwrap().to_string();
    let shown = |deal: String| {
        let app = &app;
        let token = w.manager.clone();
        async move {
            send(
                app,
                api(Method::GET, &format!("/api/opportunities/{deal}"), &token),
            )
            .await
            .json()["computed"]["com.rapport.real-estate/commission"]
                .clone()
        }
    };
    assert_eq!(shown(sid.clone()).await, "0.00 USD", "3% of nothing");
    let priced = send(
        &app,
        api(
            Method::PATCH,
            &format!("/api/opportunities/{sid}"),
            &w.manager,
        )
        .set_json(json!({"value": "350000"})),
    )
    .await;
    assert_eq!(priced.status, StatusCode::OK, "{}", priced.body);
    assert_eq!(shown(sid.clone()).await, "10500.00 USD");
    let rate = send(
        &app,
        api(
            Method::PATCH,
            &format!("/api/plugins/{install_id}"),
            &w.admin,
        )
        .set_json(json!({"settings": {"commission_percent": "2.5"}})),
    )
    .await;
    assert_eq!(rate.status, StatusCode::OK, "{}", rate.body);
    assert_eq!(shown(sid.clone()).await, "8750.00 USD");
    let page = b.get(&app, &format!("/opportunities/{sid}")).await.body;
    assert!(
        page.contains("Commission (Real estate plugin)") && page.contains("8750.00 USD"),
        "{page}"
    );
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
    assert!(w.t.state.plugins.wait_idle(IDLE));
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
        assert!(w.t.state.plugins.wait_idle(IDLE), "event hooks drained");
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
    let no_log = b.manifest_toml.replace(
        "capabilities = [\"log\", \"storage\", \"read_records\"]",
        "capabilities = [\"storage\", \"read_records\"]",
    );
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

/// Installs misbehave in an organization with the `chaos` field, grants and settings.
async fn misbehave_in<S, B>(app: &S, token: &str, grant: &str) -> String
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let r = send(app, install(token, bundle("misbehave"), grant)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    send(
        app,
        api(Method::POST, "/api/custom-fields", token).set_json(
            json!({"key": "chaos", "label": "Chaos", "type": "plugin:com.rapport.misbehave/chaos"}),
        ),
    )
    .await;
    r.json()["id"].as_str().unwrap().to_string()
}

/// What the misbehave plugin answers for a chaos value (its refusal message).
async fn chaos<S, B>(t: &TestApp, app: &S, token: &str, value: &str) -> String
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    // Event hooks run after the response: let the ones already queued finish.
    assert!(t.state.plugins.wait_idle(IDLE));
    let r = send(
        app,
        api(Method::POST, "/api/clients", token)
            .set_json(json!({"lastName": "Probe", "customFields": {"chaos": value}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    r.json()["errors"][0]["message"]
        .as_str()
        .unwrap()
        .to_string()
}

#[actix_web::test]
async fn plugin_storage_and_records_stay_in_their_organization() {
    let w = world().await;
    let app = w.t.service().await;
    let other = w.t.org("Other clinic");
    let oa = w.t.user(&other, "admin@other.test", "admin");
    let other_admin = w.t.token(&other, &oa);
    let id = misbehave_in(&app, &w.admin, "?grant=storage,read_records").await;
    misbehave_in(&app, &other_admin, "?grant=storage,read_records").await;

    // Settings: a typed value is checked, then saved and audited.
    let bad = send(
        &app,
        api(Method::PATCH, &format!("/api/plugins/{id}"), &w.admin)
            .set_json(json!({"settings": {"remember": "maybe"}})),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert_eq!(bad.json()["errors"][0]["field"], "settings.remember");
    let on = send(
        &app,
        api(Method::PATCH, &format!("/api/plugins/{id}"), &w.admin)
            .set_json(json!({"settings": {"remember": "true"}})),
    )
    .await;
    assert_eq!(on.status, StatusCode::OK, "{}", on.body);
    assert_eq!(on.json()["settings"][0]["value"], "true");

    let ada = send(
        &app,
        api(Method::POST, "/api/clients", &w.admin).set_json(json!({"lastName": "Lovelace"})),
    )
    .await;
    assert_eq!(ada.status, StatusCode::CREATED, "{}", ada.body);
    let ada_id = ada.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        chaos(&w.t, &app, &w.admin, "recall:last_client").await,
        "recall: Lovelace"
    );
    assert_eq!(
        chaos(&w.t, &app, &other_admin, "recall:last_client").await,
        "recall: nothing",
        "another organization's storage is its own"
    );
    assert_eq!(
        chaos(&w.t, &app, &w.admin, &format!("peek:{ada_id}")).await,
        "peek: Lovelace"
    );
    assert_eq!(
        chaos(&w.t, &app, &other_admin, &format!("peek:{ada_id}")).await,
        "peek: none",
        "a plugin cannot read another organization's client"
    );
    // Update and delete events reach the plugin after the change is saved.
    let u = send(
        &app,
        api(Method::PATCH, &format!("/api/clients/{ada_id}"), &w.admin)
            .set_json(json!({"lastName": "King"})),
    )
    .await;
    assert_eq!(u.status, StatusCode::OK, "{}", u.body);
    assert_eq!(
        chaos(&w.t, &app, &w.admin, "recall:last_updated").await,
        "recall: King"
    );
    let d = send(
        &app,
        api(Method::DELETE, &format!("/api/clients/{ada_id}"), &w.admin),
    )
    .await;
    assert_eq!(d.status, StatusCode::NO_CONTENT);
    assert_eq!(
        chaos(&w.t, &app, &w.admin, "recall:last_deleted").await,
        "recall: King"
    );
    assert_eq!(
        chaos(&w.t, &app, &w.admin, &format!("peek:{ada_id}")).await,
        "peek: none",
        "trashed clients are not readable"
    );

    // A hook that checks a change cannot write storage.
    let stash = send(
        &app,
        api(Method::POST, "/api/clients", &w.admin)
            .set_json(json!({"lastName": "Stash", "customFields": {"chaos": "stash"}})),
    )
    .await;
    assert_eq!(stash.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        stash
            .body
            .contains("read-only while a change is being checked"),
        "{}",
        stash.body
    );

    // Grants change without reinstalling; a revoked capability is refused at once.
    let r = send(
        &app,
        api(Method::PATCH, &format!("/api/plugins/{id}"), &w.admin)
            .set_json(json!({"granted": ["read_records"]})),
    )
    .await;
    assert_eq!(r.json()["granted"], json!(["read_records"]));
    let denied = send(
        &app,
        api(Method::POST, "/api/clients", &w.admin).set_json(
            json!({"lastName": "Probe", "customFields": {"chaos": "recall:last_client"}}),
        ),
    )
    .await;
    assert!(
        denied.body.contains("storage capability is not granted"),
        "{}",
        denied.body
    );
    let r = send(
        &app,
        api(Method::PATCH, &format!("/api/plugins/{id}"), &w.admin)
            .set_json(json!({"granted": ["nonsense"]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);

    // An upgrade keeps settings, grants and storage; uninstalling drops the storage.
    let up = send(
        &app,
        install(&w.admin, bundle("misbehave"), "?grant=storage"),
    )
    .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.body);
    let up = up.json();
    assert_eq!(up["settings"][0]["value"], "true");
    assert_eq!(up["granted"], json!(["read_records", "storage"]));
    assert_eq!(
        chaos(&w.t, &app, &w.admin, "recall:last_client").await,
        "recall: Lovelace"
    );
    let gone = send(
        &app,
        api(Method::DELETE, &format!("/api/plugins/{id}"), &w.admin),
    )
    .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    misbehave_in(&app, &w.admin, "?grant=storage").await;
    assert_eq!(
        chaos(&w.t, &app, &w.admin, "recall:last_client").await,
        "recall: nothing"
    );
    let audit = send(&app, api(Method::GET, "/api/audit-log?limit=100", &w.admin))
        .await
        .json();
    assert!(audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["action"] == "plugin.configure"));
}

/// A one-route HTTP server standing in for Slack: records each request body, answers 200.
fn fake_slack() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                if line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            log.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&body).into_owned());
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    (port, seen)
}

#[actix_web::test]
async fn slack_notify_posts_once_when_a_deal_is_won() {
    let w = world().await;
    let app = w.t.service().await;
    let (port, seen) = fake_slack();
    // The example declares hooks.slack.com; here it declares the stand-in instead.
    let b = rapport::plugins::bundle::unpack(&bundle("slack-notify")).unwrap();
    let host = format!("127.0.0.1:{port}");
    let toml = b.manifest_toml.replace(
        "allowed_hosts = [\"hooks.slack.com\"]",
        &format!("allowed_hosts = [\"{host}\"]"),
    );
    let bytes = rapport::plugins::bundle::pack(&toml, &b.wasm);
    let r = send(&app, install(&w.admin, bytes, "?grantAll=true")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let p = r.json();
    let id = p["id"].as_str().unwrap().to_string();
    assert_eq!(
        p["approvedHosts"],
        json!([host]),
        "granting http approves the declared hosts"
    );
    assert_eq!(p["missingSettings"], json!(["Slack incoming webhook URL"]));

    // The console's Configure form: a bad address is refused inline, a good one saved.
    let mut br = Browser::new();
    br.sign_in(&app, "admin@clinic.test", PASSWORD).await;
    let page = br.get(&app, "/admin/plugins").await.body;
    assert!(
        page.contains("Configure Slack notify")
            && page.contains("Fill in: Slack incoming webhook URL"),
        "{page}"
    );
    let url = format!("http://{host}/services/T000/B000/secret");
    let form = |webhook: &str| {
        vec![
            ("granted".to_string(), "http".to_string()),
            ("granted".to_string(), "read_records".to_string()),
            ("granted".to_string(), "storage".to_string()),
            ("host".to_string(), host.clone()),
            ("setting.webhook_url".to_string(), webhook.to_string()),
            ("setting.prefix".to_string(), "Won".to_string()),
        ]
    };
    let pairs = form("not a url");
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let refused = br
        .hx_post(&app, &format!("/admin/plugins/{id}/configure"), &refs)
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused
            .body
            .contains("Slack incoming webhook URL: Enter an address starting with https://."),
        "the setting by its label: {}",
        refused.body
    );
    assert!(!refused.body.contains("webhook_url:"), "{}", refused.body);
    let pairs = form(&url);
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let saved = br
        .hx_post(&app, &format!("/admin/plugins/{id}/configure"), &refs)
        .await;
    assert!(
        saved.status.is_success() || saved.status.is_redirection(),
        "{}",
        saved.body
    );
    let page = br.get(&app, "/admin/plugins").await.body;
    assert!(
        !page.contains("secret"),
        "a secret setting is never sent back"
    );
    let listed = send(&app, api(Method::GET, "/api/plugins", &w.admin))
        .await
        .json();
    assert_eq!(listed["data"][0]["settings"][0]["isSet"], true);
    assert_eq!(
        listed["data"][0]["settings"][0]["value"],
        serde_json::Value::Null
    );
    assert_eq!(listed["data"][0]["missingSettings"], json!([]));

    let p = send(&app, api(Method::GET, "/api/pipelines", &w.manager))
        .await
        .json();
    let stage = |name: &str| crate::support::stage_named(&p, name);
    let client = send(
        &app,
        api(Method::POST, "/api/clients", &w.manager)
            .set_json(json!({"type": "company", "companyName": "Acme GmbH"})),
    )
    .await;
    assert_eq!(client.status, StatusCode::CREATED, "{}", client.body);
    let client = client.json();
    let deal = |name: &str| {
        api(Method::POST, "/api/opportunities", &w.manager).set_json(json!({
            "name": name, "clientId": client["id"], "value": "48000", "stage": stage("Proposal")
        }))
    };
    let d = send(&app, deal("Fleet renewal")).await.json();
    let mv = |id: &str, to: &str| {
        api(
            Method::POST,
            &format!("/api/opportunities/{id}/move"),
            &w.manager,
        )
        .set_json(json!({"stage": stage(to)}))
    };
    let did = d["id"].as_str().unwrap().to_string();
    let won = send(&app, mv(&did, "Won")).await;
    assert_eq!(won.status, StatusCode::OK, "{}", won.body);
    assert!(w.t.state.plugins.wait_idle(IDLE), "event hooks drained");
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "{seen:?}");
        let msg: serde_json::Value = serde_json::from_str(&seen[0]).unwrap();
        assert_eq!(msg["text"], "Won: Fleet renewal — 48000.00 USD (Acme GmbH)");
    }
    // Reopened and won again: announced once.
    send(&app, mv(&did, "Proposal")).await;
    send(&app, mv(&did, "Won")).await;
    assert!(w.t.state.plugins.wait_idle(IDLE), "event hooks drained");
    assert_eq!(seen.lock().unwrap().len(), 1);

    // Without the host approved, the post is refused by the host and counted as a failure.
    let r = send(
        &app,
        api(Method::PATCH, &format!("/api/plugins/{id}"), &w.admin)
            .set_json(json!({"approvedHosts": []})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let d2 = send(&app, deal("Second fleet")).await.json();
    let won = send(&app, mv(d2["id"].as_str().unwrap(), "Won")).await;
    assert_eq!(won.status, StatusCode::OK, "the sale stands: {}", won.body);
    assert!(w.t.state.plugins.wait_idle(IDLE), "event hooks drained");
    assert_eq!(seen.lock().unwrap().len(), 1);
    assert!(w.t.state.plugins.wait_idle(IDLE), "event hooks drained");
    let listed = send(&app, api(Method::GET, "/api/plugins", &w.admin))
        .await
        .json();
    assert!(
        listed["data"][0]["lastError"]
            .as_str()
            .unwrap_or_default()
            .contains("is not approved for this plugin"),
        "{listed}"
    );
}

#[actix_web::test]
async fn signed_bundles_and_trusted_vendor_keys() {
    use rapport::plugins::signature;
    let w = world().await;
    let app = w.t.service().await;
    let (secret, public) = signature::generate();
    let dir = std::env::temp_dir().join(format!("rapport-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_path = dir.join("vendor.key");
    std::fs::write(&key_path, signature::key_file_text(&secret, &public)).unwrap();
    let key = signature::read_key_file(&key_path).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let signed = signature::sign(&bundle("healthcare"), &key).unwrap();

    let r = send(&app, install(&w.admin, signed.clone(), "")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.json()["signature"], "untrusted");
    assert_eq!(r.json()["signer"], public.as_str());

    // A signed bundle changed afterwards is refused whatever the policy.
    let mut tampered = signed.clone();
    let at = tampered.len() / 2;
    tampered[at] ^= 0x55;
    let r = send(&app, install(&w.admin, tampered, "")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("changed after signing"), "{}", r.body);

    let bad = send(
        &app,
        api(Method::POST, "/api/plugins/trusted-keys", &w.admin)
            .set_json(json!({"name": "Rapport examples", "publicKey": "abc"})),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.json()["errors"][0]["field"], "publicKey");
    let k = send(
        &app,
        api(Method::POST, "/api/plugins/trusted-keys", &w.manager)
            .set_json(json!({"name": "Rapport examples", "publicKey": public})),
    )
    .await;
    assert_eq!(k.status, StatusCode::FORBIDDEN);
    let k = send(
        &app,
        api(Method::POST, "/api/plugins/trusted-keys", &w.admin)
            .set_json(json!({"name": "Rapport examples", "publicKey": public})),
    )
    .await;
    assert_eq!(k.status, StatusCode::CREATED, "{}", k.body);
    let listed = send(&app, api(Method::GET, "/api/plugins", &w.admin))
        .await
        .json();
    assert_eq!(listed["data"][0]["signature"], "trusted");

    let p = send(
        &app,
        api(Method::PUT, "/api/plugins/policy", &w.admin)
            .set_json(json!({"requireSignature": true})),
    )
    .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    let unsigned = send(&app, install(&w.admin, bundle("misbehave"), "")).await;
    assert_eq!(unsigned.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        unsigned.body.contains("this bundle is unsigned"),
        "{}",
        unsigned.body
    );
    let (other_secret, other_public) = signature::generate();
    let other_key = ed25519_from(&other_secret);
    let stranger = signature::sign(&bundle("misbehave"), &other_key).unwrap();
    let r = send(&app, install(&w.admin, stranger, "")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains(&other_public), "{}", r.body);
    let r = send(&app, install(&w.admin, signed, "")).await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "a trusted signature installs: {}",
        r.body
    );

    let mut b = Browser::new();
    b.sign_in(&app, "admin@clinic.test", PASSWORD).await;
    let page = b.get(&app, "/admin/plugins").await.body;
    assert!(
        page.contains("Signed by Rapport examples (trusted key)"),
        "{page}"
    );
    assert!(page.contains("Only bundles signed by a trusted key can be installed."));
    let refused = b
        .hx_post(
            &app,
            "/admin/plugins/keys",
            &[("action", "add"), ("name", "X"), ("public_key", "zz")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.body.contains("64 hexadecimal characters"),
        "{}",
        refused.body
    );
}

fn ed25519_from(secret_hex: &str) -> ed25519_dalek::SigningKey {
    let bytes: [u8; 32] = rapport::plugins::signature::from_hex(secret_hex)
        .unwrap()
        .try_into()
        .unwrap();
    ed25519_dalek::SigningKey::from_bytes(&bytes)
}

/// Plugin events wait in the database: an event left by a process that died (even one it
/// had claimed) is delivered by the next process, and the change's transaction writes them,
/// so a create that rolls back raises none.
#[actix_web::test]
async fn queued_plugin_events_survive_a_restart() {
    use diesel::prelude::*;
    use rapport::db::schema::{plugin_events, plugin_storage};
    let w = world().await;
    let app = w.t.service().await;
    let id = misbehave_in(&app, &w.admin, "?grant=storage").await;
    let on = send(
        &app,
        api(Method::PATCH, &format!("/api/plugins/{id}"), &w.admin)
            .set_json(json!({"settings": {"remember": "true"}})),
    )
    .await;
    assert_eq!(on.status, StatusCode::OK, "{}", on.body);
    let org = {
        use rapport::db::schema::plugin_installs;
        let mut c = w.t.pool.get().unwrap();
        plugin_installs::table
            .filter(plugin_installs::id.eq(&id))
            .select(plugin_installs::organization_id)
            .first::<String>(&mut c)
            .unwrap()
    };
    // What a process killed mid-delivery leaves behind: a queued event it had claimed.
    {
        let mut c = w.t.pool.get().unwrap();
        let snapshot = rapport_plugin_sdk::ClientSnapshot::new(
            "01900000-0000-7000-8000-000000000001",
            "individual",
            "Restart survivor",
            None,
        );
        rapport::plugins::events::enqueue(
            &mut c,
            &org,
            &[(
                id.clone(),
                "client_after_create",
                serde_json::to_vec(&snapshot).unwrap(),
            )],
        )
        .unwrap();
        diesel::update(plugin_events::table)
            .set(
                plugin_events::claimed_until
                    .eq(Some(rapport::db::now() - chrono::Duration::seconds(1))),
            )
            .execute(&mut c)
            .unwrap();
    }
    let restarted = w.t.another_instance().await;
    assert!(restarted.plugins.wait_idle(IDLE));
    let remembered: String = {
        let mut c = w.t.pool.get().unwrap();
        plugin_storage::table
            .filter(plugin_storage::organization_id.eq(&org))
            .filter(plugin_storage::key.eq("last_client"))
            .select(plugin_storage::value)
            .first(&mut c)
            .unwrap()
    };
    assert!(remembered.contains("Restart survivor"), "{remembered}");
    // A refused create raises no event.
    let refused = send(
        &app,
        api(Method::POST, "/api/clients", &w.admin)
            .set_json(json!({"lastName": "Never", "customFields": {"chaos": "trap"}})),
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let left: i64 = {
        let mut c = w.t.pool.get().unwrap();
        plugin_events::table.count().get_result(&mut c).unwrap()
    };
    assert_eq!(left, 0);
}

/// A module that imports Extism's own log functions is refused at install: they wrote to the
/// server's log with no capability, no cap and no plugin named.
#[test]
fn extism_log_imports_are_refused() {
    let b = rapport::plugins::bundle::unpack(&bundle("healthcare")).unwrap();
    let mut wasm = b"\0asm\x01\0\0\0".to_vec();
    // One function type, (i64) -> ().
    wasm.extend([1, 5, 1, 0x60, 1, 0x7e, 0]);
    // Imports: extism:host/env log_info, a function of that type.
    let mut imports = vec![1u8, 15];
    imports.extend(b"extism:host/env");
    imports.push(8);
    imports.extend(b"log_info");
    imports.extend([0, 0]);
    wasm.push(2);
    wasm.push(imports.len() as u8);
    wasm.extend(imports);
    let packed = rapport::plugins::bundle::pack(&b.manifest_toml, &wasm);
    let errors =
        rapport::plugins::check(&rapport::plugins::bundle::unpack(&packed).unwrap()).unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.message.contains("Extism's log_info")),
        "{errors:?}"
    );
}

/// Each organization's plugins share a wall-time budget per minute: once one tenant's plugin
/// has spent it (here, a budget of 50 ms and a call that burns its whole fuel), that
/// tenant's calls are refused with the reason until the minute moves on, and another
/// tenant's plugins run as before. A refusal for budget is not counted as a plugin failure.
#[actix_web::test]
async fn one_organizations_plugin_time_is_budgeted_apart_from_anothers() {
    let w = world().await;
    let app = w.t.service().await;
    let other = w.t.org("Other clinic");
    let oa = w.t.user(&other, "admin@other.test", "admin");
    let other_admin = w.t.token(&other, &oa);
    let id = misbehave_in(&app, &w.admin, "").await;
    misbehave_in(&app, &other_admin, "").await;
    w.t.state
        .plugins
        .set_org_budget(std::time::Duration::from_millis(50));
    let burnt = chaos(&w.t, &app, &w.admin, "loop").await;
    assert!(!burnt.contains("time for this minute"), "{burnt}");
    let refused = chaos(&w.t, &app, &w.admin, "trap").await;
    assert!(
        refused.contains("used their time for this minute"),
        "{refused}"
    );
    let theirs = chaos(&w.t, &app, &other_admin, "trap").await;
    assert!(!theirs.contains("time for this minute"), "{theirs}");
    let listed = send(&app, api(Method::GET, "/api/plugins", &w.admin))
        .await
        .json();
    let mine = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(mine["calls"], 1, "the refused call was not counted: {mine}");
}

/// Issue 20's plugin-declared triggers and actions: the Slack example offers "Post to Slack"
/// (a settings form per step) and raises "a won deal was announced"; an admin builds a
/// workflow of both in the API and sees them in the console's builder; the run posts once.
#[actix_web::test]
async fn a_workflow_starts_on_a_plugins_event_and_runs_its_action() {
    let w = world().await;
    let app = w.t.service().await;
    let (port, seen) = fake_slack();
    let b = rapport::plugins::bundle::unpack(&bundle("slack-notify")).unwrap();
    let host = format!("127.0.0.1:{port}");
    let toml = b.manifest_toml.replace(
        "allowed_hosts = [\"hooks.slack.com\"]",
        &format!("allowed_hosts = [\"{host}\"]"),
    );
    let r = send(
        &app,
        install(
            &w.admin,
            rapport::plugins::bundle::pack(&toml, &b.wasm),
            "?grantAll=true",
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_string();
    let r = send(
        &app,
        api(Method::PATCH, &format!("/api/plugins/{id}"), &w.admin).set_json(json!({
            "settings": {"webhook_url": format!("http://{host}/services/T/B/x"), "prefix": "Won"}
        })),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // The catalogue lists what the plugin adds, with the action's form.
    let cat = send(&app, api(Method::GET, "/api/workflows/catalogue", &w.admin))
        .await
        .json();
    assert_eq!(cat["pluginTriggers"][0]["event"], "deal_announced");
    assert_eq!(cat["pluginActions"][0]["action"], "post");
    assert_eq!(cat["pluginActions"][0]["settings"][0]["key"], "text");
    assert_eq!(cat["pluginActions"][0]["settings"][0]["required"], true);

    let plugin = "com.rapport.slack-notify";
    let flow = |steps: serde_json::Value| {
        api(Method::POST, "/api/workflows", &w.admin).set_json(json!({
            "name": "Thank the team", "enabled": true,
            "trigger": {"type": "plugin", "plugin": plugin, "event": "deal_announced"},
            "steps": steps,
        }))
    };
    // Refused with the reason: an action the plugin does not offer, a missing setting, an
    // event nobody declares.
    let r = send(
        &app,
        flow(json!([{"type": "plugin", "plugin": plugin, "action": "tweet"}])),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("steps[0].action"), "{}", r.body);
    let r = send(
        &app,
        flow(json!([{"type": "plugin", "plugin": plugin, "action": "post", "settings": {}}])),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("Fill in Message."), "{}", r.body);
    let r = send(
        &app,
        api(Method::POST, "/api/workflows", &w.admin).set_json(json!({
            "name": "Nobody raises it",
            "trigger": {"type": "plugin", "plugin": plugin, "event": "deal_lost_forever"},
            "steps": [{"type": "note", "body": "x"}],
        })),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("trigger.event"), "{}", r.body);
    let r = send(
        &app,
        flow(json!([
            {"type": "plugin", "plugin": plugin, "action": "post",
             "settings": {"text": "Thank the team for {deal} ({client})"}},
            {"type": "note", "body": "The team was thanked."}
        ])),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let workflow = r.json()["id"].as_str().unwrap().to_string();

    // A won deal: the plugin announces it (its event hook), raises its event, and the run
    // posts the workflow's own message.
    let p = send(&app, api(Method::GET, "/api/pipelines", &w.manager))
        .await
        .json();
    let stage = |name: &str| crate::support::stage_named(&p, name);
    let client = send(
        &app,
        api(Method::POST, "/api/clients", &w.manager)
            .set_json(json!({"type": "company", "companyName": "Acme GmbH"})),
    )
    .await
    .json();
    let deal = send(
        &app,
        api(Method::POST, "/api/opportunities", &w.manager).set_json(json!({
            "name": "Fleet renewal", "clientId": client["id"], "value": "48000",
            "stage": stage("Proposal")
        })),
    )
    .await
    .json();
    let won = send(
        &app,
        api(
            Method::POST,
            &format!("/api/opportunities/{}/move", deal["id"].as_str().unwrap()),
            &w.manager,
        )
        .set_json(json!({"stage": stage("Won")})),
    )
    .await;
    assert_eq!(won.status, StatusCode::OK, "{}", won.body);
    assert!(w.t.state.plugins.wait_idle(IDLE), "event hooks drained");
    let h = rapport::web::scope::handles(&w.t.state);
    for _ in 0..5 {
        if rapport::ops::workflows::run_due(&h).await.unwrap() == 0 {
            break;
        }
    }
    {
        let seen = seen.lock().unwrap();
        assert_eq!(
            seen.len(),
            2,
            "the announcement and the workflow's post: {seen:?}"
        );
        let msg: serde_json::Value = serde_json::from_str(&seen[1]).unwrap();
        assert_eq!(msg["text"], "Thank the team for Fleet renewal (Acme GmbH)");
    }
    let runs = send(
        &app,
        api(
            Method::GET,
            &format!("/api/workflows/{workflow}/runs"),
            &w.admin,
        ),
    )
    .await
    .json();
    assert_eq!(runs["data"].as_array().unwrap().len(), 1, "{runs}");
    assert_eq!(runs["data"][0]["status"], "done", "{runs}");
    assert_eq!(runs["data"][0]["recordType"], "opportunity");
    let run = send(
        &app,
        api(
            Method::GET,
            &format!(
                "/api/workflow-runs/{}",
                runs["data"][0]["id"].as_str().unwrap()
            ),
            &w.admin,
        ),
    )
    .await
    .json();
    assert!(
        run.to_string()
            .contains("Posted to Slack: Thank the team for Fleet renewal (Acme GmbH)"),
        "{run}"
    );

    // The console's builder offers both, and the action's settings form.
    let mut br = Browser::new();
    br.sign_in(&app, "admin@clinic.test", PASSWORD).await;
    let detail = br
        .get(
            &app,
            &format!(
                "/admin/workflows/runs/{}",
                runs["data"][0]["id"].as_str().unwrap()
            ),
        )
        .await
        .body;
    assert!(
        detail.contains("Slack notify: Post to Slack"),
        "the run names the step as the builder does: {detail}"
    );
    let page = br.get(&app, "/admin/workflows/new").await.body;
    assert!(
        page.contains("Slack notify: A won deal was announced in Slack"),
        "{page}"
    );
    assert!(page.contains("Slack notify: Post to Slack"), "{page}");
    let chosen = format!("plugin:{plugin}:deal_announced");
    let new_step = format!("plugin:{plugin}:post");
    let form = [
        ("name", "Console Slack"),
        ("enabled", "1"),
        ("t.type", chosen.as_str()),
        ("newStep", new_step.as_str()),
        ("op", "add_step"),
    ];
    let built = br.hx_post(&app, "/admin/workflows/compose", &form).await;
    assert_eq!(built.status, StatusCode::OK);
    assert!(built.body.contains("s.0.set:text"), "{}", built.body);
    assert!(built.body.contains("Message"), "{}", built.body);
    let mut save: Vec<(&str, &str)> = form[..3].to_vec();
    save.extend([
        ("s.0.type", "plugin"),
        ("s.0.plugin", plugin),
        ("s.0.action", "post"),
    ]);
    let r = br.hx_post(&app, "/admin/workflows", &save).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Step 1: Fill in Message."), "{}", r.body);
    save.push(("s.0.set:text", "Won: {deal}"));
    let r = br.hx_post(&app, "/admin/workflows", &save).await;
    assert!(
        r.status.is_success() || r.status.is_redirection(),
        "{}",
        r.body
    );
    let flows = send(&app, api(Method::GET, "/api/workflows", &w.admin))
        .await
        .json();
    let saved = flows["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "Console Slack")
        .unwrap()
        .clone();
    assert_eq!(saved["trigger"]["event"], "deal_announced");
    assert_eq!(saved["steps"][0]["settings"]["text"], "Won: {deal}");
    assert!(
        built.body.contains("Posts a message to the channel"),
        "the action says what it does: {}",
        built.body
    );

    // Switched off, the plugin's step says why it cannot run, instead of vanishing.
    let r = send(
        &app,
        api(Method::PATCH, &format!("/api/plugins/{id}"), &w.admin)
            .set_json(json!({"enabled": false})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let page = br
        .get(
            &app,
            &format!("/admin/workflows/{}", saved["id"].as_str().unwrap()),
        )
        .await
        .body;
    assert!(page.contains("not offered any more"), "{page}");
    // Its trigger stays chosen and says why no run starts, instead of turning into "Choose…".
    assert!(
        page.contains("deal_announced (not offered any more)"),
        "the saved event stays in the trigger menu: {page}"
    );
    assert!(
        page.contains("so the workflow does not start"),
        "the trigger says why it does not start: {page}"
    );
}
