"""SIP MESSAGE transport for SCAIP, on PJSIP's Python bindings (pjsua2).

PJSIP runs with no threads of its own: one thread of ours creates the library, sends what
the service queues and polls for events, so every PJSIP call and callback happens on it.
Each centre is an account (its proxy and digest credentials) with a buddy for its URI;
`send()` queues a body, and the final answer comes back through `on_result`: the SIP status
and, where the centre put one in the 200 OK (or in a MESSAGE of its own), its `<mrs>`.
Authentication challenges (401/407) are answered by PJSIP from the account's credentials.
"""

from __future__ import annotations

import functools
import logging
import queue
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.config.gateway import ScaipCentre
from gateway.scaip.messages import CONTENT_TYPE, BadResponse, Response, find_mrs, parse_response

log = logging.getLogger(__name__)
REF = re.compile(r"<ref>([A-Za-z0-9]{1,32})</ref>")
POLL_MS = 20


class SipUnavailable(RuntimeError):
    """The SIP stack is not installed (pip install 'tillsyn[scaip]')."""


@dataclass(frozen=True)
class SendResult:
    """The final answer to one request."""

    centre_id: str
    ref: str
    code: int                     # SIP status; 0 if it never left
    reason: str
    response: Response | None     # the centre's <mrs>, if it sent one
    problem: str | None = None    # why the <mrs> could not be read


ResultHandler = Callable[[SendResult], None]


def _pj() -> Any:
    try:
        import pjsua2  # type: ignore[import-untyped]  # noqa: PLC0415 - optional
    except ImportError as exc:
        raise SipUnavailable("scaip.enabled needs PJSIP's Python bindings: "
                             "pip install 'tillsyn[scaip]' (pjsua2-python)") from exc
    return pjsua2


def available() -> bool:
    """Whether the SIP stack can be loaded."""
    try:
        _pj()
    except SipUnavailable:
        return False
    return True


def _with_transport(uri: str, transport: str) -> str:
    return f"{uri};transport={transport}"


class SipAgent:
    """Sends SCAIP bodies as SIP MESSAGE requests to the configured centres."""

    def __init__(self, local_uri: str, centres: list[ScaipCentre],
                 on_result: ResultHandler) -> None:
        self.pj = _pj()
        self.local_uri = local_uri
        self.centres = {c.id: c for c in centres}
        self.on_result = on_result
        self._jobs: queue.Queue[tuple[str, str, bytes] | None] = queue.Queue()
        self._ready = threading.Event()
        self._failed: str | None = None
        self._thread = threading.Thread(target=self._run, name="tillsyn-sip", daemon=True)
        self._stopping = threading.Event()
        self.sent = 0

    def start(self, timeout: float = 10) -> None:
        """Create the stack on its thread; raise if it could not start."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"the SIP stack did not start within {timeout:.0f} s")
        if self._failed is not None:
            raise RuntimeError(f"the SIP stack did not start: {self._failed}")

    def send(self, centre_id: str, ref: str, body: bytes) -> None:
        """Queue one request; the answer comes through on_result."""
        self._jobs.put((centre_id, ref, body))

    def stop(self) -> None:
        """Stop polling and destroy the stack."""
        self._stopping.set()
        self._jobs.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    # --- on the SIP thread -------------------------------------------------------------------

    def _run(self) -> None:
        pj = self.pj
        ep = pj.Endpoint()
        accounts: dict[str, Any] = {}
        buddies: dict[str, Any] = {}
        try:
            ep.libCreate()
            cfg = pj.EpConfig()
            cfg.uaConfig.threadCnt = 0
            cfg.uaConfig.mainThreadOnly = False
            cfg.uaConfig.userAgent = "Tillsyn"
            cfg.logConfig.msgLogging = False  # bodies carry ids: never in the log
            cfg.logConfig.level = 2
            cfg.logConfig.consoleLevel = 2
            cfg.medConfig.noVad = True
            ep.libInit(cfg)
            ep.audDevManager().setNullDev()
            tcp = ep.transportCreate(pj.PJSIP_TRANSPORT_TCP, pj.TransportConfig())
            for centre in self.centres.values():
                tid = tcp
                if centre.transport == "tls":
                    tc = pj.TransportConfig()
                    tc.tlsConfig.verifyServer = True
                    if centre.ca_file:
                        tc.tlsConfig.CaListFile = centre.ca_file
                    tid = ep.transportCreate(pj.PJSIP_TRANSPORT_TLS, tc)
                acc = _account_class()(self, centre.id)
                acc.create(self._account_config(centre, tid))
                accounts[centre.id] = acc
            ep.libStart()
            for cid, acc in accounts.items():
                centre = self.centres[cid]
                bcfg = pj.BuddyConfig()
                bcfg.uri = _with_transport(centre.uri, centre.transport)
                bcfg.subscribe = False
                buddy = pj.Buddy()
                buddy.create(acc, bcfg)
                buddies[cid] = buddy
        except Exception as exc:  # noqa: BLE001 - reported to start()
            # Keep the words only: the exception's traceback would keep this thread's PJSIP
            # objects alive, and destroying them later on another thread aborts the process.
            self._failed = _reason(exc)
            failed = True
        else:
            failed = False
        if failed:
            acc = buddy = None  # noqa: F841 - drop the loop's references on this thread
            buddies.clear()
            accounts.clear()
            try:
                ep.libDestroy()  # so that a later start in this process can create it again
            except Exception:  # noqa: BLE001 - it may not have been created at all
                log.debug("SIP stack cleanup after a failed start")
            self._ready.set()
            return
        self._ready.set()
        try:
            while not self._stopping.is_set():
                self._drain(buddies)
                ep.libHandleEvents(POLL_MS)
        finally:
            buddies.clear()
            accounts.clear()
            try:
                ep.libDestroy()
            except Exception:  # noqa: BLE001 - shutting down anyway
                log.debug("SIP stack shutdown", exc_info=True)

    def _account_config(self, centre: ScaipCentre, transport_id: int) -> Any:
        pj = self.pj
        acfg = pj.AccountConfig()
        acfg.idUri = self.local_uri
        acfg.regConfig.registerOnAdd = False
        acfg.sipConfig.transportId = transport_id
        if centre.proxy:
            acfg.sipConfig.proxies.append(
                _with_transport(centre.proxy, centre.transport) + ";lr")
        if centre.username:
            secret = centre.password.get_secret_value() if centre.password else ""
            acfg.sipConfig.authCreds.append(
                pj.AuthCredInfo("digest", centre.realm, centre.username, 0, secret))
        return acfg

    def _drain(self, buddies: dict[str, Any]) -> None:
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            if job is None:
                return
            centre_id, ref, body = job
            buddy = buddies.get(centre_id)
            if buddy is None:
                self._result(SendResult(centre_id, ref, 0, "no such centre", None))
                continue
            prm = self.pj.SendInstantMessageParam()
            prm.content = body.decode("utf-8")
            prm.contentType = CONTENT_TYPE
            try:
                buddy.sendInstantMessage(prm)
                self.sent += 1
            except Exception as exc:  # noqa: BLE001 - pjsua2.Error: not sent at all
                self._result(SendResult(centre_id, ref, 0, f"not sent: {_reason(exc)}"[:200],
                                        None))

    def _result(self, result: SendResult) -> None:
        try:
            self.on_result(result)
        except Exception:  # a handler must never stop the SIP thread
            log.exception("SCAIP result handler failed")

    def _status(self, centre_id: str, body: str, code: int, reason: str,
                whole: str) -> None:
        m = REF.search(body)
        if m is None:
            return
        response, problem = None, None
        text = find_mrs(whole) if 200 <= code < 300 else None
        if text is not None:
            try:
                response = parse_response(text)
            except BadResponse as exc:
                problem = str(exc)
        self._result(SendResult(centre_id, m.group(1), code, reason, response, problem))

    def _incoming(self, centre_id: str, body: str) -> None:
        """A MESSAGE from the centre: its <mrs>, when it answers in a request of its own."""
        text = find_mrs(body)
        if text is None:
            return
        try:
            response = parse_response(text)
        except BadResponse as exc:
            log.warning("SCAIP centre %s sent an unreadable response: %s", centre_id, exc)
            return
        self._result(SendResult(centre_id, response.ref, 200, "OK", response))


def _reason(exc: BaseException) -> str:
    """The words of a pjsua2.Error (its str() is empty) or of any other exception."""
    info = getattr(exc, "info", None)
    text = info() if callable(info) else str(exc)
    return " ".join(str(text).split())[:300] or type(exc).__name__


@functools.cache
def _account_class() -> Any:
    """pjsua2.Account with our callbacks (built once, lazily: pjsua2 is optional)."""
    pj = _pj()

    class Account(pj.Account):  # type: ignore[misc,name-defined]
        def __init__(self, agent: SipAgent, centre_id: str) -> None:
            super().__init__()
            self.agent = agent
            self.centre_id = centre_id

        def onInstantMessageStatus(self, prm: Any) -> None:  # noqa: N802 - pjsua2 API
            whole = prm.rdata.wholeMsg if prm.rdata is not None else ""
            self.agent._status(self.centre_id, prm.msgBody or "", int(prm.code),
                               str(prm.reason), whole or "")

        def onInstantMessage(self, prm: Any) -> None:  # noqa: N802 - pjsua2 API
            self.agent._incoming(self.centre_id, prm.msgBody or "")

    return Account
