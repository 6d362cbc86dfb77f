"""The operators' pages for drivers: registering one (`POST /v1/drivers`'s function) and
recording the law's qualification items and the car's register (`PUT
/v1/drivers/{id}/qualification` and `/vehicle`'s), docs/jurisdiction.md.

A form's fields are named by the API's own dotted paths (`vehicle.seats`,
`qualification.record_check_on`), so a refusal names the field the API would name, and is shown
beside it with everything typed kept."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from coop.clock import Now
from coop.dependencies import SessionDep
from coop.errors import field_errors
from coop.state import CoreState, state_of
from drivers import service as drivers_service
from drivers.schemas import DriverCreate, QualificationIn, VehicleIn
from server import accounts
from server.web.pages.admin import account_page, operator_of, profile_of
from server.web.pages.common import ViewerDep, check_csrf, named_by_field, page_router, reason_text
from server.web.rendering import render, translate

router = page_router()

# Each form's fields, as the API names them; the check boxes are true when sent.
DRIVER_FIELDS = ("name", "member_number")
DRIVER_BOXES = ("committee", "reviewer")
VEHICLE_FIELDS = tuple(
    name for name in VehicleIn.model_fields if name not in {"wheelchair_accessible"}
)
VEHICLE_BOXES = ("wheelchair_accessible",)
QUALIFICATION_FIELDS = tuple(QualificationIn.model_fields)
FORM_MAX_FIELDS = 64
FIELD_MAX_CHARS = 2000


async def _form(request: Request) -> dict[str, str]:
    """The posted form's text fields (a file or an overlong value is refused as empty)."""
    form = await request.form(max_fields=FORM_MAX_FIELDS, max_files=0)
    return {
        key: value.strip()
        for key, value in form.items()
        if isinstance(value, str) and len(value) <= FIELD_MAX_CHARS
    }


def _group(
    values: dict[str, str], prefix: str, fields: tuple[str, ...], boxes: tuple[str, ...]
) -> dict[str, Any]:
    """The body of one part of the form, as the API takes it: what is empty is left out."""
    body: dict[str, Any] = {}
    for name in fields:
        raw = values.get(f"{prefix}{name}", "")
        if raw:
            body[name] = raw
    for name in boxes:
        body[name] = f"{prefix}{name}" in values
    if prefix == "qualification." and "record_check_clear" in body:
        body["record_check_clear"] = body["record_check_clear"] == "true"
    return body


def _errors(request: Request, exc: ValidationError, prefix: str = "") -> dict[str, str]:
    problems = [
        {"field": f"{prefix}{problem['field']}", "reason": problem["reason"]}
        for problem in field_errors(exc.errors())
    ]
    return named_by_field(problems, lambda reason: reason_text(request, reason))


def _future(request: Request, exc: drivers_service.DatedInTheFuture, prefix: str) -> dict[str, str]:
    field = str(exc.extra.get("field", ""))
    return {f"{prefix}{field}": translate(request, "A certificate cannot be dated after today.")}


# --- registering a driver ----------------------------------------------------------------------


@router.get("/admin/drivers/new", response_class=HTMLResponse)
async def registration_form(request: Request, viewer: ViewerDep) -> Response:
    operator_of(viewer)
    return render(request, "admin_driver_new.html", viewer, values={}, errors={}, problem=None)


@router.post("/admin/drivers", response_class=HTMLResponse)
async def register(request: Request, viewer: ViewerDep, session: SessionDep, now: Now) -> Response:
    values = await _form(request)
    check_csrf(request, values.get("csrf"))
    operator_of(viewer)
    body: dict[str, Any] = _group(values, "", DRIVER_FIELDS, DRIVER_BOXES)
    body["vehicle"] = _group(values, "vehicle.", VEHICLE_FIELDS, VEHICLE_BOXES)
    qualification = _group(values, "qualification.", QUALIFICATION_FIELDS, ())
    if qualification:
        body["qualification"] = qualification

    def again(errors: dict[str, str], problem: str | None = None) -> Response:
        return render(
            request,
            "admin_driver_new.html",
            viewer,
            values=values,
            errors=errors,
            problem=problem or translate(request, "A value on this page is not valid."),
        )

    try:
        data = DriverCreate.model_validate(body)
    except ValidationError as exc:
        return again(_errors(request, exc))
    try:
        driver, token = await drivers_service.register(
            session=session, profile=profile_of(request), data=data, now=now
        )
    except drivers_service.DatedInTheFuture as exc:
        return again(_future(request, exc, "qualification."))
    except drivers_service.DuplicateMemberNumber:
        message = translate(request, "A member with this number is registered already.")
        return again({"member_number": message}, message)
    settings = state_of(request.app, CoreState).settings
    account = await accounts.detail(
        session=session, settings=settings, account_id=driver.id, now=now
    )
    return render(request, "admin_once.html", viewer, account=account, token=token, link=None)


# --- the qualification register of a driver ----------------------------------------------------


@router.post("/admin/accounts/{account_id}/qualification", response_class=HTMLResponse)
async def record_qualification(
    account_id: uuid.UUID, request: Request, viewer: ViewerDep, session: SessionDep, now: Now
) -> Response:
    values = await _form(request)
    check_csrf(request, values.get("csrf"))
    operator_of(viewer)
    body = _group(values, "qualification.", QUALIFICATION_FIELDS, ())
    try:
        facts = QualificationIn.model_validate(body)
        await drivers_service.record_qualification(
            session=session, profile=profile_of(request), driver_id=account_id, facts=facts, now=now
        )
    except ValidationError as exc:
        errors = _errors(request, exc, "qualification.")
    except drivers_service.DatedInTheFuture as exc:
        errors = _future(request, exc, "qualification.")
    else:
        return RedirectResponse(
            f"/admin/accounts/{account_id}?done=qualification#qualification", status_code=303
        )
    await session.rollback()
    return await account_page(
        request,
        viewer,
        session,
        now,
        account_id,
        errors=errors,
        values=values,
        form="qualification",
    )


@router.post("/admin/accounts/{account_id}/vehicle", response_class=HTMLResponse)
async def record_vehicle(
    account_id: uuid.UUID, request: Request, viewer: ViewerDep, session: SessionDep, now: Now
) -> Response:
    values = await _form(request)
    check_csrf(request, values.get("csrf"))
    operator_of(viewer)
    body = _group(values, "vehicle.", VEHICLE_FIELDS, VEHICLE_BOXES)
    try:
        facts = VehicleIn.model_validate(body)
    except ValidationError as exc:
        return await account_page(
            request,
            viewer,
            session,
            now,
            account_id,
            errors=_errors(request, exc, "vehicle."),
            values=values,
            form="vehicle",
        )
    await drivers_service.record_vehicle(
        session=session, profile=profile_of(request), driver_id=account_id, facts=facts, now=now
    )
    return RedirectResponse(f"/admin/accounts/{account_id}?done=vehicle#vehicle", status_code=303)
