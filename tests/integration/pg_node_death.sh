#!/usr/bin/env bash
# Death of the primary's machine under a write load: a writer inserts rows
# one by one through the multi-host read-write string and records each row
# when it is acknowledged; the primary's pgwarden and PostgreSQL are
# SIGKILLed together; a new primary takes over (bounded wait) and the
# writer's inserts succeed again; every acknowledged row a replica had
# replayed before the kill is on the new primary, and what the new primary
# holds of the writer's rows is exactly a prefix of the inserts; the killed
# node, restarted, rejoins as a replica and holds exactly the new primary's
# rows.
#
# Replication is asynchronous (the default; [ha] synchronous_mode is not
# used here), so a row the old primary acknowledged in its last moments may
# never have reached a replica: such a loss is measured and logged, and not
# counted as a failure. Never lost may be: a row a replica had replayed
# before the kill, nor a row whose commit a surviving replica had received
# (the writer reads the WAL flush position after each commit; the
# survivors' receive positions are read right after the kill).
source "$(dirname "${BASH_SOURCE[0]}")/../lib/pgcluster.sh"
# lsn_int X/Y: an LSN as an integer
lsn_int() { local h=${1%/*} l=${1#*/}; echo $(((16#$h << 32) + 16#$l)); }
# PGW_NODE_DEATH_SYNC=1 (pg_node_death_sync.sh): [ha] synchronous_mode = on,
# where no acknowledged row may be lost at all
SYNC=${PGW_NODE_DEATH_SYNC:-0}
pg_init "${PGW_NODE_DEATH_BASE:-28800}"
if ((SYNC)); then
	for i in 1 2 3; do
		PG_INI_EXTRA[$i]=$'[ha]\nsynchronous_mode = on'
		pg_write_ini "$i"
	done
fi
pg_ports_free
pg_start_all
pg_wait_healthy 60
P=$(primary_idx) || fail "no single primary in list"
log "primary node$P"
if ((SYNC)); then
	has_sync() { (($(sql_at "$P" "SELECT count(*) FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum')") >= 1)); }
	wait_until -t 20 has_sync || fail "no synchronous standby on node$P within 20 s (synchronous_standby_names '$(sql_at "$P" "SHOW synchronous_standby_names")')"
	log "synchronous_standby_names on node$P: $(sql_at "$P" "SHOW synchronous_standby_names")"
fi
sql_rw "CREATE TABLE t_death (id int PRIMARY KEY, at timestamptz DEFAULT now())"
ACKED=$PG_DIR/acked
ATTEMPTS=$PG_DIR/attempts
: >"$ACKED"
: >"$ATTEMPTS"

# the writer: one psql per row, bounded by a count and a clock; an id is
# written to ACKED only after its INSERT returned it (committed), and with
# it the primary's WAL flush position read right after that commit (an
# upper bound of the commit record's position) when the second statement
# still got an answer
writer() {
	local i out end=$((SECONDS + 45))
	for ((i = 1; i <= 100000 && SECONDS < end; i++)); do
		echo "$i" >>"$ATTEMPTS"
		out=$(psql -X -q -At -v ON_ERROR_STOP=1 "$(rw_conninfo)" \
			-c "INSERT INTO t_death (id) VALUES ($i) RETURNING id" \
			-c "SELECT pg_current_wal_flush_lsn()" 2>>"$PG_DIR/writer.err") || true
		if [[ $(sed -n 1p <<<"$out") == "$i" ]]; then
			echo "$i" >>"$ACKED"
			echo "$i $(sed -n 2p <<<"$out")" >>"$PG_DIR/lsns"
		fi
		[[ -e $PG_DIR/writer.stop ]] && break
	done
}
writer &
WPID=$!
PG_EXTRA_PIDS+=("$WPID")
acked_n() { wc -l <"$ACKED"; }
acked_at_least() { (($(acked_n) >= $1)); }
wait_until -t 20 acked_at_least 40 || fail "writer: only $(acked_n) rows acknowledged in 20 s"

# what each replica has replayed just before the kill
declare -A REPLAYED=()
for i in 1 2 3; do
	((i == P)) && continue
	REPLAYED[$i]=$(sql_at "$i" "SELECT coalesce(max(id), 0) FROM t_death")
done
ack_before=$(tail -n 1 "$ACKED")
node_kill_machine "$P"
t0=$(date +%s%N)
log "killed node$P; last acknowledged row before the kill $ack_before; replicas had replayed up to: $(for i in "${!REPLAYED[@]}"; do printf 'node%s=%s ' "$i" "${REPLAYED[$i]}"; done)"
no_postmaster "$P" || fail "postgres processes survive in node$P's data dir: $(postmasters_of "$P")"
# how much WAL each survivor received (bytes in flight on loopback arrive
# within the half second; promotion takes longer than the lease)
sleep 0.5
declare -A RECV=()
RECV_MAX=0
for i in 1 2 3; do
	((i == P)) && continue
	l=$(sql_at "$i" "SELECT pg_last_wal_receive_lsn()") || fail "node$i: receive position unreadable"
	RECV[$i]=$(lsn_int "$l")
	if ((RECV[$i] > RECV_MAX)); then RECV_MAX=${RECV[$i]}; fi
	log "node$i received WAL up to $l after the kill"
done

# a new primary; the writer's inserts succeed there
new_primary() { local n; n=$(primary_idx) && [[ $n != "$P" ]]; }
wait_until -t 30 new_primary || {
	pgw list >&2 || true
	fail "no new primary within 30 s of the kill"
}
N=$(primary_idx)
log "new primary node$N after $((($(date +%s%N) - t0) / 1000000)) ms"
n_at=$(acked_n)
wait_until -t 20 acked_at_least $((n_at + 20)) || fail "writer: no new acknowledged rows after the failover"
touch "$PG_DIR/writer.stop"
wait "$WPID" || true
log "writer: $(wc -l <"$ATTEMPTS") inserts tried, $(acked_n) acknowledged"
assert_eq "$(pg_port "$N")" "$(sql_rw "SHOW port")" "read-write string reaches node$N"

# 1. what the new primary holds is a prefix of the inserts plus the rows
#    acknowledged by itself
sql_at "$N" "SELECT id FROM t_death ORDER BY id" >"$PG_DIR/rows.new"
sort -n "$ACKED" >"$PG_DIR/acked.sorted"
missing=$(comm -23 <(sort "$ACKED") <(sort "$PG_DIR/rows.new") | sort -n | tr '\n' ' ')
extra=$(comm -13 <(sort "$ACKED") <(sort "$PG_DIR/rows.new") | sort -n | tr '\n' ' ')
log "acknowledged rows missing on node$N: [${missing}]; rows on node$N never acknowledged (in flight at the kill): [${extra}]"
# the surviving replicas together had replayed up to R before the kill: a
# failover to the most advanced replica loses none of those rows
R=0
for i in "${!REPLAYED[@]}"; do if ((REPLAYED[$i] > R)); then R=${REPLAYED[$i]}; fi; done
for id in $extra; do
	grep -qx "$id" "$ATTEMPTS" || fail "row $id on node$N was never inserted"
done
for id in $missing; do
	((id > R)) || fail "row $id, acknowledged and replayed on a replica before the kill (up to $R: $(declare -p REPLAYED)), is missing on the new primary node$N"
done
# rows present form: 1..k, then only ids inserted after the failover
k=$(awk 'NR == $1 { k = NR; next } { exit } END { print k + 0 }' "$PG_DIR/rows.new")
((k >= R)) || fail "node$N holds only rows 1..$k, the replicas had replayed up to $R before the kill"
for id in $missing; do
	((id > k)) || fail "gap: row $id is missing inside the prefix 1..$k"
done
# a lost row whose commit (bounded by the flush position read after it)
# had reached a survivor is not an inherent loss of asynchronous
# replication: the failover dropped WAL a replica had
for id in $missing; do
	l=$(awk -v id="$id" '$1 == id { print $2 }' "$PG_DIR/lsns")
	[[ -n $l ]] || continue
	if (($(lsn_int "$l") <= RECV_MAX)); then
		fail "row $id (committed at or before $l) had reached a replica (received up to $(declare -p RECV)) but is missing on the new primary node$N"
	fi
done
if ((SYNC)) && [[ -n $missing ]]; then
	fail "synchronous_mode = on: acknowledged rows lost with the old primary: $missing"
fi
ll=$(tail -n 1 "$PG_DIR/lsns")
log "last acknowledged row ${ll% *}: committed at or before ${ll#* }"
if [[ -n $missing ]]; then
	log "ASYNC LOSS: $(wc -w <<<"$missing") acknowledged row(s) lost with the old primary: $missing (last acknowledged before the kill: $ack_before; the replicas had replayed up to $R)"
fi
# every row acknowledged after the failover is there
for id in $(awk -v k="$k" '$1 > k' "$ACKED"); do
	grep -qx "$id" "$PG_DIR/rows.new" || [[ " $missing " == *" $id "* ]] || fail "row $id missing"
done

# 2. the killed node rejoins as a replica with exactly the same rows
node_start "$P"
pg_wait_healthy 60
assert_eq "$N" "$(primary_idx)" "primary after node$P's return"
assert_eq replica/streaming "$(list_json | jq -r --arg n "node$P" '.[] | select(.name == $n) | "\(.role)/\(.state)"')" "node$P role/state"
grep -q 'op=rewind done\|rewind' "$(node_log "$P")" && log "node$P log: $(grep -m1 -i 'rewind' <(sed -n '/start node'"$P"' =====/h; //!H; ${x;p}' "$(node_log "$P")") || true)"
digest="SELECT count(*) || ':' || coalesce(sum(id), 0) || ':' || md5(coalesce(string_agg(id::text, ',' ORDER BY id), '')) FROM t_death"
want=$(sql_at "$N" "$digest")
for i in 1 2 3; do
	wait_until -t 15 sql_eq "$i" "$digest" "$want" ||
		fail "node$i rows differ from the new primary's: $(sql_at "$i" "$digest") vs $want"
done
log "all three nodes hold the same $(cut -d: -f1 <<<"$want") rows"
