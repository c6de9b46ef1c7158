#!/usr/bin/env bash
# A put through one node is read through the others (linearizable and
# serializable), in etcdctl's output format; prefix get and delete; CAS
# (--prev-revision, --create); leases: revoke and expiry delete their keys.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/cluster.sh"
cl_init 24100
cl_ports_free
cl_start_all
cl_wait_leader >/dev/null

# put through node1, get through node2 and node3
assert_eq OK "$(pgw_at 1 put /pg/a 'value a')" "put via node1"
for i in 2 3; do
	out=$(pgw_at "$i" get /pg/a)
	assert_eq $'/pg/a\nvalue a' "$out" "linearizable get via node$i"
	serial() { [[ $(pgw_at "$1" get /pg/a --serializable) == $'/pg/a\nvalue a' ]]; }
	wait_until serial "$i" || fail "serializable get via node$i never saw the value"
	assert_eq 'value a' "$(pgw_at "$i" get /pg/a --print-value-only)" "--print-value-only via node$i"
done
# missing key: exit 0, no output
assert_eq "" "$(pgw get /pg/missing)" "get of a missing key"

# prefix get: keys in order, key line then value line
pgw put /pg/b 'value b' >/dev/null
pgw put /pg/c '' >/dev/null
pgw put /pgx 'outside' >/dev/null
# (through a file: $(...) would drop the empty value's line)
pgw_at 3 get /pg/ --prefix >"$CL_DIR/prefix.out"
printf '/pg/a\nvalue a\n/pg/b\nvalue b\n/pg/c\n\n' >"$CL_DIR/prefix.exp"
cmp -s "$CL_DIR/prefix.exp" "$CL_DIR/prefix.out" ||
	fail "prefix get output: $(od -c "$CL_DIR/prefix.out")"
assert_eq $'/pg/a\n/pg/b\n/pg/c' "$(pgw_at 2 get /pg/ --prefix --keys-only | sed '/^$/d')" "--keys-only"
js=$(pgw get /pg/ --prefix -o json)
assert_eq 3 "$(jq .count <<<"$js")" "json count"
assert_eq '"value b"' "$(jq '.kvs[1].value' <<<"$js")" "json value"
# value from stdin, and a value starting with '-'
printf 'from stdin' | pgw put /pg/stdin >/dev/null
assert_eq 'from stdin' "$(pgw get /pg/stdin --print-value-only)" "put from stdin"
pgw put /pg/neg -- -1 >/dev/null
assert_eq '-1' "$(pgw get /pg/neg --print-value-only)" "put -- -1"

# delete with --prefix prints the count
assert_eq 5 "$(pgw del /pg/ --prefix)" "del --prefix count"
assert_eq "" "$(pgw get /pg/ --prefix)" "after del --prefix"
assert_eq 'outside' "$(pgw get /pgx --print-value-only)" "del --prefix kept /pgx"
assert_eq 1 "$(pgw del /pgx)" "del one key"
assert_eq 0 "$(pgw del /pgx)" "del a missing key"

# CAS on mod_revision
pgw put /cas v1 >/dev/null
rev=$(pgw get /cas -o json | jq -r '.kvs[0].mod_revision')
expect_fail out pgw put /cas v2 --prev-revision $((rev + 100))
assert_eq 1 "$EXPECT_RC" "exit status of a failed compare"
[[ $out == *409* ]] || fail "failed compare does not say 409: $out"
[[ $(wc -l <<<"$out") == 1 ]] || fail "error is not one line: $out"
assert_eq v1 "$(pgw get /cas --print-value-only)" "value after failed CAS"
assert_eq OK "$(pgw put /cas v2 --prev-revision "$rev")" "CAS with the right revision"
assert_eq v2 "$(pgw get /cas --print-value-only)" "value after CAS"
expect_fail out pgw put /cas v3 --prev-revision "$rev"
[[ $out == *409* ]] || fail "stale revision does not say 409: $out"
# --create
expect_fail out pgw put /cas v4 --create
[[ $out == *409* ]] || fail "--create on an existing key does not say 409: $out"
assert_eq v2 "$(pgw get /cas --print-value-only)" "value after failed --create"
assert_eq OK "$(pgw put /cas-new n1 --create)" "--create on a new key"
assert_eq n1 "$(pgw get /cas-new --print-value-only)" "value after --create"
# del with a wrong prev-revision
expect_fail out pgw del /cas --prev-revision 1
[[ $out == *409* ]] || fail "del with a wrong revision does not say 409: $out"

# lease grant / attach / revoke
out=$(pgw lease grant 60)
[[ $out =~ ^lease\ ([0-9a-f]{16})\ granted\ with\ TTL\(60s\)$ ]] || fail "lease grant output: $out"
lid=${BASH_REMATCH[1]}
pgw put /lease/a 1 --lease "$lid" >/dev/null
pgw put /lease/b 2 --lease "$lid" >/dev/null
pgw put /lease/keep 3 >/dev/null
assert_eq "$lid" "$(pgw get /lease/a -o json | jq -r '.kvs[0].lease')" "key's lease"
pgw lease list | grep -q "$lid" || fail "lease list does not show $lid: $(pgw lease list)"
out=$(pgw lease keepalive "$lid" --once)
[[ $out == *"$lid"*keepalived* ]] || fail "keepalive --once output: $out"
out=$(pgw lease revoke "$lid")
assert_eq "lease $lid revoked" "$out" "lease revoke output"
assert_eq $'/lease/keep' "$(pgw get /lease/ --prefix --keys-only | sed '/^$/d')" "keys after revoke"
if pgw lease list | grep -q "$lid"; then fail "revoked lease still listed"; fi
expect_fail out pgw put /lease/c 1 --lease "$lid"
[[ $out == *404* ]] || fail "put with a revoked lease does not say 404: $out"
# revoking it again: 404
expect_fail out pgw lease revoke "$lid"
[[ $out == *404* ]] || fail "revoke of a revoked lease: $out"

# lease expiry: TTL 2 s, keys vanish on every node, lease list reflects it
t0=$(date +%s%N) # before the grant: the lease cannot end before t0 + 2 s
out=$(pgw lease grant 2)
[[ $out =~ ^lease\ ([0-9a-f]{16})\ granted ]] || fail "lease grant output: $out"
lid=${BASH_REMATCH[1]}
pgw put /exp/a 1 --lease "$lid" >/dev/null
# (the id without its leading zeros works too)
pgw put /exp/b 2 --lease "$(sed 's/^0*//' <<<"$lid")" >/dev/null
pgw lease list | grep -q "$lid" || fail "lease $lid not listed"
assert_eq 2 "$(pgw lease list -o json | jq --arg id "$lid" '.leases[] | select(.id == $id) | .keys')" "keys on the lease"
gone() { [[ -z $(pgw_at "$1" get /exp/ --prefix --serializable) ]]; }
wait_until -t 10 gone 1 || fail "leased keys still there 10 s after a 2 s TTL"
t1=$(date +%s%N)
ms=$(((t1 - t0) / 1000000))
log "lease of 2 s expired after ${ms} ms"
((ms >= 2000)) || fail "lease expired too early (${ms} ms < 2 s after the grant was sent)"
for i in 2 3; do wait_until gone "$i" || fail "leased keys still on node$i"; done
if pgw lease list | grep -q "$lid"; then fail "expired lease still listed"; fi
assert_eq 0 "$(pgw lease list -o json | jq '.leases | length')" "lease list after expiry"
wait_until same_fsm 1 2 3 || fail "nodes disagree after lease expiry"
exit 0
