"""`tillsyn demo`: a private broker, the gateway on SQLite and simulated homes, one command."""

from __future__ import annotations

import shutil
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from rich.console import Console

from gateway.broker import PrivateMosquitto, port_open
from gateway.config.registry import Registry
from gateway.demo_risk import HISTORY_RESIDENT, seed_history, train_demo_model
from gateway.errors import TillsynError

DEMO_REGISTRY = Path(__file__).resolve().parent.parent / "deploy" / "demo" / "registry.yaml"
DEMO_LOGINS = {"s-17": "night staff", "s-bh": "assessor", "s-admin": "administrator"}
LIVE_RESIDENT = "r-1004"  # not simulated: her alarm button reports in real time
LIVE_DEVICE = "alarm-1004"
LIVE_SOS_AFTER_S = 60.0
LIVE_HEARTBEAT_S = 60.0
console = Console()


def run_demo(folder: Path, port: int, speed: float,
             live_sos_after: float = LIVE_SOS_AFTER_S) -> None:
    """Run until Ctrl-C; stop everything it started."""
    from firmware_stubs.home import last_complete_night, plan_nights
    from firmware_stubs.player import Player
    from gateway.api.app import create_app
    from gateway.api.server import server as api_server
    from gateway.auth import create_token
    from gateway.logsetup import setup_logging
    from gateway.passwords import hash_password
    from gateway.runtime import load_runtime, start_service, stop_service

    # Ctrl-C and SIGTERM both stop the demo cleanly (a shell may start it with SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    folder.mkdir(parents=True, exist_ok=True)
    if port_open(port):
        raise SystemExit(f"port {port} is in use; run 'tillsyn demo --port N' with a free port")
    try:
        broker = PrivateMosquitto(folder / "mosquitto")
        broker.start()
    except TillsynError as exc:
        raise SystemExit(str(exc)) from None
    shutil.copy(DEMO_REGISTRY, folder / "registry.yaml")
    setup_logging("WARNING")
    console.print("fall risk: training the demo's model on simulated residents (first start "
                  "only, about 20 s) ...")
    model = train_demo_model(folder)
    (folder / "config.yaml").write_text(yaml.safe_dump({
        "mqtt": {"url": broker.url, "client_id": "tillsyn-demo"},
        "storage": {"url": f"sqlite:///{(folder / 'tillsyn.db').resolve()}"},
        "api": {"port": port}, "site": {"id": "demo"}, "registry": {"path": "registry.yaml"},
        # The demo shows the model's level too, so it forces the model; a site's default
        # (auto) is the decline test, which the model did not beat on the simulated cohort.
        "risk": {"model": model.name, "method": "model"}}))
    rt = load_runtime(folder / "config.yaml")
    assert rt.risk is not None
    scored = seed_history(rt.risk)
    console.print(f"fall risk: method in force: {rt.risk.method['en']} (forced in the demo "
                  "to show a level; a site's default is the decline test, which the model "
                  "did not beat on the simulated cohort: docs/fall-risk.md)"
                  + (f"; {HISTORY_RESIDENT}'s last {scored} days are simulated movement "
                     "history with a slowing, scored" if scored else ""))
    for staff_id in DEMO_LOGINS:  # demo passwords: never use these anywhere else
        rt.store.set_password(staff_id, hash_password(f"demo-{staff_id}"))
    start_service(rt)
    ingest = rt.ingest
    assert ingest is not None
    server = api_server(create_app(rt), rt.config.api, host="127.0.0.1", port=port)
    web = threading.Thread(target=server.run, daemon=True)
    web.start()
    while not port_open(port):
        time.sleep(0.05)
    token = create_token(rt.token_secret(), "s-admin", 12 * 3600)
    night = create_token(rt.token_secret(), "s-17", 12 * 3600)
    console.print(f"[bold green]Tillsyn demo running[/] at http://127.0.0.1:{port}  "
                  f"(API docs http://127.0.0.1:{port}/docs)")
    console.print(f"broker {broker.url}; database {folder / 'tillsyn.db'}")
    console.print("log in with staff id and password: "
                  + ", ".join(f"{s} / demo-{s} ({what})" for s, what in DEMO_LOGINS.items()))
    console.print("or open directly: the night-staff alert board as night nurse s-17:")
    console.print(f"http://127.0.0.1:{port}/#token={night}", soft_wrap=True, markup=False)
    assessor = create_token(rt.token_secret(), "s-bh", 12 * 3600)
    console.print("goals, follow-up and reports as an assessor (s-bh):")
    console.print(f"http://127.0.0.1:{port}/resident?id=r-1001#token={assessor}",
                  soft_wrap=True, markup=False)
    console.print(f"http://127.0.0.1:{port}/reports#token={assessor}", soft_wrap=True,
                  markup=False)
    console.print("bearer token for scripts (staff s-admin):")
    console.print(token, soft_wrap=True, markup=False)
    console.print(f"try: curl -H 'Authorization: Bearer <token>' "
                  f"http://127.0.0.1:{port}/api/residents/r-1001/observations")
    console.print("Ctrl-C stops everything the demo started.")
    stop = threading.Event()
    tz = ZoneInfo(rt.config.site.timezone)
    # The replayed nights are past nights: their alerts are under "Äldre" on the board.
    # One resident's alarm button is live, and is pressed a minute from now.
    simulated = rt.registry.model_copy(update={"residents": [
        r for r in rt.registry.residents if r.id != LIVE_RESIDENT]})
    live = threading.Thread(target=_live_button, name="demo-live-button", daemon=True,
                            args=(broker.url, rt.registry, stop, live_sos_after))
    live.start()
    console.print(f"in about {live_sos_after:.0f} s: {LIVE_RESIDENT}'s alarm button is "
                  "pressed, now (an alert of tonight); the replayed nights' alerts come "
                  "under \"Äldre\" with their dates, the first after about 3 minutes")
    player = Player(broker.url, rt.registry, client_id="tillsyn-demo-sim")
    try:
        seed = 1
        while not stop.is_set():
            # Walk forward through the last five nights, so each played night is new.
            first = last_complete_night(datetime.now(UTC), tz, nights_back=5 - (seed - 1) % 5)
            events, truths = plan_nights(simulated, first, 1, seed, tz, staff_visit_every=2)
            console.print(f"playing night {first:%Y-%m-%d} at {speed:g}x: {len(events)} device "
                          f"messages, {sum(t.toilet_visits for t in truths)} toilet visits")
            player.play(events, speed, stop=stop.is_set)
            console.print(f"night done; stored {ingest.committed_messages} messages so far")
            seed += 1
    except KeyboardInterrupt:
        console.print("stopping...")
    finally:
        stop.set()
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut cleanup
        player.close()
        live.join(5)
        server.should_exit = True
        web.join(5)
        stop_service(rt)
        rt.store.close()
        broker.stop()
        console.print("stopped: broker, gateway and simulator")


def _live_button(broker_url: str, registry: Registry, stop: threading.Event,
                 press_after: float) -> None:
    """The live resident's alarm button: a heartbeat every minute (so it is not reported
    silent) and one press a minute after the start, all with the current time."""
    from firmware_stubs.home import SimEvent
    from firmware_stubs.player import Player

    button = Player(broker_url, registry, client_id="tillsyn-demo-live")
    started = time.monotonic()
    pressed = False
    try:
        while not stop.is_set():
            now = int(time.time() * 1000)
            events = [SimEvent(now, LIVE_DEVICE, "heartbeat", None)]
            if not pressed and time.monotonic() - started >= press_after:
                events.append(SimEvent(now, LIVE_DEVICE, "sos", True))
                pressed = True
            button.play(events, speed=0)
            left = press_after - (time.monotonic() - started)
            stop.wait(LIVE_HEARTBEAT_S if pressed else min(LIVE_HEARTBEAT_S, max(0.2, left)))
    finally:
        button.close()
