"""The one access policy: who (role, unit) may call which operation, on whose data.

Every operation of the API has exactly one entry in `POLICY` (or is in `PUBLIC`); the
`Authorized` dependency that every route takes looks its entry up and applies it before
the route runs (and before its body is read):

- the role must be one the entry names, else 403 (whatever resident is asked for: a
  refusal must not tell who lives where);
- **unit scope for every unit-bound role**: a staff member bound to a unit (night staff,
  an assessor, a manager, an administrator) sees and acts on that unit only; a resident
  or alert of another unit answers 404, exactly as one that does not exist. Staff with no
  unit see the whole site;
- `site_wide` operations (the audit log, dead letters) are for staff with no unit only:
  they are not about one unit's residents;
- a `resident_id` in the query (a filter) is checked like one in the path, so nothing
  unvalidated reaches a query or the audit log.

An operation with no entry answers 500 and is listed by the route x role matrix test
(tests/test_access_matrix.py), so a new route cannot ship without a decision here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Request, status

from gateway.api.deps import RuntimeDep, current_staff
from gateway.config.registry import ID_PATTERN, Resident, Staff
from gateway.runtime import Runtime

Role = Literal["night_staff", "assessor", "manager", "admin"]
Scope = Literal["resident", "alert", "units", "none"]
ALL: frozenset[str] = frozenset({"night_staff", "assessor", "manager", "admin"})
EDITORS: frozenset[str] = frozenset({"assessor", "manager", "admin"})
ADMIN: frozenset[str] = frozenset({"admin"})
ROLE_NAMES = {"night_staff": "night staff", "assessor": "assessors", "manager": "managers",
              "admin": "administrators"}


@dataclass(frozen=True)
class Rule:
    """Who may call an operation, and what its scope check is.

    scope: `resident` (the path's resident_id must be in the caller's units), `alert`
    (the path's alert_id must be of an alert in the caller's units), `units` (a list the
    route filters to the caller's units), `none` (no personal data)."""

    roles: frozenset[str]
    scope: Scope
    what: str
    site_wide: bool = False


def _r(roles: frozenset[str], scope: Scope, what: str, *, site_wide: bool = False) -> Rule:
    return Rule(roles, scope, what, site_wide)


R = "/api/residents/{resident_id}"
POLICY: dict[tuple[str, str], Rule] = {
    ("GET", "/api/auth/me"): _r(ALL, "none", "see who they are logged in as"),
    ("POST", "/api/auth/stream-ticket"): _r(ALL, "none", "open event streams"),
    ("GET", "/api/audit"): _r(ADMIN, "none", "read the audit log", site_wide=True),
    ("GET", "/api/dead-letters"): _r(ADMIN, "none", "see dead letters", site_wide=True),
    ("GET", "/api/devices/status"): _r(ADMIN, "units", "see device status"),
    ("GET", "/api/icf"): _r(ALL, "none", "read the ICF catalogue"),
    ("GET", "/api/push/key"): _r(ALL, "none", "subscribe to notifications"),
    ("POST", "/api/push/subscriptions"): _r(ALL, "none", "subscribe to notifications"),
    ("DELETE", "/api/push/subscriptions"): _r(ALL, "none", "unsubscribe"),
    ("GET", "/api/indicators"): _r(ALL, "none", "read the indicator library"),
    # alerts
    ("GET", "/api/alerts"): _r(ALL, "units", "list alerts"),
    ("GET", "/api/alerts/stream"): _r(ALL, "units", "follow alerts"),
    ("POST", "/api/alerts/{alert_id}/ack"): _r(ALL, "alert", "acknowledge alerts"),
    ("POST", "/api/alerts/{alert_id}/resolve"): _r(ALL, "alert", "resolve alerts"),
    ("POST", "/api/alerts/{alert_id}/unack"): _r(ALL, "alert", "undo acknowledgements"),
    ("GET", "/api/residents"): _r(ALL, "units", "list residents"),
    ("GET", "/api/alerts/{alert_id}/goals"): _r(ALL, "alert", "see an alert's goals"),
    # supervision, unit-wide
    ("GET", "/api/supervision/tonight"): _r(ALL, "units", "see tonight's checks"),
    ("GET", "/api/supervision/summary"): _r(ALL, "units", "see the morning summary"),
    ("GET", "/api/supervision/counts"): _r(ALL, "units", "see check counts"),
    ("GET", "/api/supervision/stream"): _r(ALL, "units", "follow checks"),
    # one resident: read
    ("GET", R): _r(ALL, "resident", "read a resident's card"),
    ("GET", R + "/observations"): _r(ALL, "resident", "read observations"),
    ("GET", R + "/visits"): _r(ALL, "resident", "read staff visits"),
    ("GET", R + "/risk"): _r(ALL, "resident", "read the fall-risk trend"),
    ("GET", R + "/consent"): _r(ALL, "resident", "read consent"),
    ("GET", R + "/supervision"): _r(ALL, "resident", "read supervision plans"),
    ("GET", R + "/supervision/journal"): _r(ALL, "resident", "read the check journal"),
    ("GET", R + "/absences"): _r(ALL, "resident", "read planned absences"),
    ("GET", R + "/occupancy"): _r(ALL, "resident", "read occupancy"),
    ("GET", R + "/needs"): _r(ALL, "resident", "read needs"),
    ("GET", R + "/goals"): _r(ALL, "resident", "read goals"),
    ("GET", R + "/goals/{goal_id}"): _r(ALL, "resident", "read a goal"),
    # one resident: change
    ("PUT", R + "/consent"): _r(ADMIN, "resident", "record consent"),
    ("PUT", R + "/supervision"): _r(EDITORS, "resident", "change supervision plans"),
    ("POST", R + "/absences"): _r(EDITORS, "resident", "plan absences"),
    ("DELETE", R + "/absences/{absence_id}"): _r(EDITORS, "resident",
                                                 "withdraw planned absences"),
    ("PUT", R + "/needs"): _r(EDITORS, "resident", "change needs"),
    ("POST", R + "/goals"): _r(EDITORS, "resident", "add goals"),
    ("PUT", R + "/goals/{goal_id}"): _r(EDITORS, "resident", "change goals"),
    ("POST", R + "/goals/{goal_id}/follow-up"): _r(EDITORS, "resident", "follow up goals"),
    # reports
    ("GET", "/api/reports/followup/{resident_id}"): _r(EDITORS, "resident",
                                                       "see follow-up reports"),
    ("GET", "/api/reports/digital-trial/{resident_id}"): _r(EDITORS, "resident",
                                                            "see digital-trial reports"),
    ("GET", "/api/reports/unit"): _r(EDITORS, "units", "see unit reports"),
}
# No token: liveness for load balancers and monitors, metrics for Prometheus (no personal
# data in either), and the login itself.
PUBLIC: frozenset[tuple[str, str]] = frozenset({
    ("GET", "/healthz"), ("GET", "/metrics"), ("POST", "/api/auth/login")})

_ID = re.compile(ID_PATTERN)


def unit_scope(staff: Staff) -> set[str] | None:
    """Units a staff member may see: their own if bound to one (any role), else all
    (None)."""
    return {staff.unit} if staff.unit else None


def resident_in_scope(resident_id: str, staff: Staff, rt: Runtime) -> Resident:
    """The resident, if this staff member may see them; 404 otherwise, as for a resident
    who does not exist (do not reveal who lives elsewhere)."""
    res = rt.registry.resident(resident_id) if _ID.fullmatch(resident_id) else None
    if res is None or (staff.unit is not None and res.unit != staff.unit):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such resident in your scope")
    return res


def _alert_in_scope(alert_id: str, staff: Staff, rt: Runtime) -> None:
    if not alert_id.isdigit() or len(alert_id) > 18:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such alert")
    if rt.alerts is None:
        raise HTTPException(503, "alerting is not running")
    unit = rt.alerts.unit_of(int(alert_id))
    if unit is None or (staff.unit is not None and unit != staff.unit):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such alert")


def rule_for(request: Request) -> Rule:
    """The policy entry of the operation a request is for (500 if there is none: fail
    closed)."""
    route = request.scope.get("route")
    path = getattr(route, "path", request.url.path)
    rule = POLICY.get((request.method, path))
    if rule is None:
        raise HTTPException(500, f"no access policy for {request.method} {path}")
    return rule


def authorized(request: Request, staff: Annotated[Staff, Depends(current_staff)],
               rt: RuntimeDep) -> Staff:
    """Apply the operation's policy entry to the authenticated staff member."""
    rule = rule_for(request)
    if staff.role not in rule.roles:
        who = " and ".join(ROLE_NAMES[r] for r in ("night_staff", "assessor", "manager",
                                                   "admin") if r in rule.roles)
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"only {who} may {rule.what}")
    if rule.site_wide and staff.unit is not None:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"only administrators with no unit may {rule.what}")
    params = request.path_params
    if rule.scope == "resident":
        resident_in_scope(str(params.get("resident_id", "")), staff, rt)
    elif rule.scope == "alert":
        _alert_in_scope(str(params.get("alert_id", "")), staff, rt)
    wanted = request.query_params.get("resident_id")
    if wanted is not None and rule.scope != "none":
        resident_in_scope(wanted, staff, rt)
    return staff


Authorized = Annotated[Staff, Depends(authorized)]
