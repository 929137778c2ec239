#!/usr/bin/env python3
"""scopegate and node-oidc-provider, loaded by wrk side by side in one run (issue 11).

Prints, for each hot path, the peer's figure, ours and the ratio, and whether the goal is met:
  - client credentials: ours (ES256 JWTs, each recorded before the answer) against the peer's
    best mode (opaque tokens in memory, and ES256 JWTs);
  - introspection cycling 1,000 distinct JWTs, against the peer's opaque introspection;
  - counted introspection (a durable count per answer), against the peer's uncounted one;
  - the resident memory of each server after its loads.

Usage: benches/side_by_side.py [--postgres ADMIN_URL] [--big] [--duration S] [--binary PATH]
  --postgres  scopegate on a fresh PostgreSQL database, two instances sharing it, each loaded by
              its own wrk with half the connections (the figure is their sum)
  --big       first seed 100,000 scopes, 100,000 clients and 1,000,000 grants
Only the standard library is used; wrk comes from Debian's packages, the peer from npm.
"""

import argparse
import base64
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PEER_SOURCE = REPO.parent / "shared" / "peer-bench"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
PEER_BASIC = base64.b64encode(b"bench:bench-secret-0123456789abcdef0123456789").decode()
PEER_RS_BASIC = base64.b64encode(b"rs:rs-secret-0123456789abcdef0123456789abcd").decode()
DISTINCT_TOKENS = 1000
GOALS = {"client credentials": 3.0, "introspection (JWT)": 3.0, "counted introspection": 1.5}


def log(message):
    print(message, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url, process):
    for _ in range(600):
        if process.poll() is not None:
            sys.exit(f"the server behind {url} exited with {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{url} did not come up")


def post_form(url, basic, fields):
    request = urllib.request.Request(
        url,
        data=urllib.parse.urlencode(fields).encode(),
        headers={"Authorization": "Basic " + basic, "Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def rss_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def ensure_tools():
    if shutil.which("wrk") is None:
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "wrk"], check=True, stdout=subprocess.DEVNULL)
    peer_dir = TARGET / "peer-bench"
    if not (peer_dir / "node_modules" / "oidc-provider").is_dir():
        log(f"installing the peer (node-oidc-provider) into {peer_dir}")
        peer_dir.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "server.mjs"):
            shutil.copy(PEER_SOURCE / name, peer_dir / name)
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund"], cwd=peer_dir, check=True)
    return peer_dir


class Wrk:
    """One wrk load; several at once are summed (one per scopegate instance)."""

    def __init__(self, duration, connections):
        self.duration = duration
        self.connections = connections

    def run(self, script, urls, env):
        share = max(1, self.connections // len(urls))
        threads = 2 if len(urls) == 1 else 1
        processes = [
            subprocess.Popen(
                ["wrk", f"-t{threads}", f"-c{share}", f"-d{self.duration}s", "--latency", "-s", str(script), url],
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, **env},
            )
            for url in urls
        ]
        outputs = [process.communicate()[0] for process in processes]
        rate = sum(float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)) for out in outputs)
        p99 = max(parse_ms(re.search(r"\s99%\s+(\S+)", out).group(1)) for out in outputs)
        failed = sum(int(m.group(1)) for out in outputs for m in re.finditer(r"Non-2xx or 3xx responses: (\d+)", out))
        errors = sum(
            int(n) for out in outputs for m in re.finditer(r"Socket errors: (.*)", out) for n in re.findall(r"\d+", m.group(1))
        )
        answered = sum(int(re.search(r"(\d+) requests in", out).group(1)) for out in outputs)
        return {"rate": rate, "p99_ms": p99, "failed": failed + errors, "requests": answered}


def parse_ms(text):
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


class Peer:
    def __init__(self, peer_dir, jwt):
        self.port = free_port()
        env = {**os.environ, "PORT": str(self.port), "PEER_JWT": "1" if jwt else "0"}
        self.process = subprocess.Popen(
            ["node", "server.mjs"], cwd=peer_dir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.base = f"http://127.0.0.1:{self.port}"
        wait_until_up(self.base + "/.well-known/openid-configuration", self.process)

    def token(self, scope="accounts"):
        return post_form(self.base + "/token", PEER_BASIC, {"grant_type": "client_credentials", "scope": scope})["access_token"]

    def stop(self):
        self.process.terminate()
        self.process.wait()


class Scopegate:
    """A scopegate database with the bench's scopes and clients, and its running instances."""

    def __init__(self, binary, workdir, database_url):
        self.binary = binary
        self.workdir = workdir
        self.database_url = database_url
        self.instances = []

    def cli(self, *args):
        command = [str(self.binary), "--database-url", self.database_url, "--keys-dir", str(self.workdir / "keys"), *args]
        env = {**os.environ, "SCOPEGATE_LOG": "warn"}
        return subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout

    def prepare(self):
        document = {
            "scopes": [
                {"name": "accounts", "short_description": "Accounts", "children": [
                    {"name": "accounts.balance", "short_description": "Balances"}]},
                {"name": "metered", "short_description": "Counted", "max_access_count": 2_000_000_000},
            ]
        }
        (self.workdir / "scopes.json").write_text(json.dumps(document))
        self.cli("scope", "import", str(self.workdir / "scopes.json"))
        bench = json.loads(self.cli("client", "create", "--name", "Bench", "--grant-type", "client_credentials"))
        rs = json.loads(self.cli("client", "create", "--name", "Bank API", "--can-introspect"))
        self.basic = base64.b64encode(f"{bench['client_id']}:{bench['client_secret']}".encode()).decode()
        self.rs_basic = base64.b64encode(f"{rs['client_id']}:{rs['client_secret']}".encode()).decode()

    def start(self, count):
        for _ in range(count):
            port = free_port()
            command = [str(self.binary), "--database-url", self.database_url, "--keys-dir", str(self.workdir / "keys"),
                       "serve", "--bind", f"127.0.0.1:{port}"]
            process = subprocess.Popen(command, env={**os.environ, "SCOPEGATE_LOG": "info"},
                                       stdout=subprocess.DEVNULL, stderr=open(self.workdir / f"server-{port}.log", "w"))
            wait_until_up(f"http://127.0.0.1:{port}/readyz", process)
            self.instances.append((f"http://127.0.0.1:{port}", process))

    def urls(self, path):
        return [base + path for base, _ in self.instances]

    def token(self, scope):
        base = self.instances[0][0]
        return post_form(base + "/token", self.basic, {"grant_type": "client_credentials", "scope": scope})["access_token"]

    def stop(self):
        for _, process in self.instances:
            process.terminate()
            process.wait()


def seed_big(scopegate, postgres):
    """100,000 scopes through the registry's own import; 100,000 clients with one consent each
    holding ten grants (1,000,000) written straight into the tables, as years of use would."""
    started = time.time()
    scopes = []
    for top in range(100):
        children = [{"name": f"big{top}.s{i}", "short_description": "Seeded"} for i in range(999)]
        scopes.append({"name": f"big{top}", "short_description": "Seeded", "children": children})
    (scopegate.workdir / "big.json").write_text(json.dumps({"scopes": scopes}))
    scopegate.cli("scope", "import", str(scopegate.workdir / "big.json"))
    statements = [
        "INSERT INTO clients (client_id, name, confidential, secret_hash, grant_types, created_at) "
        "SELECT 'seed-' || n, 'Seeded ' || n, TRUE, 'x', '[\"client_credentials\"]', '2026-01-01 00:00:00' FROM series",
        "INSERT INTO consents (id, subject, user_id, client_id, is_default, created_at, updated_at) "
        "SELECT 'seed-' || n, 'seed-' || n, NULL, 'seed-' || n, TRUE, '2026-01-01 00:00:00', '2026-01-01 00:00:00' FROM series",
        "INSERT INTO grants (consent_id, scope_name, granted_at, access_count) "
        "SELECT 'seed-' || n, 'big' || (n % 100) || '.s' || ((n * 7 + k * 97) % 999), '2026-01-01 00:00:00', k "
        "FROM series CROSS JOIN (SELECT 0 AS k UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL "
        "SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) AS ten",
    ]
    if postgres:
        series = "WITH series AS (SELECT generate_series(0, 99999) AS n) "
        script = "BEGIN;\n" + "".join(series + statement + ";\n" for statement in statements) + "COMMIT;\nANALYZE;\n"
        subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", scopegate.database_url], input=script, text=True,
                       check=True, stdout=subprocess.DEVNULL)
    else:
        path = scopegate.database_url.removeprefix("sqlite://")
        db = sqlite3.connect(path)
        db.execute("CREATE TEMP TABLE series (n INTEGER PRIMARY KEY)")
        db.executemany("INSERT INTO series VALUES (?)", ((n,) for n in range(100_000)))
        for statement in statements:
            db.execute(statement)
        db.commit()
        db.execute("ANALYZE")
        db.close()
    log(f"seeded 100,000 scopes, 100,000 clients, 1,000,000 grants in {time.time() - started:.0f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", metavar="ADMIN_URL")
    parser.add_argument("--big", action="store_true")
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--binary", type=Path)
    args = parser.parse_args()

    peer_dir = ensure_tools()
    binary = args.binary
    if binary is None:
        subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "scopegate"], cwd=REPO, check=True)
        binary = TARGET / "release" / "scopegate"
    workdir = Path(tempfile.mkdtemp(prefix="scopegate-side-by-side."))
    database_name = None
    if args.postgres:
        database_name = f"sg_side_{os.getpid()}"
        subprocess.run(["psql", "-q", args.postgres, "-c", f"CREATE DATABASE {database_name}"], check=True,
                       stdout=subprocess.DEVNULL)
        database_url = args.postgres.rsplit("/", 1)[0] + "/" + database_name
    else:
        database_url = f"sqlite://{workdir}/bench.db"
    wrk = Wrk(args.duration, args.connections)
    scripts = PEER_SOURCE
    peers, scopegate = [], Scopegate(binary, workdir, database_url)
    try:
        scopegate.prepare()
        if args.big:
            seed_big(scopegate, bool(args.postgres))
        opaque, jwt = Peer(peer_dir, jwt=False), Peer(peer_dir, jwt=True)
        peers = [opaque, jwt]
        scopegate.start(2 if args.postgres else 1)

        rows = []
        log("client credentials …")
        peer_opaque = wrk.run(scripts / "token.lua", [opaque.base + "/token"], {"BASIC": PEER_BASIC})
        peer_jwt = wrk.run(scripts / "token.lua", [jwt.base + "/token"], {"BASIC": PEER_BASIC})
        ours = wrk.run(scripts / "token.lua", scopegate.urls("/token"), {"BASIC": scopegate.basic, "SCOPE": "accounts"})
        best = max(peer_opaque["rate"], peer_jwt["rate"])
        rows.append(("client credentials", best, ours, f"peer opaque {peer_opaque['rate']:,.0f}/s, ES256 JWT {peer_jwt['rate']:,.0f}/s"))

        log(f"minting {DISTINCT_TOKENS} tokens on each side …")
        peer_tokens, jwt_tokens, metered_tokens = workdir / "peer.txt", workdir / "jwt.txt", workdir / "metered.txt"
        peer_tokens.write_text("\n".join(opaque.token() for _ in range(DISTINCT_TOKENS)) + "\n")
        jwt_tokens.write_text("\n".join(scopegate.token("accounts") for _ in range(DISTINCT_TOKENS)) + "\n")
        metered_tokens.write_text("\n".join(scopegate.token("metered") for _ in range(DISTINCT_TOKENS)) + "\n")

        log("introspection …")
        peer_introspection = wrk.run(scripts / "introspect.lua", [opaque.base + "/token/introspection"],
                                     {"BASIC": PEER_RS_BASIC, "TOKENS_FILE": str(peer_tokens)})
        ours_jwt = wrk.run(scripts / "introspect.lua", scopegate.urls("/introspect"),
                           {"BASIC": scopegate.rs_basic, "TOKENS_FILE": str(jwt_tokens)})
        rows.append(("introspection (JWT)", peer_introspection["rate"], ours_jwt, "peer: opaque tokens"))
        ours_counted = wrk.run(scripts / "introspect.lua", scopegate.urls("/introspect"),
                               {"BASIC": scopegate.rs_basic, "TOKENS_FILE": str(metered_tokens)})
        rows.append(("counted introspection", peer_introspection["rate"], ours_counted, "peer: uncounted, opaque"))

        counted = count_check(scopegate, metered_tokens)
        peer_rss = max(rss_mb(opaque.process.pid), rss_mb(jwt.process.pid))
        our_rss = [rss_mb(process.pid) for _, process in scopegate.instances]
        report(args, rows, peer_rss, our_rss, counted)
    finally:
        for peer in peers:
            peer.stop()
        scopegate.stop()
        if database_name:
            subprocess.run(["psql", "-q", args.postgres, "-c", f"DROP DATABASE IF EXISTS {database_name}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(workdir, ignore_errors=True)


def count_check(scopegate, tokens_file):
    """What the database counted: every token shares the client's one grant of `metered`, so its
    count is the number of counted introspections (less the one made here to read it)."""
    token = tokens_file.read_text().split()[0]
    body = post_form(scopegate.instances[0][0] + "/introspect", scopegate.rs_basic, {"token": token})
    return 2_000_000_000 - body["scope_limits"]["metered"]["remaining_accesses"] - 1


def report(args, rows, peer_rss, our_rss, counted):
    backend = "PostgreSQL, 2 instances on one database" if args.postgres else "SQLite"
    size = "big database (100k scopes, 100k clients, 1M grants)" if args.big else "small database"
    print(f"scopegate vs node-oidc-provider — {backend}, {size}; wrk {args.connections} connections, {args.duration} s each")
    print(f"{'path':<24}{'peer /s':>10}{'ours /s':>10}{'ratio':>8}{'goal':>7}  {'our p99':>9}  note")
    for name, peer, ours, note in rows:
        ratio = ours["rate"] / peer
        goal = GOALS[name]
        verdict = "met" if ratio >= goal and ours["failed"] == 0 else "MISSED"
        failures = f", {ours['failed']} failed" if ours["failed"] else ""
        print(f"{name:<24}{peer:>10,.0f}{ours['rate']:>10,.0f}{ratio:>7.2f}×{goal:>5.1f}× {ours['p99_ms']:>7.1f}ms  "
              f"{verdict}; {note}{failures}")
    rss = " + ".join(f"{mb:.1f}" for mb in our_rss)
    ratio = peer_rss / max(our_rss)
    verdict = "met" if ratio >= 4 else "MISSED"
    print(f"{'RSS after the loads, MB':<24}{peer_rss:>10.1f} {rss:>9}   1/{ratio:.1f} (goal 1/4) {verdict}")
    answered = rows[2][2]["requests"]
    # wrk stops with up to one request per connection still in flight: answered after it stopped.
    verdict = "consistent" if 0 <= counted - answered <= args.connections else "MISMATCH"
    print(f"counted introspection: {counted:,} accesses stored, {answered:,} answers received by wrk "
          f"(the rest were in flight when it stopped): {verdict}")


if __name__ == "__main__":
    main()
