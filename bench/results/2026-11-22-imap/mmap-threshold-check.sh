# Same idle-1000 run, our server with glibc's mmap threshold fixed at 128 KiB (no server change).
cd /work/main
export MSSANTE_BIN=/work/target-bench/release/mssante
B=/work/target-bench/release/mssante-bench
MALLOC_MMAP_THRESHOLD_=131072 bench/ours.sh start >/dev/null
eval "$(bench/ours.sh env)"
echo "load $(cut -d' ' -f1-3 /proc/loadavg)"
$B --server-pid $OURS_PID --json /tmp/mssante-bench-imap/exp-idle-1000-ours-mmapthreshold.json connections --addr $OURS_IMAP --tls starttls --password bench-pass -k 1000 --hold 12 --measure-after 10
$B --server-pid $OURS_PID --json /tmp/mssante-bench-imap/exp-idle-10000-ours-mmapthreshold.json connections --addr $OURS_IMAP --tls starttls --password bench-pass -k 10000 --hold 12 --measure-after 10
bench/ours.sh stop
