"""`tillsyn devices ...`: MQTT credentials and ACL for the registered devices."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from gateway.errors import ConfigError

app = typer.Typer(help="Device accounts on the broker.", no_args_is_help=True)
out = Console()


@app.command("credentials")
def credentials(
    config: Annotated[Path, typer.Option("--config", "-c", help="Gateway configuration YAML "
                                         "(site id, registry and profiles)")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for passwd, acl, "
                                          "passwd-gateway, acl-gateway and credentials.csv")
                       ] = Path("mosquitto-credentials"),
    bridge: Annotated[list[str] | None, typer.Option(
        help="NAME=TOPIC_PREFIX: an account for a zigbee2mqtt instance or LoRaWAN network "
             "server that publishes for the registered devices under the prefix (repeatable)"
    )] = None,
    rotate: Annotated[list[str] | None, typer.Option(
        help="Give this account a new password (repeatable)")] = None,
) -> None:
    """Make per-device MQTT accounts, a Mosquitto password file and an ACL from the registry.

    Passwords of accounts that already exist in OUT/credentials.csv are kept, so a re-run
    after a registry change only adds and removes accounts. Reload Mosquitto afterwards
    (SIGHUP) to apply the new files.
    """
    from gateway.cli import fail
    from gateway.config.loader import load_config, load_registry, registry_path
    from gateway.credentials import parse_bridges, plan_accounts, write_credentials
    from gateway.profiles.loader import check_registry, load_profiles

    try:
        cfg = load_config(config)
        library = load_profiles(cfg.profiles_dir)
        reg_file = registry_path(cfg, config)
        if reg_file is None:
            raise ConfigError([f"{config}: registry.path: value None: the registry names the "
                               "devices to make accounts for"])
        registry = load_registry(reg_file)
        check_registry(registry, library, reg_file)
        accounts = plan_accounts(registry, library, cfg.site.id, parse_bridges(bridge or []),
                                 cfg.mqtt.client_id)
        written = write_credentials(out_dir, accounts, rotate or [])
    except ConfigError as exc:
        fail(exc.problems)
    table = Table("role", "accounts", "new")
    for role in ("device", "bridge", "gateway", "staff"):
        mine = [a.username for a in written.accounts if a.role == role]
        if mine:
            table.add_row(role, str(len(mine)), str(sum(u in written.new for u in mine)))
    out.print(table)
    if written.removed:
        out.print(f"removed (no longer in the registry): {', '.join(written.removed)}")
    for path in written.files:
        out.print(f"wrote {path}")
    out.print("credentials.csv holds the clear passwords (mode 0600): hand each device its "
              "own line, give the gateway's to TILLSYN_MQTT_PASSWORD, then delete or lock "
              "the file away. The broker's user must own the password files (mode 0600): "
              "chown mosquitto passwd passwd-gateway. Reload Mosquitto (SIGHUP) to apply.")
