//! E-mail figures (issue 19): queueing a bulk send to 100,000 clients (target under 10 s)
//! and filing 10,000 messages synced from a real IMAP server (target ≥ 500 messages/s).
//!
//!   cargo bench -p rapport-platform --bench mail
//!   BENCH_RECIPIENTS=100000 BENCH_MESSAGES=10000 BENCH_DATABASE_URL=postgres://… cargo bench …
//!
//! The sync leg needs the servers of `tests/mail/start` (`RAPPORT_TEST_IMAP`,
//! `RAPPORT_TEST_SMTP`) and says SKIPPED without them. `BENCH_NO_LAST_CONTACT=1` drops the
//! trigger that keeps clients' last contact before the sync, to see what it costs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Instant;

use rapport::domain::audit::AuditContext;
use rapport::domain::orgs::service;
use rapport::domain::sends::{Audience, NewSend};
use rapport::integrations::mail as transport;
use support::{env_or, fresh};

fn main() {
    let recipients: usize = env_or("BENCH_RECIPIENTS", "100000").parse().unwrap();
    let messages: usize = env_or("BENCH_MESSAGES", "10000").parse().unwrap();
    let (_target, pool, config) = fresh("mail", 4);
    let key = rapport::integrations::secret::Key::load(&config.data_dir).unwrap();
    let blobs = rapport::domain::attachments::configured_store(&config).unwrap();
    let mut c = pool.get().unwrap();
    let org = service::create_org(&mut c, "Mail bench").unwrap();
    let ctx = AuditContext::cli(&org.id);
    let (member, _) = service::add_member(
        &mut c,
        &ctx,
        service::NewMember {
            email: "marketer@bench.test",
            name: "Mara Marketer",
            password: Some("bench-password-1"),
            role: "marketer",
        },
    )
    .unwrap();
    let started = Instant::now();
    rapport::seed::seed_clients(&mut c, &org, recipients, 7, |_| {}).unwrap();
    println!(
        "seeded {recipients} clients in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // As `rapport seed` does: the planner needs statistics after a bulk load. Without them
    // PostgreSQL looked senders up by (organization, name_key) and filtered every client
    // (55–90 ms a message, 12 messages/s) instead of reading (organization, email).
    rapport::db::refresh_statistics(&mut c).unwrap();

    // A mailbox (no server needed to queue) and a template.
    let user_ctx = AuditContext {
        actor_user_id: Some(member.user.id.clone()),
        ..AuditContext::cli(&org.id)
    };
    let mut mb = rapport::domain::mail::new_mailbox(&org.id, None);
    let (imap, smtp) = (
        env_or("RAPPORT_TEST_IMAP", "127.0.0.1:9"),
        env_or("RAPPORT_TEST_SMTP", "127.0.0.1:9"),
    );
    let split = |s: &str| {
        s.rsplit_once(':')
            .map(|(h, p)| (h.to_string(), p.to_string()))
            .unwrap()
    };
    let ((ih, ip), (sh, sp)) = (split(&imap), split(&smtp));
    let inbox = format!(
        "bench-{}@mail.rapport.test",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    rapport::domain::mail::apply_input(
        &mut mb,
        rapport::domain::mail::MailboxInput {
            name: Some("Bench".into()),
            address: Some(inbox.clone()),
            username: Some(inbox.clone()),
            password: Some("secret".into()),
            imap_host: Some(ih.clone()),
            imap_port: Some(ip.clone()),
            imap_security: Some("none".into()),
            smtp_host: Some(sh),
            smtp_port: Some(sp),
            smtp_security: Some("none".into()),
            sent_folder: None,
            sync_enabled: Some(true),
        },
        &key,
    )
    .unwrap();
    rapport::domain::mail::save_mailbox(&mut c, &user_ctx, &mb, true).unwrap();
    let t = rapport::domain::templates::save(
        &mut c,
        &user_ctx,
        None,
        None,
        "Bench",
        "Hello {{ client.firstName }}",
        "Dear {{ client.name }},\n\nnews.\n",
    )
    .unwrap();

    // Queue the send: every recipient row written, preferences applied.
    let started = Instant::now();
    let (send, tally) = rapport::domain::sends::create(
        &mut c,
        &user_ctx,
        None,
        NewSend {
            name: "Bench".into(),
            template_id: t.id.clone(),
            mailbox_id: mb.id.clone(),
            audience: Audience::Query(String::new()),
            per_minute: 10_000,
            scheduled_at: None,
        },
    )
    .unwrap();
    let queued = started.elapsed();
    println!(
        "queue a send to {} clients ({} recipients, {} left out): {:.2} s (target < 10 s)",
        tally.matched,
        tally.eligible,
        tally.matched - tally.eligible,
        queued.as_secs_f64()
    );
    // One hand-out round: render and queue the messages of the first minute.
    let links = rapport::domain::sends::Links {
        base: "http://bench.test",
        key: &key,
    };
    let started = Instant::now();
    let handed = rapport::domain::sends::hand_out(&mut c, &links, None).unwrap();
    println!(
        "hand out one round of send {}: {handed} messages rendered and queued in {:.0} ms ({:.0} messages/s)",
        &send.id[..8],
        started.elapsed().as_secs_f64() * 1000.0,
        handed as f64 / started.elapsed().as_secs_f64()
    );

    // Sync: messages APPENDed to the mailbox on the real IMAP server, then fetched, parsed
    // and filed onto the timelines of the clients who wrote them.
    if std::env::var("RAPPORT_TEST_IMAP").is_err() {
        println!("sync: SKIPPED (no RAPPORT_TEST_IMAP; start the servers with tests/mail/start)");
        return;
    }
    use diesel::prelude::*;
    use rapport::db::schema::clients;
    let senders: Vec<(String, String)> = clients::table
        .filter(clients::organization_id.eq(&org.id))
        .filter(clients::email.is_not_null())
        .select((clients::email.assume_not_null(), clients::display_name))
        .limit(1000)
        .load(&mut c)
        .unwrap();
    let server = transport::Server {
        host: ih,
        port: ip.parse().unwrap(),
        security: transport::Security::None,
    };
    let login = transport::Login {
        username: inbox.clone(),
        password: "secret".into(),
    };
    let mut s = transport::imap_login(&server, &login).unwrap();
    let started = Instant::now();
    for i in 0..messages {
        let (from, name) = &senders[i % senders.len()];
        let raw = format!(
            "From: {name} <{from}>\r\nTo: {inbox}\r\nSubject: Question {i}\r\nMessage-ID: <bench-{i}-{}@x>\r\nDate: Thu, 03 Dec 2026 10:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello, this is message {i}.\r\nCould you send me the price list?\r\n",
            send.id
        );
        s.append("INBOX", raw.as_bytes()).finish().unwrap();
    }
    let _ = s.logout();
    println!(
        "appended {messages} messages over IMAP in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if std::env::var("BENCH_NO_LAST_CONTACT").is_ok() {
        use diesel::connection::SimpleConnection;
        let sql = match &*c {
            rapport::db::DbConn::Postgresql(_) => {
                "DROP TRIGGER clients_last_contact_insert ON interactions"
            }
            _ => "DROP TRIGGER clients_last_contact_insert",
        };
        c.batch_execute(sql).unwrap();
    }
    let started = Instant::now();
    let report = actix_web::rt::System::new()
        .block_on(rapport::ops::mail::sync(&pool, &key, &blobs, mb.clone()))
        .unwrap();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "sync {} messages from IMAP: {} filed on timelines, {} unmatched, in {:.1} s = {:.0} messages/s (target ≥ 500)",
        report.fetched,
        report.filed,
        report.unmatched,
        secs,
        report.fetched as f64 / secs
    );
}
