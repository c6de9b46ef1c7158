#!/usr/bin/env bash
# fo_strict_witness: [ha] synchronous_mode = strict (synchronous_node_count
# 1) on three PostgreSQL nodes plus a fourth, store-only Raft voter (a
# witness: no [postgresql] section). The witness never runs PostgreSQL, so
# the synchronous set must name the two replicas only: listed, it would
# turn "hear from n-k+1 standbys" into 3 of 3 and no failover could ever
# happen. Checks: the published set and synchronous_standby_names are the
# two replicas with k 1; the witness is a Raft voter; the primary's machine
# dies under a write load and a replica is promoted; (a) no acknowledged
# row lost, (b) no overlapping write windows.
FO_SYNC_MODE=strict
PG_WITNESS=1
source "$(dirname "${BASH_SOURCE[0]}")/../lib/failover.sh"
fo_init 32400
fo_up
W=$((PG_NODES + 1))
voters=$(pgw --timeout 3 members -o json | jq -r '[.members[] | select(.role == "voter") | .name] | sort | join(",")')
assert_eq "node1,node2,node3,node$W" "$voters" "Raft voters"
REPS=$(for i in 1 2 3; do ((i == P)) || echo "node$i"; done | sort | jq -Rcs 'split("\n") | map(select(length > 0))')
log "primary node$P, witness node$W, expected synchronous set $REPS"
sync_key() { pgw --timeout 3 get "/service/$PG_CLUSTER/sync" --print-value-only; }
sync_is_replicas() {
	sync_key | jq -e --arg l "node$P" --argjson s "$REPS" \
		'.mode == "strict" and .leader == $l and .k == 1 and (.standbys | sort) == $s' >/dev/null
}
wait_until -t 30 sync_is_replicas || fail "published set is not {k 1, $REPS}: $(sync_key 2>&1)"
SSN=$(jq -r '"ANY 1 (" + (map("\"" + . + "\"") | join(", ")) + ")"' <<<"$REPS")
ssn_is() { [[ $(sql_at "$P" "SHOW synchronous_standby_names" 2>/dev/null) == "$1" ]]; }
wait_until -t 10 ssn_is "$SSN" || fail "node$P runs with synchronous_standby_names '$(sql_at "$P" "SHOW synchronous_standby_names" 2>&1)', not '$SSN'"
log "synchronous set $(sync_key), $SSN"

fo_writer_start w
fo_wait_acks w 100 20
tk=$(fo_now)
node_kill_machine "$P"
fo_await_failover "$P" "$tk" w 50 "the kill"
fo_writer_stop w
fo_check_lost "$N" w
fo_check_overlap w
