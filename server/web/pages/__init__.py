"""The co-op's own pages: server-rendered, French and English, signed in with a member's token.

Adapters, like the API's routes: every figure and every decision comes from the same
application functions the API's routes call (`bargaining.application`,
`reputation.application`, `pay.application`) and the same services, so a page can never show or
allow something the API would not. What a page adds is the form, the words and the layout. A
page never calls a route function (tests/architecture/test_application_layer.py).
"""

from __future__ import annotations

from fastapi import APIRouter

from server.web.pages import (
    admin,
    admin_drivers,
    committee,
    guide,
    impact,
    me,
    me_photo,
    passkeys,
    public,
    review,
    safety,
    share,
    signin,
    systems,
)
from server.web.pages.common import (
    PageRoute,
    counted_viewer,
    load_viewer,
    require_signed_in,
)

router = APIRouter()
for module in (
    signin,
    public,
    systems,
    committee,
    me,
    review,
    share,
    passkeys,
    safety,
    impact,
    me_photo,
    guide,
    admin,
    admin_drivers,
):
    router.include_router(module.router)
router.include_router(passkeys.ceremonies)

__all__ = ["PageRoute", "counted_viewer", "load_viewer", "require_signed_in", "router"]
