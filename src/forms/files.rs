//! The questionnaires shipped in `schemas/`: read at start-up, and the library their `$ref`s resolve in.
//!
//! Each `*.json` file is a JSON Schema. A file that is a form names itself with three root keywords
//! (annotations to any validator): `x-form-id`, `x-form-version` and the standard `title`. A file
//! without `x-form-id` is a shared library of definitions. Each `*.xlsx` or `*.xls` file is an
//! XLSForm, read as the JSON Schema it converts to (which names itself the same way). Any schema (shipped or published) can
//! refer to a file by its name, e.g. `{"$ref": "common.json#/$defs/township"}`: every file is
//! registered at `json-schema:///<file name>`, the base URI a schema without `$id` resolves against.

use std::path::{Path, PathBuf};

use jsonschema::Registry;
use serde_json::Value;

use super::LoadError;
use super::messages::Lang;
use super::xlsform::{self, WorkbookKind};
use crate::store::StoredWorkbook;

/// One schema file, parsed.
pub struct SchemaFile {
    /// Where it came from, for messages.
    pub path: PathBuf,
    /// The file name, which is also its address for `$ref`.
    pub name: String,
    /// The JSON Schema document.
    pub schema: Value,
    /// The workbook the schema was converted from, for `*.xlsx` and `*.xls` files.
    pub workbook: Option<StoredWorkbook>,
    /// Why a workbook could not be converted (its schema is then `null`): a start stops on it
    /// unless these exact bytes were published before.
    pub unconverted: Option<String>,
}

/// The identity a form file declares.
pub struct FileForm<'a> {
    pub id: &'a str,
    pub version: &'a str,
    pub title: &'a str,
}

impl SchemaFile {
    /// The form this file declares, `None` for a library file.
    pub fn form(&self) -> Result<Option<FileForm<'_>>, LoadError> {
        let Some(id) = self.schema.get("x-form-id") else {
            return Ok(None);
        };
        let text = |key: &str| {
            self.schema
                .get(key)
                .and_then(Value::as_str)
                .ok_or_else(|| self.problem(format!("a form file needs a string \"{key}\"")))
        };
        let id = id
            .as_str()
            .ok_or_else(|| self.problem("\"x-form-id\" must be a string".into()))?;
        Ok(Some(FileForm {
            id,
            version: text("x-form-version")?,
            title: text("title")?,
        }))
    }

    pub fn problem(&self, problem: String) -> LoadError {
        LoadError::File {
            path: self.path.clone(),
            problem,
        }
    }
}

/// Reads every `*.json`, `*.xlsx` and `*.xls` in `dir`, in file-name order (so versions in
/// separate files publish in that order).
pub fn read_dir(dir: &Path) -> Result<Vec<SchemaFile>, LoadError> {
    let unreadable = |e: std::io::Error| LoadError::File {
        path: dir.to_owned(),
        problem: format!(
            "cannot read the schemas directory: {e} (set SURVEY_SCHEMAS_DIR or --schemas-dir)"
        ),
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let path = entry.map_err(unreadable)?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let workbook = WorkbookKind::of_file_name(name).is_some();
        let usable = path.extension().is_some_and(|ext| ext == "json") || workbook;
        // Excel's lock files (`~$labour.xlsx`) sit beside a workbook while it is open.
        if usable && !name.starts_with("~$") && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let problem = |problem: String| LoadError::File {
                path: path.clone(),
                problem,
            };
            let text = std::fs::read(&path).map_err(|e| problem(e.to_string()))?;
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| problem("the file name is not UTF-8".into()))?
                .to_owned();
            if let Some(kind) = WorkbookKind::of_file_name(&name) {
                let converted = xlsform::convert(&text, kind).map_err(|problems| {
                    let lines: Vec<String> = problems
                        .iter()
                        .map(|p| format!("{}: {}", p.path, p.message(Lang::En)))
                        .collect();
                    format!("the XLSForm cannot be published: {}", lines.join("; "))
                });
                let workbook = StoredWorkbook {
                    media_type: kind.media_type().to_owned(),
                    bytes: text,
                };
                let (schema, unconverted) = match converted {
                    Ok(converted) => (converted.schema, None),
                    Err(problem) => (Value::Null, Some(problem)),
                };
                return Ok(SchemaFile {
                    path,
                    name,
                    schema,
                    workbook: Some(workbook),
                    unconverted,
                });
            }
            let schema = serde_json::from_slice(&text)
                .map_err(|e| problem(format!("not valid JSON: {e}")))?;
            Ok(SchemaFile {
                path,
                name,
                schema,
                workbook: None,
                unconverted: None,
            })
        })
        .collect()
}

/// The registry that `$ref`s from any form resolve in: every file under its own name.
pub fn library(files: &[SchemaFile]) -> Result<Registry<'static>, LoadError> {
    let resources = files
        .iter()
        .filter(|f| f.unconverted.is_none())
        .map(|f| (format!("json-schema:///{}", f.name), f.schema.clone()));
    Registry::new()
        .extend(resources)
        .and_then(|builder| builder.prepare())
        .map_err(|e| LoadError::Library(e.to_string()))
}
