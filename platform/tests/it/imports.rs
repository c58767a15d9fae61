//! Imports: the HubSpot and Salesforce sample exports (copied from the shared sample data into
//! `tests/data/imports/`) import with the expected counts and relations; re-imports create no
//! duplicates; revert restores the prior state exactly; malformed files are refused whole.

use actix_web::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::*;

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../tests/data/imports/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

async fn import<S, B>(
    t: &TestApp,
    app: &S,
    token: &str,
    file: &str,
    query: &str,
    body: Vec<u8>,
) -> Value
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let r = send(
        app,
        api(
            Method::POST,
            &format!("/api/imports?fileName={file}&{query}"),
            token,
        )
        .insert_header(("content-type", "text/csv"))
        .set_payload(body),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{file}: {}", r.body);
    let batch = r.json();
    let id = batch["id"].as_str().unwrap().to_string();
    let run = send(
        app,
        api(Method::POST, &format!("/api/imports/{id}/run"), token),
    )
    .await;
    assert_eq!(run.status, StatusCode::ACCEPTED, "{}", run.body);
    rapport::jobs::run_pending(&t.state).await.unwrap();
    let done = send(app, api(Method::GET, &format!("/api/imports/{id}"), token))
        .await
        .json();
    assert_eq!(done["status"], "done", "{done}");
    done
}

fn counts(b: &Value) -> (i64, i64, i64, i64) {
    (
        b["created"].as_i64().unwrap(),
        b["updated"].as_i64().unwrap(),
        b["skipped"].as_i64().unwrap(),
        b["failed"].as_i64().unwrap(),
    )
}

/// Every client and deal of the organization, as comparable JSON (ids, versions, values).
fn snapshot(t: &TestApp, org: &str) -> Vec<String> {
    use diesel::prelude::*;
    use rapport::db::schema::{clients, opportunities};
    let mut c = t.pool.get().unwrap();
    let mut out: Vec<String> = clients::table
        .filter(clients::organization_id.eq(org))
        .select(rapport::domain::clients::ClientRow::as_select())
        .load(&mut c)
        .unwrap()
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    out.extend(
        opportunities::table
            .filter(opportunities::organization_id.eq(org))
            .select(rapport::domain::pipeline::OpportunityRow::as_select())
            .load(&mut c)
            .unwrap()
            .iter()
            .map(|r| serde_json::to_string(r).unwrap()),
    );
    out.sort();
    out
}

#[actix_web::test]
async fn hubspot_and_salesforce_exports_import_with_relations_and_revert_exactly() {
    let t = TestApp::new().await;
    for (preset, files) in [
        (
            "hubspot",
            [
                "hubspot-companies.csv",
                "hubspot-contacts.csv",
                "hubspot-deals.csv",
            ],
        ),
        (
            "salesforce",
            [
                "salesforce-Account.csv",
                "salesforce-Contact.csv",
                "salesforce-Opportunity.csv",
            ],
        ),
    ] {
        let org = t.org(&format!("{preset} customer"));
        let admin = t.user(&org, &format!("admin@{preset}.test"), "admin");
        let token = t.token(&org, &admin);
        let app = t.service().await;
        // The kind is recognised from the headers.
        let companies = import(
            &t,
            &app,
            &token,
            files[0],
            &format!("preset={preset}"),
            sample(files[0]),
        )
        .await;
        assert_eq!(companies["kind"], "companies");
        let (created, updated, skipped, failed) = counts(&companies);
        assert_eq!(
            (created, failed, skipped),
            (35, 0, 0),
            "35 distinct domains: {companies}"
        );
        assert_eq!(updated, 5);
        let contacts = import(
            &t,
            &app,
            &token,
            files[1],
            &format!("preset={preset}"),
            sample(files[1]),
        )
        .await;
        assert_eq!(contacts["kind"], "contacts");
        assert_eq!(
            counts(&contacts),
            (107, 11, 0, 0),
            "107 distinct e-mails: {contacts}"
        );
        let deals = import(
            &t,
            &app,
            &token,
            files[2],
            &format!("preset={preset}"),
            sample(files[2]),
        )
        .await;
        assert_eq!(deals["kind"], "deals");
        assert_eq!(counts(&deals), (51, 0, 0, 0), "{deals}");

        // People work for their companies; deals sit on their company in the mapped stage.
        let people = send(
            &app,
            api(
                Method::GET,
                "/api/clients?filter[type]=individual&limit=200",
                &token,
            ),
        )
        .await
        .json();
        let people = people["data"].as_array().unwrap();
        assert_eq!(people.len(), 107);
        assert!(
            people.iter().all(|p| p["employerId"].is_string()),
            "every contact has its company"
        );
        let bjorn = people
            .iter()
            .find(|p| p["email"] == "bjorn.kowalski@soylent0.example")
            .unwrap();
        let soylent = send(
            &app,
            api(
                Method::GET,
                &format!("/api/clients/{}", bjorn["employerId"].as_str().unwrap()),
                &token,
            ),
        )
        .await
        .json();
        assert_eq!(soylent["companyName"], "Soylent GmbH");
        let all_deals = send(
            &app,
            api(Method::GET, "/api/opportunities?limit=200", &token),
        )
        .await
        .json();
        let all_deals = all_deals["data"].as_array().unwrap();
        assert_eq!(all_deals.len(), 51);
        let won = all_deals.iter().filter(|d| d["status"] == "won").count();
        let lost = all_deals.iter().filter(|d| d["status"] == "lost").count();
        assert!(won > 0 && lost > 0, "closed stages map to Won and Lost");
        let first = all_deals
            .iter()
            .find(|d| d["name"] == "Soylent GmbH — New license")
            .unwrap();
        assert_eq!(first["clientId"], soylent["id"]);
        assert_eq!(first["value"], "7100.00");
        let expected_stage = if preset == "hubspot" {
            "Negotiation"
        } else {
            "Needs analysis"
        };
        assert_eq!(first["stageName"], expected_stage);

        // The same files again: nothing new. Reverting that second import restores the
        // state after the first exactly.
        let before = snapshot(&t, &org.id);
        let mut again = Vec::new();
        for f in files {
            let b = import(&t, &app, &token, f, &format!("preset={preset}"), sample(f)).await;
            assert_eq!(b["created"], 0, "{f}: {b}");
            again.push(b["id"].as_str().unwrap().to_string());
        }
        for id in again.iter().rev() {
            let r = send(
                &app,
                api(Method::POST, &format!("/api/imports/{id}/revert"), &token),
            )
            .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            assert_eq!(r.json()["status"], "reverted");
        }
        assert_eq!(
            snapshot(&t, &org.id),
            before,
            "{preset}: revert restores the prior state"
        );
        let twice = send(
            &app,
            api(
                Method::POST,
                &format!("/api/imports/{}/revert", again[0]),
                &token,
            ),
        )
        .await;
        assert_eq!(twice.status, StatusCode::CONFLICT);
    }
}

#[actix_web::test]
async fn bad_files_are_refused_whole_and_bad_rows_say_why() {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    let admin = t.user(&org, "admin@acme.test", "admin");
    let rep = t.user(&org, "rep@acme.test", "sales_rep");
    let token = t.token(&org, &admin);
    let rep_token = t.token(&org, &rep);
    let app = t.service().await;
    let post = |token: &str, body: Vec<u8>| {
        api(
            Method::POST,
            "/api/imports?preset=generic&fileName=x.csv",
            token,
        )
        .insert_header(("content-type", "text/csv"))
        .set_payload(body)
    };
    for (body, says) in [
        (
            b"First Name,Last Name,Email\nAda,Lovelace,ada@x.test\n\"Grace,Hopper,grace@x.test\n"
                .to_vec(),
            "Line",
        ),
        (vec![0u8, 1, 2, 3, 0, 255, 254], "not a text"),
        (Vec::new(), "empty"),
        (
            b"just one line of prose without any columns at all".repeat(10),
            "does not look like a CSV",
        ),
    ] {
        let r = send(&app, post(&token, body)).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        assert!(
            r.is_problem() && r.body.contains(says),
            "{says}: {}",
            r.body
        );
    }
    // A sales rep may not import by default.
    let r = send(&app, post(&rep_token, b"Email\na@x.test\n".to_vec())).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Windows-1252 with semicolons; a formula cell and a bad e-mail fail their rows only.
    let file = b"First Name;Last Name;Email;Notes\nJos\xe9;M\xfcller;jose@x.test;ok\nEvil;Cell;evil@x.test;=HYPERLINK(\"http://x\",\"y\")\nBad;Mail;not-an-email;\n".to_vec();
    let b = import(&t, &app, &token, "latin.csv", "preset=generic", file).await;
    assert_eq!(counts(&b), (1, 0, 0, 2), "{b}");
    let errors = b["errors"].as_array().unwrap();
    assert_eq!(errors[0]["row"], 3);
    assert!(errors[0]["message"].as_str().unwrap().contains("formula"));
    assert_eq!(errors[1]["row"], 4);
    let people = send(&app, api(Method::GET, "/api/clients", &token))
        .await
        .json();
    assert_eq!(people["data"][0]["displayName"], "José Müller");
    assert_eq!(people["data"].as_array().unwrap().len(), 1);
    // Another organization sees none of it.
    let other = t.org("Globex");
    let o = t.user(&other, "admin@globex.test", "admin");
    let o_token = t.token(&other, &o);
    let r = send(
        &app,
        api(
            Method::GET,
            &format!("/api/imports/{}", b["id"].as_str().unwrap()),
            &o_token,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let _ = json!({});
}

/// A restart in the middle: the worker resumes after the last committed chunk and no row is
/// imported twice.
#[actix_web::test]
async fn an_interrupted_import_resumes_without_importing_a_row_twice() {
    use diesel::prelude::*;
    let t = TestApp::new().await;
    let org = t.org("Acme");
    let admin = t.user(&org, "admin@acme.test", "admin");
    let token = t.token(&org, &admin);
    let app = t.service().await;
    let mut file = String::from("Email,First Name,Last Name\n");
    let rows = rapport::domain::imports::CHUNK * 2 + 450;
    for i in 0..rows {
        file.push_str(&format!("p{i}@x.test,P,{i}\n"));
    }
    let r = send(
        &app,
        api(
            Method::POST,
            "/api/imports?preset=generic&fileName=big.csv",
            &token,
        )
        .insert_header(("content-type", "text/csv"))
        .set_payload(file),
    )
    .await;
    let id = r.json()["id"].as_str().unwrap().to_string();
    send(
        &app,
        api(Method::POST, &format!("/api/imports/{id}/run"), &token),
    )
    .await;
    // One chunk ran, then the process died: the batch says `running` after one chunk.
    {
        let mut c = t.pool.get().unwrap();
        let batch = rapport::domain::imports::get(&mut c, &org.id, &id).unwrap();
        let ctx = rapport::domain::audit::AuditContext::cli(&org.id);
        let access = rapport::domain::clients::service::Access {
            user_id: admin.clone(),
            oversee: true,
            read_sensitive: true,
            write_sensitive: true,
            create_tags: true,
        };
        let env = rapport::domain::imports::Env {
            ctx: &ctx,
            access: &access,
            batch: &batch,
            external: &rapport::domain::custom_fields::NoExternal,
            rules: &rapport::domain::pipeline::service::NoRules,
            default_currency: "USD",
            cache: Default::default(),
        };
        assert!(
            rapport::domain::imports::run_chunk(&mut c, &t.state.config.data_dir, &env).unwrap()
        );
        let mid = rapport::domain::imports::get(&mut c, &org.id, &id).unwrap();
        assert_eq!(
            (mid.status.as_str(), mid.processed_rows as usize),
            ("running", rapport::domain::imports::CHUNK)
        );
    }
    rapport::jobs::run_pending(&t.state).await.unwrap();
    let done = send(
        &app,
        api(Method::GET, &format!("/api/imports/{id}"), &token),
    )
    .await
    .json();
    assert_eq!(counts(&done), (rows as i64, 0, 0, 0), "{done}");
    let mut c = t.pool.get().unwrap();
    let n: i64 = rapport::db::schema::clients::table
        .filter(rapport::db::schema::clients::organization_id.eq(&org.id))
        .count()
        .get_result(&mut c)
        .unwrap();
    assert_eq!(n as usize, rows);
}

/// The wizard in the console: upload, map, preview, run, progress, revert.
#[actix_web::test]
async fn the_console_wizard_uploads_maps_runs_and_reverts() {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    t.user(&org, "admin@acme.test", "admin");
    t.user(&org, "rep@acme.test", "sales_rep");
    let app = t.service().await;
    let mut b = Browser::new();
    b.sign_in(&app, "admin@acme.test", PASSWORD).await;
    let page = b.get(&app, "/imports").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("data-upload=\"/imports/upload\""));
    let r = b
        .hx_put_raw(
            &app,
            "/imports/upload?name=hubspot-contacts.csv&preset=hubspot&kind=&mode=update",
            "text/csv",
            sample("hubspot-contacts.csv"),
        )
        .await;
    let to = r.header("HX-Redirect").expect("redirect").to_string();
    assert!(to.starts_with("/imports/"), "{}", r.body);
    let wizard = b.get(&app, &to).await.body;
    assert!(
        wizard.contains("Associated Company IDs") && wizard.contains("Import 118 rows"),
        "{wizard}"
    );
    assert!(
        wizard.contains("<option value=\"email\" selected"),
        "e-mail mapped by the preset"
    );
    // Leave the e-mail out: the preview says the rows have none to match on, and still run.
    let id = to.trim_start_matches("/imports/").to_string();
    let mut fields: Vec<(String, String)> = Vec::new();
    for (i, t) in [
        "externalId",
        "firstName",
        "lastName",
        "",
        "phone",
        "",
        "companyName",
        "companyExternalId",
        "owner",
        "status",
        "",
        "source",
        "",
        "city",
        "country",
        "notes",
    ]
    .iter()
    .enumerate()
    {
        fields.push((format!("col{i}"), t.to_string()));
    }
    fields.push(("mode".into(), "skip".into()));
    let refs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let remapped = b
        .hx_post(&app, &format!("/imports/{id}/mapping"), &refs)
        .await;
    assert_eq!(remapped.status, StatusCode::OK, "{}", remapped.body);
    assert!(!remapped.body.contains("<option value=\"email\" selected"));
    assert!(remapped.body.contains("<option value=\"skip\" selected"));
    let run = b.hx_post(&app, &format!("/imports/{id}/run"), &[]).await;
    assert_eq!(run.header("HX-Redirect"), Some(to.as_str()));
    rapport::jobs::run_pending(&t.state).await.unwrap();
    let done = b.get(&app, &to).await.body;
    assert!(
        done.contains("Imported") && done.contains("Revert this import"),
        "{done}"
    );
    // No company file came first: contacts import without an employer but none fail.
    assert!(done.contains("118 of 118 rows"), "{done}");
    let reverted = b.hx_post(&app, &format!("/imports/{id}/revert"), &[]).await;
    assert_eq!(reverted.header("HX-Redirect"), Some(to.as_str()));
    assert!(b.get(&app, &to).await.body.contains("was reverted"));
    // A file that is not a CSV: a toast with the reason.
    let bad = b
        .hx_put_raw(
            &app,
            "/imports/upload?name=x.png&preset=generic",
            "image/png",
            vec![0x89, 0x50, 0x4e, 0x47, 0, 0, 0],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("not a text"), "{}", bad.body);
    // A sales rep has no import page.
    let mut rep = Browser::new();
    rep.sign_in(&app, "rep@acme.test", PASSWORD).await;
    assert_eq!(
        rep.get(&app, "/imports").await.status,
        StatusCode::FORBIDDEN
    );
}

/// An Excel workbook imports like a CSV: its first sheet, typed cells as text; formula-like
/// text fails its row.
#[actix_web::test]
async fn xlsx_workbooks_import_their_first_sheet() {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    let admin = t.user(&org, "admin@acme.test", "admin");
    let token = t.token(&org, &admin);
    let app = t.service().await;
    let b = import(
        &t,
        &app,
        &token,
        "generic-contacts.xlsx",
        "preset=generic",
        sample("generic-contacts.xlsx"),
    )
    .await;
    assert_eq!(b["kind"], "contacts");
    assert_eq!(counts(&b), (2, 0, 0, 1), "{b}");
    let people = send(&app, api(Method::GET, "/api/clients", &token))
        .await
        .json();
    let grace = people["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["email"] == "grace@navy.example")
        .unwrap()
        .clone();
    assert_eq!(
        grace["phone"], "5550100",
        "a number cell comes through as its digits"
    );
    assert_eq!(grace["address"]["country"], "US");
    // A zip that is no workbook is refused whole.
    let r = send(
        &app,
        api(
            Method::POST,
            "/api/imports?preset=generic&fileName=x.xlsx",
            &token,
        )
        .insert_header(("content-type", "application/octet-stream"))
        .set_payload(b"PK\x03\x04 not really a zip".to_vec()),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("not an Excel workbook"), "{}", r.body);
}

#[actix_web::test]
async fn columns_map_to_custom_fields_by_label_or_by_hand() {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    let admin = t.user(&org, "admin@acme.test", "admin");
    let token = t.token(&org, &admin);
    let app = t.service().await;
    for field in [
        json!({"entity": "client", "key": "tier", "label": "Tier", "type": "single_select", "options": ["Gold", "Silver"]}),
        json!({"entity": "client", "key": "seats", "label": "Seats", "type": "integer"}),
    ] {
        let r = send(
            &app,
            api(Method::POST, "/api/custom-fields", &token).set_json(field),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let csv = "Email,First Name,Last Name,Tier,Seat count\n\
               ada@example.test,Ada,Lovelace,Gold,12\n\
               bob@example.test,Bob,Byte,Bronze,3\n";
    let r = send(
        &app,
        api(
            Method::POST,
            "/api/imports?fileName=people.csv&preset=generic",
            &token,
        )
        .insert_header(("content-type", "text/csv"))
        .set_payload(csv),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let batch = r.json();
    let id = batch["id"].as_str().unwrap().to_string();
    // "Tier" is a custom field's label: mapped by itself. "Seat count" is not.
    assert_eq!(batch["mapping"][3], "custom.tier", "{batch}");
    assert_eq!(batch["mapping"][4], Value::Null);
    // The wizard offers custom fields as targets.
    let mut b = Browser::new();
    b.sign_in(&app, "admin@acme.test", PASSWORD).await;
    let page = b.get(&app, &format!("/imports/{id}")).await.body;
    assert!(page.contains("value=\"custom.seats\""), "{page}");
    // An unknown custom field is refused; the right one is taken.
    let bad = send(
        &app,
        api(Method::PATCH, &format!("/api/imports/{id}"), &token).set_json(json!({
            "mapping": ["email", "firstName", "lastName", "custom.tier", "custom.nope"]
        })),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    let ok = send(
        &app,
        api(Method::PATCH, &format!("/api/imports/{id}"), &token).set_json(json!({
            "mapping": ["email", "firstName", "lastName", "custom.tier", "custom.seats"]
        })),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    let run = send(
        &app,
        api(Method::POST, &format!("/api/imports/{id}/run"), &token),
    )
    .await;
    assert_eq!(run.status, StatusCode::ACCEPTED, "{}", run.body);
    rapport::jobs::run_pending(&t.state).await.unwrap();
    let done = send(
        &app,
        api(Method::GET, &format!("/api/imports/{id}"), &token),
    )
    .await
    .json();
    assert_eq!(counts(&done), (1, 0, 0, 1), "{done}");
    assert_eq!(done["errors"][0]["row"], 3);
    assert!(
        done["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("tier"),
        "{done}"
    );
    let people = send(&app, api(Method::GET, "/api/clients", &token))
        .await
        .json();
    let ada = &people["data"][0];
    assert_eq!(ada["email"], "ada@example.test");
    assert_eq!(ada["customFields"]["tier"], "Gold");
    assert_eq!(ada["customFields"]["seats"], 12);
    // A finished import that created records asks for a fresh duplicate check.
    let scan = send(&app, api(Method::GET, "/api/duplicates", &token))
        .await
        .json();
    assert_eq!(scan["scan"]["status"], "queued", "{scan}");
}

/// A finished import leaves the planner statistics fresh (nothing used to run `ANALYZE`,
/// and at a million clients a filter without statistics took 86 s on SQLite).
#[actix_web::test]
async fn a_finished_import_refreshes_the_planner_statistics() {
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    let t = TestApp::new().await;
    let app = t.service().await;
    let org = t.org("Acme");
    let admin = t.user(&org, "ann@acme.test", "admin");
    let tok = t.token(&org, &admin);
    if !t.target.location.contains("://") {
        // SQLite: no statistics before.
        let mut c = t.pool.get().unwrap();
        c.batch_execute("DROP TABLE IF EXISTS sqlite_stat1")
            .unwrap();
    }
    let mut csv = String::from("First Name,Last Name,Email\n");
    for i in 0..50 {
        csv.push_str(&format!("P{i},Person,p{i}@acme.test\n"));
    }
    import(
        &t,
        &app,
        &tok,
        "people.csv",
        "kind=contacts",
        csv.into_bytes(),
    )
    .await;
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut c = t.pool.get().unwrap();
    if t.target.location.contains("://") {
        // Every table of our schema, not a chosen few: `client_tags` was once left out and
        // scanned whole for each page of the client list.
        let never: i64 = diesel::sql_query(
            "SELECT count(*) AS n FROM pg_stat_user_tables \
             WHERE schemaname = current_schema() AND last_analyze IS NULL",
        )
        .get_result::<N>(&mut c)
        .unwrap()
        .n;
        assert_eq!(never, 0, "every table was analysed");
        return;
    }
    let n = diesel::sql_query("SELECT count(*) AS n FROM sqlite_stat1 WHERE tbl = 'clients'")
        .get_result::<N>(&mut c)
        .unwrap()
        .n;
    assert!(n > 0, "the clients table has statistics");
}

#[actix_web::test]
async fn rows_of_one_chunk_find_each_other_and_existing_clients_by_e_mail_and_company() {
    let t = TestApp::new().await;
    let app = t.service().await;
    let org = t.org("Acme");
    let admin = t.user(&org, "ann@acme.test", "admin");
    let tok = t.token(&org, &admin);
    let older = send(
        &app,
        api(Method::POST, "/api/clients", &tok)
            .set_json(serde_json::json!({"type": "company", "companyName": "Initech"})),
    )
    .await
    .json();
    // The e-mail read for the whole chunk at once must still see the row just before it.
    let csv = "First Name,Last Name,Email,Company Name\n\
               Ada,Lovelace,ADA@engine.test,Initech\n\
               Ada,King,ada@engine.test,Initech\n\
               Peter,Gibbons,peter@initech.test,Initech\n";
    let b = import(
        &t,
        &app,
        &tok,
        "people.csv",
        "kind=contacts&mode=update",
        csv.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(counts(&b), (2, 1, 0, 0), "{b}");
    let list = send(
        &app,
        api(Method::GET, "/api/clients?q=ada%40engine.test", &tok),
    )
    .await
    .json();
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{list}");
    assert_eq!(
        data[0]["lastName"], "King",
        "the second row updated the first"
    );
    assert_eq!(
        data[0]["employerId"], older["id"],
        "found the existing company by name"
    );
    // The outbox entries written in bulk reach the search index.
    rapport::search::drain_all(&t.pool, &t.state.search)
        .await
        .unwrap();
    let found = send(&app, api(Method::GET, "/api/search?q=gibbons", &tok))
        .await
        .json();
    assert_eq!(found["data"][0]["title"], "Peter Gibbons", "{found}");
    // Reverting undoes both the creates and the update, from the change log written in bulk.
    let id = b["id"].as_str().unwrap();
    let r = send(
        &app,
        api(Method::POST, &format!("/api/imports/{id}/revert"), &tok),
    )
    .await;
    assert!(r.status.is_success(), "{}", r.body);
    rapport::jobs::run_pending(&t.state).await.unwrap();
    let list = send(
        &app,
        api(Method::GET, "/api/clients?filter[type]=individual", &tok),
    )
    .await
    .json();
    assert_eq!(list["data"], serde_json::json!([]), "{list}");
}

/// A chunk's new clients are written together when it ends (a few statements instead of
/// one per row): what later rows of the same chunk do to them — update them, replace a
/// custom value, write a note or a preference on them, find them by domain or by their id
/// in the old system — must land as if each had been written at once.
#[actix_web::test]
async fn rows_held_back_until_the_chunk_ends_behave_as_written_at_once() {
    let t = TestApp::new().await;
    let app = t.service().await;
    let org = t.org("Acme");
    let admin = t.user(&org, "ann@acme.test", "admin");
    let tok = t.token(&org, &admin);
    let r = send(
        &app,
        api(Method::POST, "/api/custom-fields", &tok).set_json(serde_json::json!(
            {"entity": "client", "key": "tier", "label": "Tier", "type": "single_select", "options": ["Gold", "Silver"]}
        )),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // The second Initech row has the first one's domain, written another way.
    let companies = "ID,Name,Website,Notes\n\
                     c1,Initech,initech.test,Big account\n\
                     c2,Initech Labs,https://www.initech.test/about,\n\
                     c3,Hooli,hooli.test,\n";
    let b = import(
        &t,
        &app,
        &tok,
        "companies.csv",
        "kind=companies&mode=update&preset=generic",
        companies.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(counts(&b), (2, 1, 0, 0), "{b}");
    let list = send(
        &app,
        api(
            Method::GET,
            "/api/clients?filter%5Btype%5D=company&sort=name",
            &tok,
        ),
    )
    .await
    .json();
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["companyName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Hooli", "Initech Labs"], "{list}");
    let initech = list["data"][1]["id"].as_str().unwrap().to_string();
    let notes = send(
        &app,
        api(
            Method::GET,
            &format!("/api/clients/{initech}/interactions"),
            &tok,
        ),
    )
    .await;
    assert!(notes.body.contains("Big account"), "{}", notes.body);
    // The people's Company ID points at Hooli through the id the last file remembered.
    let people = "ID,First Name,Last Name,Email,Company ID,Tier,Email Opt Out\n\
                  p1,Ada,Lovelace,ada@engine.test,c3,Gold,yes\n\
                  p2,Ada,King,ada@engine.test,c3,Silver,\n\
                  p3,Bob,Byte,bob@engine.test,c3,Gold,\n";
    let b = import(
        &t,
        &app,
        &tok,
        "people.csv",
        "kind=contacts&mode=update&preset=generic",
        people.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(counts(&b), (2, 1, 0, 0), "{b}");
    let silver = send(
        &app,
        api(
            Method::GET,
            "/api/clients?filter%5BcustomFields.tier%5D=Silver",
            &tok,
        ),
    )
    .await
    .json();
    let data = silver["data"].as_array().unwrap();
    assert_eq!(
        data.len(),
        1,
        "the second row replaced the held value: {silver}"
    );
    assert_eq!(data[0]["lastName"], "King");
    assert_eq!(data[0]["employerId"], list["data"][0]["id"]);
    let gold = send(
        &app,
        api(
            Method::GET,
            "/api/clients?filter%5BcustomFields.tier%5D=Gold",
            &tok,
        ),
    )
    .await
    .json();
    assert_eq!(gold["data"].as_array().unwrap().len(), 1, "{gold}");
    assert_eq!(gold["data"][0]["email"], "bob@engine.test");
    let ada = data[0]["id"].as_str().unwrap();
    let prefs = send(
        &app,
        api(
            Method::GET,
            &format!("/api/clients/{ada}/preferences"),
            &tok,
        ),
    )
    .await;
    assert!(prefs.body.contains("opt_out"), "{}", prefs.body);
    // Importing the same file again finds every row by its id: nothing new.
    let again = import(
        &t,
        &app,
        &tok,
        "people.csv",
        "kind=contacts&mode=skip&preset=generic",
        people.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(counts(&again), (0, 0, 3, 0), "{again}");
}

/// On PostgreSQL two chunks of a client file run at once when they share no e-mail, id
/// or domain (`imports::lanes`). The result must be the file's, row by row: a row matching a
/// record of an earlier chunk updates it, a bad row is reported at its line, the counts add
/// up, every change has its own number, and revert undoes it all.
#[actix_web::test]
async fn chunks_run_side_by_side_land_as_the_file_says() {
    use diesel::prelude::*;
    use rapport::db::schema::import_changes as ch;
    let t = TestApp::new().await;
    let app = t.service().await;
    let org = t.org("Acme");
    let admin = t.user(&org, "ann@acme.test", "admin");
    let tok = t.token(&org, &admin);
    let chunk = rapport::domain::imports::CHUNK;
    let rows = chunk * 5 + chunk / 2;
    let mut csv = String::from("Email,First Name,Last Name,Status\n");
    for i in 0..rows {
        let (email, last, status) = match i {
            // The first chunk's row again, in the second chunk: those two run one by one.
            _ if i == chunk + chunk / 2 => ("p10@x.test".to_string(), "Updated", "lead"),
            // A row matching the (committed) second chunk, in the fourth.
            _ if i == 3 * chunk + 100 => ("p1100@x.test".to_string(), "Again", "lead"),
            _ if i == 2 * chunk + chunk / 2 => (format!("p{i}@x.test"), "Bad", "asleep"),
            _ => (format!("p{i}@x.test"), "Row", "lead"),
        };
        csv.push_str(&format!("{email},P{i},{last},{status}\n"));
    }
    let before = rapport::domain::imports::lanes::second_runs();
    let b = import(
        &t,
        &app,
        &tok,
        "people.csv",
        "preset=generic&kind=contacts&mode=update",
        csv.into_bytes(),
    )
    .await;
    assert_eq!(
        counts(&b),
        (rows as i64 - 3, 2, 0, 1),
        "two rows update, one fails: {b}"
    );
    assert_eq!(b["errors"][0]["row"], 2 * chunk + chunk / 2 + 2, "{b}");
    if t.target.backend == rapport::db::Backend::Postgres {
        assert!(
            rapport::domain::imports::lanes::second_runs() > before,
            "no chunk ran beside another"
        );
    }
    for (email, last) in [("p10@x.test", "Updated"), ("p1100@x.test", "Again")] {
        let list = send(
            &app,
            api(Method::GET, &format!("/api/clients?q={email}"), &tok),
        )
        .await
        .json();
        let data = list["data"].as_array().unwrap();
        assert_eq!(data.len(), 1, "{email}: one client, not a twin: {list}");
        assert_eq!(data[0]["lastName"], last, "{list}");
    }
    let id = b["id"].as_str().unwrap();
    {
        let mut c = t.pool.get().unwrap();
        let mut seqs: Vec<i32> = ch::table
            .filter(ch::batch_id.eq(id))
            .select(ch::seq)
            .load(&mut c)
            .unwrap();
        let n = seqs.len();
        seqs.sort_unstable();
        seqs.dedup();
        assert_eq!(
            (n, seqs.len()),
            (rows - 1, rows - 1),
            "one number per change"
        );
    }
    let r = send(
        &app,
        api(Method::POST, &format!("/api/imports/{id}/revert"), &tok),
    )
    .await;
    assert!(r.status.is_success(), "{}", r.body);
    rapport::jobs::run_pending(&t.state).await.unwrap();
    let left = send(&app, api(Method::GET, "/api/clients", &tok))
        .await
        .json();
    assert_eq!(left["data"], json!([]), "{left}");
}
