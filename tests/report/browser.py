"""Headless Chromium for the tests: installed by scripts/chromium.sh, driven through the
DevTools protocol over ``--remote-debugging-pipe`` (no websocket library needed)."""

from __future__ import annotations

import fcntl
import json
import os
import select
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support import REPO

FLAGS = ("--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--hide-scrollbars")


def chromium() -> str:
    """The binary, installed by the project's script if missing (fails, never skips)."""
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "chromium.sh")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, f"scripts/chromium.sh failed:\n{done.stderr}"
    return done.stdout.strip().splitlines()[-1]


def screenshot(binary: str, url: str, target: Path, profile: Path, size: str = "1400,4000") -> None:
    """The page as a PNG, the way a person would first see it on a tall window."""
    done = subprocess.run(
        [
            binary,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={size}",
            f"--screenshot={target}",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and target.is_file(), done.stderr


class DevTools:
    """One browser over a pipe: commands in, responses and events out (NUL-separated)."""

    def __init__(self, process: subprocess.Popen[bytes], to_browser: int, from_browser: int):
        self._process = process
        self._out = to_browser
        self._in = from_browser
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str | None = None,
        timeout: float = 60,
    ) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                assert "error" not in reply, reply
                return dict(reply.get("result", {}))
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._read(deadline)
            self.events.append(event)
            if event.get("method") == method:
                return event

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            assert left > 0, "Chromium did not answer in time"
            ready, _, _ = select.select([self._in], [], [], left)
            if ready:
                chunk = os.read(self._in, 1 << 20)
                assert chunk, f"Chromium closed the pipe (exit {self._process.poll()})"
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return dict(json.loads(message))


@contextmanager
def devtools(binary: str, profile: Path) -> Iterator[DevTools]:
    """A headless browser; the protocol on fds 3 (in) and 4 (out), as Chromium expects."""
    browser_in, to_browser = os.pipe()
    from_browser, browser_out = os.pipe()
    # Above 4, so that the shell's "3<&x 4>&y" cannot overwrite one with the other.
    browser_in, browser_out = (_above_four(fd) for fd in (browser_in, browser_out))
    # bash (dash takes no fd above 9) puts the pipes on fds 3 and 4, then becomes Chromium.
    command = [
        "bash",
        "-c",
        f'exec "$0" "$@" 3<&{browser_in} 4>&{browser_out}',
        binary,
        *FLAGS,
        "--remote-debugging-pipe",
        f"--user-data-dir={profile}",
        "--window-size=1400,1000",
    ]
    process = subprocess.Popen(
        command,
        pass_fds=(browser_in, browser_out),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(browser_in)
    os.close(browser_out)
    try:
        yield DevTools(process, to_browser, from_browser)
    finally:
        process.kill()
        process.wait(timeout=30)
        os.close(to_browser)
        os.close(from_browser)


def _above_four(fd: int) -> int:
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return moved


# Runs in the page: for every chart, its size, how many marks it holds, and how many of
# its pixels are painted once the SVG is rasterized on a canvas ("not an empty canvas").
CHART_PROBE = """
(async () => {
  const results = [];
  for (const figure of document.querySelectorAll('figure.chart')) {
    const svg = figure.querySelector('svg');
    const result = {name: figure.dataset.chart, svg: !!svg};
    if (svg) {
      const box = svg.getBoundingClientRect();
      result.width = box.width; result.height = box.height;
      result.marks = svg.querySelectorAll('path, rect, use, text').length;
      const xml = new XMLSerializer().serializeToString(svg);
      const image = new Image();
      image.src = 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(xml);
      await image.decode();
      const canvas = document.createElement('canvas');
      canvas.width = Math.round(box.width); canvas.height = Math.round(box.height);
      const context = canvas.getContext('2d');
      context.drawImage(image, 0, 0, canvas.width, canvas.height);
      const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
      let painted = 0, coloured = 0;
      for (let i = 0; i < pixels.length; i += 4) {
        const [r, g, b, a] = [pixels[i], pixels[i + 1], pixels[i + 2], pixels[i + 3]];
        if (a > 0 && (r < 235 || g < 235 || b < 235)) painted++;
        if (a > 0 && Math.max(r, g, b) - Math.min(r, g, b) > 40) coloured++;
      }
      result.painted = painted / (canvas.width * canvas.height);
      result.coloured = coloured / (canvas.width * canvas.height);
    }
    results.push(result);
  }
  return results;
})()
"""


def load_and_probe(tools: DevTools, url: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Open ``url``; the charts' probe results and every console error of the page."""
    target = tools.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = tools.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
        "sessionId"
    ]
    for domain in ("Page", "Runtime", "Log"):
        tools.send(f"{domain}.enable", session=session)
    tools.events.clear()
    tools.send("Page.navigate", {"url": url}, session=session)
    tools.wait_for("Page.loadEventFired")
    probe = tools.send(
        "Runtime.evaluate",
        {"expression": CHART_PROBE, "awaitPromise": True, "returnByValue": True},
        session=session,
    )
    assert "exceptionDetails" not in probe, probe
    return list(probe["result"]["value"]), _errors(tools.events)


def _errors(events: list[dict[str, Any]]) -> list[str]:
    errors = []
    for event in events:
        params = event.get("params", {})
        if event.get("method") == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            errors.append(str(details.get("exception", {}).get("description") or details))
        elif event.get("method") == "Runtime.consoleAPICalled" and params.get("type") in (
            "error",
            "assert",
        ):
            errors.append(json.dumps(params.get("args", []))[:300])
        elif event.get("method") == "Log.entryAdded" and params["entry"]["level"] == "error":
            errors.append(str(params["entry"].get("text"))[:300])
    return errors
