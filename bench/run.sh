#!/bin/sh
# bench/run.sh [cold|warm|burst|rss|all] [flags]: run Stoke's core benchmarks
# (see docs/BENCHMARKS.md). Needs Go, wrk (for warm) and root (cgroups).
set -e
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
exec go run ./bench/cmd/stokebench "$@"
