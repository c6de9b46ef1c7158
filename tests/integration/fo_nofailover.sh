#!/usr/bin/env bash
# fo_nofailover: node2 is tagged nofailover = true and node3 runs no
# PostgreSQL at all (a store-only witness: its ini has no [postgresql]
# section), so the nofailover replica is the only other PostgreSQL and
# the Raft store keeps its majority when the primary dies. The primary's
# machine dies (node1: pgwarden and PostgreSQL SIGKILLed): nothing may be
# promoted. For 8 s (over three leases) the nofailover node stays a replica
# (in recovery), the leader key stays absent once the lease expired, and
# list shows no primary; `pgwarden failover --candidate node2 --force` is
# refused with a message naming the reason. The old primary is started
# again: the controller names it (the last leader, reporting again) or an
# operator does with `pgwarden failover --candidate node1 --force`; it
# takes the primary role back and the writer's rows land there. Checks (a) on it and (b).
# Asynchronous by default.
FO_SYNC_MODE=${FO_SYNC_MODE:-off}
source "$(dirname "${BASH_SOURCE[0]}")/../lib/failover.sh"
P=1 NF=2 W=3
FO_TAGS[$NF]="nofailover = true"
fo_init 30900
# node3: the store only (everything from [postgresql] up to [ha] removed)
awk '/^\[postgresql\]$/ { skip = 1 } /^\[ha\]$/ { skip = 0 } !skip' "$(ini "$W")" >"$(ini "$W").tmp"
mv "$(ini "$W").tmp" "$(ini "$W")"
chown "$PG_USER:$PG_USER" "$(ini "$W")"
! grep -q '^\[postgresql' "$(ini "$W")" || fail "node$W's ini still has a [postgresql] section"
pg_ports_free
fo_start_all
two_healthy() {
	list_json | jq -e --arg p "node$P" --arg r "node$NF" '
		length == 2 and
		any(.[]; .name == $p and .role == "primary" and .state == "running") and
		any(.[]; .name == $r and .role == "replica" and .state == "streaming")' >/dev/null
}
wait_until -t 60 two_healthy || fail "no node$P primary and node$NF streaming within 60 s: $(pgw list 2>&1)"
pgw list >&2
fo_table
log "primary node$P, nofailover replica node$NF, store-only node$W"
jq -e --arg n "node$NF" '.[] | select(.name == $n) | .tags.nofailover == true' <<<"$(list_json)" >/dev/null ||
	fail "list does not show node$NF's nofailover tag: $(list_json)"

WT="127.0.0.1:$(pg_port "$P"),127.0.0.1:$(pg_port "$NF")"
fo_writer_start w 1 --targets "$WT"
fo_wait_acks w 100 20
tk=$(fo_now)
node_kill_machine "$P"
no_primary() { list_json | jq -e '[.[] | select(.role == "primary")] | length == 0' >/dev/null; }
no_leader() { [[ -z $(leader_key) ]]; }
wait_until -t 10 no_leader || fail "leader key still names $(leader_key) 10 s after the kill"
wait_until -t 10 no_primary || fail "list still shows a primary 10 s after the kill: $(pgw list 2>&1)"
log "leader key gone and no primary listed $(fo_since "$tk") ms after the kill"
while (($(fo_since "$tk") < 8000)); do
	[[ -z $(leader_key) ]] || fail "leader key names $(leader_key) $(fo_since "$tk") ms after the kill"
	no_primary || fail "a primary is listed $(fo_since "$tk") ms after the kill: $(pgw list 2>&1)"
	sleep 0.5
done
assert_eq t "$(sql_at "$NF" "SELECT pg_is_in_recovery()")" "node$NF in recovery"
assert_eq replica "$(member_field role "node$NF")" "node$NF's role"
pgw list >&2 || true

rc=0
out=$(pgw --timeout 10 failover --candidate "node$NF" --force 2>&1) || rc=$?
log "failover --candidate node$NF: exit $rc: $out"
((rc != 0)) || fail "failover to the nofailover node node$NF was accepted: $out"
grep -qi 'nofailover' <<<"$out" || fail "the refusal does not say why (nofailover): $out"
sleep 3
[[ -z $(leader_key) ]] || fail "leader key names $(leader_key) after the refused failover"
assert_eq t "$(sql_at "$NF" "SELECT pg_is_in_recovery()")" "node$NF in recovery after the refused failover"
(($(fo_acks_after w "$tk" "$(pg_port "$NF")") == 0)) || fail "node$NF acknowledged rows"

# the way back: the old primary is started again and an operator names it
# (`failover --candidate`, documented for "no primary runs")
tr=$(fo_now)
fo_start_node "$P"
reports() { list_json | jq -e --arg n "node$P" 'any(.[]; .name == $n and .state != null)' >/dev/null; }
wait_until -t 20 reports || fail "node$P, restarted, does not report: $(pgw list 2>&1)"
if ! fo_primary_is "$P"; then
	# the controller may name the returning last leader on its own while
	# this runs: "is the primary already" is that, not a failure
	rc=0
	out=$(pgw --timeout 10 failover --candidate "node$P" --force 2>&1) || rc=$?
	log "failover --candidate node$P: exit $rc: $out"
	((rc == 0)) || grep -q "is the primary already" <<<"$out" ||
		fail "failover --candidate node$P failed: $out"
fi
wait_until -t 30 fo_primary_is "$P" || {
	list_json | jq -c '.[] | {name, role, state, timeline, lsn, detail, tags}' >&2 || true
	fail "node$P, restarted, did not become the primary again within 30 s: $(pgw list 2>&1)"
}
fo_wait_acks w 50 20 "$tr" "$(pg_port "$P")"
log "node$P primary again; first row $(($(fo_first_ack_after w "$tr" "$(pg_port "$P")") / 1000)) ms after its restart"
fo_writer_stop w
wait_until -t 20 fo_streams_from "$NF" "$P" || fail "node$NF does not stream from node$P"
wait_until -t 20 two_healthy || fail "node$P primary and node$NF streaming: $(pgw list 2>&1)"

fo_check_lost "$P" w
fo_check_overlap w
