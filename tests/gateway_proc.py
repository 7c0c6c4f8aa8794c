"""Run `tillsyn run` as a real child process (so it can be SIGKILLed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.support import wait_for


def health(api_port: int, timeout: float = 1.0) -> dict[str, Any]:
    """A gateway's /healthz answer (also when degraded, 503), or {} while it is not up."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/healthz",
                                    timeout=timeout) as r:
            return dict(json.loads(r.read()))
    except urllib.error.HTTPError as exc:
        return dict(json.loads(exc.read()))
    except OSError:
        return {}


def follow_alerts(base: str, auth: dict[str, str], on_event: Callable[[dict[str, Any]], None],
                  read_s: float = 120) -> None:
    """Follow the board's alert stream as the board does (a stream ticket, then
    /api/alerts/stream), calling `on_event` with each event as it arrives, until the
    gateway ends the stream."""
    ticket = httpx.post(base + "/api/auth/stream-ticket", headers=auth).json()["ticket"]
    try:
        with httpx.stream("GET", f"{base}/api/alerts/stream?ticket={ticket}",
                          timeout=httpx.Timeout(10, read=read_s)) as r:
            for line in r.iter_lines():
                if line.startswith("data: "):
                    on_event(json.loads(line[6:]))
    except httpx.HTTPError:
        pass  # the gateway stopped


class GatewayProcess:
    """A gateway process for a config file."""

    def __init__(self, config: Path, api_port: int, log: Path,
                 env: dict[str, str] | None = None) -> None:
        self.config = config
        self.api_port = api_port
        self.log = log
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait_connected: bool = True) -> None:
        with self.log.open("ab") as logf:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "run", "--config", str(self.config)],
                stdout=logf, stderr=logf,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env})
        if wait_connected:
            wait_for(lambda: self.health().get("mqtt_connected") is True, 60,
                     what="gateway healthy")

    def health(self) -> dict[str, Any]:
        return health(self.api_port)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def signal(self, sig: int) -> None:
        """Send a signal to the gateway's main process (SIGSTOP: it hangs)."""
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
