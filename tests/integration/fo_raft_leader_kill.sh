#!/usr/bin/env bash
# fo_raft_leader_kill (I1, docs/architecture.md "Lease and fencing"): Raft
# leadership is moved to a
# replica's node (pgwarden transfer-leader), then, under a write load, that
# node's machine dies (pgwarden and PostgreSQL SIGKILLed). The primary must
# ride out the Raft election: it stays the primary (same leader key, same
# lease, same postmaster, no history entry), its log shows no fencing, and
# writes go on with no gap over 2 s during the 6 s that follow. Checks (a)
# and (b) (synchronous_mode = on by default: the other replica keeps the
# quorum).
FO_SYNC_MODE=${FO_SYNC_MODE:-on}
source "$(dirname "${BASH_SOURCE[0]}")/../lib/failover.sh"
fo_init 30500
fo_up
R=$((P % 3 + 1))
if ! raft_leader_is "node$R"; then
	pgw transfer-leader "node$R" >&2 || fail "transfer-leader node$R failed"
	wait_until -t 10 raft_leader_is "node$R" || fail "Raft leader is $(raft_leader || true), not node$R, after transfer-leader"
fi
log "primary node$P, Raft leader node$R"

fo_writer_start w
fo_wait_acks w 100 20
lk0=$(fo_leader_key_state)
pm0=$(postmaster_pid "$P")
fences0=$(fo_log_count "$P" 'fencing')
renew0=$(fo_log_count "$P" 'lease renewal failed|not petted|renewal too slow')

tk=$(fo_now)
node_kill_machine "$R"
while (($(fo_since "$tk") < 6000)); do
	pid_alive "$pm0" || fail "node$P's postmaster $pm0 is gone $(fo_since "$tk") ms after the Raft leader's death"
	sleep 0.2
done
tend=$(fo_now)
wait_until -t 10 eval 'raft_leader >/dev/null' || fail "no Raft leader after node$R's death"
log "new Raft leader $(raft_leader)"
fo_wait_acks w 20 10 "$tend"
fo_writer_stop w

read -r gap at < <(fo_max_gap w "$tk" "$tend")
log "longest write gap in the 6 s after the Raft leader's death: $gap ms (from $at ms)"
log "node$P's log since the kill: $(($(fo_log_count "$P" 'lease renewal failed|not petted|renewal too slow') - renew0)) slow or failed renewals"
assert_eq "$fences0" "$(fo_log_count "$P" 'fencing')" "fencing lines in node$P's log"
assert_eq "$P" "$(primary_idx)" "primary"
assert_eq "$lk0" "$(fo_leader_key_state)" "leader key (value, create_revision, lease)"
assert_eq "$pm0" "$(postmaster_pid "$P")" "node$P's postmaster"
((gap <= 2000)) || fail "writes stalled for $gap ms after the Raft leader's death (at most 2000 ms allowed)"

fo_check_lost "$P" w
fo_check_overlap w
