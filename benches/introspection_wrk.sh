#!/usr/bin/env bash
# Counted-introspection throughput with wrk (a C load generator, from Debian's packages) against
# the release server in its own process, so the server is not sharing its two cores with a Rust
# HTTP client as in `cargo bench --bench introspection`.
# Usage: benches/introspection_wrk.sh [sqlite|postgres://ADMIN_URL] (default sqlite)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { sudo_cmd=; [ "$(id -u)" = 0 ] || sudo_cmd=sudo; $sudo_cmd apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet
binary=${CARGO_TARGET_DIR:-target}/release/scopegate
dir=$(mktemp -d /tmp/scopegate-wrk.XXXXXX)
trap 'kill "${server:-0}" 2>/dev/null || true; rm -rf "$dir"' EXIT
target=${1:-sqlite}
if [ "$target" = sqlite ]; then
    database_url="sqlite://$dir/bench.db"
else
    name="sg_wrk_$$"
    psql -q "$target" -c "CREATE DATABASE $name" >/dev/null
    database_url="${target%/*}/$name"
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sg() { SCOPEGATE_LOG=warn "$binary" --database-url "$database_url" --keys-dir "$dir/keys" "$@"; }
echo '{"scopes": [{"name": "metered", "short_description": "Counted", "max_access_count": 2000000000}]}' > "$dir/scopes.json"
sg scope import "$dir/scopes.json" >/dev/null
app=$(sg client create --name App)
bank=$(sg client create --name "Bank API" --can-introspect)
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
SCOPEGATE_LOG=warn "$binary" --database-url "$database_url" --keys-dir "$dir/keys" serve --bind "127.0.0.1:$port" >/dev/null 2>&1 &
server=$!
python3 - "http://127.0.0.1:$port/readyz" <<'PY'
import sys, time, urllib.request
for _ in range(300):
    try:
        urllib.request.urlopen(sys.argv[1], timeout=1); sys.exit(0)
    except Exception:
        time.sleep(0.1)
sys.exit("the server did not start")
PY
token=$(python3 - "http://127.0.0.1:$port/token" "$(field "$app" client_id)" "$(field "$app" client_secret)" <<'PY'
import base64, json, sys, urllib.request, urllib.parse
url, cid, secret = sys.argv[1:]
request = urllib.request.Request(url, data=urllib.parse.urlencode({"grant_type": "client_credentials", "scope": "metered"}).encode(),
    headers={"Authorization": "Basic " + base64.b64encode(f"{cid}:{secret}".encode()).decode()})
print(json.load(urllib.request.urlopen(request))["access_token"])
PY
)
auth=$(python3 -c "import base64,sys; print(base64.b64encode(f'{sys.argv[1]}:{sys.argv[2]}'.encode()).decode())" "$(field "$bank" client_id)" "$(field "$bank" client_secret)")
cat > "$dir/introspect.lua" <<LUA
wrk.method = "POST"
wrk.body = "token=$token"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $auth"
LUA
echo "== counted introspections on ${target%%://*} (wrk: 2 threads, 32 connections, 10 s)"
wrk -t2 -c32 -d10s -s "$dir/introspect.lua" "http://127.0.0.1:$port/introspect" | grep -E "Requests/sec|Latency|requests in|Non-2xx"
count=$(python3 - "http://127.0.0.1:$port/introspect" "$auth" "$token" <<'PY'
import json, sys, urllib.request, urllib.parse
url, auth, token = sys.argv[1:]
request = urllib.request.Request(url, data=urllib.parse.urlencode({"token": token}).encode(), headers={"Authorization": "Basic " + auth})
body = json.load(urllib.request.urlopen(request))
print(2000000000 - body["scope_limits"]["metered"]["remaining_accesses"])
PY
)
echo "stored access count after the run: $count"
