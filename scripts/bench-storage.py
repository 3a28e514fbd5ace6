#!/usr/bin/env python3
"""What the county takes on disk: a fresh release server, `simulate --seed 2017` against it, a
clean stop, then the store's size beside the JSON bytes of the submissions it received.

    cargo build --release && scripts/bench-storage.py                 # sled: du -sb <data>/sled
    scripts/bench-storage.py postgres://user@host/empty_database       # PostgreSQL: its tables

On PostgreSQL it reports the server's tables with their TOAST and indexes (pg_total_relation_size),
not the database's catalog, which an empty database already has."""

import os
import re
import signal
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(ROOT, "target", "release", "survey-server")
PASSWORD = "bench-storage-admin"


def start(data_dir, store):
    env = dict(os.environ, SURVEY_LOG="warn", SURVEY_ADMIN_PASSWORD=PASSWORD)
    args = [BINARY, "serve", "--bind", "127.0.0.1:0", "--data-dir", data_dir,
            "--schemas-dir", os.path.join(ROOT, "schemas")]
    if store:
        env["SURVEY_STORE"] = store
    server = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True)
    line = server.stdout.readline()
    match = re.match(r"survey-server listening on (\S+)", line)
    if not match:
        server.kill()
        sys.exit(f"the server did not start: {line!r}")
    return server, match.group(1)


def simulate(address):
    env = dict(os.environ, SURVEY_ADMIN_PASSWORD=PASSWORD)
    done = subprocess.run([BINARY, "simulate", "--seed", "2017", "--server", address],
                          env=env, capture_output=True, text=True, check=True)
    print(done.stdout.strip().splitlines()[0])
    created = re.search(r"created (\d+) \((\d+) bytes of JSON\)", done.stdout)
    if not created:
        sys.exit(f"simulate printed no byte count:\n{done.stdout}")
    return int(created.group(1)), int(created.group(2))


def du(path):
    total = 0
    for parent, _, files in os.walk(path):
        total += os.lstat(parent).st_size
        total += sum(os.lstat(os.path.join(parent, name)).st_size for name in files)
    return total


def postgres_tables(store):
    query = ("SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
             "JOIN pg_namespace n ON n.oid = c.relnamespace "
             "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'S')")
    out = subprocess.run(["psql", store, "-qXAtc", query], capture_output=True, text=True,
                         check=True)
    return int(out.stdout.strip())


def main():
    store = sys.argv[1] if len(sys.argv) > 1 else None
    with tempfile.TemporaryDirectory() as data_dir:
        server, address = start(data_dir, store)
        try:
            created, raw = simulate(address)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
        if store:
            where, size = "PostgreSQL's tables (with TOAST and indexes)", postgres_tables(store)
        else:
            where, size = "du -sb <data>/sled", du(os.path.join(data_dir, "sled"))
    print(f"{created} submissions received, {raw} bytes of JSON")
    print(f"{where}: {size} bytes = {size / raw:.2f} × the JSON, {size / created:.0f} bytes per submission")


if __name__ == "__main__":
    main()
