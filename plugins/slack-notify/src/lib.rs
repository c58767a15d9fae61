//! Slack notify: when a deal is won, posts "<prefix>: <deal> — <value> <currency> (<client>)"
//! to the Slack incoming webhook the admin configured. It reads the deal's client through
//! the host (`read_records`), posts through the host (`http`, to `hooks.slack.com` once the
//! admin approves it) and remembers announced deals in its storage (`storage`), so a deal
//! reopened and won again is not announced twice.

use rapport_plugin_sdk::MoveRequest;

/// The Slack message for a won deal.
pub fn message(prefix: &str, req: &MoveRequest, client: Option<&str>) -> serde_json::Value {
    let who = client.map(|c| format!(" ({c})")).unwrap_or_default();
    serde_json::json!({
        "text": format!(
            "{prefix}: {} — {} {}{who}",
            req.deal.name, req.deal.value, req.deal.currency
        )
    })
}

/// An action's message with `{client}` and `{deal}` replaced by the run's records.
pub fn action_text(req: &rapport_plugin_sdk::ActionRequest) -> String {
    let text = req.settings.get("text").cloned().unwrap_or_default();
    let client = req
        .client
        .as_ref()
        .map(|c| c.display_name.as_str())
        .unwrap_or("");
    let deal = req.deal.as_ref().map(|d| d.name.as_str()).unwrap_or("");
    text.replace("{client}", client).replace("{deal}", deal)
}

/// The storage key that marks a deal as announced.
pub fn announced_key(deal_id: &str) -> String {
    format!("announced:{deal_id}")
}

#[cfg(target_arch = "wasm32")]
mod hooks {
    use super::*;
    use rapport_plugin_sdk::guest::{self, pdk::Error};
    use rapport_plugin_sdk::{ActionRequest, ActionResponse, EmitRequest, HttpRequest};

    rapport_plugin_sdk::export_api_version!();

    fn post(body: &serde_json::Value) -> Result<(), Error> {
        let Some(url) = guest::setting("webhook_url")?.filter(|u| !u.is_empty()) else {
            return Err(Error::msg("the Slack webhook URL is not set"));
        };
        let response = guest::http(&HttpRequest::post_json(url, body))?;
        if !(200..300).contains(&response.status) {
            return Err(Error::msg(format!(
                "Slack answered {}: {}",
                response.status, response.body
            )));
        }
        Ok(())
    }

    fn on_won(req: &MoveRequest) -> Result<(), Error> {
        let key = announced_key(&req.deal.id);
        if guest::storage_get(&key)?.is_some() {
            return Ok(());
        }
        let prefix = guest::setting("prefix")?.unwrap_or_else(|| "Deal won".into());
        let client = match &req.deal.client_id {
            Some(id) => guest::read_client(id)?.map(|c| c.display_name),
            None => None,
        };
        post(&message(&prefix, req, client.as_deref()))?;
        guest::storage_set(&key, "1")?;
        guest::emit(&EmitRequest::deal("deal_announced", &req.deal.id))
    }

    rapport_plugin_sdk::move_event_hook!(opportunity_after_won, on_won);

    /// The `post` action: one message per step of a run, even when the step is retried
    /// after the post went out (the attempt key is remembered).
    fn act(req: &ActionRequest) -> Result<ActionResponse, Error> {
        if req.action != "post" {
            return Err(Error::msg(format!("no action {:?}", req.action)));
        }
        let key = format!("posted:{}", req.attempt_key);
        if !req.attempt_key.is_empty() && guest::storage_get(&key)?.is_some() {
            return Ok(ActionResponse::done("Already posted to Slack"));
        }
        let text = action_text(req);
        post(&serde_json::json!({ "text": text }))?;
        if !req.attempt_key.is_empty() {
            guest::storage_set(&key, "1")?;
        }
        Ok(ActionResponse::done(format!("Posted to Slack: {text}")))
    }

    rapport_plugin_sdk::action_hook!(act);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rapport_plugin_sdk::{DealSnapshot, StageRef};

    #[test]
    fn the_message_names_the_deal_its_value_and_client() {
        let req = MoveRequest::new(
            DealSnapshot::new("d1", "Fleet renewal", "48000.00", "EUR"),
            StageRef::new("a", "Negotiation", "open", 75),
            StageRef::new("b", "Won", "won", 100),
        );
        assert_eq!(
            message(":tada: Deal won", &req, Some("Acme GmbH"))["text"],
            ":tada: Deal won: Fleet renewal — 48000.00 EUR (Acme GmbH)"
        );
        assert_eq!(
            message("Won", &req, None)["text"],
            "Won: Fleet renewal — 48000.00 EUR"
        );
        assert_eq!(announced_key("d1"), "announced:d1");
    }

    #[test]
    fn an_action_names_the_runs_client_and_deal() {
        let mut req = rapport_plugin_sdk::ActionRequest::new("post");
        req.settings
            .insert("text".into(), "Call {client} about {deal}".into());
        req.client = Some(rapport_plugin_sdk::ClientSnapshot::new(
            "c1",
            "company",
            "Acme GmbH",
            None,
        ));
        assert_eq!(action_text(&req), "Call Acme GmbH about ");
        req.deal = Some(DealSnapshot::new("d1", "Fleet renewal", "1.00", "EUR"));
        assert_eq!(action_text(&req), "Call Acme GmbH about Fleet renewal");
    }
}
