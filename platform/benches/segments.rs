//! Segment figures (issue 21): over 1,000,000 clients, 5,000,000 interactions and 200,000
//! deals, how long a segment of four conditions takes to count (target under 1 s; 300 ms
//! on PostgreSQL), its first page of members, the first full evaluation that fills its
//! members, one round of the incremental evaluation (500 changed clients), the nightly
//! scores for every client (target under 5 minutes at 1M), every standard report and a
//! dashboard of three charts over the last 90 days (target under 1 s).
//!
//!   cargo bench -p rapport-platform --bench segments
//!   BENCH_CLIENTS=1000000 BENCH_DATABASE_URL=postgres://… cargo bench -p rapport-platform --bench segments
//!
//! `BENCH_KEEP=1` keeps the database; `BENCH_REUSE=<schema>` (PostgreSQL) or
//! `BENCH_REUSE=<file>` (SQLite) measures again on it without seeding.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use rapport::db::DbConn;
use rapport::domain::audit::AuditContext;
use rapport::domain::orgs::service;
use rapport::domain::segments::{self, Catalog, Input};
use serde_json::json;
use support::{env_or, fresh};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// `per` completed interactions per client over the last year, set-based in SQL (the
/// seed's row-by-row history would take hours at this size).
fn seed_interactions(c: &mut DbConn, org: &str, per: usize) {
    if let DbConn::Postgresql(pg) = c {
        // Five million rows in one statement: past the request time limit on purpose.
        pg.batch_execute("SET statement_timeout = 0").unwrap();
    }
    let sql = match c {
        DbConn::Sqlite(_) => format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {per})
             INSERT INTO interactions (id, organization_id, client_id, kind, subject, content,
               status, occurred_at, metadata, version, created_at, updated_at)
             SELECT lower(hex(randomblob(16))), c.organization_id, c.id,
               CASE abs(random()) % 4 WHEN 0 THEN 'call' WHEN 1 THEN 'email' WHEN 2 THEN 'meeting' ELSE 'note' END,
               'Bench', '', 'completed',
               datetime('now', '-' || (abs(random()) % 365) || ' days'), '{{}}', 1,
               datetime('now'), datetime('now')
             FROM clients c, n WHERE c.organization_id = '{org}'"
        ),
        DbConn::Postgresql(_) => format!(
            "INSERT INTO interactions (id, organization_id, client_id, kind, subject, content,
               status, occurred_at, metadata, version, created_at, updated_at)
             SELECT md5(random()::text || c.id || n), c.organization_id, c.id,
               (ARRAY['call','email','meeting','note'])[1 + floor(random() * 4)::int],
               'Bench', '', 'completed',
               now()::timestamp - (floor(random() * 365) || ' days')::interval, '{{}}', 1,
               now()::timestamp, now()::timestamp
             FROM clients c, generate_series(1, {per}) n WHERE c.organization_id = '{org}'"
        ),
    };
    c.batch_execute(&sql).unwrap();
}

fn main() {
    let clients: usize = env_or("BENCH_CLIENTS", "100000").parse().unwrap();
    let deals: usize = env_or("BENCH_DEALS", &(clients / 5).to_string())
        .parse()
        .unwrap();
    let per: usize = env_or("BENCH_INTERACTIONS_PER_CLIENT", "5")
        .parse()
        .unwrap();
    let (_target, pool, config) = fresh("segments", 4);
    let mut c = pool.get().unwrap();
    // A reused database (BENCH_REUSE) keeps its organization and data.
    let kept = {
        use diesel::prelude::*;
        use rapport::db::schema::organizations as o;
        o::table
            .filter(o::name.eq("Segment bench"))
            .select(o::id)
            .first::<String>(&mut c)
            .optional()
            .unwrap()
    };
    let org = match kept {
        Some(id) => {
            println!("reusing the seeded database (BENCH_REUSE)");
            rapport::domain::orgs::store::find_org(&mut c, &id)
                .unwrap()
                .unwrap()
        }
        None => {
            let org = service::create_org(&mut c, "Segment bench").unwrap();
            let t = Instant::now();
            rapport::seed::seed_clients(&mut c, &org, clients, 7, |_| {}).unwrap();
            rapport::seed::seed_deals(&mut c, &org, deals, 7, |_| {}).unwrap();
            seed_interactions(&mut c, &org.id, per);
            rapport::db::refresh_statistics(&mut c).unwrap();
            if let DbConn::Postgresql(pg) = &mut *c {
                // why: the interactions' last-contact trigger rewrote every client row, and
                // this machine's PostgreSQL runs without autovacuum: unvacuumed, every
                // index-only count visits the heap (the overview's new-clients count took
                // 260 ms instead of 15). A served database has autovacuum for this.
                pg.batch_execute(
                    "VACUUM (ANALYZE) clients, interactions, opportunities, client_tags",
                )
                .unwrap();
            }
            println!(
                "seeded {clients} clients, {deals} deals, {} interactions in {:.1} s",
                clients * per,
                t.elapsed().as_secs_f64()
            );
            org
        }
    };
    let ctx = AuditContext::cli(&org.id);

    // "German customers active in the last 90 days with open deals over 1,000", four
    // conditions of four kinds: two columns, an interaction count, a deal sum.
    let criteria = json!({"match": "all", "conditions": [
        {"field": "status", "op": "eq", "value": "customer"},
        {"field": "country", "op": "eq", "value": "DE"},
        {"field": "interactions.count", "op": "gte", "value": 2, "days": 90},
        {"field": "deals.openValue", "op": "gt", "value": "1000"}]});
    // The same with an OR group and a tag: the shape a marketer builds in the console.
    let with_or = json!({"match": "all", "conditions": [
        {"field": "status", "op": "in", "value": ["customer", "prospect"]},
        {"match": "any", "conditions": [
            {"field": "tags", "op": "has", "value": "VIP"},
            {"field": "interactions.last", "op": "olderThanDays", "value": 180}]},
        {"field": "createdAt", "op": "withinDays", "value": 3650}]});
    let seg = segments::create(
        &mut c,
        &ctx,
        &Input {
            name: Some(format!("Bench {}", std::process::id())),
            description: None,
            criteria: Some(criteria.clone()),
        },
    )
    .unwrap();

    for (label, tree) in [("4 conditions", &criteria), ("OR group + tag", &with_or)] {
        let catalog = Catalog::load(&mut c, &org.id).unwrap();
        let compiled = catalog.compile(tree, None).unwrap();
        let p = segments::params(compiled, None);
        let mut times = Vec::new();
        let mut n = 0;
        for _ in 0..5 {
            let t = Instant::now();
            n = segments::count(&mut c, &org.id, &p).unwrap();
            times.push(t.elapsed());
        }
        println!(
            "count, {label}: {n} clients, median {} (max {})",
            ms(median(times.clone())),
            ms(*times.iter().max().unwrap())
        );
        let mut p = p;
        p.limit = 50;
        let mut times = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            rapport::domain::clients::query::list(&mut c, &org.id, &p).unwrap();
            times.push(t.elapsed());
        }
        println!(
            "first page of members, {label}: median {}",
            ms(median(times))
        );
    }

    let t = Instant::now();
    segments::evaluate(&mut c, &org.id, &seg.id).unwrap();
    let members = segments::get(&mut c, &org.id, &seg.id)
        .unwrap()
        .member_count;
    println!(
        "first full evaluation (baseline, {members} members): {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    segments::evaluate(&mut c, &org.id, &seg.id).unwrap();
    println!(
        "periodic full evaluation (no change): {:.2} s",
        t.elapsed().as_secs_f64()
    );

    // The weekly churn model: two snapshots of 20,000 clients, fit, held-out AUC (the
    // bench's random history has no signal, so about 0.5 and the rules stay).
    let t = Instant::now();
    let ev = rapport::domain::churn::train(&mut c, &org.id).unwrap();
    println!(
        "churn model training ({} clients, {} went quiet, AUC {:?}, in use {}): {:.1} s",
        ev.samples,
        ev.churned,
        ev.auc.map(|a| (a * 1000.0).round() / 1000.0),
        ev.in_use,
        t.elapsed().as_secs_f64()
    );

    // Nightly scores for every client (target under 5 minutes at 1M).
    let t = Instant::now();
    let scored = rapport::domain::scores::compute_org(&mut c, &org.id).unwrap();
    println!(
        "scores for {scored} clients: {:.1} s",
        t.elapsed().as_secs_f64()
    );
    if let DbConn::Postgresql(pg) = &mut *c {
        // The scoring rewrote every score row; see the VACUUM after the seed.
        pg.batch_execute("VACUUM (ANALYZE) client_scores").unwrap();
    }
    let scores_tree = json!({"match": "all", "conditions": [
        {"field": "scores.churnRisk", "op": "gte", "value": 40},
        {"field": "status", "op": "eq", "value": "customer"},
        {"field": "country", "op": "eq", "value": "DE"},
        {"field": "scores.lifetimeValue", "op": "gt", "value": "500"}]});
    let catalog = Catalog::load(&mut c, &org.id).unwrap();
    let p = segments::params(catalog.compile(&scores_tree, None).unwrap(), None);
    let mut times = Vec::new();
    let mut n = 0;
    for _ in 0..5 {
        let t = Instant::now();
        n = segments::count(&mut c, &org.id, &p).unwrap();
        times.push(t.elapsed());
    }
    println!(
        "count, 4 conditions with scores: {n} clients, median {}",
        ms(median(times))
    );

    // Reports over the last 90 days, as a manager (every record) sees them.
    let to = chrono::Utc::now().date_naive();
    let reach = rapport::domain::reports::Reach {
        org: org.id.clone(),
        from: to - chrono::Duration::days(89),
        to,
        deals_of: None,
        activities_of: None,
        clients_of: None,
        deals: true,
        activities: true,
        pipeline: None,
    };
    let timed = |c: &mut DbConn, f: &dyn Fn(&mut DbConn) -> usize| {
        let mut times = Vec::new();
        let mut rows = 0;
        for _ in 0..3 {
            let t = Instant::now();
            rows = f(c);
            times.push(t.elapsed());
        }
        (rows, median(times))
    };
    for (kind, _, _) in rapport::domain::reports::standard::KINDS {
        let (rows, d) = timed(&mut c, &|c| {
            rapport::domain::reports::standard::run(c, kind, &reach)
                .unwrap()
                .table
                .rows
                .len()
        });
        println!("report {kind}: {rows} rows, median {}", ms(d));
    }
    // The demo's "Sales review" shape: won value by month, activities by kind, sales by rep.
    let custom = |def: serde_json::Value| {
        serde_json::from_value::<rapport::domain::reports::custom::Definition>(def)
            .unwrap()
            .check()
            .unwrap()
    };
    let won_by_month = custom(json!({"entity": "deals", "dateField": "actualClose",
        "filters": [{"field": "status", "op": "is", "value": "won"}],
        "groupBy": {"field": "actualClose", "bucket": "month"},
        "aggregates": [{"fn": "sum", "field": "value"}, {"fn": "count"}], "chart": "line"}));
    let by_kind =
        custom(json!({"entity": "interactions", "groupBy": {"field": "kind"}, "chart": "pie"}));
    let by_country = custom(
        json!({"entity": "clients", "dateField": "none", "groupBy": {"field": "country"},
        "aggregates": [{"fn": "count"}, {"fn": "avg", "field": "engagement"}]}),
    );
    let asker = rapport::domain::reports::custom::Asker {
        org: &org.id,
        user: "",
        own_only: false,
    };
    for (label, report) in [
        ("won value by month", &won_by_month),
        ("activities by kind", &by_kind),
        ("clients by country (all time, avg engagement)", &by_country),
    ] {
        let (rows, d) = timed(&mut c, &|c| {
            report
                .run(c, &asker, label, reach.from, reach.to)
                .unwrap()
                .table
                .rows
                .len()
        });
        println!("custom report, {label}: {rows} rows, median {}", ms(d));
    }
    let (_, d) = timed(&mut c, &|c| {
        won_by_month
            .run(c, &asker, "a", reach.from, reach.to)
            .unwrap();
        by_kind.run(c, &asker, "b", reach.from, reach.to).unwrap();
        rapport::domain::reports::standard::run(c, "sales-by-rep", &reach)
            .unwrap()
            .table
            .rows
            .len()
    });
    println!("dashboard of three charts (target < 1 s): median {}", ms(d));

    // The overview endpoint and the dashboard through the operations layer, as the API
    // and the console call them.
    let handles = rapport::ops::Handles {
        pool: pool.clone(),
        plugins: rapport::plugins::runtime::Runtime::new(pool.clone(), None),
        blobs: rapport::domain::attachments::configured_store(&config).unwrap(),
        data_dir: config.data_dir.clone(),
        secret: rapport::integrations::secret::Key::load(&config.data_dir).unwrap(),
    };
    let scope = rapport::ops::Scope::system(ctx.clone(), handles);
    let rt = actix_web::rt::System::new();
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        rt.block_on(rapport::ops::overview::overview(&scope, None, None))
            .unwrap();
        times.push(t.elapsed());
    }
    println!(
        "overview, last 30 days (target < 200 ms): median {}",
        ms(median(times))
    );

    // 500 clients changed: the incremental round that follows.
    {
        use diesel::prelude::*;
        use rapport::db::schema::{clients as cl, segment_dirty as d};
        let ids: Vec<String> = cl::table
            .filter(cl::organization_id.eq(&org.id))
            .select(cl::id)
            .limit(500)
            .load(&mut c)
            .unwrap();
        for id in ids {
            diesel::insert_into(d::table)
                .values((
                    d::id.eq(rapport::db::new_id()),
                    d::organization_id.eq(&org.id),
                    d::client_id.eq(id),
                ))
                .execute(&mut c)
                .unwrap();
        }
    }
    let t = Instant::now();
    let n = segments::drain_dirty(&mut c).unwrap();
    println!(
        "incremental round ({n} changed clients, 1 segment): {}",
        ms(t.elapsed())
    );
}
