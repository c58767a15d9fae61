//! Client management through the API: fields, custom fields, filters and sorts,
//! concurrency, trash, tags, relations, bulk, record rules and tenant isolation.

use actix_web::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::*;

struct World {
    t: TestApp,
    org: rapport::domain::orgs::OrganizationRow,
    admin: String,
    manager: String,
    rep: String,
    rep_id: String,
    other_rep: String,
    other_rep_id: String,
}

async fn world() -> World {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    let admin_id = t.user(&org, "admin@acme.test", "admin");
    let manager_id = t.user(&org, "manager@acme.test", "manager");
    let rep_id = t.user(&org, "rep@acme.test", "sales_rep");
    let other_rep_id = t.user(&org, "rep2@acme.test", "sales_rep");
    World {
        admin: t.token(&org, &admin_id),
        manager: t.token(&org, &manager_id),
        rep: t.token(&org, &rep_id),
        other_rep: t.token(&org, &other_rep_id),
        rep_id,
        other_rep_id,
        t,
        org,
    }
}

fn j(method: Method, path: &str, token: &str, body: Value) -> actix_web::test::TestRequest {
    api(method, path, token).set_json(body)
}

#[actix_web::test]
async fn clients_are_created_read_and_validated() {
    let w = world().await;
    let app = w.t.service().await;
    let r = send(
        &app,
        j(Method::POST, "/api/clients", &w.rep, json!({
            "type": "individual", "firstName": "Ada", "lastName": "Lovelace", "email": "ADA@Example.com",
            "phone": "+44 20 7946 0018", "address": {"city": "London", "country": "gb"},
            "website": "ada.example", "industry": "Computing", "status": "prospect", "tags": ["VIP"]
        })),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let c = r.json();
    assert_eq!(c["displayName"], "Ada Lovelace");
    assert_eq!(c["email"], "ada@example.com");
    assert_eq!(c["address"]["country"], "GB");
    assert_eq!(c["website"], "https://ada.example");
    assert_eq!(
        c["assignedTo"],
        w.rep_id.as_str(),
        "a new client is assigned to its creator"
    );
    assert_eq!(c["tags"], json!(["VIP"]));
    assert_eq!(r.header("etag"), Some("\"v1\""));
    let id = c["id"].as_str().unwrap();
    assert_eq!(
        r.header("location"),
        Some(format!("/api/clients/{id}").as_str())
    );

    let bad = send(
        &app,
        j(Method::POST, "/api/clients", &w.rep, json!({
            "type": "robot", "email": "nope", "phone": "call me", "status": "hot",
            "address": {"country": "XX", "planet": "Mars"}, "website": "not a site", "favourite": 1
        })),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<String> = bad.json()["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_string())
        .collect();
    for f in [
        "type",
        "email",
        "phone",
        "status",
        "address.country",
        "address.planet",
        "website",
        "favourite",
    ] {
        assert!(
            fields.contains(&f.to_string()),
            "{f} missing from {fields:?}"
        );
    }
    let company = send(
        &app,
        j(
            Method::POST,
            "/api/clients",
            &w.rep,
            json!({"type": "company"}),
        ),
    )
    .await;
    assert_eq!(company.json()["errors"][0]["field"], "companyName");
}

#[actix_web::test]
async fn stale_writes_are_refused_and_nothing_is_lost() {
    let w = world().await;
    let app = w.t.service().await;
    let c = send(
        &app,
        j(
            Method::POST,
            "/api/clients",
            &w.rep,
            json!({"lastName": "Turing", "industry": "Crypto"}),
        ),
    )
    .await
    .json();
    let id = c["id"].as_str().unwrap();
    let first = send(
        &app,
        j(
            Method::PATCH,
            &format!("/api/clients/{id}"),
            &w.rep,
            json!({"industry": "Computing"}),
        )
        .insert_header(("if-match", "\"v1\"")),
    )
    .await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.header("etag"), Some("\"v2\""));
    let second = send(
        &app,
        j(
            Method::PATCH,
            &format!("/api/clients/{id}"),
            &w.rep,
            json!({"industry": "Maths"}),
        )
        .insert_header(("if-match", "\"v1\"")),
    )
    .await;
    assert_eq!(second.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(second.json()["type"], "/problems/precondition-failed");
    // A stale version in the body is refused too (409: no precondition header was sent).
    let third = send(
        &app,
        j(
            Method::PATCH,
            &format!("/api/clients/{id}"),
            &w.rep,
            json!({"industry": "Maths", "version": 1}),
        ),
    )
    .await;
    assert_eq!(third.status, StatusCode::CONFLICT);
    let now = send(
        &app,
        api(Method::GET, &format!("/api/clients/{id}"), &w.rep),
    )
    .await
    .json();
    assert_eq!(now["industry"], "Computing");

    // PUT replaces: what is left out is cleared; PATCH merges.
    let put = send(
        &app,
        j(
            Method::PUT,
            &format!("/api/clients/{id}"),
            &w.rep,
            json!({"type": "individual", "lastName": "Turing", "assignedTo": w.rep_id}),
        ),
    )
    .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    assert!(put.json()["industry"].is_null());
}

#[actix_web::test]
async fn reps_work_only_on_their_own_clients_unless_policy_grants_more() {
    let w = world().await;
    let app = w.t.service().await;
    let mine = send(
        &app,
        j(
            Method::POST,
            "/api/clients",
            &w.rep,
            json!({"lastName": "Mine"}),
        ),
    )
    .await
    .json();
    let theirs = send(
        &app,
        j(
            Method::POST,
            "/api/clients",
            &w.other_rep,
            json!({"lastName": "Theirs"}),
        ),
    )
    .await
    .json();
    let theirs_id = theirs["id"].as_str().unwrap();

    let list = send(&app, api(Method::GET, "/api/clients", &w.rep))
        .await
        .json();
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["displayName"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Mine"]);
    let relation = json!({"clientId": mine["id"], "label": "partner"});
    for (method, path, body) in [
        (Method::GET, format!("/api/clients/{theirs_id}"), json!({})),
        (
            Method::PATCH,
            format!("/api/clients/{theirs_id}"),
            json!({"industry": "x"}),
        ),
        (
            Method::GET,
            format!("/api/clients/{theirs_id}/relations"),
            json!({}),
        ),
        (
            Method::POST,
            format!("/api/clients/{theirs_id}/relations"),
            relation,
        ),
        (
            Method::POST,
            format!("/api/clients/{theirs_id}/tags"),
            json!({"tag": "x"}),
        ),
    ] {
        let r = send(&app, j(method.clone(), &path, &w.rep, body)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {path}");
    }
    // A rep may not hand a client to someone else.
    let give = send(
        &app,
        j(
            Method::PATCH,
            &format!("/api/clients/{}", mine["id"].as_str().unwrap()),
            &w.rep,
            json!({"assignedTo": w.other_rep_id}),
        ),
    )
    .await;
    assert_eq!(give.status, StatusCode::UNPROCESSABLE_ENTITY);
    // The manager sees everyone's.
    let all = send(&app, api(Method::GET, "/api/clients", &w.manager))
        .await
        .json();
    assert_eq!(all["data"].as_array().unwrap().len(), 2);
    // Granting oversee to sales reps widens their reach at once.
    send(
        &app,
        j(
            Method::POST,
            "/api/policies",
            &w.admin,
            json!({"role": "sales_rep", "resource": "client", "action": "oversee"}),
        ),
    )
    .await;
    assert_eq!(
        send(
            &app,
            api(Method::GET, &format!("/api/clients/{theirs_id}"), &w.rep)
        )
        .await
        .status,
        StatusCode::OK
    );
}

#[actix_web::test]
async fn custom_fields_are_defined_validated_filtered_and_sorted() {
    let w = world().await;
    let app = w.t.service().await;
    let field = send(
        &app,
        j(Method::POST, "/api/custom-fields", &w.manager, json!({"entity": "client", "key": "renewalDate", "label": "Renewal date", "type": "date"})),
    )
    .await;
    assert_eq!(field.status, StatusCode::CREATED, "{}", field.body);
    let tier = send(
        &app,
        j(Method::POST, "/api/custom-fields", &w.manager, json!({"key": "tier", "label": "Tier", "type": "single_select", "options": ["Gold", "Silver"], "required": true, "default": "Silver"})),
    )
    .await;
    assert_eq!(tier.status, StatusCode::CREATED, "{}", tier.body);
    let seats = send(
        &app,
        j(
            Method::POST,
            "/api/custom-fields",
            &w.manager,
            json!({"key": "seats", "label": "Seats", "type": "integer"}),
        ),
    )
    .await;
    assert_eq!(seats.status, StatusCode::CREATED);
    let dup = send(
        &app,
        j(
            Method::POST,
            "/api/custom-fields",
            &w.manager,
            json!({"key": "seats", "label": "Seats", "type": "text"}),
        ),
    )
    .await;
    assert_eq!(dup.status, StatusCode::UNPROCESSABLE_ENTITY);
    let bad_key = send(
        &app,
        j(
            Method::POST,
            "/api/custom-fields",
            &w.manager,
            json!({"key": "Renewal Date", "label": "x", "type": "date"}),
        ),
    )
    .await;
    assert_eq!(bad_key.json()["errors"][0]["field"], "key");
    let rep_define = send(
        &app,
        j(
            Method::POST,
            "/api/custom-fields",
            &w.rep,
            json!({"key": "x", "label": "x", "type": "text"}),
        ),
    )
    .await;
    assert_eq!(rep_define.status, StatusCode::FORBIDDEN);

    let today = chrono::Utc::now().date_naive();
    let day = |d: i64| {
        (today + chrono::Duration::days(d))
            .format("%Y-%m-%d")
            .to_string()
    };
    let mut ids = Vec::new();
    for (name, renewal, seats) in [
        ("Soon", day(10), 5),
        ("Later", day(90), 50),
        ("Sooner", day(3), 20),
        ("Past", day(-5), 1),
    ] {
        let r = send(
            &app,
            j(
                Method::POST,
                "/api/clients",
                &w.manager,
                json!({"lastName": name, "customFields": {"renewalDate": renewal, "seats": seats}}),
            ),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(
            r.json()["customFields"]["tier"],
            "Silver",
            "the default applies"
        );
        ids.push(r.json()["id"].as_str().unwrap().to_string());
    }
    let invalid = send(
        &app,
        j(Method::POST, "/api/clients", &w.manager, json!({"lastName": "X", "customFields": {"renewalDate": "next week", "seats": "many", "tier": "Bronze", "nope": 1}})),
    )
    .await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<String> = invalid.json()["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(fields.len(), 4, "{fields:?}");
    assert!(fields.contains(&"customFields.renewalDate".to_string()));
    let cleared = send(
        &app,
        j(
            Method::PATCH,
            &format!("/api/clients/{}", ids[0]),
            &w.manager,
            json!({"customFields": {"tier": null}}),
        ),
    )
    .await;
    assert_eq!(
        cleared.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a required field cannot be cleared"
    );

    // Renewals in the next 30 days, soonest first.
    let url = format!(
        "/api/clients?filter[customFields.renewalDate][gte]={}&filter[customFields.renewalDate][lte]={}&sort=customFields.renewalDate",
        day(0),
        day(30)
    );
    let r = send(&app, api(Method::GET, &url, &w.manager)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let body = r.json();
    let names: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["displayName"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Sooner", "Soon"]);

    // Numbers compare as numbers, sort descending, and page with a cursor.
    let r = send(
        &app,
        api(
            Method::GET,
            "/api/clients?filter[customFields.seats][gt]=4&sort=-customFields.seats&limit=2",
            &w.manager,
        ),
    )
    .await
    .json();
    let names: Vec<String> = r["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["displayName"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, vec!["Later", "Sooner"]);
    let next = r["nextCursor"].as_str().unwrap();
    let r = send(&app, api(Method::GET, &format!("/api/clients?filter[customFields.seats][gt]=4&sort=-customFields.seats&limit=2&cursor={next}"), &w.manager)).await.json();
    assert_eq!(r["data"][0]["displayName"], "Soon");
    assert!(r["nextCursor"].is_null());

    for bad in [
        "filter[customFields.seats][contains]=4",
        "filter[customFields.nope]=1",
        "sort=customFields.nope",
        "filter[customFields.renewalDate][gte]=soon",
        "sort=name,-updatedAt",
    ] {
        let r = send(
            &app,
            api(Method::GET, &format!("/api/clients?{bad}"), &w.manager),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }

    // Archiving hides the field without losing its values.
    let seats_id = seats.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        send(
            &app,
            api(
                Method::DELETE,
                &format!("/api/custom-fields/{seats_id}"),
                &w.manager
            )
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    let c = send(
        &app,
        api(Method::GET, &format!("/api/clients/{}", ids[1]), &w.manager),
    )
    .await
    .json();
    assert!(c["customFields"].get("seats").is_none());
    send(
        &app,
        j(
            Method::PATCH,
            &format!("/api/custom-fields/{seats_id}"),
            &w.manager,
            json!({"archived": false}),
        ),
    )
    .await;
    let c = send(
        &app,
        api(Method::GET, &format!("/api/clients/{}", ids[1]), &w.manager),
    )
    .await
    .json();
    assert_eq!(c["customFields"]["seats"], 50);
}

#[actix_web::test]
async fn every_list_sort_pages_through_all_clients_once() {
    let w = world().await;
    let app = w.t.service().await;
    for i in 0..7 {
        let email = if i % 2 == 0 {
            json!(format!("c{i}@x.test"))
        } else {
            json!(null)
        };
        send(&app, j(Method::POST, "/api/clients", &w.manager, json!({"lastName": format!("Name {}", i % 3), "email": email, "industry": if i % 3 == 0 { json!(null) } else { json!("Retail") }}))).await;
    }
    for sort in [
        "name",
        "-name",
        "email",
        "-email",
        "industry",
        "-createdAt",
        "updatedAt",
        "status",
        "-city",
    ] {
        let mut seen = Vec::new();
        let mut cursor = String::new();
        loop {
            let r = send(
                &app,
                api(
                    Method::GET,
                    &format!("/api/clients?sort={sort}&limit=3&cursor={cursor}"),
                    &w.manager,
                ),
            )
            .await;
            assert_eq!(r.status, StatusCode::OK, "{sort}: {}", r.body);
            let body = r.json();
            seen.extend(
                body["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["id"].as_str().unwrap().to_string()),
            );
            match body["nextCursor"].as_str() {
                Some(c) => cursor = c.to_string(),
                None => break,
            }
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!((seen.len(), unique.len()), (7, 7), "{sort}");
        // Pages of three, values and missing ones alike, read as one page of ten does.
        let whole = send(
            &app,
            api(
                Method::GET,
                &format!("/api/clients?sort={sort}&limit=10"),
                &w.manager,
            ),
        )
        .await
        .json();
        assert_eq!(seen, ids_of(&whole), "{sort}");
    }
    let by_email = send(
        &app,
        api(Method::GET, "/api/clients?sort=email&limit=10", &w.manager),
    )
    .await
    .json();
    let emails: Vec<Value> = by_email["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["email"].clone())
        .collect();
    assert!(
        emails[..4].iter().all(Value::is_string) && emails[4..].iter().all(Value::is_null),
        "missing values sort last: {emails:?}"
    );
}

#[actix_web::test]
async fn the_trash_keeps_clients_until_an_admin_purges_them() {
    let w = world().await;
    let app = w.t.service().await;
    let c = send(
        &app,
        j(
            Method::POST,
            "/api/clients",
            &w.manager,
            json!({"lastName": "Gone"}),
        ),
    )
    .await
    .json();
    let id = c["id"].as_str().unwrap();
    assert_eq!(
        send(
            &app,
            api(Method::DELETE, &format!("/api/clients/{id}"), &w.manager)
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        send(
            &app,
            api(Method::GET, &format!("/api/clients/{id}"), &w.manager)
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(&app, api(Method::GET, "/api/clients", &w.manager))
            .await
            .json()["data"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        send(&app, api(Method::GET, "/api/clients/trash", &w.manager))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(
            &app,
            api(
                Method::POST,
                &format!("/api/clients/{id}/restore"),
                &w.manager
            )
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    let trash = send(&app, api(Method::GET, "/api/clients/trash", &w.admin))
        .await
        .json();
    assert_eq!(trash["data"][0]["id"], id);
    let restored = send(
        &app,
        api(
            Method::POST,
            &format!("/api/clients/{id}/restore"),
            &w.admin,
        ),
    )
    .await;
    assert_eq!(restored.status, StatusCode::OK);
    assert!(restored.json()["deletedAt"].is_null());
    assert_eq!(
        send(
            &app,
            api(Method::POST, &format!("/api/clients/{id}/purge"), &w.admin)
        )
        .await
        .status,
        StatusCode::NOT_FOUND,
        "only trashed clients are purged"
    );
    send(
        &app,
        api(Method::DELETE, &format!("/api/clients/{id}"), &w.manager),
    )
    .await;
    assert_eq!(
        send(
            &app,
            api(Method::POST, &format!("/api/clients/{id}/purge"), &w.admin)
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        send(
            &app,
            api(
                Method::POST,
                &format!("/api/clients/{id}/restore"),
                &w.admin
            )
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    let audit = send(&app, api(Method::GET, "/api/audit-log?limit=100", &w.admin))
        .await
        .json();
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["resourceId"] == id)
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec![
            "client.purge",
            "client.delete",
            "client.restore",
            "client.delete",
            "client.create"
        ]
    );
}

#[actix_web::test]
async fn tags_relations_and_bulk_actions() {
    let w = world().await;
    let app = w.t.service().await;
    let tag = send(
        &app,
        j(
            Method::POST,
            "/api/tags",
            &w.manager,
            json!({"name": "Renewal", "color": "green"}),
        ),
    )
    .await;
    assert_eq!(tag.status, StatusCode::CREATED);
    assert_eq!(
        send(
            &app,
            j(
                Method::POST,
                "/api/tags",
                &w.manager,
                json!({"name": "renewal"})
            )
        )
        .await
        .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        send(
            &app,
            j(
                Method::POST,
                "/api/tags",
                &w.manager,
                json!({"name": "X", "color": "plaid"})
            )
        )
        .await
        .json()["errors"][0]["field"],
        "color"
    );

    let acme = send(
        &app,
        j(
            Method::POST,
            "/api/clients",
            &w.manager,
            json!({"type": "company", "companyName": "Acme Corp"}),
        ),
    )
    .await
    .json();
    let acme_id = acme["id"].as_str().unwrap();
    let ann = send(
        &app,
        j(
            Method::POST,
            "/api/clients",
            &w.manager,
            json!({"firstName": "Ann", "employerId": acme_id}),
        ),
    )
    .await
    .json();
    let ann_id = ann["id"].as_str().unwrap();
    let bob = send(
        &app,
        j(
            Method::POST,
            "/api/clients",
            &w.manager,
            json!({"firstName": "Bob"}),
        ),
    )
    .await
    .json();
    let bob_id = bob["id"].as_str().unwrap();
    let self_employed = send(
        &app,
        j(
            Method::PATCH,
            &format!("/api/clients/{bob_id}"),
            &w.manager,
            json!({"employerId": bob_id}),
        ),
    )
    .await;
    assert_eq!(self_employed.status, StatusCode::UNPROCESSABLE_ENTITY);

    let people = send(
        &app,
        api(
            Method::GET,
            &format!("/api/clients?filter[company]={acme_id}"),
            &w.manager,
        ),
    )
    .await
    .json();
    assert_eq!(people["data"][0]["id"], ann_id);

    let rel = send(
        &app,
        j(
            Method::POST,
            &format!("/api/clients/{bob_id}/relations"),
            &w.manager,
            json!({"clientId": ann_id, "label": "referred by"}),
        ),
    )
    .await;
    assert_eq!(rel.status, StatusCode::CREATED);
    let rels = send(
        &app,
        api(
            Method::GET,
            &format!("/api/clients/{ann_id}/relations"),
            &w.manager,
        ),
    )
    .await
    .json();
    assert_eq!(rels["data"][0]["direction"], "incoming");
    assert_eq!(rels["data"][0]["displayName"], "Bob");
    let rel_id = rel.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        send(
            &app,
            api(
                Method::DELETE,
                &format!("/api/clients/{ann_id}/relations/{rel_id}"),
                &w.manager
            )
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );

    let r = send(
        &app,
        j(
            Method::POST,
            &format!("/api/clients/{ann_id}/tags"),
            &w.manager,
            json!({"tag": "renewal"}),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let tagged = send(
        &app,
        api(Method::GET, "/api/clients?filter[tag]=Renewal", &w.manager),
    )
    .await
    .json();
    assert_eq!(tagged["data"].as_array().unwrap().len(), 1);

    let bulk = send(
        &app,
        j(
            Method::POST,
            "/api/clients/bulk",
            &w.manager,
            json!({"ids": [ann_id, bob_id, acme_id], "action": "assign", "assignedTo": w.rep_id}),
        ),
    )
    .await;
    assert_eq!(bulk.status, StatusCode::OK, "{}", bulk.body);
    macro_rules! mine {
        () => {
            send(&app, api(Method::GET, "/api/clients", &w.rep))
                .await
                .json()["data"]
                .as_array()
                .unwrap()
                .len()
        };
    }
    assert_eq!(mine!(), 3);
    // Assigning with no owner named is refused and changes nothing; "none" unassigns.
    for body in [
        json!({"ids": [ann_id], "action": "assign"}),
        json!({"ids": [ann_id], "action": "assign", "assignedTo": ""}),
    ] {
        let r = send(&app, j(Method::POST, "/api/clients/bulk", &w.manager, body)).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        assert_eq!(r.json()["errors"][0]["field"], "assignedTo", "{}", r.body);
    }
    assert_eq!(mine!(), 3, "nothing was unassigned");
    let mut b = Browser::new();
    b.sign_in(&app, "manager@acme.test", PASSWORD).await;
    b.get(&app, "/clients").await;
    let r = b
        .hx_post(
            &app,
            "/clients/bulk",
            &[("ids", ann_id), ("action", "assign"), ("assigned_to", "")],
        )
        .await;
    assert!(
        r.header("set-cookie")
            .is_some_and(|c| c.contains("Nothing+was+changed")),
        "{:?}",
        r.headers
    );
    assert_eq!(mine!(), 3, "nor from the console");
    let r = send(
        &app,
        j(
            Method::POST,
            "/api/clients/bulk",
            &w.manager,
            json!({"ids": [ann_id], "action": "assign", "assignedTo": "none"}),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(mine!(), 2);
    send(
        &app,
        j(
            Method::POST,
            "/api/clients/bulk",
            &w.manager,
            json!({"ids": [bob_id, acme_id], "action": "tag", "tag": "Renewal"}),
        ),
    )
    .await;
    assert_eq!(
        send(
            &app,
            api(Method::GET, "/api/clients?filter[tag]=Renewal", &w.manager)
        )
        .await
        .json()["data"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // All or nothing: one unknown id fails the whole batch.
    let partial = send(
        &app,
        j(
            Method::POST,
            "/api/clients/bulk",
            &w.manager,
            json!({"ids": [bob_id, "nope"], "action": "delete"}),
        ),
    )
    .await;
    assert_eq!(partial.status, StatusCode::NOT_FOUND);
    assert_eq!(
        send(
            &app,
            api(Method::GET, &format!("/api/clients/{bob_id}"), &w.manager)
        )
        .await
        .status,
        StatusCode::OK
    );
    let tags = send(&app, api(Method::GET, "/api/tags", &w.manager))
        .await
        .json();
    assert_eq!(tags["data"][0]["clients"], 3);
}

#[actix_web::test]
async fn clients_tags_and_fields_stay_inside_their_organization() {
    let w = world().await;
    let globex = w.t.org("Globex");
    let g_admin = w.t.user(&globex, "admin@globex.test", "admin");
    let g = w.t.token(&globex, &g_admin);
    let app = w.t.service().await;
    let c = send(
        &app,
        j(
            Method::POST,
            "/api/clients",
            &w.admin,
            json!({"lastName": "Secret"}),
        ),
    )
    .await
    .json();
    let id = c["id"].as_str().unwrap();
    let tag = send(
        &app,
        j(
            Method::POST,
            "/api/tags",
            &w.admin,
            json!({"name": "Acme only"}),
        ),
    )
    .await
    .json();
    let field = send(
        &app,
        j(
            Method::POST,
            "/api/custom-fields",
            &w.admin,
            json!({"key": "acmeScore", "label": "Score", "type": "integer"}),
        ),
    )
    .await
    .json();
    send(
        &app,
        api(Method::DELETE, &format!("/api/clients/{id}"), &w.admin),
    )
    .await;

    assert_eq!(
        send(&app, api(Method::GET, "/api/clients", &g))
            .await
            .json()["data"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        send(&app, api(Method::GET, "/api/clients/trash", &g))
            .await
            .json()["data"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    for (method, path) in [
        (Method::GET, format!("/api/clients/{id}")),
        (Method::PATCH, format!("/api/clients/{id}")),
        (Method::PUT, format!("/api/clients/{id}")),
        (Method::DELETE, format!("/api/clients/{id}")),
        (Method::POST, format!("/api/clients/{id}/restore")),
        (Method::POST, format!("/api/clients/{id}/purge")),
        (Method::GET, format!("/api/clients/{id}/tags")),
        (Method::GET, format!("/api/clients/{id}/relations")),
        (
            Method::PATCH,
            format!("/api/tags/{}", tag["id"].as_str().unwrap()),
        ),
        (
            Method::DELETE,
            format!("/api/tags/{}", tag["id"].as_str().unwrap()),
        ),
        (
            Method::GET,
            format!("/api/custom-fields/{}", field["id"].as_str().unwrap()),
        ),
        (
            Method::PATCH,
            format!("/api/custom-fields/{}", field["id"].as_str().unwrap()),
        ),
        (
            Method::DELETE,
            format!("/api/custom-fields/{}", field["id"].as_str().unwrap()),
        ),
    ] {
        let r = send(&app, j(method.clone(), &path, &g, json!({}))).await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {}",
            r.body
        );
    }
    assert_eq!(
        send(&app, api(Method::GET, "/api/tags", &g)).await.json()["data"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        send(&app, api(Method::GET, "/api/custom-fields", &g))
            .await
            .json()["data"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let filter = send(
        &app,
        api(
            Method::GET,
            "/api/clients?filter[customFields.acmeScore]=1",
            &g,
        ),
    )
    .await;
    assert_eq!(
        filter.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "another organization's field is unknown here"
    );
    let using = send(
        &app,
        j(
            Method::POST,
            "/api/clients",
            &g,
            json!({"lastName": "X", "tags": ["Acme only"], "customFields": {"acmeScore": 3}}),
        ),
    )
    .await;
    assert_eq!(using.status, StatusCode::UNPROCESSABLE_ENTITY);
    let bulk = send(
        &app,
        j(
            Method::POST,
            "/api/clients/bulk",
            &g,
            json!({"ids": [id], "action": "delete"}),
        ),
    )
    .await;
    assert_eq!(bulk.status, StatusCode::NOT_FOUND);
    let _ = (&w.org, &w.other_rep);
}

#[actix_web::test]
async fn sensitive_fields_are_shown_only_to_those_allowed_and_every_view_is_audited() {
    let w = world().await;
    let app = w.t.service().await;
    let f = send(
        &app,
        j(
            Method::POST,
            "/api/custom-fields",
            &w.admin,
            json!({"key": "taxId", "label": "Tax id", "type": "text", "sensitive": true}),
        ),
    )
    .await;
    assert_eq!(f.status, StatusCode::CREATED);
    let c = send(
        &app,
        j(
            Method::POST,
            "/api/clients",
            &w.rep,
            json!({"lastName": "Private"}),
        ),
    )
    .await
    .json();
    let id = c["id"].as_str().unwrap();
    let rep_write = send(
        &app,
        j(
            Method::PATCH,
            &format!("/api/clients/{id}"),
            &w.rep,
            json!({"customFields": {"taxId": "DE123"}}),
        ),
    )
    .await;
    assert_eq!(rep_write.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(rep_write.body.contains("sensitive"));
    let m_write = send(
        &app,
        j(
            Method::PATCH,
            &format!("/api/clients/{id}"),
            &w.manager,
            json!({"customFields": {"taxId": "DE123"}}),
        ),
    )
    .await;
    assert_eq!(m_write.status, StatusCode::OK, "{}", m_write.body);
    assert_eq!(m_write.json()["customFields"]["taxId"], "DE123");

    let as_rep = send(
        &app,
        api(Method::GET, &format!("/api/clients/{id}"), &w.rep),
    )
    .await
    .json();
    assert!(
        as_rep["customFields"].get("taxId").is_none(),
        "hidden from the rep"
    );
    // The rep's own edits leave the value they cannot see alone.
    let put = send(
        &app,
        j(
            Method::PUT,
            &format!("/api/clients/{id}"),
            &w.rep,
            json!({"lastName": "Private", "assignedTo": w.rep_id, "customFields": {}}),
        ),
    )
    .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let as_manager = send(
        &app,
        api(Method::GET, &format!("/api/clients/{id}"), &w.manager),
    )
    .await
    .json();
    assert_eq!(as_manager["customFields"]["taxId"], "DE123");

    let audit = send(&app, api(Method::GET, "/api/audit-log?limit=200", &w.admin))
        .await
        .json();
    let entries = audit["data"].as_array().unwrap();
    assert!(entries
        .iter()
        .any(|a| a["action"] == "client.view_sensitive" && a["resourceId"] == id));
    assert!(
        !audit.to_string().contains("DE123"),
        "the audit log never holds the sensitive value"
    );
}

/// What each default role may do with a client assigned to someone else.
#[actix_web::test]
async fn the_default_role_matrix_for_clients() {
    let w = world().await;
    let app = w.t.service().await;
    let c = send(
        &app,
        j(
            Method::POST,
            "/api/clients",
            &w.admin,
            json!({"lastName": "Shared"}),
        ),
    )
    .await
    .json();
    let id = c["id"].as_str().unwrap().to_string();
    // (role, list sees it, get, patch, delete, trash, define field)
    let expectations = [
        ("admin", true, 200, 200, 204, 200, 201),
        ("manager", true, 200, 200, 204, 403, 201),
        ("sales_rep", false, 404, 404, 403, 403, 403),
        ("service_rep", true, 200, 200, 403, 403, 403),
        ("marketer", true, 200, 200, 403, 403, 403),
        ("read_only", true, 200, 403, 403, 403, 403),
    ];
    for (role, sees, get, patch, delete, trash, define) in expectations {
        let uid = w.t.user(&w.org, &format!("{role}-m@acme.test"), role);
        let token = w.t.token(&w.org, &uid);
        let list = send(&app, api(Method::GET, "/api/clients", &token))
            .await
            .json();
        let listed = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == id.as_str());
        assert_eq!(listed, sees, "{role} list");
        assert_eq!(
            send(
                &app,
                api(Method::GET, &format!("/api/clients/{id}"), &token)
            )
            .await
            .status
            .as_u16(),
            get,
            "{role} get"
        );
        assert_eq!(
            send(
                &app,
                j(
                    Method::PATCH,
                    &format!("/api/clients/{id}"),
                    &token,
                    json!({"industry": role})
                )
            )
            .await
            .status
            .as_u16(),
            patch,
            "{role} patch"
        );
        assert_eq!(
            send(&app, api(Method::GET, "/api/clients/trash", &token))
                .await
                .status
                .as_u16(),
            trash,
            "{role} trash"
        );
        let field = send(
            &app,
            j(
                Method::POST,
                "/api/custom-fields",
                &token,
                json!({"key": format!("f{}", role.replace('_', "")), "label": "F", "type": "text"}),
            ),
        )
        .await;
        assert_eq!(field.status.as_u16(), define, "{role} define field");
        if delete == 204 {
            assert_eq!(
                send(
                    &app,
                    api(Method::DELETE, &format!("/api/clients/{id}"), &token)
                )
                .await
                .status
                .as_u16(),
                204,
                "{role} delete"
            );
            send(
                &app,
                api(
                    Method::POST,
                    &format!("/api/clients/{id}/restore"),
                    &w.admin,
                ),
            )
            .await;
        } else {
            assert_eq!(
                send(
                    &app,
                    api(Method::DELETE, &format!("/api/clients/{id}"), &token)
                )
                .await
                .status
                .as_u16(),
                delete,
                "{role} delete"
            );
        }
    }
}
