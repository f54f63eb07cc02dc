#!/usr/bin/env bash
# Runs every test of the project; `make test` calls it and so does CI.
# Each stage prints its own result; the script fails if any stage failed and
# ends with a "N passed, N failed" line counting the stages.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$(go env GOPATH)/bin:$PATH"

# On CI a missing database, SeaweedFS binary, proxy or browser is a failure,
# not a skipped test.
if [ "${CI:-}" = "true" ]; then
	export NFYIO_REQUIRE_PG=1 NFYIO_REQUIRE_WEED=1 NFYIO_REQUIRE_NGINX=1 NFYIO_REQUIRE_BROWSER=1 NFYIO_REQUIRE_E2E=1
fi
export NFYIO_WEED_BIN="${NFYIO_WEED_BIN:-$HOME/.cache/nfyio/weed}"

passed=0
failed=0
failures=()
stage() {
	local name=$1
	shift
	echo "=== stage: $name"
	local start=$SECONDS
	if "$@"; then
		passed=$((passed + 1))
		echo "=== stage $name: ok ($((SECONDS - start))s)"
	else
		failed=$((failed + 1))
		failures+=("$name")
		echo "=== stage $name: FAILED ($((SECONDS - start))s)"
	fi
}

lint() {
	go vet ./... || return 1
	local out
	out=$(gofmt -l $(git ls-files '*.go'))
	if [ -n "$out" ]; then
		echo "gofmt needed: $out"
		return 1
	fi
	if command -v staticcheck >/dev/null 2>&1; then
		staticcheck ./...
	else
		echo "staticcheck not installed (scripts/install-deps.sh installs it)"
		[ "${CI:-}" != "true" ]
	fi
}

stage lint lint
stage go-test go test -race -count=1 -timeout 20m ./...
stage scale-out env NFYIO_TEST_BACKEND=postgres+seaweedfs go test -count=1 -timeout 10m ./internal/s3test/
if [ -x scripts/e2e.sh ]; then
	stage e2e scripts/e2e.sh
fi
if [ -x scripts/fuzz.sh ]; then
	stage fuzz env FUZZTIME="${FUZZTIME:-50000x}" scripts/fuzz.sh
fi

echo
if ((failed)); then
	echo "failed stages: ${failures[*]}"
fi
echo "$passed passed, $failed failed"
((failed == 0))
