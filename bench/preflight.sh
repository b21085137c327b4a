#!/usr/bin/env bash
# bench/preflight.sh [RUNS] - the cost of kafka-proxy's pre-flight (see
# bench/preflight.py), in a network namespace of its own (the real cluster
# takes ports 19090+). BASE_BORE=path/to/an/older/bore adds the start-up
# time of a build without the pre-flight, side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup >/dev/null
scripts/setup-java >/dev/null
make -s build/bore
ns=borepf$$
ip netns add "$ns"
trap 'ip netns del "$ns"' EXIT
ip -n "$ns" link set lo up
ip netns exec "$ns" env ${BASE_BORE:+BASE_BORE="$BASE_BORE"} /usr/bin/python3 bench/preflight.py "$@"
