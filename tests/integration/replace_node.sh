#!/usr/bin/env bash
# The seed runbook "replace a failed node": SIGKILL node3, remove it, wipe
# its data_dir, add it back as a learner, start it with --join; it catches
# up, is promoted to voter and then counts for the quorum. Also: a removed
# node that is still running stops by itself, and refuses to start again
# on the same data_dir with a clear "removed" message.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/cluster.sh"
cl_init 24600
cl_ports_free
cl_start_all
cl_wait_leader >/dev/null
for k in $(seq 1 30); do pgw put "/rep/k$k" "v$k" >/dev/null; done
wait_until same_fsm 1 2 3 || fail "nodes disagree at the start"

role_of() { # role_of NAME: its role in `members -o json` (or "absent")
	local js
	js=$(pgw members -o json) || return 1
	jq -r --arg n "$1" '([.members[] | select(.name == $n) | .role] + ["absent"])[0]' <<<"$js"
}
role_is() { [[ $(role_of "$1") == "$2" ]]; }
members_count() { pgw members -o json | jq '.members | length'; }
count_is() { [[ $(members_count) == "$1" ]]; }
keys_on() { # keys_on NODE N: NODE has N keys under /rep/ locally
	[[ $(pgw_at "$1" get /rep/ --prefix --serializable -o json | jq .count) == "$2" ]]
}

# 1. node3 fails
node_kill 3
export PGW_ENDPOINTS=$(endpoints_csv 1 2)
cl_wait_leader >/dev/null
out=$(pgw member remove node3) || fail "member remove node3: $out"
assert_eq "Member node3 removed" "$out" "member remove output"
wait_until count_is 2 || fail "members does not show 2: $(pgw members 2>&1)"
assert_eq absent "$(role_of node3)" "node3 after removal"
pgw put /rep/while-removed yes >/dev/null || fail "write with two voters"

# 2. wipe, add back as a learner, start with --join
rm -rf "$(data_dir 3)"
out=$(pgw member add node3 --peer-url "$(peer_addr 3)" --api-url "$(api_url 3)") ||
	fail "member add node3: $out"
[[ $out == "Member node3 added with ID "* ]] || fail "member add output: $out"
[[ $out == *"initial_cluster_state = existing"* ]] || fail "member add does not print the ini lines: $out"
assert_eq learner "$(role_of node3)" "node3 right after member add"
node_start 3 --join
export PGW_ENDPOINTS=$(endpoints_csv 1 2 3)
wait_until -t 20 keys_on 3 31 || fail "node3 did not catch up (it has $(pgw_at 3 get /rep/ --prefix --serializable -o json 2>&1 | jq .count 2>&1) keys)"
wait_until same_fsm 1 2 3 || fail "node3 disagrees after catching up"
assert_eq learner "$(role_of node3)" "node3 before promote"
assert_eq true "$(status 3 .is_learner)" "node3 /status is_learner"
assert_eq yes "$(pgw_at 3 get /rep/while-removed --serializable --print-value-only)" "key written while node3 was out"

# a learner has no vote: with node3 a learner, losing node2 loses quorum
node_kill 2
expect_fail out pgw --timeout 3 put /rep/learner-quorum x
log "write with node1 + learner node3: exit $EXPECT_RC: $out"
node_start 2
cl_wait_leader 20 >/dev/null
wait_until -t 20 same_fsm 1 2 3 || fail "nodes disagree after node2's restart"
assert_eq learner "$(role_of node3)" "node3 after node2's restart"

# 3. promote
out=$(pgw member promote node3) || fail "member promote node3: $out"
wait_until role_is node3 voter || fail "node3 is not a voter: $(pgw members 2>&1)"
wait_until bash -c "[[ \$(curl -s $(api_url 3)/status | jq -r .is_learner) == false ]]" ||
	fail "node3 /status still says learner"
assert_eq 3 "$(members_count)" "members after promote"

# 4. a 4th node, added and started, then removed while it runs: it exits
# cleanly by itself, and refuses to start again with a clear message
cl_write_ini 4 existing
out=$(pgw member add node4 --peer-url "$(peer_addr 4)") || fail "member add node4: $out"
node_start 4
wait_until -t 20 bash -c "[[ \$(curl -s $(api_url 4)/status | jq -r .is_member) == true ]]" ||
	fail "node4 never became a member"
wait_until -t 20 same_fsm 1 2 3 4 || fail "node4 did not catch up"
# it registered its own api_url (not given to member add)
api_url_of() { pgw members -o json | jq -r --arg n "$1" '.members[] | select(.name == $n) | .api_url'; }
api_url_is() { [[ $(api_url_of "$1") == "$2" ]]; }
wait_until api_url_is node4 "$(api_url 4)" ||
	fail "node4 did not register its api_url"
out=$(pgw member remove node4) || fail "member remove node4: $out"
node_wait_exit 4 10 || fail "removed node4 still running 10 s after its removal"
log "removed node4 exited with status $NODE_RC"
assert_eq 0 "$NODE_RC" "exit status of a removed node"
grep -qi removed "$(node_log 4)" || fail "node4's log does not say it was removed"
assert_eq 3 "$(members_count)" "members after removing node4"
loglines=$(wc -l <"$(node_log 4)")
node_start 4
node_wait_exit 4 10 || fail "node4 started again on its removed data_dir"
((NODE_RC != 0)) || fail "node4 restart on a removed data_dir exited 0"
msg=$(tail -n +"$((loglines + 1))" "$(node_log 4)")
[[ $msg == *removed* ]] || fail "restart of removed node4 gives no 'removed' message: $msg"
log "restart of removed node4: exit $NODE_RC: $(grep -i removed <<<"$msg" | head -1)"
pgw put /rep/after-node4 ok >/dev/null || fail "write after node4's removal"

# 5. node3 counts for the quorum: kill one of the others, writes go on
wait_until same_fsm 1 2 3 || fail "nodes disagree before the last kill"
L=$(cl_wait_leader)
victim=1
[[ $L == 1 || $L == 2 ]] && victim=$L # prefer killing the leader if it is not node3
node_kill "$victim"
other=$((victim == 1 ? 2 : 1))
out=$(pgw --timeout 10 put /rep/quorum ok 2>&1) || fail "write with node$other + node3 failed: $out"
N=$(cl_wait_leader 20)
log "node$victim killed; leader now node$N"
assert_eq ok "$(pgw_at 3 get /rep/quorum --serializable --print-value-only)" "write on node3"
wait_until same_fsm "$other" 3 || fail "node$other and node3 disagree"
exit 0
