//! A plugin that misbehaves on request, to prove the host contains it.

#[cfg(target_arch = "wasm32")]
mod hooks {
    use extism_pdk::{plugin_fn, FnResult, Json};
    use rapport_plugin_sdk::{ValidateRequest, ValidateResponse};

    rapport_plugin_sdk::export_api_version!();

    /// Traps for clients whose name contains "Explode": an event hook that fails.
    fn on_client(client: &rapport_plugin_sdk::ClientSnapshot) -> Result<(), ()> {
        if client.display_name.contains("Explode") {
            core::arch::wasm32::unreachable()
        }
        Ok(())
    }

    rapport_plugin_sdk::client_event_hook!(client_after_create, on_client);

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
            other => Ok(serde_json::to_string(&ValidateResponse::Valid {
                normalized: other.to_string(),
            })?),
        }
    }
}
