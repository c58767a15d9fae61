//! The console in a real headless Chromium: a sales rep drags a deal on the board.
//! Runs when `RAPPORT_BROWSER_TESTS=1` (set by `.ci/run`, which installs Chromium and
//! the driver script's package); elsewhere it says it was skipped.

use std::process::{Command, Stdio};

use actix_web::http::Method;
use serde_json::json;

use crate::support::*;

/// `rapport serve` over the test's database, with its own data directory (search index,
/// plugin cache), on a free port.
fn serve(t: &TestApp) -> (Server, u16) {
    let port = free_port();
    let url = match t.target.backend {
        rapport::db::Backend::Postgres => t.target.location.clone(),
        rapport::db::Backend::Sqlite => format!("sqlite://{}", t.target.location),
    };
    let data =
        std::env::temp_dir().join(format!("rapport-browser-{port}-{}", uuid::Uuid::new_v4()));
    let server = Server(
        Command::new(env!("CARGO_BIN_EXE_rapport"))
            .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
            .env("DATABASE_URL", &url)
            .env("RAPPORT_DATA_DIR", &data)
            .env("RAPPORT_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until_up(port);
    (server, port)
}

/// Runs a driver script of `tests/browser` against the server on `port`, signed in as
/// `login`, and returns what it printed; the test fails if the script did.
fn run_browser(script: &str, port: u16, login: &str, args: &[&str]) -> String {
    let script = format!("{}/../tests/browser/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("node")
        .arg(&script)
        .arg(format!("http://127.0.0.1:{port}"))
        .args([login, PASSWORD])
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "browser ({script}): {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn enabled() -> bool {
    if std::env::var("RAPPORT_BROWSER_TESTS").ok().as_deref() == Some("1") {
        return true;
    }
    eprintln!("skipped: set RAPPORT_BROWSER_TESTS=1 with Chromium and `npm ci` in tests/browser to run it");
    false
}

/// The bar on a phone-sized screen: a misspelt name in the header box finds the
/// client, and the keyboard opens it; another rep's client never shows.
#[actix_web::test]
async fn a_rep_finds_a_client_by_a_misspelt_name_in_the_header_search() {
    if !enabled() {
        return;
    }
    let t = TestApp::new().await;
    let org = t.org("Acme");
    let rep = t.user(&org, "rep@acme.test", "sales_rep");
    let other = t.user(&org, "rep2@acme.test", "sales_rep");
    let app = t.service().await;
    for (token, first) in [
        (t.token(&org, &rep), "Margaret"),
        (t.token(&org, &other), "Margarete"),
    ] {
        let r = send(
            &app,
            api(Method::POST, "/api/clients", &token).set_json(
                json!({"type": "individual", "firstName": first, "lastName": "Hamilton"}),
            ),
        )
        .await;
        assert_eq!(r.status, actix_web::http::StatusCode::CREATED, "{}", r.body);
    }
    let (_server, port) = serve(&t);
    let stdout = run_browser(
        "search.mjs",
        port,
        "rep@acme.test",
        &["mrgaret hamiltn", "Margaret Hamilton", "Margarete"],
    );
    assert!(stdout.contains("opened"), "{stdout}");
}

#[actix_web::test]
async fn a_rep_drags_a_deal_and_the_forecast_moves_by_value_times_probability() {
    if !enabled() {
        return;
    }
    let t = TestApp::new().await;
    let org = t.org("Acme");
    let rep = t.user(&org, "rep2@acme.test", "sales_rep");
    let token = t.token(&org, &rep);
    let app = t.service().await;
    let client = send(
        &app,
        api(Method::POST, "/api/clients", &token)
            .set_json(json!({"type": "company", "companyName": "Initech"})),
    )
    .await
    .json();
    let pipelines = send(&app, api(Method::GET, "/api/pipelines", &token))
        .await
        .json();
    let stage = |name: &str| crate::support::stage_named(&pipelines, name);
    let close = chrono::Utc::now().date_naive() + chrono::Duration::days(3);
    let deal = send(
        &app,
        api(Method::POST, "/api/opportunities", &token).set_json(json!({
            "name": "Initech expansion", "clientId": client["id"], "value": "10000.00",
            "stage": stage("Proposal"), "expectedCloseDate": close.to_string()
        })),
    )
    .await
    .json();
    let forecast_url = format!(
        "/api/crm/analytics/pipeline?months=1&from={}",
        close.format("%Y-%m")
    );
    let weighted = |f: &serde_json::Value| {
        f["months"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["currency"] == "USD")
            .unwrap()["weighted"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let before = weighted(
        &send(&app, api(Method::GET, &forecast_url, &token))
            .await
            .json(),
    );
    assert_eq!(before, "5000.0000");

    let (_server, port) = serve(&t);
    run_browser(
        "kanban.mjs",
        port,
        "rep2@acme.test",
        &["Initech expansion", "Negotiation"],
    );

    let id = deal["id"].as_str().unwrap();
    let now = send(
        &app,
        api(Method::GET, &format!("/api/opportunities/{id}"), &token),
    )
    .await
    .json();
    assert_eq!(now["stageName"], "Negotiation");
    let after = weighted(
        &send(&app, api(Method::GET, &forecast_url, &token))
            .await
            .json(),
    );
    // 10000 × (75 − 50)% = 2500 more.
    assert_eq!(after, "7500.0000");
    let history = send(
        &app,
        api(
            Method::GET,
            &format!("/api/opportunities/{id}/history"),
            &token,
        ),
    )
    .await
    .json();
    let last = history["data"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["fromStageName"].as_str(), last["toStageName"].as_str()),
        (Some("Proposal"), Some("Negotiation"))
    );
    assert_eq!(last["movedBy"], rep.as_str());
}

/// The interactions bar: on a phone, a rep logs a call from the client list in under five
/// interactions and it tops the timeline; a client who opted out of phone warns first.
#[actix_web::test]
async fn a_rep_logs_a_call_from_a_phone_and_an_opt_out_warns_first() {
    if !enabled() {
        return;
    }
    let t = TestApp::new().await;
    let org = t.org("Acme");
    let rep = t.user(&org, "rep@acme.test", "sales_rep");
    let token = t.token(&org, &rep);
    let app = t.service().await;
    let mut ids = Vec::new();
    for last in ["Lovelace", "Babbage"] {
        let r = send(
            &app,
            api(Method::POST, "/api/clients", &token)
                .set_json(json!({"type": "individual", "firstName": "Ada", "lastName": last})),
        )
        .await;
        assert_eq!(r.status, actix_web::http::StatusCode::CREATED, "{}", r.body);
        ids.push(r.json()["id"].as_str().unwrap().to_string());
    }
    let r = send(
        &app,
        api(
            Method::PUT,
            &format!("/api/clients/{}/preferences", ids[1]),
            &token,
        )
        .set_json(
            json!({"channels": {"phone": {"status": "opt_out", "source": "asked on a call"}}}),
        ),
    )
    .await;
    assert_eq!(r.status, actix_web::http::StatusCode::OK, "{}", r.body);
    let (_server, port) = serve(&t);
    let stdout = run_browser(
        "quicklog.mjs",
        port,
        "rep@acme.test",
        &["Ada Lovelace", "Ada Babbage"],
    );
    assert!(stdout.contains("warned before logging"), "{stdout}");
    let timeline = send(
        &app,
        api(
            Method::GET,
            &format!("/api/clients/{}/interactions", ids[0]),
            &token,
        ),
    )
    .await
    .json();
    assert_eq!(timeline["data"][0]["content"], "Agreed to a demo next week");
    assert_eq!(timeline["data"][0]["type"], "call");
}

/// Drag-and-drop onto a deal's Files card, a file attached to a call from the timeline, and
/// the client list's Excel export, in a real browser.
#[actix_web::test]
async fn a_manager_drops_files_on_a_deal_and_a_call_and_exports_to_excel() {
    if !enabled() {
        return;
    }
    let t = TestApp::new().await;
    let org = t.org("Acme");
    let manager = t.user(&org, "manager@acme.test", "manager");
    let token = t.token(&org, &manager);
    let app = t.service().await;
    let client = send(
        &app,
        api(Method::POST, "/api/clients", &token)
            .set_json(json!({"type": "company", "companyName": "Initech"})),
    )
    .await
    .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let deal = send(
        &app,
        api(Method::POST, "/api/opportunities", &token).set_json(json!({
            "name": "Printers", "clientId": client, "value": "1000", "currency": "usd"
        })),
    )
    .await
    .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = send(
        &app,
        api(
            Method::POST,
            &format!("/api/clients/{client}/interactions"),
            &token,
        )
        .set_json(json!({"type": "call", "subject": "Kick-off call"})),
    )
    .await;
    assert_eq!(r.status, actix_web::http::StatusCode::CREATED, "{}", r.body);
    let (_server, port) = serve(&t);
    let stdout = run_browser("files.mjs", port, "manager@acme.test", &[&deal, &client]);
    assert!(
        stdout.contains("dropped on the deal")
            && stdout.contains("attached to the call")
            && stdout.contains("exported"),
        "{stdout}"
    );
    // The files are where the browser put them.
    let files = send(
        &app,
        api(
            Method::GET,
            &format!("/api/opportunities/{deal}/attachments"),
            &token,
        ),
    )
    .await
    .json();
    assert_eq!(files["data"][0]["fileName"], "brief.pdf");
    assert_eq!(files["data"][0]["contentType"], "application/pdf");
}

/// The client list sorts from its column headers in a browser, both ways, without asking
/// anything: the bulk form around the table passed its confirmation question on to every
/// header link, so a click asked "Apply this to the selected clients?" and, answered no,
/// did not sort.
#[actix_web::test]
async fn the_client_list_sorts_from_its_headers_without_a_question() {
    if !enabled() {
        return;
    }
    let t = TestApp::new().await;
    let org = t.org("Acme");
    let rep = t.user(&org, "rep@acme.test", "sales_rep");
    let token = t.token(&org, &rep);
    let app = t.service().await;
    for (first, status) in [("Zed", "customer"), ("Amy", "prospect"), ("Bob", "lead")] {
        let r = send(
            &app,
            api(Method::POST, "/api/clients", &token).set_json(json!({
                "type": "individual", "firstName": first, "lastName": "Sorted", "status": status
            })),
        )
        .await;
        assert_eq!(r.status, actix_web::http::StatusCode::CREATED, "{}", r.body);
    }
    let (_server, port) = serve(&t);
    let stdout = run_browser("sort.mjs", port, "rep@acme.test", &[]);
    assert!(!stdout.contains("dialog:"), "{stdout}");
    assert!(
        stdout.contains("sort=status: Zed Sorted, Bob Sorted, Amy Sorted"),
        "{stdout}"
    );
    assert!(
        stdout.contains("sort=-status: Amy Sorted, Bob Sorted, Zed Sorted"),
        "{stdout}"
    );
}
