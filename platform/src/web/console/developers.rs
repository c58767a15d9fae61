//! `/developers/api`: the API reference, rendered on the server from the same OpenAPI
//! document `/api/openapi.json` serves — no script, no CDN, readable on a phone.

use std::collections::BTreeSet;

use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use serde_json::Value;

use crate::auth::ConsoleActor;
use crate::error::AppResult;
use crate::web::api::openapi;
use crate::web::console::render;

/// One line of a schema spelled out: `lines[].unitPrice  string  required`. `kind` and the
/// descriptions are escaped HTML (see [`prose`]).
struct Field {
    depth: usize,
    name: String,
    kind: String,
    required: bool,
    description: String,
}

struct Param {
    name: String,
    location: String,
    required: bool,
    kind: String,
    description: String,
}

struct Answer {
    status: String,
    description: String,
    media: String,
    fields: Vec<Field>,
}

struct Operation {
    anchor: String,
    method: String,
    path: String,
    summary: String,
    description: String,
    public: bool,
    params: Vec<Param>,
    body_media: String,
    body: Vec<Field>,
    answers: Vec<Answer>,
}

struct Section {
    name: String,
    anchor: String,
    operations: Vec<Operation>,
}

#[derive(Template)]
#[template(path = "partials/developers/api.html")]
struct ReferencePage {
    intro: String,
    sections: Vec<Section>,
}

fn anchor(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().trim().to_string()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Escaped HTML of a description, its `backticked` spans as code (the only markup the
/// handlers' doc comments use).
fn prose(s: &str) -> String {
    s.split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<code>{}</code>", escape(part))
            } else {
                escape(part)
            }
        })
        .collect()
}

/// The component a `$ref` names, with its name.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> (Option<String>, &'a Value) {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r.rsplit('/').next().unwrap_or_default().to_string();
            (Some(name.clone()), &doc["components"]["schemas"][name])
        }
        None => (None, schema),
    }
}

/// A type as a reader says it: "string", "integer or null", "one of a, b", "Tag".
fn kind(doc: &Value, schema: &Value) -> String {
    let (name, s) = resolve(doc, schema);
    if let Some(alts) = s["oneOf"].as_array().or(s["anyOf"].as_array()) {
        let parts: BTreeSet<String> = alts.iter().map(|a| kind(doc, a)).collect();
        return parts.into_iter().collect::<Vec<_>>().join(" or ");
    }
    if let Some(all) = s["allOf"].as_array() {
        if all.len() == 1 {
            return kind(doc, &all[0]);
        }
    }
    if let Some(values) = s["enum"].as_array() {
        let vs: Vec<String> = values
            .iter()
            .map(|v| v.as_str().map(str::to_string).unwrap_or(v.to_string()))
            .map(|v| format!("`{v}`"))
            .collect();
        return format!("one of {}", vs.join(", "));
    }
    let types: Vec<String> = match &s["type"] {
        Value::String(t) => vec![t.clone()],
        Value::Array(ts) => ts
            .iter()
            .filter_map(|t| t.as_str())
            .map(String::from)
            .collect(),
        _ => vec![],
    };
    let named = |t: &str| -> String {
        match t {
            "array" => format!("array of {}", kind(doc, &s["items"])),
            "object" => name.clone().unwrap_or_else(|| "object".into()),
            "string" => match s["format"].as_str() {
                Some(f) => format!("string ({f})"),
                None => "string".into(),
            },
            other => other.to_string(),
        }
    };
    if types.is_empty() {
        return name.unwrap_or_else(|| "any".into());
    }
    types
        .iter()
        .map(|t| named(t))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// The object a schema describes once `$ref`, single `allOf` and `… or null` are looked through.
fn object_of<'a>(doc: &'a Value, schema: &'a Value, seen: &mut Vec<String>) -> Option<&'a Value> {
    let (name, s) = resolve(doc, schema);
    if let Some(n) = name {
        if seen.contains(&n) {
            return None;
        }
        seen.push(n);
    }
    if s["properties"].is_object() {
        return Some(s);
    }
    if let Some(alts) = s["oneOf"].as_array().or(s["allOf"].as_array()) {
        return alts
            .iter()
            .find_map(|a| object_of(doc, a, &mut seen.clone()));
    }
    if s["type"] == "array"
        || s["type"]
            .as_array()
            .is_some_and(|t| t.contains(&"array".into()))
    {
        return object_of(doc, &s["items"], seen);
    }
    None
}

fn fields(doc: &Value, schema: &Value, depth: usize, seen: &mut Vec<String>, out: &mut Vec<Field>) {
    if depth > 4 || out.len() > 400 {
        return;
    }
    let Some(obj) = object_of(doc, schema, seen) else {
        return;
    };
    let required: Vec<&str> = obj["required"]
        .as_array()
        .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let Some(props) = obj["properties"].as_object() else {
        return;
    };
    for (name, prop) in props {
        let (_, resolved) = resolve(doc, prop);
        let mut description = text(&prop["description"]);
        if description.is_empty() {
            description = text(&resolved["description"]);
        }
        out.push(Field {
            depth,
            name: name.clone(),
            kind: prose(&kind(doc, prop)),
            required: required.contains(&name.as_str()),
            description: prose(&description),
        });
        fields(doc, prop, depth + 1, &mut seen.clone(), out);
    }
}

fn first_content(content: &Value) -> Option<(String, &Value)> {
    content
        .as_object()?
        .iter()
        .next()
        .map(|(m, c)| (m.clone(), &c["schema"]))
}

fn reference(doc: &Value) -> ReferencePage {
    let mut sections: Vec<Section> = Vec::new();
    let paths = doc["paths"].as_object().cloned().unwrap_or_default();
    for (path, item) in &paths {
        for method in ["get", "post", "put", "patch", "delete"] {
            let op = &item[method];
            if op.is_null() {
                continue;
            }
            let tag = op["tags"][0].as_str().unwrap_or("Other").to_string();
            let params = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .map(|p| Param {
                            name: text(&p["name"]),
                            location: text(&p["in"]),
                            required: p["required"].as_bool().unwrap_or(false),
                            kind: prose(&kind(doc, &p["schema"])),
                            description: prose(&text(&p["description"])),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let (body_media, body) = match first_content(&op["requestBody"]["content"]) {
                Some((media, schema)) => {
                    let mut out = Vec::new();
                    fields(doc, schema, 0, &mut Vec::new(), &mut out);
                    (media, out)
                }
                None => (String::new(), Vec::new()),
            };
            let mut answers = Vec::new();
            if let Some(responses) = op["responses"].as_object() {
                for (status, response) in responses {
                    let response = match response["$ref"].as_str() {
                        Some(r) => {
                            &doc["components"]["responses"][r.rsplit('/').next().unwrap_or("")]
                        }
                        None => response,
                    };
                    let (media, schema_fields) = match first_content(&response["content"]) {
                        Some((media, schema)) => {
                            let mut out = Vec::new();
                            fields(doc, schema, 0, &mut Vec::new(), &mut out);
                            (media, out)
                        }
                        None => (String::new(), Vec::new()),
                    };
                    answers.push(Answer {
                        status: if status == "default" {
                            "Error".into()
                        } else {
                            status.clone()
                        },
                        description: prose(&text(&response["description"])),
                        media,
                        fields: schema_fields,
                    });
                }
            }
            let operation = Operation {
                anchor: anchor(&format!("{method}{path}")),
                method: method.to_uppercase(),
                path: path.clone(),
                summary: prose(&text(&op["summary"])),
                description: prose(&text(&op["description"])),
                public: op["security"].as_array().is_some_and(|s| {
                    s.iter()
                        .any(|r| r.as_object().is_some_and(|o| o.is_empty()))
                }),
                params,
                body_media,
                body,
                answers,
            };
            match sections.iter_mut().find(|s| s.name == tag) {
                Some(s) => s.operations.push(operation),
                None => sections.push(Section {
                    anchor: anchor(&tag),
                    name: tag,
                    operations: vec![operation],
                }),
            }
        }
    }
    sections.sort_by(|a, b| a.name.cmp(&b.name));
    ReferencePage {
        intro: prose(&text(&doc["info"]["description"])),
        sections,
    }
}

/// Anyone signed in may read how the API works; what they may call is their role's affair.
pub async fn api(req: HttpRequest, actor: ConsoleActor) -> AppResult<HttpResponse> {
    let page = reference(openapi::json_value());
    render(&req, &actor, "API reference", &page).await
}
