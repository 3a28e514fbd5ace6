#!/usr/bin/env python3
"""Resumable uploads over loopback: 10, 100 and 200 MB files sent as tus PATCHes of 1 MiB (what
the field app sends), then the same 100 MB sent by curl as one PATCH, to the same server on the
same machine. Prints MB/s for each, and the server's resident memory before and at its peak during
each upload: it must stay flat whatever the file size (bytes go to disk as they arrive).

    cargo build --release && scripts/bench-upload.py
    SURVEY_BINARY=target/debug/survey-server scripts/bench-upload.py
"""

import base64
import hashlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))
os.environ.setdefault("SURVEY_BINARY", str(ROOT / "target" / "release" / "survey-server"))

from harness import ADMIN_PASSWORD, PASSWORD, Api, Server  # noqa: E402

MIB = 1024 * 1024
MB = 1_000_000
FORM = json.loads((ROOT / "tests" / "fixtures" / "evidence-form.json").read_text())


def resident_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class PeakMemory:
    """Samples a process's resident memory every 5 ms while in a `with` block."""

    def __init__(self, pid):
        self.pid, self.peak, self.running = pid, 0, False

    def __enter__(self):
        self.before = resident_kib(self.pid)
        self.running = True
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()
        return self

    def sample(self):
        while self.running:
            self.peak = max(self.peak, resident_kib(self.pid))
            time.sleep(0.005)

    def __exit__(self, *_):
        self.running = False
        self.thread.join()


def file_of(size):
    """A JPEG's first bytes and then `size` bytes of noise (no compression anywhere helps)."""
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01" + os.urandom(size)


class County:
    def __init__(self, server):
        self.server = server
        admin = Api(server.url, "admin", ADMIN_PASSWORD)
        admin.request("POST", "/api/v1/forms", {"id": "evidence", "version": "1", "title": "入户核查", "schema": FORM})
        admin.request("POST", "/api/v1/users", {"username": "wei", "password": PASSWORD, "role": "field_worker", "display_name": "韦"})
        self.worker = Api(server.url, "wei", PASSWORD)

    def visit(self, photo_name):
        submission = str(uuid.uuid4())
        data = {"household_id": "4510220170001", "township": "思林镇", "house_photo": photo_name, "consent_signature": "s.png"}
        self.worker.request("POST", "/api/v1/forms/evidence/submissions", {"id": submission, "form_version": "1", "data": data})
        return submission

    def headers(self, **more):
        return {"Authorization": f"Bearer {self.worker.token}", "Tus-Resumable": "1.0.0", **more}

    def create(self, data, name):
        submission = self.visit(name)
        b64 = lambda text: base64.b64encode(text.encode()).decode()  # noqa: E731
        metadata = f"submission {b64(submission)},filename {b64(name)},filetype {b64('image/jpeg')},sha256 {b64(hashlib.sha256(data).hexdigest())}"
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port)
        connection.request("POST", "/api/v1/uploads", headers=self.headers(**{"Upload-Length": str(len(data)), "Upload-Metadata": metadata}))
        answer = connection.getresponse()
        answer.read()
        assert answer.status == 201, answer.status
        return connection, answer.getheader("location")

    def upload_in_chunks(self, data, name, chunk=MIB):
        connection, location = self.create(data, name)
        started = time.perf_counter()
        for offset in range(0, len(data), chunk):
            body = data[offset:offset + chunk]
            connection.request("PATCH", location, body=body, headers=self.headers(**{
                "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"}))
            answer = connection.getresponse()
            answer.read()
            assert answer.status == 204, (answer.status, offset)
        return time.perf_counter() - started

    def upload_with_curl(self, data, name):
        _, location = self.create(data, name)
        with tempfile.NamedTemporaryFile() as file:
            file.write(data)
            file.flush()
            headers = self.headers(**{"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
            command = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PATCH", "--data-binary", f"@{file.name}"]
            for key, value in headers.items():
                command += ["-H", f"{key}: {value}"]
            started = time.perf_counter()
            status = subprocess.run(command + [self.server.url + location], capture_output=True, text=True, check=True).stdout
            took = time.perf_counter() - started
        assert status == "204", status
        return took


def main():
    if not shutil.which("curl"):
        sys.exit("curl is needed for the comparison (apt install curl)")
    server = Server(SURVEY_MAX_ATTACHMENT_BYTES=str(256 * MIB))
    server.start()
    try:
        county = County(server)
        pid = server.process.pid
        print(f"server: {os.environ['SURVEY_BINARY']}, data on {server.data}")
        print(f"{'upload':<42} {'MB/s':>8} {'RSS before':>11} {'RSS peak':>10}")
        for size, name, send in [
            (10 * MB, "ten.jpg", county.upload_in_chunks),
            (100 * MB, "hundred.jpg", county.upload_in_chunks),
            (200 * MB, "two-hundred.jpg", county.upload_in_chunks),
            (100 * MB, "curl.jpg", county.upload_with_curl),
        ]:
            data = file_of(size)
            with PeakMemory(pid) as memory:
                took = send(data, name)
            how = "tus PATCHes of 1 MiB (keep-alive)" if send == county.upload_in_chunks else "curl, one PATCH"
            label = f"{size // MB} MB, {how}"
            print(f"{label:<42} {len(data) / MB / took:>8.1f} {memory.before / 1024:>8.1f} MiB {memory.peak / 1024:>6.1f} MiB")
    finally:
        server.close()


if __name__ == "__main__":
    main()
