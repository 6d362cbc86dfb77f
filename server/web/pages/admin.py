"""The operators' pages (`/admin`): find an account, read it, record a driver's status decision,
issue a one-time recovery link and revoke an account's tokens.

Adapters over the API's own functions (`server.accounts`, `drivers.status.change_status`,
`coop.recovery.issue`, `coop.tokens.revoke_account`): the same checks, the same audit entries
and the same refusals as `GET /v1/accounts`, `POST /v1/drivers/{id}/status`,
`POST /v1/accounts/{id}/recovery-link` and `DELETE /v1/accounts/{id}/tokens`. Registering a
driver and recording the law's qualification items are in `admin_drivers`."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from coop import recovery, tokens
from coop.auth import Principal
from coop.clock import Now
from coop.dependencies import SessionDep, get_jurisdiction
from coop.errors import Forbidden
from coop.jurisdiction import Profile
from coop.state import CoreState, state_of
from drivers import qualifications
from drivers import service as drivers_service
from drivers.models import DriverStatus, DriverVehicle
from drivers.schemas import QualificationOut, VehicleIn
from drivers.status import StatusChangeIn, StatusUnchanged, change_status
from server import accounts
from server.web.pages.common import (
    ViewerDep,
    check_csrf,
    page_cursor,
    page_router,
    page_size,
    pager,
    reasons_text,
    require_signed_in,
)
from server.web.pages.messages import N_
from server.web.rendering import Viewer, render, translate

router = page_router()

KIND_NAMES = {
    "driver": N_("Driver (member)"),
    "rider": N_("Rider account"),
    "operator": N_("Operator"),
}
RENEWALS_WITHIN_DAYS = 30
RENEWALS_SHOWN = 50
STATUS_NAMES = {"active": N_("Active"), "inactive": N_("Inactive")}
# What an action done says on the account's page afterwards (`?done=`).
DONE = {
    "status": N_("The decision is recorded with its reason, in the history and the audit log."),
    "registered": N_("The driver is registered."),
    "qualification": N_("The qualification is recorded."),
    "vehicle": N_("The car is recorded."),
}


def operator_of(viewer: Viewer) -> Principal:
    """The signed-in operator; anyone else is refused as the API refuses them."""
    principal = require_signed_in(viewer)
    if not viewer.is_admin:
        raise Forbidden("The operators' pages are for the co-op's operators")
    return principal


def profile_of(request: Request) -> Profile:
    return get_jurisdiction(request)


@router.get("/admin", response_class=HTMLResponse)
async def admin_page(
    request: Request, viewer: ViewerDep, session: SessionDep, now: Now
) -> Response:
    operator_of(viewer)
    # The renewals to chase before a driver stops being offered trips (the same list as
    # `GET /v1/drivers/qualifications/expiring`).
    due = await qualifications.renewals_due(
        session=session, profile=profile_of(request), now=now, within_days=RENEWALS_WITHIN_DAYS
    )
    query = request.query_params.get("q", "")[: accounts.QUERY_MAX_CHARS]
    kind_raw = request.query_params.get("kind", "")
    kind: Any = kind_raw if kind_raw in ("driver", "rider") else None
    found, next_cursor = await accounts.search(
        session=session,
        query=query,
        kind=kind,
        limit=page_size(request),
        cursor=page_cursor(request, "accounts"),
    )
    return render(
        request,
        "admin.html",
        viewer,
        query=query,
        kind=kind or "",
        found=found,
        accounts_pager=pager(request, "accounts", next_cursor),
        kinds=KIND_NAMES,
        statuses=STATUS_NAMES,
        renewals=due[:RENEWALS_SHOWN],
        renewals_more=max(0, len(due) - RENEWALS_SHOWN),
        renewals_days=RENEWALS_WITHIN_DAYS,
    )


async def account_page(
    request: Request,
    viewer: Viewer,
    session: AsyncSession,
    now: datetime,
    account_id: uuid.UUID,
    *,
    status_code: int = 200,
    **context: Any,
) -> Response:
    """An account's page, with whatever a form sent back (its values, its errors)."""
    operator_of(viewer)
    settings = state_of(request.app, CoreState).settings
    account = await accounts.detail(
        session=session, settings=settings, account_id=account_id, now=now
    )
    driver_context: dict[str, Any] = {}
    if account.kind == "driver":
        driver = await drivers_service.get(session=session, driver_id=account_id)
        driver_context = {
            "standing": await drivers_service.standing(
                session=session, profile=profile_of(request), driver_id=account_id, now=now
            ),
            "changes": list(
                reversed(await drivers_service.list_changes(session=session, driver_id=account_id))
            ),
            "vehicle": driver.vehicle,
        }
        driver_context["facts"] = current_facts(
            driver.vehicle, driver_context["standing"].qualification
        )
    done = request.query_params.get("done", "")
    # Only a count the revocation's redirect wrote: a link made up elsewhere says nothing.
    revoked = request.query_params.get("revoked", "")
    return render(
        request,
        "admin_account.html",
        viewer,
        status_code=status_code,
        account=account,
        kinds=KIND_NAMES,
        statuses=STATUS_NAMES,
        done=DONE.get(done),
        revoked=int(revoked) if revoked.isdigit() and len(revoked) < 7 else None,
        **{"errors": {}, "values": {}, "form": "", "facts": {}, **driver_context, **context},
    )


@router.get("/admin/accounts/{account_id}", response_class=HTMLResponse)
async def account(
    account_id: uuid.UUID, request: Request, viewer: ViewerDep, session: SessionDep, now: Now
) -> Response:
    return await account_page(request, viewer, session, now, account_id)


@router.post("/admin/accounts/{account_id}/status", response_class=HTMLResponse)
async def decide_status(
    account_id: uuid.UUID,
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    now: Now,
    status: Annotated[str, Form(max_length=32)] = "",
    reason: Annotated[str, Form(max_length=20_000)] = "",
    csrf: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    check_csrf(request, csrf)
    operator_of(viewer)
    values = {"status": status, "reason": reason}
    try:
        body = StatusChangeIn.model_validate({"status": status, "reason": reason})
    except ValidationError as exc:
        return await account_page(
            request,
            viewer,
            session,
            now,
            account_id,
            errors={"status": reasons_text(request, exc)},
            values=values,
        )
    try:
        await change_status(
            session=session,
            driver_id=account_id,
            status=DriverStatus(body.status),
            reason=body.reason,
            now=now,
        )
    except StatusUnchanged:
        # Another operator decided first (or the page was old): theirs stands, this one is not
        # recorded, and the page says so with the history that shows theirs.
        message = translate(
            request,
            "This driver is already “%(status)s”: another decision was recorded meanwhile (see "
            "the history). Yours was not recorded.",
            status=translate(request, STATUS_NAMES[body.status.value]),
        )
        return await account_page(
            request,
            viewer,
            session,
            now,
            account_id,
            status_code=409,
            errors={"status": message},
            values=values,
        )
    return RedirectResponse(f"/admin/accounts/{account_id}?done=status#status", status_code=303)


def _facts(model: BaseModel | None, prefix: str) -> dict[str, str]:
    """Recorded facts as a form shows them."""
    if model is None:
        return {}
    shown: dict[str, str] = {}
    for name, value in model.model_dump().items():
        if value is None:
            continue
        if isinstance(value, bool):
            shown[f"{prefix}{name}"] = "true" if value else "false"
        elif isinstance(value, date):
            shown[f"{prefix}{name}"] = value.isoformat()
        else:
            shown[f"{prefix}{name}"] = str(value)
    return shown


def current_facts(vehicle: DriverVehicle, qualification: QualificationOut | None) -> dict[str, str]:
    """What the account page's forms show before anything is typed: the facts recorded."""
    facts = _facts(VehicleIn.model_validate(vehicle, from_attributes=True), "vehicle.")
    if not vehicle.wheelchair_accessible:
        facts.pop("vehicle.wheelchair_accessible", None)
    facts.update(_facts(qualification, "qualification."))
    return facts


# --- the recovery link and the tokens, each behind a confirmation ------------------------------


@router.get("/admin/accounts/{account_id}/recovery-link", response_class=HTMLResponse)
async def confirm_recovery_link(
    account_id: uuid.UUID, request: Request, viewer: ViewerDep, session: SessionDep, now: Now
) -> Response:
    return await _confirm(request, viewer, session, now, account_id, "recovery")


@router.post("/admin/accounts/{account_id}/recovery-link", response_class=HTMLResponse)
async def issue_recovery_link(
    account_id: uuid.UUID,
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    now: Now,
    confirm: Annotated[str, Form(max_length=8)] = "",
    csrf: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    check_csrf(request, csrf)
    operator = operator_of(viewer)
    if confirm != "yes":
        return await _confirm(request, viewer, session, now, account_id, "recovery")
    settings = state_of(request.app, CoreState).settings
    link = await recovery.issue(
        session=session,
        account_id=account_id,
        admin=operator,
        now=now,
        base_url=settings.web_origin or str(request.base_url),
    )
    found = await accounts.detail(
        session=session, settings=settings, account_id=account_id, now=now
    )
    return render(
        request,
        "admin_once.html",
        viewer,
        account=found,
        link=link,
        token=None,
        minutes=int(recovery.LINK_TTL.total_seconds() // 60),
    )


@router.get("/admin/accounts/{account_id}/tokens", response_class=HTMLResponse)
async def confirm_revoke(
    account_id: uuid.UUID, request: Request, viewer: ViewerDep, session: SessionDep, now: Now
) -> Response:
    return await _confirm(request, viewer, session, now, account_id, "revoke")


@router.post("/admin/accounts/{account_id}/tokens", response_class=HTMLResponse)
async def revoke_tokens(
    account_id: uuid.UUID,
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    now: Now,
    confirm: Annotated[str, Form(max_length=8)] = "",
    csrf: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    check_csrf(request, csrf)
    operator = operator_of(viewer)
    if confirm != "yes":
        return await _confirm(request, viewer, session, now, account_id, "revoke")
    settings = state_of(request.app, CoreState).settings
    # The account must exist: the API answers `revoked: 0` for an unknown id, the page a 404.
    await accounts.detail(session=session, settings=settings, account_id=account_id, now=now)
    done = await tokens.revoke_account(
        session=session,
        redis=state_of(request.app, CoreState).redis,
        account_id=account_id,
        admin=operator,
    )
    return RedirectResponse(
        f"/admin/accounts/{account_id}?revoked={done.revoked}#access", status_code=303
    )


async def _confirm(
    request: Request,
    viewer: Viewer,
    session: AsyncSession,
    now: datetime,
    account_id: uuid.UUID,
    action: str,
) -> Response:
    operator_of(viewer)
    settings = state_of(request.app, CoreState).settings
    found = await accounts.detail(
        session=session, settings=settings, account_id=account_id, now=now
    )
    return render(
        request,
        "admin_confirm.html",
        viewer,
        account=found,
        action=action,
        kinds=KIND_NAMES,
        minutes=int(recovery.LINK_TTL.total_seconds() // 60),
    )
