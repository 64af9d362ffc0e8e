#!/usr/bin/env bash
# What authentication and authorization cost per request, measured with wrk against
# the release binary on SQLite, each figure against a baseline from the same run:
#
#   1. GET /v1 with no credential          (the empty endpoint: the HTTP ceiling)
#   2. GET /v1/project/{id} as a viewer    (an authorized read)
#   3. PATCH /v1/project/{id} as a viewer  (a refusal: 403)
#
# For each: requests per second, the server's CPU time per request (from
# /proc/<pid>/stat), and the ratio to the empty endpoint.
#
#   scripts/auth-load.sh [seconds=10] [connections=32]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
conns="${2:-32}"
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
cargo build -q --release -p castellan-cli
bin=target/release/castellan
dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
url="http://127.0.0.1:$port"
owner=$("$bin" bootstrap --data-dir "$dir" --org acme --email ada@acme.example --json | jq -r .api_key)
CASTELLAN_LOG=warn "$bin" serve --data-dir "$dir" --listen "127.0.0.1:$port" >"$dir/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do curl -sf "$url/v1" >/dev/null && break; sleep 0.1; done
auth=(-H "Authorization: Bearer $owner" -H "content-type: application/json")
project=$(curl -sf "${auth[@]}" -X POST "$url/v1/project" -d '{"name":"load"}' | jq -r .id)
token=$(curl -sf "${auth[@]}" -X PATCH "$url/v1/organization/members" \
    -d '{"invite_users":{"emails":["viewer@acme.example"],"group_name":"Viewers"}}' | jq -r '.invitations[0].token')
viewer=$(curl -sf -H "content-type: application/json" -X POST "$url/api/invitation/accept" -d "{\"token\":\"$token\"}" | jq -r .api_key)
test "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $viewer" "$url/v1/project/$project")" = 200
cat >"$dir/patch.lua" <<LUA
wrk.method = "PATCH"
wrk.body = '{"description": "changed"}'
wrk.headers["Authorization"] = "Bearer $viewer"
wrk.headers["Content-Type"] = "application/json"
LUA
test "$(curl -s -o /dev/null -w '%{http_code}' -X PATCH -H "Authorization: Bearer $viewer" \
    -H 'content-type: application/json' -d '{"description":"x"}' "$url/v1/project/$project")" = 403
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
tick=$(getconf CLK_TCK)
run() { # name, wrk args...
    local name=$1; shift
    local before after out rps
    before=$(cpu)
    out=$(wrk -t1 -c"$conns" -d"${secs}s" "$@")
    after=$(cpu)
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    local total
    total=$(echo "$out" | awk '/requests in/ {print $1}')
    local non2xx
    non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
    local us
    us=$(awk -v c=$((after - before)) -v t="$tick" -v n="$total" 'BEGIN {printf "%.1f", c / t * 1e6 / n}')
    echo "$name|$rps|$us|${non2xx:-0}"
}
wrk -t1 -c"$conns" -d2s "$url/v1" >/dev/null # warm-up
empty=$(run "GET /v1 (no credential)" "$url/v1")
read_=$(run "GET /v1/project/{id} as viewer" -H "Authorization: Bearer $viewer" "$url/v1/project/$project")
refuse=$(run "PATCH /v1/project/{id} as viewer (403)" -s "$dir/patch.lua" "$url/v1/project/$project")
base=$(echo "$empty" | cut -d'|' -f2)
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); wrk -t1 -c$conns -d${secs}s; SQLite"
printf '%-40s %12s %14s %10s %10s\n' "request" "req/s" "CPU us/req" "vs empty" "non-2xx"
for line in "$empty" "$read_" "$refuse"; do
    IFS='|' read -r name rps us non <<<"$line"
    ratio=$(awk -v a="$rps" -v b="$base" 'BEGIN {printf "%.0f%%", a / b * 100}')
    printf '%-40s %12s %14s %10s %10s\n' "$name" "$rps" "$us" "$ratio" "$non"
done
