//! Validation and normalisation of custom values, and their indexed encoding.
//!
//! Every write (API or console) goes through [`normalize`]: it returns the canonical JSON
//! kept on the record and the typed rows kept in `custom_field_values`. Filter operands
//! go through [`encode_operand`] so they compare in the same encoding.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::Value;

use super::model::{FieldRow, FieldType};

/// Decimal and money values are indexed as integers scaled by this factor (4 places).
pub const NUM_SCALE: i64 = 10_000;
const MAX_DECIMAL_PLACES: u32 = 4;
const TEXT_MAX: usize = 500;
const LONG_TEXT_MAX: usize = 10_000;
/// Indexed text is truncated: enough to sort and match, small enough to index.
const INDEX_TEXT_MAX: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Indexed {
    pub text: Option<String>,
    pub num: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    pub json: Value,
    pub index: Vec<Indexed>,
}

fn text_index(s: &str) -> Indexed {
    Indexed {
        text: Some(s.to_lowercase().chars().take(INDEX_TEXT_MAX).collect()),
        num: None,
    }
}

fn as_text(raw: &Value) -> Result<String, String> {
    match raw {
        Value::String(s) => Ok(s.trim().to_string()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err("Enter a single value.".into()),
    }
}

pub fn parse_decimal(s: &str) -> Result<Decimal, String> {
    let d: Decimal = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number."))?;
    if d.normalize().scale() > MAX_DECIMAL_PLACES {
        return Err(format!("Use at most {MAX_DECIMAL_PLACES} decimal places."));
    }
    Ok(d.normalize())
}

pub fn scaled(d: Decimal) -> Result<i64, String> {
    (d * Decimal::from(NUM_SCALE))
        .to_i64()
        .ok_or_else(|| "The number is too large.".to_string())
}

pub fn parse_integer(s: &str) -> Result<i64, String> {
    s.trim()
        .parse::<i64>()
        .map_err(|_| format!("{s:?} is not a whole number."))
}

pub fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| format!("{s:?} is not a date (YYYY-MM-DD)."))
}

pub fn parse_datetime(s: &str) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").map(|n| n.and_utc())
        })
        .map_err(|_| format!("{s:?} is not a date and time (e.g. 2026-12-01T09:30:00Z)."))
}

pub fn valid_email(s: &str) -> bool {
    crate::domain::orgs::service::validate_email(s).is_none()
}

pub fn phone_digits(s: &str) -> Option<String> {
    let ok_chars = s
        .chars()
        .enumerate()
        .all(|(i, c)| c.is_ascii_digit() || " -().".contains(c) || (c == '+' && i == 0));
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    (ok_chars && (5..=20).contains(&digits.len())).then_some(digits)
}

pub fn valid_url(s: &str) -> bool {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or_default();
        !host.is_empty() && host.contains('.') && !r.chars().any(char::is_whitespace)
    }) && s.len() <= 2000
}

/// Validates one value for `field`. `Ok(None)` means "no value" (null or empty).
pub fn normalize(field: &FieldRow, raw: &Value) -> Result<Option<Normalized>, String> {
    let empty = match raw {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    };
    if empty {
        return Ok(None);
    }
    let one = |json: Value, index: Indexed| {
        Ok(Some(Normalized {
            json,
            index: vec![index],
        }))
    };
    match field.kind() {
        FieldType::Text | FieldType::LongText => {
            let s = as_text(raw)?;
            let max = if field.kind() == FieldType::Text {
                TEXT_MAX
            } else {
                LONG_TEXT_MAX
            };
            if s.chars().count() > max {
                return Err(format!("Use at most {max} characters."));
            }
            if field.kind() == FieldType::Text && s.contains('\n') {
                return Err("Use a single line.".into());
            }
            one(Value::String(s.clone()), text_index(&s))
        }
        FieldType::Integer => {
            let n = match raw {
                Value::Number(n) => n
                    .as_i64()
                    .ok_or_else(|| "Enter a whole number.".to_string())?,
                other => parse_integer(&as_text(other)?)?,
            };
            one(
                Value::from(n),
                Indexed {
                    text: None,
                    num: Some(n),
                },
            )
        }
        FieldType::Decimal | FieldType::Money => {
            let d = parse_decimal(&as_text(raw)?)?;
            let n = scaled(d)?;
            let mut shown = d;
            if field.kind() == FieldType::Money && shown.scale() < 2 {
                shown.rescale(2);
            }
            one(
                Value::String(shown.to_string()),
                Indexed {
                    text: None,
                    num: Some(n),
                },
            )
        }
        FieldType::Date => {
            let d = parse_date(&as_text(raw)?)?.format("%Y-%m-%d").to_string();
            one(
                Value::String(d.clone()),
                Indexed {
                    text: Some(d),
                    num: None,
                },
            )
        }
        FieldType::DateTime => {
            let d = parse_datetime(&as_text(raw)?)?.to_rfc3339_opts(SecondsFormat::Secs, true);
            one(
                Value::String(d.clone()),
                Indexed {
                    text: Some(d),
                    num: None,
                },
            )
        }
        FieldType::Boolean => {
            let b = match raw {
                Value::Bool(b) => *b,
                other => match as_text(other)?.to_lowercase().as_str() {
                    "true" | "yes" | "on" | "1" => true,
                    "false" | "no" | "off" | "0" => false,
                    _ => return Err("Choose yes or no.".into()),
                },
            };
            one(
                Value::Bool(b),
                Indexed {
                    text: Some(b.to_string()),
                    num: None,
                },
            )
        }
        FieldType::SingleSelect => {
            let s = as_text(raw)?;
            if !field.option_list().contains(&s) {
                return Err(format!(
                    "Choose one of: {}.",
                    field.option_list().join(", ")
                ));
            }
            one(
                Value::String(s.clone()),
                Indexed {
                    text: Some(s),
                    num: None,
                },
            )
        }
        FieldType::MultiSelect => {
            let items: Vec<String> = match raw {
                Value::Array(a) => a.iter().map(as_text).collect::<Result<_, _>>()?,
                other => vec![as_text(other)?],
            };
            let options = field.option_list();
            let mut chosen: Vec<String> = Vec::new();
            for item in items.into_iter().filter(|i| !i.is_empty()) {
                if !options.contains(&item) {
                    return Err(format!("{item:?} is not one of: {}.", options.join(", ")));
                }
                if !chosen.contains(&item) {
                    chosen.push(item);
                }
            }
            if chosen.is_empty() {
                return Ok(None);
            }
            // why: keep the admin's option order, so equal sets look equal.
            chosen.sort_by_key(|c| options.iter().position(|o| o == c));
            let index = chosen
                .iter()
                .map(|c| Indexed {
                    text: Some(c.clone()),
                    num: None,
                })
                .collect();
            Ok(Some(Normalized {
                json: Value::from(chosen),
                index,
            }))
        }
        FieldType::Email => {
            let s = as_text(raw)?.to_lowercase();
            if !valid_email(&s) {
                return Err("Enter a valid e-mail address.".into());
            }
            one(Value::String(s.clone()), text_index(&s))
        }
        FieldType::Phone => {
            let s = as_text(raw)?;
            let digits = phone_digits(&s)
                .ok_or_else(|| "Enter a phone number (digits, spaces, + - ( ) .).".to_string())?;
            one(
                Value::String(s),
                Indexed {
                    text: Some(digits),
                    num: None,
                },
            )
        }
        // The plugin already checked and normalised the value (see `service::apply_values`).
        FieldType::Plugin => {
            let s = as_text(raw)?;
            if s.chars().count() > TEXT_MAX {
                return Err(format!("Use at most {TEXT_MAX} characters."));
            }
            one(Value::String(s.clone()), text_index(&s))
        }
        FieldType::Url => {
            let s = as_text(raw)?;
            if !valid_url(&s) {
                return Err("Enter a web address starting with http:// or https://.".into());
            }
            one(Value::String(s.clone()), text_index(&s))
        }
    }
}

/// Filter operators of the API (`filter[customFields.key][op]=value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Gt,
    Gte,
    Lt,
    Lte,
    Contains,
    In,
}

impl Op {
    pub fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "" | "eq" => Op::Eq,
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            "contains" => Op::Contains,
            "in" => Op::In,
            _ => return None,
        })
    }
}

/// An operand in the field's index encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    Text(String),
    Num(i64),
    TextList(Vec<String>),
    NumList(Vec<i64>),
}

/// Encodes a filter operand for `field`, refusing operators the type cannot answer.
pub fn encode_operand(field: &FieldRow, op: Op, raw: &str) -> Result<Operand, String> {
    let kind = field.kind();
    let ranged = matches!(op, Op::Gt | Op::Gte | Op::Lt | Op::Lte);
    let textual = matches!(
        kind,
        FieldType::Text
            | FieldType::LongText
            | FieldType::Email
            | FieldType::Url
            | FieldType::Phone
    );
    if op == Op::Contains && !textual {
        return Err(format!(
            "contains applies to text fields, not {}.",
            kind.label().to_lowercase()
        ));
    }
    if ranged
        && !(kind.is_numeric()
            || matches!(
                kind,
                FieldType::Date | FieldType::DateTime | FieldType::Text
            ))
    {
        return Err(format!(
            "Range filters do not apply to {} fields.",
            kind.label().to_lowercase()
        ));
    }
    if op == Op::In {
        let items: Vec<&str> = raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if items.is_empty() {
            return Err("List at least one value, separated by commas.".into());
        }
        return if kind.is_numeric() {
            items
                .iter()
                .map(|i| encode_num(kind, i))
                .collect::<Result<_, _>>()
                .map(Operand::NumList)
        } else {
            items
                .iter()
                .map(|i| encode_text(field, i))
                .collect::<Result<_, _>>()
                .map(Operand::TextList)
        };
    }
    if kind.is_numeric() {
        return encode_num(kind, raw).map(Operand::Num);
    }
    if op == Op::Contains {
        let needle = if kind == FieldType::Phone {
            raw.chars().filter(char::is_ascii_digit).collect()
        } else {
            raw.trim().to_lowercase()
        };
        return Ok(Operand::Text(needle));
    }
    encode_text(field, raw).map(Operand::Text)
}

fn encode_num(kind: FieldType, raw: &str) -> Result<i64, String> {
    if kind == FieldType::Integer {
        parse_integer(raw)
    } else {
        scaled(parse_decimal(raw)?)
    }
}

fn encode_text(field: &FieldRow, raw: &str) -> Result<String, String> {
    match field.kind() {
        FieldType::Date => parse_date(raw).map(|d| d.format("%Y-%m-%d").to_string()),
        FieldType::DateTime => {
            // A bare date bounds a range by that day's start.
            if let Ok(d) = parse_date(raw) {
                return Ok(format!("{}T00:00:00Z", d.format("%Y-%m-%d")));
            }
            parse_datetime(raw).map(|d| d.to_rfc3339_opts(SecondsFormat::Secs, true))
        }
        FieldType::Boolean => match raw.trim() {
            "true" | "false" => Ok(raw.trim().to_string()),
            _ => Err("Use true or false.".into()),
        },
        FieldType::SingleSelect | FieldType::MultiSelect => Ok(raw.trim().to_string()),
        FieldType::Phone => Ok(raw.chars().filter(char::is_ascii_digit).collect()),
        _ => Ok(raw
            .trim()
            .to_lowercase()
            .chars()
            .take(INDEX_TEXT_MAX)
            .collect()),
    }
}

/// How a stored value reads in the console for a person: a date and time in their zone
/// and format, the rest as [`display`].
pub fn display_local(field: &FieldRow, value: &Value, local: &crate::locale::Local) -> String {
    match (field.kind(), value) {
        (FieldType::DateTime, Value::String(s)) => local.iso(s),
        _ => display(field, value),
    }
}

/// How a stored value reads (the API's `display` and exports: UTC).
pub fn display(field: &FieldRow, value: &Value) -> String {
    match (field.kind(), value) {
        (_, Value::Null) => String::new(),
        (FieldType::Boolean, Value::Bool(b)) => if *b { "Yes" } else { "No" }.into(),
        (FieldType::Money, Value::String(s)) => match &field.currency {
            Some(c) => format!("{s} {c}"),
            None => s.clone(),
        },
        (FieldType::DateTime, Value::String(s)) => s.replace('T', " ").replace('Z', " UTC"),
        (FieldType::MultiSelect, Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        (_, Value::String(s)) => s.clone(),
        (_, other) => other.to_string(),
    }
}

/// The value as an HTML form control holds it.
pub fn form_value(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(kind: FieldType, options: &[&str]) -> FieldRow {
        let now = crate::db::now();
        FieldRow {
            id: "f".into(),
            organization_id: "o".into(),
            entity: "client".into(),
            field_key: "k".into(),
            label: "K".into(),
            field_type: kind.as_str().into(),
            required: false,
            options: serde_json::to_string(options).unwrap(),
            default_value: None,
            help_text: String::new(),
            display_group: String::new(),
            position: 0,
            sensitive: false,
            searchable: false,
            currency: Some("EUR".into()),
            archived_at: None,
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }

    fn ok(kind: FieldType, raw: Value) -> Normalized {
        normalize(&field(kind, &["Gold", "Silver"]), &raw)
            .unwrap()
            .unwrap()
    }

    fn err(kind: FieldType, raw: Value) -> String {
        normalize(&field(kind, &["Gold", "Silver"]), &raw).unwrap_err()
    }

    #[test]
    fn every_type_accepts_good_values_and_normalises_them() {
        assert_eq!(ok(FieldType::Text, json!("  Hello ")).json, json!("Hello"));
        assert_eq!(
            ok(FieldType::Text, json!("Hello")).index[0].text.as_deref(),
            Some("hello")
        );
        assert_eq!(ok(FieldType::LongText, json!("a\nb")).json, json!("a\nb"));
        assert_eq!(ok(FieldType::Integer, json!("42")).index[0].num, Some(42));
        assert_eq!(ok(FieldType::Integer, json!(-7)).json, json!(-7));
        assert_eq!(ok(FieldType::Decimal, json!("12.50")).json, json!("12.5"));
        assert_eq!(
            ok(FieldType::Decimal, json!("12.5")).index[0].num,
            Some(125_000)
        );
        assert_eq!(ok(FieldType::Money, json!("1234.5")).json, json!("1234.50"));
        assert_eq!(ok(FieldType::Money, json!(99)).index[0].num, Some(990_000));
        assert_eq!(
            ok(FieldType::Date, json!("2026-12-01")).index[0]
                .text
                .as_deref(),
            Some("2026-12-01")
        );
        assert_eq!(
            ok(FieldType::DateTime, json!("2026-12-01T10:00:00+02:00")).json,
            json!("2026-12-01T08:00:00Z")
        );
        assert_eq!(ok(FieldType::Boolean, json!("yes")).json, json!(true));
        assert_eq!(
            ok(FieldType::Boolean, json!(false)).index[0]
                .text
                .as_deref(),
            Some("false")
        );
        assert_eq!(
            ok(FieldType::SingleSelect, json!("Gold")).json,
            json!("Gold")
        );
        let multi = ok(FieldType::MultiSelect, json!(["Silver", "Gold", "Silver"]));
        assert_eq!(multi.json, json!(["Gold", "Silver"]));
        assert_eq!(multi.index.len(), 2);
        assert_eq!(
            ok(FieldType::Email, json!("Ann@Example.COM")).json,
            json!("ann@example.com")
        );
        assert_eq!(
            ok(FieldType::Phone, json!("+1 (555) 010-9999")).index[0]
                .text
                .as_deref(),
            Some("15550109999")
        );
        assert_eq!(
            ok(FieldType::Url, json!("https://acme.example/x")).json,
            json!("https://acme.example/x")
        );
    }

    #[test]
    fn every_type_refuses_bad_values_with_a_reason() {
        assert!(err(FieldType::Text, json!("a\nb")).contains("single line"));
        assert!(err(FieldType::Text, json!("x".repeat(501))).contains("500"));
        assert!(err(FieldType::LongText, json!("x".repeat(10_001))).contains("10000"));
        assert!(err(FieldType::Integer, json!("4.5")).contains("whole number"));
        assert!(err(FieldType::Integer, json!(4.5)).contains("whole number"));
        assert!(err(FieldType::Decimal, json!("abc")).contains("not a number"));
        assert!(err(FieldType::Decimal, json!("1.23456")).contains("4 decimal places"));
        assert!(err(FieldType::Money, json!("1e30")).contains("number"));
        assert!(err(FieldType::Date, json!("2026-13-01")).contains("YYYY-MM-DD"));
        assert!(err(FieldType::DateTime, json!("yesterday")).contains("date and time"));
        assert!(err(FieldType::Boolean, json!("maybe")).contains("yes or no"));
        assert!(err(FieldType::SingleSelect, json!("Bronze")).contains("Gold, Silver"));
        assert!(err(FieldType::MultiSelect, json!(["Gold", "Bronze"])).contains("Bronze"));
        assert!(err(FieldType::Email, json!("nope")).contains("e-mail"));
        assert!(err(FieldType::Phone, json!("call me")).contains("phone"));
        assert!(err(FieldType::Url, json!("ftp://x.y")).contains("http"));
        assert!(err(FieldType::Text, json!({"a": 1})).contains("single value"));
    }

    #[test]
    fn empty_values_are_no_value() {
        for raw in [json!(null), json!(""), json!("  "), json!([])] {
            assert!(normalize(&field(FieldType::Date, &[]), &raw)
                .unwrap()
                .is_none());
        }
    }

    #[test]
    fn operands_use_the_index_encoding() {
        let money = field(FieldType::Money, &[]);
        assert_eq!(
            encode_operand(&money, Op::Gte, "10.5"),
            Ok(Operand::Num(105_000))
        );
        assert!(encode_operand(&money, Op::Contains, "1").is_err());
        let date = field(FieldType::Date, &[]);
        assert_eq!(
            encode_operand(&date, Op::Lte, "2026-12-31"),
            Ok(Operand::Text("2026-12-31".into()))
        );
        assert!(encode_operand(&date, Op::Gte, "soon").is_err());
        let sel = field(FieldType::SingleSelect, &["Gold"]);
        assert_eq!(
            encode_operand(&sel, Op::In, "Gold, Silver"),
            Ok(Operand::TextList(vec!["Gold".into(), "Silver".into()]))
        );
        assert!(encode_operand(&sel, Op::Gt, "Gold").is_err());
    }
}
