"""Load a page in headless Chromium and report console errors and broken images (DevTools protocol).

Uses Debian's `chromium`; installs it with apt when missing and we may (root, apt present). Callers skip
their test with the reason when no browser can be had.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
    "--remote-allow-origins=*",
]


def find_or_install_chromium() -> tuple[str | None, str]:
    """(path, why-not). Tries PATH, then `apt-get install -y chromium` when running as root."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path, ""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None, "chromium is not installed and cannot be installed here (needs root and apt-get)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

    def apt(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
        return subprocess.run(["apt-get", *args], capture_output=True, text=True, timeout=timeout, env=env)

    try:
        res = apt("install", "-y", "-q", "chromium")
        if res.returncode != 0:  # a stale package list: refresh it once and retry
            apt("update", "-q", timeout=300)
            res = apt("install", "-y", "-q", "chromium")
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"installing chromium failed: {e}"
    path = shutil.which("chromium")
    if path is None:
        tail = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["unknown error"]
        return None, f"installing chromium with apt-get failed: {tail[0]}"
    return path, ""


@dataclass
class PageCheck:
    console_errors: list[str] = field(default_factory=list)
    images: int = 0
    broken_images: list[str] = field(default_factory=list)
    title: str = ""


def check_page(chromium: str, url: str, timeout: float = 60.0) -> PageCheck:
    import websocket

    with tempfile.TemporaryDirectory(prefix="sparrow-chromium-") as profile:
        proc = subprocess.Popen(
            [chromium, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + timeout
            while not port_file.is_file() or not port_file.read_text().strip():
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("chromium did not start its DevTools endpoint")
                time.sleep(0.1)
            port = int(port_file.read_text().split()[0])
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
                targets = json.load(r)
            page = next(t for t in targets if t.get("type") == "page")
            ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=timeout)
            return _drive(ws, url, timeout)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _drive(ws, url: str, timeout: float) -> PageCheck:
    check = PageCheck()
    next_id = 0

    def send(method: str, **params) -> int:
        nonlocal next_id
        next_id += 1
        ws.send(json.dumps({"id": next_id, "method": method, "params": params}))
        return next_id

    def wait_for(pred) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = json.loads(ws.recv())
            method = msg.get("method")
            if method == "Runtime.exceptionThrown":
                check.console_errors.append(msg["params"]["exceptionDetails"].get("text", "exception"))
            elif method == "Runtime.consoleAPICalled" and msg["params"].get("type") in ("error", "assert"):
                args = msg["params"].get("args", [])
                check.console_errors.append(
                    " ".join(str(a.get("value", a.get("description", ""))) for a in args)
                )
            elif method == "Log.entryAdded" and msg["params"]["entry"].get("level") == "error":
                check.console_errors.append(msg["params"]["entry"].get("text", "log error"))
            if pred(msg):
                return msg
        raise TimeoutError("page did not finish loading")

    for domain in ("Page", "Runtime", "Log"):
        rid = send(f"{domain}.enable")
        wait_for(lambda m, rid=rid: m.get("id") == rid)
    send("Page.navigate", url=url)
    wait_for(lambda m: m.get("method") == "Page.loadEventFired")
    expr = (
        "JSON.stringify({title: document.title, images: Array.from(document.images).map(i => "
        "({src: i.getAttribute('data-source') || i.src.slice(0, 40), ok: i.complete && i.naturalWidth > 0}))})"
    )
    rid = send("Runtime.evaluate", expression=expr, returnByValue=True)
    res = wait_for(lambda m: m.get("id") == rid)
    data = json.loads(res["result"]["result"]["value"])
    check.title = data["title"]
    check.images = len(data["images"])
    check.broken_images = [i["src"] for i in data["images"] if not i["ok"]]
    return check
