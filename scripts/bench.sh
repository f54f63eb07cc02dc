#!/usr/bin/env bash
# `make bench`: the speed and memory figures of nfyio storage, side by side
# with a peer (versitygw, posix backend) and the machine's limits (a trivial
# in-memory HTTP server over loopback, the raw disk). Writes bench/RESULTS.md
# and prints the same tables. About 7 minutes on a 2-core machine.
#
# Environment:
#   BENCH_OUT        markdown file to write (default bench/RESULTS.md)
#   BENCH_DURATION   measured time of each end-to-end load (default 5s)
#   BENCH_WARMUP     warm-up before each load (default 1s)
#   BENCH_BENCHTIME  -benchtime of the Go benchmarks (default 0.5s)
#   BENCH_LOADS      regexp: run only the matching end-to-end loads
#   NFYIO_VERSITYGW_BIN  a versitygw binary to use instead of building one
#   TMPDIR           where data goes (its disk is the one measured)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$(go env GOPATH)/bin:$PATH"
start=$SECONDS

out=${BENCH_OUT:-bench/RESULTS.md}
work=$(mktemp -d "${TMPDIR:-/tmp}/nfyio-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "=== bench: load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "=== bench: building"
bin=$work/bin
go build -o "$bin/nfyio" ./cmd/nfyio
go build -o "$bin/memserver" ./bench/memserver
go build -o "$bin/load" ./bench/load

# The peer, pinned; built once into the cache (the module proxy serves it).
VGW_VERSION=v1.8.0
vgw=${NFYIO_VERSITYGW_BIN:-$HOME/.cache/nfyio/versitygw-$VGW_VERSION/versitygw}
if [ ! -x "$vgw" ]; then
	echo "=== bench: installing versitygw $VGW_VERSION into $(dirname "$vgw")"
	mkdir -p "$(dirname "$vgw")"
	GOBIN=$(dirname "$vgw") go install "github.com/versity/versitygw/cmd/versitygw@$VGW_VERSION"
fi

echo "=== bench: Go benchmarks"
# -p 1: one package at a time, so benchmarks do not compete for the cores.
go test -p 1 -run '^$' -benchtime "${BENCH_BENCHTIME:-0.5s}" \
	-bench '^Benchmark(VerifyHeaderV4|VerifyPresignedV4|ChunkedDecodeSigned|ChunkedDecodeUnsignedTrailer|SigningKeyDerivation|PostPolicy|BodyHasher|Streams|PutObject|GetObject|List|Write|Read|PresignGet|SecretCached)$' \
	./internal/sigv4/ ./internal/s3api/ ./internal/multimd5/ ./internal/iam/ ./internal/storage/boltmeta/ ./internal/storage/fsblob/ ./presign/ \
	| tee "$work/gobench.txt"

echo "=== bench: raw disk"
"$bin/load" disk -dir "${TMPDIR:-/tmp}" -out "$work/disk.json"

echo "=== bench: end to end"
"$bin/load" e2e -nfyio "$bin/nfyio" -versitygw "$vgw" -memserver "$bin/memserver" \
	-work "$work/e2e" -out "$work/e2e.json" \
	-duration "${BENCH_DURATION:-5s}" -warmup "${BENCH_WARMUP:-1s}" -loads "${BENCH_LOADS:-}"

echo "=== bench: raw disk again (sequential write only)"
"$bin/load" disk -dir "${TMPDIR:-/tmp}" -out "$work/disk2.json" -loop 0

echo "=== bench: report ($out)"
"$bin/load" report -gobench "$work/gobench.txt" -e2e "$work/e2e.json" -disk "$work/disk.json,$work/disk2.json" \
	-wall "$((SECONDS - start))s" -out "$out"
