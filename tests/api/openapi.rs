//! The OpenAPI document: generated from the routes, committed, served, and complete.

use serde_json::Value;

use crate::helpers::spawn_app;

fn committed() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.yaml"))
        .expect("openapi/openapi.yaml is committed")
}

#[test]
fn the_committed_document_is_up_to_date() {
    let generated = tessera::http::docs::document_yaml();
    assert!(
        committed() == generated,
        "openapi/openapi.yaml is stale: run `cargo run -- openapi > openapi/openapi.yaml`"
    );
}

/// What `/openapi.json` serves is, value for value, `openapi/openapi.yaml` as committed
/// (so a stale file fails here too, not only in the textual comparison above).
#[tokio::test]
async fn the_served_document_is_the_committed_one() {
    let app = spawn_app().await;
    let res = app.api.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let served: Value = res.json().await.unwrap();
    let committed: Value =
        yaml_serde::from_str(&committed()).expect("openapi/openapi.yaml is valid YAML");
    assert_eq!(committed["openapi"], "3.1.0");
    assert!(
        served == committed,
        "/openapi.json differs from openapi/openapi.yaml; first difference at {}",
        first_difference(&served, &committed, "#")
    );
}

/// The JSON pointer of the first place where two documents differ.
fn first_difference(a: &Value, b: &Value, at: &str) -> String {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (key, value) in x {
                let here = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                match y.get(key) {
                    Some(other) if other == value => {}
                    Some(other) => return first_difference(value, other, &here),
                    None => return format!("{here} (only served)"),
                }
            }
            match y.keys().find(|key| !x.contains_key(*key)) {
                Some(key) => format!("{at}/{key} (only committed)"),
                None => at.to_owned(),
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find(|(_, (p, q))| p != q)
            .map(|(i, (p, q))| first_difference(p, q, &format!("{at}/{i}")))
            .unwrap_or_else(|| at.to_owned()),
        _ => format!("{at}: served {a}, committed {b}"),
    }
}

/// Every documented operation is routed: none answers "no route" (404) or 405.
#[tokio::test]
async fn every_documented_operation_exists() {
    let app = spawn_app().await;
    let doc: Value = app
        .api
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 27, "{} paths", paths.len());
    for (path, item) in paths {
        let concrete = path
            .replace("{id}", "00000000-0000-0000-0000-000000000000")
            .replace("{sid}", "00000000-0000-0000-0000-000000000000");
        for method in item.as_object().unwrap().keys() {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let res = app
                .api
                .request(method.clone(), app.url(&concrete))
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let body = res.text().await.unwrap_or_default();
            assert!(
                status != 405 && !(status == 404 && body.contains("no route")),
                "{method} {path}: {status} {body}"
            );
        }
    }
}

#[tokio::test]
async fn every_operation_documents_its_responses_and_security() {
    let doc: Value =
        serde_json::from_str(&tessera::http::docs::document().to_json().unwrap()).unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path}"
            );
            assert!(op["tags"].is_array(), "{method} {path} has a tag");
            if path.starts_with("/v1/") && path != "/v1/users" {
                assert_eq!(
                    op["security"][0]["bearer"],
                    serde_json::json!([]),
                    "{method} {path}"
                );
            }
        }
    }
    let mut ids: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .map(|op| op["operationId"].as_str().unwrap())
        .collect();
    let count = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count, "operationIds are unique");
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["client_basic"]["scheme"], "basic");
}

#[tokio::test]
async fn the_api_reference_is_served_from_the_binary() {
    let app = spawn_app().await;
    let res = app.api.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(res.status(), 308);
    let res = app.api.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("script-src 'self' 'unsafe"));
    assert!(res.text().await.unwrap().to_lowercase().contains("swagger"));
    let config = app
        .api
        .get(app.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(config.status(), 200);
    assert!(config.text().await.unwrap().contains("/openapi.json"));
    let bundle = app
        .api
        .get(app.url("/docs/swagger-ui-bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(bundle.status(), 200);
    assert!(
        bundle.bytes().await.unwrap().len() > 100_000,
        "the assets are in the binary"
    );
}
