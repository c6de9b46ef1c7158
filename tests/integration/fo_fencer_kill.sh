#!/usr/bin/env bash
# fo_fencer_kill: no watchdog ([watchdog] mode = off, as on a machine
# without a device); the second line of defence is the fencer process each
# pgwarden starts (watchdog/wd_fencer.h). Under a write load the primary's
# pgwarden alone is SIGKILLed: its postmaster lives on as an orphan and
# keeps acknowledging writes. The primary's fencer, armed with the lease
# deadline, must kill that PostgreSQL before anyone else is promoted: its
# "fired" time precedes the new primary's first acknowledged row and the
# old PostgreSQL acknowledged no row sent after it; the fencer then exits.
# The replicas' fencers were never armed. Then (a) nothing acknowledged
# lost (synchronous_mode = on), (b) no overlapping write windows, and the
# node, started again, rejoins as a replica of the new primary.
FO_SYNC_MODE=${FO_SYNC_MODE:-on}
source "$(dirname "${BASH_SOURCE[0]}")/../lib/failover.sh"
fo_init 32200
fo_up
fo_wait_sync_published
wait_until -t 10 fo_fencer_armed "$P" || fail "node$P (primary) never armed its fencer"
for i in 1 2 3; do
	[[ -n $(fencers_of "$i") ]] || fail "node$i runs no fencer process"
	((i == P)) && continue
	! fo_fencer_armed "$i" || fail "replica node$i armed its fencer"
done
pm=$(postmaster_pid "$P") || fail "no postmaster for node$P"
fencer=$(fencers_of "$P")
log "node$P: postmaster $pm, fencer $fencer"

fo_writer_start w
fo_wait_acks w 100 20
tk=$(fo_now)
node_kill_daemon "$P"
pid_alive "$pm" || fail "node$P's postmaster $pm died with pgwarden"
log "node$P's postmaster $pm runs on without its pgwarden"

fo_wait_fenced "$P" "$pm" "$tk" "pgwarden's SIGKILL"
wait_until -t 5 not pid_alive "$fencer" || fail "node$P's fencer $fencer did not exit after firing"

fo_await_failover "$P" "$tk" w 50 "pgwarden's SIGKILL"
fo_writer_stop w

fo_check_fired_first "$P" "$N" w
fo_check_lost "$N" w
fo_check_overlap w

# the fenced node comes back as a replica of the new primary
fo_start_node "$P"
wait_until -t 60 fo_streams_from "$P" "$N" || {
	pgw list >&2 || true
	fail "node$P not streaming from node$N within 60 s of its restart"
}
assert_eq "$N" "$(primary_idx)" "primary after node$P rejoined"
