#!/usr/bin/env bash
# bench/tunnel.sh - the tunnel benchmark (issues 2 and 12). Everything on
# loopback, side by side in one run, five paths:
#   direct       iperf3 / the latency probe without a relay
#   socat        two chained socat relays (the shape of server + client relay)
#   upstream     upstream bore-cli 0.6.0 server + local (scripts/setup-upstream)
#   bore         our server + local, splice(2) relay (the default)
#   bore-rw      our server + local with BORE_SPLICE=0 (read/write relay)
# Figures:
#   throughput   iperf3 -n BYTES (default 4G), 1 and 4 streams, Gbit/s
#   CPU per GB   server and client utime+stime (/proc/PID/stat) over those
#                runs, per GB received by iperf3
#   latency      connect-to-first-byte and 1-byte round trip, p50/p99
#   idle         RSS and descriptors per tunnelled connection (1,000 idle)
# Usage: bench/tunnel.sh [BYTES_PER_IPERF_RUN]   (default 4G)
# BORE_SPLICE_PIPE=<bytes> sets the pipe size of the splice path (measuring).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-4G}
scripts/setup >/dev/null
scripts/setup-upstream >/dev/null
make -s
gcc -O2 -Wall -o build/latency bench/latency.c -lpthread
ulimit -n "$(ulimit -Hn)"

BORE=build/bore
UP=.cache/cargo/bin/bore
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/$1/$2) 2>/dev/null && return 0; sleep 0.05; done; echo "no listener at $1:$2" >&2; return 1; }
rss_kb() { awk '/^VmRSS/ {print $2}' /proc/$1/status; }
nfds() { ls /proc/$1/fd | wc -l; }
cpu_ticks() { awk '{print $14 + $15}' /proc/$1/stat; }
TICK=$(getconf CLK_TCK)

# Services on 127.0.0.1: iperf3 (5201), the latency probe (5301).
iperf3 -s -B 127.0.0.1 -p 5201 >/dev/null 2>&1 & pids+=($!)
build/latency serve 5301 & pids+=($!)
socat TCP-LISTEN:5402,bind=127.0.0.1,fork,reuseaddr TCP:127.0.0.1:5201 & pids+=($!)
socat TCP-LISTEN:5401,bind=127.0.0.1,fork,reuseaddr TCP:127.0.0.1:5402 & pids+=($!)
socat TCP-LISTEN:5302,bind=127.0.0.1,fork,reuseaddr TCP:127.0.0.1:5301 & pids+=($!)
socat TCP-LISTEN:5303,bind=127.0.0.1,fork,reuseaddr TCP:127.0.0.1:5302 & pids+=($!)
wait_port 127.0.0.1 5201; wait_port 127.0.0.1 5301; wait_port 127.0.0.1 5401; wait_port 127.0.0.1 5303

# One tunnel server per implementation, each on its own address (the control
# port is 7835 for all); two clients each: the iperf3 one and the probe one.
declare -A ADDR SERVER CLIENT PROBE_CLIENT
ADDR[upstream]=127.0.0.2; ADDR[bore]=127.0.0.3; ADDR[bore-rw]=127.0.0.4
start_tunnel() { # name env...
    local name=$1; shift
    local a=${ADDR[$name]}
    if [ "$name" = upstream ]; then
        RUST_LOG=warn $UP server --bind-addr "$a" --min-port 45000 --max-port 45999 >/dev/null & SERVER[$name]=$!
    else
        env "$@" BORE_LOG=warn $BORE server --bind-addr "$a" --min-port 45000 --max-port 45999 & SERVER[$name]=$!
    fi
    pids+=(${SERVER[$name]})
    wait_port "$a" 7835
    if [ "$name" = upstream ]; then
        RUST_LOG=warn $UP local 5201 --to "$a" --port 45201 -l 127.0.0.1 >/dev/null & CLIENT[$name]=$!
        pids+=($!)
        RUST_LOG=warn $UP local 5301 --to "$a" --port 45301 -l 127.0.0.1 >/dev/null & PROBE_CLIENT[$name]=$!
        pids+=($!)
    else
        env "$@" BORE_LOG=warn $BORE local 5201 --to "$a" --port 45201 -l 127.0.0.1 & CLIENT[$name]=$!
        pids+=($!)
        env "$@" BORE_LOG=warn $BORE local 5301 --to "$a" --port 45301 -l 127.0.0.1 & PROBE_CLIENT[$name]=$!
        pids+=($!)
    fi
    wait_port "$a" 45201; wait_port "$a" 45301
}
start_tunnel upstream
start_tunnel bore BORE_SPLICE=1
start_tunnel bore-rw BORE_SPLICE=0
NAMES="upstream bore bore-rw"

# iperf3 run: prints "Gbit/s GB"
iperf() { # addr port streams
    iperf3 -c "$1" -p "$2" -n "$N" -P "$3" -J | python3 -c '
import json, sys
e = json.load(sys.stdin)["end"]["sum_received"]
print("%.2f %.4f" % (e["bits_per_second"] / 1e9, e["bytes"] / 1e9))'
}
ratio() { python3 -c "print('%.2fx' % ($1 / $2))"; }

echo "## Throughput (iperf3 -n $N, Gbit/s) and CPU seconds per GB relayed"
echo
echo "| streams | path | Gbit/s | server CPU s/GB | client CPU s/GB |"
echo "|---|---|---|---|---|"
declare -A GBPS SCPU CCPU
for P in 1 4; do
    read -r g _ < <(iperf 127.0.0.1 5201 $P); echo "| $P | direct | $g | | |"
    read -r g _ < <(iperf 127.0.0.1 5401 $P); echo "| $P | socat chain | $g | | |"
    for name in $NAMES; do
        s=${SERVER[$name]}; c=${CLIENT[$name]}
        s0=$(cpu_ticks $s); c0=$(cpu_ticks $c)
        read -r g gb < <(iperf "${ADDR[$name]}" 45201 $P)
        s1=$(cpu_ticks $s); c1=$(cpu_ticks $c)
        sc=$(python3 -c "print('%.3f' % (($s1 - $s0) / $TICK / $gb))")
        cc=$(python3 -c "print('%.3f' % (($c1 - $c0) / $TICK / $gb))")
        GBPS[$name,$P]=$g; SCPU[$name,$P]=$sc; CCPU[$name,$P]=$cc
        echo "| $P | $name | $g | $sc | $cc |"
    done
done
echo
echo "| ratio to upstream | 1-stream Gbit/s | 4-stream Gbit/s | server CPU/GB (1 stream) | server CPU/GB (4 streams) | client CPU/GB (1 stream) |"
echo "|---|---|---|---|---|---|"
for name in bore bore-rw; do
    echo "| $name | $(ratio ${GBPS[$name,1]} ${GBPS[upstream,1]}) | $(ratio ${GBPS[$name,4]} ${GBPS[upstream,4]}) | $(ratio ${SCPU[$name,1]} ${SCPU[upstream,1]}) | $(ratio ${SCPU[$name,4]} ${SCPU[upstream,4]}) | $(ratio ${CCPU[$name,1]} ${CCPU[upstream,1]}) |"
done

echo
echo "## Latency (µs, p50 / p99; added p50 is against direct)"
echo
echo "| path | connect to first byte (2,000 conns) | added p50 | 1-byte round trip (20,000) | added p50 |"
echo "|---|---|---|---|---|"
read -r dc50 dc99 < <(build/latency connect 127.0.0.1 5301 2000)
read -r dr50 dr99 < <(build/latency rtt 127.0.0.1 5301 20000)
echo "| direct | $dc50 / $dc99 | | $dr50 / $dr99 | |"
probe() { # label addr port
    read -r c50 c99 < <(build/latency connect "$2" "$3" 2000)
    read -r r50 r99 < <(build/latency rtt "$2" "$3" 20000)
    echo "| $1 | $c50 / $c99 | $(python3 -c "print('%.1f' % ($c50 - $dc50))") | $r50 / $r99 | $(python3 -c "print('%.1f' % ($r50 - $dr50))") |"
}
probe "socat chain" 127.0.0.1 5303
for name in $NAMES; do probe "$name" "${ADDR[$name]}" 45301; done

echo
echo "## 1,000 idle tunnelled connections"
echo
echo "| path | process | RSS before (KiB) | RSS with 1,000 idle (KiB) | RSS per conn | fds per conn |"
echo "|---|---|---|---|---|---|"
for name in $NAMES; do
    s=${SERVER[$name]}; c=${PROBE_CLIENT[$name]}
    s0=$(rss_kb $s); c0=$(rss_kb $c); sf0=$(nfds $s); cf0=$(nfds $c)
    coproc IDLE { python3 bench/idle.py "${ADDR[$name]}" 45301 1000; }
    read -r _ <&"${IDLE[0]}"
    s1=$(rss_kb $s); c1=$(rss_kb $c); sf1=$(nfds $s); cf1=$(nfds $c)
    exec {IDLE[1]}>&-
    wait "$IDLE_PID" 2>/dev/null || true
    echo "| $name | server | $s0 | $s1 | $(python3 -c "print('%.2f KiB' % (($s1 - $s0) / 1000))") | $(python3 -c "print('%.2f' % (($sf1 - $sf0) / 1000))") |"
    echo "| $name | local | $c0 | $c1 | $(python3 -c "print('%.2f KiB' % (($c1 - $c0) / 1000))") | $(python3 -c "print('%.2f' % (($cf1 - $cf0) / 1000))") |"
done
