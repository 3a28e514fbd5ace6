//! References inside one schema document, read the same way by the schema checks and by the
//! export's layout: `#/…` JSON Pointers (percent-encoded or not) and `#name` anchors. A reference
//! to another document (`common.json#/…`) is not followed here.

use percent_encoding::percent_decode_str;
use serde_json::Value;

/// The JSON Pointer, within `root`, of what the local `reference` names; `None` for a reference
/// to another document or to nothing.
pub fn target_pointer(root: &Value, reference: &str) -> Option<String> {
    let fragment = reference.strip_prefix('#')?;
    let fragment = percent_decode_str(fragment).decode_utf8().ok()?;
    if fragment.is_empty() || fragment.starts_with('/') {
        return root.pointer(&fragment).map(|_| fragment.into_owned());
    }
    anchor(root, &fragment, &mut String::new())
}

/// What the local `reference` names.
pub fn target<'a>(root: &'a Value, reference: &str) -> Option<&'a Value> {
    root.pointer(&target_pointer(root, reference)?)
}

/// Follows a schema's local `$ref`s (a bounded number of hops) to the schema they name.
pub fn resolve<'a>(root: &'a Value, mut schema: &'a Value) -> &'a Value {
    for _ in 0..32 {
        let Some(next) = schema
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|reference| target(root, reference))
        else {
            break;
        };
        schema = next;
    }
    schema
}

/// The pointer of the subschema that declares `"$anchor": name`.
fn anchor(value: &Value, name: &str, at: &mut String) -> Option<String> {
    let length = at.len();
    let found = match value {
        Value::Object(members) => {
            if members.get("$anchor").and_then(Value::as_str) == Some(name) {
                return Some(at.clone());
            }
            members.iter().find_map(|(key, member)| {
                at.truncate(length);
                at.push('/');
                at.push_str(&key.replace('~', "~0").replace('/', "~1"));
                anchor(member, name, at)
            })
        }
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            at.truncate(length);
            at.push('/');
            at.push_str(&i.to_string());
            anchor(item, name, at)
        }),
        _ => None,
    };
    at.truncate(length);
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pointers_encoded_or_not_and_anchors_name_the_same_place() {
        let root = json!({"$defs": {"node": {"$anchor": "knot", "type": "object"}, "a b": {}}});
        assert_eq!(
            target_pointer(&root, "#/$defs/node").as_deref(),
            Some("/$defs/node")
        );
        assert_eq!(
            target_pointer(&root, "#/%24defs/node").as_deref(),
            Some("/$defs/node")
        );
        assert_eq!(
            target_pointer(&root, "#knot").as_deref(),
            Some("/$defs/node")
        );
        assert_eq!(
            target_pointer(&root, "#/$defs/a%20b").as_deref(),
            Some("/$defs/a b")
        );
        assert_eq!(target_pointer(&root, "#").as_deref(), Some(""));
        assert_eq!(target_pointer(&root, "common.json#/$defs/x"), None);
        assert_eq!(target_pointer(&root, "#/$defs/missing"), None);
        assert_eq!(resolve(&root, &json!({"$ref": "#knot"}))["type"], "object");
    }
}
