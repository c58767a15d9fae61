//! Reading an uploaded spreadsheet export: the text encoding (UTF-8 with or without BOM,
//! else Windows-1252), the delimiter (comma, semicolon, tab or pipe), and RFC 4180 records
//! (quoted newlines and quotes). Structural problems refuse the whole file with the line
//! they are on, before a single row is imported.

use crate::error::AppError;

/// Largest upload through the console or the API, in bytes (the command line takes more).
pub const MAX_FILE: usize = 50 * 1024 * 1024;
/// Most rows in one file.
pub const MAX_ROWS: usize = 2_000_000;

/// A file's header and records, as text.
#[derive(Debug, Clone)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub delimiter: u8,
    pub encoding: &'static str,
}

fn refuse(message: impl Into<String>) -> AppError {
    AppError::Validation(
        "The file cannot be imported.".into(),
        vec![crate::error::FieldError::new("file", message)],
    )
}

/// Text from bytes: UTF-8 (a BOM dropped), else Windows-1252, which is what Excel on Windows
/// writes as "CSV". Binary content (NUL bytes) is refused.
pub fn decode(bytes: &[u8]) -> Result<(String, &'static str), AppError> {
    if bytes.is_empty() {
        return Err(refuse("The file is empty."));
    }
    let sample = &bytes[..bytes.len().min(64 * 1024)];
    if sample.contains(&0) {
        return Err(refuse(
            "This is not a text (CSV) file. Export the sheet as CSV, UTF-8 or Windows-1252.",
        ));
    }
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(body) {
        Ok(s) => Ok((s.to_string(), "UTF-8")),
        Err(_) => {
            let (text, _, _) = encoding_rs::WINDOWS_1252.decode(body);
            Ok((text.into_owned(), "Windows-1252"))
        }
    }
}

/// The delimiter of the header line: whichever of `,` `;` tab `|` occurs most outside quotes.
fn sniff(text: &str) -> u8 {
    let mut counts = [0usize; 4];
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            '\n' if !quoted => break,
            ',' if !quoted => counts[0] += 1,
            ';' if !quoted => counts[1] += 1,
            '\t' if !quoted => counts[2] += 1,
            '|' if !quoted => counts[3] += 1,
            _ => {}
        }
    }
    let best = (0..4).max_by_key(|i| (counts[*i], 4 - i)).unwrap_or(0);
    [b',', b';', b'\t', b'|'][best]
}

/// A reader over the decoded text and its checked header line.
fn open(text: &str, delimiter: u8) -> Result<(csv::Reader<&[u8]>, Vec<String>), AppError> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| refuse(format!("The header line cannot be read: {e}")))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if headers.iter().all(|h| h.is_empty()) {
        return Err(refuse("The first line must name the columns."));
    }
    if headers.len() < 2 && headers.iter().any(|h| h.len() > 200) {
        return Err(refuse(
            "No columns found: this does not look like a CSV export.",
        ));
    }
    Ok((reader, headers))
}

/// The refusal for a record that cannot be read, with its line (`line` when the error has
/// no position).
fn unreadable(e: csv::Error, line: u64) -> AppError {
    let line = e.position().map(|p| p.line()).unwrap_or(line);
    let why = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("it has {len} fields where the header has {expected_len} (an unclosed quote?)")
        }
        _ => e.to_string(),
    };
    refuse(format!("Line {line} cannot be read: {why}."))
}

/// Parses the whole file; any malformed record refuses it.
pub fn parse(bytes: &[u8]) -> Result<Table, AppError> {
    let (text, encoding) = decode(bytes)?;
    let delimiter = sniff(&text);
    let (mut reader, headers) = open(&text, delimiter)?;
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| unreadable(e, i as u64 + 2))?;
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        rows.push(record.iter().map(|f| f.to_string()).collect());
        if rows.len() > MAX_ROWS {
            return Err(refuse(format!(
                "The file has more than {MAX_ROWS} rows; split it."
            )));
        }
    }
    Ok(Table {
        headers,
        rows,
        delimiter,
        encoding,
    })
}

/// Checks every record of `bytes` and writes them, decoded, to `out` as comma-separated
/// UTF-8. Answers the headers and the number of rows; a malformed record refuses the file.
pub fn copy_checked(
    bytes: &[u8],
    out: impl std::io::Write,
) -> Result<(Vec<String>, usize), AppError> {
    if bytes.starts_with(b"PK\x03\x04") {
        return copy_workbook(bytes, out);
    }
    let (text, _) = decode(bytes)?;
    let delimiter = sniff(&text);
    let (mut reader, headers) = open(&text, delimiter)?;
    let mut w = csv::Writer::from_writer(out);
    let io = |e: csv::Error| AppError::Internal(format!("import copy: {e}"));
    w.write_record(&headers).map_err(io)?;
    let mut n = 0usize;
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(unreadable(e, line)),
        }
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        w.write_record(&record).map_err(io)?;
        n += 1;
        if n > MAX_ROWS {
            return Err(refuse(format!(
                "The file has more than {MAX_ROWS} rows; split it."
            )));
        }
    }
    w.flush()
        .map_err(|e| AppError::Internal(format!("import copy: {e}")))?;
    Ok((headers, n))
}

/// The first sheet of an .xlsx workbook, as the checked CSV copy.
fn copy_workbook(bytes: &[u8], out: impl std::io::Write) -> Result<(Vec<String>, usize), AppError> {
    use calamine::Reader;
    let mut book = calamine::Xlsx::new(std::io::Cursor::new(bytes)).map_err(|e| {
        refuse(format!(
            "This looks like a zip file but not an Excel workbook (.xlsx): {e}"
        ))
    })?;
    let sheet = book
        .worksheet_range_at(0)
        .ok_or_else(|| refuse("The workbook has no sheet."))?
        .map_err(|e| refuse(format!("The first sheet cannot be read: {e}")))?;
    let mut rows = sheet.rows();
    let headers: Vec<String> = rows
        .next()
        .ok_or_else(|| refuse("The first sheet is empty."))?
        .iter()
        .map(|c| c.to_string().trim().to_string())
        .collect();
    if headers.iter().all(|h| h.is_empty()) {
        return Err(refuse("The first row must name the columns."));
    }
    let mut w = csv::Writer::from_writer(out);
    let io = |e: csv::Error| AppError::Internal(format!("import copy: {e}"));
    w.write_record(&headers).map_err(io)?;
    let mut n = 0;
    for row in rows {
        let cells: Vec<String> = (0..headers.len())
            .map(|i| row.get(i).map(|c| c.to_string()).unwrap_or_default())
            .collect();
        if cells.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        w.write_record(&cells).map_err(io)?;
        n += 1;
        if n > MAX_ROWS {
            return Err(refuse(format!(
                "The sheet has more than {MAX_ROWS} rows; split it."
            )));
        }
    }
    w.flush()
        .map_err(|e| AppError::Internal(format!("import copy: {e}")))?;
    Ok((headers, n))
}

/// A cell a spreadsheet would run as a formula when the data goes back out (`=`, `+`, `-`,
/// `@`, tab or carriage return first), unless it is a plain number or phone number.
pub fn looks_like_formula(cell: &str) -> bool {
    let t = cell.trim_start();
    match t.chars().next() {
        Some('=') | Some('@') => true,
        Some('+') | Some('-') => !t[1..]
            .chars()
            .all(|c| c.is_ascii_digit() || " ().-/".contains(c)),
        Some('\t') | Some('\r') => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_spreadsheets_write() {
        let t = parse(b"\xEF\xBB\xBFName;City\n\"Smith; J\";\"Line one\nline two\"\n").unwrap();
        assert_eq!(t.delimiter, b';');
        assert_eq!(t.headers, vec!["Name", "City"]);
        assert_eq!(t.rows, vec![vec!["Smith; J", "Line one\nline two"]]);
        let latin = parse(b"Name,City\nJos\xe9,K\xf6ln\n").unwrap();
        assert_eq!(latin.encoding, "Windows-1252");
        assert_eq!(latin.rows[0], vec!["José", "Köln"]);
    }

    #[test]
    fn refuses_broken_files_with_the_line() {
        let e = parse(b"a,b\n1,2\n\"3,4\n5,6\n").unwrap_err().to_string();
        assert!(matches!(
            parse(b"a,b\n1,2\n\"3,4\n5,6\n"),
            Err(AppError::Validation(..))
        ));
        let _ = e;
        let junk = parse(&[0u8, 159, 146, 150, 0, 1, 2]).unwrap_err();
        assert!(
            matches!(junk, AppError::Validation(_, ref f) if f[0].message.contains("not a text"))
        );
    }

    #[test]
    fn formulas_are_spotted_but_phone_numbers_are_not() {
        assert!(looks_like_formula("=HYPERLINK(\"http://x\",\"y\")"));
        assert!(looks_like_formula("@SUM(A1)"));
        assert!(looks_like_formula("+cmd|' /C calc'!A0"));
        assert!(!looks_like_formula("+1 (555) 255-3126"));
        assert!(!looks_like_formula("-12.50"));
        assert!(!looks_like_formula("Ada"));
    }
}
