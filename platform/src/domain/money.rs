//! Money as integer cents beside an ISO currency: exact in Rust (`rust_decimal`),
//! summable in SQL on both backends, never a float.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

/// Parses "1234.5" into 123450 cents; refuses more than two decimal places and negatives.
pub fn parse_cents(s: &str) -> Result<i64, String> {
    let d: Decimal = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not an amount."))?;
    if d.is_sign_negative() {
        return Err("Use an amount of zero or more.".into());
    }
    if d.normalize().scale() > 2 {
        return Err("Use at most two decimal places.".into());
    }
    (d * Decimal::from(100))
        .to_i64()
        .ok_or_else(|| "The amount is too large.".into())
}

pub fn to_decimal(cents: i64) -> Decimal {
    Decimal::new(cents, 2)
}

/// "1234.50"
pub fn format_cents(cents: i64) -> String {
    to_decimal(cents).to_string()
}

/// "1,234.50 EUR" for people.
pub fn display(cents: i64, currency: &str) -> String {
    let s = format!("{:.2}", to_decimal(cents.abs()));
    let (int, frac) = s.split_once('.').unwrap_or((&s, "00"));
    let mut grouped = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{grouped}.{frac} {currency}")
}

pub fn valid_currency(c: &str) -> bool {
    c.len() == 3 && c.chars().all(|ch| ch.is_ascii_uppercase())
}

/// Rounds half away from zero to whole cents.
pub fn round_cents(d: Decimal) -> Result<i64, String> {
    (d * Decimal::from(100))
        .round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
        .to_i64()
        .ok_or_else(|| "The amount is too large.".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_round_trip_exactly() {
        assert_eq!(parse_cents("1234.5"), Ok(123_450));
        assert_eq!(parse_cents("0.1"), Ok(10));
        assert_eq!(format_cents(123_450), "1234.50");
        assert_eq!(display(123_456_789, "EUR"), "1,234,567.89 EUR");
        assert!(parse_cents("1.005").is_err());
        assert!(parse_cents("-1").is_err());
        assert!(parse_cents("abc").is_err());
        assert_eq!(round_cents("0.125".parse().unwrap()), Ok(13));
    }
}
