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

/// A multipart/form-data body with one file part and optional extra text parts.
fn multipart(file_name: &str, bytes: &[u8], extra: &[(&str, &str)]) -> (String, Vec<u8>) {
    let boundary = "----rapport-test-boundary";
    let mut body = Vec::new();
    for (k, v) in extra {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[actix_web::test]
async fn files_on_deals_and_interactions_multipart_limits_and_merge() {
    let t = TestApp::new().await;
    let org = t.org("Acme");
    let m = t.user(&org, "manager@acme.test", "manager");
    let manager = t.token(&org, &m);
    let r = t.user(&org, "rep@acme.test", "sales_rep");
    let rep = t.token(&org, &r);
    let app = t.service().await;
    let new_client = |name: &str| {
        api(Method::POST, "/api/clients", &manager)
            .set_json(json!({"type": "company", "companyName": name}))
    };
    let client = send(&app, new_client("Initech")).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let deal = send(
        &app,
        api(Method::POST, "/api/opportunities", &manager).set_json(json!({
            "name": "Printers", "clientId": client, "value": "1000", "currency": "usd"
        })),
    )
    .await;
    assert_eq!(deal.status, StatusCode::CREATED, "{}", deal.body);
    let deal = deal.json()["id"].as_str().unwrap().to_string();
    let call = send(
        &app,
        api(
            Method::POST,
            &format!("/api/clients/{client}/interactions"),
            &manager,
        )
        .set_json(json!({"type": "call", "subject": "Toner"})),
    )
    .await
    .json()["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Multipart: the file part's name, and a sensitive flag as a part.
    let (ct, body) = multipart("quote v2.pdf", b"%PDF-1.4 quote", &[("sensitive", "true")]);
    let on_deal = send(
        &app,
        api(
            Method::POST,
            &format!("/api/opportunities/{deal}/attachments"),
            &manager,
        )
        .insert_header(("content-type", ct))
        .set_payload(body),
    )
    .await;
    assert_eq!(on_deal.status, StatusCode::CREATED, "{}", on_deal.body);
    let on_deal = on_deal.json();
    assert_eq!(on_deal["fileName"], "quote v2.pdf");
    assert_eq!(on_deal["contentType"], "application/pdf");
    assert_eq!(on_deal["opportunityId"], deal.as_str());
    assert_eq!(on_deal["clientId"], client.as_str());
    assert_eq!(on_deal["sensitive"], true);
    // A form without a file part is refused with the reason.
    let (ct, mut body) = multipart("x.txt", b"x", &[]);
    let text = String::from_utf8_lossy(&body)
        .replace("name=\"file\"; filename=\"x.txt\"", "name=\"note\"");
    body = text.into_bytes();
    let no_file = send(
        &app,
        api(
            Method::POST,
            &format!("/api/opportunities/{deal}/attachments"),
            &manager,
        )
        .insert_header(("content-type", ct))
        .set_payload(body),
    )
    .await;
    assert_eq!(
        no_file.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        no_file.body
    );
    assert!(no_file.body.contains("file"), "{}", no_file.body);

    let (ct, body) = multipart("recording.txt", b"hello, toner", &[]);
    let on_call = send(
        &app,
        api(
            Method::POST,
            &format!("/api/interactions/{call}/attachments"),
            &manager,
        )
        .insert_header(("content-type", ct))
        .set_payload(body),
    )
    .await;
    assert_eq!(on_call.status, StatusCode::CREATED, "{}", on_call.body);
    assert_eq!(on_call.json()["interactionId"], call.as_str());

    // Each parent lists its own files; the client lists its own and its timeline's.
    let names = |v: serde_json::Value| -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["fileName"].as_str().unwrap().to_string())
            .collect()
    };
    let list = |path: String| api(Method::GET, &path, &manager);
    assert_eq!(
        names(
            send(&app, list(format!("/api/opportunities/{deal}/attachments")))
                .await
                .json()
        ),
        vec!["quote v2.pdf"]
    );
    assert_eq!(
        names(
            send(&app, list(format!("/api/interactions/{call}/attachments")))
                .await
                .json()
        ),
        vec!["recording.txt"]
    );
    assert_eq!(
        names(
            send(&app, list(format!("/api/clients/{client}/attachments")))
                .await
                .json()
        ),
        vec!["recording.txt"]
    );
    // A rep who is not on the deal neither sees nor uploads its files.
    for req in [
        api(
            Method::GET,
            &format!("/api/opportunities/{deal}/attachments"),
            &rep,
        ),
        api(
            Method::POST,
            &format!("/api/opportunities/{deal}/attachments?name=a.txt"),
            &rep,
        )
        .set_payload("a"),
        api(
            Method::GET,
            &format!(
                "/api/attachments/{}/content",
                on_deal["id"].as_str().unwrap()
            ),
            &rep,
        ),
    ] {
        let r = send(&app, req).await;
        assert!(
            matches!(r.status, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN),
            "{} {}",
            r.status,
            r.body
        );
    }
    // Over the configured limit (2 MB in tests): 413, nothing stored.
    let big = vec![b'a'; 2 * 1024 * 1024 + 1];
    let too_big = send(
        &app,
        api(
            Method::POST,
            &format!("/api/clients/{client}/attachments?name=big.txt"),
            &manager,
        )
        .set_payload(big.clone()),
    )
    .await;
    assert_eq!(
        too_big.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        too_big.body
    );
    assert!(too_big.body.contains("2 MB"), "{}", too_big.body);
    let (ct, body) = multipart("big.txt", &big, &[]);
    let too_big = send(
        &app,
        api(
            Method::POST,
            &format!("/api/clients/{client}/attachments"),
            &manager,
        )
        .insert_header(("content-type", ct))
        .set_payload(body),
    )
    .await;
    assert_eq!(too_big.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        names(
            send(&app, list(format!("/api/clients/{client}/attachments")))
                .await
                .json()
        )
        .len(),
        1
    );

    // The console: the deal page has a Files card; an interaction takes a file from the
    // timeline and shows it there.
    let mut b = Browser::new();
    b.sign_in(&app, "manager@acme.test", PASSWORD).await;
    let page = b.get(&app, &format!("/opportunities/{deal}")).await.body;
    assert!(
        page.contains("id=\"files\"") && page.contains("quote v2.pdf"),
        "{page}"
    );
    let r = b
        .hx_put_raw(
            &app,
            &format!("/interactions/{call}/attachments/upload?name=notes.txt"),
            "text/plain",
            b"call notes".to_vec(),
        )
        .await;
    assert_eq!(
        r.header("HX-Redirect"),
        Some(format!("/clients/{client}?attached=1#interaction-{call}").as_str())
    );
    let profile = b.get(&app, &format!("/clients/{client}")).await.body;
    let entry = &profile[profile.find(&format!("id=\"interaction-{call}\"")).unwrap()..];
    let entry = &entry[..entry.find("</li>").unwrap()];
    assert!(
        entry.contains("notes.txt") && entry.contains("recording.txt"),
        "{entry}"
    );
    let r = b
        .hx_put_raw(
            &app,
            &format!("/clients/{client}/attachments/upload?name=huge.txt"),
            "text/plain",
            big,
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.body.contains("at most 2 MB"), "{}", r.body);

    // Merge: the duplicate's files move to the survivor and come back on undo.
    let twin = send(&app, new_client("Initech Inc")).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let twin_file = send(
        &app,
        api(
            Method::POST,
            &format!("/api/clients/{twin}/attachments?name=twin.txt"),
            &manager,
        )
        .set_payload("twin"),
    )
    .await
    .json();
    let merged = send(
        &app,
        api(
            Method::POST,
            &format!("/api/clients/{client}/merge"),
            &manager,
        )
        .set_json(json!({"duplicateId": twin})),
    )
    .await;
    assert_eq!(merged.status, StatusCode::OK, "{}", merged.body);
    let moved = send(
        &app,
        api(
            Method::GET,
            &format!(
                "/api/attachments/{}/content",
                twin_file["id"].as_str().unwrap()
            ),
            &manager,
        ),
    )
    .await;
    assert_eq!(moved.body, "twin");
    assert!(names(
        send(&app, list(format!("/api/clients/{client}/attachments")))
            .await
            .json()
    )
    .contains(&"twin.txt".to_string()));
    let undo = merged.json()["undoId"].as_str().unwrap().to_string();
    let undone = send(
        &app,
        api(Method::POST, &format!("/api/merges/{undo}/undo"), &manager),
    )
    .await;
    assert_eq!(undone.status, StatusCode::OK, "{}", undone.body);
    assert_eq!(
        names(
            send(&app, list(format!("/api/clients/{twin}/attachments")))
                .await
                .json()
        ),
        vec!["twin.txt"]
    );

    // The trash: a deleted file's bytes stay for 30 days, then go.
    let trashed = on_deal["id"].as_str().unwrap().to_string();
    let r = send(
        &app,
        api(
            Method::DELETE,
            &format!("/api/attachments/{trashed}"),
            &manager,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let blob_count = || walk(&t.state.config.data_dir.join("attachments"));
    let before = blob_count();
    assert_eq!(
        rapport::jobs::empty_file_trash(&t.state).await.unwrap(),
        0,
        "not yet"
    );
    {
        use diesel::prelude::*;
        use rapport::db::schema::attachments;
        let mut c = t.pool.get().unwrap();
        diesel::update(attachments::table.filter(attachments::id.eq(&trashed)))
            .set(attachments::deleted_at.eq(Some(rapport::db::now() - chrono::Duration::days(31))))
            .execute(&mut c)
            .unwrap();
    }
    assert_eq!(rapport::jobs::empty_file_trash(&t.state).await.unwrap(), 1);
    assert_eq!(blob_count(), before - 1, "the bytes are gone");

    // Purging a client for good takes its files' bytes too.
    let a = t.user(&org, "admin@acme.test", "admin");
    let admin = t.token(&org, &a);
    let doomed = send(&app, new_client("Doomed Ltd")).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    send(
        &app,
        api(
            Method::POST,
            &format!("/api/clients/{doomed}/attachments?name=x.txt"),
            &manager,
        )
        .set_payload("x"),
    )
    .await;
    let with_file = blob_count();
    send(
        &app,
        api(Method::DELETE, &format!("/api/clients/{doomed}"), &admin),
    )
    .await;
    let purged = send(
        &app,
        api(
            Method::POST,
            &format!("/api/clients/{doomed}/purge"),
            &admin,
        ),
    )
    .await;
    assert_eq!(purged.status, StatusCode::NO_CONTENT, "{}", purged.body);
    assert_eq!(blob_count(), with_file - 1);
}

/// Files under a directory, recursively.
fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        walk(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// The fake bucket's objects: (path, bytes).
type Objects = std::sync::Arc<std::sync::Mutex<Vec<(String, Vec<u8>)>>>;

/// A stand-in for an S3-compatible server: objects in memory under `/{bucket}/{key}`, and
/// only requests that carry a SigV4 signature for the configured key are served.
fn fake_s3() -> (String, Objects) {
    use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
    let objects: Objects = Objects::default();
    let shared = objects.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = HttpServer::new(move || {
                App::new().app_data(web::Data::new(shared.clone())).default_service(web::to(
                    |req: HttpRequest, body: web::Bytes, objects: web::Data<Objects>| async move {
                        let q = req.query_string();
                        if !q.contains("X-Amz-Signature=")
                            || !q.contains("X-Amz-Credential=RAPPORTKEY")
                        {
                            return HttpResponse::Forbidden().body("<Error>unsigned</Error>");
                        }
                        let path = req.path().to_string();
                        let mut objects = objects.lock().unwrap();
                        let found = objects.iter().position(|(k, _)| *k == path);
                        match (req.method().as_str(), found) {
                            ("PUT", _) => {
                                objects.retain(|(k, _)| *k != path);
                                objects.push((path, body.to_vec()));
                                HttpResponse::Ok().finish()
                            }
                            ("GET", Some(i)) => HttpResponse::Ok().body(objects[i].1.clone()),
                            ("DELETE", Some(i)) => {
                                objects.remove(i);
                                HttpResponse::NoContent().finish()
                            }
                            _ => HttpResponse::NotFound().body("<Error>NoSuchKey</Error>"),
                        }
                    },
                ))
            })
            .workers(1)
            .bind("127.0.0.1:0")
            .unwrap();
            tx.send(server.addrs()[0]).unwrap();
            server.run().await
        })
    });
    let addr = rx.recv().unwrap();
    (format!("http://{addr}"), objects)
}

#[actix_web::test]
async fn files_can_live_in_an_s3_compatible_bucket() {
    let (endpoint, objects) = fake_s3();
    let t = TestApp::with_config(|c| {
        c.blob_store = rapport::config::BlobConfig::S3(rapport::domain::blob_s3::S3Config {
            endpoint,
            bucket: "crm-files".into(),
            region: "eu-central-1".into(),
            access_key: "RAPPORTKEY".into(),
            secret_key: "secret".into(),
            prefix: "attachments/".into(),
        });
    })
    .await;
    let org = t.org("Acme");
    let m = t.user(&org, "manager@acme.test", "manager");
    let manager = t.token(&org, &m);
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
    let up = send(
        &app,
        api(
            Method::POST,
            &format!("/api/clients/{client}/attachments?name=offer.txt"),
            &manager,
        )
        .set_payload("the offer"),
    )
    .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.body);
    let id = up.json()["id"].as_str().unwrap().to_string();
    {
        let stored = objects.lock().unwrap();
        assert_eq!(stored.len(), 1);
        assert!(
            stored[0].0.starts_with("/crm-files/attachments/"),
            "{}",
            stored[0].0
        );
        assert_eq!(stored[0].1, b"the offer");
    }
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
    assert_eq!(got.body, "the offer");
    // The bucket lost the object: a clear server error, not an empty file.
    objects.lock().unwrap().clear();
    let lost = send(
        &app,
        api(
            Method::GET,
            &format!("/api/attachments/{id}/content"),
            &manager,
        ),
    )
    .await;
    assert_eq!(
        lost.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        lost.body
    );
}
