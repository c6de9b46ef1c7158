#!/usr/bin/env bash
# fo_partition_replica: three nodes in network namespaces
# pgwfopartition_replica{1,2,3}, the writer in the client namespace. One
# replica is cut off (nftables in its namespace, all but loopback dropped)
# for 6 s, more than twice the lease: no failover happens (the leader key
# and its revision, the primary and its timeline are unchanged, the
# primary's log shows no fencing) and writes go on (no gap over 2 s); the
# cut replica does not promote itself. After the heal it streams from the
# primary again and holds every acknowledged row. Checks (a) on the primary
# and (b) (synchronous_mode = on by default: the other replica keeps the
# quorum).
FO_SYNC_MODE=${FO_SYNC_MODE:-on}
source "$(dirname "${BASH_SOURCE[0]}")/../lib/failover.sh"
fo_ns_init partition_replica
fo_init 30400
fo_ns_up
fo_start_all
pg_wait_healthy 60
fo_table
P=$(primary_idx) || fail "no single primary"
R=$((P % 3 + 1))
log "primary node$P, cutting replica node$R"
WOPTS=(--connect-timeout-ms 300 --stmt-timeout-ms 1000 --down-backoff-ms 1000)
fo_writer_start w 1 "${WOPTS[@]}"
fo_wait_acks w 100 20
tl0=$(fo_list_tl "$P")
sqltl0=$(fo_timeline "$P")
lk0=$(fo_leader_key_state)
fences0=$(fo_log_count "$P" 'fencing')
pm0=$(sql_at "$P" "SELECT pg_postmaster_start_time()")

tk=$(fo_now)
fo_cut "$R"
while (($(fo_since "$tk") < 6000)); do
	fo_primary_is "$P" || fail "node$P is no longer the one primary at $(fo_since "$tk") ms: $(pgw list 2>&1)"
	sleep 0.5
done
# the cut replica, seen from inside: PostgreSQL in recovery, not promoted
assert_eq t "$(ip netns exec "${FO_NS_PREFIX}$R" psql -X -At "host=10.200.0.$R port=$(pg_port "$R") user=postgres dbname=postgres connect_timeout=3" -c "SELECT pg_is_in_recovery()")" "node$R in recovery while cut off"
tcut=$(fo_now)
fo_heal "$R"
wait_until -t 20 fo_streams_from "$R" "$P" || fail "node$R does not stream from node$P within 20 s of the heal"
log "node$R streams from node$P again $(fo_since "$tcut") ms after the heal"
pg_wait_healthy 20
fo_wait_acks w 50 20 "$(fo_now)"
fo_writer_stop w

read -r gap at < <(fo_max_gap w "$tk" "$tcut")
log "longest write gap while node$R was cut: $gap ms (from $at ms)"
((gap <= 2000)) || fail "writes stalled for $gap ms while a replica was cut off"
assert_eq "$lk0" "$(fo_leader_key_state)" "leader key (value, create_revision, lease)"
assert_eq "$tl0" "$(fo_list_tl "$P")" "node$P's timeline in list"
assert_eq "$sqltl0" "$(fo_timeline "$P")" "node$P's timeline"
assert_eq "$pm0" "$(sql_at "$P" "SELECT pg_postmaster_start_time()")" "node$P's postmaster start time"
assert_eq "$fences0" "$(fo_log_count "$P" 'fencing')" "fencing lines in node$P's log"
[[ $(pgw history -o json | jq 'length') == 0 ]] || fail "history not empty: $(pgw history 2>&1)"

fo_check_lost "$P" w
wait_until -t 15 fo_same_rows "$R" "$P" || fail "node$R's rows differ from node$P's: $(fo_digest "$R") vs $(fo_digest "$P")"
fo_check_lost "$R" w
fo_check_overlap w
