#!/usr/bin/env bash
# Measures how long a revocation committed on one replica takes to be enforced on
# another (two replicas over one PostgreSQL database, real HTTP). Needs a PostgreSQL
# server: CASTELLAN_TEST_POSTGRES_URL, or the local one as CI sets it up.
#
#   scripts/revocation-latency.sh [--rounds 300]
set -euo pipefail
cd "$(dirname "$0")/.."
url="${CASTELLAN_TEST_POSTGRES_URL:-postgres://postgres:postgres@localhost:5432/castellan_test}"
exec cargo run -q --release -p castellan-server --example revocation_latency -- --postgres-url "$url" "$@"
