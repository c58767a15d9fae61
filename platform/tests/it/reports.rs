//! Reports through the API, on both backends: each standard report against a hand-computed
//! answer, a rep's reports counting only the rep's own records, JSON/CSV/XLSX, custom
//! reports (every aggregate, date buckets, filters, the errors that name the wrong part),
//! private and shared reports, dashboards and their schedules.

use actix_http::Request;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{api, send, Resp, TestApp};

pub struct Fixture {
    pub t: TestApp,
    pub org: String,
    pub manager: String,
    pub manager_id: String,
    pub rep1: String,
    pub rep1_id: String,
    pub rep2: String,
    pub pipeline: String,
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

async fn ok<S, B>(svc: &S, method: Method, path: &str, token: &str, body: Option<Value>) -> Value
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let r = call(svc, method, path, token, body).await;
    assert!(r.status.is_success(), "{path}: {} {}", r.status, r.body);
    if r.body.is_empty() {
        Value::Null
    } else {
        r.json()
    }
}

/// A manager and two reps; rep 1 wins 1,000 and loses 500 ("Price"), rep 2 wins 2,000 and
/// has 300 open in Negotiation (75%) expected this month; rep 1 logs two calls, rep 2 one
/// meeting. Every deal starts in Proposal.
pub async fn fixture() -> Fixture {
    let t = TestApp::new().await;
    let org = t.org("Reports");
    let manager_id = t.user(&org, "manager@reports.test", "manager");
    let rep1_id = t.user(&org, "rep1@reports.test", "sales_rep");
    let rep2_id = t.user(&org, "rep2@reports.test", "sales_rep");
    let (manager, rep1, rep2) = (
        t.token(&org, &manager_id),
        t.token(&org, &rep1_id),
        t.token(&org, &rep2_id),
    );
    let app = t.service().await;
    let p = ok(&app, Method::GET, "/api/pipelines", &manager, None).await;
    let pipeline = p["data"][0]["id"].as_str().unwrap().to_string();
    let stage = |name: &str| crate::support::stage_named(&p, name);
    let today = chrono::Utc::now().date_naive().to_string();
    let mut clients = Vec::new();
    for (token, name) in [(&rep1, "Initech"), (&rep2, "Globex")] {
        let c = ok(
            &app,
            Method::POST,
            "/api/clients",
            token,
            Some(json!({"type": "company", "companyName": name, "status": "customer", "source": "web"})),
        )
        .await;
        clients.push(c["id"].as_str().unwrap().to_string());
    }
    let deal = |client: &str, name: &str, value: &str, source: &str| {
        json!({"name": name, "clientId": client, "value": value, "currency": "EUR",
               "stage": stage("Proposal"), "source": source, "expectedCloseDate": today})
    };
    let mut ids = Vec::new();
    for (token, client, name, value, source) in [
        (&rep1, &clients[0], "D1", "1000", "web"),
        (&rep1, &clients[0], "D2", "500", "web"),
        (&rep2, &clients[1], "D3", "2000", "referral"),
        (&rep2, &clients[1], "D4", "300", "referral"),
    ] {
        let d = ok(
            &app,
            Method::POST,
            "/api/opportunities",
            token,
            Some(deal(client, name, value, source)),
        )
        .await;
        ids.push(d["id"].as_str().unwrap().to_string());
    }
    for (token, id, to, reason) in [
        (&rep1, &ids[0], "Won", None),
        (&rep1, &ids[1], "Lost", Some("Price")),
        (&rep2, &ids[2], "Won", None),
        (&rep2, &ids[3], "Negotiation", None),
    ] {
        let mut body = json!({"stage": stage(to)});
        if let Some(r) = reason {
            body["lossReason"] = json!(r);
        }
        ok(
            &app,
            Method::POST,
            &format!("/api/opportunities/{id}/move"),
            token,
            Some(body),
        )
        .await;
    }
    for (token, client, kind) in [
        (&rep1, &clients[0], "call"),
        (&rep1, &clients[0], "call"),
        (&rep2, &clients[1], "meeting"),
    ] {
        ok(
            &app,
            Method::POST,
            &format!("/api/clients/{client}/interactions"),
            token,
            Some(json!({"type": kind, "subject": "Talk", "status": "completed"})),
        )
        .await;
    }
    drop(app);
    Fixture {
        t,
        org: org.id,
        manager,
        manager_id,
        rep1,
        rep1_id,
        rep2,
        pipeline,
    }
}

/// `key` of each item of an array.
fn strings(items: &Value, key: &str) -> Vec<String> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i[key].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The rows of a report whose `key` column equals `value`.
fn rows<'a>(report: &'a Value, key: &str, value: &str) -> Vec<&'a Value> {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r[key] == value)
        .collect()
}

fn row<'a>(report: &'a Value, key: &str, value: &str) -> &'a Value {
    let found = rows(report, key, value);
    assert_eq!(found.len(), 1, "{key}={value} in {report}");
    found[0]
}

#[actix_web::test]
async fn standard_reports_match_a_hand_computed_answer() {
    let f = fixture().await;
    let app = f.t.service().await;
    let get = |kind: &str, token: &str| {
        let path = format!("/api/crm/reports/{kind}");
        let token = token.to_string();
        let app = &app;
        async move { ok(app, Method::GET, &path, &token, None).await }
    };

    let by_rep = get("sales-by-rep", &f.manager).await;
    assert_eq!(by_rep["type"], "sales-by-rep");
    let r1 = row(&by_rep, "rep", "rep1@reports.test");
    assert_eq!(r1["wonDeals"], 1);
    assert_eq!(r1["lostDeals"], 1);
    assert_eq!(r1["wonValue"], "1000");
    assert_eq!(r1["winRate"], "50");
    let r2 = row(&by_rep, "rep", "rep2@reports.test");
    assert_eq!(r2["wonValue"], "2000");
    assert_eq!(r2["winRate"], "100");
    // The bigger seller comes first.
    assert_eq!(by_rep["rows"][0]["rep"], "rep2@reports.test");

    // A rep's report counts only the rep's own deals.
    let mine = get("sales-by-rep", &f.rep1).await;
    assert_eq!(mine["rows"].as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(mine["rows"][0]["rep"], "rep1@reports.test");

    let by_stage = get("sales-by-stage", &f.manager).await;
    let n = row(&by_stage, "stage", "Negotiation");
    assert_eq!(n["openDeals"], 1);
    assert_eq!(n["value"], "300");
    assert_eq!(n["weighted"], "225");
    assert!(
        rows(&by_stage, "stage", "Won").is_empty(),
        "open deals only"
    );
    let one = get(
        &format!("sales-by-stage?pipeline={}", f.pipeline),
        &f.manager,
    )
    .await;
    assert_eq!(one["rows"], by_stage["rows"]);
    let none = get("sales-by-stage?pipeline=elsewhere", &f.manager).await;
    assert_eq!(none["rows"], json!([]));

    let by_source = get("sales-by-source", &f.manager).await;
    let web = row(&by_source, "source", "web");
    assert_eq!(
        (
            web["newDeals"].clone(),
            web["won"].clone(),
            web["lost"].clone()
        ),
        (json!(2), json!(1), json!(1))
    );
    let referral = row(&by_source, "source", "referral");
    assert_eq!(referral["wonValue"], "2000");

    let acts = get("activity-by-rep", &f.manager).await;
    assert_eq!(row(&acts, "rep", "rep1@reports.test")["calls"], 2);
    assert_eq!(row(&acts, "rep", "rep2@reports.test")["meetings"], 1);
    let my_acts = get("activity-by-rep", &f.rep2).await;
    assert_eq!(my_acts["rows"].as_array().unwrap().len(), 1);

    // Furthest stages: D1, D3 won; D4 in Negotiation; D2 lost from Proposal.
    let funnel = get("conversion-funnel", &f.manager).await;
    assert_eq!(funnel["chart"]["type"], "funnel");
    let reached: Vec<(String, i64)> = funnel["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["stage"].as_str().unwrap().to_string(),
                r["reached"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        reached,
        vec![
            ("Qualification".into(), 4),
            ("Needs analysis".into(), 4),
            ("Proposal".into(), 4),
            ("Negotiation".into(), 3),
            ("Won".into(), 2)
        ]
    );
    assert_eq!(row(&funnel, "stage", "Won")["fromPrevious"], "66.7");
    assert_eq!(row(&funnel, "stage", "Won")["fromStart"], "50");

    let lost = get("lost-reasons", &f.manager).await;
    let price = row(&lost, "reason", "Price");
    assert_eq!(
        (
            price["lostDeals"].clone(),
            price["lostValue"].clone(),
            price["share"].clone()
        ),
        (json!(1), json!("500"), json!("100"))
    );

    let velocity = get("deal-velocity", &f.manager).await;
    let v = &velocity["rows"][0];
    assert_eq!(v["openDeals"], 1);
    assert_eq!(v["winRate"], "66.7");
    assert_eq!(v["averageDeal"], "1500");

    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let fva = get("forecast-vs-actual", &f.manager).await;
    let m = row(&fva, "month", &month);
    assert_eq!(m["actual"], "3000");
    // The open deal at 75%, the won and the lost ones at the 50% they had in Proposal.
    assert_eq!(m["forecast"], "1975");

    let bench = get("rep-benchmark", &f.manager).await;
    // Won values 1,000 (rep 1), 2,000 (rep 2), 0 (the manager): the median is 1,000.
    assert_eq!(row(&bench, "rep", "Team median")["wonValue"], "1000");
    assert_eq!(
        row(&bench, "rep", "rep2@reports.test")["wonVsMedian"],
        "200"
    );

    let growth = get("segment-growth", &f.manager).await;
    assert_eq!(growth["rows"], json!([]));

    // Unknown report, reversed period, bad format.
    let r = call(&app, Method::GET, "/api/crm/reports/nope", &f.manager, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(
        &app,
        Method::GET,
        "/api/crm/reports/sales-by-rep?from=2026-02-01&to=2026-01-01",
        &f.manager,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.is_problem());
    assert_eq!(r.json()["errors"][0]["field"], "from");
    let r = call(
        &app,
        Method::GET,
        "/api/crm/reports/sales-by-rep?format=docx",
        &f.manager,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    // A period with nothing in it.
    let empty = get("sales-by-rep?from=2020-01-01&to=2020-12-31", &f.manager).await;
    assert_eq!(empty["rows"], json!([]));
}

#[actix_web::test]
async fn reports_download_as_csv_and_xlsx() {
    let f = fixture().await;
    let app = f.t.service().await;
    let csv = call(
        &app,
        Method::GET,
        "/api/crm/reports/sales-by-rep?format=csv",
        &f.manager,
        None,
    )
    .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    assert!(csv
        .header("content-disposition")
        .unwrap()
        .contains("sales-by-rep-"));
    let mut lines = csv.body.lines();
    assert_eq!(
        lines.next().unwrap(),
        "Rep,Currency,Won deals,Lost deals,Won value,Win rate (%),Average won deal"
    );
    assert_eq!(
        lines.next().unwrap(),
        "rep2@reports.test,EUR,1,0,2000,100,2000"
    );
    let xlsx = send(
        &app,
        api(
            Method::GET,
            "/api/crm/reports/lost-reasons?format=xlsx",
            &f.manager,
        ),
    )
    .await;
    assert_eq!(xlsx.status, StatusCode::OK);
    assert!(xlsx
        .header("content-type")
        .unwrap()
        .contains("spreadsheetml"));
    assert!(xlsx.bytes.starts_with(b"PK"), "a zip");
    // The workbook reads back with the figures as numbers.
    let mut book: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(xlsx.bytes.clone())).unwrap();
    use calamine::Reader;
    let sheet = book.worksheet_range_at(0).unwrap().unwrap();
    assert_eq!(
        sheet.get_value((1, 0)),
        Some(&calamine::Data::String("Price".into()))
    );
    assert_eq!(sheet.get_value((1, 2)), Some(&calamine::Data::Float(1.0)));

    // A PDF: the title, the period, the chart's bars and the table's rows.
    let pdf = send(
        &app,
        api(
            Method::GET,
            "/api/crm/reports/sales-by-rep?format=pdf",
            &f.manager,
        ),
    )
    .await;
    assert_eq!(pdf.status, StatusCode::OK);
    assert_eq!(pdf.header("content-type"), Some("application/pdf"));
    assert!(pdf
        .header("content-disposition")
        .unwrap()
        .ends_with(".pdf\""));
    assert!(pdf.bytes.starts_with(b"%PDF-"));
    let text = String::from_utf8_lossy(&pdf.bytes);
    for shown in [
        "(Sales by rep)",
        "(rep2@reports.test)",
        "(rep1@reports.test)",
        "(2,000.00)",
        " re",
    ] {
        assert!(text.contains(shown), "{shown} missing from the PDF");
    }
    let bad = call(
        &app,
        Method::GET,
        "/api/crm/reports/sales-by-rep?format=doc",
        &f.manager,
        None,
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("pdf"), "{}", bad.body);
}

#[actix_web::test]
async fn custom_reports_group_sum_filter_and_name_their_errors() {
    let f = fixture().await;
    let app = f.t.service().await;
    let preview = |token: &str, definition: Value| {
        let token = token.to_string();
        let app = &app;
        async move {
            call(
                app,
                Method::POST,
                "/api/reports/preview",
                &token,
                Some(json!({"definition": definition})),
            )
            .await
        }
    };
    // Won value by owner.
    let def = json!({"entity": "deals", "filters": [{"field": "status", "op": "is", "value": "won"}],
        "groupBy": {"field": "owner"}, "aggregates": [{"fn": "sum", "field": "value"}, {"fn": "count"}, {"fn": "avg", "field": "probability"}, {"fn": "max", "field": "value"}]});
    let r = preview(&f.manager, def.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let rep = r.json();
    let cols: Vec<&str> = rep["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["label"].as_str().unwrap())
        .collect();
    assert_eq!(
        cols,
        vec![
            "Owner",
            "Currency",
            "Sum of value",
            "Number of deals",
            "Average of probability (%)",
            "Maximum of value"
        ]
    );
    assert_eq!(rep["rows"][0]["group"], "rep2@reports.test");
    assert_eq!(rep["rows"][0]["value0"], "2000");
    assert_eq!(rep["rows"][0]["value1"], 1);
    assert_eq!(rep["rows"][0]["value2"], "100");
    assert_eq!(rep["rows"][1]["value0"], "1000");
    // The rep sees only their own.
    let mine = preview(&f.rep1, def).await.json();
    assert_eq!(mine["rows"].as_array().unwrap().len(), 1);
    assert_eq!(mine["rows"][0]["group"], "rep1@reports.test");

    // Deals created by month; min of value; any-of filters.
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let r = preview(&f.manager, json!({"entity": "deals", "match": "any",
        "filters": [{"field": "value", "op": "gte", "value": "1500"}, {"field": "lossReason", "op": "is", "value": "Price"}],
        "groupBy": {"field": "createdAt", "bucket": "month"}, "aggregates": [{"fn": "count"}, {"fn": "min", "field": "value"}], "chart": "line"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let rep = r.json();
    assert_eq!(
        rep["rows"],
        json!([{"group": month, "currency": "EUR", "value0": 2, "value1": "500"}])
    );
    assert_eq!(rep["chart"]["type"], "line");

    // Every bucket names its period; a week by its Monday.
    for (bucket, len) in [("day", 10), ("week", 10), ("quarter", 7), ("year", 4)] {
        let rep = preview(
            &f.manager,
            json!({"entity": "interactions", "groupBy": {"field": "occurredAt", "bucket": bucket}}),
        )
        .await
        .json();
        let label = rep["rows"][0]["group"]
            .as_str()
            .unwrap_or_else(|| panic!("{bucket}: {rep}"));
        assert_eq!(label.len(), len, "{bucket}: {label}");
        assert_eq!(rep["rows"][0]["value0"], 3, "{bucket}");
    }
    let week = preview(
        &f.manager,
        json!({"entity": "interactions", "groupBy": {"field": "occurredAt", "bucket": "week"}}),
    )
    .await
    .json();
    let monday =
        chrono::NaiveDate::parse_from_str(week["rows"][0]["group"].as_str().unwrap(), "%Y-%m-%d")
            .unwrap();
    use chrono::Datelike;
    assert_eq!(monday.weekday(), chrono::Weekday::Mon);

    // Clients listed with chosen columns; a quote in a filter value is just text.
    let r = preview(
        &f.manager,
        json!({"entity": "clients", "columns": ["name", "status", "owner"],
        "filters": [{"field": "company", "op": "isNot", "value": "x') OR 1=1 --"}]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(strings(&r.json()["rows"], "name").len(), 2);
    let r = preview(
        &f.manager,
        json!({"entity": "clients", "columns": ["name"],
        "filters": [{"field": "company", "op": "is", "value": "x') OR 1=1 --"}]}),
    )
    .await;
    assert_eq!(r.json()["rows"], json!([]));

    // Each wrong part is named.
    let r = preview(&f.manager, json!({"entity": "deals", "filters": [{"field": "colour", "op": "is", "value": "red"}, {"field": "value", "op": "contains", "value": "1"}],
        "groupBy": {"field": "owner"}, "aggregates": [{"fn": "sum", "field": "name"}]})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        strings(&r.json()["errors"], "field"),
        vec!["filters[0].field", "filters[1].op", "aggregates[0].field"]
    );
    let r = preview(&f.manager, json!({"entity": "planets"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = preview(
        &f.manager,
        json!({"entity": "deals", "groupBy": {"field": "owner"}, "surprise": 1}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.json()["errors"][0]["field"], "surprise");

    // Scores as figures, against the stored scores: each client counted once, and a client
    // not scored yet still counted, its score empty.
    let scored: Vec<(String, i32, i64)> = {
        use diesel::prelude::*;
        use rapport::db::schema::{client_scores as s, clients as c, organizations as o};
        let mut conn = f.t.pool.get().unwrap();
        // The deals are in euros: the lifetime value counts the organization's currency.
        diesel::update(o::table.find(&f.org))
            .set(o::default_currency.eq("EUR"))
            .execute(&mut conn)
            .unwrap();
        rapport::domain::scores::compute_org(&mut conn, &f.org).unwrap();
        s::table
            .inner_join(c::table.on(c::id.eq(s::client_id)))
            .filter(s::organization_id.eq(&f.org))
            .order(c::display_name)
            .select((c::display_name, s::engagement, s::lifetime_value_cents))
            .load(&mut conn)
            .unwrap()
    };
    assert_eq!(scored.len(), 2, "{scored:?}");
    assert!(scored[0].2 >= 200_000, "Globex won 2,000: {scored:?}");
    ok(
        &app,
        Method::POST,
        "/api/clients",
        &f.manager,
        Some(json!({"type": "company", "companyName": "Umbrella", "status": "lead"})),
    )
    .await;
    let num = |v: &Value| v.as_str().and_then(|s| s.parse::<f64>().ok());
    let r = preview(&f.manager, json!({"entity": "clients", "dateField": "none",
        "groupBy": {"field": "status"},
        "aggregates": [{"fn": "count"}, {"fn": "avg", "field": "engagement"}, {"fn": "max", "field": "engagement"}]})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let rep = r.json();
    let customers = row(&rep, "group", "Customer");
    assert_eq!(customers["value0"], 2, "{rep}");
    let avg = f64::from(scored[0].1 + scored[1].1) / 2.0;
    assert_eq!(num(&customers["value1"]), Some(avg), "{rep}");
    assert_eq!(
        num(&customers["value2"]),
        Some(f64::from(scored[0].1.max(scored[1].1))),
        "{rep}"
    );
    let leads = row(&rep, "group", "Lead");
    assert_eq!(leads["value0"], 1, "{rep}");
    assert_eq!(leads["value1"], Value::Null, "{rep}");
    // Listed with a score and filtered on one: the lifetime value in units, with its currency.
    let r = preview(
        &f.manager,
        json!({"entity": "clients", "dateField": "none",
        "columns": ["name", "lifetimeValue", "engagement"],
        "filters": [{"field": "lifetimeValue", "op": "gte", "value": "1"}]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let rep = r.json();
    assert_eq!(strings(&rep["rows"], "name"), vec!["Globex", "Initech"]);
    let globex = row(&rep, "name", "Globex");
    assert_eq!(
        num(&globex["lifetimeValue"]),
        Some(scored[0].2 as f64 / 100.0),
        "{rep}"
    );
    assert_eq!(num(&globex["engagement"]), Some(f64::from(scored[0].1)));
    assert!(
        globex["currency"].as_str().is_some_and(|c| !c.is_empty()),
        "{rep}"
    );
}

#[actix_web::test]
async fn saved_reports_are_private_until_shared_and_dashboards_gather_them() {
    let f = fixture().await;
    let app = f.t.service().await;
    let def = json!({"entity": "deals", "groupBy": {"field": "stage"}, "aggregates": [{"fn": "sum", "field": "value"}], "chart": "bar"});
    let created = call(
        &app,
        Method::POST,
        "/api/reports",
        &f.rep1,
        Some(json!({"name": "My stages", "definition": def})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.json()["id"].as_str().unwrap().to_string();
    let etag = created.header("etag").unwrap().to_string();
    // Private: another rep does not find it; sharing needs report:write.
    let r = call(
        &app,
        Method::GET,
        &format!("/api/reports/{id}"),
        &f.rep2,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(
        &app,
        Method::POST,
        "/api/reports",
        &f.rep1,
        Some(json!({"name": "Shared", "definition": def, "sharedWith": "everyone"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = call(
        &app,
        Method::POST,
        "/api/reports",
        &f.rep1,
        Some(json!({"name": "my stages", "definition": def})),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "names are unique: {}",
        r.body
    );
    // The manager shares it with the sales reps; rep 2 sees it and runs it over their own deals.
    let r = send(
        &app,
        api(Method::PUT, &format!("/api/reports/{id}"), &f.manager)
            .insert_header(("If-Match", etag.clone()))
            .set_json(json!({"name": "Stages", "definition": def, "sharedWith": "sales_rep"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = send(
        &app,
        api(Method::PUT, &format!("/api/reports/{id}"), &f.manager)
            .insert_header(("If-Match", etag))
            .set_json(json!({"name": "Stale", "definition": def})),
    )
    .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    let listed = ok(&app, Method::GET, "/api/reports", &f.rep2, None).await;
    assert_eq!(listed["data"][0]["name"], "Stages");
    assert_eq!(listed["data"][0]["editable"], false);
    let run = ok(
        &app,
        Method::GET,
        &format!("/api/reports/{id}/run"),
        &f.rep2,
        None,
    )
    .await;
    assert_eq!(
        strings(&run["rows"], "group").len(),
        2,
        "rep 2's won and negotiation deals: {run}"
    );
    assert_eq!(row(&run, "group", "Won")["value0"], "2000");
    let r = call(
        &app,
        Method::DELETE,
        &format!("/api/reports/{id}"),
        &f.rep2,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let csv = call(
        &app,
        Method::GET,
        &format!("/api/reports/{id}/run?format=csv"),
        &f.rep2,
        None,
    )
    .await;
    assert!(
        csv.body.starts_with("Stage,Currency,Sum of value"),
        "{}",
        csv.body
    );

    // A dashboard of the report, a standard report and a key figure, for one period.
    let d = call(&app, Method::POST, "/api/dashboards", &f.manager, Some(json!({"name": "Monday", "tiles": [
        {"kind": "report", "ref": id}, {"kind": "standard", "ref": "sales-by-rep", "wide": true}, {"kind": "kpi", "ref": "winRate"}
    ], "sharedWith": "everyone"}))).await;
    assert_eq!(d.status, StatusCode::CREATED, "{}", d.body);
    let dash = d.json()["id"].as_str().unwrap().to_string();
    let data = ok(
        &app,
        Method::GET,
        &format!("/api/dashboards/{dash}/data"),
        &f.rep1,
        None,
    )
    .await;
    let tiles = data["tiles"].as_array().unwrap();
    assert_eq!(tiles.len(), 3);
    assert_eq!(tiles[0]["report"]["title"], "Stages");
    assert_eq!(
        tiles[1]["report"]["rows"].as_array().unwrap().len(),
        1,
        "rep 1 sees their own row"
    );
    assert_eq!(tiles[2]["figure"]["value"], "50%");
    let bad = call(&app, Method::POST, "/api/dashboards", &f.manager, Some(json!({"name": "Bad", "tiles": [{"kind": "kpi", "ref": "happiness"}, {"kind": "report", "ref": "nope"}]}))).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.json()["errors"][1]["field"], "tiles[1]");
    // A report on a dashboard is not deleted from under it.
    let r = call(
        &app,
        Method::DELETE,
        &format!("/api/reports/{id}"),
        &f.manager,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);

    // Schedules: only members of this organization receive it.
    let s = call(&app, Method::POST, &format!("/api/dashboards/{dash}/schedules"), &f.manager,
        Some(json!({"recipients": [f.rep1_id, f.manager_id], "cadence": "weekly", "day": 1, "hour": 7}))).await;
    assert_eq!(s.status, StatusCode::CREATED, "{}", s.body);
    let other = f.t.org("Other");
    let stranger = f.t.user(&other, "x@other.test", "admin");
    let s = call(
        &app,
        Method::POST,
        &format!("/api/dashboards/{dash}/schedules"),
        &f.manager,
        Some(json!({"recipients": [stranger], "cadence": "fortnightly", "hour": 30})),
    )
    .await;
    assert_eq!(s.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        strings(&s.json()["errors"], "field"),
        vec!["cadence", "hour", "recipients"]
    );
    let listed = ok(
        &app,
        Method::GET,
        &format!("/api/dashboards/{dash}/schedules"),
        &f.manager,
        None,
    )
    .await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    // The hour is read on the clocks of the zone given (UTC by default): 7 in New York is
    // 12:00 UTC in winter, 11:00 in summer.
    let ny = call(&app, Method::POST, &format!("/api/dashboards/{dash}/schedules"), &f.manager,
        Some(json!({"recipients": [f.manager_id], "cadence": "daily", "hour": 7, "timeZone": "America/New_York"}))).await;
    assert_eq!(ny.status, StatusCode::CREATED, "{}", ny.body);
    let ny = ny.json();
    assert_eq!(ny["timeZone"], "America/New_York");
    let next = ny["nextRunAt"].as_str().unwrap();
    assert!(
        next.contains("T12:00:00") || next.contains("T11:00:00"),
        "{next}"
    );
    assert_eq!(listed["data"][0]["timeZone"], "UTC");
    let bad = call(
        &app,
        Method::POST,
        &format!("/api/dashboards/{dash}/schedules"),
        &f.manager,
        Some(json!({"recipients": [f.manager_id], "cadence": "daily", "timeZone": "Mars/Olympus"})),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert_eq!(strings(&bad.json()["errors"], "field"), vec!["timeZone"]);
    let r = call(
        &app,
        Method::POST,
        &format!("/api/dashboards/{dash}/schedules"),
        &f.rep1,
        Some(json!({"recipients": [f.rep1_id], "cadence": "daily"})),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "a shared dashboard is scheduled by its author or a manager"
    );
    let r = call(
        &app,
        Method::DELETE,
        &format!("/api/dashboards/{dash}"),
        &f.manager,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = call(
        &app,
        Method::DELETE,
        &format!("/api/reports/{id}"),
        &f.manager,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);

    // Another organization's admin sees none of it.
    let admin = f.t.token(&other, &stranger);
    let r = call(&app, Method::GET, "/api/reports", &admin, None).await;
    assert_eq!(r.json()["data"], json!([]));
    let by_rep = ok(
        &app,
        Method::GET,
        "/api/crm/reports/sales-by-rep",
        &admin,
        None,
    )
    .await;
    assert_eq!(by_rep["rows"], json!([]));
}

#[actix_web::test]
async fn roles_without_deals_do_not_get_sales_reports() {
    let f = fixture().await;
    let org = f.t.org("Marketing");
    let marketer_id = f.t.user(&org, "m@marketing.test", "marketer");
    let marketer = f.t.token(&org, &marketer_id);
    let app = f.t.service().await;
    let list = ok(&app, Method::GET, "/api/crm/reports", &marketer, None).await;
    let kinds = strings(&list["data"], "type");
    assert!(kinds.iter().any(|k| k == "segment-growth"));
    assert!(kinds.iter().any(|k| k == "activity-by-rep"));
    assert!(!kinds.iter().any(|k| k == "sales-by-rep"), "{kinds:?}");
    let r = call(
        &app,
        Method::GET,
        "/api/crm/reports/sales-by-rep",
        &marketer,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = call(
        &app,
        Method::POST,
        "/api/reports/preview",
        &marketer,
        Some(json!({"definition": {"entity": "deals", "groupBy": {"field": "owner"}}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

/// The mail servers of `tests/mail/start` (IMAP, SMTP), when they run.
fn mail_servers() -> Option<(String, u16, String, u16)> {
    let split = |v: String| {
        let (h, p) = v.rsplit_once(':')?;
        Some((h.to_string(), p.parse().ok()?))
    };
    let imap = split(std::env::var("RAPPORT_TEST_IMAP").ok()?)?;
    let smtp = split(std::env::var("RAPPORT_TEST_SMTP").ok()?)?;
    Some((imap.0, imap.1, smtp.0, smtp.1))
}

/// The messages in `who`'s inbox on the IMAP server, parsed; waits for `want` of them.
fn inbox(s: &(String, u16, String, u16), who: &str, want: usize) -> Vec<Vec<u8>> {
    use rapport::integrations::mail as transport;
    let server = transport::Server {
        host: s.0.clone(),
        port: s.1,
        security: transport::Security::None,
    };
    let login = transport::Login {
        username: who.into(),
        password: "secret".into(),
    };
    for _ in 0..50 {
        let mut session = transport::imap_login(&server, &login).expect("imap");
        let f = transport::fetch_new(&mut session, "INBOX", None).expect("fetch");
        let _ = session.logout();
        if f.messages.len() >= want {
            return f.messages.into_iter().map(|(_, raw)| raw).collect();
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("{who} did not receive {want} message(s)");
}

#[actix_web::test]
async fn a_scheduled_dashboard_arrives_by_email_with_each_readers_own_figures() {
    let Some(s) = mail_servers() else {
        eprintln!(
            "SKIPPED: no mail servers (RAPPORT_TEST_IMAP/RAPPORT_TEST_SMTP; tests/mail/start)"
        );
        return;
    };
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..10];
    let (admin_addr, rep_addr, box_addr) = (
        format!("boss-{tag}@mail.rapport.test"),
        format!("rep-{tag}@mail.rapport.test"),
        format!("reports-{tag}@mail.rapport.test"),
    );
    let t = TestApp::new().await;
    let org = t.org("Scheduled");
    let admin_id = t.user(&org, &admin_addr, "admin");
    let rep_id = t.user(&org, &rep_addr, "sales_rep");
    let (admin, rep) = (t.token(&org, &admin_id), t.token(&org, &rep_id));
    let app = t.service().await;
    // Each wins a deal; both closed yesterday (a report e-mailed in the morning covers the
    // days before it).
    let p = ok(&app, Method::GET, "/api/pipelines", &admin, None).await;
    let won = p["data"][0]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "won")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    for (token, name, value) in [(&admin, "Boss deal", "700"), (&rep, "Rep deal", "300")] {
        let c = ok(
            &app,
            Method::POST,
            "/api/clients",
            token,
            Some(json!({"type": "company", "companyName": name})),
        )
        .await;
        let d = ok(
            &app,
            Method::POST,
            "/api/opportunities",
            token,
            Some(json!({
            "name": name, "clientId": c["id"], "value": value, "currency": "EUR"})),
        )
        .await;
        ok(
            &app,
            Method::POST,
            &format!("/api/opportunities/{}/move", d["id"].as_str().unwrap()),
            token,
            Some(json!({"stage": won})),
        )
        .await;
    }
    {
        use diesel::prelude::*;
        use rapport::db::schema::opportunities as o;
        let yesterday = chrono::Utc::now().date_naive() - chrono::Duration::days(1);
        diesel::update(o::table)
            .set(o::actual_close.eq(Some(yesterday)))
            .execute(&mut t.pool.get().unwrap())
            .unwrap();
    }
    // No shared mailbox yet: the schedule records why it could not send.
    let d = ok(&app, Method::POST, "/api/dashboards", &admin, Some(json!({"name": "Morning", "sharedWith": "everyone",
        "tiles": [{"kind": "standard", "ref": "sales-by-rep"}, {"kind": "kpi", "ref": "winRate"}]}))).await;
    let dash = d["id"].as_str().unwrap().to_string();
    let sched = ok(
        &app,
        Method::POST,
        &format!("/api/dashboards/{dash}/schedules"),
        &admin,
        Some(json!({"recipients": [admin_id, rep_id], "cadence": "weekly", "day": 1, "hour": 7})),
    )
    .await;
    assert_eq!(sched["nextRunAt"].as_str().unwrap().len(), 20);
    let due = || {
        use diesel::prelude::*;
        use rapport::db::schema::report_schedules as r;
        diesel::update(r::table)
            .set(r::next_run_at.eq(chrono::Utc::now().naive_utc() - chrono::Duration::minutes(1)))
            .execute(&mut t.pool.get().unwrap())
            .unwrap();
    };
    let run =
        || rapport::ops::reports::send_due(&t.state.authz, rapport::web::scope::handles(&t.state));
    due();
    assert_eq!(run().await.unwrap(), 1);
    let listed = ok(
        &app,
        Method::GET,
        &format!("/api/dashboards/{dash}/schedules"),
        &admin,
        None,
    )
    .await;
    assert!(
        listed["data"][0]["lastError"]
            .as_str()
            .unwrap()
            .contains("shared mailbox"),
        "{listed}"
    );
    assert!(
        listed["data"][0]["nextRunAt"].as_str().unwrap() > chrono::Utc::now().to_rfc3339().as_str()
    );

    let mut body = json!({
        "name": "Reports", "address": box_addr, "username": box_addr, "password": "secret",
        "imap": {"host": s.0, "port": s.1, "security": "none"},
        "smtp": {"host": s.2, "port": s.3, "security": "none"},
    });
    body["shared"] = json!(true);
    ok(&app, Method::POST, "/api/mailboxes", &admin, Some(body)).await;
    due();
    assert_eq!(run().await.unwrap(), 1);
    // Claimed and moved on: the next round sends nothing.
    assert_eq!(run().await.unwrap(), 0);
    let listed = ok(
        &app,
        Method::GET,
        &format!("/api/dashboards/{dash}/schedules"),
        &admin,
        None,
    )
    .await;
    assert!(listed["data"][0]["lastError"].is_null(), "{listed}");

    use mail_parser::MimeHeaders;
    let parse = |raw: &[u8]| {
        let m = mail_parser::MessageParser::default().parse(raw).unwrap();
        let text = m.body_text(0).unwrap_or_default().to_string();
        let files: Vec<(String, String)> = m
            .attachments()
            .map(|a| {
                (
                    a.attachment_name().unwrap_or_default().to_string(),
                    String::from_utf8_lossy(a.contents()).into_owned(),
                )
            })
            .collect();
        (m.subject().unwrap_or_default().to_string(), text, files)
    };
    let (subject, text, files) = parse(&inbox(&s, &admin_addr, 1)[0]);
    assert!(subject.starts_with("Morning — "), "{subject}");
    assert!(text.contains("Win rate: 100%"), "{text}");
    assert!(
        text.contains(&admin_addr) && text.contains(&rep_addr),
        "the admin sees both: {text}"
    );
    assert_eq!(files.len(), 2, "the dashboard's PDF and the report's CSV");
    // The PDF: the whole dashboard (its text is written uncompressed, so it can be read).
    assert!(
        files[0].0.starts_with("morning-") && files[0].0.ends_with(".pdf"),
        "{:?}",
        files[0].0
    );
    let pdf = &files[0].1;
    assert!(pdf.starts_with("%PDF-"), "{}", &pdf[..pdf.len().min(200)]);
    for shown in ["(Morning)", "(Win rate)", "(100%)", "(Sales by rep)"] {
        assert!(pdf.contains(shown), "{shown} missing from the PDF");
    }
    // Names longer than their column are cut short with an ellipsis, which makes the PDF
    // write the string in hex.
    let in_pdf = |pdf: &str, text: &str| {
        let hex: String = text.bytes().map(|b| format!("{b:02x}")).collect();
        pdf.contains(&format!("({text}")) || pdf.to_lowercase().contains(&format!("<{hex}"))
    };
    assert!(in_pdf(pdf, &admin_addr[..20]), "the admin's row");
    assert!(files[1].0.starts_with("sales-by-rep-"), "{files:?}");
    assert!(
        files[1].1.starts_with("Rep,Currency,Won deals"),
        "{files:?}"
    );
    // The rep's copy counts only the rep's own deal, in the PDF too.
    let (_, text, files) = parse(&inbox(&s, &rep_addr, 1)[0]);
    assert!(text.contains(&rep_addr), "{text}");
    assert!(
        !text.contains(&admin_addr),
        "the rep sees only their own: {text}"
    );
    assert!(in_pdf(&files[0].1, &rep_addr[..20]), "the rep's own row");
    assert!(!in_pdf(&files[0].1, &admin_addr[..20]), "the rep's PDF");
    assert!(!files[1].1.contains(&admin_addr), "{files:?}");
}

/// rep 1's calls in the activity report, the overview's activities and the activities of
/// each kind in a custom report (the last three read the daily counts).
async fn activity_figures<S, B>(app: &S, f: &Fixture) -> (Value, Value, Value, Value)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let by_rep = ok(
        app,
        Method::GET,
        "/api/crm/reports/activity-by-rep",
        &f.manager,
        None,
    )
    .await;
    let calls = rows(&by_rep, "rep", "rep1@reports.test")
        .first()
        .map_or(json!(0), |r| r["calls"].clone());
    let overview = ok(
        app,
        Method::GET,
        "/api/crm/analytics/overview",
        &f.manager,
        None,
    )
    .await;
    let by_status = |who: &str| {
        json!({"definition": {"entity": "interactions", "groupBy": {"field": "status"},
               "filters": [{"field": "owner", "op": "is", "value": who}]}})
    };
    let managers = ok(
        app,
        Method::POST,
        "/api/reports/preview",
        &f.manager,
        Some(by_status(&f.rep1_id)),
    )
    .await;
    // The rep's own report is limited to the clients they own, which the daily counts do
    // not hold: it counts the activities themselves, and must agree.
    let reps = ok(
        app,
        Method::POST,
        "/api/reports/preview",
        &f.rep1,
        Some(by_status("me")),
    )
    .await;
    (
        calls,
        overview["activities"].clone(),
        managers["rows"].clone(),
        reps["rows"].clone(),
    )
}

#[actix_web::test]
async fn activity_counts_follow_every_change_to_an_activity() {
    let f = fixture().await;
    let app = f.t.service().await;
    let client = ok(&app, Method::GET, "/api/clients", &f.rep1, None).await["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let done = |n: i64| json!([{"group": "Completed", "value0": n}]);
    let (calls, overview, managers, reps) = activity_figures(&app, &f).await;
    assert_eq!((calls, overview), (json!(2), json!(3)));
    assert_eq!(managers, done(2));
    assert_eq!(reps, managers);

    // A call planned (a minute ago, so inside the period) is not done yet.
    let earlier = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    let planned = ok(
        &app,
        Method::POST,
        &format!("/api/clients/{client}/interactions"),
        &f.rep1,
        Some(json!({"type": "call", "subject": "Follow-up", "status": "scheduled", "scheduledAt": earlier})),
    )
    .await;
    let planned = planned["id"].as_str().unwrap().to_string();
    let (calls, overview, managers, reps) = activity_figures(&app, &f).await;
    assert_eq!((calls, overview), (json!(2), json!(3)));
    assert_eq!(
        managers,
        json!([{"group": "Completed", "value0": 2}, {"group": "Scheduled", "value0": 1}])
    );
    assert_eq!(reps, managers);

    // Done today: counted.
    let now = chrono::Utc::now().to_rfc3339();
    ok(
        &app,
        Method::PUT,
        &format!("/api/interactions/{planned}"),
        &f.rep1,
        Some(json!({"status": "completed", "completedAt": now})),
    )
    .await;
    let (calls, overview, managers, reps) = activity_figures(&app, &f).await;
    assert_eq!((calls, overview), (json!(3), json!(4)));
    assert_eq!(managers, done(3));
    assert_eq!(reps, managers);

    // Moved to 200 days ago: out of the last 90 (and 30) days.
    let long_ago = (chrono::Utc::now() - chrono::Duration::days(200)).to_rfc3339();
    ok(
        &app,
        Method::PUT,
        &format!("/api/interactions/{planned}"),
        &f.rep1,
        Some(json!({"completedAt": long_ago})),
    )
    .await;
    let (calls, overview, managers, reps) = activity_figures(&app, &f).await;
    assert_eq!((calls, overview), (json!(2), json!(3)));
    assert_eq!(managers, done(2));
    assert_eq!(reps, managers);

    // Deleted: gone from every count.
    let timeline = ok(
        &app,
        Method::GET,
        &format!("/api/clients/{client}/interactions"),
        &f.rep1,
        None,
    )
    .await;
    let call = timeline["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] != planned.as_str() && i["type"] == "call")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(
        &app,
        Method::DELETE,
        &format!("/api/interactions/{call}"),
        &f.rep1,
        None,
    )
    .await;
    let (calls, overview, managers, reps) = activity_figures(&app, &f).await;
    assert_eq!((calls, overview), (json!(1), json!(2)));
    assert_eq!(managers, done(1));
    assert_eq!(reps, managers);
}
