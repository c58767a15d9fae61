//! Deterministic synthetic data: `rapport seed --org <org> --clients N` and the demo.
//! The same seed gives the same companies, people, owners, tags and custom values,
//! so benchmarks and screenshots are repeatable. Rows go in as multi-row inserts
//! on the concrete connection (MultiConnection has no batch insert for SQLite).

use chrono::Duration;
use diesel::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::db::schema::clients;
use crate::db::{new_id, now, DbConn};
use crate::domain::audit::AuditContext;
use crate::domain::clients::bulk::{TagLink, ValueRow};
use crate::domain::clients::{service as client_service, store as client_store, ClientRow, TagRow};
use crate::domain::custom_fields::service::{define, FieldInput};
use crate::domain::custom_fields::{store as field_store, FieldRow};
use crate::domain::orgs::{store as org_store, OrganizationRow};
use crate::error::AppResult;

const FIRST: &[&str] = &[
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Margaret",
    "Ken",
    "Barbara",
    "Dennis",
    "Frances",
    "John",
    "Katherine",
    "Tim",
    "Radia",
    "Edsger",
    "Hedy",
    "Niklaus",
    "Sophie",
    "Yukihiro",
    "Guido",
    "Anita",
];
const LAST: &[&str] = &[
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Hamilton",
    "Thompson",
    "Liskov",
    "Ritchie",
    "Allen",
    "Backus",
    "Johnson",
    "Berners-Lee",
    "Perlman",
    "Dijkstra",
    "Lamarr",
    "Wirth",
    "Wilson",
    "Matsumoto",
    "van Rossum",
    "Borg",
];
const COMPANY_A: &[&str] = &[
    "Northwind",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Acme",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Tyrell",
    "Cyberdyne",
    "Wonka",
    "Oscorp",
    "Gringotts",
];
const COMPANY_B: &[&str] = &[
    "Industries",
    "Labs",
    "Logistics",
    "Foods",
    "Health",
    "Systems",
    "Partners",
    "Energy",
    "Media",
    "Robotics",
];
const CITIES: &[(&str, &str)] = &[
    ("Berlin", "DE"),
    ("London", "GB"),
    ("Paris", "FR"),
    ("Madrid", "ES"),
    ("New York", "US"),
    ("Toronto", "CA"),
    ("Tokyo", "JP"),
    ("Sydney", "AU"),
    ("Lisbon", "PT"),
    ("Milan", "IT"),
];
const INDUSTRIES: &[&str] = &[
    "Software",
    "Retail",
    "Healthcare",
    "Manufacturing",
    "Finance",
    "Logistics",
    "Education",
    "Energy",
];
const SOURCES: &[&str] = &[
    "Website",
    "Referral",
    "Trade show",
    "Cold call",
    "Partner",
    "Advertising",
];
const STATUSES: &[&str] = &["lead", "prospect", "customer", "customer", "inactive"];
const TAGS: &[(&str, &str)] = &[
    ("VIP", "purple"),
    ("Renewal", "green"),
    ("Newsletter", "blue"),
    ("At risk", "red"),
    ("Partner", "teal"),
];

pub struct SeedReport {
    pub clients: usize,
    pub companies: usize,
}

/// Makes sure the demo custom fields exist; returns renewalDate, tier and seats.
fn ensure_fields(
    conn: &mut DbConn,
    ctx: &AuditContext,
    currency: &str,
) -> AppResult<Vec<FieldRow>> {
    let specs: [(&str, &str, &str, Vec<String>, &str); 3] = [
        ("renewalDate", "Renewal date", "date", vec![], "Contract"),
        (
            "tier",
            "Tier",
            "single_select",
            vec!["Gold".into(), "Silver".into(), "Bronze".into()],
            "Contract",
        ),
        ("seats", "Seats", "integer", vec![], "Contract"),
    ];
    let mut out = Vec::new();
    for (key, label, kind, options, group) in specs {
        let existing = field_store::list(conn, &ctx.org_id, "client", true)?
            .into_iter()
            .find(|f| f.field_key == key);
        let field = match existing {
            Some(f) => f,
            None => define(
                conn,
                ctx,
                currency,
                &[],
                FieldInput {
                    key: Some(key.into()),
                    label: Some(label.into()),
                    field_type: Some(kind.into()),
                    options: (!options.is_empty()).then_some(options),
                    display_group: Some(group.into()),
                    ..Default::default()
                },
            )?,
        };
        out.push(field);
    }
    Ok(out)
}

fn ensure_tags(conn: &mut DbConn, ctx: &AuditContext) -> AppResult<Vec<TagRow>> {
    let mut out = Vec::new();
    for (name, color) in TAGS {
        let tag = match client_store::find_tag_by_name(conn, &ctx.org_id, name)? {
            Some(t) => t,
            None => client_service::define_tag(conn, ctx, name, color)?,
        };
        out.push(tag);
    }
    Ok(out)
}

/// Adds `count` clients to the organization, deterministic for a given `seed`.
pub fn seed_clients(
    conn: &mut DbConn,
    org: &OrganizationRow,
    count: usize,
    seed: u64,
    mut progress: impl FnMut(usize),
) -> AppResult<SeedReport> {
    let ctx = AuditContext::cli(&org.id);
    let fields = ensure_fields(conn, &ctx, &org.default_currency)?;
    let tags = ensure_tags(conn, &ctx)?;
    let owners: Vec<String> = org_store::list_members(
        conn,
        &org.id,
        &org_store::MemberFilter {
            is_active: Some(true),
            limit: 1000,
            ..Default::default()
        },
    )?
    .into_iter()
    // why: only roles that may change clients own them (a marketer or a reader given a
    // book of clients could not work it).
    .filter(|m| !matches!(m.membership.role.as_str(), "read_only" | "marketer"))
    .map(|m| m.user.id)
    .collect();
    let mut rng = StdRng::seed_from_u64(seed);
    let today = now().date();
    let mut companies: Vec<String> = Vec::new();
    let mut made = 0usize;
    let mut company_count = 0usize;
    let batch = 5_000;
    while made < count {
        let n = batch.min(count - made);
        let mut rows: Vec<ClientRow> = Vec::with_capacity(n);
        let mut tag_rows: Vec<TagLink> = Vec::new();
        let mut values: Vec<ValueRow> = Vec::new();
        for i in 0..n {
            let k = made + i;
            let is_company = k % 10 == 0;
            let (city, country) = CITIES[rng.gen_range(0..CITIES.len())];
            let created = now() - Duration::minutes(rng.gen_range(0..(2 * 365 * 24 * 60)));
            let id = new_id();
            let (first, last, company, display) = if is_company {
                let name = format!(
                    "{} {} {}",
                    COMPANY_A[rng.gen_range(0..COMPANY_A.len())],
                    COMPANY_B[rng.gen_range(0..COMPANY_B.len())],
                    k / 10 + 1
                );
                (None, None, Some(name.clone()), name)
            } else {
                let f = FIRST[rng.gen_range(0..FIRST.len())];
                let l = LAST[rng.gen_range(0..LAST.len())];
                (
                    Some(f.to_string()),
                    Some(l.to_string()),
                    None,
                    format!("{f} {l}"),
                )
            };
            let email = if is_company {
                format!("info@{}.example", display.to_lowercase().replace(' ', "-"))
            } else {
                format!(
                    "{}.{}.{k}@example.test",
                    first.as_deref().unwrap_or("x").to_lowercase(),
                    last.as_deref()
                        .unwrap_or("y")
                        .to_lowercase()
                        .replace(' ', "")
                )
            };
            let renewal = today + Duration::days(rng.gen_range(-60..=365));
            let tier = ["Gold", "Silver", "Bronze"][rng.gen_range(0..3)];
            let seats: i64 = rng.gen_range(1..=500);
            let custom = serde_json::json!({
                "renewalDate": renewal.format("%Y-%m-%d").to_string(),
                "tier": tier,
                "seats": seats,
            });
            for (field, text, num) in [
                (
                    &fields[0],
                    Some(renewal.format("%Y-%m-%d").to_string()),
                    None,
                ),
                (&fields[1], Some(tier.to_string()), None),
                (&fields[2], None, Some(seats)),
            ] {
                values.push((
                    new_id(),
                    org.id.clone(),
                    field.id.clone(),
                    id.clone(),
                    text,
                    num,
                ));
            }
            for tag in tags.iter() {
                if rng.gen_ratio(1, 6) {
                    tag_rows.push((id.clone(), tag.id.clone(), org.id.clone()));
                }
            }
            rows.push(ClientRow {
                id: id.clone(),
                organization_id: org.id.clone(),
                kind: if is_company {
                    "company".into()
                } else {
                    "individual".into()
                },
                first_name: first,
                last_name: last,
                company_name: company,
                sort_name: display.to_lowercase(),
                display_name: display,
                email: Some(email),
                phone: Some(format!(
                    "+1 555 {:03} {:04}",
                    rng.gen_range(100..999),
                    k % 10_000
                )),
                street: Some(format!("{} Main Street", rng.gen_range(1..300))),
                city: Some(city.into()),
                region: None,
                postal_code: Some(format!("{:05}", rng.gen_range(10_000..99_999))),
                country: Some(country.into()),
                website: is_company.then(|| "https://example.com".to_string()),
                industry: Some(INDUSTRIES[rng.gen_range(0..INDUSTRIES.len())].into()),
                source: Some(SOURCES[rng.gen_range(0..SOURCES.len())].into()),
                status: STATUSES[rng.gen_range(0..STATUSES.len())].into(),
                assigned_to: (!owners.is_empty()).then(|| owners[k % owners.len()].clone()),
                employer_id: (!is_company && !companies.is_empty() && rng.gen_bool(0.5))
                    .then(|| companies[rng.gen_range(0..companies.len())].clone()),
                custom_fields: custom.to_string(),
                version: 1,
                created_by: None,
                created_at: created,
                updated_at: created,
                deleted_at: None,
            });
            if is_company {
                companies.push(id);
                company_count += 1;
                if companies.len() > 5_000 {
                    companies.remove(0);
                }
            }
        }
        crate::db::transaction::<_, crate::error::AppError, _>(conn, |c| {
            crate::domain::clients::bulk::insert_all(c, &rows, &tag_rows, &values)?;
            Ok(())
        })?;
        made += n;
        progress(made);
    }
    Ok(SeedReport {
        clients: made,
        companies: company_count,
    })
}

/// Adds `count` deals over existing clients: mostly open, some won and lost, each with a
/// stage history that walks through the pipeline to its current stage.
pub fn seed_deals(
    conn: &mut DbConn,
    org: &OrganizationRow,
    count: usize,
    seed: u64,
    mut progress: impl FnMut(usize),
) -> AppResult<usize> {
    use crate::db::schema::{opportunities, opportunity_stage_history};
    use crate::domain::pipeline::{
        service as pipeline_service, store as pipeline_store, OpportunityRow, StageMoveRow,
    };

    pipeline_service::ensure_defaults(conn, &org.id)?;
    let pipeline = pipeline_store::list_pipelines(conn, &org.id)?
        .into_iter()
        .next()
        .ok_or(crate::error::AppError::NotFound)?;
    let stages: Vec<_> = pipeline_store::stages_of(conn, &pipeline.id)?
        .into_iter()
        .filter(|s| s.is_active)
        .collect();
    let open: Vec<_> = stages
        .iter()
        .filter(|s| s.kind == "open")
        .cloned()
        .collect();
    let won = stages
        .iter()
        .find(|s| s.kind == "won")
        .cloned()
        .ok_or(crate::error::AppError::NotFound)?;
    let lost = stages
        .iter()
        .find(|s| s.kind == "lost")
        .cloned()
        .ok_or(crate::error::AppError::NotFound)?;
    let reasons: Vec<String> = pipeline_store::loss_reasons(conn, &org.id, true)?
        .into_iter()
        .map(|r| r.name)
        .collect();
    let client_ids: Vec<(String, Option<String>)> = {
        use crate::db::schema::clients;
        clients::table
            .filter(clients::organization_id.eq(&org.id))
            .filter(clients::deleted_at.is_null())
            .select((clients::id, clients::assigned_to))
            .limit(50_000)
            .load(conn)?
    };
    if client_ids.is_empty() || open.is_empty() {
        return Ok(0);
    }
    // Deals belong to people who work deals; a client owned by a service rep gets its deal
    // owner from the sellers in turn.
    let sellers: Vec<String> = org_store::list_members(
        conn,
        &org.id,
        &org_store::MemberFilter {
            is_active: Some(true),
            limit: 1000,
            ..Default::default()
        },
    )?
    .into_iter()
    .filter(|m| {
        matches!(
            m.membership.role.as_str(),
            "admin" | "manager" | "sales_rep"
        )
    })
    .map(|m| m.user.id)
    .collect();
    let mut rng = StdRng::seed_from_u64(seed);
    let today = now().date();
    let products = [
        "Platform licence",
        "Support plan",
        "Onboarding",
        "Expansion",
        "Renewal",
        "Pilot",
    ];
    let mut made = 0;
    while made < count {
        let n = 2_000.min(count - made);
        let mut deals: Vec<OpportunityRow> = Vec::with_capacity(n);
        let mut moves: Vec<StageMoveRow> = Vec::new();
        for _ in 0..n {
            let (client_id, owner) = client_ids[rng.gen_range(0..client_ids.len())].clone();
            let owner = match owner {
                Some(o) if sellers.is_empty() || sellers.contains(&o) => Some(o),
                _ if sellers.is_empty() => None,
                _ => Some(sellers[(made + deals.len()) % sellers.len()].clone()),
            };
            let roll = rng.gen_range(0..100);
            let depth = rng.gen_range(0..open.len());
            let final_stage = if roll < 12 {
                won.clone()
            } else if roll < 20 {
                lost.clone()
            } else {
                open[depth].clone()
            };
            let created = now() - Duration::days(rng.gen_range(5..400));
            let id = new_id();
            let mut at = created;
            let path: Vec<_> = open
                .iter()
                .take(depth + 1)
                .cloned()
                .chain((final_stage.kind != "open").then(|| final_stage.clone()))
                .collect();
            let mut prev: Option<(String, i32)> = None;
            for stage in &path {
                moves.push(StageMoveRow {
                    id: new_id(),
                    organization_id: org.id.clone(),
                    opportunity_id: id.clone(),
                    from_stage_id: prev.as_ref().map(|p| p.0.clone()),
                    to_stage_id: stage.id.clone(),
                    from_probability: prev.as_ref().map(|p| p.1),
                    to_probability: stage.probability,
                    moved_by: owner.clone(),
                    moved_at: at,
                });
                prev = Some((stage.id.clone(), stage.probability));
                at = (at + Duration::days(rng.gen_range(1..20))).min(now());
            }
            let closed = final_stage.kind != "open";
            let value_cents = rng.gen_range(10..1_000) * 10_000 + rng.gen_range(0..100) * 100;
            deals.push(OpportunityRow {
                id,
                organization_id: org.id.clone(),
                pipeline_id: pipeline.id.clone(),
                stage_id: final_stage.id.clone(),
                client_id,
                name: format!(
                    "{} #{}",
                    products[rng.gen_range(0..products.len())],
                    made + deals.len() + 1
                ),
                description: String::new(),
                value_cents,
                currency: if rng.gen_ratio(1, 20) {
                    "EUR".into()
                } else {
                    org.default_currency.clone()
                },
                probability: final_stage.probability,
                probability_set: false,
                expected_close: Some(today + Duration::days(rng.gen_range(-30..180))),
                actual_close: closed.then(|| at.date().min(today)),
                status: final_stage.kind.clone(),
                assigned_to: owner,
                source: Some(
                    ["Website", "Referral", "Partner", "Outbound"][rng.gen_range(0..4)].into(),
                ),
                competitors: "[]".into(),
                loss_reason: (final_stage.kind == "lost").then(|| {
                    reasons
                        .get(rng.gen_range(0..reasons.len().max(1)))
                        .cloned()
                        .unwrap_or_else(|| "Price".into())
                }),
                custom_fields: "{}".into(),
                version: 1,
                stage_entered_at: at.min(now()),
                created_by: None,
                created_at: created,
                updated_at: at.min(now()),
                deleted_at: None,
            });
        }
        macro_rules! insert_deals {
            ($c:expr) => {{
                for chunk in deals.chunks(500) {
                    diesel::insert_into(opportunities::table)
                        .values(chunk)
                        .execute($c)?;
                }
                for chunk in moves.chunks(1000) {
                    diesel::insert_into(opportunity_stage_history::table)
                        .values(chunk)
                        .execute($c)?;
                }
            }};
        }
        crate::db::transaction::<_, crate::error::AppError, _>(conn, |c| {
            match c {
                DbConn::Sqlite(c) => insert_deals!(c),
                DbConn::Postgresql(c) => insert_deals!(c),
            }
            Ok(())
        })?;
        made += n;
        progress(made);
    }
    crate::domain::pipeline::rollup::rebuild(conn, &org.id)?;
    crate::domain::pipeline::analytics::forget_win_rates(&org.id);
    Ok(made)
}

/// Demo history on the first `clients` clients: calls, notes, e-mails and meetings over the
/// last three months (one client in nine quiet since 100–200 days), meetings and calls planned for the next two weeks, and open tasks
/// around today, each by the client's owner. Returns how many were added.
pub fn seed_interactions(
    conn: &mut DbConn,
    org: &OrganizationRow,
    clients_limit: i64,
    seed: u64,
) -> AppResult<usize> {
    use crate::db::schema::interactions;
    use crate::domain::interactions::InteractionRow;

    const SUBJECTS: &[(&str, &str, &str)] = &[
        (
            "call",
            "Intro call",
            "Walked through their current tools and the team size.",
        ),
        (
            "call",
            "Follow-up on the proposal",
            "They want a second quote with annual billing.",
        ),
        (
            "email",
            "Sent the pricing sheet",
            "Attached the 2027 price list and the SLA.",
        ),
        (
            "note",
            "Budget approved",
            "Finance signed off; purchasing needs a W-9.",
        ),
        (
            "meeting",
            "Product demo",
            "Showed the pipeline board and the reports.",
        ),
        (
            "call",
            "Renewal check-in",
            "Happy overall; asked about the mobile console.",
        ),
        (
            "note",
            "Decision maker changes",
            "The new head of sales starts next month.",
        ),
        (
            "email",
            "Answered security questionnaire",
            "Sent the completed questionnaire back.",
        ),
    ];
    let owners: Vec<(String, Option<String>)> = clients::table
        .filter(clients::organization_id.eq(&org.id))
        .filter(clients::deleted_at.is_null())
        .order(clients::sort_name.asc())
        .limit(clients_limit)
        .select((clients::id, clients::assigned_to))
        .load(conn)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let at = now();
    let mut rows = Vec::new();
    let row = |client: &str,
               user: &Option<String>,
               kind: &str,
               subject: &str,
               content: &str,
               when: chrono::NaiveDateTime,
               planned: bool| {
        let task = kind == "task";
        InteractionRow {
            id: new_id(),
            organization_id: org.id.clone(),
            client_id: client.to_string(),
            opportunity_id: None,
            user_id: user.clone(),
            kind: kind.to_string(),
            subject: subject.to_string(),
            content: content.to_string(),
            direction: matches!(kind, "call" | "email").then(|| "outbound".to_string()),
            status: if planned { "scheduled" } else { "completed" }.to_string(),
            scheduled_at: (planned && !task).then_some(when),
            completed_at: (!planned).then_some(when),
            occurred_at: when,
            outcome: (kind == "call" && !planned).then(|| "connected".to_string()),
            duration_minutes: matches!(kind, "call" | "meeting").then_some(30),
            metadata: "{}".into(),
            version: 1,
            created_at: when.min(at),
            updated_at: when.min(at),
            deleted_at: None,
            due_at: task.then_some(when),
            priority: task.then(|| "normal".to_string()),
            assignee_id: if task { user.clone() } else { None },
            remind_at: None,
            reminded_at: None,
            location: (kind == "meeting").then(|| "Video call".to_string()),
            external_id: None,
        }
    };
    for (i, (client, owner)) in owners.iter().enumerate() {
        // One client in nine has gone quiet (nothing for 100 days or more), so the demo's
        // churn risks and "Clients at risk" have someone to show.
        let quiet = i % 9 == 4;
        for _ in 0..rng.gen_range(1..=5) {
            let (kind, subject, content) = SUBJECTS[rng.gen_range(0..SUBJECTS.len())];
            let back = if quiet {
                rng.gen_range(100..200)
            } else {
                rng.gen_range(0..90)
            };
            let when = at - Duration::days(back) - Duration::minutes(rng.gen_range(0..600));
            rows.push(row(client, owner, kind, subject, content, when, false));
        }
        let day = |d: i64, h: u32| {
            (at.date() + Duration::days(d))
                .and_hms_opt(h, 0, 0)
                .unwrap_or(at)
        };
        if i % 4 == 0 {
            let kind = if i % 8 == 0 { "meeting" } else { "call" };
            let subject = if kind == "meeting" {
                "Quarterly review"
            } else {
                "Check-in call"
            };
            let when = day(rng.gen_range(0..14), rng.gen_range(9..17));
            rows.push(row(client, owner, kind, subject, "", when, true));
        }
        if i % 5 == 0 {
            let when = day(rng.gen_range(-3..7), 17);
            rows.push(row(
                client,
                owner,
                "task",
                "Send the updated quote",
                "",
                when,
                true,
            ));
        }
    }
    crate::db::transaction(conn, |c| {
        for r in &rows {
            diesel::insert_into(interactions::table)
                .values(r)
                .execute(c)?;
        }
        diesel::QueryResult::Ok(())
    })?;
    Ok(rows.len())
}

/// Quotes on the first `count` open deals (some sent, one accepted) and contracts for the
/// customers those deals belong to — so the demo's Quotes and Contracts pages are not empty.
/// Goes through the domain services, so numbering, totals and the audit are as in use.
pub fn seed_papers(conn: &mut DbConn, org: &OrganizationRow, count: usize) -> AppResult<usize> {
    use crate::db::schema::opportunities;
    use crate::domain::pipeline::quotes::{self, LineInput, QuoteInput};
    let ctx = crate::domain::audit::AuditContext::cli(&org.id);
    let access = crate::domain::workflows::run::access();
    let deals: Vec<(String, String, String)> = opportunities::table
        .filter(opportunities::organization_id.eq(&org.id))
        .filter(opportunities::deleted_at.is_null())
        .filter(opportunities::status.eq("open"))
        .order(opportunities::id.asc())
        .limit(count as i64)
        .select((
            opportunities::id,
            opportunities::client_id,
            opportunities::currency,
        ))
        .load(conn)?;
    let today = crate::db::now().date();
    let mut made = 0;
    for (i, (deal, client, currency)) in deals.iter().enumerate() {
        let seats = 5 + (i % 7) * 5;
        let line = |name: &str, qty: String, price: &str, discount: Option<&str>| LineInput {
            name: name.into(),
            quantity: qty,
            unit_price: price.into(),
            discount: discount.map(str::to_string),
            tax_rate: Some("19".into()),
        };
        let q = quotes::create(
            conn,
            &ctx,
            &access,
            QuoteInput {
                opportunity_id: deal.clone(),
                currency: Some(currency.clone()),
                valid_until: Some(today + chrono::Duration::days(30)),
                terms: "Net 30. Prices per year.".into(),
                lines: vec![
                    line("Seats", seats.to_string(), "480", Some("10")),
                    line("Onboarding", "1".into(), "1500", None),
                ],
            },
        )?;
        if i % 3 != 0 {
            quotes::set_status(
                conn,
                &ctx,
                &access,
                &q.id,
                "sent",
                false,
                &crate::domain::pipeline::service::NoRules,
            )?;
        }
        if i % 4 == 0 {
            let mut body = serde_json::Map::new();
            body.insert(
                "name".into(),
                format!("Annual subscription {}", i + 1).into(),
            );
            body.insert("clientId".into(), client.clone().into());
            let start = today - chrono::Duration::days(300 - (i as i64 * 40) % 300);
            body.insert("startDate".into(), start.to_string().into());
            body.insert(
                "endDate".into(),
                (start + chrono::Duration::days(365)).to_string().into(),
            );
            body.insert("value".into(), format!("{}", seats * 480).into());
            body.insert("currency".into(), currency.clone().into());
            body.insert("noticeDays".into(), 60.into());
            crate::domain::pipeline::contracts::save(conn, &ctx, &access, None, &body, currency)?;
        }
        made += 1;
    }
    Ok(made)
}

/// Demo segments: a quiet-customers list, a German VIP-or-big-spender group (an OR group),
/// and leads from the website. Their members are filled by the server's segment worker.
pub fn seed_segments(conn: &mut DbConn, org: &OrganizationRow) -> AppResult<usize> {
    use serde_json::json;
    let ctx = AuditContext::cli(&org.id);
    let defs = [
        (
            "Customers gone quiet",
            "Customers with no call, meeting, e-mail or note in 60 days.",
            json!({"match": "all", "conditions": [
                {"field": "status", "op": "eq", "value": "customer"},
                {"field": "interactions.last", "op": "olderThanDays", "value": 60}]}),
        ),
        (
            "German VIPs and big accounts",
            "In Germany, tagged VIP or with open deals over 10,000.",
            json!({"match": "all", "conditions": [
                {"match": "all", "conditions": [{"field": "country", "op": "eq", "value": "DE"}]},
                {"match": "any", "conditions": [
                    {"field": "tags", "op": "has", "value": "VIP"},
                    {"field": "deals.openValue", "op": "gt", "value": "10000"}]}]}),
        ),
        (
            "Website leads",
            "",
            json!({"match": "all", "conditions": [
                {"field": "status", "op": "eq", "value": "lead"},
                {"field": "source", "op": "eq", "value": "Website"}]}),
        ),
    ];
    let mut n = 0;
    for (name, description, criteria) in defs {
        crate::domain::segments::create(
            conn,
            &ctx,
            &crate::domain::segments::Input {
                name: Some(name.into()),
                description: Some(description.into()),
                criteria: Some(criteria),
            },
        )?;
        n += 1;
    }
    Ok(n)
}

/// Two saved reports and a "Sales review" dashboard shared with everyone, so the Reports
/// page shows what custom reports and dashboards look like.
pub fn seed_reports(conn: &mut DbConn, org: &OrganizationRow) -> AppResult<usize> {
    use crate::domain::reports::custom::Definition;
    use crate::domain::reports::store::{self, DashboardInput, ReportInput, Tile};
    use serde_json::json;
    let ctx = AuditContext::cli(&org.id);
    let defs = [
        (
            "Won value by month",
            json!({"entity": "deals", "dateField": "actualClose",
                   "filters": [{"field": "status", "op": "is", "value": "won"}],
                   "groupBy": {"field": "actualClose", "bucket": "month"},
                   "aggregates": [{"fn": "sum", "field": "value"}, {"fn": "count"}], "chart": "line"}),
        ),
        (
            "Activities by kind",
            json!({"entity": "interactions", "groupBy": {"field": "kind"},
                   "aggregates": [{"fn": "count"}], "chart": "pie"}),
        ),
    ];
    let mut tiles = vec![
        Tile {
            kind: "kpi".into(),
            reference: "openPipeline".into(),
            wide: false,
        },
        Tile {
            kind: "kpi".into(),
            reference: "winRate".into(),
            wide: false,
        },
    ];
    for (name, def) in defs {
        let definition: Definition = serde_json::from_value(def)
            .map_err(|e| crate::error::AppError::Internal(e.to_string()))?;
        let row = store::create_report(
            conn,
            &ctx,
            ReportInput {
                name: name.into(),
                description: String::new(),
                definition: definition.check()?.def,
                shared_with: Some("everyone".into()),
            },
        )?;
        tiles.push(Tile {
            kind: "report".into(),
            reference: row.id,
            wide: false,
        });
    }
    tiles.push(Tile {
        kind: "standard".into(),
        reference: "sales-by-rep".into(),
        wide: true,
    });
    store::create_dashboard(
        conn,
        &ctx,
        DashboardInput {
            name: "Sales review".into(),
            tiles,
            shared_with: Some("everyone".into()),
        },
    )?;
    Ok(3)
}

/// Saved client views for the organization's members, so the list's "Saved views" shows
/// what one is: "My customers" for those who own clients, "Website leads" for everyone.
pub fn seed_views(conn: &mut DbConn, org: &OrganizationRow) -> AppResult<usize> {
    let ctx = AuditContext::cli(&org.id);
    let members = org_store::list_members(
        conn,
        &org.id,
        &org_store::MemberFilter {
            is_active: Some(true),
            limit: 1000,
            ..Default::default()
        },
    )?;
    let query = |pairs: &[(&str, &str)]| serde_urlencoded::to_string(pairs).unwrap_or_default();
    let mine = query(&[("filter[status]", "customer"), ("filter[assignedTo]", "me")]);
    let leads = query(&[("filter[status]", "lead"), ("filter[source]", "Website")]);
    let mut n = 0;
    for m in members {
        // why: the same roles as own seeded clients; a reader's "My customers" is empty.
        if !matches!(m.membership.role.as_str(), "read_only" | "marketer") {
            client_service::save_view(conn, &ctx, &m.user.id, "My customers", &mine)?;
            n += 1;
        }
        client_service::save_view(conn, &ctx, &m.user.id, "Website leads", &leads)?;
        n += 1;
    }
    Ok(n)
}

/// Message templates a team starts from: a follow-up e-mail and an appointment reminder
/// by text message.
pub fn seed_templates(conn: &mut DbConn, org: &OrganizationRow) -> AppResult<usize> {
    let ctx = AuditContext::cli(&org.id);
    crate::domain::templates::save(
        conn,
        &ctx,
        None,
        Some("email"),
        "Follow-up after a call",
        "Good to talk, {{ client.firstName | default(client.name) }}",
        "Hello {{ client.firstName | default(\"there\") }},\n\nThank you for your time today. As promised, here is a summary of what we discussed.\n\n{{ sender.signature }}",
    )?;
    crate::domain::templates::save(
        conn,
        &ctx,
        None,
        Some("sms"),
        "Appointment reminder",
        "",
        "Hi {{ client.firstName | default(\"there\") }}, a reminder of our appointment tomorrow. Reply here if you need to move it. {{ sender.name }}",
    )?;
    Ok(2)
}

/// Files as people attach them: a proposal (PDF) on each of the first `count` open deals
/// and call notes (text) on their clients, stored through `blobs` like any upload, so the
/// Files cards list them and they download.
pub fn seed_files(
    conn: &mut DbConn,
    org: &OrganizationRow,
    blobs: &dyn crate::domain::attachments::BlobStore,
    count: usize,
) -> AppResult<usize> {
    use crate::db::schema::opportunities;
    use crate::domain::attachments::{upload, NewFile, Parent};
    let ctx = AuditContext::cli(&org.id);
    let access = crate::domain::workflows::run::access();
    let deals: Vec<(String, String, String)> = opportunities::table
        .filter(opportunities::organization_id.eq(&org.id))
        .filter(opportunities::deleted_at.is_null())
        .filter(opportunities::status.eq("open"))
        .order(opportunities::id.asc())
        .limit(count as i64)
        .select((
            opportunities::id,
            opportunities::client_id,
            opportunities::name,
        ))
        .load(conn)?;
    let mut made = 0;
    for (i, (deal, client, name)) in deals.iter().enumerate() {
        let mut doc = crate::pdf::Doc::new();
        doc.sized(50.0, format!("Proposal: {name}"), true, 18.0);
        doc.down(30.0);
        doc.paragraph(
            50.0,
            "Scope: seats for the sales and service teams, onboarding in two sessions, \
             and support for the first year.\nPrices are per year; see the quote for figures.",
            90,
            14.0,
        );
        let pdf = doc.finish();
        let pdf_name = format!("Proposal {}.pdf", i + 1);
        upload(
            conn,
            blobs,
            &ctx,
            &access,
            &Parent::Deal(deal.clone()),
            NewFile {
                name: &pdf_name,
                bytes: &pdf,
                sensitive: false,
            },
        )?;
        let notes = format!(
            "Call notes about {name}\n\n- Wants the proposal before the end of the month.\n\
             - Decision by the head of sales; finance signs off above 10,000.\n"
        );
        upload(
            conn,
            blobs,
            &ctx,
            &access,
            &Parent::Client(client.clone()),
            NewFile {
                name: "Call notes.txt",
                bytes: notes.as_bytes(),
                sensitive: false,
            },
        )?;
        made += 2;
    }
    Ok(made)
}
