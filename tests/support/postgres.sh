# Sourced by tests/run: makes a throwaway PostgreSQL cluster on a loopback port and exports
# SCOPEGATE_TEST_POSTGRES_URL, then a pgbouncer in transaction-pooling mode in front of it and
# exports SCOPEGATE_TEST_PGBOUNCER_URL. Installs PostgreSQL and pgbouncer from Debian's
# packages when they are missing. stop_test_pgbouncer and stop_test_postgres stop and delete
# them (tests/run traps EXIT).

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
    PG_TEST_OWNER=
    if [ "$(id -u)" = 0 ]; then
        local owner=postgres
        id "$owner" >/dev/null 2>&1 || { owner=scopegate-test; id "$owner" >/dev/null 2>&1 || useradd --system --no-create-home "$owner"; }
        chown "$owner" "$PG_TEST_DIR"
        PG_TEST_OWNER=$owner
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

install_pgbouncer() {
    echo "== installing pgbouncer from Debian's packages"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq pgbouncer >/dev/null
}

find_pgbouncer() {
    local candidate
    for candidate in "$(command -v pgbouncer 2>/dev/null)" /usr/sbin/pgbouncer; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then echo "$candidate"; return 0; fi
    done
    return 1
}

# Starts pgbouncer in front of the cluster of start_test_postgres, in transaction-pooling mode
# with few server connections per database, so that the clients of several scopegate instances
# really share server connections: anything that relies on session state (a session-level
# advisory lock, a named prepared statement) meets another client's server connection.
start_test_pgbouncer() {
    local pgbouncer
    pgbouncer=$(find_pgbouncer) || { install_pgbouncer; pgbouncer=$(find_pgbouncer); }
    PGB_TEST_DIR=$(mktemp -d /tmp/scopegate-pgbouncer.XXXXXX)
    PGB_TEST_PORT=$(free_port)
    # The cluster trusts loopback connections; auth_type = trust still wants the user listed.
    echo '"postgres" ""' >"$PGB_TEST_DIR/userlist.txt"
    cat >"$PGB_TEST_DIR/pgbouncer.ini" <<EOF
[databases]
; Every database, each test's fresh one included, on the test cluster.
* = host=127.0.0.1 port=$PG_TEST_PORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_TEST_PORT
unix_socket_dir =
auth_type = trust
auth_file = $PGB_TEST_DIR/userlist.txt
pool_mode = transaction
default_pool_size = 4
max_client_conn = 500
; Close server connections to finished tests' databases soon; the cluster allows 300.
server_idle_timeout = 10
logfile = $PGB_TEST_DIR/pgbouncer.log
pidfile = $PGB_TEST_DIR/pgbouncer.pid
EOF
    # pgbouncer refuses to run as root: run it as the cluster's user.
    if [ -n "${PG_TEST_OWNER:-}" ]; then chown -R "$PG_TEST_OWNER" "$PGB_TEST_DIR"; fi
    "${PG_TEST_RUN[@]}" "$pgbouncer" -d "$PGB_TEST_DIR/pgbouncer.ini" >"$PGB_TEST_DIR/start.log" 2>&1 \
        || { cat "$PGB_TEST_DIR/start.log" "$PGB_TEST_DIR/pgbouncer.log" 2>/dev/null; return 1; }
    local try
    for try in $(seq 50); do
        "$PG_TEST_BIN/pg_isready" -q -h 127.0.0.1 -p "$PGB_TEST_PORT" -d postgres -U postgres && break
        sleep 0.1
    done
    "$PG_TEST_BIN/pg_isready" -q -h 127.0.0.1 -p "$PGB_TEST_PORT" -d postgres -U postgres \
        || { cat "$PGB_TEST_DIR/pgbouncer.log"; return 1; }
    export SCOPEGATE_TEST_PGBOUNCER_URL="postgres://postgres@127.0.0.1:$PGB_TEST_PORT/postgres"
    echo "== pgbouncer $("$pgbouncer" --version | awk 'NR == 1 {print $2}') (transaction pooling) listening on 127.0.0.1:$PGB_TEST_PORT"
}

stop_test_pgbouncer() {
    if [ -n "${PGB_TEST_DIR:-}" ] && [ -d "$PGB_TEST_DIR" ]; then
        if [ -s "$PGB_TEST_DIR/pgbouncer.pid" ]; then
            kill "$(cat "$PGB_TEST_DIR/pgbouncer.pid")" 2>/dev/null || true
        fi
        rm -rf "$PGB_TEST_DIR"
    fi
}
