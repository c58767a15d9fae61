//! Rapport: a self-hosted, plugin-extensible CRM. This crate is the host: the
//! persistence layer, the domain services, authentication and authorization, the
//! JSON API and the server-rendered console. See `platform/ARCHITECTURE.md`.

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod integrations;
pub mod jobs;
pub mod locale;
pub mod ops;
pub mod pdf;
pub mod plugins;
pub mod search;
pub mod seed;
pub mod state;
pub mod web;
