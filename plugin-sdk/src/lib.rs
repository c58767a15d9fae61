//! The Rapport plugin SDK.
//!
//! A plugin is a WebAssembly module (built for `wasm32-unknown-unknown`) plus a
//! `plugin.toml` manifest, packed into one bundle. The host calls the plugin's exported
//! hooks with JSON; the types in this crate are that JSON, shared by the host and the
//! guest so they cannot drift.
//!
//! The SDK's version is the plugin API version. [`export_api_version!`] writes it into a
//! custom section of the module (`rapport_api_version`); the host reads it before
//! compiling and refuses a plugin built against an API it does not support.
//!
//! With the `guest` feature, [`validate_hook!`] turns a plain Rust function into the
//! exported `validate` hook. See the README for a plugin from `cargo new` to installed.

use serde::{Deserialize, Serialize};

/// The plugin API version this SDK speaks (the crate's version).
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The name of the custom section holding the API version in a plugin module.
pub const API_VERSION_SECTION: &str = "rapport_api_version";

/// Hook names a manifest may list.
#[cfg(feature = "pack")]
pub mod pack;

pub mod hooks {
    /// Checks and normalises a value of a plugin field type ([`crate::ValidateRequest`]).
    pub const VALIDATE: &str = "validate";
    /// Renders a stored value for people ([`crate::FormatRequest`]).
    pub const FORMAT: &str = "format";
    /// May refuse a deal's stage change ([`crate::MoveRequest`] → [`crate::MoveDecision`]).
    pub const OPPORTUNITY_BEFORE_MOVE: &str = "opportunity_before_move";
    /// A deal moved to another stage; called after the change is saved, with the
    /// [`crate::MoveRequest`] of the move (the deal as saved). The answer is ignored.
    pub const OPPORTUNITY_AFTER_MOVE: &str = "opportunity_after_move";
    /// A deal was won (moved to a won stage); like [`OPPORTUNITY_AFTER_MOVE`].
    pub const OPPORTUNITY_AFTER_WON: &str = "opportunity_after_won";
    /// A client was created; called after it is saved, with a [`crate::ClientSnapshot`].
    /// The answer is ignored.
    pub const CLIENT_AFTER_CREATE: &str = "client_after_create";
    /// A client was changed; called after it is saved, with the client as saved.
    pub const CLIENT_AFTER_UPDATE: &str = "client_after_update";
    /// A client was deleted (moved to the trash); called after, with the client as it was.
    pub const CLIENT_AFTER_DELETE: &str = "client_after_delete";
    /// Computes the plugin's computed fields for a record ([`crate::ComputeRequest`] →
    /// [`crate::ComputeResponse`]); read-only, called when a record is shown.
    pub const COMPUTE: &str = "compute";
    /// Runs one of the plugin's workflow actions ([`crate::ActionRequest`] →
    /// [`crate::ActionResponse`]); may write storage, call approved hosts and raise the
    /// plugin's triggers.
    pub const RUN_ACTION: &str = "run_action";
    /// Every hook the host knows.
    pub const ALL: &[&str] = &[
        VALIDATE,
        FORMAT,
        COMPUTE,
        RUN_ACTION,
        OPPORTUNITY_BEFORE_MOVE,
        OPPORTUNITY_AFTER_MOVE,
        OPPORTUNITY_AFTER_WON,
        CLIENT_AFTER_CREATE,
        CLIENT_AFTER_UPDATE,
        CLIENT_AFTER_DELETE,
    ];
    /// Hooks that run after a change is saved and may write storage.
    pub const EVENTS: &[&str] = &[
        OPPORTUNITY_AFTER_MOVE,
        OPPORTUNITY_AFTER_WON,
        CLIENT_AFTER_CREATE,
        CLIENT_AFTER_UPDATE,
        CLIENT_AFTER_DELETE,
    ];
}

/// Capabilities a manifest may request; an admin grants each explicitly.
pub mod capabilities {
    /// Write lines to the host's log, tagged with the plugin id.
    pub const LOG: &str = "log";
    /// A key-value store private to the plugin and the organization.
    pub const STORAGE: &str = "storage";
    /// Read a client or deal of the calling organization.
    pub const READ_RECORDS: &str = "read_records";
    /// HTTP requests to the hosts the manifest lists and the admin approved.
    pub const HTTP: &str = "http";
    /// Every capability the host knows.
    pub const ALL: &[&str] = &[LOG, STORAGE, READ_RECORDS, HTTP];
}

/// Host functions a plugin may import (Extism namespace `extism:host/user`), each with the
/// capability an admin must grant before it answers. The `guest` module wraps them.
pub mod host_functions {
    use crate::capabilities as cap;
    /// `rapport_log(message)`: one line in the host's log, tagged with the plugin and
    /// organization. Needs [`crate::capabilities::LOG`].
    pub const LOG: &str = "rapport_log";
    /// `rapport_setting(key) -> JSON string or null`: a value of the plugin's settings, as
    /// the admin set them on the Plugins page. Needs no capability.
    pub const SETTING: &str = "rapport_setting";
    /// `rapport_storage_get(key) -> JSON string or null`. Needs `storage`.
    pub const STORAGE_GET: &str = "rapport_storage_get";
    /// `rapport_storage_set(key, value)`; only from event hooks (a hook that checks a
    /// change in progress sees storage read-only). Needs `storage`.
    pub const STORAGE_SET: &str = "rapport_storage_set";
    /// `rapport_storage_delete(key)`; only from event hooks. Needs `storage`.
    pub const STORAGE_DELETE: &str = "rapport_storage_delete";
    /// `rapport_read_client(id) -> ClientSnapshot JSON or null` (clients of the calling
    /// organization only). Needs `read_records`.
    pub const READ_CLIENT: &str = "rapport_read_client";
    /// `rapport_read_opportunity(id) -> DealSnapshot JSON or null`. Needs `read_records`.
    pub const READ_OPPORTUNITY: &str = "rapport_read_opportunity";
    /// `rapport_http_request(HttpRequest JSON) -> HttpResponse JSON`, to a host the
    /// manifest lists in `allowed_hosts` and the admin approved. Needs `http`.
    pub const HTTP_REQUEST: &str = "rapport_http_request";
    /// `rapport_emit(EmitRequest JSON)`: raises one of the triggers the manifest declares,
    /// starting the organization's workflows that follow it; only from event hooks and
    /// `run_action`. Needs no capability: an admin decides which workflows follow it.
    pub const EMIT: &str = "rapport_emit";
    /// Every host function with the capability it needs (`None`: always available).
    pub const ALL: &[(&str, Option<&str>)] = &[
        (LOG, Some(cap::LOG)),
        (SETTING, None),
        (STORAGE_GET, Some(cap::STORAGE)),
        (STORAGE_SET, Some(cap::STORAGE)),
        (STORAGE_DELETE, Some(cap::STORAGE)),
        (READ_CLIENT, Some(cap::READ_RECORDS)),
        (READ_OPPORTUNITY, Some(cap::READ_RECORDS)),
        (HTTP_REQUEST, Some(cap::HTTP)),
        (EMIT, None),
    ];
}

/// Kinds of plugin settings: how the console renders and checks them.
pub mod setting_kinds {
    /// One line of text.
    pub const TEXT: &str = "text";
    /// An `http://` or `https://` address.
    pub const URL: &str = "url";
    /// Text never shown again once saved (tokens, webhook addresses with keys in them).
    pub const SECRET: &str = "secret";
    /// A decimal number.
    pub const NUMBER: &str = "number";
    /// `true` or `false` (a checkbox).
    pub const BOOLEAN: &str = "boolean";
    /// Every kind.
    pub const ALL: &[&str] = &[TEXT, URL, SECRET, NUMBER, BOOLEAN];
}

/// A setting the admin fills in on the Plugins page; the plugin reads it with
/// `guest::setting`. An upgrade keeps the values of settings whose key it still declares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct SettingDecl {
    /// Stable key, e.g. `webhook_url`.
    pub key: String,
    /// The form label.
    pub label: String,
    /// One of [`setting_kinds`]; `text` when omitted.
    #[serde(default = "text_kind")]
    pub kind: String,
    /// Whether the plugin cannot work without it (the page says so until it is set).
    #[serde(default)]
    pub required: bool,
    /// The value until the admin sets one.
    #[serde(default)]
    pub default: Option<String>,
    /// Help shown under the field.
    #[serde(default)]
    pub description: String,
    /// Never shown again once saved (e.g. a webhook URL with a token in it); a `secret`
    /// kind is always secret.
    #[serde(default)]
    pub secret: bool,
}

impl SettingDecl {
    /// Whether the value is hidden from the console and the API once saved.
    pub fn is_secret(&self) -> bool {
        self.secret || self.kind == setting_kinds::SECRET
    }
}

fn text_kind() -> String {
    setting_kinds::TEXT.into()
}

/// A request a plugin makes through `rapport_http_request`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct HttpRequest {
    /// `GET`, `POST`, `PUT`, `PATCH` or `DELETE`.
    pub method: String,
    /// An `https://` (or `http://`) address on an approved host.
    pub url: String,
    /// Request headers.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// The body, sent as is.
    #[serde(default)]
    pub body: String,
}

impl HttpRequest {
    /// A `POST` of a JSON body.
    pub fn post_json(url: impl Into<String>, body: &serde_json::Value) -> Self {
        let mut headers = std::collections::BTreeMap::new();
        headers.insert("content-type".into(), "application/json".into());
        Self {
            method: "POST".into(),
            url: url.into(),
            headers,
            body: body.to_string(),
        }
    }
}

/// What the host got back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct HttpResponse {
    /// The HTTP status code.
    pub status: u16,
    /// The body as text (cut at 256 KiB).
    pub body: String,
}

impl HttpResponse {
    /// A response.
    pub fn new(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            body: body.into(),
        }
    }
}

/// A custom field type a plugin adds (e.g. an NPI number).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct FieldTypeDecl {
    /// Stable key, unique within the plugin, e.g. `npi`.
    pub key: String,
    /// What admins see when they define a field of this type.
    pub label: String,
    /// A sentence on what the type accepts.
    #[serde(default)]
    pub description: String,
}

/// A value the plugin computes from a record (e.g. a commission from a deal's value), shown
/// read-only on the record and in the API's `computed` object; never stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct ComputedFieldDecl {
    /// Stable key, unique within the plugin, e.g. `commission`.
    pub key: String,
    /// What people see beside the value.
    pub label: String,
    /// `client` or `opportunity`.
    pub entity: String,
    /// A sentence on what it means.
    #[serde(default)]
    pub description: String,
}

/// A workflow step the plugin offers (needs the `run_action` hook), e.g. "Post to Slack".
/// The admin fills in its settings in the workflow builder, per step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct ActionDecl {
    /// Stable key, unique within the plugin, e.g. `post_message`.
    pub key: String,
    /// How the step reads in the builder.
    pub label: String,
    /// A sentence on what it does.
    #[serde(default)]
    pub description: String,
    /// The step's form (secret kinds are not allowed: a workflow shows its steps).
    #[serde(default)]
    pub settings: Vec<SettingDecl>,
}

/// An event the plugin raises with `guest::emit`; an admin can start workflows on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct TriggerDecl {
    /// Stable key, unique within the plugin, e.g. `deal_announced`.
    pub key: String,
    /// How the trigger reads in the builder ("A won deal is announced in Slack").
    pub label: String,
    /// A sentence on when it fires.
    #[serde(default)]
    pub description: String,
}

/// Input of the `run_action` hook: the step's action and settings, and the run's records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ActionRequest {
    /// The [`ActionDecl::key`].
    pub action: String,
    /// The step's settings by key (defaults filled in).
    #[serde(default)]
    pub settings: std::collections::BTreeMap<String, String>,
    /// The run's client, when it has one.
    #[serde(default)]
    pub client: Option<ClientSnapshot>,
    /// The run's deal, when it has one.
    #[serde(default)]
    pub deal: Option<DealSnapshot>,
    /// The same on every attempt of this step of this run: an action that must happen once
    /// (a post, a charge) keeps it in storage and skips a repeat.
    #[serde(default)]
    pub attempt_key: String,
}

impl ActionRequest {
    /// A request for `action` with no records.
    pub fn new(action: impl Into<String>) -> Self {
        Self {
            action: action.into(),
            settings: Default::default(),
            client: None,
            deal: None,
            attempt_key: String::new(),
        }
    }
}

/// Output of the `run_action` hook: one line for the run's history.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionResponse {
    /// What the step did, for people ("Posted to #sales"); when `failed`, why not.
    pub outcome: String,
    /// The step failed (the run retries it with backoff, then fails).
    #[serde(default)]
    pub failed: bool,
}

impl ActionResponse {
    /// A step that did what `outcome` says.
    pub fn done(outcome: impl Into<String>) -> Self {
        Self {
            outcome: outcome.into(),
            failed: false,
        }
    }
}

/// What a plugin passes to `rapport_emit`: its trigger and the record it is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct EmitRequest {
    /// The [`TriggerDecl::key`].
    pub trigger: String,
    /// The client it is about (a run on a client).
    #[serde(default)]
    pub client_id: Option<String>,
    /// The deal it is about (a run on a deal; its client is the run's client).
    #[serde(default)]
    pub deal_id: Option<String>,
}

impl EmitRequest {
    /// Raises `trigger` about a client.
    pub fn client(trigger: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            trigger: trigger.into(),
            client_id: Some(id.into()),
            deal_id: None,
        }
    }
    /// Raises `trigger` about a deal.
    pub fn deal(trigger: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            trigger: trigger.into(),
            client_id: None,
            deal_id: Some(id.into()),
        }
    }
}

/// Input of the `compute` hook: one record, by entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum ComputeRequest {
    /// Compute the client's fields.
    Client(ClientSnapshot),
    /// Compute the deal's fields.
    Opportunity(DealSnapshot),
}

/// Output of the `compute` hook: values by computed field key (missing keys show as empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComputeResponse {
    /// Values as display text.
    pub values: std::collections::BTreeMap<String, String>,
}

/// A stage of a pipeline template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct StageTemplate {
    /// Stage name, e.g. `Showing`.
    pub name: String,
    /// Win probability 0–100 that deals in it default to.
    pub probability: i32,
    /// `open`, `won` or `lost`.
    #[serde(default = "open")]
    pub kind: String,
    /// A colour of the console's palette: gray, blue, green, yellow, orange, red, purple, teal.
    #[serde(default = "blue")]
    pub color: String,
}

fn open() -> String {
    "open".into()
}

fn blue() -> String {
    "blue".into()
}

/// A pipeline an admin can create in one step (e.g. a listing pipeline for real estate).
/// It needs at least one open, one won and one lost stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct PipelineTemplate {
    /// Stable key, unique within the plugin, e.g. `listings`.
    pub key: String,
    /// The pipeline's default name.
    pub name: String,
    /// Stages in board order.
    pub stages: Vec<StageTemplate>,
}

/// The parsed `plugin.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub struct Manifest {
    /// Reverse-DNS-like id, e.g. `com.example.healthcare`.
    pub id: String,
    /// Human name.
    pub name: String,
    /// The plugin's own version (semver).
    pub version: String,
    /// The plugin API version it was built for (the SDK version).
    pub api_version: String,
    /// Who ships it.
    pub vendor: String,
    /// One paragraph for admins.
    #[serde(default)]
    pub description: String,
    /// Capabilities it asks for (see [`capabilities`]).
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Hooks it exports (see [`hooks`]).
    #[serde(default)]
    pub hooks: Vec<String>,
    /// Custom field types it provides.
    #[serde(default)]
    pub field_types: Vec<FieldTypeDecl>,
    /// Pipelines it offers as templates.
    #[serde(default)]
    pub pipeline_templates: Vec<PipelineTemplate>,
    /// Hosts it may call when granted `http` (`host` or `host:port`); the admin approves
    /// each.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Settings the admin fills in.
    #[serde(default)]
    pub settings: Vec<SettingDecl>,
    /// Values it computes for records (needs the `compute` hook).
    #[serde(default)]
    pub computed_fields: Vec<ComputedFieldDecl>,
    /// Workflow steps it offers (needs the `run_action` hook).
    #[serde(default)]
    pub actions: Vec<ActionDecl>,
    /// Events it raises that workflows can start on.
    #[serde(default)]
    pub triggers: Vec<TriggerDecl>,
}

/// Input of the `validate` hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ValidateRequest {
    /// Which of the plugin's field types.
    pub field_type: String,
    /// The value as the user typed it.
    pub value: String,
}

impl ValidateRequest {
    /// A request for `field_type` with `value`.
    pub fn new(field_type: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            field_type: field_type.into(),
            value: value.into(),
        }
    }
}

/// Output of the `validate` hook: the value to store, or why it is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ValidateResponse {
    /// Accepted, stored in this normalised form.
    Valid {
        /// The canonical form (e.g. digits only).
        normalized: String,
    },
    /// Refused; `message` is shown to the user next to the field.
    Invalid {
        /// A sentence saying what is wrong.
        message: String,
    },
}

/// Input of the `format` hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FormatRequest {
    /// Which of the plugin's field types.
    pub field_type: String,
    /// The stored (normalised) value.
    pub value: String,
}

impl FormatRequest {
    /// A request to format `value` of `field_type`.
    pub fn new(field_type: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            field_type: field_type.into(),
            value: value.into(),
        }
    }
}

/// Output of the `format` hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FormatResponse {
    /// What people see.
    pub display: String,
}

/// A pipeline stage as hooks see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct StageRef {
    /// The stage id.
    pub id: String,
    /// Its name, e.g. `Negotiation`.
    pub name: String,
    /// `open`, `won` or `lost`.
    pub kind: String,
    /// Its default probability in percent.
    pub probability: i32,
}

/// A deal as hooks see it. Money is a decimal string beside its currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DealSnapshot {
    /// The deal id.
    pub id: String,
    /// The deal's name.
    pub name: String,
    /// Value as a decimal string, e.g. `"1234.50"`.
    pub value: String,
    /// ISO currency code.
    pub currency: String,
    /// The client it is for, if any (read it with `guest::read_client`).
    #[serde(default)]
    pub client_id: Option<String>,
    /// Its custom field values by key.
    #[serde(default)]
    pub custom_fields: serde_json::Map<String, serde_json::Value>,
}

/// A client as event hooks see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ClientSnapshot {
    /// The client id.
    pub id: String,
    /// `individual` or `company`.
    pub kind: String,
    /// The name people see.
    pub display_name: String,
    /// Primary e-mail, if any.
    #[serde(default)]
    pub email: Option<String>,
    /// Its custom field values by key.
    #[serde(default)]
    pub custom_fields: serde_json::Map<String, serde_json::Value>,
}

impl ClientSnapshot {
    /// A snapshot of a client.
    pub fn new(id: &str, kind: &str, display_name: &str, email: Option<&str>) -> Self {
        Self {
            id: id.into(),
            kind: kind.into(),
            display_name: display_name.into(),
            email: email.map(Into::into),
            custom_fields: serde_json::Map::new(),
        }
    }
}

/// Input of `opportunity_before_move`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct MoveRequest {
    /// The deal before the move.
    pub deal: DealSnapshot,
    /// Where it is.
    pub from_stage: StageRef,
    /// Where someone wants it.
    pub to_stage: StageRef,
}

impl MoveRequest {
    /// A request to move `deal` from `from_stage` to `to_stage`.
    pub fn new(deal: DealSnapshot, from_stage: StageRef, to_stage: StageRef) -> Self {
        Self {
            deal,
            from_stage,
            to_stage,
        }
    }
}

impl DealSnapshot {
    /// A snapshot of a deal.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        value: impl Into<String>,
        currency: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            value: value.into(),
            currency: currency.into(),
            client_id: None,
            custom_fields: Default::default(),
        }
    }
}

impl StageRef {
    /// A stage reference.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        kind: impl Into<String>,
        probability: i32,
    ) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            kind: kind.into(),
            probability,
        }
    }
}

/// Output of `opportunity_before_move`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MoveDecision {
    /// Let the move happen.
    Allow,
    /// Refuse it; `message` tells the user why.
    Refuse {
        /// A sentence for the user.
        message: String,
    },
}

/// Copies a string's bytes into an array at compile time (for the version section).
#[doc(hidden)]
pub const fn bytes_of<const N: usize>(s: &str) -> [u8; N] {
    let b = s.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = b[i];
        i += 1;
    }
    out
}

/// Writes [`API_VERSION`] into the module's `rapport_api_version` custom section.
/// Call it once at the top level of a plugin crate.
#[macro_export]
macro_rules! export_api_version {
    () => {
        #[link_section = "rapport_api_version"]
        #[used]
        static __RAPPORT_API_VERSION: [u8; $crate::API_VERSION.len()] =
            $crate::bytes_of($crate::API_VERSION);
    };
}

/// Exports `validate` from a plain function `fn(&ValidateRequest) -> ValidateResponse`,
/// and the API version section. The plugin crate needs no other dependency.
///
/// ```ignore
/// fn check(req: &ValidateRequest) -> ValidateResponse { /* … */ }
/// rapport_plugin_sdk::validate_hook!(check);
/// ```
#[cfg(feature = "guest")]
#[macro_export]
macro_rules! validate_hook {
    ($f:path) => {
        $crate::export_api_version!();

        /// The `validate` hook the host calls.
        #[no_mangle]
        pub extern "C" fn validate() -> i32 {
            use $crate::guest::pdk;
            let req: $crate::ValidateRequest =
                match pdk::input::<pdk::Json<$crate::ValidateRequest>>() {
                    Ok(pdk::Json(r)) => r,
                    Err(_) => return 1,
                };
            match pdk::output(pdk::Json($f(&req))) {
                Ok(()) => 0,
                Err(_) => 1,
            }
        }
    };
}

/// Exports `format` from `fn(&FormatRequest) -> FormatResponse`: how a stored value of the
/// plugin's field types reads on profiles. Without it (or when it fails) people see the
/// stored value.
#[cfg(feature = "guest")]
#[macro_export]
macro_rules! format_hook {
    ($f:path) => {
        /// The `format` hook the host calls.
        #[no_mangle]
        pub extern "C" fn format() -> i32 {
            use $crate::guest::pdk;
            let req: $crate::FormatRequest = match pdk::input::<pdk::Json<$crate::FormatRequest>>()
            {
                Ok(pdk::Json(r)) => r,
                Err(_) => return 1,
            };
            match pdk::output(pdk::Json($f(&req))) {
                Ok(()) => 0,
                Err(_) => 1,
            }
        }
    };
}

/// Exports `compute` from `fn(&ComputeRequest) -> ComputeResponse`. Without an answer (or
/// when it fails) the record shows its computed fields as unavailable.
#[cfg(feature = "guest")]
#[macro_export]
macro_rules! compute_hook {
    ($f:path) => {
        /// The `compute` hook the host calls.
        #[no_mangle]
        pub extern "C" fn compute() -> i32 {
            use $crate::guest::pdk;
            let req: $crate::ComputeRequest =
                match pdk::input::<pdk::Json<$crate::ComputeRequest>>() {
                    Ok(pdk::Json(r)) => r,
                    Err(_) => return 1,
                };
            match pdk::output(pdk::Json($f(&req))) {
                Ok(()) => 0,
                Err(_) => 1,
            }
        }
    };
}

/// Exports `opportunity_before_move` from `fn(&MoveRequest) -> MoveDecision`. Use it once
/// per plugin, alongside [`validate_hook!`] or alone (then it also writes the version section).
#[cfg(feature = "guest")]
#[macro_export]
macro_rules! before_move_hook {
    ($f:path) => {
        /// The `opportunity_before_move` hook the host calls.
        #[no_mangle]
        pub extern "C" fn opportunity_before_move() -> i32 {
            use $crate::guest::pdk;
            let req: $crate::MoveRequest = match pdk::input::<pdk::Json<$crate::MoveRequest>>() {
                Ok(pdk::Json(r)) => r,
                Err(_) => return 1,
            };
            match pdk::output(pdk::Json($f(&req))) {
                Ok(()) => 0,
                Err(_) => 1,
            }
        }
    };
}

/// Exports `$f(&MoveRequest)` as an event hook named `$hook` (`opportunity_after_move` or
/// `opportunity_after_won`); `$f` returns `Result<(), E>`, an `Err` counts as a failed call.
/// The hook runs after the move is saved; it cannot undo it.
#[macro_export]
macro_rules! move_event_hook {
    ($hook:ident, $f:path) => {
        /// An event hook the host calls after a deal moved.
        #[no_mangle]
        pub extern "C" fn $hook() -> i32 {
            use $crate::guest::pdk;
            let req: $crate::MoveRequest = match pdk::input::<pdk::Json<$crate::MoveRequest>>() {
                Ok(pdk::Json(r)) => r,
                Err(_) => return 1,
            };
            match $f(&req) {
                Ok(()) => 0,
                Err(_) => 1,
            }
        }
    };
}

/// Exports `$f(&ClientSnapshot)` as an event hook named `$hook` (`client_after_create`,
/// `client_after_update` or `client_after_delete`);
/// `$f` returns `Result<(), E>`, an `Err` counts as a failed call.
#[macro_export]
macro_rules! client_event_hook {
    ($hook:ident, $f:path) => {
        /// An event hook the host calls after a client changed.
        #[no_mangle]
        pub extern "C" fn $hook() -> i32 {
            use $crate::guest::pdk;
            let client: $crate::ClientSnapshot =
                match pdk::input::<pdk::Json<$crate::ClientSnapshot>>() {
                    Ok(pdk::Json(c)) => c,
                    Err(_) => return 1,
                };
            match $f(&client) {
                Ok(()) => 0,
                Err(_) => 1,
            }
        }
    };
}

/// Exports `run_action` from `fn(&ActionRequest) -> Result<ActionResponse, E>`; an `Err`
/// fails the workflow step with its message (and the run retries it).
#[cfg(feature = "guest")]
#[macro_export]
macro_rules! action_hook {
    ($f:path) => {
        /// The `run_action` hook the host calls for a workflow step.
        #[no_mangle]
        pub extern "C" fn run_action() -> i32 {
            use $crate::guest::pdk;
            let req: $crate::ActionRequest = match pdk::input::<pdk::Json<$crate::ActionRequest>>()
            {
                Ok(pdk::Json(r)) => r,
                Err(_) => return 1,
            };
            match $f(&req) {
                Ok(answer) => match pdk::output(pdk::Json(answer)) {
                    Ok(()) => 0,
                    Err(_) => 1,
                },
                // The message reaches the run's history; the host reads `failed`.
                Err(e) => match pdk::output(pdk::Json($crate::ActionResponse {
                    outcome: e.to_string(),
                    failed: true,
                })) {
                    Ok(()) => 0,
                    Err(_) => 1,
                },
            }
        }
    };
}

/// Re-exports for the guest macros and for hooks written by hand.
#[cfg(feature = "guest")]
pub mod guest {
    /// The Extism plug-in development kit the hooks are built on.
    pub use extism_pdk as pdk;
    pub use extism_pdk::{plugin_fn, FnResult, Json};

    use crate::{ClientSnapshot, DealSnapshot, EmitRequest, HttpRequest, HttpResponse};
    use extism_pdk::Error;

    #[extism_pdk::host_fn]
    extern "ExtismHost" {
        fn rapport_log(message: String);
        fn rapport_setting(key: String) -> Json<Option<String>>;
        fn rapport_storage_get(key: String) -> Json<Option<String>>;
        fn rapport_storage_set(key: String, value: String);
        fn rapport_storage_delete(key: String);
        fn rapport_read_client(id: String) -> Json<Option<ClientSnapshot>>;
        fn rapport_read_opportunity(id: String) -> Json<Option<DealSnapshot>>;
        fn rapport_http_request(req: Json<HttpRequest>) -> Json<HttpResponse>;
        fn rapport_emit(req: Json<EmitRequest>);
    }

    // SAFETY (every call below): the host provides each function with the signature
    // declared above; Rapport checks the module's imports against that list at install.

    /// Writes `message` to the host's log, tagged with your plugin id. Needs the `log`
    /// capability in `plugin.toml` and granted by the admin; without the grant the host
    /// refuses and the call fails.
    pub fn log(message: &str) -> Result<(), Error> {
        unsafe { rapport_log(message.to_string()) }
    }

    /// The value of one of your settings (declared in `plugin.toml`, filled in by the
    /// admin), or its default; `None` if neither.
    pub fn setting(key: &str) -> Result<Option<String>, Error> {
        unsafe { rapport_setting(key.to_string()) }.map(|Json(v)| v)
    }

    /// Your value under `key` in this organization's storage. Needs `storage`.
    pub fn storage_get(key: &str) -> Result<Option<String>, Error> {
        unsafe { rapport_storage_get(key.to_string()) }.map(|Json(v)| v)
    }

    /// Stores `value` under `key` (at most 200 characters; values up to 64 KiB; 1,000 keys).
    /// Event hooks only. Needs `storage`.
    pub fn storage_set(key: &str, value: &str) -> Result<(), Error> {
        unsafe { rapport_storage_set(key.to_string(), value.to_string()) }
    }

    /// Removes `key`. Event hooks only. Needs `storage`.
    pub fn storage_delete(key: &str) -> Result<(), Error> {
        unsafe { rapport_storage_delete(key.to_string()) }
    }

    /// A client of the calling organization, `None` if there is none with that id (or it
    /// belongs to another organization). Needs `read_records`.
    pub fn read_client(id: &str) -> Result<Option<ClientSnapshot>, Error> {
        unsafe { rapport_read_client(id.to_string()) }.map(|Json(v)| v)
    }

    /// A deal of the calling organization, like [`read_client`]. Needs `read_records`.
    pub fn read_opportunity(id: &str) -> Result<Option<DealSnapshot>, Error> {
        unsafe { rapport_read_opportunity(id.to_string()) }.map(|Json(v)| v)
    }

    /// Sends an HTTP request to a host your manifest lists in `allowed_hosts` and the
    /// admin approved; 5 s timeout, no redirects. Needs `http`.
    pub fn http(req: &HttpRequest) -> Result<HttpResponse, Error> {
        unsafe { rapport_http_request(Json(req.clone())) }.map(|Json(v)| v)
    }

    /// Raises one of the triggers your manifest declares about a client or a deal of the
    /// calling organization; the workflows an admin built on it start. Only from event hooks
    /// and `run_action`.
    pub fn emit(req: &EmitRequest) -> Result<(), Error> {
        unsafe { rapport_emit(Json(req.clone())) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_types_round_trip_as_json() {
        let r = ValidateResponse::Invalid {
            message: "bad".into(),
        };
        let text = serde_json::to_string(&r).unwrap_or_default();
        assert_eq!(text, r#"{"invalid":{"message":"bad"}}"#);
        assert_eq!(
            serde_json::from_str::<ValidateResponse>(&text).ok(),
            Some(r)
        );
        let req = ValidateRequest::new("npi", "1234567893");
        assert_eq!(
            serde_json::to_string(&req).unwrap_or_default(),
            r#"{"fieldType":"npi","value":"1234567893"}"#
        );
    }

    #[test]
    fn the_version_bytes_are_the_version() {
        let b: [u8; API_VERSION.len()] = bytes_of(API_VERSION);
        assert_eq!(&b, API_VERSION.as_bytes());
    }
}
