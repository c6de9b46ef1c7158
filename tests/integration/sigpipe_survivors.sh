#!/usr/bin/env bash
# libraft 0.15 workaround 2: SIGPIPE is ignored. Under a continuous write
# load, SIGKILL the leader three times (restarting it each time): both
# survivors must still be running after each kill. Without the
# workaround a follower writing to the dead leader's socket dies of
# SIGPIPE, silently.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/cluster.sh"
cl_init 24400
cl_ports_free
cl_start_all
cl_wait_leader >/dev/null

# write load: two writers, each a bounded loop, until the stop file exists
STOP=$CL_DIR/stop-load
writer() {
	local w=$1 n ok=0
	for ((n = 0; n < 3000; n++)); do
		[[ -e $STOP ]] && break
		if pgw --timeout 3 put "/load/$w/$((n % 50))" "$n-$RANDOM" >/dev/null 2>&1; then
			ok=$((ok + 1))
			echo "$((n % 50)) $n" >>"$CL_DIR/writer$w.acked"
		fi
	done
	echo "$ok" >"$CL_DIR/writer$w.ok"
}
writer 1 &
CL_EXTRA_PIDS+=($!)
writer 2 &
CL_EXTRA_PIDS+=($!)

survivor_ok() { # survivor_ok I: node I's process is alive and not a zombie
	local p=${CL_PID[$1]:-}
	[[ -n $p ]] || fail "node$1 has no pid"
	local st
	st=$(proc_state "$p")
	if ! kill -0 "$p" 2>/dev/null || [[ $st == Z || $st == X || $st == - ]]; then
		reap "$1"
		fail "survivor node$1 (pid $p) died: exit status $NODE_RC (141 = SIGPIPE)"
	fi
}

applied() { status "$1" .applied_index; }
progress() { # progress I BEFORE: node I applied more than BEFORE
	local a
	a=$(applied "$1") || return 1
	((a > $2))
}

for round in 1 2 3; do
	L=$(cl_wait_leader 20)
	# the load reaches the cluster before the kill
	a0=$(applied "$L")
	wait_until -t 10 progress "$L" $((a0 + 20)) || fail "round $round: no write load before the kill"
	log "round $round: killing leader node$L under load"
	node_kill "$L"
	survivors=()
	for i in 1 2 3; do [[ $i == "$L" ]] || survivors+=("$i"); done
	# the moment of danger is while the survivors still talk to the dead
	# leader and then elect a new one; check repeatedly across it
	for k in $(seq 1 20); do
		for i in "${survivors[@]}"; do survivor_ok "$i"; done
		sleep 0.1
	done
	N=$(cl_wait_leader 20)
	[[ $N != "$L" ]] || fail "round $round: the killed node is leader"
	a1=$(applied "$N")
	wait_until -t 10 progress "$N" $((a1 + 20)) || fail "round $round: writes did not resume"
	for i in "${survivors[@]}"; do survivor_ok "$i"; done
	log "round $round: survivors ${survivors[*]} alive, node$N leads, writes go on"
	node_start "$L"
	wait_until -t 20 bash -c "[[ \$(curl -s $(api_url "$L")/status | jq -r .leader) == node$N ]]" ||
		fail "round $round: restarted node$L does not follow node$N"
	for i in "${survivors[@]}"; do survivor_ok "$i"; done
done

touch "$STOP"
for p in "${CL_EXTRA_PIDS[@]}"; do wait "$p" || true; done
CL_EXTRA_PIDS=()
log "writes acknowledged: $(cat "$CL_DIR/writer1.ok") + $(cat "$CL_DIR/writer2.ok")"
wait_until -t 20 same_fsm 1 2 3 || fail "nodes disagree at the end: $(fsm_of 1) / $(fsm_of 2) / $(fsm_of 3)"
# no acknowledged write was lost: each key holds its last acknowledged
# write or a later one (a write that timed out may still have applied)
declare -A final=()
while read -r key val; do final[$key]=$val; done < <(pgw get /load/ --prefix -o json | jq -r '.kvs[] | "\(.key) \(.value)"')
for w in 1 2; do
	[[ -s $CL_DIR/writer$w.acked ]] || fail "writer $w had no acknowledged write"
	while read -r k last; do
		got=${final[/load/$w/$k]:-}
		[[ -n $got ]] || fail "/load/$w/$k is missing (last acknowledged write $last)"
		((${got%%-*} >= last)) || fail "/load/$w/$k holds write ${got%%-*}, older than the acknowledged write $last"
	done < <(awk '{ last[$1] = $2 } END { for (k in last) print k, last[k] }' "$CL_DIR/writer$w.acked")
done
for i in 1 2 3; do survivor_ok "$i"; done
exit 0
