#!/usr/bin/env bash
# fo_fencer_sigstop: as fo_fencer_kill, but the primary's pgwarden is
# SIGSTOPped (a hung agent) for longer than the lease, with no watchdog
# ([watchdog] mode = off). Its fencer process runs on and must kill the
# node's PostgreSQL before anyone else is promoted, and the old PostgreSQL
# must acknowledge no row sent after the fire. SIGCONT then wakes an agent
# whose lease is long gone: it must not write again (no second window for
# its node) and must rejoin as a replica of the new primary by itself.
# Then (a) nothing acknowledged lost, (b) no overlapping write windows.
FO_SYNC_MODE=${FO_SYNC_MODE:-on}
source "$(dirname "${BASH_SOURCE[0]}")/../lib/failover.sh"
fo_init 32300
fo_up
fo_wait_sync_published
wait_until -t 10 fo_fencer_armed "$P" || fail "node$P (primary) never armed its fencer"
pm=$(postmaster_pid "$P") || fail "no postmaster for node$P"
pgwpid=$(node_pid "$P")

fo_writer_start w
fo_wait_acks w 100 20
tk=$(fo_now)
kill -STOP "$pgwpid"
log "SIGSTOPped pgwarden of node$P (pid $pgwpid)"
fo_wait_fenced "$P" "$pm" "$tk" "the SIGSTOP"
pid_alive "$pgwpid" || fail "node$P's stopped pgwarden $pgwpid is gone"

fo_await_failover "$P" "$tk" w 50 "the SIGSTOP"
# 6 s of a hung agent, then it wakes up
while (($(fo_since "$tk") < 6000)); do sleep 0.2; done
kill -CONT "$pgwpid"
log "SIGCONT to pgwarden of node$P"
wait_until -t 60 fo_streams_from "$P" "$N" || {
	pgw list >&2 || true
	fail "node$P not streaming from node$N within 60 s of the SIGCONT"
}
assert_eq "$N" "$(primary_idx)" "primary after node$P woke up"
fo_wait_acks w 50 20 "$(fo_now)" "$(pg_port "$N")"
fo_writer_stop w

fo_check_fired_first "$P" "$N" w
fo_check_lost "$N" w
fo_check_overlap w
