"""Login attempt limiting: failures per staff id and per client address in a sliding window.

The failures are kept in the database (Store.login_failures), so every worker of a site
counts the same attempts: with several workers behind a load balancer the limit holds for
the site, not once per worker, and a restart does not reset it. The rule itself is pure:
the store and the clock (wall-clock seconds, shared by the workers) are given. The table
holds one window's failures: older ones are forgotten at every new failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class FailureLog(Protocol):
    """Where failed logins are kept (gateway.storage.store.Store)."""

    def login_failures(self, keys: list[str], since_ms: int) -> dict[str, list[int]]: ...

    def add_login_failure(self, keys: list[str], at_ms: int, forget_before_ms: int) -> None: ...

    def clear_login_failures(self, key: str) -> None: ...


class LoginLimiter:
    """Refuse logins for a while after too many failures for an id or from an address."""

    def __init__(self, log: FailureLog, per_staff: int = 5, per_address: int = 20,
                 window_s: float = 900.0, clock: Callable[[], float] = time.time) -> None:
        self.log = log
        self.per_staff = per_staff
        self.per_address = per_address
        self.window = window_s
        self.clock = clock

    def _window_start_ms(self, now: float) -> int:
        return int((now - self.window) * 1000)

    def retry_after(self, staff_id: str, address: str) -> int | None:
        """Seconds until a login may be tried again, or None if it may be tried now."""
        now = self.clock()
        limits = {f"s:{staff_id}": self.per_staff, f"a:{address}": self.per_address}
        times = self.log.login_failures(list(limits), self._window_start_ms(now))
        waits = [times[key][-limit] / 1000 + self.window - now
                 for key, limit in limits.items() if len(times[key]) >= limit]
        return max(1, int(max(waits)) + 1) if waits else None

    def failed(self, staff_id: str, address: str) -> None:
        """Count a failed attempt."""
        now = self.clock()
        self.log.add_login_failure([f"s:{staff_id}", f"a:{address}"], int(now * 1000),
                                   self._window_start_ms(now))

    def succeeded(self, staff_id: str) -> None:
        """A correct password clears the staff id's failures (not the address's)."""
        self.log.clear_login_failures(f"s:{staff_id}")
