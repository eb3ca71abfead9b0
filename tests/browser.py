"""A small Chrome DevTools Protocol client for tests: load a page in headless Chromium and inspect it.

    from tests.browser import Browser, find_chromium

    with Browser() as browser:                     # starts chromium (a few seconds); ChromiumNotFound if absent
        page = browser.load(path_or_url)           # navigates, waits for load and for every <img> to decode
        page.errors                                # console errors, uncaught exceptions, Log errors (list of Message)
        page.messages                              # everything logged, any level
        page.dialogs                               # alert()/confirm()/prompt() texts (dismissed automatically)
        page.requests                              # URLs the page requested (data: and file: included)
        browser.evaluate("document.title")         # a JS expression's value (promises awaited)
        browser.data_keys()                        # [(data-key, textContent.trim()), ...] in document order
        browser.images()                           # [{"src", "alt", "complete", "naturalWidth", "naturalHeight"}, ...]
        png = browser.screenshot()                 # the full page as PNG bytes

One Browser holds one Chromium process and one tab; `load` can be called
again for other pages (each load resets the collected messages). Start one
per test module (a pytest fixture with scope="module"): starting takes about
a second, loading a page a fraction of one.

Chromium: $CHROMIUM, else chromium, chromium-browser, google-chrome or
/usr/bin/chromium on PATH (`find_chromium`). On Debian: apt-get install -y
chromium. It runs headless with a throw-away profile and no network
services (no sync, no component updates, no QUIC), on 127.0.0.1 only: the
DevTools port is chosen by Chromium (--remote-debugging-port=0) and read
from <profile>/DevToolsActivePort. The connection is one websocket to the
browser with a flattened session for the tab (Target.attachToTarget
flatten=true); the synchronous methods run a private asyncio loop.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from workbench.annotate.preview import find_chromium  # the one lookup, shared with `workbench annotate preview`

__all__ = ["Browser", "ChromiumNotFound", "Message", "PageLoad", "find_chromium"]

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)


class ChromiumNotFound(RuntimeError):
    """No Chromium executable: set $CHROMIUM or install it (Debian: apt-get install -y chromium)."""


@dataclass(frozen=True)
class Message:
    """One console message, uncaught exception or browser log entry."""

    source: str  # "console", "exception" or the Log domain's source ("network", "security", "javascript", ...)
    level: str  # "error", "warning", "info", "log", "debug", "verbose"
    text: str
    url: str | None = None

    def __str__(self) -> str:
        where = f" ({self.url})" if self.url else ""
        return f"[{self.source}/{self.level}] {self.text}{where}"


@dataclass
class PageLoad:
    """What happened while a page loaded (and until the next `load`: the lists keep filling)."""

    url: str
    messages: list[Message] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Message]:
        return [m for m in self.messages if m.level == "error"]

    @property
    def warnings(self) -> list[Message]:
        return [m for m in self.messages if m.level == "warning"]


_CONSOLE_LEVELS = {"error": "error", "assert": "error", "warning": "warning", "warn": "warning", "debug": "debug", "info": "info"}


def _remote_text(arg: dict[str, Any]) -> str:
    if "value" in arg:
        return arg["value"] if isinstance(arg["value"], str) else json.dumps(arg["value"])
    return str(arg.get("description", arg.get("type", "")))


class CDPError(RuntimeError):
    pass


class Browser:
    """Headless Chromium driven over the DevTools protocol; see the module docstring."""

    def __init__(self, executable: str | None = None, *, width: int = 1280, height: int = 900, timeout: float = 30.0) -> None:
        self.executable = executable or find_chromium()
        if not self.executable:
            raise ChromiumNotFound("chromium not found: set $CHROMIUM or install it (Debian: apt-get install -y chromium)")
        self.width, self.height, self.timeout = width, height, timeout
        self._loop = asyncio.new_event_loop()
        self._proc: subprocess.Popen[bytes] | None = None
        self._profile: str | None = None
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_id = 0
        self._session: str | None = None
        self._page: PageLoad | None = None
        self._loaded: asyncio.Event | None = None
        self.startup_seconds: float | None = None

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Browser:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> Browser:
        t0 = time.monotonic()
        self._profile = tempfile.mkdtemp(prefix="wb-chromium-")
        self._log = open(Path(self._profile) / "chromium.log", "wb")  # noqa: SIM115
        args = [
            self.executable,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={self._profile}",
            f"--window-size={self.width},{self.height}",
            "about:blank",
        ]
        self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._run(self._connect())
        except BaseException:
            self.close()
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def _chromium_log(self) -> str:
        try:
            return (Path(self._profile or "") / "chromium.log").read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    async def _connect(self) -> None:
        port_file = Path(self._profile or "") / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while True:
            if port_file.exists():
                lines = port_file.read_text().splitlines()
                if len(lines) >= 2:
                    break
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self._proc.returncode}:\n{self._chromium_log()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"chromium wrote no DevToolsActivePort in {self.timeout:g} s:\n{self._chromium_log()}")
            await asyncio.sleep(0.05)
        port, path = lines[0].strip(), lines[1].strip()
        self._http = aiohttp.ClientSession()
        self._ws = await self._http.ws_connect(f"ws://127.0.0.1:{port}{path}", max_msg_size=0, timeout=aiohttp.ClientWSTimeout(ws_close=5))
        self._reader = asyncio.ensure_future(self._read())
        target = await self._send("Target.createTarget", {"url": "about:blank"})
        attached = await self._send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
        self._session = attached["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            await self._send(f"{domain}.enable")
        await self._send(
            "Emulation.setDeviceMetricsOverride", {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False}
        )

    def close(self) -> None:
        """Close the browser (Browser.close, then SIGTERM/SIGKILL of its process group if needed) and remove the profile."""
        if self._loop.is_closed():
            return
        try:
            if self._ws is not None and not self._ws.closed:
                try:
                    self._run(asyncio.wait_for(self._send("Browser.close", session=False), 5))
                except Exception:  # noqa: BLE001 - closing anyway
                    pass
            self._run(self._disconnect())
        finally:
            if self._proc is not None:
                try:
                    self._proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    for sig in (signal.SIGTERM, signal.SIGKILL):
                        try:
                            os.killpg(self._proc.pid, sig)
                            self._proc.wait(timeout=5)
                            break
                        except (ProcessLookupError, subprocess.TimeoutExpired):
                            continue
            if getattr(self, "_log", None) is not None:
                self._log.close()
            if self._profile:
                shutil.rmtree(self._profile, ignore_errors=True)
            self._loop.close()

    async def _disconnect(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        if self._http is not None:
            await self._http.close()

    def _run(self, coro: Any) -> Any:
        return self._loop.run_until_complete(coro)

    # ------------------------------------------------------------------ protocol

    async def _send(self, method: str, params: dict[str, Any] | None = None, *, session: bool = True) -> dict[str, Any]:
        assert self._ws is not None
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self._session:
            msg["sessionId"] = self._session
        fut: asyncio.Future[dict[str, Any]] = self._loop.create_future()
        self._pending[self._next_id] = fut
        await self._ws.send_str(json.dumps(msg))
        return await asyncio.wait_for(fut, self.timeout)

    async def _read(self) -> None:
        assert self._ws is not None
        async for raw in self._ws:
            if raw.type != aiohttp.WSMsgType.TEXT:
                break
            msg = json.loads(raw.data)
            if "id" in msg:
                fut = self._pending.pop(msg["id"], None)
                if fut is not None and not fut.done():
                    if "error" in msg:
                        fut.set_exception(CDPError(f"{msg['error'].get('message')} ({msg['error'].get('data', '')})"))
                    else:
                        fut.set_result(msg.get("result", {}))
            else:
                await self._event(msg.get("method", ""), msg.get("params", {}))
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(ConnectionError("DevTools connection closed"))

    async def _event(self, method: str, p: dict[str, Any]) -> None:
        page = self._page
        if method == "Page.loadEventFired" and self._loaded is not None:
            self._loaded.set()
        if page is None:
            return
        if method == "Runtime.consoleAPICalled":
            text = " ".join(_remote_text(a) for a in p.get("args", []))
            page.messages.append(Message("console", _CONSOLE_LEVELS.get(p.get("type", "log"), "log"), text))
        elif method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            text = d.get("exception", {}).get("description") or d.get("text", "exception")
            page.messages.append(Message("exception", "error", text, d.get("url")))
        elif method == "Log.entryAdded":
            e = p.get("entry", {})
            page.messages.append(Message(e.get("source", "other"), e.get("level", "info"), e.get("text", ""), e.get("url")))
        elif method == "Network.requestWillBeSent":
            page.requests.append(p.get("request", {}).get("url", ""))
        elif method == "Page.javascriptDialogOpening":
            page.dialogs.append(p.get("message", ""))
            asyncio.ensure_future(self._send("Page.handleJavaScriptDialog", {"accept": False}))

    # ------------------------------------------------------------------ pages

    def load(self, target: str | os.PathLike[str]) -> PageLoad:
        """Navigate to a URL or a local file, wait for the load event and for every image to decode."""
        url = str(target)
        if "://" not in url and not url.startswith(("about:", "data:")):
            url = Path(url).resolve().as_uri()
        self._page = PageLoad(url)
        self._run(self._navigate(url))
        return self._page

    async def _navigate(self, url: str) -> None:
        self._loaded = asyncio.Event()
        result = await self._send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise RuntimeError(f"cannot load {url}: {result['errorText']}")
        await asyncio.wait_for(self._loaded.wait(), self.timeout)
        await self._evaluate(
            "Promise.all(Array.from(document.images, i => i.decode().catch(() => null))).then(() => document.fonts.ready).then(() => true)"
        )

    async def _evaluate(self, expression: str) -> Any:
        r = await self._send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise CDPError(f"JS error: {d.get('exception', {}).get('description') or d.get('text')}")
        return r.get("result", {}).get("value")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-serialisable; promises are awaited)."""
        return self._run(self._evaluate(expression))

    def data_keys(self) -> list[tuple[str, str]]:
        """Every element with a data-key attribute: (key, trimmed textContent), in document order."""
        pairs = self.evaluate("Array.from(document.querySelectorAll('[data-key]'), e => [e.dataset.key, e.textContent.trim()])")
        return [(k, t) for k, t in pairs]

    def images(self) -> list[dict[str, Any]]:
        """Every <img>: src (first 64 characters), alt, complete, naturalWidth, naturalHeight."""
        return self.evaluate(
            "Array.from(document.images, i => ({src: i.src.slice(0, 64), alt: i.alt, complete: i.complete,"
            " naturalWidth: i.naturalWidth, naturalHeight: i.naturalHeight}))"
        )

    def screenshot(self, *, full_page: bool = True) -> bytes:
        """A PNG of the viewport or of the whole page (the page's full scroll size, at scale 1)."""
        return self._run(self._screenshot(full_page))

    async def _screenshot(self, full_page: bool) -> bytes:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            m = await self._send("Page.getLayoutMetrics")
            size = m.get("cssContentSize") or m["contentSize"]
            params |= {
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": max(1, size["width"]), "height": max(1, size["height"]), "scale": 1},
            }
        shot = await self._send("Page.captureScreenshot", params)
        return base64.b64decode(shot["data"])
