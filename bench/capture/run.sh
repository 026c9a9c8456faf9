#!/bin/sh
# Capture benchmark: carrel vs tcpdump -w vs tshark -T fields, side by
# side, the tool pinned to CPU 0 and tcpreplay to CPU 1 across a veth pair
# in two network namespaces (created and removed here; traffic stays in
# them). Needs root, iproute2, tcpreplay, tcpdump, tshark, taskset.
# Prints Markdown for BENCHMARKS.md. Takes about 15 minutes.
#
#   bench/capture/run.sh [-reps N]
set -eu
cd "$(dirname "$0")/../.."
: "${GO:=go}"
mkdir -p build
CGO_ENABLED=1 $GO build -o build/carrel ./cmd/carrel
CGO_ENABLED=1 $GO build -o build/capture-bench ./bench/capture
exec build/capture-bench run -carrel build/carrel "$@"
