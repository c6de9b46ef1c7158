#!/usr/bin/env bash
# fo_slot_removal: the primary keeps a physical slot pgw_<name> for every
# member of the Raft membership and drops pgwarden's slots of members that
# left; slots not named pgw_* are the operator's and never touched.
#
# Under a write load, on an assembled cluster (primary P, replicas R and K):
#   - P has exactly the slots pgw_nodeR and pgw_nodeK, both active;
#   - an operator slot ops_keep is created on P;
#   - R is stopped (SIGTERM): while it is only down, its slot is kept. A
#     canary slot pgw_canary (pgwarden's name, no such member) is created
#     once R's slot is inactive; its drop proves that P reconciled its
#     slots with R down, and pgw_nodeR is still there after it;
#   - `pgwarden member remove nodeR`: pgw_nodeR is dropped within 15 s;
#     ops_keep and pgw_nodeK are kept (pgw_nodeK still active), and a
#     second canary's drop shows that a later pass does not bring
#     pgw_nodeR back;
#   - no acknowledged row is lost (on P and on K) and no two PostgreSQL
#     instances accepted writes in overlapping windows.
FO_SYNC_MODE=${FO_SYNC_MODE:-off}
source "$(dirname "${BASH_SOURCE[0]}")/../lib/failover.sh"
fo_init 32100
fo_up
R=$((P % 3 + 1))
K=$((R % 3 + 1))
log "primary node$P; replica node$R will be removed, node$K kept"

# slots: "name:active" or "name:inactive" for every slot on P, by name
slots() { sql_at "$P" "SELECT coalesce(string_agg(slot_name || CASE WHEN active THEN ':active' ELSE ':inactive' END, ' ' ORDER BY slot_name), '') FROM pg_replication_slots"; }
slots_are() { [[ $(slots 2>/dev/null) == "$1" ]]; }
has_slot() { [[ $(sql_at "$P" "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$1'" 2>/dev/null) == 1 ]]; }
no_slot() { [[ $(sql_at "$P" "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$1'" 2>/dev/null) == 0 ]]; }
slot_inactive() { [[ $(sql_at "$P" "SELECT active FROM pg_replication_slots WHERE slot_name = '$1'" 2>/dev/null) == f ]]; }
# canary NAME: create pgwarden-named slot NAME for no member and wait
# until P drops it: a reconciliation pass ran after the creation
canary() {
	local t0
	t0=$(fo_now)
	sql_at "$P" "SELECT pg_create_physical_replication_slot('$1')" >/dev/null
	wait_until -t 10 no_slot "$1" || fail "slot $1 (no such member) not dropped within 10 s: $(slots)"
	log "canary $1 dropped $(fo_since "$t0") ms after its creation: slots reconciled"
}

SR=pgw_node$R SK=pgw_node$K
want="$SR:active $SK:active"
[[ $SK < $SR ]] && want="$SK:active $SR:active"
wait_until -t 15 slots_are "$want" || fail "node$P's slots: expected '$want', got '$(slots)'"
log "node$P's slots: $(slots)"

fo_writer_start w
fo_wait_acks w 100 20
sql_at "$P" "SELECT pg_create_physical_replication_slot('ops_keep')" >/dev/null
has_slot ops_keep || fail "ops_keep not created: $(slots)"

# --- R down, still a member: its slot stays
node_stop "$R"
wait_until -t 10 slot_inactive "$SR" || fail "$SR still active 10 s after node$R stopped: $(slots)"
canary pgw_canary
has_slot "$SR" || fail "$SR dropped while node$R was only down: $(slots)"
has_slot ops_keep || fail "ops_keep dropped: $(slots)"
log "node$R down: node$P's slots $(slots)"

# --- R removed for good: its slot goes, the others stay
out=$(pgw member remove "node$R" 2>&1) || fail "member remove node$R: $out"
assert_eq "Member node$R removed" "$out" "member remove output"
tr0=$(fo_now)
wait_until -t 15 no_slot "$SR" || fail "$SR still there 15 s after node$R was removed: $(slots)"
log "$SR dropped $(fo_since "$tr0") ms after node$R was removed"
not_member() { pgw members -o json | jq -e --arg n "node$R" '(.members | length) == 2 and all(.members[]; .name != $n)' >/dev/null; }
wait_until -t 10 not_member || fail "members still lists node$R: $(pgw members 2>&1)"
canary pgw_canary2
slots_are "ops_keep:inactive $SK:active" || fail "after node$R's removal node$P's slots should be 'ops_keep:inactive $SK:active', got '$(slots)'"
log "node$R removed: node$P's slots $(slots)"

fo_wait_acks w 30 20 "$(fo_now)" "$(pg_port "$P")"
fo_writer_stop w
fo_check_lost "$P" w
wait_until -t 15 fo_same_rows "$K" "$P" || fail "node$K's rows differ from node$P's: $(fo_digest "$K") vs $(fo_digest "$P")"
fo_check_lost "$K" w
fo_check_overlap w
