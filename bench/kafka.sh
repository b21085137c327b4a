#!/usr/bin/env bash
# bench/kafka.sh - kafka-proxy throughput and request latency (issue 5),
# side by side in one run on 127.0.0.1, against one 1-broker cluster:
#   direct        kcat -> broker
#   kafka-proxy   kcat -> bore server -> bore kafka-proxy -> broker
#   plain tunnel  kcat -> bore server -> bore local -> broker (the broker's
#                 advertised address is pointed at the tunnel, so every
#                 connection takes it)
# Produce: kcat -P of N messages of SIZE bytes; consume: kcat -C of them.
# Latency: ApiVersions request round trips over one connection (p50/p99).
# Usage: bench/kafka.sh [N] [SIZE] [ROUNDS]   (defaults 200000 1000 5)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200000}
SIZE=${2:-1000}
ROUNDS=${3:-5}
scripts/setup >/dev/null
scripts/setup-kafka >/dev/null
make -s
export LD_LIBRARY_PATH=$PWD/.cache/librdkafka/src
BORE=$PWD/build/bore
work=$(mktemp -d)
pids=()
cleanup() { exec 3>&- 2>/dev/null || true; for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

python3 -c "
import sys
line = ('x' * ($SIZE - 1) + '\n').encode()
sys.stdout.buffer.write(line * $N)" >"$work/msgs"

mkfifo "$work/cin"
.cache/bin/kafka_cluster --brokers 1 <"$work/cin" >"$work/cout" 2>/dev/null & pids+=($!)
exec 3>"$work/cin"
for _ in $(seq 100); do [ -s "$work/cout" ] && break; sleep 0.05; done
broker=$(python3 -c 'import json,sys; b=json.loads(open(sys.argv[1]).readline())["brokers"][0]; print("%s:%d" % (b["host"], b["port"]))' "$work/cout")
bport=${broker##*:}

BORE_LOG=warn $BORE server --bind-addr 127.0.0.1 --min-port 21000 --max-port 21999 & pids+=($!)
for _ in $(seq 100); do (exec 9<>/dev/tcp/127.0.0.1/7835) 2>/dev/null && break; sleep 0.05; done
BORE_LOG=warn $BORE kafka-proxy -b "$broker" --to 127.0.0.1 -p 21092 >"$work/proxy.out" 2>&1 & pids+=($!)
BORE_LOG=warn $BORE local "$bport" --to 127.0.0.1 -l 127.0.0.1 -p 21093 2>/dev/null & pids+=($!)
for _ in $(seq 200); do grep -q '^bootstrap.servers=' "$work/proxy.out" 2>/dev/null && break; sleep 0.05; done

# A launcher command, waiting for its answer line.
cluster_cmd() {
    local n; n=$(wc -l <"$work/cout")
    echo "$1" >&3
    for _ in $(seq 1000); do [ "$(wc -l <"$work/cout")" -gt "$n" ] && return 0; sleep 0.02; done
    echo "launcher did not answer: $1" >&2; exit 1
}

# seconds for one kcat run
timed() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>&1; t1=$(date +%s.%N); python3 -c "print($t1 - $t0)"; }
# The mock keeps 5 MiB per partition: topics get 64 partitions so that all
# N messages stay readable.
# (sticky partitioning off: every partition gets its share, under the cap)
produce() { timed kcat -P -b "$1" -t "$2" -X linger.ms=5 -X batch.num.messages=10000 \
    -X queue.buffering.max.messages=1000000 -X acks=1 -X sticky.partitioning.linger.ms=0 \
    <"$work/msgs"; }
consume() { timed kcat -C -b "$1" -t "$2" -o beginning -c "$N" -e -q; }
# Fails loudly if a run did not move all N messages.
check() { local n; n=$(kcat -C -b "$1" -t "$2" -o beginning -e -q | wc -l); [ "$n" -eq "$N" ] || { echo "only $n of $N messages in $2" >&2; exit 1; }; }
rtt() { python3 - "$1" <<'PY'
import socket, struct, sys, time
host, port = sys.argv[1].split(":")
s = socket.create_connection((host, int(port)))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
req = struct.pack(">hhih", 18, 0, 0, 4) + b"lat"
lat = []
for i in range(3000):
    r = struct.pack(">hhih", 18, 0, i, 4) + b"lat!"
    t0 = time.perf_counter()
    s.sendall(struct.pack(">i", len(r)) + r)
    size = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))[0]
    s.recv(size, socket.MSG_WAITALL)
    lat.append((time.perf_counter() - t0) * 1e6)
lat.sort()
print(f"{lat[len(lat)//2]:.0f} {lat[int(len(lat)*0.99)]:.0f}")
PY
}

declare -A P C
one_round() { # name bootstrap round
    local name=$1 bs=$2 r=$3 t
    cluster_cmd "topic bench-$name-$r 64"
    t=$(produce "$bs" "bench-$name-$r"); P[$name]+="$t "
    t=$(consume "$bs" "bench-$name-$r"); C[$name]+="$t "
    check "$bs" "bench-$name-$r"
}
# The paths take turns, round after round, so that drift in the machine
# (or the mock) affects them alike. For the plain tunnel the broker's
# advertised address points at the tunnel; for the others it is set back
# (the proxy follows the move both ways).
for r in $(seq "$ROUNDS"); do
    cluster_cmd "host 1 127.0.0.1 $bport"
    one_round direct "$broker" "$r"
    one_round proxy "127.0.0.1:21092" "$r"
    cluster_cmd "host 1 127.0.0.1 21093"
    one_round tunnel "127.0.0.1:21093" "$r"
done
read -r lat_tunnel_50 lat_tunnel_99 < <(rtt "127.0.0.1:21093")
cluster_cmd "host 1 127.0.0.1 $bport"
read -r lat_direct_50 lat_direct_99 < <(rtt "$broker")
read -r lat_proxy_50 lat_proxy_99 < <(rtt "127.0.0.1:21092")

mb=$(python3 -c "print($N * $SIZE / 1e6)")
best() { python3 -c "import sys; v=[float(x) for x in sys.argv[1].split()]; print(min(v))" "$1"; }
rate() { python3 -c "print('%.0f' % ($mb / $1))"; }
echo "## kafka-proxy vs plain tunnel vs direct ($N messages of $SIZE bytes, best of $ROUNDS, MB/s)"
echo
echo "| path | produce MB/s | consume MB/s | ApiVersions round trip p50 / p99 (µs) |"
echo "|---|---|---|---|"
for p in direct tunnel proxy; do
    lat50=lat_${p}_50; lat99=lat_${p}_99
    echo "| $p | $(rate "$(best "${P[$p]}")") | $(rate "$(best "${C[$p]}")") | ${!lat50} / ${!lat99} |"
done
echo
python3 -c "
p=$(best "${P[proxy]}"); t=$(best "${P[tunnel]}"); cp=$(best "${C[proxy]}"); ct=$(best "${C[tunnel]}")
print('kafka-proxy / plain tunnel: produce %.0f%%, consume %.0f%%' % (100*t/p, 100*ct/cp))"
