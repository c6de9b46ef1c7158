#!/usr/bin/env bash
# Bad [postgresql]-related settings (issue 3, item 7): `pgwarden run` (as
# the postgres user, as in production) exits 2 with one line
# `FILE:LINE: reason` naming the offending line, and starts nothing: no
# node data dir, no PostgreSQL data dir, no port bound, no postgres.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/pgcluster.sh"
pg_init 28600
pg_ports_free
BASE_INI=$(ini 1)
# a valid file first: check-config accepts it (so each case below fails
# for the one change it makes)
out=$(as_pg "$PG_DIR/bin/pgwarden" check-config -c "$BASE_INI" 2>&1) || fail "base ini rejected: $out"

: >"$PG_DIR/empty.pw"
chown "$PG_USER:$PG_USER" "$PG_DIR/empty.pw"
LONG=$PG_DIR/$(printf 's%.0s' $(seq 1 100))
ncases=0

# bad_case NAME LINE_RE REASON_RE AWK_PROGRAM: the base ini rewritten by the
# awk program (variable sect = current section) must fail at the only line
# matching ^LINE_RE (PICK=last: the later of two) with a reason matching REASON_RE.
bad_case() {
	local name=$1 marker=$2 reason=$3 prog=$4 f line out rc
	f=$PG_DIR/bad-$name.ini
	awk -v dir="$PG_DIR" -v long="$LONG" -v api="127.0.0.1:$(api_port 1)" \
		"/^\\[/ { sect = \$0 } $prog" "$BASE_INI" >"$f"
	chown "$PG_USER:$PG_USER" "$f"
	line=$(grep -nE -- "^$marker" "$f" | cut -d: -f1)
	# PICK=last: the later of two matching lines
	[[ ${PICK:-} != last ]] || line=$(tail -n 1 <<<"$line")
	[[ $line =~ ^[0-9]+$ ]] || fail "case $name: not one line matches ^$marker: '$line'"
	rc=0
	out=$(cd / && timeout 20 setpriv --reuid=$PG_USER --regid=$PG_USER --init-groups \
		env HOME=$PG_HOME "$PG_DIR/bin/pgwarden" run -c "$f" 2>&1 </dev/null) || rc=$?
	[[ $rc == 2 ]] || fail "case $name: exit status $rc, expected 2; output: $out"
	[[ $(wc -l <<<"$out") == 1 ]] || fail "case $name: expected one line, got: $out"
	[[ $out == "$f:$line: "* ]] || fail "case $name: expected '$f:$line: …', got: $out"
	[[ ${out#"$f:$line: "} =~ $reason ]] || fail "case $name: reason does not match /$reason/: $out"
	[[ ! -e $(node_dir 1) ]] || fail "case $name: node data dir $(node_dir 1) was created"
	[[ ! -e $(pg_data 1) ]] || fail "case $name: PostgreSQL data dir $(pg_data 1) was created"
	local p
	for p in "$(raft_port 1)" "$(api_port 1)" "$(pg_port 1)"; do
		! port_bound "$p" || fail "case $name: port $p is bound"
	done
	! pgrep -u "$PG_USER" -f "$PG_DIR" >/dev/null || fail "case $name: a process of the test dir runs: $(pgrep -a -u "$PG_USER" -f "$PG_DIR")"
	log "case $name: $out"
	ncases=$((ncases + 1))
}

PGS='sect == "[postgresql]"'
PAR='sect == "[postgresql.parameters]"'
bad_case listen_nonsense 'listen = nonsense$' 'listen' \
	"$PGS && /^listen =/ { print \"listen = nonsense\"; next } { print }"
bad_case listen_no_port 'listen = 127\.0\.0\.1$' 'listen' \
	"$PGS && /^listen =/ { print \"listen = 127.0.0.1\"; next } { print }"
bad_case reserved_port 'port = 5$' 'not allowed here' \
	"{ print } $PAR && /^wal_keep_size/ { print \"port = 5\" }"
bad_case reserved_listen_addresses "listen_addresses = " 'not allowed here' \
	"{ print } $PAR && /^wal_keep_size/ { print \"listen_addresses = '*'\" }"
bad_case reserved_primary_conninfo "primary_conninfo = " 'not allowed here' \
	"{ print } $PAR && /^shared_buffers/ { print \"primary_conninfo = 'host=x'\" }"
bad_case missing_superuser_pw 'superuser_password_file = .*missing' 'superuser_password_file: .*missing\.pw: cannot open' \
	"$PGS && /^superuser_password_file/ { print \"superuser_password_file = \" dir \"/missing.pw\"; next } { print }"
bad_case empty_replication_pw 'replication_password_file = .*empty' 'replication_password_file: .*empty password' \
	"$PGS && /^replication_password_file/ { print \"replication_password_file = \" dir \"/empty.pw\"; next } { print }"
bad_case both_passwords 'superuser_password = ' 'cannot be combined' \
	"{ print } $PGS && /^superuser_password_file/ { print \"superuser_password = secret\" }"
bad_case relative_data_dir 'data_dir = relative/pg' 'data_dir' \
	"$PGS && /^data_dir/ { print \"data_dir = relative/pg\"; next } { print }"
bad_case data_dir_inside_node 'data_dir = .*/node1/pg$' 'inside \[node\] data_dir' \
	"$PGS && /^data_dir/ { print \"data_dir = \" dir \"/node1/pg\"; next } { print }"
bad_case missing_data_dir '\[postgresql\]$' "missing required key 'data_dir' in \\[postgresql\\]" \
	"$PGS && /^data_dir/ { next } { print }"
PICK=last bad_case listen_is_api "listen = 127\\.0\\.0\\.1:$(api_port 1)" 'listen' \
	"$PGS && /^listen =/ { print \"listen = \" api; next } { print }"
bad_case socket_dir_too_long 'socket_dir = ' 'socket_dir' \
	"$PGS && /^socket_dir/ { print \"socket_dir = \" long; next } { print }"
bad_case unknown_key 'bogus = 1' "unknown key 'bogus' in \\[postgresql\\]" \
	"{ print } $PGS && /^socket_dir/ { print \"bogus = 1\" }"
bad_case bad_bool 'use_slots = maybe' 'use_slots' \
	"{ print } $PGS && /^socket_dir/ { print \"use_slots = maybe\" }"
bad_case bad_hba_line ' +host all all trust' 'pg_hba' \
	"{ print } /^pg_hba/ { print \"         host all all trust\" }"
bad_case bad_tag 'noloadbalance = perhaps' 'noloadbalance' \
	"{ print } END { print \"[tags]\"; print \"noloadbalance = perhaps\" }"
log "$ncases bad files refused with the right line"
