//! The Meilisearch backend: one index per entity (`<prefix>clients`, `<prefix>opportunities`),
//! every query filtered by organization on the server side. Talks HTTP through ureq (the
//! blocking client the platform already uses for plugins) behind meilisearch-sdk's
//! `HttpClient` trait, instead of the SDK's default reqwest/hyper stack: one HTTP client in
//! the build, not two.
//!
//! - **Keys**: given the master key, it derives two keys scoped to `<prefix>*` indexes (fixed
//!   uids, so every instance and restart finds the same ones): a search-only key for queries
//!   and a key for writes and settings. A bug in the query path cannot write, and no key the
//!   process uses reaches another install's indexes. Given a non-master key it uses that one.
//! - **Start-up does not need the server**: keys and settings are set on first contact and
//!   waited for; until then searches answer `Unavailable` and the outbox keeps the changes.
//! - **Writes are waited for** (Meilisearch tasks are asynchronous): the outbox row goes only
//!   once the task succeeded. A full rebuild fills a fresh `<prefix>next_*` pair without
//!   waiting per batch and swaps it in atomically (`swap-indexes`), so search never answers
//!   from a half-built index.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meilisearch_sdk::client::Client;
use meilisearch_sdk::errors::{Error as MeiliError, ErrorType};
use meilisearch_sdk::request::{parse_response, HttpClient, Method};
use meilisearch_sdk::tasks::Task;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{
    highlight, phone_keys, phone_query, Document, Hit, Kind, Query, Results, SearchError,
    SearchIndex, Stats,
};

const TIMEOUT: Duration = Duration::from_secs(10);
/// How long a write may wait for its task: a large batch behind a rebuild takes a while.
const TASK_WAIT: Duration = Duration::from_secs(300);

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
            let body = body.map(|b| (content_type.as_str(), b));
            exchange(
                &agent,
                verb,
                &target,
                key.as_deref(),
                body,
                64 * 1024 * 1024,
            )
        })
        .await
        .map_err(|e| MeiliError::Other(Box::new(e)))?
        .map_err(|e| match e {
            Failure::Request(e) => MeiliError::Other(Box::new(e)),
            Failure::Transport(e) => MeiliError::Other(Box::new(e)),
        })?;
        let text = if text.is_empty() { "null".into() } else { text };
        parse_response(status, expected_status_code, &text, url)
    }
}

/// A task's uid as the SDK's `wait_for_task` takes it.
struct TaskUid(u32);

impl AsRef<u32> for TaskUid {
    fn as_ref(&self) -> &u32 {
        &self.0
    }
}

/// What Meilisearch stores per record.
#[derive(Debug, Clone, Serialize)]
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

/// What a search hit carries back: only the displayed attributes.
#[derive(Debug, Deserialize)]
struct HitDoc {
    id: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    subtitle: String,
}

#[derive(Clone)]
struct Clients {
    /// Search only.
    read: Client<UreqClient>,
    /// Documents, settings, tasks, swaps, on `<prefix>*` only.
    write: Client<UreqClient>,
    write_key: Option<String>,
}

pub struct Meili {
    url: String,
    key: Option<String>,
    prefix: String,
    clients: tokio::sync::OnceCell<Clients>,
    /// Tasks sent and not yet waited for: a rebuild's fresh index collects them and waits
    /// once, before the swap. `None`: every write waits for its task.
    queued: Option<Mutex<Vec<u32>>>,
    /// The fresh index a full rebuild is filling.
    next: Mutex<Option<Arc<Meili>>>,
}

fn err(e: impl std::fmt::Display) -> SearchError {
    SearchError::Backend(e.to_string())
}

/// The server not answering (or answering 5xx) is "unavailable"; anything else is a bug
/// or a misconfiguration worth its own message.
fn fail(e: MeiliError) -> SearchError {
    match &e {
        MeiliError::Other(_) | MeiliError::MeilisearchCommunication(_) | MeiliError::Timeout => {
            SearchError::Unavailable(e.to_string())
        }
        MeiliError::Meilisearch(m) if matches!(m.error_type, ErrorType::Internal) => {
            SearchError::Unavailable(e.to_string())
        }
        _ => SearchError::Backend(e.to_string()),
    }
}

fn quoted(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A UUID-shaped id that is the same for the same words (FNV-1a, twice): the scoped keys'
/// uids, so every instance finds the keys the first one made.
fn stable_uid(words: &str) -> String {
    let fnv = |seed: u64| {
        words.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    let (a, b) = (fnv(0xcbf2_9ce4_8422_2325), fnv(0x8422_2325_cbf2_9ce4));
    let hex = format!("{a:016x}{b:016x}");
    // Version 4 and RFC 4122 variant bits, as Meilisearch expects of a key uid.
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

fn agent() -> ureq::Agent {
    UreqClient::new(None).agent
}

/// Rapport's index settings. Typos as the embedded index allows them (1 from 4 letters, 2
/// from 8), none in phone numbers or other digits. The title is searched first; exact words
/// rank above prefixes and typos (`typo`, then `exactness`).
fn desired_settings() -> serde_json::Value {
    serde_json::json!({
        "displayedAttributes": ["id", "title", "subtitle"],
        "searchableAttributes": ["title", "subtitle", "text", "tags", "phones"],
        "filterableAttributes": ["org", "kind", "status", "tags", "owner", "industry"],
        "sortableAttributes": ["title"],
        "rankingRules": ["words", "typo", "proximity", "attribute", "sort", "exactness"],
        "typoTolerance": {
            "enabled": true,
            "minWordSizeForTypos": {"oneTypo": 4, "twoTypos": 8},
            "disableOnAttributes": ["phones"],
            "disableOnNumbers": true,
        },
    })
}

/// Whether the settings an index has are those wanted (attribute lists the server may
/// reorder compared as sets; only the typo settings Rapport sets).
fn settings_match(now: &serde_json::Value, want: &serde_json::Value) -> bool {
    let set = |v: &serde_json::Value| {
        let mut items: Vec<String> = v
            .as_array()
            .map(|a| a.iter().map(|x| x.to_string()).collect())
            .unwrap_or_default();
        items.sort();
        items
    };
    let Some(want) = want.as_object() else {
        return false;
    };
    want.iter().all(|(k, w)| match k.as_str() {
        "filterableAttributes" | "sortableAttributes" => set(&now[k]) == set(w),
        "typoTolerance" => w
            .as_object()
            .is_some_and(|t| t.iter().all(|(tk, tv)| &now[k][tk] == tv)),
        _ => &now[k] == w,
    })
}

/// Why an exchange failed: the request could not be built (a bad URL), or the server was
/// not reached or did not answer in full.
enum Failure {
    Request(ureq::http::Error),
    Transport(ureq::Error),
}

/// One HTTP exchange, blocking: sends `body` (content type, bytes) when given and reads the
/// answer up to `limit` bytes. Both the SDK's requests and Rapport's own go through it.
fn exchange(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    key: Option<&str>,
    body: Option<(&str, Vec<u8>)>,
    limit: u64,
) -> Result<(u16, String), Failure> {
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    let req = match body {
        Some((content_type, b)) => req.header("content-type", content_type).body(b),
        None => req.body(Vec::new()),
    }
    .map_err(Failure::Request)?;
    let mut res = agent.run(req).map_err(Failure::Transport)?;
    let status = res.status().as_u16();
    let text = res
        .body_mut()
        .with_config()
        .limit(limit)
        .read_to_string()
        .map_err(Failure::Transport)?;
    Ok((status, text))
}

/// One call outside the SDK (keys, settings): `(status, body)`.
async fn call(
    agent: ureq::Agent,
    method: &'static str,
    url: String,
    key: Option<String>,
    body: Option<serde_json::Value>,
) -> crate::Result<(u16, serde_json::Value)> {
    let (status, text) = tokio::task::spawn_blocking(move || {
        let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
        exchange(&agent, method, &url, key.as_deref(), body, 1024 * 1024)
    })
    .await
    .map_err(err)?
    .map_err(|e| match e {
        Failure::Request(e) => err(e),
        Failure::Transport(e) => SearchError::Unavailable(e.to_string()),
    })?;
    Ok((status, serde_json::from_str(&text).unwrap_or_default()))
}

impl Meili {
    /// Connects and makes sure both indexes exist with Rapport's settings. `prefix` keeps
    /// several installs (or test runs) apart on one server. A server that does not answer
    /// yet is not an error: the first operation that reaches it sets it up.
    pub async fn connect(url: &str, api_key: Option<&str>, prefix: &str) -> crate::Result<Self> {
        let me = Self {
            url: url.trim_end_matches('/').to_string(),
            key: api_key.map(str::to_string),
            prefix: prefix.to_string(),
            clients: tokio::sync::OnceCell::new(),
            queued: None,
            next: Mutex::new(None),
        };
        match me.clients().await {
            Ok(_) => Ok(me),
            Err(SearchError::Unavailable(e)) => {
                tracing::warn!(error = %e, "Meilisearch does not answer yet; search is unavailable until it does");
                Ok(me)
            }
            Err(e) => Err(e),
        }
    }

    fn client(&self, key: Option<&str>) -> Client<UreqClient> {
        Client::new_with_client(&self.url, key, UreqClient::new(key))
    }

    /// The two clients, set up on first contact (keys, then settings, both waited for).
    async fn clients(&self) -> crate::Result<&Clients> {
        self.clients
            .get_or_try_init(|| async {
                let bare = self.client(None);
                bare.health()
                    .await
                    .map_err(|e| SearchError::Unavailable(e.to_string()))?;
                let clients = self.scoped_keys().await?;
                self.apply_settings(&clients.write).await?;
                Ok(clients)
            })
            .await
    }

    /// A search-only key and a write key on `<prefix>*`, made from the master key; with any
    /// other key (not allowed to make keys), that key for both.
    async fn scoped_keys(&self) -> crate::Result<Clients> {
        let Some(master) = self.key.clone() else {
            let c = self.client(None);
            return Ok(Clients {
                read: c.clone(),
                write: c,
                write_key: None,
            });
        };
        let agent = agent();
        let mut keys = Vec::new();
        for (role, actions) in [
            ("search", serde_json::json!(["search"])),
            ("write", serde_json::json!(["*"])),
        ] {
            let uid = stable_uid(&format!("rapport {role} {}", self.prefix));
            let url = format!("{}/keys/{uid}", self.url);
            let (status, body) = call(
                agent.clone(),
                "GET",
                url.clone(),
                Some(master.clone()),
                None,
            )
            .await?;
            let body = match status {
                200 => body,
                404 => {
                    let spec = serde_json::json!({
                        "uid": uid,
                        "name": format!("rapport {role} ({})", self.prefix),
                        "description": "Made by Rapport; scoped to its indexes.",
                        "actions": actions,
                        "indexes": [format!("{}*", self.prefix)],
                        "expiresAt": null,
                    });
                    let (status, body) = call(
                        agent.clone(),
                        "POST",
                        format!("{}/keys", self.url),
                        Some(master.clone()),
                        Some(spec),
                    )
                    .await?;
                    match status {
                        201 => body,
                        // Another instance made it meanwhile.
                        409 => {
                            call(agent.clone(), "GET", url, Some(master.clone()), None)
                                .await?
                                .1
                        }
                        _ => return Err(err(format!("creating a search key: {body}"))),
                    }
                }
                // Not the master key: it may not manage keys, so it is used as given.
                401 | 403 => {
                    let c = self.client(Some(&master));
                    return Ok(Clients {
                        read: c.clone(),
                        write: c,
                        write_key: Some(master),
                    });
                }
                _ => return Err(err(format!("reading the search keys: {body}"))),
            };
            let key = body["key"]
                .as_str()
                .ok_or_else(|| err(format!("a key without its value: {body}")))?
                .to_string();
            keys.push(key);
        }
        let write_key = keys.pop().ok_or_else(|| err("no write key"))?;
        let read_key = keys.pop().ok_or_else(|| err("no search key"))?;
        Ok(Clients {
            read: self.client(Some(&read_key)),
            write: self.client(Some(&write_key)),
            write_key: Some(write_key),
        })
    }

    /// Rapport's index settings on both indexes, applied where they differ and waited for.
    async fn apply_settings(&self, client: &Client<UreqClient>) -> crate::Result<()> {
        let want = desired_settings();
        let key = client.get_api_key().map(str::to_string);
        for kind in [Kind::Client, Kind::Opportunity] {
            let url = format!("{}/indexes/{}/settings", self.url, self.uid(kind));
            // An update, even to the same values, makes Meilisearch re-index every document
            // (a minute at a million clients, on every start of every process): only when
            // something differs.
            let (status, now) = call(agent(), "GET", url.clone(), key.clone(), None).await?;
            if status == 200 && settings_match(&now, &want) {
                continue;
            }
            let (status, task) =
                call(agent(), "PATCH", url, key.clone(), Some(want.clone())).await?;
            let uid = task["taskUid"]
                .as_u64()
                .filter(|_| status == 202)
                .ok_or_else(|| err(format!("updating the index settings: {task}")))?;
            Self::settled(client, uid as u32).await?;
        }
        Ok(())
    }

    /// Waits for a task and fails with the server's message if the task failed.
    async fn settled(client: &Client<UreqClient>, task: u32) -> crate::Result<()> {
        match client
            .wait_for_task(
                TaskUid(task),
                Some(Duration::from_millis(20)),
                Some(TASK_WAIT),
            )
            .await
            .map_err(fail)?
        {
            Task::Failed { content } => Err(SearchError::Backend(format!(
                "task {task} failed: {}",
                content.error.error_message
            ))),
            _ => Ok(()),
        }
    }

    /// A write task sent: waited for now, or (in a rebuild) before the swap.
    async fn sent(&self, client: &Client<UreqClient>, task: u32) -> crate::Result<()> {
        if let Some(queued) = &self.queued {
            queued.lock().unwrap_or_else(|p| p.into_inner()).push(task);
            return Ok(());
        }
        Self::settled(client, task).await
    }

    /// The index a full rebuild is filling beside this one, when one is (in any process):
    /// live writes go there too, so the swap loses none of them.
    async fn rebuilding(&self, clients: &Clients) -> crate::Result<Option<String>> {
        if self.queued.is_some() {
            return Ok(None);
        }
        let next = format!("{}next_clients", self.prefix);
        // Asked outside the SDK, which logs a warning for every 404 (no rebuild, the usual
        // answer). A write racing the end of a rebuild can re-create the index with default
        // settings (every attribute displayed): that one is not a rebuild and is left alone.
        let (status, shown) = call(
            agent(),
            "GET",
            format!("{}/indexes/{next}/settings/displayed-attributes", self.url),
            clients.write_key.clone(),
            None,
        )
        .await?;
        match status {
            200 if shown
                .as_array()
                .is_some_and(|a| !a.iter().any(|v| v == "*")) =>
            {
                Ok(Some(format!("{}next_", self.prefix)))
            }
            200 | 404 => Ok(None),
            500.. => Err(SearchError::Unavailable(shown.to_string())),
            _ => Err(err(format!("checking for a rebuild: {shown}"))),
        }
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
        let clients = self.clients().await?;
        let index = clients.read.index(self.uid(kind));
        let text = phone_query(&q.text).unwrap_or_else(|| q.text.clone());
        let filter = Self::filter(q, kind);
        let facets = ["status", "tags", "owner", "industry"];
        let mut search = index.search();
        search
            .with_query(&text)
            .with_filter(&filter)
            .with_limit(q.limit.clamp(1, 1000))
            .with_offset(q.offset)
            // Every word must match, as on the embedded index: "margaret@mit.test" finds that
            // address, not every Margaret (Meilisearch's default drops words until some match).
            .with_matching_strategy(meilisearch_sdk::search::MatchingStrategies::ALL);
        if q.facets {
            search.with_facets(meilisearch_sdk::search::Selectors::Some(&facets));
        }
        let r = search.execute::<HitDoc>().await.map_err(fail)?;
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

    /// Deletes an index (gone already is fine) and waits.
    async fn drop_index(client: &Client<UreqClient>, uid: &str) -> crate::Result<()> {
        let task = client.delete_index(uid).await.map_err(fail)?;
        // A failed deletion here means it did not exist.
        client
            .wait_for_task(
                TaskUid(task.task_uid),
                Some(Duration::from_millis(20)),
                Some(TASK_WAIT),
            )
            .await
            .map_err(fail)?;
        Ok(())
    }
}

/// The live index, and the one a rebuild is filling if any.
fn targets(live: String, next: &Option<String>, kind: Kind) -> Vec<String> {
    let mut out = vec![live];
    if let Some(prefix) = next {
        out.push(match kind {
            Kind::Client => format!("{prefix}clients"),
            Kind::Opportunity => format!("{prefix}opportunities"),
        });
    }
    out
}

#[async_trait::async_trait]
impl SearchIndex for Meili {
    async fn upsert(&self, docs: Vec<Document>) -> crate::Result<()> {
        let clients = self.clients().await?;
        let next = self.rebuilding(clients).await?;
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
            for uid in targets(self.uid(kind), &next, kind) {
                let task = clients
                    .write
                    .index(uid)
                    .add_or_replace(&batch, Some("id"))
                    .await
                    .map_err(fail)?;
                self.sent(&clients.write, task.task_uid).await?;
            }
        }
        Ok(())
    }

    async fn delete(&self, ids: Vec<String>) -> crate::Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let clients = self.clients().await?;
        let next = self.rebuilding(clients).await?;
        for kind in [Kind::Client, Kind::Opportunity] {
            for uid in targets(self.uid(kind), &next, kind) {
                let task = clients
                    .write
                    .index(uid)
                    .delete_documents(&ids)
                    .await
                    .map_err(fail)?;
                self.sent(&clients.write, task.task_uid).await?;
            }
        }
        Ok(())
    }

    async fn ids(&self, org_id: &str, kind: Kind) -> crate::Result<Vec<String>> {
        #[derive(Deserialize)]
        struct IdOnly {
            id: String,
        }
        const PAGE: usize = 10_000;
        let clients = self.clients().await?;
        let index = clients.write.index(self.uid(kind));
        let filter = format!("org = {}", quoted(org_id));
        let mut out = Vec::new();
        loop {
            let mut q = meilisearch_sdk::documents::DocumentsQuery::new(&index);
            q.with_filter(&filter)
                .with_fields(["id"])
                .with_limit(PAGE)
                .with_offset(out.len());
            let page = q.execute::<IdOnly>().await.map_err(fail)?;
            let n = page.results.len();
            out.extend(page.results.into_iter().map(|d| d.id));
            if n < PAGE {
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
        self.client(None)
            .health()
            .await
            .map(drop)
            .map_err(|e| SearchError::Unavailable(e.to_string()))?;
        self.clients().await.map(drop)
    }

    async fn stats(&self) -> crate::Result<Stats> {
        let clients = self.clients().await?;
        let mut documents = 0;
        for kind in [Kind::Client, Kind::Opportunity] {
            let s = clients
                .write
                .index(self.uid(kind))
                .get_stats()
                .await
                .map_err(fail)?;
            documents += s.number_of_documents as u64;
        }
        Ok(Stats {
            documents,
            backend: "meilisearch",
        })
    }

    async fn fresh(&self) -> crate::Result<Option<Arc<dyn SearchIndex>>> {
        let clients = self.clients().await?.clone();
        let next = Meili {
            url: self.url.clone(),
            key: self.key.clone(),
            prefix: format!("{}next_", self.prefix),
            clients: tokio::sync::OnceCell::new_with(Some(clients.clone())),
            queued: Some(Mutex::new(Vec::new())),
            next: Mutex::new(None),
        };
        // A rebuild that died half-way left its indexes: start from empty ones.
        for kind in [Kind::Client, Kind::Opportunity] {
            Self::drop_index(&clients.write, &next.uid(kind)).await?;
        }
        next.apply_settings(&clients.write).await?;
        let next = Arc::new(next);
        *self.next.lock().unwrap_or_else(|p| p.into_inner()) = Some(next.clone());
        Ok(Some(next))
    }

    async fn promote(&self) -> crate::Result<()> {
        let Some(next) = self.next.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return Ok(());
        };
        let clients = self.clients().await?;
        let pending = next
            .queued
            .as_ref()
            .map(|q| std::mem::take(&mut *q.lock().unwrap_or_else(|p| p.into_inner())))
            .unwrap_or_default();
        for task in pending {
            Self::settled(&clients.write, task).await?;
        }
        let pairs: Vec<meilisearch_sdk::client::SwapIndexes> = [Kind::Client, Kind::Opportunity]
            .into_iter()
            .map(|kind| meilisearch_sdk::client::SwapIndexes {
                indexes: (self.uid(kind), next.uid(kind)),
                rename: None,
            })
            .collect();
        let task = clients.write.swap_indexes(&pairs).await.map_err(fail)?;
        // A swap task names no index, so only a key on every index (the one Rapport was
        // given) may read it.
        Self::settled(&self.client(self.key.as_deref()), task.task_uid).await?;
        // The fresh names now hold the old documents.
        for kind in [Kind::Client, Kind::Opportunity] {
            Self::drop_index(&clients.write, &next.uid(kind)).await?;
        }
        Ok(())
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

    #[test]
    fn settings_are_compared_as_the_server_answers_them() {
        let want = super::desired_settings();
        let mut now = want.clone();
        now["filterableAttributes"] =
            serde_json::json!(["industry", "kind", "org", "owner", "status", "tags"]);
        now["typoTolerance"]["disableOnWords"] = serde_json::json!([]);
        now["stopWords"] = serde_json::json!([]);
        assert!(
            super::settings_match(&now, &want),
            "reordered sets and extra keys match"
        );
        now["typoTolerance"]["minWordSizeForTypos"]["oneTypo"] = serde_json::json!(5);
        assert!(
            !super::settings_match(&now, &want),
            "a changed typo size does not"
        );
        let mut now = want.clone();
        now["searchableAttributes"] =
            serde_json::json!(["subtitle", "title", "text", "tags", "phones"]);
        assert!(
            !super::settings_match(&now, &want),
            "searchable order matters"
        );
    }

    #[test]
    fn key_uids_are_stable_and_uuid_shaped() {
        let a = super::stable_uid("rapport search rapport_");
        assert_eq!(a, super::stable_uid("rapport search rapport_"));
        assert_ne!(a, super::stable_uid("rapport write rapport_"));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
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
        // Another start (a restart, a CLI command) finds the settings in place and changes
        // nothing: an update would make Meilisearch re-index every document.
        let updates = || async {
            let url = format!(
                "{url}/tasks?types=settingsUpdate&indexUids={prefix}clients,{prefix}opportunities&limit=1000"
            );
            let (_, body) = super::call(super::agent(), "GET", url, key.clone(), None)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            body["results"].as_array().map_or(0, Vec::len)
        };
        let before = updates().await;
        let again = super::Meili::connect(&url, key.as_deref(), &prefix)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        crate::SearchIndex::health(&again)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            updates().await,
            before,
            "a second start updates no settings"
        );
    }
}
