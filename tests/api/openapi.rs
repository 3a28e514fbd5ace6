//! The OpenAPI document: served, 3.1, and in step with the router, route for route.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::spawn_app;

async fn document() -> Value {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "served without a token");
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_spec_documents_exactly_the_routes_the_server_answers() {
    let spec = document().await;
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));

    let served: BTreeSet<(String, String)> = survey_server::route_table()
        .into_iter()
        .map(|(method, path)| (method.as_str().to_lowercase(), path.to_owned()))
        .collect();
    let documented: BTreeSet<(String, String)> = spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|key| {
                    ["get", "post", "put", "patch", "delete", "head", "options"]
                        .contains(&key.as_str())
                })
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();

    let undocumented: Vec<_> = served.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from the spec: {undocumented:?}"
    );
    let stale: Vec<_> = documented.difference(&served).collect();
    assert!(
        stale.is_empty(),
        "the spec documents routes that do not exist: {stale:?}"
    );
}

#[tokio::test]
async fn every_operation_documents_the_error_body_and_the_forms_are_included() {
    let spec = document().await;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            assert_eq!(
                operation["responses"]["default"]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody",
                "{method} {path}"
            );
        }
    }
    let form = &spec["components"]["schemas"]["form.labour-survey.v1"];
    assert_eq!(form["x-form-id"], "labour-survey");
    assert!(form["properties"]["members"].is_object());
    assert!(spec["components"]["securitySchemes"]["bearer"].is_object());
    assert_eq!(
        spec["paths"]["/api/v1/auth/login"]["post"]["security"],
        serde_json::json!([{}]),
        "login needs no token"
    );
}

#[tokio::test]
async fn the_audit_action_parameter_lists_every_audited_action() {
    let spec = document().await;
    let parameters = spec["paths"]["/api/v1/audit"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let action = parameters.iter().find(|p| p["name"] == "action").unwrap();
    assert!(
        action["schema"]
            .to_string()
            .contains("#/components/schemas/AuditAction"),
        "{action}"
    );
    let listed: Vec<&str> = spec["components"]["schemas"]["AuditAction"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|name| name.as_str().unwrap())
        .collect();
    let typed: Vec<&str> = survey_server::audit::AuditAction::ALL
        .iter()
        .map(|action| action.as_str())
        .collect();
    assert_eq!(listed, typed);
}

#[test]
fn the_readme_lists_exactly_the_audited_actions_in_order() {
    let readme = include_str!("../../README.md");
    let start = readme
        .find("Actions: ")
        .expect("the README lists the actions");
    let list = &readme[start..];
    let list = &list[..list.find(".\n").expect("the list ends with a full stop")];
    let listed: Vec<&str> = list.split('`').skip(1).step_by(2).collect();
    let typed: Vec<&str> = survey_server::audit::AuditAction::ALL
        .iter()
        .map(|action| action.as_str())
        .collect();
    assert_eq!(listed, typed);
}
