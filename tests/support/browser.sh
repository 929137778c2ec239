# Sourced by tests/run: install_browser_tools installs what the browser tests need when it is
# missing: Debian's chromium (at /usr/bin/chromium) and the npm packages playwright-core (major 1),
# axe-core (major 4, the console's accessibility checks) and oauth4webapi (major 3, the FAPI 2.0
# interop client) in tests/browser/node_modules.
# Playwright never downloads a browser here: the tests launch /usr/bin/chromium through
# executablePath.

browser_tools_root() {
    (cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
}

browser_as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

install_browser_tools() {
    local root browser_dir
    root=$(browser_tools_root)
    browser_dir="$root/tests/browser"

    if [ ! -x /usr/bin/chromium ]; then
        echo "== installing chromium from Debian's packages"
        browser_as_root apt-get update -qq
        DEBIAN_FRONTEND=noninteractive browser_as_root apt-get install -y -qq chromium >/dev/null
    fi

    mkdir -p "$browser_dir"
    if [ ! -f "$browser_dir/package.json" ]; then
        printf '%s\n' '{"private": true, "type": "module", "dependencies": {"axe-core": "^4", "oauth4webapi": "^3", "playwright-core": "^1"}}' \
            >"$browser_dir/package.json"
    fi
    if [ ! -f "$browser_dir/.gitignore" ]; then
        printf '%s\n' 'node_modules/' >"$browser_dir/.gitignore"
    fi
    if [ ! -f "$browser_dir/node_modules/playwright-core/package.json" ] ||
        [ ! -f "$browser_dir/node_modules/axe-core/package.json" ] ||
        [ ! -f "$browser_dir/node_modules/oauth4webapi/package.json" ]; then
        echo "== installing playwright-core 1, axe-core 4 and oauth4webapi 3 from the npm registry"
        PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$browser_dir" --no-audit --no-fund --no-save \
            --loglevel=error playwright-core@1 axe-core@4 oauth4webapi@3 >/dev/null
    fi
}

browser_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# browser_wait_until_ready URL PID: waits up to 30 s for URL/readyz; gives up early when the
# server process PID has exited.
browser_wait_until_ready() {
    python3 - "$1/readyz" "$2" <<'PY'
import sys, time, urllib.request
def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    if not alive(sys.argv[2]):
        sys.exit(1)
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=1) as answer:
            if answer.status == 200:
                sys.exit(0)
    except Exception:
        pass
    time.sleep(0.1)
sys.exit(1)
PY
}

# run_browser_tests DATABASE_URL LABEL: starts `scopegate serve --demo` on a free loopback port
# against DATABASE_URL and walks the Online Bank story in chromium (tests/browser/online_bank.mjs),
# then an administrator's day in the console with axe-core's checks (tests/browser/console.mjs),
# then the FAPI 2.0 flow with oauth4webapi as the client (tests/browser/fapi_oauth4webapi.mjs).
# Returns the test's status; safe to source from a `set -euo pipefail` script. Screenshots go to
# $SCOPEGATE_SCREENSHOTS when it is set.
run_browser_tests() {
    local database_url=$1 label=$2
    local root tmpdir port url pid status=0
    install_browser_tools
    root=$(browser_tools_root)
    tmpdir=$(mktemp -d /tmp/scopegate-browser.XXXXXX)
    port=$(browser_free_port)
    url="http://127.0.0.1:$port"
    SCOPEGATE_LOG=warn "${CARGO_TARGET_DIR:-$root/target}/debug/scopegate" --database-url "$database_url" \
        --keys-dir "$tmpdir/keys" serve --demo --bind "127.0.0.1:$port" --issuer "$url" \
        >"$tmpdir/server.out" 2>"$tmpdir/server.err" &
    pid=$!
    echo "== browser tests (chromium) on $label"
    if browser_wait_until_ready "$url" "$pid"; then
        SCOPEGATE_URL=$url node "$root/tests/browser/online_bank.mjs" || status=$?
        SCOPEGATE_URL=$url node "$root/tests/browser/console.mjs" || status=$?
        SCOPEGATE_URL=$url node "$root/tests/browser/fapi_oauth4webapi.mjs" || status=$?
    else
        echo "the server did not become ready on $url"
        status=1
    fi
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if [ "$status" != 0 ]; then
        echo "-- scopegate's stderr (last 100 lines):"
        tail -n 100 "$tmpdir/server.err" || true
    fi
    rm -rf "$tmpdir"
    return "$status"
}
