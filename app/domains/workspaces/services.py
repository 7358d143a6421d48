"""Sign-up, sign-in, sessions, API keys and the bootstrap admin. Used by web, CLI and tests."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import timedelta

from beanie import PydanticObjectId
from pymongo.errors import DuplicateKeyError

from app.changes import Changes
from app.db import as_utc, utcnow
from app.domains.access.scope import Scope
from app.domains.team.models import Team
from app.domains.workspaces.models import ApiKey, Role, User, WebSession, Workspace
from app.domains.workspaces.principals import PrincipalCache
from app.errors import Conflict, TooManyRequests, Unauthorized, ValidationFailed
from app.logging import get_logger
from app.ratelimit import FailureThrottle
from app.security import hash_password, new_api_key, new_token, token_digest, verify_password

log = get_logger(__name__)

MIN_PASSWORD_LENGTH = 8
FAILURES_BEFORE_SLOWING = 5
MAX_SLOWDOWN_SECONDS = 8.0
# last_used_at is for humans; writing it on every request would cost a write per API call.
_LAST_USED_GRANULARITY = timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a signed-in user or an API key, always within one workspace."""

    workspace_id: PydanticObjectId
    role: Role
    user: User | None = None
    api_key: ApiKey | None = None
    access: Scope | None = None
    """What it sees (app/domains/access/scope.py); None: the whole workspace."""

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def scope(self) -> Scope:
        """Pass this, not ``workspace_id``, to services that find or list conversations and messages."""
        return self.access or Scope.whole(self.workspace_id)

    @property
    def may_reassign(self) -> bool:
        """Admins and supervisors take a conversation from another agent; agents only hand over their own."""
        return self.role in (Role.ADMIN, Role.SUPERVISOR) or (self.user is None and self.api_key is not None)

    @property
    def user_id(self) -> PydanticObjectId | None:
        return self.user.id if self.user else None

    @property
    def who(self) -> str:
        """Who did it, as records keep it: "API key <name>" (with its owner's email), else the person's email."""
        if self.api_key is not None:
            return f"API key {self.api_key.name}" + (f" ({self.user.email})" if self.user is not None else "")
        return self.user.email if self.user is not None else "the system"


async def access_of(user: User, role: Role) -> Scope:
    """What a signed-in user (or their API key, with the key's role) sees (app/domains/access/scope.py)."""
    if role is not Role.AGENT or user.role is not Role.AGENT or user.all_numbers:
        return Scope.whole(user.workspace_id)
    teams = await Team.find(Team.workspace_id == user.workspace_id, Team.member_ids == user.id).to_list()
    return Scope(user.workspace_id, everything=False, account_ids=frozenset(user.number_ids),
                 team_ids=frozenset(t.id for t in teams if t.id is not None), user_id=user.id)


def normalise_email(email: str) -> str:
    return email.strip().lower()


def _check_credentials(email: str, password: str) -> str:
    email = normalise_email(email)
    errors = {}
    if "@" not in email or len(email) > 254 or email.startswith("@") or email.endswith("@"):
        errors["email"] = "Enter a valid email address."
    if len(password) < MIN_PASSWORD_LENGTH:
        errors["password"] = f"Use at least {MIN_PASSWORD_LENGTH} characters."
    if errors:
        raise ValidationFailed("Check the highlighted fields.", details=errors)
    return email


class AccountsOfPeople:
    """Workspaces, users and their credentials."""

    def __init__(self, login_throttle: FailureThrottle | None = None, session_max_age: timedelta = timedelta(days=14),
                 changes: Changes | None = None) -> None:
        self.login_throttle = login_throttle
        self.session_max_age = session_max_age
        self.principals = PrincipalCache(changes)

    async def workspace(self, workspace_id: PydanticObjectId) -> Workspace | None:
        return await Workspace.get(workspace_id)

    async def credentials_changed(self) -> None:
        """A key, a user's role, activity or password, or a session changed: stop trusting cached copies."""
        await self.principals.forget_everywhere()

    # --- workspaces and users -------------------------------------------------------------
    async def create_workspace(self, name: str, admin_email: str, admin_password: str, admin_name: str = "") -> tuple[Workspace, User]:
        email = _check_credentials(admin_email, admin_password)
        if await User.find_one(User.email == email):
            raise Conflict("An account with this email already exists.", details={"email": "already registered"})
        workspace = await Workspace(name=name.strip() or "My workspace").insert()
        user = await self.create_user(workspace.id, email, admin_password, Role.ADMIN, admin_name)
        return workspace, user

    async def create_user(self, workspace_id: PydanticObjectId, email: str, password: str, role: Role | str,
                          name: str = "") -> User:
        email = _check_credentials(email, password)
        user = User(workspace_id=workspace_id, email=email, name=name.strip() or email.split("@")[0],
                    role=Role(role), password_hash=hash_password(password))
        try:
            return await user.insert()
        except DuplicateKeyError:
            raise Conflict("An account with this email already exists.", details={"email": "already registered"}) from None

    async def deactivate_user(self, user: User) -> None:
        """Sign the user out everywhere and stop their API keys, at once."""
        user.active = False
        user.deactivated_at = utcnow()
        await user.save()
        await WebSession.find(WebSession.user_id == user.id).delete()
        await self.credentials_changed()

    # --- sign-in --------------------------------------------------------------------------
    async def sign_in(self, email: str, password: str, client_ip: str) -> tuple[User, str]:
        """Check the password; returns the user and a session token.

        Throttled so that guessing is slow but nobody can lock someone else out: an address is
        refused for a minute after 5 failures on one account (the account's owner, elsewhere, still
        signs in) or 30 failures in all (one address trying many accounts). Failures on one account
        from everywhere are counted too, and each failed attempt past the 5th answers a little later
        (up to 8 s): a guesser spread over many addresses is slowed; a right password never waits.
        """
        email = normalise_email(email)
        pair, address, account = f"pair:{email}|{client_ip}", f"ip:{client_ip}", f"account:{email}"
        if self.login_throttle:
            wait = await self.login_throttle.retry_after(pair, address)
            if wait:
                raise TooManyRequests("Too many failed sign-ins from here. Try again in a minute.",
                                      details={"retry_after": wait}, headers={"Retry-After": str(wait)})
        user = await User.find_one(User.email == email)
        if not verify_password(user.password_hash if user else None, password) or not user or not user.active:
            log.info("sign-in failed", email_domain=email.rpartition("@")[2], ip=client_ip)
            if self.login_throttle:
                *_, on_account = await self.login_throttle.record_failure(pair, address, account)
                if on_account > FAILURES_BEFORE_SLOWING:
                    await asyncio.sleep(min(2.0 ** (on_account - FAILURES_BEFORE_SLOWING - 1), MAX_SLOWDOWN_SECONDS))
            raise Unauthorized("Wrong email or password.", error_code="INVALID_CREDENTIALS")
        if self.login_throttle:
            await self.login_throttle.reset(pair)
        return user, await self.open_session(user)

    async def open_session(self, user: User) -> str:
        token = new_token()
        await WebSession(workspace_id=user.workspace_id, token_hash=token_digest(token), user_id=user.id,
                         expires_at=utcnow() + self.session_max_age).insert()
        return token

    async def close_session(self, token: str) -> None:
        await WebSession.find(WebSession.token_hash == token_digest(token)).delete()
        await self.credentials_changed()

    async def principal_for_session(self, token: str) -> Principal | None:
        digest = token_digest(token)
        cached = self.principals.get("session:" + digest)
        if cached is not None:
            return cached
        session = await WebSession.find_one(WebSession.token_hash == digest)
        now = utcnow()
        if session is None or as_utc(session.expires_at) < now:
            return None
        user = await User.get(session.user_id)
        if user is None or not user.active:
            return None
        principal = Principal(workspace_id=user.workspace_id, role=user.role, user=user,
                              access=await access_of(user, user.role))
        remaining = (as_utc(session.expires_at) - now).total_seconds()
        self.principals.put("session:" + digest, principal, until=time.monotonic() + remaining)
        return principal

    # --- API keys -------------------------------------------------------------------------
    async def create_api_key(self, workspace_id: PydanticObjectId, name: str, role: Role | str,
                             user_id: PydanticObjectId | None = None, key: str | None = None) -> tuple[ApiKey, str]:
        """A new key; the plaintext is returned once and never stored."""
        plaintext = key or new_api_key()
        record = ApiKey(workspace_id=workspace_id, name=name.strip() or "API key", role=Role(role),
                        key_hash=token_digest(plaintext), prefix=plaintext[:8], user_id=user_id)
        try:
            await record.insert()
        except DuplicateKeyError:
            raise Conflict("This API key is already registered.") from None
        return record, plaintext

    async def principal_for_api_key(self, key: str) -> Principal | None:
        digest = token_digest(key)
        cached = self.principals.get("key:" + digest)
        if cached is not None:
            return cached
        record = await ApiKey.find_one(ApiKey.key_hash == digest)
        if record is None or record.revoked_at is not None:
            return None
        user = None
        if record.user_id is not None:
            user = await User.get(record.user_id)
            if user is None or not user.active:
                return None
        now = utcnow()
        if record.last_used_at is None or now - as_utc(record.last_used_at) > _LAST_USED_GRANULARITY:
            await ApiKey.find_one(ApiKey.id == record.id).update({"$set": {"last_used_at": now}})
        principal = Principal(workspace_id=record.workspace_id, role=record.role, user=user, api_key=record,
                              access=await access_of(user, record.role) if user is not None else None)
        self.principals.put("key:" + digest, principal)
        return principal

    async def revoke_api_key(self, record: ApiKey) -> None:
        record.revoked_at = utcnow()
        await record.save()
        await self.credentials_changed()

    # --- bootstrap ------------------------------------------------------------------------
    async def bootstrap_admin(self, email: str | None, password: str | None, api_key: str | None,
                              workspace_name: str = "My workspace") -> User | None:
        """When no user exists yet, create the first workspace, its admin and (optionally) that API key.

        Web and worker processes start together and each runs this: the unique email lets one of
        them create the admin; the others remove the workspace they had begun and carry on.
        """
        if not email or not password or await User.find_one({}) is not None:
            return None
        email = _check_credentials(email, password)
        workspace = await Workspace(name=workspace_name).insert()
        try:
            user = await self.create_user(workspace.id, email, password, Role.ADMIN)
        except Conflict:
            await workspace.delete()
            log.info("bootstrap admin created by another process")
            return None
        if api_key:
            await self.create_api_key(user.workspace_id, "Bootstrap key", Role.ADMIN, user.id, key=api_key)
        log.info("bootstrap admin created", user_id=str(user.id))
        return user
