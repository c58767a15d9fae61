//! The dashboard people open every morning: their pipeline and forecast, deals closing
//! soon and rotting, won this month against last, activities this week, tasks due, new
//! clients; with `oversee` on deals and report rights, the team and a line per rep. Each
//! block appears only for a role that may use it, and every figure is a bounded query
//! (`domain::dashboard`), so the page does not grow with the organization.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;
use serde::Serialize;

use super::Scope;
use crate::db::{now, DbConn};
use crate::domain::dashboard::{self as figures, OwnerSums, Periods, COUNT_CAP};
use crate::domain::money;
use crate::domain::pipeline::{service as pipeline, OpportunityRow};
use crate::domain::{interactions, orgs};
use crate::error::AppResult;

/// How many deals and tasks each list shows.
const LIST: i64 = 8;
/// "Closing soon" looks this many days ahead.
pub const CLOSING_DAYS: i64 = 14;

/// Deal sums in one currency (amounts never add across currencies).
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = DashboardFigures)]
pub struct Figures {
    pub currency: String,
    pub open_deals: i64,
    pub open_value: Decimal,
    /// Open deals expected to close this month, each at its probability.
    pub weighted_month: Decimal,
    pub weighted_quarter: Decimal,
    pub won_month_deals: i64,
    pub won_month: Decimal,
    pub won_last_month_deals: i64,
    pub won_last_month: Decimal,
    /// Won last month up to the same day of the month as today.
    pub won_last_month_to_date: Decimal,
}

impl Figures {
    fn zero(currency: &str) -> Self {
        Self {
            currency: currency.into(),
            open_deals: 0,
            open_value: Decimal::ZERO,
            weighted_month: Decimal::ZERO,
            weighted_quarter: Decimal::ZERO,
            won_month_deals: 0,
            won_month: Decimal::ZERO,
            won_last_month_deals: 0,
            won_last_month: Decimal::ZERO,
            won_last_month_to_date: Decimal::ZERO,
        }
    }

    fn add(&mut self, s: &OwnerSums) {
        self.open_deals += s.open_deals;
        self.open_value += money::to_decimal(s.open_cents);
        self.weighted_month += Decimal::new(s.weighted_month_x100, 4);
        self.weighted_quarter += Decimal::new(s.weighted_quarter_x100, 4);
        self.won_month_deals += s.won_month_deals;
        self.won_month += money::to_decimal(s.won_month_cents);
        self.won_last_month_deals += s.won_last_month_deals;
        self.won_last_month += money::to_decimal(s.won_last_month_cents);
        self.won_last_month_to_date += money::to_decimal(s.won_last_to_date_cents);
    }

    fn is_empty(&self) -> bool {
        self.open_deals == 0 && self.won_month_deals == 0 && self.won_last_month_deals == 0
    }

    /// "1,235 EUR" in the person's format, rounded to whole units for a figure read at a
    /// glance.
    pub fn show(&self, local: &crate::locale::Local, amount: &Decimal) -> String {
        local.money_whole(*amount, &self.currency)
    }

    /// "+50%" or "-20%" for won this month against last month, and whether it went up.
    pub fn trend(&self) -> Option<(String, bool)> {
        self.won_change()
            .map(|p| (format!("{}{p}%", if p >= 0 { "+" } else { "" }), p >= 0))
    }

    /// Won this month so far against last month up to the same day, in percent (None when
    /// last month had nothing by then).
    pub fn won_change(&self) -> Option<i64> {
        use rust_decimal::prelude::ToPrimitive;
        let before = self.won_last_month_to_date;
        (!before.is_zero()).then(|| {
            ((self.won_month - before) * Decimal::from(100) / before)
                .round()
                .to_i64()
                .unwrap_or(0)
        })
    }
}

/// Open deals in every currency.
pub fn open_deals(figures: &[Figures]) -> i64 {
    figures.iter().map(|f| f.open_deals).sum()
}

/// Sums per currency, the organization's currency first, always present.
fn per_currency<'a>(rows: impl Iterator<Item = &'a OwnerSums>, default: &str) -> Vec<Figures> {
    let mut by: BTreeMap<String, Figures> = BTreeMap::new();
    by.insert(default.into(), Figures::zero(default));
    for r in rows {
        by.entry(r.currency.clone())
            .or_insert_with(|| Figures::zero(&r.currency))
            .add(r);
    }
    let mut out: Vec<Figures> = by
        .into_values()
        .filter(|f| f.currency == default || !f.is_empty())
        .collect();
    out.sort_by_key(|f| f.currency != default);
    out
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = DashboardDeal)]
pub struct DealLine {
    pub id: String,
    pub name: String,
    pub client_id: String,
    pub client: String,
    pub stage: String,
    pub value: Decimal,
    pub currency: String,
    pub expected_close: Option<NaiveDate>,
    pub days_in_stage: i64,
    /// The owner's name; shown in the team's lists.
    pub owner: Option<String>,
}

impl DealLine {
    pub fn shown_value(&self, local: &crate::locale::Local) -> String {
        local.money_whole(self.value, &self.currency)
    }

    pub fn shown_close(&self, local: &crate::locale::Local) -> String {
        self.expected_close
            .map(|d| local.date(d))
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = DashboardDealList)]
pub struct DealList {
    /// Up to [`COUNT_CAP`]; `more` says there are at least that many.
    pub count: i64,
    pub more: bool,
    pub deals: Vec<DealLine>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = DashboardActivity)]
pub struct Activity {
    pub this_week: i64,
    /// Monday to the same time last week.
    pub last_week: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = DashboardTask)]
pub struct TaskLine {
    pub id: String,
    pub subject: String,
    pub client_id: String,
    pub client: String,
    /// When it is due, UTC without an offset (`2026-03-01T09:00:00`).
    #[schema(value_type = Option<String>)]
    pub due_at: Option<NaiveDateTime>,
    pub overdue: bool,
    pub priority: Option<String>,
}

impl TaskLine {
    pub fn shown_due(&self, local: &crate::locale::Local) -> String {
        self.due_at.map(|d| local.datetime(d)).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = DashboardTasks)]
pub struct Tasks {
    pub overdue: i64,
    pub due_today: i64,
    /// Overdue first, then today's, at most a screenful.
    pub tasks: Vec<TaskLine>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = DashboardNewClients)]
pub struct NewClients {
    pub this_week: i64,
    pub last_week: i64,
    /// The counts stopped at their cap (a large import): "10000+".
    pub more: bool,
    /// Counts cover only the user's own clients.
    pub own_only: bool,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = DashboardRep)]
pub struct RepRow {
    /// Empty for deals nobody owns.
    pub user_id: String,
    pub name: String,
    /// The organization's currency first; empty when the rep has no deals.
    pub figures: Vec<Figures>,
    pub activities_this_week: i64,
    pub overdue_tasks: i64,
}

impl RepRow {
    pub fn main(&self) -> Option<&Figures> {
        self.figures.first()
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = DashboardTeam)]
pub struct Team {
    pub totals: Vec<Figures>,
    pub activities_this_week: i64,
    pub reps: Vec<RepRow>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = DashboardPeriods)]
pub struct PeriodNames {
    pub today: NaiveDate,
    pub month: String,
    pub last_month: String,
    /// "3 Nov": the end of last month's stretch that this month so far is compared with.
    pub last_month_to_date: String,
    pub quarter: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Dashboard {
    pub periods: PeriodNames,
    pub currency: String,
    /// The caller's own deal sums (for those who work deals).
    pub mine: Option<Vec<Figures>>,
    /// The whole team (for those who oversee deals and read reports).
    pub team: Option<Team>,
    /// Whose deals the two lists cover: "mine" or "team".
    #[schema(value_type = String, example = "mine")]
    pub deals_of: &'static str,
    pub closing_soon: Option<DealList>,
    pub rotting: Option<DealList>,
    pub activities: Option<Activity>,
    pub tasks: Option<Tasks>,
    pub new_clients: Option<NewClients>,
    /// Active contracts ending within 90 days (for those who read clients), soonest first.
    pub renewals: Option<Vec<Renewal>>,
}

/// A contract coming up for renewal.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = DashboardRenewal)]
pub struct Renewal {
    pub id: String,
    pub name: String,
    pub client_id: String,
    pub client_name: String,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    /// The last day to give notice: the end date less the notice period.
    pub notice_by: NaiveDate,
    /// Decimal string, as everywhere in the API.
    pub value: String,
    #[serde(skip)]
    pub value_cents: i64,
    pub currency: String,
    pub status: String,
    /// The renewal deal opened for it, if any.
    pub renewal_opportunity_id: Option<String>,
}

/// How far ahead the dashboard looks for contracts to renew.
pub const RENEWAL_DAYS: i64 = 90;

fn renewals(
    c: &mut DbConn,
    org: &str,
    access: &crate::domain::clients::service::Access,
) -> AppResult<Vec<Renewal>> {
    let rows = crate::domain::pipeline::contracts::renewals_due(c, org, access, RENEWAL_DAYS)?;
    Ok(super::contracts::named(c, org, rows)?
        .into_iter()
        .map(|(r, client_name)| Renewal {
            notice_by: r.end_date - Duration::days(i64::from(r.notice_days)),
            value: money::format_cents(r.value_cents),
            value_cents: r.value_cents,
            id: r.id,
            name: r.name,
            client_id: r.client_id,
            client_name,
            start_date: r.start_date,
            end_date: r.end_date,
            currency: r.currency,
            status: r.status,
            renewal_opportunity_id: r.renewal_opportunity_id,
        })
        .collect())
}

struct Rights {
    works_deals: bool,
    reads_deals: bool,
    oversees_deals: bool,
    team: bool,
    logs: bool,
    tasks: bool,
    clients: bool,
    oversees_clients: bool,
}

fn rights(scope: &Scope) -> Rights {
    let reads_deals = scope.can("opportunity", "read") && scope.can("client", "read");
    let oversees_deals = reads_deals && scope.can("opportunity", "oversee");
    Rights {
        works_deals: reads_deals && scope.can("opportunity", "write"),
        reads_deals,
        oversees_deals,
        team: oversees_deals && scope.can("report", "read"),
        logs: scope.can("interaction", "write") && scope.can("client", "read"),
        tasks: scope.can("interaction", "read") && scope.can("client", "read"),
        clients: scope.can("client", "read"),
        oversees_clients: scope.can("client", "oversee"),
    }
}

/// The caller's dashboard, as of now.
pub async fn show(scope: &Scope) -> AppResult<Dashboard> {
    let r = rights(scope);
    let org = scope.org_id.clone();
    let me = scope.user_id.clone().unwrap_or_default();
    let clients = scope.can("client", "read").then(|| scope.access("client"));
    let local = scope.local;
    scope
        .read(move |c| {
            let mut d = build(c, &org, &me, &r, now(), &local)?;
            if let Some(access) = &clients {
                d.renewals = Some(renewals(c, &org, access)?);
            }
            Ok(d)
        })
        .await
}

fn build(
    c: &mut DbConn,
    org: &str,
    me: &str,
    r: &Rights,
    at: NaiveDateTime,
    local: &crate::locale::Local,
) -> AppResult<Dashboard> {
    // why: today, this week and this month are the person's own (a rep in New York at
    // 20:00 is still in today); the bounds are compared with stored UTC times, so a period
    // may start a few hours early or late — a figure read at a glance, not a ledger.
    let p = Periods::of(local.wall(at));
    let week_utc = local.to_utc(p.week_start);
    let currency = super::default_currency(c, org)?;
    // The active members (id → name, role) for owners' names and the team's lines.
    let roster: HashMap<String, (String, String)> = if r.team || r.oversees_deals {
        let f = orgs::store::MemberFilter {
            is_active: Some(true),
            limit: 1000,
            ..Default::default()
        };
        orgs::store::list_members(c, org, &f)?
            .into_iter()
            .map(|m| (m.user.id, (m.user.name, m.membership.role)))
            .collect()
    } else {
        HashMap::new()
    };
    let names: HashMap<String, String> = roster
        .iter()
        .map(|(id, (name, _))| (id.clone(), name.clone()))
        .collect();
    let sums = if r.works_deals || r.team {
        figures::owner_sums(c, org, (!r.team).then_some(me), &p)?
    } else {
        Vec::new()
    };
    let mine = r
        .works_deals
        .then(|| per_currency(sums.iter().filter(|s| s.assigned_to == me), &currency));
    let activity = if r.logs || r.team {
        figures::activity_counts(c, org, (!r.team).then_some(me), week_utc, at)?
    } else {
        Vec::new()
    };
    let activities = r.logs.then(|| {
        let own = activity.iter().find(|a| a.user_id.as_deref() == Some(me));
        Activity {
            this_week: own.map_or(0, |a| a.this_week),
            last_week: own.map_or(0, |a| a.last_week),
        }
    });
    let team = if r.team {
        Some(team(
            c,
            org,
            &sums,
            &activity,
            &roster,
            &currency,
            local.days_utc(p.today, p.today).0,
        )?)
    } else {
        None
    };

    // A rep's lists hold their own deals; someone who oversees deals sees the team's.
    let owner = (!r.oversees_deals).then_some(me);
    let (closing_soon, rotting) = if r.reads_deals {
        let pipelines = pipeline::pipelines(c, org)?;
        let stages: HashMap<String, String> = pipelines
            .iter()
            .flat_map(|v| v.stages.iter().map(|s| (s.id.clone(), s.name.clone())))
            .collect();
        let (soon, soon_count) = figures::closing_soon(
            c,
            org,
            owner,
            p.today,
            p.today + Duration::days(CLOSING_DAYS),
            LIST,
        )?;
        let mut rot: Vec<OpportunityRow> = Vec::new();
        let mut rot_count = 0;
        for v in &pipelines {
            let Some(days) = v.pipeline.rotting_days else {
                continue;
            };
            let cutoff = at - Duration::days(i64::from(days));
            let (rows, n) = figures::rotting(c, org, &v.pipeline.id, owner, cutoff, LIST)?;
            rot.extend(rows);
            rot_count += n;
        }
        rot.sort_by_key(|d| d.stage_entered_at);
        rot.truncate(LIST as usize);
        let mut ids: Vec<String> = soon
            .iter()
            .chain(&rot)
            .map(|d| d.client_id.clone())
            .collect();
        ids.sort();
        ids.dedup();
        let clients = super::sales::client_names(c, org, ids)?;
        let line = |d: OpportunityRow| DealLine {
            client: clients.get(&d.client_id).cloned().unwrap_or_default(),
            stage: stages.get(&d.stage_id).cloned().unwrap_or_default(),
            value: money::to_decimal(d.value_cents),
            days_in_stage: (at - d.stage_entered_at).num_days().max(0),
            owner: r
                .oversees_deals
                .then(|| d.assigned_to.as_ref().and_then(|u| names.get(u).cloned()))
                .flatten(),
            id: d.id,
            name: d.name,
            client_id: d.client_id,
            currency: d.currency,
            expected_close: d.expected_close,
        };
        let list = |rows: Vec<OpportunityRow>, count: i64| DealList {
            more: count >= COUNT_CAP,
            count: count.min(COUNT_CAP),
            deals: rows.into_iter().map(line).collect(),
        };
        (Some(list(soon, soon_count)), Some(list(rot, rot_count)))
    } else {
        (None, None)
    };

    let tasks = if r.tasks {
        let open = interactions::open_tasks(c, org, me)?;
        let mut t = Tasks {
            overdue: 0,
            due_today: 0,
            tasks: Vec::new(),
        };
        for (row, client) in open {
            let overdue = match interactions::bucket(row.due_at.map(|d| local.wall(d)), p.today) {
                "overdue" => true,
                "today" => false,
                _ => continue,
            };
            if overdue {
                t.overdue += 1;
            } else {
                t.due_today += 1;
            }
            if t.tasks.len() < LIST as usize {
                t.tasks.push(TaskLine {
                    id: row.id,
                    subject: row.subject,
                    client_id: row.client_id,
                    client,
                    due_at: row.due_at,
                    overdue,
                    priority: row.priority,
                });
            }
        }
        Some(t)
    } else {
        None
    };

    let new_clients = if r.clients {
        let only = (!r.oversees_clients).then_some(me);
        let this_week = figures::new_clients_since(c, org, week_utc, only)?;
        let since_last = figures::new_clients_since(c, org, week_utc - Duration::days(7), only)?;
        Some(NewClients {
            this_week,
            last_week: (since_last - this_week).max(0),
            more: since_last >= figures::NEW_CLIENTS_CAP,
            own_only: only.is_some(),
        })
    } else {
        None
    };

    Ok(Dashboard {
        periods: PeriodNames {
            today: p.today,
            month: p.month_start.format("%B %Y").to_string(),
            last_month: p.last_month_start.format("%B").to_string(),
            last_month_to_date: p.last_month_to_date.format("%-d %b").to_string(),
            quarter: format!(
                "Q{} {}",
                p.quarter_start.month0() / 3 + 1,
                p.quarter_start.year()
            ),
        },
        currency,
        mine,
        team,
        deals_of: if r.oversees_deals { "team" } else { "mine" },
        closing_soon,
        rotting,
        activities,
        tasks,
        new_clients,
        renewals: None,
    })
}

fn team(
    c: &mut DbConn,
    org: &str,
    sums: &[OwnerSums],
    activity: &[figures::ActivityCount],
    roster: &HashMap<String, (String, String)>,
    currency: &str,
    // The start of the person's today, in UTC: tasks due before it are overdue.
    today_start: NaiveDateTime,
) -> AppResult<Team> {
    let members: Vec<String> = roster.keys().cloned().collect();
    let overdue: HashMap<String, i64> = figures::overdue_tasks(c, org, &members, today_start)?
        .into_iter()
        .filter_map(|o| o.assignee_id.map(|a| (a, o.overdue)))
        .collect();
    let acts: HashMap<&str, i64> = activity
        .iter()
        .filter_map(|a| a.user_id.as_deref().map(|u| (u, a.this_week)))
        .collect();
    let mut owners: Vec<String> = sums.iter().map(|s| s.assigned_to.clone()).collect();
    owners.extend(members);
    owners.sort();
    owners.dedup();
    let mut reps: Vec<RepRow> = owners
        .into_iter()
        .map(|id| {
            let figures = per_currency(sums.iter().filter(|s| s.assigned_to == id), currency);
            RepRow {
                name: if id.is_empty() {
                    "Unassigned".into()
                } else {
                    // why: a rep who left still owns deals; name them rather than drop the row.
                    roster
                        .get(&id)
                        .map_or_else(|| "Former member".into(), |(n, _)| n.clone())
                },
                figures,
                activities_this_week: acts.get(id.as_str()).copied().unwrap_or(0),
                overdue_tasks: overdue.get(&id).copied().unwrap_or(0),
                user_id: id,
            }
        })
        // A line for every sales rep (an idle one is what a manager looks for) and for
        // anyone else with deals, activities or overdue tasks.
        .filter(|r| {
            roster
                .get(&r.user_id)
                .is_some_and(|(_, role)| role == "sales_rep")
                || r.figures.iter().any(|f| !f.is_empty())
                || r.activities_this_week > 0
                || r.overdue_tasks > 0
        })
        .collect();
    reps.sort_by(|a, b| {
        let v = |r: &RepRow| r.main().map_or(Decimal::ZERO, |f| f.open_value);
        v(b).cmp(&v(a))
            .then_with(|| a.user_id.is_empty().cmp(&b.user_id.is_empty()))
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(Team {
        totals: per_currency(sums.iter(), currency),
        activities_this_week: activity.iter().map(|a| a.this_week).sum(),
        reps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sums(owner: &str, currency: &str, open: i64, won: i64, last: i64) -> OwnerSums {
        OwnerSums {
            assigned_to: owner.into(),
            currency: currency.into(),
            open_deals: 1,
            open_cents: open,
            weighted_month_x100: open * 50,
            weighted_quarter_x100: open * 50,
            won_month_deals: i64::from(won > 0),
            won_month_cents: won,
            won_last_month_deals: i64::from(last > 0),
            won_last_month_cents: last,
            won_last_to_date_cents: last,
        }
    }

    #[test]
    fn currencies_stay_apart_with_the_organizations_first() {
        let rows = [
            sums("a", "USD", 10_000, 0, 0),
            sums("b", "EUR", 5_000, 0, 0),
            sums("b", "USD", 2_500, 30_000, 20_000),
        ];
        let f = per_currency(rows.iter(), "USD");
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].currency, "USD");
        assert_eq!(f[0].open_value, Decimal::new(125, 0));
        assert_eq!(f[0].weighted_month, Decimal::new(625, 1));
        assert_eq!(f[0].won_change(), Some(50));
        assert_eq!(f[1].currency, "EUR");
        assert_eq!(f[1].open_value, Decimal::new(50, 0));
        assert_eq!(
            f[0].show(&Default::default(), &Decimal::new(1_234_567, 2)),
            "12,346 USD"
        );
        // No deals at all still shows the organization's currency, at zero.
        let none = per_currency([].iter(), "EUR");
        assert_eq!(none.len(), 1);
        assert_eq!(none[0].won_change(), None);
    }
}
