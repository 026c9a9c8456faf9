#!/bin/sh
# Sealing benchmarks side by side in one run: carrel's segment Writer (age +
# SHA-256 + bufio + fsync and an index row per 16 MiB segment), Debian's
# `age -r` CLI on the same bytes (a process per 16 MiB, no fsync), and the
# age library alone (the ceiling). Prints every run, then medians.
#
#   bench/seal/run.sh                      # on the disk under $TMPDIR (default /tmp)
#   TMPDIR=/dev/shm bench/seal/run.sh      # on tmpfs: CPU cost without the disk
#   N=9 BENCH='Writer/jsonl' bench/seal/run.sh
set -eu
N=${N:-5}
BENCH=${BENCH:-Writer|AgeCLI|AgeLibrary}
cd "$(dirname "$0")/../.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT INT TERM
CARREL_TEST_PRIVILEGED=1 go test -run '^$' -bench "$BENCH" -benchmem -count "$N" ./internal/seal/ | tee "$out"
echo
echo "medians of $N runs:"
printf '%-44s %10s %12s\n' benchmark MB/s ns/op
grep '^Benchmark' "$out" | awk '{
	mbs = ""; for (i = 1; i <= NF; i++) if ($i == "MB/s") mbs = $(i-1)
	print $1, mbs, $3
}' | sort -k1,1 -k2,2n | awk '
	function flush() { if (n) printf "%-44s %10s %12s\n", name, v[int((n+1)/2)], ns[int((n+1)/2)] }
	$1 != name { flush(); name = $1; n = 0 }
	{ n++; v[n] = $2; ns[n] = $3 }
	END { flush() }'
