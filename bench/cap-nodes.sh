#!/usr/bin/env bash
# Puts every running `mssante serve` process into a cgroup (v1 cpu) of its own, capped at
# QUOTA_PCT % of one CPU, as if each node ran on a machine of its own that size. Runs until
# killed; the empty cgroups of stopped nodes are removed as it goes. Progress lines go to
# $CAP_LOG (/tmp/cap-nodes.log). See bench/README.md.
QUOTA_PCT=${QUOTA_PCT:-25}
CG=/sys/fs/cgroup/cpu
while true; do
  for pid in $(pgrep -f 'mssante --config .*\.toml serve'); do
    d=$CG/mssnode-$pid
    if [ ! -d $d ]; then
      mkdir $d && echo 100000 > $d/cpu.cfs_period_us && echo $((QUOTA_PCT*1000)) > $d/cpu.cfs_quota_us
      echo $pid > $d/cgroup.procs && echo "$(date -u +%T) capped $pid at $QUOTA_PCT%" >> "${CAP_LOG:-/tmp/cap-nodes.log}"
    fi
  done
  for d in $CG/mssnode-*; do [ -d "$d" ] && [ -z "$(cat $d/cgroup.procs 2>/dev/null)" ] && rmdir $d 2>/dev/null; done
  sleep 0.2
done
