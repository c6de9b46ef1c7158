#!/usr/bin/env bash
# fo_cluster_ha: [ha] is cluster-wide. node1 and node3 start first with
# the default ttl (2.5 s); the first of them writes [ha] into the store
# (/service/CLUSTER/config). node2 starts later with ttl = 10s in its ini:
# it logs that its ini differs and uses the cluster's values. A switchover
# makes node2 the primary; the lease it holds has the cluster's 2.5 s ttl.
# Then node2 is cut off (nftables in its namespace) under two writers, one
# in the client's namespace, one inside node2's (synchronous_commit =
# local, over node2's own address): another node is promoted, node2 stops
# acknowledging before that (no overlapping write windows, b), and nothing
# the client's writer had acknowledged is lost (a).
FO_SYNC_MODE=${FO_SYNC_MODE:-on}
source "$(dirname "${BASH_SOURCE[0]}")/../lib/failover.sh"
fo_ns_init cluster_ha
fo_init 32900
fo_ns_up
sed -i 's/^\[ha\]$/[ha]\nttl = 10s/' "$(ini 2)"
grep -q '^ttl = 10s$' "$(ini 2)" || fail "could not set ttl = 10s in $(ini 2)"
CONF=/service/$PG_CLUSTER/config
fo_start_node 1
fo_start_node 3
conf_ttl() { pgw --timeout 3 get "$CONF" --print-value-only 2>/dev/null | jq -r .ha.ttl; }
wait_until -t 30 eval '[[ $(conf_ttl) == 2500ms ]]' ||
	fail "the cluster's [ha] is not in the store with ttl 2500ms: $(pgw --timeout 3 get "$CONF" 2>&1)"
log "cluster config: $(pgw --timeout 3 get "$CONF" --print-value-only)"
fo_start_node 2
pg_wait_healthy 60
fo_table
wait_until -t 10 eval "grep -q 'ttl in .* differ from the cluster.s: the cluster.s values are used' \"\$(node_log 2)\"" ||
	fail "node2 does not log that its ini's ttl differs from the cluster's"
assert_eq 2500ms "$(conf_ttl)" "the cluster's ttl after node2 started"
P=$(primary_idx) || fail "no single primary"
if [[ $P != 2 ]]; then
	out=$(pgw --timeout 30 switchover --candidate node2 --force 2>&1) || fail "switchover to node2: $out"
	wait_until -t 15 fo_primary_is 2 || fail "node2 is not primary after the switchover: $(pgw list 2>&1)"
fi
fo_wait_sync_published
lease=$(pgw --timeout 3 get "/service/$PG_CLUSTER/leader" -o json | jq -r '.kvs[0].lease')
lttl=$(pgw --timeout 3 lease list -o json | jq -r --arg l "$lease" '.leases[] | select(.id == $l) | .ttl')
log "node2 holds lease $lease, ttl $lttl"
assert_eq 2.5 "$lttl" "ttl (s) of the lease node2 holds"

WOPTS=(--connect-timeout-ms 300 --stmt-timeout-ms 1000 --down-backoff-ms 1000)
fo_writer_start w 1 "${WOPTS[@]}"
fo_writer_start_in "${FO_NS_PREFIX}2" local 100000001 "${WOPTS[@]}" \
	--targets "10.200.0.2:$(pg_port 2)" --options "-c synchronous_commit=local"
fo_wait_acks w 100 20
fo_wait_acks local 50 20
tk=$(fo_now)
fo_cut 2
wait_until -t 30 fo_new_primary 2 || {
	pgw list >&2 || true
	fail "no new primary within 30 s of the cut"
}
N=$(primary_idx)
fo_wait_acks w 50 20 "$tk" "$(pg_port "$N")"
fo_writer_stop local
lastold=$(fo_window_of "$(pg_port 2)" last_ack w local)
firstnew=$(fo_window_of "$(pg_port "$N")" first_send w local)
log "cut at 0 ms: node2's last acknowledged row at $(((lastold - tk) / 1000)) ms, node$N's first acknowledged row sent at $(((firstnew - tk) / 1000)) ms"
fo_check_overlap w local
fo_heal 2
wait_until -t 40 fo_is_role_state 2 replica/streaming || {
	pgw list >&2 || true
	fail "node2 did not rejoin as a streaming replica within 40 s of the heal"
}
fo_writer_stop w
fo_check_lost "$N" w
