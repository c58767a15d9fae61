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

/// The mail servers of `tests/mail/start` (IMAP, SMTP submission), when they run.
fn mail_servers() -> Option<(String, u16, String, u16)> {
    let split = |v: String| {
        let (h, p) = v.rsplit_once(':')?;
        Some((h.to_string(), p.parse().ok()?))
    };
    let imap = split(std::env::var("RAPPORT_TEST_IMAP").ok()?)?;
    let smtp = split(std::env::var("RAPPORT_TEST_SMTP").ok()?)?;
    Some((imap.0, imap.1, smtp.0, smtp.1))
}

/// A message as the person reads it.
struct Mail {
    from: String,
    subject: String,
    text: String,
}

/// `who`'s inbox, read over IMAP; waits (without blocking the test's runtime) until it
/// holds `want` messages.
async fn inbox(s: &(String, u16, String, u16), who: &str, want: usize) -> Vec<Mail> {
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
        let (server, login) = (server.clone(), login.clone());
        let raw = actix_web::web::block(move || {
            let mut session = transport::imap_login(&server, &login).expect("imap");
            let f = transport::fetch_new(&mut session, "INBOX", None).expect("fetch");
            let _ = session.logout();
            f.messages
        })
        .await
        .unwrap();
        if raw.len() >= want {
            return raw
                .iter()
                .map(|(_, bytes)| {
                    let m = mail_parser::MessageParser::default()
                        .parse(bytes)
                        .expect("a message");
                    Mail {
                        from: m
                            .from()
                            .and_then(|a| a.first())
                            .and_then(|a| a.address())
                            .unwrap_or_default()
                            .to_string(),
                        subject: m.subject().unwrap_or_default().to_string(),
                        text: m.body_text(0).unwrap_or_default().into_owned(),
                    }
                })
                .collect();
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!("{who} did not receive {want} message(s)");
}

/// The path of the reset link in a mail (`/password/reset/<token>`).
fn reset_path(mail: &Mail) -> String {
    let at = mail
        .text
        .find("/password/reset/")
        .unwrap_or_else(|| panic!("no reset link in: {}", mail.text));
    mail.text[at..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Password reset requests recorded for `email`: (all, with a link).
fn reset_rows(t: &TestApp, email: &str) -> (i64, i64) {
    use diesel::prelude::*;
    use rapport::db::schema::password_resets as r;
    let mut c = t.pool.get().unwrap();
    let all = r::table
        .filter(r::email.eq(email))
        .count()
        .get_result(&mut c)
        .unwrap();
    let linked = r::table
        .filter(r::email.eq(email))
        .filter(r::token_hash.is_not_null())
        .count()
        .get_result(&mut c)
        .unwrap();
    (all, linked)
}

fn system_mail(s: &(String, u16, String, u16), sender: &str) -> rapport::config::SystemMail {
    use rapport::integrations::mail as transport;
    rapport::config::SystemMail {
        server: transport::Server {
            host: s.2.clone(),
            port: s.3,
            security: transport::Security::None,
        },
        login: transport::Login {
            username: sender.into(),
            password: "secret".into(),
        },
        from: format!("Rapport <{sender}>"),
    }
}

const NEW_PASSWORD: &str = "a brand new passphrase";

#[actix_web::test]
async fn a_forgotten_password_is_reset_with_the_link_mailed_to_the_person() {
    let Some(s) = mail_servers() else {
        eprintln!(
            "SKIPPED: no mail servers (RAPPORT_TEST_IMAP/RAPPORT_TEST_SMTP; tests/mail/start)"
        );
        return;
    };
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..10];
    let (person, nobody, sender) = (
        format!("ann-{tag}@mail.rapport.test"),
        format!("nobody-{tag}@mail.rapport.test"),
        format!("noreply-{tag}@mail.rapport.test"),
    );
    let mail = system_mail(&s, &sender);
    let t = TestApp::with_config(|c| c.system_mail = Some(mail)).await;
    let (acme, globex) = (t.org("Acme"), t.org("Globex"));
    let ann = t.user(&acme, &person, "sales_rep");
    t.user(&globex, &person, "manager");
    let app = t.service().await;

    // Ann works in both organizations, one browser in each.
    let mut in_acme = Browser::new();
    in_acme.sign_in(&app, &person, PASSWORD).await;
    let mut in_globex = Browser::new();
    in_globex.sign_in(&app, &person, PASSWORD).await;
    let switched = in_globex
        .post_form(&app, "/switch-org", &[("organization_id", &globex.id)])
        .await;
    assert_eq!(switched.status, StatusCode::SEE_OTHER);
    assert_eq!(in_globex.get(&app, "/").await.status, StatusCode::OK);
    // Someone guessing has locked her account.
    let mut guesser = Browser::from_ip("10.4.4.4");
    for _ in 0..6 {
        guesser.sign_in(&app, &person, "a wrong guess").await;
    }
    assert_eq!(
        Browser::new().sign_in(&app, &person, PASSWORD).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );

    // She follows "Forgot your password?" from the sign-in page.
    let mut b = Browser::new();
    let login = b.get(&app, "/login").await;
    assert!(
        login.body.contains("href=\"/password/forgot\""),
        "{}",
        login.body
    );
    let form = b.get(&app, "/password/forgot").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("name=\"csrf_token\""), "{}", form.body);
    let malformed = b
        .post_form(&app, "/password/forgot", &[("email", "ann at acme")])
        .await;
    assert_eq!(malformed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(malformed
        .body
        .contains("class=\"field-error\">Enter a valid e-mail address."));
    assert!(
        malformed.body.contains("value=\"ann at acme\""),
        "the entry is kept"
    );
    let asked = b
        .post_form(
            &app,
            "/password/forgot",
            &[("email", &person.to_uppercase())],
        )
        .await;
    assert_eq!(asked.status, StatusCode::OK);
    assert!(
        asked.body.contains("If an account uses this address, we sent it a link to choose a new password. It is valid for 60 minutes."),
        "{}",
        asked.body
    );
    // An address without an account gets the very same page, and no mail.
    let unknown = b
        .post_form(&app, "/password/forgot", &[("email", &nobody)])
        .await;
    assert_eq!(unknown.status, asked.status);
    assert_eq!(unknown.body, asked.body);

    let mails = inbox(&s, &person, 1).await;
    assert_eq!(mails[0].subject, "Reset your Rapport password");
    assert_eq!(mails[0].from, sender);
    assert!(
        mails[0].text.contains("valid for 60 minutes"),
        "{}",
        mails[0].text
    );
    assert!(mails[0].text.contains("did not ask"), "{}", mails[0].text);
    assert!(inbox(&s, &nobody, 0).await.is_empty());
    assert_eq!(
        reset_rows(&t, &nobody),
        (1, 0),
        "no link for an unknown address"
    );
    let link = reset_path(&mails[0]);

    // The link opens the form; a weak password is refused next to the field.
    let page = b.get(&app, &link).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("name=\"password\""), "{}", page.body);
    assert_eq!(page.header("cache-control"), Some("no-store"));
    let weak = b.post_form(&app, &link, &[("password", "short")]).await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        weak.body
            .contains("class=\"field-error\">Use at least 10 characters."),
        "{}",
        weak.body
    );
    let done = b
        .post_form(&app, &link, &[("password", NEW_PASSWORD)])
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(done.header("location"), Some("/login"));
    assert!(b
        .get(&app, "/login")
        .await
        .body
        .contains("Your password was changed. Sign in with it."));

    // Her sessions in both organizations ended; the old password no longer works, the new
    // one does at once (the lock from the guessing is lifted).
    assert_eq!(in_acme.get(&app, "/").await.status, StatusCode::SEE_OTHER);
    assert_eq!(in_globex.get(&app, "/").await.status, StatusCode::SEE_OTHER);
    assert_eq!(
        Browser::new().sign_in(&app, &person, PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    let mut again = Browser::new();
    assert_eq!(
        again.sign_in(&app, &person, NEW_PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(again.get(&app, "/").await.status, StatusCode::OK);
    // Each organization's audit log says what happened.
    {
        use diesel::prelude::*;
        use rapport::db::schema::audit_log as a;
        let mut orgs: Vec<String> = a::table
            .filter(a::action.eq("user.reset_password_by_email"))
            .filter(a::resource_id.eq(&ann))
            .select(a::organization_id)
            .load(&mut t.pool.get().unwrap())
            .unwrap();
        orgs.sort();
        let mut want = vec![acme.id.clone(), globex.id.clone()];
        want.sort();
        assert_eq!(orgs, want);
    }

    // The link works once.
    let reused = b.get(&app, &link).await;
    assert_eq!(reused.status, StatusCode::GONE);
    assert!(reused
        .body
        .contains("This link has expired or was already used. Ask for a new one."));
    assert!(reused.body.contains("href=\"/password/forgot\""));
    let reused = b
        .post_form(&app, &link, &[("password", "yet another password")])
        .await;
    assert_eq!(reused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(reused
        .body
        .contains("This link has expired or was already used."));

    // The API asks the same way: 202 and the same answer for any address.
    let ask = |email: &str| {
        actix_web::test::TestRequest::post()
            .uri("/api/password-resets")
            .set_json(serde_json::json!({ "email": email }))
    };
    let r = send(&app, ask(&person)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.json()["status"], "requested");
    let other = send(&app, ask(&nobody)).await;
    assert_eq!((other.status, other.body), (r.status, r.body));
    let bad = send(&app, ask("not an address")).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.is_problem());
    assert_eq!(bad.json()["errors"][0]["field"], "email");

    // A link left for more than an hour no longer works.
    let mails = inbox(&s, &person, 2).await;
    let expired = reset_path(&mails[1]);
    assert_ne!(expired, link);
    {
        use diesel::prelude::*;
        use rapport::db::schema::password_resets as r;
        diesel::update(r::table.filter(r::user_id.eq(&ann)))
            .set(r::expires_at.eq(chrono::Utc::now().naive_utc() - chrono::Duration::minutes(1)))
            .execute(&mut t.pool.get().unwrap())
            .unwrap();
    }
    assert_eq!(b.get(&app, &expired).await.status, StatusCode::GONE);
    let token_of = |path: &str| path.trim_start_matches("/password/reset/").to_string();
    let confirm = |token: &str, password: &str| {
        actix_web::test::TestRequest::post()
            .uri("/api/password-resets/confirm")
            .set_json(serde_json::json!({ "token": token, "password": password }))
    };
    let late = send(&app, confirm(&token_of(&expired), "a later passphrase")).await;
    assert_eq!(late.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(late.json()["errors"][0]["field"], "token");

    // A fresh link, confirmed through the API.
    send(&app, ask(&person)).await;
    let mails = inbox(&s, &person, 3).await;
    let token = token_of(&reset_path(&mails[2]));
    let weak = send(&app, confirm(&token, "short")).await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(weak.json()["errors"][0]["field"], "password");
    let ok = send(&app, confirm(&token, "the API passphrase")).await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT, "{}", ok.body);
    assert_eq!(again.get(&app, "/").await.status, StatusCode::SEE_OTHER);
    let twice = send(&app, confirm(&token, "the API passphrase")).await;
    assert_eq!(twice.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(twice.json()["errors"][0]["field"], "token");
    assert_eq!(
        Browser::new()
            .sign_in(&app, &person, "the API passphrase")
            .await
            .status,
        StatusCode::SEE_OTHER
    );
}

#[actix_web::test]
async fn without_system_mail_people_are_sent_to_an_administrator() {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    t.user(&org, "ann@acme.test", "sales_rep");
    let app = t.service().await;
    let advice = "This server cannot send e-mail, so it cannot send you a link. Ask an \
                  administrator of your organization: on the Users page they reset your \
                  password and give you a one-time password.";

    let mut b = Browser::new();
    let page = b.get(&app, "/password/forgot").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(advice), "{}", page.body);
    let posted = b
        .post_form(&app, "/password/forgot", &[("email", "ann@acme.test")])
        .await;
    assert_eq!(posted.status, StatusCode::OK);
    assert!(posted.body.contains(advice));

    let api = send(
        &app,
        actix_web::test::TestRequest::post()
            .uri("/api/password-resets")
            .set_json(serde_json::json!({"email": "ann@acme.test"})),
    )
    .await;
    assert_eq!(api.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(api.is_problem());
    assert_eq!(api.json()["detail"], advice);
    assert_eq!(reset_rows(&t, "ann@acme.test"), (0, 0));

    // A link nobody issued shows the expired page.
    let bogus = b
        .get(&app, &format!("/password/reset/{}", "0".repeat(64)))
        .await;
    assert_eq!(bogus.status, StatusCode::GONE);
    assert!(bogus
        .body
        .contains("This link has expired or was already used."));
}

#[actix_web::test]
async fn reset_requests_over_the_hourly_limits_send_nothing() {
    // why: a closed port: what is tested is which requests get a link, not the delivery.
    let closed = (
        "127.0.0.1".to_string(),
        1,
        "127.0.0.1".to_string(),
        free_port(),
    );
    let mail = system_mail(&closed, "noreply@acme.test");
    let t = TestApp::with_config(|c| c.system_mail = Some(mail)).await;
    let org = t.org("Acme");
    t.user(&org, "ann@acme.test", "sales_rep");
    t.user(&org, "bob@acme.test", "sales_rep");
    let app = t.service().await;

    // Three links an hour for one address; the fourth request is answered alike and sends
    // nothing.
    let mut answers = Vec::new();
    for ip in ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"] {
        let mut b = Browser::from_ip(ip);
        b.get(&app, "/password/forgot").await;
        let r = b
            .post_form(&app, "/password/forgot", &[("email", "ann@acme.test")])
            .await;
        assert_eq!(r.status, StatusCode::OK);
        answers.push(r.body.contains("If an account uses this address"));
    }
    assert_eq!(answers, [true; 4]);
    assert_eq!(reset_rows(&t, "ann@acme.test"), (4, 3));

    // Ten requests an hour from one client address, whatever the addresses.
    let mut sprayer = Browser::from_ip("10.6.6.6");
    sprayer.get(&app, "/password/forgot").await;
    for i in 0..10 {
        let r = sprayer
            .post_form(
                &app,
                "/password/forgot",
                &[("email", &format!("guess{i}@acme.test"))],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let r = sprayer
        .post_form(&app, "/password/forgot", &[("email", "bob@acme.test")])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("If an account uses this address"));
    assert_eq!(reset_rows(&t, "bob@acme.test"), (1, 0));
    let mut elsewhere = Browser::from_ip("10.5.5.5");
    elsewhere.get(&app, "/password/forgot").await;
    elsewhere
        .post_form(&app, "/password/forgot", &[("email", "bob@acme.test")])
        .await;
    assert_eq!(reset_rows(&t, "bob@acme.test"), (2, 1));
}
