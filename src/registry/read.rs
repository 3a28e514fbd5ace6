//! Reading a register's CSV: its encoding (UTF-8 with or without BOM, or GB18030/GBK as
//! government systems export), its columns (the form's own fields) and each cell's value.

use std::io::{self, Read, Seek, SeekFrom};

use encoding_rs::{Encoding, GB18030, UTF_8};
use encoding_rs_io::DecodeReaderBytesBuilder;
use serde_json::{Map, Value};

use crate::export::layout::{Column, Kind, Layout, Table};
use crate::export::rows;

/// The encoding named by a `charset=`, else UTF-8 if the bytes are UTF-8, else GB18030 (which
/// reads GBK and GB2312 too). `None` for a charset this server cannot read.
pub fn encoding(
    charset: Option<&str>,
    file: &mut (impl Read + Seek),
) -> io::Result<Option<&'static Encoding>> {
    if let Some(name) = charset {
        return Ok(Encoding::for_label(
            name.trim().trim_matches('"').as_bytes(),
        ));
    }
    let mut decoder = UTF_8.new_decoder_without_bom_handling();
    let mut bytes = vec![0; 64 * 1024];
    let mut text = String::with_capacity(4 * bytes.len());
    let utf8 = loop {
        let n = file.read(&mut bytes)?;
        text.clear();
        let (result, _) =
            decoder.decode_to_string_without_replacement(&bytes[..n], &mut text, n == 0);
        match result {
            encoding_rs::DecoderResult::Malformed(..) => break false,
            _ if n == 0 => break true,
            _ => {}
        }
    };
    file.seek(SeekFrom::Start(0))?;
    Ok(Some(if utf8 { UTF_8 } else { GB18030 }))
}

/// `input` as UTF-8, a BOM (of any Unicode encoding) taking precedence.
pub fn decoded(input: impl Read, encoding: &'static Encoding) -> impl Read {
    DecodeReaderBytesBuilder::new()
        .encoding(Some(encoding))
        .bom_override(true)
        .build(input)
}

/// A reader that remembers where lines end, so a record's byte position gives its line (the
/// CSV reader's own line count is off for CRLF files, which Windows programs write). Positions
/// are asked for in order, so only the line ends not yet passed are kept: a few buffers' worth.
pub struct LineIndex<R> {
    inner: R,
    read: u64,
    ends: std::rc::Rc<std::cell::RefCell<Ends>>,
}

/// Line ends read but not yet passed, and how many were.
#[derive(Default)]
pub struct Ends {
    ahead: std::collections::VecDeque<u64>,
    passed: u64,
}

/// The line numbers of a [`LineIndex`]'s input.
pub struct Lines(std::rc::Rc<std::cell::RefCell<Ends>>);

impl<R: Read> LineIndex<R> {
    pub fn new(inner: R) -> (Self, Lines) {
        let ends = std::rc::Rc::default();
        let lines = Lines(std::rc::Rc::clone(&ends));
        (
            Self {
                inner,
                read: 0,
                ends,
            },
            lines,
        )
    }
}

impl<R: Read> Read for LineIndex<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buffer)?;
        let mut ends = self.ends.borrow_mut();
        for (i, byte) in buffer[..n].iter().enumerate() {
            if *byte == b'\n' {
                ends.ahead.push_back(self.read + i as u64);
            }
        }
        self.read += n as u64;
        Ok(n)
    }
}

impl Lines {
    /// The 1-based line of a record the CSV reader places at `position` (for a CRLF file, the
    /// `\n` it skips before the record: that line has ended too). Positions must not go back.
    pub fn line_of(&self, position: u64) -> u32 {
        let mut ends = self.0.borrow_mut();
        while ends.ahead.front().is_some_and(|&end| end <= position) {
            ends.ahead.pop_front();
            ends.passed += 1;
        }
        u32::try_from(ends.passed + 1).unwrap_or(u32::MAX)
    }
}

/// Where a register's columns go: the household's (the form's main table) or the person's (the
/// table of people, the first repeated group with its own key).
pub struct Shape {
    pub households: Table,
    pub people: Table,
    /// JSON Pointer of the form's scope field (the township), if it has one.
    pub scope: Option<String>,
}

impl Shape {
    /// A form a register fits: households with a key (`x-unique`) and a repeated group of
    /// people with one.
    pub fn of(layout: &Layout, schema: &Value) -> Option<Self> {
        let households = layout.tables.first()?.clone();
        let people = layout
            .tables
            .iter()
            .find(|t| t.arrays.len() == 1 && !t.unique.is_empty())?
            .clone();
        if households.unique.is_empty() {
            return None;
        }
        let scope = schema
            .get("x-scope")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Some(Self {
            households,
            people,
            scope,
        })
    }

    /// The property path of the group of people in a submission (`["members"]`).
    pub fn people_path(&self) -> &[String] {
        &self.people.arrays[0]
    }

    /// The column a header names: a household's, else a person's.
    pub fn column(&self, header: &str) -> Option<(Level, &Column)> {
        let household = self.households.columns.iter().find(|c| c.name == header);
        let person = || self.people.columns.iter().find(|c| c.name == header);
        household
            .map(|c| (Level::Household, c))
            .or_else(|| person().map(|c| (Level::Person, c)))
    }
}

/// Whose a column is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Household,
    Person,
}

/// One cell as the form's answer: cleaned as exports clean (NFKC, trimmed, upper-case X, ISO
/// dates), a choice by its code or its label (`男` or `male`), several choices split on `;`.
/// `None` for an empty cell; an error for a cell that cannot be that kind of answer.
pub fn value_of(column: &Column, text: &str) -> Result<Option<Value>, &'static str> {
    let cleaned = rows::cleaned(column, text, &mut Vec::new());
    if cleaned.is_empty() {
        return Ok(None);
    }
    let code = |choices: &[(String, String)], text: &str| {
        choices
            .iter()
            .find(|(code, label)| code == text || label == text)
            .map_or_else(|| text.to_owned(), |(code, _)| code.clone())
    };
    let split = |text: &str| {
        text.split(';')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    Ok(Some(match &column.kind {
        Kind::Integer => cleaned
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| "must be a whole number")?,
        // `2000` stays an integer (as a phone would send it), `1500.5` a decimal.
        Kind::Number => match cleaned.parse::<i64>() {
            Ok(whole) => Value::from(whole),
            Err(_) => cleaned
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or("must be a number")?,
        },
        Kind::Boolean => match cleaned.to_lowercase().as_str() {
            "true" | "1" | "是" | "yes" => Value::Bool(true),
            "false" | "0" | "否" | "no" => Value::Bool(false),
            _ => return Err("must be yes or no (是/否)"),
        },
        Kind::Choice(choices) => Value::String(code(choices, &cleaned)),
        Kind::Choices(choices) => Value::Array(
            split(&cleaned)
                .iter()
                .map(|t| Value::String(code(choices, t)))
                .collect(),
        ),
        Kind::List => Value::Array(split(&cleaned).into_iter().map(Value::String).collect()),
        Kind::Attachment(_) => return Err("a file cannot come from a register"),
        Kind::Text | Kind::IdNumber | Kind::Date => Value::String(cleaned),
    }))
}

/// Puts `value` at `path` (property names) inside `object`, making the objects on the way.
pub fn place(object: &mut Map<String, Value>, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut here = object;
    for part in parents {
        let next = here
            .entry(part.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            *next = Value::Object(Map::new());
        }
        let Value::Object(inner) = next else {
            return;
        };
        here = inner;
    }
    here.insert(last.clone(), value);
}

/// The text of a key at `path` inside `object` (a number as written).
pub fn text_at(object: &Map<String, Value>, path: &[String]) -> Option<String> {
    let (first, rest) = path.split_first()?;
    let here = rest
        .iter()
        .try_fold(object.get(first)?, |here, part| here.get(part))?;
    match here {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(yes) => Some(yes.to_string()),
        _ => None,
    }
}

/// The JSON Pointer of a property path (`["a", "b/c"]` → `/a/b~1c`).
pub fn pointer(path: &[String]) -> String {
    path.iter()
        .map(|p| format!("/{}", p.replace('~', "~0").replace('/', "~1")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lines_are_counted_from_the_header_whatever_ends_them() {
        for text in ["h\na\n\"b\nc\"\nd\n", "h\r\na\r\n\"b\r\nc\"\r\nd\r\n"] {
            let (input, lines) = LineIndex::new(text.as_bytes());
            let mut csv = csv::Reader::from_reader(input);
            let found: Vec<u32> = csv
                .records()
                .map(|r| lines.line_of(r.unwrap().position().unwrap().byte()))
                .collect();
            assert_eq!(found, [2, 3, 5], "{text:?}");
        }
    }

    #[test]
    fn gb18030_is_read_when_the_bytes_are_not_utf8_and_a_bom_wins() {
        let (gbk, _, _) = GB18030.encode("户编号,姓名\r\n4510220001,韦秀英\r\n");
        let mut file = io::Cursor::new(gbk.into_owned());
        let found = encoding(None, &mut file).unwrap().unwrap();
        assert_eq!(found, GB18030);
        let mut text = String::new();
        decoded(file, found).read_to_string(&mut text).unwrap();
        assert!(text.contains("韦秀英"));

        let mut utf8 = io::Cursor::new("\u{feff}a,b\n".as_bytes().to_vec());
        assert_eq!(encoding(None, &mut utf8).unwrap(), Some(UTF_8));
        let mut text = String::new();
        decoded(utf8, UTF_8).read_to_string(&mut text).unwrap();
        assert_eq!(text, "a,b\n");
        assert_eq!(
            encoding(Some("GBK"), &mut io::Cursor::new(vec![])).unwrap(),
            Some(encoding_rs::GBK)
        );
        assert_eq!(
            encoding(Some("klingon"), &mut io::Cursor::new(vec![])).unwrap(),
            None
        );
    }

    #[test]
    fn cells_become_answers_of_their_kind() {
        let layout = Layout::of(
            &json!({"type": "object", "x-unique": ["/id"], "properties": {
                "id": {"type": "string"},
                "gender": {"enum": ["male", "female"], "x-labels": {"male": "男", "female": "女"}},
                "age": {"type": "integer"},
                "id_number": {"type": "string", "format": "cn-resident-id"},
                "relocated": {"type": "boolean"}
            }}),
        );
        let column = |name: &str| {
            layout.tables[0]
                .columns
                .iter()
                .find(|c| c.name == name)
                .unwrap()
                .clone()
        };
        assert_eq!(
            value_of(&column("gender"), " 男 ").unwrap(),
            Some(json!("male"))
        );
        assert_eq!(
            value_of(&column("gender"), "female").unwrap(),
            Some(json!("female"))
        );
        assert_eq!(value_of(&column("age"), "４２").unwrap(), Some(json!(42)));
        assert!(value_of(&column("age"), "forty").is_err());
        assert_eq!(
            value_of(&column("id_number"), "45102219830708042x").unwrap(),
            Some(json!("45102219830708042X"))
        );
        assert_eq!(
            value_of(&column("relocated"), "是").unwrap(),
            Some(json!(true))
        );
        assert_eq!(value_of(&column("id"), "  ").unwrap(), None);
        let mut object = Map::new();
        place(&mut object, &["a".into(), "b".into()], json!(1));
        assert_eq!(Value::Object(object), json!({"a": {"b": 1}}));
    }
}
