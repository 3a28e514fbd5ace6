#!/usr/bin/env python3
"""First use of the field app on a village connection: Chromium at DevTools' "Slow 3G" (2 s round
trip, 400 kbit/s each way) with the CPU slowed 4x, as on a mid-range phone. Prints the bytes that
crossed the wire (all of them, headers included, counted by a relay in front of the server) and how
long each step took: the sign-in screen, signing in until the forms are listed, and opening the
questionnaire.

    cargo build --release && scripts/bench-first-load.py            # target/release/survey-server
    scripts/bench-first-load.py --caddy    # through Caddy with `tls internal`: HTTPS and HTTP/2, as phones get it
    SURVEY_BINARY=target/debug/survey-server scripts/bench-first-load.py
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))
os.environ.setdefault("SURVEY_BINARY", str(ROOT / "target" / "release" / "survey-server"))

from harness import CHROMIUM, CHROMIUM_ARGS, PASSWORD, ADMIN_PASSWORD, Api, Server, free_port  # noqa: E402
from playwright.sync_api import expect, sync_playwright  # noqa: E402

SLOW_3G = {"offline": False, "latency": 2000, "downloadThroughput": 50_000, "uploadThroughput": 50_000}


class CountingRelay:
    """A TCP relay that counts the bytes the server sends to the browser."""

    def __init__(self, upstream_port):
        self.received = 0
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.upstream_port = upstream_port
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            client, _ = self.listener.accept()
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self.pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self.pipe, args=(upstream, client, True), daemon=True).start()

    def pipe(self, source, sink, count):
        try:
            while chunk := source.recv(65536):
                if count:
                    with self.lock:
                        self.received += len(chunk)
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def start_caddy(upstream_port):
    """Caddy in front, as deploy/Caddyfile.intranet has it (its own authority, not trusted here)."""
    port = free_port()
    config = tempfile.NamedTemporaryFile("w", suffix=".Caddyfile", delete=False)
    config.write(f"{{\n\tskip_install_trust\n\tadmin off\n}}\n"
                 f"https://127.0.0.1:{port} {{\n\ttls internal\n\tencode zstd gzip\n"
                 f"\treverse_proxy 127.0.0.1:{upstream_port}\n}}\n")
    config.close()
    caddy = subprocess.Popen([shutil.which("caddy") or "caddy", "run", "--config", config.name, "--adapter", "caddyfile"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return caddy, port
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("caddy did not start")


def main():
    via_caddy = "--caddy" in sys.argv
    server = Server()
    server.start()
    caddy = None
    try:
        Api(server.url, "admin", ADMIN_PASSWORD).request("POST", "/api/v1/users", {
            "username": "fw-bench", "password": PASSWORD, "role": "field_worker", "display_name": "调查员"})
        if via_caddy:
            caddy, port = start_caddy(server.port)
            relay = CountingRelay(port)
            relay.url = relay.url.replace("http://", "https://")
        else:
            relay = CountingRelay(server.port)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 360, "height": 740}, locale="zh-CN", ignore_https_errors=via_caddy)
            cdp = page.context.new_cdp_session(page)
            cdp.send("Network.enable")
            cdp.send("Network.emulateNetworkConditions", SLOW_3G)
            cdp.send("Emulation.setCPUThrottlingRate", {"rate": 4})
            steps = []

            def step(name, started):
                steps.append((name, time.monotonic() - started, relay.received))

            started = time.monotonic()
            page.goto(relay.url + "/")
            expect(page.get_by_role("button", name="登录", exact=True)).to_be_visible(timeout=120_000)
            step("sign-in screen shown", started)
            page.get_by_label("用户名", exact=True).fill("fw-bench")
            page.get_by_label("密码", exact=True).fill(PASSWORD)
            started = time.monotonic()
            page.get_by_role("button", name="登录", exact=True).click()
            title = "田东县建档立卡贫困劳动力就业情况调查"
            expect(page.get_by_role("button", name=title, exact=True)).to_be_visible(timeout=120_000)
            step("signed in, forms listed", started)
            started = time.monotonic()
            page.get_by_role("button", name=title, exact=True).click()
            expect(page.get_by_label("建档立卡户编号", exact=True)).to_be_visible(timeout=120_000)
            step("questionnaire open", started)
            browser.close()
        transport = "HTTPS/HTTP/2 through Caddy" if via_caddy else "HTTP/1.1 straight to the server"
        print(f'first use at "Slow 3G" (2 s RTT, 400 kbit/s) with 4x CPU slowdown, 360x740, {transport}:')
        for name, seconds, received in steps:
            print(f"  {name:<32} {seconds:6.1f} s   {received / 1024:7.1f} KiB received in all")
    finally:
        if caddy:
            caddy.terminate()
            caddy.wait()
        server.close()


if __name__ == "__main__":
    main()
