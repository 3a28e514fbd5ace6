//! Property tests of the whole data path without HTTP: arbitrary bytes, arbitrary JSON, mangled
//! households and whole generated counties go through parse → validate → store → clean → CSV
//! rows. Nothing may panic, a refusal is always a client error, every CSV row has as many cells
//! as its header, and a generated county comes back exactly.

use proptest::collection::{hash_map, vec};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use survey_server::auth::{Principal, Role};
use survey_server::export::{self, Export, Format, Multiple, Options};
use survey_server::forms::FormRegistry;
use survey_server::store::Store;
use survey_server::submissions;
use tempfile::TempDir;

use crate::helpers::{household, schemas_dir};

const FORM: &str = "labour-survey";

/// A store with the county's form, and an admin to act as.
struct Pipeline {
    _dir: TempDir,
    store: Store,
    forms: FormRegistry,
    admin: Principal,
}

impl Pipeline {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let forms = FormRegistry::load(&store, &schemas_dir()).await.unwrap();
        let admin = Principal {
            username: "admin".into(),
            role: Role::Admin,
            scope: None,
            request_id: None,
            session: None,
        };
        Self {
            _dir: dir,
            store,
            forms,
            admin,
        }
    }

    /// Parse and validate; stores what passes. A refusal must be a 4xx, never a panic or a 5xx.
    fn feed(&self, bytes: &[u8]) -> Result<bool, TestCaseError> {
        match submissions::validate(&self.forms, FORM, bytes, &self.admin, None) {
            // Stored is enough for an export on the same store; durability is not under test.
            Ok(valid) => match submissions::record(&self.store, &valid, &self.admin) {
                Ok(stored) => {
                    let (outcome, _) = stored.into_parts();
                    prop_assert!(outcome.is_ok(), "a new id was refused: {:?}", outcome.err());
                    Ok(true)
                }
                Err(error) => Err(TestCaseError::fail(format!("storing failed: {error}"))),
            },
            Err(error) => {
                let status = error.status_and_code().0;
                prop_assert!(status.is_client_error(), "{status}: {error}");
                Ok(false)
            }
        }
    }

    /// One table, cleaned, as rows of header → value.
    fn cleaned(&self, table: &str) -> Vec<std::collections::HashMap<String, String>> {
        let export = Export::prepare(&self.forms, FORM, &self.admin, Options::cleaned()).unwrap();
        let index = export.table_index(table).unwrap();
        let mut out = Vec::new();
        export::write_table(&export, &self.store, index, Format::Csv, &mut out).unwrap();
        crate::helpers::csv_rows(&String::from_utf8(out).unwrap())
    }

    /// Every table as CSV, cleaned and raw, with labels and split choices: rows as wide as headers.
    fn export_everything(&self) -> Result<(), TestCaseError> {
        for (labels, multiple, raw) in [
            (false, Multiple::Join, false),
            (true, Multiple::Split, false),
            (false, Multiple::Join, true),
        ] {
            let options = Options {
                since: None,
                until: None,
                version: None,
                labels,
                multiple,
                bom: false,
                raw,
                status: None,
                media: false,
            };
            let export = Export::prepare(&self.forms, FORM, &self.admin, options).unwrap();
            for table in ["main", "members"] {
                let index = export.table_index(table).unwrap();
                let mut out = Vec::new();
                export::write_table(&export, &self.store, index, Format::Csv, &mut out).unwrap();
                let mut csv = csv::Reader::from_reader(out.as_slice());
                let width = csv.headers().unwrap().len();
                for row in csv.records() {
                    prop_assert_eq!(row.unwrap().len(), width, "a {} row", table);
                }
            }
        }
        Ok(())
    }
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

/// Any JSON value, nested a few levels.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("JSON has no NaN", |f| {
            serde_json::Number::from_f64(f).map(Value::Number)
        }),
        tricky_text().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            hash_map("[a-z_]{1,12}", inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Text as phones and people produce it: any characters, spreadsheet formulas, full-width
/// digits and letters, stray spaces, ID-number lookalikes.
fn tricky_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,16}",
        "[=+@-][^\\n]{0,10}",
        "[０-９ｘＸ \u{3000}]{0,18}",
        "[0-9xX ]{15,19}",
        "\\s{0,3}[\u{4e00}-\u{4e20}]{1,6}\\s{0,3}",
        ".{0,3}[\r\n\t\",].{0,3}",
    ]
}

/// The fixture household with a few leaves replaced: mostly still valid, never tidy.
fn mangled_household() -> impl Strategy<Value = Value> {
    let base = household();
    let leaves = leaf_pointers(&base, String::new());
    let count = leaves.len();
    let replacement = prop_oneof![
        3 => tricky_text().prop_map(Value::from),
        1 => any::<i32>().prop_map(Value::from),
        1 => (0.0f64..10_000.0).prop_map(Value::from),
        1 => any::<bool>().prop_map(Value::from),
        1 => Just(Value::Null),
    ];
    vec((0..count, replacement), 0..5).prop_map(move |changes| {
        let mut data = base.clone();
        for (leaf, value) in changes {
            if let Some(slot) = data.pointer_mut(&leaves[leaf]) {
                *slot = value;
            }
        }
        data
    })
}

fn leaf_pointers(value: &Value, at: String) -> Vec<String> {
    match value {
        Value::Object(map) => map
            .iter()
            .flat_map(|(key, v)| leaf_pointers(v, format!("{at}/{key}")))
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .flat_map(|(i, v)| leaf_pointers(v, format!("{at}/{i}")))
            .collect(),
        _ => vec![at],
    }
}

fn envelope_bytes(data: &Value, completed_at: Option<String>) -> Vec<u8> {
    let mut envelope = json!({"id": uuid::Uuid::new_v4(), "data": data});
    if let Some(at) = completed_at {
        envelope["meta"] = json!({"completed_at": at});
    }
    serde_json::to_vec(&envelope).unwrap()
}

#[tokio::test]
async fn arbitrary_bytes_are_refused_as_client_errors_without_panicking() {
    let pipeline = Pipeline::new().await;
    let inputs = prop_oneof![
        vec(any::<u8>(), 0..400),
        any_json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
    ];
    runner(512)
        .run(&inputs, |bytes| pipeline.feed(&bytes).map(drop))
        .unwrap();
    pipeline.export_everything().unwrap();
}

#[tokio::test]
async fn any_json_as_answers_is_refused_as_a_client_error_without_panicking() {
    let pipeline = Pipeline::new().await;
    runner(256)
        .run(&any_json(), |data| {
            pipeline.feed(&envelope_bytes(&data, None)).map(drop)
        })
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_county_validates_whole_and_its_cleaned_export_gives_it_back_exactly() {
    let runtime = tokio::runtime::Handle::current();
    runner(12)
        .run(&any::<u64>(), |seed| {
            // The simulator's county: valid households, with re-visits, retries, keyboard
            // quirks, wrong clocks and training submissions mixed in on purpose.
            let plan = survey_server::simulate::plan::generate(seed, 0.002);
            let pipeline = tokio::task::block_in_place(|| runtime.block_on(Pipeline::new()));
            for upload in &plan.uploads {
                let stored = pipeline.feed(upload.body.as_bytes())?;
                prop_assert!(stored, "seed {seed}: a generated household was refused");
            }
            pipeline.export_everything()?;
            let truth = &plan.truth;
            prop_assert_eq!(pipeline.cleaned("main").len() as u64, truth.households);
            let members = pipeline.cleaned("members");
            prop_assert_eq!(members.len() as u64, truth.labourers);
            let count = |status: &str| {
                members
                    .iter()
                    .filter(|row| row["employment_status"] == status)
                    .count() as u64
            };
            prop_assert_eq!(
                (count("stable"), count("flexible"), count("self_employed")),
                (truth.stable, truth.flexible, truth.self_employed)
            );
            Ok(())
        })
        .unwrap();
}

#[tokio::test]
async fn mangled_households_pass_or_fail_validation_and_always_export_whole_rows() {
    let pipeline = Pipeline::new().await;
    let completed_at = proptest::option::of(prop_oneof![
        "\\PC{0,25}",
        "20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9](Z|\\+08:00)",
    ]);
    let stored = std::cell::Cell::new(0);
    runner(256)
        .run(&(mangled_household(), completed_at), |(data, at)| {
            if pipeline.feed(&envelope_bytes(&data, at))? {
                stored.set(stored.get() + 1);
                // Exporting every few submissions keeps a failure close to the one that caused it.
                if stored.get() % 16 == 1 {
                    pipeline.export_everything()?;
                }
            }
            Ok(())
        })
        .unwrap();
    let stored = stored.get();
    assert!(
        stored > 20,
        "many mangled households still validate ({stored} did)"
    );
    pipeline.export_everything().unwrap();
}
