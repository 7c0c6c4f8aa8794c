"""Share MQTT session slots and resident partitions among the live workers.

Every round (a third of the lease period) a worker says it is alive, renews its leases,
computes its fair share of slots and of partitions from the sorted list of live workers,
gives up what it holds beyond its share and takes free or expired leases up to it. A
worker that dies stops renewing; after one lease period the others take over its slots
(connecting with the same MQTT client id, so the broker hands them its queued messages)
and its partitions (rebuilding those residents' detectors from the database).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from gateway.errors import StorageError
from gateway.scale.leases import Leases

log = logging.getLogger(__name__)


def fair_share(total: int, workers: list[str], me: str) -> int:
    """How many of `total` this worker should hold: an equal part, the first
    `total % n` workers in sorted order taking one more, so the shares add up to total."""
    if me not in workers:
        return 0
    base, extra = divmod(total, len(workers))
    return base + (1 if sorted(workers).index(me) < extra else 0)


def names(kind: str, total: int) -> list[str]:
    """Lease names of one kind: slot:0 ... or part:0 ..."""
    return [f"{kind}:{n}" for n in range(total)]


def parse(name: str) -> tuple[str, int]:
    """A lease name's kind and number: "slot:3" -> ("slot", 3)."""
    kind, n = name.split(":")
    return kind, int(n)


class Coordinator:
    """Runs lease rounds on its own thread and calls `take(name)` / `give(name)` when this
    worker starts or stops holding a lease."""

    def __init__(self, leases: Leases, *, slots: int, partitions: int, lease_s: float,
                 take: Callable[[str], None], give: Callable[[str], None],
                 api: str | None = None) -> None:
        self.leases = leases
        self.totals = {"slot": slots, "part": partitions}
        self.round_s = lease_s / 3
        self.take = take
        self.give = give
        self.api = api
        self.held: set[str] = set()
        self.live: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rounds = 0

    def start(self) -> None:
        """First round now, then one every third of the lease period."""
        self._thread = threading.Thread(target=self._run, name="tillsyn-leases", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                self.round()
            except StorageError as exc:
                log.error("lease round failed (database?): %s", exc)
            except Exception:
                log.exception("lease round failed")
            if self._stop.wait(self.round_s):
                return

    def round(self) -> None:
        """One round: heartbeat, renew, rebalance."""
        self.leases.heartbeat(self.api)
        self._renew()
        self.live = self.leases.live_workers()
        me = self.leases.worker_id
        for kind, total in self.totals.items():
            target = fair_share(total, self.live, me)
            for name in self._mine(kind)[target:][::-1]:  # beyond our share: the highest back
                self._give(name, release=True)
            if len(self._mine(kind)) < target:
                for name in names(kind, total):
                    if len(self._mine(kind)) >= target:
                        break
                    if name not in self.held and self.leases.acquire(name):
                        self.held.add(name)
                        log.info("took %s", name)
                        try:
                            self.take(name)
                        except Exception:
                            log.exception("could not start %s; giving it back", name)
                            self._give(name, release=True)
                        self._renew()  # taking may be slow: keep the others alive
        self.rounds += 1

    def _mine(self, kind: str) -> list[str]:
        """The leases of one kind held here, in number order."""
        return sorted((n for n in self.held if parse(n)[0] == kind), key=lambda n: parse(n)[1])

    def _renew(self) -> None:
        renewed = self.leases.renew(sorted(self.held))
        for name in sorted(self.held - renewed):
            log.error("lost %s (not renewed in time); stopping it", name)
            self._give(name, release=False)

    def _give(self, name: str, *, release: bool) -> None:
        self.held.discard(name)
        try:
            self.give(name)
        except Exception:
            log.exception("stopping %s failed", name)
        if release:
            self.leases.release(name)
            log.info("gave %s back", name)

    def stop(self) -> None:
        """Stop the rounds, stop what is held and release it, so others take over at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for name in sorted(self.held):
            self._give(name, release=False)
        try:
            self.leases.leave()
        except StorageError as exc:
            log.error("could not release leases (they expire by themselves): %s", exc)
