"""The `tillsyn` command line (typer + rich)."""

from __future__ import annotations

import faulthandler
import signal
import sys
import threading
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console

from gateway.errors import ConfigError

if TYPE_CHECKING:
    from gateway.runtime import Runtime

app = typer.Typer(help="Tillsyn monitoring gateway.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
registry_app = typer.Typer(help="Residents, staff, units and devices.", no_args_is_help=True)
token_app = typer.Typer(help="Bearer tokens for scripts and integrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(registry_app, name="registry")
app.add_typer(token_app, name="token")
staff_app = typer.Typer(help="Staff logins.", no_args_is_help=True)
app.add_typer(staff_app, name="staff")

err = Console(stderr=True)
out = Console()

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Gateway configuration YAML")]


def fail(problems: list[str]) -> NoReturn:
    """Print one line per problem and exit with status 2."""
    for line in problems:
        print(line, file=sys.stderr)  # plain print: rich would wrap long lines
    raise typer.Exit(2)


def parse_date(option: str, value: str | None) -> date | None:
    """An option's YYYY-MM-DD value (None stays None), or one line naming it and exit 2."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail([f"{option}: value {value!r}: not a date (YYYY-MM-DD)"])


def parse_time(option: str, value: str) -> int:
    """An option's ISO 8601 date or date-time (UTC unless it has an offset) in epoch ms,
    or one line naming it and exit 2."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        fail([f"{option}: value {value!r}: not a date or time (YYYY-MM-DD or ISO 8601)"])
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def runtime_or_fail(config: Path) -> Runtime:
    """Load config, profiles, registry and storage, or print the problems and exit 2."""
    from gateway.runtime import load_runtime

    try:
        return load_runtime(config)
    except ConfigError as exc:
        fail(exc.problems)


def _runtime_with_staff(config: Path, staff: str) -> Runtime:
    """The runtime, or one line and exit 2 if the staff id is not in the registry."""
    rt = runtime_or_fail(config)
    if rt.registry.staff_member(staff) is None:
        fail([f"{config}: staff id {staff!r} is not in the registry"])
    return rt


@app.command("check-config")
def check_config(file: Annotated[Path, typer.Argument(help="Configuration YAML")]) -> None:
    """Validate a configuration file, its profiles and its registry; print OK or problems."""
    from gateway.config.loader import load_config
    from gateway.profiles.loader import load_profiles
    from gateway.runtime import load_site_registry

    try:
        config = load_config(file)
        load_site_registry(config, file, load_profiles(config.profiles_dir))
    except ConfigError as exc:
        fail(exc.problems)
    print("OK")


@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt) -> None:
    """Apply database migrations up to the newest schema."""
    from gateway.config.loader import load_config
    from gateway.storage.migrate import upgrade

    try:
        cfg = load_config(config)
    except ConfigError as exc:
        fail(exc.problems)
    upgrade(cfg.storage.url)
    out.print(f"database at revision head ({cfg.storage.url.split('@')[-1]})")


@registry_app.command("load")
def registry_load(file: Annotated[Path, typer.Argument(help="Registry YAML")],
                  profiles_dir: Annotated[Path | None, typer.Option(help="Profile folder")] = None
                  ) -> None:
    """Validate a registry file against the device profiles and summarise it."""
    from gateway.config.loader import load_registry
    from gateway.profiles.loader import check_registry, load_profiles

    try:
        registry = load_registry(file)
        check_registry(registry, load_profiles(profiles_dir), file)
    except ConfigError as exc:
        fail(exc.problems)
    devices = sum(len(r.devices) for r in registry.residents)
    print(f"OK: {len(registry.units)} units, {len(registry.staff)} staff, "
          f"{len(registry.residents)} residents, {devices} devices")


@token_app.command("create")
def token_create(config: ConfigOpt,
                 staff: Annotated[str, typer.Option("--staff", help="Staff id")],
                 hours: Annotated[int | None, typer.Option(help="Lifetime in hours")] = None
                 ) -> None:
    """Print a bearer token for a staff member."""
    from gateway.auth import create_token

    if hours is not None and not 1 <= hours <= 24 * 365:
        fail([f"--hours: value {hours}: a token lives 1 to {24 * 365} hours"])
    rt = _runtime_with_staff(config, staff)
    ttl = (hours if hours is not None else rt.config.api.token_ttl_hours) * 3600
    print(create_token(rt.token_secret(), staff, ttl))


@staff_app.command("password")
def staff_password(config: ConfigOpt,
                   staff: Annotated[str, typer.Option("--staff", help="Staff id")],
                   stdin: Annotated[bool, typer.Option(
                       "--password-stdin", help="Read the password from standard input "
                       "(for scripts) instead of asking twice")] = False) -> None:
    """Set a staff member's password for the web UI and `POST /api/auth/login`."""
    from gateway.passwords import hash_password, password_problem

    rt = _runtime_with_staff(config, staff)
    if stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    problem = password_problem(password)
    if problem:
        fail([f"password for {staff}: {problem}"])
    rt.store.set_password(staff, hash_password(password))
    rt.store.audit("cli", "set_password", None, staff)
    print(f"password set for {staff}")


@app.command("run")
def run(config: ConfigOpt) -> None:
    """Run the service: ingest, storage and the HTTP API."""
    from gateway.api.app import create_app
    from gateway.api.server import server as api_server
    from gateway.logsetup import setup_logging
    from gateway.runtime import liveness_problems, start_service, stop_service
    from gateway.watchdog import Watchdog

    faulthandler.enable()  # a hang killed by the watchdog (SIGABRT) leaves its tracebacks
    rt = runtime_or_fail(config)
    setup_logging(rt.config.logging.level, rt.config.logging.json_format)
    start_service(rt)
    server = api_server(create_app(rt), rt.config.api)
    # Under systemd (Type=notify): ready once the API answers, then watchdog pings while
    # the gateway is alive (gateway/watchdog.py).
    watchdog = Watchdog(lambda: liveness_problems(rt), lambda: bool(server.started))
    watchdog.start()
    try:
        server.run()
    finally:
        watchdog.stop()
        stop_service(rt)
        rt.store.close()


def _register_extra() -> None:
    from gateway import (
        cli_devices,
        cli_privacy,
        cli_report,
        cli_risk,
        cli_supervision,
        cli_timeseries,
        cli_tools,
    )

    cli_tools.register(app)
    app.add_typer(cli_supervision.app, name="supervision")
    app.add_typer(cli_report.app, name="report")
    app.add_typer(cli_risk.app, name="risk")
    app.add_typer(cli_devices.app, name="devices")
    app.add_typer(cli_privacy.export_app, name="export")
    app.add_typer(cli_privacy.erase_app, name="erase")
    app.add_typer(cli_timeseries.app, name="timeseries")


def main() -> None:
    """Entry point of the console script."""
    _register_extra()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app()
