//! Each person's time zone and formats: chosen on the account page (or through the API),
//! used for every time and figure the console shows and every time typed into it, while
//! the API keeps speaking UTC and plain decimals.

use actix_web::http::{Method, StatusCode};
use chrono::{Datelike, TimeZone};
use serde_json::json;

use crate::support::*;

/// Tomorrow in Berlin at `h:m`, as the console's `datetime-local` value and as UTC.
fn berlin_tomorrow(h: u32, m: u32) -> (String, chrono::NaiveDateTime) {
    let tz = chrono_tz::Europe::Berlin;
    let day = chrono::Utc::now().with_timezone(&tz).date_naive() + chrono::Duration::days(1);
    let wall = day.and_hms_opt(h, m, 0).unwrap();
    let utc = tz.from_local_datetime(&wall).unwrap().naive_utc();
    (wall.format("%Y-%m-%dT%H:%M").to_string(), utc)
}

/// An API time (RFC 3339, UTC) as a naive UTC time.
fn instant(v: &serde_json::Value) -> chrono::NaiveDateTime {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{v}: {e}"))
        .naive_utc()
}

#[actix_web::test]
async fn a_person_sees_and_types_times_in_their_own_zone_and_format() {
    let t = TestApp::new().await;
    let org = t.org("Zones");
    let rep_id = t.user(&org, "anna@zones.test", "sales_rep");
    let colleague_id = t.user(&org, "bob@zones.test", "manager");
    let token = t.token(&org, &rep_id);
    let colleague = t.token(&org, &colleague_id);
    let app = t.service().await;

    // Everyone starts in UTC with the en-GB formats (what the console always showed).
    let me = send(&app, api(Method::GET, "/api/me", &token)).await.json();
    assert_eq!(me["user"]["timeZone"], "UTC");
    assert_eq!(me["user"]["locale"], "en-GB");

    let mut b = Browser::new();
    b.sign_in(&app, "anna@zones.test", PASSWORD).await;
    let page = b.get(&app, "/account/preferences").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Europe/Berlin") && page.body.contains("Time zone and formats"));

    // A zone or format that is not on the lists is refused next to the field, the choice
    // kept, nothing saved.
    let bad = b
        .hx_post(
            &app,
            "/account/preferences",
            &[("time_zone", "Mars/Olympus_Mons"), ("locale", "de-DE")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.body.contains("Choose a time zone from the list"),
        "{}",
        bad.body
    );
    assert!(
        bad.body.contains(r#"<option value="de-DE" selected"#),
        "{}",
        bad.body
    );
    let me = send(&app, api(Method::GET, "/api/me", &token)).await.json();
    assert_eq!(me["user"]["timeZone"], "UTC");

    let ok = b
        .hx_post(
            &app,
            "/account/preferences",
            &[("time_zone", "Europe/Berlin"), ("locale", "de-DE")],
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert!(
        ok.body.contains("Saved") && ok.body.contains("1.234.567,89 EUR"),
        "{}",
        ok.body
    );
    let me = send(&app, api(Method::GET, "/api/me", &token)).await.json();
    assert_eq!(me["user"]["timeZone"], "Europe/Berlin");
    assert_eq!(me["user"]["locale"], "de-DE");

    // A call planned for 09:30 Berlin time is stored as the UTC moment, which the API
    // answers unchanged, and the console shows it back at 09:30.
    let client = send(
        &app,
        api(Method::POST, "/api/clients", &token)
            .set_json(json!({"type": "company", "companyName": "Uhrwerk GmbH"})),
    )
    .await
    .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (typed, utc) = berlin_tomorrow(9, 30);
    let logged = b
        .hx_post(
            &app,
            &format!("/clients/{client}/interactions"),
            &[
                ("type", "call"),
                ("subject", "Quarterly call"),
                ("status", "scheduled"),
                ("when", &typed),
            ],
        )
        .await;
    assert_eq!(logged.status, StatusCode::OK, "{}", logged.body);
    let listed = send(
        &app,
        api(
            Method::GET,
            &format!("/api/clients/{client}/interactions"),
            &token,
        ),
    )
    .await
    .json();
    let call = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["subject"] == "Quarterly call")
        .unwrap()
        .clone();
    assert_eq!(instant(&call["scheduledAt"]), utc, "{call}");
    let profile = b.get(&app, &format!("/clients/{client}")).await.body;
    assert!(profile.contains("09:30"), "the call at 09:30 Berlin time");
    // The calendar shows it on Berlin's day at 09:30; a week there starts on Monday.
    let cal = b
        .get(&app, &format!("/calendar?view=month&date={}", &typed[..10]))
        .await
        .body;
    assert!(
        cal.contains("Quarterly call") && cal.contains("09:30"),
        "{cal}"
    );
    let heads = cal.find(r#"<div role="columnheader">Mon</div>"#).unwrap();
    assert!(heads < cal.find(r#"<div role="columnheader">Sun</div>"#).unwrap());

    // Figures in the German way on the deal page and the board; the API keeps decimals.
    let p = send(&app, api(Method::GET, "/api/pipelines", &token))
        .await
        .json();
    let deal = send(
        &app,
        api(Method::POST, "/api/opportunities", &token).set_json(json!({
            "name": "Zahnräder", "clientId": client, "value": "1234567.5", "currency": "EUR",
            "stage": p["data"][0]["stages"][0]["id"]
        })),
    )
    .await
    .json();
    assert_eq!(deal["value"], "1234567.50");
    let deal_page = b
        .get(
            &app,
            &format!("/opportunities/{}", deal["id"].as_str().unwrap()),
        )
        .await
        .body;
    assert!(deal_page.contains("1.234.567,50 EUR"), "{deal_page}");
    let board = b.get(&app, "/pipeline").await.body;
    assert!(board.contains("1.234.567,50 EUR"), "{board}");

    // A custom date and time reads in the zone too, and the edit form offers it on
    // Anna's clock.
    let admin_id = t.user(&org, "admin@zones.test", "admin");
    let admin = t.token(&org, &admin_id);
    let r = send(
        &app,
        api(Method::POST, "/api/custom-fields", &admin).set_json(
            json!({"entity": "client", "key": "nextVisit", "label": "Next visit", "type": "datetime"}),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let stored = utc.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let r = send(
        &app,
        api(Method::PATCH, &format!("/api/clients/{client}"), &token)
            .set_json(json!({"customFields": {"nextVisit": stored}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let shown = format!("{}.{}.{}, 09:30", &typed[8..10], &typed[5..7], &typed[..4]);
    let profile = b.get(&app, &format!("/clients/{client}")).await.body;
    assert!(profile.contains(&shown), "{shown} in the profile");
    let edit = b.get(&app, &format!("/clients/{client}/edit")).await.body;
    assert!(
        edit.contains(&format!("value=\"{typed}\"")),
        "{typed} in the form"
    );

    // The colleague, still in UTC and en-GB, sees the same moment in their own time.
    let (_, utc_again) = berlin_tomorrow(9, 30);
    assert_eq!(utc, utc_again);
    let mut c = Browser::new();
    c.sign_in(&app, "bob@zones.test", PASSWORD).await;
    let theirs = c.get(&app, &format!("/clients/{client}")).await.body;
    assert!(
        theirs.contains(&utc.format("%H:%M").to_string()),
        "the call at {} UTC",
        utc.format("%H:%M")
    );
    assert!(c
        .get(
            &app,
            &format!("/opportunities/{}", deal["id"].as_str().unwrap())
        )
        .await
        .body
        .contains("1,234,567.50 EUR"));
    drop(colleague);

    // A task typed as due at 17:00 Berlin time is due at 17:00 there.
    let (due, due_utc) = berlin_tomorrow(17, 0);
    let made = b
        .post_form(
            &app,
            "/tasks",
            &[
                ("clientId", &client),
                ("q", "Uhrwerk GmbH"),
                ("subject", "Send the offer"),
                ("due", &due),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    let tasks = send(
        &app,
        api(
            Method::GET,
            &format!("/api/clients/{client}/interactions?filter[type]=task"),
            &token,
        ),
    )
    .await
    .json();
    assert_eq!(instant(&tasks["data"][0]["dueAt"]), due_utc, "{tasks}");
    assert!(b.get(&app, "/tasks").await.body.contains("17:00"));

    // The same choice through the API, checked the same way; en-US weeks start on Sunday.
    let r = send(
        &app,
        api(Method::PUT, "/api/me/preferences", &token)
            .set_json(json!({"timeZone": "Europe/Atlantis", "locale": "en-US"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("timeZone"), "{}", r.body);
    let r = send(
        &app,
        api(Method::PUT, "/api/me/preferences", &token)
            .set_json(json!({"timeZone": "America/New_York", "locale": "en-US"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["locale"], "en-US");
    let cal = b.get(&app, "/calendar?view=month").await.body;
    let sun = cal.find(r#"<div role="columnheader">Sun</div>"#).unwrap();
    assert!(sun < cal.find(r#"<div role="columnheader">Mon</div>"#).unwrap());
    let ny = chrono_tz::America::New_York.from_utc_datetime(&utc);
    let twelve = ny.format("%-I:%M %p").to_string();
    assert!(
        b.get(&app, &format!("/clients/{client}"))
            .await
            .body
            .contains(&twelve),
        "the call at {twelve} New York time"
    );
    assert_eq!(ny.weekday(), ny.weekday());
}

#[actix_web::test]
async fn an_invitation_is_read_in_the_zone_it_names() {
    let t = TestApp::new().await;
    let org = t.org("Invites");
    let rep_id = t.user(&org, "rep@invites.test", "sales_rep");
    let token = t.token(&org, &rep_id);
    let app = t.service().await;
    send(
        &app,
        api(Method::POST, "/api/clients", &token).set_json(
            json!({"type": "individual", "firstName": "Lucia", "lastName": "Ortiz", "email": "lucia@ortiz.test"}),
        ),
    )
    .await;
    let day = (chrono::Utc::now() + chrono::Duration::days(3)).date_naive();
    let d = day.format("%Y%m%d");
    // Outlook writes its own zone names; other programs write IANA ones.
    let ics = format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\n\
         BEGIN:VEVENT\r\nUID:tz-1@mail.test\r\nDTSTART;TZID=Pacific Standard Time:{d}T090000\r\nDTEND;TZID=Pacific Standard Time:{d}T100000\r\nSUMMARY:West coast demo\r\nATTENDEE:mailto:lucia@ortiz.test\r\nEND:VEVENT\r\n\
         BEGIN:VEVENT\r\nUID:tz-2@mail.test\r\nDTSTART;TZID=Europe/Madrid:{d}T090000\r\nDURATION:PT30M\r\nSUMMARY:Madrid call\r\nATTENDEE:mailto:lucia@ortiz.test\r\nEND:VEVENT\r\n\
         END:VCALENDAR\r\n"
    );
    let r = send(
        &app,
        api(Method::POST, "/api/calendar/import", &token)
            .insert_header(("content-type", "text/calendar"))
            .set_payload(ics),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let from = day.format("%Y-%m-%d");
    let to = (day + chrono::Duration::days(1)).format("%Y-%m-%d");
    let cal = send(
        &app,
        api(
            Method::GET,
            &format!("/api/calendar?from={from}&to={to}"),
            &token,
        ),
    )
    .await
    .json();
    let at = |subject: &str| {
        cal["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["subject"] == subject)
            .map(|e| instant(&e["scheduledAt"]))
            .unwrap_or_else(|| panic!("{subject} in {cal}"))
    };
    let utc = |tz: chrono_tz::Tz| {
        tz.from_local_datetime(&day.and_hms_opt(9, 0, 0).unwrap())
            .unwrap()
            .naive_utc()
    };
    assert_eq!(at("West coast demo"), utc(chrono_tz::America::Los_Angeles));
    assert_eq!(at("Madrid call"), utc(chrono_tz::Europe::Madrid));
}
