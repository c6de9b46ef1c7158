#!/usr/bin/env bash
# A node whose PostgreSQL data dir belongs to another cluster refuses to
# start it (issue 3, item 2; the seed's "cluster ID mismatch"): a replica
# is stopped, its data dir replaced by a fresh initdb; started again, the
# node reports state `refused` with the mismatch in its detail, its
# PostgreSQL is not started, and the foreign data dir is left intact.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/pgcluster.sh"
pg_init 28500
pg_ports_free
pg_start_all
pg_wait_healthy 60
P=$(primary_idx) || fail "no single primary in list"
R=
for i in 3 2 1; do ((i == P)) || { R=$i; break; }; done
O=$((6 - P - R))
sysid=$(pg_sysid "$P")
log "primary node$P (system id $sysid), the replica under test node$R"

node_stop "$R"
wait_until -t 10 no_postmaster "$R" || fail "node$R PostgreSQL still runs after SIGTERM"

# a foreign cluster in its place
D=$(pg_data "$R")
rm -rf "$D"
as_pg "$PG_BIN/initdb" -D "$D" -A trust -U postgres >"$PG_DIR/initdb-foreign.log" 2>&1 ||
	fail "initdb of the foreign cluster failed: $(tail -5 "$PG_DIR/initdb-foreign.log")"
echo "foreign marker $RANDOM" >"$D/foreign-marker"
chown "$PG_USER:$PG_USER" "$D/foreign-marker"
controldata() { as_pg "$PG_BIN/pg_controldata" "$D"; }
foreign=$(controldata | sed -n 's/^Database system identifier: *//p')
[[ $foreign =~ ^[0-9]+$ ]] || fail "foreign system id: '$foreign'"
[[ $foreign != "$sysid" ]] || fail "initdb produced the same system id"
before=$(cd "$D" && find . -type f ! -name 'postmaster.*' -print0 | sort -z | xargs -0 md5sum | md5sum)
log "node$R data dir is now a cluster with system id $foreign"

node_start "$R"
refused() { [[ $(member_field state "node$R") == refused ]]; }
wait_until -t 30 refused || {
	pgw list >&2 || true
	fail "node$R not in state refused within 30 s"
}
js=$(list_json)
detail=$(jq -r --arg n "node$R" '.[] | select(.name == $n) | .detail' <<<"$js")
log "node$R: $(jq -c --arg n "node$R" '.[] | select(.name == $n) | {role, state, detail}' <<<"$js")"
grep -qi 'cluster ID mismatch' <<<"$detail" || fail "node$R detail does not say 'cluster ID mismatch': '$detail'"
grep -q "$foreign" <<<"$detail" || fail "node$R detail does not name the data's system id $foreign: '$detail'"
grep -q "$sysid" <<<"$detail" || fail "node$R detail does not name the cluster's system id $sysid: '$detail'"
grep -qi 'cluster ID mismatch' "$(node_log "$R")" || fail "node$R log does not mention the mismatch"

# it stays refused over several loops: PostgreSQL never started, the data
# dir not touched, the node itself still running
for n in $(seq 1 30); do
	no_postmaster "$R" || fail "a postgres runs in node$R's foreign data dir: $(postmasters_of "$R")"
	[[ ! -e $D/postmaster.pid ]] || fail "postmaster.pid appeared in node$R's foreign data dir"
	sleep 0.1
done
node_running "$R" || fail "node$R's pgwarden exited"
assert_eq refused "$(member_field state "node$R")" "node$R state after 3 s"
! port_bound "$(pg_port "$R")" || fail "port $(pg_port "$R") of node$R is bound"
assert_eq "$foreign" "$(controldata | sed -n 's/^Database system identifier: *//p')" "system id of node$R's data dir"
after=$(cd "$D" && find . -type f ! -name 'postmaster.*' -print0 | sort -z | xargs -0 md5sum | md5sum)
assert_eq "$before" "$after" "checksum of every file in node$R's foreign data dir"
[[ -f $D/foreign-marker ]] || fail "marker file gone from node$R's data dir"
assert_eq "shut down" "$(controldata | sed -n 's/^Database cluster state: *//p')" "foreign cluster state"

# the rest of the cluster is unaffected
assert_eq "$P" "$(primary_idx)" "primary"
assert_eq streaming "$(member_field state "node$O")" "node$O state"
sql_rw "CREATE TABLE t_sysid AS SELECT 1 AS v"
wait_until -t 15 sql_eq "$O" "SELECT v FROM t_sysid" 1 || fail "row not on node$O"
