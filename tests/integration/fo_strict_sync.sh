#!/usr/bin/env bash
# fo_strict_sync: [ha] synchronous_mode = strict with
# synchronous_node_count = 2 on three nodes: the primary commits only once
# both replicas have the commit (synchronous_standby_names = 'ANY 2
# ("nodeA", "nodeB")', the same set published in /service/<cluster>/sync).
# One replica's node is stopped with SIGTERM (pgwarden stops its
# PostgreSQL) under a write load: commits must wait rather than be
# acknowledged without it. For 5 s no row sent after the replica's
# PostgreSQL is gone is acknowledged (the writer's client-side statement
# timeout of 2 s turns each blocked INSERT into an unknown outcome, so it
# never hangs), a psql INSERT sent then stays blocked on SyncRep, the
# primary keeps its synchronous set with both replicas and stays primary
# (no failover: leader key, timeline and postmaster unchanged, list shows
# it running). The replica is started again: it streams from the primary,
# the blocked commits complete (the psql INSERT returns, no backend waits
# on SyncRep) and the writer's rows are acknowledged again. Checks (a) on
# the primary and on both replicas, and (b).
# Ports: 30950..30989, the upper half of fo_nofailover's block (30900..30939).
FO_SYNC_MODE=strict
FO_HA_EXTRA="synchronous_node_count = 2"
source "$(dirname "${BASH_SOURCE[0]}")/../lib/failover.sh"
fo_init 30900
# fo_init accepts blocks of 100 only; this test takes the free upper half
PG_BASE=$((30950 + PGW_TEST_PORT_SHIFT))
for ((i = 1; i <= PG_NODES; i++)); do fo_write_ini "$i"; done
log "port base $PG_BASE (the upper half of 30900's block)"
pg_ports_free
fo_start_all
pg_wait_healthy 60
P=$(primary_idx) || fail "no single primary"
R=$((P % 3 + 1))     # the replica that is stopped
O=$((R % 3 + 1))     # the one that keeps running
BOTH=$(printf '%s\n' "node$R" "node$O" | sort | jq -Rcs 'split("\n") | map(select(length > 0))')
SSN=$(jq -r '"ANY 2 (" + (map("\"" + . + "\"") | join(", ")) + ")"' <<<"$BOTH")
log "primary node$P, stopping replica node$R, node$O keeps running; expected set $BOTH, $SSN"

sync_key() { pgw --timeout 3 get "/service/$PG_CLUSTER/sync" --print-value-only; }
# sync_published_is JSON: /service/<c>/sync is strict, led by the primary,
# k 2, and lists exactly the names of the JSON array
sync_published_is() {
	sync_key | jq -e --arg l "node$P" --argjson s "$1" \
		'.mode == "strict" and .leader == $l and .k == 2 and (.standbys | sort) == $s' >/dev/null
}
ssn() { sql_at "$P" "SHOW synchronous_standby_names"; }
ssn_is() { [[ $(ssn 2>/dev/null) == "$1" ]]; }
# quorum_both: the primary streams to both replicas as quorum standbys
quorum_both() {
	[[ $(sql_at "$P" "SELECT string_agg(application_name || ':' || state || ':' || sync_state, ',' ORDER BY application_name) FROM pg_stat_replication") == \
		"$(jq -r 'map(. + ":streaming:quorum") | join(",")' <<<"$BOTH")" ]]
}
# syncrep_waiters: backends of the primary waiting for synchronous replication
syncrep_waiters() { sql_at "$P" "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'"; }
no_syncrep_waiters() { [[ $(syncrep_waiters 2>/dev/null) == 0 ]]; }
probe_waits() { [[ $(sql_at "$P" "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'fo_strict_probe' AND wait_event = 'SyncRep'" 2>/dev/null) == 1 ]]; }

t0=$(fo_now)
wait_until -t 30 sync_published_is "$BOTH" ||
	fail "no synchronous set {k 2, $BOTH} published by node$P within 30 s: $(sync_key 2>&1)"
log "synchronous set published ($(fo_since "$t0") ms): $(sync_key)"
wait_until -t 10 ssn_is "$SSN" || fail "node$P runs with synchronous_standby_names '$(ssn 2>&1)', not '$SSN'"
wait_until -t 10 quorum_both || fail "node$P does not stream to both replicas as quorum standbys: $(sql_at "$P" "SELECT application_name, state, sync_state FROM pg_stat_replication" 2>&1)"
fo_table

WOPTS=(--stmt-timeout-ms 2000 --down-backoff-ms 500 --max-ms 90000)
fo_writer_start w 1 "${WOPTS[@]}"
fo_wait_acks w 100 20
tl0=$(fo_list_tl "$P")
sqltl0=$(fo_timeline "$P")
lk0=$(fo_leader_key_state)
pm0=$(sql_at "$P" "SELECT pg_postmaster_start_time()")

tk=$(fo_now)
node_stop "$R"
no_postmaster "$R" || fail "postgres processes survive in node$R's data dir: $(postmasters_of "$R")"
tg=$(fo_now)
log "node$R and its PostgreSQL gone $(fo_since "$tk") ms after SIGTERM"
# a client that waits: its INSERT must not return while node$R is down
PROBE_ID=2000000000
PGAPPNAME=fo_strict_probe timeout 120 psql -X -q -At -v ON_ERROR_STOP=1 \
	"host=127.0.0.1 port=$(pg_port "$P") user=postgres dbname=postgres connect_timeout=3" \
	-c "INSERT INTO fo_w (id, port) VALUES ($PROBE_ID, inet_server_port())" \
	>"$PG_DIR/probe.out" 2>&1 &
probe=$!
PG_EXTRA_PIDS+=("$probe")
while (($(fo_since "$tg") < 5000)); do
	fo_primary_is "$P" || fail "node$P is no longer the one primary at $(fo_since "$tg") ms: $(pgw list 2>&1)"
	fo_is_role_state "$P" primary/running || fail "list shows node$P as $(fo_role_state "$P")"
	sleep 0.5
done
tw=$(fo_now)
ssn_down=$(ssn) || fail "cannot read node$P's synchronous_standby_names"
pub_down=$(sync_key) || fail "cannot read the synchronous set"
waiters=$(syncrep_waiters) || fail "cannot read node$P's pg_stat_activity"
log "node$R down for $(fo_since "$tg") ms: synchronous_standby_names '$ssn_down', published $pub_down, $waiters backend(s) waiting on SyncRep, writer: $(fo_writer_summary w)"
pgw list >&2 || true
acked=$(awk -v t="$tg" -v e="$tw" '$1 == "A" && $3 > t && $4 <= e' "$PG_DIR/w.w")
[[ -z $acked ]] || fail "$(wc -l <<<"$acked") row(s) sent after node$R was gone were acknowledged while it was down (strict, k 2): $(head -n 5 <<<"$acked" | awk -v t="$tg" '{ printf "id %s sent +%d ms acknowledged +%d ms by port %s; ", $2, ($3 - t) / 1000, ($4 - t) / 1000, $5 }')"
late=$(awk -v t="$tg" -v e="$tw" '$1 == "A" && $4 > t && $4 <= e { n++ } END { print n + 0 }' "$PG_DIR/w.w")
((late == 0)) || fail "$late row(s) acknowledged after node$R was gone (rows sent before it went)"
blocked=$(awk -v t="$tg" -v e="$tw" -v ti="$((P - 1))" '$1 == "U" && $3 > t && $4 <= e && $5 == ti && $6 == "timeout" { n++ } END { print n + 0 }' "$PG_DIR/w.w")
log "writer while node$R was down: 0 acknowledged, $blocked INSERT(s) timed out unanswered (2 s client timeout)"
((blocked >= 1)) || fail "the writer timed out on no INSERT while node$R was down: did it write at all? $(fo_writer_summary w)"
pid_alive "$probe" || fail "the probe INSERT returned while node$R was down: $(cat "$PG_DIR/probe.out")"
wait_until -t 3 probe_waits || fail "the probe INSERT does not wait on SyncRep: $(sql_at "$P" "SELECT application_name, state, wait_event_type, wait_event FROM pg_stat_activity WHERE backend_type = 'client backend'" 2>&1)"
[[ $ssn_down == "$SSN" ]] || fail "node$P dropped the stopped standby: synchronous_standby_names '$ssn_down' while node$R was down, not '$SSN'"
sync_published_is "$BOTH" || fail "the published synchronous set changed while node$R was down: $pub_down (expected k 2, $BOTH)"
fo_primary_is "$P" || fail "node$P is no longer the one primary: $(pgw list 2>&1)"

tr=$(fo_now)
fo_start_node "$R"
wait_until -t 30 fo_streams_from "$R" "$P" || fail "node$R does not stream from node$P within 30 s of its start"
log "node$R streams from node$P $(fo_since "$tr") ms after its start"
wait_until -t 20 not pid_alive "$probe" || fail "the probe INSERT still blocked 20 s after node$R streams again: $(syncrep_waiters 2>&1) backend(s) on SyncRep, synchronous_standby_names '$(ssn 2>&1)'"
prc=0
wait "$probe" || prc=$?
[[ $prc == 0 ]] || fail "the probe INSERT failed (status $prc): $(cat "$PG_DIR/probe.out")"
log "the probe INSERT, blocked $(fo_since "$tg") ms ago, completed $(fo_since "$tr") ms after node$R's start"
wait_until -t 20 no_syncrep_waiters || fail "$(syncrep_waiters 2>&1) backend(s) of node$P still wait on SyncRep"
fo_wait_acks w 50 20 "$(fo_now)" "$(pg_port "$P")"
log "writes acknowledged again $(($(fo_first_ack_after w "$tr" "$(pg_port "$P")") / 1000)) ms after node$R's start"
pg_wait_healthy 20
wait_until -t 20 sync_published_is "$BOTH" || fail "synchronous set after node$R's return: $(sync_key 2>&1)"
ssn_is "$SSN" || fail "node$P runs with synchronous_standby_names '$(ssn 2>&1)' after node$R's return, not '$SSN'"
fo_writer_stop w

assert_eq "$lk0" "$(fo_leader_key_state)" "leader key (value, create_revision, lease)"
assert_eq "$tl0" "$(fo_list_tl "$P")" "node$P's timeline in list"
assert_eq "$sqltl0" "$(fo_timeline "$P")" "node$P's timeline"
assert_eq "$pm0" "$(sql_at "$P" "SELECT pg_postmaster_start_time()")" "node$P's postmaster start time"
[[ $(pgw history -o json | jq 'length') == 0 ]] || fail "history not empty: $(pgw history 2>&1)"

assert_eq 1 "$(sql_at "$P" "SELECT count(*) FROM fo_w WHERE id = $PROBE_ID")" "the probe row on node$P"
fo_check_lost "$P" w
for i in "$R" "$O"; do
	wait_until -t 15 fo_same_rows "$i" "$P" || fail "node$i's rows differ from node$P's: $(fo_digest "$i") vs $(fo_digest "$P")"
	fo_check_lost "$i" w
done
fo_check_overlap w
