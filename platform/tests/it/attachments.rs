//! Attachments: typed by content, named safely, downloaded with an authorization check and
//! `Content-Disposition`, images inline, sensitive downloads audited, deletes to the trash.

use actix_web::http::{Method, StatusCode};
use serde_json::json;

use crate::support::*;

#[actix_web::test]
async fn files_on_a_client_upload_download_and_delete() {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    let m = t.user(&org, "manager@acme.test", "manager");
    let manager = t.token(&org, &m);
    let other = t.org("Globex");
    let o = t.user(&other, "admin@globex.test", "admin");
    let outsider = t.token(&other, &o);
    let app = t.service().await;
    let client = send(
        &app,
        api(Method::POST, "/api/clients", &manager)
            .set_json(json!({"type": "company", "companyName": "Initech"})),
    )
    .await
    .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let up = |token: &str, name: &str, body: Vec<u8>| {
        api(
            Method::POST,
            &format!("/api/clients/{client}/attachments?name={name}"),
            token,
        )
        .insert_header(("content-type", "application/octet-stream"))
        .set_payload(body)
    };
    let pdf = b"%PDF-1.7\n1 0 obj <<>> endobj\n".to_vec();
    let r = send(
        &app,
        up(&manager, "..%2F..%2Fetc%2Freport.png", pdf.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let a = r.json();
    assert_eq!(a["fileName"], "report.png", "no directories in names");
    assert_eq!(
        a["contentType"], "application/pdf",
        "the content decides, not the name"
    );
    let id = a["id"].as_str().unwrap().to_string();
    let list = send(
        &app,
        api(
            Method::GET,
            &format!("/api/clients/{client}/attachments"),
            &manager,
        ),
    )
    .await
    .json();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let got = send(
        &app,
        api(
            Method::GET,
            &format!("/api/attachments/{id}/content"),
            &manager,
        ),
    )
    .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body.as_bytes(), &pdf[..]);
    assert!(got
        .header("content-disposition")
        .unwrap()
        .starts_with("attachment; filename=\"report.png\""));
    assert_eq!(got.header("content-type"), Some("application/pdf"));
    // Images show in place when asked.
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    let img = send(&app, up(&manager, "logo.png", png)).await.json();
    let shown = send(
        &app,
        api(
            Method::GET,
            &format!(
                "/api/attachments/{}/content?inline=1",
                img["id"].as_str().unwrap()
            ),
            &manager,
        ),
    )
    .await;
    assert!(shown
        .header("content-disposition")
        .unwrap()
        .starts_with("inline"));
    // Another organization sees nothing; an empty file is refused.
    assert_eq!(
        send(
            &app,
            api(
                Method::GET,
                &format!("/api/attachments/{id}/content"),
                &outsider
            )
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(&app, up(&outsider, "x.txt", b"hello".to_vec()))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(&app, up(&manager, "empty.txt", Vec::new()))
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // Sensitive files: every download is audited.
    let secret = send(
        &app,
        api(
            Method::POST,
            &format!("/api/clients/{client}/attachments?name=contract.txt&sensitive=true"),
            &manager,
        )
        .set_payload("salary: 100"),
    )
    .await
    .json();
    assert_eq!(secret["sensitive"], true);
    for _ in 0..2 {
        send(
            &app,
            api(
                Method::GET,
                &format!(
                    "/api/attachments/{}/content",
                    secret["id"].as_str().unwrap()
                ),
                &manager,
            ),
        )
        .await;
    }
    {
        use diesel::prelude::*;
        use rapport::db::schema::audit_log;
        let mut c = t.pool.get().unwrap();
        let n: i64 = audit_log::table
            .filter(audit_log::action.eq("attachment.download"))
            .count()
            .get_result(&mut c)
            .unwrap();
        assert_eq!(n, 2);
    }
    // Deleted: gone from the list and the download.
    assert_eq!(
        send(
            &app,
            api(Method::DELETE, &format!("/api/attachments/{id}"), &manager)
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        send(
            &app,
            api(
                Method::GET,
                &format!("/api/attachments/{id}/content"),
                &manager
            )
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );

    // The console: the Files card, an upload, a download.
    let mut b = Browser::new();
    b.sign_in(&app, "manager@acme.test", PASSWORD).await;
    let r = b
        .hx_put_raw(
            &app,
            &format!("/clients/{client}/attachments/upload?name=minutes.txt"),
            "text/plain",
            b"We agreed.".to_vec(),
        )
        .await;
    assert!(r.header("HX-Redirect").is_some(), "{}", r.body);
    let profile = b.get(&app, &format!("/clients/{client}")).await.body;
    assert!(
        profile.contains("id=\"files\"")
            && profile.contains("minutes.txt")
            && profile.contains("logo.png")
    );
    let href_at = profile.find("minutes.txt").unwrap();
    let start = profile[..href_at].rfind("/attachments/").unwrap();
    let link = &profile[start..profile[start..].find('"').unwrap() + start];
    let file = b.get(&app, link).await;
    assert_eq!(file.body, "We agreed.");
}
