# Portcullis' example policy. Evaluated in-process (regorus) by the server
# (enforced) and by a direct-mode console (`--policy DIR`, advisory). It
# reads one input document and answers with the rules below; see README
# "Policy" for both documents. Rego v1; no wall-clock builtins: `now` is in
# the input, so every decision can be replayed from the audit log.
package portcullis

import rego.v1

# ---- maximum duration per cluster ---------------------------------------
# data.limits maps a cluster to its longest grant in seconds; 8h otherwise.
default max_duration_seconds := 28800

max_duration_seconds := data.limits[input.request.cluster]

deny contains msg if {
	input.request.duration_seconds > max_duration_seconds
	msg := sprintf("%s allows at most %ds; this asks for %ds", [input.request.cluster, max_duration_seconds, input.request.duration_seconds])
}

# ---- a ticket for anything on prod --------------------------------------
deny contains "a ticket is required on production clusters" if {
	input.request.cluster_labels.env == "prod"
	not input.request.ticket
}

# ---- two approvers for critical diffs -----------------------------------
default approvals_required := 1

# "unknown": the diff could not be computed; judge it as the worst.
approvals_required := 2 if input.diff.worst in {"critical", "unknown"}

messages contains "critical: needs two distinct approvers (never the requester)" if {
	input.diff.worst == "critical"
}

# ---- approvers limited by team ------------------------------------------
# data.teams maps a namespace to the group that owns it; that team, and
# on-call, may approve access to it. Cluster-wide asks: on-call only.
approvers contains {"group": team, "rule": "team-owns-namespace"} if {
	some ns in input.request.namespaces
	team := data.teams[ns]
}

approvers contains {"group": "oncall", "rule": "oncall-approves-anything"}

# ---- on-call self-service for read access -------------------------------
# On-call engineers may read (nothing more) for up to an hour without
# waking anyone; not Secrets, not production after hours is left to you.
auto_approve contains "oncall-read-self-service" if {
	"oncall" in input.requester.groups
	input.diff.worst in {"info", "none"}
	input.request.duration_seconds <= 3600
	not input.extension
}

messages contains sprintf("extension of %s, %ds already used", [input.extension.of, input.extension.used_seconds]) if {
	input.extension
}
