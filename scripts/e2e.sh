#!/usr/bin/env bash
# End-to-end suites: real S3 clients in other languages against a real nfyio.
#
#   scripts/e2e.sh [SUITE...]      SUITE: js, python, cli (default: all)
#
# NFYIO_E2E_BIN=path/to/nfyio uses that binary instead of building one.
#
# Builds nfyio, starts "nfyio server" on a free port of 127.0.0.1 with a
# fresh data directory and root keys, runs each suite with a clean
# environment (no AWS_* variable of the caller, no ~/.aws), stops the
# server, and ends with the line "N passed, N failed" (counting suites).
# Exits non-zero if any suite failed.
#
# Needs: go, /usr/bin/node + npm (e2e/js/node_modules is installed with
# "npm ci" when missing), /usr/bin/python3 with boto3, /usr/bin/aws, curl.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
suites=("$@")
if [ ${#suites[@]} -eq 0 ]; then
	suites=(js python cli)
fi
for s in "${suites[@]}"; do
	case $s in
	js | python | cli) ;;
	*)
		echo "e2e: unknown suite $s (want js, python or cli)" >&2
		exit 2
		;;
	esac
done

work=$(mktemp -d "${TMPDIR:-/tmp}/nfyio-e2e.XXXXXX")
server_pid=
cleanup() {
	if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
		kill -TERM "$server_pid" 2>/dev/null
		wait "$server_pid" 2>/dev/null
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bin="$work/nfyio"
if [ -n "${NFYIO_E2E_BIN:-}" ]; then
	# A binary built elsewhere (CI artefact, a debug build).
	bin=$(cd "$(dirname "$NFYIO_E2E_BIN")" && pwd)/$(basename "$NFYIO_E2E_BIN")
	echo "e2e: using $bin"
else
	echo "e2e: building nfyio"
	if ! (cd "$root" && go build -o "$bin" ./cmd/nfyio); then
		echo "e2e: build failed"
		echo "0 passed, ${#suites[@]} failed"
		exit 1
	fi
fi

if [[ " ${suites[*]} " == *" js "* ]] && [ ! -d "$root/e2e/js/node_modules/@aws-sdk/client-s3" ]; then
	echo "e2e: installing e2e/js dependencies (npm ci)"
	if ! (cd "$root/e2e/js" && npm ci --no-audit --no-fund --loglevel=error); then
		echo "e2e: npm ci failed"
		echo "0 passed, ${#suites[@]} failed"
		exit 1
	fi
fi

# Fixed test credentials: the store is private to this run.
access_key=NFYIOE2EROOTKEY00001
secret_key=nfyio-e2e-root-secret-0123456789abcdefghij
mkdir -p "$work/data" "$work/home"

# Port 0: the kernel picks a free port and the server prints the address it
# got, so parallel runs never collide. The caller's NFYIO_* settings stay
# out: the suites expect a store with defaults.
env -i PATH=/usr/bin:/bin HOME="$work/home" \
	NFYIO_ROOT_ACCESS_KEY=$access_key NFYIO_ROOT_SECRET_KEY=$secret_key \
	"$bin" server --address 127.0.0.1:0 --data "$work/data" \
	--access-log "$work/access.log" >"$work/server.out" 2>"$work/server.err" &
server_pid=$!

endpoint=
for _ in $(seq 1 300); do # up to about 30 s on a loaded machine
	if ! kill -0 "$server_pid" 2>/dev/null; then
		break
	fi
	if [ -z "$endpoint" ]; then
		endpoint=$(sed -n 's#.*listening on \(http://127\.0\.0\.1:[0-9]*\).*#\1#p' "$work/server.out" | head -n 1)
	fi
	if [ -n "$endpoint" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' "$endpoint/_nfyio/health/ready")" = 200 ]; then
		break
	fi
	sleep 0.1
done
if [ -z "$endpoint" ] || [ "$(curl -s -o /dev/null -w '%{http_code}' "$endpoint/_nfyio/health/ready")" != 200 ]; then
	echo "e2e: the server did not become ready"
	cat "$work/server.out" "$work/server.err"
	echo "0 passed, ${#suites[@]} failed"
	exit 1
fi
echo "e2e: nfyio ready at $endpoint"

# clean_env runs a command with only the variables listed here: the
# caller's AWS_* (AWS_CA_BUNDLE, profiles, endpoints), proxies and
# language paths (pyenv, NODE_OPTIONS) cannot reach the clients.
clean_env() {
	env -i \
		PATH=/usr/bin:/bin \
		HOME="$work/home" \
		LANG=C.UTF-8 \
		PYTHONDONTWRITEBYTECODE=1 \
		TMPDIR="$work" \
		AWS_ACCESS_KEY_ID=$access_key \
		AWS_SECRET_ACCESS_KEY=$secret_key \
		AWS_REGION=us-east-1 \
		AWS_DEFAULT_REGION=us-east-1 \
		AWS_CONFIG_FILE="$work/home/no-aws-config" \
		AWS_SHARED_CREDENTIALS_FILE="$work/home/no-aws-credentials" \
		AWS_EC2_METADATA_DISABLED=true \
		NFYIO_E2E_ENDPOINT="$endpoint" \
		NFYIO_E2E_ACCESS_KEY=$access_key \
		NFYIO_E2E_SECRET_KEY=$secret_key \
		NFYIO_E2E_BIN="$bin" \
		"$@"
}

run_suite() {
	case $1 in
	js)
		# The current SDK v3 refuses to run on node older than 20.
		if [ "$(/usr/bin/node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
			echo "e2e: /usr/bin/node is $(/usr/bin/node --version); the AWS SDK for JavaScript v3 needs node >= 20"
			return 1
		fi
		(cd "$root/e2e/js" && clean_env /usr/bin/node --test --test-reporter=spec client.test.mjs presign.test.mjs)
		;;
	python) (cd "$root/e2e/python" && clean_env /usr/bin/python3 -m unittest -v test_client test_presign) ;;
	cli) (cd "$root/e2e/cli" && clean_env /usr/bin/python3 -m unittest -v test_cli) ;;
	esac
}

passed=0
failed=0
failed_names=()
for s in "${suites[@]}"; do
	echo
	echo "=== e2e suite: $s"
	start=$SECONDS
	if run_suite "$s"; then
		passed=$((passed + 1))
		echo "=== e2e suite $s: PASS ($((SECONDS - start))s)"
	else
		failed=$((failed + 1))
		failed_names+=("$s")
		echo "=== e2e suite $s: FAIL ($((SECONDS - start))s)"
	fi
done

# A recovered panic still answers the client with a 500 that a suite may
# expect as an error; the store must never panic, whatever it is sent.
if grep -h 'panic serving request' "$work/access.log" "$work/server.err" 2>/dev/null; then
	echo "e2e: the server panicked (lines above)"
	failed=$((failed + 1))
	failed_names+=("server-panic")
fi

if [ "$failed" -gt 0 ]; then
	echo
	echo "e2e: failed suites: ${failed_names[*]}; server errors (last 40 lines):"
	tail -n 40 "$work/server.err"
fi

kill -TERM "$server_pid" 2>/dev/null
if ! wait "$server_pid"; then
	echo "e2e: the server did not shut down cleanly"
	cat "$work/server.err" | tail -n 20
	failed=$((failed + 1))
fi
server_pid=
echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
