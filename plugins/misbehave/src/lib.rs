//! A plugin that misbehaves on request, to prove the host contains it.

#[cfg(target_arch = "wasm32")]
mod hooks {
    use extism_pdk::{plugin_fn, FnResult, Json};
    use rapport_plugin_sdk::{ValidateRequest, ValidateResponse};

    rapport_plugin_sdk::export_api_version!();

    /// Traps for clients whose name contains "Explode": an event hook that fails. With the
    /// `remember` setting on, stores the client's name under `last_client` (needs storage).
    fn on_client(client: &rapport_plugin_sdk::ClientSnapshot) -> Result<(), extism_pdk::Error> {
        if client.display_name.contains("Explode") {
            core::arch::wasm32::unreachable()
        }
        if rapport_plugin_sdk::guest::setting("remember")?.as_deref() == Some("true") {
            rapport_plugin_sdk::guest::storage_set("last_client", &client.display_name)?;
        }
        Ok(())
    }

    fn refuse(message: String) -> FnResult<String> {
        Ok(serde_json::to_string(&ValidateResponse::Invalid {
            message,
        })?)
    }

    rapport_plugin_sdk::client_event_hook!(client_after_create, on_client);

    /// With `remember` on, stores the name of the last client changed or trashed.
    fn remember(
        key: &str,
        client: &rapport_plugin_sdk::ClientSnapshot,
    ) -> Result<(), extism_pdk::Error> {
        if rapport_plugin_sdk::guest::setting("remember")?.as_deref() == Some("true") {
            rapport_plugin_sdk::guest::storage_set(key, &client.display_name)?;
        }
        Ok(())
    }

    fn on_update(client: &rapport_plugin_sdk::ClientSnapshot) -> Result<(), extism_pdk::Error> {
        remember("last_updated", client)
    }

    fn on_delete(client: &rapport_plugin_sdk::ClientSnapshot) -> Result<(), extism_pdk::Error> {
        remember("last_deleted", client)
    }

    rapport_plugin_sdk::client_event_hook!(client_after_update, on_update);
    rapport_plugin_sdk::client_event_hook!(client_after_delete, on_delete);

    #[plugin_fn]
    pub fn validate(Json(req): Json<ValidateRequest>) -> FnResult<String> {
        match req.value.as_str() {
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = n.wrapping_add(1);
                    if n == u64::MAX {
                        break;
                    }
                    core::hint::black_box(n);
                }
                Ok(String::new())
            }
            "oom" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![7u8; 1 << 20]);
                    core::hint::black_box(&hoard);
                }
            }
            "trap" => core::arch::wasm32::unreachable(),
            "garbage" => Ok("this is not JSON {".to_string()),
            // Uses a host function that needs a capability the admin may not have granted.
            "log" => {
                rapport_plugin_sdk::guest::log("chaos asked to log")?;
                Ok(serde_json::to_string(&ValidateResponse::Valid {
                    normalized: "logged".to_string(),
                })?)
            }
            // Storage is read-only while a change is checked: the host refuses this.
            "stash" => {
                rapport_plugin_sdk::guest::storage_set("stash", "x")?;
                Ok(String::new())
            }
            recall if recall.starts_with("recall:") => {
                let v = rapport_plugin_sdk::guest::storage_get(&recall[7..])?;
                refuse(format!("recall: {}", v.unwrap_or_else(|| "nothing".into())))
            }
            peek if peek.starts_with("peek:") => {
                let found = rapport_plugin_sdk::guest::read_client(&peek[5..])?;
                refuse(format!(
                    "peek: {}",
                    found
                        .map(|c| c.display_name)
                        .unwrap_or_else(|| "none".into())
                ))
            }
            other => Ok(serde_json::to_string(&ValidateResponse::Valid {
                normalized: other.to_string(),
            })?),
        }
    }
}
