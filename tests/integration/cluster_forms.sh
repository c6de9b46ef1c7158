#!/usr/bin/env bash
# Three nodes form a cluster: one leader, every node a member, the member
# list has three voters with their API URLs, and after a write all nodes
# report the same applied index and FSM hash.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/cluster.sh"
cl_init 24000
cl_ports_free
cl_start_all
L=$(cl_wait_leader)
log "leader node$L"

# exactly one leader, and all three are members that agree on it
leaders=0
for i in 1 2 3; do
	st=$(status "$i")
	assert_eq true "$(jq -r .is_member <<<"$st")" "node$i is_member"
	assert_eq false "$(jq -r .is_learner <<<"$st")" "node$i is_learner"
	assert_eq "node$L" "$(jq -r .leader <<<"$st")" "node$i leader"
	assert_eq "node$i" "$(jq -r .name <<<"$st")" "node$i name"
	[[ $(jq -r .is_leader <<<"$st") == true ]] && leaders=$((leaders + 1))
done
assert_eq 1 "$leaders" "number of nodes with is_leader"

# members: 3 voters, each with its api_url registered (nodes register
# their own URL through the store, so wait for it)
members_ok() {
	local js
	js=$(pgw members -o json) || return 1
	[[ $(jq '.members | length' <<<"$js") == 3 ]] || return 1
	local i
	for i in 1 2 3; do
		jq -e --arg n "node$i" --arg u "$(api_url "$i")" --arg p "$(peer_addr "$i")" \
			'.members[] | select(.name == $n and .role == "voter" and .api_url == $u and .peer_url == $p)' \
			<<<"$js" >/dev/null || return 1
	done
	[[ $(jq '[.members[] | select(.is_leader)] | length' <<<"$js") == 1 ]]
}
wait_until members_ok || fail "members -o json never listed 3 voters with api_url: $(pgw members -o json 2>&1)"
pgw members >/dev/null || fail "members (table) failed"

# a write, then endpoints shows the same applied_index and fsm_hash on all
assert_eq OK "$(pgw put /forms/a hello)" "put"
endpoints_agree() {
	local js
	js=$(pgw endpoints -o json) || return 1
	[[ $(jq 'length' <<<"$js") == 3 ]] || return 1
	[[ $(jq '[.[] | select(.error == null)] | length' <<<"$js") == 3 ]] || return 1
	[[ $(jq '[.[] | "\(.applied_index) \(.fsm_hash)"] | unique | length' <<<"$js") == 1 ]] || return 1
	[[ $(jq '[.[] | select(.is_leader)] | length' <<<"$js") == 1 ]] || return 1
	[[ $(jq '.[0].applied_index > 0 and (.[0].fsm_hash | length) > 0' <<<"$js") == true ]]
}
wait_until endpoints_agree || fail "endpoints disagree: $(pgw endpoints -o json 2>&1)"
pgw endpoints >/dev/null || fail "endpoints (table) exit non-zero"
# and the write is visible in the hash: it changed against a second write
h1=$(status 1 .fsm_hash)
pgw put /forms/b world >/dev/null
wait_until endpoints_agree || fail "endpoints disagree after 2nd write"
[[ $(status 1 .fsm_hash) != "$h1" ]] || fail "fsm_hash did not change after a write"
exit 0
