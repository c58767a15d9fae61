//! The embedded backend: a tantivy index in a directory (or in memory for tests).
//!
//! Ranking: tantivy scores every fuzzy match alike, so each query word becomes a
//! disjunction of constant-score tiers — exact word in the title (12), exact elsewhere (6),
//! title prefix (8), prefix elsewhere (4), typo in the title (3) or elsewhere (1.5) — and
//! a document's score is the sum of its words' best tiers. "Margaret Hamilton" thus beats
//! "Margareta Hamiltonson", which beats a two-typo neighbour.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use tantivy::collector::{Count, DocSetCollector, TopDocs};
use tantivy::query::{
    AllQuery, BooleanQuery, ConstScoreQuery, DisjunctionMaxQuery, EnableScoring, FuzzyTermQuery,
    Occur, Query, TermQuery,
};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, FAST, STORED, STRING,
};
use tantivy::tokenizer::{AsciiFoldingFilter, LowerCaser, SimpleTokenizer, TextAnalyzer};
use tantivy::{
    doc, DocAddress, DocId, DocSet, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument,
    Term, TERMINATED,
};

use crate::{
    highlight, phone_keys, phone_query, typo_budget, Document, Hit, Kind, Query as SearchQuery,
    Results, SearchError, SearchIndex, Stats,
};

/// The fields counted as facets, as the console and the API name them.
const FACETS: [&str; 4] = ["status", "tag", "owner", "industry"];
/// The most values a facet lists (the most common).
const FACET_SIZE: usize = 50;

/// Matches per value per facet.
type Facets = BTreeMap<String, BTreeMap<String, u64>>;

const TOKENIZER: &str = "rapport_folded";
/// Memory for the writer's in-RAM segment before it flushes.
const WRITER_HEAP: usize = 100 * 1024 * 1024;

#[derive(Clone, Copy)]
struct Fields {
    id: Field,
    org: Field,
    kind: Field,
    title: Field,
    subtitle: Field,
    body: Field,
    phone: Field,
    status: Field,
    owner: Field,
    industry: Field,
    tag: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let folded = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(TOKENIZER)
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    let fields = Fields {
        id: b.add_text_field("id", STRING | STORED),
        org: b.add_text_field("org", STRING),
        kind: b.add_text_field("kind", STRING | STORED),
        title: b.add_text_field("title", folded.clone() | STORED),
        subtitle: b.add_text_field("subtitle", STORED),
        body: b.add_text_field("body", folded),
        phone: b.add_text_field("phone", STRING),
        status: b.add_text_field("status", STRING | FAST),
        owner: b.add_text_field("owner", STRING | FAST),
        industry: b.add_text_field("industry", STRING | FAST),
        tag: b.add_text_field("tag", STRING | FAST),
    };
    (b.build(), fields)
}

fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

fn term(field: Field, v: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, v),
        IndexRecordOption::Basic,
    ))
}

/// Every clause must hold; no clause at all (the filters left out as matching everything,
/// and no words) matches every document, where tantivy's empty query matches none.
fn all_of(must: Vec<(Occur, Box<dyn Query>)>) -> Box<dyn Query> {
    match must.is_empty() {
        true => Box::new(AllQuery),
        false => Box::new(BooleanQuery::new(must)),
    }
}

fn backend(e: impl std::fmt::Display) -> SearchError {
    SearchError::Backend(e.to_string())
}

struct Inner {
    index: Index,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    f: Fields,
}

/// A tantivy index shared by every request of the process.
#[derive(Clone)]
pub struct Embedded {
    inner: Arc<Inner>,
    started_empty: bool,
}

impl Embedded {
    /// Opens (or creates) the index in `dir`. An index of an earlier layout (its fields changed) is replaced by an empty one, which
    /// [`SearchIndex::started_empty`] reports so the platform rebuilds it from the database.
    pub fn open(dir: &Path) -> crate::Result<Self> {
        std::fs::create_dir_all(dir).map_err(backend)?;
        let (schema, f) = schema();
        let mmap = |dir: &Path| tantivy::directory::MmapDirectory::open(dir).map_err(backend);
        let index = match Index::open_or_create(mmap(dir)?, schema.clone()) {
            Ok(index) => index,
            Err(tantivy::TantivyError::SchemaError(_)) => {
                // why: never pull the files from under a process still writing them (an
                // older server); its writer's lock says whether one is.
                let old = Index::open(mmap(dir)?).map_err(backend)?;
                drop(
                    old.writer_with_num_threads::<TantivyDocument>(1, 15_000_000)
                        .map_err(|e| SearchError::Unavailable(e.to_string()))?,
                );
                drop(old);
                tracing::warn!(
                    dir = %dir.display(),
                    "the search index has an earlier layout: replaced by an empty one"
                );
                std::fs::remove_dir_all(dir).map_err(backend)?;
                std::fs::create_dir_all(dir).map_err(backend)?;
                Index::create(mmap(dir)?, schema, Default::default()).map_err(backend)?
            }
            Err(e) => return Err(backend(e)),
        };
        let mut me = Self::with_index(index, f)?;
        me.started_empty = me.count_sync() == 0;
        Ok(me)
    }

    /// An index in memory (tests, benchmarks).
    pub fn in_memory() -> crate::Result<Self> {
        let (schema, f) = schema();
        Self::with_index(Index::create_in_ram(schema), f)
    }

    fn with_index(index: Index, f: Fields) -> crate::Result<Self> {
        index.tokenizers().register(TOKENIZER, analyzer());
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(backend)?;
        let writer = index.writer(WRITER_HEAP).map_err(backend)?;
        Ok(Self {
            inner: Arc::new(Inner {
                index,
                reader,
                writer: Mutex::new(writer),
                f,
            }),
            started_empty: false,
        })
    }

    fn to_doc(f: &Fields, d: &Document) -> TantivyDocument {
        let mut doc = doc!(
            f.id => d.id.as_str(),
            f.org => d.org_id.as_str(),
            f.kind => d.kind.unwrap_or(Kind::Client).as_str(),
            f.title => d.title.as_str(),
            f.subtitle => d.subtitle.as_str(),
            f.body => d.subtitle.as_str(),
        );
        for t in &d.text {
            doc.add_text(f.body, t);
        }
        for t in &d.tags {
            doc.add_text(f.body, t);
            doc.add_text(f.tag, t);
        }
        for p in &d.phones {
            for key in phone_keys(p) {
                doc.add_text(f.phone, &key);
            }
        }
        if let Some(s) = &d.status {
            doc.add_text(f.status, s);
        }
        if let Some(o) = &d.owner {
            doc.add_text(f.owner, o);
        }
        if let Some(i) = &d.industry {
            doc.add_text(f.industry, i);
        }
        doc
    }

    /// Adds documents without committing (bulk loads commit once at the end).
    pub fn upsert_sync(&self, docs: &[Document], commit: bool) -> crate::Result<()> {
        let f = &self.inner.f;
        let mut writer = self.inner.writer.lock().map_err(backend)?;
        for d in docs {
            writer.delete_term(Term::from_field_text(f.id, &d.id));
            writer.add_document(Self::to_doc(f, d)).map_err(backend)?;
        }
        if commit {
            writer.commit().map_err(backend)?;
            drop(writer);
            self.inner.reader.reload().map_err(backend)?;
        }
        Ok(())
    }

    /// Commits what `upsert_sync(.., false)` added.
    pub fn commit(&self) -> crate::Result<()> {
        let mut writer = self.inner.writer.lock().map_err(backend)?;
        writer.commit().map_err(backend)?;
        drop(writer);
        self.inner.reader.reload().map_err(backend)
    }

    fn words(&self, text: &str) -> Vec<String> {
        let mut analyzer = self
            .inner
            .index
            .tokenizer_for_field(self.inner.f.title)
            .unwrap_or_else(|_| analyzer());
        let mut stream = analyzer.token_stream(text);
        let mut out = Vec::new();
        while stream.advance() {
            out.push(stream.token().text.clone());
        }
        out
    }

    /// The query: every word must match, each by its best tier; `typos` adds the tiers that
    /// forgive misspellings.
    fn build_query(
        &self,
        searcher: &tantivy::Searcher,
        q: &SearchQuery,
        typos: bool,
    ) -> Box<dyn Query> {
        let f = &self.inner.f;
        let mut must = self.filters(searcher, q);
        if let Some(digits) = phone_query(&q.text) {
            must.push((Occur::Must, term(f.phone, &digits)));
        } else {
            for w in self.words(&q.text) {
                must.push((Occur::Must, Box::new(self.word_query(&w, typos))));
            }
        }
        all_of(must)
    }

    /// What the query asks besides its words: the organization, the kind and the facets.
    fn filters(
        &self,
        searcher: &tantivy::Searcher,
        q: &SearchQuery,
    ) -> Vec<(Occur, Box<dyn Query>)> {
        let f = &self.inner.f;
        // why: an organization alone on its server (or a kind alone in the index) is in every
        // document, and its term then only costs: intersected with a common word's matches
        // it read all of its postings, a million at a million clients. A term every
        // document slot has (deleted ones included) selects nothing, so it is left out.
        let slots: u64 = searcher
            .segment_readers()
            .iter()
            .map(|r| u64::from(r.max_doc()))
            .sum();
        let everywhere = |t: &Term| searcher.doc_freq(t).is_ok_and(|n| n == slots && slots > 0);
        let mut must: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let mut pruned = vec![(f.org, q.org_id.as_str())];
        if let Some(k) = q.kind {
            pruned.push((f.kind, k.as_str()));
        }
        for (field, value) in pruned {
            if !everywhere(&Term::from_field_text(field, value)) {
                must.push((Occur::Must, term(field, value)));
            }
        }
        for (field, value) in [
            (f.status, &q.status),
            (f.tag, &q.tag),
            (f.owner, &q.owner),
            (f.industry, &q.industry),
        ] {
            if let Some(v) = value {
                must.push((Occur::Must, term(field, v)));
            }
        }
        if let Some(owners) = &q.owners {
            let any: Vec<(Occur, Box<dyn Query>)> = owners
                .iter()
                .map(|o| (Occur::Should, term(f.owner, o)))
                .collect();
            // No owners at all: nothing is visible.
            if any.is_empty() {
                must.push((Occur::Must, Box::new(tantivy::query::EmptyQuery)));
            } else {
                must.push((Occur::Must, Box::new(BooleanQuery::new(any))));
            }
        }
        // why: a filter selects, it does not rank. Scored, a term's BM25 weighs its field's
        // length, so with a tag filter a client with two tags ranked below one with one —
        // and below the best-tier page's order, which takes equal tiers by address.
        must.into_iter()
            .map(|(occur, q)| -> (Occur, Box<dyn Query>) {
                (occur, Box::new(ConstScoreQuery::new(q, 0.0)))
            })
            .collect()
    }

    /// The first `want` documents (in the index's order) that have every word as written
    /// in their title — the best tier of every word, so the first of the whole ranking,
    /// tied, and tantivy orders ties by address — or `None` when fewer have.
    fn best_tier_page(
        &self,
        searcher: &tantivy::Searcher,
        q: &SearchQuery,
        words: &[String],
        want: usize,
    ) -> crate::Result<Option<Vec<DocAddress>>> {
        let f = &self.inner.f;
        let mut must = self.filters(searcher, q);
        for w in words {
            must.push((Occur::Must, term(f.title, w)));
        }
        let weight = all_of(must)
            .weight(EnableScoring::disabled_from_searcher(searcher))
            .map_err(backend)?;
        let mut out = Vec::with_capacity(want);
        for (ord, reader) in searcher.segment_readers().iter().enumerate() {
            let mut scorer = weight.scorer(reader, 1.0).map_err(backend)?;
            let alive = reader.alive_bitset();
            let mut doc = scorer.doc();
            while doc != TERMINATED {
                if alive.is_none_or(|a| a.is_alive(doc)) {
                    out.push(DocAddress::new(ord as u32, doc));
                    if out.len() == want {
                        return Ok(Some(out));
                    }
                }
                doc = scorer.advance();
            }
        }
        Ok(None)
    }

    /// The typo-free query's matches, unranked: each word's four tiers match what its two
    /// prefix tiers match (a prefix includes the word). Also whether a filter remains.
    fn as_written(
        &self,
        searcher: &tantivy::Searcher,
        q: &SearchQuery,
        words: &[String],
    ) -> (Box<dyn Query>, bool) {
        let f = &self.inner.f;
        let mut must = self.filters(searcher, q);
        let filtered = !must.is_empty();
        for w in words {
            let either: Vec<(Occur, Box<dyn Query>)> = [f.title, f.body]
                .into_iter()
                .map(|field| -> (Occur, Box<dyn Query>) {
                    let t = Term::from_field_text(field, w);
                    if w.chars().count() >= 2 {
                        (
                            Occur::Should,
                            Box::new(FuzzyTermQuery::new_prefix(t, 0, true)),
                        )
                    } else {
                        (
                            Occur::Should,
                            Box::new(TermQuery::new(t, IndexRecordOption::Basic)),
                        )
                    }
                })
                .collect();
            must.push((Occur::Must, Box::new(BooleanQuery::new(either))));
        }
        (all_of(must), filtered)
    }

    /// How many documents `query` (from [`Self::as_written`]) matches.
    fn count(
        &self,
        searcher: &tantivy::Searcher,
        query: &dyn Query,
        filtered: bool,
    ) -> crate::Result<usize> {
        let weight = query
            .weight(EnableScoring::disabled_from_searcher(searcher))
            .map_err(backend)?;
        let mut n = 0;
        for reader in searcher.segment_readers() {
            if !filtered {
                n += weight.count(reader).map_err(backend)? as usize;
                continue;
            }
            // why: tantivy's own count ANDs 1,024-document bitsets when the words match
            // more than 3% of a segment, filling one from each filter's postings — all of
            // an organization's, most of a million at a million clients (two thirds of the
            // count). Stepping through the words' matches reads a filter's postings only
            // where they land.
            let mut scorer = weight.scorer(reader, 1.0).map_err(backend)?;
            let alive = reader.alive_bitset();
            let mut doc = scorer.doc();
            while doc != TERMINATED {
                n += usize::from(alive.is_none_or(|a| a.is_alive(doc)));
                doc = scorer.advance();
            }
        }
        Ok(n)
    }

    fn word_query(&self, w: &str, typos: bool) -> DisjunctionMaxQuery {
        let f = &self.inner.f;
        let tier = |q: Box<dyn Query>, score: f32| -> Box<dyn Query> {
            Box::new(ConstScoreQuery::new(q, score))
        };
        let exact = |field| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, w),
                IndexRecordOption::Basic,
            ))
        };
        let fuzzy = |field, distance, prefix: bool| -> Box<dyn Query> {
            let t = Term::from_field_text(field, w);
            Box::new(if prefix {
                FuzzyTermQuery::new_prefix(t, distance, true)
            } else {
                FuzzyTermQuery::new(t, distance, true)
            })
        };
        // why: a word matched as written outranks every word matched with a typo, whatever
        // the other words matched (Meilisearch's `typo` rule comes before its attribute
        // rules), so the typo-free matches are a prefix of the ranking and a search they
        // fill a page of need not look for typos at all (see `search_sync`).
        const AS_WRITTEN: f32 = 1000.0;
        let mut tiers = vec![
            tier(exact(f.title), AS_WRITTEN + 12.0),
            tier(exact(f.body), AS_WRITTEN + 6.0),
        ];
        if w.chars().count() >= 2 {
            tiers.push(tier(fuzzy(f.title, 0, true), AS_WRITTEN + 8.0));
            tiers.push(tier(fuzzy(f.body, 0, true), AS_WRITTEN + 4.0));
        }
        let budget = typo_budget(w);
        if typos && budget > 0 {
            tiers.push(tier(fuzzy(f.title, budget, false), 3.0));
            tiers.push(tier(fuzzy(f.title, budget, true), 2.5));
            tiers.push(tier(fuzzy(f.body, budget, false), 1.5));
            tiers.push(tier(fuzzy(f.body, budget, true), 1.0));
        }
        DisjunctionMaxQuery::new(tiers)
    }

    /// How many documents `query` matches, and how many of them hold each value of each
    /// facet (the [`FACET_SIZE`] most common). why: tantivy's terms aggregation cost 2.4 ms
    /// for a common name's 45,400 matches (a second pass over them, its buckets serialized
    /// to JSON and read back): a console search cost 2.6× an API one. Counting each
    /// segment's column ordinals while stepping through the matches once, and naming only
    /// the ordinals met, does the same work the count does.
    fn tally(
        &self,
        searcher: &tantivy::Searcher,
        query: &dyn Query,
    ) -> crate::Result<(usize, Facets)> {
        let weight = query
            .weight(EnableScoring::disabled_from_searcher(searcher))
            .map_err(backend)?;
        let mut n = 0;
        let mut facets: Facets = FACETS
            .iter()
            .map(|name| (name.to_string(), BTreeMap::new()))
            .collect();
        for reader in searcher.segment_readers() {
            let fast = reader.fast_fields();
            let mut columns = Vec::with_capacity(FACETS.len());
            for name in FACETS {
                if let Some(column) = fast.str(name).map_err(backend)? {
                    let counts = vec![0u64; column.num_terms()];
                    columns.push((name, column, counts));
                }
            }
            // why: in blocks, as tantivy's collectors are fed (a union of the words' tiers
            // fills a bitset rather than stepping), and each column read for a block at once.
            let alive = reader.alive_bitset();
            let (mut kept, mut docs_out, mut rows, mut ords) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            weight
                .for_each_no_score(reader, &mut |block: &[DocId]| {
                    let block = match alive {
                        Some(alive) => {
                            kept.clear();
                            kept.extend(block.iter().copied().filter(|d| alive.is_alive(*d)));
                            &kept[..]
                        }
                        None => block,
                    };
                    n += block.len();
                    for (_, column, counts) in &mut columns {
                        let column = column.ords();
                        docs_out.clear();
                        rows.clear();
                        column.row_ids_for_docs(block, &mut docs_out, &mut rows);
                        ords.resize(rows.len(), 0u64);
                        column.values.get_vals(&rows, &mut ords);
                        for ord in &ords {
                            counts[*ord as usize] += 1;
                        }
                    }
                })
                .map_err(backend)?;
            let mut value = String::new();
            for (name, column, counts) in columns {
                let into = facets.entry(name.to_string()).or_default();
                for (ord, count) in counts.into_iter().enumerate().filter(|(_, c)| *c > 0) {
                    if column.ord_to_str(ord as u64, &mut value).map_err(backend)? {
                        *into.entry(value.clone()).or_default() += count;
                    }
                }
            }
        }
        for counts in facets.values_mut() {
            if counts.len() > FACET_SIZE {
                let mut by_count: Vec<(String, u64)> = std::mem::take(counts).into_iter().collect();
                by_count.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                by_count.truncate(FACET_SIZE);
                *counts = by_count.into_iter().collect();
            }
        }
        Ok((n, facets))
    }

    /// The search, blocking (the async trait runs it on the blocking pool).
    pub fn search_sync(&self, q: &SearchQuery) -> crate::Result<Results> {
        let f = self.inner.f;
        let searcher = self.inner.reader.searcher();
        let limit = q.limit.clamp(1, 1000);
        let run = |query: &dyn Query| {
            searcher
                .search(
                    query,
                    &(
                        TopDocs::with_limit(limit)
                            .and_offset(q.offset)
                            .order_by_score(),
                        Count,
                    ),
                )
                .map_err(backend)
        };
        let words = match phone_query(&q.text) {
            Some(_) => Vec::new(),
            None => self.words(&q.text),
        };
        let want = q.offset.saturating_add(limit);
        // Without words the filters alone decide (browsing by facet).
        let mut query = self.build_query(&searcher, q, false);
        // why: ranking every match of a common name (45,000 of a million clients) cost
        // 2.8 ms of CPU in the union of each word's tiers and their scores. When documents
        // with every word in the title fill the page, the page is their first ones in the
        // index's order (ranked first, tied, ties by address), and the total a count that
        // scores nothing.
        let best = match words.is_empty() {
            true => None,
            false => self.best_tier_page(&searcher, q, &words, want)?,
        };
        let mut facets: Option<Facets> = None;
        let (top, total) = match best {
            Some(page) => {
                let filtered;
                // The facets count the same matches, as cheaply.
                (query, filtered) = self.as_written(&searcher, q, &words);
                let total = match q.facets {
                    true => {
                        let (total, counted) = self.tally(&searcher, query.as_ref())?;
                        facets = Some(counted);
                        total
                    }
                    false => self.count(&searcher, query.as_ref(), filtered)?,
                };
                (
                    page.into_iter().skip(q.offset).map(|a| (0.0, a)).collect(),
                    total,
                )
            }
            None => {
                let (mut top, mut total) = run(query.as_ref())?;
                // why: the typo tiers enumerate every term within two edits of each word and
                // union their postings — most of a common word's cost. Typo-free matches
                // rank first, so when they fill the page it is the page the full query would
                // give, and the typos are looked for only when they do not (the total then
                // counts the matches as written).
                let typos = words.iter().any(|w| typo_budget(w) > 0);
                if typos && total < want {
                    query = self.build_query(&searcher, q, true);
                    (top, total) = run(query.as_ref())?;
                }
                (top, total)
            }
        };
        let mut hits = Vec::with_capacity(top.len());
        for (_, addr) in top {
            let doc: TantivyDocument = searcher.doc(addr).map_err(backend)?;
            let text = |field| {
                doc.get_first(field)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            let title = text(f.title);
            let subtitle = text(f.subtitle);
            let mut highlights = BTreeMap::new();
            highlights.insert("title".to_string(), highlight(&title, &q.text));
            highlights.insert("subtitle".to_string(), highlight(&subtitle, &q.text));
            hits.push(Hit {
                kind: Kind::parse(&text(f.kind)).unwrap_or(Kind::Client),
                id: text(f.id),
                title,
                subtitle,
                highlights,
            });
        }
        let facets = match (q.facets, facets) {
            (true, None) => self.tally(&searcher, query.as_ref())?.1,
            (_, counted) => counted.unwrap_or_default(),
        };
        Ok(Results {
            hits,
            total,
            facets,
        })
    }

    pub fn delete_sync(&self, ids: &[String]) -> crate::Result<()> {
        let f = &self.inner.f;
        let mut writer = self.inner.writer.lock().map_err(backend)?;
        for id in ids {
            writer.delete_term(Term::from_field_text(f.id, id));
        }
        writer.commit().map_err(backend)?;
        drop(writer);
        self.inner.reader.reload().map_err(backend)
    }

    fn ids_sync(&self, org_id: &str, kind: Kind) -> crate::Result<Vec<String>> {
        let f = &self.inner.f;
        let searcher = self.inner.reader.searcher();
        let query = BooleanQuery::new(vec![
            (
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.org, org_id),
                    IndexRecordOption::Basic,
                )) as Box<dyn Query>,
            ),
            (
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.kind, kind.as_str()),
                    IndexRecordOption::Basic,
                )),
            ),
        ]);
        let docs = searcher.search(&query, &DocSetCollector).map_err(backend)?;
        let mut out = Vec::with_capacity(docs.len());
        for addr in docs {
            let doc: TantivyDocument = searcher.doc(addr).map_err(backend)?;
            if let Some(id) = doc.get_first(f.id).and_then(|v| v.as_str()) {
                out.push(id.to_string());
            }
        }
        Ok(out)
    }

    pub fn count_sync(&self) -> u64 {
        self.inner.reader.searcher().num_docs()
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> crate::Result<T> + Send + 'static,
) -> crate::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SearchError::Backend(e.to_string()))?
}

#[async_trait::async_trait]
impl SearchIndex for Embedded {
    async fn upsert(&self, docs: Vec<Document>) -> crate::Result<()> {
        let me = self.clone();
        blocking(move || me.upsert_sync(&docs, true)).await
    }

    async fn delete(&self, ids: Vec<String>) -> crate::Result<()> {
        let me = self.clone();
        blocking(move || me.delete_sync(&ids)).await
    }

    async fn ids(&self, org_id: &str, kind: Kind) -> crate::Result<Vec<String>> {
        let me = self.clone();
        let org = org_id.to_string();
        blocking(move || me.ids_sync(&org, kind)).await
    }

    async fn search(&self, query: &SearchQuery) -> crate::Result<Results> {
        let me = self.clone();
        let q = query.clone();
        blocking(move || me.search_sync(&q)).await
    }

    async fn health(&self) -> crate::Result<()> {
        Ok(())
    }

    fn started_empty(&self) -> bool {
        self.started_empty
    }

    async fn stats(&self) -> crate::Result<Stats> {
        Ok(Stats {
            documents: self.count_sync(),
            backend: "embedded",
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{Document, Kind, Query};

    #[tokio::test(flavor = "multi_thread")]
    async fn the_contract_holds() {
        let index = super::Embedded::in_memory().unwrap_or_else(|e| panic!("{e}"));
        crate::contract::run(&index).await;
    }

    fn doc(id: &str, title: &str, subtitle: &str) -> Document {
        Document {
            id: id.into(),
            org_id: "o".into(),
            kind: Some(Kind::Client),
            title: title.into(),
            subtitle: subtitle.into(),
            ..Document::default()
        }
    }

    fn search(
        index: &super::Embedded,
        text: &str,
        offset: usize,
        limit: usize,
    ) -> (Vec<String>, usize) {
        let r = index
            .search_sync(&Query {
                org_id: "o".into(),
                text: text.into(),
                offset,
                limit,
                ..Query::default()
            })
            .unwrap_or_else(|e| panic!("{e}"));
        (r.hits.into_iter().map(|h| h.title).collect(), r.total)
    }

    #[test]
    fn an_index_of_an_earlier_layout_is_replaced_by_an_empty_one_to_rebuild() {
        use tantivy::schema::{Schema, STORED, TEXT};
        let dir = std::env::temp_dir().join(format!(
            "rapport-layout-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        // An index whose fields differ, as a version that changes them leaves behind.
        let mut old = Schema::builder();
        let title = old.add_text_field("title", TEXT | STORED);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let earlier =
            tantivy::Index::create_in_dir(&dir, old.build()).unwrap_or_else(|e| panic!("{e}"));
        let mut writer = earlier
            .writer_with_num_threads::<tantivy::TantivyDocument>(1, 15_000_000)
            .unwrap_or_else(|e| panic!("{e}"));
        writer
            .add_document(tantivy::doc!(title => "Ada Hamilton"))
            .unwrap_or_else(|e| panic!("{e}"));
        writer.commit().unwrap_or_else(|e| panic!("{e}"));
        // While an older process still writes it, it is left alone.
        match super::Embedded::open(&dir) {
            Err(crate::SearchError::Unavailable(_)) => {}
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("an index in use was replaced"),
        }
        drop(writer);
        let index = super::Embedded::open(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            crate::SearchIndex::started_empty(&index),
            "a rebuild is asked for"
        );
        assert_eq!(index.count_sync(), 0);
        index
            .upsert_sync(&[doc("1", "Ada Hamilton", "")], true)
            .unwrap_or_else(|e| panic!("{e}"));
        drop(index);
        // Reopened with its documents, nothing to rebuild.
        let index = super::Embedded::open(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert!(!crate::SearchIndex::started_empty(&index));
        assert_eq!(search(&index, "hamilton", 0, 5).0, ["Ada Hamilton"]);
        drop(index);
        std::fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn a_search_of_both_kinds_finds_a_misspelt_deal_beside_many_clients_as_written() {
        let index = super::Embedded::in_memory().unwrap_or_else(|e| panic!("{e}"));
        let mut docs: Vec<Document> = (0..30)
            .map(|i| doc(&format!("c{i}"), &format!("Client{i} Hamilton"), ""))
            .collect();
        let mut deal = doc("d1", "Hamiltn renewal", "");
        deal.kind = Some(Kind::Opportunity);
        docs.push(deal);
        index
            .upsert_sync(&docs, true)
            .unwrap_or_else(|e| panic!("{e}"));
        let ask = |kind| {
            index
                .search_sync(&Query {
                    org_id: "o".into(),
                    text: "hamilton".into(),
                    kind,
                    limit: 10,
                    ..Query::default()
                })
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let deals = ask(Some(Kind::Opportunity));
        assert_eq!(deals.total, 1, "the deal, by its typo");
        assert_eq!(deals.hits[0].title, "Hamiltn renewal");
        let clients = ask(Some(Kind::Client));
        assert_eq!(clients.total, 30, "clients only");
        assert!(clients.hits.iter().all(|h| h.kind == Kind::Client));
        // Both kinds at once: the clients as written fill the page.
        let both = ask(None);
        assert_eq!(both.total, 30);
        assert!(both.hits.iter().all(|h| h.title.ends_with("Hamilton")));
    }

    #[test]
    fn words_as_written_rank_before_typos_and_spare_looking_for_them() {
        let index = super::Embedded::in_memory().unwrap_or_else(|e| panic!("{e}"));
        index
            .upsert_sync(
                &[
                    doc("1", "Ada Hamilton", ""),
                    doc("2", "Bob Hamilton", ""),
                    doc("3", "Cy Hamiltonian", ""),
                    doc("4", "Dee Hamiltn", ""),
                    doc("5", "Ada Hamiltn", ""),
                    doc("6", "Zed", "adams hamiltonian"),
                ],
                true,
            )
            .unwrap_or_else(|e| panic!("{e}"));
        // Four matches as written ("hamilton", "hamiltonian" twice as a prefix): a page of
        // two is theirs alone, and the total counts them.
        let (page, total) = search(&index, "hamilton", 0, 2);
        // (Equal scores come in the index's segment order, which its writer threads decide.)
        let mut first = page.clone();
        first.sort();
        assert_eq!(
            first,
            ["Ada Hamilton", "Bob Hamilton"],
            "exact titles first"
        );
        assert_eq!(total, 4, "the matches as written");
        // A page past them looks for typos too; the pages follow one ranking.
        let (all, total) = search(&index, "hamilton", 0, 10);
        assert_eq!(total, 6, "with the misspelt ones: {all:?}");
        let mut misspelt = all[4..].to_vec();
        misspelt.sort();
        assert_eq!(
            misspelt,
            ["Ada Hamiltn", "Dee Hamiltn"],
            "typos last: {all:?}"
        );
        let (second, _) = search(&index, "hamilton", 2, 2);
        let (third, _) = search(&index, "hamilton", 4, 2);
        assert_eq!([page, second, third].concat(), all, "pages of one ranking");
        // Two words: both as written (prefixes of a subtitle) beat an exact title word with
        // the other misspelt.
        let (t, _) = search(&index, "ada hamilton", 0, 10);
        let pos = |name: &str| t.iter().position(|x| x == name);
        assert!(pos("Zed") < pos("Ada Hamiltn"), "{t:?}");
        assert_eq!(t.first().map(String::as_str), Some("Ada Hamilton"));
    }

    /// The page and total the whole typo-free ranking gives (every tier of every word
    /// scored, every filter applied): what the search's shortcuts must reproduce.
    fn ranked(index: &super::Embedded, q: &Query) -> (Vec<String>, usize, Facets) {
        use tantivy::collector::{Count, TopDocs};
        use tantivy::query::{BooleanQuery, ConstScoreQuery, Occur};
        use tantivy::schema::Value;
        let f = &index.inner.f;
        let searcher = index.inner.reader.searcher();
        // Filters select without ranking.
        let filter = |field, v: &str| -> (Occur, Box<dyn tantivy::query::Query>) {
            (
                Occur::Must,
                Box::new(ConstScoreQuery::new(super::term(field, v), 0.0)),
            )
        };
        let mut must = vec![filter(f.org, &q.org_id)];
        if let Some(k) = q.kind {
            must.push(filter(f.kind, k.as_str()));
        }
        if let Some(t) = &q.tag {
            must.push(filter(f.tag, t));
        }
        for w in index.words(&q.text) {
            must.push((Occur::Must, Box::new(index.word_query(&w, false))));
        }
        let query = BooleanQuery::new(must);
        let (top, total) = searcher
            .search(
                &query,
                &(
                    TopDocs::with_limit(q.limit)
                        .and_offset(q.offset)
                        .order_by_score(),
                    Count,
                ),
            )
            .unwrap_or_else(|e| panic!("{e}"));
        let ids = top
            .into_iter()
            .map(|(_, a)| {
                let d: tantivy::TantivyDocument = searcher.doc(a).unwrap_or_else(|e| panic!("{e}"));
                d.get_first(f.id)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        let facets = aggregated(&searcher, &query).unwrap_or_else(|e| panic!("{e}"));
        (ids, total, facets)
    }

    type Facets = std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>>;

    fn aggregated(
        searcher: &tantivy::Searcher,
        query: &dyn tantivy::query::Query,
    ) -> crate::Result<Facets> {
        use tantivy::aggregation::agg_req::Aggregations;
        use tantivy::aggregation::AggregationCollector;
        // tantivy's own terms aggregation, which the index's tally replaced: the reference.
        let req: Aggregations = serde_json::from_value(serde_json::json!({
            "status": {"terms": {"field": "status", "size": 50}},
            "tag": {"terms": {"field": "tag", "size": 50}},
            "owner": {"terms": {"field": "owner", "size": 50}},
            "industry": {"terms": {"field": "industry", "size": 50}},
        }))
        .map_err(super::backend)?;
        let collector = AggregationCollector::from_aggs(req, Default::default());
        let result = searcher.search(query, &collector).map_err(super::backend)?;
        let json = serde_json::to_value(result).map_err(super::backend)?;
        let mut out = std::collections::BTreeMap::new();
        for name in ["status", "tag", "owner", "industry"] {
            let mut counts = std::collections::BTreeMap::new();
            for b in json[name]["buckets"].as_array().into_iter().flatten() {
                if let (Some(k), Some(n)) = (b["key"].as_str(), b["doc_count"].as_u64()) {
                    counts.insert(k.to_string(), n);
                }
            }
            out.insert(name.to_string(), counts);
        }
        Ok(out)
    }

    #[test]
    fn shortcuts_answer_the_page_and_total_of_the_whole_ranking() {
        const FIRST: &[&str] = &["Ada", "Bob", "Cy", "Dee", "Hamilton"];
        const LAST: &[&str] = &["Hamilton", "Hamiltonian", "Lovelace", "Hopper"];
        for one_org in [false, true] {
            let index = super::Embedded::in_memory().unwrap_or_else(|e| panic!("{e}"));
            // Several commits (several segments), and every tenth document written twice
            // (its first version deleted), as a live index is.
            for round in 0..4 {
                let docs: Vec<Document> = (0..120)
                    .map(|i| {
                        let n = round * 120 + i;
                        let mut d = doc(
                            &format!("d{n}"),
                            &format!("{} {}", FIRST[n % 5], LAST[(n / 5) % 4]),
                            if n % 7 == 0 { "hamilton & co" } else { "" },
                        );
                        if !one_org && n % 3 == 0 {
                            d.org_id = "p".into();
                        }
                        if n % 4 == 0 {
                            d.kind = Some(Kind::Opportunity);
                        }
                        d.status = Some(["lead", "customer", "prospect"][n % 3].into());
                        if n % 5 == 0 {
                            d.tags = vec!["VIP".into()];
                        }
                        if n % 3 == 0 {
                            d.tags.push("Partner".into());
                        }
                        d
                    })
                    .collect();
                index
                    .upsert_sync(&docs, true)
                    .unwrap_or_else(|e| panic!("{e}"));
                let again: Vec<Document> = docs
                    .iter()
                    .filter(|d| d.id.ends_with('0'))
                    .cloned()
                    .collect();
                index
                    .upsert_sync(&again, true)
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            for text in [
                "hamilton",
                "ada hamilton",
                "hamilton ada",
                "hamil",
                "lovelace",
            ] {
                for (kind, tag) in [
                    (None, None),
                    (Some(Kind::Client), None),
                    (None, Some("VIP".to_string())),
                ] {
                    for (offset, limit) in [(0, 5), (5, 5), (0, 20), (17, 9), (60, 10)] {
                        let q = Query {
                            org_id: "o".into(),
                            text: text.into(),
                            kind,
                            tag: tag.clone(),
                            offset,
                            limit,
                            facets: true,
                            ..Query::default()
                        };
                        let (want, want_total, want_facets) = ranked(&index, &q);
                        // Only where the words as written fill the page (else typos
                        // join the ranking).
                        if want_total < offset + limit {
                            continue;
                        }
                        let got = index.search_sync(&q).unwrap_or_else(|e| panic!("{e}"));
                        let ids: Vec<String> = got.hits.into_iter().map(|h| h.id).collect();
                        let case = format!(
                            "{text:?} {kind:?} {tag:?} {offset}+{limit}, one org {one_org}"
                        );
                        assert_eq!(ids, want, "{case}");
                        assert_eq!(got.total, want_total, "{case}");
                        assert_eq!(got.facets, want_facets, "{case}");
                    }
                }
            }
        }
    }
}
