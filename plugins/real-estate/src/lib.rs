//! Real estate: a listing pipeline (in `plugin.toml`), a stage rule — a listing cannot be
//! marked sold (moved to a won stage) while its value, the sale price, is zero — and a line
//! in the host's log for every sale; deals show the agent's commission (a computed field,
//! at the rate set on the Plugins page).

use rapport_plugin_sdk::{ComputeRequest, ComputeResponse, MoveDecision, MoveRequest};

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

/// The agent's commission on a deal's value at `percent` (e.g. "3" or "2.5"), to the cent,
/// rounded half up; `None` when either is not a plain decimal.
pub fn commission(value: &str, percent: &str) -> Option<String> {
    // Whole hundredths, so no float rounding touches money.
    fn hundredths(s: &str) -> Option<i128> {
        let s = s.trim();
        let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
        if whole.is_empty() && frac.is_empty() {
            return None;
        }
        if !whole.chars().all(|c| c.is_ascii_digit())
            || !frac.chars().all(|c| c.is_ascii_digit())
            || frac.len() > 2
        {
            return None;
        }
        let whole: i128 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        let frac: i128 = format!("{frac:0<2}").parse().ok()?;
        Some(whole * 100 + frac)
    }
    let cents = hundredths(value)?;
    let pct = hundredths(percent)?;
    // cents × pct/100 % → divide by 100 (percent) and 100 (hundredths of a percent).
    let result = (cents * pct + 5_000) / 10_000;
    Some(format!("{}.{:02}", result / 100, result % 100))
}

/// The `compute` hook: the commission on a listing.
pub fn computed(req: &ComputeRequest, percent: &str) -> ComputeResponse {
    let mut out = ComputeResponse::default();
    if let ComputeRequest::Opportunity(deal) = req {
        if let Some(c) = commission(&deal.value, percent) {
            out.values
                .insert("commission".into(), format!("{c} {}", deal.currency));
        }
    }
    out
}

#[cfg(target_arch = "wasm32")]
fn compute_hook_fn(req: &ComputeRequest) -> ComputeResponse {
    let percent = rapport_plugin_sdk::guest::setting("commission_percent")
        .ok()
        .flatten()
        .unwrap_or_else(|| "3".into());
    computed(req, &percent)
}

#[cfg(target_arch = "wasm32")]
rapport_plugin_sdk::compute_hook!(compute_hook_fn);

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
    fn commission_is_exact_to_the_cent() {
        assert_eq!(commission("350000.00", "3").as_deref(), Some("10500.00"));
        assert_eq!(commission("333.33", "2.5").as_deref(), Some("8.33"));
        assert_eq!(commission("0.50", "3").as_deref(), Some("0.02"));
        assert_eq!(commission("12a", "3"), None);
        let deal = DealSnapshot::new("d", "12 Elm Street", "200000", "USD");
        let r = computed(&ComputeRequest::Opportunity(deal), "3");
        assert_eq!(r.values["commission"], "6000.00 USD");
    }

    #[test]
    fn a_sale_is_logged_with_its_price() {
        assert_eq!(
            sold_line(&req("350000.00", "won")),
            "Sold: 12 Elm Street for 350000.00 USD"
        );
    }
}
