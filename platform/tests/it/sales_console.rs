//! The sales console: rendering, board moves, forms, roles and isolation.

use actix_web::http::{Method, StatusCode};
use serde_json::json;

use crate::support::*;

struct World {
    t: TestApp,
    manager_token: String,
    deal: String,
    client: String,
    stages: serde_json::Value,
}

async fn world() -> World {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    let m = t.user(&org, "manager@acme.test", "manager");
    t.user(&org, "admin@acme.test", "admin");
    t.user(&org, "rep@acme.test", "sales_rep");
    t.user(&org, "ro@acme.test", "read_only");
    t.user(&org, "mk@acme.test", "marketer");
    let manager_token = t.token(&org, &m);
    let app = t.service().await;
    let client = send(
        &app,
        api(Method::POST, "/api/clients", &manager_token)
            .set_json(json!({"type": "company", "companyName": "Initech"})),
    )
    .await
    .json();
    let p = send(&app, api(Method::GET, "/api/pipelines", &manager_token))
        .await
        .json();
    let stages = p["data"][0]["stages"].clone();
    let deal = send(&app, api(Method::POST, "/api/opportunities", &manager_token).set_json(json!({"name": "Big one", "clientId": client["id"], "value": "1000", "stage": stages[2]["id"]}))).await.json();
    drop(app);
    World {
        client: client["id"].as_str().unwrap().into(),
        deal: deal["id"].as_str().unwrap().into(),
        t,
        manager_token,
        stages,
    }
}

fn stage(w: &World, name: &str) -> String {
    w.stages
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .into()
}

#[actix_web::test]
async fn sales_pages_render_as_page_fragment_and_restore() {
    let w = world().await;
    let app = w.t.service().await;
    let k = send(&app, api(Method::POST, "/api/contracts", &w.manager_token).set_json(json!({"name": "Support", "clientId": w.client, "startDate": "2026-01-01", "endDate": "2026-12-31", "value": "100"}))).await.json();
    let mut b = Browser::new();
    b.sign_in(&app, "admin@acme.test", PASSWORD).await;
    for path in [
        "/pipeline".to_string(),
        format!("/opportunities/{}", w.deal),
        format!("/opportunities/{}/edit", w.deal),
        "/opportunities/new".into(),
        "/forecast".into(),
        "/performance".into(),
        "/contracts".into(),
        "/contracts/new".into(),
        format!("/contracts/{}", k["id"].as_str().unwrap()),
        "/admin/pipelines".into(),
    ] {
        let page = b.get(&app, &path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
        assert!(page.body.starts_with("<!doctype html>"), "{path}");
        assert!(page.header("vary").unwrap().contains("HX-Request"));
        let fragment = b.hx_get(&app, &path).await;
        assert_eq!(fragment.status, StatusCode::OK, "{path}");
        assert!(
            fragment.body.contains("<h1"),
            "{path}: the fragment has the page's content"
        );
        assert!(!fragment.body.contains("<html"), "{path}");
        let restored = b.hx_restore(&app, &path).await;
        assert!(
            restored.body.starts_with("<!doctype html>"),
            "{path}: a history restore gets the whole page"
        );
        assert!(
            page.body.contains(fragment.body.trim()),
            "{path}: page and fragment drifted"
        );
    }
    let pdf = b.get(&app, "/forecast").await.body;
    assert!(
        pdf.contains("<svg class=\"chart\""),
        "the forecast chart is drawn server-side"
    );
}

#[actix_web::test]
async fn the_board_moves_deals_and_explains_refusals() {
    let w = world().await;
    let app = w.t.service().await;
    let mut b = Browser::new();
    b.sign_in(&app, "manager@acme.test", PASSWORD).await;
    let board = b.get(&app, "/pipeline").await.body;
    assert!(board.contains("Big one") && board.contains("1,000.00 USD"));
    let moved = b
        .hx_post(
            &app,
            &format!("/opportunities/{}/board-move", w.deal),
            &[("stage", &stage(&w, "Negotiation")), ("version", "1")],
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK);
    assert!(moved.body.contains("id=\"board\""), "the board comes back");
    assert!(
        moved.body.contains("Export deals"),
        "with the same buttons as before the move"
    );
    assert!(
        moved
            .body
            .contains("moved from Proposal to Negotiation (50% → 75%)"),
        "{}",
        moved.body
    );
    // Losing without a reason is explained, and nothing changes.
    let lost = b
        .hx_post(
            &app,
            &format!("/opportunities/{}/board-move", w.deal),
            &[("stage", &stage(&w, "Lost")), ("version", "2")],
        )
        .await;
    assert!(lost.body.contains("toast-error") && lost.body.contains("Say why the deal was lost"));
    // A stale card (someone moved it meanwhile) is refused.
    let stale = b
        .hx_post(
            &app,
            &format!("/opportunities/{}/board-move", w.deal),
            &[("stage", &stage(&w, "Won")), ("version", "1")],
        )
        .await;
    assert!(stale.body.contains("changed by someone else"));
    let lost = b
        .hx_post(
            &app,
            &format!("/opportunities/{}/board-move", w.deal),
            &[
                ("stage", &stage(&w, "Lost")),
                ("version", "2"),
                ("loss_reason", "Price"),
            ],
        )
        .await;
    assert!(lost.body.contains("to Lost"));
    let deal = send(
        &app,
        api(
            Method::GET,
            &format!("/api/opportunities/{}", w.deal),
            &w.manager_token,
        ),
    )
    .await
    .json();
    assert_eq!(
        (deal["status"].as_str(), deal["lossReason"].as_str()),
        (Some("lost"), Some("Price"))
    );
}

/// Values of `attr="…"` in `html`, with `&amp;` and `&#38;` read back as `&`.
fn attr_values(html: &str, attr: &str) -> Vec<String> {
    let needle = format!(" {attr}=\"");
    html.match_indices(&needle)
        .filter_map(|(i, _)| {
            let rest = &html[i + needle.len()..];
            rest.find('"')
                .map(|end| rest[..end].replace("&amp;", "&").replace("&#38;", "&"))
        })
        .collect()
}

/// The "Show … more" link of a board column or of the cards it loaded, if any.
fn next_page(html: &str) -> Option<String> {
    attr_values(html, "hx-get")
        .into_iter()
        .find(|h| h.starts_with("/pipeline/column?"))
}

/// The deal names ("Card 07") a board or a page of cards shows, in order.
fn card_names(html: &str) -> Vec<String> {
    html.match_indices("class=\"deal-name\"")
        .filter_map(|(i, _)| {
            let rest = &html[i..];
            let start = rest.find('>')? + 1;
            let end = rest.find("</a>")?;
            Some(rest[start..end].to_string())
        })
        .collect()
}

/// A column longer than the board draws shows the rest a page at a time ("Show 25 more",
/// cursor-based, as htmx cards or as a page of its own), each deal once, and only those
/// the reader may see; every link on the board answers.
#[actix_web::test]
async fn long_board_columns_show_the_rest_on_demand() {
    let w = world().await;
    let rep_id = {
        let mut c = w.t.pool.get().unwrap();
        rapport::domain::orgs::store::find_user_by_email(&mut c, "rep@acme.test")
            .unwrap()
            .unwrap()
            .id
    };
    let app = w.t.service().await;
    let first = w.stages[0]["id"].as_str().unwrap().to_string();
    let mut names: Vec<String> = (1..=60).map(|i| format!("Card {i:02}")).collect();
    names.extend(["Rep card A".to_string(), "Rep card B".to_string()]);
    for name in &names {
        let mut body = json!({"name": name, "clientId": w.client, "value": "10", "stage": first});
        if name.starts_with("Rep") {
            body["assignedTo"] = json!(rep_id);
        }
        let r = send(
            &app,
            api(Method::POST, "/api/opportunities", &w.manager_token).set_json(body),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let mut b = Browser::new();
    b.sign_in(&app, "manager@acme.test", PASSWORD).await;
    let board = b.get(&app, "/pipeline").await.body;
    assert!(
        !board.contains("/opportunities?filter"),
        "no dead \"see all\" link"
    );
    let column = &board[board.find(&format!("id=\"cards-{first}\"")).unwrap()..];
    let column = &column[..column.find("</section>").unwrap()];
    let mut seen = card_names(column);
    assert_eq!(seen.len(), 25);
    assert!(column.contains("Show 25 more") && column.contains("of 37 not shown"));
    let link = next_page(column).expect("a way to the rest");

    // Every link on the board answers, the column's own among them.
    let body = &board[board.find("id=\"board\"").unwrap()..];
    let body = &body[..body.find("id=\"loss-dialog\"").unwrap()];
    let hrefs: std::collections::BTreeSet<String> = attr_values(body, "href")
        .into_iter()
        .chain(attr_values(body, "hx-get"))
        .collect();
    assert!(hrefs.contains(&link));
    for href in &hrefs {
        let r = b.get(&app, href).await;
        assert_eq!(r.status, StatusCode::OK, "{href}");
    }
    // Followed without htmx it is a page of its own, read-only.
    let page = b.get(&app, &link).await;
    assert!(page.body.starts_with("<!doctype html>") && page.body.contains("<h1>"));
    assert!(!page.body.contains("move-menu"));
    assert_eq!(card_names(&page.body).len(), 25);

    // With htmx: the next cards, and the next "Show more" in place of this one.
    let mut next = Some(link);
    let mut pages = 0;
    while let Some(link) = next {
        let r = b.hx_get(&app, &link).await;
        assert_eq!(r.status, StatusCode::OK, "{link}");
        assert!(!r.body.contains("<html"));
        assert!(r
            .body
            .contains(&format!("id=\"more-{first}\" hx-swap-oob=\"outerHTML\"")));
        assert!(
            r.body.contains("move-menu"),
            "the cards can move like the others"
        );
        seen.extend(card_names(&r.body));
        next = next_page(&r.body);
        pages += 1;
        assert!(pages <= 3, "the pages end");
    }
    assert_eq!(pages, 2, "25 + 25 + 12");
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), seen.len(), "each deal once");
    let mut expected = names.clone();
    expected.sort();
    assert_eq!(sorted, expected, "every deal of the column");

    // A rep sees their own two, whatever the query asks for.
    let mut rep = Browser::new();
    rep.sign_in(&app, "rep@acme.test", PASSWORD).await;
    let own = |html: &str| {
        let mut v = card_names(html);
        v.sort();
        v
    };
    let board = rep.get(&app, "/pipeline").await.body;
    assert_eq!(own(&board), vec!["Rep card A", "Rep card B"]);
    assert!(next_page(&board).is_none());
    let pipeline = send(&app, api(Method::GET, "/api/pipelines", &w.manager_token))
        .await
        .json()["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let forged = rep
        .hx_get(
            &app,
            &format!(
                "/pipeline/column?pipeline={pipeline}&stage={first}&before=ffffffff&shown=0&owner="
            ),
        )
        .await;
    assert_eq!(forged.status, StatusCode::OK);
    assert_eq!(own(&forged.body), vec!["Rep card A", "Rep card B"]);
    let unknown = rep
        .hx_get(
            &app,
            &format!("/pipeline/column?pipeline={pipeline}&stage=nope&before=ffffffff"),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn deal_forms_validate_inline_and_quotes_are_made_in_the_console() {
    let w = world().await;
    let app = w.t.service().await;
    let mut b = Browser::new();
    b.sign_in(&app, "manager@acme.test", PASSWORD).await;
    let bad = b
        .hx_post(
            &app,
            "/opportunities",
            &[
                ("name", ""),
                ("value", "12.345"),
                ("currency", "USD"),
                ("version", "0"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.body.contains("Name the deal.")
            && bad.body.contains("at most two decimal places")
            && bad.body.contains("A deal belongs to a client.")
    );
    let ok = b
        .hx_post(
            &app,
            "/opportunities",
            &[
                ("name", "Console deal"),
                ("clientId", &w.client),
                ("value", "2500.50"),
                ("currency", "USD"),
                ("version", "0"),
            ],
        )
        .await;
    let path = ok
        .header("hx-redirect")
        .expect("redirect to the new deal")
        .to_string();
    let page = b.get(&app, &path).await.body;
    assert!(page.contains("Console deal") && page.contains("2,500.50 USD"));
    let id = path.trim_start_matches("/opportunities/");
    let q = b
        .hx_post(
            &app,
            &format!("/opportunities/{id}/quotes"),
            &[
                ("line_name", ""),
                ("line_qty", "1"),
                ("line_price", ""),
                ("line_discount", "0"),
                ("line_tax", "0"),
                ("line_name", "Seats"),
                ("line_qty", "2"),
                ("line_price", "10.005"),
                ("line_discount", "0"),
                ("line_tax", "0"),
                ("line_name", "Onboarding day"),
                ("line_qty", "1"),
                ("line_price", "900"),
                ("line_discount", "5"),
                ("line_tax", "0"),
                ("terms", "Net 30"),
            ],
        )
        .await;
    assert_eq!(
        q.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "prices have two decimals at most"
    );
    // The error names the row as the form shows it, in words; every line typed is still there.
    assert!(q.body.contains("Line 2, unit price"), "{}", q.body);
    assert!(!q.body.contains("lines[0]") && !q.body.contains("unitPrice"));
    for kept in [
        "value=\"10.005\"",
        "value=\"Onboarding day\"",
        "value=\"900\"",
        ">Net 30</textarea>",
    ] {
        assert!(q.body.contains(kept), "{kept} was lost");
    }
    let q = b
        .hx_post(
            &app,
            &format!("/opportunities/{id}/quotes"),
            &[
                ("line_name", "Seats"),
                ("line_qty", "2"),
                ("line_price", "10.50"),
                ("line_discount", "10"),
                ("line_tax", "20"),
            ],
        )
        .await;
    assert!(q.header("hx-redirect").is_some(), "{}", q.body);
    let page = b.get(&app, &format!("/opportunities/{id}")).await.body;
    // 21.00 − 2.10 = 18.90, + 20% = 3.78 → 22.68
    assert!(
        page.contains("Q-00001") && page.contains("22.68 USD"),
        "{page}"
    );
}

#[actix_web::test]
async fn roles_and_organizations_limit_the_sales_pages() {
    let w = world().await;
    let globex = w.t.org("Globex");
    w.t.user(&globex, "g@globex.test", "admin");
    let app = w.t.service().await;
    let deal_path = format!("/opportunities/{}", w.deal);

    let mut ro = Browser::new();
    ro.sign_in(&app, "ro@acme.test", PASSWORD).await;
    assert_eq!(ro.get(&app, "/pipeline").await.status, StatusCode::OK);
    assert!(
        !ro.get(&app, "/pipeline").await.body.contains("move-menu"),
        "no move menu without write"
    );
    assert_eq!(
        ro.hx_post(
            &app,
            &format!("{deal_path}/board-move"),
            &[("stage", &stage(&w, "Won"))]
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        ro.get(&app, "/admin/pipelines").await.status,
        StatusCode::FORBIDDEN
    );

    let mut rep = Browser::new();
    rep.sign_in(&app, "rep@acme.test", PASSWORD).await;
    assert_eq!(
        rep.get(&app, &deal_path).await.status,
        StatusCode::NOT_FOUND,
        "another rep's deal"
    );
    assert!(!rep.get(&app, "/pipeline").await.body.contains("Big one"));

    let mut mk = Browser::new();
    mk.sign_in(&app, "mk@acme.test", PASSWORD).await;
    assert_eq!(
        mk.get(&app, "/pipeline").await.status,
        StatusCode::FORBIDDEN
    );

    let mut m = Browser::new();
    m.sign_in(&app, "manager@acme.test", PASSWORD).await;
    assert_eq!(
        m.get(&app, "/admin/pipelines").await.status,
        StatusCode::FORBIDDEN,
        "stages are an admin's"
    );

    let mut g = Browser::new();
    g.sign_in(&app, "g@globex.test", PASSWORD).await;
    assert_eq!(g.get(&app, &deal_path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        g.hx_post(
            &app,
            &format!("{deal_path}/board-move"),
            &[("stage", &stage(&w, "Won")), ("version", "1")]
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert!(!g.get(&app, "/pipeline").await.body.contains("Big one"));
    assert_eq!(
        send(
            &app,
            api(
                Method::GET,
                &format!("/api/opportunities/{}", w.deal),
                &w.manager_token
            )
        )
        .await
        .json()["stageName"],
        "Proposal"
    );
}

#[actix_web::test]
async fn a_profile_lists_the_clients_deals_and_starts_one_prefilled() {
    let w = world().await;
    let app = w.t.service().await;
    let token = &w.manager_token;
    // A person at the company, with a deal of their own: the company's card rolls it up.
    let person = send(
        &app,
        api(Method::POST, "/api/clients", token).set_json(
            json!({"type": "individual", "firstName": "Peter", "lastName": "Gibbons", "employerId": w.client}),
        ),
    )
    .await
    .json();
    let pid = person["id"].as_str().unwrap().to_string();
    let small = send(&app, api(Method::POST, "/api/opportunities", token).set_json(json!({"name": "TPS licences", "clientId": pid, "value": "250", "stage": stage(&w, "Qualification"), "expectedCloseDate": "2027-01-15"}))).await;
    assert_eq!(small.status, StatusCode::CREATED, "{}", small.body);
    let lost = send(
        &app,
        api(Method::POST, "/api/opportunities", token)
            .set_json(json!({"name": "Old printer deal", "clientId": w.client, "value": "90"})),
    )
    .await
    .json();
    let lost_id = lost["id"].as_str().unwrap();
    let r = send(
        &app,
        api(
            Method::POST,
            &format!("/api/opportunities/{lost_id}/move"),
            token,
        )
        .set_json(json!({"stage": stage(&w, "Lost"), "lossReason": "Price"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // The API: open deals first (closing soonest), the lost one after, the person's marked.
    let r = send(
        &app,
        api(
            Method::GET,
            &format!("/api/clients/{}/opportunities", w.client),
            token,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v = r.json();
    let names: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["TPS licences", "Big one", "Old printer deal"],
        "{v}"
    );
    assert_eq!(v["data"][0]["via"]["name"], "Peter Gibbons");
    assert_eq!(v["data"][2]["status"], "lost");
    assert_eq!(v["data"][1]["value"], "1000.00");

    // The console: the card on the company's profile, and "+ Add deal" pre-filled.
    let mut b = Browser::new();
    b.sign_in(&app, "manager@acme.test", PASSWORD).await;
    let page = b.get(&app, &format!("/clients/{}", w.client)).await.body;
    assert!(page.contains("id=\"client-deals\""), "{page}");
    assert!(
        page.contains("TPS licences") && page.contains("with <a href=\"/clients/"),
        "{page}"
    );
    assert!(page.contains("Won and lost (1)") && page.contains("Old printer deal"));
    assert!(
        page.contains("1,000.00 "),
        "money as people read it: {page}"
    );
    let add = format!("href=\"/opportunities/new?clientId={}\"", w.client);
    assert!(page.contains(&add), "{page}");
    let form = b
        .get(&app, &format!("/opportunities/new?clientId={}", w.client))
        .await
        .body;
    assert!(
        form.contains("Initech"),
        "the new deal's client is filled in: {form}"
    );

    // A read-only user sees the card without "+ Add deal"; a sales rep sees their own deals
    // only; another organization's manager does not find the client.
    let mut ro = Browser::new();
    ro.sign_in(&app, "ro@acme.test", PASSWORD).await;
    let page = ro.get(&app, &format!("/clients/{}", w.client)).await.body;
    assert!(page.contains("Big one") && !page.contains(&add), "{page}");
    let mut c = w.t.pool.get().unwrap();
    let org = rapport::domain::orgs::store::find_org_by_ref(&mut c, "acme")
        .unwrap()
        .unwrap();
    let rep_id: String = {
        use diesel::prelude::*;
        rapport::db::schema::users::table
            .filter(rapport::db::schema::users::email.eq("rep@acme.test"))
            .select(rapport::db::schema::users::id)
            .first(&mut c)
            .unwrap()
    };
    let rep = w.t.token(&org, &rep_id);
    // The rep is given the person; the deal on it stays the manager's.
    let r = send(
        &app,
        api(Method::PATCH, &format!("/api/clients/{pid}"), token)
            .set_json(json!({"assignedTo": rep_id})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = send(
        &app,
        api(
            Method::GET,
            &format!("/api/clients/{pid}/opportunities"),
            &rep,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.json()["data"],
        json!([]),
        "a rep sees only their own deals"
    );
    let other = w.t.org("Globex");
    let outsider = w.t.user(&other, "boss@globex.test", "manager");
    let outsider = w.t.token(&other, &outsider);
    let r = send(
        &app,
        api(
            Method::GET,
            &format!("/api/clients/{}/opportunities", w.client),
            &outsider,
        ),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "another organization's client: {}",
        r.body
    );
}

/// Reversed dates on the Performance page: the page stays, says what is wrong beside the
/// dates in the right order of words, and shows the default period.
#[actix_web::test]
async fn reversed_performance_dates_are_explained_inline() {
    let w = world().await;
    let app = w.t.service().await;
    let mut b = Browser::new();
    b.sign_in(&app, "manager@acme.test", PASSWORD).await;
    let r = b
        .get(&app, "/performance?from=2026-12-01&to=2026-11-01")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("id=\"date-error\""), "{}", r.body);
    assert!(r
        .body
        .contains("The end date is before the start date: pick an end on or after the start."));
    assert!(r.body.contains("Won value"), "the report is still shown");
}

#[actix_web::test]
async fn the_quotes_page_lists_the_quotes_a_person_may_see() {
    let w = world().await;
    let app = w.t.service().await;
    let made = send(
        &app,
        api(Method::POST, "/api/quotes", &w.manager_token).set_json(json!({
            "opportunityId": w.deal,
            "lines": [{"name": "Seats", "quantity": "3", "unitPrice": "100"}]
        })),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);

    let mut m = Browser::new();
    m.sign_in(&app, "manager@acme.test", PASSWORD).await;
    let page = m.get(&app, "/quotes").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("Q-00001")
            && page.body.contains("Big one")
            && page.body.contains("Initech")
            && page.body.contains("300.00")
            && page.body.contains(">Draft<"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("href=\"/quotes\""),
        "the navigation leads there"
    );
    let sent = m.get(&app, "/quotes?status=sent").await;
    assert!(!sent.body.contains("Q-00001") && sent.body.contains("No sent quotes"));
    let bad = m.get(&app, "/quotes?status=paid").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("Choose draft, sent"), "{}", bad.body);

    // A rep sees the quotes of their own deals only; another organization sees none.
    let mut rep = Browser::new();
    rep.sign_in(&app, "rep@acme.test", PASSWORD).await;
    let theirs = rep.get(&app, "/quotes").await;
    assert_eq!(theirs.status, StatusCode::OK);
    assert!(!theirs.body.contains("Q-00001"), "{}", theirs.body);
    let globex = w.t.org("Globex");
    let boss = w.t.user(&globex, "boss@globex.test", "admin");
    let mut g = Browser::new();
    g.sign_in(&app, "boss@globex.test", PASSWORD).await;
    assert!(!g.get(&app, "/quotes").await.body.contains("Q-00001"));

    // The API lists the same, a page at a time.
    let again = send(
        &app,
        api(Method::POST, "/api/quotes", &w.manager_token).set_json(json!({
            "opportunityId": w.deal,
            "lines": [{"name": "Support", "quantity": "1", "unitPrice": "50"}]
        })),
    )
    .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    let list = |q: &str| api(Method::GET, &format!("/api/quotes{q}"), &w.manager_token);
    let first = send(&app, list("?limit=1")).await.json();
    assert_eq!(first["data"].as_array().unwrap().len(), 1);
    assert_eq!(first["data"][0]["number"], 2, "{first}");
    let cursor = first["nextCursor"]
        .as_str()
        .expect("a second page")
        .to_string();
    let second = send(&app, list(&format!("?limit=1&cursor={cursor}")))
        .await
        .json();
    assert_eq!(second["data"][0]["number"], 1, "{second}");
    assert!(second["nextCursor"].is_null());
    let sent = send(&app, list("?filter[status]=sent")).await.json();
    assert!(sent["data"].as_array().unwrap().is_empty());
    assert_eq!(
        send(&app, list("?limit=0")).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let theirs = w.t.token(&globex, &boss);
    let none = send(&app, api(Method::GET, "/api/quotes", &theirs))
        .await
        .json();
    assert!(none["data"].as_array().unwrap().is_empty(), "{none}");
}

/// A refused Pipelines form comes back as typed with its message beside the field (422),
/// never as a toast naming the request's fields (`name:`, `rotting_days:`).
#[actix_web::test]
async fn pipeline_and_stage_forms_show_their_errors_inline() {
    let w = world().await;
    let app = w.t.service().await;
    let p = send(&app, api(Method::GET, "/api/pipelines", &w.manager_token))
        .await
        .json();
    let pipeline = p["data"][0]["id"].as_str().unwrap().to_string();
    let proposal = stage(&w, "Proposal");
    let mut b = Browser::new();
    b.sign_in(&app, "admin@acme.test", PASSWORD).await;
    let no_raw_names = |body: &str| {
        for raw in [
            "name:",
            "rotting_days:",
            "rottingDays",
            "probability:",
            "toast-error",
        ] {
            assert!(!body.contains(raw), "{raw} in {body}");
        }
    };

    let r = b
        .hx_post(
            &app,
            "/admin/pipelines",
            &[
                ("do", "update_pipeline"),
                ("pipeline", &pipeline),
                ("name", "Renamed sales"),
                ("rotting_days", "soon"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(
        r.body
            .contains("<span class=\"field-error\">Use a whole number of days.</span>"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("value=\"Renamed sales\"") && r.body.contains("value=\"soon\""),
        "what was typed stays: {}",
        r.body
    );
    no_raw_names(&r.body);

    let r = b
        .hx_post(
            &app,
            "/admin/pipelines",
            &[
                ("do", "create_pipeline"),
                ("name", ""),
                ("rotting_days", "5000"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(
        r.body.contains("Name the pipeline (1 to 80 characters).")
            && r.body.contains("Use 1 to 3650 days, or leave it empty.")
            && r.body.contains("value=\"5000\""),
        "{}",
        r.body
    );
    no_raw_names(&r.body);

    let r = b
        .hx_post(
            &app,
            "/admin/pipelines",
            &[
                ("do", "update_stage"),
                ("pipeline", &pipeline),
                ("stage", &proposal),
                ("name", "Offer"),
                ("probability", "150"),
                ("color", "blue"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(
        r.body.contains("Use a probability from 0 to 100.")
            && r.body.contains("value=\"Offer\"")
            && r.body.contains("value=\"150\""),
        "{}",
        r.body
    );
    assert_eq!(
        r.body.matches("class=\"field-error\"").count(),
        1,
        "only the refused form shows it: {}",
        r.body
    );
    no_raw_names(&r.body);

    // Nothing was saved, and a good form still goes through.
    let page = b.get(&app, "/admin/pipelines").await.body;
    assert!(!page.contains("Renamed sales") && !page.contains("field-error"));
    let r = b
        .hx_post(
            &app,
            "/admin/pipelines",
            &[("do", "add_reason"), ("name", "Went quiet after the demo")],
        )
        .await;
    assert!(r.header("HX-Redirect").is_some(), "{}", r.body);
}
