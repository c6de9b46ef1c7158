#!/usr/bin/env bash
# fo_rejoin_rewind: the primary's machine dies under a write load, a replica
# takes over and acknowledges rows, then the old node is started again: it
# rejoins by itself as a replica of the new primary through pg_rewind (its
# log says so), streams from it on the same timeline, and holds every
# acknowledged row. Prints the time from its restart to streaming. Checks
# (a) on the new primary and on the rejoined node (synchronous_mode = on by
# default) and (b).
FO_SYNC_MODE=${FO_SYNC_MODE:-on}
source "$(dirname "${BASH_SOURCE[0]}")/../lib/failover.sh"
fo_init 30800
fo_up
fo_wait_sync_published
fo_writer_start w
fo_wait_acks w 100 20
tk=$(fo_now)
node_kill_machine "$P"
fo_await_failover "$P" "$tk" w 100 "the kill"

nlines=$(wc -l <"$(node_log "$P")")
tr=$(fo_now)
fo_start_node "$P"
wait_until -t 30 fo_streams_from "$P" "$N" || {
	pgw list >&2 || true
	fail "node$P does not stream from node$N within 30 s of its restart"
}
log "node$P streams from node$N $(fo_since "$tr") ms after its restart"
wait_until -t 10 fo_is_role_state "$P" replica/streaming || fail "node$P is $(fo_role_state "$P"), not replica/streaming"
tail -n +"$((nlines + 1))" "$(node_log "$P")" | grep -E 'op=rewind (begin|done)' >&2 ||
	fail "node$P's log since its restart shows no pg_rewind (op=rewind begin/done)"
tail -n +"$((nlines + 1))" "$(node_log "$P")" | grep -qE 'op=basebackup|op=clone|wiping' &&
	fail "node$P was cloned again instead of rewound"
assert_eq "$N" "$(primary_idx)" "primary after node$P's return"
assert_eq "$(fo_list_tl "$N")" "$(fo_list_tl "$P")" "node$P's timeline (list) against node$N's"
fo_wait_acks w 30 20 "$(fo_now)"
fo_writer_stop w

fo_check_lost "$N" w
wait_until -t 15 fo_same_rows "$P" "$N" || fail "node$P's rows differ from node$N's: $(fo_digest "$P") vs $(fo_digest "$N")"
fo_check_lost "$P" w
assert_eq "$(sql_at "$N" "SELECT timeline_id FROM pg_control_checkpoint()")" \
	"$(sql_at "$P" "SELECT received_tli FROM pg_stat_wal_receiver")" "node$P's WAL receiver timeline against node$N's"
fo_check_overlap w
