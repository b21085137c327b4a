#!/usr/bin/env bash
# bench/soak.sh - a bounded soak run (issue 13): everything at once on
# 127.0.0.1 for DURATION seconds (default 300, at most 600), while RSS and
# open descriptors of the long-lived bore processes are sampled every 10 s.
#
#   tunnels      bore server + bore local in front of an echo service; a
#                driver keeps ~50 visitors busy (random sizes up to 1 MiB,
#                echoed back and checked), and one visitor in five vanishes
#                mid-transfer (RST, or a close without reading)
#   owners       every 20 s a short-lived `bore local` is started and the one
#                before it is killed with SIGKILL (a tunnel owner vanishing
#                with visitors in flight)
#   kafka        bore kafka-proxy in front of a 3-broker mock cluster: kcat
#                produces batches of 20,000 messages and consumes them back
#                through the proxy, one consumer in four killed mid-run
#
# Prints a markdown table (one row per sample) and a verdict: after a 30 s
# warm-up, memory and descriptors are "flat" if the median of the last third
# of the samples is within 10 % (fds: within 16) of the median of the first
# third - single samples swing with the connections in flight at the time.
# Usage: bench/soak.sh [DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-300}
[ "$DURATION" -le 600 ] || { echo "DURATION is capped at 600 s" >&2; exit 2; }
scripts/setup >/dev/null
scripts/setup-kafka >/dev/null
make -s
ulimit -n "$(ulimit -Hn)"
export LD_LIBRARY_PATH=$PWD/.cache/librdkafka/src
BORE=$PWD/build/bore
ADDR=127.0.0.1
work=$(mktemp -d)
pids=()
cleanup() {
    exec 3>&- 2>/dev/null || true
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
wait_port() { for _ in $(seq 200); do (exec 9<>/dev/tcp/$ADDR/$1) 2>/dev/null && return 0; sleep 0.05; done; return 1; }

# The mock cluster (3 brokers), driven through its command pipe.
mkfifo "$work/cin"
.cache/bin/kafka_cluster --brokers 3 --topic soak:6 <"$work/cin" >"$work/cout" 2>/dev/null & pids+=($!)
exec 3>"$work/cin"
for _ in $(seq 100); do [ -s "$work/cout" ] && break; sleep 0.05; done
broker=$(python3 -c 'import json,sys; b=json.loads(open(sys.argv[1]).readline())["brokers"][0]; print("%s:%d" % (b["host"], b["port"]))' "$work/cout")

BORE_LOG=warn $BORE server --bind-addr $ADDR --min-port 46000 --max-port 46999 2>"$work/server.log" & SERVER=$!; pids+=($SERVER)
wait_port 7835
python3 bench/soak_driver.py echo 46500 & pids+=($!)
wait_port 46500
BORE_LOG=warn $BORE local 46500 --to $ADDR --port 46001 -l $ADDR 2>"$work/local.log" & LOCAL=$!; pids+=($LOCAL)
BORE_LOG=warn $BORE kafka-proxy -b "$broker" --to $ADDR -p 46092 >"$work/proxy.out" 2>"$work/proxy.log" & PROXY=$!; pids+=($PROXY)
wait_port 46001
for _ in $(seq 200); do grep -q '^bootstrap.servers=' "$work/proxy.out" 2>/dev/null && break; sleep 0.05; done
grep -q '^bootstrap.servers=' "$work/proxy.out" || { echo "kafka-proxy did not start" >&2; cat "$work/proxy.log" >&2; exit 1; }

end=$((SECONDS + DURATION))
python3 bench/soak_driver.py visitors $ADDR 46001 "$DURATION" >"$work/visitors.out" & VIS=$!; pids+=($VIS)

owners() {
    local prev="" n=0
    while [ $SECONDS -lt $end ]; do
        BORE_LOG=error $BORE local 46500 --to $ADDR -l $ADDR 2>/dev/null & local cur=$!
        [ -n "$prev" ] && { kill -9 "$prev"; wait "$prev" || true; } 2>/dev/null
        prev=$cur; n=$((n + 1))
        sleep 20
    done
    [ -n "$prev" ] && { kill -9 "$prev"; wait "$prev" || true; } 2>/dev/null
    echo "$n" >"$work/owners.out"
}
owners & pids+=($!)

kafka() {
    local round=0 ok=0 killed=0
    python3 -c "import sys; sys.stdout.write(''.join('k%d:%s\n' % (i, 'v' * 200) for i in range(20000)))" >"$work/msgs"
    while [ $SECONDS -lt $end ]; do
        round=$((round + 1))
        timeout 60 kcat -P -b $ADDR:46092 -t soak -K : -X acks=all -X linger.ms=5 <"$work/msgs" >/dev/null 2>&1 || true
        if [ $((round % 4)) -eq 0 ]; then
            # a consumer that vanishes mid-fetch: no -e, killed after 1 s
            timeout --foreground -s KILL 1 kcat -C -b $ADDR:46092 -t soak -o beginning -q >/dev/null 2>&1 || killed=$((killed + 1))
        else
            n=$(timeout 60 kcat -C -b $ADDR:46092 -t soak -o -20000 -e -q 2>/dev/null | wc -l || true)
            [ "$n" -ge 20000 ] && ok=$((ok + 1))
        fi
    done
    echo "$round $ok $killed" >"$work/kafka.out"
}
kafka & pids+=($!)

sample() { # pid -> "rss_kib fds"
    echo "$(awk '/^VmRSS/ {print $2}' /proc/$1/status) $(ls /proc/$1/fd | wc -l)"
}
echo "## Soak: $DURATION s (bench/soak.sh $DURATION)"
echo
echo "| t (s) | server RSS KiB | server fds | kafka-proxy RSS KiB | kafka-proxy fds | bore local RSS KiB | bore local fds |"
echo "|---|---|---|---|---|---|---|"
: >"$work/samples"
t0=$SECONDS
while :; do
    t=$((SECONDS - t0))
    read -r sr sf < <(sample $SERVER); read -r pr pf < <(sample $PROXY); read -r lr lf < <(sample $LOCAL)
    echo "| $t | $sr | $sf | $pr | $pf | $lr | $lf |"
    echo "$t $sr $sf $pr $pf $lr $lf" >>"$work/samples"
    [ $SECONDS -ge $end ] && break
    sleep 10
done
wait $VIS || { echo "visitor driver failed" >&2; exit 1; }
for _ in $(seq 120); do [ -s "$work/kafka.out" ] && [ -s "$work/owners.out" ] && break; sleep 1; done
echo
read -r rounds ok killed <"$work/kafka.out"
echo "Traffic: $(cat "$work/visitors.out"); $(cat "$work/owners.out") tunnel owners started and killed;" \
     "$rounds Kafka rounds of 20,000 messages ($ok consumed back in full, $killed consumers killed mid-run)."
python3 - "$work/samples" <<'PY'
import statistics
import sys
rows = [list(map(int, l.split())) for l in open(sys.argv[1]) if l.strip()]
rows = [r for r in rows if r[0] >= 30] or rows
first, last = rows[: max(1, len(rows) // 3)], rows[len(rows) * 2 // 3:]
verdict = []
for i, name in enumerate(["server", "kafka-proxy", "bore local"]):
    rss, fds = 1 + 2 * i, 2 + 2 * i
    m = lambda rs, k: statistics.median(r[k] for r in rs)
    flat = m(last, rss) <= m(first, rss) * 1.10 and m(last, fds) <= m(first, fds) + 16
    verdict.append(f"{name}: RSS median {m(first, rss):.0f} -> {m(last, rss):.0f} KiB "
                   f"(max {max(r[rss] for r in rows)}), fds median {m(first, fds):.0f} -> "
                   f"{m(last, fds):.0f} (max {max(r[fds] for r in rows)}): "
                   f"{'flat' if flat else 'GROWING'}")
print("First vs last third of the run after the warm-up: " + "; ".join(verdict) + ".")
PY
