//! Healthcare field types for Rapport.
//!
//! `npi`: the US National Provider Identifier — ten digits whose last digit is the Luhn
//! check digit computed over the prefix `80840` followed by the first nine digits.
//! `insurance_member_id`: 6 to 20 letters and digits, stored upper-case.

use rapport_plugin_sdk::{ValidateRequest, ValidateResponse};

/// Whether a ten-digit NPI carries the right check digit.
pub fn npi_is_valid(digits: &str) -> bool {
    if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let payload: Vec<u32> = "80840"
        .bytes()
        .chain(digits.bytes().take(9))
        .map(|b| u32::from(b - b'0'))
        .collect();
    // Luhn: double every second digit from the right of the payload (the check digit is appended).
    let sum: u32 = payload
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                *d
            }
        })
        .sum();
    let check = (10 - sum % 10) % 10;
    digits.as_bytes()[9] - b'0' == check as u8
}

/// The plugin's `validate` hook.
pub fn check(req: &ValidateRequest) -> ValidateResponse {
    let value = req.value.trim();
    match req.field_type.as_str() {
        "npi" => {
            let digits: String = value
                .chars()
                .filter(|c| !c.is_whitespace() && *c != '-')
                .collect();
            if digits.len() != 10 || !digits.chars().all(|c| c.is_ascii_digit()) {
                ValidateResponse::Invalid {
                    message: "An NPI has exactly 10 digits.".into(),
                }
            } else if !npi_is_valid(&digits) {
                ValidateResponse::Invalid {
                    message: "This NPI's check digit is wrong; check the number.".into(),
                }
            } else {
                ValidateResponse::Valid { normalized: digits }
            }
        }
        "insurance_member_id" => {
            let id = value.to_ascii_uppercase();
            if (6..=20).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric()) {
                ValidateResponse::Valid { normalized: id }
            } else {
                ValidateResponse::Invalid {
                    message: "Use 6 to 20 letters and digits.".into(),
                }
            }
        }
        other => ValidateResponse::Invalid {
            message: format!("This plugin has no field type {other:?}."),
        },
    }
}

#[cfg(target_arch = "wasm32")]
rapport_plugin_sdk::validate_hook!(check);

/// The plugin's `format` hook: member ids read in groups of four, as printed on insurance
/// cards; NPIs as stored.
pub fn show(req: &rapport_plugin_sdk::FormatRequest) -> rapport_plugin_sdk::FormatResponse {
    let display = match req.field_type.as_str() {
        "insurance_member_id" => req
            .value
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(" "),
        _ => req.value.clone(),
    };
    rapport_plugin_sdk::FormatResponse { display }
}

#[cfg(target_arch = "wasm32")]
rapport_plugin_sdk::format_hook!(show);

/// The `compute` hook: a client's patient reference, the short code practices quote in
/// letters and reminders (`PT-` and the last eight characters of the client's id), so a
/// template can write `{{ client.plugins["com.rapport.healthcare"].patient_ref }}`.
pub fn computed(req: &rapport_plugin_sdk::ComputeRequest) -> rapport_plugin_sdk::ComputeResponse {
    let mut out = rapport_plugin_sdk::ComputeResponse::default();
    if let rapport_plugin_sdk::ComputeRequest::Client(client) = req {
        let plain: String = client.id.chars().filter(|c| *c != '-').collect();
        let tail = &plain[plain.len().saturating_sub(8)..];
        out.values.insert(
            "patient_ref".into(),
            format!("PT-{}", tail.to_ascii_uppercase()),
        );
    }
    out
}

#[cfg(target_arch = "wasm32")]
rapport_plugin_sdk::compute_hook!(computed);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_ids_read_in_groups_of_four() {
        let r = show(&rapport_plugin_sdk::FormatRequest::new(
            "insurance_member_id",
            "ABCD123456",
        ));
        assert_eq!(r.display, "ABCD 1234 56");
        let r = show(&rapport_plugin_sdk::FormatRequest::new("npi", "1234567893"));
        assert_eq!(r.display, "1234567893");
    }

    #[test]
    fn a_patient_reference_is_the_ids_tail() {
        let client = rapport_plugin_sdk::ClientSnapshot::new(
            "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
            "individual",
            "Ada",
            None,
        );
        let r = computed(&rapport_plugin_sdk::ComputeRequest::Client(client));
        assert_eq!(r.values["patient_ref"], "PT-2E3F4A5B");
    }

    #[test]
    fn npi_check_digits() {
        // Published example NPIs with valid check digits.
        assert!(npi_is_valid("1234567893"));
        assert!(npi_is_valid("1245319599"));
        assert!(!npi_is_valid("1234567890"));
        assert!(!npi_is_valid("123456789"));
    }

    #[test]
    fn validate_normalises_and_explains() {
        assert_eq!(
            check(&ValidateRequest::new("npi", " 123-456-7893 ")),
            ValidateResponse::Valid {
                normalized: "1234567893".into()
            }
        );
        assert!(matches!(
            check(&ValidateRequest::new("npi", "1234567890")),
            ValidateResponse::Invalid { .. }
        ));
        assert_eq!(
            check(&ValidateRequest::new("insurance_member_id", "ab12cd34")),
            ValidateResponse::Valid {
                normalized: "AB12CD34".into()
            }
        );
        assert!(matches!(
            check(&ValidateRequest::new("insurance_member_id", "x")),
            ValidateResponse::Invalid { .. }
        ));
    }
}
