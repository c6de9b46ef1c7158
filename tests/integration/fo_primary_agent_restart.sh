#!/usr/bin/env bash
# fo_primary_agent_restart: the primary's pgwarden alone is SIGKILLed and
# started again at once (a crashed daemon restarted by systemd), watchdog
# off. Its PostgreSQL runs on, and its fencer process, armed with the old
# lease deadline, outlives it. The new pgwarden adopts the running
# PostgreSQL and the lease and stays primary; once its own fencer is armed
# it must end the old one, which would otherwise kill the adopted
# PostgreSQL at the old deadline. Checks: same postmaster, same leader key
# (value, create revision, lease) and no fencing for 4 s (more than the
# 2.5 s lease) after the restart, the old fencer is gone and the log says
# why, writes go on; (a) nothing acknowledged lost, (b) one write window.
FO_SYNC_MODE=${FO_SYNC_MODE:-on}
source "$(dirname "${BASH_SOURCE[0]}")/../lib/failover.sh"
fo_init 32600
fo_up
fo_wait_sync_published
wait_until -t 10 fo_fencer_armed "$P" || fail "node$P (primary) never armed its fencer"
pm=$(postmaster_pid "$P") || fail "no postmaster for node$P"
old_fencer=$(fencers_of "$P")
[[ $old_fencer =~ ^[0-9]+$ ]] || fail "node$P runs not exactly one fencer: '$old_fencer'"
lk0=$(fo_leader_key_state)
fences0=$(fo_log_count "$P" 'fencing|fencer\[.*\] fired')

fo_writer_start w
fo_wait_acks w 100 20
tk=$(fo_now)
node_kill_daemon "$P"
fo_start_node "$P"
log "node$P's pgwarden SIGKILLed and started again; old fencer $old_fencer, postmaster $pm"
wait_until -t 10 not pid_alive "$old_fencer" || fail "the old fencer $old_fencer of node$P still runs 10 s after the restart"
grep -q "ended fencer $old_fencer of an earlier pgwarden" "$(node_log "$P")" || fail "node$P's log does not say it ended fencer $old_fencer"
while (($(fo_since "$tk") < 4000)); do
	pid_alive "$pm" || fail "node$P's postmaster $pm died $(fo_since "$tk") ms after pgwarden's restart"
	sleep 0.2
done
assert_eq "$pm" "$(postmaster_pid "$P")" "node$P's postmaster 4 s after the restart"
assert_eq "$lk0" "$(fo_leader_key_state)" "leader key (value, create revision, lease)"
assert_eq "$fences0" "$(fo_log_count "$P" 'fencing|fencer\[.*\] fired')" "fencing lines in node$P's log"
[[ -n $(fencers_of "$P") && $(fencers_of "$P") != "$old_fencer" ]] || fail "node$P runs no fencer of its own after the restart"
fo_wait_acks w 50 20 "$(fo_now)" "$(pg_port "$P")"
fo_writer_stop w
fo_check_lost "$P" w
fo_check_overlap w
