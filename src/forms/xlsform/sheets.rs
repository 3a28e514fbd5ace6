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

/// Why a workbook could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the workbook unpacks to more than {} MiB", MAX_UNPACKED / 1024 / 1024)]
    TooLarge,
    #[error("not a readable {0} workbook: {1}")]
    Unreadable(&'static str, String),
}

/// Reads the three sheets of `bytes`.
pub fn read(bytes: &[u8], kind: WorkbookKind) -> Result<Workbook, ReadError> {
    match kind {
        WorkbookKind::Xlsx => {
            check_unpacked_size(bytes)?;
            let workbook: Xlsx<_> = calamine::open_workbook_from_rs(Cursor::new(bytes))
                .map_err(|e: calamine::XlsxError| ReadError::Unreadable("xlsx", e.to_string()))?;
            sheets_of(workbook, "xlsx")
        }
        WorkbookKind::Xls => {
            let workbook: Xls<_> = calamine::open_workbook_from_rs(Cursor::new(bytes))
                .map_err(|e: calamine::XlsError| ReadError::Unreadable("xls", e.to_string()))?;
            sheets_of(workbook, "xls")
        }
    }
}

/// Decompresses every entry into nothing, counting: the zip's own size fields can lie.
fn check_unpacked_size(bytes: &[u8]) -> Result<(), ReadError> {
    let unreadable = |e: String| ReadError::Unreadable("xlsx", e);
    let mut archive =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| unreadable(e.to_string()))?;
    if archive.len() > MAX_ENTRIES {
        return Err(ReadError::TooLarge);
    }
    let mut total = 0u64;
    for index in 0..archive.len() {
        let entry = archive
            .by_index(index)
            .map_err(|e| unreadable(e.to_string()))?;
        let room = MAX_UNPACKED - total;
        let read = std::io::copy(&mut entry.take(room + 1), &mut std::io::sink())
            .map_err(|e| unreadable(e.to_string()))?;
        total += read;
        if total > MAX_UNPACKED {
            return Err(ReadError::TooLarge);
        }
    }
    Ok(())
}

fn sheets_of<RS: Read + std::io::Seek, R: Reader<RS>>(
    mut workbook: R,
    format: &'static str,
) -> Result<Workbook, ReadError>
where
    R::Error: std::fmt::Display,
{
    let mut found = Workbook::default();
    for name in workbook.sheet_names() {
        let slot = match name.trim().to_lowercase().as_str() {
            "survey" => &mut found.survey,
            "choices" => &mut found.choices,
            "settings" => &mut found.settings,
            _ => continue,
        };
        let range = workbook
            .worksheet_range(&name)
            .map_err(|e| ReadError::Unreadable(format, e.to_string()))?;
        *slot = Some(sheet_of(&name, &range));
    }
    Ok(found)
}

fn sheet_of(name: &str, range: &calamine::Range<Data>) -> Sheet {
    let mut sheet = Sheet {
        name: name.trim().to_lowercase(),
        ..Sheet::default()
    };
    let Some((first_row, first_column)) = range.start() else {
        return sheet;
    };
    let mut headers_seen = false;
    for (i, cells) in range.rows().enumerate() {
        // Columns left of the range's start are empty: keep every row aligned to column A.
        let texts: Vec<String> = std::iter::repeat_n(String::new(), first_column as usize)
            .chain(cells.iter().map(text_of))
            .collect();
        if texts.iter().all(String::is_empty) {
            continue;
        }
        let number = first_row + i as u32 + 1;
        if headers_seen {
            sheet.rows.push(Row {
                number,
                cells: texts,
            });
        } else {
            sheet.columns = texts;
            sheet.header_row = number;
            headers_seen = true;
        }
    }
    sheet
}

/// A cell as the text a person typed: whole numbers without `.0`, booleans as Excel shows them.
fn text_of(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(text) => text.trim().to_owned(),
        Data::Float(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{}", *n as i64),
        Data::Bool(true) => "TRUE".into(),
        Data::Bool(false) => "FALSE".into(),
        other => other.to_string().trim().to_owned(),
    }
}
