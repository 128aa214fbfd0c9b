#!/usr/bin/env bash
# Runs every benchmark workload against the reference stack (Postfix + Dovecot) and, when a
# `mssante` binary is there, against ours, interleaved (ours, ref, ours, ref…), each run on
# fresh state, and prints the medians. Results (JSON per run) go to $OUT.
#
#   bench/compare.sh                   everything, RUNS=3
#   WORKLOADS="smtp-bio-r1 lab-bulk" bench/compare.sh
#
# Settings: RUNS (3), OUT (/tmp/mssante-bench-results), N (2000 messages), C (16 connections),
# WORKLOADS (smtp-bio-r1 smtp-bio-r5 smtp-mix lab-bulk imap-mix idle-1000 idle-10000),
# TARGETS (ours ref; also ours-pg: ours on a throwaway PostgreSQL, ours-pg3: three nodes on
# it (docs/cluster.md), and ref-tuned; ours is
# skipped when its binary is missing), MSSANTE_BIN, BENCH_BIN,
# IMAP_TLS (starttls | implicit | none: the same on both sides; ours requires TLS before LOGIN),
# IMAP_S (50 sessions in imap-mix), IMAP_DURATION (30 s).
# imap-issue11 (not in the default list): issue 11's mix, imaptest's default profile
# (bench/src/imap_profile.rs) by IMAP_S sessions on as many users whose INBOXes were first
# filled with ISSUE11_FILL (40) messages of 40 KB each, half of the sessions with QRESYNC.
# IMAP_RATE (commands/s over all sessions, default 0 = flat out) offers a fixed load instead,
# to read latency at that load rather than at saturation.
# login (not in the default list): issue 12's login rate, LOGIN_C (50) clients each looping
# connect, TLS, AUTHENTICATE, SELECT INBOX, LOGOUT for IMAP_DURATION: ours with XOAUTH2 and a
# PSC token (`mssante-bench psc-issuer` serves the JWKS and writes the tokens), the reference
# in its tuned profile (Dovecot's login processes serve many connections) with PLAIN.
# imap-delegation (not in the default list; issue 14): the imap-issue11 mix on ours, by the
# owners of the BALs (target ours-owner) and by their delegates (target ours-delegate, PLAIN
# with an authorization id: rights checks and audit trail on every command), on identical
# fresh state (delegations created for both): WORKLOADS=imap-delegation
# TARGETS="ours-owner ours-delegate" RUNS=3 bench/compare.sh. ours-watched: the owners' mix
# with, beside it, one delegate session per BAL held in IDLE on its INBOX (the secretary's
# session open beside the doctor's); ours-self-watched: the same with the owner's own second
# session in IDLE instead (what any second session costs); ours-crowd: the owners' mix with
# CROWD (2000) sessions held in IDLE on INBOXes the mix never writes (the secretaries' own
# BALs), what idle sessions elsewhere on the node cost (ADR 0057). ours-pg-owner,
# ours-pg-delegate and ours-pg-watched are the same on a throwaway PostgreSQL.
# HTTP API workloads (issue 13; ours and ours-pg only, the reference has no such API):
# http-bulk: HTTP_C (4) vendor clients, one keep-alive connection each, send HTTP_N (10,000)
# 40 KB reports to the 100 users in bulk NDJSON requests of HTTP_BATCH (100) messages; a 200
# answer comes once every message of the request is durably stored (like SMTP's 250).
# http-single: the same one message per request (POST …/messages), HTTP_SINGLE_C (16)
# clients, HTTP_SINGLE_N (2,000) messages. Run them with lab-bulk for the ratio to SMTP:
# WORKLOADS="lab-bulk http-bulk http-single" TARGETS=ours RUNS=3 bench/compare.sh.
# http-status: the store is first seeded with STATUS_SEED (1,000,000) tracked messages
# (`mssante bench-seed`, large transactions), then STATUS_C (16) clients ask the status of
# random ones for STATUS_DURATION (20) s; the query plans are copied to $OUT.
# idle-10000 runs on ours only (Dovecot's one process per session makes 10,000 impractical).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
OUT=${OUT:-/tmp/mssante-bench-results}
N=${N:-2000}
C=${C:-16}
WORKLOADS=${WORKLOADS:-smtp-bio-r1 smtp-bio-r5 smtp-mix lab-bulk imap-mix idle-1000 idle-10000}
TARGETS=${TARGETS:-ours ref}
IMAP_TLS=${IMAP_TLS:-starttls}
export REF_PASSWORD=${REF_PASSWORD:-bench-pass}
IMAP_S=${IMAP_S:-50}
IMAP_DURATION=${IMAP_DURATION:-30}
# 10,000 loopback sessions hold ~20,000 descriptors (both ends); the generator raises its
# soft limit to the hard one, the servers get theirs from their scripts.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 
TARGET_DIR=${CARGO_TARGET_DIR:-target}
export MSSANTE_BIN=${MSSANTE_BIN:-$TARGET_DIR/release/mssante}
BENCH=${BENCH_BIN:-$TARGET_DIR/release/mssante-bench}
mkdir -p "$OUT"

[ -x "$BENCH" ] || cargo build --release -p mssante-bench
if [[ " $TARGETS " == *" ours "* ]] && [ ! -x "$MSSANTE_BIN" ]; then
    echo "no $MSSANTE_BIN: ours is not measured" >&2
    TARGETS=${TARGETS//ours/}
fi

machine() {
    echo "== machine"
    echo "cores: $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
    echo "memory: $(free -g | awk '/Mem:/ {print $2}') GiB"
    bench/reference.sh fsync /tmp
    echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "imap: tls $IMAP_TLS, $IMAP_S sessions × $IMAP_DURATION s"
}

# Workloads that need IMAP are skipped for a target whose IMAP port does not answer.
imap_up() { python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1)" "${1##*:}" 2>/dev/null; }

start() {
    case $1 in
        ref) bench/reference.sh start >/dev/null; eval "$(bench/reference.sh env)"
             SMTP=$REF_SMTP IMAP=$REF_IMAP PIDS=$BENCH_SERVER_PIDS
             [ "$IMAP_TLS" != implicit ] || IMAP=$REF_IMAPS
             WAIT=(--wait-maildir "$REF_MAILDIR") ;;
        ref-tuned) REF_PROFILE=tuned bench/reference.sh start >/dev/null; eval "$(bench/reference.sh env)"
             SMTP=$REF_SMTP IMAP=$REF_IMAP PIDS=$BENCH_SERVER_PIDS
             [ "$IMAP_TLS" != implicit ] || IMAP=$REF_IMAPS
             WAIT=(--wait-maildir "$REF_MAILDIR") ;;
        ours-owner|ours-delegate|ours-watched|ours-self-watched|ours-crowd|ours-pg-owner|ours-pg-delegate|ours-pg-watched)
              local engine=sqlite
              [[ $1 != ours-pg-* ]] || engine=postgres
              OURS_ENGINE=$engine OURS_DELEGATES=1 bench/ours.sh start >/dev/null; eval "$(bench/ours.sh env)"
              SMTP=$OURS_SMTP IMAP=$OURS_IMAP PIDS=$OURS_PIDS
              [ "$IMAP_TLS" != implicit ] || IMAP=$OURS_IMAPS
              WAIT=(--wait-cmd "bench/ours.sh count") ;;
        ours|ours-pg|ours-pg3)
              [ "$WORKLOAD" != login ] || start_issuer
              [ "$WORKLOAD" != http-status ] || export OURS_SEED_TRACKED=${STATUS_SEED:-1000000}
              [ "$1" = ours ] || export OURS_ENGINE=postgres
              [ "$1" != ours-pg3 ] || export OURS_NODES=3
              bench/ours.sh start >/dev/null; eval "$(bench/ours.sh env)"
              unset OURS_ENGINE OURS_NODES OURS_SEED_TRACKED
              SMTP=$OURS_SMTP IMAP=$OURS_IMAP PIDS=$OURS_PIDS
              [ "$IMAP_TLS" != implicit ] || IMAP=$OURS_IMAPS
              WAIT=(--wait-cmd "bench/ours.sh count") ;;
    esac
}

stop() {
    case $1 in
        ref|ref-tuned) bench/reference.sh stop >/dev/null ;;
        ours|ours-pg|ours-pg3|ours-owner|ours-delegate|ours-watched|ours-self-watched|ours-crowd|ours-pg-owner|ours-pg-delegate|ours-pg-watched) stop_crowd; bench/ours.sh stop >/dev/null; stop_issuer ;;
    esac
}

# The stand-in PSC of the login workload: tokens for the 100 users, its JWKS URL for ours.sh.
ISSUER_PID=
start_issuer() {
    rm -f "$OUT/psc-env"
    "$BENCH" psc-issuer --tokens "$OUT/psc-tokens" --env "$OUT/psc-env" 2>/dev/null &
    ISSUER_PID=$!
    local i
    for i in $(seq 1 100); do [ -s "$OUT/psc-env" ] && break; sleep 0.1; done
    [ -s "$OUT/psc-env" ] || { echo "psc-issuer did not start" >&2; exit 1; }
    eval "$(sed 's/^/export OURS_/' "$OUT/psc-env")"
}
stop_issuer() {
    [ -n "$ISSUER_PID" ] || return 0
    kill "$ISSUER_PID" 2>/dev/null || true
    wait "$ISSUER_PID" 2>/dev/null || true
    ISSUER_PID=
    unset OURS_PSC_JWKS_URL OURS_PSC_ISSUER
}

# After an IMAP workload's fill: ours on PostgreSQL is vacuumed, analyzed and checkpointed
# (`ours.sh settle`, what an operator does after an import); SQLite and the reference need
# nothing of the kind.
# ours-crowd: CROWD sessions in IDLE on the secretaries' own INBOXes, held through the mix.
CROWD_PID=
start_crowd() {
    local log=$OUT/crowd.log i
    rm -f "$log"
    "$BENCH" connections --addr "$IMAP" --tls "$IMAP_TLS" --password "$REF_PASSWORD" \
        --user "sec.user{n}@bench.test" --users "$IMAP_S" -k "${CROWD:-2000}" \
        --hold "$((IMAP_DURATION + 60))" --measure-after 1 >"$log" 2>&1 &
    CROWD_PID=$!
    for i in $(seq 1 600); do grep -q "ALL UP" "$log" 2>/dev/null && break; sleep 0.1; done
    grep -q "ALL UP" "$log" || { echo "   the crowd's sessions did not come up: skipped"; stop_crowd; return 1; }
    echo "   $(grep -m1 "ALL UP" "$log") in IDLE beside the mix"
}
stop_crowd() {
    [ -n "$CROWD_PID" ] || return 0
    kill "$CROWD_PID" 2>/dev/null || true
    wait "$CROWD_PID" 2>/dev/null || true
    CROWD_PID=
}

settle() {
    case $1 in
        ours*) bench/ours.sh settle ;;
    esac
}

run_one() {
    local w=$1 t=$2 i=$3 json=$OUT/$1-$2-$3.json
    local smtp=("$BENCH" --server-pid "$PIDS" --json "$json" smtp --addr "$SMTP" -c "$C" "${WAIT[@]}")
    echo "-- $w $t run $i (load $(cut -d" " -f1 /proc/loadavg))"
    case $w in
        smtp-bio-r1) "${smtp[@]}" -n "$N" -r 1 --mix bio ;;
        smtp-bio-r5) "${smtp[@]}" -n "$N" -r 5 --mix bio ;;
        smtp-mix) "${smtp[@]}" -n "$((N / 2))" -r 1 --mix realistic ;;
        lab-bulk) "$BENCH" --server-pid "$PIDS" --json "$json" smtp --addr "$SMTP" -c 1 -n 1000 -r 1 --mix bio "${WAIT[@]}" ;;
        imap-mix)
            imap_up "$IMAP" || { echo "   no IMAP on $IMAP: skipped"; return 0; }
            "$BENCH" smtp --addr "$SMTP" -c "$C" -n 2000 -r 1 --mix bio "${WAIT[@]}" >/dev/null
            "$BENCH" --server-pid "$PIDS" --json "$json" imap --addr "$IMAP" --tls "$IMAP_TLS" --password "$REF_PASSWORD" -s "$IMAP_S" --duration "$IMAP_DURATION" ;;
        imap-issue11)
            imap_up "$IMAP" || { echo "   no IMAP on $IMAP: skipped"; return 0; }
            "$BENCH" smtp --addr "$SMTP" -c "$C" -n "$((IMAP_S * ${ISSUE11_FILL:-40}))" -r 1 --users "$IMAP_S" --mix bio "${WAIT[@]}" >/dev/null
            settle "$t"
            "$BENCH" --server-pid "$PIDS" --json "$json" imap --addr "$IMAP" --tls "$IMAP_TLS" --password "$REF_PASSWORD" -s "$IMAP_S" --users "$IMAP_S" --duration "$IMAP_DURATION" --mix imaptest --qresync-share 50 --rate "${IMAP_RATE:-0}" ;;
        login)
            imap_up "$IMAP" || { echo "   no IMAP on $IMAP: skipped"; return 0; }
            local mech=(--mechanism plain)
            [[ $t != ours* ]] || mech=(--mechanism xoauth2 --tokens "$OUT/psc-tokens")
            "$BENCH" --server-pid "$PIDS" --json "$json" login --addr "$IMAP" --tls "$IMAP_TLS" --password "$REF_PASSWORD" -c "${LOGIN_C:-50}" --duration "$IMAP_DURATION" "${mech[@]}" ;;
        imap-delegation)
            imap_up "$IMAP" || { echo "   no IMAP on $IMAP: skipped"; return 0; }
            local as=()
            [[ $t != *-delegate ]] || as=(--delegate-prefix sec.)
            [[ $t != *-watched ]] || as=(--watchers-prefix sec.)
            [[ $t != *-self-watched ]] || as=(--watchers-prefix "")
            "$BENCH" smtp --addr "$SMTP" -c "$C" -n "$((IMAP_S * ${ISSUE11_FILL:-40}))" -r 1 --users "$IMAP_S" --mix bio "${WAIT[@]}" >/dev/null
            settle "$t"
            [[ $t != *-crowd ]] || start_crowd || return 0
            "$BENCH" --server-pid "$PIDS" --json "$json" imap --addr "$IMAP" --tls "$IMAP_TLS" --password "$REF_PASSWORD" -s "$IMAP_S" --users "$IMAP_S" --duration "$IMAP_DURATION" --mix imaptest --qresync-share 50 "${as[@]}"
            stop_crowd ;;
        http-bulk|http-single)
            local http=(-c "${HTTP_C:-4}" -b "${HTTP_BATCH:-100}" -n "${HTTP_N:-10000}")
            [ "$w" != http-single ] || http=(-c "${HTTP_SINGLE_C:-16}" -b 1 -n "${HTTP_SINGLE_N:-2000}")
            "$BENCH" --server-pid "$PIDS" --json "$json" http-bulk --addr "$OURS_HTTP" --key "$OURS_API_KEY" \
                "${http[@]}" --wait-cmd "bench/ours.sh count" ;;
        http-status)
            cp "$OURS_DIR/seed-plans.txt" "$OUT/$w-$t-plans.txt" 2>/dev/null || true
            "$BENCH" --server-pid "$PIDS" --json "$json" http-status --addr "$OURS_HTTP" --key "$OURS_API_KEY" \
                --ids "$OURS_SEED_IDS" -c "${STATUS_C:-16}" --duration "${STATUS_DURATION:-20}" ;;
        idle-1000|idle-10000)
            imap_up "$IMAP" || { echo "   no IMAP on $IMAP: skipped"; return 0; }
            "$BENCH" --server-pid "$PIDS" --json "$json" connections --addr "$IMAP" --tls "$IMAP_TLS" --password "$REF_PASSWORD" -k "${w#idle-}" --hold 15 --measure-after 10 ;;
    esac
}

summary() {
    local w t files
    echo "== medians"
    for w in $WORKLOADS; do
        for t in $(targets_for "$w"); do
            files=$(ls "$OUT/$w-$t-"[0-9]*.json 2>/dev/null || true)
            [ -n "$files" ] || continue
            echo "-- $w $t"
            # shellcheck disable=SC2086
            "$BENCH" summary $files
        done
    done
}

WORKLOAD=
trap 'for t in $TARGETS ref-tuned; do stop "$t" 2>/dev/null || true; done; stop_issuer' EXIT
machine
# IMAP workloads also run on the reference's tuned profile (high-performance login, hibernation).
targets_for() {
    case $1 in
        imap-mix|imap-issue11|idle-1000) [[ " $TARGETS " == *" ref "* ]] && echo "$TARGETS ref-tuned" || echo "$TARGETS" ;;
        idle-10000) [[ " $TARGETS " == *" ours "* ]] && echo ours || true ;;
        # The HTTP API is ours alone.
        http-*) local t; for t in $TARGETS; do [[ $t != ours* ]] || echo "$t"; done ;;
        # Dovecot as an operator tunes it for many logins, not its default process per login.
        login) [[ " $TARGETS " == *" ref "* ]] && echo "${TARGETS// ref/} ref-tuned" || echo "$TARGETS" ;;
        *) echo "$TARGETS" ;;
    esac
}

for w in $WORKLOADS; do
    WORKLOAD=$w
    for i in $(seq 1 "$RUNS"); do
        for t in $(targets_for "$w"); do
            start "$t"
            run_one "$w" "$t" "$i" || echo "   run failed" >&2
            stop "$t"
        done
    done
done
summary
