//! E-mail against real servers (Dovecot IMAP + submission, Postfix SMTP, started by
//! `tests/mail/start`; `RAPPORT_TEST_IMAP`/`RAPPORT_TEST_SMTP` name them): write from
//! Rapport, the message arrives in the client's mailbox, the client's reply is synced back
//! onto the same thread; unknown senders wait in Unmatched; opted-out clients are refused.
//! The MIME filing and the send lease run without servers.

use actix_web::http::{Method, StatusCode};
use serde_json::json;

use crate::support::{api, free_port, send, wait_until_up, Browser, Server, TestApp, PASSWORD};
use rapport::integrations::mail as transport;

fn servers() -> Option<(String, u16, String, u16)> {
    let split = |v: String| {
        let (h, p) = v.rsplit_once(':')?;
        Some((h.to_string(), p.parse().ok()?))
    };
    let imap = split(std::env::var("RAPPORT_TEST_IMAP").ok()?)?;
    let smtp = split(std::env::var("RAPPORT_TEST_SMTP").ok()?)?;
    Some((imap.0, imap.1, smtp.0, smtp.1))
}

fn address(who: &str) -> String {
    format!(
        "{who}-{}@mail.rapport.test",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

fn mailbox_body(addr: &str, s: &(String, u16, String, u16), password: &str) -> serde_json::Value {
    json!({
        "name": "My mail", "address": addr, "username": addr, "password": password,
        "imap": {"host": s.0, "port": s.1, "security": "none"},
        "smtp": {"host": s.2, "port": s.3, "security": "none"},
    })
}

/// Sends a message as someone outside Rapport (the client's own mail program).
fn send_as(
    s: &(String, u16, String, u16),
    from: &str,
    to: &str,
    subject: &str,
    in_reply_to: Option<&str>,
) {
    let mut b = lettre::Message::builder()
        .from(from.parse().unwrap())
        .to(to.parse().unwrap())
        .subject(subject);
    if let Some(r) = in_reply_to {
        b = b.in_reply_to(r.to_string()).references(r.to_string());
    }
    let m = b.body(format!("{subject}\n\nSent from a phone.")).unwrap();
    let server = transport::Server {
        host: s.2.clone(),
        port: s.3,
        security: transport::Security::None,
    };
    let login = transport::Login {
        username: from.into(),
        password: "secret".into(),
    };
    transport::send(&server, &login, &m).expect("the client's own mail program sends");
}

/// The messages in `who`'s inbox on the IMAP server (waits for delivery).
fn inbox_of(s: &(String, u16, String, u16), who: &str, want: usize) -> Vec<String> {
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
            return f
                .messages
                .into_iter()
                .map(|(_, raw)| String::from_utf8_lossy(&raw).into_owned())
                .collect();
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("{who} did not receive {want} message(s)");
}

async fn wait_sync(
    app: &TestApp,
    svc: &impl actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
    >,
    token: &str,
    mailbox: &str,
    want_new: u64,
) -> serde_json::Value {
    let _ = app;
    let mut total = json!({"fetched": 0, "filed": 0, "unmatched": 0, "bounces": 0});
    for _ in 0..50 {
        let r = send(
            svc,
            api(
                Method::POST,
                &format!("/api/mailboxes/{mailbox}/sync"),
                token,
            ),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let j = r.json();
        for k in ["fetched", "filed", "unmatched", "bounces"] {
            total[k] = json!(total[k].as_u64().unwrap() + j[k].as_u64().unwrap());
        }
        if total["fetched"].as_u64().unwrap() >= want_new {
            return total;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!("the sync found fewer than {want_new} new messages: {total}");
}

#[actix_web::test]
async fn a_rep_writes_from_rapport_and_the_reply_lands_on_the_same_thread() {
    let Some(s) = servers() else {
        eprintln!(
            "SKIPPED: no mail servers (RAPPORT_TEST_IMAP/RAPPORT_TEST_SMTP; tests/mail/start)"
        );
        return;
    };
    let app = TestApp::new().await;
    let svc = app.service().await;
    let org = app.org("Mail Co");
    let rep = app.user(&org, "rep@mail.test", "sales_rep");
    let token = app.token(&org, &rep);
    let (rep_addr, ann_addr, stranger) = (address("rep"), address("ann"), address("stranger"));

    // A wrong password: the test button answers with the server's own words.
    let created = send(
        &svc,
        api(Method::POST, "/api/mailboxes", &token).set_json(mailbox_body(&rep_addr, &s, "wrong")),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let mb = created.json();
    assert!(
        mb.get("password").is_none() && !created.body.contains("wrong"),
        "{}",
        created.body
    );
    let mb_id = mb["id"].as_str().unwrap().to_string();
    let stored: String = {
        use diesel::prelude::*;
        use rapport::db::schema::mailboxes;
        mailboxes::table
            .find(&mb_id)
            .select(mailboxes::secret)
            .first(&mut app.pool.get().unwrap())
            .unwrap()
    };
    assert!(!stored.contains("wrong"), "the password is sealed at rest");
    let test = send(
        &svc,
        api(
            Method::POST,
            &format!("/api/mailboxes/{mb_id}/test"),
            &token,
        ),
    )
    .await
    .json();
    assert_eq!(test["ok"], false);
    assert!(
        test["imap"]["error"]
            .as_str()
            .unwrap()
            .contains("Authentication failed"),
        "{test}"
    );
    let fixed = send(
        &svc,
        api(Method::PATCH, &format!("/api/mailboxes/{mb_id}"), &token)
            .set_json(json!({"password": "secret"})),
    )
    .await;
    assert_eq!(fixed.status, StatusCode::OK, "{}", fixed.body);
    let test = send(
        &svc,
        api(
            Method::POST,
            &format!("/api/mailboxes/{mb_id}/test"),
            &token,
        ),
    )
    .await
    .json();
    assert_eq!(test["ok"], true, "{test}");

    let ann = send(&svc, api(Method::POST, "/api/clients", &token).set_json(json!({
        "type": "individual", "firstName": "Ann", "lastName": "Archer", "email": ann_addr.to_uppercase()
    }))).await.json();
    let ann_id = ann["id"].as_str().unwrap().to_string();

    // Write from Rapport: queued at once, sent by the worker.
    let sent = send(
        &svc,
        api(Method::POST, "/api/messages", &token).set_json(json!({
            "mailboxId": mb_id, "clientId": ann_id, "to": [ann_addr], "subject": "Your proposal",
            "text": "Hello Ann,\nthe proposal is attached.\n"
        })),
    )
    .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.body);
    let msg = sent.json();
    assert_eq!(msg["status"], "queued");
    let msg_id = msg["id"].as_str().unwrap().to_string();
    let header_id = msg["messageId"].as_str().unwrap().to_string();
    assert_eq!(
        rapport::ops::mail::deliver_due(&app.pool, &app.state.secret, &app.state.blobs)
            .await
            .unwrap(),
        1
    );
    let shown = send(
        &svc,
        api(Method::GET, &format!("/api/messages/{msg_id}"), &token),
    )
    .await
    .json();
    assert_eq!(shown["status"], "sent", "{shown}");
    // A second round sends nothing again.
    assert_eq!(
        rapport::ops::mail::deliver_due(&app.pool, &app.state.secret, &app.state.blobs)
            .await
            .unwrap(),
        0
    );

    // It arrived in Ann's mailbox on the IMAP server, once.
    let inbox = inbox_of(&s, &ann_addr, 1);
    assert_eq!(inbox.len(), 1);
    assert!(
        inbox[0].contains(&header_id) && inbox[0].contains("Your proposal"),
        "{}",
        inbox[0]
    );

    // On Ann's timeline as an outbound e-mail.
    let tl = send(
        &svc,
        api(
            Method::GET,
            &format!("/api/clients/{ann_id}/interactions"),
            &token,
        ),
    )
    .await
    .json();
    let first = &tl["data"][0];
    assert_eq!(
        (first["type"].as_str(), first["direction"].as_str()),
        (Some("email"), Some("outbound")),
        "{tl}"
    );

    // Ann answers from her own mail program; a stranger writes too.
    send_as(
        &s,
        &ann_addr,
        &rep_addr,
        "Re: Your proposal",
        Some(&header_id),
    );
    send_as(&s, &stranger, &rep_addr, "Do you sell widgets?", None);
    inbox_of(&s, &rep_addr, 2);
    let synced = wait_sync(&app, &svc, &token, &mb_id, 2).await;
    assert_eq!(
        (synced["filed"].as_u64(), synced["unmatched"].as_u64()),
        (Some(1), Some(1)),
        "{synced}"
    );
    // Nothing is fetched twice.
    let again = send(
        &svc,
        api(
            Method::POST,
            &format!("/api/mailboxes/{mb_id}/sync"),
            &token,
        ),
    )
    .await
    .json();
    assert_eq!(again["fetched"], 0, "{again}");

    // The reply threads onto the message Rapport sent.
    let thread = send(
        &svc,
        api(Method::GET, &format!("/api/messages/{msg_id}"), &token),
    )
    .await
    .json();
    let items = thread["thread"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{thread}");
    assert_eq!(items[1]["direction"], "inbound");
    assert_eq!(items[1]["subject"], "Re: Your proposal");
    let tl = send(
        &svc,
        api(
            Method::GET,
            &format!("/api/clients/{ann_id}/interactions"),
            &token,
        ),
    )
    .await
    .json();
    assert!(
        tl["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["direction"] == "inbound" && i["subject"] == "Re: Your proposal"),
        "{tl}"
    );

    // The stranger waits in Unmatched until one click makes them a client.
    let unmatched = send(
        &svc,
        api(Method::GET, "/api/messages?view=unmatched", &token),
    )
    .await
    .json();
    let items = unmatched["data"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{unmatched}");
    assert_eq!(items[0]["from"]["address"], stranger.as_str());
    let filed = send(
        &svc,
        api(
            Method::POST,
            &format!("/api/messages/{}/file", items[0]["id"].as_str().unwrap()),
            &token,
        )
        .set_json(json!({})),
    )
    .await;
    assert_eq!(filed.status, StatusCode::OK, "{}", filed.body);
    assert_eq!(filed.json()["matched"], true);
    assert_eq!(filed.json()["clients"].as_array().unwrap().len(), 1);
    let unmatched = send(
        &svc,
        api(Method::GET, "/api/messages?view=unmatched", &token),
    )
    .await
    .json();
    assert_eq!(unmatched["data"].as_array().unwrap().len(), 0);

    // Another organization sees none of it.
    let other = app.org("Elsewhere");
    let admin = app.user(&other, "boss@else.test", "admin");
    let other_token = app.token(&other, &admin);
    for path in [
        format!("/api/messages/{msg_id}"),
        format!("/api/mailboxes/{mb_id}"),
    ] {
        assert_eq!(
            send(&svc, api(Method::GET, &path, &other_token))
                .await
                .status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    assert_eq!(
        send(
            &svc,
            api(
                Method::POST,
                &format!("/api/mailboxes/{mb_id}/sync"),
                &other_token
            )
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    let listed = send(&svc, api(Method::GET, "/api/messages", &other_token))
        .await
        .json();
    assert_eq!(listed["data"].as_array().unwrap().len(), 0);
}

#[actix_web::test]
async fn nobody_who_opted_out_is_written_to() {
    let app = TestApp::new().await;
    let svc = app.service().await;
    let org = app.org("Consent Co");
    let rep = app.user(&org, "rep@consent.test", "sales_rep");
    let token = app.token(&org, &rep);
    let fake = ("127.0.0.1".to_string(), 9, "127.0.0.1".to_string(), 9);
    let mb = send(
        &svc,
        api(Method::POST, "/api/mailboxes", &token).set_json(mailbox_body(
            "rep@consent.test",
            &fake,
            "pw",
        )),
    )
    .await
    .json();
    let bob = send(
        &svc,
        api(Method::POST, "/api/clients", &token).set_json(json!({
            "type": "individual", "firstName": "Bob", "lastName": "Baker", "email": "bob@consent.test"
        })),
    )
    .await
    .json();
    let prefs = format!("/api/clients/{}/preferences", bob["id"].as_str().unwrap());
    let r = send(
        &svc,
        api(Method::PUT, &prefs, &token).set_json(json!({
            "channels": {"email": {"status": "opt_out", "source": "unsubscribed"}}
        })),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Written to by address alone (not from his profile), he is still found and refused.
    let refused = send(&svc, api(Method::POST, "/api/messages", &token).set_json(json!({
        "mailboxId": mb["id"], "to": "someone@else.test, BOB@consent.test", "subject": "Offer", "text": "Hi"
    }))).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(refused.body.contains("Bob Baker"), "{}", refused.body);
    let listed = send(&svc, api(Method::GET, "/api/messages?view=outbox", &token))
        .await
        .json();
    assert_eq!(
        listed["data"].as_array().unwrap().len(),
        0,
        "nothing was queued"
    );
    // Bad input is named field by field.
    let bad = send(
        &svc,
        api(Method::POST, "/api/messages", &token).set_json(json!({
            "mailboxId": mb["id"], "to": "not-an-address", "subject": "", "text": "Hi"
        })),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.body.contains("not-an-address is not an e-mail address"),
        "{}",
        bad.body
    );
    // A read-only member may not write.
    let ro = app.user(&org, "ro@consent.test", "read_only");
    let ro_token = app.token(&org, &ro);
    let r = send(
        &svc,
        api(Method::POST, "/api/mailboxes", &ro_token).set_json(mailbox_body(
            "ro@consent.test",
            &fake,
            "pw",
        )),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // A rep may not connect the organization's shared mailbox.
    let mut body = mailbox_body("team@consent.test", &fake, "pw");
    body["shared"] = json!(true);
    assert_eq!(
        send(
            &svc,
            api(Method::POST, "/api/mailboxes", &token).set_json(body)
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
}

#[actix_web::test]
async fn a_send_interrupted_mid_way_is_never_sent_twice() {
    use diesel::prelude::*;
    use rapport::db::schema::mail_messages;
    let app = TestApp::new().await;
    let svc = app.service().await;
    let org = app.org("Lease Co");
    let rep = app.user(&org, "rep@lease.test", "sales_rep");
    let token = app.token(&org, &rep);
    // Port 9 (discard) refuses: the attempt fails transiently and waits for a retry.
    let fake = ("127.0.0.1".to_string(), 9, "127.0.0.1".to_string(), 9);
    let mb = send(
        &svc,
        api(Method::POST, "/api/mailboxes", &token).set_json(mailbox_body(
            "rep@lease.test",
            &fake,
            "pw",
        )),
    )
    .await
    .json();
    let m = send(
        &svc,
        api(Method::POST, "/api/messages", &token).set_json(json!({
            "mailboxId": mb["id"], "to": ["zed@lease.test"], "subject": "Hello", "text": "Hi"
        })),
    )
    .await
    .json();
    let id = m["id"].as_str().unwrap().to_string();
    // A worker claimed it and died (kill -9) before it could record the outcome.
    let mut c = app.pool.get().unwrap();
    let claimed = rapport::domain::mail::claim_due(&mut c)
        .unwrap()
        .expect("claimed");
    assert_eq!(claimed.id, id);
    assert!(
        rapport::domain::mail::claim_due(&mut c).unwrap().is_none(),
        "one claim at a time"
    );
    diesel::update(mail_messages::table.find(&id))
        .set(
            mail_messages::next_attempt_at
                .eq(Some(rapport::db::now() - chrono::Duration::seconds(1))),
        )
        .execute(&mut c)
        .unwrap();
    // After the lease it is not resent blindly but shown as uncertain, for a person to decide.
    assert_eq!(
        rapport::ops::mail::deliver_due(&app.pool, &app.state.secret, &app.state.blobs)
            .await
            .unwrap(),
        0
    );
    let shown = send(
        &svc,
        api(Method::GET, &format!("/api/messages/{id}"), &token),
    )
    .await
    .json();
    assert_eq!(shown["status"], "uncertain", "{shown}");
    assert!(shown["error"]
        .as_str()
        .unwrap()
        .contains("may or may not have left"));
    // Sending again is the user's choice; the refused connection then counts as an attempt.
    let again = send(
        &svc,
        api(Method::POST, &format!("/api/messages/{id}/resend"), &token),
    )
    .await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{}", again.body);
    assert_eq!(
        rapport::ops::mail::deliver_due(&app.pool, &app.state.secret, &app.state.blobs)
            .await
            .unwrap(),
        1
    );
    let shown = send(
        &svc,
        api(Method::GET, &format!("/api/messages/{id}"), &token),
    )
    .await
    .json();
    assert_eq!(
        shown["status"], "queued",
        "a refused connection is retried later: {shown}"
    );
    assert_eq!(shown["attempts"], 1);
    assert!(!shown["error"].as_str().unwrap().is_empty());
}

#[actix_web::test]
async fn odd_and_hostile_messages_are_filed_without_stopping_the_sync() {
    let app = TestApp::new().await;
    let org = app.org("Mime Co");
    let rep = app.user(&org, "rep@mime.test", "sales_rep");
    let token = app.token(&org, &rep);
    let svc = app.service().await;
    let fake = ("127.0.0.1".to_string(), 9, "127.0.0.1".to_string(), 9);
    let mb = send(
        &svc,
        api(Method::POST, "/api/mailboxes", &token).set_json(mailbox_body(
            "rep@mime.test",
            &fake,
            "pw",
        )),
    )
    .await
    .json();
    for (email, name) in [("jose@mime.test", "José"), ("ann@mime.test", "Ann")] {
        send(
            &svc,
            api(Method::POST, "/api/clients", &token)
                .set_json(json!({"type": "individual", "firstName": name, "email": email})),
        )
        .await;
    }
    let mut c = app.pool.get().unwrap();
    let mailbox = rapport::domain::mail::find_mailbox(&mut c, mb["id"].as_str().unwrap())
        .unwrap()
        .unwrap();
    let corpus: [&[u8]; 5] = [
        // Encoded-word subject, Latin-1 quoted-printable body, plus-addressed sender.
        b"From: =?ISO-8859-1?Q?Jos=E9?= <JOSE+crm@mime.test>\r\nTo: rep@mime.test\r\nSubject: =?UTF-8?B?Q2Fmw6k=?=\r\nMessage-ID: <q1@mime.test>\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nJ'ai re=E7u le devis.\r\n",
        // HTML only, base64, with a script that must not survive as markup.
        b"From: ann@mime.test\r\nTo: rep@mime.test\r\nSubject: html\r\nMessage-ID: <q2@mime.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nPHA+SGVsbG8gPGI+d29ybGQ8L2I+PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0PjwvcD4=\r\n--XX--\r\n",
        // No Message-ID at all.
        b"From: ann@mime.test\r\nTo: rep@mime.test\r\nSubject: no id\r\n\r\nbody\r\n",
        // Garbage.
        b"\x00\x01\x02 not a message",
        // The same message again (another copy): filed once.
        b"From: ann@mime.test\r\nTo: rep@mime.test\r\nSubject: html\r\nMessage-ID: <q2@mime.test>\r\n\r\ncopy\r\n",
    ];
    let mut outcomes = Vec::new();
    for (i, raw) in corpus.iter().enumerate() {
        outcomes.push(
            rapport::domain::mail::file_raw(
                &mut c,
                &*app.state.blobs,
                &mailbox,
                "INBOX",
                7,
                i as i64 + 1,
                raw,
                false,
            )
            .unwrap(),
        );
    }
    use rapport::domain::mail::Filed;
    assert_eq!(
        outcomes[0],
        Filed::New(1),
        "José found through his plus address"
    );
    assert_eq!(outcomes[1], Filed::New(1));
    assert_eq!(outcomes[2], Filed::New(1));
    assert_eq!(outcomes[4], Filed::Known);
    assert_eq!(
        rapport::domain::mail::folder_state(&mut c, &mailbox.id, "INBOX").unwrap(),
        Some((7, 5))
    );
    let listed = send(&svc, api(Method::GET, "/api/messages", &token))
        .await
        .json();
    let by_subject = |s: &str| {
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["subject"] == s)
            .cloned()
            .unwrap_or_else(|| panic!("{s}: {listed}"))
    };
    let cafe = by_subject("Café");
    assert!(
        cafe["text"]
            .as_str()
            .unwrap()
            .contains("J'ai reçu le devis."),
        "{cafe}"
    );
    assert_eq!(cafe["from"]["address"], "jose+crm@mime.test");
    let html = by_subject("html");
    let text = html["text"].as_str().unwrap();
    assert!(
        text.contains("Hello") && text.contains("world") && !text.contains("<script"),
        "{text}"
    );
}

#[actix_web::test]
async fn in_the_console_a_rep_connects_a_mailbox_and_writes_from_the_profile() {
    let app = TestApp::new().await;
    let svc = app.service().await;
    let org = app.org("Console Mail Co");
    let rep = app.user(&org, "rep@cm.test", "sales_rep");
    let token = app.token(&org, &rep);
    let ann = send(
        &svc,
        api(Method::POST, "/api/clients", &token).set_json(json!({
            "type": "individual", "firstName": "Ann", "lastName": "Archer", "email": "ann@cm.test"
        })),
    )
    .await
    .json();
    let ann_id = ann["id"].as_str().unwrap().to_string();
    let mut b = Browser::new();
    b.sign_in(&svc, "rep@cm.test", PASSWORD).await;
    let home = b.get(&svc, "/").await;
    assert!(
        home.body.contains("href=\"/mail\""),
        "E-mail is in the menu"
    );
    let empty = b.get(&svc, "/mail").await;
    assert!(
        empty.body.contains("No mailbox is connected yet"),
        "{}",
        empty.body
    );

    // A mistake is named next to the form, and what was typed stays.
    let fields = |port: &'static str| {
        vec![
            ("name", "My mail"),
            ("address", "rep@cm.test"),
            ("username", "rep@cm.test"),
            ("password", "pw"),
            ("imapHost", "127.0.0.1"),
            ("imapPort", port),
            ("imapSecurity", "none"),
            ("smtpHost", "127.0.0.1"),
            ("smtpPort", "9"),
            ("smtpSecurity", "none"),
        ]
    };
    let bad = b.post_form(&svc, "/mail/mailboxes", &fields("99999")).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.body
            .contains("IMAP port:</strong> Use a port from 1 to 65535."),
        "{}",
        bad.body
    );
    assert!(bad.body.contains("value=\"rep@cm.test\""));
    assert!(
        !bad.body.contains("Shared with the whole organization"),
        "a rep cannot share"
    );
    let ok = b.post_form(&svc, "/mail/mailboxes", &fields("9")).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    let page = b.get(&svc, "/mail/mailboxes").await;
    assert!(
        page.body.contains("rep@cm.test") && page.body.contains("Sync now"),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains("value=\"pw\""),
        "the password is never shown again"
    );

    // Write from the profile.
    let profile = b.get(&svc, &format!("/clients/{ann_id}")).await;
    assert!(
        profile
            .body
            .contains(&format!("href=\"/clients/{ann_id}/email\"")),
        "Write e-mail on the profile"
    );
    let form = b.get(&svc, &format!("/clients/{ann_id}/email")).await;
    assert!(
        form.body.contains("value=\"ann@cm.test\""),
        "the client's address is filled in"
    );
    let mailbox_id = send(&svc, api(Method::GET, "/api/mailboxes", &token))
        .await
        .json()["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let missing = b
        .post_form(
            &svc,
            &format!("/clients/{ann_id}/email"),
            &[
                ("mailboxId", &mailbox_id),
                ("to", "ann@cm.test"),
                ("subject", ""),
                ("text", "Kept text"),
            ],
        )
        .await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        missing.body.contains("Give the message a subject.") && missing.body.contains("Kept text"),
        "{}",
        missing.body
    );
    let sent = b
        .post_form(
            &svc,
            &format!("/clients/{ann_id}/email"),
            &[
                ("mailboxId", &mailbox_id),
                ("to", "ann@cm.test"),
                ("subject", "Hello Ann"),
                ("text", "Hi"),
            ],
        )
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
    let outbox = b.get(&svc, "/mail?view=outbox").await;
    assert!(
        outbox.body.contains("Hello Ann") && outbox.body.contains("Waiting to send"),
        "{}",
        outbox.body
    );

    // Opted out: the form says so and nothing is queued.
    let prefs = format!("/api/clients/{ann_id}/preferences");
    send(
        &svc,
        api(Method::PUT, &prefs, &token)
            .set_json(json!({"channels": {"email": {"status": "opt_out"}}})),
    )
    .await;
    let form = b.get(&svc, &format!("/clients/{ann_id}/email")).await;
    assert!(
        form.body
            .contains("Rapport will not send e-mail to this client"),
        "{}",
        form.body
    );
    let refused = b
        .post_form(
            &svc,
            &format!("/clients/{ann_id}/email"),
            &[
                ("mailboxId", &mailbox_id),
                ("to", "ann@cm.test"),
                ("subject", "Again"),
                ("text", "Hi"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("Ann Archer:"), "{}", refused.body);

    // A stranger's message waits in Unmatched; the rep files it on Ann with the picker.
    let mailbox = {
        let mut c = app.pool.get().unwrap();
        rapport::domain::mail::find_mailbox(&mut c, &mailbox_id)
            .unwrap()
            .unwrap()
    };
    let raw = b"From: Stan <stan@elsewhere.test>\r\nTo: rep@cm.test\r\nSubject: Pricing?\r\nMessage-ID: <stan1@x>\r\n\r\nHow much?\r\n";
    let filed = rapport::domain::mail::file_raw(
        &mut app.pool.get().unwrap(),
        &*app.state.blobs,
        &mailbox,
        "INBOX",
        1,
        1,
        raw,
        false,
    )
    .unwrap();
    assert_eq!(filed, rapport::domain::mail::Filed::New(0));
    let unmatched = b.get(&svc, "/mail?view=unmatched").await;
    assert!(unmatched.body.contains("Pricing?"), "{}", unmatched.body);
    let stan = send(
        &svc,
        api(Method::GET, "/api/messages?view=unmatched", &token),
    )
    .await
    .json()["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let page = b.get(&svc, &format!("/mail/messages/{stan}")).await;
    assert!(
        page.body.contains("Create a client from the sender")
            && page.body.contains("File it there")
    );
    let unpicked = b
        .post_form(
            &svc,
            &format!("/mail/messages/{stan}/file"),
            &[("q", "Ann"), ("clientId", "")],
        )
        .await;
    assert_eq!(unpicked.status, StatusCode::UNPROCESSABLE_ENTITY);
    let picked = b
        .post_form(
            &svc,
            &format!("/mail/messages/{stan}/file"),
            &[("q", "Ann"), ("clientId", &ann_id)],
        )
        .await;
    assert_eq!(picked.status, StatusCode::SEE_OTHER, "{}", picked.body);
    let tl = send(
        &svc,
        api(
            Method::GET,
            &format!("/api/clients/{ann_id}/interactions"),
            &token,
        ),
    )
    .await
    .json();
    assert!(
        tl["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["subject"] == "Pricing?" && i["direction"] == "inbound"),
        "{tl}"
    );

    // A read-only member reads e-mail but is offered no writing.
    app.user(&org, "ro@cm.test", "read_only");
    let mut ro = Browser::new();
    ro.sign_in(&svc, "ro@cm.test", PASSWORD).await;
    let profile = ro.get(&svc, &format!("/clients/{ann_id}")).await;
    assert!(!profile.body.contains("Write e-mail"));
    assert_eq!(
        ro.get(&svc, &format!("/clients/{ann_id}/email"))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

#[actix_web::test]
async fn templates_keep_versions_name_the_bad_line_and_preview_for_a_client() {
    let app = TestApp::new().await;
    let svc = app.service().await;
    let org = app.org("Template Co");
    let rep = app.user(&org, "rep@tpl.test", "sales_rep");
    let token = app.token(&org, &rep);
    let ann = send(
        &svc,
        api(Method::POST, "/api/clients", &token).set_json(json!({
            "type": "individual", "firstName": "Ann", "lastName": "Archer", "email": "ann@tpl.test"
        })),
    )
    .await
    .json();
    let bad = send(
        &svc,
        api(Method::POST, "/api/templates", &token).set_json(json!({
            "name": "Offer", "subject": "Hi", "body": "Hello\n{% if client.firstName %}\nno end"
        })),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let msg = bad.json()["errors"][0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.starts_with("Line "), "{msg}");
    let created = send(&svc, api(Method::POST, "/api/templates", &token).set_json(json!({
        "name": "Offer", "subject": "An offer for {{ client.firstName }}",
        "body": "Dear {{ client.firstName | default(\"customer\") }} {{ client.lastName }},\n{{ sender.signature }}"
    }))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.json()["id"].as_str().unwrap().to_string();
    let edited = send(&svc, api(Method::PUT, &format!("/api/templates/{id}"), &token).set_json(json!({
        "name": "Offer", "subject": "A better offer for {{ client.firstName }}", "body": "Dear {{ client.name }}"
    }))).await.json();
    assert_eq!(edited["version"], 2);
    let shown = send(
        &svc,
        api(Method::GET, &format!("/api/templates/{id}"), &token),
    )
    .await
    .json();
    assert_eq!(shown["versions"].as_array().unwrap().len(), 2);
    assert_eq!(
        shown["versions"][1]["subject"],
        "An offer for {{ client.firstName }}"
    );
    let preview = send(
        &svc,
        api(Method::POST, "/api/templates/preview", &token).set_json(json!({
            "templateId": id, "clientId": ann["id"]
        })),
    )
    .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    assert_eq!(preview.json()["subject"], "A better offer for Ann");
    assert_eq!(preview.json()["text"], "Dear Ann Archer");
    let other = app.org("Other");
    let admin = app.user(&other, "a@other.test", "admin");
    let other_token = app.token(&other, &admin);
    assert_eq!(
        send(
            &svc,
            api(Method::GET, &format!("/api/templates/{id}"), &other_token)
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    let cross = send(
        &svc,
        api(Method::POST, "/api/templates/preview", &other_token).set_json(json!({
            "subject": "x", "body": "{{ client.email }}", "clientId": ann["id"]
        })),
    )
    .await;
    assert_eq!(
        cross.status,
        StatusCode::NOT_FOUND,
        "another organization's client is not rendered"
    );
}

/// Sends, once each, the messages the bulk worker handed out.
async fn run_bulk(app: &TestApp) -> usize {
    let base = "http://rapport.test".to_string();
    rapport::ops::mail::hand_out(&app.pool, &app.state.secret, base, &app.state.plugins)
        .await
        .unwrap();
    rapport::ops::mail::deliver_due(&app.pool, &app.state.secret, &app.state.blobs)
        .await
        .unwrap()
}

#[actix_web::test]
async fn a_bulk_send_skips_the_opted_out_reaches_the_rest_once_and_counts_opens_and_clicks() {
    let Some(s) = servers() else {
        eprintln!(
            "SKIPPED: no mail servers (RAPPORT_TEST_IMAP/RAPPORT_TEST_SMTP; tests/mail/start)"
        );
        return;
    };
    use diesel::prelude::*;
    use rapport::db::schema::{send_recipients, sends};
    let app = TestApp::new().await;
    let svc = app.service().await;
    let org = app.org("Bulk Co");
    let marketer = app.user(&org, "mk@bulk.test", "marketer");
    let token = app.token(&org, &marketer);
    let admin = app.user(&org, "admin@bulk.test", "admin");
    let admin = app.token(&org, &admin);
    // A plugin adds a merge field (the healthcare example's patient reference).
    let installed = send(
        &svc,
        api(Method::POST, "/api/plugins", &admin)
            .insert_header(("content-type", "application/octet-stream"))
            .set_payload(crate::plugins::bundle("healthcare")),
    )
    .await;
    assert_eq!(installed.status, StatusCode::CREATED, "{}", installed.body);
    // The templates page names the plugin's field as a template writes it.
    let mut b = Browser::new();
    b.sign_in(&svc, "mk@bulk.test", PASSWORD).await;
    let page = b.get(&svc, "/mail/templates").await;
    assert!(
        page.body
            .contains("client.plugins[&#34;com.rapport.healthcare&#34;].patient_ref")
            && page.body.contains("Patient reference, Healthcare"),
        "{}",
        page.body
    );
    let from = address("news");
    let mb = send(
        &svc,
        api(Method::POST, "/api/mailboxes", &token).set_json(mailbox_body(&from, &s, "secret")),
    )
    .await
    .json();
    let tag = format!("bulk{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let mut people = Vec::new();
    for i in 0..5 {
        let email = if i == 4 {
            serde_json::Value::Null
        } else {
            json!(address(&format!("c{i}")))
        };
        let c = send(
            &svc,
            api(Method::POST, "/api/clients", &token).set_json(json!({
                "type": "individual", "firstName": format!("P{i}"), "email": email, "source": tag
            })),
        )
        .await
        .json();
        people.push((
            c["id"].as_str().unwrap().to_string(),
            c["email"].as_str().map(str::to_string),
        ));
    }
    let prefs = format!("/api/clients/{}/preferences", people[3].0);
    send(
        &svc,
        api(Method::PUT, &prefs, &token)
            .set_json(json!({"channels": {"email": {"status": "opt_out"}}})),
    )
    .await;
    let t = send(
        &svc,
        api(Method::POST, "/api/templates", &token).set_json(json!({
            "name": "News", "subject": "News for {{ client.firstName }}",
            "body": "Hello {{ client.firstName }}, see https://example.com/offer?x=1 today.\nYour reference: {{ client.plugins[\"com.rapport.healthcare\"].patient_ref }}."
        })),
    )
    .await
    .json();
    let audience = json!({"query": format!("filter[source]={tag}")});
    let preview = send(
        &svc,
        api(Method::POST, "/api/sends/preview", &token).set_json(json!({"audience": audience})),
    )
    .await
    .json();
    assert_eq!(preview["recipients"], 3, "{preview}");
    assert_eq!(preview["excluded"]["optedOut"], 1);
    assert_eq!(preview["excluded"]["noAddress"], 1);
    let created = send(&svc, api(Method::POST, "/api/sends", &token).set_json(json!({
        "name": "December", "templateId": t["id"], "mailboxId": mb["id"], "audience": audience, "perMinute": 2
    }))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let send_id = created.json()["id"].as_str().unwrap().to_string();

    // The throttle: two a minute. A round within the minute hands out nobody more.
    assert_eq!(run_bulk(&app).await, 2);
    assert_eq!(run_bulk(&app).await, 0);
    let mut c = app.pool.get().unwrap();
    // A minute passes.
    diesel::update(sends::table.find(&send_id))
        .set(sends::window_started_at.eq(rapport::db::now() - chrono::Duration::minutes(2)))
        .execute(&mut c)
        .unwrap();
    assert_eq!(run_bulk(&app).await, 1);
    assert_eq!(run_bulk(&app).await, 0);
    let report = send(
        &svc,
        api(Method::GET, &format!("/api/sends/{send_id}"), &token),
    )
    .await
    .json();
    assert_eq!(
        (
            report["delivered"].as_i64(),
            report["excluded"].as_i64(),
            report["status"].as_str()
        ),
        (Some(3), Some(2), Some("done")),
        "{report}"
    );
    // Each recipient has exactly one message.
    let handed: Vec<Option<String>> = send_recipients::table
        .filter(send_recipients::send_id.eq(&send_id))
        .filter(send_recipients::status.eq("handed"))
        .select(send_recipients::mail_message_id)
        .load(&mut c)
        .unwrap();
    let unique: std::collections::HashSet<_> = handed.iter().collect();
    assert_eq!((handed.len(), unique.len()), (3, 3));

    // It arrived, once, with the one-click unsubscribe headers.
    let raw = inbox_of(&s, people[0].1.as_deref().unwrap(), 1);
    assert_eq!(raw.len(), 1);
    let m = &raw[0];
    assert!(
        m.contains("News for P0")
            && m.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
        "{m}"
    );
    // The plugin's merge field is filled per recipient.
    let plain: String = people[0].0.chars().filter(|c| *c != '-').collect();
    let reference = format!(
        "Your reference: PT-{}.",
        plain[plain.len() - 8..].to_uppercase()
    );
    let text = mail_parser::MessageParser::default()
        .parse(m.as_bytes())
        .unwrap()
        .body_text(0)
        .unwrap()
        .to_string();
    assert!(text.contains(&reference), "{reference} in {text}");
    assert!(
        inbox_of(&s, people[3].1.as_deref().unwrap(), 0).is_empty(),
        "the opted-out client got nothing"
    );
    let parsed = mail_parser::MessageParser::default()
        .parse(m.as_bytes())
        .unwrap();
    let html = parsed.body_html(0).unwrap().to_string();
    let grab = |prefix: &str| -> String {
        let i = html
            .find(prefix)
            .unwrap_or_else(|| panic!("{prefix} in {html}"));
        let rest = &html[i + "http://rapport.test".len()..];
        rest[..rest.find('"').unwrap()].replace("&amp;", "&")
    };
    let open = grab("http://rapport.test/t/o/");
    let click = grab("http://rapport.test/t/c/");
    let r = send(&svc, actix_web::test::TestRequest::get().uri(&open)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("image/gif"));
    let r = send(&svc, actix_web::test::TestRequest::get().uri(&click)).await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(r.header("location"), Some("https://example.com/offer?x=1"));
    // A tampered link is not an open redirect.
    let evil = click.replace("example.com", "evil.test");
    assert_eq!(
        send(&svc, actix_web::test::TestRequest::get().uri(&evil))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // One-click unsubscribe, as a mail provider posts it (no cookie, no CSRF token).
    let unsubscribe = parsed
        .header_raw("List-Unsubscribe")
        .unwrap()
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .replace("http://rapport.test", "");
    let r = send(
        &svc,
        actix_web::test::TestRequest::post()
            .uri(&unsubscribe)
            .insert_header(("content-type", "application/x-www-form-urlencoded"))
            .set_payload("List-Unsubscribe=One-Click"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let p = send(
        &svc,
        api(
            Method::GET,
            &format!("/api/clients/{}/preferences", people[0].0),
            &token,
        ),
    )
    .await
    .json();
    assert_eq!(p["channels"]["email"]["status"], "opt_out");
    let report = send(
        &svc,
        api(Method::GET, &format!("/api/sends/{send_id}"), &token),
    )
    .await
    .json();
    assert_eq!(
        (
            report["opened"].as_i64(),
            report["clicked"].as_i64(),
            report["unsubscribed"].as_i64()
        ),
        (Some(1), Some(1), Some(1)),
        "{report}"
    );
    let opened = send(
        &svc,
        api(
            Method::GET,
            &format!("/api/sends/{send_id}/recipients?filter[state]=opened"),
            &token,
        ),
    )
    .await
    .json();
    assert_eq!(opened["data"].as_array().unwrap().len(), 1);
    assert_eq!(opened["data"][0]["clientId"], people[0].0.as_str());
    // The delivered message is on the client's timeline.
    let tl = send(
        &svc,
        api(
            Method::GET,
            &format!("/api/clients/{}/interactions", people[1].0),
            &token,
        ),
    )
    .await
    .json();
    assert_eq!(tl["data"][0]["subject"], "News for P1", "{tl}");

    // A send scheduled in the console starts at the marketer's own clock time.
    let zone = send(
        &svc,
        api(Method::PUT, "/api/me/preferences", &token)
            .set_json(json!({"timeZone": "America/New_York", "locale": "en-US"})),
    )
    .await;
    assert_eq!(zone.status, StatusCode::OK, "{}", zone.body);
    let query = format!("filter[source]={tag}");
    let later = b
        .hx_post(
            &svc,
            "/mail/sends",
            &[
                ("name", "Winter"),
                ("templateId", t["id"].as_str().unwrap()),
                ("mailboxId", mb["id"].as_str().unwrap()),
                ("query", query.as_str()),
                ("perMinute", "60"),
                ("scheduledAt", "2031-01-15T09:00"),
            ],
        )
        .await;
    assert!(
        later.status.is_success() || later.status.is_redirection(),
        "{}",
        later.body
    );
    let sends = send(&svc, api(Method::GET, "/api/sends", &token))
        .await
        .json();
    let winter = sends["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "Winter")
        .unwrap_or_else(|| panic!("{sends}"));
    assert_eq!(winter["status"], "scheduled", "{winter}");
    assert!(
        winter["scheduledAt"]
            .as_str()
            .unwrap()
            .starts_with("2031-01-15T14:00:00"),
        "9:00 in New York is 14:00 UTC in January: {winter}"
    );
}

/// The bar: a bulk send to a 200-client list skips the opted-out and, across a kill -9 of
/// the server half-way, reaches everyone else once. The server's own workers send it; the
/// test kills it once some have left, starts it again and reads every recipient's mailbox
/// on the IMAP server. A message the dead worker held at the moment of the kill is the one
/// SMTP cannot settle (the server may have taken it before the answer was lost): it is
/// never resent blindly and is reported as such, and it reached its client at most once.
#[actix_web::test]
async fn a_bulk_send_killed_mid_way_reaches_each_client_once_after_a_restart() {
    let Some(s) = servers() else {
        eprintln!(
            "SKIPPED: no mail servers (RAPPORT_TEST_IMAP/RAPPORT_TEST_SMTP; tests/mail/start)"
        );
        return;
    };
    use diesel::prelude::*;
    use rapport::db::schema::{mail_messages, send_recipients, sends};
    use std::collections::HashMap;
    let app = TestApp::new().await;
    let svc = app.service().await;
    let org = app.org("Killed Bulk");
    let marketer = app.user(&org, "mk@killedbulk.test", "marketer");
    let token = app.token(&org, &marketer);
    let mb = send(
        &svc,
        api(Method::POST, "/api/mailboxes", &token).set_json(mailbox_body(
            &address("campaigns"),
            &s,
            "secret",
        )),
    )
    .await
    .json();
    let tag = format!("k9{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let mut clients: Vec<(String, String, bool)> = Vec::new();
    for i in 0..200 {
        let email = address(&format!("k{i}"));
        let c = send(
            &svc,
            api(Method::POST, "/api/clients", &token).set_json(json!({
                "type": "individual", "firstName": format!("K{i}"), "email": email, "source": tag
            })),
        )
        .await;
        assert_eq!(c.status, StatusCode::CREATED, "{}", c.body);
        let id = c.json()["id"].as_str().unwrap().to_string();
        let opted_out = i % 20 == 7;
        if opted_out {
            let r = send(
                &svc,
                api(
                    Method::PUT,
                    &format!("/api/clients/{id}/preferences"),
                    &token,
                )
                .set_json(json!({"channels": {"email": {"status": "opt_out"}}})),
            )
            .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        }
        clients.push((id, email, opted_out));
    }
    let t = send(
        &svc,
        api(Method::POST, "/api/templates", &token).set_json(json!({
            "name": "Winter", "subject": "Winter news for {{ client.firstName }}",
            "body": "Hello {{ client.firstName }}."
        })),
    )
    .await
    .json();
    let created = send(
        &svc,
        api(Method::POST, "/api/sends", &token).set_json(json!({
            "name": "Winter", "templateId": t["id"], "mailboxId": mb["id"],
            "audience": {"query": format!("filter[source]={tag}")}, "perMinute": 10000
        })),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let report = created.json();
    assert_eq!(
        (report["recipients"].as_i64(), report["excluded"].as_i64()),
        (Some(190), Some(10)),
        "{report}"
    );
    let send_id = report["id"].as_str().unwrap().to_string();

    let start = || app.serve_binary();
    let states = |app: &TestApp| -> HashMap<String, String> {
        let mut c = app.pool.get().unwrap();
        send_recipients::table
            .inner_join(
                mail_messages::table.on(mail_messages::id
                    .nullable()
                    .eq(send_recipients::mail_message_id)),
            )
            .filter(send_recipients::send_id.eq(&send_id))
            .select((send_recipients::client_id, mail_messages::status))
            .load::<(String, String)>(&mut c)
            .unwrap()
            .into_iter()
            .collect()
    };
    let count = |m: &HashMap<String, String>, s: &str| m.values().filter(|v| *v == s).count();

    let mut first = start();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        if count(&states(&app), "sent") >= 40 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "nothing was sent");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    first.0.kill().unwrap(); // SIGKILL: no shutdown, no cleanup.
    first.0.wait().unwrap();
    let at_kill = states(&app);
    assert!(
        count(&at_kill, "sent") < 190,
        "the send finished before the kill"
    );

    let second = start();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    let after = loop {
        let now = states(&app);
        let status: String = {
            let mut c = app.pool.get().unwrap();
            sends::table
                .find(&send_id)
                .select(sends::status)
                .first(&mut c)
                .unwrap()
        };
        if status == "done" && count(&now, "queued") == 0 && now.len() == 190 {
            let settled = now.values().all(|v| v != "sending")
                || now
                    .iter()
                    .filter(|(_, v)| *v == "sending")
                    .all(|(k, _)| at_kill.get(k).map(String::as_str) == Some("sending"));
            if settled {
                break now;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the restarted server did not finish the send: {status}, {:?}",
            now.values()
                .fold(HashMap::<&str, usize>::new(), |mut m, v| {
                    *m.entry(v.as_str()).or_default() += 1;
                    m
                })
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    drop(second);

    // In doubt: claimed by the killed worker and not settled (at most its one message).
    let in_doubt: Vec<&String> = after
        .iter()
        .filter(|(_, v)| matches!(v.as_str(), "sending" | "uncertain"))
        .map(|(k, _)| k)
        .collect();
    assert!(in_doubt.len() <= 1, "{in_doubt:?}");
    assert_eq!(count(&after, "sent") + in_doubt.len(), 190, "{after:?}");
    for (id, email, opted_out) in &clients {
        if *opted_out {
            assert!(!after.contains_key(id), "an opted-out client was queued");
            continue;
        }
        if in_doubt.contains(&id) {
            continue;
        }
        let got = inbox_of(&s, email, 1);
        assert_eq!(got.len(), 1, "{email} received {} copies", got.len());
    }
    // The one in doubt reached its client at most once (delivery has settled by now).
    for id in in_doubt {
        let email = &clients.iter().find(|c| &c.0 == id).unwrap().1;
        let server = transport::Server {
            host: s.0.clone(),
            port: s.1,
            security: transport::Security::None,
        };
        let login = transport::Login {
            username: email.clone(),
            password: "secret".into(),
        };
        let mut session = transport::imap_login(&server, &login).expect("imap");
        let f = transport::fetch_new(&mut session, "INBOX", None).expect("fetch");
        assert!(f.messages.len() <= 1, "{email} received it twice");
    }
    for (id, email, opted_out) in &clients {
        if *opted_out {
            let server = transport::Server {
                host: s.0.clone(),
                port: s.1,
                security: transport::Security::None,
            };
            let login = transport::Login {
                username: email.clone(),
                password: "secret".into(),
            };
            let mut session = transport::imap_login(&server, &login).expect("imap");
            let f = transport::fetch_new(&mut session, "INBOX", None).expect("fetch");
            assert!(f.messages.is_empty(), "opted-out {id} was written to");
        }
    }
}

/// IMAP IDLE: with the poll an hour apart, a message that arrives in a connected mailbox
/// is on the client's timeline within seconds, because the server said so.
#[actix_web::test]
async fn a_message_arriving_in_an_idle_mailbox_is_filed_within_seconds() {
    let Some(s) = servers() else {
        eprintln!(
            "SKIPPED: no mail servers (RAPPORT_TEST_IMAP/RAPPORT_TEST_SMTP; tests/mail/start)"
        );
        return;
    };
    use diesel::prelude::*;
    use rapport::db::schema::mail_messages;
    let app = TestApp::new().await;
    let svc = app.service().await;
    let org = app.org("Idle Co");
    let rep = app.user(&org, "rep@idle.test", "sales_rep");
    let token = app.token(&org, &rep);
    let inbox = address("idle-rep");
    let client = address("idle-client");
    let r = send(
        &svc,
        api(Method::POST, "/api/mailboxes", &token).set_json(mailbox_body(&inbox, &s, "secret")),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    send(
        &svc,
        api(Method::POST, "/api/clients", &token).set_json(json!({
            "type": "individual", "firstName": "Ida", "email": client
        })),
    )
    .await;
    let url = match app.target.backend {
        rapport::db::Backend::Postgres => app.target.location.clone(),
        rapport::db::Backend::Sqlite => format!("sqlite://{}", app.target.location),
    };
    let port = free_port();
    let _server = Server(
        std::process::Command::new(env!("CARGO_BIN_EXE_rapport"))
            .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
            .env("DATABASE_URL", &url)
            .env("RAPPORT_DATA_DIR", &app.state.config.data_dir)
            .env("RAPPORT_MAIL_SYNC_SECONDS", "3600")
            .env("RAPPORT_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until_up(port);
    // The first poll runs at start; the watcher is waiting once it has logged in.
    std::thread::sleep(std::time::Duration::from_secs(3));
    send_as(&s, &client, &inbox, "Are you there?", None);
    let started = std::time::Instant::now();
    loop {
        let filed: i64 = {
            let mut c = app.pool.get().unwrap();
            mail_messages::table
                .filter(mail_messages::organization_id.eq(&org.id))
                .filter(mail_messages::subject.eq("Are you there?"))
                .filter(mail_messages::matched.eq(true))
                .count()
                .get_result(&mut c)
                .unwrap()
        };
        if filed == 1 {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "the message was not filed within 30 s (the poll is an hour apart)"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    println!(
        "filed {:.1} s after it was sent",
        started.elapsed().as_secs_f64()
    );
}

/// A rep writes from a deal with one of the client's files attached; the client's mailbox
/// gets the file; the client answers in HTML with a file of their own; the answer lands on
/// the same conversation with its file downloadable from the timeline, and its HTML shown
/// without script, remote images or hostile links.
#[actix_web::test]
async fn files_go_out_and_come_back_and_html_is_shown_safely() {
    let Some(s) = servers() else {
        eprintln!(
            "SKIPPED: no mail servers (RAPPORT_TEST_IMAP/RAPPORT_TEST_SMTP; tests/mail/start)"
        );
        return;
    };
    let app = TestApp::new().await;
    let svc = app.service().await;
    let org = app.org("Files Co");
    let rep = app.user(&org, "rep@files.test", "sales_rep");
    let token = app.token(&org, &rep);
    let (rep_addr, ann_addr) = (address("frep"), address("fann"));
    let mb = send(
        &svc,
        api(Method::POST, "/api/mailboxes", &token).set_json(mailbox_body(&rep_addr, &s, "secret")),
    )
    .await
    .json();
    let client = send(
        &svc,
        api(Method::POST, "/api/clients", &token)
            .set_json(json!({"type": "individual", "firstName": "Ann", "email": ann_addr})),
    )
    .await
    .json();
    let cid = client["id"].as_str().unwrap().to_string();
    let other = send(
        &svc,
        api(Method::POST, "/api/clients", &token)
            .set_json(json!({"type": "individual", "firstName": "Otto"})),
    )
    .await
    .json();
    let p = send(&svc, api(Method::GET, "/api/pipelines", &token))
        .await
        .json();
    let first_stage = p["data"][0]["stages"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let deal = |client: &str, name: &str| {
        api(Method::POST, "/api/opportunities", &token).set_json(json!({
            "name": name, "clientId": client, "value": "12000.50", "currency": "EUR",
            "stage": first_stage
        }))
    };
    let d = send(&svc, deal(&cid, "Ann's renewal")).await;
    assert_eq!(d.status, StatusCode::CREATED, "{}", d.body);
    let deal_id = d.json()["id"].as_str().unwrap().to_string();
    let others = send(&svc, deal(other["id"].as_str().unwrap(), "Otto's deal"))
        .await
        .json();
    let pdf = b"%PDF-1.7\n1 0 obj <<>> endobj\nthe proposal\n".to_vec();
    let file = send(
        &svc,
        api(
            Method::POST,
            &format!("/api/clients/{cid}/attachments?name=proposal.pdf"),
            &token,
        )
        .insert_header(("content-type", "application/octet-stream"))
        .set_payload(pdf.clone()),
    )
    .await
    .json();
    let fid = file["id"].as_str().unwrap().to_string();

    // A template reads the deal it is written from.
    let preview = send(
        &svc,
        api(Method::POST, "/api/templates/preview", &token).set_json(json!({
            "clientId": cid, "opportunityId": deal_id,
            "subject": "About {{ deal.name }}", "body": "{{ deal.value }} {{ deal.currency }}"
        })),
    )
    .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    assert_eq!(preview.json()["text"], "12000.50 EUR");
    // Another client's deal is refused, in the preview and in the send.
    let wrong = send(
        &svc,
        api(Method::POST, "/api/messages", &token).set_json(json!({
            "mailboxId": mb["id"], "clientId": cid, "to": [ann_addr.clone()],
            "subject": "x", "text": "x", "opportunityId": others["id"]
        })),
    )
    .await;
    assert_eq!(
        wrong.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        wrong.body
    );
    let sent = send(
        &svc,
        api(Method::POST, "/api/messages", &token).set_json(json!({
            "mailboxId": mb["id"], "clientId": cid, "to": [ann_addr.clone()],
            "subject": "Your proposal", "text": "Attached.", "opportunityId": deal_id,
            "attachmentIds": [fid]
        })),
    )
    .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.body);
    let sent = sent.json();
    assert_eq!(sent["opportunityId"], deal_id.as_str());
    assert_eq!(sent["attachments"][0]["fileName"], "proposal.pdf");
    rapport::ops::mail::deliver_due(&app.pool, &app.state.secret, &app.state.blobs)
        .await
        .unwrap();
    let got = inbox_of(&s, &ann_addr, 1);
    let parsed = mail_parser::MessageParser::default()
        .parse(got[0].as_bytes())
        .unwrap();
    let att = parsed.attachments().next().expect("the file went along");
    use mail_parser::MimeHeaders;
    assert_eq!(att.attachment_name(), Some("proposal.pdf"));
    assert_eq!(att.contents(), &pdf[..]);
    // The e-mail is on the deal's timeline too.
    {
        use diesel::prelude::*;
        use rapport::db::schema::interactions;
        let on_deal: i64 = interactions::table
            .filter(interactions::opportunity_id.eq(&deal_id))
            .filter(interactions::kind.eq("email"))
            .count()
            .get_result(&mut app.pool.get().unwrap())
            .unwrap();
        assert_eq!(on_deal, 1);
    }

    // Ann answers in HTML, with a file, a tracking image, a script and a hostile link.
    let html = "<p>Thanks! <b>Signed</b>.</p><script>alert(1)</script>\
                <img src=\"https://tracker.example/open.gif\">\
                <a href=\"javascript:alert(2)\">click</a> <a href=\"https://ok.example/\">site</a>";
    let signed = b"%PDF-1.7\nsigned copy\n".to_vec();
    let reply = lettre::Message::builder()
        .from(ann_addr.parse().unwrap())
        .to(rep_addr.parse().unwrap())
        .subject("Re: Your proposal")
        .in_reply_to(sent["messageId"].as_str().unwrap().to_string())
        .multipart(
            lettre::message::MultiPart::mixed()
                .multipart(lettre::message::MultiPart::alternative_plain_html(
                    "Thanks! Signed.".to_string(),
                    html.to_string(),
                ))
                .singlepart(
                    lettre::message::Attachment::new("signed.pdf".into()).body(
                        lettre::message::Body::new_with_encoding(
                            signed.clone(),
                            lettre::message::header::ContentTransferEncoding::Base64,
                        )
                        .unwrap(),
                        lettre::message::header::ContentType::parse("application/pdf").unwrap(),
                    ),
                ),
        )
        .unwrap();
    transport::send(
        &transport::Server {
            host: s.2.clone(),
            port: s.3,
            security: transport::Security::None,
        },
        &transport::Login {
            username: ann_addr.clone(),
            password: "secret".into(),
        },
        &reply,
    )
    .unwrap();
    wait_sync(&app, &svc, &token, mb["id"].as_str().unwrap(), 1).await;
    let list = send(
        &svc,
        api(Method::GET, "/api/messages?view=conversations", &token),
    )
    .await
    .json();
    let convs = list["data"].as_array().unwrap();
    assert_eq!(convs.len(), 1, "one conversation: {list}");
    assert_eq!(
        convs[0]["subject"], "Re: Your proposal",
        "shown by its latest"
    );
    let answer = &convs[0];
    assert_eq!(answer["attachments"][0]["fileName"], "signed.pdf");
    let url = answer["attachments"][0]["url"].as_str().unwrap();
    let dl = send(&svc, api(Method::GET, url, &token)).await;
    assert_eq!(dl.status, StatusCode::OK);
    assert_eq!(dl.bytes, signed);
    assert!(dl
        .header("content-disposition")
        .unwrap()
        .starts_with("attachment"));
    let unanswered = send(
        &svc,
        api(Method::GET, "/api/messages?view=unanswered&days=0", &token),
    )
    .await
    .json();
    assert_eq!(unanswered["data"].as_array().unwrap().len(), 1);

    // In the console: the message's HTML without what could run or report back, and its
    // file on the client's timeline.
    let mut b = Browser::new();
    b.sign_in(&svc, "rep@files.test", PASSWORD).await;
    let id = answer["id"].as_str().unwrap();
    let page = b.get(&svc, &format!("/mail/messages/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let start = page
        .body
        .find("class=\"mail-html\"")
        .expect("the HTML part is shown");
    let end = page.body[start..].find("class=\"mail-alt\"").unwrap() + start;
    let shown = &page.body[start..end];
    assert!(shown.contains("<b>Signed</b>"), "{shown}");
    for bad in ["<script", "alert(1)", "tracker.example", "javascript:"] {
        assert!(!shown.contains(bad), "{bad} in {shown}");
    }
    assert!(page.body.contains("Images are not shown"));
    assert!(page.body.contains("rel=\"noopener noreferrer nofollow\""));
    let profile = b.get(&svc, &format!("/clients/{cid}")).await;
    assert!(
        profile
            .body
            .contains(&format!("/mail/messages/{id}/files/")),
        "the reply's file is on the timeline"
    );
    // Written from the deal's page, the form carries the deal.
    let compose = b
        .get(&svc, &format!("/clients/{cid}/email?deal={deal_id}"))
        .await;
    assert_eq!(compose.status, StatusCode::OK);
    assert!(
        compose
            .body
            .contains(&format!("/opportunities/{deal_id}\">Ann")),
        "{}",
        compose.body
    );
    assert!(
        compose.body.contains("proposal.pdf"),
        "the client's files to attach"
    );
    let foreign = b
        .get(
            &svc,
            &format!(
                "/clients/{cid}/email?deal={}",
                others["id"].as_str().unwrap()
            ),
        )
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
}

/// A bounce arriving in the mailbox marks the message and flags the address (nothing more
/// is sent to it until cleared); tracking can be switched off; a send's report has its
/// figures hour by hour and exports its recipients; short-message templates stay apart.
#[actix_web::test]
async fn bounces_flag_the_address_and_tracking_reports_and_sms_templates_behave() {
    let Some(s) = servers() else {
        eprintln!(
            "SKIPPED: no mail servers (RAPPORT_TEST_IMAP/RAPPORT_TEST_SMTP; tests/mail/start)"
        );
        return;
    };
    let app = TestApp::new().await;
    let svc = app.service().await;
    let org = app.org("Bounce Co");
    let admin = app.user(&org, "admin@bounce.test", "admin");
    let marketer = app.user(&org, "mk@bounce.test", "marketer");
    let rep = app.user(&org, "rep@bounce.test", "sales_rep");
    let (admin_t, mk_t, rep_t) = (
        app.token(&org, &admin),
        app.token(&org, &marketer),
        app.token(&org, &rep),
    );
    let from = address("bnews");
    let mb = send(
        &svc,
        api(Method::POST, "/api/mailboxes", &mk_t).set_json(mailbox_body(&from, &s, "secret")),
    )
    .await
    .json();
    let tag = format!("b{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let gone = address("gone");
    let kept = address("kept");
    for (name, email) in [("Gone", &gone), ("Kept", &kept)] {
        send(
            &svc,
            api(Method::POST, "/api/clients", &mk_t).set_json(json!({
                "type": "individual", "firstName": name, "email": email, "source": tag
            })),
        )
        .await;
    }

    // Tracking: only an admin switches it; switched off, a bulk message carries none.
    let r = send(
        &svc,
        api(Method::PUT, "/api/mail/settings", &mk_t).set_json(json!({"tracking": false})),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(
        &svc,
        api(Method::PUT, "/api/mail/settings", &admin_t).set_json(json!({"tracking": false})),
    )
    .await;
    assert_eq!(r.json()["tracking"], false, "{}", r.body);

    // Short-message templates: no subject, bounded, never a bulk e-mail.
    let sms = send(
        &svc,
        api(Method::POST, "/api/templates", &mk_t).set_json(json!({
            "kind": "sms", "name": "Reminder", "body": "Hi {{ client.firstName }}, see you at 10."
        })),
    )
    .await;
    assert_eq!(sms.status, StatusCode::CREATED, "{}", sms.body);
    assert_eq!(sms.json()["kind"], "sms");
    let long = send(
        &svc,
        api(Method::POST, "/api/templates", &mk_t).set_json(json!({
            "kind": "sms", "name": "Essay", "body": "x".repeat(1601)
        })),
    )
    .await;
    assert_eq!(long.status, StatusCode::UNPROCESSABLE_ENTITY);
    let audience = json!({"query": format!("filter[source]={tag}")});
    let r = send(&svc, api(Method::POST, "/api/sends", &mk_t).set_json(json!({
        "name": "By SMS", "templateId": sms.json()["id"], "mailboxId": mb["id"], "audience": audience
    }))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);

    let t = send(
        &svc,
        api(Method::POST, "/api/templates", &mk_t).set_json(json!({
            "name": "News", "subject": "News", "body": "See https://example.com/x today."
        })),
    )
    .await
    .json();
    // A rep may write e-mail but not run a bulk send.
    let r = send(
        &svc,
        api(Method::POST, "/api/sends", &rep_t).set_json(json!({
            "name": "Mine", "templateId": t["id"], "mailboxId": mb["id"], "audience": audience
        })),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let created = send(
        &svc,
        api(Method::POST, "/api/sends", &mk_t).set_json(json!({
            "name": "Winter", "templateId": t["id"], "mailboxId": mb["id"], "audience": audience
        })),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let send_id = created.json()["id"].as_str().unwrap().to_string();
    run_bulk(&app).await;
    let got = inbox_of(&s, &kept, 1);
    assert!(
        got[0].contains("https://example.com/x")
            && !got[0].contains("/t/o/")
            && !got[0].contains("/t/c/"),
        "no pixel and no tracked link: {}",
        got[0]
    );

    // The receiving side bounces the other one: Postfix's report lands in the mailbox.
    let message_id = {
        use diesel::prelude::*;
        use rapport::db::schema::{mail_messages, send_recipients};
        send_recipients::table
            .inner_join(
                mail_messages::table.on(mail_messages::id
                    .nullable()
                    .eq(send_recipients::mail_message_id)),
            )
            .filter(send_recipients::send_id.eq(&send_id))
            .filter(send_recipients::address.eq(&gone))
            .select(mail_messages::message_id)
            .first::<String>(&mut app.pool.get().unwrap())
            .unwrap()
    };
    let dsn = format!(
        "From: MAILER-DAEMON@{domain}\r\nTo: {from}\r\nSubject: Undelivered Mail Returned to Sender\r\n\
         Message-ID: <dsn-{tag}@{domain}>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
         --B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\
         --B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; {domain}\r\n\r\n\
         Final-Recipient: rfc822; {gone}\r\nAction: failed\r\nStatus: 5.1.1\r\n\
         Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n\
         --B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: {from}\r\nTo: {gone}\r\n\
         Subject: News\r\nMessage-ID: {message_id}\r\n\r\n--B--\r\n",
        domain = "mail.rapport.test"
    );
    {
        use lettre::Transport;
        let envelope = lettre::address::Envelope::new(
            Some(gone.parse().unwrap()),
            vec![from.parse().unwrap()],
        )
        .unwrap();
        lettre::SmtpTransport::builder_dangerous(s.2.as_str())
            .port(s.3)
            .credentials(lettre::transport::smtp::authentication::Credentials::new(
                gone.clone(),
                "secret".into(),
            ))
            .build()
            .send_raw(&envelope, dsn.as_bytes())
            .unwrap();
    }
    let synced = wait_sync(&app, &svc, &mk_t, mb["id"].as_str().unwrap(), 1).await;
    assert_eq!(synced["bounces"], 1, "{synced}");
    let report = send(
        &svc,
        api(Method::GET, &format!("/api/sends/{send_id}"), &mk_t),
    )
    .await
    .json();
    assert_eq!(
        (report["delivered"].as_i64(), report["bounced"].as_i64()),
        (Some(2), Some(1)),
        "{report}"
    );
    let hours = report["overTime"].as_array().unwrap();
    assert_eq!(
        hours
            .iter()
            .map(|h| h["delivered"].as_i64().unwrap())
            .sum::<i64>(),
        2,
        "{report}"
    );
    let bounces = send(&svc, api(Method::GET, "/api/mail/bounces", &mk_t))
        .await
        .json();
    assert_eq!(bounces["data"][0]["address"], gone.as_str(), "{bounces}");
    assert_eq!(bounces["data"][0]["reason"], "550 5.1.1 User unknown");
    // The export has every recipient with what became of each.
    let csv = send(
        &svc,
        api(
            Method::GET,
            &format!("/api/sends/{send_id}/export?format=csv"),
            &mk_t,
        ),
    )
    .await;
    assert_eq!(csv.status, StatusCode::OK);
    let text = String::from_utf8(csv.bytes.clone()).unwrap();
    assert!(text.starts_with("clientId,client,address,state"), "{text}");
    assert!(text.contains(&format!("{gone},bounced")), "{text}");
    let r = send(
        &svc,
        api(Method::GET, &format!("/api/sends/{send_id}/export"), &rep_t),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "reps do not see bulk sends"
    );
    // Nothing more goes to the bounced address, until the bounce is cleared.
    let preview = send(
        &svc,
        api(Method::POST, "/api/sends/preview", &mk_t).set_json(json!({"audience": audience})),
    )
    .await
    .json();
    assert_eq!(
        (
            preview["recipients"].as_i64(),
            preview["excluded"]["bounced"].as_i64()
        ),
        (Some(1), Some(1)),
        "{preview}"
    );
    let r = send(
        &svc,
        api(Method::DELETE, &format!("/api/mail/bounces/{gone}"), &mk_t),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let preview = send(
        &svc,
        api(Method::POST, "/api/sends/preview", &mk_t).set_json(json!({"audience": audience})),
    )
    .await
    .json();
    assert_eq!(preview["recipients"], 2, "{preview}");
}

/// A rep texts a client from Rapport: a text-message template (or free text) rendered for
/// the client, logged on the timeline as an outbound text, and handed to the rep's phone as
/// an `sms:` link. No number, an e-mail template, an opt-out or another organization's
/// client is refused with the reason, in the API and the console.
#[actix_web::test]
async fn a_rep_texts_a_client_from_a_template_and_it_is_on_the_timeline() {
    let app = TestApp::new().await;
    let svc = app.service().await;
    let org = app.org("Texting Co");
    let rep = app.user(&org, "rep@text.test", "sales_rep");
    let token = app.token(&org, &rep);
    let client = |body: serde_json::Value| {
        let svc = &svc;
        let token = token.clone();
        async move {
            let r = send(
                svc,
                api(Method::POST, "/api/clients", &token).set_json(body),
            )
            .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
            r.json()["id"].as_str().unwrap().to_string()
        }
    };
    let ada = client(
        json!({"type": "individual", "firstName": "Ada", "lastName": "Lovelace",
                            "phone": "+1 415 555 0100"}),
    )
    .await;
    let no_phone =
        client(json!({"type": "individual", "firstName": "Bo", "email": "bo@text.test"})).await;
    let opted_out =
        client(json!({"type": "individual", "firstName": "Cy", "phone": "+44 20 7946 0000"})).await;
    send(
        &svc,
        api(
            Method::PUT,
            &format!("/api/clients/{opted_out}/preferences"),
            &token,
        )
        .set_json(json!({"channels": {"sms": {"status": "opt_out", "source": "phone call"}}})),
    )
    .await;
    let sms = send(
        &svc,
        api(Method::POST, "/api/templates", &token).set_json(json!({
            "kind": "sms", "name": "Reminder",
            "body": "Hi {{ client.firstName }}, see you at 10 & bring ID."
        })),
    )
    .await;
    assert_eq!(sms.status, StatusCode::CREATED, "{}", sms.body);
    let sms = sms.json()["id"].as_str().unwrap().to_string();
    let email = send(
        &svc,
        api(Method::POST, "/api/templates", &token).set_json(json!({
            "name": "Letter", "subject": "Hello", "body": "Dear {{ client.firstName }}"
        })),
    )
    .await
    .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let text = |id: &str, body: serde_json::Value| {
        api(
            Method::POST,
            &format!("/api/clients/{id}/text-messages"),
            &token,
        )
        .set_json(body)
    };

    let r = send(&svc, text(&ada, json!({"templateId": sms}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let j = r.json();
    assert_eq!(j["text"], "Hi Ada, see you at 10 & bring ID.");
    assert_eq!(
        j["uri"],
        "sms:+14155550100?body=Hi%20Ada%2C%20see%20you%20at%2010%20%26%20bring%20ID."
    );
    assert_eq!(
        (j["segments"].as_u64(), j["to"].as_str()),
        (Some(1), Some("+1 415 555 0100"))
    );
    assert_eq!(
        (
            j["interaction"]["type"].as_str(),
            j["interaction"]["direction"].as_str()
        ),
        (Some("sms"), Some("outbound"))
    );
    let tl = send(
        &svc,
        api(
            Method::GET,
            &format!("/api/clients/{ada}/interactions"),
            &token,
        ),
    )
    .await
    .json();
    assert_eq!(tl["data"][0]["type"], "sms", "{tl}");
    assert_eq!(
        tl["data"][0]["content"],
        "Hi Ada, see you at 10 & bring ID."
    );

    // Refusals, each naming its reason; nothing is logged.
    let field_of =
        |r: &crate::support::Resp| r.json()["errors"][0]["field"].as_str().map(str::to_string);
    let r = send(&svc, text(&ada, json!({"templateId": email}))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field_of(&r).as_deref(), Some("templateId"), "{}", r.body);
    let r = send(&svc, text(&no_phone, json!({"body": "Hi"}))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("no phone number"), "{}", r.body);
    let r = send(&svc, text(&opted_out, json!({"body": "Hi"}))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("opted out of SMS"), "{}", r.body);
    let r = send(&svc, text(&ada, json!({"body": "{{ client.firstName "}))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field_of(&r).as_deref(), Some("body"), "{}", r.body);
    let r = send(&svc, text(&ada, json!({"body": "x".repeat(1601)}))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("at most 1600"), "{}", r.body);
    let tl = send(
        &svc,
        api(
            Method::GET,
            &format!("/api/clients/{ada}/interactions"),
            &token,
        ),
    )
    .await
    .json();
    assert_eq!(tl["data"].as_array().unwrap().len(), 1, "{tl}");
    // Another organization's rep does not find the client.
    let other = app.org("Elsewhere");
    let stranger = app.user(&other, "rep@elsewhere.test", "sales_rep");
    let stranger = app.token(&other, &stranger);
    let r = send(
        &svc,
        api(
            Method::POST,
            &format!("/api/clients/{ada}/text-messages"),
            &stranger,
        )
        .set_json(json!({"body": "Hi"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);

    // The console: "Text" on the profile, a preview with its segments, then the link.
    let mut b = Browser::new();
    b.sign_in(&svc, "rep@text.test", PASSWORD).await;
    let profile = b.get(&svc, &format!("/clients/{ada}")).await;
    assert!(profile
        .body
        .contains(&format!("href=\"/clients/{ada}/text\"")));
    let path = format!("/clients/{ada}/text");
    let page = b.get(&svc, &path).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Reminder"), "{}", page.body);
    let preview = b
        .hx_post(
            &svc,
            &path,
            &[
                ("templateId", sms.as_str()),
                ("text", ""),
                ("do", "preview"),
            ],
        )
        .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    assert!(
        preview
            .body
            .contains("Hi Ada, see you at 10 &#38; bring ID.")
            && preview.body.contains("1 SMS segment."),
        "{}",
        preview.body
    );
    let logged = b
        .hx_post(
            &svc,
            &path,
            &[
                ("templateId", ""),
                ("text", "Running late, {{ client.firstName }}"),
                ("do", "log"),
            ],
        )
        .await;
    assert_eq!(logged.status, StatusCode::OK, "{}", logged.body);
    assert!(
        logged.body.contains("Logged on")
            && logged
                .body
                .contains("sms:+14155550100?body=Running%20late%2C%20Ada"),
        "{}",
        logged.body
    );
    let refused = b
        .hx_post(
            &svc,
            &format!("/clients/{opted_out}/text"),
            &[("templateId", ""), ("text", "Hi"), ("do", "log")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.body.contains("opted out of SMS"),
        "{}",
        refused.body
    );
    let tl = send(
        &svc,
        api(
            Method::GET,
            &format!("/api/clients/{ada}/interactions"),
            &token,
        ),
    )
    .await
    .json();
    assert_eq!(tl["data"].as_array().unwrap().len(), 2, "{tl}");
    assert_eq!(tl["data"][0]["content"], "Running late, Ada");
}
