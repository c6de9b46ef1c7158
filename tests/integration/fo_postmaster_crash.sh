#!/usr/bin/env bash
# fo_postmaster_crash: under a write load the primary's postmaster alone is
# SIGKILLed. pgwarden restarts it in place (crash recovery) within
# crash_restart_timeout: no failover (the same leader key with the same
# lease, the same timeline, no history entry, no other node takes writes)
# and writes resume on the same node. Prints the write gap. Checks (a)
# (asynchronous by default: a crash recovery loses nothing flushed) and (b).
FO_SYNC_MODE=${FO_SYNC_MODE:-off}
source "$(dirname "${BASH_SOURCE[0]}")/../lib/failover.sh"
fo_init 30600
fo_up
fo_writer_start w
fo_wait_acks w 100 20
lk0=$(fo_leader_key_state)
tl0=$(fo_timeline "$P")
pm0=$(postmaster_pid "$P") || fail "no postmaster for node$P"

tk=$(fo_now)
kill -KILL "$pm0"
log "SIGKILLed node$P's postmaster $pm0"
new_pm() { local p; p=$(postmaster_pid "$P") && [[ $p != "$pm0" ]]; }
wait_until -t 15 new_pm || fail "node$P's postmaster was not restarted within 15 s"
log "node$P's postmaster restarted as $(postmaster_pid "$P") after $(fo_since "$tk") ms"
fo_wait_acks w 50 20 "$tk" "$(pg_port "$P")"
# the old postmaster's backends may still answer a statement in flight:
# the gap ends with the first row of the restarted PostgreSQL
fa=$(fo_windows w | awk 'NR == 2 { print $4 }')
[[ $fa =~ ^[0-9]+$ ]] || fail "no row acknowledged by the restarted PostgreSQL: $(fo_windows w)"
log "write gap: $(((fa - tk) / 1000)) ms from the postmaster's SIGKILL to the first row acknowledged by the restarted PostgreSQL (node$P)"
fo_writer_stop w
node_running "$P" || fail "node$P's pgwarden died"

wait_until -t 10 fo_primary_is "$P" || fail "list does not show node$P as the running primary: $(pgw list 2>&1)"
assert_eq "$lk0" "$(fo_leader_key_state)" "leader key (value, create_revision, lease)"
assert_eq "$tl0" "$(fo_timeline "$P")" "node$P's timeline"
assert_eq 0 "$(pgw history -o json | jq 'length')" "history entries"
[[ $(fo_windows w | awk '{ print $1 }' | sort -u) == "$(pg_port "$P")" ]] || fail "rows were acknowledged by another node: $(fo_windows w)"
(($(fo_windows w | wc -l) == 2)) || fail "expected two write windows of node$P (before and after the crash): $(fo_windows w)"

fo_check_lost "$P" w
fo_check_overlap w
