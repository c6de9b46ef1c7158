#!/usr/bin/env bash
# fo_agent_kill_watchdog: every node runs with [watchdog] mode = required on
# a FIFO served by its own stand-in (wdfifo --kill-pgid <node's group>,
# timeout 1 s, --persist). Under a write load the primary's pgwarden alone
# is SIGKILLed: its postmaster lives on as an orphan in the node's process
# group and keeps acknowledging writes, and nothing but the watchdog can
# stop it. The stand-in must kill the node's PostgreSQL before anyone else
# is promoted: its "watchdog fired" time precedes the new primary's first
# acknowledged row, and the old PostgreSQL acknowledged no row sent after
# it. Then the writer's checks: (a) nothing acknowledged lost
# (synchronous_mode = on by default), (b) no overlapping write windows.
FO_SYNC_MODE=${FO_SYNC_MODE:-on}
source "$(dirname "${BASH_SOURCE[0]}")/../lib/failover.sh"
FO_WD=1
fo_init 30100
fo_up
fo_wait_sync_published
wait_until -t 10 fo_wd_armed "$P" || fail "node$P (primary) never armed its watchdog stand-in"
for i in 1 2 3; do
	((i == P)) && continue
	! fo_wd_armed "$i" || fail "replica node$i armed its watchdog"
done
list_json | jq -c --arg n "node$P" '.[] | select(.name == $n) | .watchdog' >&2 || true
pm=$(postmaster_pid "$P") || fail "no postmaster for node$P"

fo_writer_start w
fo_wait_acks w 100 20
tk=$(fo_now)
node_kill_daemon "$P"
pid_alive "$pm" || fail "node$P's postmaster $pm died with pgwarden"
log "node$P's postmaster $pm runs on without its pgwarden"

fo_wait_fenced "$P" "$pm" "$tk" "pgwarden's SIGKILL"
wdrc=0
wait "${FO_WDPID[$P]}" || wdrc=$?
unset "FO_WDPID[$P]"
assert_eq 3 "$wdrc" "node$P's stand-in exit status (3 = fired)"

fo_await_failover "$P" "$tk" w 50 "pgwarden's SIGKILL"
fo_writer_stop w

fo_check_fired_first "$P" "$N" w
fo_check_lost "$N" w
fo_check_overlap w
