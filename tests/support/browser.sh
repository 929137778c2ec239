# Sourced by tests/run: install_browser_tools installs what the browser tests need when it is
# missing: Debian's chromium (at /usr/bin/chromium) and the npm package playwright-core (major 1)
# in tests/browser/node_modules. Playwright never downloads a browser here: the tests launch
# /usr/bin/chromium through executablePath.

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
        printf '%s\n' '{"private": true, "type": "module", "dependencies": {"playwright-core": "^1"}}' \
            >"$browser_dir/package.json"
    fi
    if [ ! -f "$browser_dir/.gitignore" ]; then
        printf '%s\n' 'node_modules/' >"$browser_dir/.gitignore"
    fi
    if [ ! -f "$browser_dir/node_modules/playwright-core/package.json" ]; then
        echo "== installing playwright-core 1 from the npm registry"
        PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$browser_dir" --no-audit --no-fund --no-save \
            --loglevel=error playwright-core@1 >/dev/null
    fi
}
