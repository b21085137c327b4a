#!/usr/bin/env bash
# bench/metrics.sh - what --metrics costs (issue 11): throughput with
# --metrics on vs off, side by side in one run on 127.0.0.1, while a scraper
# reads /metrics and /status every second (as Prometheus and the page do).
#   tunnel       iperf3 (1 stream) through bore server + bore local: a pair
#                without --metrics and a pair with it (two servers on two
#                control ports), in turns
#   kafka-proxy  kcat produce and consume of N messages of SIZE bytes through
#                a kafka-proxy without and one with --metrics (one mock
#                broker, one tunnel server), in turns
# Best and median of ROUNDS; ratios are on / off in throughput.
# Usage: bench/metrics.sh [SECONDS_PER_IPERF_RUN] [N] [SIZE] [ROUNDS]  (defaults 5 200000 1000 7)
set -euo pipefail
cd "$(dirname "$0")/.."
T=${1:-5}
N=${2:-200000}
SIZE=${3:-1000}
ROUNDS=${4:-7}
scripts/setup >/dev/null
scripts/setup-kafka >/dev/null
make -s
export LD_LIBRARY_PATH=$PWD/.cache/librdkafka/src
BORE=$PWD/build/bore
A=127.0.0.1
work=$(mktemp -d)
pids=()
cleanup() { exec 3>&- 2>/dev/null || true; for ((i=${#pids[@]}-1; i>=0; i--)); do kill "${pids[i]}" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
# CPU seconds (user + system) a process has used so far: less at the mercy
# of a busy machine than wall-clock throughput.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"; }
cpus() { local t=0 p; for p in "$@"; do t=$(python3 -c "print($t + $(cpu "$p"))"); done; echo "$t"; }
trap cleanup EXIT
wait_port() { for _ in $(seq 200); do (exec 9<>/dev/tcp/$A/$1) 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

# ---- tunnel ----
iperf3 -s -B $A -p 5201 >/dev/null 2>&1 & pids+=($!)
BORE_LOG=warn $BORE server --bind-addr $A --control-port 7835 --min-port 45000 --max-port 45099 & pids+=($!); S_OFF=$!
BORE_LOG=warn $BORE server --bind-addr $A --control-port 7836 --min-port 45100 --max-port 45199 --metrics 9101 & pids+=($!); S_ON=$!
wait_port 7835; wait_port 7836; wait_port 5201
BORE_LOG=warn $BORE local 5201 -l $A --to $A:7835 --port 45001 & pids+=($!); L_OFF=$!
BORE_LOG=warn $BORE local 5201 -l $A --to $A:7836 --port 45101 --metrics 9102 & pids+=($!); L_ON=$!
wait_port 45001; wait_port 45101

# The scraper: every second, /metrics and /status of every process with --metrics.
scrape() { while true; do for p in "$@"; do curl -s "http://$A:$p/metrics" >/dev/null; curl -s "http://$A:$p/status" >/dev/null; done; sleep 1; done; }
scrape 9101 9102 9103 & pids+=($!)

gbps() { iperf3 -c $A -p "$1" -t "$T" -J | python3 -c 'import json,sys; print("%.3f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))'; }
tcpu_off0=$(cpus $S_OFF $L_OFF); tcpu_on0=$(cpus $S_ON $L_ON)
off=""; on=""
for r in $(seq "$ROUNDS"); do
    if [ $((r % 2)) -eq 1 ]; then off+="$(gbps 45001) "; on+="$(gbps 45101) "
    else on+="$(gbps 45101) "; off+="$(gbps 45001) "; fi
done
best() { python3 -c "import sys; print(max(float(x) for x in sys.argv[1].split()))" "$1"; }
t_off=$(best "$off"); t_on=$(best "$on")
# CPU per gigabit carried, each pair over all its runs
tcpu_off=$(python3 -c "print(($(cpus $S_OFF $L_OFF) - $tcpu_off0) / sum(float(x) * $T for x in '$off'.split()))")
tcpu_on=$(python3 -c "print(($(cpus $S_ON $L_ON) - $tcpu_on0) / sum(float(x) * $T for x in '$on'.split()))")

# ---- kafka-proxy ----
python3 -c "
import sys
sys.stdout.buffer.write(('x' * ($SIZE - 1) + '\n').encode() * $N)" >"$work/msgs"
mkfifo "$work/cin"
.cache/bin/kafka_cluster --brokers 1 <"$work/cin" >"$work/cout" 2>/dev/null & pids+=($!)
exec 3>"$work/cin"
for _ in $(seq 100); do [ -s "$work/cout" ] && break; sleep 0.05; done
broker=$(python3 -c 'import json,sys; b=json.loads(open(sys.argv[1]).readline())["brokers"][0]; print("%s:%d" % (b["host"], b["port"]))' "$work/cout")
BORE_LOG=warn $BORE kafka-proxy -b "$broker" --to $A -p 45050 >"$work/off.out" 2>&1 & pids+=($!); K_OFF=$!
BORE_LOG=warn $BORE kafka-proxy -b "$broker" --to $A -p 45051 --metrics 9103 >"$work/on.out" 2>&1 & pids+=($!); K_ON=$!
for f in off on; do for _ in $(seq 200); do grep -q '^bootstrap.servers=' "$work/$f.out" && break; sleep 0.05; done; done
cluster_cmd() {
    local n; n=$(wc -l <"$work/cout")
    echo "$1" >&3
    for _ in $(seq 1000); do [ "$(wc -l <"$work/cout")" -gt "$n" ] && return 0; sleep 0.02; done
    echo "launcher did not answer: $1" >&2; exit 1
}
timed() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>&1; t1=$(date +%s.%N); python3 -c "print($t1 - $t0)"; }
produce() { timed kcat -P -b "$1" -t "$2" -X linger.ms=5 -X batch.num.messages=10000 \
    -X queue.buffering.max.messages=1000000 -X acks=1 -X sticky.partitioning.linger.ms=0 <"$work/msgs"; }
consume() { timed kcat -C -b "$1" -t "$2" -o beginning -c "$N" -e -q; }
check() { local n; n=$(kcat -C -b "$1" -t "$2" -o beginning -e -q | wc -l); [ "$n" -eq "$N" ] || { echo "only $n of $N messages in $2" >&2; exit 1; }; }
declare -A P C
kcpu_off0=$(cpus $K_OFF); kcpu_on0=$(cpus $K_ON)
for r in $(seq "$ROUNDS"); do
    order="off on"; [ $((r % 2)) -eq 0 ] && order="on off"  # each goes first in turn
    for m in $order; do
        bs=$A:45050; [ $m = on ] && bs=$A:45051
        cluster_cmd "topic bench-$m-$r 64"
        P[$m]+="$(produce "$bs" "bench-$m-$r") "
        C[$m]+="$(consume "$bs" "bench-$m-$r") "
        check "$bs" "bench-$m-$r"
    done
done
kcpu_off=$(python3 -c "print($(cpus $K_OFF) - $kcpu_off0)"); kcpu_on=$(python3 -c "print($(cpus $K_ON) - $kcpu_on0)")
fast() { python3 -c "import sys; print(min(float(x) for x in sys.argv[1].split()))" "$1"; }
med() { python3 -c "import sys, statistics; print(statistics.median(float(x) for x in sys.argv[1].split()))" "$1"; }
# Small requests, where a per-request cost would show: ApiVersions round
# trips on one connection, p50 in microseconds (3,000 each, in turns).
rtt() { python3 - "$1" <<'PY'
import socket, struct, sys, time
host, port = sys.argv[1].split(":")
s = socket.create_connection((host, int(port)))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
lat = []
for i in range(3000):
    r = struct.pack(">hhih", 18, 0, i, 4) + b"lat!"
    t0 = time.perf_counter()
    s.sendall(struct.pack(">i", len(r)) + r)
    size = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))[0]
    s.recv(size, socket.MSG_WAITALL)
    lat.append((time.perf_counter() - t0) * 1e6)
lat.sort()
print(f"{lat[len(lat)//2]:.1f}")
PY
}
R_off=""; R_on=""
for r in $(seq "$ROUNDS"); do R_off+="$(rtt $A:45050) "; R_on+="$(rtt $A:45051) "; done
mb=$(python3 -c "print($N * $SIZE / 1e6)")
pct() { python3 -c "print('%.1f%%' % (100 * $1 / $2))"; }
rate() { python3 -c "print('%.0f' % ($mb / $1))"; }

echo "## --metrics on vs off ($ROUNDS rounds each, in turns, scraped every second)"
echo
echo "| path | off best | on best | on / off (best) | off median | on median | on / off (median) |"
echo "|---|---|---|---|---|---|---|"
tm_off=$(python3 -c "import sys, statistics; print(statistics.median(float(x) for x in sys.argv[1].split()))" "$off")
tm_on=$(python3 -c "import sys, statistics; print(statistics.median(float(x) for x in sys.argv[1].split()))" "$on")
echo "| tunnel, iperf3 1 stream ${T}s (Gbit/s) | $t_off | $t_on | $(pct "$t_on" "$t_off") | $tm_off | $tm_on | $(pct "$tm_on" "$tm_off") |"
for k in P C; do
    declare -n X=$k
    name=produce; [ $k = C ] && name=consume
    b_off=$(fast "${X[off]}"); b_on=$(fast "${X[on]}"); m_off=$(med "${X[off]}"); m_on=$(med "${X[on]}")
    echo "| kafka-proxy $name, $N x $SIZE B (MB/s) | $(rate "$b_off") | $(rate "$b_on") | $(pct "$b_off" "$b_on") | $(rate "$m_off") | $(rate "$m_on") | $(pct "$m_off" "$m_on") |"
done
rb_off=$(fast "$R_off"); rb_on=$(fast "$R_on"); rm_off=$(med "$R_off"); rm_on=$(med "$R_on")
echo "| kafka-proxy ApiVersions round trip p50 (µs; ratio = requests/s on / off) | $rb_off | $rb_on | $(pct "$rb_off" "$rb_on") | $rm_off | $rm_on | $(pct "$rm_off" "$rm_on") |"
echo
echo "CPU of the bore processes (user + system, /proc/PID/stat), less at the mercy of a busy machine than wall-clock figures:"
echo
echo "| path | off | on | on / off |"
echo "|---|---|---|---|"
echo "| tunnel: server + local CPU seconds per Gbit carried | $(python3 -c "print('%.4f' % $tcpu_off)") | $(python3 -c "print('%.4f' % $tcpu_on)") | $(pct "$tcpu_on" "$tcpu_off") |"
echo "| kafka-proxy: CPU seconds for all $ROUNDS rounds of produce + consume | $kcpu_off | $kcpu_on | $(pct "$kcpu_on" "$kcpu_off") |"
echo
echo "(all runs: tunnel Gbit/s off: $off; on: $on; produce s off: ${P[off]}; on: ${P[on]}; consume s off: ${C[off]}; on: ${C[on]}; round trip µs off: $R_off; on: $R_on)"
