"""The real server, a proxy in front of it that can lose an answer, an admin's API client, and
Debian's Chromium driven by Playwright: what the field app's browser tests run on."""

import http.client
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("SURVEY_BINARY", ROOT / "target" / "debug" / "survey-server"))
CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
SHOTS = ROOT / "target" / "browser-shots"
ADMIN_PASSWORD = "county-admin-2026"
PASSWORD = "field-work-2026"
# Chromium on a closed network: no calls home, no first-run screens.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """survey-server on its own port and data directory, stopped and started like the real thing."""

    def __init__(self, **settings):
        """`settings` are extra SURVEY_* variables, e.g. SURVEY_UPLOAD_EXPIRY="2"."""
        self.settings = settings
        self.data = tempfile.mkdtemp(prefix="survey-browser-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None
        self.log = open(Path(self.data) / "server.log", "ab")

    def start(self):
        env = dict(os.environ, SURVEY_ADMIN_PASSWORD=ADMIN_PASSWORD, SURVEY_DATA_DIR=self.data,
                   SURVEY_BIND=f"127.0.0.1:{self.port}", SURVEY_SCHEMAS_DIR=str(ROOT / "schemas"),
                   SURVEY_CACHE_MB="64", **self.settings)
        self.process = subprocess.Popen([str(BINARY)], env=env, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"the server did not start; see {self.data}/server.log")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)
        self.process = None

    def kill(self):
        """kill -9: no shutdown, no final flush."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None

    def close(self):
        self.stop()
        self.log.close()
        shutil.rmtree(self.data, ignore_errors=True)


class LossyProxy:
    """Forwards every request to the server; told to, it lets the server answer the next batch
    uploads and then hangs up on the phone instead of passing the answers on (responses lost on a
    village link). While the server is down, the phone's connections are cut, as on a dead network."""

    def __init__(self, upstream_port):
        self.batches_to_lose = 0
        self.lost = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def forward(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
                upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=30)
                try:
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    payload = answer.read()
                except OSError:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                finally:
                    upstream.close()
                if proxy.batches_to_lose > 0 and self.command == "POST" and self.path.endswith("/submissions/batch"):
                    proxy.batches_to_lose -= 1
                    proxy.lost += 1
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response_only(answer.status, answer.reason)
                for key, value in answer.getheaders():
                    if key.lower() not in ("connection", "keep-alive", "transfer-encoding", "content-length"):
                        self.send_header(key, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Api:
    """The county's staff, through the API: an admin or a supervisor with a token."""

    def __init__(self, base, username, password):
        self.base = base
        self.token = self.request("POST", "/api/v1/auth/login", {"username": username, "password": password}, token=False)["access_token"]

    def request(self, method, path, body=None, token=True):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            request.add_header("content-type", "application/json")
        if token:
            request.add_header("authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                raw = answer.read()
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{method} {path}: {error.code} {error.read().decode()}") from None
        return json.loads(raw) if raw else None

    def publish_workbook(self, path):
        """Publishes an XLSForm workbook (`.xlsx` or `.xls`) as it is."""
        media = {".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                 ".xls": "application/vnd.ms-excel"}[Path(path).suffix]
        request = urllib.request.Request(self.base + "/api/v1/forms", data=Path(path).read_bytes(), method="POST")
        request.add_header("content-type", media)
        request.add_header("authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())

    def submissions(self, form="labour-survey"):
        items, cursor = [], None
        while True:
            page = self.request("GET", f"/api/v1/forms/{form}/submissions?limit=1000" + (f"&cursor={cursor}" if cursor else ""))
            items += page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return items

    def raw(self, submission_id):
        return self.request("GET", f"/api/v1/submissions/{submission_id}/raw")


def start_with_admin(**settings):
    """A started server (with `settings`, see `Server`) and its admin; screenshots have their folder."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    server = Server(**settings)
    server.start()
    return server, Api(server.url, "admin", ADMIN_PASSWORD)


class Browser:
    """Debian's Chromium through Playwright; what any page it opens throws is kept in `errors`."""

    def __init__(self, *extra_args):
        from playwright.sync_api import sync_playwright
        self.playwright = sync_playwright().start()
        self.browser = self.playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + list(extra_args))
        self.errors = []

    def page(self, width, height, **options):
        """A new context (its own storage) and a page of `width`×`height`, Chinese first."""
        context = self.browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN", **options)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        return context, page

    def close(self):
        self.browser.close()
        self.playwright.stop()
