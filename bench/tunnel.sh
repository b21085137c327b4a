#!/usr/bin/env bash
# bench/tunnel.sh - the tunnel benchmark (issue 2). Everything on 127.0.0.1,
# side by side in one run:
#   throughput  iperf3, 1 and 4 streams: direct, through two chained socat
#               relays, through bore server + bore local
#   memory      server and client RSS before/after 1,000 idle tunnelled conns
#   latency     connect-to-first-byte and 1-byte request round trip, p50/p99,
#               direct vs tunnel
# Usage: bench/tunnel.sh [SECONDS_PER_IPERF_RUN]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
T=${1:-5}
scripts/setup >/dev/null
make -s
gcc -O2 -Wall -o build/latency bench/latency.c -lpthread
ulimit -n "$(ulimit -Hn)"

BORE=build/bore
ADDR=127.0.0.1
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/$ADDR/$1) 2>/dev/null && return 0; sleep 0.05; done; return 1; }
rss_kb() { awk '/^VmRSS/ {print $2}' /proc/$1/status; }

iperf3 -s -B $ADDR -p 5201 >/dev/null 2>&1 & pids+=($!)
build/latency serve 5301 & pids+=($!)
socat TCP-LISTEN:5402,bind=$ADDR,fork,reuseaddr TCP:$ADDR:5201 & pids+=($!)
socat TCP-LISTEN:5401,bind=$ADDR,fork,reuseaddr TCP:$ADDR:5402 & pids+=($!)
BORE_LOG=${SERVER_LOG:-warn} $BORE server --bind-addr $ADDR --min-port 45000 --max-port 45999 & SERVER=$!; pids+=($SERVER)
wait_port 7835; wait_port 5201; wait_port 5301; wait_port 5401
BORE_LOG=warn $BORE local 5201 --to $ADDR --port 45201 -l $ADDR & pids+=($!)
BORE_LOG=warn $BORE local 5301 --to $ADDR --port 45301 -l $ADDR & CLIENT=$!; pids+=($CLIENT)
wait_port 45201; wait_port 45301

gbps() { iperf3 -c $ADDR -p "$1" -t "$T" -P "$2" -J | python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))'; }

echo "## Throughput (iperf3, ${T}s per run, Gbit/s)"
echo
echo "| streams | direct | socat chain | bore | bore / socat | bore / direct |"
echo "|---|---|---|---|---|---|"
for P in 1 4; do
    d=$(gbps 5201 $P); s=$(gbps 5401 $P); b=$(gbps 45201 $P)
    echo "| $P | $d | $s | $b | $(python3 -c "print('%.2fx' % ($b/$s))") | $(python3 -c "print('%.0f%%' % (100*$b/$d))") |"
done

echo
echo "## Latency (µs, p50 / p99)"
echo
echo "| probe | direct | bore | added p50 |"
echo "|---|---|---|---|"
read -r dc50 dc99 < <(build/latency connect $ADDR 5301 2000)
read -r bc50 bc99 < <(build/latency connect $ADDR 45301 2000)
echo "| connect to first byte (2,000 conns) | $dc50 / $dc99 | $bc50 / $bc99 | $(python3 -c "print('%.1f' % ($bc50-$dc50))") |"
read -r dr50 dr99 < <(build/latency rtt $ADDR 5301 20000)
read -r br50 br99 < <(build/latency rtt $ADDR 45301 20000)
echo "| 1-byte round trip (20,000) | $dr50 / $dr99 | $br50 / $br99 | $(python3 -c "print('%.1f' % ($br50-$dr50))") |"

echo
echo "## Memory with 1,000 idle tunnelled connections"
echo
s0=$(rss_kb $SERVER); c0=$(rss_kb $CLIENT)
coproc IDLE { python3 bench/idle.py $ADDR 45301 1000; }
read -r ready <&"${IDLE[0]}"
s1=$(rss_kb $SERVER); c1=$(rss_kb $CLIENT)
exec {IDLE[1]}>&-
wait $IDLE_PID 2>/dev/null || true
echo "| process | RSS before (KiB) | RSS with 1,000 idle (KiB) | growth per connection |"
echo "|---|---|---|---|"
echo "| bore server | $s0 | $s1 | $(python3 -c "print('%.2f KiB' % (($s1-$s0)/1000))") |"
echo "| bore local | $c0 | $c1 | $(python3 -c "print('%.2f KiB' % (($c1-$c0)/1000))") |"
