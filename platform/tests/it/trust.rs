//! Regression tests for the defects an attack run found (issue 14): each fails on the code
//! before its fix. Both backends, as every test here.

use actix_web::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::*;

fn j(method: Method, path: &str, token: &str, body: Value) -> actix_web::test::TestRequest {
    api(method, path, token).set_json(body)
}

/// Org A's admin adds org B's admin by e-mail: only an invitation. A cannot reset, rename
/// or sign out that person, before or after they accept; B's session survives anything A does.
#[actix_web::test]
async fn an_admin_cannot_take_over_a_person_of_another_organization() {
    let t = TestApp::new().await;
    let app = t.service().await;
    let a = t.org("Attacker");
    let b = t.org("Victim");
    let a_admin = t.user(&a, "mallory@attacker.test", "admin");
    let b_admin = t.user(&b, "bob@victim.test", "admin");
    let a_tok = t.token(&a, &a_admin);
    let b_tok = t.token(&b, &b_admin);

    // Bob is signed in to the console of B.
    let mut bob = Browser::new();
    assert_eq!(
        bob.sign_in(&app, "bob@victim.test", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(bob.get(&app, "/").await.status, StatusCode::OK);

    let add = send(
        &app,
        j(
            Method::POST,
            "/api/users",
            &a_tok,
            json!({"email": "bob@victim.test", "role": "admin", "name": "Pwned"}),
        ),
    )
    .await;
    assert_eq!(add.status, StatusCode::ACCEPTED, "{}", add.body);
    assert_eq!(add.json()["status"], "invited");
    assert!(add.json().get("temporaryPassword").is_none());
    // Not a member yet: nothing A can do to the account.
    for (method, path, body) in [
        (
            Method::POST,
            format!("/api/users/{b_admin}/reset-password"),
            json!({}),
        ),
        (
            Method::PATCH,
            format!("/api/users/{b_admin}"),
            json!({"name": "Pwned"}),
        ),
        (
            Method::PATCH,
            format!("/api/users/{b_admin}"),
            json!({"isActive": false}),
        ),
    ] {
        let r = send(&app, j(method, &path, &a_tok, body)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.body);
    }
    // The invitation is Bob's to see and accept; A's admin cannot accept it for him.
    let mine = send(&app, api(Method::GET, "/api/me/invitations", &b_tok))
        .await
        .json();
    let inv = mine["data"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(mine["data"][0]["organizationName"], "Attacker");
    let stolen = send(
        &app,
        api(
            Method::POST,
            &format!("/api/me/invitations/{inv}/accept"),
            &a_tok,
        ),
    )
    .await;
    assert_eq!(stolen.status, StatusCode::NOT_FOUND);
    // Bob accepts in the console, from his dashboard.
    let home = bob.get(&app, "/").await;
    assert!(
        home.body.contains("invites you to join as Admin"),
        "{}",
        home.body
    );
    let joined = bob
        .post_form(&app, &format!("/invitations/{inv}/accept"), &[])
        .await;
    assert_eq!(joined.status, StatusCode::SEE_OTHER, "{}", joined.body);
    assert!(bob.get(&app, "/").await.body.contains("Attacker"));

    // A member now, but one who also belongs to B: no reset, no rename.
    let reset = send(
        &app,
        api(
            Method::POST,
            &format!("/api/users/{b_admin}/reset-password"),
            &a_tok,
        ),
    )
    .await;
    assert_eq!(reset.status, StatusCode::CONFLICT, "{}", reset.body);
    let rename = send(
        &app,
        j(
            Method::PATCH,
            &format!("/api/users/{b_admin}"),
            &a_tok,
            json!({"name": "Pwned"}),
        ),
    )
    .await;
    assert_eq!(rename.status, StatusCode::CONFLICT, "{}", rename.body);
    // Bob switches back to B; A deactivates him in A; his session in B goes on.
    let b_id = b.id.clone();
    bob.post_form(&app, "/switch-org", &[("organization_id", b_id.as_str())])
        .await;
    let off = send(
        &app,
        j(
            Method::PATCH,
            &format!("/api/users/{b_admin}"),
            &a_tok,
            json!({"isActive": false}),
        ),
    )
    .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.body);
    let still = bob.get(&app, "/").await;
    assert_eq!(still.status, StatusCode::OK);
    assert!(still.body.contains("Victim"), "{}", still.body);
    // His password is unchanged: he signs in afresh.
    let mut again = Browser::new();
    assert_eq!(
        again
            .sign_in(&app, "bob@victim.test", PASSWORD)
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    let me = send(
        &app,
        api(Method::GET, &format!("/api/users/{b_admin}"), &b_tok),
    )
    .await
    .json();
    assert_ne!(me["name"], "Pwned");
}

/// An account that belongs to one organization only can still be reset by its admin, and
/// the admin can withdraw an open invitation.
#[actix_web::test]
async fn resets_still_work_for_an_organizations_own_people_and_invitations_can_be_withdrawn() {
    let t = TestApp::new().await;
    let app = t.service().await;
    let a = t.org("Acme");
    let other = t.org("Elsewhere");
    let admin = t.user(&a, "ann@acme.test", "admin");
    let own = t.user(&a, "own@acme.test", "sales_rep");
    t.user(&other, "ext@elsewhere.test", "sales_rep");
    let tok = t.token(&a, &admin);
    let reset = send(
        &app,
        api(
            Method::POST,
            &format!("/api/users/{own}/reset-password"),
            &tok,
        )
        .insert_header(("idempotency-key", "reset-1")),
    )
    .await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.body);
    let password = reset.json()["temporaryPassword"]
        .as_str()
        .unwrap()
        .to_string();
    // The replay of the same request never holds the one-time password (it is not stored).
    let replay = send(
        &app,
        api(
            Method::POST,
            &format!("/api/users/{own}/reset-password"),
            &tok,
        )
        .insert_header(("idempotency-key", "reset-1")),
    )
    .await;
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert!(replay.json()["temporaryPassword"].is_null());
    assert!(!replay.body.contains(&password));
    let stored: Vec<String> = {
        use diesel::prelude::*;
        use rapport::db::schema::idempotency_keys as ik;
        let mut c = t.pool.get().unwrap();
        ik::table.select(ik::response_body).load(&mut c).unwrap()
    };
    assert!(stored.iter().all(|b| !b.contains(&password)));

    let inv = send(
        &app,
        j(
            Method::POST,
            "/api/users",
            &tok,
            json!({"email": "ext@elsewhere.test", "role": "manager"}),
        ),
    )
    .await;
    assert_eq!(inv.status, StatusCode::ACCEPTED);
    let listed = send(&app, api(Method::GET, "/api/invitations", &tok))
        .await
        .json();
    assert_eq!(listed["data"][0]["email"], "ext@elsewhere.test");
    let id = inv.json()["id"].as_str().unwrap().to_string();
    let gone = send(
        &app,
        api(Method::DELETE, &format!("/api/invitations/{id}"), &tok),
    )
    .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let listed = send(&app, api(Method::GET, "/api/invitations", &tok))
        .await
        .json();
    assert_eq!(listed["data"].as_array().unwrap().len(), 0);
}

/// The 1.6 KB workbook that asked for 550 GB: refused with a 422; the server answers on.
#[actix_web::test]
async fn a_workbook_declaring_the_last_cell_is_refused_and_the_server_stays_up() {
    let t = TestApp::new().await;
    let app = t.service().await;
    let org = t.org("Acme");
    let admin = t.user(&org, "ann@acme.test", "admin");
    let tok = t.token(&org, &admin);
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write(0, 0, "Name").unwrap();
    sheet.write(1_048_575, 16_383, "x").unwrap();
    let bytes = book.save_to_buffer().unwrap();
    let r = send(
        &app,
        api(Method::POST, "/api/imports?fileName=bomb.xlsx", &tok)
            .insert_header((
                "content-type",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ))
            .set_payload(bytes),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.is_problem());
    assert!(r.body.contains("at most"), "{}", r.body);
    let alive = send(&app, api(Method::GET, "/api/clients", &tok)).await;
    assert_eq!(alive.status, StatusCode::OK);
}

/// Companies then contacts whose old-system ids collide: every record keeps its kind and
/// its values; deals land on the right client.
#[actix_web::test]
async fn imports_keep_companies_and_contacts_apart_when_their_ids_collide() {
    let t = TestApp::new().await;
    let app = t.service().await;
    let org = t.org("Acme");
    let admin = t.user(&org, "ann@acme.test", "admin");
    let tok = t.token(&org, &admin);
    let run = |query: &'static str, file: &'static str, body: &'static str| {
        let app = &app;
        let tok = tok.clone();
        let t = &t;
        async move {
            let r = send(
                app,
                api(
                    Method::POST,
                    &format!("/api/imports?fileName={file}&{query}"),
                    &tok,
                )
                .insert_header(("content-type", "text/csv"))
                .set_payload(body),
            )
            .await;
            assert_eq!(r.status, StatusCode::CREATED, "{file}: {}", r.body);
            let id = r.json()["id"].as_str().unwrap().to_string();
            let b = r.json();
            let started = send(
                app,
                api(Method::POST, &format!("/api/imports/{id}/run"), &tok),
            )
            .await;
            assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.body);
            rapport::jobs::run_pending(&t.state).await.unwrap();
            let done = send(app, api(Method::GET, &format!("/api/imports/{id}"), &tok))
                .await
                .json();
            assert_eq!(done["status"], "done", "{done}");
            (b, done)
        }
    };
    // No kind given: plain company headers, with a general e-mail column, are companies.
    let (staged, _) = run(
        "preset=generic",
        "companies.csv",
        "External ID,Name,Website,Industry,Phone,Email\n1,Initech,initech.example,Software,,info@initech.example\n2,Globex,globex.example,Energy,,\n",
    )
    .await;
    assert_eq!(staged["kind"], "companies", "{staged}");
    run(
        "preset=generic&kind=contacts&mode=update",
        "contacts.csv",
        "External ID,First Name,Last Name,Email,Company External ID\n1,Peter,Gibbons,peter@initech.example,1\n2,Hank,Scorpio,hank@globex.example,2\n",
    )
    .await;
    let list = send(&app, api(Method::GET, "/api/clients?limit=50", &tok))
        .await
        .json();
    let rows = list["data"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "{list}");
    let find = |name: &str| {
        rows.iter()
            .find(|c| c["displayName"] == name)
            .unwrap_or_else(|| panic!("{name} missing: {list}"))
            .clone()
    };
    assert_eq!(find("Initech")["type"], "company");
    assert_eq!(find("Globex")["type"], "company");
    let peter = find("Peter Gibbons");
    assert_eq!(peter["type"], "individual");
    assert_eq!(peter["employerId"], find("Initech")["id"]);
}

/// SQLite: concurrent writers wait for the lock instead of failing with "database is
/// locked"; on both backends a PATCH without If-Match is last-writer-wins, never a 409.
#[actix_web::test]
async fn concurrent_unconditional_writes_all_succeed() {
    let t = TestApp::new().await;
    let app = t.service().await;
    let org = t.org("Acme");
    let admin = t.user(&org, "ann@acme.test", "admin");
    let tok = t.token(&org, &admin);
    let c = send(
        &app,
        j(
            Method::POST,
            "/api/clients",
            &tok,
            json!({"type": "company", "companyName": "Initech"}),
        ),
    )
    .await
    .json();
    let id = c["id"].as_str().unwrap().to_string();
    let patches = (0..12).map(|i| {
        send(
            &app,
            j(
                Method::PATCH,
                &format!("/api/clients/{id}"),
                &tok,
                json!({"industry": format!("Industry {i}")}),
            ),
        )
    });
    let creates = (0..8).map(|i| {
        send(
            &app,
            j(
                Method::POST,
                "/api/clients",
                &tok,
                json!({"type": "individual", "firstName": format!("P{i}"), "lastName": "Parallel"}),
            ),
        )
    });
    let (p, c) = futures_util::future::join(
        futures_util::future::join_all(patches),
        futures_util::future::join_all(creates),
    )
    .await;
    for r in p {
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    for r in c {
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    // A stale If-Match is 412 (RFC 9110), and changes nothing.
    let stale = send(
        &app,
        j(
            Method::PATCH,
            &format!("/api/clients/{id}"),
            &tok,
            json!({"industry": "Stale"}),
        )
        .insert_header(("if-match", "\"v1\"")),
    )
    .await;
    assert_eq!(
        stale.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        stale.body
    );
    assert!(stale.is_problem());
}

/// Hostile input the attack run sent: NUL in any text is a 422 naming the field; the
/// sign-in redirect never leaves the site; responses carry the security headers.
#[actix_web::test]
async fn hostile_text_redirects_and_headers() {
    let t = TestApp::new().await;
    let app = t.service().await;
    let org = t.org("Acme");
    let admin = t.user(&org, "ann@acme.test", "admin");
    let tok = t.token(&org, &admin);
    let r = send(
        &app,
        j(
            Method::POST,
            "/api/clients",
            &tok,
            json!({"type": "company", "companyName": "Ini\u{0}tech"}),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("companyName"), "{}", r.body);
    let q = send(&app, api(Method::GET, "/api/clients?q=a%00b", &tok)).await;
    assert_eq!(q.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", q.body);
    assert!(q.body.contains("\"q\""), "{}", q.body);

    t.user(&org, "rep@acme.test", "sales_rep");
    for next in [
        "/%09/evil.example/",
        "/%0A/evil.example/",
        "//evil.example/",
    ] {
        let mut b = Browser::new();
        b.get(&app, "/login").await;
        let r = b
            .post_form(
                &app,
                "/login",
                &[
                    ("email", "rep@acme.test"),
                    ("password", PASSWORD),
                    ("next", &percent_decode(next)),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{next}: {}", r.body);
        assert_eq!(r.header("location"), Some("/"), "{next}");
    }
    let page = Browser::new().get(&app, "/login").await;
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"));
    assert!(!csp.contains("unsafe-eval"));
    // Claiming HTTPS from the outside earns nothing without a trusted proxy.
    let forged = send(
        &app,
        actix_web::test::TestRequest::get()
            .uri("/login")
            .insert_header(("x-forwarded-proto", "https")),
    )
    .await;
    assert!(forged.header("strict-transport-security").is_none());
    let export = send(
        &app,
        api(Method::GET, "/api/clients/export?format=csv", &tok),
    )
    .await;
    assert_eq!(export.status, StatusCode::OK, "{}", export.body);
    assert_eq!(export.header("cache-control"), Some("private, no-store"));
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Interaction and deal rights are checked per parent: a marketer (client and interaction
/// read, no deals) reads a client's timeline but not a deal's, nor its files; nobody without
/// merge rights starts the organization-wide duplicate scan.
#[actix_web::test]
async fn a_marketer_cannot_read_a_deals_timeline_or_start_a_scan() {
    let t = TestApp::new().await;
    let app = t.service().await;
    let org = t.org("Acme");
    let admin = t.user(&org, "ann@acme.test", "admin");
    let marketer = t.user(&org, "mia@acme.test", "marketer");
    let rep = t.user(&org, "rep@acme.test", "sales_rep");
    let (tok, mtok, rtok) = (
        t.token(&org, &admin),
        t.token(&org, &marketer),
        t.token(&org, &rep),
    );
    let client = send(
        &app,
        j(
            Method::POST,
            "/api/clients",
            &tok,
            json!({"type": "company", "companyName": "Initech"}),
        ),
    )
    .await
    .json();
    let cid = client["id"].as_str().unwrap();
    let deal = send(
        &app,
        j(
            Method::POST,
            "/api/opportunities",
            &tok,
            json!({"clientId": cid, "name": "Renewal", "value": "1000"}),
        ),
    )
    .await;
    assert_eq!(deal.status, StatusCode::CREATED, "{}", deal.body);
    let did = deal.json()["id"].as_str().unwrap().to_string();
    let own = send(
        &app,
        api(
            Method::GET,
            &format!("/api/clients/{cid}/interactions"),
            &mtok,
        ),
    )
    .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.body);
    let timeline = send(
        &app,
        api(
            Method::GET,
            &format!("/api/opportunities/{did}/interactions"),
            &mtok,
        ),
    )
    .await;
    assert_eq!(timeline.status, StatusCode::FORBIDDEN, "{}", timeline.body);
    let file = send(
        &app,
        api(
            Method::POST,
            &format!("/api/opportunities/{did}/attachments?name=terms.txt"),
            &tok,
        )
        .insert_header(("content-type", "text/plain"))
        .set_payload("secret terms"),
    )
    .await;
    assert_eq!(file.status, StatusCode::CREATED, "{}", file.body);
    let fid = file.json()["id"].as_str().unwrap().to_string();
    let download = send(
        &app,
        api(
            Method::GET,
            &format!("/api/attachments/{fid}/content"),
            &mtok,
        ),
    )
    .await;
    assert_eq!(download.status, StatusCode::FORBIDDEN, "{}", download.body);
    assert!(!download.body.contains("secret terms"));
    for who in [&mtok, &rtok] {
        let scan = send(&app, api(Method::POST, "/api/duplicates/scan", who)).await;
        assert_eq!(scan.status, StatusCode::FORBIDDEN, "{}", scan.body);
    }
    let scan = send(&app, api(Method::POST, "/api/duplicates/scan", &tok)).await;
    assert_eq!(scan.status, StatusCode::ACCEPTED);
}

/// A deactivated member's calendar feed stops at once.
#[actix_web::test]
async fn a_deactivated_members_feed_stops() {
    let t = TestApp::new().await;
    let app = t.service().await;
    let org = t.org("Acme");
    let admin = t.user(&org, "ann@acme.test", "admin");
    let rep = t.user(&org, "rep@acme.test", "sales_rep");
    let (tok, rtok) = (t.token(&org, &admin), t.token(&org, &rep));
    let url = send(&app, api(Method::GET, "/api/me/calendar-feed", &rtok))
        .await
        .json();
    let url = url["url"].as_str().unwrap();
    let path = url[url.find("/calendar/").unwrap()..].to_string();
    let before = send(&app, actix_web::test::TestRequest::get().uri(&path)).await;
    assert_eq!(before.status, StatusCode::OK);
    let off = send(
        &app,
        j(
            Method::PATCH,
            &format!("/api/users/{rep}"),
            &tok,
            json!({"isActive": false}),
        ),
    )
    .await;
    assert_eq!(off.status, StatusCode::OK);
    let after = send(&app, actix_web::test::TestRequest::get().uri(&path)).await;
    assert_eq!(after.status, StatusCode::NOT_FOUND);
}

/// An `Idempotency-Key` claim left behind by a crash (no response stored) is taken over by
/// the retry once its lease has passed, instead of answering 409 forever.
#[actix_web::test]
async fn an_abandoned_idempotency_claim_is_taken_over_after_its_lease() {
    use diesel::prelude::*;
    use rapport::db::schema::idempotency_keys as ik;
    let t = TestApp::new().await;
    let app = t.service().await;
    let org = t.org("Acme");
    let admin = t.user(&org, "ann@acme.test", "admin");
    let tok = t.token(&org, &admin);
    let body = json!({"type": "company", "companyName": "Initech"});
    let first = send(
        &app,
        j(Method::POST, "/api/clients", &tok, body.clone())
            .insert_header(("idempotency-key", "k1")),
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED);
    // As if the server died before storing the response, long enough ago.
    {
        let mut c = t.pool.get().unwrap();
        diesel::update(ik::table)
            .set((
                ik::status_code.eq(None::<i32>),
                ik::created_at.eq(rapport::db::now() - chrono::Duration::minutes(5)),
            ))
            .execute(&mut c)
            .unwrap();
    }
    let retry = send(
        &app,
        j(Method::POST, "/api/clients", &tok, body.clone())
            .insert_header(("idempotency-key", "k1")),
    )
    .await;
    assert_eq!(retry.status, StatusCode::CREATED, "{}", retry.body);
    // A fresh claim still in flight is a 409, not a second run.
    {
        let mut c = t.pool.get().unwrap();
        diesel::update(ik::table)
            .set((
                ik::status_code.eq(None::<i32>),
                ik::created_at.eq(rapport::db::now()),
            ))
            .execute(&mut c)
            .unwrap();
    }
    let busy = send(
        &app,
        j(Method::POST, "/api/clients", &tok, body).insert_header(("idempotency-key", "k1")),
    )
    .await;
    assert_eq!(busy.status, StatusCode::CONFLICT, "{}", busy.body);
}

/// Fifteen parallel guesses at one account: at most five are evaluated, the rest get 429.
#[actix_web::test]
async fn parallel_guesses_cannot_outrun_the_sign_in_throttle() {
    let t = TestApp::new().await;
    let app = t.service().await;
    let org = t.org("Acme");
    t.user(&org, "ann@acme.test", "admin");
    let mut browsers: Vec<Browser> = (0..15).map(|_| Browser::new()).collect();
    for b in &mut browsers {
        b.get(&app, "/login").await;
    }
    let guesses = browsers.iter_mut().map(|b| {
        b.post_form(
            &app,
            "/login",
            &[
                ("email", "ann@acme.test"),
                ("password", "wrong guess"),
                ("next", "/"),
            ],
        )
    });
    let answers = futures_util::future::join_all(guesses).await;
    let evaluated = answers
        .iter()
        .filter(|r| r.status != StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(evaluated <= 5, "{evaluated} guesses were evaluated");
    // The right password is refused too while the account is locked.
    let mut b = Browser::new();
    let r = b.sign_in(&app, "ann@acme.test", PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
}

/// A person changes their own password (console and API); a wrong current password or a
/// weak new one is refused inline; their other sessions end, this one goes on.
#[actix_web::test]
async fn people_change_their_own_password() {
    let t = TestApp::new().await;
    let app = t.service().await;
    let a = t.org("Acme");
    let b = t.org("Elsewhere");
    let ann = t.user(&a, "ann@acme.test", "sales_rep");
    t.user(&b, "ann@acme.test", "sales_rep");
    let tok = t.token(&a, &ann);
    let mut here = Browser::new();
    here.sign_in(&app, "ann@acme.test", PASSWORD).await;
    let mut there = Browser::new();
    there.sign_in(&app, "ann@acme.test", PASSWORD).await;
    let page = here.get(&app, "/account/password").await;
    assert_eq!(page.status, StatusCode::OK);
    let wrong = here
        .hx_post(
            &app,
            "/account/password",
            &[("current_password", "not it"), ("new_password", "short")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        wrong.body.contains("This is not your current password."),
        "{}",
        wrong.body
    );
    let ok = here
        .hx_post(
            &app,
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", "a brand new passphrase"),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert!(ok.body.contains("Your password was changed"));
    assert_eq!(here.get(&app, "/").await.status, StatusCode::OK);
    assert_eq!(there.get(&app, "/").await.status, StatusCode::SEE_OTHER);
    let mut fresh = Browser::new();
    assert_eq!(
        fresh
            .sign_in(&app, "ann@acme.test", "a brand new passphrase")
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    let api_change = send(
        &app,
        j(
            Method::POST,
            "/api/me/password",
            &tok,
            json!({"currentPassword": "a brand new passphrase", "newPassword": "yet another passphrase"}),
        ),
    )
    .await;
    assert_eq!(
        api_change.status,
        StatusCode::NO_CONTENT,
        "{}",
        api_change.body
    );
    let users = send(
        &app,
        api(
            Method::GET,
            "/api/users",
            &t.token(&a, &t.user(&a, "boss@acme.test", "admin")),
        ),
    )
    .await;
    assert_eq!(users.status, StatusCode::OK);
}

/// An upload above the JSON limit with an `Idempotency-Key` is judged by the route's own
/// limit (it used to be a 413 at 1 MiB), and its retry is replayed, not stored twice.
#[actix_web::test]
async fn an_idempotent_upload_is_held_to_its_routes_limit() {
    let t = TestApp::new().await;
    let app = t.service().await;
    let org = t.org("Acme");
    let admin = t.user(&org, "ann@acme.test", "admin");
    let tok = t.token(&org, &admin);
    let client = send(
        &app,
        j(
            Method::POST,
            "/api/clients",
            &tok,
            json!({"type": "company", "companyName": "Initech"}),
        ),
    )
    .await
    .json();
    let cid = client["id"].as_str().unwrap();
    // Above the 1 MiB JSON limit, below the tests' 2 MB upload limit.
    let body = vec![b'x'; 1536 * 1024];
    let upload = || {
        api(
            Method::POST,
            &format!("/api/clients/{cid}/attachments?name=big.txt"),
            &tok,
        )
        .insert_header(("content-type", "text/plain"))
        .insert_header(("idempotency-key", "upload-1"))
        .set_payload(body.clone())
    };
    let first = send(&app, upload()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let again = send(&app, upload()).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json()["id"], first.json()["id"]);
    let files = send(
        &app,
        api(
            Method::GET,
            &format!("/api/clients/{cid}/attachments"),
            &tok,
        ),
    )
    .await
    .json();
    assert_eq!(files["data"].as_array().unwrap().len(), 1);
}
