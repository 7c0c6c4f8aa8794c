"""Run `tillsyn run` as a real child process (so it can be SIGKILLed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

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
