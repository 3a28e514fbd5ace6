//! The shared test vectors in `tests/vectors/`: what the server says of each case, which the app's
//! offline validation must say too. Each file names a form in `schemas/` (or a fixture schema by
//! its path, published first); the cases run through the registry the server loads at start-up,
//! in both languages.

use std::path::PathBuf;

use serde_json::Value;
use survey_server::auth::Principal;
use survey_server::error::{AppError, Detail};
use survey_server::forms::messages::{self, Lang};
use survey_server::forms::{FormRegistry, NewFormVersion};
use survey_server::store::Store;

use crate::helpers::schemas_dir;

fn vector_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/vectors")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no vectors in {}", dir.display());
    files
}

/// `(path, key)` of each error, sorted, so equal lists mean the same errors the same number of times.
fn sorted(pairs: impl Iterator<Item = (String, String)>) -> Vec<(String, String)> {
    let mut pairs: Vec<_> = pairs.collect();
    pairs.sort();
    pairs
}

/// The message as the app builds it from the served catalogue: the key's template with each
/// `{name}` replaced by its parameter (a list joined, a number as JSON writes it), framed with
/// the field's name.
fn expected_message(catalogue: &Value, schema: &Value, detail: &Detail, lang: Lang) -> String {
    let key = detail
        .key
        .as_deref()
        .expect("a validation detail has a key");
    let mut problem = catalogue["messages"][key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not in the catalogue"))
        .to_owned();
    for (name, value) in detail.params.iter().flatten() {
        let text = match value {
            Value::String(text) => text.clone(),
            Value::Array(items) => items
                .iter()
                .map(|item| item.as_str().expect("a list of names"))
                .collect::<Vec<_>>()
                .join(catalogue["field"]["list_separator"].as_str().unwrap()),
            other => other.to_string(),
        };
        problem = problem.replace(&format!("{{{name}}}"), &text);
    }
    let field = messages::field_name(schema, &detail.path, lang);
    catalogue["field"]["message"]
        .as_str()
        .unwrap()
        .replace("{field}", &field)
        .replace("{problem}", &problem)
}

#[tokio::test]
async fn every_vector_gets_exactly_its_errors_worded_as_the_catalogue_says() {
    let data_dir = tempfile::tempdir().unwrap();
    let store = Store::open(data_dir.path()).unwrap();
    let registry = FormRegistry::load(&store, &schemas_dir()).await.unwrap();
    let mut wrong = Vec::new();
    for file in vector_files() {
        let vectors: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        if let Some(fixture) = vectors["schema"].as_str() {
            let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(fixture);
            let schema: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
            let new = NewFormVersion {
                id: vectors["form"].as_str().unwrap().to_owned(),
                version: "1".into(),
                title: schema["title"].as_str().unwrap().to_owned(),
                schema,
                workbook: None,
            };
            registry
                .publish(&store, new, &Principal::system())
                .await
                .unwrap();
        }
        let form = registry
            // The vectors were written for version 1, as the app's tests read it from its file.
            .resolve(vectors["form"].as_str().unwrap(), Some("1"))
            .unwrap();
        for case in vectors["cases"].as_array().unwrap() {
            let listed = case["errors"].as_array().unwrap();
            for lang in [Lang::Zh, Lang::En] {
                let name = format!("{}: {} ({lang:?})", file.display(), case["name"]);
                let catalogue = serde_json::to_value(messages::catalogue(lang)).unwrap();
                let details = match form.validate(&case["data"], lang) {
                    Ok(()) => Vec::new(),
                    Err(AppError::ValidationFailed(details)) => details,
                    Err(other) => panic!("{name}: {other}"),
                };
                if details.is_empty() != case["valid"].as_bool().unwrap() {
                    wrong.push(format!("{name}: valid is {}", details.is_empty()));
                }
                let got = sorted(details.iter().map(|d| {
                    let key = d.key.clone().unwrap_or_default();
                    (d.path.clone(), key)
                }));
                let want = sorted(listed.iter().map(|e| {
                    let text = |k: &str| e[k].as_str().unwrap().to_owned();
                    (text("path"), text("key"))
                }));
                if got != want {
                    wrong.push(format!("{name}: got {got:?}, expected {want:?}"));
                }
                for error in listed.iter().filter(|e| e.get("params").is_some()) {
                    let params = details
                        .iter()
                        .find(|d| {
                            d.path == error["path"] && d.key.as_deref() == error["key"].as_str()
                        })
                        .and_then(|d| d.params.clone())
                        .map(Value::Object);
                    if params.as_ref() != error.get("params") {
                        wrong.push(format!("{name}: params {params:?} at {}", error["path"]));
                    }
                }
                for detail in &details {
                    let expected = expected_message(&catalogue, &form.stored.schema, detail, lang);
                    if detail.message != expected {
                        wrong.push(format!("{name}: {:?} is not {expected:?}", detail.message));
                    }
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
