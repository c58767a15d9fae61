//! The dashboard per role, in the API and the console: a rep's own pipeline, forecast,
//! won against last month, deals closing soon and rotting, activities and tasks; a
//! manager's team with a line per rep; blocks a role may not see are absent.

use actix_web::http::{Method, StatusCode};
use chrono::{Datelike, Duration, Utc};
use serde_json::{json, Value};

use crate::support::*;

fn dec(v: &Value) -> f64 {
    v.as_str()
        .unwrap_or_else(|| panic!("not a decimal string: {v}"))
        .parse()
        .unwrap()
}

fn names(list: &Value) -> Vec<String> {
    list["deals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_string())
        .collect()
}

#[actix_web::test]
async fn the_dashboard_adds_up_what_each_role_may_see() {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    let manager_id = t.user(&org, "manager@acme.test", "manager");
    let rep_id = t.user(&org, "rep@acme.test", "sales_rep");
    let rep2_id = t.user(&org, "rep2@acme.test", "sales_rep");
    let mk_id = t.user(&org, "mk@acme.test", "marketer");
    let (manager, rep, rep2, mk) = (
        t.token(&org, &manager_id),
        t.token(&org, &rep_id),
        t.token(&org, &rep2_id),
        t.token(&org, &mk_id),
    );
    let other = t.org("Globex");
    let other_admin = t.user(&other, "admin@globex.test", "admin");
    let other_token = t.token(&other, &other_admin);
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
    let p = send(&app, api(Method::GET, "/api/pipelines", &rep))
        .await
        .json();
    let stage = |name: &str| crate::support::stage_named(&p, name);
    let today = Utc::now().date_naive();
    // The first of last month: inside last month's stretch up to today's day of the month.
    let last_month = (today.with_day(1).unwrap() - Duration::days(1))
        .with_day(1)
        .unwrap();
    let deal = |token: &str, body: Value| {
        let mut body = body;
        body["clientId"] = json!(client);
        api(Method::POST, "/api/opportunities", token).set_json(body)
    };
    let mut ids = std::collections::HashMap::new();
    for (token, name, value, cur, st, close, actual) in [
        (&rep, "Alpha", "1000.00", "USD", "Proposal", today, None),
        (&rep, "Beta", "200.00", "EUR", "Negotiation", today, None),
        (&rep, "Won now", "300.00", "USD", "Won", today, Some(today)),
        (
            &rep,
            "Won before",
            "200.00",
            "USD",
            "Won",
            today,
            Some(last_month),
        ),
        (
            &rep2,
            "Gamma",
            "5000.00",
            "USD",
            "Qualification",
            today + Duration::days(60),
            None,
        ),
    ] {
        let mut body = json!({"name": name, "value": value, "currency": cur, "stage": stage(st),
            "expectedCloseDate": close.to_string()});
        if let Some(a) = actual {
            body["actualCloseDate"] = json!(a.to_string());
        }
        let r = send(&app, deal(token, body)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{name}: {}", r.body);
        ids.insert(name, r.json()["id"].as_str().unwrap().to_string());
    }
    // Alpha has sat in Proposal for 40 days; the default pipeline rots deals after 30.
    {
        use diesel::prelude::*;
        use rapport::db::schema::opportunities;
        let mut c = t.pool.get().unwrap();
        diesel::update(opportunities::table.find(&ids["Alpha"]))
            .set(opportunities::stage_entered_at.eq(rapport::db::now() - Duration::days(40)))
            .execute(&mut c)
            .unwrap();
    }
    // Two calls logged by the rep, a note by the other rep (on a client of theirs), and a
    // meeting still to come.
    let client2 = send(
        &app,
        api(Method::POST, "/api/clients", &rep2)
            .set_json(json!({"type": "individual", "lastName": "Lumbergh"})),
    )
    .await
    .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/clients/{client}/interactions");
    let path2 = format!("/api/clients/{client2}/interactions");
    let now = Utc::now();
    for (token, kind, subject, when) in [
        (&rep, "call", "Intro call", "completedAt"),
        (&rep, "call", "Follow-up", "completedAt"),
        (&rep2, "note", "Met at the fair", "completedAt"),
        (&rep, "meeting", "Demo", "scheduledAt"),
    ] {
        let at = if when == "scheduledAt" {
            now + Duration::days(3)
        } else {
            now - Duration::minutes(5)
        };
        let r = send(
            &app,
            api(
                Method::POST,
                if token == &rep2 { &path2 } else { &path },
                token,
            )
            .set_json(json!({
                "type": kind, "subject": subject, when: at.to_rfc3339()
            })),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    for (subject, due) in [
        (
            "Send the contract",
            (today - Duration::days(1)).and_hms_opt(9, 0, 0),
        ),
        ("Call the buyer", today.and_hms_opt(23, 59, 0)),
    ] {
        let r = send(
            &app,
            api(Method::POST, "/api/tasks", &rep).set_json(json!({
                "clientId": client, "subject": subject,
                "dueAt": format!("{}Z", due.unwrap().format("%Y-%m-%dT%H:%M:%S")), "assigneeId": rep_id
            })),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }

    // The rep: their own figures, per currency, USD (the organization's) first.
    let d = send(&app, api(Method::GET, "/api/dashboard", &rep)).await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    let d = d.json();
    let usd = &d["mine"][0];
    assert_eq!(usd["currency"], "USD");
    assert_eq!(usd["openDeals"], 1);
    assert_eq!(dec(&usd["openValue"]), 1000.0);
    assert_eq!(dec(&usd["weightedMonth"]), 500.0);
    assert_eq!(dec(&usd["wonMonth"]), 300.0);
    assert_eq!(usd["wonMonthDeals"], 1);
    assert_eq!(dec(&usd["wonLastMonth"]), 200.0);
    assert_eq!(dec(&usd["wonLastMonthToDate"]), 200.0);
    let eur = &d["mine"][1];
    assert_eq!(eur["currency"], "EUR");
    assert_eq!(dec(&eur["weightedMonth"]), 150.0);
    assert!(d["team"].is_null(), "a rep has no team view: {}", d["team"]);
    assert_eq!(d["dealsOf"], "mine");
    assert_eq!(names(&d["closingSoon"]), vec!["Alpha", "Beta"]);
    assert_eq!(names(&d["rotting"]), vec!["Alpha"]);
    assert!(d["rotting"]["deals"][0]["daysInStage"].as_i64().unwrap() >= 40);
    assert_eq!(d["activities"]["thisWeek"], 2);
    assert_eq!(d["tasks"]["overdue"], 1);
    assert_eq!(d["tasks"]["dueToday"], 1);
    assert_eq!(d["tasks"]["tasks"][0]["subject"], "Send the contract");
    assert_eq!(d["tasks"]["tasks"][0]["overdue"], true);

    // The manager: the team's totals and a line per rep; lists cover everyone's deals.
    let m = send(&app, api(Method::GET, "/api/dashboard", &manager))
        .await
        .json();
    assert_eq!(dec(&m["team"]["totals"][0]["openValue"]), 6000.0);
    assert_eq!(m["team"]["activitiesThisWeek"], 3);
    let reps = m["team"]["reps"].as_array().unwrap();
    let line = |id: &str| reps.iter().find(|r| r["userId"] == id).unwrap().clone();
    assert_eq!(dec(&line(&rep2_id)["figures"][0]["openValue"]), 5000.0);
    assert_eq!(reps[0]["userId"], rep2_id, "largest pipeline first");
    assert_eq!(line(&rep_id)["overdueTasks"], 1);
    assert_eq!(line(&rep_id)["activitiesThisWeek"], 2);
    assert_eq!(
        dec(&m["mine"][0]["openValue"]),
        0.0,
        "the manager owns no deal"
    );
    assert_eq!(m["dealsOf"], "team");
    assert_eq!(names(&m["closingSoon"]), vec!["Alpha", "Beta"]);
    assert_eq!(m["closingSoon"]["deals"][0]["owner"], "rep@acme.test");

    // A marketer works no deals: no pipeline, no deal lists; the rest of the page stays.
    let k = send(&app, api(Method::GET, "/api/dashboard", &mk))
        .await
        .json();
    for block in ["mine", "team", "closingSoon", "rotting"] {
        assert!(k[block].is_null(), "{block}: {}", k[block]);
    }
    assert!(k["tasks"].is_object() && k["newClients"].is_object() && k["activities"].is_object());

    // Another organization sees none of it.
    let o = send(&app, api(Method::GET, "/api/dashboard", &other_token))
        .await
        .json();
    assert_eq!(dec(&o["team"]["totals"][0]["openValue"]), 0.0);
    assert_eq!(o["closingSoon"]["count"], 0);

    // The console shows the same figures, with the team only to the manager.
    let mut b = Browser::new();
    b.sign_in(&app, "rep@acme.test", PASSWORD).await;
    let home = b.get(&app, "/").await.body;
    for want in [
        "Your pipeline",
        "1,000 USD",
        "200 EUR",
        "+50%",
        "id=\"rotting\"",
        "Alpha",
        "1 overdue",
        "task-overdue",
    ] {
        assert!(
            home.contains(want),
            "{want} missing from the rep's dashboard"
        );
    }
    assert!(!home.contains("team-table"));
    assert!(!home.contains("rights granted"));
    let mut b = Browser::new();
    b.sign_in(&app, "manager@acme.test", PASSWORD).await;
    let home = b.get(&app, "/").await.body;
    assert!(home.contains("id=\"team-table\"") && home.contains("rep2@acme.test"));
    assert!(home.contains("6,000 USD"));
    let mut b = Browser::new();
    b.sign_in(&app, "mk@acme.test", PASSWORD).await;
    let home = b.get(&app, "/").await.body;
    assert!(!home.contains("Your pipeline") && !home.contains("Add deal"));
}
