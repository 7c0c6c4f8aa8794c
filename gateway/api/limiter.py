"""Login attempt limiting: failures per staff id and per client address in a sliding window.

Pure logic with an injected clock. Memory is bounded: at most `max_keys` ids and addresses are
tracked, the least recently failed dropped first, so a flood of made-up ids cannot grow it.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable


class LoginLimiter:
    """Refuse logins for a while after too many failures for an id or from an address."""

    def __init__(self, per_staff: int = 5, per_address: int = 20, window_s: float = 900.0,
                 max_keys: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_staff = per_staff
        self.per_address = per_address
        self.window = window_s
        self.max_keys = max_keys
        self.clock = clock
        self._fails: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._fails.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._fails[key]
        return times

    def retry_after(self, staff_id: str, address: str) -> int | None:
        """Seconds until a login may be tried again, or None if it may be tried now."""
        now = self.clock()
        waits = []
        for key, limit in ((f"s:{staff_id}", self.per_staff), (f"a:{address}",
                                                               self.per_address)):
            times = self._recent(key, now)
            if len(times) >= limit:
                waits.append(times[-limit] + self.window - now)
        return max(1, int(max(waits)) + 1) if waits else None

    def failed(self, staff_id: str, address: str) -> None:
        """Count a failed attempt."""
        now = self.clock()
        for key in (f"s:{staff_id}", f"a:{address}"):
            times = self._fails.pop(key, None) or deque(maxlen=max(self.per_staff,
                                                                   self.per_address))
            times.append(now)
            self._fails[key] = times  # most recent last
        while len(self._fails) > self.max_keys:
            self._fails.popitem(last=False)

    def succeeded(self, staff_id: str) -> None:
        """A correct password clears the staff id's failures (not the address's)."""
        self._fails.pop(f"s:{staff_id}", None)
