"""`tillsyn demo` as a newcomer runs it: it starts its own broker and gateway, prints the
logins, the live alarm button's press arrives as an alert of tonight (on the board's
"current" side, not "Äldre"), the replay stores the simulated homes' messages, and Ctrl-C
stops everything it started."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from gateway.broker import port_open
from tests.support import free_port, wait_for

pytestmark = pytest.mark.broker


def test_demo_runs_shows_a_live_alert_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    out = (tmp_path / "demo.txt").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "demo", "--port", str(port),
                             "--live-sos-after", "3", "--speed", "600"], cwd=tmp_path,
                            stdout=out, stderr=subprocess.STDOUT,
                            env={**os.environ, "COLUMNS": "200"})
    base = f"http://127.0.0.1:{port}"
    try:
        def login() -> str | None:
            try:
                r = httpx.post(base + "/api/auth/login",
                               json={"staff_id": "s-17", "password": "demo-s-17"})
            except httpx.TransportError:
                return None
            return str(r.json()["token"]) if r.status_code == 200 else None
        wait_for(lambda: login() is not None, 120, what="demo logins work")
        headers = {"Authorization": f"Bearer {login()}"}

        def live_alert() -> dict[str, object] | None:
            alerts = httpx.get(base + "/api/alerts", headers=headers).json()["alerts"]
            return next((a for a in alerts if a["resident_id"] == "r-1004"), None)
        wait_for(lambda: live_alert() is not None, 30, what="the live alarm")
        alert = live_alert()
        assert alert is not None and alert["kind"] == "sos" and alert["priority"] == 1
        assert abs(int(str(alert["event_ms"])) / 1000 - time.time()) < 60  # now, not replayed
        me = httpx.get(base + "/api/auth/me", headers=headers).json()
        assert me["unit_name"] == "Solgården A"
        card = httpx.get(base + "/api/residents/r-1001", headers=headers).json()
        assert card["action_plan"].startswith("Knacka och vänta på svar")  # Swedish registry
        # Fall risk: a model trained on the simulator, a method in force with its reason,
        # and r-1001's simulated history with a slowing the decline test has seen.
        assessor = httpx.post(base + "/api/auth/login",
                              json={"staff_id": "s-bh", "password": "demo-s-bh"}).json()
        risk = httpx.get(base + "/api/residents/r-1001/risk?days=90", headers={
            "Authorization": f"Bearer {assessor['token']}"}).json()
        assert risk["model"]["simulated"] is True
        assert risk["method"]["id"] in ("speed", "model")  # forced in the demo, and says so
        assert risk["method"]["reason_sv"] == "valt i konfigurationen"
        speeds = [d["walking_speed"] for d in risk["series"] if d["walking_speed"]]
        assert len(speeds) > 60
        assert risk["latest_decline"]["flagged"] is True  # 8 cm/s slower over six weeks
        assert risk["latest"]["level"] in ("low", "moderate", "high")
        def stored() -> float:
            m = re.search(r"^tillsyn_observations_stored_total (\S+)$",
                          httpx.get(base + "/metrics").text, re.M)
            return float(m.group(1)) if m else 0.0
        wait_for(lambda: stored() > 100, 60, what="replayed messages stored")
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(60)
        out.close()
    text = (tmp_path / "demo.txt").read_text()
    assert code == 0, text
    assert "s-17 / demo-s-17" in text and "stopped: broker, gateway and simulator" in text
    assert "Traceback" not in text
    broker_port = int(re.search(r"broker mqtt://127.0.0.1:(\d+)", text).group(1))  # type: ignore[union-attr]
    assert not port_open(broker_port) and not port_open(port)  # broker and web are gone
