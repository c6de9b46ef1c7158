#!/usr/bin/env bash
# Whole-cluster stop and start keeps data, timeline and roles (issue 3,
# item 4): SIGTERM to all three pgwarden at once stops each PostgreSQL (no
# postmaster left, checked by pid); started again, the same node is primary
# on the same timeline, every row is on every node, the replicas stream.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/pgcluster.sh"
pg_init 28400
pg_ports_free
pg_start_all
pg_wait_healthy 60
P=$(primary_idx) || fail "no single primary in list"
tl=$(sql_at "$P" "SELECT timeline_id FROM pg_control_checkpoint()")
tl_list=$(member_field timeline "node$P")
sysid=$(pg_sysid "$P")
log "primary node$P, timeline $tl (list: $tl_list), system id $sysid"

sql_rw "CREATE TABLE t_restart (id int PRIMARY KEY, v text)"
sql_rw "INSERT INTO t_restart SELECT g, 'r' || g FROM generate_series(1, 1000) g"
sum=$(sql_at "$P" "SELECT count(*) || ':' || sum(id) FROM t_restart")
assert_eq 1000:500500 "$sum" "rows on the primary"

declare -A PM=()
for i in 1 2 3; do
	PM[$i]=$(postmaster_pid "$i") || fail "no postmaster for node$i"
done
log "postmasters: ${PM[1]} ${PM[2]} ${PM[3]}"

# SIGTERM all three at once
for i in 1 2 3; do kill -TERM "$(node_pid "$i")"; done
for i in 1 2 3; do
	node_wait_exit "$i" 20 || fail "node$i did not exit within 20 s of SIGTERM"
	assert_eq 0 "$NODE_RC" "node$i exit status after SIGTERM"
done
log "all three pgwarden exited"
for i in 1 2 3; do
	pid_alive "${PM[$i]}" && fail "node$i postmaster ${PM[$i]} still runs after its pgwarden exited"
	no_postmaster "$i" || fail "a postgres process still runs in node$i's data dir: $(postmasters_of "$i")"
	[[ ! -f $(pg_data "$i")/postmaster.pid ]] || fail "node$i postmaster.pid left behind (not a clean stop)"
done
for i in 1 2 3; do
	state=$(as_pg "$PG_BIN/pg_controldata" "$(pg_data "$i")" | sed -n 's/^Database cluster state: *//p')
	log "node$i pg_controldata: $state"
	[[ $state == "shut down" || $state == "shut down in recovery" ]] || fail "node$i PostgreSQL was not shut down cleanly: $state"
done

pg_start_all
pg_wait_healthy 60
assert_eq "$P" "$(primary_idx)" "primary after the whole-cluster restart"
for i in 1 2 3; do
	assert_eq "$tl" "$(member_field timeline "node$i")" "node$i timeline in list"
	assert_eq "$tl" "$(sql_at "$i" "SELECT timeline_id FROM pg_control_checkpoint()")" "node$i timeline (pg_control_checkpoint)"
	assert_eq "$sysid" "$(pg_sysid "$i")" "node$i system id"
	assert_eq "$sum" "$(sql_at "$i" "SELECT count(*) || ':' || sum(id) FROM t_restart")" "rows on node$i"
done
assert_eq f "$(sql_rw "SELECT pg_is_in_recovery()")" "read-write connection after the restart"
assert_eq "$(pg_port "$P")" "$(sql_rw "SHOW port")" "read-write connection reaches node$P"
# and it takes writes that reach the replicas
sql_rw "INSERT INTO t_restart VALUES (1001, 'after')"
for i in 1 2 3; do
	wait_until -t 15 sql_eq "$i" "SELECT v FROM t_restart WHERE id = 1001" after || fail "row 1001 not on node$i"
done
