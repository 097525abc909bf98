//! The `/v1` API as an OpenAPI 3 document, served at `/v1/openapi.json`
//! (no token needed to read it).
//!
//! The request and answer bodies are the API's own types (`crate::api`,
//! which derive `ToSchema`); the paths are declared here on
//! documentation-only functions, one per call of README's API table (the
//! handlers themselves live in `server/mod.rs`). What a request looks like
//! on the wire (`api::request_json`, built as JSON) is described by the
//! shapes below. `tests/readme_api.rs` checks this document against
//! README's table both ways; `tests/api_schema.rs` runs schemathesis
//! against `serve --demo` with it.

#![allow(dead_code)] // the path functions and shapes exist for the document only

use std::sync::OnceLock;

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use serde_json::Value;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::api::{ApiError, ApproveBody, CreateBody, ReasonBody, RoleBody, ShortenBody, WhoAmI};

/// `GET /v1/openapi.json`: this document (built once).
pub async fn document() -> impl IntoResponse {
    static DOC: OnceLock<String> = OnceLock::new();
    let text = DOC.get_or_init(|| {
        ApiDoc::openapi()
            .to_json()
            .expect("the OpenAPI document serializes")
    });
    ([(CONTENT_TYPE, "application/json")], text.as_str())
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Portcullis",
        description = "Just-in-time Kubernetes access: ask for, approve, deny, shorten and revoke RBAC grants. Every /v1 call but this document carries a bearer token (the hub's apiserver resolves it; the demo's people by name). Errors are {\"error\": {\"code\", \"reason\", \"message\", \"field\"}}.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        healthz, readyz, metrics, openapi_json, whoami, list, create, one, diff,
        approve, deny, shorten, revoke, withdraw, release, credentials, inventory, events, audit,
    ),
    components(schemas(
        ErrorBody, ApiError, CreateBody, RoleBody, ApproveBody, ReasonBody, ShortenBody,
        WhoAmI, Request, Spec, Requester, Status, Decision, Review, Binding, RequestList,
        Diff, Permission, AuditList,
    )),
    modifiers(&BearerAuth, &Examples, &Links, &EveryCall),
    tags(
        (name = "requests", description = "Access requests and the decisions on them"),
        (name = "clusters", description = "What the server knows of each cluster"),
        (name = "stream", description = "The live stream and the audit trail"),
        (name = "server", description = "Who is calling, health, metrics, this document"),
    ),
)]
pub struct ApiDoc;

/// The bearer token every `/v1` call but the document carries.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// What any call may answer whoever handles it (README "API"): a name,
/// query or body the server could not read (422), a body over the limit
/// (413), too many calls from one address (429), and the panic net (500),
/// each in the one error shape.
struct EveryCall;

impl Modify for EveryCall {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = |what: &str| {
            ResponseBuilder::new()
                .description(what)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        for item in doc.paths.paths.values_mut() {
            let operations = [
                item.get.as_mut(),
                item.post.as_mut(),
                item.put.as_mut(),
                item.patch.as_mut(),
                item.delete.as_mut(),
            ];
            for op in operations.into_iter().flatten() {
                for (code, what) in [
                    ("413", "The body is larger than 64 KiB"),
                    ("422", "A name, query or field is wrong (`field` names it)"),
                    ("429", "Too many calls from this address"),
                    (
                        "500",
                        "The server failed on this call (recorded; nothing changed)",
                    ),
                ] {
                    op.responses
                        .responses
                        .entry(code.to_string())
                        .or_insert_with(|| RefOr::T(error(what)));
                }
            }
        }
    }
}

/// README's example bodies (the calls schemathesis makes first).
struct Examples;

impl Modify for Examples {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let Some(components) = doc.components.as_mut() else {
            return;
        };
        for (body, example) in [
            (
                "CreateBody",
                serde_json::json!({"cluster": "prod", "role": {"kind": "ClusterRole", "name": "edit"},
                                   "namespaces": ["payments"], "duration": "30m", "reason": "INC-1", "ticket": "INC-1"}),
            ),
            (
                "ApproveBody",
                serde_json::json!({"duration": "15m", "namespaces": ["payments"]}),
            ),
            ("ReasonBody", serde_json::json!({"reason": "use staging"})),
            ("ShortenBody", serde_json::json!({"to": "10m"})),
        ] {
            if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(body) {
                object.examples = vec![example];
            }
        }
    }
}

/// A new request (201) leads to the calls on it, by its cluster and name
/// (OpenAPI links: clients and schemathesis's stateful phase follow them).
struct Links;

impl Modify for Links {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let Some(created) = doc
            .paths
            .paths
            .get_mut("/v1/requests")
            .and_then(|item| item.post.as_mut())
            .and_then(|op| op.responses.responses.get_mut("201"))
        else {
            return;
        };
        let RefOr::T(created) = created else { return };
        for op in [
            "one",
            "diff",
            "approve",
            "deny",
            "shorten",
            "revoke",
            "withdraw",
            "release",
            "credentials",
        ] {
            created.links.insert(
                op.to_string(),
                utoipa::openapi::link::LinkBuilder::new()
                    .operation_id(op)
                    .parameter("cluster", "$response.body#/cluster")
                    .parameter("name", "$response.body#/name")
                    .build()
                    .into(),
            );
        }
    }
}

/// An error answer.
#[derive(ToSchema)]
pub struct ErrorBody {
    pub error: ApiError,
}

/// Who asked, as the server's authority resolved their token.
#[derive(ToSchema)]
pub struct Requester {
    pub user: String,
    pub groups: Vec<String>,
}

/// What was asked (never changes).
#[derive(ToSchema)]
pub struct Spec {
    pub requester: Requester,
    pub role: RoleBody,
    pub namespaces: Vec<String>,
    /// As asked: `30m`, `2h`.
    pub duration: String,
    pub reason: String,
    #[schema(nullable = false)]
    pub ticket: Option<String>,
    /// `Identity` or `Token`.
    pub credentials: String,
    /// The live grant this extends.
    #[schema(nullable = false)]
    pub extends: Option<String>,
}

/// The decision on a request (the last approver's when several must).
#[derive(ToSchema)]
pub struct Decision {
    pub by: String,
    /// RFC 3339.
    pub at: String,
    /// `Approved` or `Denied`.
    pub verdict: String,
    pub reason: Option<String>,
    /// What was granted (approvals only): may be shorter than asked.
    pub duration: Option<String>,
    /// What was granted (approvals only): may be fewer than asked.
    pub namespaces: Vec<String>,
}

/// One approver's review (when a policy wants several).
#[derive(ToSchema)]
pub struct Review {
    pub by: String,
    /// RFC 3339.
    pub at: String,
    /// `Approved` or `Denied`.
    pub verdict: String,
    pub duration: Option<String>,
    pub namespaces: Vec<String>,
    pub reason: Option<String>,
}

/// A binding a grant made.
#[derive(ToSchema)]
pub struct Binding {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: Option<String>,
}

/// Where a request is; unset fields are null.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// `Pending`, `Active`, `Denied`, `Expired`, `Revoked`, `Released`, `Withdrawn` or `Failed`.
    pub phase: String,
    pub decision: Option<Decision>,
    /// RFC 3339 (as are the other times).
    pub granted_at: Option<String>,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    pub ended_at: Option<String>,
    pub revoked_by: Option<String>,
    pub revoke_reason: Option<String>,
    pub message: Option<String>,
    pub reviews: Vec<Review>,
    pub bindings: Vec<Binding>,
}

/// An access request, as the API and `portcullis get -o json` show it.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    pub name: String,
    pub cluster: String,
    /// RFC 3339.
    pub created_at: String,
    pub spec: Spec,
    pub status: Status,
    /// Why the stored object is not a valid request (null when it is).
    pub invalid: Option<String>,
}

/// `GET /v1/requests`.
#[derive(ToSchema)]
pub struct RequestList {
    pub items: Vec<Request>,
}

/// One permission a grant would add.
#[derive(ToSchema)]
pub struct Permission {
    pub scope: String,
    pub resource: String,
    pub verb: String,
    /// `info`, `low`, `medium`, `high` or `critical`.
    pub severity: String,
    pub why: String,
}

/// The permissions a grant would add beyond what the requester holds.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Diff {
    pub request: Request,
    /// The worst new permission's severity (null: nothing new).
    pub worst: Option<String>,
    pub new: Vec<Permission>,
    /// How many of the role's permissions the requester already holds.
    pub already_held: u64,
    /// Whether the role is an aggregated ClusterRole.
    pub aggregated: bool,
}

/// `GET /v1/audit`: sealed audit records, oldest first (README "Audit trail").
#[derive(ToSchema)]
pub struct AuditList {
    pub items: Vec<Value>,
}

#[utoipa::path(
    get, path = "/healthz", tag = "server",
    responses((status = 200, description = "The process serves", content_type = "text/plain", body = String)),
)]
fn healthz() {}

#[utoipa::path(
    get, path = "/readyz", tag = "server",
    responses(
        (status = 200, description = "The hub answered and the requests are listed (`ok`, or `ok; ` and why a policy reload failed)", content_type = "text/plain", body = String),
        (status = 503, description = "Not ready, and why", content_type = "text/plain", body = String),
    ),
)]
fn readyz() {}

#[utoipa::path(
    get, path = "/metrics", tag = "server",
    responses((status = 200, description = "OpenMetrics text (Prometheus reads it)", content_type = "application/openmetrics-text", body = String)),
)]
fn metrics() {}

#[utoipa::path(
    get, path = "/v1/openapi.json", tag = "server",
    responses((status = 200, description = "This document (no token needed)", body = Object)),
)]
fn openapi_json() {}

#[utoipa::path(
    get, path = "/v1/whoami", tag = "server",
    responses(
        (status = 200, description = "The caller, as the server knows them", body = WhoAmI),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 503, description = "The token cannot be checked now", body = ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
fn whoami() {}

#[utoipa::path(
    get, path = "/v1/requests", tag = "requests",
    params(
        ("phase" = Option<String>, Query, description = "Only this phase (any case): Pending, Active, Denied, Expired, Revoked, Released, Withdrawn, Failed"),
        ("cluster" = Option<String>, Query, description = "Only this cluster's"),
        ("requester" = Option<String>, Query, description = "Only this user's"),
    ),
    responses(
        (status = 200, description = "The requests", body = RequestList),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 503, description = "The token cannot be checked now", body = ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
fn list() {}

#[utoipa::path(
    post, path = "/v1/requests", tag = "requests",
    request_body(content = CreateBody, description = "What to ask for; the requester is whoever the token belongs to"),
    responses(
        (status = 201, description = "Made (and approved at once when the policy approves it itself)", body = Request),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 403, description = "The caller may not ask", body = ErrorBody),
        (status = 404, description = "No such cluster", body = ErrorBody),
        (status = 409, description = "A conflicting request exists", body = ErrorBody),
        (status = 422, description = "A field is wrong (`field` names it), or the policy refuses", body = ErrorBody),
        (status = 503, description = "The cluster or the policy cannot answer now", body = ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
fn create() {}

#[utoipa::path(
    get, path = "/v1/requests/{cluster}/{name}", tag = "requests",
    params(
        ("cluster" = String, Path, description = "The request's cluster"),
        ("name" = String, Path, description = "The request's name"),
    ),
    responses(
        (status = 200, description = "The request", body = Request),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 503, description = "The cluster cannot answer now", body = ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
fn one() {}

#[utoipa::path(
    get, path = "/v1/requests/{cluster}/{name}/diff", tag = "requests",
    params(
        ("cluster" = String, Path, description = "The request's cluster"),
        ("name" = String, Path, description = "The request's name"),
    ),
    responses(
        (status = 200, description = "The permissions the grant would add", body = Diff),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 422, description = "The grant cannot be analysed", body = ErrorBody),
        (status = 503, description = "The cluster's RBAC is not read yet", body = ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
fn diff() {}

#[utoipa::path(
    post, path = "/v1/requests/{cluster}/{name}/approve", tag = "requests",
    params(
        ("cluster" = String, Path, description = "The request's cluster"),
        ("name" = String, Path, description = "The request's name"),
    ),
    request_body(content = ApproveBody, description = "At most what was asked; omitted fields grant as asked"),
    responses(
        (status = 200, description = "The request after the approval", body = Request),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 403, description = "The caller may not approve it, and why", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 409, description = "Not pending any more (someone decided first, and who)", body = ErrorBody),
        (status = 422, description = "A field is wrong (`field` names it), or the policy refuses", body = ErrorBody),
        (status = 503, description = "The cluster or the policy cannot answer now", body = ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
fn approve() {}

#[utoipa::path(
    post, path = "/v1/requests/{cluster}/{name}/deny", tag = "requests",
    params(
        ("cluster" = String, Path, description = "The request's cluster"),
        ("name" = String, Path, description = "The request's name"),
    ),
    request_body(content = ReasonBody, description = "Why"),
    responses(
        (status = 200, description = "The request, denied", body = Request),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 403, description = "The caller may not decide it, and why", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 409, description = "Not pending any more (someone decided first, and who)", body = ErrorBody),
        (status = 422, description = "A field is wrong (`field` names it)", body = ErrorBody),
        (status = 503, description = "The cluster cannot answer now", body = ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
fn deny() {}

#[utoipa::path(
    post, path = "/v1/requests/{cluster}/{name}/shorten", tag = "requests",
    params(
        ("cluster" = String, Path, description = "The request's cluster"),
        ("name" = String, Path, description = "The request's name"),
    ),
    request_body(content = ShortenBody, description = "The new end: exactly one of `to` (time left from the server's now, `10m`) or `expiresAt` (RFC 3339)"),
    responses(
        (status = 200, description = "The grant, ending earlier", body = Request),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 403, description = "The caller may not shorten it, and why", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 409, description = "Not active", body = ErrorBody),
        (status = 422, description = "A field is wrong (`field` names it), or the end is not earlier", body = ErrorBody),
        (status = 503, description = "The cluster cannot answer now", body = ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
fn shorten() {}

#[utoipa::path(
    post, path = "/v1/requests/{cluster}/{name}/revoke", tag = "requests",
    params(
        ("cluster" = String, Path, description = "The request's cluster"),
        ("name" = String, Path, description = "The request's name"),
    ),
    request_body(content = ReasonBody, description = "Why"),
    responses(
        (status = 200, description = "The grant, revoked", body = Request),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 403, description = "The caller may not revoke it, and why", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 409, description = "Not active", body = ErrorBody),
        (status = 422, description = "A field is wrong (`field` names it)", body = ErrorBody),
        (status = 503, description = "The cluster cannot answer now", body = ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
fn revoke() {}

#[utoipa::path(
    post, path = "/v1/requests/{cluster}/{name}/withdraw", tag = "requests",
    params(
        ("cluster" = String, Path, description = "The request's cluster"),
        ("name" = String, Path, description = "The request's name"),
    ),
    responses(
        (status = 200, description = "The request, withdrawn by its requester", body = Request),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 403, description = "Only the requester withdraws", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 409, description = "Not pending any more", body = ErrorBody),
        (status = 422, description = "Refused", body = ErrorBody),
        (status = 503, description = "The cluster cannot answer now", body = ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
fn withdraw() {}

#[utoipa::path(
    post, path = "/v1/requests/{cluster}/{name}/release", tag = "requests",
    params(
        ("cluster" = String, Path, description = "The request's cluster"),
        ("name" = String, Path, description = "The request's name"),
    ),
    responses(
        (status = 200, description = "The grant, ended now by its requester (\"I'm done\")", body = Request),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 403, description = "Only the requester releases", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 409, description = "Not active", body = ErrorBody),
        (status = 422, description = "Refused", body = ErrorBody),
        (status = 503, description = "The cluster cannot answer now", body = ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
fn release() {}

/// `POST …/credentials`: a kubeconfig for the grant's cluster.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct Credentials {
    cluster: String,
    name: String,
    /// `portcullis-system/pc-NAME`: whom the token is for.
    service_account: String,
    /// When the token stops working: the grant's end.
    expires_at: String,
    /// YAML: one context, the cluster as the server reaches it, the token.
    kubeconfig: String,
}

#[utoipa::path(
    post, path = "/v1/requests/{cluster}/{name}/credentials", tag = "requests",
    params(
        ("cluster" = String, Path, description = "The request's cluster"),
        ("name" = String, Path, description = "The request's name"),
    ),
    responses(
        (status = 200, description = "A token the server minted for the grant's ServiceAccount (Token mode), no longer than the grant has left but at least the apiserver's 10 minutes; it stops working when the grant ends", body = Credentials),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 403, description = "Only the requester gets its credentials", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 422, description = "Not a live Token-mode grant", body = ErrorBody),
        (status = 503, description = "The cluster cannot answer now", body = ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
fn credentials() {}

#[utoipa::path(
    get, path = "/v1/clusters/{cluster}/inventory", tag = "clusters",
    params(("cluster" = String, Path, description = "The cluster")),
    responses(
        (status = 200, description = "The cluster's RBAC inventory (roles, bindings, subjects)", body = Object),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 404, description = "No inventory for this cluster (yet)", body = ErrorBody),
        (status = 503, description = "The token cannot be checked now", body = ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
fn inventory() {}

#[utoipa::path(
    get, path = "/v1/events", tag = "stream",
    params(("Last-Event-ID" = Option<String>, Header, description = "Resume right after this event (`EPOCH-N`)")),
    responses(
        (status = 200, description = "Server-sent events: upsert, removed, inventory, cluster, limits, notice, snapshot, snapshot-done, audit (approvers)", content_type = "text/event-stream", body = String),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 503, description = "The token cannot be checked now", body = ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
fn events() {}

#[utoipa::path(
    get, path = "/v1/audit", tag = "stream",
    params(
        ("request" = Option<String>, Query, description = "A request name, or CLUSTER/NAME"),
        ("user" = Option<String>, Query, description = "Only records about this user"),
        ("since" = Option<String>, Query, format = DateTime, description = "RFC 3339: only records since"),
        ("limit" = Option<u64>, Query, minimum = 0, description = "At most this many (the newest); default 1000"),
    ),
    responses(
        (status = 200, description = "The recent audit records (approvers only)", body = AuditList),
        (status = 401, description = "No or bad token", body = ErrorBody),
        (status = 403, description = "Only approvers read the audit trail", body = ErrorBody),
        (status = 422, description = "A parameter is wrong (`field` names it)", body = ErrorBody),
        (status = 503, description = "The token cannot be checked now", body = ErrorBody),
    ),
    security(("bearerAuth" = [])),
)]
fn audit() {}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        serde_json::from_str(&ApiDoc::openapi().to_json().unwrap()).unwrap()
    }

    #[test]
    fn every_v1_call_but_the_document_needs_the_token() {
        let doc = doc();
        assert_eq!(
            doc["components"]["securitySchemes"]["bearerAuth"]["scheme"],
            "bearer"
        );
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
                let public = !path.starts_with("/v1/") || path == "/v1/openapi.json";
                assert_eq!(secured, !public, "{method} {path}");
            }
        }
    }

    #[test]
    fn a_new_request_links_to_the_calls_on_it() {
        let doc = doc();
        let links = &doc["paths"]["/v1/requests"]["post"]["responses"]["201"]["links"];
        let ids: Vec<&str> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(path, _)| path.starts_with("/v1/requests/{cluster}/{name}"))
            .flat_map(|(_, item)| item.as_object().unwrap().values())
            .filter_map(|op| op["operationId"].as_str())
            .collect();
        assert_eq!(ids.len(), 9, "{ids:?}");
        for id in ids {
            assert_eq!(links[id]["operationId"], id);
            assert_eq!(links[id]["parameters"]["name"], "$response.body#/name");
        }
    }

    #[test]
    fn decision_bodies_take_uid_and_seen() {
        let doc = doc();
        for body in ["ApproveBody", "ReasonBody", "ShortenBody"] {
            let schema = &doc["components"]["schemas"][body];
            for field in ["uid", "seen"] {
                // "string" as added here; ["string", "null"] once the
                // field is an Option<String> in crate::api.
                let ty = &schema["properties"][field]["type"];
                assert!(
                    ty == "string" || ty.as_array().is_some_and(|t| t.contains(&"string".into())),
                    "{body}.{field}: {ty}"
                );
                assert!(
                    !schema["required"]
                        .as_array()
                        .is_some_and(|r| r.iter().any(|f| f == field)),
                    "{body}.{field} is optional"
                );
            }
        }
    }

    #[test]
    fn bodies_are_the_api_types() {
        let doc = doc();
        let create = &doc["components"]["schemas"]["CreateBody"];
        let mut required: Vec<&str> = create["required"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        required.sort();
        assert_eq!(required, ["cluster", "duration", "reason", "role"]);
        assert_eq!(create["additionalProperties"], false);
        let error = &doc["components"]["schemas"]["ApiError"]["properties"];
        for field in ["code", "reason", "message", "field"] {
            assert!(error.get(field).is_some(), "ApiError.{field}");
        }
        assert!(doc["components"]["schemas"]["ShortenBody"]["properties"]
            .get("expiresAt")
            .is_some());
    }
}
