//! Console rendering: page, fragment and history restore; errors; the Users page.

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use sha2::Digest;

use crate::support::*;

async fn signed_in_admin() -> (TestApp, Browser) {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    t.user(&org, "admin@acme.test", "admin");
    (t, Browser::new())
}

#[actix_web::test]
async fn pages_fragments_and_history_restores() {
    let (t, mut b) = signed_in_admin().await;
    let app = t.service().await;
    b.sign_in(&app, "admin@acme.test", PASSWORD).await;
    for path in [
        "/",
        "/exports",
        "/admin/users",
        "/admin/permissions",
        "/admin/audit",
        "/account/tokens",
    ] {
        let page = b.get(&app, path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(
            page.body.starts_with("<!doctype html>"),
            "{path} is a full page"
        );
        assert!(page.body.contains("id=\"main\""));
        assert!(
            page.header("vary").unwrap().contains("HX-Request"),
            "{path}"
        );

        let fragment = b.hx_get(&app, path).await;
        assert_eq!(fragment.status, StatusCode::OK);
        assert!(
            !fragment.body.contains("<html"),
            "{path} fragment has no layout"
        );
        assert!(fragment.body.contains("<section class=\"page\""), "{path}");
        assert!(fragment.header("vary").unwrap().contains("HX-Request"));
        // The fragment is exactly what the page embeds.
        assert!(
            page.body.contains(fragment.body.trim()),
            "{path}: page and fragment drifted"
        );

        let restore = b
            .send(
                &app,
                TestRequest::get()
                    .uri(path)
                    .insert_header(("hx-request", "true"))
                    .insert_header(("hx-history-restore-request", "true"))
                    .insert_header((
                        "cookie",
                        format!("rapport_session={}", b.cookie("rapport_session").unwrap()),
                    )),
            )
            .await;
        assert!(
            restore.body.starts_with("<!doctype html>"),
            "{path}: history restore gets the full page"
        );
        assert!(restore.header("vary").unwrap().contains("HX-Request"));
    }
}

#[actix_web::test]
async fn errors_render_for_people() {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    t.user(&org, "rep@acme.test", "sales_rep");
    let app = t.service().await;
    let mut b = Browser::new();
    b.sign_in(&app, "rep@acme.test", PASSWORD).await;

    let missing = b.get(&app, "/no/such/page").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains("<!doctype html>") && missing.body.contains("404"));
    assert!(missing
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));

    let forbidden = b.get(&app, "/admin/users").await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    assert!(
        forbidden.body.contains("Your role may not admin users."),
        "{}",
        forbidden.body
    );

    let hx = b.hx_get(&app, "/admin/permissions").await;
    assert_eq!(hx.status, StatusCode::FORBIDDEN);
    assert_eq!(hx.header("hx-retarget"), Some("#toasts"));
    assert_eq!(hx.header("hx-reswap"), Some("beforeend"));
    assert!(hx.body.contains("class=\"toast toast-error\""));
    assert!(!hx.body.contains("<html"));
}

#[actix_web::test]
async fn admins_manage_users_in_the_console() {
    let (t, mut b) = signed_in_admin().await;
    let app = t.service().await;
    b.sign_in(&app, "admin@acme.test", PASSWORD).await;

    let bad = b
        .hx_post(
            &app,
            "/admin/users",
            &[
                ("email", "nope"),
                ("name", "Nope"),
                ("role", "sales_rep"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("Enter a valid e-mail address."));
    assert!(bad.body.contains("Use at least 10 characters."));
    assert!(
        bad.body.contains("value=\"Nope\""),
        "what was typed is kept"
    );

    let ok = b
        .hx_post(
            &app,
            "/admin/users",
            &[
                ("email", "sam@acme.test"),
                ("name", "Sam"),
                ("role", "sales_rep"),
                ("password", ""),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    assert!(ok.body.contains("sam@acme.test was added"));
    let secret = ok
        .body
        .split("<code class=\"secret\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap();
    assert!(
        Browser::new()
            .sign_in(&app, "sam@acme.test", secret)
            .await
            .status
            == StatusCode::SEE_OTHER
    );

    let mut c = t.pool.get().unwrap();
    let sam = rapport::domain::orgs::store::find_user_by_email(&mut c, "sam@acme.test")
        .unwrap()
        .unwrap();
    let row = b
        .hx_post(
            &app,
            &format!("/admin/users/{}", sam.id),
            &[("version", "1"), ("role", "manager")],
        )
        .await;
    assert_eq!(row.status, StatusCode::OK);
    assert!(
        row.body.starts_with(&format!("<tr id=\"user-{}\"", sam.id)),
        "{}",
        row.body
    );
    assert!(row.body.contains("<option value=\"manager\" selected>"));
    assert!(row.body.contains("hx-swap-oob"), "a toast rides along");

    // A second admin working from the old page sends the old version.
    let stale = b
        .hx_post(
            &app,
            &format!("/admin/users/{}", sam.id),
            &[("version", "1"), ("is_active", "false")],
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert!(stale.body.contains("changed by someone else"));
    let deactivate = b
        .hx_post(
            &app,
            &format!("/admin/users/{}", sam.id),
            &[("version", "2"), ("is_active", "false")],
        )
        .await;
    assert!(deactivate.body.contains("Deactivated"));
    assert!(deactivate.body.contains("Reactivate"));
}

#[actix_web::test]
async fn assets_are_served_with_their_integrity_hash() {
    let t = TestApp::new().await;
    let app = t.service().await;
    let login = send(&app, TestRequest::get().uri("/login")).await;
    assert!(login.body.contains(rapport::web::assets::HTMX_SRI));
    let js = send(
        &app,
        TestRequest::get().uri(rapport::web::assets::HTMX_PATH),
    )
    .await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js.header("cache-control").unwrap().contains("immutable"));
    let digest = sha2::Sha384::digest(js.body.as_bytes());
    let expected = format!("sha384-{}", base64_encode(&digest));
    assert_eq!(
        expected,
        rapport::web::assets::HTMX_SRI,
        "the vendored htmx matches its pinned hash"
    );
    let licence = send(
        &app,
        TestRequest::get().uri("/assets/vendor/htmx-LICENSE.txt"),
    )
    .await;
    assert!(licence.body.contains("Zero-Clause BSD") || licence.body.contains("BSD"));
    // Every page names the tab icon, and it is served.
    assert!(login.body.contains(rapport::web::assets::FAVICON_PATH));
    let icon = send(
        &app,
        TestRequest::get().uri(rapport::web::assets::FAVICON_PATH),
    )
    .await;
    assert_eq!(icon.status, StatusCode::OK);
    assert_eq!(icon.header("content-type"), Some("image/svg+xml"));
    assert_eq!(
        send(&app, TestRequest::get().uri("/assets/nope.js"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The catch-all error toast names a field in words, or not at all: never the request's key.
#[test]
fn a_field_error_reads_without_the_requests_key() {
    use rapport::error::FieldError;
    use rapport::web::console::field_error_in_words as words;
    let cases = [
        (
            "lines[1].unitPrice",
            "Enter a price like 12.50.",
            "Line 2, unit price: Enter a price like 12.50.",
        ),
        (
            "lines[0].name",
            "Name the product or service.",
            "Line 1: Name the product or service.",
        ),
        (
            "name",
            "Name the pipeline (1 to 80 characters).",
            "Name the pipeline (1 to 80 characters).",
        ),
        (
            "rottingDays",
            "Use 1 to 3650 days, or leave it empty.",
            "Rotting days: Use 1 to 3650 days, or leave it empty.",
        ),
        (
            "filter[expectedCloseDate][gte]",
            "Use a date as YYYY-MM-DD.",
            "Expected close date: Use a date as YYYY-MM-DD.",
        ),
        (
            "bundle",
            "this file is not a Rapport plugin bundle",
            "This file is not a Rapport plugin bundle.",
        ),
    ];
    for (field, message, shown) in cases {
        assert_eq!(words(&FieldError::new(field, message)), shown, "{field}");
    }
}
