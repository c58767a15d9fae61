//! Reports in the console, on both backends: the standard reports as a manager and a rep see
//! them (chart, grouped amounts, CSV export, a reversed period), the custom report builder
//! (adding a filter, date buckets, the live preview, saving and the errors it names),
//! private reports and who may share them, dashboards with their period and schedules, and
//! a role without deals.

use actix_http::Request;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;

use crate::reports::fixture;
use crate::support::{Browser, Resp, PASSWORD};

/// Signs a console user in.
async fn signed_in<S, B>(svc: &S, email: &str) -> Browser
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let mut b = Browser::new();
    let r = b.sign_in(svc, email, PASSWORD).await;
    assert!(
        r.status.is_redirection(),
        "{email}: {} {}",
        r.status,
        r.body
    );
    b
}

/// The id a plain form post's 303 redirected to under `prefix` (`/reports/`, `/dashboards/`).
fn saved_id(r: &Resp, prefix: &str) -> String {
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let to = r.header("location").unwrap_or_default();
    let id = to
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("redirected to {to}"));
    assert!(!id.is_empty() && !id.contains('/'), "{to}");
    id.to_string()
}

/// The first `href` in the page that starts with `prefix`, as a browser would follow it.
fn href(body: &str, prefix: &str) -> String {
    let start = body
        .find(&format!("href=\"{prefix}"))
        .unwrap_or_else(|| panic!("no link to {prefix}: {body}"))
        + "href=\"".len();
    let rest = &body[start..];
    rest[..rest.find('"').unwrap()]
        .replace("&amp;", "&")
        .replace("&#38;", "&")
}

/// The HTML of the element with `id` (up to the end of the page; enough to look inside it).
fn from_id<'a>(body: &'a str, id: &str) -> &'a str {
    let at = body
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}: {body}"));
    &body[at..]
}

/// A deals report form as the builder posts it: won value by owner.
fn won_by_owner(name: &str) -> Vec<(&str, &str)> {
    vec![
        ("id", ""),
        ("version", "0"),
        ("name", name),
        ("description", "Who brings it in"),
        ("entity", "deals"),
        ("date_field", "createdAt"),
        ("chart", "bar"),
        ("match", "all"),
        ("f.0.field", "status"),
        ("f.0.op", "is"),
        ("f.0.value", "won"),
        ("group", "owner"),
        ("bucket", ""),
        ("a.0.fn", "sum"),
        ("a.0.field", "value"),
    ]
}

fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

#[actix_web::test]
async fn a_manager_reads_a_standard_report_with_its_chart_export_and_period() {
    let f = fixture().await;
    let svc = f.t.service().await;
    let mut b = signed_in(&svc, "manager@reports.test").await;

    let index = b.get(&svc, "/reports").await;
    assert_eq!(index.status, StatusCode::OK, "{}", index.body);
    assert!(
        index
            .body
            .contains("<a href=\"/reports/standard/sales-by-rep\">Sales by rep</a>"),
        "{}",
        index.body
    );
    assert!(
        index
            .body
            .contains("<a class=\"btn btn-primary\" href=\"/reports/new\">New report</a>"),
        "{}",
        index.body
    );
    assert!(
        index.body.contains("No saved reports yet"),
        "{}",
        index.body
    );

    let page = b.get(&svc, "/reports/standard/sales-by-rep").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("<h1>Sales by rep</h1>"), "{}", page.body);
    assert!(
        page.body.contains("<svg class=\"chart report-chart\""),
        "{}",
        page.body
    );
    // One row per rep, the bigger seller first, amounts grouped with two places.
    let table = from_id(&page.body, "report-page");
    let (r2, r1) = (
        table.find(">rep2@reports.test</td>").expect("rep 2's row"),
        table.find(">rep1@reports.test</td>").expect("rep 1's row"),
    );
    assert!(r2 < r1, "rep 2 sold more: {table}");
    assert!(table.contains(">2,000.00</td>"), "{table}");
    assert!(table.contains(">1,000.00</td>"), "{table}");
    assert!(table.contains(">50%</td>"), "rep 1's win rate: {table}");
    // The default period is the last 90 days, shown in the period form.
    let from = (today() - chrono::Duration::days(89)).to_string();
    assert!(
        page.body
            .contains(&format!("name=\"from\" value=\"{from}\"")),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(&format!("name=\"to\" value=\"{}\"", today())),
        "{}",
        page.body
    );

    // The PDF link answers the same report as a PDF.
    let pdf_link = format!(
        "{}pdf",
        href(&page.body, "/reports/standard/sales-by-rep/export?").trim_end_matches("csv")
    );
    assert!(page.body.contains("format=pdf\" download>PDF</a>"));
    let pdf = b.get(&svc, &pdf_link).await;
    assert_eq!(pdf.status, StatusCode::OK);
    assert_eq!(pdf.header("content-type"), Some("application/pdf"));

    // The export link answers the same report as CSV.
    let link = href(&page.body, "/reports/standard/sales-by-rep/export?");
    assert!(link.ends_with("&format=csv"), "{link}");
    assert!(link.contains(&format!("from={from}")), "{link}");
    let csv = b.get(&svc, &link).await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.body);
    assert!(
        csv.header("content-type").unwrap().starts_with("text/csv"),
        "{:?}",
        csv.headers
    );
    assert!(
        csv.body.starts_with("Rep,Currency,Won deals"),
        "{}",
        csv.body
    );
    assert!(
        csv.body.contains("rep2@reports.test,EUR,1,0,2000"),
        "{}",
        csv.body
    );

    // A reversed period says so inline and shows the last 90 days instead of failing.
    let reversed = b
        .get(
            &svc,
            "/reports/standard/sales-by-rep?from=2026-02-01&to=2026-01-01",
        )
        .await;
    assert_eq!(reversed.status, StatusCode::OK, "{}", reversed.body);
    assert!(
        reversed
            .body
            .contains("The start is after the end; showing the last 90 days instead."),
        "{}",
        reversed.body
    );
    assert!(
        reversed
            .body
            .contains(&format!("name=\"from\" value=\"{from}\"")),
        "{}",
        reversed.body
    );
    assert!(
        reversed.body.contains(">2,000.00</td>"),
        "{}",
        reversed.body
    );
    // A period without deals says so, without an empty chart.
    let empty = b
        .get(
            &svc,
            "/reports/standard/sales-by-rep?from=2020-01-01&to=2020-01-31",
        )
        .await;
    assert_eq!(empty.status, StatusCode::OK, "{}", empty.body);
    assert!(
        empty.body.contains("No records in this period."),
        "{}",
        empty.body
    );
    assert!(!empty.body.contains("<svg class=\"chart"), "{}", empty.body);
    // An unknown report is not found.
    let r = b.get(&svc, "/reports/standard/nope").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn the_builder_adds_filters_buckets_dates_previews_names_its_errors_and_saves() {
    let f = fixture().await;
    let svc = f.t.service().await;
    let mut b = signed_in(&svc, "manager@reports.test").await;

    // A new report starts on deals, counted by status, with a preview.
    let page = b.get(&svc, "/reports/new").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("id=\"report-builder\""), "{}", page.body);
    assert!(page.body.contains("<h1>New report</h1>"), "{}", page.body);
    assert!(
        page.body
            .contains("<option value=\"deals\" selected>Deals</option>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Save report"), "{}", page.body);
    assert!(!page.body.contains("name=\"f.0.field\""), "{}", page.body);
    assert!(!page.body.contains("name=\"bucket\""), "{}", page.body);
    assert!(
        from_id(&page.body, "report-preview").contains("class=\"table report-table\""),
        "{}",
        page.body
    );

    // "Add a filter" answers the builder with a filter row, keeping what was typed.
    let typed = [
        ("id", ""),
        ("version", "0"),
        ("name", "Deals by month"),
        ("description", ""),
        ("entity", "deals"),
        ("date_field", "createdAt"),
        ("chart", "line"),
        ("group", "status"),
        ("a.0.fn", "count"),
        ("a.0.field", ""),
    ];
    let r = b
        .hx_post(
            &svc,
            "/reports/compose",
            &[&typed[..], &[("op", "add_filter")]].concat(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("name=\"f.0.field\""), "{}", r.body);
    assert!(!r.body.contains("name=\"f.1.field\""), "{}", r.body);
    assert!(r.body.contains("value=\"Deals by month\""), "{}", r.body);
    assert!(
        r.body.contains("<option value=\"line\" selected>"),
        "the chart kept: {}",
        r.body
    );
    assert!(!r.body.contains("<html"), "a fragment for htmx: {}", r.body);

    // Grouping by a date offers its buckets; the preview counts by month.
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let by_month = [
        &typed[..],
        &[
            ("group", "createdAt"),
            ("bucket", "month"),
            ("f.0.field", "value"),
            ("f.0.op", "gte"),
            ("f.0.value", "400"),
        ],
    ]
    .concat();
    let by_month: Vec<(&str, &str)> = by_month
        .into_iter()
        .filter(|(k, v)| *k != "group" || *v != "status")
        .collect();
    let r = b.hx_post(&svc, "/reports/compose", &by_month).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("name=\"bucket\""), "{}", r.body);
    assert!(
        r.body.contains("<option value=\"month\" selected>"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("<option value=\"gte\" selected>"),
        "the operator kept: {}",
        r.body
    );
    assert!(r.body.contains("value=\"400\""), "{}", r.body);
    let preview = from_id(&r.body, "report-preview");
    assert!(
        preview.contains("class=\"table report-table\""),
        "{preview}"
    );
    assert!(
        preview.contains("<svg class=\"chart report-chart\""),
        "{preview}"
    );
    // D1 (1,000), D2 (500), D3 (2,000) are worth 400 or more; D4 (300) is not.
    assert!(preview.contains(&format!(">{month}</td>")), "{preview}");
    assert!(preview.contains(">3</td>"), "{preview}");
    assert!(preview.contains("(last 90 days)"), "{preview}");
    // Over all time the preview's heading says so.
    let all_time: Vec<(&str, &str)> = by_month
        .iter()
        .map(|&(k, v)| {
            if k == "date_field" {
                (k, "none")
            } else {
                (k, v)
            }
        })
        .collect();
    let r = b.hx_post(&svc, "/reports/compose", &all_time).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let preview = from_id(&r.body, "report-preview");
    assert!(preview.contains("(all time)"), "{preview}");
    assert!(!preview.contains("last 90 days"), "{preview}");
    // Removing the filter counts all four.
    let r = b
        .hx_post(
            &svc,
            "/reports/compose",
            &[&by_month[..], &[("op", "remove_filter:0")]].concat(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(!r.body.contains("name=\"f.0.field\""), "{}", r.body);
    assert!(
        from_id(&r.body, "report-preview").contains(">4</td>"),
        "{}",
        r.body
    );

    // No name: 422, the error in the page, and everything typed still there.
    let mut nameless = won_by_owner("");
    nameless.extend([
        ("f.1.field", "value"),
        ("f.1.op", "gte"),
        ("f.1.value", "750"),
    ]);
    let r = b.post_form(&svc, "/reports", &nameless).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let errors = from_id(&r.body, "report-errors");
    assert!(errors.contains("Name: Give it a name."), "{}", r.body);
    assert!(r.body.contains("value=\"750\""), "{}", r.body);
    assert!(r.body.contains("value=\"Who brings it in\""), "{}", r.body);
    assert!(
        r.body.contains("<option value=\"owner\" selected>"),
        "{}",
        r.body
    );

    // A word where an amount belongs names the filter.
    let mut bad = won_by_owner("Won by owner");
    bad.retain(|(k, _)| !k.starts_with("f.0."));
    bad.extend([
        ("f.0.field", "value"),
        ("f.0.op", "gte"),
        ("f.0.value", "lots"),
    ]);
    let r = b.post_form(&svc, "/reports", &bad).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(
        from_id(&r.body, "report-errors").contains("Filter 1:"),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("class=\"wf-row has-error\" id=\"filter-0\""),
        "{}",
        r.body
    );
    assert!(r.body.contains("value=\"lots\""), "{}", r.body);
    assert!(
        r.body.contains("value=\"Won by owner\""),
        "the name kept: {}",
        r.body
    );

    // A good save lands on the report, which shows its title, chart and figures.
    let r = b
        .post_form(&svc, "/reports", &won_by_owner("Won by owner"))
        .await;
    let id = saved_id(&r, "/reports/");
    let shown = b.get(&svc, &format!("/reports/{id}")).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    assert!(
        shown.body.contains("<h1>Won by owner</h1>"),
        "{}",
        shown.body
    );
    assert!(
        shown.body.contains("<svg class=\"chart report-chart\""),
        "{}",
        shown.body
    );
    assert!(shown.body.contains(">2,000.00</td>"), "{}", shown.body);
    assert!(shown.body.contains(">1,000.00</td>"), "{}", shown.body);
    assert!(
        shown.body.contains(&format!("href=\"/reports/{id}/edit\"")),
        "its author may edit it: {}",
        shown.body
    );
    let csv = b
        .get(&svc, &href(&shown.body, &format!("/reports/{id}/export?")))
        .await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.body);
    assert!(
        csv.body.starts_with("Owner,Currency,Sum of value"),
        "{}",
        csv.body
    );
    // It is listed, and the same name again is refused by name.
    let index = b.get(&svc, "/reports").await;
    assert!(
        index
            .body
            .contains(&format!("<a href=\"/reports/{id}\">Won by owner</a>")),
        "{}",
        index.body
    );
    let r = b
        .post_form(&svc, "/reports", &won_by_owner("won by owner"))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(
        r.body.contains("Name: Another report has this name."),
        "{}",
        r.body
    );

    // Editing opens the saved definition; a save from a stale form is refused, not lost.
    let edit = b.get(&svc, &format!("/reports/{id}/edit")).await;
    assert_eq!(edit.status, StatusCode::OK, "{}", edit.body);
    assert!(
        edit.body.contains("<h1>Edit Won by owner</h1>"),
        "{}",
        edit.body
    );
    assert!(
        edit.body.contains("<option value=\"owner\" selected>"),
        "{}",
        edit.body
    );
    assert!(edit.body.contains("value=\"won\""), "{}", edit.body);
    let mut renamed = won_by_owner("Won value by owner");
    renamed.retain(|(k, _)| *k != "id" && *k != "version");
    renamed.extend([("id", id.as_str()), ("version", "1")]);
    let r = b.post_form(&svc, &format!("/reports/{id}"), &renamed).await;
    assert_eq!(saved_id(&r, "/reports/"), id);
    let r = b.post_form(&svc, &format!("/reports/{id}"), &renamed).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.body.contains("id=\"report-errors\""), "{}", r.body);
    let shown = b.get(&svc, &format!("/reports/{id}")).await;
    assert!(
        shown.body.contains("<h1>Won value by owner</h1>"),
        "{}",
        shown.body
    );
}

#[actix_web::test]
async fn a_reps_report_is_private_and_a_rep_sees_only_their_own_figures() {
    let f = fixture().await;
    let svc = f.t.service().await;
    let mut rep1 = signed_in(&svc, "rep1@reports.test").await;
    let mut rep2 = Browser::from_ip("10.1.2.4");
    rep2.sign_in(&svc, "rep2@reports.test", PASSWORD).await;
    let mut manager = Browser::from_ip("10.1.2.5");
    manager
        .sign_in(&svc, "manager@reports.test", PASSWORD)
        .await;

    // Sharing needs report:write: the rep's builder does not offer it, the manager's does.
    let page = rep1.get(&svc, "/reports/new").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(!page.body.contains("name=\"shared\""), "{}", page.body);
    let page = manager.get(&svc, "/reports/new").await;
    assert!(page.body.contains("name=\"shared\""), "{}", page.body);
    assert!(
        page.body.contains("<option value=\"sales_rep\">"),
        "{}",
        page.body
    );

    // The rep's preview counts only the rep's own deals.
    let r = rep1
        .hx_post(&svc, "/reports/compose", &won_by_owner("Mine"))
        .await;
    let preview = from_id(&r.body, "report-preview");
    assert!(preview.contains(">rep1@reports.test</td>"), "{preview}");
    assert!(!preview.contains("rep2@reports.test"), "{preview}");

    let r = rep1
        .post_form(&svc, "/reports", &won_by_owner("My wins"))
        .await;
    let id = saved_id(&r, "/reports/");
    let mine = rep1.get(&svc, &format!("/reports/{id}")).await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
    assert!(mine.body.contains(">1,000.00</td>"), "{}", mine.body);
    assert!(!mine.body.contains(">2,000.00</td>"), "{}", mine.body);
    let index = rep1.get(&svc, "/reports").await;
    assert!(index.body.contains("My wins"), "{}", index.body);
    assert!(index.body.contains("Only you"), "{}", index.body);

    // Another rep neither finds it nor sees it listed.
    for path in [
        format!("/reports/{id}"),
        format!("/reports/{id}/edit"),
        format!("/reports/{id}/export?format=csv"),
    ] {
        let r = rep2.get(&svc, &path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.body);
    }
    let index = rep2.get(&svc, "/reports").await;
    assert_eq!(index.status, StatusCode::OK, "{}", index.body);
    assert!(!index.body.contains("My wins"), "{}", index.body);
    let r = rep2
        .post_form(&svc, &format!("/reports/{id}/delete"), &[])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);

    // A rep who forges the sharing field is refused, and nothing is saved.
    let mut shared = won_by_owner("Everyone wins");
    shared.push(("shared", "everyone"));
    let r = rep1.post_form(&svc, "/reports", &shared).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let index = rep1.get(&svc, "/reports").await;
    assert!(!index.body.contains("Everyone wins"), "{}", index.body);

    // The standard report shows the rep their own row only.
    let page = rep1.get(&svc, "/reports/standard/sales-by-rep").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains(">rep1@reports.test</td>"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("rep2@reports.test"), "{}", page.body);
    assert!(!page.body.contains(">2,000.00</td>"), "{}", page.body);
    let csv = rep1
        .get(&svc, "/reports/standard/sales-by-rep/export?format=csv")
        .await;
    assert_eq!(csv.body.lines().count(), 2, "{}", csv.body);
    assert!(!csv.body.contains("rep2@reports.test"), "{}", csv.body);

    // The author deletes it.
    let r = rep1
        .post_form(&svc, &format!("/reports/{id}/delete"), &[])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.header("location"), Some("/reports"));
    let r = rep1.get(&svc, &format!("/reports/{id}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn a_dashboard_shows_its_tiles_for_one_period_and_is_emailed_on_a_schedule() {
    let f = fixture().await;
    let svc = f.t.service().await;
    let mut m = signed_in(&svc, "manager@reports.test").await;
    let r = m
        .post_form(&svc, "/reports", &won_by_owner("Won by owner"))
        .await;
    let report = saved_id(&r, "/reports/");
    let report_tile = format!("report:{report}");

    // The form offers key figures, standard reports and the saved report.
    let form = m.get(&svc, "/dashboards/new").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    for choice in ["kpi:winRate", "standard:sales-by-rep", report_tile.as_str()] {
        assert!(
            form.body
                .contains(&format!("name=\"tile\" value=\"{choice}\"")),
            "{choice}: {}",
            form.body
        );
    }
    // No name, no dashboard.
    let r = m
        .post_form(
            &svc,
            "/dashboards",
            &[("name", ""), ("tile", "kpi:winRate")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("id=\"dashboard-errors\""), "{}", r.body);

    let r = m
        .post_form(
            &svc,
            "/dashboards",
            &[
                ("version", "0"),
                ("name", "Monday review"),
                ("shared", "everyone"),
                ("tile", "kpi:winRate"),
                ("tile", "standard:sales-by-rep"),
                ("tile", &report_tile),
                ("wide", "standard:sales-by-rep"),
            ],
        )
        .await;
    let dash = saved_id(&r, "/dashboards/");
    let page = m.get(&svc, &format!("/dashboards/{dash}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("<h1>Monday review</h1>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Shared with: Everyone"), "{}", page.body);
    let tiles = from_id(&page.body, "dashboard-page");
    let (kpi, standard, saved) = (
        tiles
            .find(">Win rate</h2>")
            .expect("the key figure's title"),
        tiles
            .find(">Sales by rep</a></h2>")
            .expect("the standard report"),
        tiles
            .find(">Won by owner</a></h2>")
            .expect("the saved report"),
    );
    assert!(kpi < standard && standard < saved, "in the form's order");
    // 2 won and 1 lost closed in the period.
    assert!(tiles.contains("<p class=\"kpi-value\">67%</p>"), "{tiles}");
    assert!(tiles.contains("2 won, 1 lost"), "{tiles}");
    assert!(tiles.contains("tile tile-wide"), "{tiles}");
    assert!(tiles.contains(">2,000.00</td>"), "{tiles}");
    assert!(
        page.body
            .contains(&format!("href=\"/dashboards/{dash}/edit\"")),
        "{}",
        page.body
    );
    assert!(page.body.contains("id=\"schedules\""), "{}", page.body);
    let index = m.get(&svc, "/reports").await;
    assert!(
        index
            .body
            .contains(&format!("<a href=\"/dashboards/{dash}\">Monday review</a>")),
        "{}",
        index.body
    );

    // One period for every tile.
    let old = m
        .get(
            &svc,
            &format!("/dashboards/{dash}?from=2020-01-01&to=2020-01-31"),
        )
        .await;
    assert_eq!(old.status, StatusCode::OK, "{}", old.body);
    assert_eq!(
        old.body.matches("No records in this period.").count(),
        2,
        "{}",
        old.body
    );
    assert!(
        old.body.contains("name=\"from\" value=\"2020-01-01\""),
        "{}",
        old.body
    );
    assert!(!old.body.contains(">67%<"), "{}", old.body);
    // A reversed period is said inline, and the tiles show the last 90 days.
    let reversed = m
        .get(
            &svc,
            &format!("/dashboards/{dash}?from=2026-02-01&to=2026-01-01"),
        )
        .await;
    assert_eq!(reversed.status, StatusCode::OK, "{}", reversed.body);
    assert!(
        reversed.body.contains("The start is after the end"),
        "{}",
        reversed.body
    );
    assert!(reversed.body.contains(">67%</p>"), "{}", reversed.body);

    // A rep sees the shared dashboard with their own figures, and may not change it.
    let mut rep = Browser::from_ip("10.1.2.4");
    rep.sign_in(&svc, "rep1@reports.test", PASSWORD).await;
    let seen = rep.get(&svc, &format!("/dashboards/{dash}")).await;
    assert_eq!(seen.status, StatusCode::OK, "{}", seen.body);
    assert!(
        seen.body.contains("<h1>Monday review</h1>"),
        "{}",
        seen.body
    );
    assert!(
        seen.body.contains("<p class=\"kpi-value\">50%</p>"),
        "rep 1 won 1 and lost 1: {}",
        seen.body
    );
    assert!(!seen.body.contains("rep2@reports.test"), "{}", seen.body);
    assert!(
        !seen.body.contains(&format!("/dashboards/{dash}/edit")),
        "{}",
        seen.body
    );
    assert!(!seen.body.contains("id=\"schedules\""), "{}", seen.body);
    let r = rep.get(&svc, &format!("/dashboards/{dash}/edit")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = rep
        .post_form(&svc, &format!("/dashboards/{dash}/delete"), &[])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // A schedule without recipients is refused inline.
    let r = m
        .post_form(
            &svc,
            &format!("/dashboards/{dash}/schedules"),
            &[
                ("cadence", "weekly"),
                ("weekday", "1"),
                ("monthday", "1"),
                ("hour", "7"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let error = from_id(&r.body, "schedule-error");
    assert!(
        error.starts_with("id=\"schedule-error\">Choose 1 to"),
        "{error}"
    );
    assert!(r.body.contains("<h1>Monday review</h1>"), "{}", r.body);

    let r = m
        .post_form(
            &svc,
            &format!("/dashboards/{dash}/schedules"),
            &[
                ("cadence", "weekly"),
                ("weekday", "1"),
                ("monthday", "1"),
                ("hour", "7"),
                ("recipient", &f.rep1_id),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(
        r.header("location"),
        Some(format!("/dashboards/{dash}").as_str())
    );
    let page = m.get(&svc, &format!("/dashboards/{dash}")).await;
    let schedules = from_id(&page.body, "schedules");
    assert!(
        schedules.contains("Every Monday at 07:00 UTC to 1 person"),
        "{schedules}"
    );
    assert!(!schedules.contains("schedule-error"), "{schedules}");
    let r = m
        .post_form(
            &svc,
            &format!("/dashboards/{dash}/schedules"),
            &[
                ("cadence", "monthly"),
                ("weekday", "1"),
                ("monthday", "15"),
                ("hour", "18"),
                ("recipient", &f.rep1_id),
                ("recipient", &f.manager_id),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = m.get(&svc, &format!("/dashboards/{dash}")).await;
    assert!(
        page.body
            .contains("On day 15 of every month at 18:00 UTC to 2 people"),
        "{}",
        page.body
    );

    // A manager in New York schedules 7 on their own clocks, and the form says so.
    let r = m
        .post_form(
            &svc,
            "/account/preferences",
            &[("time_zone", "America/New_York"), ("locale", "en-US")],
        )
        .await;
    assert!(
        r.status.is_success() || r.status.is_redirection(),
        "{}",
        r.body
    );
    let page = m.get(&svc, &format!("/dashboards/{dash}")).await;
    assert!(page.body.contains("(America/New_York)"), "{}", page.body);
    let r = m
        .post_form(
            &svc,
            &format!("/dashboards/{dash}/schedules"),
            &[
                ("cadence", "daily"),
                ("weekday", "1"),
                ("monthday", "1"),
                ("hour", "7"),
                ("recipient", &f.manager_id),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = m.get(&svc, &format!("/dashboards/{dash}")).await;
    let schedules = from_id(&page.body, "schedules");
    assert!(
        schedules.contains("Every day at 07:00 America/New_York to 1 person")
            && schedules.contains("Every Monday at 07:00 UTC to 1 person"),
        "{schedules}"
    );

    // The report on the dashboard is not deleted from under it.
    let r = m
        .post_form(&svc, &format!("/reports/{report}/delete"), &[])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(
        r.header("location"),
        Some(format!("/reports/{report}").as_str())
    );
    assert_eq!(
        m.get(&svc, &format!("/reports/{report}")).await.status,
        StatusCode::OK
    );

    // Deleting the dashboard goes back to the reports, and it is gone.
    let r = m
        .post_form(&svc, &format!("/dashboards/{dash}/delete"), &[])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.header("location"), Some("/reports"));
    let r = m.get(&svc, &format!("/dashboards/{dash}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let index = m.get(&svc, "/reports").await;
    assert!(!index.body.contains("Monday review"), "{}", index.body);
    let r = m
        .post_form(&svc, &format!("/reports/{report}/delete"), &[])
        .await;
    assert_eq!(r.header("location"), Some("/reports"), "{}", r.body);
}

#[actix_web::test]
async fn a_marketer_gets_no_sales_reports_in_the_console() {
    let f = fixture().await;
    let org = {
        let mut c = f.t.pool.get().unwrap();
        rapport::domain::orgs::service::find_org(&mut c, "reports").unwrap()
    };
    f.t.user(&org, "marketer@reports.test", "marketer");
    let svc = f.t.service().await;
    let mut b = signed_in(&svc, "marketer@reports.test").await;

    let index = b.get(&svc, "/reports").await;
    assert_eq!(index.status, StatusCode::OK, "{}", index.body);
    assert!(!index.body.contains("Sales by rep"), "{}", index.body);
    assert!(
        !index.body.contains("/reports/standard/sales-by-rep"),
        "{}",
        index.body
    );
    assert!(
        index
            .body
            .contains("<a href=\"/reports/standard/activity-by-rep\">Activity by rep</a>"),
        "{}",
        index.body
    );
    assert!(index.body.contains("Segment growth"), "{}", index.body);

    let r = b.get(&svc, "/reports/standard/sales-by-rep").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = b
        .get(&svc, "/reports/standard/sales-by-rep/export?format=csv")
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(!r.body.contains("rep1@reports.test"), "{}", r.body);

    // The builder starts on clients and does not offer deals; a forged deals form is refused.
    let page = b.get(&svc, "/reports/new").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body
            .contains("<option value=\"clients\" selected>Clients</option>"),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains("<option value=\"deals\""),
        "{}",
        page.body
    );
    let r = b
        .hx_post(&svc, "/reports/compose", &won_by_owner("Sales"))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = b.post_form(&svc, "/reports", &won_by_owner("Sales")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // Activity the marketer may see.
    let r = b.get(&svc, "/reports/standard/activity-by-rep").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains(">rep1@reports.test</td>"), "{}", r.body);
}
