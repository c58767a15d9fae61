//! The Custom fields page: define, edit, reorder, archive and restore fields
//! (`custom_field:write`; archiving needs `custom_field:delete`).

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use askama::Template;

use crate::auth::ConsoleActor;
use crate::domain::custom_fields::service::FieldInput;
use crate::domain::custom_fields::{FieldRow, FieldType};
use crate::error::{AppError, AppResult, FieldError};
use crate::ops::custom_fields as ops;
use crate::state::AppState;
use crate::web::console::{flash_cookie, redirect, redirect_with_flash, render_with_status};

pub struct FieldView {
    pub id: String,
    pub label: String,
    pub key: String,
    pub type_label: &'static str,
    pub required: bool,
    pub sensitive: bool,
    pub searchable: bool,
    pub group: String,
    pub options: String,
}

impl From<&FieldRow> for FieldView {
    fn from(f: &FieldRow) -> Self {
        Self {
            id: f.id.clone(),
            label: f.label.clone(),
            key: f.field_key.clone(),
            type_label: f.kind().label(),
            required: f.required,
            sensitive: f.sensitive,
            searchable: f.searchable,
            group: f.display_group.clone(),
            options: f.option_list().join(", "),
        }
    }
}

pub struct TypeOption {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// The define/edit form's values, kept as typed when it comes back with errors.
#[derive(Default)]
pub struct FieldFormValues {
    pub entity: String,
    pub id: Option<String>,
    pub version: i64,
    pub label: String,
    pub key: String,
    pub field_type: String,
    pub options: String,
    pub required: bool,
    pub sensitive: bool,
    pub searchable: bool,
    pub default: String,
    pub help: String,
    pub group: String,
    pub currency: String,
}

#[derive(Template)]
#[template(path = "partials/admin/fields.html")]
struct FieldsPage {
    entity: String,
    active: Vec<FieldView>,
    archived: Vec<FieldView>,
    form: FieldFormValues,
    types: Vec<TypeOption>,
    errors: Vec<FieldError>,
    can_archive: bool,
}

impl FieldsPage {
    fn error(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.as_str())
    }
}

/// Built-in types, then the types enabled plugins offer.
fn types(selected: &str, plugin_types: &[(String, String, String)]) -> Vec<TypeOption> {
    FieldType::ALL
        .into_iter()
        .map(|t| (t.as_str().to_string(), t.label().to_string()))
        .chain(
            plugin_types
                .iter()
                .map(|(v, l, p)| (v.clone(), format!("{l} ({p} plugin)"))),
        )
        .map(|(value, label)| TypeOption {
            selected: value == selected,
            value,
            label,
        })
        .collect()
}

async fn page(
    req: &HttpRequest,
    actor: &ConsoleActor,
    state: &AppState,
    form: FieldFormValues,
    errors: Vec<FieldError>,
    status: StatusCode,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(actor, state).await?;
    let can_archive = scope.can("custom_field", "delete");
    let entity = if form.entity == "opportunity" {
        "opportunity"
    } else {
        "client"
    }
    .to_string();
    let all = ops::list(&scope, entity.clone(), true).await?;
    let plugin_types = ops::plugin_types(&scope).await?;
    let p = FieldsPage {
        entity,
        active: all
            .iter()
            .filter(|f| f.is_active())
            .map(FieldView::from)
            .collect(),
        archived: all
            .iter()
            .filter(|f| !f.is_active())
            .map(FieldView::from)
            .collect(),
        types: types(
            if form.field_type.is_empty() {
                "text"
            } else {
                &form.field_type
            },
            &plugin_types,
        ),
        form,
        errors,
        can_archive,
    };
    render_with_status(req, actor, "Custom fields", &p, status).await
}

pub async fn list(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    actor.require("custom_field", "write").await?;
    let entity = crate::web::query_pairs(&req)?
        .into_iter()
        .find(|(k, _)| k == "entity")
        .map(|(_, v)| v)
        .unwrap_or_default();
    let form = FieldFormValues {
        entity,
        ..Default::default()
    };
    page(&req, &actor, &state, form, Vec::new(), StatusCode::OK).await
}

pub async fn edit(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("custom_field", "write").await?;
    let scope = crate::web::scope::of(&actor, &state).await?;
    let f = ops::get(&scope, id.into_inner()).await?;
    let form = FieldFormValues {
        entity: f.entity.clone(),
        id: Some(f.id.clone()),
        version: f.version,
        label: f.label.clone(),
        key: f.field_key.clone(),
        field_type: f.field_type.clone(),
        options: f.option_list().join("\n"),
        required: f.required,
        sensitive: f.sensitive,
        searchable: f.searchable,
        default: f
            .default_value
            .as_deref()
            .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
            .map(|v| crate::domain::custom_fields::value::form_value(&v))
            .unwrap_or_default(),
        help: f.help_text.clone(),
        group: f.display_group.clone(),
        currency: f.currency.clone().unwrap_or_default(),
    };
    page(&req, &actor, &state, form, Vec::new(), StatusCode::OK).await
}

fn read_form(body: &web::Bytes) -> AppResult<FieldFormValues> {
    let pairs: Vec<(String, String)> = crate::web::console::form_pairs(body)?;
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    Ok(FieldFormValues {
        entity: get("entity"),
        id: Some(get("id")).filter(|i| !i.is_empty()),
        version: get("version").parse().unwrap_or(0),
        label: get("label"),
        key: get("key"),
        field_type: get("type"),
        options: get("options"),
        required: !get("required").is_empty(),
        sensitive: !get("sensitive").is_empty(),
        searchable: !get("searchable").is_empty(),
        default: get("default"),
        help: get("help"),
        group: get("group"),
        currency: get("currency"),
    })
}

fn input_of(f: &FieldFormValues, creating: bool) -> FieldInput {
    let kind = FieldType::parse(&f.field_type);
    let default = if f.default.trim().is_empty() {
        serde_json::Value::Null
    } else if kind == Some(FieldType::MultiSelect) {
        serde_json::Value::from(
            f.default
                .split(',')
                .map(|s| s.trim().to_string())
                .collect::<Vec<_>>(),
        )
    } else {
        serde_json::Value::String(f.default.clone())
    };
    FieldInput {
        entity: creating.then(|| {
            if f.entity == "opportunity" {
                "opportunity".into()
            } else {
                "client".into()
            }
        }),
        key: creating.then(|| f.key.trim().to_string()),
        label: Some(f.label.clone()),
        field_type: creating.then(|| f.field_type.clone()),
        required: Some(f.required),
        options: kind
            .is_some_and(FieldType::has_options)
            .then(|| f.options.lines().map(str::to_string).collect()),
        default_value: Some(default),
        help_text: Some(f.help.clone()),
        display_group: Some(f.group.clone()),
        sensitive: Some(f.sensitive),
        searchable: Some(f.searchable),
        currency: Some(f.currency.clone()),
        ..Default::default()
    }
}

pub async fn save(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let form = read_form(&body)?;
    let input = input_of(&form, form.id.is_none());
    let result = match form.id.clone() {
        None => ops::define(&scope, input).await,
        Some(id) => ops::update(&scope, id, Some(form.version), input).await,
    };
    let (errors, status) = match result {
        Ok(f) => {
            return redirect_with_flash(
                &req,
                &format!("/admin/custom-fields?entity={}", f.entity),
                &format!("The field {} was saved.", f.label),
            )
        }
        Err(AppError::Validation(_, errors)) => (errors, StatusCode::UNPROCESSABLE_ENTITY),
        Err(AppError::Stale(m)) => (vec![FieldError::new("label", m)], StatusCode::CONFLICT),
        Err(e) => return Err(e),
    };
    page(&req, &actor, &state, form, errors, status).await
}

async fn set_archived(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: String,
    archived: bool,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let f = ops::set_archived(&scope, id, None, archived).await?;
    let mut res = redirect(&req, &format!("/admin/custom-fields?entity={}", f.entity));
    let message = if archived {
        format!("{} was archived; its values are kept.", f.label)
    } else {
        format!("{} is back in forms and lists.", f.label)
    };
    res.add_cookie(&flash_cookie(&message))
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(res)
}

pub async fn archive(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    set_archived(req, actor, state, id.into_inner(), true).await
}

pub async fn restore(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    set_archived(req, actor, state, id.into_inner(), false).await
}

/// Moves a field one place up or down among the active ones.
pub async fn move_field(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let (id, dir) = path.into_inner();
    let entity = ops::move_field(&scope, id, dir == "up").await?;
    Ok(redirect(
        &req,
        &format!("/admin/custom-fields?entity={entity}"),
    ))
}
