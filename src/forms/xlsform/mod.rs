//! Forms from Excel: an XLSForm workbook (`survey`, `choices`, `settings` sheets) turned into this
//! server's JSON Schema, in the conventions `schemas/labour-survey.json` is written in. What
//! cannot be mapped is refused with its sheet, Excel row and column, never dropped. The mapping
//! is in docs/xlsform.md; `tests/xlsform/` checks it against pyxform, the reference converter.

mod expr;
mod logic;
mod sheets;
mod survey;

use serde_json::{Map, Value, json};

pub use sheets::{MAX_UNPACKED, WorkbookKind};
use sheets::{Row, Sheet, Workbook};

use super::messages::Lang;

/// A workbook turned into a form version.
#[derive(Clone, Debug)]
pub struct Converted {
    pub id: String,
    pub version: String,
    pub title: String,
    pub schema: Value,
}

/// One reason a workbook was refused, placed at `/<sheet>/<Excel row>/<column header>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub en: String,
    pub zh: String,
}

impl Problem {
    fn new(path: String, en: impl Into<String>, zh: impl Into<String>) -> Self {
        Self {
            path,
            en: en.into(),
            zh: zh.into(),
        }
    }

    pub fn message(&self, lang: Lang) -> &str {
        match lang {
            Lang::Zh => &self.zh,
            Lang::En => &self.en,
        }
    }
}

/// `/<sheet>/<row>/<column>` as a JSON Pointer.
fn at(sheet: &str, row: u32, column: &str) -> String {
    let escape = |s: &str| s.replace('~', "~0").replace('/', "~1");
    if column.is_empty() {
        format!("/{}/{row}", escape(sheet))
    } else {
        format!("/{}/{row}/{}", escape(sheet), escape(column))
    }
}

/// Converts a workbook's bytes.
pub fn convert(bytes: &[u8], kind: WorkbookKind) -> Result<Converted, Vec<Problem>> {
    let workbook = sheets::read(bytes, kind).map_err(|error| {
        use sheets::ReadError;
        let (path, zh) = match &error {
            ReadError::TooLarge => (
                String::new(),
                format!("工作簿解压后超过 {} MiB", MAX_UNPACKED / 1024 / 1024),
            ),
            ReadError::TooFar(sheet) => (
                format!("/{sheet}"),
                format!("工作表“{sheet}”的内容超出了可读取的行数或列数"),
            ),
            ReadError::Unreadable(format, _) => (
                String::new(),
                format!("无法读取该 {format} 工作簿：{error}"),
            ),
            ReadError::TwoSheets(sheet) => (
                format!("/{sheet}"),
                format!("工作簿中有两个名为“{sheet}”的工作表"),
            ),
            ReadError::UnmappedSheet(sheet) => (
                format!("/{sheet}"),
                format!("本服务器无法转换“{sheet}”工作表，请删除它"),
            ),
        };
        vec![Problem::new(path, error.to_string(), zh)]
    })?;
    convert_workbook(&workbook)
}

/// Converts sheets already read.
fn convert_workbook(workbook: &Workbook) -> Result<Converted, Vec<Problem>> {
    let mut problems = Vec::new();
    let settings = Settings::read(workbook.settings.as_ref(), &mut problems);
    let Some(survey) = workbook.survey.as_ref().filter(|s| !s.rows.is_empty()) else {
        problems.push(Problem::new(
            "/survey".into(),
            "the workbook has no survey sheet with questions",
            "工作簿没有含题目的 survey 工作表",
        ));
        return Err(problems);
    };
    let languages = Languages::new(settings.default_language.as_deref());
    let choices = survey::read_choices(workbook.choices.as_ref(), &languages, &mut problems);
    let built = survey::build(survey, &choices, &languages, &settings, &mut problems);
    let (Some(id), Some(version), Some(body)) =
        (settings.form_id.clone(), settings.version.clone(), built)
    else {
        return Err(problems);
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let title = settings.form_title.clone().unwrap_or_else(|| id.clone());
    let mut root = Map::new();
    root.insert(
        "$schema".into(),
        json!("https://json-schema.org/draft/2020-12/schema"),
    );
    root.insert("x-form-id".into(), json!(id));
    root.insert("x-form-version".into(), json!(version));
    root.insert("title".into(), json!(title));
    if let Some(code) = languages.default_code() {
        root.insert("x-default-language".into(), json!(code));
    }
    for (key, value) in settings.extensions {
        root.insert(key, value);
    }
    root.extend(body);
    Ok(Converted {
        id,
        version,
        title,
        schema: Value::Object(root),
    })
}

/// The `settings` sheet's first row.
#[derive(Default)]
struct Settings {
    form_id: Option<String>,
    version: Option<String>,
    form_title: Option<String>,
    default_language: Option<String>,
    /// `x-unique` and `x-scope` (field names, made pointers by the survey), `x-indicators` (JSON).
    unique: Option<(u32, String)>,
    scope: Option<(u32, String)>,
    extensions: Vec<(String, Value)>,
}

impl Settings {
    fn read(sheet: Option<&Sheet>, problems: &mut Vec<Problem>) -> Self {
        let mut settings = Settings::default();
        let row = sheet.and_then(|s| s.rows.first());
        if let (Some(sheet), Some(row)) = (sheet, row) {
            for (index, header) in sheet.columns.iter().enumerate() {
                let value = row.cell(index).trim();
                if value.is_empty() {
                    continue;
                }
                let place = at("settings", row.number, header);
                match header.to_lowercase().as_str() {
                    "form_id" => settings.form_id = Some(value.into()),
                    "version" => settings.version = Some(value.into()),
                    "form_title" => settings.form_title = Some(value.into()),
                    "default_language" => settings.default_language = Some(value.into()),
                    "x-unique" => settings.unique = Some((row.number, value.into())),
                    "x-scope" => settings.scope = Some((row.number, value.into())),
                    "x-indicators" => match serde_json::from_str::<Value>(value) {
                        Ok(indicators @ Value::Array(_)) => settings
                            .extensions
                            .push(("x-indicators".into(), indicators)),
                        _ => problems.push(Problem::new(
                            place,
                            "x-indicators must be a JSON array of indicators",
                            "x-indicators 应为指标的 JSON 数组",
                        )),
                    },
                    _ => problems.push(unknown_column(place, header)),
                }
            }
        }
        let row_number = row.map_or(2, |r| r.number);
        if settings.form_id.is_none() {
            problems.push(Problem::new(
                at("settings", row_number, "form_id"),
                "the settings sheet must give the form's id in form_id",
                "settings 工作表必须在 form_id 中填写问卷编号",
            ));
        }
        if settings.version.is_none() {
            problems.push(Problem::new(
                at("settings", row_number, "version"),
                "the settings sheet must give the form's version in version",
                "settings 工作表必须在 version 中填写版本号",
            ));
        }
        settings
    }
}

fn unknown_column(place: String, header: &str) -> Problem {
    Problem::new(
        place,
        format!("the column '{header}' is not one this server maps; remove it or leave it empty"),
        format!("本服务器无法转换“{header}”列；请删除该列或留空"),
    )
}

/// The languages of a workbook: which one is the default (its labels are `title`, `x-labels`),
/// and the code of every other (`label::English (en)` → `x-title-en`).
struct Languages {
    /// `default_language` as written, e.g. `中文 (zh-CN)`.
    default: Option<String>,
}

/// Which language a column is in.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Language {
    Default,
    Other(String),
}

impl Languages {
    fn new(default: Option<&str>) -> Self {
        Self {
            default: default.map(str::to_owned),
        }
    }

    fn default_code(&self) -> Option<String> {
        self.default.as_deref().and_then(code_of)
    }

    /// The language of a column written `base::<language>`, or why it cannot be used.
    fn of(&self, language: Option<&str>) -> Result<Language, (String, String)> {
        let Some(language) = language else {
            return Ok(Language::Default);
        };
        if self.default.as_deref() == Some(language) {
            return Ok(Language::Default);
        }
        let code = code_of(language).ok_or_else(|| {
            (
                format!("name the language's code in parentheses, e.g. '{language} (en)'"),
                format!("请在括号中写明语言代码，例如“{language} (en)”"),
            )
        })?;
        if self.default_code().as_deref() == Some(code.as_str()) {
            return Ok(Language::Default);
        }
        Ok(Language::Other(code))
    }
}

/// `English (en)` → `en`.
fn code_of(language: &str) -> Option<String> {
    let inner = language.trim().strip_suffix(')')?;
    let (_, code) = inner.rsplit_once('(')?;
    let code = code.trim();
    let valid = !code.is_empty()
        && code.len() <= 35
        && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    valid.then(|| code.to_owned())
}

/// A column header split: `label::English (en)` → (`label`, Some(`English (en)`)).
fn split_header(header: &str) -> (String, Option<&str>) {
    match header.split_once("::") {
        Some((base, language)) => (normalize(base), Some(language.trim())),
        None => (normalize(header), None),
    }
}

/// Column names as pyxform reads them: case and spaces do not matter (`Constraint Message`).
fn normalize(base: &str) -> String {
    base.trim().to_lowercase().replace(' ', "_")
}

/// Per-language texts of one row for a localizable column.
#[derive(Clone, Debug, Default)]
struct Texts {
    default: Option<String>,
    others: Vec<(String, String)>,
}

impl Texts {
    /// `title` and `x-title-<code>` (or any other key pair) into `schema`.
    fn insert(&self, schema: &mut Map<String, Value>, key: &str, other_prefix: &str) {
        if let Some(text) = &self.default {
            schema.insert(key.into(), json!(text));
        }
        for (code, text) in &self.others {
            schema.insert(format!("{other_prefix}-{code}"), json!(text));
        }
    }
}

/// The columns of a sheet, read once: which column holds what, in which language.
struct Columns {
    /// (index, base name, language, header as written)
    all: Vec<(usize, String, Language, String)>,
}

impl Columns {
    /// Reads `sheet`'s headers; `known` are the base names understood, `localized` those that
    /// may carry a language.
    fn read(
        sheet: &Sheet,
        languages: &Languages,
        known: &[&str],
        localized: &[&str],
        problems: &mut Vec<Problem>,
    ) -> Self {
        let mut all = Vec::new();
        let widest = sheet.rows.iter().map(|r| r.cells.len()).max().unwrap_or(0);
        for index in 0..sheet.columns.len().max(widest) {
            let header = sheet.columns.get(index).map_or("", String::as_str);
            let used = sheet.rows.iter().find(|r| !r.cell(index).is_empty());
            if header.is_empty() {
                if let Some(row) = used {
                    problems.push(Problem::new(
                        at(&sheet.name, row.number, ""),
                        format!("column {} holds values but has no header", index + 1),
                        format!("第{}列有内容但没有列名", index + 1),
                    ));
                }
                continue;
            }
            let (base, language) = split_header(header);
            let place = at(&sheet.name, sheet.header_row, header);
            let used = used.is_some();
            if !known.contains(&base.as_str())
                || (language.is_some() && !localized.contains(&base.as_str()))
            {
                if used {
                    problems.push(unknown_column(place, header));
                }
                continue;
            }
            match languages.of(language) {
                Ok(language) => all.push((index, base, language, header.to_owned())),
                Err((en, zh)) => problems.push(Problem::new(place, en, zh)),
            }
        }
        let mut seen: Vec<(&str, &Language)> = Vec::new();
        for (_, base, language, header) in &all {
            if seen.contains(&(base.as_str(), language)) {
                problems.push(Problem::new(
                    at(&sheet.name, sheet.header_row, header),
                    format!("a second '{base}' column in the same language"),
                    format!("同一语言的“{base}”列出现了两次"),
                ));
            }
            seen.push((base, language));
        }
        Self { all }
    }

    /// The default-language (or only) text of `base` in `row`, with its header.
    fn get<'r>(&self, row: &'r Row, base: &str) -> Option<(&'r str, &str)> {
        self.all
            .iter()
            .filter(|(_, b, language, _)| b == base && *language == Language::Default)
            .map(|(index, _, _, header)| (row.cell(*index), header.as_str()))
            .find(|(text, _)| !text.is_empty())
    }

    fn text<'r>(&self, row: &'r Row, base: &str) -> &'r str {
        self.get(row, base).map_or("", |(text, _)| text)
    }

    /// The header of the first column of `base`, in any language, that has something in `row`.
    fn used(&self, row: &Row, base: &str) -> Option<&str> {
        self.all
            .iter()
            .find(|(index, b, _, _)| b == base && !row.cell(*index).is_empty())
            .map(|(_, _, _, header)| header.as_str())
    }

    /// The header of `base`'s default column (for problems about a cell that is empty).
    fn header(&self, base: &str) -> String {
        self.all
            .iter()
            .find(|(_, b, language, _)| b == base && *language == Language::Default)
            .map_or_else(|| base.to_owned(), |(_, _, _, header)| header.clone())
    }

    fn texts(&self, row: &Row, base: &str) -> Texts {
        let mut texts = Texts::default();
        for (index, b, language, _) in &self.all {
            let text = row.cell(*index);
            if b != base || text.is_empty() {
                continue;
            }
            match language {
                Language::Default => texts.default = Some(text.to_owned()),
                Language::Other(code) => texts.others.push((code.clone(), text.to_owned())),
            }
        }
        texts
    }
}

#[cfg(test)]
mod tests;
