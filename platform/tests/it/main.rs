//! One integration-test binary for the host. Every test gets its own database;
//! the whole suite runs on SQLite, and on PostgreSQL when `TEST_DATABASE_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod attachments;
mod attack;
mod authz;
mod browser;
mod calendar;
mod cli;
mod clients;
mod clients_console;
mod console;
mod contract;
mod crawl;
mod dashboard;
mod duplicates;
mod exports;
mod imports;
mod interactions;
mod lookups;
mod mail;
mod migrations;
mod openapi;
mod plugins;
mod reports;
mod sales;
mod sales_console;
mod scores;
mod search;
mod segments;
mod signin;
mod support;
mod trust;
mod visibility;
mod webhooks;
mod workflows;
