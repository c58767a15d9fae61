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

/// Most bytes a workbook's parts may inflate to in all (an honest 50 MB upload stays
/// well below; a zip bomb is refused before any of it is parsed).
pub const MAX_WORKBOOK_BYTES: u64 = 256 * 1024 * 1024;
/// Most bytes of the shared-strings part, which the reader keeps in memory.
const MAX_SHARED_STRINGS: u64 = 64 * 1024 * 1024;
/// Most parts in a workbook.
const MAX_WORKBOOK_PARTS: usize = 10_000;
/// Most columns a sheet may have.
pub const MAX_COLUMNS: usize = 1_000;

/// Inflates every part of the zip once, counting what really comes out (declared sizes
/// can lie), and refuses the file as soon as the budget is spent.
fn check_workbook_size(bytes: &[u8], limit: u64) -> Result<(), AppError> {
    use std::io::Read;
    let not_xlsx = |e: zip::result::ZipError| {
        refuse(format!(
            "This looks like a zip file but not an Excel workbook (.xlsx): {e}"
        ))
    };
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(not_xlsx)?;
    if zip.len() > MAX_WORKBOOK_PARTS {
        return Err(refuse(format!(
            "The workbook has more than {MAX_WORKBOOK_PARTS} parts; save the sheet as CSV."
        )));
    }
    let too_big = || {
        refuse(format!(
            "The workbook unpacks to more than {} MB; save the sheet as CSV or split it.",
            limit / 1024 / 1024
        ))
    };
    let mut total = 0u64;
    for i in 0..zip.len() {
        let mut part = zip.by_index(i).map_err(not_xlsx)?;
        let budget = if part.name().is_ok_and(|n| n.ends_with("sharedStrings.xml")) {
            MAX_SHARED_STRINGS.min(limit - total)
        } else {
            limit - total
        };
        let n = std::io::copy(&mut (&mut part).take(budget + 1), &mut std::io::sink())
            .map_err(|e| refuse(format!("The workbook is damaged: {e}")))?;
        if n > budget {
            return Err(too_big());
        }
        total += n;
    }
    Ok(())
}

/// The first sheet of an .xlsx workbook, as the checked CSV copy. The sheet is read cell
/// by cell (never as a rectangle sized by what the file declares: `XFD1048576` would ask
/// for 550 GB), one row in memory at a time.
fn copy_workbook(bytes: &[u8], out: impl std::io::Write) -> Result<(Vec<String>, usize), AppError> {
    use calamine::Reader;
    check_workbook_size(bytes, MAX_WORKBOOK_BYTES)?;
    let mut book = calamine::Xlsx::new(std::io::Cursor::new(bytes)).map_err(|e| {
        refuse(format!(
            "This looks like a zip file but not an Excel workbook (.xlsx): {e}"
        ))
    })?;
    let first = book
        .sheet_names()
        .into_iter()
        .next()
        .ok_or_else(|| refuse("The workbook has no sheet."))?;
    let unreadable =
        |e: calamine::XlsxError| refuse(format!("The first sheet cannot be read: {e}"));
    let mut cells = book.worksheet_cells_reader(&first).map_err(unreadable)?;
    let beyond = |(r, c): (u32, u32)| {
        refuse(format!(
            "The sheet reaches cell row {}, column {}; Rapport reads at most {MAX_ROWS} rows and {MAX_COLUMNS} columns.",
            r as u64 + 1,
            c as u64 + 1
        ))
    };
    let declared = cells.dimensions().end;
    if declared.0 as usize > MAX_ROWS || declared.1 as usize >= MAX_COLUMNS {
        return Err(beyond(declared));
    }
    let io = |e: csv::Error| AppError::Internal(format!("import copy: {e}"));
    let out_of_order = || refuse("The sheet's cells are out of order; save it again from Excel.");
    let mut w = csv::Writer::from_writer(out);
    // The header row is the first row with a cell; that cell's column is the first column.
    let mut start: Option<(u32, u32)> = None;
    let mut building: Vec<String> = Vec::new();
    let mut headers: Option<Vec<String>> = None;
    let mut current: Option<(u32, Vec<String>)> = None;
    let mut n = 0usize;
    while let Some(cell) = cells.next_cell().map_err(unreadable)? {
        let (r, c) = cell.get_position();
        if r as usize > MAX_ROWS || c as usize >= MAX_COLUMNS {
            return Err(beyond((r, c)));
        }
        let value = calamine::Data::from(cell.get_value().clone()).to_string();
        let (header_row, offset) = *start.get_or_insert((r, c));
        let Some(col) = c.checked_sub(offset).map(|x| x as usize) else {
            continue;
        };
        let Some(hs) = &headers else {
            if r == header_row {
                if col >= MAX_COLUMNS {
                    return Err(refuse(format!(
                        "The sheet has more than {MAX_COLUMNS} columns."
                    )));
                }
                if building.len() <= col {
                    building.resize(col + 1, String::new());
                }
                building[col] = value.trim().to_string();
                continue;
            }
            if r < header_row {
                return Err(out_of_order());
            }
            let hs = finish_headers(std::mem::take(&mut building))?;
            w.write_record(&hs).map_err(io)?;
            let width = hs.len();
            headers = Some(hs);
            current = Some((r, vec![String::new(); width]));
            if let Some((_, row)) = &mut current {
                if let Some(slot) = row.get_mut(col) {
                    *slot = value;
                }
            }
            continue;
        };
        match &current {
            Some((cr, _)) if *cr == r => {}
            Some((cr, _)) if r < *cr => return Err(out_of_order()),
            _ => {
                if let Some((_, done)) = current.take() {
                    write_row(&mut w, done, &mut n)?;
                }
                current = Some((r, vec![String::new(); hs.len()]));
            }
        }
        if let Some((_, row)) = &mut current {
            if let Some(slot) = row.get_mut(col) {
                *slot = value;
            }
        }
    }
    let headers = match headers {
        Some(h) => h,
        None if start.is_none() => return Err(refuse("The first sheet is empty.")),
        None => {
            let h = finish_headers(building)?;
            w.write_record(&h).map_err(io)?;
            h
        }
    };
    if let Some((_, done)) = current.take() {
        write_row(&mut w, done, &mut n)?;
    }
    w.flush()
        .map_err(|e| AppError::Internal(format!("import copy: {e}")))?;
    Ok((headers, n))
}

fn write_row<W: std::io::Write>(
    w: &mut csv::Writer<W>,
    row: Vec<String>,
    n: &mut usize,
) -> Result<(), AppError> {
    if row.iter().all(|c| c.trim().is_empty()) {
        return Ok(());
    }
    w.write_record(&row)
        .map_err(|e| AppError::Internal(format!("import copy: {e}")))?;
    *n += 1;
    if *n > MAX_ROWS {
        return Err(refuse(format!(
            "The sheet has more than {MAX_ROWS} rows; split it."
        )));
    }
    Ok(())
}

fn finish_headers(row: Vec<String>) -> Result<Vec<String>, AppError> {
    if row.iter().all(|h| h.is_empty()) {
        return Err(refuse("The first row must name the columns."));
    }
    Ok(row)
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

    fn workbook(fill: impl FnOnce(&mut rust_xlsxwriter::Worksheet)) -> Vec<u8> {
        let mut book = rust_xlsxwriter::Workbook::new();
        fill(book.add_worksheet());
        book.save_to_buffer().unwrap()
    }

    fn copy(bytes: &[u8]) -> Result<(Vec<String>, usize, String), AppError> {
        let mut out = Vec::new();
        let (h, n) = copy_checked(bytes, &mut out)?;
        Ok((h, n, String::from_utf8(out).unwrap()))
    }

    #[test]
    fn a_workbook_is_read_row_by_row_with_gaps() {
        let bytes = workbook(|s| {
            s.write(0, 0, "Name").unwrap();
            s.write(0, 1, "Phone").unwrap();
            s.write(1, 0, "Ada").unwrap();
            s.write(4, 1, "+1 555 0100").unwrap();
            s.write(5, 0, 42).unwrap();
            s.write(5, 7, "beyond the header").unwrap();
        });
        let (headers, n, csv) = copy(&bytes).unwrap();
        assert_eq!(headers, vec!["Name", "Phone"]);
        assert_eq!(n, 3);
        assert_eq!(csv, "Name,Phone\nAda,\n,+1 555 0100\n42,\n");
    }

    #[test]
    fn a_cell_at_the_sheets_far_corner_is_refused_not_allocated() {
        // The 1.6 KB file that made the reader ask for 550 GB.
        let bytes = workbook(|s| {
            s.write(0, 0, "Name").unwrap();
            s.write(1_048_575, 16_383, "x").unwrap();
        });
        assert!(bytes.len() < 8 * 1024);
        let e = copy(&bytes).unwrap_err();
        assert!(
            matches!(&e, AppError::Validation(_, f) if f[0].message.contains("at most")),
            "{e:?}"
        );
    }

    #[test]
    fn a_zip_bomb_is_refused_before_it_is_parsed() {
        use std::io::Write;
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("xl/worksheets/sheet1.xml", opts).unwrap();
        let zeros = vec![b' '; 1024 * 1024];
        for _ in 0..3 {
            zip.write_all(&zeros).unwrap();
        }
        let bytes = zip.finish().unwrap().into_inner();
        assert!(bytes.len() < 64 * 1024);
        let e = check_workbook_size(&bytes, 2 * 1024 * 1024).unwrap_err();
        assert!(
            matches!(&e, AppError::Validation(_, f) if f[0].message.contains("unpacks to more than 2 MB"))
        );
        assert!(check_workbook_size(&bytes, 4 * 1024 * 1024).is_ok());
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
