//! Direct mode guarded by the apiserver itself: a ValidatingAdmissionPolicy
//! (CEL, Kubernetes 1.30+) and its binding, what `portcullis crds
//! --admission-policy` prints. It needs no server and no TLS, and enforces
//! the webhook's rules that CEL can state from the write alone (the
//! writer's `userInfo`, the object before and after):
//!
//! - a new request names its creator as requester, and only groups the
//!   creator has;
//! - a spec never changes;
//! - the requester never writes a status;
//! - a decision is recorded under the writer's name and never removed; a
//!   revocation likewise;
//! - terminal phases never change (but for `status.message`); a phase
//!   moves only forward (Pending to a decision or an end, Active to an
//!   end), and a live grant names its approver and a readable end;
//! - a live grant's `expiresAt` only moves earlier;
//! - reviews only grow, one at a time, the new one in the writer's name;
//! - `status.bindings` names only objects Portcullis makes for that request
//!   (by name and kind) and a recorded uid never changes or disappears;
//! - only the requester deletes a pending request, and nobody a live
//!   grant's.
//!
//! What CEL cannot see stays with the webhook (or the server): the
//! apiserver's clock (CEL has no "now", so a decision's time and an
//! `expiresAt` past the decision's time plus its duration are not
//! checked), the Rego policy, and a binding's namespace against the
//! granted namespaces.
//!
//! The identities that carry the lifecycle out (the reaper, the server)
//! are left out by a match condition, as the webhook's `privileged` list.

use serde_json::{json, Value};

/// The policy's name (and its binding's).
pub(crate) const NAME: &str = "portcullis.dev-accessrequests";

/// The identities of the shipped reaper and server Deployments.
pub(crate) const DEFAULT_PRIVILEGED: &[&str] = &[
    "system:serviceaccount:portcullis-system:portcullis-reaper",
    "system:serviceaccount:portcullis-system:portcullis-server",
];

const TERMINAL: &str = "['Denied', 'Expired', 'Revoked', 'Released', 'Withdrawn', 'Failed']";

/// Where a live grant may go, written by an approver. `Released` is not
/// among them: only the reaper or the server (exempt by the match
/// condition) ends a grant in its requester's name.
const ENDS: &str = "['Expired', 'Revoked', 'Failed']";

/// Status fields a terminal phase keeps (all but `message`).
const KEPT: &[&str] = &[
    "phase",
    "decision",
    "grantedAt",
    "expiresAt",
    "revokedAt",
    "endedAt",
    "revokedBy",
    "revokeReason",
    "reviews",
    "bindings",
];

/// A CEL string literal (JSON's string syntax is CEL's for these).
fn literal(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// The same status field before and after (both absent counts as same).
fn same(field: &str) -> String {
    format!(
        "(has(object.status.{field}) == has(oldObject.status.{field})) && \
         (!has(object.status.{field}) || object.status.{field} == oldObject.status.{field})"
    )
}

fn rule(expression: String, message: &str) -> Value {
    json!({"expression": expression, "messageExpression": message, "reason": "Forbidden"})
}

#[expect(
    clippy::too_many_lines,
    reason = "the list of CEL rules: each reads on its own, the list reads whole"
)]
fn validations() -> Vec<Value> {
    let user = "request.userInfo.username";
    let kept: Vec<String> = KEPT.iter().map(|f| same(f)).collect();
    // Names Portcullis gives a request's objects (objects::makes_for):
    // the ServiceAccount's and the release objects' truncated to 253
    // characters, the bindings' never.
    let name = |prefix: &str| {
        format!("(size('{prefix}' + oldObject.metadata.name) > 253 ? ('{prefix}' + oldObject.metadata.name).substring(0, 253) : '{prefix}' + oldObject.metadata.name)")
    };
    vec![
        rule(
            format!("request.operation != 'CREATE' || object.spec.requester.user == {user}"),
            "'portcullis: spec.requester.user must be you (' + request.userInfo.username + '), not ' + object.spec.requester.user",
        ),
        rule(
            "request.operation != 'CREATE' || !has(object.spec.requester.groups) || \
             object.spec.requester.groups.all(g, g in request.userInfo.?groups.orValue([]))"
                .to_string(),
            "'portcullis: spec.requester.groups: you are not in every group named'",
        ),
        rule(
            "!variables.specUpdate || object.spec == oldObject.spec".to_string(),
            "'portcullis: spec is immutable: withdraw and ask again'",
        ),
        rule(
            format!("!variables.statusUpdate || oldObject.spec.requester.user != {user}"),
            "'portcullis: the requester never writes a request\\'s status'",
        ),
        rule(
            format!(
                "!variables.statusUpdate || !(variables.oldPhase in {TERMINAL}) || \
                 (has(object.status) && {})",
                kept.join(" && ")
            ),
            "'portcullis: ' + oldObject.metadata.name + ' is ' + variables.oldPhase + ': terminal phases never change'",
        ),
        rule(
            format!(
                "!variables.statusUpdate || \
                 (!has(object.status) || !has(object.status.decision) \
                    ? !(has(oldObject.status) && has(oldObject.status.decision)) \
                    : (has(oldObject.status) && has(oldObject.status.decision) && object.status.decision == oldObject.status.decision) \
                      || (has(object.status.decision.by) && object.status.decision.by == {user}))"
            ),
            "'portcullis: status.decision.by must be you (' + request.userInfo.username + '); a decision is never removed'",
        ),
        rule(
            format!(
                "!variables.statusUpdate || !has(object.status) || !has(object.status.revokedBy) || \
                 object.status.revokedBy == {user} || \
                 (has(oldObject.status) && has(oldObject.status.revokedBy) && oldObject.status.revokedBy == object.status.revokedBy)"
            ),
            "'portcullis: status.revokedBy must be you (' + request.userInfo.username + ')'",
        ),
        // Phases move only forward: a live grant never goes back to
        // Pending (where nothing ends it) nor to a phase nobody reads.
        rule(
            format!(
                "!variables.statusUpdate || variables.newPhase == variables.oldPhase || \
                 (variables.oldPhase == 'Pending' && variables.newPhase in ['Active', 'Denied', 'Expired', 'Withdrawn', 'Failed']) || \
                 (variables.oldPhase == 'Active' && variables.newPhase in {ENDS})"
            ),
            "'portcullis: status.phase: ' + variables.oldPhase + ' never becomes ' + variables.newPhase",
        ),
        // A live grant names its approver and an end the apiserver can read
        // (CEL's strict RFC 3339: no later write then fails to parse it).
        rule(
            "!variables.statusUpdate || variables.newPhase != 'Active' || \
             (has(object.status.decision) && has(object.status.decision.by) && \
              has(object.status.expiresAt) && timestamp(object.status.expiresAt) > timestamp('1970-01-01T00:00:00Z'))"
                .to_string(),
            "'portcullis: a live grant needs status.decision.by and status.expiresAt as an RFC 3339 time'",
        ),
        rule(
            "!variables.statusUpdate || variables.oldPhase != 'Active' || !has(oldObject.status.expiresAt) || \
             (has(object.status) && has(object.status.expiresAt) && \
              timestamp(object.status.expiresAt) <= timestamp(oldObject.status.expiresAt))"
                .to_string(),
            "'portcullis: status.expiresAt only moves earlier'",
        ),
        rule(
            // Earlier reviews stay as they were, in their order: the new
            // list is the old one, or the old one and one more.
            format!(
                "!variables.statusUpdate || variables.newReviews == variables.oldReviews || \
                 (size(variables.newReviews) == size(variables.oldReviews) + 1 && \
                  variables.newReviews == variables.oldReviews + [variables.newReviews[size(variables.newReviews) - 1]] && \
                  variables.newReviews[size(variables.newReviews) - 1].by == {user})"
            ),
            "'portcullis: status.reviews only grow, one at a time, and a review is by you (' + request.userInfo.username + ')'",
        ),
        rule(
            format!(
                "!variables.statusUpdate || variables.newBindings.all(b, \
                   b.kind in ['RoleBinding', 'ClusterRoleBinding', 'Role', 'ServiceAccount'] && \
                   b.name in [{}, {}, {}])",
                "'portcullis-' + oldObject.metadata.name",
                name("pc-"),
                name("portcullis-release-")
            ),
            "'portcullis: status.bindings: not an object Portcullis makes for ' + oldObject.metadata.name",
        ),
        rule(
            "!variables.statusUpdate || variables.oldBindings.all(o, !has(o.uid) || \
               variables.newBindings.exists(b, b.kind == o.kind && b.name == o.name && \
                 b.?namespace.orValue('') == o.?namespace.orValue('') && has(b.uid) && b.uid == o.uid))"
                .to_string(),
            "'portcullis: status.bindings: a recorded object stays listed with its uid until Portcullis ends the grant'",
        ),
        rule(
            format!(
                "request.operation != 'DELETE' || variables.oldPhase != 'Pending' || \
                 oldObject.spec.requester.user == {user}"
            ),
            "'portcullis: only its requester (' + oldObject.spec.requester.user + ') withdraws a pending request'",
        ),
        rule(
            "request.operation != 'DELETE' || variables.oldPhase != 'Active'".to_string(),
            "'portcullis: a live grant\\'s request is deleted by Portcullis when it ends'",
        ),
    ]
}

/// The ValidatingAdmissionPolicy and its binding, as YAML documents.
/// `privileged`: user names the policy lets through (the reaper's and the
/// server's identities).
pub(crate) fn manifests(privileged: &[String]) -> String {
    let exempt = privileged
        .iter()
        .map(|p| literal(p))
        .collect::<Vec<_>>()
        .join(", ");
    let labels = json!({"app.kubernetes.io/managed-by": "portcullis"});
    let policy = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": NAME, "labels": labels},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{
                "apiGroups": ["portcullis.dev"],
                "apiVersions": ["*"],
                "operations": ["CREATE", "UPDATE", "DELETE"],
                "resources": ["accessrequests", "accessrequests/status"],
                "scope": "Cluster",
            }]},
            "matchConditions": [{
                "name": "not-portcullis-itself",
                "expression": format!("!(request.userInfo.username in [{exempt}])"),
            }],
            "variables": [
                {"name": "specUpdate", "expression": "request.operation == 'UPDATE' && !(has(request.subResource) && request.subResource != '')"},
                {"name": "statusUpdate", "expression": "request.operation == 'UPDATE' && has(request.subResource) && request.subResource == 'status'"},
                {"name": "oldPhase", "expression": "oldObject != null && has(oldObject.status) && has(oldObject.status.phase) ? oldObject.status.phase : 'Pending'"},
                {"name": "newPhase", "expression": "has(object.status) && has(object.status.phase) ? object.status.phase : 'Pending'"},
                {"name": "oldReviews", "expression": "has(oldObject.status) && has(oldObject.status.reviews) ? oldObject.status.reviews : []"},
                {"name": "newReviews", "expression": "has(object.status) && has(object.status.reviews) ? object.status.reviews : []"},
                {"name": "oldBindings", "expression": "has(oldObject.status) && has(oldObject.status.bindings) ? oldObject.status.bindings : []"},
                {"name": "newBindings", "expression": "has(object.status) && has(object.status.bindings) ? object.status.bindings : []"},
            ],
            "validations": validations(),
        }
    });
    let binding = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": NAME, "labels": labels},
        "spec": {"policyName": NAME, "validationActions": ["Deny"]},
    });
    let yaml = |v: &Value| serde_yaml_ng::to_string(v).unwrap_or_default();
    format!("{}---\n{}", yaml(&policy), yaml(&binding))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_every_privileged_identity_as_a_cel_string() {
        let out = manifests(&["reaper".into(), "we\"ird\\name".into()]);
        let docs: Vec<Value> = serde_yaml_ng::Deserializer::from_str(&out)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0]["kind"], "ValidatingAdmissionPolicy");
        assert_eq!(docs[1]["spec"]["policyName"], NAME);
        let condition = docs[0]["spec"]["matchConditions"][0]["expression"]
            .as_str()
            .unwrap();
        assert_eq!(
            condition,
            r#"!(request.userInfo.username in ["reaper", "we\"ird\\name"])"#
        );
        let rules = docs[0]["spec"]["validations"].as_array().unwrap();
        assert_eq!(rules.len(), 15);
    }
}
