#!/usr/bin/env bash
# Writes need the cluster token: no token -> 401, wrong token -> 403, on
# the leader and on a follower (which must not forward them); reads need
# none. The CLI refuses a write without a token file with exit 2.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/cluster.sh"
cl_init 24800
cl_ports_free
cl_start_all
L=$(cl_wait_leader)
F=$((L % 3 + 1))
TOKEN=$(tr -d '\n' <"$CL_DIR/token")
pgw put /auth/existing before >/dev/null
wait_until same_fsm 1 2 3 || fail "nodes disagree at the start"
rev0=$(status "$L" .revision)

J='Content-Type: application/json'
# every mutating endpoint, with a valid body
declare -a CASES=(
	'POST /v1/kv/put {"key":"/auth/x","value":"1"}'
	'POST /v1/kv/delete {"key":"/auth/existing"}'
	'POST /v1/lease/grant {"ttl":10}'
	'POST /v1/lease/keepalive {"id":"0000000000000001"}'
	'POST /v1/lease/revoke {"id":"0000000000000001"}'
	'POST /v1/members/add {"name":"node9","peer_url":"127.0.0.1:24809"}'
	'POST /v1/members/promote {"name":"node9"}'
	'POST /v1/members/remove {"name":"node3"}'
	'POST /v1/transfer-leader {}'
	'PUT /v1/kv/put {"key":"/auth/x","value":"1"}'
)
for node in "$L" "$F"; do
	base=$(api_url "$node")
	for c in "${CASES[@]}"; do
		read -r m path body <<<"$c"
		code=$(http_code "$m" "$base$path" -H "$J" --data "$body")
		assert_eq 401 "$code" "$m $path without a token on node$node"
		code=$(http_code "$m" "$base$path" -H "$J" --data "$body" -H "Authorization: Bearer wrong-$TOKEN")
		assert_eq 403 "$code" "$m $path with a wrong token on node$node"
		code=$(http_code "$m" "$base$path" -H "$J" --data "$body" -H "Authorization: Bearer ")
		[[ $code == 401 || $code == 403 ]] || fail "$m $path with an empty bearer on node$node: $code"
		code=$(http_code "$m" "$base$path" -H "$J" --data "$body" -H "Authorization: Basic $TOKEN")
		[[ $code == 401 || $code == 403 ]] || fail "$m $path with a Basic header on node$node: $code"
		code=$(http_code "$m" "$base$path" -H "$J" --data "$body" -H "Authorization: Bearer ${TOKEN:0:${#TOKEN}-1}")
		assert_eq 403 "$code" "$m $path with a token prefix on node$node"
	done
	# a method the path does not allow is 405 (routing comes first; nothing
	# runs), with or without a token
	for t in "" "Authorization: Bearer wrong" "Authorization: Bearer $TOKEN"; do
		code=$(http_code DELETE "$base/v1/kv/delete" -H "$J" ${t:+-H "$t"} --data '{"key":"/auth/existing"}')
		assert_eq 405 "$code" "DELETE /v1/kv/delete on node$node"
		code=$(http_code PATCH "$base/v1/kv/put" -H "$J" ${t:+-H "$t"} --data '{"key":"/auth/x","value":"1"}')
		assert_eq 405 "$code" "PATCH /v1/kv/put on node$node"
	done
	# the error body is JSON with an error field
	body=$(curl -s -X POST "$base/v1/kv/put" -H "$J" --data '{"key":"/auth/x","value":"1"}')
	jq -e '.error | length > 0' <<<"$body" >/dev/null || fail "401 body is not a JSON error: $body"
	[[ $body != *"$TOKEN"* ]] || fail "error body echoes the token"
	body=$(curl -s -X POST "$base/v1/kv/put" -H "$J" -H "Authorization: Bearer wrong" --data '{"key":"/auth/x","value":"1"}')
	jq -e '.error | length > 0' <<<"$body" >/dev/null || fail "403 body is not a JSON error: $body"
done
# nothing of the above happened
assert_eq "$rev0" "$(status "$L" .revision)" "revision after refused writes"
assert_eq "" "$(pgw get /auth/x)" "/auth/x after refused puts"
assert_eq before "$(pgw get /auth/existing --print-value-only)" "/auth/existing after refused deletes"
assert_eq 3 "$(pgw members -o json | jq '.members | length')" "members after refused changes"
assert_eq "node$L" "$(leader_name)" "leader after refused transfers"

# the right token works, on the leader and the follower (forwarded)
for node in "$L" "$F"; do
	code=$(http_code POST "$(api_url "$node")/v1/kv/put" -H "$J" -H "Authorization: Bearer $TOKEN" \
		--data "{\"key\":\"/auth/ok$node\",\"value\":\"1\"}")
	assert_eq 200 "$code" "put with the token on node$node"
done

# reads need no token
for node in 1 2 3; do
	base=$(api_url "$node")
	assert_eq 200 "$(http_code GET "$base/v1/kv?key=/auth/existing")" "GET /v1/kv on node$node"
	assert_eq 200 "$(http_code GET "$base/v1/kv?key=/auth/&prefix=true&serializable=true")" "serializable GET on node$node"
	assert_eq 200 "$(http_code GET "$base/v1/members")" "GET /v1/members on node$node"
	assert_eq 200 "$(http_code GET "$base/v1/lease/list")" "GET /v1/lease/list on node$node"
	assert_eq 200 "$(http_code GET "$base/status")" "GET /status on node$node"
	assert_eq 200 "$(http_code GET "$base/liveness")" "GET /liveness on node$node"
done

# the CLI: reads without a token, writes without one are a usage error
unset PGWARDEN_TOKEN_FILE
E=$(endpoints_csv)
assert_eq before "$("$PGWARDEN" -e "$E" get /auth/existing --print-value-only)" "CLI get without a token"
"$PGWARDEN" -e "$E" members >/dev/null || fail "CLI members without a token"
for cmd in "put /auth/cli 1" "del /auth/existing" "lease grant 10" "member remove node3" "transfer-leader"; do
	rc=0
	out=$("$PGWARDEN" -e "$E" $cmd 2>&1) || rc=$?
	assert_eq 2 "$rc" "exit status of '$cmd' without a token"
	[[ $out == *token* ]] || fail "'$cmd' without a token: unclear message: $out"
done
log "CLI without a token says: $("$PGWARDEN" -e "$E" put /auth/cli 1 2>&1 || true)"
# an empty or missing token file: exit 2 too; a wrong token: the 403, exit 1
: >"$CL_DIR/empty-token"
rc=0
out=$("$PGWARDEN" -e "$E" --token-file "$CL_DIR/empty-token" put /auth/cli 1 2>&1) || rc=$?
assert_eq 2 "$rc" "exit status with an empty token file ($out)"
rc=0
out=$("$PGWARDEN" -e "$E" --token-file "$CL_DIR/no-such-file" put /auth/cli 1 2>&1) || rc=$?
assert_eq 2 "$rc" "exit status with a missing token file ($out)"
echo wrong >"$CL_DIR/wrong-token"
rc=0
out=$("$PGWARDEN" -e "$E" --token-file "$CL_DIR/wrong-token" put /auth/cli 1 2>&1) || rc=$?
assert_eq 1 "$rc" "exit status with a wrong token ($out)"
[[ $out == *403* ]] || fail "CLI with a wrong token does not say 403: $out"
[[ $out != *wrong* || $out == *"pgwarden: put /auth/cli: 403"* ]] || fail "CLI echoes the token: $out"
assert_eq "" "$(pgw get /auth/cli)" "/auth/cli after refused CLI writes"
# PGWARDEN_TOKEN_FILE works as the default
assert_eq OK "$(PGWARDEN_TOKEN_FILE=$CL_DIR/token "$PGWARDEN" -e "$E" put /auth/cli 1)" "put with PGWARDEN_TOKEN_FILE"
exit 0
