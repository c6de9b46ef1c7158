#!/usr/bin/env bash
# fo_agent_sigstop: as fo_agent_kill_watchdog, but the primary's pgwarden is
# SIGSTOPped (a hung agent) for 6 s, more than the lease (2.5 s): it can
# neither renew nor fence itself, and its PostgreSQL keeps acknowledging
# writes. The watchdog stand-in (wdfifo --kill-pgid, 1 s) must kill the
# node's process group (the stopped pgwarden and its postmaster) before
# the new primary's first acknowledged row, and the old PostgreSQL must
# acknowledge no row sent after the fire. SIGCONT then finds nothing to
# resume. Checks (a) and (b) as everywhere (synchronous_mode = on by
# default).
FO_SYNC_MODE=${FO_SYNC_MODE:-on}
source "$(dirname "${BASH_SOURCE[0]}")/../lib/failover.sh"
FO_WD=1
fo_init 30200
fo_up
fo_wait_sync_published
wait_until -t 10 fo_wd_armed "$P" || fail "node$P (primary) never armed its watchdog stand-in"
pm=$(postmaster_pid "$P") || fail "no postmaster for node$P"
pgwpid=$(node_pid "$P")

fo_writer_start w
fo_wait_acks w 100 20
tk=$(fo_now)
kill -STOP "$pgwpid"
log "SIGSTOPped pgwarden of node$P (pid $pgwpid)"
fo_wait_fenced "$P" "$pm" "$tk" "the SIGSTOP"
wait_until -t 5 not pid_alive "$pgwpid" || fail "node$P's stopped pgwarden $pgwpid survived the stand-in"
reap "$P"
wdrc=0
wait "${FO_WDPID[$P]}" || wdrc=$?
unset "FO_WDPID[$P]"
assert_eq 3 "$wdrc" "node$P's stand-in exit status (3 = fired)"

fo_await_failover "$P" "$tk" w 50 "the SIGSTOP"
# the 6 s the agent would have stayed stopped: SIGCONT finds nothing
while (($(fo_since "$tk") < 6000)); do sleep 0.2; done
kill -CONT "$pgwpid" 2>/dev/null && fail "pgwarden $pgwpid of node$P still exists after the fire"
fo_writer_stop w

fo_check_fired_first "$P" "$N" w
fo_check_lost "$N" w
fo_check_overlap w
