//! Meetings beyond the quick log: external appointments (idempotent), `.ics` import and the
//! feed round trip, participants, reminders, system events, the deal timeline, inline edit
//! and the calendar page.

use actix_web::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::*;

struct World {
    t: TestApp,
    rep: String,
    rep_id: String,
    other_rep: String,
    other_rep_id: String,
    manager: String,
    outsider: String,
}

async fn world() -> World {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    let r = t.user(&org, "rep@acme.test", "sales_rep");
    let r2 = t.user(&org, "rep2@acme.test", "sales_rep");
    let m = t.user(&org, "manager@acme.test", "manager");
    let other = t.org("Globex");
    let o = t.user(&other, "manager@globex.test", "manager");
    World {
        rep: t.token(&org, &r),
        rep_id: r,
        other_rep: t.token(&org, &r2),
        other_rep_id: r2,
        manager: t.token(&org, &m),
        outsider: t.token(&other, &o),
        t,
    }
}

async fn client<S, B>(app: &S, token: &str, body: Value) -> String
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let r = send(app, api(Method::POST, "/api/clients", token).set_json(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.json()["id"].as_str().unwrap().to_string()
}

fn tomorrow_at(h: u32) -> chrono::NaiveDateTime {
    (chrono::Utc::now() + chrono::Duration::days(1))
        .date_naive()
        .and_hms_opt(h, 0, 0)
        .unwrap()
}

fn z(t: chrono::NaiveDateTime) -> String {
    format!("{}Z", t.format("%Y-%m-%dT%H:%M:%S"))
}

fn subjects(v: &Value) -> Vec<String> {
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["subject"].as_str().unwrap().to_string())
        .collect()
}

fn feed_path(url: &Value) -> String {
    let url = url["url"].as_str().unwrap();
    url[url.find("/calendar/").unwrap()..].to_string()
}

/// An appointment system posts the same appointment twice (a retry, then a change): one
/// meeting, updated; it shows in the rep's feed, and that feed imported into another
/// organization round-trips subject, time, length and place, once however often imported.
#[actix_web::test]
async fn appointments_are_idempotent_and_the_feed_round_trips_through_ics_import() {
    let w = world().await;
    let app = w.t.service().await;
    let tyrell = client(
        &app,
        &w.rep,
        json!({"type": "individual", "firstName": "Eldon", "lastName": "Tyrell", "email": "eldon@tyrell.test"}),
    )
    .await;
    let start = tomorrow_at(10);
    let body = json!({
        "externalId": "cal-42", "clientEmail": "ELDON@tyrell.test", "subject": "Demo",
        "startsAt": z(start), "endsAt": z(start + chrono::Duration::minutes(90)),
        "location": "Room 3, HQ", "description": "Bring the owl"
    });
    let first = send(
        &app,
        api(Method::POST, "/api/appointments", &w.rep).set_json(body.clone()),
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let id = first.json()["id"].as_str().unwrap().to_string();
    assert_eq!(first.json()["clientId"], tyrell.as_str());
    assert_eq!(first.json()["durationMinutes"], 90);
    let retry = send(
        &app,
        api(Method::POST, "/api/appointments", &w.rep).set_json(body.clone()),
    )
    .await;
    assert_eq!(retry.status, StatusCode::OK, "a retry changes nothing");
    assert_eq!(retry.json()["id"], id.as_str());
    let mut changed = body.clone();
    changed["subject"] = json!("Demo (moved)");
    let moved = send(
        &app,
        api(Method::POST, "/api/appointments", &w.rep).set_json(changed),
    )
    .await;
    assert_eq!(moved.status, StatusCode::OK);
    let timeline = send(
        &app,
        api(
            Method::GET,
            &format!("/api/clients/{tyrell}/interactions"),
            &w.rep,
        ),
    )
    .await
    .json();
    assert_eq!(subjects(&timeline), vec!["Demo (moved)"]);
    assert_eq!(timeline["data"][0]["location"], "Room 3, HQ");

    // Bad appointments are refused with the reason, per field.
    for (bad, field) in [
        (
            json!({"clientId": tyrell, "startsAt": z(start)}),
            "externalId",
        ),
        (
            json!({"externalId": "x", "clientEmail": "nobody@x.test", "startsAt": z(start)}),
            "clientEmail",
        ),
        (
            json!({"externalId": "x", "clientId": tyrell, "startsAt": "tomorrow"}),
            "startsAt",
        ),
        (
            json!({"externalId": "x", "clientId": tyrell, "startsAt": z(start), "endsAt": z(start - chrono::Duration::hours(1))}),
            "endsAt",
        ),
    ] {
        let r = send(
            &app,
            api(Method::POST, "/api/appointments", &w.rep).set_json(bad),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        assert!(r.is_problem());
        assert!(r.body.contains(field), "{field}: {}", r.body);
    }
    // Another organization cannot reach the client.
    let foreign = send(
        &app,
        api(Method::POST, "/api/appointments", &w.outsider).set_json(body),
    )
    .await;
    assert_eq!(foreign.status, StatusCode::UNPROCESSABLE_ENTITY);

    // The feed carries the place and the client as an attendee…
    let url = send(&app, api(Method::GET, "/api/me/calendar-feed", &w.rep))
        .await
        .json();
    let feed = send(
        &app,
        actix_web::test::TestRequest::get().uri(&feed_path(&url)),
    )
    .await
    .body;
    assert!(feed.contains("LOCATION:Room 3\\, HQ"), "{feed}");
    assert!(feed.contains("mailto:eldon@tyrell.test"), "{feed}");
    // …and imports into another organization that knows the same person.
    let theirs = client(
        &app,
        &w.outsider,
        json!({"type": "individual", "lastName": "Tyrell", "email": "eldon@tyrell.test"}),
    )
    .await;
    let import = |token: &str| {
        api(Method::POST, "/api/calendar/import", token)
            .insert_header(("content-type", "text/calendar"))
            .set_payload(feed.clone())
    };
    let r = send(&app, import(&w.outsider)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["created"], 1, "{}", r.body);
    let again = send(&app, import(&w.outsider)).await.json();
    assert_eq!(
        (again["created"].clone(), again["updated"].clone()),
        (json!(0), json!(1))
    );
    let copied = send(
        &app,
        api(
            Method::GET,
            &format!("/api/clients/{theirs}/interactions"),
            &w.outsider,
        ),
    )
    .await
    .json();
    assert_eq!(
        subjects(&copied),
        vec!["Demo (moved)"],
        "one meeting, the subject kept"
    );
    let m = &copied["data"][0];
    assert_eq!(m["type"], "meeting");
    assert_eq!(m["scheduledAt"].as_str().unwrap()[..19], z(start)[..19]);
    assert_eq!(m["durationMinutes"], 90);
    assert_eq!(m["location"], "Room 3, HQ");
    assert_eq!(m["content"], "Bring the owl");
    // Back into the organization it came from: recognised, nothing doubled.
    let home = send(&app, import(&w.rep)).await.json();
    assert_eq!(home["created"], 0);
    assert_eq!(home["skipped"][0]["reason"], "It is already in Rapport.");
    // Not a calendar at all: a clear refusal, nothing imported.
    let junk = send(
        &app,
        api(Method::POST, "/api/calendar/import", &w.rep)
            .insert_header(("content-type", "text/calendar"))
            .set_payload("hello, world"),
    )
    .await;
    assert_eq!(junk.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(junk.body.contains("BEGIN:VCALENDAR"), "{}", junk.body);
}

/// A meeting with another client and a colleague shows on both clients' timelines and in
/// the colleague's feed; reminders reach the right people exactly once; status changes and
/// deal moves appear as read-only events; the deal has its own timeline.
#[actix_web::test]
async fn participants_reminders_events_and_the_deal_timeline() {
    let w = world().await;
    let app = w.t.service().await;
    let acme = client(
        &app,
        &w.manager,
        json!({"type": "company", "companyName": "Wayne Ent"}),
    )
    .await;
    let partner = client(
        &app,
        &w.manager,
        json!({"type": "company", "companyName": "Kord Ind"}),
    )
    .await;
    let reps_own = client(
        &app,
        &w.rep,
        json!({"type": "company", "companyName": "Rep's own"}),
    )
    .await;
    let start = tomorrow_at(15);
    let r = send(
        &app,
        api(Method::POST, &format!("/api/clients/{acme}/interactions"), &w.manager).set_json(json!({
            "type": "meeting", "subject": "Joint venture", "scheduledAt": z(start),
            "participants": [{"type": "client", "id": partner}, {"type": "user", "id": w.other_rep_id}]
        })),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let meeting = r.json();
    assert_eq!(meeting["participants"].as_array().unwrap().len(), 2);
    let partner_timeline = send(
        &app,
        api(
            Method::GET,
            &format!("/api/clients/{partner}/interactions"),
            &w.manager,
        ),
    )
    .await
    .json();
    assert_eq!(subjects(&partner_timeline), vec!["Joint venture"]);
    // The participant's calendar names who takes part, as the timeline does.
    let day = start.format("%Y-%m-%d").to_string();
    let after = (start + chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let theirs = send(
        &app,
        api(
            Method::GET,
            &format!("/api/calendar?from={day}&to={after}"),
            &w.other_rep,
        ),
    )
    .await
    .json();
    assert_eq!(subjects(&theirs), vec!["Joint venture"]);
    assert_eq!(
        theirs["data"][0]["participants"].as_array().unwrap().len(),
        2,
        "{theirs}"
    );
    let url = send(
        &app,
        api(Method::GET, "/api/me/calendar-feed", &w.other_rep),
    )
    .await
    .json();
    let feed = send(
        &app,
        actix_web::test::TestRequest::get().uri(&feed_path(&url)),
    )
    .await
    .body;
    assert!(
        feed.contains("Joint venture"),
        "a participant's feed has it"
    );
    // A rep cannot add a client they do not see.
    let hidden = send(
        &app,
        api(
            Method::POST,
            &format!("/api/clients/{reps_own}/interactions"),
            &w.rep,
        )
        .set_json(json!({
            "type": "meeting", "scheduledAt": z(start),
            "participants": [{"type": "client", "id": acme}]
        })),
    )
    .await;
    assert_eq!(hidden.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(hidden.body.contains("participants"));

    // Reminders: a task due now reminds its assignee; the meeting reminds the author and
    // the colleague a quarter of an hour before; nothing is sent twice.
    let task = send(
        &app,
        api(Method::POST, "/api/tasks", &w.rep).set_json(json!({
            "clientId": reps_own, "subject": "Send the brochure",
            "dueAt": z(chrono::Utc::now().naive_utc() - chrono::Duration::minutes(1))
        })),
    )
    .await
    .json();
    assert!(task["remindAt"].is_string(), "{task}");
    assert_eq!(
        meeting["remindAt"].as_str().unwrap()[..19],
        z(start - chrono::Duration::minutes(15))[..19]
    );
    let mut c = w.t.pool.get().unwrap();
    let now = rapport::db::now();
    assert_eq!(
        rapport::domain::interactions::send_reminders(&mut c, now).unwrap(),
        1
    );
    assert_eq!(
        rapport::domain::interactions::send_reminders(&mut c, now).unwrap(),
        0
    );
    let later = now + chrono::Duration::days(2);
    assert_eq!(
        rapport::domain::interactions::send_reminders(&mut c, later).unwrap(),
        1
    );
    drop(c);
    let titles = |token: String| {
        let app = &app;
        async move {
            let n = send(app, api(Method::GET, "/api/me/notifications", &token))
                .await
                .json();
            n["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["title"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(titles(w.rep.clone()).await, vec!["Task: Send the brochure"]);
    assert_eq!(
        titles(w.other_rep.clone()).await,
        vec!["Meeting: Joint venture"]
    );
    assert_eq!(
        titles(w.manager.clone()).await,
        vec!["Meeting: Joint venture"]
    );

    // A status change is an event on the timeline; events cannot be edited or deleted.
    let r = send(
        &app,
        api(Method::PATCH, &format!("/api/clients/{reps_own}"), &w.rep)
            .set_json(json!({"status": "customer"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let events = send(
        &app,
        api(
            Method::GET,
            &format!("/api/clients/{reps_own}/interactions?filter[type]=event"),
            &w.rep,
        ),
    )
    .await
    .json();
    assert_eq!(
        subjects(&events),
        vec!["Status changed from lead to customer"]
    );
    let event = events["data"][0]["id"].as_str().unwrap();
    for m in [Method::PUT, Method::DELETE] {
        let r = send(
            &app,
            api(m, &format!("/api/interactions/{event}"), &w.rep).set_json(json!({"subject": "x"})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    }

    // A deal: a call about it and its moves make its timeline.
    let p = send(&app, api(Method::GET, "/api/pipelines", &w.rep))
        .await
        .json();
    let stage = |name: &str| crate::support::stage_named(&p, name);
    let deal = send(
        &app,
        api(Method::POST, "/api/opportunities", &w.rep).set_json(json!({
            "name": "Batmobile fleet", "clientId": reps_own, "value": "1000", "currency": "usd",
            "stage": stage("Qualification")
        })),
    )
    .await;
    assert_eq!(deal.status, StatusCode::CREATED, "{}", deal.body);
    let deal = deal.json()["id"].as_str().unwrap().to_string();
    send(
        &app,
        api(
            Method::POST,
            &format!("/api/clients/{reps_own}/interactions"),
            &w.rep,
        )
        .set_json(json!({"type": "call", "subject": "Fleet size?", "opportunityId": deal})),
    )
    .await;
    send(
        &app,
        api(
            Method::POST,
            &format!("/api/clients/{reps_own}/interactions"),
            &w.rep,
        )
        .set_json(json!({"type": "note", "subject": "Unrelated"})),
    )
    .await;
    let moved = send(
        &app,
        api(
            Method::POST,
            &format!("/api/opportunities/{deal}/move"),
            &w.rep,
        )
        .set_json(json!({"stage": stage("Proposal")})),
    )
    .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    let deal_timeline = send(
        &app,
        api(
            Method::GET,
            &format!("/api/opportunities/{deal}/interactions"),
            &w.rep,
        ),
    )
    .await
    .json();
    assert_eq!(
        subjects(&deal_timeline),
        vec!["Deal “Batmobile fleet” moved to Proposal", "Fleet size?"]
    );
    // Another rep sees neither the deal's nor the client's timeline.
    for path in [
        format!("/api/opportunities/{deal}/interactions"),
        format!("/api/clients/{reps_own}/interactions"),
    ] {
        let r = send(&app, api(Method::GET, &path, &w.other_rep)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
    }
    // Filters: by author and by date.
    let mine = send(
        &app,
        api(
            Method::GET,
            &format!(
                "/api/clients/{acme}/interactions?filter[owner]={}",
                w.rep_id
            ),
            &w.manager,
        ),
    )
    .await
    .json();
    assert_eq!(mine["data"], json!([]));
    let day = start.date().format("%Y-%m-%d");
    let on_day = send(
        &app,
        api(
            Method::GET,
            &format!("/api/clients/{acme}/interactions?filter[from]={day}&filter[to]={day}"),
            &w.manager,
        ),
    )
    .await
    .json();
    assert_eq!(subjects(&on_day), vec!["Joint venture"]);
    let bad = send(
        &app,
        api(
            Method::GET,
            &format!("/api/clients/{acme}/interactions?filter[from]=soon"),
            &w.manager,
        ),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// In the console: a call logged from the client list's "Log" link, edited inline (a stale
/// edit is refused in place), marked done and deleted; the calendar shows the week's
/// meetings; an invitation file is imported from the calendar page; the deal page has its
/// timeline.
#[actix_web::test]
async fn the_console_edits_inline_and_shows_the_calendar() {
    let w = world().await;
    let app = w.t.service().await;
    let id = client(
        &app,
        &w.rep,
        json!({"type": "individual", "firstName": "Lucius", "lastName": "Fox", "email": "lucius@wayne.test"}),
    )
    .await;
    let mut b = Browser::new();
    b.sign_in(&app, "rep@acme.test", PASSWORD).await;
    let list = b.get(&app, "/clients").await.body;
    assert!(
        list.contains(&format!("href=\"/clients/{id}?log=1\"")),
        "{list}"
    );
    let profile = b.get(&app, &format!("/clients/{id}?log=1")).await.body;
    assert!(profile.contains("id=\"quick-log\"") && profile.contains(" autofocus>"));
    let when = tomorrow_at(11).format("%Y-%m-%dT%H:%M").to_string();
    let r = b
        .hx_post(
            &app,
            &format!("/clients/{id}/interactions"),
            &[
                ("type", "meeting"),
                ("subject", "Prototype review"),
                ("content", ""),
                ("when", &when),
                ("direction", "outbound"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let all = send(
        &app,
        api(
            Method::GET,
            &format!("/api/clients/{id}/interactions"),
            &w.rep,
        ),
    )
    .await
    .json();
    let meeting = all["data"][0].clone();
    let mid = meeting["id"].as_str().unwrap().to_string();
    assert_eq!(meeting["status"], "scheduled");

    // Inline edit: the form, a save, a stale save.
    let form = b.hx_get(&app, &format!("/interactions/{mid}/edit")).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(
        form.body.contains("name=\"version\" value=\"1\""),
        "{}",
        form.body
    );
    let saved = b
        .hx_post(
            &app,
            &format!("/interactions/{mid}"),
            &[
                ("version", "1"),
                ("type", "meeting"),
                ("status", "scheduled"),
                ("subject", "Prototype review II"),
                ("content", "<script>alert(1)</script>"),
                ("direction", ""),
                ("outcome", ""),
                ("when", &when),
                ("durationMinutes", "45"),
                ("location", "Lab 7"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    assert!(saved.body.contains("Prototype review II") && saved.body.contains("Lab 7"));
    assert!(!saved.body.contains("<script>"), "stored script never runs");
    let stale = b
        .hx_post(
            &app,
            &format!("/interactions/{mid}"),
            &[
                ("version", "1"),
                ("type", "meeting"),
                ("status", "scheduled"),
                ("subject", "Lost edit"),
                ("when", &when),
            ],
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert!(stale.body.contains("changed by someone else") && stale.body.contains("<form"));
    let bad = b
        .hx_post(
            &app,
            &format!("/interactions/{mid}"),
            &[
                ("type", "meeting"),
                ("status", "scheduled"),
                ("subject", "Typed"),
                ("durationMinutes", "lots"),
                ("when", &when),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("whole number of minutes") && bad.body.contains("value=\"Typed\""));

    // The calendar shows it this week (or next, on a Sunday).
    let cal = b
        .get(
            &app,
            &format!("/calendar?date={}", tomorrow_at(0).format("%Y-%m-%d")),
        )
        .await;
    assert_eq!(cal.status, StatusCode::OK);
    assert!(
        cal.body.contains("Prototype review II") && cal.body.contains("11:00"),
        "{}",
        cal.body
    );
    let month = b
        .get(
            &app,
            &format!(
                "/calendar?view=month&date={}",
                tomorrow_at(0).format("%Y-%m-%d")
            ),
        )
        .await;
    assert!(month.body.contains("Prototype review II"));
    // Another rep's calendar does not.
    let mut other = Browser::new();
    other.sign_in(&app, "rep2@acme.test", PASSWORD).await;
    assert!(!other
        .get(&app, "/calendar?view=month")
        .await
        .body
        .contains("Prototype review"));

    // Import an invitation from the calendar page.
    let start = tomorrow_at(9).format("%Y%m%dT%H%M%SZ");
    let ics = format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\nBEGIN:VEVENT\r\nUID:inv-1@mail.test\r\nDTSTART:{start}\r\nDURATION:PT1H\r\nSUMMARY:Board prep\\, part 2\r\nORGANIZER:mailto:rep@acme.test\r\nATTENDEE;CN=Lucius Fox:mailto:LUCIUS@wayne.test\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:inv-2@mail.test\r\nDTSTART:{start}\r\nSUMMARY:Stranger\r\nATTENDEE:mailto:nobody@nowhere.test\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    );
    let r = b
        .hx_put_raw(
            &app,
            "/calendar/import?name=invite.ics",
            "text/calendar",
            ics.into_bytes(),
        )
        .await;
    assert_eq!(r.header("HX-Redirect"), Some("/calendar"), "{}", r.body);
    let flash = b.get(&app, "/calendar").await.body;
    assert!(
        flash.contains("Imported 1 meeting") && flash.contains("Stranger"),
        "{flash}"
    );
    let all = send(
        &app,
        api(
            Method::GET,
            &format!("/api/clients/{id}/interactions"),
            &w.rep,
        ),
    )
    .await
    .json();
    assert!(subjects(&all).contains(&"Board prep, part 2".to_string()));

    // Done, then deleted.
    let done = b
        .hx_post(&app, &format!("/interactions/{mid}/done"), &[])
        .await;
    assert_eq!(done.status, StatusCode::OK);
    assert!(!done.body.contains("/done\""), "no Done button once done");
    let gone = b
        .hx_post(&app, &format!("/interactions/{mid}/delete"), &[])
        .await;
    assert_eq!(gone.status, StatusCode::OK);
    let r = send(
        &app,
        api(Method::GET, &format!("/api/interactions/{mid}"), &w.rep),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Filtering the card by type keeps the filter on the next page link.
    let card = b
        .hx_get(&app, &format!("/clients/{id}/timeline?type=meeting"))
        .await
        .body;
    assert!(card.contains("Board prep") && card.contains("<option value=\"meeting\" selected"));

    // A deal page has its timeline and quick log.
    let p = send(&app, api(Method::GET, "/api/pipelines", &w.rep))
        .await
        .json();
    let deal = send(
        &app,
        api(Method::POST, "/api/opportunities", &w.rep).set_json(json!({
            "name": "Tumbler", "clientId": id, "value": "10", "currency": "usd",
            "stage": p["data"][0]["stages"][0]["id"]
        })),
    )
    .await
    .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = b
        .hx_post(
            &app,
            &format!("/opportunities/{deal}/interactions"),
            &[("type", "call"), ("subject", "Specs call")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let page = b.get(&app, &format!("/opportunities/{deal}")).await.body;
    assert!(page.contains("id=\"timeline\"") && page.contains("Specs call"));
    assert!(!page.contains("Board prep"), "only what concerns the deal");
}

#[actix_web::test]
async fn open_tasks_with_a_due_time_are_on_the_calendar_until_done() {
    let w = world().await;
    let app = w.t.service().await;
    let acme = client(
        &app,
        &w.rep,
        json!({"type": "company", "companyName": "Acme"}),
    )
    .await;
    let task = send(
        &app,
        api(Method::POST, "/api/tasks", &w.rep).set_json(json!({
            "clientId": acme, "subject": "Send the renewal offer", "dueAt": z(tomorrow_at(15))
        })),
    )
    .await;
    assert_eq!(task.status, StatusCode::CREATED, "{}", task.body);
    let id = task.json()["id"].as_str().unwrap().to_string();
    let day = tomorrow_at(0).format("%Y-%m-%d").to_string();

    let mut b = Browser::new();
    b.sign_in(&app, "rep@acme.test", PASSWORD).await;
    let page = b.get(&app, &format!("/calendar?date={day}")).await.body;
    assert!(
        page.contains("Due 15:00") && page.contains("Send the renewal offer"),
        "{page}"
    );
    let after = (tomorrow_at(0) + chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let api_view = send(
        &app,
        api(
            Method::GET,
            &format!("/api/calendar?from={day}&to={after}"),
            &w.rep,
        ),
    )
    .await;
    assert_eq!(
        subjects(&api_view.json()),
        vec!["Send the renewal offer".to_string()],
        "the API's calendar shows it too"
    );
    // Another rep's calendar does not show it.
    let mut other = Browser::new();
    other.sign_in(&app, "rep2@acme.test", PASSWORD).await;
    let theirs = other.get(&app, &format!("/calendar?date={day}")).await.body;
    assert!(!theirs.contains("Send the renewal offer"));

    let done = send(
        &app,
        api(Method::POST, &format!("/api/tasks/{id}/complete"), &w.rep),
    )
    .await;
    assert!(done.status.is_success(), "{}", done.body);
    let page = b.get(&app, &format!("/calendar?date={day}")).await.body;
    assert!(
        !page.contains("Send the renewal offer"),
        "a done task leaves the calendar"
    );
}
