#!/bin/sh
# Builds the SeaweedFS "weed" binary that the scale-out tests run against,
# at the version pinned in tools/seaweedfs/go.mod.
#
# Usage: scripts/weed-build.sh [OUT]
#   OUT defaults to $NFYIO_WEED_BIN, else $HOME/.cache/nfyio/weed (where
#   internal/testweed looks for it).
#
# The build is skipped when OUT already holds a weed built from the pinned
# version: the Go build information embedded in the binary names the
# SeaweedFS module version exactly ("weed version" prints only the release
# number, which several pinned commits can share).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-${NFYIO_WEED_BIN:-$HOME/.cache/nfyio/weed}}
mod=github.com/seaweedfs/seaweedfs

pinned=$(awk -v m="$mod" '{ for (i = 1; i < NF; i++) if ($i == m) { print $(i + 1); exit } }' \
	"$root/tools/seaweedfs/go.mod")
if [ -z "$pinned" ]; then
	echo "weed-build: no $mod requirement in tools/seaweedfs/go.mod" >&2
	exit 1
fi

if [ -x "$OUT" ]; then
	built=$(go version -m "$OUT" 2>/dev/null | awk -v m="$mod" '$1 == "mod" && $2 == m { print $3 }')
	if [ "$built" = "$pinned" ] && "$OUT" version >/dev/null 2>&1; then
		echo "weed-build: $OUT is $mod $pinned already"
		exit 0
	fi
	echo "weed-build: $OUT is ${built:-not a recognisable weed build}; rebuilding $pinned"
fi

mkdir -p "$(dirname "$OUT")"
tmp="$OUT.tmp.$$"
trap 'rm -f "$tmp"' EXIT INT TERM
# SeaweedFS's own module has a replace directive, so "go install mod@version"
# refuses it; building it as a dependency of tools/seaweedfs works.
(cd "$root/tools/seaweedfs" && go build -o "$tmp" "$mod/weed")
"$tmp" version >/dev/null
mv "$tmp" "$OUT"
echo "weed-build: built $mod $pinned into $OUT"
