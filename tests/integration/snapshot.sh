#!/usr/bin/env bash
# Snapshots (snapshot_threshold = 16, snapshot_trailing = 4): a node that
# was down while ~100 entries were written catches up by an installed
# snapshot (newer than anything it had), ends with the same FSM hash and
# every key; a restarted leader rebuilds from its snapshot + log.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/cluster.sh"
CL_RAFT_EXTRA=$'snapshot_threshold = 16\nsnapshot_trailing = 4'
cl_init 24500
cl_ports_free
for i in 1 2 3; do "$PGWARDEN" check-config -c "$(ini "$i")" >/dev/null; done
cl_start_all
cl_wait_leader >/dev/null
pgw put /snap/first 0 >/dev/null
wait_until same_fsm 1 2 3 || fail "nodes disagree at the start"
# node3 must not be the leader when it is stopped
L=$(leader_idx)
if [[ $L == 3 ]]; then
	pgw transfer-leader node1 >/dev/null || fail "transfer-leader node1"
	wait_until bash -c "[[ \$(curl -s $(api_url 3)/status | jq -r .leader) == node1 ]]" ||
		fail "leadership did not move off node3"
fi
a3=$(status 3 .applied_index)
log "node3 applied_index before stop: $a3"
node_stop 3

for k in $(seq 1 100); do pgw put "/snap/k$k" "value-$k" >/dev/null || fail "put /snap/k$k"; done
wait_until same_fsm 1 2 || fail "node1 and node2 disagree"
L=$(cl_wait_leader)
si=$(status "$L" .snapshot_index)
((si > a3 + 4)) || fail "leader took no snapshot past node3's log (snapshot_index $si, node3 at $a3)"
grep -q "snapshot taken" "$(node_log "$L")" || fail "leader's log has no 'snapshot taken'"

log3_lines=$(wc -l <"$(node_log 3)")
node_start 3
wait_until -t 20 same_fsm 1 2 3 || fail "node3 did not catch up: $(fsm_of 1) / $(fsm_of 3)"
restored=$(tail -n +"$((log3_lines + 1))" "$(node_log 3)" | grep -o 'snapshot restored applied_index=[0-9]*' | tail -1 || true)
[[ -n $restored ]] || fail "node3's log has no 'snapshot restored' after its restart"
ri=${restored##*=}
((ri > a3)) || fail "node3 restored a snapshot at $ri, not newer than its own state ($a3): no InstallSnapshot"
log "node3 caught up by a snapshot at index $ri"
(($(status 3 .snapshot_index) > 0)) || fail "node3's /status snapshot_index is 0"

check_all() { # check_all NODE: every key with its value
	local js
	js=$(pgw_at "$1" get /snap/ --prefix --serializable -o json) || fail "get via node$1"
	{
		echo "/snap/first=0"
		for k in $(seq 1 100); do echo "/snap/k$k=value-$k"; done
	} | sort >"$CL_DIR/exp"
	jq -r '.kvs[] | "\(.key)=\(.value)"' <<<"$js" | sort >"$CL_DIR/got"
	diff "$CL_DIR/exp" "$CL_DIR/got" >&2 || fail "keys on node$1 differ (< expected, > got)"
}
for i in 1 2 3; do check_all "$i"; done
# the caught-up node follows the log from there
pgw put /snap/after-catchup 1 >/dev/null
wait_until same_fsm 1 2 3 || fail "nodes disagree after a write"
assert_eq 1 "$(pgw_at 3 get /snap/after-catchup --serializable --print-value-only)" "write after catch-up on node3"
pgw del /snap/after-catchup >/dev/null

# restart the leader: it rebuilds its FSM from snapshot + log
L=$(cl_wait_leader)
before=$(fsm_of "$L")
logL_lines=$(wc -l <"$(node_log "$L")")
node_stop "$L"
cl_wait_leader 20 >/dev/null
node_start "$L"
wait_until -t 20 same_fsm 1 2 3 || fail "node$L disagrees after its restart"
tail -n +"$((logL_lines + 1))" "$(node_log "$L")" | grep -q 'snapshot restored' ||
	fail "restarted node$L did not load its snapshot"
for i in 1 2 3; do check_all "$i"; done
read -r ai _ <<<"$(fsm_of "$L")"
((ai >= ${before%% *})) || fail "node$L applied index went back: $before -> $ai"

# and all three restarted at once (SIGKILL): snapshot + log on every node
for i in 1 2 3; do node_kill "$i"; done
for i in 1 2 3; do node_start "$i"; done
cl_wait_leader 20 >/dev/null
wait_until -t 20 same_fsm 1 2 3 || fail "nodes disagree after restarting all"
for i in 1 2 3; do check_all "$i"; done
exit 0
