# `portcullis policy test policies/` runs every test_ rule here.
package portcullis_test

import rego.v1

import data.portcullis

base := {
	"now": "2026-11-27T03:00:00Z",
	"requester": {"user": "alice", "groups": ["dev", "payments-team"]},
	"request": {
		"name": "alice-payments-1", "cluster": "staging-eu-west", "cluster_labels": {"env": "staging"},
		"role": {"kind": "ClusterRole", "name": "edit"}, "namespaces": ["payments"],
		"duration_seconds": 1800, "reason": "INC-1", "ticket": "INC-1", "credentials": "Identity",
	},
	"diff": {"worst": "high", "flags": ["WorkloadWrite"], "new_permissions": 40},
	"reviews": [],
}

prod := object.union(base, {"request": object.union(base.request, {"cluster": "prod-eu-west", "cluster_labels": {"env": "prod"}})})

test_a_ticketless_prod_request_is_refused if {
	request := {k: v | some k, v in prod.request; k != "ticket"}
	ticketless := {"now": prod.now, "requester": prod.requester, "request": request, "diff": prod.diff, "reviews": []}
	"a ticket is required on production clusters" in portcullis.deny with input as ticketless
}

test_a_prod_request_with_a_ticket_passes if {
	count(portcullis.deny) == 0 with input as prod
}

test_prod_allows_four_hours_at_most if {
	long := object.union(prod, {"request": object.union(prod.request, {"duration_seconds": 18000})})
	count(portcullis.deny) == 1 with input as long
	portcullis.max_duration_seconds == 14400 with input as long
}

test_critical_needs_two_approvers if {
	critical := object.union(base, {"diff": {"worst": "critical", "flags": ["SecretsRead"], "new_permissions": 3}})
	portcullis.approvals_required == 2 with input as critical
	portcullis.approvals_required == 1 with input as base
}

test_the_owning_team_and_oncall_may_approve if {
	groups := {a.group | some a in portcullis.approvers} with input as base
	groups == {"payments-team", "oncall"}
}

test_oncall_reads_for_an_hour_approve_themselves if {
	reads := object.union(base, {
		"requester": {"user": "dana", "groups": ["sre", "oncall"]},
		"diff": {"worst": "info", "flags": ["Read"], "new_permissions": 20},
	})
	"oncall-read-self-service" in portcullis.auto_approve with input as reads
	longer := object.union(reads, {"request": object.union(reads.request, {"duration_seconds": 7200})})
	count(portcullis.auto_approve) == 0 with input as longer
}

test_nobody_else_self_serves if {
	count(portcullis.auto_approve) == 0 with input as base
}
