//! The API keeps its word: every answer to a `/api/…` request that any test sends is checked
//! against `/api/openapi.json` — the status must be documented for that operation, the body
//! must validate against the documented schema (objects may not carry undocumented fields),
//! and every problem must be a valid problem. `support::send` calls [`check`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{json, Value};

struct Spec {
    /// Components with objects closed (`additionalProperties: false` where unsaid).
    components: Value,
    paths: Value,
    /// Path templates split into segments; `None` for a `{parameter}`.
    templates: Vec<(String, Vec<Option<String>>)>,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

/// Closes every object schema that lists its properties, so an undocumented field fails.
fn close(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            for (k, child) in map.iter_mut() {
                // A flattened composition cannot be closed part by part.
                if k == "allOf" {
                    continue;
                }
                close(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(close),
        _ => {}
    }
}

fn spec() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| {
        let doc = rapport::web::api::openapi::json_value().clone();
        let mut components = doc["components"].clone();
        close(&mut components);
        let mut paths = doc["paths"].clone();
        close(&mut paths);
        let templates = paths
            .as_object()
            .expect("paths")
            .keys()
            .map(|t| {
                let segs = t
                    .split('/')
                    .map(|s| (!s.starts_with('{')).then(|| s.to_string()))
                    .collect();
                (t.clone(), segs)
            })
            .collect();
        Spec {
            components,
            paths,
            templates,
            validators: Mutex::new(HashMap::new()),
        }
    })
}

/// The documented template a concrete path belongs to: the one with most literal segments.
pub fn template_of(path: &str) -> Option<String> {
    let segs: Vec<&str> = path.split('/').collect();
    spec()
        .templates
        .iter()
        .filter(|(_, t)| {
            t.len() == segs.len()
                && t.iter().zip(&segs).all(|(want, got)| match want {
                    Some(lit) => lit == got,
                    None => !got.is_empty(),
                })
        })
        .max_by_key(|(_, t)| t.iter().filter(|s| s.is_some()).count())
        .map(|(name, _)| name.clone())
}

fn validator(key: &str, schema: &Value) -> Arc<jsonschema::Validator> {
    let spec = spec();
    let mut cache = spec.validators.lock().unwrap();
    cache
        .entry(key.to_string())
        .or_insert_with(|| {
            let root = json!({"allOf": [schema], "components": spec.components});
            Arc::new(
                jsonschema::validator_for(&root)
                    .unwrap_or_else(|e| panic!("the schema of {key} does not compile: {e}")),
            )
        })
        .clone()
}

fn validate(key: &str, schema: &Value, body: &[u8]) {
    let instance: Value = serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "{key}: the body is not JSON ({e}): {}",
            String::from_utf8_lossy(body)
        )
    });
    let v = validator(key, schema);
    let errors: Vec<String> = v
        .iter_errors(&instance)
        .take(5)
        .map(|e| format!("at `{}`: {e}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{key}: the answer does not match /api/openapi.json:\n  {}\nbody: {}",
        errors.join("\n  "),
        String::from_utf8_lossy(&body[..body.len().min(2000)])
    );
}

fn media(content_type: Option<&str>) -> String {
    content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn is_json(m: &str) -> bool {
    m == "application/json" || m.ends_with("+json")
}

/// Checks one answer; panics with what does not match.
pub fn check(method: &str, path: &str, status: u16, content_type: Option<&str>, body: &[u8]) {
    if !path.starts_with("/api/") {
        return;
    }
    let spec = spec();
    let m = media(content_type);
    if status >= 400 {
        if m == "application/problem+json" {
            validate(
                "problem",
                &json!({"$ref": "#/components/schemas/Problem"}),
                body,
            );
        }
        return;
    }
    let method = method.to_ascii_lowercase();
    let op = template_of(path).and_then(|t| {
        let op = &spec.paths[&t][&method];
        (!op.is_null()).then(|| (t, op.clone()))
    });
    let Some((template, op)) = op else {
        panic!(
            "{} {path} answered {status} but /api/openapi.json does not describe it",
            method.to_uppercase()
        );
    };
    let key = format!("{} {template} {status}", method.to_uppercase());
    let response = &op["responses"][status.to_string()];
    assert!(
        !response.is_null(),
        "{key}: status {status} is not documented (documented: {:?})",
        op["responses"]
            .as_object()
            .map(|r| r.keys().cloned().collect::<Vec<_>>())
    );
    let content = &response["content"];
    if body.is_empty() && content.is_null() {
        return;
    }
    let Some(types) = content.as_object() else {
        panic!("{key}: answered a body ({m}) but none is documented");
    };
    let Some((_, documented)) = types.iter().find(|(t, _)| media(Some(t)) == m) else {
        panic!(
            "{key}: answered {m}, documented {:?}",
            types.keys().collect::<Vec<_>>()
        );
    };
    if is_json(&m) && !documented["schema"].is_null() {
        validate(&format!("{key} {m}"), &documented["schema"], body);
    }
}
