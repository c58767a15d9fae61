//! How one person reads dates, times, numbers and money: their time zone and their locale,
//! chosen on the account page. Everything is stored in UTC; the console converts at the
//! edge (shown times into the person's zone, typed times back to UTC), and the API stays in
//! UTC and plain decimals for programs.
//!
//! The console speaks English, so a locale here means number separators, the order and
//! shape of dates, the 12- or 24-hour clock and the first day of the week — not
//! translated month names. A small table covers the locales offered; why not ICU:
//! ARCHITECTURE.md, "Time zones and locales".

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use rust_decimal::Decimal;

/// The locales offered on the account page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locale {
    pub code: &'static str,
    pub name: &'static str,
    decimal: char,
    group: &'static str,
    dates: Dates,
    h12: bool,
    week_start: Weekday,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dates {
    /// "Dec 5, 2026"
    MonthFirst,
    /// "5 Dec 2026"
    DayFirst,
    /// "05.12.2026" (the separator given)
    Numeric(char),
    /// "2026-12-05"
    Iso,
}

pub const LOCALES: [Locale; 9] = [
    Locale {
        code: "en-GB",
        name: "English (United Kingdom) — 5 Dec 2026, 14:30, 1,234.50",
        decimal: '.',
        group: ",",
        dates: Dates::DayFirst,
        h12: false,
        week_start: Weekday::Mon,
    },
    Locale {
        code: "en-US",
        name: "English (United States) — Dec 5, 2026, 2:30 PM, 1,234.50",
        decimal: '.',
        group: ",",
        dates: Dates::MonthFirst,
        h12: true,
        week_start: Weekday::Sun,
    },
    Locale {
        code: "de-DE",
        name: "Deutsch (Deutschland) — 05.12.2026, 14:30, 1.234,50",
        decimal: ',',
        group: ".",
        dates: Dates::Numeric('.'),
        h12: false,
        week_start: Weekday::Mon,
    },
    Locale {
        code: "fr-FR",
        name: "Français (France) — 05/12/2026, 14:30, 1 234,50",
        decimal: ',',
        // why: a narrow no-break space, so a figure never breaks across lines.
        group: "\u{202f}",
        dates: Dates::Numeric('/'),
        h12: false,
        week_start: Weekday::Mon,
    },
    Locale {
        code: "es-ES",
        name: "Español (España) — 05/12/2026, 14:30, 1.234,50",
        decimal: ',',
        group: ".",
        dates: Dates::Numeric('/'),
        h12: false,
        week_start: Weekday::Mon,
    },
    Locale {
        code: "it-IT",
        name: "Italiano (Italia) — 05/12/2026, 14:30, 1.234,50",
        decimal: ',',
        group: ".",
        dates: Dates::Numeric('/'),
        h12: false,
        week_start: Weekday::Mon,
    },
    Locale {
        code: "nl-NL",
        name: "Nederlands (Nederland) — 05-12-2026, 14:30, 1.234,50",
        decimal: ',',
        group: ".",
        dates: Dates::Numeric('-'),
        h12: false,
        week_start: Weekday::Mon,
    },
    Locale {
        code: "pt-BR",
        name: "Português (Brasil) — 05/12/2026, 14:30, 1.234,50",
        decimal: ',',
        group: ".",
        dates: Dates::Numeric('/'),
        h12: false,
        week_start: Weekday::Sun,
    },
    Locale {
        code: "iso",
        name: "ISO 8601 — 2026-12-05, 14:30, 1 234.50",
        decimal: '.',
        group: "\u{202f}",
        dates: Dates::Iso,
        h12: false,
        week_start: Weekday::Mon,
    },
];

pub const DEFAULT_LOCALE: &str = "en-GB";
pub const DEFAULT_TIME_ZONE: &str = "UTC";

pub fn locale(code: &str) -> Option<&'static Locale> {
    LOCALES.iter().find(|l| l.code == code)
}

/// An IANA time zone name (`Europe/Berlin`), as the zone database spells it.
pub fn time_zone(name: &str) -> Option<Tz> {
    name.parse::<Tz>().ok()
}

/// Every zone name people pick from: the canonical ones with a region, then UTC.
pub fn zone_names() -> impl Iterator<Item = &'static str> {
    chrono_tz::TZ_VARIANTS
        .iter()
        .map(|z| z.name())
        .filter(|n| n.contains('/') && !n.starts_with("Etc/") && !n.starts_with("SystemV/"))
        .chain(std::iter::once("UTC"))
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A person's zone and locale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Local {
    pub tz: Tz,
    pub locale: &'static Locale,
}

impl Default for Local {
    fn default() -> Self {
        Self {
            tz: Tz::UTC,
            locale: &LOCALES[0],
        }
    }
}

impl Local {
    /// From stored settings; an unknown value (a zone the database dropped) falls back to
    /// the default rather than failing the page.
    pub fn of(time_zone: &str, locale: &str) -> Self {
        let d = Self::default();
        Self {
            tz: self::time_zone(time_zone).unwrap_or(d.tz),
            locale: self::locale(locale).unwrap_or(d.locale),
        }
    }

    pub fn zone_name(&self) -> &'static str {
        self.tz.name()
    }

    pub fn week_start(&self) -> Weekday {
        self.locale.week_start
    }

    /// The wall-clock time in the person's zone of a stored UTC time.
    pub fn wall(&self, utc: NaiveDateTime) -> NaiveDateTime {
        self.tz.from_utc_datetime(&utc).naive_local()
    }

    /// The UTC time of a wall-clock time typed in the person's zone. In the hour a clock
    /// goes back the earlier reading is meant; a time inside the hour skipped when it goes
    /// forward does not exist, and is read an hour later (as a clock on the wall would).
    pub fn to_utc(&self, wall: NaiveDateTime) -> NaiveDateTime {
        match self.tz.from_local_datetime(&wall) {
            chrono::LocalResult::Single(t) => t.naive_utc(),
            chrono::LocalResult::Ambiguous(a, _) => a.naive_utc(),
            chrono::LocalResult::None => self
                .tz
                .from_local_datetime(&(wall + chrono::Duration::hours(1)))
                .earliest()
                .map_or(wall, |t| t.naive_utc()),
        }
    }

    /// UTC bounds [from, to) of the person's days `first ..= last`, for queries over
    /// stored UTC times.
    pub fn days_utc(&self, first: NaiveDate, last: NaiveDate) -> (NaiveDateTime, NaiveDateTime) {
        let start = |d: NaiveDate| self.to_utc(d.and_time(NaiveTime::MIN));
        (start(first), start(last + chrono::Duration::days(1)))
    }

    pub fn now(&self) -> NaiveDateTime {
        self.wall(Utc::now().naive_utc())
    }

    pub fn today(&self) -> NaiveDate {
        self.now().date()
    }

    /// A calendar date: "5 Dec 2026", "Dec 5, 2026", "05.12.2026" or "2026-12-05".
    pub fn date(&self, d: NaiveDate) -> String {
        let m = MONTHS[d.month0() as usize];
        match self.locale.dates {
            Dates::MonthFirst => format!("{m} {}, {}", d.day(), d.year()),
            Dates::DayFirst => format!("{} {m} {}", d.day(), d.year()),
            Dates::Numeric(sep) => {
                format!("{:02}{sep}{:02}{sep}{}", d.day(), d.month(), d.year())
            }
            Dates::Iso => d.format("%Y-%m-%d").to_string(),
        }
    }

    /// A date with its weekday, for day headings: "Sat 5 Dec 2026".
    pub fn day(&self, d: NaiveDate) -> String {
        let w = d.format("%a");
        match self.locale.dates {
            Dates::MonthFirst => format!("{w}, {}", self.date(d)),
            _ => format!("{w} {}", self.date(d)),
        }
    }

    /// A time of day on the wall: "14:30" or "2:30 PM".
    pub fn clock(&self, t: NaiveTime) -> String {
        if self.locale.h12 {
            t.format("%-I:%M %p").to_string()
        } else {
            t.format("%H:%M").to_string()
        }
    }

    /// The time of day of a stored UTC time, in the person's zone.
    pub fn time(&self, utc: NaiveDateTime) -> String {
        self.clock(self.wall(utc).time())
    }

    /// A stored UTC time as date and time in the person's zone: "5 Dec 2026, 14:30".
    pub fn datetime(&self, utc: NaiveDateTime) -> String {
        let w = self.wall(utc);
        format!("{}, {}", self.date(w.date()), self.clock(w.time()))
    }

    /// The value of an `<input type="datetime-local">` for a stored UTC time.
    pub fn input(&self, utc: NaiveDateTime) -> String {
        self.wall(utc).format("%Y-%m-%dT%H:%M").to_string()
    }

    /// A `datetime-local` value typed by the person, as UTC (None when it is not one).
    pub fn parse_input(&self, s: &str) -> Option<NaiveDateTime> {
        let s = s.trim();
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
            .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
            .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M"))
            .ok()
            .map(|w| self.to_utc(w))
    }

    /// Digits grouped by the locale: "12,345", "12.345".
    pub fn count(&self, n: i64) -> String {
        let digits = group(&n.unsigned_abs().to_string(), self.locale.group);
        if n < 0 {
            format!("-{digits}")
        } else {
            digits
        }
    }

    /// A number with `places` decimals: "1,234.50", "1.234,50".
    pub fn number(&self, d: Decimal, places: u32) -> String {
        let text = format!("{:.*}", places as usize, d.round_dp(places).abs());
        let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
        let sign = if d.is_sign_negative() && !d.round_dp(places).is_zero() {
            "-"
        } else {
            ""
        };
        let int = group(int, self.locale.group);
        if frac.is_empty() {
            format!("{sign}{int}")
        } else {
            format!("{sign}{int}{}{frac}", self.locale.decimal)
        }
    }

    /// A count, for templates (which pass references).
    pub fn n(&self, n: &i64) -> String {
        self.count(*n)
    }

    /// A stored UTC time, for templates (which pass references).
    pub fn when(&self, utc: &NaiveDateTime) -> String {
        self.datetime(*utc)
    }

    /// An RFC 3339 time as the API writes it (`2026-12-05T14:30:00Z`), shown in the
    /// person's zone; anything else as it is.
    pub fn iso(&self, text: &str) -> String {
        chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| self.datetime(t.naive_utc()))
            .unwrap_or_else(|_| text.to_string())
    }

    /// Two decimals, for templates (which pass references).
    pub fn num2(&self, d: &Decimal) -> String {
        self.number(*d, 2)
    }

    /// An amount with its currency code after it: "1,234.50 EUR", "1.234,50 EUR". The
    /// code rather than a symbol: figures in several currencies sit side by side and "$"
    /// does not say which dollar.
    pub fn money(&self, amount: Decimal, currency: &str) -> String {
        format!("{} {currency}", self.number(amount, 2))
    }

    pub fn cents(&self, cents: i64, currency: &str) -> String {
        self.money(Decimal::new(cents, 2), currency)
    }

    /// A figure read at a glance, in whole units: "1,235 EUR".
    pub fn money_whole(&self, amount: Decimal, currency: &str) -> String {
        format!("{} {currency}", self.number(amount, 0))
    }
}

fn group(digits: &str, sep: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 * sep.len());
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push_str(sep);
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    #[test]
    fn each_locale_writes_numbers_and_dates_its_own_way() {
        let d = NaiveDate::from_ymd_opt(2026, 12, 5).unwrap();
        let amount: Decimal = "-1234567.5".parse().unwrap();
        let cases = [
            ("en-GB", "5 Dec 2026", "-1,234,567.50 EUR", "14:30"),
            ("en-US", "Dec 5, 2026", "-1,234,567.50 EUR", "2:30 PM"),
            ("de-DE", "05.12.2026", "-1.234.567,50 EUR", "14:30"),
            (
                "fr-FR",
                "05/12/2026",
                "-1\u{202f}234\u{202f}567,50 EUR",
                "14:30",
            ),
            ("nl-NL", "05-12-2026", "-1.234.567,50 EUR", "14:30"),
            (
                "iso",
                "2026-12-05",
                "-1\u{202f}234\u{202f}567.50 EUR",
                "14:30",
            ),
        ];
        for (code, date, money, time) in cases {
            let l = Local::of("UTC", code);
            assert_eq!(l.date(d), date, "{code}");
            assert_eq!(l.money(amount, "EUR"), money, "{code}");
            assert_eq!(l.time(at("2026-12-05 14:30")), time, "{code}");
        }
        let us = Local::of("UTC", "en-US");
        assert_eq!(us.week_start(), Weekday::Sun);
        assert_eq!(us.day(d), "Sat, Dec 5, 2026");
        assert_eq!(us.count(1_000_000), "1,000,000");
        assert_eq!(Local::of("UTC", "de-DE").count(-12_345), "-12.345");
        assert_eq!(Local::default().number(Decimal::new(-4, 3), 2), "0.00");
        assert_eq!(
            Local::default().money_whole("990472.4".parse().unwrap(), "USD"),
            "990,472 USD"
        );
    }

    #[test]
    fn times_are_shown_and_read_in_the_persons_zone() {
        let berlin = Local::of("Europe/Berlin", "de-DE");
        // Winter: UTC+1.
        assert_eq!(berlin.datetime(at("2026-12-05 23:30")), "06.12.2026, 00:30");
        assert_eq!(berlin.input(at("2026-12-05 23:30")), "2026-12-06T00:30");
        assert_eq!(
            berlin.parse_input("2026-12-06T00:30"),
            Some(at("2026-12-05 23:30"))
        );
        // Summer: UTC+2.
        assert_eq!(
            berlin.parse_input("2026-07-01T09:00"),
            Some(at("2026-07-01 07:00"))
        );
        // 29 March 2026, 02:30 does not exist in Berlin: read as 03:30 summer time.
        assert_eq!(
            berlin.parse_input("2026-03-29T02:30"),
            Some(at("2026-03-29 01:30"))
        );
        // 25 October 2026, 02:30 happens twice: the first (summer time) is meant.
        assert_eq!(
            berlin.parse_input("2026-10-25T02:30"),
            Some(at("2026-10-25 00:30"))
        );
        let ny = Local::of("America/New_York", "en-US");
        let d = NaiveDate::from_ymd_opt(2026, 12, 5).unwrap();
        assert_eq!(
            ny.days_utc(d, d),
            (at("2026-12-05 05:00"), at("2026-12-06 05:00"))
        );
        assert_eq!(berlin.parse_input("tomorrow"), None);
        // A zone or locale nobody knows falls back rather than failing the page.
        assert_eq!(Local::of("Mars/Olympus", "xx"), Local::default());
        assert!(zone_names().any(|z| z == "Europe/Berlin"));
        assert!(zone_names().all(|z| time_zone(z).is_some()));
    }
}
