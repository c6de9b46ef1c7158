#!/usr/bin/env bash
# fo_switchover_raft_stop: the Raft leader's pgwarden is SIGSTOPped (3 s)
# the moment the primary begins a switchover, so that the handover (the
# leader key put naming the target) goes to a leader that does not answer:
# its outcome is unknown to the primary, and the put may still commit
# once another node leads. The primary must not resume as primary unless
# the store shows the handover did not commit. Checks, under a writer:
# afterwards exactly one primary, both other nodes streaming from it,
# (a) no acknowledged row lost (synchronous_mode = on), (b) no two
# PostgreSQL instances accepting writes in overlapping windows.
FO_SYNC_MODE=${FO_SYNC_MODE:-on}
source "$(dirname "${BASH_SOURCE[0]}")/../lib/failover.sh"
fo_init 33000
fo_up
fo_wait_sync_published
# Raft leadership sits on a replica's node (move_raft_leader); the target
# is the other replica, so that stopping the Raft leader stops neither
# the primary's nor the target's agent
# pick_target: once Raft leadership has left the primary node$P's node
# (move_raft_leader), L is the Raft leader's index and T the other replica's
pick_target() {
	wait_until -t 15 eval '[[ $(raft_leader) != "node$P" && -n $(raft_leader) ]]' ||
		fail "the Raft leader stays on the primary's node$P"
	L=$(raft_leader)
	L=${L#node}
	T=$((6 - P - L))
}
# restart_with_failpoint NAME: the primary's pgwarden SIGKILLed and started
# again with failpoint NAME; it adopts its PostgreSQL and lease
restart_with_failpoint() {
	node_kill_daemon "$P"
	PGWARDEN_FAILPOINTS=$1 fo_start_node "$P"
	wait_until -t 15 eval "grep -q 'holds the primary lease .* again' \"\$(node_log $P)\"" ||
		fail "node$P did not adopt its lease after the restart"
	pg_wait_healthy 30
}
pick_target
log "primary node$P, Raft leader node$L, target node$T"
fo_writer_start w
fo_wait_acks w 100 20

lines=$(wc -l <"$(node_log "$P")")
flow_began() { tail -n +"$((lines + 1))" "$(node_log "$P")" | grep -q 'flow=switchover'; }
pgw --timeout 30 switchover --candidate "node$T" --force >"$PG_DIR/sw.out" 2>&1 &
swpid=$!
for ((k = 0; k < 2000; k++)); do # at most ~20 s, polled every few ms
	flow_began && break
	sleep 0.005
done
flow_began || fail "node$P did not begin the switchover"
kill -STOP "$(node_pid "$L")"
tk=$(fo_now)
log "node$P began the switchover; SIGSTOPped node$L's pgwarden (Raft leader)"
sleep 3
kill -CONT "$(node_pid "$L")"
log "SIGCONT node$L after $(fo_since "$tk") ms"
swrc=0
wait "$swpid" || swrc=$?
log "switchover command: exit $swrc: $(tr '\n' ' ' <"$PG_DIR/sw.out")"
wait_until -t 30 eval 'primary_idx >/dev/null' || fail "no single primary 30 s after the fault: $(pgw list 2>&1)"
N=$(primary_idx)
log "primary afterwards: node$N"
for i in 1 2 3; do
	((i == N)) && continue
	wait_until -t 40 fo_streams_from "$i" "$N" || fail "node$i does not stream from node$N: $(pgw list 2>&1)"
done
fo_wait_acks w 50 20 "$(fo_now)" "$(pg_port "$N")"
fo_writer_stop w
fo_check_lost "$N" w
fo_check_overlap w

# The same uncertainty, made certain: the handover commits but its answer
# is lost (failpoint handover_reply_lost on the primary's pgwarden, which
# is restarted with it and adopts its PostgreSQL and lease). The primary
# must find out from the store that the key moved, and stay down: the
# target is the only primary; no overlap, nothing lost.
P=$N
pick_target
restart_with_failpoint handover_reply_lost
fo_writer_start w2 200000001
fo_wait_acks w2 100 20
t2=$(fo_now)
out=$(pgw --timeout 30 switchover --candidate "node$T" --force 2>&1) ||
	log "switchover with the lost reply: exit $?: $out"
grep -q 'failpoint handover_reply_lost fired' "$(node_log "$P")" || fail "the failpoint did not fire on node$P"
wait_until -t 20 fo_primary_is "$T" || fail "node$T is not the primary after the handover: $(pgw list 2>&1)"
wait_until -t 40 fo_streams_from "$P" "$T" || fail "node$P does not stream from node$T: $(pgw list 2>&1)"
fo_wait_acks w2 50 20 "$t2" "$(pg_port "$T")"
fo_writer_stop w2
fo_check_lost "$T" w w2
fo_check_overlap w w2

# And the case that needs the store's word: the handover put commits only
# after the primary's wait for it timed out (failpoint
# handover_commit_late holds it back 2.5 s beyond that wait). The primary
# must not take writes again on the strength of the timeout alone: it
# settles the key first (claims it back), so the late put's compare fails
# and the target never promotes; the primary stays the only one.
P=$T
pick_target
restart_with_failpoint handover_commit_late
fo_writer_start w3 300000001
fo_wait_acks w3 100 20
t3=$(fo_now)
out=$(pgw --timeout 30 switchover --candidate "node$T" --force 2>&1) ||
	log "switchover with the late commit: exit $?: $out"
grep -q 'failpoint handover_commit_late fired' "$(node_log "$P")" || fail "the failpoint did not fire on node$P"
# the late put has been sent (2.5 s after the timeout) and answered
sleep 4
fo_primary_is "$P" || fail "node$P is not the only primary after the late handover: $(pgw list 2>&1)"
for i in 1 2 3; do
	((i == P)) && continue
	wait_until -t 40 fo_streams_from "$i" "$P" || fail "node$i does not stream from node$P: $(pgw list 2>&1)"
done
fo_wait_acks w3 50 20 "$t3" "$(pg_port "$P")"
fo_writer_stop w3
fo_check_lost "$P" w w2 w3
fo_check_overlap w w2 w3
fo_check_pg_conf
