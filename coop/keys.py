"""The service's own secret keys: set in the environment in production, generated once and kept
under `COOP_DATA_DIR/keys/` in development and tests.

A key in the environment must be at least 32 characters. Without one, production refuses to
start; elsewhere a random 256-bit key is generated at first use into a file only the service's
user can read (`0600`), and the same file serves every later start and every worker sharing the
data folder.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import SecretStr

MIN_KEY_CHARS = 32
MIN_KEY_DISTINCT_CHARS = 8


class MissingKey(RuntimeError):
    pass


def service_key(*, name: str, configured: SecretStr | None, env: str, data_dir: Path) -> bytes:
    """The key called `name` (its variable is `COOP_<NAME>_KEY`), as bytes."""
    variable = f"COOP_{name.upper()}_KEY"
    if configured is not None:
        value = configured.get_secret_value()
        if len(value) < MIN_KEY_CHARS or len(set(value)) < MIN_KEY_DISTINCT_CHARS:
            raise MissingKey(
                f"{variable} must be a random secret of at least {MIN_KEY_CHARS} characters"
            )
        return value.encode()
    if env == "production":
        raise MissingKey(
            f"{variable} is required in production (a random secret of 32+ characters)"
        )
    return _generated(data_dir / "keys" / f"{name}.key")


def _generated(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        # Written whole under a private name, then linked into place: a process racing this
        # one either wins the link or reads the winner's complete key, never a partial one.
        draft = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(32))
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    value = path.read_text().strip()
    if len(value) < MIN_KEY_CHARS:
        raise MissingKey(f"{path} holds no usable key; delete it to have a new one generated")
    return value.encode()
