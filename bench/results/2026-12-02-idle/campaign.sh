#!/usr/bin/env bash
# Idle IDLE sessions, process + kernel: interleaved runs (run of 2026-12-02).
set -uo pipefail
cd /work/main
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
export MSSANTE_BIN=/work/target-bench5/release/mssante
B=/work/target-bench5/release/mssante-bench
OUT=bench/results/2026-12-02-idle
RUNS=${RUNS:-3}; RUNS10K=${RUNS10K:-3}; DEFAULTS=${DEFAULTS:-1}
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB, kernel $(uname -r), nofile $(ulimit -n), commit $(git rev-parse --short HEAD)"
client_end() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['client_end_kb'])" "$1"; }
pairs() { # K i
    echo "-- pairs $1 run $2 ($(date -u +%T), load $(cut -d' ' -f1-3 /proc/loadavg))"
    "$B" --json "$OUT/pairs-$1-$2.json" pairs -k "$1" --measure-after 5
    sleep 5
}
conn() { # target K i
    local t=$1 k=$2 i=$3 ce
    ce=$(client_end "$OUT/pairs-$k-$i.json")
    case $t in
        ours) bench/ours.sh start >/dev/null; eval "$(bench/ours.sh env)"; IMAP=$OURS_IMAP PIDS=$OURS_PIDS ;;
        ref-tuned) REF_PROFILE=tuned bench/reference.sh start >/dev/null; eval "$(bench/reference.sh env)"; IMAP=$REF_IMAP PIDS=$BENCH_SERVER_PIDS ;;
        ref) REF_PROFILE=default bench/reference.sh start >/dev/null; eval "$(bench/reference.sh env)"; IMAP=$REF_IMAP PIDS=$BENCH_SERVER_PIDS ;;
    esac
    sleep 2
    echo "-- idle-$k $t run $i ($(date -u +%T), load $(cut -d' ' -f1-3 /proc/loadavg), client end $ce kB)"
    "$B" --server-pid "$PIDS" --json "$OUT/idle-$k-$t-$i.json" connections --addr "$IMAP" --tls starttls \
        --password bench-pass -k "$k" --hold 15 --measure-after 10 --client-kernel-kb "$ce"
    case $t in ours) bench/ours.sh stop ;; *) bench/reference.sh stop ;; esac
    sleep 5
}
for i in $(seq 1 "$RUNS"); do
    pairs 1000 "$i"
    conn ours 1000 "$i"
    conn ref-tuned 1000 "$i"
    [ "$DEFAULTS" = 1 ] && conn ref 1000 "$i"
done
for i in $(seq 1 "$RUNS10K"); do
    pairs 10000 "$i"
    conn ours 10000 "$i"
done
echo "== done $(date -u +%T), load $(cut -d' ' -f1-3 /proc/loadavg)"
