#!/usr/bin/env bash
# bench/kafka-real.sh [N] [SIZE] [ROUNDS] - Kafka's perf tools against real
# Apache Kafka 4.4.0: direct, plain tunnel and kafka-proxy side by side
# (see bench/kafka_real.py).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup >/dev/null
scripts/setup-java >/dev/null
exec /usr/bin/python3 bench/kafka_real.py "$@"
