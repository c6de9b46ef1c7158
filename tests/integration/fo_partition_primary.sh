#!/usr/bin/env bash
# fo_partition_primary (I2): three nodes in network namespaces
# pgwfopartition_primary{1,2,3} (10.200.0.N, bridge in ...sw), the writer
# in the client namespace ...c reaching all three PostgreSQL addresses.
# The primary is cut off from both others by an nftables table in its
# namespace that drops everything but loopback. A second writer inside
# the primary's namespace keeps writing to it over its own address (which
# the kernel routes through lo, so the cut does not stop it), with
# synchronous_commit = local so that its commits are acknowledged without
# the standbys: it shows exactly how long the isolated primary takes
# writes. The primary must fence itself (its log says so and its
# PostgreSQL stops acknowledging) before the new primary's first commit:
# the write windows of both writers together must be disjoint (b). Then
# the cut heals and the old primary rejoins as a replica (pg_rewind) with
# every row the client's writer had acknowledged (a; synchronous_mode = on
# by default). The local writer's rows are not meant to survive.
FO_SYNC_MODE=${FO_SYNC_MODE:-on}
source "$(dirname "${BASH_SOURCE[0]}")/../lib/failover.sh"
fo_ns_init partition_primary
fo_init 30300
fo_ns_up
fo_start_all
pg_wait_healthy 60
fo_table
P=$(primary_idx) || fail "no single primary"
fo_wait_sync_published
log "primary node$P; Raft leader $(pgw --timeout 3 endpoints -o json | jq -r '.[] | select(.is_leader) | .name')"
WOPTS=(--connect-timeout-ms 300 --stmt-timeout-ms 1000 --down-backoff-ms 1000)
fo_writer_start w 1 "${WOPTS[@]}"
fo_writer_start_in "${FO_NS_PREFIX}$P" local 100000001 "${WOPTS[@]}" \
	--targets "10.200.0.$P:$(pg_port "$P")" --options "-c synchronous_commit=local"
fo_wait_acks w 100 20
fo_wait_acks local 50 20
tl0=$(fo_list_tl "$P")
fences0=$(fo_log_count "$P" 'fencing')

tk=$(fo_now)
fo_cut "$P"
wait_until -t 10 eval '(($(fo_log_count "$P" fencing) > fences0))' ||
	fail "node$P, cut off, did not fence itself within 10 s"
log "node$P fenced itself: $(grep 'fencing' "$(node_log "$P")" | tail -n 1)"
wait_until -t 30 fo_new_primary "$P" || {
	pgw list >&2 || true
	fail "no new primary within 30 s of the cut"
}
N=$(primary_idx)
fo_wait_acks w 50 20 "$tk" "$(pg_port "$N")"
fo_writer_stop local
log "node$P acknowledged $(fo_acks_after local "$tk") rows of the local writer after the cut"
lastold=$(fo_window_of "$(pg_port "$P")" last_ack w local)
firstnew=$(fo_window_of "$(pg_port "$N")" first_send w local)
log "cut at 0 ms: node$P's last acknowledged row at $(((lastold - tk) / 1000)) ms, node$N's first acknowledged row sent at $(((firstnew - tk) / 1000)) ms ($(((firstnew - lastold) / 1000)) ms later)"

nlines=$(wc -l <"$(node_log "$P")")
fo_heal "$P"
wait_until -t 40 fo_is_role_state "$P" replica/streaming || {
	pgw list >&2 || true
	fail "node$P did not rejoin as a streaming replica within 40 s of the heal"
}
pg_wait_healthy 30
assert_eq "$N" "$(primary_idx)" "primary after the heal"
assert_eq "node$N" "$(leader_key)" "leader key after the heal"
tail -n +"$((nlines + 1))" "$(node_log "$P")" | grep -E 'op=rewind (begin|done)' >&2 ||
	fail "node$P's log since the heal shows no pg_rewind (op=rewind begin/done)"
wait_until -t 10 fo_streams_from "$P" "$N" || fail "node$P does not stream from node$N"
tln=$(fo_list_tl "$N")
((tln > tl0)) || fail "timeline of node$N ($tln) not above the old one ($tl0)"
wait_until -t 10 eval '[[ $(fo_list_tl "$P") == "$tln" ]]' || fail "node$P's timeline $(fo_list_tl "$P") != node$N's $tln"
fo_writer_stop w

fo_check_lost "$N" w
wait_until -t 15 fo_same_rows "$P" "$N" || fail "node$P's rows differ from node$N's: $(fo_digest "$P") vs $(fo_digest "$N")"
fo_check_lost "$P" w
fo_check_overlap w local
