#!/usr/bin/env bash
# bench/codec.sh - the Kafka codec benchmark (issue 4): see bench/codec.c.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s
cc -std=c11 -D_GNU_SOURCE -O2 -Isrc/kafka -Itests/unit -o build/bench_codec bench/codec.c \
    src/kafka/kscan.c src/kafka/krewrite.c src/kafka/kframe.c
build/bench_codec
