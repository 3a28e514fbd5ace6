//! Where rows go: one table as CSV or NDJSON, or every file of the zip.

use std::fs::File;
use std::io::{self, BufRead, BufWriter, Read, Seek, Write};

use serde_json::{Map, Value};
use zip::write::SimpleFileOptions;

use super::clean::neutralize_formula;
use super::{Cell, Export, MAIN_SYSTEM};
use crate::store::{Blobs, Store};

/// One line of `cleaning_log.csv`.
#[derive(Debug)]
pub struct LogLine {
    pub submission_id: String,
    pub table: String,
    pub row_key: String,
    pub column: String,
    pub action: &'static str,
    pub before: String,
    pub after: String,
    pub reason: String,
}

const LOG_HEADERS: [&str; 8] = [
    "submission_id",
    "table",
    "row_key",
    "column",
    "action",
    "before",
    "after",
    "reason",
];

/// What an export wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// Data rows, over every table written.
    pub rows: u64,
    /// Stored submissions that could not be read and were left out (`dropped_unreadable`).
    pub unreadable: u64,
}

/// The text form of a single table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// RFC 4180, CRLF, UTF-8 (with a byte-order mark unless `bom=false`).
    Csv,
    /// One JSON object per line, values typed.
    Ndjson,
}

/// What pass 2 writes into.
pub trait Sink {
    fn wants(&self, table: usize) -> bool;
    fn wants_log(&self) -> bool;
    fn row(&mut self, table: usize, cells: Vec<Cell>) -> io::Result<()>;
    fn log(&mut self, line: LogLine) -> io::Result<()>;
    /// A file an exported answer names, kept on the server (only sinks that want media get these).
    fn media(&mut self, _file: MediaFile) -> io::Result<()> {
        Ok(())
    }
    /// A registered person (their key) a kept row reached.
    fn reached(&mut self, _person: String) -> io::Result<()> {
        Ok(())
    }
}

/// A kept file an exported answer names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaFile {
    pub submission: uuid::Uuid,
    /// The name to save it under (`attachments::saved_name`).
    pub name: String,
    pub sha256: String,
}

/// The one CSV writer for every CSV the server emits (tables, codebook, cleaning log,
/// indicators): RFC 4180 with CRLF, optional BOM, headers and text cells made formula-inert.
pub(crate) struct CsvOut<W: Write> {
    csv: csv::Writer<W>,
}

impl<W: Write> CsvOut<W> {
    pub(crate) fn new(mut out: W, bom: bool, headers: &[String]) -> io::Result<Self> {
        if bom {
            out.write_all("\u{FEFF}".as_bytes())?;
        }
        let mut csv = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(out);
        csv.write_record(headers.iter().map(|h| neutralize_formula(h).into_owned()))?;
        Ok(Self { csv })
    }

    pub(crate) fn cells(&mut self, cells: &[Cell]) -> io::Result<()> {
        for cell in cells {
            match cell {
                Cell::Empty => self.csv.write_field("")?,
                Cell::Text(text) => self.csv.write_field(neutralize_formula(text).as_bytes())?,
                Cell::Number(n) => self.csv.write_field(n.to_string())?,
                Cell::Bool(b) => self.csv.write_field(if *b { "true" } else { "false" })?,
            }
        }
        self.csv.write_record(None::<&[u8]>)?;
        Ok(())
    }

    fn texts(&mut self, fields: &[&str]) -> io::Result<()> {
        self.csv
            .write_record(fields.iter().map(|f| neutralize_formula(f).into_owned()))?;
        Ok(())
    }

    pub(crate) fn finish(self) -> io::Result<W> {
        self.csv.into_inner().map_err(|e| e.into_error())
    }
}

/// One table, streamed.
struct TableSink<W: Write> {
    table: usize,
    out: TableOut<W>,
}

enum TableOut<W: Write> {
    Csv(Box<CsvOut<W>>),
    Ndjson { out: W, headers: Vec<String> },
}

impl<W: Write> Sink for TableSink<W> {
    fn wants(&self, table: usize) -> bool {
        table == self.table
    }
    fn wants_log(&self) -> bool {
        false
    }
    fn row(&mut self, _table: usize, cells: Vec<Cell>) -> io::Result<()> {
        match &mut self.out {
            TableOut::Csv(csv) => csv.cells(&cells),
            TableOut::Ndjson { out, headers } => {
                let object: Map<String, Value> = headers
                    .iter()
                    .cloned()
                    .zip(cells.into_iter().map(|cell| match cell {
                        Cell::Empty => Value::Null,
                        Cell::Text(t) => Value::String(t),
                        Cell::Number(n) => Value::Number(n),
                        Cell::Bool(b) => Value::Bool(b),
                    }))
                    .collect();
                serde_json::to_writer(&mut *out, &object)?;
                out.write_all(b"\n")
            }
        }
    }
    fn log(&mut self, _line: LogLine) -> io::Result<()> {
        Ok(())
    }
}

/// Streams one table of `export` to `out`.
pub fn write_table(
    export: &Export,
    store: &Store,
    table: usize,
    format: Format,
    out: impl Write,
) -> io::Result<Written> {
    let headers = export.headers(table);
    let out = match format {
        Format::Csv => TableOut::Csv(Box::new(CsvOut::new(out, export.options.bom, &headers)?)),
        Format::Ndjson => TableOut::Ndjson { out, headers },
    };
    let mut sink = TableSink { table, out };
    let written = export.emit(store, &mut sink)?;
    match sink.out {
        TableOut::Csv(csv) => csv.finish()?.flush()?,
        TableOut::Ndjson { mut out, .. } => out.flush()?,
    }
    Ok(written)
}

/// Every table and the log into temporary files, so the zip can take them one after another.
struct ZipSink {
    tables: Vec<CsvOut<BufWriter<File>>>,
    log: CsvOut<BufWriter<File>>,
    /// The files to add, spooled to disk (a county has tens of thousands): per file the
    /// submission's 16 bytes, the 64 hex digits of its hash, its name and a NUL (names hold none).
    media: Option<BufWriter<File>>,
}

impl Sink for ZipSink {
    fn wants(&self, _table: usize) -> bool {
        true
    }
    fn wants_log(&self) -> bool {
        true
    }
    fn row(&mut self, table: usize, cells: Vec<Cell>) -> io::Result<()> {
        self.tables[table].cells(&cells)
    }
    fn log(&mut self, line: LogLine) -> io::Result<()> {
        sink_log(&mut self.log, line)
    }
    fn media(&mut self, file: MediaFile) -> io::Result<()> {
        let Some(spool) = self.media.as_mut() else {
            return Ok(());
        };
        spool.write_all(file.submission.as_bytes())?;
        spool.write_all(file.sha256.as_bytes())?;
        spool.write_all(file.name.as_bytes())?;
        spool.write_all(&[0])
    }
}

/// Streams the zip: one CSV per table, with `media=true` every file under `media/`, then
/// `codebook.csv`, `cleaning_log.csv` and `README.txt`.
pub fn write_zip(
    export: &Export,
    store: &Store,
    blobs: &Blobs,
    out: impl Write,
) -> io::Result<Written> {
    let bom = export.options.bom;
    let spool = || tempfile::tempfile().map(BufWriter::new);
    let mut sink = ZipSink {
        tables: (0..export.layout.tables.len())
            .map(|t| CsvOut::new(spool()?, bom, &export.headers(t)))
            .collect::<io::Result<_>>()?,
        log: CsvOut::new(spool()?, bom, &LOG_HEADERS.map(str::to_owned))?,
        media: export.options.media.then(spool).transpose()?,
    };
    let written = export.emit(store, &mut sink)?;
    let mut zip = zip::ZipWriter::new_stream(out);
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1));
    for (table, csv) in export.layout.tables.iter().zip(sink.tables) {
        zip.start_file(format!("{}.csv", table.name), options)
            .map_err(io::Error::other)?;
        copy_spooled(csv, &mut zip)?;
    }
    if let Some(register) = export.register.as_deref() {
        // The registered people of the reader's places no kept row reached, whatever this
        // export's filters and whoever's township a row was sent for (as coverage counts).
        let reached = export.reached(store)?;
        zip.start_file("_missing.csv", options)
            .map_err(io::Error::other)?;
        let mut csv = CsvOut::new(
            &mut zip,
            bom,
            &register.missing_headers(export.options.labels),
        )?;
        for row in register.missing(
            &reached,
            |place| export.covers(place),
            export.options.labels,
        ) {
            let cells: Vec<&str> = row.iter().map(String::as_str).collect();
            csv.texts(&cells)?;
        }
        csv.finish()?;
    }
    if let Some(media) = sink.media.take() {
        let mut log = |line| sink_log(&mut sink.log, line);
        add_media(media, blobs, &mut zip, &mut log)?;
    }
    zip.start_file("codebook.csv", options)
        .map_err(io::Error::other)?;
    write_codebook(export, &mut zip)?;
    zip.start_file("cleaning_log.csv", options)
        .map_err(io::Error::other)?;
    copy_spooled(sink.log, &mut zip)?;
    zip.start_file("README.txt", options)
        .map_err(io::Error::other)?;
    zip.write_all(readme(export).as_bytes())?;
    zip.finish().map_err(io::Error::other)?.flush()?;
    Ok(written)
}

fn sink_log(log: &mut CsvOut<BufWriter<File>>, l: LogLine) -> io::Result<()> {
    log.texts(&[
        &l.submission_id,
        &l.table,
        &l.row_key,
        &l.column,
        l.action,
        &l.before,
        &l.after,
        &l.reason,
    ])
}

/// Copies every spooled file into the zip as `media/<submission id>/<name>`, stored as it is
/// (photos and recordings are compressed already); a file missing from disk is logged instead.
fn add_media<W: Write>(
    spool: BufWriter<File>,
    blobs: &Blobs,
    zip: &mut zip::ZipWriter<zip::write::StreamWriter<W>>,
    log: &mut impl FnMut(LogLine) -> io::Result<()>,
) -> io::Result<()> {
    let mut file = spool.into_inner().map_err(|e| e.into_error())?;
    file.rewind()?;
    let mut entries = io::BufReader::new(file);
    let stored = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true);
    loop {
        let mut head = [0u8; 16 + 64];
        match entries.read_exact(&mut head) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            other => other?,
        }
        let mut name = Vec::new();
        entries.read_until(0, &mut name)?;
        name.pop();
        let name = String::from_utf8_lossy(&name).into_owned();
        let submission = uuid::Uuid::from_slice(&head[..16]).map_err(io::Error::other)?;
        let sha256 = String::from_utf8_lossy(&head[16..]).into_owned();
        let mut kept = match blobs.open_object(&sha256) {
            Ok(kept) => kept,
            Err(error) => {
                log(LogLine {
                    submission_id: submission.to_string(),
                    table: "main".into(),
                    row_key: String::new(),
                    column: String::new(),
                    action: "missing_attachment",
                    before: name.clone(),
                    after: String::new(),
                    reason: format!(
                        "the file was uploaded but is not on the server's disk: {error}"
                    ),
                })?;
                continue;
            }
        };
        zip.start_file(format!("media/{submission}/{name}"), stored)
            .map_err(io::Error::other)?;
        io::copy(&mut kept, zip)?;
    }
}

fn copy_spooled(csv: CsvOut<BufWriter<File>>, into: &mut impl Write) -> io::Result<()> {
    let mut file = csv.finish()?.into_inner().map_err(|e| e.into_error())?;
    file.rewind()?;
    io::copy(&mut file, into)?;
    Ok(())
}

/// `codebook.csv`: every column of every table, with its label, type, choices and source.
fn write_codebook(export: &Export, out: impl Write) -> io::Result<()> {
    let headers = [
        "table",
        "column",
        "label",
        "type",
        "allowed_values",
        "source",
        "description",
    ]
    .map(str::to_owned);
    let mut csv = CsvOut::new(out, export.options.bom, &headers)?;
    // One description per system column: the array's length is checked by the compiler.
    let system: [(&str, &str); MAIN_SYSTEM.len()] = [
        ("_id", "the submission's UUID, made by the phone"),
        ("_form_version", "the form version it was validated against"),
        ("_submitted_by", "username of the field worker who sent it"),
        ("_received_at", "when the server received it (UTC)"),
        (
            "_completed_at",
            "when the phone says it was completed (phone clock)",
        ),
        (
            "_clock_flag",
            "'implausible' when the phone clock cannot be trusted",
        ),
        (
            "_review_status",
            "received, approved, has_issues or edited (rejected and deleted ones are left out; raw exports say deleted)",
        ),
    ];
    for (table_index, table) in export.layout.tables.iter().enumerate() {
        if table_index == 0 {
            for (name, description) in system {
                csv.texts(&[&table.name, name, name, "system", "", "", description])?;
            }
        } else {
            csv.texts(&[
                &table.name,
                "KEY",
                "KEY",
                "system",
                "",
                "",
                "this row: <submission id>/<path>/<index>",
            ])?;
            csv.texts(&[
                &table.name,
                "PARENT_KEY",
                "PARENT_KEY",
                "system",
                "",
                "",
                "the row this one belongs to (_id or KEY)",
            ])?;
        }
        for column in &table.columns {
            let allowed = match &column.kind {
                super::layout::Kind::Choice(choices) | super::layout::Kind::Choices(choices) => {
                    choices
                        .iter()
                        .map(|(code, label)| format!("{code}={label}"))
                        .collect::<Vec<_>>()
                        .join("; ")
                }
                _ => String::new(),
            };
            csv.texts(&[
                &table.name,
                &column.name,
                &column.label,
                column.kind.name(),
                &allowed,
                &column.source,
                &column.description,
            ])?;
        }
        if export
            .register
            .as_ref()
            .is_some_and(|r| r.people_table() == table.name)
        {
            csv.texts(&[
                &table.name,
                "_registry",
                "_registry",
                "system",
                "matched; new",
                "",
                "matched: this person (by their key) is in the form's register; new: not in it",
            ])?;
        }
    }
    csv.finish()?.flush()
}

/// Whether a form asks for files (so its cleaning log may say `missing_attachment`).
fn has_files(export: &Export) -> bool {
    export.layout.tables.iter().any(|table| {
        table
            .columns
            .iter()
            .any(|column| matches!(column.kind, super::layout::Kind::Attachment(_)))
    })
}

fn readme(export: &Export) -> String {
    let o = &export.options;
    let tables: Vec<String> = export
        .layout
        .tables
        .iter()
        .map(|t| {
            if t.is_main() {
                "main.csv: one row per kept submission (household visit)".to_owned()
            } else {
                format!(
                    "{}.csv: one row per {} entry, linked to its parent by PARENT_KEY",
                    t.name, t.name
                )
            }
        })
        .chain(export.register.is_some().then(|| {
            "_missing.csv: the registered people of your places no kept row reached (cleaning_log.csv says registry_differs where a surveyed answer differs from the register's)".to_owned()
        }))
        .chain(has_files(export).then(|| {
            if o.media {
                "media/<submission id>/<file name>: every uploaded photo, signature and recording the answers name".into()
            } else {
                "(the photos, signatures and recordings the answers name come with media=true)".into()
            }
        }))
        .collect();
    let filter = |name: &str, value: Option<String>| {
        format!("  {name}: {}", value.unwrap_or_else(|| "(none)".into()))
    };
    let rfc = |t: Option<time::OffsetDateTime>| t.map(crate::clock::format_rfc3339);
    [
        format!("Export of form '{}', made {} by survey-server.", export.form, export.made_at),
        String::new(),
        "Files:".into(),
        tables.into_iter().map(|t| format!("  {t}")).collect::<Vec<_>>().join("\n"),
        "  codebook.csv: every column: label, type, allowed values, where it comes from".into(),
        "  cleaning_log.csv: every value the cleaning changed and every row it left out, with the reason".into(),
        String::new(),
        if o.raw {
            "Raw export: every stored submission exactly as received; nothing cleaned or left out.".into()
        } else {
            "Cleaning: text is Unicode NFKC-normalised and trimmed, ID numbers get an upper-case X, dates are \
             YYYY-MM-DD; one row per natural key (the latest completed wins); training (test) submissions are \
             left out; implausible phone clocks are flagged. Stored data is never changed."
                .into()
        },
        String::new(),
        "Filters:".into(),
        filter("since", rfc(o.since)),
        filter("until", rfc(o.until)),
        filter("version", o.version.clone()),
        filter("status", o.status.map(|s| s.as_str().to_owned())),
        format!("  labels: {}   multiple: {:?}   bom: {}", o.labels, o.multiple, o.bom),
        String::new(),
        "Open in Excel with Data > From Text/CSV and set ID-number columns to Text, or their last digits are lost.".into(),
    ]
    .join("\r\n")
        + "\r\n"
}
