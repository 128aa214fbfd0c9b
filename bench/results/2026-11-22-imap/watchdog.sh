# waits for the idle-10000 run; logs server RSS vs established sessions; stops the generator above 6 GB
until grep -q -- '-- idle-10000 ours' /tmp/bench-run.log; do sleep 1; done
sleep 1
P=$(cat $(cat /tmp/mssante-ours.current)/pid)
while kill -0 $P 2>/dev/null; do
  rss=$(awk '/^Rss:/ {print $2}' /proc/$P/smaps_rollup 2>/dev/null)
  n=$(ss -tnH state established '( sport = :1153 )' | wc -l)
  echo "$(date +%T) sessions=$n rss_kb=$rss"
  if [ -n "$rss" ] && [ "$rss" -gt 6000000 ]; then
    G=$(pgrep -P $(pgrep -f 'bench/compare.sh' | head -1) -f 'mssante-bench.*connections' | head -1)
    echo "RSS above 6 GB: stopping generator $G"; [ -n "$G" ] && kill $G
  fi
  sleep 1
done
