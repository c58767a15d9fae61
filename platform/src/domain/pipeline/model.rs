//! Rows of the sales tables.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::db::schema::{
    contracts, loss_reasons, opportunities, opportunity_stage_history, pipeline_stages, pipelines,
    quote_lines, quotes,
};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Insertable)]
#[diesel(table_name = pipelines)]
pub struct PipelineRow {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub position: i32,
    pub rotting_days: Option<i32>,
    pub archived_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Identifiable, Insertable)]
#[diesel(table_name = pipeline_stages)]
pub struct StageRow {
    pub id: String,
    pub organization_id: String,
    pub pipeline_id: String,
    pub name: String,
    pub position: i32,
    pub probability: i32,
    /// `open`, `won` or `lost`.
    pub kind: String,
    pub is_active: bool,
    pub color: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Insertable)]
#[diesel(table_name = loss_reasons)]
pub struct LossReasonRow {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub is_active: bool,
    pub created_at: NaiveDateTime,
}

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
#[diesel(table_name = opportunities)]
pub struct OpportunityRow {
    pub id: String,
    pub organization_id: String,
    pub pipeline_id: String,
    pub stage_id: String,
    pub client_id: String,
    pub name: String,
    pub description: String,
    pub value_cents: i64,
    pub currency: String,
    pub probability: i32,
    /// The probability was set by hand rather than taken from the stage.
    pub probability_set: bool,
    pub expected_close: Option<NaiveDate>,
    pub actual_close: Option<NaiveDate>,
    pub status: String,
    pub assigned_to: Option<String>,
    pub source: Option<String>,
    /// JSON array of competitor names.
    pub competitors: String,
    pub loss_reason: Option<String>,
    pub custom_fields: String,
    pub version: i64,
    pub stage_entered_at: NaiveDateTime,
    pub created_by: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub deleted_at: Option<NaiveDateTime>,
}

impl OpportunityRow {
    pub fn competitor_list(&self) -> Vec<String> {
        serde_json::from_str(&self.competitors).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Insertable)]
#[diesel(table_name = opportunity_stage_history)]
pub struct StageMoveRow {
    pub id: String,
    pub organization_id: String,
    pub opportunity_id: String,
    pub from_stage_id: Option<String>,
    pub to_stage_id: String,
    pub from_probability: Option<i32>,
    pub to_probability: i32,
    pub moved_by: Option<String>,
    pub moved_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Insertable)]
#[diesel(table_name = quotes)]
pub struct QuoteRow {
    pub id: String,
    pub organization_id: String,
    pub opportunity_id: String,
    pub number: i32,
    pub status: String,
    pub currency: String,
    pub valid_until: Option<NaiveDate>,
    pub terms: String,
    pub subtotal_cents: i64,
    pub discount_cents: i64,
    pub tax_cents: i64,
    pub total_cents: i64,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Insertable)]
#[diesel(table_name = quote_lines)]
pub struct QuoteLineRow {
    pub id: String,
    pub quote_id: String,
    pub organization_id: String,
    pub position: i32,
    pub name: String,
    /// Decimal text, e.g. "2.5".
    pub quantity: String,
    pub unit_price_cents: i64,
    /// Percent as decimal text, e.g. "10".
    pub discount_percent: String,
    /// Percent as decimal text, e.g. "19".
    pub tax_rate: String,
    pub total_cents: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Insertable)]
#[diesel(table_name = contracts)]
pub struct ContractRow {
    pub id: String,
    pub organization_id: String,
    pub client_id: String,
    pub opportunity_id: Option<String>,
    pub name: String,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub value_cents: i64,
    pub currency: String,
    pub renewal_terms: String,
    pub notice_days: i32,
    pub status: String,
    pub document_name: Option<String>,
    pub document_type: Option<String>,
    pub document: Option<Vec<u8>>,
    pub renewal_opportunity_id: Option<String>,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub const OPPORTUNITY_STATUSES: &[&str] = &["open", "won", "lost", "cancelled"];
// One list for the host and plugins' pipeline templates (checked at pack time too).
pub use rapport_plugin_sdk::pack::{STAGE_COLORS, STAGE_KINDS};
pub const QUOTE_STATUSES: &[&str] = &["draft", "sent", "accepted", "declined", "expired"];
pub const CONTRACT_STATUSES: &[&str] = &["draft", "active", "expired", "terminated", "renewed"];

/// The stages a new organization's first pipeline starts with.
pub const DEFAULT_STAGES: &[(&str, i32, &str, &str)] = &[
    ("Qualification", 10, "open", "gray"),
    ("Needs analysis", 25, "open", "blue"),
    ("Proposal", 50, "open", "purple"),
    ("Negotiation", 75, "open", "orange"),
    ("Won", 100, "won", "green"),
    ("Lost", 0, "lost", "red"),
];
pub const DEFAULT_LOSS_REASONS: &[&str] = &[
    "Price",
    "Competitor",
    "No decision",
    "Timing",
    "Product fit",
];
