//! Lookups that must stay flat as an organization grows: duplicate signals and the list's
//! text filter read indexed keys, and one slow statement is stopped without taking the
//! pool with it.

use std::time::{Duration, Instant};

use actix_web::http::{Method, StatusCode};
use actix_web::ResponseError;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use serde_json::{json, Value};

use crate::support::*;

/// id, phone key, name key, website key.
type Keys = (String, Option<String>, Option<String>, Option<String>);

fn names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["displayName"].as_str().unwrap().to_string())
        .collect();
    n.sort();
    n
}

#[actix_web::test]
async fn clients_written_before_the_keys_existed_get_them_when_migrating() {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    let m = t.user(&org, "manager@acme.test", "manager");
    let token = t.token(&org, &m);
    let app = t.service().await;
    let create = |body: Value| api(Method::POST, "/api/clients", &token).set_json(body);
    let hans = send(
        &app,
        create(json!({"firstName": "Hans", "lastName": "Weber", "phone": "+49 30 1234567"})),
    )
    .await
    .json();
    let acme = send(&app, create(json!({"type": "company", "companyName": "Wayne Enterprises", "website": "https://www.wayne.test/about"}))).await.json();
    // As an older version left them: no keys at all.
    {
        let mut c = t.pool.get().unwrap();
        c.batch_execute("UPDATE clients SET phone_key = NULL, name_key = NULL, website_key = NULL")
            .unwrap();
        rapport::db::migrate(&mut c).unwrap();
        use rapport::db::schema::clients;
        let keys: Vec<Keys> = clients::table
            .select((
                clients::id,
                clients::phone_key,
                clients::name_key,
                clients::website_key,
            ))
            .order(clients::display_name)
            .load(&mut *c)
            .unwrap();
        assert_eq!(
            keys,
            vec![
                (
                    hans["id"].as_str().unwrap().into(),
                    Some("301234567".into()),
                    Some("hans weber".into()),
                    None
                ),
                (
                    acme["id"].as_str().unwrap().into(),
                    None,
                    Some("wayne enterprises".into()),
                    Some("wayne.test".into())
                ),
            ]
        );
    }
    // The filled keys find twins: the same number written nationally, the same site.
    let twin = send(&app, create(json!({"firstName": "Johann", "lastName": "Weber", "phone": "030 123 45 67", "address": {"country": "DE"}}))).await.json();
    assert_eq!(twin["possibleDuplicates"][0]["id"], hans["id"], "{twin}");
    assert_eq!(twin["possibleDuplicates"][0]["reason"], "same phone number");
    let same_name = send(
        &app,
        create(json!({"type": "company", "companyName": "WAYNE  Enterprises"})),
    )
    .await
    .json();
    assert_eq!(
        same_name["possibleDuplicates"][0]["id"], acme["id"],
        "{same_name}"
    );
    assert_eq!(
        same_name["possibleDuplicates"][0]["reason"],
        "same company name"
    );
    // An edit keeps the keys true: a changed number no longer matches the old one.
    let r = send(
        &app,
        api(
            Method::PATCH,
            &format!("/api/clients/{}", twin["id"].as_str().unwrap()),
            &token,
        )
        .set_json(json!({"phone": "+49 89 7654321"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = send(
        &app,
        api(
            Method::GET,
            &format!("/api/clients/{}/duplicates", hans["id"].as_str().unwrap()),
            &token,
        ),
    )
    .await
    .json();
    assert_eq!(r["data"], json!([]), "{r}");
}

#[actix_web::test]
async fn the_text_filter_matches_prefixes_and_phones_alike_in_the_api_and_the_console() {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    let m = t.user(&org, "manager@acme.test", "manager");
    let token = t.token(&org, &m);
    let app = t.service().await;
    for body in [
        json!({"firstName": "Margaret", "lastName": "Hamilton", "email": "mh@apollo.test", "phone": "+1 617 555 0142"}),
        json!({"firstName": "Grace", "lastName": "Hopper", "email": "grace@navy.test"}),
        json!({"type": "company", "companyName": "Hamilton Labs"}),
        json!({"firstName": "Hedy", "lastName": "Lamarr"}),
        json!({"firstName": "Konrad", "lastName": "Zuse", "phone": "+49 30 12345678"}),
    ] {
        let r = send(
            &app,
            api(Method::POST, "/api/clients", &token).set_json(body),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let list = |q: &str| api(Method::GET, &format!("/api/clients?q={q}"), &token);
    // Names and e-mails by prefix, phones by number, whatever the search index holds.
    rapport::search::drain_all(&t.pool, &t.state.search)
        .await
        .unwrap();
    assert_eq!(
        names(&send(&app, list("marg")).await.json()),
        vec!["Margaret Hamilton"]
    );
    assert_eq!(
        names(&send(&app, list("GRACE%40")).await.json()),
        vec!["Grace Hopper"]
    );
    assert_eq!(
        names(&send(&app, list("ham")).await.json()),
        vec!["Hamilton Labs"]
    );
    assert_eq!(
        names(&send(&app, list("%2B1%20617%20555%200142")).await.json()),
        vec!["Margaret Hamilton"]
    );
    // A number typed in national form, whole or in part, finds the client.
    for typed in ["030%2012345678", "030%201234", "(617)%20555", "617-555-01"] {
        let found = names(&send(&app, list(typed)).await.json());
        assert_eq!(found.len(), 1, "{typed}: {found:?}");
    }
    assert_eq!(
        names(&send(&app, list("030%201234")).await.json()),
        vec!["Konrad Zuse"]
    );
    assert_eq!(
        names(&send(&app, list("6179")).await.json()),
        Vec::<String>::new(),
        "a prefix is a prefix, not any digits"
    );
    assert_eq!(
        names(&send(&app, list("zzzz")).await.json()),
        Vec::<String>::new()
    );
    let long = send(&app, list(&"x".repeat(201))).await;
    assert_eq!(
        long.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        long.body
    );
    assert!(long.is_problem() && long.body.contains("at most 200 characters"));
    let filtered = send(&app, list("h&filter[type]=company")).await.json();
    assert_eq!(names(&filtered), vec!["Hamilton Labs"]);
    // Paging through matches keeps the text filter (the cursor continues the same list).
    let first = send(&app, list("h&limit=1&sort=name")).await.json();
    assert_eq!(names(&first), vec!["Hamilton Labs"]);
    let cursor = first["nextCursor"].as_str().unwrap().to_string();
    let next = send(&app, list(&format!("h&limit=1&sort=name&cursor={cursor}")))
        .await
        .json();
    assert_eq!(names(&next), vec!["Hedy Lamarr"], "{next}");
    assert!(next["nextCursor"].is_null(), "{next}");
    // A word inside a name or a typo is the search page's job: the console says where to go.
    let mut b = Browser::new();
    b.sign_in(&app, "manager@acme.test", PASSWORD).await;
    let page = b.get(&app, "/clients?q=hoppr").await.body;
    assert!(
        page.contains("No clients match") && page.contains("href=\"/search?q=hoppr\""),
        "{page}"
    );
    let found = b.get(&app, "/search?q=hoppr").await.body;
    assert!(found.contains("Hopper"), "{found}");
    let page = b
        .get(&app, &format!("/clients?q={}", "x".repeat(201)))
        .await
        .body;
    assert!(page.contains("Filter by at most 200 characters."), "{page}");
    let page = b.get(&app, "/clients?q=gra").await.body;
    assert!(
        page.contains("Grace Hopper") && !page.contains("Margaret"),
        "{page}"
    );
}

#[actix_web::test]
async fn a_statement_past_its_time_limit_is_stopped_with_a_503_and_the_connection_serves_on() {
    let t = TestApp::new().await;
    let pool = t.pool.clone();
    let postgres = t._db.is_postgres();
    let outcome = actix_web::web::block(move || {
        let mut c = pool.get().unwrap();
        let slow = if postgres {
            c.batch_execute("SET statement_timeout = 300").unwrap();
            "SELECT pg_sleep(5)"
        } else {
            "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 1000000000) \
             SELECT count(*) FROM n"
        };
        let started = Instant::now();
        let err = {
            let _limit = rapport::db::limit::within(Duration::from_millis(300));
            c.batch_execute(slow).unwrap_err()
        };
        let took = started.elapsed();
        // The same connection answers the next statement at once.
        c.batch_execute("SELECT 1").unwrap();
        if postgres {
            c.batch_execute(&format!(
                "SET statement_timeout = {}",
                rapport::db::limit::budget().as_millis()
            ))
            .unwrap();
        }
        (err, took)
    })
    .await
    .unwrap();
    let (err, took) = outcome;
    assert!(rapport::db::limit::is_timeout(&err), "{err:?}");
    assert!(took < Duration::from_secs(3), "stopped after {took:?}");
    let problem = rapport::error::AppError::from(err);
    assert_eq!(problem.status_code(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(problem.kind().0, "timeout");
    assert!(
        problem.detail().contains("took too long"),
        "{}",
        problem.detail()
    );
    // Outside a request's call there is no limit: long jobs (migrations, scans) finish.
    let pool = t.pool.clone();
    let n = actix_web::web::block(move || {
        let mut c = pool.get().unwrap();
        let _free = rapport::db::limit::unbounded();
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        diesel::sql_query(
            "WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < 200000) \
             SELECT count(*) AS n FROM s",
        )
        .get_result::<N>(&mut *c)
        .unwrap()
        .n
    })
    .await
    .unwrap();
    assert_eq!(n, 200_000);
}

#[actix_web::test]
async fn the_list_sorts_names_the_same_way_on_both_backends() {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    let m = t.user(&org, "manager@acme.test", "manager");
    let token = t.token(&org, &m);
    let app = t.service().await;
    for (first, last) in [
        ("Émile", "Zola"),
        ("zoe", "Adams"),
        ("Adam", "Smith"),
        ("adele", "Brown"),
    ] {
        let r = send(
            &app,
            api(Method::POST, "/api/clients", &token)
                .set_json(json!({"firstName": first, "lastName": last})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let listed = send(&app, api(Method::GET, "/api/clients?sort=name", &token))
        .await
        .json();
    let order: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["displayName"].as_str().unwrap())
        .collect();
    // Byte order of the lower-cased name: case does not split the list, and an accented
    // initial sorts after "z" (SQLite's BINARY order, which PostgreSQL's columns now share).
    assert_eq!(
        order,
        ["Adam Smith", "adele Brown", "zoe Adams", "Émile Zola"],
        "{listed}"
    );
}

#[actix_web::test]
async fn the_list_counts_what_its_filters_match_for_the_reader() {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    let m = t.user(&org, "manager@acme.test", "manager");
    let rep = t.user(&org, "rep@acme.test", "sales_rep");
    let token = t.token(&org, &m);
    let rep_token = t.token(&org, &rep);
    let app = t.service().await;
    for (name, status) in [("Ada", "lead"), ("Grace", "lead"), ("Alan", "customer")] {
        let r = send(
            &app,
            api(Method::POST, "/api/clients", &token)
                .set_json(json!({"firstName": name, "lastName": "X", "status": status})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let own = send(
        &app,
        api(Method::POST, "/api/clients", &rep_token)
            .set_json(json!({"firstName": "Edsger", "lastName": "X", "status": "lead"})),
    )
    .await;
    assert_eq!(own.status, StatusCode::CREATED);

    // The API counts when asked, with the page's filters, and only what the reader sees.
    let leads = send(
        &app,
        api(
            Method::GET,
            "/api/clients?count=true&filter[status]=lead&limit=1",
            &token,
        ),
    )
    .await
    .json();
    assert_eq!(
        leads["total"],
        json!({"count": 3, "atLeast": false}),
        "{leads}"
    );
    assert_eq!(leads["data"].as_array().unwrap().len(), 1);
    let mine = send(
        &app,
        api(Method::GET, "/api/clients?count=true", &rep_token),
    )
    .await
    .json();
    assert_eq!(mine["total"]["count"], 1, "{mine}");
    let plain = send(&app, api(Method::GET, "/api/clients", &token))
        .await
        .json();
    assert!(
        plain.get("total").is_none(),
        "a count costs a query: only on request"
    );
    let bad = send(&app, api(Method::GET, "/api/clients?count=maybe", &token)).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.is_problem());
    let with_text = send(
        &app,
        api(Method::GET, "/api/clients?count=true&q=ad", &token),
    )
    .await;
    assert_eq!(with_text.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(with_text.body.contains("text filter"), "{}", with_text.body);

    // The console shows it above the list, and it follows the filters.
    let mut b = Browser::new();
    b.sign_in(&app, "manager@acme.test", PASSWORD).await;
    let all = b.get(&app, "/clients").await;
    assert!(all.body.contains("4 clients"), "{}", all.body);
    let customers = b.get(&app, "/clients?filter[status]=customer").await;
    assert!(customers.body.contains(">1 client<"), "{}", customers.body);
    let typed = b.get(&app, "/clients?q=ad").await;
    assert!(typed.body.contains("Ada X") && !typed.body.contains("data-list-count"));
}

/// A text that matches more clients than are listed by id (a common prefix: every company's
/// `info@` address here) walks the sort's index instead: the page is still the newest
/// matches in order, or the first by name, in the API and the console. On SQLite the
/// newest-first index carries the columns the filter tests, so the walk reads no row that
/// does not match (7 ms → 1.1 ms for "marg" at a million clients).
#[actix_web::test]
async fn a_common_prefix_lists_the_newest_or_first_matches() {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::Text)]
        id: String,
    }
    let t = TestApp::new().await;
    let org = t.org("Dense");
    let m = t.user(&org, "manager@dense.test", "manager");
    let token = t.token(&org, &m);
    let app = t.service().await;
    // 2,050 companies write to info@…, past the 2,000 listed by id.
    rapport::seed::seed_clients(&mut t.pool.get().unwrap(), &org, 20_500, 11, |_| {}).unwrap();
    for body in [
        json!({"firstName": "Info", "lastName": "Desk", "email": "desk@dense.test"}),
        json!({"firstName": "Ada", "lastName": "Byron", "email": "info.ada@dense.test"}),
        json!({"firstName": "Not", "lastName": "Matching", "email": "nm@dense.test"}),
    ] {
        let r = send(
            &app,
            api(Method::POST, "/api/clients", &token).set_json(body),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let expect_from = |order: &str, offset: usize| -> Vec<String> {
        let o = &org.id;
        diesel::sql_query(format!(
            "SELECT id FROM clients WHERE organization_id = '{o}' AND deleted_at IS NULL
               AND (lower(sort_name) LIKE 'info%' OR lower(email) LIKE 'info%')
             ORDER BY {order} LIMIT 5 OFFSET {offset}"
        ))
        .load::<Id>(&mut t.pool.get().unwrap())
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect()
    };
    let expect = |order: &str| expect_from(order, 0);
    let newest = send(
        &app,
        api(Method::GET, "/api/clients?q=info&limit=5", &token),
    )
    .await
    .json();
    let newest = ids_of(&newest);
    assert_eq!(newest, expect("created_at DESC, id DESC"));
    // The two made last match (one by name, one by e-mail) and come first; the third does not.
    assert_eq!(newest.len(), 5);
    let by_name = send(
        &app,
        api(Method::GET, "/api/clients?q=info&sort=name&limit=5", &token),
    )
    .await
    .json();
    assert_eq!(
        ids_of(&by_name),
        expect("sort_name ASC, id ASC"),
        "{by_name}"
    );
    // Other sorts read each part of the text filter on its own and order the union: the
    // same pages, the second one by cursor included.
    let cursor = by_name["nextCursor"].as_str().unwrap();
    let next = send(
        &app,
        api(
            Method::GET,
            &format!("/api/clients?q=info&sort=name&limit=5&cursor={cursor}"),
            &token,
        ),
    )
    .await
    .json();
    assert_eq!(
        ids_of(&next),
        expect_from("sort_name ASC, id ASC", 5),
        "{next}"
    );
    for (sort, order) in [
        ("-name", "sort_name DESC, id DESC"),
        ("email", "email IS NULL, email ASC, id ASC"),
        ("-createdAt", "created_at DESC, id DESC"),
        ("createdAt", "created_at ASC, id ASC"),
        // Orders that say nothing of a name walk their own index on SQLite (the parts'
        // plan sorted every match there); the pages are the same.
        ("city", "lower(city) IS NULL, lower(city) ASC, id ASC"),
        ("-country", "country IS NULL, country DESC, id DESC"),
        ("type", "kind ASC, id ASC"),
    ] {
        let page = send(
            &app,
            api(
                Method::GET,
                &format!("/api/clients?q=info&sort={sort}&limit=5"),
                &token,
            ),
        )
        .await
        .json();
        assert_eq!(ids_of(&page), expect(order), "sort={sort}: {page}");
    }
    // Sorted by name, the e-mail part reads only clients whose e-mail starts like the text
    // and whose name does not, by the stored length of the prefix the two share; an edit
    // of the name must keep it true, or a renamed client is in neither part.
    let r = send(
        &app,
        api(Method::POST, "/api/clients", &token).set_json(
            json!({"firstName": "Info", "lastName": "Ann", "email": "info.ann@dense.test"}),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let ann = r.json()["id"].as_str().unwrap().to_string();
    let r = send(
        &app,
        api(Method::PATCH, &format!("/api/clients/{ann}"), &token)
            .set_json(json!({"firstName": "Aaaa"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for (sort, order) in [
        ("name", "sort_name ASC, id ASC"),
        ("-name", "sort_name DESC, id DESC"),
    ] {
        let page = send(
            &app,
            api(
                Method::GET,
                &format!("/api/clients?q=info&sort={sort}&limit=5"),
                &token,
            ),
        )
        .await
        .json();
        assert_eq!(ids_of(&page), expect(order), "sort={sort}: {page}");
    }
    let first = send(
        &app,
        api(Method::GET, "/api/clients?q=info&sort=name&limit=1", &token),
    )
    .await
    .json();
    assert_eq!(first["data"][0]["displayName"], "Aaaa Ann", "{first}");
    // A national number's prefix matches thousands of phones (each part then read on its
    // own): a client without an e-mail is still among them, first by name.
    let r = send(
        &app,
        api(Method::POST, "/api/clients", &token).set_json(
            json!({"firstName": "Aaa", "lastName": "Nomail", "phone": "+1 555 200 0000"}),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let phones = |order: &str| -> Vec<String> {
        let o = &org.id;
        diesel::sql_query(format!(
            "SELECT id FROM clients WHERE organization_id = '{o}' AND deleted_at IS NULL
               AND phone_key >= '5552' AND phone_key < '5553'
             ORDER BY {order} LIMIT 5"
        ))
        .load::<Id>(&mut t.pool.get().unwrap())
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect()
    };
    for (sort, order) in [
        ("name", "sort_name ASC, id ASC"),
        ("email", "email IS NULL, email ASC, id ASC"),
    ] {
        let page = send(
            &app,
            api(
                Method::GET,
                &format!("/api/clients?q=555%202&sort={sort}&limit=5"),
                &token,
            ),
        )
        .await
        .json();
        assert_eq!(ids_of(&page), phones(order), "sort={sort}: {page}");
    }
    let mut b = Browser::new();
    b.sign_in(&app, "manager@dense.test", PASSWORD).await;
    let page = b.get(&app, "/clients?q=info").await.body;
    assert!(
        page.contains("Info Desk") && page.contains("Ada Byron"),
        "{page}"
    );
    assert!(!page.contains("Not Matching"), "{page}");
    if t.target.backend == rapport::db::Backend::Sqlite {
        let cols = |index: &str| -> Vec<String> {
            diesel::sql_query(format!(
                "SELECT name AS id FROM pragma_index_info('{index}') ORDER BY seqno"
            ))
            .load::<Id>(&mut t.pool.get().unwrap())
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect()
        };
        assert_eq!(
            cols("clients_org_created_idx"),
            [
                "organization_id",
                "created_at",
                "id",
                "sort_name",
                "email",
                "phone_key"
            ]
        );
        // The e-mail part of a text filter sorted by name is read from this index alone.
        assert_eq!(
            cols("clients_org_email_idx"),
            ["organization_id", "email", "id", "sort_name"]
        );
    }
}
