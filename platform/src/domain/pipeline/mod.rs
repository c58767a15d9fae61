//! Sales: pipelines and their stages, opportunities (deals) with stage history,
//! loss reasons, quotes and contracts, and the forecast and performance figures.

pub mod analytics;
pub mod contracts;
pub mod model;
pub mod quotes;
pub mod rollup;
pub mod service;
pub mod store;

pub use model::*;
