"""Who is calling a management route (``/api/…``): the admin key, a JWT, or a project key.

* the admin key (``admin_key``) or an HS256 JWT signed with ``tenancy.jwt_secret`` may manage
  everything; a JWT with an ``org`` claim sees only that organisation's projects;
* a project key may only read its own project (details, usage, export, budget);
* on a loopback bind with no admin key and no project keys yet, everything is open (the local
  developer); anywhere else a credential is always required.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

import jwt
from starlette.requests import HTTPConnection

from tollhouse.errors import Forbidden, Unauthorized
from tollhouse.tenancy.keys import KEY_PREFIX
from tollhouse.tenancy.service import Tenancy


@dataclass(frozen=True, slots=True)
class Principal:
    admin: bool
    org_id: str | None = None
    project_id: str | None = None  # a project key: read-only, this project only
    subject: str | None = None

    def require_admin(self) -> None:
        if not self.admin:
            raise Forbidden("a project key cannot manage projects; use the admin key or a JWT")

    def may_read(self, project_id: str) -> None:
        if not self.admin and self.project_id != project_id:
            raise Forbidden("this API key belongs to another project", details={"project_id": project_id})


def _credential(request: HTTPConnection) -> str | None:
    value = request.headers.get("authorization")
    if value:
        return value[7:].strip() if value[:7].lower() == "bearer " else value.strip()
    return request.headers.get("x-api-key") or None


async def principal(request: HTTPConnection) -> Principal:
    """FastAPI dependency for every management route."""
    tenancy: Tenancy = request.app.state.tenancy
    settings = tenancy.settings
    token = _credential(request)
    if token is None:
        if not await tenancy.keys.auth_required():
            return Principal(admin=True, subject="local")
        raise Unauthorized("authentication required: the admin key, a JWT or a project key")
    if settings.admin_key and hmac.compare_digest(token.encode(), settings.admin_key.encode()):
        return Principal(admin=True, subject="admin")
    if token.startswith(KEY_PREFIX):
        record = await tenancy.keys.lookup(token)
        if record is None:
            raise Unauthorized("invalid or revoked API key")
        return Principal(admin=False, project_id=record.project_id, subject=record.id)
    secret = settings.tenancy.jwt_secret
    if secret and token.count(".") == 2:
        try:
            claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["exp", "sub"]})
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token: {exc}") from None
        org = claims.get("org")
        return Principal(admin=True, org_id=str(org) if org else None, subject=str(claims["sub"]))
    raise Unauthorized("invalid API key")
