//! "My tasks": open tasks assigned to the signed-in user, overdue, today and upcoming, each
//! done in one click.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::auth::ConsoleActor;
use crate::domain::interactions::{self as service, InteractionRow};
use crate::error::AppResult;
use crate::ops::interactions as ops;
use crate::state::AppState;
use crate::web::console::redirect_with_flash;

pub struct TaskView {
    pub id: String,
    pub subject: String,
    pub client_id: String,
    pub client: String,
    pub due: String,
    pub priority: String,
}

pub struct Bucket {
    pub key: &'static str,
    pub label: &'static str,
    pub tasks: Vec<TaskView>,
}

/// The user's open tasks in the three buckets.
pub fn buckets(tasks: Vec<(InteractionRow, String)>, local: &crate::locale::Local) -> Vec<Bucket> {
    let today = local.today();
    let mut out = vec![
        Bucket {
            key: "overdue",
            label: "Overdue",
            tasks: vec![],
        },
        Bucket {
            key: "today",
            label: "Today",
            tasks: vec![],
        },
        Bucket {
            key: "upcoming",
            label: "Upcoming",
            tasks: vec![],
        },
    ];
    for (r, client) in tasks {
        let key = service::bucket(r.due_at.map(|d| local.wall(d)), today);
        let view = TaskView {
            id: r.id.clone(),
            subject: r.subject.clone(),
            client_id: r.client_id.clone(),
            client,
            due: r.due_at.map(|d| local.datetime(d)).unwrap_or_default(),
            priority: r.priority.clone().unwrap_or_default(),
        };
        if let Some(b) = out.iter_mut().find(|b| b.key == key) {
            b.tasks.push(view);
        }
    }
    out
}

#[derive(Template)]
#[template(path = "partials/tasks.html")]
struct TasksPage {
    buckets: Vec<Bucket>,
    /// "Done" is offered only to those who may change interactions.
    can_complete: bool,
    /// "New task" likewise.
    can_create: bool,
    form: NewTask,
    errors: Vec<String>,
}

/// The "New task" form as typed (kept when it is refused).
#[derive(Default)]
pub struct NewTask {
    pub client_id: String,
    pub client_name: String,
    pub subject: String,
    pub due: String,
    pub priority: String,
}

async fn page(
    req: &HttpRequest,
    actor: &ConsoleActor,
    state: &AppState,
    form: NewTask,
    errors: Vec<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(actor, state).await?;
    let status = if errors.is_empty() {
        actix_web::http::StatusCode::OK
    } else {
        actix_web::http::StatusCode::UNPROCESSABLE_ENTITY
    };
    let page = TasksPage {
        buckets: buckets(ops::my_tasks(&scope).await?, &scope.local),
        can_complete: scope.can("interaction", "write"),
        can_create: scope.can("interaction", "write") && scope.can("client", "read"),
        form,
        errors,
    };
    crate::web::console::render_with_status(req, actor, "My tasks", &page, status).await
}

pub async fn list(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    page(&req, &actor, &state, NewTask::default(), Vec::new()).await
}

/// `POST /tasks`: a task for the signed-in user on a client chosen in the picker; a refused
/// one comes back in the form with everything typed.
pub async fn create(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let pairs = crate::web::console::form_pairs(&body)?;
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    let form = NewTask {
        client_id: get("clientId"),
        client_name: get("q"),
        subject: get("subject"),
        due: get("due"),
        priority: get("priority"),
    };
    if form.client_id.is_empty() {
        let errors = vec!["Choose the client the task is for: type a name and pick it.".into()];
        return page(&req, &actor, &state, form, errors).await;
    }
    let mut fields = serde_json::Map::new();
    fields.insert("subject".into(), form.subject.clone().into());
    if !form.due.is_empty() {
        // The person's wall clock, stored as UTC; anything else goes through as typed so
        // the domain's message names it.
        let due = scope.local.parse_input(&form.due).map_or_else(
            || form.due.clone(),
            |t| {
                t.and_utc()
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            },
        );
        fields.insert("dueAt".into(), due.into());
    }
    if !form.priority.is_empty() {
        fields.insert("priority".into(), form.priority.clone().into());
    }
    if let Some(me) = &scope.user_id {
        fields.insert("assigneeId".into(), me.clone().into());
    }
    match ops::create_task(&scope, form.client_id.clone(), fields).await {
        Ok(v) => redirect_with_flash(&req, "/tasks", &format!("Task added: {}.", v.row.subject)),
        Err(crate::error::AppError::Validation(_, errors)) => {
            let errors = errors.into_iter().map(|e| e.message).collect();
            page(&req, &actor, &state, form, errors).await
        }
        Err(crate::error::AppError::NotFound) => {
            let errors = vec!["That client is not one you can see; pick another.".into()];
            page(&req, &actor, &state, form, errors).await
        }
        Err(e) => Err(e),
    }
}

/// `POST /tasks/{id}/complete`: one click.
pub async fn complete(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let v = ops::complete_task(&scope, id.into_inner()).await?;
    redirect_with_flash(&req, "/tasks", &format!("Done: {}.", v.row.subject))
}
