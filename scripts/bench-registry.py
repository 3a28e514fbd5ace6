#!/usr/bin/env python3
"""Importing a large register: a GB18030 CSV of N registered people (default 500,000, in households
of one to five, across the county's ten townships), sent to a release server with
`PUT /api/v1/forms/labour-survey/registry`, twice (the second replaces the first as a new version).
Prints the time each import took, rows per second, and the server's resident memory before and at
its peak: it must stay bounded whatever the register's size.

    cargo build --release && scripts/bench-registry.py [ROWS]
"""

import datetime
import http.client
import json
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))
os.environ.setdefault("SURVEY_BINARY", str(ROOT / "target" / "release" / "survey-server"))

from harness import ADMIN_PASSWORD, Api, Server  # noqa: E402

TOWNSHIPS = ["平马镇", "祥周镇", "林逢镇", "思林镇", "印茶镇", "江城镇", "朔良镇", "义圩镇", "那拔镇", "作登瑶族乡"]
SURNAMES = "黄韦农陆罗蒙覃梁李周"
GIVEN = ["秀英", "志强", "桂芳", "建华", "丽", "明", "海燕", "国庆", "春梅", "文"]
WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def resident_id(first17):
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, WEIGHTS)) % 11]


def register(rows, path):
    rng = random.Random(2017)
    written = 0
    household = 0
    with open(path, "w", encoding="gb18030", newline="") as out:
        out.write("household_id,township,village,name,id_number,gender,birth_date\r\n")
        while written < rows:
            household += 1
            township = TOWNSHIPS[household % len(TOWNSHIPS)]
            for _ in range(min(rng.randint(1, 5), rows - written)):
                written += 1
                # 500 people born on each day from 1960 on: every ID number differs.
                born = datetime.date(1960, 1, 1) + datetime.timedelta(days=written // 500)
                year, month, day = born.year, born.month, born.day
                male = rng.random() < 0.5
                serial = (written % 500) * 2 + (1 if male else 0)
                first17 = f"452223{year:04}{month:02}{day:02}{serial:03}"
                name = rng.choice(SURNAMES) + rng.choice(GIVEN)
                out.write(f"{4510220000000 + household},{township},那塘村,{name},{resident_id(first17)},"
                          f"{'男' if male else '女'},{year:04}-{month:02}-{day:02}\r\n")
    return household


def resident_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main():
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 500_000
    server = Server(SURVEY_MAX_REGISTRY_BYTES=str(1024 * 1024 * 1024), SURVEY_UPLOAD_DEADLINE="600")
    server.start()
    try:
        admin = Api(server.url, "admin", ADMIN_PASSWORD)
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / "register.csv"
            households = register(rows, path)
            size = path.stat().st_size
            print(f"register: {rows:,} people in {households:,} households, {size / 1e6:.1f} MB of GB18030")
            for attempt in (1, 2):
                peak, running = [0], [True]

                def sample():
                    while running[0]:
                        peak[0] = max(peak[0], resident_kib(server.process.pid))
                        time.sleep(0.01)

                before = resident_kib(server.process.pid)
                sampler = threading.Thread(target=sample, daemon=True)
                sampler.start()
                started = time.perf_counter()
                connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=3600)
                with open(path, "rb") as body:
                    connection.request("PUT", "/api/v1/forms/labour-survey/registry", body=body, headers={
                        "Authorization": f"Bearer {admin.token}", "Content-Type": "text/csv",
                        "Content-Length": str(size)})
                    answer = connection.getresponse()
                    result = json.loads(answer.read())
                took = time.perf_counter() - started
                running[0] = False
                sampler.join()
                assert answer.status == 200, result
                print(f"import {attempt}: {took:.1f} s, {rows / took:,.0f} rows/s, version {result['version']}; "
                      f"server RSS {before / 1024:.0f} MiB before, {peak[0] / 1024:.0f} MiB at its peak")
    finally:
        server.close()


if __name__ == "__main__":
    main()
