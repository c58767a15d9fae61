//! Exports: CSV and JSON, streamed across pages, filters honoured, formula cells neutralised,
//! the export permission enforced and every export audited.

use actix_web::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::*;

#[actix_web::test]
async fn clients_and_deals_export_as_csv_and_json() {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    let m = t.user(&org, "manager@acme.test", "manager");
    let r = t.user(&org, "rep@acme.test", "sales_rep");
    let manager = t.token(&org, &m);
    let rep = t.token(&org, &r);
    let app = t.service().await;
    // More than one page (1,000 rows) of seeded clients, plus hostile cells.
    {
        let mut c = t.pool.get().unwrap();
        rapport::domain::orgs::store::set_user_name(&mut c, &m, "Mona Manager", rapport::db::now())
            .unwrap();
        rapport::seed::seed_clients(&mut c, &org, 1003, 3, |_| {}).unwrap();
    }
    for (last, status) in [
        ("=HYPERLINK(\"http://evil\",\"x\")", "customer"),
        ("@SUM(A1)", "lead"),
    ] {
        let r = send(
            &app,
            api(Method::POST, "/api/clients", &manager)
                .set_json(json!({"type": "individual", "lastName": last, "status": status})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let csv_resp = send(
        &app,
        api(Method::GET, "/api/clients/export?format=csv", &manager),
    )
    .await;
    assert_eq!(csv_resp.status, StatusCode::OK, "{}", csv_resp.body);
    assert!(csv_resp
        .header("content-type")
        .unwrap()
        .starts_with("text/csv"));
    assert!(csv_resp
        .header("content-disposition")
        .unwrap()
        .contains("attachment; filename=\"clients-"));
    let mut reader = csv::Reader::from_reader(csv_resp.body.as_bytes());
    let headers = reader.headers().unwrap().clone();
    assert_eq!(&headers[0], "id");
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 1005, "every client, across pages");
    let last_name = headers.iter().position(|h| h == "lastName").unwrap();
    let hostile: Vec<&str> = rows
        .iter()
        .map(|r| &r[last_name])
        .filter(|v| v.contains("HYPERLINK") || v.contains("SUM("))
        .collect();
    assert_eq!(hostile.len(), 2);
    assert!(hostile.iter().all(|v| v.starts_with('\'')), "{hostile:?}");
    // Owners and employers are named beside their ids, in columns added after the others.
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    assert_eq!(
        [col("ownerName"), col("ownerEmail"), col("employer")],
        [
            col("updatedAt") + 1,
            col("updatedAt") + 2,
            col("updatedAt") + 3
        ]
    );
    let names: std::collections::HashMap<&str, &str> = rows
        .iter()
        .map(|r| (&r[0], &r[col("displayName")]))
        .collect();
    let (mut owned, mut employed) = (0, 0);
    for row in &rows {
        let owner = (&row[col("ownerName")], &row[col("ownerEmail")]);
        match &row[col("assignedTo")] {
            id if id == m => {
                owned += 1;
                assert_eq!(owner, ("Mona Manager", "manager@acme.test"));
            }
            id if id == r => assert_eq!(owner.1, "rep@acme.test"),
            _ => assert_eq!(owner, ("", "")),
        }
        let employer = &row[col("employerId")];
        if !employer.is_empty() {
            employed += 1;
            assert_eq!(&row[col("employer")], names[employer]);
        }
    }
    assert!(
        owned > 0 && employed > 0,
        "{owned} owned, {employed} employed"
    );
    // JSON, filtered.
    let json_resp = send(
        &app,
        api(
            Method::GET,
            "/api/clients/export?format=json&filter[status]=customer",
            &manager,
        ),
    )
    .await;
    let v: Value = serde_json::from_str(&json_resp.body).expect("valid JSON");
    let data = v["data"].as_array().unwrap();
    assert!(!data.is_empty() && data.iter().all(|c| c["status"] == "customer"));
    let mine = data
        .iter()
        .find(|c| c["assignedTo"] == m.as_str())
        .expect("a customer of the manager's");
    assert_eq!(
        (&mine["ownerName"], &mine["ownerEmail"]),
        (&json!("Mona Manager"), &json!("manager@acme.test"))
    );
    let listed = send(
        &app,
        api(
            Method::GET,
            "/api/clients?filter[status]=customer&limit=500",
            &manager,
        ),
    )
    .await
    .json();
    let mut total = listed["data"].as_array().unwrap().len();
    let mut cursor = listed["nextCursor"].as_str().map(str::to_string);
    while let Some(c) = cursor {
        let next = send(
            &app,
            api(
                Method::GET,
                &format!("/api/clients?filter[status]=customer&limit=500&cursor={c}"),
                &manager,
            ),
        )
        .await
        .json();
        total += next["data"].as_array().unwrap().len();
        cursor = next["nextCursor"].as_str().map(str::to_string);
    }
    assert_eq!(data.len(), total, "the export holds what the list shows");
    // Bad input, the permission, the audit trail.
    let bad = send(
        &app,
        api(Method::GET, "/api/clients/export?format=xls", &manager),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let denied = send(&app, api(Method::GET, "/api/clients/export", &rep)).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    {
        use diesel::prelude::*;
        use rapport::db::schema::audit_log;
        let mut c = t.pool.get().unwrap();
        let n: i64 = audit_log::table
            .filter(audit_log::organization_id.eq(&org.id))
            .filter(audit_log::action.eq("client.export"))
            .count()
            .get_result(&mut c)
            .unwrap();
        assert_eq!(n, 2, "each export is audited");
    }
    // Deals.
    let client = send(
        &app,
        api(Method::POST, "/api/clients", &manager)
            .set_json(json!({"type": "company", "companyName": "Initech"})),
    )
    .await
    .json();
    let p = send(&app, api(Method::GET, "/api/pipelines", &manager))
        .await
        .json();
    let d = send(
        &app,
        api(Method::POST, "/api/opportunities", &manager).set_json(json!({
            "name": "-10% renewal", "clientId": client["id"], "value": "1234.50",
            "stage": p["data"][0]["stages"][1]["id"]
        })),
    )
    .await;
    assert_eq!(d.status, StatusCode::CREATED, "{}", d.body);
    let deals = send(
        &app,
        api(Method::GET, "/api/opportunities/export", &manager),
    )
    .await;
    let mut reader = csv::Reader::from_reader(deals.body.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(&rows[0][1], "'-10% renewal");
    assert_eq!(&rows[0][2], "1234.50");
    assert_eq!(&rows[0][9], "Initech");
    assert_eq!(
        (&rows[0][7], &rows[0][12], &rows[0][13]),
        (m.as_str(), "Mona Manager", "manager@acme.test"),
        "the owner named beside the id, in the last columns"
    );
    let j: Value = serde_json::from_str(
        &send(
            &app,
            api(
                Method::GET,
                "/api/opportunities/export?format=json",
                &manager,
            ),
        )
        .await
        .body,
    )
    .unwrap();
    assert_eq!(j["data"][0]["stage"], p["data"][0]["stages"][1]["name"]);
    assert_eq!(j["data"][0]["ownerName"], "Mona Manager");
    assert_eq!(j["data"][0]["ownerEmail"], "manager@acme.test");
    // Interactions, filtered by type.
    let cid = client["id"].as_str().unwrap();
    for (kind, subject) in [("call", "=cmd|' /C calc'!A0"), ("note", "Plain note")] {
        let r = send(
            &app,
            api(
                Method::POST,
                &format!("/api/clients/{cid}/interactions"),
                &manager,
            )
            .set_json(json!({"type": kind, "subject": subject})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let calls = send(
        &app,
        api(
            Method::GET,
            "/api/interactions/export?filter[type]=call",
            &manager,
        ),
    )
    .await;
    assert_eq!(calls.status, StatusCode::OK, "{}", calls.body);
    let mut reader = csv::Reader::from_reader(calls.body.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(&rows[0][3], "call");
    assert_eq!(&rows[0][9], "'=cmd|' /C calc'!A0");
    assert_eq!(
        (&rows[0][11], &rows[0][12], &rows[0][13]),
        (m.as_str(), "Mona Manager", "manager@acme.test"),
        "the author named beside the id"
    );
    let all: Value = serde_json::from_str(
        &send(
            &app,
            api(
                Method::GET,
                "/api/interactions/export?format=json",
                &manager,
            ),
        )
        .await
        .body,
    )
    .unwrap();
    assert_eq!(all["data"].as_array().unwrap().len(), 2);
    assert_eq!(all["data"][0]["userName"], "Mona Manager");
    assert_eq!(all["data"][0]["userEmail"], "manager@acme.test");
    assert_eq!(
        send(&app, api(Method::GET, "/api/interactions/export", &rep))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // XLSX: every client across pages, the header bold in row 1, numbers as numbers, and
    // formula-looking text kept as text (a typed cell is never evaluated).
    let x = send(
        &app,
        api(Method::GET, "/api/clients/export?format=xlsx", &manager),
    )
    .await;
    assert_eq!(x.status, StatusCode::OK, "{}", x.body);
    assert!(x.header("content-type").unwrap().contains("spreadsheetml"));
    assert!(x.header("content-disposition").unwrap().contains(".xlsx\""));
    let sheet = first_sheet(&x.bytes);
    assert_eq!(sheet.len(), 1 + 1006, "header + every client (Initech too)");
    assert_eq!(sheet[0][0], "id");
    let col = sheet[0].iter().position(|h| h == "lastName").unwrap();
    assert!(sheet
        .iter()
        .any(|r| r[col] == "=HYPERLINK(\"http://evil\",\"x\")"));
    let owner = sheet[0].iter().position(|h| h == "ownerEmail").unwrap();
    assert!(sheet.iter().any(|r| r[owner] == "manager@acme.test"));
    let deals_x = send(
        &app,
        api(
            Method::GET,
            "/api/opportunities/export?format=xlsx",
            &manager,
        ),
    )
    .await;
    let deal_rows = first_sheet(&deals_x.bytes);
    assert_eq!(deal_rows.len(), 2);
    assert_eq!(deal_rows[1][1], "-10% renewal");
    assert_eq!(deal_rows[1][2], "1234.5", "the value is a number cell");
    assert_eq!(deal_rows[0][12], "ownerName");
    assert_eq!(deal_rows[1][12], "Mona Manager");
    let calls_x = send(
        &app,
        api(
            Method::GET,
            "/api/interactions/export?format=xlsx&filter[type]=call",
            &manager,
        ),
    )
    .await;
    assert_eq!(first_sheet(&calls_x.bytes).len(), 2);
    let bad = send(
        &app,
        api(Method::GET, "/api/clients/export?format=ods", &manager),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("xlsx"), "{}", bad.body);

    // The console link carries the list's filters.
    let mut b = Browser::new();
    b.sign_in(&app, "manager@acme.test", PASSWORD).await;
    assert!(b.get(&app, "/clients").await.body.contains("Export CSV"));
    let leads = b
        .get(&app, "/clients/export.xlsx?filter[status]=lead")
        .await;
    assert_eq!(leads.status, StatusCode::OK);
    let leads = first_sheet(&leads.bytes);
    let status_col = leads[0].iter().position(|h| h == "status").unwrap();
    assert!(leads.len() > 1 && leads[1..].iter().all(|r| r[status_col] == "lead"));
    assert!(b
        .get(&app, "/pipeline")
        .await
        .body
        .contains("/opportunities/export.xlsx"));
    let file = b.get(&app, "/clients/export.csv?filter[status]=lead").await;
    assert_eq!(file.status, StatusCode::OK);
    assert!(
        file.body.lines().skip(1).all(|l| l.contains(",lead,")),
        "only leads"
    );
}

/// The first sheet of a workbook as text cells (calamine reads it back as Excel would).
fn first_sheet(bytes: &[u8]) -> Vec<Vec<String>> {
    use calamine::{Reader, Xlsx};
    let mut book: Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes.to_vec()))
        .expect("a readable workbook");
    let range = book
        .worksheet_range_at(0)
        .expect("a sheet")
        .expect("readable");
    range
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect()
}

/// The Exports page offers what the role may export and nothing else; its links download.
#[actix_web::test]
async fn the_exports_page_offers_what_the_role_may_take() {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    t.user(&org, "admin@acme.test", "admin");
    t.user(&org, "rep@acme.test", "sales_rep");
    t.user(&org, "mk@acme.test", "marketer");
    let app = t.service().await;
    let mut admin = Browser::new();
    admin.sign_in(&app, "admin@acme.test", PASSWORD).await;
    let page = admin.get(&app, "/exports").await.body;
    for link in [
        "/clients/export.csv",
        "/opportunities/export.xlsx",
        "/interactions/export.csv",
    ] {
        assert!(page.contains(link), "{link}");
    }
    let csv = admin
        .get(&app, "/interactions/export.csv?filter%5Btype%5D=call")
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    let mut mk = Browser::new();
    mk.sign_in(&app, "mk@acme.test", PASSWORD).await;
    let page = mk.get(&app, "/exports").await.body;
    assert!(page.contains("/clients/export.csv") && !page.contains("/opportunities/export"));
    let mut rep = Browser::new();
    rep.sign_in(&app, "rep@acme.test", PASSWORD).await;
    let home = rep.get(&app, "/").await.body;
    assert!(
        !home.contains("href=\"/exports\""),
        "no Exports in a rep's menu"
    );
    assert!(rep
        .get(&app, "/exports")
        .await
        .body
        .contains("Nothing to export"));
}
