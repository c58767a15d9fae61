//! Field definitions.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::custom_fields;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Insertable)]
#[diesel(table_name = custom_fields)]
pub struct FieldRow {
    pub id: String,
    pub organization_id: String,
    pub entity: String,
    pub field_key: String,
    pub label: String,
    pub field_type: String,
    pub required: bool,
    /// JSON array of the choices of a select field.
    pub options: String,
    /// JSON value used when a new record leaves the field out.
    pub default_value: Option<String>,
    pub help_text: String,
    pub display_group: String,
    pub position: i32,
    pub sensitive: bool,
    pub currency: Option<String>,
    pub archived_at: Option<NaiveDateTime>,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// Its values are found by search (never for sensitive fields).
    pub searchable: bool,
}

impl FieldRow {
    pub fn kind(&self) -> FieldType {
        FieldType::parse(&self.field_type).unwrap_or(FieldType::Text)
    }

    pub fn option_list(&self) -> Vec<String> {
        serde_json::from_str(&self.options).unwrap_or_default()
    }

    pub fn is_active(&self) -> bool {
        self.archived_at.is_none()
    }
}

/// Entities that carry custom fields.
pub const ENTITIES: &[&str] = &["client", "opportunity"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Text,
    LongText,
    Integer,
    Decimal,
    Money,
    Date,
    DateTime,
    Boolean,
    SingleSelect,
    MultiSelect,
    Email,
    Phone,
    Url,
    /// Provided by a plugin; the stored `field_type` is `plugin:<plugin id>/<type key>`.
    Plugin,
}

impl FieldType {
    pub const ALL: [FieldType; 13] = [
        FieldType::Text,
        FieldType::LongText,
        FieldType::Integer,
        FieldType::Decimal,
        FieldType::Money,
        FieldType::Date,
        FieldType::DateTime,
        FieldType::Boolean,
        FieldType::SingleSelect,
        FieldType::MultiSelect,
        FieldType::Email,
        FieldType::Phone,
        FieldType::Url,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Text => "text",
            FieldType::LongText => "long_text",
            FieldType::Integer => "integer",
            FieldType::Decimal => "decimal",
            FieldType::Money => "money",
            FieldType::Date => "date",
            FieldType::DateTime => "datetime",
            FieldType::Boolean => "boolean",
            FieldType::SingleSelect => "single_select",
            FieldType::MultiSelect => "multi_select",
            FieldType::Email => "email",
            FieldType::Phone => "phone",
            FieldType::Url => "url",
            FieldType::Plugin => "plugin",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            FieldType::Text => "Text",
            FieldType::LongText => "Long text",
            FieldType::Integer => "Whole number",
            FieldType::Decimal => "Decimal number",
            FieldType::Money => "Money",
            FieldType::Date => "Date",
            FieldType::DateTime => "Date and time",
            FieldType::Boolean => "Yes / no",
            FieldType::SingleSelect => "Single choice",
            FieldType::MultiSelect => "Multiple choice",
            FieldType::Email => "E-mail",
            FieldType::Phone => "Phone",
            FieldType::Url => "Web address",
            FieldType::Plugin => "Plugin type",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        if s.starts_with("plugin:") && s.contains('/') {
            return Some(FieldType::Plugin);
        }
        FieldType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Numbers are indexed in `num_value`; everything else in `text_value`.
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            FieldType::Integer | FieldType::Decimal | FieldType::Money
        )
    }

    pub fn has_options(self) -> bool {
        matches!(self, FieldType::SingleSelect | FieldType::MultiSelect)
    }
}
