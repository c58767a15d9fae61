//! Sign-in, throttling, sign-out, session fixation, CSRF and API tokens.

use actix_web::http::{Method, StatusCode};

use crate::support::*;

#[actix_web::test]
async fn sign_in_succeeds_and_fails_clearly() {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    t.user(&org, "ann@acme.test", "manager");
    let app = t.service().await;

    let mut b = Browser::new();
    let bad = b.sign_in(&app, "ann@acme.test", "wrong password").await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert!(
        bad.body.contains("Incorrect e-mail or password"),
        "{}",
        bad.body
    );
    assert!(
        bad.body.contains("value=\"ann@acme.test\""),
        "the e-mail is kept in the form"
    );
    assert!(b.cookie("rapport_session").is_none());

    let ok = b.sign_in(&app, "ANN@acme.test", PASSWORD).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(ok.header("location"), Some("/"));
    let cookie = ok
        .headers
        .get_all("set-cookie")
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("rapport_session="))
        .unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP must not mark the cookie Secure"
    );

    let home = b.get(&app, "/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(
        home.body.contains("Welcome, ann@acme.test"),
        "{}",
        home.body
    );
    assert!(home.body.contains("Acme"));
}

#[actix_web::test]
async fn unauthenticated_console_requests_go_to_sign_in() {
    let t = TestApp::new().await;
    let app = t.service().await;
    let mut b = Browser::new();
    let page = b.get(&app, "/admin/users").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        page.header("location"),
        Some("/login?next=%2Fadmin%2Fusers")
    );
    let hx = b.hx_get(&app, "/admin/users").await;
    assert_eq!(hx.header("hx-redirect"), Some("/login"));
}

#[actix_web::test]
async fn repeated_failures_lock_the_account_then_the_address() {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    t.user(&org, "ann@acme.test", "admin");
    t.user(&org, "bob@acme.test", "admin");
    let app = t.service().await;

    let mut b = Browser::from_ip("10.9.9.9");
    for _ in 0..5 {
        let r = b.sign_in(&app, "ann@acme.test", "nope nope nope").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // Even the right password is refused while the account is throttled...
    let locked = b.sign_in(&app, "ann@acme.test", PASSWORD).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(locked.body.contains("Too many failed sign-ins"));
    // ...from any address.
    let mut elsewhere = Browser::from_ip("10.7.7.7");
    assert_eq!(
        elsewhere
            .sign_in(&app, "ann@acme.test", PASSWORD)
            .await
            .status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another account is unaffected.
    assert_eq!(
        b.sign_in(&app, "bob@acme.test", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );

    // An address guessing across many accounts is throttled too.
    let mut sprayer = Browser::from_ip("10.6.6.6");
    for i in 0..20 {
        let r = sprayer
            .sign_in(&app, &format!("nobody{i}@acme.test"), "guess guess")
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        sprayer
            .sign_in(&app, "bob@acme.test", PASSWORD)
            .await
            .status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[actix_web::test]
async fn sign_out_ends_the_session_everywhere() {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    t.user(&org, "ann@acme.test", "admin");
    let app = t.service().await;
    let mut b = Browser::new();
    b.sign_in(&app, "ann@acme.test", PASSWORD).await;
    let stolen = b.cookie("rapport_session").unwrap().to_string();

    let out = b.post_form(&app, "/logout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(b.cookie("rapport_session").is_none());
    let login = b.get(&app, "/login").await;
    assert!(login.body.contains("You have signed out."));

    let mut replay = Browser::new();
    replay.cookies.insert("rapport_session".into(), stolen);
    assert_eq!(
        replay.get(&app, "/").await.status,
        StatusCode::SEE_OTHER,
        "the old cookie no longer works"
    );
}

#[actix_web::test]
async fn sign_in_issues_a_new_session_and_destroys_a_planted_one() {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    t.user(&org, "ann@acme.test", "admin");
    t.user(&org, "eve@acme.test", "read_only");
    let app = t.service().await;

    // Eve signs in and plants her session cookie in Ann's browser.
    let mut eve = Browser::new();
    eve.sign_in(&app, "eve@acme.test", PASSWORD).await;
    let planted = eve.cookie("rapport_session").unwrap().to_string();
    let mut ann = Browser::new();
    ann.get(&app, "/login").await;
    ann.cookies
        .insert("rapport_session".into(), planted.clone());
    let csrf_before = ann.cookie("rapport_csrf").unwrap().to_string();

    ann.post_form(
        &app,
        "/login",
        &[("email", "ann@acme.test"), ("password", PASSWORD)],
    )
    .await;
    let after = ann.cookie("rapport_session").unwrap().to_string();
    assert_ne!(after, planted, "sign-in must issue a fresh session id");
    assert_ne!(
        ann.cookie("rapport_csrf").unwrap(),
        csrf_before,
        "the CSRF token rotates at sign-in"
    );
    assert_eq!(
        eve.get(&app, "/").await.status,
        StatusCode::SEE_OTHER,
        "the planted session was destroyed"
    );
    assert!(ann
        .get(&app, "/")
        .await
        .body
        .contains("Welcome, ann@acme.test"));
}

#[actix_web::test]
async fn state_changing_console_requests_need_the_csrf_token() {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    t.user(&org, "ann@acme.test", "admin");
    let app = t.service().await;
    let mut b = Browser::new();
    b.sign_in(&app, "ann@acme.test", PASSWORD).await;

    let form = [
        ("email", "new@acme.test"),
        ("role", "sales_rep"),
        ("password", "a long password"),
    ];
    // No token at all.
    let body = serde_urlencoded::to_string(form).unwrap();
    let cookies = format!(
        "rapport_session={}; rapport_csrf={}",
        b.cookie("rapport_session").unwrap(),
        b.cookie("rapport_csrf").unwrap()
    );
    let bare = send(
        &app,
        actix_web::test::TestRequest::post()
            .uri("/admin/users")
            .insert_header(("cookie", cookies.clone()))
            .insert_header(("content-type", "application/x-www-form-urlencoded"))
            .set_payload(body.clone()),
    )
    .await;
    assert_eq!(bare.status, StatusCode::FORBIDDEN);
    assert!(bare.body.contains("CSRF"), "{}", bare.body);
    // A wrong token, as htmx would send it.
    let wrong = send(
        &app,
        actix_web::test::TestRequest::post()
            .uri("/admin/users")
            .insert_header(("cookie", cookies))
            .insert_header(("hx-request", "true"))
            .insert_header(("x-csrf-token", "0".repeat(64)))
            .insert_header(("content-type", "application/x-www-form-urlencoded"))
            .set_payload(body),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert_eq!(
        wrong.header("hx-retarget"),
        Some("#toasts"),
        "htmx gets a toast"
    );

    let mut c = t.pool.get().unwrap();
    assert!(
        rapport::domain::orgs::store::find_user_by_email(&mut c, "new@acme.test")
            .unwrap()
            .is_none()
    );

    // With the token (form field, then header) it goes through.
    assert_eq!(
        b.post_form(&app, "/admin/users", &form).await.status,
        StatusCode::OK
    );
    assert!(
        rapport::domain::orgs::store::find_user_by_email(&mut c, "new@acme.test")
            .unwrap()
            .is_some()
    );
    let r = b
        .hx_post(
            &app,
            "/admin/users",
            &[("email", "two@acme.test"), ("role", "manager")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("one-time password"), "{}", r.body);
}

#[actix_web::test]
async fn tokens_authenticate_until_revoked() {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    let ann = t.user(&org, "ann@acme.test", "sales_rep");
    let token = t.token(&org, &ann);
    let app = t.service().await;

    let none = send(&app, actix_web::test::TestRequest::get().uri("/api/me")).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert!(none.is_problem());
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    let bogus = send(&app, api(Method::GET, "/api/me", "rpt_bogus")).await;
    assert_eq!(bogus.status, StatusCode::UNAUTHORIZED);

    let me = send(&app, api(Method::GET, "/api/me", &token)).await;
    assert_eq!(me.status, StatusCode::OK);
    let me = me.json();
    assert_eq!(me["user"]["email"], "ann@acme.test");
    assert_eq!(me["organization"]["slug"], "acme");
    assert_eq!(me["role"], "sales_rep");
    let perms: Vec<&str> = me["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(perms.contains(&"client:write"));
    assert!(!perms.contains(&"policy:write"));

    // The token lists itself with a last-used time, then revokes itself.
    let list = send(&app, api(Method::GET, "/api/tokens", &token))
        .await
        .json();
    let row = &list["data"][0];
    assert!(row["lastUsedAt"].is_string());
    assert!(row.get("token").is_none(), "the secret is never listed");
    let id = row["id"].as_str().unwrap();
    let del = send(
        &app,
        api(Method::DELETE, &format!("/api/tokens/{id}"), &token),
    )
    .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    assert_eq!(
        send(&app, api(Method::GET, "/api/me", &token)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[actix_web::test]
async fn tokens_are_created_and_revoked_in_the_console() {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    t.user(&org, "ann@acme.test", "read_only");
    let app = t.service().await;
    let mut b = Browser::new();
    b.sign_in(&app, "ann@acme.test", PASSWORD).await;

    let empty = b.hx_post(&app, "/account/tokens", &[("name", " ")]).await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(empty.body.contains("Name the token"));

    let made = b
        .hx_post(&app, "/account/tokens", &[("name", "Zapier")])
        .await;
    let secret = made
        .body
        .split("<code class=\"secret\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_string();
    assert!(secret.starts_with("rpt_"));
    assert_eq!(
        send(&app, api(Method::GET, "/api/me", &secret))
            .await
            .status,
        StatusCode::OK
    );

    let list = send(&app, api(Method::GET, "/api/tokens", &secret))
        .await
        .json();
    let id = list["data"][0]["id"].as_str().unwrap().to_string();
    let revoked = b
        .hx_post(&app, &format!("/account/tokens/{id}/revoke"), &[])
        .await;
    assert!(revoked.body.contains("Revoked"));
    assert_eq!(
        send(&app, api(Method::GET, "/api/me", &secret))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[actix_web::test]
async fn deactivated_members_lose_console_and_api_access() {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    let admin = t.user(&org, "admin@acme.test", "admin");
    let bob = t.user(&org, "bob@acme.test", "sales_rep");
    let admin_token = t.token(&org, &admin);
    let bob_token = t.token(&org, &bob);
    let app = t.service().await;
    let mut b = Browser::new();
    b.sign_in(&app, "bob@acme.test", PASSWORD).await;
    assert_eq!(b.get(&app, "/").await.status, StatusCode::OK);

    let r = send(
        &app,
        api(Method::PATCH, &format!("/api/users/{bob}"), &admin_token)
            .set_json(serde_json::json!({"isActive": false})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["isActive"], false);

    assert_eq!(b.get(&app, "/").await.status, StatusCode::SEE_OTHER);
    assert_eq!(
        send(&app, api(Method::GET, "/api/me", &bob_token))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let again = Browser::new()
        .sign_in(&app, "bob@acme.test", PASSWORD)
        .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
}
