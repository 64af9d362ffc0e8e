#!/usr/bin/env bash
# Fetches axe-core (the accessibility checker the console's browser tests inject into
# every page) from npm at a pinned version, checks the tarball's sha256, and prints the
# path of its axe.min.js (use it as CASTELLAN_AXE):
#
#   export CASTELLAN_AXE=$(scripts/setup-axe.sh)
#
# Cached under target/axe-core/<version> (CASTELLAN_AXE_CACHE moves it). npm comes
# from Debian's packages if missing.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
version="4.14.1"
sha256="e6b0ce02b84d892e2e33e403485e7f3d6c29e2be6df65daf44d89ba564139745"
dir="${CASTELLAN_AXE_CACHE:-$root/target/axe-core}/$version"
if [ ! -f "$dir/package/axe.min.js" ]; then
    if ! command -v npm >/dev/null 2>&1; then
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >&2
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    (cd "$dir" && npm pack --silent "axe-core@$version" >&2)
    echo "$sha256  $dir/axe-core-$version.tgz" | sha256sum -c - >&2
    tar -xzf "$dir/axe-core-$version.tgz" -C "$dir"
fi
echo "$dir/package/axe.min.js"
