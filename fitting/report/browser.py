"""A minimal headless-Chromium driver over the DevTools protocol (stdlib only).

Chromium is started with ``--remote-debugging-pipe``: it reads protocol commands from file
descriptor 3 and writes replies and events to descriptor 4, each message a JSON object
terminated by a NUL byte. Used by the dashboard's browser test and by
``python -m fitting.report.dashboard --screenshot`` (Debian's ``chromium`` package).

Examples
--------
>>> with Browser.launch() as b:                                    # doctest: +SKIP
...     page = b.open("file:///tmp/index.html")
...     page.evaluate("document.title")
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time

from fitting.atomic_io import atomic_path

__all__ = ["Browser", "Page", "BrowserError", "find_chromium", "CHROMIUM_FLAGS"]

#: Flags for a quiet, offline, sandbox-free headless run (containers run as root).
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio")


class BrowserError(RuntimeError):
    """Chromium could not be started, died, or a protocol command failed or timed out."""


def find_chromium():
    """Path of a Chromium executable (``$CHROMIUM``, ``chromium``, ``chromium-browser``,
    ``google-chrome``), or None."""
    env = os.environ.get("CHROMIUM")
    if env and shutil.which(env):
        return shutil.which(env)
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """One headless Chromium process driven over the pipe. Use :meth:`launch`."""

    def __init__(self, proc, wfd, rfd, profile_dir, timeout):
        self.proc, self._w, self._r = proc, wfd, rfd
        self._profile_dir = profile_dir
        self.timeout = timeout
        self._buf = b""
        self._next_id = 0
        self.events: list = []

    @classmethod
    def launch(cls, executable=None, *, width=1400, height=2000, timeout=60.0) -> "Browser":
        """Start Chromium (``find_chromium()`` by default) with a fresh profile folder."""
        exe = executable or find_chromium()
        if exe is None:
            raise BrowserError("no chromium executable found (apt-get install chromium)")
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        profile_dir = tempfile.mkdtemp(prefix="chromium-profile-")

        def _fds():  # runs in the child before exec: put the pipe ends on fds 3 and 4
            a = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        args = [exe, *CHROMIUM_FLAGS, "--remote-debugging-pipe", f"--user-data-dir={profile_dir}",
                f"--window-size={width},{height}", "about:blank"]
        # close_fds=False: only inheritable descriptors (0-2 and the two set up above) reach
        # the child; every descriptor Python opens is non-inheritable (PEP 446).
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, preexec_fn=_fds, close_fds=False)
        os.close(to_child_r)
        os.close(from_child_w)
        return cls(proc, to_child_w, from_child_r, profile_dir, timeout)

    # ----------------------------------------------------------------- protocol
    def _read_message(self, deadline):
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("timed out waiting for chromium")
            ready, _, _ = select.select([self._r], [], [], min(left, 0.5))
            if not ready:
                if self.proc.poll() is not None:
                    raise BrowserError(f"chromium exited with status {self.proc.returncode}")
                continue
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise BrowserError("chromium closed the debugging pipe")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method, params=None, session=None, timeout=None) -> dict:
        """Send one command and return its ``result`` (events meanwhile go to :attr:`events`)."""
        self._next_id += 1
        mid = self._next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            data = data[os.write(self._w, data):]
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == mid:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_event(self, method, session=None, timeout=None) -> dict:
        """Wait for (and return) the first not yet consumed event ``method``."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for i, ev in enumerate(self.events):
                if ev.get("method") == method and (session is None or ev.get("sessionId") == session):
                    return self.events.pop(i)
            self.events.append(self._read_message(deadline))

    def open(self, url) -> "Page":
        """A new page (tab) with Runtime, Log and Page domains enabled, navigated to ``url``."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable", session=session)
        page.navigate(url)
        return page

    def close(self):
        """Stop Chromium and remove its profile folder."""
        try:
            if self.proc.poll() is None:
                try:
                    self.send("Browser.close", timeout=5)
                except (BrowserError, OSError):
                    pass
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=5)
        finally:
            for fd in (self._w, self._r):
                try:
                    os.close(fd)
                except OSError:
                    pass
            shutil.rmtree(self._profile_dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Page:
    """One attached page: navigate, evaluate JavaScript, collect errors, take screenshots."""

    def __init__(self, browser: Browser, session: str):
        self.browser, self.session = browser, session

    def navigate(self, url):
        """Load ``url`` and wait for the load event."""
        self.browser.send("Page.navigate", {"url": url}, session=self.session)
        self.browser.wait_event("Page.loadEventFired", session=self.session)

    def evaluate(self, expression):
        """Value of a JavaScript expression (JSON-serialisable); raises on a thrown exception."""
        res = self.browser.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                     "awaitPromise": True}, session=self.session)
        if "exceptionDetails" in res:
            raise BrowserError(f"JavaScript error: {res['exceptionDetails'].get('text')} "
                               f"{res['exceptionDetails'].get('exception', {}).get('description', '')}")
        return res.get("result", {}).get("value")

    def wait_for(self, expression, timeout=10.0, interval=0.05):
        """Poll until the JavaScript ``expression`` is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out waiting for {expression!r}")
            time.sleep(interval)

    def errors(self) -> list:
        """Console errors, uncaught exceptions and error log entries seen so far (text)."""
        out = []
        for ev in self.browser.events:
            if ev.get("sessionId") != self.session:
                continue
            m, p = ev.get("method"), ev.get("params", {})
            if m == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                out.append(f"exception: {d.get('text')} {d.get('exception', {}).get('description', '')}")
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console." + p["type"] + ": " + " ".join(str(a.get("value", a.get("description")))
                                                                   for a in p.get("args", [])))
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                e = p["entry"]
                out.append(f"log ({e.get('source')}): {e.get('text')} {e.get('url', '')}")
        return out

    def screenshot(self, path, full_page=True):
        """Write a PNG of the page (the whole page by default) to ``path``."""
        params = {"format": "png"}
        if full_page:
            m = self.browser.send("Page.getLayoutMetrics", session=self.session)
            size = m.get("cssContentSize") or m.get("contentSize")
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
        data = self.browser.send("Page.captureScreenshot", params, session=self.session)["data"]

        with atomic_path(path, suffix=".png") as tmp:
            tmp.write_bytes(base64.b64decode(data))
        return path
