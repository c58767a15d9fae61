//! Append-only rows a batch of workflow runs holds back and writes at its end: the audit
//! entries its steps make, the webhook deliveries those owe and the runs' step rows (with
//! the search outbox's touches and the new interactions, which their own modules hold).
//! why: a run's own change is a few statements; each of these rows was one more, and on
//! PostgreSQL the statement, not the commit, is what a run costs. Held here they go in as
//! one `COPY` a table (multi-row inserts on SQLite) in the batch's transaction, so they
//! commit or roll back with the changes they describe exactly as before. Nothing in a batch
//! reads them back: the worker sends deliveries and shows step rows after the commit.

use std::cell::RefCell;

use diesel::prelude::*;

use crate::db::schema::{audit_log, webhook_deliveries, workflow_runs, workflow_steps};
use crate::db::{append_rows, DbConn};
use crate::domain::audit::AuditRow;
use crate::domain::webhooks::DeliveryRow;
use crate::domain::workflows::StepRow;
use crate::error::AppResult;

#[derive(Default)]
struct Held {
    audit: Vec<AuditRow>,
    deliveries: Vec<DeliveryRow>,
    steps: Vec<StepRow>,
    /// Runs that ended well, with the step they end at (`None`: where they are).
    done: Vec<(String, Option<i32>)>,
}

thread_local! {
    // why: the rows are made many calls below the batch (step → service → audit →
    // webhooks), synchronously on the thread that holds the batch's connection.
    static HELD: RefCell<Option<Held>> = const { RefCell::new(None) };
}

/// Runs `f`, holding back the rows it makes; writes them on the same connection (so in its
/// transaction) once it has succeeded. A failure drops them with the rest of the batch.
pub fn together<T>(conn: &mut DbConn, f: impl FnOnce(&mut DbConn) -> AppResult<T>) -> AppResult<T> {
    if HELD.with(|h| h.borrow().is_some()) {
        // Inside another batch: that one writes them.
        return f(conn);
    }
    struct Clear;
    impl Drop for Clear {
        fn drop(&mut self) {
            HELD.with(|h| h.borrow_mut().take());
        }
    }
    HELD.with(|h| *h.borrow_mut() = Some(Held::default()));
    let _clear = Clear;
    let _touches = crate::domain::outbox::defer_touches();
    let out = crate::domain::interactions::writes_together(conn, f)?;
    let held = HELD.with(|h| h.borrow_mut().take()).unwrap_or_default();
    // Columns a row: audit 11, deliveries 15, steps 9.
    append_rows!(conn, audit_log::table, &held.audit[..], 2000);
    append_rows!(conn, webhook_deliveries::table, &held.deliveries[..], 1500);
    append_rows!(conn, workflow_steps::table, &held.steps[..], 2000);
    crate::domain::outbox::flush_touches(conn)?;
    end_runs(conn, held.done)?;
    Ok(out)
}

fn hold<R>(row: R, pick: impl FnOnce(&mut Held) -> &mut Vec<R>) -> Option<R> {
    HELD.with(|h| match h.borrow_mut().as_mut() {
        Some(held) => {
            pick(held).push(row);
            None
        }
        None => Some(row),
    })
}

/// Inside [`together`] holds the entry back; outside gives it back to be written now.
pub fn audit(row: AuditRow) -> Option<AuditRow> {
    hold(row, |h| &mut h.audit)
}

/// As [`audit`], for a webhook delivery.
pub fn delivery(row: DeliveryRow) -> Option<DeliveryRow> {
    hold(row, |h| &mut h.deliveries)
}

/// As [`audit`], for a workflow run's step row.
pub fn step(row: StepRow) -> Option<StepRow> {
    hold(row, |h| &mut h.steps)
}

/// As [`audit`], for a run that ended well: `Some(run)` back outside [`together`].
pub fn done(run: &str, step: Option<i32>) -> Option<()> {
    hold((run.to_string(), step), |h| &mut h.done).map(drop)
}

/// The runs that ended well, one update for those ending at the same step.
fn end_runs(conn: &mut DbConn, done: Vec<(String, Option<i32>)>) -> AppResult<()> {
    let mut by_step: std::collections::BTreeMap<Option<i32>, Vec<String>> = Default::default();
    for (run, step) in done {
        by_step.entry(step).or_default().push(run);
    }
    let at = crate::db::now();
    for (step, runs) in by_step {
        // SQLite binds at most 32,766 parameters a statement.
        for part in runs.chunks(10_000) {
            diesel::update(workflow_runs::table.filter(workflow_runs::id.eq_any(part)))
                .set((
                    step.map(|n| workflow_runs::step.eq(n)),
                    workflow_runs::status.eq("done"),
                    workflow_runs::error.eq(None::<String>),
                    workflow_runs::finished_at.eq(Some(at)),
                    workflow_runs::lease_until.eq(None::<chrono::NaiveDateTime>),
                    workflow_runs::next_at.eq(None::<chrono::NaiveDateTime>),
                    workflow_runs::updated_at.eq(at),
                ))
                .execute(conn)?;
        }
    }
    Ok(())
}
