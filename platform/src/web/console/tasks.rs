//! "My tasks": open tasks assigned to the signed-in user, overdue, today and upcoming, each
//! done in one click.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::auth::ConsoleActor;
use crate::domain::interactions::{self as service, InteractionRow};
use crate::error::AppResult;
use crate::ops::interactions as ops;
use crate::state::AppState;
use crate::web::console::{redirect_with_flash, render};

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
pub fn buckets(tasks: Vec<(InteractionRow, String)>) -> Vec<Bucket> {
    let today = chrono::Utc::now().date_naive();
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
        let key = service::bucket(r.due_at, today);
        let view = TaskView {
            id: r.id.clone(),
            subject: r.subject.clone(),
            client_id: r.client_id.clone(),
            client,
            due: r
                .due_at
                .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_default(),
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
}

pub async fn list(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let page = TasksPage {
        buckets: buckets(ops::my_tasks(&scope).await?),
        can_complete: scope.can("interaction", "write"),
    };
    render(&req, &actor, "My tasks", &page).await
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
