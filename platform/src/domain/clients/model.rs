//! Rows of the client tables and the vocabularies they use.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{client_relations, clients, saved_views, tags};

#[derive(
    Debug,
    Clone,
    PartialEq,
    Queryable,
    Selectable,
    Identifiable,
    Insertable,
    serde::Serialize,
    serde::Deserialize,
)]
#[diesel(table_name = clients)]
pub struct ClientRow {
    pub id: String,
    pub organization_id: String,
    pub kind: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub company_name: Option<String>,
    pub display_name: String,
    pub sort_name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub street: Option<String>,
    pub city: Option<String>,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
    pub website: Option<String>,
    pub industry: Option<String>,
    pub source: Option<String>,
    pub status: String,
    pub assigned_to: Option<String>,
    pub employer_id: Option<String>,
    /// JSON object of custom values, keyed by field key.
    pub custom_fields: String,
    pub version: i64,
    pub created_by: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub deleted_at: Option<NaiveDateTime>,
}

impl ClientRow {
    pub fn custom_map(&self) -> serde_json::Map<String, serde_json::Value> {
        serde_json::from_str(&self.custom_fields).unwrap_or_default()
    }

    pub fn is_company(&self) -> bool {
        self.kind == "company"
    }
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Identifiable, Insertable)]
#[diesel(table_name = tags)]
pub struct TagRow {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub color: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Insertable)]
#[diesel(table_name = client_relations)]
pub struct RelationRow {
    pub id: String,
    pub organization_id: String,
    pub from_client_id: String,
    pub to_client_id: String,
    pub label: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Insertable)]
#[diesel(table_name = saved_views)]
pub struct SavedViewRow {
    pub id: String,
    pub organization_id: String,
    pub user_id: String,
    pub entity: String,
    pub name: String,
    /// The list's query string (filters, sort, columns).
    pub query: String,
    pub created_at: NaiveDateTime,
}

pub const KINDS: &[&str] = &["individual", "company"];
pub const STATUSES: &[&str] = &["lead", "prospect", "customer", "inactive"];
/// Suggested relation labels; any label up to 60 characters is accepted.
pub const RELATION_LABELS: &[&str] = &[
    "parent of",
    "subsidiary of",
    "partner",
    "referred by",
    "supplier",
    "competitor",
];
pub const TAG_COLORS: &[&str] = &[
    "gray", "blue", "green", "yellow", "orange", "red", "purple", "teal",
];

pub fn status_label(status: &str) -> &'static str {
    match status {
        "lead" => "Lead",
        "prospect" => "Prospect",
        "customer" => "Customer",
        "inactive" => "Inactive",
        _ => "Unknown",
    }
}

/// ISO 3166-1 alpha-2 codes.
pub const COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

pub fn valid_country(code: &str) -> bool {
    code.len() == 2 && COUNTRIES.split(' ').any(|c| c == code)
}
