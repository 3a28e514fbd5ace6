#!/usr/bin/env python3
"""Failover rehearsal (kept out of CI): does an acknowledged submission survive the loss of the
primary database, and how long is the county without service?

On loopback: a PostgreSQL primary and a synchronous streaming standby (each commit is on both
before the server answers 201), two API nodes reaching them through one multi-host URL with
`target_session_attrs=read-write`, and phones submitting to both nodes, each retrying what was
not answered (as the field app does). Mid-load the primary is killed with kill -9; the standby
has `synchronous_standby_names` cleared (it has no standby of its own to wait for) and is
promoted with `pg_ctl promote`; the nodes carry on. At the end every submission that was
answered 201 must be in the new primary, and the seconds from the last answer before the kill
to the first after it are printed.

    cargo build --release && scripts/rehearse-failover.py [SECONDS_BEFORE] [SECONDS_AFTER]

With --crash-backend, one database backend serving the nodes is killed with kill -9 instead: the
primary then resets itself (crash recovery, every connection dropped, what was committed
asynchronously gone) without a new start time, and nothing is promoted.
"""

import json
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))
sys.path.insert(0, str(ROOT / "scripts"))
import os  # noqa: E402

os.environ.setdefault("SURVEY_BINARY", str(ROOT / "target" / "release" / "survey-server"))
from harness import ADMIN_PASSWORD, Api, Server  # noqa: E402
from pg_cluster import Cluster  # noqa: E402

HOUSEHOLD = json.loads((ROOT / "tests" / "fixtures" / "household.json").read_text())
PHONES = 8


class Phone(threading.Thread):
    """Submits one household after another to its node; what is not answered 201 is sent again."""

    def __init__(self, node, token, stop, log):
        super().__init__(daemon=True)
        self.node, self.token, self.stop, self.log = node, token, stop, log
        self.acknowledged = []

    def run(self):
        pending = None
        while not self.stop.is_set():
            if pending is None:
                pending = {"id": str(uuid.uuid4()), "form_version": "1", "data": HOUSEHOLD}
            request = urllib.request.Request(
                f"{self.node.url}/api/v1/forms/labour-survey/submissions",
                data=json.dumps(pending).encode(), method="POST",
                headers={"content-type": "application/json", "authorization": f"Bearer {self.token}"})
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:
                    status = answer.status
            except urllib.error.HTTPError as error:
                status = error.code
            except OSError:
                status = 0
            now = time.monotonic()
            self.log.append((now, status))
            if status == 201:
                self.acknowledged.append(pending["id"])
                pending = None
            else:
                time.sleep(0.2)


def main():
    crash_backend = "--crash-backend" in sys.argv
    numbers = [a for a in sys.argv[1:] if not a.startswith("--")]
    before = float(numbers[0]) if numbers else 5
    after = float(numbers[1]) if len(numbers) > 1 else 10
    # fsync on: this is about durability. synchronous_standby_names is set with ALTER SYSTEM
    # once the standby streams (before that, every commit would wait for it).
    settings = {"wal_level": "replica", "max_wal_senders": "5", "hot_standby": "on",
                "synchronous_commit": "on", "fsync": "on"}
    primary = Cluster("primary", settings).init().start()
    standby = None
    nodes = []
    try:
        primary.psql("CREATE DATABASE survey")
        standby = Cluster("standby", dict(settings)).base_backup_of(primary, "standby1").start()
        # Both configured alike, as a real pair is: on the standby it only matters once promoted.
        for cluster in (primary, standby):
            cluster.psql("ALTER SYSTEM SET synchronous_standby_names = 'standby1'")
            cluster.psql("SELECT pg_reload_conf()")
        for _ in range(100):
            if primary.psql("SELECT sync_state FROM pg_stat_replication") == "sync":
                break
            time.sleep(0.1)
        else:
            raise SystemExit("the standby never became synchronous")
        url = (f"postgres://postgres@127.0.0.1:{primary.port},127.0.0.1:{standby.port}/survey"
               "?target_session_attrs=read-write")
        shared = primary.root / "attachments"
        for _ in range(2):
            node = Server(SURVEY_STORE=url, SURVEY_ATTACHMENTS_DIR=str(shared),
                          SURVEY_PG_CONNECT_TIMEOUT="2", SURVEY_LOG="warn")
            nodes.append(node)
        # One at a time: the first creates the tables, the key and admin (a race is safe too,
        # and tests/api/nodes.rs shows it; here the point is the failover).
        for node in nodes:
            node.start()
        token = Api(nodes[0].url, "admin", ADMIN_PASSWORD).token
        stop, log = threading.Event(), []
        phones = [Phone(nodes[i % 2], token, stop, log) for i in range(PHONES)]
        for phone in phones:
            phone.start()
        time.sleep(before)

        killed_at = time.monotonic()
        if crash_backend:
            backend = int(primary.psql("SELECT pid FROM pg_stat_activity "
                                       "WHERE application_name = 'survey-server' LIMIT 1"))
            os.kill(backend, 9)
        else:
            primary.kill9()
            standby.psql("ALTER SYSTEM SET synchronous_standby_names = ''")
            standby.psql("SELECT pg_reload_conf()")
            standby.promote()
        promoted_at = time.monotonic()
        time.sleep(after)
        stop.set()
        for phone in phones:
            phone.join(timeout=60)

        acknowledged = [i for phone in phones for i in phone.acknowledged]
        stored = {item["id"] for item in Api(nodes[1].url, "admin", ADMIN_PASSWORD).submissions()}
        lost = [i for i in acknowledged if i not in stored]
        # The longest stretch without a single 201, from a second before the kill to the end.
        answered = sorted(t for t, s in log if s == 201 and t > killed_at - 1)
        gaps = [(b - a, a) for a, b in zip(answered, answered[1:])]
        longest, gap_start = max(gaps, default=(float("inf"), killed_at))
        refused = sum(1 for t, s in log if s != 201 and t > killed_at)
        print(f"acknowledged: {len(acknowledged)} submissions ({PHONES} phones, 2 API nodes); "
              f"stored in the {'restarted primary' if crash_backend else 'promoted standby'}: "
              f"{len(stored)}")
        print(f"lost: {len(lost)}")
        if not crash_backend:
            print(f"promotion took {promoted_at - killed_at:.2f} s after the kill")
        if not any(t > promoted_at for t in answered):
            print("no submission was answered 201 after the promotion")
            return 1
        print(f"without service: {longest:.2f} s at most between two 201s (from "
              f"{gap_start - killed_at:+.2f} s after the kill); {refused} answers after the kill "
              "were 503/500 or none, each retried by its phone")
        return 1 if lost else 0
    finally:
        for node in nodes:
            node.close()
        if standby:
            standby.close()
        primary.close()


if __name__ == "__main__":
    sys.exit(main())
