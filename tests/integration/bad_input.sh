#!/usr/bin/env bash
# Bad input is refused and never hurts: a bad ini line stops `pgwarden run`
# (and check-config) with exit 2 and `FILE:LINE: reason`, before anything
# is created or bound; bad HTTP requests get 400/404/405/413 and the node
# keeps serving.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/cluster.sh"
cl_init 24900
cl_ports_free

# ---- configuration errors --------------------------------------------
# ini layout (cl_write_ini): 1 [cluster] 2 name 3 [node] 4 name 5 data_dir
# 6 log_level 7 [raft] 8 listen 9 peers 10 [api] 11 listen 12 token_file
assert_eq "[raft]" "$(sed -n 7p "$(ini 1)")" "ini layout"
bad_dir=$CL_DIR/never-created
check_bad() { # check_bad NAME LINE REASON SED-SCRIPT
	local name=$1 line=$2 reason=$3 script=$4 f=$CL_DIR/bad-$1.ini rc out
	sed -e "s|^data_dir = .*|data_dir = $bad_dir|" -e "$script" "$(ini 1)" >"$f"
	rc=0
	out=$(timeout 10 "$PGWARDEN" run -c "$f" 2>&1 >/dev/null) || rc=$?
	assert_eq 2 "$rc" "run exit status ($name)"
	assert_eq "$f:$line: $reason" "$out" "run stderr ($name)"
	[[ ! -e $bad_dir ]] || fail "run with a bad ini ($name) created $bad_dir"
	port_bound "$(raft_port 1)" && fail "raft port bound after a bad ini ($name)"
	port_bound "$(api_port 1)" && fail "api port bound after a bad ini ($name)"
	rc=0
	out=$("$PGWARDEN" check-config -c "$f" 2>&1 >/dev/null) || rc=$?
	assert_eq 2 "$rc" "check-config exit status ($name)"
	assert_eq "$f:$line: $reason" "$out" "check-config stderr ($name)"
	return 0
}
check_bad unknown-key 9 "unknown key 'listn' in [raft]" '8a listn = 127.0.0.1:1'
check_bad bad-name 4 "[node] name: invalid value 'a b' (allowed: letters, digits, '_', '.', '-', at most 63)" 's/^name = node1$/name = a b/'
check_bad unknown-section 13 "unknown section [nosuchsection]" '$a [nosuchsection]'
check_bad syntax 6 "syntax error (expected 'key = value', a [section] header or a comment)" '6s/.*/log_level info/'
check_bad duplicate-key 5 "duplicate key 'name' in [node] (first at line 4)" '5i name = again'
check_bad bad-duration 9 "[raft] election_timeout: invalid value '1.5s' (expected milliseconds, or a number with unit ms or s, 50..60000 ms)" '8a election_timeout = 1.5s'
# the good file passes check-config, prints "FILE: ok"
assert_eq "$(ini 1): ok" "$("$PGWARDEN" check-config -c "$(ini 1)")" "check-config of a good file"
[[ ! -e $(data_dir 1) ]] || fail "check-config created the data_dir"

# unreadable configuration, missing -c, bad CLI usage: exit 2, one clear line
rc=0
out=$("$PGWARDEN" run -c "$CL_DIR/no-such.ini" 2>&1) || rc=$?
assert_eq 2 "$rc" "run with a missing ini"
assert_eq "$CL_DIR/no-such.ini: cannot open: No such file or directory" "$out" "run with a missing ini"
rc=0
out=$("$PGWARDEN" run 2>&1) || rc=$?
assert_eq 2 "$rc" "run without -c ($out)"
for args in "nosuchcommand" "put" "get" "lease grant abc" "lease grant" "member add node9" "put /a 1 --prev-revision x" "get /a --bogus-option"; do
	rc=0
	out=$("$PGWARDEN" -e "$(api_url 1)" --token-file "$CL_DIR/token" $args 2>&1 </dev/null) || rc=$?
	assert_eq 2 "$rc" "exit status of 'pgwarden $args' ($out)"
	[[ -n $out ]] || fail "'pgwarden $args' says nothing"
done

# ---- HTTP: bad requests ------------------------------------------------
cl_start_all
L=$(cl_wait_leader)
F=$((L % 3 + 1))
pgw put /bad/existing 1 >/dev/null
wait_until same_fsm 1 2 3 || fail "nodes disagree at the start"
rev0=$(status "$L" .revision)
TOKEN=$(tr -d '\n' <"$CL_DIR/token")
A="Authorization: Bearer $TOKEN"
J='Content-Type: application/json'

live() { # live NODE: /liveness answers 200 {"status":"ok"}
	local out
	out=$(curl -sS --max-time 2 -w '\n%{http_code}' "$(api_url "$1")/liveness") || fail "node$1 /liveness: no answer"
	assert_eq $'{"status":"ok"}\n200' "$(jq -c . <<<"${out%$'\n'*}")"$'\n'"${out##*$'\n'}" "node$1 /liveness"
}
# req EXPECTED NODE METHOD PATH [BODY]: status code, a JSON error body for
# errors, and the node still live afterwards
req() {
	local want=$1 node=$2 m=$3 path=$4 body=${5-} out code
	local args=(-sS --max-time 10 -X "$m" -H "$J" -H "$A" -w '\n%{http_code}' -o - "$(api_url "$node")$path")
	if [[ $# -ge 5 ]]; then args+=(--data-binary "$body"); fi
	out=$(curl "${args[@]}") || fail "$m $path on node$node: no answer"
	code=${out##*$'\n'}
	assert_eq "$want" "$code" "$m $path ${body:0:60} on node$node"
	if [[ $want != 200 ]]; then
		jq -e '.error | type == "string" and length > 0' <<<"${out%$'\n'*}" >/dev/null ||
			fail "$m $path on node$node: error body is not JSON with an error: ${out:0:200}"
	fi
	live "$node"
}
for node in "$L" "$F"; do
	req 400 "$node" POST /v1/kv/put '{"key":'
	req 400 "$node" POST /v1/kv/put 'not json'
	req 400 "$node" POST /v1/kv/put ''
	req 400 "$node" POST /v1/kv/put '[1,2]'
	req 400 "$node" POST /v1/kv/put '{"key":"/bad/a","value":"1","bogus":1}'
	req 400 "$node" POST /v1/kv/put '{"key":1,"value":"1"}'
	req 400 "$node" POST /v1/kv/put '{"key":"/bad/a","value":2}'
	req 400 "$node" POST /v1/kv/put '{"key":"/bad/a","value":null}'
	req 400 "$node" POST /v1/kv/put '{"value":"1"}'
	req 400 "$node" POST /v1/kv/put '{"key":"","value":"1"}'
	req 400 "$node" POST /v1/kv/put '{"key":"/bad/a","value":"1","prev_revision":"3"}'
	req 400 "$node" POST /v1/kv/put '{"key":"/bad/a","value":"1","prev_revision":-1}'
	req 400 "$node" POST /v1/kv/put '{"key":"/bad/a","value":"1","lease":7}'
	req 400 "$node" POST /v1/kv/put '{"key":"/bad/a","value":"1","lease":"xyz"}'
	req 400 "$node" POST /v1/kv/put $'{"key":"/bad/a","value":"\xff\xfe"}'
	req 400 "$node" POST /v1/kv/put '{"key":"/bad/a\u0000b","value":"1"}'
	req 400 "$node" POST /v1/kv/delete '{"key":"/bad/existing","prefix":"yes"}'
	req 400 "$node" POST /v1/lease/grant '{"ttl":"10"}'
	req 400 "$node" POST /v1/lease/grant '{"ttl":0}'
	req 400 "$node" POST /v1/lease/grant '{"ttl":86401}'
	req 400 "$node" POST /v1/lease/grant '{}'
	req 400 "$node" POST /v1/lease/revoke '{"id":12}'
	req 400 "$node" POST /v1/members/add '{"name":"node9"}'
	req 400 "$node" POST /v1/members/add '{"name":"bad name!","peer_url":"127.0.0.1:24909"}'
	# libraft takes IPv4 literals only, and the loop never resolves a name
	req 400 "$node" POST /v1/members/add '{"name":"node9","peer_url":"localhost:24909"}'
	req 400 "$node" POST /v1/members/add '{"name":"node9","peer_url":"[::1]:24909"}'
	# the same PostgreSQL name as node1 (slot pgw_node1)
	req 409 "$node" POST /v1/members/add '{"name":"NODE1","peer_url":"127.0.0.1:24909"}'
	req 400 "$node" POST /v1/transfer-leader '{"name":5}'
	req 400 "$node" GET '/v1/kv?key=/bad/existing&bogus=1'
	req 400 "$node" GET '/v1/kv?key=/bad/existing&limit=abc'
	req 404 "$node" GET /v1/nope
	req 404 "$node" GET /no/such/path
	req 404 "$node" POST /v1/kv/nope '{"key":"/bad/a","value":"1"}'
	req 404 "$node" POST /v1/lease/revoke '{"id":"00000000000000ff"}'
	req 404 "$node" POST /v1/members/remove '{"name":"node9"}'
	req 405 "$node" GET /v1/kv/put
	req 405 "$node" POST /status '{}'
	req 405 "$node" DELETE /v1/kv '{}'
	allow=$(curl -s -o /dev/null -D - -X GET "$(api_url "$node")/v1/kv/put" | tr -d '\r' | grep -i '^allow:' || true)
	[[ $allow == *POST* ]] || fail "405 without an Allow header listing POST on node$node: '$allow'"
	# 3 MB body: 413, the connection is not a problem for the next request
	head -c 3000000 /dev/zero | tr '\0' 'a' | sed 's/^/{"key":"\/bad\/big","value":"/; s/$/"}/' >"$CL_DIR/big.json"
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 -X POST -H "$J" -H "$A" \
		--data-binary @"$CL_DIR/big.json" "$(api_url "$node")/v1/kv/put") || true
	assert_eq 413 "$code" "3 MB body on node$node"
	live "$node"
	# and a 3 MB body without a token
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 -X POST -H "$J" \
		--data-binary @"$CL_DIR/big.json" "$(api_url "$node")/v1/kv/put") || true
	[[ $code == 413 || $code == 401 ]] || fail "3 MB body without a token on node$node: $code"
	live "$node"
done
# none of it changed anything; every node still serves and agrees
assert_eq "$rev0" "$(status "$L" .revision)" "revision after bad requests"
for i in 1 2 3; do
	live "$i"
	node_running "$i" || fail "node$i died"
done
assert_eq OK "$(pgw put /bad/after ok)" "write after bad requests"
assert_eq ok "$(pgw get /bad/after --print-value-only)" "read after bad requests"
wait_until same_fsm 1 2 3 || fail "nodes disagree at the end"
exit 0
