#!/bin/sh
# Issue 15's portability benchmark (BENCHMARKS.md): a generated instance filled by importing
# a generated archive (bench/gen_archive.py, no SMTP), then `mssante export --all` of it and
# `mssante import` of that export into a fresh instance, each under /usr/bin/time -v (wall
# time, peak RSS), with the load average before each step. SQLite instances.
#
#   bench/portability.sh BIN WORKDIR BALS MESSAGES_PER_BAL
#
# WORKDIR must not exist; it holds both instances and both archives (about 8 GB for
# 1000 x 1000 messages): remove it afterwards. GEN=FILE uses an archive generated earlier
# (bench/gen_archive.py ... | zstd -1 > FILE) instead of generating one.
set -eu
BIN=$1 W=$2 BALS=$3 MESSAGES=$4
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir "$W"
for side in a b; do
    mkdir "$W/$side"
    printf 'hostname = "mx.bench.test"\ndata_dir = "%s"\ndatabase_url = "sqlite://%s/db.sqlite"\n' \
        "$W/$side" "$W/$side" > "$W/$side.toml"
    "$BIN" --config "$W/$side.toml" init >/dev/null
done
step() { # name, command...
    name=$1; shift
    echo "== $name: load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%H:%M:%S) UTC"
    /usr/bin/time -v "$@" 2> "$W/$name.time" >/dev/null || { cat "$W/$name.time"; exit 1; }
    grep -E 'Elapsed|Maximum resident|exported|imported' "$W/$name.time"
}
if [ -z "${GEN:-}" ]; then
    GEN=$W/gen.tar.zst
    step generate sh -c "python3 '$HERE/gen_archive.py' --bals $BALS --messages $MESSAGES 2>/dev/null | zstd -1 -T1 -q > '$GEN'"
fi
ls -l "$GEN"
step fill "$BIN" --config "$W/a.toml" import "$GEN"
du -sh "$W/a"
step export "$BIN" --config "$W/a.toml" export --all -o "$W/export.tar.zst"
ls -l "$W/export.tar.zst"
step import "$BIN" --config "$W/b.toml" import "$W/export.tar.zst"
du -sh "$W/b"
echo "== done: load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%H:%M:%S) UTC"
