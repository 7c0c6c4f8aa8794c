"""Web Push subscriptions of the caller's phones, and the key to subscribe with."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from gateway.api.deps import RuntimeDep
from gateway.api.policy import Authorized
from gateway.push.sender import PushError, PushSender
from gateway.runtime import Runtime

router = APIRouter(prefix="/api/push", tags=["push"])
B64URL = r"^[A-Za-z0-9_-]+={0,2}$"


class Keys(BaseModel):
    """The browser's keys for encrypting to it (RFC 8291)."""

    p256dh: str = Field(..., min_length=80, max_length=100, pattern=B64URL)
    auth: str = Field(..., min_length=16, max_length=30, pattern=B64URL)


class SubscriptionBody(BaseModel):
    """A PushSubscription as the browser gives it (toJSON())."""

    endpoint: str = Field(..., min_length=10, max_length=1024)
    keys: Keys


class Unsubscribe(BaseModel):
    """Which of the caller's subscriptions to forget."""

    endpoint: str = Field(..., min_length=10, max_length=1024)


def _push(rt: Runtime) -> PushSender:
    if rt.push is None:
        raise HTTPException(503, "push notifications are off (push.enabled)")
    return rt.push


@router.get("/key")
def key(staff: Authorized, rt: RuntimeDep) -> dict[str, str]:
    """The application server key (VAPID public key) a phone subscribes with."""
    return {"public_key": _push(rt).public_key}


@router.post("/subscriptions", status_code=201)
def subscribe(body: SubscriptionBody, staff: Authorized, rt: RuntimeDep) -> dict[str, Any]:
    """Keep this phone's subscription for the caller: new priority 1 and 2 alerts of their
    unit, and escalations, arrive on it (docs/push.md)."""
    try:
        _push(rt).subscribe(staff.id, body.endpoint, body.keys.p256dh, body.keys.auth)
    except PushError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    rt.store.audit(staff.id, "push_subscribe", None, None)
    return {"subscribed": True}


@router.delete("/subscriptions")
def unsubscribe(body: Unsubscribe, staff: Authorized, rt: RuntimeDep) -> dict[str, Any]:
    """Stop sending to this phone."""
    gone = _push(rt).unsubscribe(staff.id, body.endpoint)
    rt.store.audit(staff.id, "push_unsubscribe", None, None)
    return {"subscribed": False, "removed": gone}
