# Sourced by tests/run: makes a throwaway PostgreSQL cluster on a loopback port and exports
# SCOPEGATE_TEST_POSTGRES_URL. Installs PostgreSQL from Debian's packages when it is missing.
# The cluster is stopped and deleted by stop_test_postgres (tests/run traps EXIT).

find_pg_bin() {
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then echo "$dir"; return 0; fi
    done
    if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then dirname "$(command -v initdb)"; return 0; fi
    return 1
}

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

install_postgres() {
    echo "== installing PostgreSQL from Debian's packages"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql >/dev/null
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start_test_postgres() {
    local pg_bin
    pg_bin=$(find_pg_bin) || { install_postgres; pg_bin=$(find_pg_bin); }
    PG_TEST_DIR=$(mktemp -d /tmp/scopegate-pg.XXXXXX)
    PG_TEST_PORT=$(free_port)
    PG_TEST_BIN=$pg_bin
    # PostgreSQL refuses to run as root: run the cluster as an unprivileged user.
    PG_TEST_RUN=()
    if [ "$(id -u)" = 0 ]; then
        local owner=postgres
        id "$owner" >/dev/null 2>&1 || { owner=scopegate-test; id "$owner" >/dev/null 2>&1 || useradd --system --no-create-home "$owner"; }
        chown "$owner" "$PG_TEST_DIR"
        PG_TEST_RUN=(runuser -u "$owner" --)
    fi
    "${PG_TEST_RUN[@]}" "$pg_bin/initdb" -D "$PG_TEST_DIR/data" -A trust -U postgres --no-sync >"$PG_TEST_DIR/initdb.log" 2>&1 \
        || { cat "$PG_TEST_DIR/initdb.log"; return 1; }
    "${PG_TEST_RUN[@]}" "$pg_bin/pg_ctl" -D "$PG_TEST_DIR/data" -l "$PG_TEST_DIR/server.log" -w \
        -o "-p $PG_TEST_PORT -k $PG_TEST_DIR -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off -c full_page_writes=off" \
        start >/dev/null || { cat "$PG_TEST_DIR/server.log"; return 1; }
    export SCOPEGATE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PG_TEST_PORT/postgres"
    echo "== PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') listening on 127.0.0.1:$PG_TEST_PORT"
}

stop_test_postgres() {
    if [ -n "${PG_TEST_DIR:-}" ] && [ -d "$PG_TEST_DIR/data" ]; then
        "${PG_TEST_RUN[@]}" "$PG_TEST_BIN/pg_ctl" -D "$PG_TEST_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
        rm -rf "$PG_TEST_DIR"
    fi
}
