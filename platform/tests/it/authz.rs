//! The role matrix, live policy changes (also across instances) and organization isolation.

use actix_web::http::{Method, StatusCode};
use actix_web::test;

use crate::support::*;

const ROLES: [&str; 6] = [
    "admin",
    "manager",
    "sales_rep",
    "service_rep",
    "marketer",
    "read_only",
];

#[actix_web::test]
async fn only_admins_reach_the_admin_pages_and_apis() {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    let app = t.service().await;
    for role in ROLES {
        let email = format!("{role}@acme.test");
        let id = t.user(&org, &email, role);
        let token = t.token(&org, &id);
        let mut b = Browser::new();
        b.sign_in(&app, &email, PASSWORD).await;
        let is_admin = role == "admin";
        let expect = |allowed: bool| {
            if allowed {
                StatusCode::OK
            } else {
                StatusCode::FORBIDDEN
            }
        };

        assert_eq!(
            b.get(&app, "/admin/users").await.status,
            expect(is_admin),
            "{role} /admin/users"
        );
        assert_eq!(
            b.get(&app, "/admin/permissions").await.status,
            expect(is_admin),
            "{role} /admin/permissions"
        );
        assert_eq!(
            b.get(&app, "/admin/audit").await.status,
            expect(is_admin),
            "{role} /admin/audit"
        );
        let nav = b.get(&app, "/").await.body;
        assert_eq!(
            nav.contains("<li><a href=\"/admin/users\""),
            is_admin,
            "{role} sees the Users link only if admin"
        );

        // Reading the directory is a `user:read` right, which every role but read_only has.
        let list = send(&app, api(Method::GET, "/api/users", &token)).await;
        assert_eq!(
            list.status,
            expect(role != "read_only"),
            "{role} GET /api/users"
        );
        let create = send(
            &app,
            api(Method::POST, "/api/users", &token).set_json(
                serde_json::json!({"email": format!("x-{role}@acme.test"), "role": "read_only"}),
            ),
        )
        .await;
        assert_eq!(
            create.status,
            if is_admin {
                StatusCode::CREATED
            } else {
                StatusCode::FORBIDDEN
            },
            "{role} POST /api/users"
        );
        assert_eq!(
            send(&app, api(Method::GET, "/api/policies", &token))
                .await
                .status,
            expect(is_admin),
            "{role} GET /api/policies"
        );
        let grant = send(
            &app,
            api(Method::POST, "/api/policies", &token).set_json(
                serde_json::json!({"role": "marketer", "resource": "opportunity", "action": "export"}),
            ),
        )
        .await;
        assert!(
            grant.status.is_success() == is_admin,
            "{role} POST /api/policies: {}",
            grant.status
        );
        assert_eq!(
            send(&app, api(Method::GET, "/api/audit-log", &token))
                .await
                .status,
            expect(is_admin),
            "{role} audit"
        );
        if !is_admin {
            let r = send(&app, api(Method::GET, "/api/policies", &token)).await;
            assert!(r.is_problem());
            assert_eq!(r.json()["status"], 403);
        }
    }
}

/// The bar: an admin unticks the manager's `read` on users in the
/// Permissions page; the manager's next API request for users is refused.
#[actix_web::test]
async fn a_revoked_right_is_refused_at_once_even_on_another_instance() {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    t.user(&org, "admin@acme.test", "admin");
    let manager = t.user(&org, "manager@acme.test", "manager");
    let token = t.token(&org, &manager);
    let app = t.service().await;
    let other = test::init_service(rapport::app::build(t.another_instance().await)).await;

    assert_eq!(
        send(&app, api(Method::GET, "/api/users", &token))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        send(&other, api(Method::GET, "/api/users", &token))
            .await
            .status,
        StatusCode::OK
    );

    let mut admin = Browser::new();
    admin.sign_in(&app, "admin@acme.test", PASSWORD).await;
    let page = admin.get(&app, "/admin/permissions?role=manager").await;
    assert!(page.body.contains("id=\"cell-user-read\""));
    // Unticking sends the form without `allowed`.
    let r = admin
        .hx_post(
            &app,
            "/admin/permissions",
            &[
                ("role", "manager"),
                ("resource", "user"),
                ("action", "read"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("may no longer read on user"), "{}", r.body);

    assert_eq!(
        send(&app, api(Method::GET, "/api/users", &token))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&other, api(Method::GET, "/api/users", &token))
            .await
            .status,
        StatusCode::FORBIDDEN,
        "the other instance reloads the policy without a restart"
    );

    // Ticking it again restores it everywhere, and both changes are audited.
    admin
        .hx_post(
            &app,
            "/admin/permissions",
            &[
                ("role", "manager"),
                ("resource", "user"),
                ("action", "read"),
                ("allowed", "true"),
            ],
        )
        .await;
    assert_eq!(
        send(&other, api(Method::GET, "/api/users", &token))
            .await
            .status,
        StatusCode::OK
    );
    let page = admin.get(&app, "/admin/audit").await.body;
    let audit = audit_rows(&page);
    assert!(
        audit.contains("Permission revoked") && audit.contains("Permission granted"),
        "{audit}"
    );
}

/// The audit log's entries, without the filters above them (whose "what happened" list
/// names every action).
fn audit_rows(page: &str) -> &str {
    page.split_once("<tbody>")
        .and_then(|(_, rest)| rest.split_once("</tbody>"))
        .map_or("", |(rows, _)| rows)
}

#[actix_web::test]
async fn the_admin_role_and_the_last_admin_cannot_be_taken_away() {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    let admin = t.user(&org, "admin@acme.test", "admin");
    let token = t.token(&org, &admin);
    let app = t.service().await;

    let r = send(
        &app,
        api(Method::DELETE, "/api/policies/admin/user/admin", &token),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = send(
        &app,
        api(Method::PATCH, &format!("/api/users/{admin}"), &token)
            .set_json(serde_json::json!({"role": "manager"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.json()["detail"]
        .as_str()
        .unwrap()
        .contains("at least one active admin"));
    // Still an admin.
    assert_eq!(
        send(&app, api(Method::GET, "/api/policies", &token))
            .await
            .status,
        StatusCode::OK
    );
}

#[actix_web::test]
async fn one_organization_never_sees_another() {
    let t = TestApp::new().await;
    let acme = t.org("Acme");
    let globex = t.org("Globex");
    let acme_admin = t.user(&acme, "admin@acme.test", "admin");
    let acme_rep = t.user(&acme, "rep@acme.test", "sales_rep");
    let globex_admin = t.user(&globex, "admin@globex.test", "admin");
    let acme_token = t.token(&acme, &acme_admin);
    let acme_rep_token = t.token(&acme, &acme_rep);
    let globex_token = t.token(&globex, &globex_admin);
    let app = t.service().await;
    // Something in Acme's audit log and policies that Globex must not see.
    send(
        &app,
        api(Method::POST, "/api/policies", &acme_token).set_json(
            serde_json::json!({"role": "marketer", "resource": "opportunity", "action": "export"}),
        ),
    )
    .await;

    let users = send(&app, api(Method::GET, "/api/users", &globex_token))
        .await
        .json();
    let emails: Vec<&str> = users["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, vec!["admin@globex.test"]);
    for path in [
        format!("/api/users/{acme_rep}"),
        format!("/api/users/{acme_rep}/reset-password"),
    ] {
        let method = if path.ends_with("password") {
            Method::POST
        } else {
            Method::GET
        };
        let r = send(&app, api(method, &path, &globex_token)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
    }
    let patch = send(
        &app,
        api(
            Method::PATCH,
            &format!("/api/users/{acme_rep}"),
            &globex_token,
        )
        .set_json(serde_json::json!({"role": "admin"})),
    )
    .await;
    assert_eq!(patch.status, StatusCode::NOT_FOUND);

    // Tokens: Acme's are invisible and irrevocable from Globex.
    let acme_tokens = send(&app, api(Method::GET, "/api/tokens", &acme_rep_token))
        .await
        .json();
    let acme_token_id = acme_tokens["data"][0]["id"].as_str().unwrap().to_string();
    let globex_tokens = send(&app, api(Method::GET, "/api/tokens", &globex_token)).await;
    assert_eq!(globex_tokens.status, StatusCode::OK);
    let globex_tokens = globex_tokens.json();
    assert!(
        !globex_tokens["data"].as_array().unwrap().is_empty(),
        "Globex's own token is listed"
    );
    assert!(!globex_tokens.to_string().contains(&acme_token_id));
    let del = send(
        &app,
        api(
            Method::DELETE,
            &format!("/api/tokens/{acme_token_id}"),
            &globex_token,
        ),
    )
    .await;
    assert_eq!(del.status, StatusCode::NOT_FOUND);
    assert_eq!(
        send(&app, api(Method::GET, "/api/me", &acme_rep_token))
            .await
            .status,
        StatusCode::OK
    );

    // Policies and audit entries are per organization.
    let policies = send(&app, api(Method::GET, "/api/policies", &globex_token)).await;
    assert_eq!(policies.status, StatusCode::OK);
    let policies = policies.json();
    assert!(
        !policies["data"].as_array().unwrap().is_empty(),
        "Globex's own grants are listed"
    );
    assert!(!policies["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["role"] == "marketer"
            && p["resource"] == "opportunity"
            && p["action"] == "export"));
    let audit = send(
        &app,
        api(Method::GET, "/api/audit-log?limit=500", &globex_token),
    )
    .await;
    assert_eq!(audit.status, StatusCode::OK);
    let audit = audit.json();
    assert!(
        !audit["data"].as_array().unwrap().is_empty(),
        "Globex's own entries are listed"
    );
    let text = audit.to_string();
    assert!(!text.contains("acme.test"), "{text}");
    assert!(!text.contains(&acme_rep));

    // A Globex grant does not leak into Acme's enforcement.
    let grant = send(
        &app,
        api(Method::POST, "/api/policies", &globex_token).set_json(
            serde_json::json!({"role": "sales_rep", "resource": "policy", "action": "read"}),
        ),
    )
    .await;
    assert!(grant.status.is_success(), "{}", grant.body);
    assert_eq!(
        send(&app, api(Method::GET, "/api/policies", &acme_rep_token))
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // A Globex admin's console does not list Acme's people.
    let mut b = Browser::new();
    b.sign_in(&app, "admin@globex.test", PASSWORD).await;
    let page = b.get(&app, "/admin/users").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("admin@globex.test"),
        "Globex's own people are listed"
    );
    assert!(!page.body.contains("acme.test"));
    let cross = b
        .hx_post(
            &app,
            &format!("/admin/users/{acme_rep}"),
            &[("version", "1"), ("role", "admin")],
        )
        .await;
    assert_eq!(cross.status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn a_member_of_two_organizations_switches_between_them() {
    let t = TestApp::new().await;
    let acme = t.org("Acme");
    let globex = t.org("Globex");
    t.user(&acme, "ann@acme.test", "admin");
    t.user(&globex, "ann@acme.test", "read_only");
    let stranger = t.org("Initech");
    let app = t.service().await;
    let mut b = Browser::new();
    b.sign_in(&app, "ann@acme.test", PASSWORD).await;
    let home = b.get(&app, "/").await.body;
    assert!(home.contains("as Admin"), "{home}");
    assert!(
        home.contains("Globex"),
        "the switcher lists the other organization"
    );

    let r = b
        .post_form(&app, "/switch-org", &[("organization_id", &globex.id)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let home = b.get(&app, "/").await.body;
    assert!(
        home.contains("You are working in <strong>Globex</strong> as Read only"),
        "{home}"
    );
    assert!(home.contains("You are now working in Globex."));
    assert_eq!(
        b.get(&app, "/admin/users").await.status,
        StatusCode::FORBIDDEN
    );

    let r = b
        .post_form(&app, "/switch-org", &[("organization_id", &stranger.id)])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "not a member there");
    assert!(b
        .get(&app, "/")
        .await
        .body
        .contains("<strong>Globex</strong>"));
    let _ = acme;
}

/// Data in and out by role: exports need `export`, imports and merges `write` and `delete`,
/// attachments `write` to upload and `read` to download.
#[actix_web::test]
async fn data_in_and_out_follow_the_role_matrix() {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    let app = t.service().await;
    let admin_id = t.user(&org, "boss@acme.test", "admin");
    let admin = t.token(&org, &admin_id);
    for role in ROLES {
        let id = t.user(&org, &format!("{role}@acme.test"), role);
        let token = t.token(&org, &id);
        let may = |roles: &[&str]| roles.contains(&role);
        let status_for = |ok: bool, yes: StatusCode| if ok { yes } else { StatusCode::FORBIDDEN };
        // A client of this user's, so visibility is never what refuses.
        let client = send(
            &app,
            api(Method::POST, "/api/clients", &admin).set_json(
                serde_json::json!({"type": "company", "companyName": format!("{role} Ltd"), "assignedTo": id}),
            ),
        )
        .await
        .json()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let twin = send(
            &app,
            api(Method::POST, "/api/clients", &admin).set_json(
                serde_json::json!({"type": "company", "companyName": format!("{role} Ltd."), "assignedTo": id}),
            ),
        )
        .await
        .json()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let cases: Vec<(&str, StatusCode, actix_web::test::TestRequest)> = vec![
            (
                "client export",
                status_for(may(&["admin", "manager", "marketer"]), StatusCode::OK),
                api(Method::GET, "/api/clients/export?format=xlsx", &token),
            ),
            (
                "deal export",
                status_for(may(&["admin", "manager"]), StatusCode::OK),
                api(Method::GET, "/api/opportunities/export", &token),
            ),
            (
                "import",
                status_for(may(&["admin", "manager"]), StatusCode::CREATED),
                api(
                    Method::POST,
                    "/api/imports?preset=generic&fileName=a.csv",
                    &token,
                )
                .insert_header(("content-type", "text/csv"))
                .set_payload("Email,First Name\na@b.test,A\n"),
            ),
            (
                "attachment upload",
                status_for(
                    may(&["admin", "manager", "sales_rep", "service_rep", "marketer"]),
                    StatusCode::CREATED,
                ),
                api(
                    Method::POST,
                    &format!("/api/clients/{client}/attachments?name=a.txt"),
                    &token,
                )
                .set_payload("a"),
            ),
            (
                "merge",
                status_for(may(&["admin", "manager"]), StatusCode::OK),
                api(
                    Method::POST,
                    &format!("/api/clients/{client}/merge"),
                    &token,
                )
                .set_json(serde_json::json!({"duplicateId": twin})),
            ),
        ];
        for (what, expected, req) in cases {
            let r = send(&app, req).await;
            assert_eq!(r.status, expected, "{role}: {what}: {}", r.body);
        }
        // Whoever reads the client downloads its files.
        let file = send(
            &app,
            api(
                Method::POST,
                &format!("/api/clients/{client}/attachments?name=b.txt"),
                &admin,
            )
            .set_payload("b"),
        )
        .await
        .json()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let got = send(
            &app,
            api(
                Method::GET,
                &format!("/api/attachments/{file}/content"),
                &token,
            ),
        )
        .await;
        assert_eq!(got.status, StatusCode::OK, "{role}: download");
    }
}

/// The Permissions page shows the rights Rapport checks and no other; deleting a timeline
/// entry needs `interaction:delete` (not only write), in the API and the console, and a
/// grant on a right nothing checks is refused.
#[actix_web::test]
async fn the_permissions_page_shows_only_the_rights_the_code_checks() {
    use serde_json::json;
    let t = TestApp::new().await;
    let org = t.org("Acme");
    let admin_id = t.user(&org, "admin@acme.test", "admin");
    let rep_id = t.user(&org, "rep@acme.test", "sales_rep");
    let (admin, rep) = (t.token(&org, &admin_id), t.token(&org, &rep_id));
    let app = t.service().await;

    let rights = send(&app, api(Method::GET, "/api/policies/rights", &admin))
        .await
        .json();
    let of = |r: &str| {
        rights["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["resource"] == r)
            .map(|x| x["actions"].clone())
    };
    assert!(of("interaction")
        .unwrap()
        .as_array()
        .unwrap()
        .contains(&json!("delete")));
    assert_eq!(
        of("segment").unwrap(),
        json!(["read", "write", "delete", "export"]),
        "segments check their rights"
    );
    assert!(
        of("organization").is_none(),
        "nothing checks organization rights yet"
    );
    let refused = send(
        &app,
        api(Method::POST, "/api/policies", &admin)
            .set_json(json!({"role": "sales_rep", "resource": "organization", "action": "write"})),
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("would change nothing"),
        "{}",
        refused.body
    );

    let mut b = Browser::new();
    b.sign_in(&app, "admin@acme.test", PASSWORD).await;
    let page = b.get(&app, "/admin/permissions?role=sales_rep").await.body;
    assert!(page.contains("id=\"cell-interaction-delete\""));
    assert!(!page.contains("cell-organization-read") && page.contains("cell-segment-read"));
    assert!(
        !page.contains("id=\"cell-tag-export\""),
        "tags have no export"
    );

    // A rep logs a note and, by default, may delete it.
    let client = send(
        &app,
        api(Method::POST, "/api/clients", &rep)
            .set_json(json!({"type": "individual", "lastName": "Wirth"})),
    )
    .await
    .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let log = |subject: &str| {
        api(
            Method::POST,
            &format!("/api/clients/{client}/interactions"),
            &rep,
        )
        .set_json(json!({"type": "note", "subject": subject}))
    };
    let first = send(&app, log("Wrong client")).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let second = send(&app, log("Kept")).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = send(
        &app,
        api(Method::DELETE, &format!("/api/interactions/{first}"), &rep),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);

    // The admin takes the right away: the API refuses, the console offers no Delete, and
    // editing still works.
    let r = send(
        &app,
        api(
            Method::DELETE,
            "/api/policies/sales_rep/interaction/delete",
            &admin,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = send(
        &app,
        api(Method::DELETE, &format!("/api/interactions/{second}"), &rep),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let mut rb = Browser::new();
    rb.sign_in(&app, "rep@acme.test", PASSWORD).await;
    let timeline = rb
        .get(&app, &format!("/clients/{client}/timeline"))
        .await
        .body;
    assert!(
        timeline.contains("Kept") && timeline.contains("/edit\""),
        "{timeline}"
    );
    assert!(!timeline.contains(&format!("/interactions/{second}/delete")));
    let r = rb
        .hx_post(&app, &format!("/interactions/{second}/delete"), &[])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let still = send(
        &app,
        api(Method::GET, &format!("/api/interactions/{second}"), &rep),
    )
    .await;
    assert_eq!(still.status, StatusCode::OK);
}

/// The audit log names people and records and narrows by who, what kind of record, which
/// action and which days, in the console and the API.
#[actix_web::test]
async fn the_audit_log_filters_and_names_what_it_shows() {
    use serde_json::json;
    let t = TestApp::new().await;
    let org = t.org("Acme");
    let admin_id = t.user(&org, "admin@acme.test", "admin");
    let rep_id = t.user(&org, "rep@acme.test", "sales_rep");
    let (admin, rep) = (t.token(&org, &admin_id), t.token(&org, &rep_id));
    let app = t.service().await;
    let client = send(
        &app,
        api(Method::POST, "/api/clients", &rep)
            .set_json(json!({"type": "company", "companyName": "Initech"})),
    )
    .await
    .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = send(
        &app,
        api(Method::PATCH, &format!("/api/clients/{client}"), &rep)
            .set_json(json!({"status": "customer"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    send(
        &app,
        api(Method::POST, "/api/tags", &admin).set_json(json!({"name": "VIP"})),
    )
    .await;

    let list = |q: &str| api(Method::GET, &format!("/api/audit-log?{q}"), &admin);
    let by_rep = send(&app, list(&format!("filter[actor]={rep_id}")))
        .await
        .json();
    let actions: Vec<&str> = by_rep["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["client.update", "client.create"]);
    assert_eq!(by_rep["data"][0]["actionLabel"], "Client changed");
    assert_eq!(by_rep["data"][0]["resourceName"], "Initech");
    let updates = send(&app, list("filter[action]=client.update"))
        .await
        .json();
    assert_eq!(updates["data"].as_array().unwrap().len(), 1);
    let today = chrono::Utc::now().date_naive();
    let tomorrow = today + chrono::Duration::days(1);
    let none = send(&app, list(&format!("filter[from]={tomorrow}")))
        .await
        .json();
    assert!(none["data"].as_array().unwrap().is_empty());
    let all_today = send(
        &app,
        list(&format!("filter[from]={today}&filter[to]={today}")),
    )
    .await
    .json();
    assert!(all_today["data"].as_array().unwrap().len() >= 3);
    let bad = send(&app, list("filter[from]=yesterday")).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);

    let mut b = Browser::new();
    b.sign_in(&app, "admin@acme.test", PASSWORD).await;
    let page = b.get(&app, "/admin/audit?kind=client").await.body;
    let rows = audit_rows(&page);
    assert!(
        rows.contains("Client changed")
            && rows.contains(&format!("<a href=\"/clients/{client}\">Initech</a>")),
        "{page}"
    );
    assert!(
        !page.contains("Tag created"),
        "only client records, and client actions"
    );
    assert!(
        !page.contains(&format!(">{client}<")) && !page.contains(&format!(" {client}<")),
        "no ids shown"
    );
    // "What happened" offers the actions in words, and narrows the log to one.
    assert!(
        page.contains("<option value=\"client.update\">Client changed</option>"),
        "{page}"
    );
    let page = b
        .get(&app, "/admin/audit?kind=client&action=client.update")
        .await
        .body;
    assert!(page.contains("<option value=\"client.update\" selected>Client changed</option>"));
    let rows = audit_rows(&page);
    assert!(rows.contains("Client changed") && !rows.contains("Client created"));
    let page = b
        .get(&app, &format!("/admin/audit?actor={admin_id}"))
        .await
        .body;
    let rows = audit_rows(&page);
    assert!(rows.contains("Tag created") && !rows.contains("Client changed"));

    // A client's "History" opens the log narrowed to that client; another client's
    // entries stay out, and the other filters keep to the record.
    let other = send(
        &app,
        api(Method::POST, "/api/clients", &admin)
            .set_json(json!({"type": "company", "companyName": "Globex"})),
    )
    .await
    .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let profile = b.get(&app, &format!("/clients/{client}")).await.body;
    let link = format!("/admin/audit?kind=client&amp;record={client}");
    assert!(
        profile.contains(&format!("href=\"{link}\">History</a>")),
        "{profile}"
    );
    let history = b.get(&app, &link.replace("&amp;", "&")).await;
    assert_eq!(history.status, StatusCode::OK);
    let rows = audit_rows(&history.body);
    assert!(
        rows.contains("Client changed") && rows.contains("Client created"),
        "{}",
        history.body
    );
    assert!(history
        .body
        .contains("The history of <strong>Initech</strong>"));
    assert!(!rows.contains("Globex") && !rows.contains(&other));
    assert!(history.body.contains(&format!(
        "<input type=\"hidden\" name=\"record\" value=\"{client}\">"
    )));
    // A deal's too.
    let pipelines = send(&app, api(Method::GET, "/api/pipelines", &admin))
        .await
        .json();
    let deal = send(
        &app,
        api(Method::POST, "/api/opportunities", &admin).set_json(json!({
            "name": "Renewal", "clientId": client, "value": "100.00",
            "stage": pipelines["data"][0]["stages"][0]["id"]
        })),
    )
    .await;
    assert_eq!(deal.status, StatusCode::CREATED, "{}", deal.body);
    let deal = deal.json()["id"].as_str().unwrap().to_string();
    let link = format!("/admin/audit?kind=opportunity&amp;record={deal}");
    let deal_page = b.get(&app, &format!("/opportunities/{deal}")).await.body;
    assert!(
        deal_page.contains(&format!("href=\"{link}\">History</a>")),
        "{deal_page}"
    );
    let history = b.get(&app, &link.replace("&amp;", "&")).await.body;
    let rows = audit_rows(&history);
    assert!(
        rows.contains("Deal created") && !rows.contains("Client created"),
        "{history}"
    );
    // Only those who may read the log are shown the way to it.
    let mut rep_b = Browser::new();
    rep_b.sign_in(&app, "rep@acme.test", PASSWORD).await;
    let profile = rep_b.get(&app, &format!("/clients/{client}")).await;
    assert_eq!(profile.status, StatusCode::OK);
    assert!(!profile.body.contains("/admin/audit"));
}

/// Default roles fit their jobs: a rep tags clients (making a tag while tagging) but does
/// not rename the organization's tags; a manager does; a marketer creates and tags leads
/// and completes the tasks given to them, and still sees no deal.
#[actix_web::test]
async fn default_roles_fit_their_jobs() {
    use serde_json::json;
    let t = TestApp::new().await;
    let org = t.org("Acme");
    let manager_id = t.user(&org, "manager@acme.test", "manager");
    let rep_id = t.user(&org, "rep@acme.test", "sales_rep");
    let mk_id = t.user(&org, "mk@acme.test", "marketer");
    let (manager, rep, mk) = (
        t.token(&org, &manager_id),
        t.token(&org, &rep_id),
        t.token(&org, &mk_id),
    );
    let app = t.service().await;
    let client = send(
        &app,
        api(Method::POST, "/api/clients", &rep)
            .set_json(json!({"type": "company", "companyName": "Initech"})),
    )
    .await
    .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let tagged = send(
        &app,
        api(Method::PATCH, &format!("/api/clients/{client}"), &rep)
            .set_json(json!({"tags": ["Hot lead"]})),
    )
    .await;
    assert_eq!(tagged.status, StatusCode::OK, "{}", tagged.body);
    let tags = send(&app, api(Method::GET, "/api/tags", &rep)).await.json();
    let tag = tags["data"][0]["id"].as_str().unwrap().to_string();
    let rename = |token: &str| {
        api(Method::PATCH, &format!("/api/tags/{tag}"), token)
            .set_json(json!({"name": "Warm lead"}))
    };
    assert_eq!(send(&app, rename(&rep)).await.status, StatusCode::FORBIDDEN);
    assert_eq!(send(&app, rename(&manager)).await.status, StatusCode::OK);
    let mut b = Browser::new();
    b.sign_in(&app, "rep@acme.test", PASSWORD).await;
    assert!(!b.get(&app, "/").await.body.contains("href=\"/admin/tags\""));

    // The marketer: a new lead, tagged, a note, a task done; no deals.
    let lead = send(
        &app,
        api(Method::POST, "/api/clients", &mk)
            .set_json(json!({"type": "individual", "lastName": "Lead", "status": "lead", "tags": ["Webinar 2026"]})),
    )
    .await;
    assert_eq!(lead.status, StatusCode::CREATED, "{}", lead.body);
    let lead = lead.json()["id"].as_str().unwrap().to_string();
    let r = send(
        &app,
        api(Method::POST, &format!("/api/clients/{lead}/tags"), &mk)
            .set_json(json!({"tag": "Warm lead"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "an existing tag too: {}", r.body);
    let task = send(
        &app,
        api(Method::POST, "/api/tasks", &manager).set_json(json!({
            "clientId": lead, "subject": "Send the brochure", "assigneeId": mk_id
        })),
    )
    .await
    .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let done = send(
        &app,
        api(Method::POST, &format!("/api/tasks/{task}/complete"), &mk),
    )
    .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(
        send(&app, api(Method::GET, "/api/opportunities", &mk))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let gone = send(
        &app,
        api(Method::DELETE, &format!("/api/clients/{lead}"), &mk),
    )
    .await;
    assert_eq!(
        gone.status,
        StatusCode::FORBIDDEN,
        "marketers delete nothing"
    );
}
