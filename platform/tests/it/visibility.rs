//! The record rule, written once in `ops`: a user without `client:oversee` reaches only
//! the clients assigned to them. The same question asked through every operation that
//! shows a client (list, get, relations, duplicates, merge summary) and through both
//! surfaces gets the same answer for each role.

use actix_web::http::{Method, StatusCode};
use serde_json::json;

use crate::support::*;
use rapport::domain::audit::AuditContext;
use rapport::ops::{self, Scope};

async fn scope_of(t: &TestApp, org: &str, user: &str) -> Scope {
    let revision = rapport::domain::policy::store::revision(&mut t.pool.get().unwrap()).unwrap();
    t.state.authz.refresh(revision).await.unwrap();
    let rights = t.state.authz.permissions(user, org).await.unwrap();
    let mut audit = AuditContext::cli(org);
    audit.actor_user_id = Some(user.to_string());
    Scope::user(audit, user, rights, rapport::web::scope::handles(&t.state))
}

#[actix_web::test]
async fn every_operation_gives_one_answer_per_role() {
    let t = TestApp::new().await;
    let app = t.service().await;
    let org = t.org("Acme");
    let manager = t.user(&org, "meg@acme.test", "manager");
    let ann = t.user(&org, "ann@acme.test", "sales_rep");
    let bob = t.user(&org, "bob@acme.test", "sales_rep");
    let boss = scope_of(&t, &org.id, &manager).await;
    let mine = |name: &str, owner: &str| {
        let mut m = serde_json::Map::new();
        m.insert("lastName".into(), json!(name));
        m.insert(
            "email".into(),
            json!(format!("{}@x.test", name.to_lowercase())),
        );
        m.insert("assignedTo".into(), json!(owner));
        m
    };
    let a = ops::clients::create(&boss, mine("Annsclient", &ann))
        .await
        .unwrap();
    let b = ops::clients::create(&boss, mine("Bobsclient", &bob))
        .await
        .unwrap();
    let gone = ops::clients::create(&boss, mine("Trashed", &ann))
        .await
        .unwrap();
    for other in [&b.row.id, &gone.row.id] {
        ops::clients::relate(&boss, a.row.id.clone(), other.clone(), "knows".into())
            .await
            .unwrap();
    }
    ops::clients::trash(&boss, gone.row.id.clone(), None)
        .await
        .unwrap();
    // Bob's client has a twin, merged by the manager; the summary names clients only
    // for those who may see them.
    let twin = ops::clients::create(&boss, mine("Bobsclient", &bob))
        .await
        .unwrap();
    let (_, undo) = ops::duplicates::merge(&boss, b.row.id.clone(), twin.row.id.clone(), vec![])
        .await
        .unwrap();

    for (who, user, sees_bobs) in [("manager", &manager, true), ("ann", &ann, false)] {
        let s = scope_of(&t, &org.id, user).await;
        let listed: Vec<String> = ops::clients::list(&s, vec![], false)
            .await
            .unwrap()
            .data
            .into_iter()
            .map(|v| v.row.id)
            .collect();
        assert!(listed.contains(&a.row.id), "{who}");
        assert_eq!(listed.contains(&b.row.id), sees_bobs, "{who}: list");
        assert!(
            !listed.contains(&gone.row.id),
            "{who}: the trash is not listed"
        );
        let got = ops::clients::get(&s, b.row.id.clone()).await;
        assert_eq!(got.is_ok(), sees_bobs, "{who}: get");
        let (_, rels) = ops::clients::relations(&s, a.row.id.clone()).await.unwrap();
        let related: Vec<&str> = rels.iter().map(|r| r.client_id.as_str()).collect();
        assert_eq!(
            related.contains(&b.row.id.as_str()),
            sees_bobs,
            "{who}: relations"
        );
        assert!(
            !related.contains(&gone.row.id.as_str()),
            "{who}: relation to the trash"
        );
        let twins = ops::duplicates::of_client(&s, a.row.id.clone())
            .await
            .unwrap();
        assert!(
            twins.iter().all(|c| c.id != b.row.id || sees_bobs),
            "{who}: twins"
        );
        let summary = ops::duplicates::merged(&s, undo.clone()).await.unwrap();
        assert_eq!(
            !summary.survivor.is_empty(),
            sees_bobs,
            "{who}: merge summary"
        );

        // The surfaces answer as the operations do.
        let token = t.token(&org, user);
        let api_rels = send(
            &app,
            api(
                Method::GET,
                &format!("/api/clients/{}/relations", a.row.id),
                &token,
            ),
        )
        .await;
        assert_eq!(api_rels.status, StatusCode::OK);
        assert_eq!(
            api_rels.body.contains("Bobsclient"),
            sees_bobs,
            "{who}: API relations"
        );
        assert!(
            !api_rels.body.contains("Trashed"),
            "{who}: API relation to the trash"
        );
        let email = format!("{who}@acme.test").replace("manager", "meg");
        let mut browser = Browser::new();
        browser.sign_in(&app, &email, PASSWORD).await;
        let profile = browser.get(&app, &format!("/clients/{}", a.row.id)).await;
        assert_eq!(profile.status, StatusCode::OK);
        assert_eq!(
            profile.body.contains("Bobsclient"),
            sees_bobs,
            "{who}: profile"
        );
        assert!(
            !profile.body.contains("Trashed"),
            "{who}: profile relation to the trash"
        );
        let merged = browser.get(&app, &format!("/merges/{undo}")).await;
        assert_eq!(merged.status, StatusCode::OK);
        assert_eq!(
            merged.body.contains("Bobsclient"),
            sees_bobs,
            "{who}: merge page"
        );
    }
}
