//! The durable outbox of plugin event hooks (`client_after_create`, `opportunity_after_won`,
//! …). A change writes its events in its own transaction; a dispatcher thread hands them to
//! a few workers. Delivery is in order per organization and in parallel across
//! organizations, so one tenant's slow (but successful) integration never holds up
//! another's. Each install and each organization has a wall-time budget per minute, counted
//! over whole calls (host calls such as HTTP included): an integration over its budget
//! waits, and the workers serve everyone else meanwhile. A worker claims an event for a
//! lease before running it, so events survive a restart (at least once: a call cut off by a
//! crash runs again) and several instances share one outbox.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::runtime::Runtime;
use crate::db::schema::plugin_events as ev;
use crate::db::{new_id, now, DbConn, Pool};
use crate::error::AppResult;

/// Workers delivering events at once (each runs one organization's next event).
pub const WORKERS: usize = 4;
/// How long a claimed event is held before another worker may take it again.
const LEASE_SECONDS: i64 = 60;
/// The window over which budgets are counted.
const BUDGET_WINDOW: Duration = Duration::from_secs(60);
/// Wall time one install may spend in event hooks per window.
pub const INSTALL_BUDGET: Duration = Duration::from_secs(20);
/// Wall time all of an organization's plugins may spend in event hooks per window.
pub const ORG_BUDGET: Duration = Duration::from_secs(30);
/// Events looked at per dispatch round.
const SCAN: i64 = 500;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = ev)]
pub struct EventRow {
    pub id: String,
    pub organization_id: String,
    pub install_id: String,
    pub hook: String,
    pub input: String,
    pub created_at: NaiveDateTime,
    pub claimed_until: Option<NaiveDateTime>,
    pub depth: i32,
}

/// Writes events to the outbox; call inside the transaction of the change that raised them.
pub fn enqueue(
    conn: &mut DbConn,
    org_id: &str,
    events: &[(String, &'static str, Vec<u8>)],
) -> QueryResult<()> {
    let at = now();
    let depth = crate::domain::workflows::current_depth();
    let rows: Vec<EventRow> = events
        .iter()
        .map(|(install, hook, input)| EventRow {
            id: new_id(),
            organization_id: org_id.to_string(),
            install_id: install.clone(),
            hook: hook.to_string(),
            input: String::from_utf8_lossy(input).into_owned(),
            created_at: at,
            claimed_until: None,
            depth,
        })
        .collect();
    // why: one statement per row: MultiConnection has no multi-row insert.
    for row in &rows {
        diesel::insert_into(ev::table).values(row).execute(conn)?;
    }
    Ok(())
}

/// Events not yet delivered (all organizations).
pub fn waiting(conn: &mut DbConn) -> QueryResult<i64> {
    ev::table.count().get_result(conn)
}

/// Wall time spent per key over the last window.
#[derive(Default)]
struct Budgets {
    spent: HashMap<String, VecDeque<(Instant, Duration)>>,
}

impl Budgets {
    fn used(&mut self, key: &str) -> Duration {
        let Some(q) = self.spent.get_mut(key) else {
            return Duration::ZERO;
        };
        while q
            .front()
            .is_some_and(|(at, _)| at.elapsed() > BUDGET_WINDOW)
        {
            q.pop_front();
        }
        q.iter().map(|(_, d)| *d).sum()
    }

    fn add(&mut self, key: &str, took: Duration) {
        self.spent
            .entry(key.to_string())
            .or_default()
            .push_back((Instant::now(), took));
    }
}

struct Shared {
    budgets: Mutex<Budgets>,
    /// Organizations with an event in a worker of this process.
    busy: Mutex<HashSet<String>>,
}

/// Starts the dispatcher and its workers. They stop when every sender of `wake` is gone
/// (the runtime was dropped).
pub fn spawn(
    pool: Pool,
    runtime: Runtime,
    wake: Receiver<()>,
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
) {
    let shared = Arc::new(Shared {
        budgets: Mutex::default(),
        busy: Mutex::default(),
    });
    let (work_tx, work_rx) = std::sync::mpsc::channel::<EventRow>();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let work_rx = Arc::new(Mutex::new(work_rx));
    for n in 0..WORKERS {
        let (pool, runtime, shared, work_rx, done_tx, in_flight) = (
            pool.clone(),
            runtime.clone(),
            shared.clone(),
            work_rx.clone(),
            done_tx.clone(),
            in_flight.clone(),
        );
        let started = std::thread::Builder::new()
            .name(format!("plugin-events-{n}"))
            .spawn(move || loop {
                let next = match work_rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => return,
                };
                let Ok(event) = next else { return };
                let org = event.organization_id.clone();
                // why: a panic in one delivery must not stop the ones after it.
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    deliver(&pool, &runtime, &shared, &event)
                }));
                match outcome {
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, event = %event.id, "plugin event not delivered")
                    }
                    Err(_) => tracing::error!(event = %event.id, "plugin event delivery panicked"),
                    Ok(Ok(())) => {}
                }
                if let Ok(mut busy) = shared.busy.lock() {
                    busy.remove(&org);
                }
                in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                let _ = done_tx.send(());
            });
        if let Err(e) = started {
            tracing::error!(error = %e, "cannot start a plugin event worker");
        }
    }
    drop(done_tx);
    let clock = runtime;
    let started = std::thread::Builder::new()
        .name("plugin-events".into())
        .spawn(move || {
            let mut idle_wait = Duration::from_millis(500);
            loop {
                match wake.recv_timeout(idle_wait) {
                    Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
                while wake.try_recv().is_ok() {}
                while done_rx.try_recv().is_ok() {}
                match dispatch(&pool, &clock, &shared, &work_tx, &in_flight) {
                    // Something is running or waiting on a budget: look again soon.
                    Ok(true) => idle_wait = Duration::from_millis(20),
                    Ok(false) => idle_wait = Duration::from_millis(500),
                    Err(e) => {
                        tracing::warn!(error = %e, "plugin event dispatch failed");
                        idle_wait = Duration::from_secs(1);
                    }
                }
            }
        });
    if let Err(e) = started {
        tracing::error!(error = %e, "cannot start the plugin event dispatcher");
    }
}

/// One round: each organization's oldest event goes to a worker, unless that organization
/// is busy here, its oldest event is claimed elsewhere, or a budget is spent. Answers
/// whether anything is still to do.
fn dispatch(
    pool: &Pool,
    runtime: &Runtime,
    shared: &Shared,
    work: &Sender<EventRow>,
    in_flight: &std::sync::atomic::AtomicUsize,
) -> AppResult<bool> {
    let mut conn = pool
        .get()
        .map_err(|e| crate::error::AppError::Unavailable(e.to_string()))?;
    let rows: Vec<EventRow> = ev::table
        .order(ev::id.asc())
        .limit(SCAN)
        .select(EventRow::as_select())
        .load(&mut conn)?;
    if rows.is_empty() {
        return Ok(in_flight.load(std::sync::atomic::Ordering::SeqCst) > 0);
    }
    let at = now();
    let mut seen = HashSet::new();
    let mut pending = false;
    for row in rows {
        if !seen.insert(row.organization_id.clone()) {
            pending = true;
            continue;
        }
        pending = true;
        if in_flight.load(std::sync::atomic::Ordering::SeqCst) >= WORKERS {
            break;
        }
        let busy_here = shared
            .busy
            .lock()
            .map(|b| b.contains(&row.organization_id))
            .unwrap_or(true);
        if busy_here || row.claimed_until.is_some_and(|t| t > at) {
            continue;
        }
        let over = {
            let mut b = shared.budgets.lock().unwrap_or_else(|p| p.into_inner());
            b.used(&row.install_id) >= INSTALL_BUDGET
                || b.used(&format!("org:{}", row.organization_id)) >= ORG_BUDGET
                || runtime.over_budget(&row.organization_id)
        };
        if over {
            tracing::debug!(org = %row.organization_id, install = %row.install_id, "plugin event budget spent; waiting");
            continue;
        }
        let claimed = diesel::update(
            ev::table
                .filter(ev::id.eq(&row.id))
                .filter(ev::claimed_until.is_null().or(ev::claimed_until.lt(at))),
        )
        .set(ev::claimed_until.eq(Some(at + chrono::Duration::seconds(LEASE_SECONDS))))
        .execute(&mut conn)?;
        if claimed != 1 {
            continue;
        }
        if let Ok(mut busy) = shared.busy.lock() {
            busy.insert(row.organization_id.clone());
        }
        in_flight.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if work.send(row).is_err() {
            in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            return Ok(false);
        }
    }
    Ok(pending)
}

/// Runs one event's hook, records the outcome on the install, and removes the event.
fn deliver(pool: &Pool, runtime: &Runtime, shared: &Shared, event: &EventRow) -> AppResult<()> {
    let mut conn = pool
        .get()
        .map_err(|e| crate::error::AppError::Unavailable(e.to_string()))?;
    let install = match super::find(&mut conn, &event.organization_id, &event.install_id) {
        Ok(i) if i.enabled => Some(i),
        Ok(_) | Err(crate::error::AppError::NotFound) => None,
        Err(e) => return Err(e),
    };
    if let Some(install) = install {
        // why: no connection is held while the plugin runs (an HTTP call can take seconds).
        drop(conn);
        let mut ctx = install.host_context(install.manifest().as_ref());
        ctx.may_write = true;
        ctx.depth = event.depth;
        let started = Instant::now();
        let outcome = runtime.call(
            &install.runtime_key(),
            &install.wasm,
            &ctx,
            &event.hook,
            event.input.as_bytes(),
        );
        let took = started.elapsed();
        if let Err(super::runtime::PluginError::Busy(_)) = &outcome {
            // Not run: the organization is over its budget. The event waits (its claim is
            // released) and runs once the minute has moved on.
            let mut conn = pool
                .get()
                .map_err(|e| crate::error::AppError::Unavailable(e.to_string()))?;
            diesel::update(ev::table.filter(ev::id.eq(&event.id)))
                .set(ev::claimed_until.eq(None::<NaiveDateTime>))
                .execute(&mut conn)?;
            return Ok(());
        }
        {
            let mut b = shared.budgets.lock().unwrap_or_else(|p| p.into_inner());
            b.add(&install.id, took);
            b.add(&format!("org:{}", install.organization_id), took);
        }
        if let Err(e) = &outcome {
            tracing::warn!(plugin = %install.plugin_id, hook = %event.hook, error = %e, "event hook failed");
        }
        conn = pool
            .get()
            .map_err(|e| crate::error::AppError::Unavailable(e.to_string()))?;
        super::settle(
            &mut conn,
            &event.organization_id,
            &[super::CallRecord {
                install_id: install.id.clone(),
                error: outcome.err().map(|e| e.to_string()),
            }],
        )?;
    }
    diesel::delete(ev::table.filter(ev::id.eq(&event.id))).execute(&mut conn)?;
    Ok(())
}
