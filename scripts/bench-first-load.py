#!/usr/bin/env python3
"""First use of the field app on a village connection: Chromium at DevTools' "Slow 3G" (2 s round
trip, 400 kbit/s each way) with the CPU slowed 4x, as on a mid-range phone. Prints the bytes that
crossed the wire (all of them, headers included, counted by a relay in front of the server) and how
long each step took: the sign-in screen, signing in until the forms are listed, and opening the
questionnaire.

    cargo build --release && scripts/bench-first-load.py            # target/release/survey-server
    SURVEY_BINARY=target/debug/survey-server scripts/bench-first-load.py
"""

import os
import socket
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))
os.environ.setdefault("SURVEY_BINARY", str(ROOT / "target" / "release" / "survey-server"))

from harness import CHROMIUM, CHROMIUM_ARGS, PASSWORD, ADMIN_PASSWORD, Api, Server  # noqa: E402
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


def main():
    server = Server()
    server.start()
    try:
        Api(server.url, "admin", ADMIN_PASSWORD).request("POST", "/api/v1/users", {
            "username": "fw-bench", "password": PASSWORD, "role": "field_worker", "display_name": "调查员"})
        relay = CountingRelay(server.port)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 360, "height": 740})
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
            page.evaluate("navigator.serviceWorker.ready.then(() => true)")
            page.wait_for_timeout(3000)
            step("service worker holds the app", time.monotonic())
            browser.close()
        print('first use at "Slow 3G" (2 s RTT, 400 kbit/s) with 4x CPU slowdown, 360x740:')
        for name, seconds, received in steps:
            shown = "" if name.startswith("service worker") else f"{seconds:6.1f} s"
            print(f"  {name:<32} {shown:>8}   {received / 1024:7.1f} KiB received in all")
    finally:
        server.close()


if __name__ == "__main__":
    main()
