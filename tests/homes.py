"""Write small gateway configurations and registries for tests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from gateway.ingest.service import IngestService
    from gateway.runtime import Runtime

SITE = "test-site"


def registry(n_residents: int = 2, *, consent: list[str] | None = None) -> dict[str, Any]:
    """A registry with n residents, each with z2m motion/contact/lock, a native bed sensor
    and an OwnTracks position alarm."""
    consent = consent if consent is not None else ["motion", "contact", "bed", "lock",
                                                   "position", "sos", "fall"]
    residents = []
    for i in range(n_residents):
        rid = f"r-{1000 + i}"
        residents.append({
            "id": rid, "name": f"Test Person {i}", "unit": "unit-a", "consent": consent,
            "devices": [
                {"id": f"hall-pir-{i}", "profile": "zigbee2mqtt.occupancy",
                 "source": f"zigbee2mqtt/hall-pir-{i}", "room": "hall"},
                {"id": f"door-{i}", "profile": "zigbee2mqtt.contact",
                 "source": f"zigbee2mqtt/door-{i}", "room": "entrance", "exterior": True},
                {"id": f"lock-{i}", "profile": "zigbee2mqtt.lock",
                 "source": f"zigbee2mqtt/lock-{i}", "room": "entrance"},
                {"id": f"bed-{i}", "profile": "tillsyn.native",
                 "source": f"tillsyn/v1/{SITE}/bed-{i}", "room": "bedroom"},
                {"id": f"alarm-{i}", "profile": "owntracks.location",
                 "source": f"owntracks/{rid}/alarm"},
            ],
        })
    return {"units": [{"id": "unit-a", "name": "Solgården A"}],
            "staff": [{"id": "s-17", "name": "Night nurse 17", "unit": "unit-a",
                       "role": "night_staff", "lock_credentials": ["keypad:2"]},
                      {"id": "s-admin", "name": "Admin", "role": "admin"}],
            "residents": residents}


def two_units() -> dict[str, Any]:
    """registry(2) with the second resident on unit-b (night nurse s-17 is on unit-a)."""
    reg = registry(2)
    reg["units"].append({"id": "unit-b", "name": "Solgården B"})
    reg["residents"][1]["unit"] = "unit-b"
    return reg


def write_config(folder: Path, broker_url: str, db_url: str, *, reg: dict[str, Any] | None = None,
                 client_id: str = "tillsyn-test", api_port: int = 0, **extra: Any) -> Path:
    """Write config.yaml and registry.yaml into folder; return the config path."""
    (folder / "registry.yaml").write_text(yaml.safe_dump(reg or registry(), sort_keys=False))
    cfg: dict[str, Any] = {
        "mqtt": {"url": broker_url, "client_id": client_id},
        "storage": {"url": db_url},
        "api": {"port": api_port, "token_secret": "test-secret-not-for-production"},
        "site": {"id": SITE},
        "registry": {"path": "registry.yaml"},
    }
    for section, values in extra.items():
        cfg.setdefault(section, {}).update(values)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@contextmanager
def running_ingest(folder: Path, broker_url: str, db_url: str, client_id: str,
                   **config: Any) -> Iterator[tuple[Runtime, IngestService]]:
    """A gateway runtime with ingest started and connected; stopped and closed after."""
    from gateway.runtime import build_ingest, load_runtime
    from tests.support import wait_for

    rt = load_runtime(write_config(folder, broker_url, db_url, client_id=client_id, **config))
    ingest = build_ingest(rt)
    ingest.start()
    try:
        wait_for(lambda: ingest.connected, what="gateway connected")
        time.sleep(0.3)  # subscriptions granted
        yield rt, ingest
    finally:
        ingest.stop()
        rt.store.close()


def auth(rt: Runtime, staff: str) -> dict[str, str]:
    """A bearer-token header for a staff member, valid for an hour."""
    from gateway.auth import create_token

    return {"Authorization": f"Bearer {create_token(rt.token_secret(), staff, 3600)}"}
