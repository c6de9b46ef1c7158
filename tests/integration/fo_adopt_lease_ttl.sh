#!/usr/bin/env bash
# fo_adopt_lease_ttl: a lease is fenced by its own ttl, not by the ini of
# the node that holds it. Three nodes in network namespaces, ttl 2.5 s.
# The primary's pgwarden is SIGKILLed and started again with ttl = 10s in
# its ini (an operator's edit, or a package upgrade with other defaults):
# it adopts the running PostgreSQL and the 2.5 s lease the store holds.
# Then the primary is cut off from the others (nftables in its namespace).
# The store expires the lease 2.5 s after the last renewal and another node
# is promoted; the old primary must have stopped acknowledging commits
# before that, so a writer inside its namespace (synchronous_commit =
# local, over its own address) and the client's writer never have
# overlapping write windows (b), and nothing the client's writer had
# acknowledged is lost (a). A node that counted its adopted lease by its
# ini's 10 s would keep writing for seconds after the promotion.
FO_SYNC_MODE=${FO_SYNC_MODE:-on}
source "$(dirname "${BASH_SOURCE[0]}")/../lib/failover.sh"
fo_ns_init adopt_ttl
fo_init 32700
fo_ns_up
fo_start_all
pg_wait_healthy 60
fo_table
P=$(primary_idx) || fail "no single primary"
fo_wait_sync_published
lk0=$(fo_leader_key_state)

# the primary's ini now asks for a 10 s ttl; its daemon restarts on it
sed -i 's/^\[ha\]$/[ha]\nttl = 10s/' "$(ini "$P")"
grep -q '^ttl = 10s$' "$(ini "$P")" || fail "could not set ttl = 10s in $(ini "$P")"
node_kill_daemon "$P"
fo_start_node "$P"
wait_until -t 15 eval "grep -q 'holds the primary lease .* again' \"\$(node_log $P)\"" ||
	fail "node$P did not adopt its lease again after the restart"
assert_eq "$lk0" "$(fo_leader_key_state)" "leader key (value, create revision, lease) after the restart"
fo_primary_is "$P" || fail "node$P is not primary after its restart"

WOPTS=(--connect-timeout-ms 300 --stmt-timeout-ms 1000 --down-backoff-ms 1000)
fo_writer_start w 1 "${WOPTS[@]}"
fo_writer_start_in "${FO_NS_PREFIX}$P" local 100000001 "${WOPTS[@]}" \
	--targets "10.200.0.$P:$(pg_port "$P")" --options "-c synchronous_commit=local"
fo_wait_acks w 100 20
fo_wait_acks local 50 20

tk=$(fo_now)
fo_cut "$P"
wait_until -t 30 fo_new_primary "$P" || {
	pgw list >&2 || true
	fail "no new primary within 30 s of the cut"
}
N=$(primary_idx)
fo_wait_acks w 50 20 "$tk" "$(pg_port "$N")"
fo_writer_stop local
lastold=$(fo_window_of "$(pg_port "$P")" last_ack w local)
firstnew=$(fo_window_of "$(pg_port "$N")" first_send w local)
log "cut at 0 ms: node$P's last acknowledged row at $(((lastold - tk) / 1000)) ms, node$N's first acknowledged row sent at $(((firstnew - tk) / 1000)) ms"
fo_check_overlap w local

fo_heal "$P"
wait_until -t 40 fo_is_role_state "$P" replica/streaming || {
	pgw list >&2 || true
	fail "node$P did not rejoin as a streaming replica within 40 s of the heal"
}
fo_writer_stop w
fo_check_lost "$N" w
