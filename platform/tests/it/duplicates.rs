//! Duplicates: flagged on create, grouped by the scan, merged with everything attached moved
//! to the survivor, and undone exactly from the audit entry.

use actix_web::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::*;

#[actix_web::test]
async fn duplicates_are_flagged_merged_and_the_merge_undone() {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    let m = t.user(&org, "manager@acme.test", "manager");
    let r = t.user(&org, "rep@acme.test", "sales_rep");
    let manager = t.token(&org, &m);
    let rep = t.token(&org, &r);
    let app = t.service().await;
    let create = |body: Value| api(Method::POST, "/api/clients", &manager).set_json(body);
    let a = send(&app, create(json!({"firstName": "Ada", "lastName": "Lovelace", "email": "ada@engine.test", "phone": "+1 (555) 010-2000", "tags": ["vip"]}))).await.json();
    let b = send(&app, create(json!({"firstName": "Ada", "lastName": "Lovelace", "email": "ADA@engine.test", "address": {"city": "London"}, "tags": ["newsletter"]}))).await;
    assert_eq!(b.status, StatusCode::CREATED, "{}", b.body);
    let b = b.json();
    assert_eq!(b["possibleDuplicates"][0]["id"], a["id"]);
    assert_eq!(b["possibleDuplicates"][0]["reason"], "same e-mail");
    let c = send(
        &app,
        create(json!({"firstName": "Augusta", "lastName": "King", "phone": "555.010.2000"})),
    )
    .await
    .json();
    assert_eq!(c["possibleDuplicates"][0]["reason"], "same phone number");
    assert_eq!(a["phoneE164"], "+15550102000", "{a}");
    assert_eq!(
        c["phoneE164"],
        Value::Null,
        "no country code and no country: not placed"
    );
    // A number written in its national form, the client in Germany, meets its twin written
    // internationally.
    let berlin = send(
        &app,
        create(json!({"firstName": "Hans", "lastName": "Weber", "phone": "+49 30 1234567"})),
    )
    .await
    .json();
    let twin = send(
        &app,
        create(json!({"firstName": "Johann", "lastName": "Weber", "phone": "030 123 45 67", "address": {"country": "DE"}})),
    )
    .await
    .json();
    assert_eq!(twin["phoneE164"], "+49301234567", "{twin}");
    assert_eq!(twin["possibleDuplicates"][0]["id"], berlin["id"], "{twin}");
    // The same name alone, with no company to share, is not suspicious.
    let namesake = send(
        &app,
        create(json!({"firstName": "Ada", "lastName": "Lovelace", "email": "other.ada@mail.test"})),
    )
    .await
    .json();
    assert_eq!(namesake["possibleDuplicates"], json!([]), "{namesake}");
    let (a_id, b_id, c_id) = (
        a["id"].as_str().unwrap().to_string(),
        b["id"].as_str().unwrap().to_string(),
        c["id"].as_str().unwrap().to_string(),
    );
    // The groups come from a background scan: the first look asks for one.
    let first = send(&app, api(Method::GET, "/api/duplicates", &manager))
        .await
        .json();
    assert_eq!(first["scan"]["status"], "queued", "{first}");
    assert_eq!(first["data"], json!([]));
    assert_eq!(
        rapport::jobs::run_duplicate_scans(&t.state).await.unwrap(),
        1
    );
    assert_eq!(
        rapport::jobs::run_duplicate_scans(&t.state).await.unwrap(),
        0,
        "nothing due until someone asks again"
    );
    let groups = send(&app, api(Method::GET, "/api/duplicates", &manager))
        .await
        .json();
    assert_eq!(groups["scan"]["status"], "done", "{groups}");
    assert_eq!(groups["scan"]["scannedClients"], 6, "{groups}");
    let again = send(&app, api(Method::POST, "/api/duplicates/scan", &manager)).await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(again.json()["scan"]["status"], "queued");
    assert_eq!(
        rapport::jobs::run_duplicate_scans(&t.state).await.unwrap(),
        1
    );
    // A rep sees groups only among the clients they see (none of these are theirs).
    let theirs = send(&app, api(Method::GET, "/api/duplicates", &rep))
        .await
        .json();
    assert_eq!(theirs["data"], json!([]), "{theirs}");
    let reasons: Vec<&str> = groups["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.contains(&"same e-mail") && reasons.contains(&"same phone number"),
        "{groups}"
    );

    // Things attached to the duplicate.
    send(
        &app,
        api(
            Method::POST,
            &format!("/api/clients/{b_id}/interactions"),
            &manager,
        )
        .set_json(json!({"type": "call", "subject": "Asked about the engine"})),
    )
    .await;
    let p = send(&app, api(Method::GET, "/api/pipelines", &manager))
        .await
        .json();
    let deal = send(&app, api(Method::POST, "/api/opportunities", &manager).set_json(json!({"name": "Engine", "clientId": b_id, "value": "10", "stage": p["data"][0]["stages"][0]["id"]}))).await;
    assert_eq!(deal.status, StatusCode::CREATED, "{}", deal.body);
    let rel = send(
        &app,
        api(
            Method::POST,
            &format!("/api/clients/{b_id}/relations"),
            &manager,
        )
        .set_json(json!({"clientId": c_id, "label": "colleague"})),
    )
    .await;
    assert!(rel.status.is_success(), "{}", rel.body);
    let a_before = send(
        &app,
        api(Method::GET, &format!("/api/clients/{a_id}"), &manager),
    )
    .await
    .json();

    // A sales rep may not merge; a client cannot be merged into itself.
    let denied = send(
        &app,
        api(Method::POST, &format!("/api/clients/{a_id}/merge"), &rep)
            .set_json(json!({"duplicateId": b_id})),
    )
    .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let itself = send(
        &app,
        api(
            Method::POST,
            &format!("/api/clients/{a_id}/merge"),
            &manager,
        )
        .set_json(json!({"duplicateId": a_id})),
    )
    .await;
    assert_eq!(itself.status, StatusCode::UNPROCESSABLE_ENTITY);

    let merged = send(
        &app,
        api(
            Method::POST,
            &format!("/api/clients/{a_id}/merge"),
            &manager,
        )
        .set_json(json!({"duplicateId": b_id, "fields": ["address"]})),
    )
    .await;
    assert_eq!(merged.status, StatusCode::OK, "{}", merged.body);
    let undo_id = merged.json()["undoId"].as_str().unwrap().to_string();
    let a_after = send(
        &app,
        api(Method::GET, &format!("/api/clients/{a_id}"), &manager),
    )
    .await
    .json();
    assert_eq!(
        a_after["address"]["city"], "London",
        "the chosen value survives"
    );
    assert_eq!(
        a_after["phone"], a_before["phone"],
        "the survivor keeps the rest"
    );
    let mut tags: Vec<&str> = a_after["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    tags.sort();
    assert_eq!(tags, vec!["newsletter", "vip"]);
    let timeline = send(
        &app,
        api(
            Method::GET,
            &format!("/api/clients/{a_id}/interactions"),
            &manager,
        ),
    )
    .await
    .json();
    let subjects: Vec<&str> = timeline["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["subject"].as_str().unwrap())
        .collect();
    assert!(subjects.contains(&"Asked about the engine"), "{subjects:?}");
    assert!(
        subjects
            .iter()
            .any(|s| s.starts_with("Merged Ada Lovelace")),
        "{subjects:?}"
    );
    let deals = send(
        &app,
        api(
            Method::GET,
            &format!("/api/opportunities?filter[clientId]={a_id}"),
            &manager,
        ),
    )
    .await
    .json();
    assert!(
        deals["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["name"] == "Engine"),
        "{deals}"
    );
    assert_eq!(
        send(
            &app,
            api(Method::GET, &format!("/api/clients/{b_id}"), &manager)
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    let rels = send(
        &app,
        api(
            Method::GET,
            &format!("/api/clients/{a_id}/relations"),
            &manager,
        ),
    )
    .await;
    assert!(rels.body.contains(&c_id), "relations move: {}", rels.body);

    // Undo: both as before.
    let undone = send(
        &app,
        api(
            Method::POST,
            &format!("/api/merges/{undo_id}/undo"),
            &manager,
        ),
    )
    .await;
    assert_eq!(undone.status, StatusCode::OK, "{}", undone.body);
    let a_again = send(
        &app,
        api(Method::GET, &format!("/api/clients/{a_id}"), &manager),
    )
    .await
    .json();
    assert_eq!(a_again, a_before, "the survivor is exactly as before");
    let b_again = send(
        &app,
        api(
            Method::GET,
            &format!("/api/clients/{b_id}/interactions"),
            &manager,
        ),
    )
    .await
    .json();
    assert_eq!(b_again["data"][0]["subject"], "Asked about the engine");
    let deals = send(
        &app,
        api(
            Method::GET,
            &format!("/api/opportunities?filter[clientId]={b_id}"),
            &manager,
        ),
    )
    .await
    .json();
    assert_eq!(ids_of(&deals).len(), 1);
    let again = send(
        &app,
        api(
            Method::POST,
            &format!("/api/merges/{undo_id}/undo"),
            &manager,
        ),
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
}

#[actix_web::test]
async fn the_console_lists_compares_merges_and_undoes() {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    let m = t.user(&org, "manager@acme.test", "manager");
    let manager = t.token(&org, &m);
    let app = t.service().await;
    let mut ids = Vec::new();
    for email in ["grace@navy.test", "Grace@Navy.test"] {
        let r = send(
            &app,
            api(Method::POST, "/api/clients", &manager)
                .set_json(json!({"firstName": "Grace", "lastName": "Hopper", "email": email})),
        )
        .await;
        ids.push(r.json()["id"].as_str().unwrap().to_string());
    }
    let mut b = Browser::new();
    b.sign_in(&app, "manager@acme.test", PASSWORD).await;
    let page = b.get(&app, "/clients/duplicates").await.body;
    assert!(page.contains("Checking for duplicates now"), "{page}");
    rapport::jobs::run_duplicate_scans(&t.state).await.unwrap();
    let page = b.get(&app, "/clients/duplicates").await.body;
    assert!(
        page.contains("Last checked") && page.contains("Check again"),
        "{page}"
    );
    assert!(
        page.contains("same e-mail")
            && page.contains(&format!("/clients/{}/merge?with={}", ids[0], ids[1])),
        "{page}"
    );
    let profile = b.get(&app, &format!("/clients/{}", ids[0])).await.body;
    assert!(profile.contains("Possible duplicates"));
    let compare = b
        .get(&app, &format!("/clients/{}/merge?with={}", ids[0], ids[1]))
        .await;
    assert_eq!(compare.status, StatusCode::OK);
    assert!(
        compare
            .body
            .contains("Merge Grace Hopper into Grace Hopper"),
        "{}",
        compare.body
    );
    let merged = b
        .hx_post(
            &app,
            &format!("/clients/{}/merge", ids[0]),
            &[("duplicate", ids[1].as_str())],
        )
        .await;
    let to = merged.header("HX-Redirect").expect("redirect").to_string();
    assert!(to.starts_with("/merges/"), "{}", merged.body);
    assert!(b.get(&app, &to).await.body.contains("Undo the merge"));
    let undone = b.hx_post(&app, &format!("{to}/undo"), &[]).await;
    assert_eq!(undone.header("HX-Redirect"), Some(to.as_str()));
    assert!(b.get(&app, &to).await.body.contains("Merge undone"));
}

#[actix_web::test]
async fn a_merge_takes_custom_fields_and_its_undo_restores_them() {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    let m = t.user(&org, "manager@acme.test", "manager");
    let manager = t.token(&org, &m);
    let app = t.service().await;
    for field in [
        json!({"entity": "client", "key": "tier", "label": "Tier", "type": "single_select", "options": ["Gold", "Silver"]}),
        json!({"entity": "client", "key": "seats", "label": "Seats", "type": "integer"}),
    ] {
        let r = send(
            &app,
            api(Method::POST, "/api/custom-fields", &manager).set_json(field),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let create = |body: Value| api(Method::POST, "/api/clients", &manager).set_json(body);
    let a = send(
        &app,
        create(json!({"firstName": "Ada", "lastName": "L", "customFields": {"tier": "Gold"}})),
    )
    .await
    .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let b = send(&app, create(json!({"firstName": "Ada", "lastName": "L.", "customFields": {"tier": "Silver", "seats": 5}})))
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let found = |q: &'static str| {
        let app = &app;
        let manager = manager.clone();
        async move {
            send(
                app,
                api(Method::GET, &format!("/api/clients?{q}"), &manager),
            )
            .await
            .json()["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    // The compare page offers the custom field.
    let mut br = Browser::new();
    br.sign_in(&app, "manager@acme.test", PASSWORD).await;
    let page = br
        .get(&app, &format!("/clients/{a}/merge?with={b}"))
        .await
        .body;
    assert!(page.contains("name=\"field_customFields.tier\""), "{page}");
    let merged = send(
        &app,
        api(Method::POST, &format!("/api/clients/{a}/merge"), &manager)
            .set_json(json!({"duplicateId": b, "fields": ["customFields.tier"]})),
    )
    .await;
    assert_eq!(merged.status, StatusCode::OK, "{}", merged.body);
    let undo = merged.json()["undoId"].as_str().unwrap().to_string();
    let after = send(
        &app,
        api(Method::GET, &format!("/api/clients/{a}"), &manager),
    )
    .await
    .json();
    assert_eq!(after["customFields"]["tier"], "Silver", "{after}");
    assert_eq!(
        after["customFields"]["seats"], 5,
        "empty on the survivor: filled"
    );
    assert_eq!(
        found("filter[customFields.tier]=Silver").await,
        vec![a.clone()]
    );
    assert_eq!(
        found("filter[customFields.tier]=Gold").await,
        Vec::<String>::new()
    );
    let r = send(
        &app,
        api(Method::POST, &format!("/api/merges/{undo}/undo"), &manager),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let a_back = send(
        &app,
        api(Method::GET, &format!("/api/clients/{a}"), &manager),
    )
    .await
    .json();
    assert_eq!(a_back["customFields"]["tier"], "Gold");
    assert_eq!(a_back["customFields"]["seats"], Value::Null);
    assert_eq!(
        found("filter[customFields.tier]=Gold").await,
        vec![a.clone()]
    );
    assert_eq!(
        found("filter[customFields.tier]=Silver").await,
        vec![b.clone()]
    );
    // A field that does not exist cannot be asked for.
    let bad = send(
        &app,
        api(Method::POST, &format!("/api/clients/{a}/merge"), &manager)
            .set_json(json!({"duplicateId": b, "fields": ["customFields.nope"]})),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
}
