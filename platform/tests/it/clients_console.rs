//! The client console as people use it, including the bar scenario.

use actix_web::http::{Method, StatusCode};
use serde_json::json;

use crate::support::*;

/// A manager defines "Renewal date", fills it on three clients, filters to the next 30
/// days; a sales rep without the grant cannot see clients assigned to others.
#[actix_web::test]
async fn the_renewal_date_bar_in_the_console() {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    t.user(&org, "manager@acme.test", "manager");
    let rep = t.user(&org, "rep@acme.test", "sales_rep");
    let app = t.service().await;
    let mut m = Browser::new();
    m.sign_in(&app, "manager@acme.test", PASSWORD).await;

    let r = m
        .hx_post(
            &app,
            "/admin/custom-fields",
            &[
                ("label", "Renewal date"),
                ("key", "renewalDate"),
                ("type", "date"),
                ("group", "Contract"),
            ],
        )
        .await;
    assert_eq!(
        r.header("hx-redirect"),
        Some("/admin/custom-fields?entity=client"),
        "{}",
        r.body
    );
    let page = m.get(&app, "/admin/custom-fields").await;
    assert!(page.body.contains("Renewal date") && page.body.contains("renewalDate"));
    let form = m.get(&app, "/clients/new").await;
    assert!(form.body.contains("name=\"cf.renewalDate\"") && form.body.contains("type=\"date\""));

    let today = chrono::Utc::now().date_naive();
    let day = |d: i64| {
        (today + chrono::Duration::days(d))
            .format("%Y-%m-%d")
            .to_string()
    };
    let rep_id = rep.clone();
    for (name, renewal, owner) in [
        ("Soon", day(7), rep_id.as_str()),
        ("Later", day(60), ""),
        ("Sooner", day(2), ""),
    ] {
        let owner = if owner.is_empty() { None } else { Some(owner) };
        let mut fields = vec![
            ("type", "individual"),
            ("lastName", name),
            ("status", "customer"),
            ("cf.renewalDate", renewal.as_str()),
            ("version", "0"),
        ];
        if let Some(o) = owner {
            fields.push(("assignedTo", o));
        }
        let r = m.hx_post(&app, "/clients", &fields).await;
        assert!(
            r.header("hx-redirect")
                .is_some_and(|l| l.starts_with("/clients/")),
            "{}: {}",
            r.status,
            r.body
        );
    }
    let list = m
        .get(&app, &format!("/clients?cf_key=renewalDate&cf_op=gte&cf_value={}&filter[customFields.renewalDate][lte]={}&columns=cf:renewalDate&sort=customFields.renewalDate", day(0), day(30)))
        .await;
    assert_eq!(list.status, StatusCode::OK);
    let sooner = list.body.find(">Sooner<").expect("Sooner listed");
    let soon = list.body.find(">Soon<").expect("Soon listed");
    assert!(sooner < soon, "soonest renewal first");
    assert!(!list.body.contains(">Later<"));
    assert!(
        list.body.contains(&day(2)),
        "the renewal column shows the date"
    );

    // The rep sees only the client assigned to them, in the console and the API.
    let mut r = Browser::new();
    r.sign_in(&app, "rep@acme.test", PASSWORD).await;
    let mine = r.get(&app, "/clients").await.body;
    assert!(mine.contains(">Soon<") && !mine.contains(">Sooner<") && !mine.contains(">Later<"));
    let token = t.token(&org, &rep);
    let api_list = send(&app, api(Method::GET, "/api/clients", &token))
        .await
        .json();
    assert_eq!(api_list["data"].as_array().unwrap().len(), 1);
    let manager_api = send(
        &app,
        api(
            Method::GET,
            "/api/clients?filter[customFields.renewalDate][gte]=2000-01-01",
            &t.token(&org, &t_user_id(&t, "manager@acme.test")),
        ),
    )
    .await
    .json();
    assert_eq!(manager_api["data"].as_array().unwrap().len(), 3);
}

fn t_user_id(t: &TestApp, email: &str) -> String {
    let mut c = t.pool.get().unwrap();
    rapport::domain::orgs::store::find_user_by_email(&mut c, email)
        .unwrap()
        .unwrap()
        .id
}

#[actix_web::test]
async fn client_pages_render_as_page_fragment_and_restore() {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    let admin = t.user(&org, "admin@acme.test", "admin");
    let token = t.token(&org, &admin);
    let app = t.service().await;
    let c = send(
        &app,
        api(Method::POST, "/api/clients", &token)
            .set_json(json!({"type": "company", "companyName": "Globex"})),
    )
    .await
    .json();
    let id = c["id"].as_str().unwrap();
    let mut b = Browser::new();
    b.sign_in(&app, "admin@acme.test", PASSWORD).await;
    for path in [
        "/clients".to_string(),
        format!("/clients/{id}"),
        format!("/clients/{id}/edit"),
        "/clients/new".into(),
        "/clients/trash".into(),
        "/admin/custom-fields".into(),
        "/admin/tags".into(),
    ] {
        let page = b.get(&app, &path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(page.body.starts_with("<!doctype html>"), "{path}");
        assert!(page.header("vary").unwrap().contains("HX-Request"));
        let fragment = b.hx_get(&app, &path).await;
        assert_eq!(fragment.status, StatusCode::OK, "{path}");
        assert!(
            fragment.body.contains("<h1"),
            "{path}: the fragment has the page's content"
        );
        assert!(!fragment.body.contains("<html"), "{path}");
        let restored = b.hx_restore(&app, &path).await;
        assert!(
            restored.body.starts_with("<!doctype html>"),
            "{path}: a history restore gets the whole page"
        );
        assert!(
            page.body.contains(fragment.body.trim()),
            "{path}: page and fragment drifted"
        );
    }
    let dash = b.get(&app, "/").await.body;
    assert!(dash.contains("New clients this week"));
}

#[actix_web::test]
async fn the_form_validates_inline_and_refuses_stale_edits() {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    let admin = t.user(&org, "admin@acme.test", "admin");
    let token = t.token(&org, &admin);
    let app = t.service().await;
    send(
        &app,
        api(Method::POST, "/api/custom-fields", &token).set_json(
            json!({"key": "seats", "label": "Seats", "type": "integer", "required": true}),
        ),
    )
    .await;
    let mut b = Browser::new();
    b.sign_in(&app, "admin@acme.test", PASSWORD).await;

    let bad = b
        .hx_post(
            &app,
            "/clients",
            &[
                ("type", "individual"),
                ("email", "nope"),
                ("cf.seats", "lots"),
                ("version", "0"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("Enter a valid e-mail address."));
    assert!(bad.body.contains("Give at least a first or a last name."));
    assert!(bad.body.contains("not a whole number"));
    assert!(bad.body.contains("value=\"lots\""), "typed values are kept");

    let ok = b
        .hx_post(
            &app,
            "/clients",
            &[
                ("type", "individual"),
                ("lastName", "Hopper"),
                ("cf.seats", "3"),
                ("version", "0"),
            ],
        )
        .await;
    let id = ok
        .header("hx-redirect")
        .unwrap()
        .trim_start_matches("/clients/")
        .to_string();
    // Someone else edits it through the API...
    send(
        &app,
        api(Method::PATCH, &format!("/api/clients/{id}"), &token)
            .set_json(json!({"industry": "Navy"})),
    )
    .await;
    // ...while this form still carries version 1.
    let stale = b
        .hx_post(
            &app,
            &format!("/clients/{id}"),
            &[
                ("type", "individual"),
                ("lastName", "Hopper"),
                ("cf.seats", "4"),
                ("version", "1"),
            ],
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert!(stale.body.contains("changed by someone else"));
    assert!(
        stale.body.contains("value=\"4\""),
        "the user's edit is kept on screen"
    );
    let now = send(
        &app,
        api(Method::GET, &format!("/api/clients/{id}"), &token),
    )
    .await
    .json();
    assert_eq!(now["industry"], "Navy");
    assert_eq!(now["customFields"]["seats"], 3);

    // Delete, then restore from the trash page.
    let del = b.hx_post(&app, &format!("/clients/{id}/delete"), &[]).await;
    assert_eq!(del.header("hx-redirect"), Some("/clients"));
    assert!(b.get(&app, "/clients/trash").await.body.contains("Hopper"));
    let restored = b
        .hx_post(&app, &format!("/clients/{id}/restore"), &[])
        .await;
    assert_eq!(
        restored.header("hx-redirect"),
        Some(format!("/clients/{id}").as_str())
    );
    let profile = b.get(&app, &format!("/clients/{id}")).await.body;
    assert!(
        profile.contains("restored it") && profile.contains("moved it to the trash"),
        "the history shows it"
    );
}

#[actix_web::test]
async fn roles_and_organizations_limit_the_client_pages() {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    let admin = t.user(&org, "admin@acme.test", "admin");
    t.user(&org, "ro@acme.test", "read_only");
    t.user(&org, "rep@acme.test", "sales_rep");
    let token = t.token(&org, &admin);
    let globex = t.org("Globex");
    t.user(&globex, "g@globex.test", "admin");
    let app = t.service().await;
    let c = send(
        &app,
        api(Method::POST, "/api/clients", &token).set_json(json!({"lastName": "Secret"})),
    )
    .await
    .json();
    let id = c["id"].as_str().unwrap();

    let mut ro = Browser::new();
    ro.sign_in(&app, "ro@acme.test", PASSWORD).await;
    assert_eq!(
        ro.get(&app, &format!("/clients/{id}")).await.status,
        StatusCode::OK,
        "read-only sees everyone's clients"
    );
    assert_eq!(
        ro.get(&app, "/clients/new").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        ro.get(&app, &format!("/clients/{id}/edit")).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        ro.hx_post(&app, &format!("/clients/{id}/delete"), &[])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert!(!ro
        .get(&app, &format!("/clients/{id}"))
        .await
        .body
        .contains(">Edit<"));

    let mut rep = Browser::new();
    rep.sign_in(&app, "rep@acme.test", PASSWORD).await;
    assert_eq!(
        rep.get(&app, &format!("/clients/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        rep.get(&app, "/clients/trash").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        rep.get(&app, "/admin/custom-fields").await.status,
        StatusCode::FORBIDDEN
    );
    let lookup = rep.get(&app, "/clients/lookup?q=sec").await.body;
    assert!(!lookup.contains("Secret"), "pickers respect record rules");

    let mut g = Browser::new();
    g.sign_in(&app, "g@globex.test", PASSWORD).await;
    for path in [format!("/clients/{id}"), format!("/clients/{id}/edit")] {
        assert_eq!(
            g.get(&app, &path).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    assert_eq!(
        g.hx_post(
            &app,
            &format!("/clients/{id}"),
            &[("lastName", "Mine"), ("version", "1")]
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        g.hx_post(&app, &format!("/clients/{id}/delete"), &[])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert!(!g.get(&app, "/clients").await.body.contains("Secret"));
    assert!(!g
        .get(&app, "/clients/lookup?q=sec")
        .await
        .body
        .contains("Secret"));
    let bulk = g
        .hx_post(&app, "/clients/bulk", &[("ids", id), ("action", "delete")])
        .await;
    assert_eq!(bulk.status, StatusCode::NOT_FOUND);
    assert_eq!(
        send(
            &app,
            api(Method::GET, &format!("/api/clients/{id}"), &token)
        )
        .await
        .status,
        StatusCode::OK,
        "still there"
    );
}
