//! The admin REST API: the configuration in force, and its upstreams and virtual servers put
//! and deleted by name. A change is applied as a file change is ([`Gateway::edit`]): checked
//! whole first (a `400` names the key), then swapped in atomically. Its OpenAPI 3.1 document is
//! served at `/openapi.json` and rendered at `/admin/docs`.
//!
//! | method and path | does |
//! |---|---|
//! | `GET /admin/config` | the configuration in force (secrets redacted) and the last change's outcome |
//! | `GET /admin/upstreams` | every upstream: its configuration and state |
//! | `GET /admin/upstreams/{name}` | one upstream (`404` when there is none) |
//! | `PUT /admin/upstreams/{name}` | adds or replaces it (`201` added, `200` replaced, `400` refused) |
//! | `DELETE /admin/upstreams/{name}` | removes it (`204`; `404`; `400` when a virtual server uses it) |
//! | `GET`, `PUT`, `DELETE /admin/virtual-servers[/{name}]` | the same for virtual servers |
//! | `POST /admin/api-keys` | makes an API key (`201`; the answer holds the key itself, shown this once) |
//! | `GET /admin/api-keys` | every key, without secrets |
//! | `DELETE /admin/api-keys/{id}` | revokes it (`204`; `404`) |
//! | `GET /admin/audit` | audit records, newest first, filtered by `kind`, `principal`, `method`, `outcome`, `upstream`, `correlation_id`, `since_ms`; paged by `limit` and `before` ([`crate::audit`]) |
//!
//! Every change, and every request refused for its token, is recorded in the audit trail
//! when there is one.
//!
//! Who may call it: see [`crate::config::AdminConfig`]. Every answer is JSON, errors included
//! (`{"error": "…"}`).

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::Gateway;
use crate::audit;
use crate::config::{Config, UpstreamConfig, VirtualServerConfig};
use crate::http::json_response;
use crate::reload::Edit;

/// The admin API's routes.
pub(crate) fn router() -> Router<Gateway> {
    Router::new()
        .route("/admin/config", get(config))
        .route("/admin/upstreams", get(list_upstreams))
        .route(
            "/admin/upstreams/{name}",
            get(get_upstream).put(put_upstream).delete(delete_upstream),
        )
        .route("/admin/audit", get(audit_records))
        .route("/admin/api-keys", get(list_api_keys).post(create_api_key))
        .route("/admin/api-keys/{id}", axum::routing::delete(revoke_api_key))
        .route("/admin/virtual-servers", get(list_virtual_servers))
        .route(
            "/admin/virtual-servers/{name}",
            get(get_virtual_server)
                .put(put_virtual_server)
                .delete(delete_virtual_server),
        )
        .route("/openapi.json", get(openapi))
        .route("/admin/docs", get(docs))
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    json_response(status, &json!({"error": message.to_string()}))
}

/// The answer, when the request may not use the admin API.
fn refused(gateway: &Gateway, headers: &HeaderMap) -> Option<Response> {
    let config = gateway.config();
    match &config.admin.token {
        Some(token) => {
            let sent = headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            // Compared without stopping at the first difference.
            let matches = sent.is_some_and(|sent| {
                sent.len() == token.len() && sent.bytes().zip(token.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
            });
            if matches {
                None
            } else {
                if let Some(auditor) = gateway.auditor() {
                    let mut record =
                        audit::Record::new(audit::Kind::Denial, "admin API", "denied", audit::correlation_id());
                    record.detail = Some(
                        if sent.is_some() {
                            "wrong admin token"
                        } else {
                            "no admin token"
                        }
                        .into(),
                    );
                    auditor.record_later(record);
                }
                let mut response = error(
                    StatusCode::UNAUTHORIZED,
                    "the admin API needs `Authorization: Bearer <admin.token>`",
                );
                response.headers_mut().insert(
                    axum::http::header::WWW_AUTHENTICATE,
                    axum::http::HeaderValue::from_static("Bearer"),
                );
                Some(response)
            }
        }
        None if config.listen.ip().is_loopback() => None,
        None => Some(error(
            StatusCode::NOT_FOUND,
            "the admin API is off: set `admin.token` to use it on a non-loopback address",
        )),
    }
}

/// A configuration with its secrets replaced (environment values, HTTP headers, tokens, OAuth
/// client secrets).
fn redacted<T: Serialize>(value: &T) -> Value {
    let mut value = serde_json::to_value(value).unwrap_or(Value::Null);
    redact(&mut value);
    value
}

fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                if key == "env" || key == "headers" {
                    // Environment values and HTTP headers (an upstream's, a webhook's) carry
                    // credentials.
                    if let Value::Object(env) = item {
                        for v in env.values_mut() {
                            *v = "<redacted>".into();
                        }
                    }
                } else if matches!(key.as_str(), "token" | "secret" | "client_secret") {
                    *item = "<redacted>".into();
                } else {
                    redact(item);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

async fn config(State(gateway): State<Gateway>, headers: HeaderMap) -> Response {
    if let Some(refusal) = refused(&gateway, &headers) {
        return refusal;
    }
    json_response(
        StatusCode::OK,
        &json!({"config": redacted(&gateway.config()), "last_change": gateway.last_change()}),
    )
}

/// An upstream's configuration and state.
fn upstream_view(gateway: &Gateway, upstream: &UpstreamConfig) -> Value {
    let routes = gateway.routes();
    let state = routes.upstreams.iter().find(|u| u.name() == upstream.name);
    json!({
        "config": redacted(upstream),
        "available": state.is_some_and(|u| u.is_available()),
        "replicas": state.map(|u| u.replicas().iter().map(|r| json!({
            "target": r.describe(),
            "connected": r.is_connected(),
            "breaker": r.breaker_state(),
            "in_flight": r.in_flight(),
        })).collect::<Vec<_>>()),
    })
}

async fn list_upstreams(State(gateway): State<Gateway>, headers: HeaderMap) -> Response {
    if let Some(refusal) = refused(&gateway, &headers) {
        return refusal;
    }
    let config = gateway.config();
    let upstreams: Vec<Value> = config.upstreams.iter().map(|u| upstream_view(&gateway, u)).collect();
    json_response(StatusCode::OK, &json!({"upstreams": upstreams}))
}

async fn get_upstream(State(gateway): State<Gateway>, headers: HeaderMap, Path(name): Path<String>) -> Response {
    if let Some(refusal) = refused(&gateway, &headers) {
        return refusal;
    }
    match gateway.config().upstream(&name) {
        Some(upstream) => json_response(StatusCode::OK, &upstream_view(&gateway, upstream)),
        None => error(StatusCode::NOT_FOUND, format!("no upstream is named `{name}`")),
    }
}

/// Reads a JSON body as `T`, whose `name` must be the path's; the error says what is wrong.
fn body<T: DeserializeOwned>(bytes: &Bytes, name: &str, of: impl Fn(&T) -> &str) -> Result<T, String> {
    let value: T = serde_json::from_slice(bytes).map_err(|e| format!("body: {e}"))?;
    if of(&value) != name {
        return Err(format!("body: `name` is `{}`, the path says `{name}`", of(&value)));
    }
    Ok(value)
}

/// Applies an edit: `201` when `existed` is false, else `200`; `204` for a deletion. The
/// change, applied or not, is recorded in the audit trail before the answer.
async fn apply(gateway: &Gateway, edit: Edit, existed: bool, deleting: bool) -> Response {
    let started = std::time::Instant::now();
    let what = match &edit {
        Edit::PutUpstream(upstream) => format!("PUT /admin/upstreams/{}", upstream.name),
        Edit::DeleteUpstream(name) => format!("DELETE /admin/upstreams/{name}"),
        Edit::PutVirtualServer(server) => format!("PUT /admin/virtual-servers/{}", server.name),
        Edit::DeleteVirtualServer(name) => format!("DELETE /admin/virtual-servers/{name}"),
    };
    let digest = match &edit {
        Edit::PutUpstream(upstream) => Some(audit::digest(&json!(upstream))),
        Edit::PutVirtualServer(server) => Some(audit::digest(&json!(server))),
        _ => None,
    };
    let outcome = gateway.edit(edit).await;
    let failed = outcome.as_ref().err().map(ToString::to_string);
    record_change(gateway, what, digest, failed, started).await;
    match outcome {
        Ok(()) if deleting => StatusCode::NO_CONTENT.into_response(),
        Ok(()) if existed => json_response(StatusCode::OK, &json!({"applied": true})),
        Ok(()) => json_response(StatusCode::CREATED, &json!({"applied": true})),
        Err(crate::reload::EditError::Invalid(e)) => error(StatusCode::BAD_REQUEST, e),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

/// `POST /admin/api-keys`: makes a key; the answer holds it (`key`), this once.
async fn create_api_key(State(gateway): State<Gateway>, headers: HeaderMap, bytes: Bytes) -> Response {
    if let Some(refusal) = refused(&gateway, &headers) {
        return refusal;
    }
    let Some(keys) = gateway.api_keys() else {
        return error(StatusCode::NOT_FOUND, API_KEYS_OFF);
    };
    let new: crate::apikeys::NewKey = match serde_json::from_slice(&bytes) {
        Ok(new) => new,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("body: {e}")),
    };
    let started = std::time::Instant::now();
    let made = keys.create(new).await;
    let record = made.as_ref().ok().map(|(key, _)| key.clone());
    let what = format!("POST /admin/api-keys/{}", record.as_ref().map_or("", |k| k.id.as_str()));
    record_change(&gateway, what, None, made.as_ref().err().cloned(), started).await;
    match made {
        Ok((key, secret)) => {
            let mut body = json!(key);
            body["key"] = json!(secret);
            json_response(StatusCode::CREATED, &body)
        }
        Err(e) if e.starts_with('`') => error(StatusCode::BAD_REQUEST, e),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

/// `GET /admin/api-keys`: every key, without secrets.
async fn list_api_keys(State(gateway): State<Gateway>, headers: HeaderMap) -> Response {
    if let Some(refusal) = refused(&gateway, &headers) {
        return refusal;
    }
    let Some(keys) = gateway.api_keys() else {
        return error(StatusCode::NOT_FOUND, API_KEYS_OFF);
    };
    match keys.list().await {
        Ok(list) => json_response(StatusCode::OK, &json!({"api_keys": list})),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

/// `DELETE /admin/api-keys/{id}`: revokes the key.
async fn revoke_api_key(State(gateway): State<Gateway>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(refusal) = refused(&gateway, &headers) {
        return refusal;
    }
    let Some(keys) = gateway.api_keys() else {
        return error(StatusCode::NOT_FOUND, API_KEYS_OFF);
    };
    let started = std::time::Instant::now();
    let revoked = keys.revoke(&id).await;
    match revoked {
        Ok(true) => {
            record_change(&gateway, format!("DELETE /admin/api-keys/{id}"), None, None, started).await;
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(false) => error(
            StatusCode::NOT_FOUND,
            format!("no key `{id}` (or it was revoked already)"),
        ),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

const API_KEYS_OFF: &str = "API keys are off: configure `auth` (with `api_keys`, on by default) to use them";

/// Records an admin change (`digest`: of what it put) in the audit trail, if there is one
/// (`error`: it failed).
async fn record_change(
    gateway: &Gateway,
    what: String,
    digest: Option<String>,
    error: Option<String>,
    started: std::time::Instant,
) {
    let Some(auditor) = gateway.auditor() else { return };
    let outcome = if error.is_none() { "ok" } else { "error" };
    let mut record = audit::Record::new(audit::Kind::Admin, what, outcome, audit::correlation_id());
    record.principal = Some(ADMIN_PRINCIPAL.into());
    record.arguments_digest = digest;
    record.detail = error;
    record.latency_us = Some(i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX));
    // Done already: a lost record is logged (by the auditor), not undone.
    let _ = auditor.record_or_refuse(record).await;
}

/// Who an admin change's record names: the holder of `admin.token` (or, without one, whoever
/// reached the loopback listener).
const ADMIN_PRINCIPAL: &str = "admin";

/// `GET /admin/audit`: the audit records the query's filters pick, newest first, and the
/// `before` of the next page (absent on the last).
async fn audit_records(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    query: Result<Query<audit::Filter>, QueryRejection>,
) -> Response {
    if let Some(refusal) = refused(&gateway, &headers) {
        return refusal;
    }
    let Some(auditor) = gateway.auditor() else {
        return error(
            StatusCode::NOT_FOUND,
            "the audit trail is off: configure `audit` to keep one",
        );
    };
    let Query(filter) = match query {
        Ok(query) => query,
        Err(rejection) => return error(StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    let limit = filter.limit.unwrap_or(100).clamp(1, 1000);
    match auditor.query(&filter).await {
        Ok(records) => {
            let next = (records.len() == limit)
                .then(|| records.last().map(|r| r.id.clone()))
                .flatten();
            json_response(StatusCode::OK, &json!({"records": records, "next": next}))
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("reading the audit trail: {e}")),
    }
}

/// `PUT` of an item read from the body as `T` (whose name must be the path's), applied as
/// `edit` makes it.
async fn put<T: DeserializeOwned>(
    gateway: &Gateway,
    headers: &HeaderMap,
    bytes: &Bytes,
    name: &str,
    name_of: impl Fn(&T) -> &str,
    existed: bool,
    edit: impl FnOnce(T) -> Edit,
) -> Response {
    if let Some(refusal) = refused(gateway, headers) {
        return refusal;
    }
    match body::<T>(bytes, name, name_of) {
        Ok(item) => apply(gateway, edit(item), existed, false).await,
        Err(message) => error(StatusCode::BAD_REQUEST, message),
    }
}

/// `DELETE` of the `what` named `name`, if it `exists`.
async fn delete(gateway: &Gateway, headers: &HeaderMap, what: &str, name: &str, exists: bool, edit: Edit) -> Response {
    if let Some(refusal) = refused(gateway, headers) {
        return refusal;
    }
    if !exists {
        return error(StatusCode::NOT_FOUND, format!("no {what} is named `{name}`"));
    }
    apply(gateway, edit, true, true).await
}

async fn put_upstream(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    Path(name): Path<String>,
    bytes: Bytes,
) -> Response {
    let existed = gateway.config().upstream(&name).is_some();
    let edit = |upstream| Edit::PutUpstream(Box::new(upstream));
    put::<UpstreamConfig>(&gateway, &headers, &bytes, &name, |u| &u.name, existed, edit).await
}

async fn delete_upstream(State(gateway): State<Gateway>, headers: HeaderMap, Path(name): Path<String>) -> Response {
    let exists = gateway.config().upstream(&name).is_some();
    delete(
        &gateway,
        &headers,
        "upstream",
        &name,
        exists,
        Edit::DeleteUpstream(name.clone()),
    )
    .await
}

fn virtual_server(config: &Config, name: &str) -> Option<VirtualServerConfig> {
    config.virtual_servers.iter().find(|v| v.name == name).cloned()
}

async fn list_virtual_servers(State(gateway): State<Gateway>, headers: HeaderMap) -> Response {
    if let Some(refusal) = refused(&gateway, &headers) {
        return refusal;
    }
    json_response(
        StatusCode::OK,
        &json!({"virtual_servers": gateway.config().virtual_servers}),
    )
}

async fn get_virtual_server(State(gateway): State<Gateway>, headers: HeaderMap, Path(name): Path<String>) -> Response {
    if let Some(refusal) = refused(&gateway, &headers) {
        return refusal;
    }
    match virtual_server(&gateway.config(), &name) {
        Some(server) => json_response(StatusCode::OK, &json!(server)),
        None => error(StatusCode::NOT_FOUND, format!("no virtual server is named `{name}`")),
    }
}

async fn put_virtual_server(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    Path(name): Path<String>,
    bytes: Bytes,
) -> Response {
    let existed = virtual_server(&gateway.config(), &name).is_some();
    put::<VirtualServerConfig>(
        &gateway,
        &headers,
        &bytes,
        &name,
        |v| &v.name,
        existed,
        Edit::PutVirtualServer,
    )
    .await
}

async fn delete_virtual_server(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let exists = virtual_server(&gateway.config(), &name).is_some();
    let edit = Edit::DeleteVirtualServer(name.clone());
    delete(&gateway, &headers, "virtual server", &name, exists, edit).await
}

/// The admin API's OpenAPI 3.1 document.
pub fn openapi_document() -> Value {
    let mut generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let upstream = generator.subschema_for::<UpstreamConfig>();
    let virtual_server = generator.subschema_for::<VirtualServerConfig>();
    let config = generator.subschema_for::<Config>();
    let record = generator.subschema_for::<audit::Record>();
    let api_key = generator.subschema_for::<crate::apikeys::ApiKey>();
    let new_key = generator.subschema_for::<crate::apikeys::NewKey>();
    let mut schemas = serde_json::Map::new();
    for (name, schema) in generator.take_definitions(true) {
        schemas.insert(name, schema);
    }
    let refs = |s: schemars::Schema| {
        let mut value = s.to_value();
        rewrite_refs(&mut value);
        value
    };
    let (upstream, virtual_server, config, record) = (refs(upstream), refs(virtual_server), refs(config), refs(record));
    let (api_key, new_key) = (refs(api_key), refs(new_key));
    let filter = |name: &str, kind: &str, what: &str| json!({"name": name, "in": "query", "required": false, "schema": {"type": kind}, "description": what});
    for schema in schemas.values_mut() {
        rewrite_refs(schema);
    }
    let error = json!({"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}});
    let json_of = |schema: Value| json!({"application/json": {"schema": schema}});
    let failure =
        |what: &str| json!({"description": what, "content": json_of(json!({"$ref": "#/components/schemas/Error"}))});
    let name = json!([{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}]);
    let item = |tag: &str, schema: &Value, what: &str| {
        json!({
            "parameters": name,
            "get": {"tags": [tag], "summary": format!("One {what}"), "responses": {
                "200": {"description": format!("The {what}"), "content": json_of(json!({"type": "object"}))},
                "404": failure(&format!("No {what} of that name"))}},
            "put": {"tags": [tag], "summary": format!("Add or replace a {what}; applied at once, atomically"),
                "requestBody": {"required": true, "content": json_of(schema.clone())},
                "responses": {
                    "200": {"description": "Replaced"},
                    "201": {"description": "Added"},
                    "400": failure("Refused: the body or the resulting configuration is not valid (the message names the key); nothing changed")}},
            "delete": {"tags": [tag], "summary": format!("Remove a {what}"), "responses": {
                "204": {"description": "Removed"},
                "400": failure("Refused: the resulting configuration is not valid (e.g. a virtual server uses the upstream)"),
                "404": failure(&format!("No {what} of that name"))}}
        })
    };
    schemas.insert("Error".into(), error);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Portico gateway admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The gateway's configuration, changed at run time. Every change is checked whole and applied atomically; a refused one changes nothing."
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {"admin": {"type": "http", "scheme": "bearer", "description": "`admin.token` of the configuration (not needed on a loopback listener without one)"}}
        },
        "security": [{"admin": []}, {}],
        "paths": {
            "/admin/config": {"get": {"tags": ["config"], "summary": "The configuration in force (secrets redacted) and the last change's outcome",
                "responses": {"200": {"description": "The configuration", "content": json_of(json!({"type": "object", "properties": {"config": config, "last_change": {"type": ["object", "null"]}}}))}}}},
            "/admin/upstreams": {"get": {"tags": ["upstreams"], "summary": "Every upstream, with its state",
                "responses": {"200": {"description": "The upstreams", "content": json_of(json!({"type": "object"}))}}}},
            "/admin/upstreams/{name}": item("upstreams", &upstream, "upstream"),
            "/admin/virtual-servers": {"get": {"tags": ["virtual servers"], "summary": "Every virtual server",
                "responses": {"200": {"description": "The virtual servers", "content": json_of(json!({"type": "object"}))}}}},
            "/admin/virtual-servers/{name}": item("virtual servers", &virtual_server, "virtual server"),
            "/admin/api-keys": {
                "get": {"tags": ["api keys"], "summary": "Every API key (never its secret)",
                    "responses": {
                        "200": {"description": "The keys", "content": json_of(json!({"type": "object", "properties": {"api_keys": {"type": "array", "items": api_key}}}))},
                        "404": failure("API keys are off (no `auth`, or `auth.api_keys: false`)")}},
                "post": {"tags": ["api keys"], "summary": "Make an API key; the answer holds the key (`pk_…`), shown this once",
                    "requestBody": {"required": true, "content": json_of(new_key)},
                    "responses": {
                        "201": {"description": "Made: the record and `key`", "content": json_of(json!({"allOf": [api_key, {"type": "object", "required": ["key"], "properties": {"key": {"type": "string"}}}]}))},
                        "400": failure("The body is not valid (the message names the field)"),
                        "404": failure("API keys are off")}}},
            "/admin/api-keys/{id}": {
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "delete": {"tags": ["api keys"], "summary": "Revoke an API key (its record stays, marked revoked)", "responses": {
                    "204": {"description": "Revoked"},
                    "404": failure("No such key, or revoked already")}}},
            "/admin/audit": {"get": {"tags": ["audit"], "summary": "Audit records (calls, refusals, admin changes), newest first",
                "parameters": [
                    filter("kind", "string", "`call`, `denial` or `admin`"),
                    filter("principal", "string", "The token's subject"),
                    filter("method", "string", "`tools/call`, `PUT /admin/upstreams/echo`, …"),
                    filter("outcome", "string", "`ok`, `tool_error`, `error`, `denied`, `unavailable`, `timeout`, `input_required`"),
                    filter("upstream", "string", "The upstream that served it"),
                    filter("correlation_id", "string", "The request's trace id, or the id in the access log"),
                    filter("since_ms", "integer", "Only records made at or after this time (ms since the Unix epoch)"),
                    filter("before", "string", "Only records older than this id (the previous page's `next`)"),
                    filter("limit", "integer", "At most this many (default 100, at most 1000)")],
                "responses": {
                    "200": {"description": "The records, and the `before` of the next page (`null` on the last)", "content": json_of(json!({
                        "type": "object", "required": ["records"],
                        "properties": {"records": {"type": "array", "items": record}, "next": {"type": ["string", "null"]}}}))},
                    "400": failure("A filter is not valid"),
                    "404": failure("The audit trail is off (no `audit` configured)"),
                    "503": failure("The state store could not be read")}}},
        }
    })
}

/// Points schemars' `#/$defs/…` references at the document's components.
fn rewrite_refs(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get_mut("$ref")
                && let Some(name) = target.strip_prefix("#/$defs/")
            {
                *target = format!("#/components/schemas/{name}");
            }
            map.values_mut().for_each(rewrite_refs);
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}

async fn openapi() -> Response {
    json_response(StatusCode::OK, &openapi_document())
}

/// The reference page: the document's operations and schemas, as HTML.
async fn docs() -> Html<String> {
    Html(render(&openapi_document()))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn render(document: &Value) -> String {
    let mut html = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Portico gateway admin API</title>\
         <style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}\
         code,pre{background:#f4f4f4;padding:.1rem .3rem}pre{padding:.6rem;overflow:auto}\
         .op{border-left:4px solid #36c;padding-left:.8rem;margin:1.2rem 0}</style></head><body>",
    );
    let info = &document["info"];
    html.push_str(&format!(
        "<h1>{}</h1><p>{}</p><p>Version {}. The machine-readable document: <a href=\"/openapi.json\">/openapi.json</a>.</p>",
        escape(info["title"].as_str().unwrap_or_default()),
        escape(info["description"].as_str().unwrap_or_default()),
        escape(info["version"].as_str().unwrap_or_default()),
    ));
    html.push_str("<h2>Operations</h2>");
    if let Some(paths) = document["paths"].as_object() {
        for (path, item) in paths {
            for method in ["get", "post", "put", "delete"] {
                let Some(op) = item.get(method) else { continue };
                html.push_str(&format!(
                    "<div class=\"op\"><h3><code>{} {}</code></h3><p>{}</p><ul>",
                    method.to_uppercase(),
                    escape(path),
                    escape(op["summary"].as_str().unwrap_or_default())
                ));
                if let Some(responses) = op["responses"].as_object() {
                    for (status, response) in responses {
                        html.push_str(&format!(
                            "<li><code>{status}</code> {}</li>",
                            escape(response["description"].as_str().unwrap_or_default())
                        ));
                    }
                }
                html.push_str("</ul></div>");
            }
        }
    }
    html.push_str("<h2>Schemas</h2>");
    if let Some(schemas) = document["components"]["schemas"].as_object() {
        for (name, schema) in schemas {
            let pretty = serde_json::to_string_pretty(schema).unwrap_or_default();
            html.push_str(&format!(
                "<h3 id=\"{0}\">{0}</h3><pre>{1}</pre>",
                escape(name),
                escape(&pretty)
            ));
        }
    }
    html.push_str("</body></html>");
    html
}
