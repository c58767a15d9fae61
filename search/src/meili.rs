//! The Meilisearch backend: one index per entity (`<prefix>clients`, `<prefix>opportunities`),
//! every query filtered by organization. Talks HTTP through ureq (the blocking client the
//! platform already uses for plugins) behind meilisearch-sdk's `HttpClient` trait, instead
//! of the SDK's default reqwest/hyper stack: one HTTP client in the build, not two.

use std::collections::BTreeMap;
use std::time::Duration;

use meilisearch_sdk::client::Client;
use meilisearch_sdk::errors::Error as MeiliError;
use meilisearch_sdk::request::{parse_response, HttpClient, Method};
use meilisearch_sdk::settings::Settings;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{
    highlight, phone_keys, phone_query, Document, Hit, Kind, Query, Results, SearchError,
    SearchIndex, Stats,
};

const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct UreqClient {
    agent: ureq::Agent,
    api_key: Option<String>,
}

impl UreqClient {
    pub fn new(api_key: Option<&str>) -> Self {
        use ureq::tls::{TlsConfig, TlsProvider};
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(TIMEOUT))
            .http_status_as_error(false)
            .tls_config(
                TlsConfig::builder()
                    .provider(TlsProvider::NativeTls)
                    .build(),
            )
            .build()
            .into();
        Self {
            agent,
            api_key: api_key.map(str::to_string),
        }
    }
}

#[async_trait::async_trait]
impl HttpClient for UreqClient {
    async fn stream_request<
        Q: Serialize + Send + Sync,
        B: futures_io::AsyncRead + Send + Sync + 'static,
        Output: DeserializeOwned + 'static,
    >(
        &self,
        url: &str,
        method: Method<Q, B>,
        content_type: &str,
        expected_status_code: u16,
    ) -> Result<Output, MeiliError> {
        use futures_util::AsyncReadExt;
        let query = yaup::to_string(method.query())?;
        let url = format!("{url}{query}");
        let verb = match &method {
            Method::Get { .. } => "GET",
            Method::Post { .. } => "POST",
            Method::Patch { .. } => "PATCH",
            Method::Put { .. } => "PUT",
            Method::Delete { .. } => "DELETE",
        };
        let body = match method.into_body() {
            Some(b) => {
                let mut buf = Vec::new();
                let mut b = Box::pin(b);
                b.read_to_end(&mut buf)
                    .await
                    .map_err(|e| MeiliError::Other(Box::new(e)))?;
                Some(buf)
            }
            None => None,
        };
        let agent = self.agent.clone();
        let key = self.api_key.clone();
        let content_type = content_type.to_string();
        let target = url.clone();
        let (status, text) = tokio::task::spawn_blocking(move || {
            let mut req = ureq::http::Request::builder().method(verb).uri(&target);
            if let Some(k) = key {
                req = req.header("authorization", format!("Bearer {k}"));
            }
            let req = match body {
                Some(b) => req.header("content-type", content_type).body(b),
                None => req.body(Vec::new()),
            }
            .map_err(|e| MeiliError::Other(Box::new(e)))?;
            let mut res = agent.run(req).map_err(|e| MeiliError::Other(Box::new(e)))?;
            let status = res.status().as_u16();
            let text = res
                .body_mut()
                .with_config()
                .limit(64 * 1024 * 1024)
                .read_to_string()
                .map_err(|e| MeiliError::Other(Box::new(e)))?;
            Ok::<_, MeiliError>((status, text))
        })
        .await
        .map_err(|e| MeiliError::Other(Box::new(e)))??;
        let text = if text.is_empty() { "null".into() } else { text };
        parse_response(status, expected_status_code, &text, url)
    }
}

/// What Meilisearch stores per record.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct MeiliDoc {
    id: String,
    org: String,
    kind: String,
    title: String,
    subtitle: String,
    text: Vec<String>,
    phones: Vec<String>,
    tags: Vec<String>,
    status: Option<String>,
    owner: Option<String>,
    industry: Option<String>,
}

#[derive(Clone)]
pub struct Meili {
    client: Client<UreqClient>,
    prefix: String,
}

fn err(e: impl std::fmt::Display) -> SearchError {
    SearchError::Backend(e.to_string())
}

fn quoted(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

impl Meili {
    /// Connects and makes sure both indexes exist with Rapport's settings. `prefix` keeps
    /// several installs (or test runs) apart on one server.
    pub async fn connect(url: &str, api_key: Option<&str>, prefix: &str) -> crate::Result<Self> {
        let client = Client::new_with_client(url, api_key, UreqClient::new(api_key));
        let me = Self {
            client,
            prefix: prefix.to_string(),
        };
        me.health().await?;
        // Typos as the embedded index allows them (1 from 4 letters, 2 from 8), none in phone
        // numbers; ranking as Meilisearch's default, with the title searched first.
        let typos = meilisearch_sdk::settings::TypoToleranceSettings {
            enabled: Some(true),
            disable_on_attributes: Some(vec!["phones".into()]),
            disable_on_words: None,
            min_word_size_for_typos: Some(meilisearch_sdk::settings::MinWordSizeForTypos {
                one_typo: Some(4),
                two_typos: Some(8),
            }),
            disable_on_numbers: Some(true),
        };
        let settings = Settings::new()
            .with_searchable_attributes(["title", "subtitle", "text", "tags", "phones"])
            .with_filterable_attributes(["org", "kind", "status", "tags", "owner", "industry"])
            .with_sortable_attributes(["title"])
            .with_displayed_attributes(["id", "kind", "title", "subtitle"])
            .with_ranking_rules([
                "words",
                "typo",
                "proximity",
                "attribute",
                "sort",
                "exactness",
            ])
            .with_typo_tolerance(typos);
        for kind in [Kind::Client, Kind::Opportunity] {
            let task = me
                .client
                .index(me.uid(kind))
                .set_settings(&settings)
                .await
                .map_err(err)?;
            task.wait_for_completion(&me.client, None, Some(Duration::from_secs(60)))
                .await
                .map_err(err)?;
        }
        Ok(me)
    }

    fn uid(&self, kind: Kind) -> String {
        match kind {
            Kind::Client => format!("{}clients", self.prefix),
            Kind::Opportunity => format!("{}opportunities", self.prefix),
        }
    }

    fn filter(q: &Query, kind: Kind) -> String {
        let mut parts = vec![
            format!("org = {}", quoted(&q.org_id)),
            format!("kind = {}", quoted(kind.as_str())),
        ];
        for (name, value) in [
            ("status", &q.status),
            ("tags", &q.tag),
            ("owner", &q.owner),
            ("industry", &q.industry),
        ] {
            if let Some(v) = value {
                parts.push(format!("{name} = {}", quoted(v)));
            }
        }
        if let Some(owners) = &q.owners {
            if owners.is_empty() {
                // Nobody's records: a filter nothing passes (ids are UUIDs).
                parts.push("owner = \"-\"".into());
            } else {
                let list: Vec<String> = owners.iter().map(|o| quoted(o)).collect();
                parts.push(format!("owner IN [{}]", list.join(", ")));
            }
        }
        parts.join(" AND ")
    }

    async fn search_kind(&self, q: &Query, kind: Kind) -> crate::Result<Results> {
        let index = self.client.index(self.uid(kind));
        let text = phone_query(&q.text).unwrap_or_else(|| q.text.clone());
        let filter = Self::filter(q, kind);
        let facets = ["status", "tags", "owner", "industry"];
        let mut search = index.search();
        search
            .with_query(&text)
            .with_filter(&filter)
            .with_limit(q.limit.clamp(1, 1000))
            .with_offset(q.offset);
        if q.facets {
            search.with_facets(meilisearch_sdk::search::Selectors::Some(&facets));
        }
        let r = search.execute::<MeiliDoc>().await.map_err(err)?;
        let hits = r
            .hits
            .into_iter()
            .map(|h| {
                let d = h.result;
                let mut highlights = BTreeMap::new();
                highlights.insert("title".to_string(), highlight(&d.title, &q.text));
                highlights.insert("subtitle".to_string(), highlight(&d.subtitle, &q.text));
                Hit {
                    kind,
                    id: d.id,
                    title: d.title,
                    subtitle: d.subtitle,
                    highlights,
                }
            })
            .collect();
        let mut facets_out = BTreeMap::new();
        for (name, counts) in r.facet_distribution.unwrap_or_default() {
            let name = if name == "tags" {
                "tag".to_string()
            } else {
                name
            };
            facets_out.insert(
                name,
                counts
                    .into_iter()
                    .map(|(k, v)| (k, v as u64))
                    .collect::<BTreeMap<_, _>>(),
            );
        }
        Ok(Results {
            hits,
            total: r.estimated_total_hits.or(r.total_hits).unwrap_or(0),
            facets: facets_out,
        })
    }
}

#[async_trait::async_trait]
impl SearchIndex for Meili {
    async fn upsert(&self, docs: Vec<Document>) -> crate::Result<()> {
        for kind in [Kind::Client, Kind::Opportunity] {
            let batch: Vec<MeiliDoc> = docs
                .iter()
                .filter(|d| d.kind.unwrap_or(Kind::Client) == kind)
                .map(|d| MeiliDoc {
                    id: d.id.clone(),
                    org: d.org_id.clone(),
                    kind: kind.as_str().into(),
                    title: d.title.clone(),
                    subtitle: d.subtitle.clone(),
                    text: d.text.clone(),
                    phones: d.phones.iter().flat_map(|p| phone_keys(p)).collect(),
                    tags: d.tags.clone(),
                    status: d.status.clone(),
                    owner: d.owner.clone(),
                    industry: d.industry.clone(),
                })
                .collect();
            if batch.is_empty() {
                continue;
            }
            let task = self
                .client
                .index(self.uid(kind))
                .add_or_replace(&batch, Some("id"))
                .await
                .map_err(err)?;
            task.wait_for_completion(&self.client, None, Some(Duration::from_secs(60)))
                .await
                .map_err(err)?;
        }
        Ok(())
    }

    async fn delete(&self, ids: Vec<String>) -> crate::Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        for kind in [Kind::Client, Kind::Opportunity] {
            let task = self
                .client
                .index(self.uid(kind))
                .delete_documents(&ids)
                .await
                .map_err(err)?;
            task.wait_for_completion(&self.client, None, Some(Duration::from_secs(60)))
                .await
                .map_err(err)?;
        }
        Ok(())
    }

    async fn ids(&self, org_id: &str, kind: Kind) -> crate::Result<Vec<String>> {
        #[derive(Deserialize)]
        struct IdOnly {
            id: String,
        }
        let index = self.client.index(self.uid(kind));
        let filter = format!("org = {}", quoted(org_id));
        let mut out = Vec::new();
        loop {
            let mut q = meilisearch_sdk::documents::DocumentsQuery::new(&index);
            q.with_filter(&filter)
                .with_fields(["id"])
                .with_limit(1000)
                .with_offset(out.len());
            let page = q.execute::<IdOnly>().await.map_err(err)?;
            let n = page.results.len();
            out.extend(page.results.into_iter().map(|d| d.id));
            if n < 1000 {
                break;
            }
        }
        Ok(out)
    }

    async fn search(&self, q: &Query) -> crate::Result<Results> {
        match q.kind {
            Some(kind) => self.search_kind(q, kind).await,
            None => {
                let mut a = self.search_kind(q, Kind::Client).await?;
                let b = self.search_kind(q, Kind::Opportunity).await?;
                a.total += b.total;
                a.hits.extend(b.hits);
                for (name, counts) in b.facets {
                    let into = a.facets.entry(name).or_default();
                    for (k, v) in counts {
                        *into.entry(k).or_default() += v;
                    }
                }
                Ok(a)
            }
        }
    }

    async fn health(&self) -> crate::Result<()> {
        self.client
            .health()
            .await
            .map(drop)
            .map_err(|e| SearchError::Unavailable(e.to_string()))
    }

    async fn stats(&self) -> crate::Result<Stats> {
        let mut documents = 0;
        for kind in [Kind::Client, Kind::Opportunity] {
            if let Ok(s) = self.client.index(self.uid(kind)).get_stats().await {
                documents += s.number_of_documents as u64;
            }
        }
        Ok(Stats {
            documents,
            backend: "meilisearch",
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn filters_always_name_the_organization_and_quote_values() {
        let q = crate::Query {
            org_id: "org-1".into(),
            tag: Some("say \"hi\"".into()),
            owners: Some(vec!["u1".into(), "u2".into()]),
            ..Default::default()
        };
        assert_eq!(
            super::Meili::filter(&q, crate::Kind::Client),
            r#"org = "org-1" AND kind = "client" AND tags = "say \"hi\"" AND owner IN ["u1", "u2"]"#
        );
        let none = crate::Query {
            org_id: "org-1".into(),
            owners: Some(vec![]),
            ..Default::default()
        };
        assert!(super::Meili::filter(&none, crate::Kind::Opportunity).ends_with(r#"owner = "-""#));
    }

    /// Runs the contract against a real Meilisearch when `MEILI_URL` is set (see README).
    #[tokio::test(flavor = "multi_thread")]
    async fn the_contract_holds_on_meilisearch() {
        let Ok(url) = std::env::var("MEILI_URL") else {
            eprintln!("MEILI_URL is not set: the Meilisearch contract run is skipped");
            return;
        };
        let key = std::env::var("MEILI_MASTER_KEY").ok();
        let prefix = format!("contract_{}_", std::process::id());
        let index = super::Meili::connect(&url, key.as_deref(), &prefix)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        crate::contract::run(&index).await;
    }
}
