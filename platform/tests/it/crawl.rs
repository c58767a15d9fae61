//! "Every action shown is allowed": as each demo role, crawl the console from the dashboard,
//! following every link it shows, and post to every form it shows; none may answer 403. A
//! button a role cannot use is a defect even when the server refuses it correctly. Every page
//! is also read as a person reads it: no record id (UUID) and no raw enum value (`read_only`).

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use actix_web::http::StatusCode;

use crate::support::*;

/// Pages visited per role, and visits per page shape (a client profile stands for all).
const PAGES: usize = 400;
const PER_SHAPE: usize = 2;

/// `/clients/0192…/edit` → `/clients/:id/edit`: pages of one kind share a shape.
fn shape(path: &str) -> String {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    path.split('/')
        .map(|seg| {
            if seg.len() >= 16 && seg.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
                ":id"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Values of `attr="…"` in the page, unescaped enough for paths.
fn attrs(html: &str, attr: &str) -> Vec<String> {
    let needle = format!(" {attr}=\"");
    html.match_indices(&needle)
        .filter_map(|(i, _)| {
            let rest = &html[i + needle.len()..];
            rest.find('"').map(|end| rest[..end].replace("&amp;", "&"))
        })
        .collect()
}

/// Where the console itself leads: same-site paths, not files, sign-out or assets.
fn followable(href: &str) -> bool {
    href.starts_with('/')
        && !href.starts_with("//")
        && !href.starts_with("/assets")
        && !href.starts_with("/static")
        && !href.contains("logout")
}

/// Form targets that post: `hx-post` and `<form method="post" action>`.
fn post_targets(html: &str) -> Vec<String> {
    let mut out = attrs(html, "hx-post");
    for (i, _) in html.match_indices("<form") {
        let tag = &html[i..html[i..].find('>').map_or(html.len(), |e| i + e)];
        if tag.contains("method=\"post\"") {
            out.extend(attrs(tag, "action"));
        }
    }
    out.into_iter().filter(|a| followable(a)).collect()
}

/// Where a tag stood in [`visible_text`]: text nodes stay apart, so a pill or a cell that
/// holds nothing but a stored value can be told from the same word inside a sentence.
const TAG: char = '\u{1f}';

/// The text a person reads: tags, scripts, styles and code removed, entities left as they are.
fn visible_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        out.push(TAG);
        let tail = &rest[open..];
        // Code is what one types (the API reference's field names and values), not prose.
        let skip_to = ["script", "style", "template", "code"]
            .iter()
            .find_map(|t| {
                tail[1..]
                    .starts_with(t)
                    .then(|| tail.find(&format!("</{t}>")).map(|e| e + t.len() + 3))
                    .flatten()
            });
        let end = skip_to.unwrap_or_else(|| tail.find('>').map_or(tail.len(), |e| e + 1));
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// What should never reach a person: record ids (UUIDs) and raw enum values (`read_only`,
/// `no_answer`): snake_case words.
fn raw_words(text: &str) -> Vec<String> {
    let is_uuid = |w: &str| {
        let parts: Vec<&str> = w.split('-').collect();
        parts.len() == 5
            && parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
            && w.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
    };
    let is_snake = |w: &str| {
        w.contains('_')
            && !w.starts_with('_')
            && !w.ends_with('_')
            && w.chars().all(|c| c.is_ascii_lowercase() || c == '_')
    };
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .filter(|w| is_uuid(w) || is_snake(w))
        .map(str::to_string)
        .collect()
}

/// Stored values that are plain lowercase words, so the snake_case check misses them: a
/// status pill or a cell showing `won` or `hubspot` should show "Won" or "HubSpot".
const LOWERCASE_VALUES: &[&str] = &[
    "open",
    "won",
    "lost",
    "draft",
    "sent",
    "accepted",
    "rejected",
    "expired",
    "running",
    "done",
    "pending",
    "dead",
    "queued",
    "delivered",
    "failed",
    "scheduled",
    "paused",
    "cancelled",
    "finished",
    "waiting",
    "hubspot",
    "salesforce",
    "generic",
    "lead",
    "prospect",
    "customer",
    "churned",
    "individual",
    "company",
    "admin",
    "manager",
    "marketer",
    "call",
    "meeting",
    "note",
];

/// A text node (between two tags) that is nothing but one of [`LOWERCASE_VALUES`].
fn raw_values(text: &str) -> Vec<String> {
    text.split(TAG)
        .map(str::trim)
        .filter(|t| LOWERCASE_VALUES.contains(t))
        .map(str::to_string)
        .collect()
}

#[test]
fn raw_values_finds_a_bare_stored_value_but_not_the_word_in_prose() {
    let html = "<p class=\"meta\"><span class=\"pill\">won</span> · Proposal</p>\
                <td><a href=\"/imports/1\">a.csv</a> <span class=\"muted\">hubspot</span></td>\
                <p>The deal is open until Friday; 3 won, 1 lost.</p><span class=\"pill\">Won</span>";
    assert_eq!(raw_values(&visible_text(html)), vec!["won", "hubspot"]);
}

#[test]
fn raw_words_finds_ids_and_enum_values_but_not_prose() {
    let html =
        "<p title=\"read_only\">Role: read_only, owner 01936b2e-7c4a-7d2e-9f3a-1b2c3d4e5f60</p>\
                <script>let no_answer = 1;</script><p>A well-known e-mail, <code>opt_in</code></p>";
    assert_eq!(
        raw_words(&visible_text(html)),
        vec!["read_only", "01936b2e-7c4a-7d2e-9f3a-1b2c3d4e5f60"]
    );
}

#[actix_web::test]
async fn every_link_and_form_a_role_is_shown_is_allowed() {
    let t = TestApp::new().await;
    rapport::cli::serve::seed_demo(&t.pool, &t.state.config).expect("demo data");
    let app = t.service().await;
    let mut problems = Vec::new();
    // The roles that may change least first: an admin's posts (deletes among them) come last.
    for role in [
        "read.only",
        "marketer",
        "service.rep",
        "sales.rep",
        "manager",
        "admin",
    ] {
        let mut b = Browser::new();
        let email = format!("{role}@demo.rapport.test");
        b.sign_in(&app, &email, rapport::cli::serve::DEMO_PASSWORD)
            .await;
        let mut queue = VecDeque::from(["/".to_string()]);
        let mut seen = HashSet::new();
        let mut shapes: HashMap<String, usize> = HashMap::new();
        let mut posts = BTreeSet::new();
        while let Some(path) = queue.pop_front() {
            if seen.len() >= PAGES || !seen.insert(path.clone()) {
                continue;
            }
            let n = shapes.entry(shape(&path)).or_default();
            *n += 1;
            if *n > PER_SHAPE {
                continue;
            }
            let r = b.get(&app, &path).await;
            if r.status == StatusCode::FORBIDDEN {
                problems.push(format!("{role}: GET {path} is shown but answers 403"));
            }
            let html = r
                .header("content-type")
                .is_some_and(|c| c.starts_with("text/html"));
            if !r.status.is_success() || !html {
                continue;
            }
            let text = visible_text(&r.body);
            let raw: Vec<String> = raw_words(&text)
                .into_iter()
                .chain(raw_values(&text))
                .collect();
            if !raw.is_empty() {
                problems.push(format!("{role}: GET {path} shows {raw:?}"));
            }
            for href in attrs(&r.body, "href")
                .into_iter()
                .chain(attrs(&r.body, "hx-get"))
            {
                let href = href.split('#').next().unwrap_or_default().to_string();
                if followable(&href) && !seen.contains(&href) {
                    queue.push_back(href);
                }
            }
            for target in post_targets(&r.body) {
                posts.insert((target, path.clone()));
            }
        }
        eprintln!("{role}: {} pages, {} forms", seen.len(), posts.len());
        assert!(seen.len() > 20, "{role}: the crawl reached only {seen:?}");
        // Posting with nothing filled in: an allowed action answers with what is missing (or
        // does it); only a refused one answers 403.
        let mut posted: HashMap<String, usize> = HashMap::new();
        for (target, from) in posts {
            let n = posted.entry(shape(&target)).or_default();
            *n += 1;
            if *n > PER_SHAPE {
                continue;
            }
            let r = b.hx_post(&app, &target, &[]).await;
            if r.status == StatusCode::FORBIDDEN {
                problems.push(format!(
                    "{role}: the form posting to {target} (on {from}) answers 403"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
