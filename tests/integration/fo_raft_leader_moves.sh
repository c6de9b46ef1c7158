#!/usr/bin/env bash
# fo_raft_leader_moves (architecture.md "Where the Raft leader sits"): with the
# default [ha] move_raft_leader = true, Raft leadership does not stay on
# the primary's node. Under a write load it is put there (pgwarden
# transfer-leader); within 10 s the controller hands it to a replica's node
# by itself (its log says so), the PostgreSQL primary is unchanged (same
# leader key revision, same postmaster, no fencing), and no write gap over
# 2 s occurs. Then the primary's machine dies: with the Raft leader
# elsewhere no election precedes the lease expiry, and a replica takes
# over. Checks (a) and (b) (synchronous_mode = on by default).
FO_SYNC_MODE=${FO_SYNC_MODE:-on}
source "$(dirname "${BASH_SOURCE[0]}")/../lib/failover.sh"
fo_init 32500
fo_up
fo_wait_sync_published
fo_writer_start w
fo_wait_acks w 100 20
lk0=$(fo_leader_key_state)
pm0=$(postmaster_pid "$P")
fences0=$(fo_log_count "$P" 'fencing')
moves0=$(fo_log_count "$P" 'handing Raft leadership')

t0=$(fo_now)
if ! raft_leader_is "node$P"; then
	pgw transfer-leader "node$P" >&2 || fail "transfer-leader node$P failed"
	wait_until -t 10 raft_leader_is "node$P" || fail "Raft leader is $(raft_leader || true), not node$P, after transfer-leader"
fi
log "Raft leader on the primary's node node$P ($(fo_since "$t0") ms)"
off_primary() { local l; l=$(raft_leader) && [[ $l != "node$P" ]]; }
wait_until -t 10 off_primary || fail "Raft leadership stayed on the primary's node node$P for 10 s"
log "Raft leader moved to $(raft_leader) $(fo_since "$t0") ms after the transfer"
(($(fo_log_count "$P" 'handing Raft leadership') > moves0)) || fail "node$P's controller did not log the move"
assert_eq "$lk0" "$(fo_leader_key_state)" "leader key (value, create revision, lease)"
assert_eq "$pm0" "$(postmaster_pid "$P")" "node$P's postmaster"
assert_eq "$fences0" "$(fo_log_count "$P" 'fencing')" "fencing lines in node$P's log"
tm=$(fo_now)
fo_wait_acks w 20 10 "$tm"
read -r gap at < <(fo_max_gap w "$t0" "$tm")
log "longest write gap around the two leadership changes: $gap ms (from $at ms)"
((gap <= 2000)) || fail "writes stalled for $gap ms around the Raft leadership changes (at most 2000 ms allowed)"

tk=$(fo_now)
node_kill_machine "$P"
fo_await_failover "$P" "$tk" w 50 "the kill"
fo_writer_stop w
fo_check_lost "$N" w
fo_check_overlap w
