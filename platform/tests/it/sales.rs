//! Sales through the API: stage moves and history, probability defaults, won/lost rules,
//! quote arithmetic and PDF, contracts and renewals, the forecast on a hand-computed
//! fixture, record rules and tenant isolation.

use actix_web::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::*;

struct Sales {
    t: TestApp,
    manager: String,
    rep: String,
    rep_id: String,
    other_rep: String,
    client: String,
    stages: Vec<Value>,
    pipeline: String,
}

async fn sales() -> Sales {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    let manager_id = t.user(&org, "manager@acme.test", "manager");
    let rep_id = t.user(&org, "rep@acme.test", "sales_rep");
    let other_id = t.user(&org, "rep2@acme.test", "sales_rep");
    let manager = t.token(&org, &manager_id);
    let rep = t.token(&org, &rep_id);
    let other_rep = t.token(&org, &other_id);
    let app = t.service().await;
    let client = send(
        &app,
        api(Method::POST, "/api/clients", &rep)
            .set_json(json!({"type": "company", "companyName": "Initech"})),
    )
    .await
    .json();
    let p = send(&app, api(Method::GET, "/api/pipelines", &rep))
        .await
        .json();
    let pipeline = p["data"][0]["id"].as_str().unwrap().to_string();
    let stages = p["data"][0]["stages"].as_array().unwrap().clone();
    drop(app);
    Sales {
        client: client["id"].as_str().unwrap().into(),
        t,
        manager,
        rep,
        rep_id,
        other_rep,
        stages,
        pipeline,
    }
}

fn stage<'a>(s: &'a Sales, name: &str) -> &'a str {
    s.stages
        .iter()
        .find(|x| x["name"] == name)
        .and_then(|x| x["id"].as_str())
        .unwrap()
}

#[actix_web::test]
async fn new_organizations_get_a_default_pipeline() {
    let s = sales().await;
    let names: Vec<&str> = s
        .stages
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec![
            "Qualification",
            "Needs analysis",
            "Proposal",
            "Negotiation",
            "Won",
            "Lost"
        ]
    );
    assert_eq!(s.stages[2]["probability"], 50);
    assert_eq!(s.stages[4]["kind"], "won");
}

#[actix_web::test]
async fn deals_move_through_stages_with_history_and_probability_defaults() {
    let s = sales().await;
    let app = s.t.service().await;
    let r = send(
        &app,
        api(Method::POST, "/api/opportunities", &s.rep).set_json(json!({
            "name": "Initech renewal", "clientId": s.client, "value": "12000.50", "currency": "eur",
            "stage": stage(&s, "Proposal"), "expectedCloseDate": "2026-12-15"
        })),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let deal = r.json();
    let id = deal["id"].as_str().unwrap();
    assert_eq!(deal["probability"], 50, "defaults from the stage");
    assert_eq!(deal["value"], "12000.50");
    assert_eq!(deal["currency"], "EUR");
    assert_eq!(deal["weightedValue"], "6000.25");
    assert_eq!(deal["assignedTo"], s.rep_id.as_str());

    let moved = send(
        &app,
        api(
            Method::POST,
            &format!("/api/opportunities/{id}/move"),
            &s.rep,
        )
        .set_json(json!({"stage": stage(&s, "Negotiation")})),
    )
    .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    assert_eq!(moved.json()["probability"], 75);
    assert_eq!(moved.json()["stageName"], "Negotiation");

    // An overridden probability sticks until the next move.
    let o = send(
        &app,
        api(Method::PATCH, &format!("/api/opportunities/{id}"), &s.rep)
            .set_json(json!({"probability": 90})),
    )
    .await
    .json();
    assert_eq!(o["probability"], 90);

    // Losing needs a reason from the admin's list.
    let lost = send(
        &app,
        api(
            Method::POST,
            &format!("/api/opportunities/{id}/move"),
            &s.rep,
        )
        .set_json(json!({"stage": stage(&s, "Lost")})),
    )
    .await;
    assert_eq!(lost.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(lost.json()["errors"][0]["field"], "lossReason");
    let bad_reason = send(
        &app,
        api(
            Method::POST,
            &format!("/api/opportunities/{id}/move"),
            &s.rep,
        )
        .set_json(json!({"stage": stage(&s, "Lost"), "lossReason": "Bad vibes"})),
    )
    .await;
    assert_eq!(bad_reason.status, StatusCode::UNPROCESSABLE_ENTITY);
    let lost = send(
        &app,
        api(
            Method::POST,
            &format!("/api/opportunities/{id}/move"),
            &s.rep,
        )
        .set_json(json!({"stage": stage(&s, "Lost"), "lossReason": "Price"})),
    )
    .await
    .json();
    assert_eq!(lost["status"], "lost");
    assert_eq!(lost["probability"], 0);
    assert!(lost["actualCloseDate"].is_string());

    // Winning sets the close date; reopening clears it.
    let won = send(
        &app,
        api(
            Method::POST,
            &format!("/api/opportunities/{id}/move"),
            &s.rep,
        )
        .set_json(json!({"stage": stage(&s, "Won")})),
    )
    .await
    .json();
    assert_eq!(won["status"], "won");
    assert!(won["lossReason"].is_null());
    assert_eq!(
        won["actualCloseDate"],
        chrono::Utc::now().date_naive().to_string()
    );
    let reopened = send(
        &app,
        api(
            Method::POST,
            &format!("/api/opportunities/{id}/move"),
            &s.rep,
        )
        .set_json(json!({"stage": stage(&s, "Proposal")})),
    )
    .await
    .json();
    assert_eq!(reopened["status"], "open");
    assert!(reopened["actualCloseDate"].is_null());

    let h = send(
        &app,
        api(
            Method::GET,
            &format!("/api/opportunities/{id}/history"),
            &s.rep,
        ),
    )
    .await
    .json();
    let path: Vec<&str> = h["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["toStageName"].as_str().unwrap())
        .collect();
    assert_eq!(
        path,
        vec!["Proposal", "Negotiation", "Lost", "Won", "Proposal"]
    );
    assert_eq!(h["data"][1]["fromProbability"], 50);
    assert_eq!(h["data"][1]["toProbability"], 75);

    // A stale move is refused.
    let stale = send(
        &app,
        api(
            Method::POST,
            &format!("/api/opportunities/{id}/move"),
            &s.rep,
        )
        .insert_header(("if-match", "\"v1\""))
        .set_json(json!({"stage": stage(&s, "Negotiation")})),
    )
    .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    // An unknown stage is refused.
    let bad = send(
        &app,
        api(
            Method::POST,
            &format!("/api/opportunities/{id}/move"),
            &s.rep,
        )
        .set_json(json!({"stage": "nope"})),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[actix_web::test]
async fn deal_validation_and_record_rules() {
    let s = sales().await;
    let app = s.t.service().await;
    let bad = send(&app, api(Method::POST, "/api/opportunities", &s.rep).set_json(json!({"value": 12.5, "currency": "euro", "expectedCloseDate": "soon", "probability": 140, "bogus": 1}))).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<String> = bad.json()["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_string())
        .collect();
    for f in [
        "name",
        "clientId",
        "currency",
        "expectedCloseDate",
        "probability",
        "bogus",
    ] {
        assert!(fields.contains(&f.to_string()), "{f} missing in {fields:?}");
    }
    let float_money = send(
        &app,
        api(Method::POST, "/api/opportunities", &s.rep)
            .set_json(json!({"name": "x", "clientId": s.client, "value": "1.005"})),
    )
    .await;
    assert_eq!(float_money.json()["errors"][0]["field"], "value");

    let mine = send(
        &app,
        api(Method::POST, "/api/opportunities", &s.rep)
            .set_json(json!({"name": "Mine", "clientId": s.client, "value": "100"})),
    )
    .await
    .json();
    let id = mine["id"].as_str().unwrap();
    assert_eq!(
        send(
            &app,
            api(
                Method::GET,
                &format!("/api/opportunities/{id}"),
                &s.other_rep
            )
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(
            &app,
            api(
                Method::POST,
                &format!("/api/opportunities/{id}/move"),
                &s.other_rep
            )
            .set_json(json!({"stage": stage(&s, "Won")}))
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(&app, api(Method::GET, "/api/opportunities", &s.other_rep))
            .await
            .json()["data"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        send(&app, api(Method::GET, "/api/opportunities", &s.manager))
            .await
            .json()["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        send(
            &app,
            api(Method::POST, "/api/pipelines", &s.rep)
                .set_json(json!({"name": "x", "stages": []}))
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );

    // Another organization sees none of it.
    let g = s.t.org("Globex");
    let gid = s.t.user(&g, "g@globex.test", "admin");
    let gt = s.t.token(&g, &gid);
    for (m, p) in [
        (Method::GET, format!("/api/opportunities/{id}")),
        (Method::GET, format!("/api/opportunities/{id}/history")),
        (Method::DELETE, format!("/api/opportunities/{id}")),
    ] {
        assert_eq!(
            send(&app, api(m, &p, &gt)).await.status,
            StatusCode::NOT_FOUND,
            "{p}"
        );
    }
    let move_other = send(
        &app,
        api(Method::POST, &format!("/api/opportunities/{id}/move"), &gt)
            .set_json(json!({"stage": stage(&s, "Won")})),
    )
    .await;
    assert_eq!(move_other.status, StatusCode::NOT_FOUND);
    let use_client = send(
        &app,
        api(Method::POST, "/api/opportunities", &gt)
            .set_json(json!({"name": "x", "clientId": s.client, "value": "1"})),
    )
    .await;
    assert_eq!(use_client.status, StatusCode::UNPROCESSABLE_ENTITY);
    let retire = send(
        &app,
        api(
            Method::POST,
            &format!(
                "/api/pipelines/{}/stages/{}/retire",
                s.pipeline,
                stage(&s, "Proposal")
            ),
            &gt,
        )
        .set_json(json!({})),
    )
    .await;
    assert_eq!(retire.status, StatusCode::NOT_FOUND);
    let theirs = send(&app, api(Method::GET, "/api/pipelines", &gt))
        .await
        .json();
    assert_ne!(theirs["data"][0]["id"], s.pipeline.as_str());
}

#[actix_web::test]
async fn retiring_a_stage_moves_its_deals_where_the_admin_says() {
    let s = sales().await;
    let org = {
        let mut c = s.t.pool.get().unwrap();
        rapport::domain::orgs::store::find_org_by_ref(&mut c, "acme")
            .unwrap()
            .unwrap()
    };
    let admin = s.t.user(&org, "admin@acme.test", "admin");
    let admin = s.t.token(&org, &admin);
    let app = s.t.service().await;
    let d = send(&app, api(Method::POST, "/api/opportunities", &s.rep).set_json(json!({"name": "D", "clientId": s.client, "value": "10", "stage": stage(&s, "Needs analysis")}))).await.json();
    let url = format!(
        "/api/pipelines/{}/stages/{}/retire",
        s.pipeline,
        stage(&s, "Needs analysis")
    );
    let refused = send(&app, api(Method::POST, &url, &admin).set_json(json!({}))).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("1 deal"));
    let ok = send(
        &app,
        api(Method::POST, &url, &admin).set_json(json!({"moveTo": stage(&s, "Proposal")})),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.json()["movedDeals"], 1);
    let deal = send(
        &app,
        api(
            Method::GET,
            &format!("/api/opportunities/{}", d["id"].as_str().unwrap()),
            &s.rep,
        ),
    )
    .await
    .json();
    assert_eq!(deal["stageName"], "Proposal");
    let p = send(&app, api(Method::GET, "/api/pipelines", &admin))
        .await
        .json();
    let retired = p["data"][0]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "Needs analysis")
        .unwrap()
        .clone();
    assert_eq!(retired["isActive"], false);
    // Adding, renaming and re-weighting stages.
    let added = send(
        &app,
        api(
            Method::POST,
            &format!("/api/pipelines/{}/stages", s.pipeline),
            &admin,
        )
        .set_json(json!({"name": "Demo", "probability": 35, "color": "teal"})),
    )
    .await;
    assert_eq!(added.status, StatusCode::CREATED);
    let demo = added.json();
    assert_eq!(demo["position"], 4, "inserted before the closing stages");
    let p = send(&app, api(Method::GET, "/api/pipelines", &admin))
        .await
        .json();
    let order: Vec<&str> = p["data"][0]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        vec![
            "Qualification",
            "Needs analysis",
            "Proposal",
            "Negotiation",
            "Demo",
            "Won",
            "Lost"
        ]
    );
    let renamed = send(
        &app,
        api(
            Method::PATCH,
            &format!(
                "/api/pipelines/{}/stages/{}",
                s.pipeline,
                demo["id"].as_str().unwrap()
            ),
            &admin,
        )
        .set_json(json!({"name": "Live demo", "probability": 101})),
    )
    .await;
    assert_eq!(renamed.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[actix_web::test]
async fn quotes_total_exactly_and_render_a_pdf() {
    let s = sales().await;
    let app = s.t.service().await;
    let d = send(&app, api(Method::POST, "/api/opportunities", &s.rep).set_json(json!({"name": "Big deal", "clientId": s.client, "value": "5000", "stage": stage(&s, "Proposal")}))).await.json();
    let deal = d["id"].as_str().unwrap();
    let q = send(
        &app,
        api(Method::POST, "/api/quotes", &s.rep).set_json(json!({
            "opportunityId": deal, "validUntil": "2026-12-31", "terms": "Payment within 30 days.",
            "lines": [
                {"name": "Licences", "quantity": "3", "unitPrice": "19.99", "discount": "10", "taxRate": "19"},
                {"name": "Setup", "quantity": "1", "unitPrice": "0.10", "taxRate": "7.5"},
                {"name": "Training", "quantity": "2.5", "unitPrice": "100"}
            ]
        })),
    )
    .await;
    assert_eq!(q.status, StatusCode::CREATED, "{}", q.body);
    let q = q.json();
    // Licences: 59.97 gross, 5.997 → 6.00 off, (53.97 × 19%) = 10.2543 → 10.25 tax, 64.22.
    // Setup: 0.10, tax 0.0075 → 0.01, 0.11. Training: 250.00.
    assert_eq!(q["lines"][0]["total"], "64.22");
    assert_eq!(q["lines"][1]["total"], "0.11");
    assert_eq!(q["subtotal"], "310.07");
    assert_eq!(q["discount"], "6.00");
    assert_eq!(q["tax"], "10.26");
    assert_eq!(q["total"], "314.33");
    assert_eq!(q["reference"], "Q-00001");
    let second = send(&app, api(Method::POST, "/api/quotes", &s.rep).set_json(json!({"opportunityId": deal, "lines": [{"name": "x", "quantity": "1", "unitPrice": "1"}]}))).await.json();
    assert_eq!(second["number"], 2, "numbered per organization");
    let bad = send(&app, api(Method::POST, "/api/quotes", &s.rep).set_json(json!({"opportunityId": deal, "lines": [{"name": "", "quantity": "0", "unitPrice": "1.234", "discount": "120"}]}))).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.json()["errors"].as_array().unwrap().len(), 4);

    let id = q["id"].as_str().unwrap();
    let pdf = actix_web::test::call_service(
        &app,
        api(Method::GET, &format!("/api/quotes/{id}/pdf"), &s.rep).to_request(),
    )
    .await;
    assert_eq!(pdf.status(), StatusCode::OK);
    assert_eq!(
        pdf.headers().get("content-type").unwrap(),
        "application/pdf"
    );
    let bytes = actix_web::test::read_body(pdf).await;
    assert!(bytes.starts_with(b"%PDF-"), "a PDF header");
    assert!(
        bytes.ends_with(b"%%EOF") || bytes.ends_with(b"%%EOF\n"),
        "a PDF trailer"
    );
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.contains("(314.33 EUR)") || text.contains("314.33"),
        "the total is printed"
    );
    assert!(text.contains("Acme") && text.contains("Q-00001") && text.contains("Initech"));

    // Accepting wins the deal when asked.
    assert_eq!(
        send(
            &app,
            api(Method::POST, &format!("/api/quotes/{id}/status"), &s.rep)
                .set_json(json!({"status": "accepted"}))
        )
        .await
        .status,
        StatusCode::CONFLICT,
        "a draft is sent first"
    );
    send(
        &app,
        api(Method::POST, &format!("/api/quotes/{id}/status"), &s.rep)
            .set_json(json!({"status": "sent"})),
    )
    .await;
    let accepted = send(
        &app,
        api(Method::POST, &format!("/api/quotes/{id}/status"), &s.rep)
            .set_json(json!({"status": "accepted", "winDeal": true})),
    )
    .await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.body);
    assert_eq!(
        send(
            &app,
            api(Method::GET, &format!("/api/opportunities/{deal}"), &s.rep)
        )
        .await
        .json()["status"],
        "won"
    );
    assert_eq!(
        send(
            &app,
            api(Method::GET, &format!("/api/quotes/{id}"), &s.other_rep)
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
}

#[actix_web::test]
async fn contracts_store_documents_and_open_renewal_deals() {
    let s = sales().await;
    let app = s.t.service().await;
    let today = chrono::Utc::now().date_naive();
    let c = send(
        &app,
        api(Method::POST, "/api/contracts", &s.rep).set_json(json!({
            "name": "Initech support", "clientId": s.client, "startDate": (today - chrono::Duration::days(300)).to_string(),
            "endDate": (today + chrono::Duration::days(40)).to_string(), "value": "24000", "currency": "EUR", "noticeDays": 60,
            "renewalTerms": "Renews yearly unless cancelled."
        })),
    )
    .await;
    assert_eq!(c.status, StatusCode::CREATED, "{}", c.body);
    let id = c.json()["id"].as_str().unwrap().to_string();
    let bad = send(&app, api(Method::POST, "/api/contracts", &s.rep).set_json(json!({"name": "x", "clientId": s.client, "startDate": "2026-05-01", "endDate": "2026-01-01"}))).await;
    assert_eq!(bad.json()["errors"][0]["field"], "endDate");

    let up = send(
        &app,
        api(
            Method::PUT,
            &format!("/api/contracts/{id}/document?name=signed.pdf"),
            &s.rep,
        )
        .insert_header(("content-type", "application/pdf"))
        .set_payload("%PDF-1.4 signed"),
    )
    .await;
    assert_eq!(up.status, StatusCode::NO_CONTENT);
    let down = send(
        &app,
        api(
            Method::GET,
            &format!("/api/contracts/{id}/document"),
            &s.rep,
        ),
    )
    .await;
    assert_eq!(down.body, "%PDF-1.4 signed");
    assert!(down
        .header("content-disposition")
        .unwrap()
        .contains("signed.pdf"));

    let due = send(
        &app,
        api(
            Method::GET,
            &format!(
                "/api/contracts?filter[endDate][lte]={}&filter[status]=active",
                today + chrono::Duration::days(90)
            ),
            &s.rep,
        ),
    )
    .await
    .json();
    assert_eq!(due["data"].as_array().unwrap().len(), 1);
    let renewal = send(
        &app,
        api(Method::POST, &format!("/api/contracts/{id}/renew"), &s.rep),
    )
    .await;
    assert_eq!(renewal.status, StatusCode::CREATED, "{}", renewal.body);
    let deal = renewal.json();
    assert_eq!(deal["name"], "Renewal: Initech support");
    // The dashboard lists it for its owner, with the notice date, in the API as on the page.
    let dash = send(&app, api(Method::GET, "/api/dashboard", &s.rep))
        .await
        .json();
    let due_soon = dash["renewals"].as_array().unwrap();
    assert_eq!(due_soon.len(), 1, "{dash}");
    assert_eq!(due_soon[0]["name"], "Initech support");
    assert_eq!(due_soon[0]["value"], "24000.00");
    assert_eq!(
        due_soon[0]["noticeBy"],
        (today - chrono::Duration::days(20)).to_string()
    );
    assert_eq!(due_soon[0]["renewalOpportunityId"], deal["id"]);
    let others = send(&app, api(Method::GET, "/api/dashboard", &s.other_rep))
        .await
        .json();
    assert_eq!(
        others["renewals"],
        json!([]),
        "another rep's contracts stay theirs"
    );
    assert_eq!(deal["value"], "24000.00");
    assert_eq!(
        deal["expectedCloseDate"],
        (today + chrono::Duration::days(40)).to_string()
    );
    assert_eq!(
        send(
            &app,
            api(Method::POST, &format!("/api/contracts/{id}/renew"), &s.rep)
        )
        .await
        .status,
        StatusCode::CONFLICT,
        "one renewal deal per contract"
    );
    assert_eq!(
        send(
            &app,
            api(Method::GET, &format!("/api/contracts/{id}"), &s.other_rep)
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
}

/// A fixture computed by hand: weighted = Σ value × probability per close month.
#[actix_web::test]
async fn the_forecast_matches_a_hand_computed_fixture() {
    let s = sales().await;
    let app = s.t.service().await;
    let base = chrono::Utc::now().date_naive().with_day(1).unwrap();
    let m0 = base + chrono::Duration::days(10);
    let m1 = base.checked_add_months(chrono::Months::new(1)).unwrap() + chrono::Duration::days(5);
    let deals = [
        ("A", "1000.00", "Proposal", m0, "EUR"),      // 50% → 500.00
        ("B", "333.33", "Negotiation", m0, "EUR"),    // 75% → 249.9975
        ("C", "2000.00", "Qualification", m1, "EUR"), // 10% → 200.00
        ("D", "800.00", "Negotiation", m1, "USD"),    // other currency, kept apart
    ];
    let mut ids = Vec::new();
    for (name, value, st, close, cur) in deals {
        let r = send(&app, api(Method::POST, "/api/opportunities", &s.manager).set_json(json!({"name": name, "clientId": s.client, "value": value, "currency": cur, "stage": stage(&s, st), "expectedCloseDate": close.to_string()}))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        ids.push(r.json()["id"].as_str().unwrap().to_string());
    }
    let f = send(
        &app,
        api(
            Method::GET,
            &format!(
                "/api/crm/analytics/pipeline?months=3&from={}",
                base.format("%Y-%m")
            ),
            &s.manager,
        ),
    )
    .await
    .json();
    let month = |m: chrono::NaiveDate, cur: &str| {
        f["months"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["month"] == m.format("%Y-%m").to_string() && x["currency"] == cur)
            .cloned()
            .unwrap()
    };
    let first = month(m0, "USD");
    assert_eq!(first["weighted"], "0", "USD kept apart");
    let first = month(m0, "EUR");
    assert_eq!(first["weighted"], "749.9975");
    assert_eq!(first["bestCase"], "1333.33");
    assert_eq!(first["commit"], "333.33");
    assert_eq!(first["openDeals"], 2);
    assert_eq!(month(m1, "EUR")["weighted"], "200.0000");
    assert_eq!(month(m1, "USD")["weighted"], "600.0000");

    // The bar's arithmetic: moving A from Proposal to Negotiation adds 1000 × (75 − 50)%.
    send(
        &app,
        api(
            Method::POST,
            &format!("/api/opportunities/{}/move", ids[0]),
            &s.manager,
        )
        .set_json(json!({"stage": stage(&s, "Negotiation")})),
    )
    .await;
    let f2 = send(
        &app,
        api(
            Method::GET,
            &format!(
                "/api/crm/analytics/pipeline?months=3&from={}",
                base.format("%Y-%m")
            ),
            &s.manager,
        ),
    )
    .await
    .json();
    let after = f2["months"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["month"] == m0.format("%Y-%m").to_string() && x["currency"] == "EUR")
        .unwrap()
        .clone();
    assert_eq!(after["weighted"], "999.9975");

    // Won deals count as closed-won in their close month and feed the win rates.
    send(
        &app,
        api(
            Method::POST,
            &format!("/api/opportunities/{}/move", ids[1]),
            &s.manager,
        )
        .set_json(json!({"stage": stage(&s, "Won")})),
    )
    .await;
    send(
        &app,
        api(
            Method::POST,
            &format!("/api/opportunities/{}/move", ids[2]),
            &s.manager,
        )
        .set_json(json!({"stage": stage(&s, "Lost"), "lossReason": "Timing"})),
    )
    .await;
    let f3 = send(
        &app,
        api(
            Method::GET,
            "/api/crm/analytics/pipeline?months=3",
            &s.manager,
        ),
    )
    .await
    .json();
    let today_month = chrono::Utc::now().date_naive().format("%Y-%m").to_string();
    let won_month = f3["months"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["month"] == today_month && x["currency"] == "EUR")
        .unwrap()
        .clone();
    assert_eq!(won_month["closedWon"], "333.33");
    let negotiation = f3["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["stage"] == "Negotiation")
        .unwrap()
        .clone();
    assert_eq!(negotiation["closedDeals"], 1);
    assert_eq!(negotiation["historicalWinRate"], "100.0");
    let qualification = f3["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["stage"] == "Qualification")
        .unwrap()
        .clone();
    assert_eq!(qualification["historicalWinRate"], "0.0");

    let perf = send(
        &app,
        api(Method::GET, "/api/crm/analytics/performance", &s.manager),
    )
    .await
    .json();
    let team = perf["reps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["team"] == true && r["currency"] == "EUR")
        .unwrap()
        .clone();
    assert_eq!(team["wonDeals"], 1);
    assert_eq!(team["lostDeals"], 1);
    assert_eq!(team["winRate"], "50.0");
    assert_eq!(team["wonValue"], "333.33");
    // The running totals equal a recount from the deals after all these writes.
    let rollup = |t: &TestApp| -> Vec<(String, String, String, i64, i64, i64)> {
        use diesel::prelude::*;
        use rapport::db::schema::opportunity_rollup as r;
        let mut c = t.pool.get().unwrap();
        r::table
            .filter(r::deals.ne(0))
            .order((r::stage_id, r::currency, r::close_day))
            .select((
                r::stage_id,
                r::currency,
                r::close_day,
                r::deals,
                r::value_cents,
                r::weighted_x100,
            ))
            .load(&mut *c)
            .unwrap()
    };
    let kept = rollup(&s.t);
    {
        let mut c = s.t.pool.get().unwrap();
        let org = rapport::domain::orgs::store::find_org_by_ref(&mut c, "acme")
            .unwrap()
            .unwrap();
        rapport::domain::pipeline::rollup::rebuild(&mut c, &org.id).unwrap();
    }
    assert_eq!(
        kept,
        rollup(&s.t),
        "incremental totals drifted from the deals"
    );
    // A rep's forecast covers only their own deals.
    let rep_view = send(
        &app,
        api(Method::GET, "/api/crm/analytics/pipeline?months=3", &s.rep),
    )
    .await
    .json();
    assert!(rep_view["months"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["openDeals"] == 0));
    // A manager narrowing to a rep sees what the rep sees; "me" is the caller, as on the
    // console's forecast (the same operation answers both).
    let forecast = |query: String, token: &str| {
        let req = api(
            Method::GET,
            &format!("/api/crm/analytics/pipeline?{query}"),
            token,
        );
        async { send(&app, req).await.json() }
    };
    let narrowed = forecast(format!("months=3&owner={}", s.rep_id), &s.manager).await;
    assert_eq!(narrowed, rep_view);
    let me = send(&app, api(Method::GET, "/api/me", &s.manager))
        .await
        .json();
    let manager_id = me["user"]["id"].as_str().unwrap().to_string();
    let mine = forecast("months=3&owner=me".into(), &s.manager).await;
    assert!(
        mine["months"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["openDeals"] != 0),
        "the manager's own deals: {mine}"
    );
    assert_eq!(
        mine,
        forecast(format!("months=3&owner={manager_id}"), &s.manager).await
    );
}

use chrono::Datelike;

#[actix_web::test]
async fn deals_carry_custom_fields_and_contacts() {
    let s = sales().await;
    let app = s.t.service().await;
    let f = send(
        &app,
        api(Method::POST, "/api/custom-fields", &s.manager).set_json(
            json!({"entity": "opportunity", "key": "seats", "label": "Seats", "type": "integer"}),
        ),
    )
    .await;
    assert_eq!(f.status, StatusCode::CREATED, "{}", f.body);
    let person = send(
        &app,
        api(Method::POST, "/api/clients", &s.rep)
            .set_json(json!({"firstName": "Peter", "lastName": "Gibbons"})),
    )
    .await
    .json();
    let d = send(
        &app,
        api(Method::POST, "/api/opportunities", &s.rep).set_json(json!({
            "name": "Seats deal", "clientId": s.client, "value": "10", "customFields": {"seats": 40},
            "contacts": [{"clientId": person["id"], "role": "Champion"}]
        })),
    )
    .await;
    assert_eq!(d.status, StatusCode::CREATED, "{}", d.body);
    let d = d.json();
    assert_eq!(d["customFields"]["seats"], 40);
    assert_eq!(d["contacts"][0]["role"], "Champion");
    let bad = send(&app, api(Method::POST, "/api/opportunities", &s.rep).set_json(json!({"name": "x", "clientId": s.client, "value": "1", "customFields": {"seats": "many"}, "contacts": [{"clientId": s.client, "role": ""}]}))).await;
    let fields: Vec<String> = bad.json()["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_string())
        .collect();
    assert!(
        fields.contains(&"customFields.seats".to_string())
            && fields.contains(&"contacts[0].role".to_string())
            && fields.contains(&"contacts[0].clientId".to_string()),
        "{fields:?}"
    );
    let found = send(
        &app,
        api(
            Method::GET,
            "/api/opportunities?filter[customFields.seats][gte]=30",
            &s.rep,
        ),
    )
    .await
    .json();
    assert_eq!(found["data"].as_array().unwrap().len(), 1);
    let none = send(
        &app,
        api(
            Method::GET,
            "/api/opportunities?filter[customFields.seats][gte]=50",
            &s.rep,
        ),
    )
    .await
    .json();
    assert_eq!(none["data"].as_array().unwrap().len(), 0);
    let mut b = Browser::new();
    b.sign_in(&app, "manager@acme.test", PASSWORD).await;
    let page = b
        .get(&app, "/admin/custom-fields?entity=opportunity")
        .await
        .body;
    assert!(
        page.contains("seats") && page.contains("name=\"entity\" value=\"opportunity\""),
        "{page}"
    );
}
