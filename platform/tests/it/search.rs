//! Search through the platform: every change reaches the index through the outbox; results
//! respect the organization and the reader's reach; the index survives being down.

use actix_web::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::*;

struct World {
    t: TestApp,
    manager: String,
    rep: String,
    other_rep: String,
    rep_id: String,
    other: String,
}

async fn world() -> World {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    let m = t.user(&org, "manager@acme.test", "manager");
    let r = t.user(&org, "rep@acme.test", "sales_rep");
    let r2 = t.user(&org, "rep2@acme.test", "sales_rep");
    let other = t.org("Globex");
    let o = t.user(&other, "manager@globex.test", "manager");
    World {
        manager: t.token(&org, &m),
        rep: t.token(&org, &r),
        other_rep: t.token(&org, &r2),
        rep_id: r,
        other: t.token(&other, &o),
        t,
    }
}

impl World {
    /// Lets the indexer catch up, as the background task does within a moment.
    async fn indexed(&self) {
        rapport::search::drain_all(&self.t.pool, &self.t.state.search)
            .await
            .unwrap();
    }
}

fn titles(v: &Value) -> Vec<String> {
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["title"].as_str().unwrap().to_string())
        .collect()
}

async fn create<S, B>(app: &S, token: &str, body: Value) -> String
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

#[actix_web::test]
async fn changes_reach_search_and_results_respect_reach() {
    let w = world().await;
    let app = w.t.service().await;
    let margaret = create(
        &app,
        &w.rep,
        json!({"type": "individual", "firstName": "Margaret", "lastName": "Hamilton",
               "email": "margaret@mit.test", "phone": "+1 (617) 555-0142", "tags": ["VIP"],
               "industry": "Aerospace"}),
    )
    .await;
    create(
        &app,
        &w.other_rep,
        json!({"type": "individual", "firstName": "Margarete", "lastName": "Hamiltonson"}),
    )
    .await;
    let foreign = create(
        &app,
        &w.other,
        json!({"type": "individual", "firstName": "Margaret", "lastName": "Hamilton"}),
    )
    .await;
    let search = |token: &str, q: &str| api(Method::GET, &format!("/api/search?{q}"), token);

    // Nothing is searchable before the indexer ran; then it is.
    let r = send(&app, search(&w.manager, "q=hamilton")).await.json();
    assert_eq!(r["data"], json!([]));
    w.indexed().await;
    let r = send(&app, search(&w.manager, "q=mrgaret%20hamiltn&facets=true")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = r.json();
    assert_eq!(titles(&r)[0], "Margaret Hamilton", "{r}");
    assert_eq!(r["data"][0]["type"], "client");
    assert_eq!(r["data"][0]["id"], margaret.as_str());
    assert_eq!(
        r["data"][0]["highlights"]["title"],
        "<mark>Margaret</mark> <mark>Hamilton</mark>"
    );
    assert!(
        r["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["id"] != foreign.as_str()),
        "the other organization's Margaret never shows: {r}"
    );
    assert_eq!(r["facets"]["tag"]["VIP"], 1);
    let plain = send(&app, search(&w.manager, "q=mrgaret%20hamiltn"))
        .await
        .json();
    assert_eq!(plain["facets"], json!({}), "counts only when asked for");
    assert_eq!(titles(&plain)[0], "Margaret Hamilton");
    // By phone digits, e-mail, tag filter.
    for q in [
        "q=617-555-0142",
        "q=5550142",
        "q=margaret%40mit.test",
        "filter[tag]=VIP&q=ham",
    ] {
        let r = send(&app, search(&w.manager, q)).await.json();
        assert_eq!(titles(&r), vec!["Margaret Hamilton"], "{q}: {r}");
    }
    // A sales rep finds only their own clients.
    let r = send(&app, search(&w.rep, "q=hamilton")).await.json();
    assert_eq!(titles(&r), vec!["Margaret Hamilton"], "{r}");
    let r = send(&app, search(&w.other_rep, "q=hamilton")).await.json();
    assert_eq!(titles(&r), vec!["Margarete Hamiltonson"], "{r}");

    // Updates re-rank; tags follow; trashed clients disappear.
    let p = send(
        &app,
        api(Method::PATCH, &format!("/api/clients/{margaret}"), &w.rep)
            .set_json(json!({"lastName": "Hamilton-Smith", "tags": ["Speaker"]})),
    )
    .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    w.indexed().await;
    let r = send(&app, search(&w.manager, "q=smith")).await.json();
    assert_eq!(titles(&r), vec!["Margaret Hamilton-Smith"]);
    let r = send(&app, search(&w.manager, "filter[tag]=VIP"))
        .await
        .json();
    assert_eq!(r["data"], json!([]), "the old tag is gone: {r}");
    let d = send(
        &app,
        api(
            Method::DELETE,
            &format!("/api/clients/{margaret}"),
            &w.manager,
        ),
    )
    .await;
    assert_eq!(d.status, StatusCode::NO_CONTENT);
    w.indexed().await;
    let r = send(&app, search(&w.manager, "q=smith")).await.json();
    assert_eq!(r["data"], json!([]), "trashed: {r}");

    // Bad input is a clear problem.
    let r = send(&app, search(&w.manager, "type=people")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.is_problem());
    assert_eq!(r.json()["errors"][0]["field"], "type");
    let long = "a".repeat(201);
    let r = send(&app, search(&w.manager, &format!("q={long}"))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = send(&app, search(&w.manager, "filter[colour]=red")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[actix_web::test]
async fn deals_and_searchable_fields_are_found() {
    let w = world().await;
    let app = w.t.service().await;
    let client = create(
        &app,
        &w.manager,
        json!({"type": "company", "companyName": "Wayne Enterprises",
               "customFields": {}}),
    )
    .await;
    let deal = send(
        &app,
        api(Method::POST, "/api/opportunities", &w.manager)
            .set_json(json!({"name": "Batmobile fleet", "clientId": client, "value": "90000"})),
    )
    .await;
    assert_eq!(deal.status, StatusCode::CREATED, "{}", deal.body);
    // A custom field is found only once an admin marks it searchable, and never when sensitive.
    for (key, sensitive) in [("codename", false), ("secret", true)] {
        let f = send(
            &app,
            api(Method::POST, "/api/custom-fields", &w.manager).set_json(
                json!({"key": key, "label": key, "type": "text", "sensitive": sensitive}),
            ),
        )
        .await;
        assert_eq!(f.status, StatusCode::CREATED, "{}", f.body);
    }
    let p = send(
        &app,
        api(Method::PATCH, &format!("/api/clients/{client}"), &w.manager)
            .set_json(json!({"customFields": {"codename": "Gotham", "secret": "Batcave"}})),
    )
    .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    w.indexed().await;
    let search = |q: &str| api(Method::GET, &format!("/api/search?{q}"), &w.manager);
    let r = send(&app, search("q=batmobile")).await.json();
    assert_eq!(r["data"][0]["type"], "opportunity");
    // Counts beside clients and deals describe the clients: a deal's status is not one.
    let both = send(&app, search("q=wayne&facets=true")).await.json();
    assert_eq!(both["total"], 2, "the client and its deal: {both}");
    assert_eq!(both["facets"]["status"], json!({"lead": 1}), "{both}");
    let deals = send(&app, search("q=wayne&type=opportunity&facets=true"))
        .await
        .json();
    assert_eq!(deals["facets"]["status"], json!({"open": 1}), "{deals}");
    assert_eq!(
        r["data"][0]["subtitle"],
        "Wayne Enterprises · Qualification"
    );
    let r = send(&app, search("q=wayne&type=opportunity")).await.json();
    assert_eq!(
        titles(&r),
        vec!["Batmobile fleet"],
        "deals by their client: {r}"
    );
    assert_eq!(
        send(&app, search("q=gotham")).await.json()["data"],
        json!([])
    );
    let fields = send(
        &app,
        api(Method::GET, "/api/custom-fields?entity=client", &w.manager),
    )
    .await
    .json();
    for f in fields["data"].as_array().unwrap() {
        let r = send(
            &app,
            api(
                Method::PATCH,
                &format!("/api/custom-fields/{}", f["id"].as_str().unwrap()),
                &w.manager,
            )
            .set_json(json!({"searchable": true})),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.json()["searchable"], true);
    }
    w.indexed().await;
    let r = send(&app, search("q=gotham")).await.json();
    assert_eq!(titles(&r), vec!["Wayne Enterprises"], "searchable now: {r}");
    assert_eq!(
        send(&app, search("q=batcave")).await.json()["data"],
        json!([]),
        "sensitive never"
    );

    // The console: the header box's suggestions and the results page.
    let mut b = Browser::new();
    b.sign_in(&app, "manager@acme.test", PASSWORD).await;
    let s = b.get(&app, "/search/suggest?q=wayn").await;
    assert_eq!(s.status, StatusCode::OK);
    assert!(
        s.body.contains("<mark>Wayne</mark> Enterprises") && s.body.contains(">Deals<"),
        "{}",
        s.body
    );
    assert!(s.body.contains(&format!("href=\"/clients/{client}\"")));
    let page = b.get(&app, "/search?q=batmobil").await.body;
    assert!(
        page.contains("<mark>Batmobile</mark> fleet") && page.contains("1 result"),
        "{page}"
    );
    let bad = b
        .get(&app, &format!("/search?q={}", "x".repeat(300)))
        .await
        .body;
    assert!(bad.contains("Search for at most 200 characters."));
    // The client list filters by prefix; for a typo it points to the search page.
    let list = b.get(&app, "/clients?q=wayne%20enterprsies").await.body;
    assert!(
        !list.contains("Wayne Enterprises")
            && list.contains("href=\"/search?q=wayne%20enterprsies\""),
        "{list}"
    );
    let list = b.get(&app, "/clients?q=wayne").await.body;
    assert!(list.contains("Wayne Enterprises"), "{list}");
    let list = b.get(&app, "/clients?q=zzzz").await.body;
    assert!(!list.contains("Wayne Enterprises"));
    let home = b.get(&app, "/").await.body;
    assert!(
        home.contains("id=\"global-search\""),
        "the header has the box"
    );
}

/// An index that is down: every write fails.
struct Down;

#[async_trait::async_trait]
impl rapport_search::SearchIndex for Down {
    async fn upsert(&self, _: Vec<rapport_search::Document>) -> rapport_search::Result<()> {
        Err(rapport_search::SearchError::Unavailable(
            "connection refused".into(),
        ))
    }
    async fn delete(&self, _: Vec<String>) -> rapport_search::Result<()> {
        Err(rapport_search::SearchError::Unavailable(
            "connection refused".into(),
        ))
    }
    async fn ids(&self, _: &str, _: rapport_search::Kind) -> rapport_search::Result<Vec<String>> {
        Ok(vec![])
    }
    async fn search(
        &self,
        _: &rapport_search::Query,
    ) -> rapport_search::Result<rapport_search::Results> {
        Err(rapport_search::SearchError::Unavailable(
            "connection refused".into(),
        ))
    }
    async fn health(&self) -> rapport_search::Result<()> {
        Err(rapport_search::SearchError::Unavailable(
            "connection refused".into(),
        ))
    }
    async fn stats(&self) -> rapport_search::Result<rapport_search::Stats> {
        Err(rapport_search::SearchError::Unavailable(
            "connection refused".into(),
        ))
    }
}

#[actix_web::test]
async fn the_outbox_survives_a_down_index_and_a_restart() {
    use diesel::prelude::*;
    use rapport::db::schema::search_outbox;
    let w = world().await;
    let app = w.t.service().await;
    create(
        &app,
        &w.rep,
        json!({"type": "individual", "lastName": "Lovelace"}),
    )
    .await;
    // The index is down: the change waits, with its error and a later attempt.
    let down: rapport::search::Index = std::sync::Arc::new(Down);
    assert!(rapport::search::drain(&w.t.pool, &down).await.is_err());
    let mut c = w.t.pool.get().unwrap();
    let (attempts, error): (i32, Option<String>) = search_outbox::table
        .select((search_outbox::attempts, search_outbox::last_error))
        .first(&mut c)
        .unwrap();
    assert_eq!(attempts, 1);
    assert!(error.unwrap().contains("connection refused"));
    let status = send(&app, api(Method::GET, "/api/search/status", &w.manager))
        .await
        .json();
    assert_eq!(status["pending"], 1, "{status}");
    assert_eq!(
        rapport::search::drain(&w.t.pool, &down).await.unwrap(),
        0,
        "not due yet"
    );
    // "Restart": another instance with a fresh index finds the change and delivers it.
    diesel::update(search_outbox::table)
        .set(search_outbox::next_attempt_at.eq(rapport::db::now()))
        .execute(&mut c)
        .unwrap();
    let second = w.t.another_instance().await;
    let n = rapport::search::drain_all(&w.t.pool, &second.search)
        .await
        .unwrap();
    assert!(n >= 1);
    let hits = second
        .search
        .search(&rapport_search::Query {
            org_id: rapport::domain::orgs::store::find_org_by_ref(&mut c, "acme")
                .unwrap()
                .unwrap()
                .id,
            text: "lovelace".into(),
            limit: 5,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(hits.hits.len(), 1);
    let left: i64 = search_outbox::table.count().get_result(&mut c).unwrap();
    assert_eq!(left, 0, "delivered rows are removed");
    // A rebuild from the database restores a wiped index and drops documents of records
    // that no longer exist.
    let fresh: rapport::search::Index =
        std::sync::Arc::new(rapport_search::embedded::Embedded::in_memory().unwrap());
    let org = rapport::domain::orgs::store::find_org_by_ref(&mut c, "acme")
        .unwrap()
        .unwrap()
        .id;
    fresh
        .upsert(vec![rapport_search::Document {
            id: "ghost".into(),
            org_id: org.clone(),
            kind: Some(rapport_search::Kind::Client),
            title: "Ghost".into(),
            ..Default::default()
        }])
        .await
        .unwrap();
    let r = rapport::search::reindex_org(&w.t.pool, &fresh, &org)
        .await
        .unwrap();
    assert_eq!((r.clients, r.removed), (1, 1));
    let _ = w.rep_id;
}

/// A Meilisearch of the test's own, from the script `RAPPORT_MEILI_START` names (the one in
/// `../shared/tools/meilisearch/`; `.ci/run` sets it).
struct OwnMeili {
    start: String,
    port: u16,
    dir: std::path::PathBuf,
}

impl OwnMeili {
    fn up(&self) {
        let ok = std::process::Command::new(&self.start)
            .args([&self.port.to_string(), "test-master-key"])
            .arg(&self.dir)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run the Meilisearch start script");
        assert!(ok.success(), "Meilisearch did not start");
    }

    /// Stops the server and waits until it is gone.
    fn down(&self) {
        let pid = std::fs::read_to_string(self.dir.join("meilisearch.pid")).unwrap_or_default();
        let pid = pid.trim();
        if pid.is_empty() {
            return;
        }
        let _ = std::process::Command::new("kill").arg(pid).status();
        for _ in 0..100 {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = std::process::Command::new("kill")
            .args(["-9", pid])
            .status();
    }
}

impl Drop for OwnMeili {
    fn drop(&mut self) {
        self.down();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[actix_web::test]
async fn meilisearch_stopped_mid_run_answers_503_and_loses_no_update() {
    let Ok(start) = std::env::var("RAPPORT_MEILI_START") else {
        eprintln!("RAPPORT_MEILI_START is not set: the Meilisearch outage test is skipped");
        return;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let meili = OwnMeili {
        start,
        port,
        dir: std::env::temp_dir().join(format!("rapport-meili-{}", uuid::Uuid::new_v4())),
    };
    meili.up();
    let t = TestApp::with_config(|c| {
        c.search = rapport::config::SearchConfig::Meilisearch {
            url: format!("http://127.0.0.1:{port}"),
            key: Some("test-master-key".into()),
            prefix: "outage_".into(),
        }
    })
    .await;
    let org = t.org("Acme");
    let m = t.user(&org, "manager@acme.test", "manager");
    let token = t.token(&org, &m);
    let app = t.service().await;
    create(
        &app,
        &token,
        json!({"type": "individual", "firstName": "Ada", "lastName": "Lovelace"}),
    )
    .await;
    rapport::search::drain_all(&t.pool, &t.state.search)
        .await
        .unwrap();
    let found = |r: &Resp| titles(&r.json());
    let r = send(&app, api(Method::GET, "/api/search?q=lovelace", &token)).await;
    assert_eq!(found(&r), vec!["Ada Lovelace".to_string()], "{}", r.body);

    meili.down();
    // Search says it is down, in the API and the console; everything else goes on.
    let r = send(&app, api(Method::GET, "/api/search?q=lovelace", &token)).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(r.header("retry-after"), Some("5"));
    assert!(
        r.body.contains("Search is unavailable right now"),
        "{}",
        r.body
    );
    let mut b = Browser::new();
    b.sign_in(&app, "manager@acme.test", PASSWORD).await;
    let page = b.get(&app, "/search?q=lovelace").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("Search is unavailable right now")
            && !page.body.contains("Nothing matches"),
        "{}",
        page.body
    );
    let box_ = b.get(&app, "/search/suggest?q=love").await.body;
    assert!(box_.contains("Search is unavailable right now"), "{box_}");
    let ready = send(&app, actix_web::test::TestRequest::get().uri("/readyz")).await;
    assert_eq!(
        ready.status,
        StatusCode::OK,
        "the rest of Rapport stays ready"
    );
    assert_eq!(ready.json()["search"], "unavailable");
    create(
        &app,
        &token,
        json!({"type": "individual", "firstName": "Grace", "lastName": "Hopper"}),
    )
    .await;
    assert!(rapport::search::drain(&t.pool, &t.state.search)
        .await
        .is_err());
    let status = send(&app, api(Method::GET, "/api/search/status", &token))
        .await
        .json();
    assert_eq!(status["pending"], 1, "the change waits: {status}");

    // Back up: the waiting change is delivered and nothing indexed before is lost.
    meili.up();
    {
        use diesel::prelude::*;
        use rapport::db::schema::search_outbox;
        let mut c = t.pool.get().unwrap();
        diesel::update(search_outbox::table)
            .set(search_outbox::next_attempt_at.eq(rapport::db::now()))
            .execute(&mut c)
            .unwrap();
    }
    rapport::search::drain_all(&t.pool, &t.state.search)
        .await
        .unwrap();
    for (q, who) in [("hopper", "Grace Hopper"), ("lovelace", "Ada Lovelace")] {
        let r = send(
            &app,
            api(Method::GET, &format!("/api/search?q={q}"), &token),
        )
        .await;
        assert_eq!(found(&r), vec![who.to_string()], "{q}: {}", r.body);
    }
}

#[actix_web::test]
async fn a_full_rebuild_keeps_every_record_searchable_and_drops_strays() {
    let w = world().await;
    let app = w.t.service().await;
    for last in ["Lovelace", "Hopper", "Hamilton"] {
        create(
            &app,
            &w.manager,
            json!({"type": "individual", "lastName": last}),
        )
        .await;
    }
    w.indexed().await;
    let org = {
        let mut c = w.t.pool.get().unwrap();
        rapport::domain::orgs::store::find_org_by_ref(&mut c, "acme")
            .unwrap()
            .unwrap()
            .id
    };
    // A document whose record no longer exists must not survive a rebuild.
    w.t.state
        .search
        .upsert(vec![rapport_search::Document {
            id: "ghost".into(),
            org_id: org.clone(),
            kind: Some(rapport_search::Kind::Client),
            title: "Ghost Lovelace".into(),
            ..Default::default()
        }])
        .await
        .unwrap();
    let done = rapport::search::reindex_all(&w.t.pool, &w.t.state.search, &[org])
        .await
        .unwrap();
    assert_eq!(done[0].1.clients, 3);
    w.indexed().await;
    let r = send(&app, api(Method::GET, "/api/search?q=lovelace", &w.manager)).await;
    assert_eq!(
        titles(&r.json()),
        vec!["Lovelace".to_string()],
        "{}",
        r.body
    );
    let r = send(&app, api(Method::GET, "/api/search?q=hamilton", &w.manager)).await;
    assert_eq!(
        titles(&r.json()),
        vec!["Hamilton".to_string()],
        "{}",
        r.body
    );
}

#[actix_web::test]
async fn an_index_lost_or_of_an_earlier_layout_is_rebuilt_from_the_database_on_start() {
    let w = world().await;
    let app = w.t.service().await;
    create(
        &app,
        &w.manager,
        json!({"type": "individual", "lastName": "Lovelace"}),
    )
    .await;
    create(
        &app,
        &w.other,
        json!({"type": "individual", "lastName": "Hopper"}),
    )
    .await;
    // The data directory's index, gone (or replaced by `Embedded::open` because its layout
    // changed): what a server starting on it finds.
    let dir = std::env::temp_dir().join(format!("rapport-index-{}", uuid::Uuid::new_v4()));
    let index: rapport::search::Index =
        std::sync::Arc::new(rapport_search::embedded::Embedded::open(&dir).unwrap());
    let queued = {
        let mut c = w.t.pool.get().unwrap();
        rapport::search::rebuild_if_empty(&mut c, &index).unwrap()
    };
    assert_eq!(queued, 2, "every organization");
    rapport::search::drain_all(&w.t.pool, &index).await.unwrap();
    let orgs = {
        let mut c = w.t.pool.get().unwrap();
        ["acme", "globex"].map(|r| {
            rapport::domain::orgs::store::find_org_by_ref(&mut c, r)
                .unwrap()
                .unwrap()
                .id
        })
    };
    for (org, name) in orgs.iter().zip(["Lovelace", "Hopper"]) {
        let found = index
            .search(&rapport_search::Query {
                org_id: org.clone(),
                text: name.to_lowercase(),
                kind: Some(rapport_search::Kind::Client),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(found.total, 1, "{name} is searchable again");
    }
    drop(index);
    // Opened again with its documents: nothing is rebuilt.
    let index: rapport::search::Index =
        std::sync::Arc::new(rapport_search::embedded::Embedded::open(&dir).unwrap());
    let mut c = w.t.pool.get().unwrap();
    assert_eq!(
        rapport::search::rebuild_if_empty(&mut c, &index).unwrap(),
        0
    );
    drop(index);
    std::fs::remove_dir_all(&dir).unwrap();
}
