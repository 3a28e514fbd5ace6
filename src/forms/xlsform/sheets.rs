//! Reading a workbook's `survey`, `choices` and `settings` sheets into rows of text, with the
//! Excel row numbers that problems are reported at. `.xlsx` is a zip of XML: its decompressed size
//! is bounded before anything parses it, so a small upload cannot expand into gigabytes.

use std::io::{Cursor, Read};

use calamine::{Data, Reader, Xls, Xlsx};

/// The decompressed bytes an `.xlsx` may hold: a questionnaire of thousands of rows and several
/// languages is a few megabytes.
pub const MAX_UNPACKED: u64 = 64 * 1024 * 1024;
/// Entries in an `.xlsx`; a workbook of three sheets has about a dozen.
const MAX_ENTRIES: usize = 1_000;

/// Which file format the bytes are in, as the request's `Content-Type` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkbookKind {
    Xlsx,
    Xls,
}

impl WorkbookKind {
    pub const XLSX_MEDIA_TYPE: &'static str =
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
    pub const XLS_MEDIA_TYPE: &'static str = "application/vnd.ms-excel";

    pub fn of_media_type(media_type: &str) -> Option<Self> {
        match media_type {
            Self::XLSX_MEDIA_TYPE => Some(Self::Xlsx),
            Self::XLS_MEDIA_TYPE => Some(Self::Xls),
            _ => None,
        }
    }

    pub fn of_file_name(name: &str) -> Option<Self> {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".xlsx") {
            Some(Self::Xlsx)
        } else if lower.ends_with(".xls") {
            Some(Self::Xls)
        } else {
            None
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            Self::Xlsx => Self::XLSX_MEDIA_TYPE,
            Self::Xls => Self::XLS_MEDIA_TYPE,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Xlsx => "xlsx",
            Self::Xls => "xls",
        }
    }
}

/// One sheet: its column headers (trimmed, as written) and its non-empty rows.
#[derive(Clone, Debug, Default)]
pub struct Sheet {
    pub name: String,
    pub columns: Vec<String>,
    /// The Excel row number of the header row (1-based).
    pub header_row: u32,
    pub rows: Vec<Row>,
}

/// One row: its Excel row number and one text per column (empty when the cell is).
#[derive(Clone, Debug, Default)]
pub struct Row {
    pub number: u32,
    pub cells: Vec<String>,
}

impl Sheet {
    /// A sheet from literal rows, the first being the headers (for tests).
    #[cfg(test)]
    pub fn from_rows(name: &str, rows: &[&[&str]]) -> Self {
        let mut sheet = Sheet {
            name: name.to_owned(),
            header_row: 1,
            ..Sheet::default()
        };
        for (i, row) in rows.iter().enumerate() {
            let cells: Vec<String> = row.iter().map(|c| c.trim().to_owned()).collect();
            if i == 0 {
                sheet.columns = cells;
            } else if cells.iter().any(|c| !c.is_empty()) {
                sheet.rows.push(Row {
                    number: i as u32 + 1,
                    cells,
                });
            }
        }
        sheet
    }
}

impl Row {
    /// The text in column `index` (empty past the row's end).
    pub fn cell(&self, index: usize) -> &str {
        self.cells.get(index).map_or("", String::as_str)
    }
}

/// The sheets of a workbook that XLSForm uses, by lower-case name.
#[derive(Clone, Debug, Default)]
pub struct Workbook {
    pub survey: Option<Sheet>,
    pub choices: Option<Sheet>,
    pub settings: Option<Sheet>,
}

/// Rows and columns a sheet may reach (0-based positions beyond are refused): a questionnaire
/// with a county's villages as choices is a few thousand rows and a few dozen columns. A cell far
/// away would otherwise make the reader allocate the whole rectangle up to it.
const MAX_ROWS: u32 = 100_000;
const MAX_COLUMNS: u32 = 1_000;

/// XLSForm sheets this server does not map: refused rather than ignored. Other sheets (notes,
/// instructions) are not part of the form and are left alone.
const UNMAPPED_SHEETS: [&str; 3] = ["entities", "external_choices", "osm"];

/// Why a workbook could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the workbook unpacks to more than {} MiB", MAX_UNPACKED / 1024 / 1024)]
    TooLarge,
    #[error("the sheet '{0}' reaches beyond row {MAX_ROWS} or column {MAX_COLUMNS}")]
    TooFar(String),
    #[error("not a readable {0} workbook: {1}")]
    Unreadable(&'static str, String),
    #[error("the workbook has two sheets named '{0}'")]
    TwoSheets(String),
    #[error("the '{0}' sheet is not one this server maps; remove it")]
    UnmappedSheet(String),
}

/// Reads the three sheets of `bytes`.
pub fn read(bytes: &[u8], kind: WorkbookKind) -> Result<Workbook, ReadError> {
    let mut found = Workbook::default();
    match kind {
        WorkbookKind::Xlsx => {
            check_unpacked(bytes)?;
            let unreadable = |e: calamine::XlsxError| ReadError::Unreadable("xlsx", e.to_string());
            let mut workbook: Xlsx<_> =
                calamine::open_workbook_from_rs(Cursor::new(bytes)).map_err(unreadable)?;
            for name in workbook.sheet_names() {
                let Some(slot) = slot(&mut found, &name)? else {
                    continue;
                };
                let mut reader = workbook.worksheet_cells_reader(&name).map_err(unreadable)?;
                let mut cells = Vec::new();
                while let Some(cell) = reader.next_cell().map_err(unreadable)? {
                    let (row, column) = cell.get_position();
                    if row >= MAX_ROWS || column >= MAX_COLUMNS {
                        return Err(ReadError::TooFar(name));
                    }
                    let text = text_of(&Data::from(cell.get_value().clone()));
                    if !text.is_empty() {
                        cells.push((row, column, text));
                    }
                }
                *slot = Some(sheet_of(&name, cells));
            }
        }
        WorkbookKind::Xls => {
            check_xls_dimensions(bytes)?;
            let unreadable = |e: calamine::XlsError| ReadError::Unreadable("xls", e.to_string());
            let mut workbook: Xls<_> =
                calamine::open_workbook_from_rs(Cursor::new(bytes)).map_err(unreadable)?;
            for name in workbook.sheet_names() {
                let Some(slot) = slot(&mut found, &name)? else {
                    continue;
                };
                // An .xls sheet is at most 65,536 × 256 cells: the format bounds the rectangle.
                let range = workbook.worksheet_range(&name).map_err(unreadable)?;
                let (top, left) = range.start().unwrap_or_default();
                let mut cells = Vec::new();
                for (row, column, value) in range.used_cells() {
                    let (row, column) = (top + row as u32, left + column as u32);
                    if row >= MAX_ROWS || column >= MAX_COLUMNS {
                        return Err(ReadError::TooFar(name));
                    }
                    let text = text_of(value);
                    if !text.is_empty() {
                        cells.push((row, column, text));
                    }
                }
                *slot = Some(sheet_of(&name, cells));
            }
        }
    }
    Ok(found)
}

/// Where a sheet named `name` goes: `None` for a sheet that is not part of the form.
fn slot<'w>(
    found: &'w mut Workbook,
    name: &str,
) -> Result<Option<&'w mut Option<Sheet>>, ReadError> {
    let lower = name.trim().to_lowercase();
    let slot = match lower.as_str() {
        "survey" => &mut found.survey,
        "choices" => &mut found.choices,
        "settings" => &mut found.settings,
        other if UNMAPPED_SHEETS.contains(&other) => return Err(ReadError::UnmappedSheet(lower)),
        _ => return Ok(None),
    };
    if slot.is_some() {
        return Err(ReadError::TwoSheets(lower));
    }
    Ok(Some(slot))
}

/// Decompresses every entry into nothing, counting: the zip's own size fields can lie. The
/// shared strings' declared count is checked against their size too (the reader reserves it).
fn check_unpacked(bytes: &[u8]) -> Result<(), ReadError> {
    let unreadable = |e: String| ReadError::Unreadable("xlsx", e);
    let mut archive =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| unreadable(e.to_string()))?;
    if archive.len() > MAX_ENTRIES {
        return Err(ReadError::TooLarge);
    }
    let mut total = 0u64;
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .map_err(|e| unreadable(e.to_string()))?;
        let shared_strings = entry
            .name()
            .is_ok_and(|name| name.eq_ignore_ascii_case("xl/sharedStrings.xml"));
        let room = MAX_UNPACKED - total;
        let mut head = Vec::new();
        if shared_strings {
            (&mut entry)
                .take(4096)
                .read_to_end(&mut head)
                .map_err(|e| unreadable(e.to_string()))?;
        }
        let rest = std::io::copy(&mut entry.take(room + 1), &mut std::io::sink())
            .map_err(|e| unreadable(e.to_string()))?;
        let size = head.len() as u64 + rest;
        total += size;
        if total > MAX_UNPACKED {
            return Err(ReadError::TooLarge);
        }
        // `<si><t/></si>` is the smallest string there is: 12 bytes.
        if declared_count(&head).is_some_and(|count| count.saturating_mul(12) > size) {
            return Err(unreadable(
                "its shared strings declare more strings than they hold".into(),
            ));
        }
    }
    Ok(())
}

/// The largest `count`/`uniqueCount` the start of the shared strings declare.
fn declared_count(head: &[u8]) -> Option<u64> {
    let text = String::from_utf8_lossy(head);
    ["count=\"", "uniqueCount=\""]
        .iter()
        .filter_map(|attribute| {
            let after = text.split_once(attribute)?.1;
            let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
            Some(digits.parse::<u64>().unwrap_or(u64::MAX))
        })
        .max()
}

/// An .xls sheet's DIMENSIONS record (BIFF8: id 0x0200, 14 bytes) makes the reader reserve
/// rows × columns cells before reading any: one claiming more than the format holds is refused.
fn check_xls_dimensions(bytes: &[u8]) -> Result<(), ReadError> {
    const HEADER: [u8; 4] = [0x00, 0x02, 0x0E, 0x00];
    for at in bytes
        .windows(HEADER.len())
        .enumerate()
        .filter(|(_, w)| *w == HEADER)
        .map(|(i, _)| i + HEADER.len())
    {
        let Some(record) = bytes.get(at..at + 12) else {
            continue;
        };
        let u32_at =
            |i: usize| u32::from_le_bytes([record[i], record[i + 1], record[i + 2], record[i + 3]]);
        let u16_at = |i: usize| u16::from_le_bytes([record[i], record[i + 1]]);
        let (first_row, last_row) = (u32_at(0), u32_at(4));
        let (first_column, last_column) = (u16_at(8), u16_at(10));
        if last_row > 65_536
            || last_column > 256
            || first_row > last_row
            || first_column > last_column
        {
            return Err(ReadError::Unreadable(
                "xls",
                "a sheet declares more cells than an .xls holds".into(),
            ));
        }
    }
    Ok(())
}

/// A sheet from its non-empty cells: the first row with any is the header row.
fn sheet_of(name: &str, mut cells: Vec<(u32, u32, String)>) -> Sheet {
    cells.sort_by_key(|(row, column, _)| (*row, *column));
    let mut sheet = Sheet {
        name: name.trim().to_lowercase(),
        ..Sheet::default()
    };
    let mut rows: Vec<Row> = Vec::new();
    for (row, column, text) in cells {
        let number = row + 1;
        if rows.last().is_none_or(|r| r.number != number) {
            rows.push(Row {
                number,
                cells: Vec::new(),
            });
        }
        if let Some(current) = rows.last_mut() {
            current.cells.resize(column as usize, String::new());
            current.cells.push(text);
        }
    }
    let mut rows = rows.into_iter();
    if let Some(header) = rows.next() {
        sheet.header_row = header.number;
        sheet.columns = header.cells;
    }
    sheet.rows = rows.collect();
    sheet
}

/// A cell as the text a person typed: whole numbers without `.0`, booleans as Excel shows them,
/// dates and times in ISO 8601.
fn text_of(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(text) => text.trim().to_owned(),
        Data::Float(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{}", *n as i64),
        Data::Bool(true) => "TRUE".into(),
        Data::Bool(false) => "FALSE".into(),
        Data::DateTime(at) if !at.is_duration() => {
            let (year, month, day, hour, minute, second, _) = at.to_ymd_hms_milli();
            let date = format!("{year:04}-{month:02}-{day:02}");
            let time = format!("{hour:02}:{minute:02}:{second:02}");
            match (at.as_f64() < 1.0, (hour, minute, second) == (0, 0, 0)) {
                (true, _) => time,
                (false, true) => date,
                (false, false) => format!("{date}T{time}"),
            }
        }
        other => other.to_string().trim().to_owned(),
    }
}
