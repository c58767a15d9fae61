//! Rapport search: one [`SearchIndex`] trait over two backends.
//!
//! - [`embedded::Embedded`]: tantivy in the data directory, for single-machine installs and
//!   tests. tantivy because it is the maintained embedded full-text engine in Rust (the
//!   engine behind Quickwit): typo-tolerant (Levenshtein automata) and prefix queries,
//!   fast fields for filters and facets, mmap'd segments, no server. Its fuzzy matches all
//!   score alike, so the query builder ranks exact over prefix over typo matches itself.
//! - [`meili::Meili`]: Meilisearch through `meilisearch-sdk`, one index per entity with the
//!   organization as a filter on every query.
//!
//! The database stays the source of truth; the platform feeds the index through an outbox.
//! `contract` (feature `test-support`) is the behaviour both backends must show; each runs it
//! in its tests.

#[cfg(any(test, feature = "test-support"))]
pub mod contract;
pub mod embedded;
pub mod meili;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// What a document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub enum Kind {
    Client,
    Opportunity,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Client => "client",
            Kind::Opportunity => "opportunity",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "client" => Some(Kind::Client),
            "opportunity" => Some(Kind::Opportunity),
            _ => None,
        }
    }
}

/// One searchable record. `id` is unique across organizations (a UUID).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    pub id: String,
    pub org_id: String,
    pub kind: Option<Kind>,
    /// The name people look for: a client's display name, a deal's name.
    pub title: String,
    /// A second line: company and e-mail, or the deal's client and stage.
    pub subtitle: String,
    /// Other words that should find it: names, company, e-mails, city, country, tags,
    /// searchable custom field values.
    pub text: Vec<String>,
    /// Phone numbers as stored; matched by their digits whatever the formatting.
    pub phones: Vec<String>,
    pub tags: Vec<String>,
    pub status: Option<String>,
    /// The user it is assigned to: role filtering uses it.
    pub owner: Option<String>,
    pub industry: Option<String>,
}

/// A search. `org_id` is mandatory: no query ever spans organizations.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub org_id: String,
    pub text: String,
    pub kind: Option<Kind>,
    /// When set, only documents owned by one of these users (a sales rep sees their own).
    pub owners: Option<Vec<String>>,
    pub status: Option<String>,
    pub tag: Option<String>,
    pub owner: Option<String>,
    pub industry: Option<String>,
    pub limit: usize,
    pub offset: usize,
    /// Count matches per status, tag, owner and industry.
    pub facets: bool,
}

/// One result: highlights are HTML-escaped text with `<mark>` around matched words.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hit {
    pub kind: Kind,
    pub id: String,
    pub title: String,
    pub subtitle: String,
    pub highlights: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Results {
    pub hits: Vec<Hit>,
    /// Matches in all (may be an estimate on Meilisearch). Embedded: when the words as
    /// written fill the page, the matches as written (the typo tiers are not run).
    pub total: usize,
    /// Facet → value → count, when asked for.
    pub facets: BTreeMap<String, BTreeMap<String, u64>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub documents: u64,
    pub backend: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("the search index is unavailable: {0}")]
    Unavailable(String),
    #[error("the search index failed: {0}")]
    Backend(String),
    #[error("bad search: {0}")]
    BadQuery(String),
}

pub type Result<T> = std::result::Result<T, SearchError>;

/// A search backend. Writes are idempotent (upsert by id, delete of a missing id is fine),
/// so the outbox may deliver a change twice.
#[async_trait::async_trait]
pub trait SearchIndex: Send + Sync {
    async fn upsert(&self, docs: Vec<Document>) -> Result<()>;
    async fn delete(&self, ids: Vec<String>) -> Result<()>;
    /// Every document id of the organization (reindex uses it to drop strays).
    async fn ids(&self, org_id: &str, kind: Kind) -> Result<Vec<String>>;
    async fn search(&self, query: &Query) -> Result<Results>;
    async fn health(&self) -> Result<()>;
    async fn stats(&self) -> Result<Stats>;

    /// Whether the index held nothing when this process opened it (new, emptied, or
    /// replaced because its layout changed) while the database may hold records: the
    /// platform then rebuilds it. Backends that keep their index elsewhere say no.
    fn started_empty(&self) -> bool {
        false
    }

    /// An empty index beside this one for a full rebuild, when the backend can swap one in
    /// atomically (Meilisearch); `None` means rebuild in place. Writes to it may be queued:
    /// [`SearchIndex::promote`] waits for them.
    async fn fresh(&self) -> Result<Option<Arc<dyn SearchIndex>>> {
        Ok(None)
    }

    /// Swaps the index [`SearchIndex::fresh`] gave in place of this one, in one step, and
    /// drops the old documents. Nothing to do without one.
    async fn promote(&self) -> Result<()> {
        Ok(())
    }
}

/// Lower case, accents folded to ASCII where there is a plain letter (é → e, ß → ss).
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().flat_map(char::to_lowercase) {
        match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => out.push('a'),
            'æ' => out.push_str("ae"),
            'ç' | 'ć' | 'č' => out.push('c'),
            'ď' | 'đ' => out.push('d'),
            'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => out.push('e'),
            'ğ' => out.push('g'),
            'ì' | 'í' | 'î' | 'ï' | 'ī' | 'į' | 'ı' => out.push('i'),
            'ł' | 'ľ' | 'ĺ' => out.push('l'),
            'ñ' | 'ń' | 'ň' => out.push('n'),
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => out.push('o'),
            'œ' => out.push_str("oe"),
            'ř' | 'ŕ' => out.push('r'),
            'ś' | 'š' | 'ş' | 'ș' => out.push('s'),
            'ß' => out.push_str("ss"),
            'ť' | 'ţ' | 'ț' => out.push('t'),
            'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' | 'ų' => out.push('u'),
            'ý' | 'ÿ' => out.push('y'),
            'ź' | 'ż' | 'ž' => out.push('z'),
            'þ' => out.push_str("th"),
            c => out.push(c),
        }
    }
    out
}

/// Words of a text, folded: runs of letters and digits.
pub fn words(s: &str) -> Vec<String> {
    fold(s)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// The digits of a phone number.
pub fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// What a phone number is found by: its digits and every suffix of at least 4 digits
/// (people type the local part, or the last digits, in any format).
pub fn phone_keys(phone: &str) -> Vec<String> {
    let d = digits(phone);
    (0..d.len().saturating_sub(3))
        .map(|i| d[i..].to_string())
        .collect()
}

/// A query that is a phone number: no letters and at least 4 digits.
pub fn phone_query(text: &str) -> Option<String> {
    let d = digits(text);
    (d.len() >= 4 && !text.chars().any(char::is_alphabetic)).then_some(d)
}

/// Edits allowed for a word of this length: none for short words, one from 4, two from 8.
pub fn typo_budget(word: &str) -> u8 {
    match word.chars().count() {
        0..=3 => 0,
        4..=7 => 1,
        _ => 2,
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    // Damerau (optimal string alignment): a swapped pair counts as one typo.
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// Whether a (folded) word of a document answers a query word: exactly, as a prefix, or
/// within the typo budget (of the whole word or of its start).
pub fn word_matches(word: &str, query_word: &str) -> bool {
    if word.starts_with(query_word) {
        return true;
    }
    let budget = usize::from(typo_budget(query_word));
    if budget == 0 {
        return false;
    }
    if edit_distance(word, query_word) <= budget {
        return true;
    }
    let n = query_word.chars().count();
    let head: String = word.chars().take(n).collect();
    edit_distance(&head, query_word) <= budget
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` HTML-escaped with `<mark>` around the words that answer the query.
pub fn highlight(text: &str, query: &str) -> String {
    let wanted = words(query);
    let phone = phone_query(query);
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.is_empty() {
            return;
        }
        let folded = fold(word);
        let hit = wanted.iter().any(|q| word_matches(&folded, q))
            || phone.as_deref().is_some_and(|p| {
                word.chars().all(|c| c.is_ascii_digit()) && p.contains(word.as_str())
            });
        if hit {
            out.push_str("<mark>");
            out.push_str(&escape(word));
            out.push_str("</mark>");
        } else {
            out.push_str(&escape(word));
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_alphanumeric() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push_str(&escape(&c.to_string()));
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_and_typos() {
        assert_eq!(fold("Zoë Ærøskøbing"), "zoe aeroskobing");
        assert!(word_matches("john", "jonh"));
        assert!(word_matches("smith", "smiht"));
        assert!(word_matches("margaret", "mrgaret"));
        assert!(word_matches("hamilton", "hamiltn"));
        assert!(word_matches("hamilton", "ham"));
        assert!(word_matches("jones", "jon"), "a word matches by its start");
        assert!(!word_matches("jon", "jones"), "but not by a longer word");
        assert!(!word_matches("ada", "bob"));
        assert_eq!(
            phone_query("+1 (555) 123-4567").as_deref(),
            Some("15551234567")
        );
        assert_eq!(phone_query("555 Main"), None);
        assert!(phone_keys("+1 555 123 4567").contains(&"1234567".to_string()));
    }

    #[test]
    fn highlights_are_escaped_and_marked() {
        assert_eq!(
            highlight("Margaret <Hamilton>", "mrgaret"),
            "<mark>Margaret</mark> &lt;Hamilton&gt;"
        );
    }
}
