#!/usr/bin/env bash
# fo_callbacks: the [callbacks] scripts (on_start, on_stop, on_role_change)
# are run as Patroni runs them: SCRIPT ACTION ROLE CLUSTER, one at a time
# per node, a newer call superseding one still running.
#
# Every node gets its own script, which appends "nodeI ARGC ARGS... TIME"
# to cbI.log (and, while cbI.hang names its ACTION, then sleeps 30 s with
# its pid in cbI.pid). Asserted:
#   - assembly: the primary logs exactly "on_start primary pgit", each
#     replica exactly "on_start replica pgit" (three arguments);
#   - `switchover --candidate C`: the candidate logs "on_role_change
#     primary pgit"; the old primary "on_stop primary pgit" and then
#     "on_role_change replica pgit" (a demotion is a role change, as in
#     Patroni, not a fresh start); the third replica, only re-pointed,
#     logs nothing;
#   - the candidate's on_role_change hangs (sleep 30): while it runs,
#     /primary answers 200 on the new primary and 503 on the others, each
#     within 1 s, and the lease is kept;
#   - SIGTERM to a replica: it logs "on_stop replica pgit"; SIGTERM to the
#     new primary while its on_role_change still hangs: it exits within
#     8 s (the hanging script does not hold it), the hanging script is
#     gone (superseded, not left behind), and "on_stop primary pgit" is
#     logged by the time the node has exited.
FO_SYNC_MODE=${FO_SYNC_MODE:-off}
source "$(dirname "${BASH_SOURCE[0]}")/../lib/failover.sh"
fo_init 32000
pg_ports_free

cb_script() { echo "$PG_DIR/cb$1.sh"; }
cb_log() { echo "$PG_DIR/cb$1.log"; }
# scripts that hang write their pid here; whatever runs at the end is
# killed by pid (a script is no child of this shell)
cb_kill_hung() {
	local f p
	for f in "$PG_DIR"/cb*.pid; do
		[[ -f $f ]] || continue
		p=$(<"$f")
		[[ $p =~ ^[0-9]+$ ]] && kill -KILL "$p" 2>/dev/null
	done
	return 0
}
cb_cleanup() {
	local rc=$? f
	set +eE
	trap - ERR
	if [[ -n $PG_DIR && -d $PG_DIR ]]; then
		cb_kill_hung
		if ((rc != 0 && rc != 77)); then
			for f in "$PG_DIR"/cb*.log; do
				[[ -f $f ]] && { echo "----- $f -----" >&2; cat "$f" >&2; }
			done
		fi
	fi
	(exit "$rc")
	fo_cleanup
}
trap cb_cleanup EXIT

for i in 1 2 3; do
	cat >"$(cb_script "$i")" <<EOF
#!/bin/sh
# node$i's callback (fo_callbacks): one line per call
printf 'node$i %s %s %s\n' "\$#" "\$*" "\$(date +%s.%N)" >>'$(cb_log "$i")'
if [ -f '$PG_DIR/cb$i.hang' ] && [ "\$(cat '$PG_DIR/cb$i.hang')" = "\$1" ]; then
	echo \$\$ >'$PG_DIR/cb$i.pid'
	exec sleep 30
fi
EOF
	install -m 0644 -o "$PG_USER" -g "$PG_USER" /dev/null "$(cb_log "$i")"
	chown "$PG_USER:$PG_USER" "$(cb_script "$i")"
	chmod 0755 "$(cb_script "$i")"
	FO_HA_EXTRA="[callbacks]
on_start = $(cb_script "$i")
on_stop = $(cb_script "$i")
on_role_change = $(cb_script "$i")"
	fo_write_ini "$i"
done
FO_HA_EXTRA=

# cb_events I: node I's calls so far, "ACTION ROLE CLUSTER" a line (the
# node name and the argument count checked, the time dropped)
cb_events() {
	awk -v n="node$1" '$1 != n || $2 != 3 || NF != 6 { print "BAD LINE: " $0; next } { print $3, $4, $5 }' "$(cb_log "$1")"
}
cb_count() { cb_events "$1" | wc -l; }
cb_count_is() { (($(cb_count "$1") >= $2)); }
# cb_expect I EXPECTED...: node I's calls are exactly EXPECTED (in order)
cb_expect() {
	local i=$1 got want
	shift
	got=$(cb_events "$i")
	want=$(printf '%s\n' "$@")
	[[ $got == "$want" ]] || fail "node$i's callbacks: expected [$(tr '\n' ';' <<<"$want")], got [$(tr '\n' ';' <<<"$got")]"
}
# cb_wait I N: node I has logged N calls (bounded)
cb_wait() {
	wait_until -t "${3:-15}" cb_count_is "$1" "$2" ||
		fail "node$1 logged $(cb_count "$1") callbacks, not $2, within ${3:-15} s: $(cb_events "$1" | tr '\n' ';')"
}

fo_start_all
pg_wait_healthy 60
P=$(primary_idx) || fail "no single primary"
C=$((P % 3 + 1))
O=$((C % 3 + 1))
log "primary node$P, switchover candidate node$C, third node$O"

# --- assembly: on_start with the role and the cluster name
cb_wait "$P" 1
cb_wait "$C" 1
cb_wait "$O" 1
cb_expect "$P" "on_start primary $PG_CLUSTER"
cb_expect "$C" "on_start replica $PG_CLUSTER"
cb_expect "$O" "on_start replica $PG_CLUSTER"
log "assembly: node$P on_start primary, node$C and node$O on_start replica"

# --- switchover to C, whose on_role_change will hang
echo on_role_change >"$PG_DIR/cb$C.hang"
t0=$(fo_now)
rc=0
out=$(pgw --timeout 30 switchover --candidate "node$C" --force 2>&1) || rc=$?
log "switchover to node$C: exit $rc after $(fo_since "$t0") ms: $(tr '\n' ' ' <<<"$out")"
((rc == 0)) || fail "switchover to node$C failed (exit $rc): $out"
wait_until -t 15 fo_primary_is "$C" || fail "node$C is not the primary after the switchover: $(pgw list 2>&1)"

hung_pid() {
	local p
	[[ -f $PG_DIR/cb$C.pid ]] || return 1
	p=$(<"$PG_DIR/cb$C.pid")
	[[ $p =~ ^[0-9]+$ ]] && pid_alive "$p" && echo "$p"
}
cb_wait "$C" 2
wait_until -t 5 hung_pid || fail "node$C's on_role_change did not start hanging"
HUNG=$(hung_pid)
cb_expect "$C" "on_start replica $PG_CLUSTER" "on_role_change primary $PG_CLUSTER"
log "node$C: on_role_change primary, now hanging (pid $HUNG, $(fo_since "$t0") ms after the command)"

# --- while it hangs: probes answer at once, the lease is kept
# probe_fast I PATH CODE: PATH on node I answers CODE within 1 s
probe_fast() {
	local got
	got=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 3 "$(api_url "$1")$2") || true
	awk -v g="$got" -v c="$3" 'BEGIN { split(g, f, " "); exit !(f[1] == c && f[2] < 1.0) }' ||
		fail "GET $2 on node$1 while node$C's callback hangs: '$got' (want $3 within 1 s)"
}
tp=$(fo_now)
for ((k = 0; k < 10; k++)); do
	probe_fast "$C" /primary 200
	probe_fast "$P" /primary 503
	probe_fast "$O" /primary 503
	sleep 0.1
done
pid_alive "$HUNG" || fail "node$C's hanging callback ended before the probes were done"
[[ $(leader_key) == "node$C" ]] || fail "the leader key names '$(leader_key)', not node$C, while its callback hangs"
fo_is_role_state "$C" primary/running || fail "node$C is $(fo_role_state "$C") while its callback hangs"
log "10 rounds of /primary on every node, each within 1 s, over $(fo_since "$tp") ms while node$C's on_role_change hung"

# --- the old primary: on_stop, then on_role_change replica (not on_start)
cb_wait "$P" 3 20
cb_expect "$P" "on_start primary $PG_CLUSTER" "on_stop primary $PG_CLUSTER" "on_role_change replica $PG_CLUSTER"
wait_until -t 20 fo_streams_from "$P" "$C" || fail "node$P does not stream from node$C: $(pgw list 2>&1)"
wait_until -t 20 fo_streams_from "$O" "$C" || fail "node$O does not stream from node$C: $(pgw list 2>&1)"
cb_expect "$O" "on_start replica $PG_CLUSTER"
log "node$P: on_stop primary, on_role_change replica; node$O (re-pointed): nothing"

# --- SIGTERM: a replica, then the primary whose callback still hangs
node_stop "$O"
cb_expect "$O" "on_start replica $PG_CLUSTER" "on_stop replica $PG_CLUSTER"
pid_alive "$HUNG" || fail "node$C's hanging callback ended before node$C was stopped"
ts=$(fo_now)
node_stop "$C"
took=$(fo_since "$ts")
log "node$C stopped ${took} ms after SIGTERM, its on_role_change still hanging until then"
((took < 8000)) || fail "node$C took $took ms to stop: its hanging callback held it"
cb_expect "$C" "on_start replica $PG_CLUSTER" "on_role_change primary $PG_CLUSTER" "on_stop primary $PG_CLUSTER"
! pid_alive "$HUNG" || fail "node$C's hanging callback (pid $HUNG) outlived node$C"
log "node$O logged on_stop replica, node$C on_stop primary; the hanging callback was ended"
