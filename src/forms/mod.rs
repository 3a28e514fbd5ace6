//! The form registry: every published version of every questionnaire, compiled and ready to validate.
//!
//! Versions are immutable. The *current* version of a form is the one published last, which is
//! what a phone gets when it does not ask for a version. Shipped files are published on start-up
//! like any other version (see `files.rs`).

mod checks;
pub(crate) mod compile;
mod files;
pub mod formats;
pub mod ids;
pub mod messages;
pub mod refs;
pub mod rules;
pub mod xlsform;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use jsonschema::Registry;
use serde_json::Value;

use compile::Compiled;
use messages::Lang;

use crate::audit::{self, AuditAction};
use crate::auth::{Permission, Principal};
use crate::error::AppError;
use crate::store::{FormInsert, Store, StoreError, StoredFormVersion, StoredWorkbook};
use ids::FormId;

/// Why the forms could not be loaded at start-up.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{}: {problem}", path.display())]
    File { path: PathBuf, problem: String },
    #[error("the schemas directory cannot be used as a $ref library: {0}")]
    Library(String),
    #[error("reading published forms: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// One published form version, compiled.
pub struct FormVersion {
    /// What the store holds: id, version, title, schema, publication time.
    pub stored: StoredFormVersion,
    /// The compiled schema, or why this stored version cannot be used (it was published before
    /// a rule it breaks existed): it stays listed, but submitting to it or exporting it is refused.
    compiled: Result<Compiled, String>,
}

impl FormVersion {
    fn new(stored: StoredFormVersion, compiled: Result<Compiled, String>) -> Self {
        Self { stored, compiled }
    }

    /// 422 `schema_invalid` if this version breaks a rule for schemas.
    pub fn usable(&self) -> Result<&Compiled, AppError> {
        self.compiled
            .as_ref()
            .map_err(|problem| AppError::SchemaInvalid(problem.clone()))
    }

    /// The language of messages for a caller who sent `accept_language` (the form's default otherwise).
    pub fn language(&self, accept_language: Option<&str>) -> Lang {
        let default = self
            .stored
            .schema
            .get("x-default-language")
            .and_then(Value::as_str);
        Lang::negotiate(accept_language, default)
    }

    /// Where a submission is, for scoped access: the string at the schema's `x-scope` JSON Pointer
    /// (the labour survey declares `"x-scope": "/township"`), exactly as sent, so a list and a
    /// single read compare the same text. `None` for forms without one.
    pub fn scope_of(&self, data: &Value) -> Option<String> {
        let pointer = self.stored.schema.get("x-scope")?.as_str()?;
        let place = data.pointer(pointer)?.as_str()?;
        (!place.is_empty()).then(|| place.to_owned())
    }

    /// The files `data`'s answers name (none for an unusable version).
    pub fn attachments(&self, data: &Value) -> Vec<crate::attachments::Expected> {
        self.compiled.as_ref().map_or_else(
            |_| Vec::new(),
            |compiled| crate::attachments::expected(&compiled.attachments, data),
        )
    }

    /// The problems of `data` that `keep` accepts (see `compile::errors_where`), in `lang`.
    pub fn problems_where(
        &self,
        data: &Value,
        lang: Lang,
        keep: impl Fn(&crate::error::Detail) -> bool,
    ) -> Result<Vec<crate::error::Detail>, AppError> {
        Ok(compile::errors_where(
            self.usable()?,
            &self.stored.schema,
            data,
            lang,
            keep,
        ))
    }

    /// Checks `data` against this version's schema and rules: 422 `validation_failed` with one
    /// detail per problem (messages in `lang`), or `schema_invalid` for an unusable version.
    pub fn validate(&self, data: &Value, lang: Lang) -> Result<(), AppError> {
        let errors = compile::errors(self.usable()?, &self.stored.schema, data, lang);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(AppError::ValidationFailed(errors))
        }
    }
}

/// Compiles a schema and applies this server's own rules for schemas (`checks.rs`).
fn prepare(schema: &Value, library: &Registry<'_>) -> Result<Compiled, String> {
    checks::all(schema)?;
    compile::compile(schema, library)
}

/// A form request to publish, as an admin sends it.
pub struct NewFormVersion {
    pub id: String,
    pub version: String,
    pub title: String,
    pub schema: Value,
    /// The XLSForm the schema was made from, kept to be downloaded as published.
    pub workbook: Option<StoredWorkbook>,
}

/// The result of a publication.
pub struct Published {
    pub version: Arc<FormVersion>,
    /// False when this exact version already existed: publishing it again changed nothing.
    pub created: bool,
}

/// All forms, kept in memory; shared through `AppState`.
pub struct FormRegistry {
    /// The `schemas/` files, where `$ref`s resolve.
    library: Registry<'static>,
    /// Form id → its versions in publication order (last = current). A std lock: held only to copy an `Arc`.
    forms: RwLock<BTreeMap<FormId, Vec<Arc<FormVersion>>>>,
}

impl FormRegistry {
    /// Compiles every stored version, then publishes the shipped files that are not stored yet.
    /// A stored version that breaks a rule is loaded as unusable and logged, so the server always
    /// starts; a shipped file whose id and version are stored with other content stops the start.
    pub async fn load(store: &Store, schemas_dir: &Path) -> Result<Self, LoadError> {
        let files = files::read_dir(schemas_dir)?;
        let registry = Self {
            library: files::library(&files)?,
            forms: RwLock::new(BTreeMap::new()),
        };
        for stored in store.form_versions()? {
            let compiled = prepare(&stored.schema, &registry.library);
            if let Err(problem) = &compiled {
                tracing::warn!(form = %stored.form, version = %stored.version, %problem,
                    "a published form version breaks a rule for schemas: submitting to it and exporting it are refused");
            }
            registry.insert(FormVersion::new(stored, compiled));
        }
        for file in &files {
            // A workbook published before, byte for byte, stays as it was converted then: a
            // newer converter (which may read it differently, or refuse it) does not touch it.
            if let Some(workbook) = &file.workbook
                && registry
                    .all()
                    .iter()
                    .flatten()
                    .any(|v| v.stored.workbook.as_ref() == Some(workbook))
            {
                continue;
            }
            if let Some(problem) = &file.unconverted {
                return Err(file.problem(problem.clone()));
            }
            let Some(form) = file.form()? else {
                tracing::info!(file = %file.path.display(), "shared schema definitions (no x-form-id)");
                continue;
            };
            let stored_already = registry
                .resolve(form.id, Some(form.version))
                .is_ok_and(|v| {
                    v.stored.title == form.title.trim() && v.stored.schema == file.schema
                });
            if stored_already {
                continue;
            }
            let request = NewFormVersion {
                id: form.id.to_owned(),
                version: form.version.to_owned(),
                title: form.title.to_owned(),
                schema: file.schema.clone(),
                workbook: file.workbook.clone(),
            };
            match registry.publish(store, request, &Principal::system()).await {
                Ok(published) if published.created => tracing::info!(
                    form = form.id, version = form.version, file = %file.path.display(), "published form version"
                ),
                Ok(_) => {}
                Err(AppError::FormVersionConflict) => {
                    return Err(file.problem(format!(
                        "form {} version {} is already published with other content, and published \
                         versions never change: give the edited schema a new x-form-version",
                        form.id, form.version
                    )));
                }
                Err(other) => return Err(file.problem(other.to_string())),
            }
        }
        Ok(registry)
    }

    /// Publishes a version (admins), durably, unless the same id+version exists (same content:
    /// no-op; other: conflict).
    pub async fn publish(
        &self,
        store: &Store,
        new: NewFormVersion,
        by: &Principal,
    ) -> Result<Published, AppError> {
        by.require(Permission::PublishForms)?;
        let id = FormId::parse(&new.id).ok_or_else(|| {
            AppError::invalid_field(
                "/id",
                "form id: lower-case letters, digits, - and _, at most 64",
            )
        })?;
        if !ids::is_valid_version(&new.version) {
            return Err(AppError::invalid_field(
                "/version",
                "version: letters, digits, . - and _, at most 32",
            ));
        }
        let title = crate::limits::form_title(&new.title)?;
        let compiled = prepare(&new.schema, &self.library).map_err(AppError::SchemaInvalid)?;
        let event = audit::by(
            by,
            AuditAction::FormPublished,
            audit::form_target(id.as_str(), &new.version),
        );
        let inserted = store
            .insert_form_version(
                &id,
                &new.version,
                &title,
                &new.schema,
                new.workbook.as_ref(),
                &event,
            )?
            .durable()
            .await?;
        match inserted {
            FormInsert::Exists(stored) => {
                if stored.title != title || stored.schema != new.schema {
                    return Err(AppError::FormVersionConflict);
                }
                // The publisher that wrote it may not have registered it yet.
                let version = self
                    .resolve(id.as_str(), Some(&new.version))
                    .unwrap_or_else(|_| Arc::new(FormVersion::new(stored, Ok(compiled))));
                Ok(Published {
                    version,
                    created: false,
                })
            }
            FormInsert::Created(stored) => {
                let version = self.insert(FormVersion::new(stored, Ok(compiled)));
                Ok(Published {
                    version,
                    created: true,
                })
            }
        }
    }

    /// The version a submission is for: the named one, or the current one.
    pub fn resolve(&self, form: &str, version: Option<&str>) -> Result<Arc<FormVersion>, AppError> {
        let forms = self.forms.read().unwrap_or_else(|p| p.into_inner());
        let versions = forms.get(form).ok_or(AppError::FormNotFound)?;
        let found = match version {
            None => versions.last(),
            Some(wanted) => versions.iter().find(|v| v.stored.version == wanted),
        };
        found.cloned().ok_or(AppError::FormVersionUnknown)
    }

    /// Every version of one form, in publication order.
    pub fn versions(&self, form: &str) -> Result<Vec<Arc<FormVersion>>, AppError> {
        let forms = self.forms.read().unwrap_or_else(|p| p.into_inner());
        forms.get(form).cloned().ok_or(AppError::FormNotFound)
    }

    /// Every form with its versions, by form id.
    pub fn all(&self) -> Vec<Vec<Arc<FormVersion>>> {
        let forms = self.forms.read().unwrap_or_else(|p| p.into_inner());
        forms.values().cloned().collect()
    }

    /// Takes in the versions another node published (several nodes on one database); versions
    /// are never removed, so a count that matches means nothing is new. How many were new.
    pub fn refresh(&self, store: &Store) -> Result<usize, StoreError> {
        let known: usize = self.all().iter().map(Vec::len).sum();
        if store.form_version_count()? == known as u64 {
            return Ok(0);
        }
        let mut added = 0;
        for stored in store.form_versions()? {
            if self
                .resolve(stored.form.as_str(), Some(&stored.version))
                .is_ok()
            {
                continue;
            }
            let compiled = prepare(&stored.schema, &self.library);
            self.insert(FormVersion::new(stored, compiled));
            added += 1;
        }
        Ok(added)
    }

    /// Adds a version unless it is there already (a refresh may have found it first).
    fn insert(&self, version: FormVersion) -> Arc<FormVersion> {
        let version = Arc::new(version);
        let mut forms = self.forms.write().unwrap_or_else(|p| p.into_inner());
        let versions = forms.entry(version.stored.form.clone()).or_default();
        if let Some(known) = versions.iter().find(|v| v.stored.seq == version.stored.seq) {
            return Arc::clone(known);
        }
        versions.push(version.clone());
        versions.sort_by_key(|v| v.stored.seq);
        version
    }
}
