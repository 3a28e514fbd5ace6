//! References inside one schema document, read the same way by the schema checks and by the
//! export's layout: `#/…` JSON Pointers (percent-encoded or not) and `#name` anchors. A reference
//! to another document (`common.json#/…`) is not followed here.
//!
//! Read this simply, a reference means one thing only if nothing inside the form changes what
//! it resolves against: so a form may not declare an `$id` below its root (an embedded resource
//! with its own base and anchors), nor the same anchor twice (`Document::check`).

use std::collections::HashMap;

use percent_encoding::percent_decode_str;
use serde_json::Value;

/// A schema document with its anchors indexed (one pass, so resolving stays cheap).
pub struct Document<'a> {
    root: &'a Value,
    /// Anchor name → JSON Pointer of the subschema that declares it (the first, if repeated).
    anchors: HashMap<String, String>,
    /// Why references could be read two ways, if they could.
    ambiguity: Option<String>,
}

impl<'a> Document<'a> {
    pub fn new(root: &'a Value) -> Self {
        let mut document = Self {
            root,
            anchors: HashMap::new(),
            ambiguity: None,
        };
        document.index(root, &mut String::new());
        document
    }

    /// Refuses a form whose references this reading could get wrong.
    pub fn check(&self) -> Result<(), String> {
        self.ambiguity.clone().map_or(Ok(()), Err)
    }

    fn index(&mut self, value: &Value, at: &mut String) {
        let length = at.len();
        match value {
            Value::Object(members) => {
                if let Some(name) = members.get("$anchor").and_then(Value::as_str) {
                    if self.anchors.contains_key(name) {
                        self.ambiguity.get_or_insert_with(|| {
                            format!("the anchor \"{name}\" is declared twice (again at #{at})")
                        });
                    } else {
                        self.anchors.insert(name.to_owned(), at.clone());
                    }
                }
                if !at.is_empty() && members.get("$id").is_some_and(Value::is_string) {
                    self.ambiguity.get_or_insert_with(|| {
                        format!("$id below the root (at #{at}) is not supported: it would change what references inside it mean")
                    });
                }
                for (key, member) in members {
                    at.push('/');
                    at.push_str(&key.replace('~', "~0").replace('/', "~1"));
                    self.index(member, at);
                    at.truncate(length);
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    at.push('/');
                    at.push_str(&i.to_string());
                    self.index(item, at);
                    at.truncate(length);
                }
            }
            _ => {}
        }
    }

    pub fn root(&self) -> &'a Value {
        self.root
    }

    /// The JSON Pointer of what the local `reference` names; `None` for a reference to another
    /// document or to nothing.
    pub fn target_pointer(&self, reference: &str) -> Option<String> {
        let fragment = reference.strip_prefix('#')?;
        let fragment = percent_decode_str(fragment).decode_utf8().ok()?;
        if fragment.is_empty() || fragment.starts_with('/') {
            return self.root.pointer(&fragment).map(|_| fragment.into_owned());
        }
        self.anchors.get(fragment.as_ref()).cloned()
    }

    /// What the local `reference` names.
    pub fn target(&self, reference: &str) -> Option<&'a Value> {
        self.root.pointer(&self.target_pointer(reference)?)
    }

    /// Follows a schema's local `$ref`s (a bounded number of hops) to the schema they name.
    pub fn resolve(&self, mut schema: &'a Value) -> &'a Value {
        for _ in 0..32 {
            let Some(next) = schema
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|reference| self.target(reference))
            else {
                break;
            };
            schema = next;
        }
        schema
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pointers_encoded_or_not_and_anchors_name_the_same_place() {
        let root = json!({"$defs": {"node": {"$anchor": "knot", "type": "object"}, "a b": {}}});
        let document = Document::new(&root);
        let pointer = |r: &str| document.target_pointer(r);
        assert_eq!(pointer("#/$defs/node").as_deref(), Some("/$defs/node"));
        assert_eq!(pointer("#/%24defs/node").as_deref(), Some("/$defs/node"));
        assert_eq!(pointer("#knot").as_deref(), Some("/$defs/node"));
        assert_eq!(pointer("#/$defs/a%20b").as_deref(), Some("/$defs/a b"));
        assert_eq!(pointer("#").as_deref(), Some(""));
        assert_eq!(pointer("common.json#/$defs/x"), None);
        assert_eq!(pointer("#/$defs/missing"), None);
        assert_eq!(
            document.resolve(&json!({"$ref": "#knot"}))["type"],
            "object"
        );
        assert_eq!(document.check(), Ok(()));
    }

    #[test]
    fn repeated_anchors_and_embedded_ids_make_references_ambiguous() {
        let twice = json!({"$defs": {"a": {"$anchor": "t"}, "b": {"$anchor": "t"}}});
        assert!(Document::new(&twice).check().unwrap_err().contains("twice"));
        let embedded = json!({"$id": "urn:form", "$defs": {"a": {"$id": "urn:decoy"}}});
        assert!(
            Document::new(&embedded)
                .check()
                .unwrap_err()
                .contains("$id")
        );
    }
}
