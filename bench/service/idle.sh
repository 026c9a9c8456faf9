#!/bin/sh
# Measures the service at rest in bookings-only mode: resident memory and CPU
# used over a quiet minute, N runs. Usage: bench/service/idle.sh [N] [SECONDS]
set -eu
N=${1:-3}
SECS=${2:-60}
cd "$(dirname "$0")/../.."
make -s build
hz=$(getconf CLK_TCK)
for i in $(seq "$N"); do
	dir=$(mktemp -d)
	build/carrel config init --data-dir "$dir/data" | sed 's/^client_group = .*/client_group = ""/' > "$dir/carrel.toml"
	build/carrel run --config "$dir/carrel.toml" 2>"$dir/log" &
	pid=$!
	sleep 3
	t0=$(awk '{print $14+$15}' /proc/$pid/stat)
	sleep "$SECS"
	t1=$(awk '{print $14+$15}' /proc/$pid/stat)
	rss=$(awk '/^VmRSS/ {print $2}' /proc/$pid/status)
	hwm=$(awk '/^VmHWM/ {print $2}' /proc/$pid/status)
	kill -TERM $pid; wait $pid || true
	echo "run $i: rss ${rss} KiB, peak ${hwm} KiB, cpu $(echo "scale=3; ($t1-$t0)*100/$hz/$SECS" | bc) % over ${SECS}s"
	rm -rf "$dir"
done
