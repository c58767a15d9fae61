//! Import throughput: writes a generic-preset CSV of `BENCH_ROWS` contacts (1,000,000 by
//! default; e-mail, names, phone, company, city, country, status), imports it into a fresh
//! organization the way `rapport import` does (checked copy, committed chunks, audit, search
//! outbox, change log for revert) and prints rows per second and the peak resident memory.
//! Targets: under 2 minutes and 300 MB for a million rows. Then times the background
//! duplicate scan over the imported organization.
//!
//!   cargo bench -p rapport-platform --bench import
//!   BENCH_ROWS=100000 cargo bench -p rapport-platform --bench import
//! PostgreSQL: BENCH_DATABASE_URL as for the other benches.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::time::Instant;

use rapport::db::{self, DbTarget};
use rapport::domain::audit::AuditContext;
use rapport::domain::imports;
use rapport::domain::orgs::service;

fn peak_rss_mb() -> f64 {
    rss_mb("VmHWM:")
}

fn rss_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn main() {
    let rows: usize = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let tmp = std::env::temp_dir().join("rapport-bench-import");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let url = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", tmp.join("bench.db").display()));
    let target = DbTarget::parse(&url).unwrap();
    let pool = db::connect(&target, 2).unwrap();
    db::migrate(&mut pool.get().unwrap()).unwrap();

    let file = tmp.join("contacts.csv");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        writeln!(
            w,
            "Email,First Name,Last Name,Phone,Company,City,Country,Status"
        )
        .unwrap();
        let first = [
            "Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Radia", "Linus",
        ];
        let last = [
            "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Perlman",
        ];
        let cities = ["Berlin", "Kraków", "Boston", "Lyon", "Toronto"];
        let countries = ["Germany", "Poland", "United States", "France", "Canada"];
        for i in 0..rows {
            // Every tenth contact has the previous one's phone number, written another
            // way: work for the duplicate scan below (the import itself matches e-mails).
            let phone = if i % 10 == 9 {
                format!("555-{:03}-{:04}", (i - 1) / 10_000 % 1000, (i - 1) % 10_000)
            } else {
                format!("+1 555 {:07}", i)
            };
            writeln!(
                w,
                "person{i}@bench.example,{},{},{phone},Company {},{},{},lead",
                first[i % first.len()],
                last[i % last.len()],
                i % 5000,
                cities[i % cities.len()],
                countries[i % countries.len()],
            )
            .unwrap();
        }
    }
    let size = std::fs::metadata(&file).unwrap().len();
    let mut c = pool.get().unwrap();
    let org = service::create_org(&mut c, "Import bench").unwrap();
    let ctx0 = AuditContext::cli(&org.id);
    service::add_member(
        &mut c,
        &ctx0,
        service::NewMember {
            email: "admin@bench.test",
            name: "Bench",
            password: Some("bench-password-1"),
            role: "admin",
        },
    )
    .unwrap();
    let user = rapport::domain::orgs::store::find_user_by_email(&mut c, "admin@bench.test")
        .unwrap()
        .unwrap()
        .id;
    let mut ctx = AuditContext::cli(&org.id);
    ctx.actor_user_id = Some(user.clone());
    println!(
        "{rows} rows, {:.1} MB, {:?}",
        size as f64 / 1e6,
        target.backend
    );
    let started = Instant::now();
    let bytes = std::fs::read(&file).unwrap();
    let staged = imports::stage(
        &mut c,
        &ctx,
        &tmp,
        &bytes,
        imports::NewBatch {
            file_name: "contacts.csv",
            preset: "generic",
            kind: None,
            mode: "update",
        },
    )
    .unwrap();
    drop(bytes);
    let checked = started.elapsed();
    let batch = imports::start(&mut c, &ctx, &staged.id).unwrap();
    let access = rapport::domain::clients::service::Access {
        user_id: user,
        oversee: true,
        read_sensitive: true,
        write_sensitive: true,
        create_tags: true,
    };
    let env = imports::Env {
        ctx: &ctx,
        access: &access,
        batch: &batch,
        external: &rapport::domain::custom_fields::NoExternal,
        rules: &rapport::domain::pipeline::service::NoRules,
        default_currency: "USD",
        cache: Default::default(),
    };
    let mut last = Instant::now();
    while imports::run_chunk(&mut c, &tmp, &env).unwrap() {
        if last.elapsed().as_secs() >= 10 {
            let b = imports::get(&mut c, &org.id, &batch.id).unwrap();
            println!(
                "  {} rows after {:.0} s",
                b.processed_rows,
                started.elapsed().as_secs_f64()
            );
            last = Instant::now();
        }
    }
    let total = started.elapsed();
    let b = imports::get(&mut c, &org.id, &batch.id).unwrap();
    assert_eq!(b.created_count as usize, rows, "{:?}", b.errors);
    println!(
        "checked and copied in {:.1} s; imported {} rows in {:.1} s = {:.0} rows/s; peak memory {:.0} MB",
        checked.as_secs_f64(),
        b.created_count,
        total.as_secs_f64(),
        rows as f64 / total.as_secs_f64(),
        peak_rss_mb()
    );

    // The background duplicate scan over the same organization. Every tenth contact shares
    // a first and last name and a company with others, so there are many groups to find.
    // Writing 5 to clear_refs resets the peak, so the figure is the scan's own.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = rss_mb("VmRSS:");
    let started = Instant::now();
    let (groups, scanned) =
        rapport::domain::clients::duplicates::scan_all(&mut c, &org.id).unwrap();
    println!(
        "duplicate scan: {scanned} clients in {:.1} s = {:.0} clients/s, {} groups; memory {:.0} MB before, peak {:.0} MB",
        started.elapsed().as_secs_f64(),
        scanned as f64 / started.elapsed().as_secs_f64(),
        groups.len(),
        before,
        peak_rss_mb()
    );
}
