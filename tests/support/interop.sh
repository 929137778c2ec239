# Sourced by tests/run: installs the interop clients (Python authlib, httpx) when missing and
# runs the interop scripts against a real scopegate server on a free loopback port.

install_python_clients() {
    if ! python3 -c "import authlib, httpx" >/dev/null 2>&1; then
        echo "== installing the interop clients (authlib, httpx) from PyPI"
        python3 -m pip install --quiet --disable-pip-version-check "authlib>=1.3,<2" "httpx>=0.27,<1"
    fi
}

wait_until_ready() {
    python3 - "$1/readyz" <<'PY'
import sys, time, urllib.request
for _ in range(300):
    try:
        urllib.request.urlopen(sys.argv[1], timeout=1)
        sys.exit(0)
    except Exception:
        time.sleep(0.1)
sys.exit(1)
PY
}

run_interop() {
    local database_url=$1 label=$2
    install_python_clients
    local dir port url pid status=0
    dir=$(mktemp -d /tmp/scopegate-interop.XXXXXX)
    port=$(free_port)
    url="http://127.0.0.1:$port"
    SCOPEGATE_LOG=warn "${CARGO_TARGET_DIR:-target}/debug/scopegate" --database-url "$database_url" --keys-dir "$dir/keys" \
        serve --demo --bind "127.0.0.1:$port" --issuer "$url" >"$dir/server.out" 2>"$dir/server.err" &
    pid=$!
    echo "== interop with authlib on $label"
    if wait_until_ready "$url"; then
        SCOPEGATE_URL=$url python3 tests/interop/authlib_client_credentials.py || status=$?
    else
        echo "the server did not become ready"; status=1
    fi
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
    if [ "$status" != 0 ]; then cat "$dir/server.err"; fi
    rm -rf "$dir"
    return "$status"
}
