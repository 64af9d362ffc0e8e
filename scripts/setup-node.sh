#!/usr/bin/env bash
# Installs the official Braintrust TypeScript packages from npm for the compatibility
# tests, and prints their node_modules directory (use it as CASTELLAN_NODE_MODULES):
#
#   export CASTELLAN_NODE_MODULES=$(scripts/setup-node.sh)
#
# What is installed is pinned in scripts/compat-node (package.json and its lock file):
# `braintrust` (the SDK, with the `braintrust` CLI and the native `bt` CLI for this
# platform) and `@braintrust/api` (the older Stainless REST client). `npm ci` runs once
# per pinned set: the install is cached under target/compat-node/<hash of the pins>
# (CASTELLAN_NODE_CACHE moves it), and other sets there are removed. Install scripts
# are skipped: npm already installs `bt`'s platform package, which is all
# `braintrust`'s postinstall would fetch.
#
# With `--oidc` it installs instead the OpenID provider the single sign-on tests start
# (npm `oidc-provider`, pinned in scripts/oidc-node), cached under
# target/oidc-node/<hash> (CASTELLAN_OIDC_NODE_CACHE moves it), and prints that
# node_modules directory (use it as CASTELLAN_OIDC_NODE_MODULES). oidc-provider 9
# asks for Node 22 but runs on 20 with a warning.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >&2
fi

# install PINS BASE: `npm ci` of PINS' package.json and lock file into BASE/<hash of
# the two>, once per pinned set (older sets under BASE are removed); sets `cache`.
install() {
    local pins="$1" base="$2" key
    key="$(cat "$pins/package.json" "$pins/package-lock.json" | sha256sum | cut -c1-16)"
    cache="$base/$key"
    if [ ! -f "$cache/.installed" ]; then
        rm -rf "$cache"
        mkdir -p "$cache"
        cp "$pins/package.json" "$pins/package-lock.json" "$cache/"
        (cd "$cache" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >&2
        touch "$cache/.installed"
    fi
    find "$base" -mindepth 1 -maxdepth 1 ! -name "$key" -exec rm -rf {} + >&2
}

if [ "${1:-}" = "--oidc" ]; then
    install "$root/scripts/oidc-node" "${CASTELLAN_OIDC_NODE_CACHE:-$root/target/oidc-node}"
    (cd "$cache" && node --input-type=module -e 'await import("oidc-provider")' 2>/dev/null) >&2
    echo "$cache/node_modules"
    exit 0
fi
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 18 ]; then
    echo "node $(node --version) is too old: the Braintrust TypeScript SDK needs 18 or newer" >&2
    exit 1
fi
install "$root/scripts/compat-node" "${CASTELLAN_NODE_CACHE:-$root/target/compat-node}"
(cd "$cache" && node -e 'require("braintrust"); require("@braintrust/api")' && node_modules/.bin/bt --version) >&2
echo "$cache/node_modules"
