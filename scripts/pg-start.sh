#!/bin/sh
# Start or stop a throwaway PostgreSQL for CI and local test runs.
#
#   eval "$(scripts/pg-start.sh start /tmp/nfyio-pg)"   # exports NFYIO_TEST_PG_DSN
#   go test ./...                                        # each test gets its own database
#   scripts/pg-start.sh stop /tmp/nfyio-pg
#
# Uses Debian's binaries (/usr/lib/postgresql/<newest>/bin). initdb refuses to
# run as root, so as root the server runs as the postgres system user. The
# server listens on 127.0.0.1:$PGPORT (default 55432) and on a Unix socket in
# the directory; it trades durability for speed (fsync off), which is fine for
# data that lives as long as a test run.
set -eu

cmd=${1:-}
dir=${2:-}
port=${PGPORT:-55432}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
	echo "usage: $0 start|stop DIR" >&2
	exit 2
fi

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
	echo "$0: no PostgreSQL binaries under /usr/lib/postgresql (install the postgresql package)" >&2
	exit 1
fi

as_owner() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

case $cmd in
start)
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	if [ "$(id -u)" = 0 ]; then
		chown postgres:postgres "$dir"
	fi
	if [ ! -f "$dir/data/PG_VERSION" ]; then
		as_owner "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 || {
			cat "$dir/initdb.log" >&2
			exit 1
		}
	fi
	as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
		-o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
		start >&2 || {
		cat "$dir/server.log" >&2
		exit 1
	}
	echo "export NFYIO_TEST_PG_DSN='postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable'"
	;;
stop)
	if [ -f "$dir/data/postmaster.pid" ]; then
		as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >&2
	fi
	rm -rf "$dir"
	;;
*)
	echo "usage: $0 start|stop DIR" >&2
	exit 2
	;;
esac
