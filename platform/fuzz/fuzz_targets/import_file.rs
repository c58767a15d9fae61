//! Any bytes a user can upload as an import (CSV in any encoding, or an .xlsx workbook)
//! must end in rows or a refusal: never a panic, never an allocation beyond the libFuzzer
//! limits `.ci/run` sets (a declared `XFD1048576` once asked for 550 GB).
#![no_main]

use libfuzzer_sys::fuzz_target;

/// The platform's error type, reduced to what the readers construct.
mod error {
    #[derive(Debug)]
    #[allow(dead_code)]
    pub enum AppError {
        Validation(String, Vec<FieldError>),
        Internal(String),
    }

    #[derive(Debug)]
    #[allow(dead_code)]
    pub struct FieldError {
        pub field: String,
        pub message: String,
    }

    impl FieldError {
        pub fn new(field: &str, message: impl Into<String>) -> Self {
            Self {
                field: field.into(),
                message: message.into(),
            }
        }
    }
}

#[path = "../../src/domain/imports/read.rs"]
#[allow(dead_code)]
mod read;

fuzz_target!(|data: &[u8]| {
    let _ = read::copy_checked(data, std::io::sink());
    if !data.starts_with(b"PK\x03\x04") {
        let _ = read::parse(data);
    }
});
