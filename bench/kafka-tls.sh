#!/usr/bin/env bash
# bench/kafka-tls.sh [N] [SIZE] [ROUNDS] [N_IDLE] - kafka-proxy with and
# without --tls side by side against real Apache Kafka 4.4.0 (see
# bench/kafka_tls.py).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup >/dev/null
scripts/setup-java >/dev/null
exec /usr/bin/python3 bench/kafka_tls.py "$@"
