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
# Each figure is the best of ROUNDS; the ratio is on / off.
# Usage: bench/metrics.sh [SECONDS_PER_IPERF_RUN] [N] [SIZE] [ROUNDS]  (defaults 5 100000 1000 5)
set -euo pipefail
cd "$(dirname "$0")/.."
T=${1:-5}
N=${2:-100000}
SIZE=${3:-1000}
ROUNDS=${4:-5}
scripts/setup >/dev/null
scripts/setup-kafka >/dev/null
make -s
export LD_LIBRARY_PATH=$PWD/.cache/librdkafka/src
BORE=$PWD/build/bore
A=127.0.0.1
work=$(mktemp -d)
pids=()
cleanup() { exec 3>&- 2>/dev/null || true; for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
wait_port() { for _ in $(seq 200); do (exec 9<>/dev/tcp/$A/$1) 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

# ---- tunnel ----
iperf3 -s -B $A -p 5201 >/dev/null 2>&1 & pids+=($!)
BORE_LOG=warn $BORE server --bind-addr $A --control-port 7835 --min-port 45000 --max-port 45099 & pids+=($!)
BORE_LOG=warn $BORE server --bind-addr $A --control-port 7836 --min-port 45100 --max-port 45199 --metrics 9101 & pids+=($!)
wait_port 7835; wait_port 7836; wait_port 5201
BORE_LOG=warn $BORE local 5201 -l $A --to $A:7835 --port 45001 & pids+=($!)
BORE_LOG=warn $BORE local 5201 -l $A --to $A:7836 --port 45101 --metrics 9102 & pids+=($!)
wait_port 45001; wait_port 45101

# The scraper: every second, /metrics and /status of every process with --metrics.
scrape() { while true; do for p in "$@"; do curl -s "http://$A:$p/metrics" >/dev/null; curl -s "http://$A:$p/status" >/dev/null; done; sleep 1; done; }
scrape 9101 9102 9103 & pids+=($!)

gbps() { iperf3 -c $A -p "$1" -t "$T" -J | python3 -c 'import json,sys; print("%.3f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))'; }
off=""; on=""
for r in $(seq "$ROUNDS"); do
    off+="$(gbps 45001) "; on+="$(gbps 45101) "
done
best() { python3 -c "import sys; print(max(float(x) for x in sys.argv[1].split()))" "$1"; }
t_off=$(best "$off"); t_on=$(best "$on")

# ---- kafka-proxy ----
python3 -c "
import sys
sys.stdout.buffer.write(('x' * ($SIZE - 1) + '\n').encode() * $N)" >"$work/msgs"
mkfifo "$work/cin"
.cache/bin/kafka_cluster --brokers 1 <"$work/cin" >"$work/cout" 2>/dev/null & pids+=($!)
exec 3>"$work/cin"
for _ in $(seq 100); do [ -s "$work/cout" ] && break; sleep 0.05; done
broker=$(python3 -c 'import json,sys; b=json.loads(open(sys.argv[1]).readline())["brokers"][0]; print("%s:%d" % (b["host"], b["port"]))' "$work/cout")
BORE_LOG=warn $BORE kafka-proxy -b "$broker" --to $A -p 45050 >"$work/off.out" 2>&1 & pids+=($!)
BORE_LOG=warn $BORE kafka-proxy -b "$broker" --to $A -p 45051 --metrics 9103 >"$work/on.out" 2>&1 & pids+=($!)
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
for r in $(seq "$ROUNDS"); do
    for m in off on; do
        bs=$A:45050; [ $m = on ] && bs=$A:45051
        cluster_cmd "topic bench-$m-$r 64"
        P[$m]+="$(produce "$bs" "bench-$m-$r") "
        C[$m]+="$(consume "$bs" "bench-$m-$r") "
        check "$bs" "bench-$m-$r"
    done
done
fast() { python3 -c "import sys; print(min(float(x) for x in sys.argv[1].split()))" "$1"; }
mb=$(python3 -c "print($N * $SIZE / 1e6)")
pct() { python3 -c "print('%.1f%%' % (100 * $1 / $2))"; }
rate() { python3 -c "print('%.0f' % ($mb / $1))"; }

echo "## --metrics on vs off (best of $ROUNDS, scraped every second)"
echo
echo "| path | off | on | on / off |"
echo "|---|---|---|---|"
echo "| tunnel, iperf3 1 stream ${T}s (Gbit/s) | $t_off | $t_on | $(pct "$t_on" "$t_off") |"
p_off=$(fast "${P[off]}"); p_on=$(fast "${P[on]}"); c_off=$(fast "${C[off]}"); c_on=$(fast "${C[on]}")
echo "| kafka-proxy produce, $N x $SIZE B (MB/s) | $(rate "$p_off") | $(rate "$p_on") | $(pct "$p_off" "$p_on") |"
echo "| kafka-proxy consume, $N x $SIZE B (MB/s) | $(rate "$c_off") | $(rate "$c_on") | $(pct "$c_off" "$c_on") |"
echo
echo "(all runs: tunnel off: $off; on: $on)"
