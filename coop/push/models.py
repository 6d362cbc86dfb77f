"""The tables of Web Push: each registered device (a push subscription) and each account's
choice of what it is pushed."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, Enum, ForeignKey, LargeBinary, String, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from coop.auth import Role
from coop.db import Base, utcnow


class PushDevice(Base):
    """A push subscription of one account, registered with one of its tokens. Revoking that
    token (or every token of the account) deletes it (`coop.push.service.forget_tokens`, called
    where tokens are revoked); a token's row deleted takes its devices along (the cascade)."""

    __tablename__ = "push_device"

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, default=uuid.uuid4, server_default=text("gen_random_uuid()")
    )
    role: Mapped[Role] = mapped_column(Enum(Role, name="auth_role", create_type=False))
    subject_id: Mapped[uuid.UUID] = mapped_column(index=True)
    token_hash: Mapped[bytes] = mapped_column(
        LargeBinary(32), ForeignKey("auth_token.token_hash", ondelete="CASCADE"), index=True
    )
    # The push service's URL for this subscription: a capability (whoever holds it can push to
    # the device, though only VAPID-signed by this service's key), so it is never listed back.
    endpoint: Mapped[str] = mapped_column(String(2048), unique=True)
    p256dh: Mapped[str] = mapped_column(String(100))
    auth: Mapped[str] = mapped_column(String(40))
    platform: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_pushed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class PushPreference(Base):
    """The kinds of push an account wants; no row: every kind."""

    __tablename__ = "push_preference"

    role: Mapped[Role] = mapped_column(
        Enum(Role, name="auth_role", create_type=False), primary_key=True
    )
    subject_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    kinds: Mapped[list[str]] = mapped_column(ARRAY(String(16)))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
