"""Hand-off of alerts to alarm receiving centres over SCAIP (docs/alarm-centre.md)."""

from __future__ import annotations

from gateway.config.gateway import GatewayConfig
from gateway.config.registry import Registry
from gateway.errors import ConfigError
from gateway.scaip.mapping import Mapping, load_mapping
from gateway.scaip.sip import available


def check_scaip(config: GatewayConfig, registry: Registry) -> Mapping | None:
    """The mapping of an enabled hand-off, checked with the registry (ConfigError listing
    every problem); None when scaip is not enabled."""
    if not config.scaip.enabled:
        return None
    mapping = load_mapping(config.scaip.mapping_file)
    problems = []
    units = {u.id for u in registry.units}
    for i, centre in enumerate(config.scaip.centres):
        problems += [f"scaip.centres.{i}.units: value {u!r}: no such unit in the registry"
                     for u in centre.units if u not in units]
    if not available():
        problems.append("scaip.enabled: value True: the SIP stack is not installed "
                        "(pip install 'tillsyn[scaip]', which brings pjsua2-python)")
    if problems:
        raise ConfigError(problems)
    return mapping
