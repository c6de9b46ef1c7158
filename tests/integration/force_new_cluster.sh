#!/usr/bin/env bash
# Recovery from quorum loss: with two of three nodes dead, writes fail with
# a clear error; `pgwarden force-new-cluster` on the stopped survivor makes
# it a single-member cluster with all its keys; the other two rejoin
# (member add, wiped data_dir, --join, promote) and all three agree.
# force-new-cluster refuses to run while the daemon holds the data_dir.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/cluster.sh"
cl_init 24700
cl_ports_free
cl_start_all
cl_wait_leader >/dev/null
for k in $(seq 1 40); do pgw put "/fnc/k$k" "v$k" >/dev/null; done
wait_until same_fsm 1 2 3 || fail "nodes disagree at the start"

# force-new-cluster while the daemon runs: refused, data untouched
expect_fail out "$PGWARDEN" force-new-cluster -c "$(ini 1)"
[[ $out == *"in use"* ]] || fail "force-new-cluster on a running node: unclear message: $out"
log "force-new-cluster while running: exit $EXPECT_RC: $out"
node_running 1 || fail "node1 died from a force-new-cluster attempt"
assert_eq 3 "$(pgw members -o json | jq '.members | length')" "members after the refused recovery"

# force-new-cluster on a data_dir without raft state: refused
sed "s|^data_dir = .*|data_dir = $CL_DIR/empty-dir|" "$(ini 1)" >"$CL_DIR/empty.ini"
expect_fail out "$PGWARDEN" force-new-cluster -c "$CL_DIR/empty.ini"
[[ $out == *"nothing to recover"* ]] || fail "force-new-cluster on an empty data_dir: $out"

# quorum lost
node_kill 2
node_kill 3
expect_fail out pgw_at 1 --timeout 3 put /fnc/lost x
log "write without quorum: exit $EXPECT_RC: $out"
assert_eq 1 "$EXPECT_RC" "exit status of a write without quorum"
[[ $(wc -l <<<"$out") == 1 && $out == "pgwarden: put /fnc/lost: "?* ]] || fail "unclear error without quorum: $out"
[[ $out == *503* || $out == *504* || $out == *"no leader"* || $out == *"gave up"* ]] ||
	fail "error without quorum names no cause: $out"
# endpoints without a leader: says so and shows the -e endpoints instead
rc=0
out=$(pgw_at 1 --timeout 2 endpoints -o json 2>"$CL_DIR/endpoints.err") || rc=$?
log "endpoints without quorum: exit $rc: $(cat "$CL_DIR/endpoints.err")"
assert_eq node1 "$(jq -r '.[] | select(.error == null) | .name' <<<"$out")" "endpoints without quorum lists node1's own status"
[[ -s $CL_DIR/endpoints.err ]] || fail "endpoints without quorum does not say that the member list is unavailable"
# serializable reads still work on the survivor
assert_eq v40 "$(pgw_at 1 get /fnc/k40 --serializable --print-value-only)" "serializable read without quorum"

# recover
node_stop 1
out=$("$PGWARDEN" force-new-cluster -c "$(ini 1)" 2>&1) || fail "force-new-cluster failed: $out"
log "force-new-cluster: $out"
node_start 1
wait_until bash -c "[[ \$(curl -s $(api_url 1)/status | jq -r .is_leader) == true ]]" ||
	fail "node1 did not become leader alone: $(status 1 2>&1)"
export PGW_ENDPOINTS=$(api_url 1)
members=$(pgw members -o json)
assert_eq node1 "$(jq -r '[.members[].name] | join(",")' <<<"$members")" "members after force-new-cluster"
js=$(pgw get /fnc/k --prefix -o json)
assert_eq 40 "$(jq '[.kvs[] | select(.key | test("^/fnc/k[0-9]+$"))] | length' <<<"$js")" "keys after force-new-cluster"
assert_eq v17 "$(pgw get /fnc/k17 --print-value-only)" "/fnc/k17 after force-new-cluster"
assert_eq OK "$(pgw --timeout 5 put /fnc/alone yes)" "write on the single-member cluster"

# the other two rejoin
role_is() { [[ $(pgw members -o json | jq -r --arg n "$1" '.members[] | select(.name == $n) | .role') == "$2" ]]; }
for i in 2 3; do
	# (bounded retry: the leader may clean up the old members' records
	# asynchronously after the forced configuration)
	add_ok() { pgw member add "node$1" --peer-url "$(peer_addr "$1")" --api-url "$(api_url "$1")" >"$CL_DIR/add.out" 2>&1; }
	wait_until -t 5 add_ok "$i" ||
		fail "member add node$i after force-new-cluster keeps failing: $(cat "$CL_DIR/add.out"); members: $(pgw members -o json 2>&1)"
	grep -q "^Member node$i added" "$CL_DIR/add.out" || fail "member add node$i output: $(cat "$CL_DIR/add.out")"
	rm -rf "$(data_dir "$i")"
	node_start "$i" --join
	wait_until -t 20 same_fsm 1 "$i" || fail "node$i did not catch up"
	out=$(pgw member promote "node$i") || fail "member promote node$i: $out"
	wait_until role_is "node$i" voter || fail "node$i not a voter"
done
export PGW_ENDPOINTS=$(endpoints_csv)
pgw put /fnc/rejoined yes >/dev/null
wait_until same_fsm 1 2 3 || fail "nodes disagree after rejoining: $(fsm_of 1) / $(fsm_of 2) / $(fsm_of 3)"
js=$(pgw endpoints -o json) || fail "endpoints: $js"
assert_eq 1 "$(jq '[.[] | .fsm_hash] | unique | length' <<<"$js")" "fsm_hash values in endpoints"
assert_eq 3 "$(jq '[.[] | select(.error == null)] | length' <<<"$js")" "endpoints answering"
for i in 2 3; do
	assert_eq v40 "$(pgw_at "$i" get /fnc/k40 --serializable --print-value-only)" "/fnc/k40 on node$i"
	assert_eq yes "$(pgw_at "$i" get /fnc/alone --serializable --print-value-only)" "/fnc/alone on node$i"
done
# a full quorum again: survives losing node1
node_kill 1
out=$(pgw --timeout 10 put /fnc/after yes 2>&1) || fail "write after losing node1: $out"
exit 0
