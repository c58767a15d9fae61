//! The learned churn model: a logistic regression (linfa-logistic) trained on the
//! organization's own history, evaluated honestly on later data, and used for the churn
//! risk once it beats chance clearly; the rules in `scores` stay the fallback.
//!
//! - **What "churned" means**: a client that had no completed contact (call, meeting,
//!   e-mail, note) in the `HORIZON` days after a snapshot. Rapport keeps no history of
//!   status changes, but it keeps every contact with its time, so "went quiet" is what the
//!   history can answer.
//! - **Features**, as of the snapshot: days since the last contact, contacts in 30, 90 and
//!   365 days, meetings and inbound contacts in 90 days, bulk e-mail engagement, won deals,
//!   lost deals in 90 days, a contract ending without a renewal deal. The same aggregates
//!   the rules use (`scores::inputs`, computed as of any time).
//! - **Training and evaluation**: snapshot A = now − 2 × horizon, labelled by the horizon
//!   after it; snapshot B = now − horizon, labelled by the horizon up to now. A model fitted
//!   on A is scored on B: that AUC (clients and outcomes it never saw, later in time) is the
//!   one reported. The model kept is then fitted on B, the most recent complete history.
//! - **When it is used**: at least 200 clients with at least 20 on each side, and a
//!   held-out AUC of 0.6 or more; otherwise the rules.
//! - **Reasons**: each feature's contribution (weight × standardised value); those that push
//!   the risk up are named, with their share of the risk as points.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::db::schema::{churn_models, clients, interactions};
use crate::db::{now, DbConn};
use crate::domain::scores::Inputs;
use crate::error::{AppError, AppResult};

/// The days after a snapshot in which a client that is still a client makes contact.
pub const HORIZON: i64 = 90;
/// Clients sampled per snapshot.
pub const SAMPLE: i64 = 20_000;
const MIN_SAMPLES: usize = 200;
const MIN_CLASS: usize = 20;
const MIN_AUC: f64 = 0.6;

pub const FEATURES: [&str; 10] = [
    "days since the last contact",
    "contacts in 30 days",
    "contacts in 90 days",
    "contacts in 365 days",
    "meetings in 90 days",
    "contacts started by the client in 90 days",
    "bulk e-mail opened or clicked in 90 days",
    "won deals",
    "lost deals in 90 days",
    "contract ending without a renewal deal",
];

pub type Row = [f64; 10];

/// A client's features as of `at`: counts on a log scale (the tenth contact says less
/// than the first), silence capped at two years.
pub fn features(i: &Inputs, at: NaiveDateTime) -> Row {
    let silence = i
        .last_contact
        .map(|l| (at - l).num_days().clamp(0, 730))
        .unwrap_or(730) as f64;
    let log = |n: i64| (n.max(0) as f64).ln_1p();
    [
        silence,
        log(i.n30),
        log(i.n90),
        log(i.n365),
        log(i.meetings90),
        log(i.inbound90),
        if i.engaged90 > 0 { 1.0 } else { 0.0 },
        log(i.won_count),
        log(i.lost90),
        if i.contract_ends.is_some() { 1.0 } else { 0.0 },
    ]
}

/// A fitted model: standardisation, weights and what its evaluation found.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Model {
    pub means: Vec<f64>,
    pub scales: Vec<f64>,
    pub weights: Vec<f64>,
    pub intercept: f64,
}

impl Model {
    fn z(&self, x: &Row) -> Vec<f64> {
        x.iter()
            .zip(self.means.iter().zip(&self.scales))
            .map(|(v, (m, s))| (v - m) / s)
            .collect()
    }

    /// The probability of churn, and each feature's contribution to the log-odds.
    pub fn predict(&self, x: &Row) -> (f64, Vec<f64>) {
        let contributions: Vec<f64> = self
            .z(x)
            .iter()
            .zip(&self.weights)
            .map(|(z, w)| z * w)
            .collect();
        let logit = self.intercept + contributions.iter().sum::<f64>();
        (1.0 / (1.0 + (-logit).exp()), contributions)
    }
}

/// Fits a logistic regression on standardised features (ridge-regularised, so a feature
/// that never varies gets no weight instead of breaking the fit).
pub fn fit(rows: &[(Row, bool)]) -> AppResult<Model> {
    use linfa::prelude::*;
    use ndarray::{Array1, Array2};
    if rows.is_empty() {
        return Err(AppError::BadRequest("No history to learn from.".into()));
    }
    let n = rows.len() as f64;
    let k = FEATURES.len();
    let means: Vec<f64> = (0..k)
        .map(|j| rows.iter().map(|r| r.0[j]).sum::<f64>() / n)
        .collect();
    let scales: Vec<f64> = (0..k)
        .map(|j| {
            let var = rows
                .iter()
                .map(|r| (r.0[j] - means[j]).powi(2))
                .sum::<f64>()
                / n;
            if var > 1e-12 {
                var.sqrt()
            } else {
                1.0
            }
        })
        .collect();
    let x = Array2::from_shape_fn((rows.len(), k), |(i, j)| {
        (rows[i].0[j] - means[j]) / scales[j]
    });
    let y: Array1<bool> = rows.iter().map(|r| r.1).collect();
    let data = linfa::Dataset::new(x, y);
    let fitted = linfa_logistic::LogisticRegression::default()
        .alpha(0.1)
        .max_iterations(200)
        .fit(&data)
        .map_err(|e| AppError::BadRequest(format!("The churn model could not be fitted: {e}")))?;
    // why: linfa reports the probability of the larger label; `true` (churned) > `false`,
    // but check rather than assume, and flip the signs if the classes came out the other way.
    let positive_is_true = fitted.labels().pos.class;
    let sign = if positive_is_true { 1.0 } else { -1.0 };
    Ok(Model {
        means,
        scales,
        weights: fitted.params().iter().map(|w| w * sign).collect(),
        intercept: fitted.intercept() * sign,
    })
}

/// The area under the ROC curve: the chance that a random churned client scores above a
/// random retained one (ties count half). 0.5 is chance.
pub fn auc(scored: &[(f64, bool)]) -> Option<f64> {
    let pos = scored.iter().filter(|s| s.1).count();
    let neg = scored.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    let mut sorted: Vec<&(f64, bool)> = scored.iter().collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Mann–Whitney U from ranks, ties given their average rank.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1].0 == sorted[i].0 {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += sorted[i..=j].iter().filter(|s| s.1).count() as f64 * avg;
        i = j + 1;
    }
    let u = rank_sum - (pos * (pos + 1)) as f64 / 2.0;
    Some(u / (pos as f64 * neg as f64))
}

/// What training found; stored with the model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ChurnEvaluation)]
pub struct Evaluation {
    /// Clients in the training snapshot, and how many of them went quiet.
    pub samples: usize,
    pub churned: usize,
    /// AUC of the model fitted on the older snapshot, on the newer one (null without both
    /// outcomes).
    pub auc: Option<f64>,
    /// Whether the churn risk now comes from the model (else the rules).
    pub in_use: bool,
    /// Why not, when it is not.
    pub reason: String,
    pub trained_at: String,
    pub horizon_days: i64,
}

/// One snapshot: the features of up to `SAMPLE` clients that existed at `at`, labelled by
/// whether they had no contact in the horizon after it.
fn snapshot(c: &mut DbConn, org: &str, at: NaiveDateTime) -> AppResult<Vec<(Row, bool)>> {
    let currency = crate::domain::orgs::store::find_org(c, org)?
        .map(|o| o.default_currency)
        .unwrap_or_else(|| "EUR".into());
    // Clients trashed since the snapshot count (they may be the ones that left); the
    // sample is spread over the ids' random tail, not the oldest clients first.
    let ids: Vec<String> = clients::table
        .filter(clients::organization_id.eq(org))
        .filter(clients::deleted_at.is_null().or(clients::deleted_at.gt(at)))
        .filter(clients::created_at.le(at))
        .order(diesel::dsl::sql::<diesel::sql_types::Text>(
            "substr(clients.id, 25)",
        ))
        .limit(SAMPLE)
        .select(clients::id)
        .load(c)?;
    let end = at + Duration::days(HORIZON);
    let mut rows = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let inputs = crate::domain::scores::inputs_at(c, org, &currency, chunk, at)?;
        let active: Vec<(String, i64)> = interactions::table
            .filter(interactions::client_id.eq_any(chunk))
            .filter(interactions::deleted_at.is_null())
            .filter(interactions::status.eq("completed"))
            .filter(interactions::kind.ne_all(["task", "event"]))
            .filter(interactions::occurred_at.gt(at))
            .filter(interactions::occurred_at.le(end))
            .group_by(interactions::client_id)
            .select((interactions::client_id, diesel::dsl::count_star()))
            .load(c)?;
        for i in &inputs {
            let contacted = active.iter().any(|(id, n)| id == &i.id && *n > 0);
            rows.push((features(i, at), !contacted));
        }
    }
    Ok(rows)
}

/// Trains the organization's model: fit on the older snapshot, evaluate on the newer, keep
/// a model fitted on the newer. Stores the model (or that there is none) and answers the
/// evaluation.
pub fn train(c: &mut DbConn, org: &str) -> AppResult<Evaluation> {
    let t = now();
    let older = snapshot(c, org, t - Duration::days(2 * HORIZON))?;
    let newer = snapshot(c, org, t - Duration::days(HORIZON))?;
    let churned = newer.iter().filter(|r| r.1).count();
    let enough = |rows: &[(Row, bool)]| {
        let pos = rows.iter().filter(|r| r.1).count();
        rows.len() >= MIN_SAMPLES && pos >= MIN_CLASS && rows.len() - pos >= MIN_CLASS
    };
    let mut ev = Evaluation {
        samples: newer.len(),
        churned,
        auc: None,
        in_use: false,
        reason: String::new(),
        trained_at: t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        horizon_days: HORIZON,
    };
    let mut model = None;
    if !enough(&older) || !enough(&newer) {
        ev.reason = format!(
            "Too little history: the model needs {MIN_SAMPLES} clients from {} days ago with at least {MIN_CLASS} that went quiet and {MIN_CLASS} that did not.",
            2 * HORIZON
        );
    } else {
        let first = fit(&older)?;
        let scored: Vec<(f64, bool)> = newer
            .iter()
            .map(|(x, y)| (first.predict(x).0, *y))
            .collect();
        ev.auc = auc(&scored);
        match ev.auc {
            Some(a) if a >= MIN_AUC => {
                ev.in_use = true;
                model = Some(fit(&newer)?);
            }
            Some(a) => {
                ev.reason = format!(
                    "On later data the model ranks clients little better than chance (AUC {a:.2}); the rules stay."
                )
            }
            None => ev.reason = "The later data has only one outcome; nothing to evaluate.".into(),
        }
    }
    let model_json = model
        .as_ref()
        .map(|m| serde_json::to_string(m).unwrap_or_default());
    let evaluation = serde_json::to_string(&ev).map_err(|e| AppError::Internal(e.to_string()))?;
    crate::db::transaction(c, |c| -> AppResult<()> {
        diesel::delete(churn_models::table.filter(churn_models::organization_id.eq(org)))
            .execute(c)?;
        diesel::insert_into(churn_models::table)
            .values((
                churn_models::organization_id.eq(org),
                churn_models::model.eq(model_json),
                churn_models::evaluation.eq(&evaluation),
                churn_models::trained_at.eq(t),
            ))
            .execute(c)?;
        Ok(())
    })?;
    Ok(ev)
}

/// The organization's model in use, if any.
pub fn current(c: &mut DbConn, org: &str) -> AppResult<Option<Model>> {
    let row: Option<Option<String>> = churn_models::table
        .filter(churn_models::organization_id.eq(org))
        .select(churn_models::model)
        .first(c)
        .optional()?;
    Ok(row.flatten().and_then(|m| serde_json::from_str(&m).ok()))
}

/// The last training's evaluation and when it ran.
pub fn evaluation(c: &mut DbConn, org: &str) -> AppResult<Option<(Evaluation, NaiveDateTime)>> {
    let row: Option<(String, NaiveDateTime)> = churn_models::table
        .filter(churn_models::organization_id.eq(org))
        .select((churn_models::evaluation, churn_models::trained_at))
        .first(c)
        .optional()?;
    Ok(row.and_then(|(e, t)| serde_json::from_str(&e).ok().map(|e| (e, t))))
}

/// A feature's value in words, for a reason.
pub fn describe(j: usize, i: &Inputs, at: NaiveDateTime) -> String {
    match j {
        0 => match i.last_contact {
            Some(l) => format!("No contact for {} days", (at - l).num_days().max(0)),
            None => "Never contacted".into(),
        },
        1 => format!("{} contacts in 30 days", i.n30),
        2 => format!("{} contacts in 90 days", i.n90),
        3 => format!("{} contacts this year", i.n365),
        4 => format!("{} meetings in 90 days", i.meetings90),
        5 => format!("{} contacts started by the client in 90 days", i.inbound90),
        6 => {
            if i.engaged90 > 0 {
                "Opened or clicked a bulk e-mail".into()
            } else {
                "No bulk e-mail opened in 90 days".into()
            }
        }
        7 => format!("{} won deals", i.won_count),
        8 => format!("{} lost deals this quarter", i.lost90),
        _ => "Contract ends without a renewal deal".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny deterministic generator (xorshift), so the tests need no seed crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % 1_000_000) as f64 / 1_000_000.0
        }
    }

    /// Clients whose churn depends on silence and recent contacts (signal), or on nothing.
    fn history(rng: &mut Rng, n: usize, signal: bool) -> Vec<(Row, bool)> {
        (0..n)
            .map(|_| {
                let silence = rng.next() * 365.0;
                let n90 = (rng.next() * 10.0).floor();
                let mut x = [0.0; 10];
                x[0] = silence;
                x[2] = n90.ln_1p();
                x[3] = (n90 * 3.0 + rng.next() * 5.0).ln_1p();
                x[7] = (rng.next() * 3.0).floor().ln_1p();
                let p = if signal {
                    1.0 / (1.0 + (-(silence / 60.0 - 2.0 - n90 * 0.3)).exp())
                } else {
                    0.3
                };
                (x, rng.next() < p)
            })
            .collect()
    }

    #[test]
    fn a_known_signal_is_learned_and_noise_is_not() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let train = history(&mut rng, 2000, true);
        let test = history(&mut rng, 2000, true);
        let m = fit(&train).unwrap();
        let scored: Vec<(f64, bool)> = test.iter().map(|(x, y)| (m.predict(x).0, *y)).collect();
        let a = auc(&scored).unwrap();
        assert!(a > 0.8, "AUC on held-out data with a signal: {a}");
        // Silence pushes the risk up, recent contacts down.
        assert!(m.weights[0] > 0.0 && m.weights[2] < 0.0, "{m:?}");

        let noise_train = history(&mut rng, 2000, false);
        let noise_test = history(&mut rng, 2000, false);
        let m = fit(&noise_train).unwrap();
        let scored: Vec<(f64, bool)> = noise_test
            .iter()
            .map(|(x, y)| (m.predict(x).0, *y))
            .collect();
        let a = auc(&scored).unwrap();
        assert!((0.44..0.56).contains(&a), "AUC on noise: {a}");
    }

    #[test]
    fn auc_counts_ties_as_half() {
        assert_eq!(auc(&[(0.9, true), (0.1, false)]), Some(1.0));
        assert_eq!(auc(&[(0.1, true), (0.9, false)]), Some(0.0));
        assert_eq!(auc(&[(0.5, true), (0.5, false)]), Some(0.5));
        assert_eq!(auc(&[(0.5, true)]), None);
    }
}
