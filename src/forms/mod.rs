//! The form registry: every published version of every questionnaire, compiled and ready to validate.
//!
//! Versions are immutable. The *current* version of a form is the one published last, which is
//! what a phone gets when it does not ask for a version. Shipped files are published on start-up
//! like any other version (see `files.rs`).

mod compile;
mod files;
pub mod formats;
pub mod ids;
pub mod messages;
pub mod rules;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use jsonschema::Registry;
use serde_json::Value;

use compile::Compiled;
use messages::Lang;

use crate::error::{AppError, Detail};
use crate::store::{AuditEvent, FormInsert, Store, StoredFormVersion};

/// Why the forms could not be loaded at start-up.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{}: {problem}", path.display())]
    File { path: PathBuf, problem: String },
    #[error("the schemas directory cannot be used as a $ref library: {0}")]
    Library(String),
    #[error("published form {form} version {version} no longer compiles: {problem}")]
    Stored {
        form: String,
        version: String,
        problem: String,
    },
    #[error("reading published forms: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// One published form version, compiled.
pub struct FormVersion {
    /// What the store holds: id, version, title, schema, publication time.
    pub stored: StoredFormVersion,
    compiled: Compiled,
}

impl FormVersion {
    fn new(stored: StoredFormVersion, compiled: Compiled) -> Self {
        Self { stored, compiled }
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
    /// (the labour survey declares `"x-scope": "/township"`). `None` for forms without one.
    pub fn scope_of(&self, data: &Value) -> Option<String> {
        let pointer = self.stored.schema.get("x-scope")?.as_str()?;
        Some(data.pointer(pointer)?.as_str()?.trim().to_owned())
    }

    /// Checks `data` against this version's schema and rules; on failure, one detail per problem,
    /// with messages in `lang`.
    pub fn validate(&self, data: &Value, lang: Lang) -> Result<(), Vec<Detail>> {
        let errors = compile::errors(&self.compiled, &self.stored.schema, data, lang);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// A form request to publish, as an admin sends it.
pub struct NewFormVersion {
    pub id: String,
    pub version: String,
    pub title: String,
    pub schema: Value,
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
    forms: RwLock<BTreeMap<String, Vec<Arc<FormVersion>>>>,
}

impl FormRegistry {
    /// Compiles every stored version, then publishes the shipped files that are not stored yet.
    /// A shipped file whose id and version are stored with other content stops the start.
    pub async fn load(store: &Store, schemas_dir: &Path) -> Result<Self, LoadError> {
        let files = files::read_dir(schemas_dir)?;
        let registry = Self {
            library: files::library(&files)?,
            forms: RwLock::new(BTreeMap::new()),
        };
        for stored in store.form_versions()? {
            let compiled =
                compile::compile(&stored.schema, &registry.library).map_err(|problem| {
                    LoadError::Stored {
                        form: stored.form.clone(),
                        version: stored.version.clone(),
                        problem,
                    }
                })?;
            registry.insert(FormVersion::new(stored, compiled));
        }
        for file in &files {
            let Some(form) = file.form()? else {
                tracing::info!(file = %file.path.display(), "shared schema definitions (no x-form-id)");
                continue;
            };
            let request = NewFormVersion {
                id: form.id.to_owned(),
                version: form.version.to_owned(),
                title: form.title.to_owned(),
                schema: file.schema.clone(),
            };
            match registry.publish(store, request, "system", None).await {
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

    /// Publishes a version, durably, unless the same id+version exists (same content: no-op; other: conflict).
    pub async fn publish(
        &self,
        store: &Store,
        new: NewFormVersion,
        actor: &str,
        request_id: Option<String>,
    ) -> Result<Published, AppError> {
        if !ids::is_valid_form_id(&new.id) {
            return Err(AppError::invalid_field(
                "/id",
                "form id: lower-case letters, digits, - and _, at most 64",
            ));
        }
        if !ids::is_valid_version(&new.version) {
            return Err(AppError::invalid_field(
                "/version",
                "version: letters, digits, . - and _, at most 32",
            ));
        }
        if new.title.trim().is_empty() {
            return Err(AppError::invalid_field("/title", "title must not be empty"));
        }
        let compiled =
            compile::compile(&new.schema, &self.library).map_err(AppError::SchemaInvalid)?;
        let published_at = crate::clock::now_rfc3339();
        let event = AuditEvent {
            actor: actor.to_owned(),
            action: crate::audit::FORM_PUBLISHED,
            target: crate::audit::form_target(&new.id, &new.version),
            request_id,
        };
        match store.insert_form_version(
            &new.id,
            &new.version,
            &new.title,
            &new.schema,
            published_at,
            &event,
        )? {
            FormInsert::Exists(stored) => {
                if stored.title != new.title || stored.schema != new.schema {
                    return Err(AppError::FormVersionConflict);
                }
                // The publisher that wrote it may not have flushed or registered it yet.
                store.wait_durable().await?;
                let version = self
                    .resolve(&new.id, Some(&new.version))
                    .unwrap_or_else(|_| Arc::new(FormVersion::new(stored, compiled)));
                Ok(Published {
                    version,
                    created: false,
                })
            }
            FormInsert::Created(stored) => {
                store.wait_durable().await?;
                let version = self.insert(FormVersion::new(stored, compiled));
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

    fn insert(&self, version: FormVersion) -> Arc<FormVersion> {
        let version = Arc::new(version);
        let mut forms = self.forms.write().unwrap_or_else(|p| p.into_inner());
        let versions = forms.entry(version.stored.form.clone()).or_default();
        versions.push(version.clone());
        versions.sort_by_key(|v| v.stored.seq);
        version
    }
}
