#!/usr/bin/env bash
# Installs everything the tests need on a fresh Debian machine with Go:
# Debian packages (real clients, PostgreSQL, nginx, Chromium), the npm
# packages of the JavaScript suite, staticcheck, and the SeaweedFS binary.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(awscli python3-boto3 nginx-light postgresql chromium curl)
missing=()
for p in "${pkgs[@]}"; do
	dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ -f e2e/js/package-lock.json ]; then
	(cd e2e/js && npm ci --no-audit --no-fund --loglevel=error)
fi

if ! command -v staticcheck >/dev/null 2>&1 && [ ! -x "$(go env GOPATH)/bin/staticcheck" ]; then
	go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
fi

scripts/weed-build.sh
