//! Real estate: a listing pipeline (in `plugin.toml`), a stage rule — a listing cannot be
//! marked sold (moved to a won stage) while its value, the sale price, is zero — and a line
//! in the host's log for every sale.

use rapport_plugin_sdk::{MoveDecision, MoveRequest};

/// The `opportunity_before_move` rule.
pub fn rule(req: &MoveRequest) -> MoveDecision {
    // "0", "0.00": nothing but zeros and a point.
    let zero = req.deal.value.trim().chars().all(|c| c == '0' || c == '.');
    if req.to_stage.kind == "won" && zero {
        MoveDecision::Refuse {
            message: format!(
                "Enter the sale price of {} before marking it sold.",
                req.deal.name
            ),
        }
    } else {
        MoveDecision::Allow
    }
}

#[cfg(target_arch = "wasm32")]
rapport_plugin_sdk::export_api_version!();
/// The log line for a sale.
pub fn sold_line(req: &MoveRequest) -> String {
    format!(
        "Sold: {} for {} {}",
        req.deal.name, req.deal.value, req.deal.currency
    )
}

#[cfg(target_arch = "wasm32")]
rapport_plugin_sdk::before_move_hook!(rule);

#[cfg(target_arch = "wasm32")]
fn on_won(req: &MoveRequest) -> Result<(), rapport_plugin_sdk::guest::pdk::Error> {
    rapport_plugin_sdk::guest::log(&sold_line(req))
}

#[cfg(target_arch = "wasm32")]
rapport_plugin_sdk::move_event_hook!(opportunity_after_won, on_won);

#[cfg(test)]
mod tests {
    use super::*;
    use rapport_plugin_sdk::{DealSnapshot, StageRef};

    fn req(value: &str, kind: &str) -> MoveRequest {
        MoveRequest::new(
            DealSnapshot::new("d", "12 Elm Street", value, "USD"),
            StageRef::new("a", "Showing", "open", 50),
            StageRef::new("b", "Sold", kind, 100),
        )
    }

    #[test]
    fn a_listing_needs_a_price_to_be_sold() {
        assert!(matches!(
            rule(&req("0.00", "won")),
            MoveDecision::Refuse { .. }
        ));
        assert_eq!(rule(&req("350000.00", "won")), MoveDecision::Allow);
        assert_eq!(rule(&req("0.00", "open")), MoveDecision::Allow);
    }

    #[test]
    fn a_sale_is_logged_with_its_price() {
        assert_eq!(
            sold_line(&req("350000.00", "won")),
            "Sold: 12 Elm Street for 350000.00 USD"
        );
    }
}
