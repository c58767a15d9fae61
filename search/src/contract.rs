//! The behaviour every backend must show, run against each in its tests (the Meilisearch
//! backend when `MEILI_URL` is set). Panics on the first difference, naming it.

use crate::{Document, Kind, Query, SearchIndex};

fn client(id: &str, org: &str, title: &str, owner: &str) -> Document {
    Document {
        id: id.into(),
        org_id: org.into(),
        kind: Some(Kind::Client),
        title: title.into(),
        subtitle: String::new(),
        status: Some("active".into()),
        owner: Some(owner.into()),
        ..Document::default()
    }
}

fn query(org: &str, text: &str) -> Query {
    Query {
        org_id: org.into(),
        text: text.into(),
        limit: 10,
        ..Query::default()
    }
}

async fn titles(index: &dyn SearchIndex, q: &Query) -> Vec<String> {
    index
        .search(q)
        .await
        .unwrap_or_else(|e| panic!("search {:?} failed: {e}", q.text))
        .hits
        .into_iter()
        .map(|h| h.title)
        .collect()
}

/// Loads a small world into `index` (ids prefixed per run) and checks it.
pub async fn run(index: &dyn SearchIndex) {
    let org = "contract-org-a";
    let other = "contract-org-b";
    let mut docs = vec![
        client("c-john", org, "John Smith", "u1"),
        client("c-jon", org, "Jonathan Smithers", "u2"),
        client("c-marg", org, "Margaret Hamilton", "u1"),
        client("c-marg2", org, "Margareta Hamiltonson", "u2"),
        client("c-marg3", org, "Marget Hamlin", "u2"),
        client("c-zoe", org, "Zoë Durand", "u1"),
        client("c-other", other, "John Smith", "u9"),
    ];
    docs[0].phones = vec!["+1 (555) 123-4567".into()];
    docs[0].tags = vec!["VIP".into()];
    docs[0].text = vec!["john.smith@acme.test".into(), "Acme Corp".into()];
    docs[2].status = Some("lead".into());
    docs[2].industry = Some("Aerospace".into());
    let mut deal = client("d-apollo", org, "Apollo guidance contract", "u1");
    deal.kind = Some(Kind::Opportunity);
    deal.subtitle = "Margaret Hamilton · Proposal".into();
    docs.push(deal);
    index
        .upsert(docs)
        .await
        .unwrap_or_else(|e| panic!("upsert: {e}"));

    // Typos, swapped letters, partial words.
    let t = titles(index, &query(org, "jonh smiht")).await;
    assert_eq!(
        t.first().map(String::as_str),
        Some("John Smith"),
        "typo tolerance: {t:?}"
    );
    let t = titles(index, &query(org, "mrgaret hamiltn")).await;
    assert_eq!(
        t.first().map(String::as_str),
        Some("Margaret Hamilton"),
        "typos: {t:?}"
    );
    // Ranking: exact before prefix before typo.
    let t = titles(index, &query(org, "margaret hamilton")).await;
    assert_eq!(
        t.first().map(String::as_str),
        Some("Margaret Hamilton"),
        "exact first: {t:?}"
    );
    let pos = |name: &str| t.iter().position(|x| x == name);
    if let (Some(a), Some(b)) = (pos("Margareta Hamiltonson"), pos("Marget Hamlin")) {
        assert!(a < b, "prefix matches rank above typo matches: {t:?}");
    }
    let t = titles(index, &query(org, "hamil")).await;
    assert!(
        t.contains(&"Margaret Hamilton".to_string()),
        "prefix: {t:?}"
    );
    // Phones by their digits, whatever the formatting.
    for q in ["555-123-4567", "(555) 1234567", "1234567", "+15551234567"] {
        let t = titles(index, &query(org, q)).await;
        assert_eq!(t, vec!["John Smith".to_string()], "phone {q}: {t:?}");
    }
    // Accents folded both ways; e-mail and company words.
    for q in ["zoe", "Zoë", "durand"] {
        let t = titles(index, &query(org, q)).await;
        assert_eq!(
            t.first().map(String::as_str),
            Some("Zoë Durand"),
            "accents {q}: {t:?}"
        );
    }
    let t = titles(index, &query(org, "acme")).await;
    assert_eq!(t, vec!["John Smith".to_string()], "company words: {t:?}");
    // Filters and facets.
    let mut q = query(org, "");
    q.status = Some("lead".into());
    q.kind = Some(Kind::Client);
    assert_eq!(
        titles(index, &q).await,
        vec!["Margaret Hamilton".to_string()],
        "status filter"
    );
    let mut q = query(org, "smith");
    q.tag = Some("VIP".into());
    assert_eq!(
        titles(index, &q).await,
        vec!["John Smith".to_string()],
        "tag filter"
    );
    let mut q = query(org, "");
    q.kind = Some(Kind::Client);
    q.facets = true;
    let r = index.search(&q).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.total, 6, "all clients of the organization");
    assert_eq!(r.facets["status"].get("active"), Some(&5), "{:?}", r.facets);
    assert_eq!(r.facets["status"].get("lead"), Some(&1));
    assert_eq!(r.facets["industry"].get("Aerospace"), Some(&1));
    assert_eq!(r.facets["tag"].get("VIP"), Some(&1));
    // Types.
    let mut q = query(org, "margaret");
    q.kind = Some(Kind::Opportunity);
    assert_eq!(
        titles(index, &q).await,
        vec!["Apollo guidance contract".to_string()]
    );
    // Tenant isolation: the other organization's John Smith never shows.
    let r = index
        .search(&query(org, "john smith"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(r.hits.iter().all(|h| h.id != "c-other"), "tenant isolation");
    let t = titles(index, &query(other, "margaret")).await;
    assert!(t.is_empty(), "tenant isolation: {t:?}");
    // Role filtering: a rep sees their own.
    let mut q = query(org, "smith");
    q.owners = Some(vec!["u2".into()]);
    assert_eq!(
        titles(index, &q).await,
        vec!["Jonathan Smithers".to_string()],
        "owners"
    );
    let mut q = query(org, "smith");
    q.owners = Some(vec![]);
    assert!(titles(index, &q).await.is_empty(), "no owners, nothing");
    // Highlights mark the matched words, escaped.
    let r = index
        .search(&query(org, "mrgaret"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let h = r
        .hits
        .iter()
        .find(|h| h.id == "c-marg")
        .map(|h| h.highlights["title"].clone());
    assert_eq!(h.as_deref(), Some("<mark>Margaret</mark> Hamilton"));
    // Updates re-rank; deletes disappear.
    let mut renamed = client("c-jon", org, "Zebulon Quux", "u2");
    renamed.status = Some("inactive".into());
    index
        .upsert(vec![renamed])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        titles(index, &query(org, "zebulon")).await,
        vec!["Zebulon Quux".to_string()]
    );
    assert!(!titles(index, &query(org, "jonathan"))
        .await
        .contains(&"Jonathan Smithers".to_string()));
    index
        .delete(vec!["c-zoe".into()])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        titles(index, &query(org, "zoe")).await.is_empty(),
        "deleted"
    );
    let mut ids = index
        .ids(org, Kind::Client)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    ids.sort();
    assert_eq!(ids, vec!["c-john", "c-jon", "c-marg", "c-marg2", "c-marg3"]);

    // A full rebuild into a fresh index (where the backend has one): searches answer from the
    // old documents until the swap, then from the new ones only.
    if let Some(next) = index.fresh().await.unwrap_or_else(|e| panic!("{e}")) {
        next.upsert(vec![client("c-new", org, "Grace Hopper", "u1")])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            titles(index, &query(org, "margaret"))
                .await
                .first()
                .map(String::as_str),
            Some("Margaret Hamilton"),
            "the live index answers during a rebuild"
        );
        index.promote().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            titles(index, &query(org, "hopper")).await,
            vec!["Grace Hopper".to_string()],
            "the rebuilt index is live"
        );
        assert!(
            titles(index, &query(org, "margaret")).await.is_empty(),
            "the old documents are gone"
        );
    }
}
