#!/usr/bin/env bash
# fo_node_death: the primary's machine dies under a write load. pgwarden
# and its PostgreSQL are SIGKILLed together (the node's process group and
# every postgres process of its data dir, in one kill(1)); a replica takes
# over and the writer's rows land there. Checks: (a) every acknowledged
# row is on the new primary (synchronous_mode = on by default;
# FO_SYNC_MODE=off runs the same strict check asynchronously), (b) no two
# PostgreSQL instances accepted writes in overlapping windows; and the
# controller asked both replicas for their WAL position before naming the
# candidate, which had the highest. Prints the write gap (kill -> first
# acknowledged row on the new primary).
FO_SYNC_MODE=${FO_SYNC_MODE:-on}
source "$(dirname "${BASH_SOURCE[0]}")/../lib/failover.sh"
fo_init 30000
fo_up
fo_wait_sync_published

fo_writer_start w
fo_wait_acks w 100 20
tk=$(fo_now)
node_kill_machine "$P"
no_postmaster "$P" || fail "postgres processes survive in node$P's data dir: $(postmasters_of "$P")"

wait_until -t 30 fo_new_primary "$P" || {
	pgw list >&2 || true
	fail "no new primary within 30 s of the kill"
}
N=$(primary_idx)
log "new primary node$N listed $(fo_since "$tk") ms after the kill"
fo_wait_acks w 50 20 "$tk" "$(pg_port "$N")"
gap=$(fo_first_ack_after w "$tk" "$(pg_port "$N")")
log "write gap: $((gap / 1000)) ms from the kill to the first acknowledged row (node$N)"
fo_writer_stop w
assert_eq "node$N" "$(leader_key)" "leader key"

fo_check_lsn_poll "$N" 2
fo_check_lost "$N" w
fo_check_overlap w
