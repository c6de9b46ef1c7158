#!/usr/bin/env bash
# A replica's pgwarden SIGKILLed alone (not its PostgreSQL) and restarted
# adopts the PostgreSQL that still runs: the postmaster keeps its pid, no
# second postmaster appears for that data dir, and the node is streaming
# again in `pgwarden list` (issue 3, item 4).
source "$(dirname "${BASH_SOURCE[0]}")/../lib/pgcluster.sh"
pg_init 28300
pg_ports_free
pg_start_all
pg_wait_healthy 60
P=$(primary_idx) || fail "no single primary in list"
R=
for i in 3 2 1; do ((i == P)) || { R=$i; break; }; done
log "primary node$P, the replica under test node$R"

pm=$(postmaster_pid "$R") || fail "no postmaster for node$R"
started=$(awk '{print $22}' "/proc/$pm/stat")
starts=$(grep -c 'starting PostgreSQL' "$(pg_log "$R")")
log "node$R postmaster pid $pm"
sql_rw "CREATE TABLE t_adopt (id int PRIMARY KEY)"
sql_rw "INSERT INTO t_adopt VALUES (1)"
wait_until -t 15 sql_eq "$R" "SELECT count(*) FROM t_adopt" 1 || fail "row 1 not on node$R"

node_kill_daemon "$R"
sleep 1
# PostgreSQL keeps running without its pgwarden and keeps streaming
assert_eq "$pm" "$(postmaster_pid "$R")" "node$R postmaster pid after SIGKILL of pgwarden"
sql_rw "INSERT INTO t_adopt VALUES (2)"
wait_until -t 15 sql_eq "$R" "SELECT count(*) FROM t_adopt" 2 || fail "orphaned node$R PostgreSQL does not stream"

node_start "$R"
# the node reports streaming again, from a record written after the restart
fresh_streaming() {
	node_running "$R" || return 1
	[[ $(curl -s --max-time 2 "$(api_url "$R")/replica" -o /dev/null -w '%{http_code}') == 200 ]] || return 1
	[[ $(member_field state "node$R") == streaming ]]
}
wait_until -t 30 fresh_streaming || {
	pgw list >&2 || true
	fail "node$R not streaming within 30 s of its restart"
}
pg_wait_healthy 30
# same postmaster, and only one for that data dir
assert_eq "$pm" "$(postmaster_pid "$R")" "node$R postmaster pid after the restart"
assert_eq "$started" "$(awk '{print $22}' "/proc/$pm/stat")" "node$R postmaster start time"
assert_eq "$pm" "$(postmasters_of "$R")" "postmasters running in node$R's data dir"
# stays adopted for a few loops (no late restart of PostgreSQL)
sleep 3
assert_eq "$pm" "$(postmaster_pid "$R")" "node$R postmaster pid 3 s after the restart"
assert_eq "$pm" "$(postmasters_of "$R")" "postmasters in node$R's data dir 3 s after the restart"
assert_eq "$starts" "$(grep -c 'starting PostgreSQL' "$(pg_log "$R")")" "'starting PostgreSQL' lines in node$R's postgresql.log"
sql_rw "INSERT INTO t_adopt VALUES (3)"
wait_until -t 15 sql_eq "$R" "SELECT count(*) FROM t_adopt" 3 || fail "row 3 not on node$R after the adoption"
assert_eq "$P" "$(primary_idx)" "primary after the adoption"
# the adopting node logs it
grep -qi 'adopt' "$(node_log "$R")" && log "node$R log: $(grep -i adopt "$(node_log "$R")" | tail -1)"
pgw list >&2
