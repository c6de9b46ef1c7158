#!/usr/bin/env bash
# SIGTERM of the primary's pgwarden (issue 3, item 4): it stops its
# PostgreSQL and releases the leader key; another node becomes primary and
# writes through the multi-host read-write string succeed again within
# 10 s; started again, the old primary rejoins as a streaming replica of
# the new primary with every row.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/pgcluster.sh"
pg_init 28700
pg_ports_free
pg_start_all
pg_wait_healthy 60
P=$(primary_idx) || fail "no single primary in list"
assert_eq "node$P" "$(leader_key)" "leader key"
tl=$(member_field timeline "node$P")
log "primary node$P, timeline $tl"
sql_rw "CREATE TABLE t_term (id int PRIMARY KEY)"
sql_rw "INSERT INTO t_term SELECT generate_series(1, 500)"
pm=$(postmaster_pid "$P") || fail "no postmaster for node$P"

t0=$(date +%s%N)
kill -TERM "$(node_pid "$P")"
node_wait_exit "$P" 20 || fail "node$P did not exit within 20 s of SIGTERM"
assert_eq 0 "$NODE_RC" "node$P exit status after SIGTERM"
log "node$P exited after $((($(date +%s%N) - t0) / 1000000)) ms"
! pid_alive "$pm" || fail "node$P postmaster $pm still runs after its pgwarden exited"
no_postmaster "$P" || fail "postgres processes still run in node$P's data dir: $(postmasters_of "$P")"
# the leader key is released (it is gone or already names another node)
k=$(leader_key) || fail "cannot read the leader key"
[[ $k != "node$P" ]] || fail "leader key still names node$P after its pgwarden exited"
log "leader key right after the exit: '${k}'"

# writes through the read-write string succeed again within 10 s
writable() { sql_rw "INSERT INTO t_term VALUES (501) ON CONFLICT DO NOTHING"; }
wait_until -t 12 writable || fail "no write through the read-write string within 12 s of the SIGTERM"
ms=$((($(date +%s%N) - t0) / 1000000))
log "first write after SIGTERM of the primary: ${ms} ms"
((ms < 10000)) || fail "first write took ${ms} ms (limit 10 s)"
# list follows within a report interval
new_primary() { local n; n=$(primary_idx) && [[ $n != "$P" ]]; }
wait_until -t 10 new_primary || {
	pgw list >&2 || true
	fail "list shows no single new primary within 10 s of the first write"
}
N=$(primary_idx)
assert_eq "node$N" "$(leader_key)" "leader key after the switchover"
assert_eq "$(pg_port "$N")" "$(sql_rw "SHOW port")" "read-write string reaches the new primary node$N"
ntl=$(member_field timeline "node$N")
log "new primary node$N, timeline $ntl"
((ntl > tl)) || fail "new primary's timeline $ntl not above $tl"
sql_rw "INSERT INTO t_term SELECT generate_series(502, 600)"
sum=$(sql_at "$N" "SELECT count(*) || ':' || sum(id) FROM t_term")
assert_eq 600:180300 "$sum" "rows on the new primary"

# the old primary comes back as a replica of the new one
node_start "$P"
pg_wait_healthy 60
assert_eq "$N" "$(primary_idx)" "primary after node$P's return"
assert_eq replica/streaming "$(list_json | jq -r --arg n "node$P" '.[] | select(.name == $n) | "\(.role)/\(.state)"')" "node$P role/state"
assert_eq t "$(sql_at "$P" "SELECT pg_is_in_recovery()")" "node$P in recovery"
assert_eq "$(pg_port "$N")" "$(sql_at "$P" "SELECT sender_port FROM pg_stat_wal_receiver WHERE status = 'streaming'")" "node$P streams from node$N's port"
# the record may be one report (1 s) behind the switch to the new timeline
tl_is() { [[ $(member_field timeline "node$1") == "$2" ]]; }
wait_until -t 5 tl_is "$P" "$ntl" || fail "node$P timeline in list: $(member_field timeline "node$P"), expected $ntl"
wait_until -t 15 sql_eq "$P" "SELECT count(*) || ':' || sum(id) FROM t_term" "$sum" ||
	fail "node$P rows: $(sql_at "$P" "SELECT count(*) || ':' || sum(id) FROM t_term"), expected $sum"
sql_rw "INSERT INTO t_term VALUES (601)"
for i in 1 2 3; do
	wait_until -t 15 sql_eq "$i" "SELECT max(id) FROM t_term" 601 || fail "row 601 not on node$i"
done
