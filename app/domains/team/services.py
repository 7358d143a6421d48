"""Team administration: users, one-time password links, teams of agents and API keys.

Builds on ``AccountsOfPeople`` (create_user, deactivate_user, API keys) and adds the admin's
rules: a workspace always keeps one active admin, a demoted admin's keys lose admin rights,
a deactivated user is signed out and their keys stop at once.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from beanie import PydanticObjectId
from beanie.exceptions import RevisionIdWasChanged
from beanie.operators import In
from pymongo.errors import DuplicateKeyError

from app.db import as_utc, parse_object_id, utcnow
from app.domains.accounts.models import WhatsAppAccount
from app.domains.audit import services as audit
from app.domains.conversations.models import Conversation
from app.domains.team.models import Invitation, Team
from app.domains.workspaces.models import ApiKey, Role, User, WebSession
from app.domains.workspaces.services import MIN_PASSWORD_LENGTH, AccountsOfPeople, Principal
from app.errors import Conflict, NotFound, ValidationFailed
from app.logging import get_logger
from app.security import hash_password, new_token, token_digest, verify_password

log = get_logger(__name__)
INVITE_TTL = timedelta(days=7)
RESET_TTL = timedelta(hours=24)


def parse_role(value: str | Role | None, field: str = "role") -> Role:
    try:
        return Role(str(value or "").strip().lower())
    except ValueError:
        raise ValidationFailed("Choose admin, supervisor or agent.",
                               details={field: "admin, supervisor or agent"}) from None


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed("Check the highlighted fields.",
                               details={"password": f"Use at least {MIN_PASSWORD_LENGTH} characters."})


def user_view(user: User) -> dict[str, Any]:
    return {"id": str(user.id), "email": user.email, "name": user.name, "role": user.role.value,
            "active": user.active, "created_at": user.created_at, "deactivated_at": user.deactivated_at,
            "all_numbers": user.all_numbers, "number_ids": [str(n) for n in user.number_ids]}


def team_view(team: Team) -> dict[str, Any]:
    return {"id": str(team.id), "name": team.name, "member_ids": [str(m) for m in team.member_ids],
            "created_at": team.created_at, "updated_at": team.updated_at}


def api_key_view(key: ApiKey) -> dict[str, Any]:
    """Never the key itself: its first characters identify it in lists."""
    return {"id": str(key.id), "name": key.name, "role": key.role.value, "prefix": key.prefix,
            "user_id": str(key.user_id) if key.user_id else None, "created_at": key.created_at,
            "last_used_at": key.last_used_at, "revoked_at": key.revoked_at, "active": key.revoked_at is None}


class TeamAdmin:
    """What the Team and API keys screens (and their JSON API) do."""

    def __init__(self, people: AccountsOfPeople, public_url: str) -> None:
        self.people = people
        self.public_url = public_url

    # -- users ------------------------------------------------------------------------------------

    async def list_users(self, workspace_id: PydanticObjectId) -> list[User]:
        return await User.scoped(workspace_id).sort("+name", "+email").to_list()

    async def get_user(self, workspace_id: PydanticObjectId, user_id: str) -> User:
        return await User.get_scoped(workspace_id, user_id)

    async def add_user(self, workspace_id: PydanticObjectId, email: str, name: str, role: str | Role,
                       password: str | None = None) -> tuple[User, str | None]:
        """Create a user with a password, or invite them: returns the one-time invite link (shown once)."""
        role = parse_role(role)
        if password:
            user = await self.people.create_user(workspace_id, email, password, role, name)
            await audit.record(workspace_id, "user.added", "user", user.id, user.email, {"role": role.value})
            return user, None
        # Nobody knows this password: the invitee sets theirs through the link.
        user = await self.people.create_user(workspace_id, email, secrets.token_urlsafe(32), role, name)
        await audit.record(workspace_id, "user.invited", "user", user.id, user.email, {"role": role.value})
        return user, await self._link(user, "invite", INVITE_TTL)

    async def update_user(self, actor: Principal, user: User, *, name: str | None = None, role: str | None = None,
                          active: bool | None = None, password: str | None = None, all_numbers: bool | None = None,
                          number_ids: list[str] | None = None) -> User:
        """Rename, change role, deactivate / reactivate, set a password (signs the user out), or choose
        the numbers whose conversations an agent sees (``all_numbers``, ``number_ids``)."""
        new_role = parse_role(role) if role is not None else user.role
        before = _audited(user)
        losing_admin = user.role is Role.ADMIN and user.active and (
            new_role is not Role.ADMIN or active is False)
        if active is False and actor.user_id == user.id:
            raise Conflict("You cannot deactivate yourself; ask another admin.", error_code="SELF_DEACTIVATION")
        if losing_admin and await User.scoped(user.workspace_id, {"role": Role.ADMIN.value, "active": True,
                                                                  "_id": {"$ne": user.id}}).count() == 0:
            raise Conflict("A workspace needs at least one active admin.", error_code="LAST_ADMIN",
                           details={"role": "This is the only active admin."})
        if password is not None:
            _check_password(password)
        if number_ids is not None:
            user.number_ids = await self._numbers(user.workspace_id, number_ids)
        if all_numbers is not None:
            user.all_numbers = all_numbers
        if name is not None:
            if not name.strip():
                raise ValidationFailed("Check the highlighted fields.", details={"name": "Cannot be empty."})
            user.name = name.strip()
        if new_role is not user.role:
            user.role = new_role
            if new_role is not Role.ADMIN:  # their keys must not keep admin rights
                await ApiKey.scoped(user.workspace_id, {"user_id": user.id, "role": Role.ADMIN.value}).update(
                    {"$set": {"role": new_role.value}})
        if password is not None:
            user.password_hash = hash_password(password)
        await user.save()
        if password is not None:
            await WebSession.find(WebSession.user_id == user.id).delete()
        if active is False and user.active:
            await self.people.deactivate_user(user)
            log.info("user deactivated", user_id=str(user.id))
        elif active is True and not user.active:
            user.active, user.deactivated_at = True, None
            await user.save()
        await self.people.credentials_changed()  # role, name, numbers or password: cached principals carry the old ones
        edited = audit.diff(before, _audited(user))
        if password is not None:
            edited["password"] = audit.CHANGED
        if edited:
            action = ("user.deactivated" if "active" in edited and not user.active else
                      "user.role_changed" if "role" in edited else "user.changed")
            await audit.record(user.workspace_id, action, "user", user.id, user.email, edited)
        return user

    async def _numbers(self, workspace_id: PydanticObjectId, number_ids: list[str]) -> list[PydanticObjectId]:
        ids = [parse_object_id(n) for n in dict.fromkeys(number_ids)]
        if any(i is None for i in ids) or await WhatsAppAccount.find(
                WhatsAppAccount.workspace_id == workspace_id, In(WhatsAppAccount.id, ids)).count() != len(ids):
            raise ValidationFailed("Unknown number.", details={"number_ids": "Choose numbers of this workspace."})
        return ids  # type: ignore[return-value]

    async def update_own_profile(self, user: User, *, name: str | None = None, current_password: str = "",
                                 new_password: str = "", again: str = "") -> bool:
        """A user's own name and password (the profile page). A new password needs the current one and
        signs the user out everywhere else. Returns True when the password changed."""
        errors: dict[str, str] = {}
        if name is not None and not name.strip():
            errors["name"] = "Cannot be empty."
        if new_password or current_password or again:
            if not verify_password(user.password_hash, current_password):
                errors["current_password"] = "This is not your current password."
            elif len(new_password) < MIN_PASSWORD_LENGTH:
                errors["password"] = f"Use at least {MIN_PASSWORD_LENGTH} characters."
            elif new_password != again:
                errors["password_again"] = "Type the same password twice."
        if errors:
            raise ValidationFailed("Check the highlighted fields.", details=errors)
        if name is not None:
            user.name = name.strip()[:120]
        changed = bool(new_password)
        if changed:
            user.password_hash = hash_password(new_password)
        await user.save()
        if changed:
            await WebSession.find(WebSession.user_id == user.id).delete()
            log.info("password changed by its user", user_id=str(user.id))
        await self.people.credentials_changed()  # cached principals carry the old name (and sessions)
        return changed

    async def reset_link(self, user: User) -> str:
        """A one-time link (24 h) to choose a new password; the current one works until it is used."""
        if not user.active:
            raise Conflict("Reactivate this user before resetting their password.", error_code="USER_INACTIVE")
        return await self._link(user, "reset", RESET_TTL)

    async def _link(self, user: User, purpose: str, ttl: timedelta) -> str:
        await Invitation.find(Invitation.user_id == user.id, Invitation.used_at == None).delete()  # noqa: E711
        token = new_token()
        await Invitation(workspace_id=user.workspace_id, user_id=user.id, token_hash=token_digest(token),
                         purpose=purpose, expires_at=utcnow() + ttl).insert()
        return f"{self.public_url}/invite/{token}"

    async def invitation(self, token: str) -> tuple[Invitation, User] | None:
        """The link's invitation and user while it is valid (unused, unexpired, user active)."""
        found = await Invitation.find_one(Invitation.token_hash == token_digest(token))
        if found is None or found.used_at is not None or as_utc(found.expires_at) < utcnow():
            return None
        user = await User.get(found.user_id)
        if user is None or not user.active:
            return None
        return found, user

    async def accept_invitation(self, token: str, password: str) -> User:
        """Set the password chosen through the link; the link is spent and old sessions end."""
        valid = await self.invitation(token)
        if valid is None:
            raise NotFound("This link has expired or was already used. Ask an admin for a new one.",
                           error_code="LINK_INVALID")
        _check_password(password)
        invitation, user = valid
        invitation.used_at = utcnow()
        await invitation.save()
        user.password_hash = hash_password(password)
        await user.save()
        await WebSession.find(WebSession.user_id == user.id).delete()
        await self.people.credentials_changed()
        return user

    # -- teams ------------------------------------------------------------------------------------

    async def list_teams(self, workspace_id: PydanticObjectId) -> list[Team]:
        return await Team.scoped(workspace_id).sort("+name").to_list()

    async def get_team(self, workspace_id: PydanticObjectId, team_id: str) -> Team:
        return await Team.get_scoped(workspace_id, team_id)

    async def _members(self, workspace_id: PydanticObjectId, member_ids: list[str]) -> list[PydanticObjectId]:
        ids = [parse_object_id(m) for m in dict.fromkeys(member_ids)]
        if any(i is None for i in ids):
            raise ValidationFailed("Unknown team member.", details={"member_ids": "Unknown user id."})
        found = await User.scoped(workspace_id, In(User.id, ids)).count()
        if found != len(ids):
            raise ValidationFailed("Unknown team member.", details={"member_ids": "Unknown user id."})
        return ids  # type: ignore[return-value]

    async def save_team(self, workspace_id: PydanticObjectId, name: str, member_ids: list[str],
                        team: Team | None = None) -> Team:
        if not name.strip():
            raise ValidationFailed("Check the highlighted fields.", details={"name": "Required."})
        if len(name.strip()) > 80:
            raise ValidationFailed("Check the highlighted fields.", details={"name": "At most 80 characters."})
        members = await self._members(workspace_id, member_ids)
        team = team or Team(workspace_id=workspace_id, name=name.strip())
        team.name, team.member_ids, team.updated_at = name.strip(), members, utcnow()
        try:
            # Beanie's save() upserts and reports a duplicate key as RevisionIdWasChanged.
            await (team.insert() if team.id is None else team.save())
        except (DuplicateKeyError, RevisionIdWasChanged):
            raise Conflict("A team with this name exists.", details={"name": "Already used."}) from None
        await self.people.credentials_changed()  # members see the team's conversations (principals carry teams)
        return team

    async def delete_team(self, team: Team) -> None:
        """Conversations assigned to the team keep their agent but lose the team."""
        await Conversation.scoped(team.workspace_id, {"team_id": team.id}).update(
            {"$set": {"team_id": None, "sliced_at": utcnow(), "updated_at": utcnow()}})
        await team.delete()
        await self.people.credentials_changed()
        await audit.record(team.workspace_id, "team.deleted", "team", team.id, team.name)

    # -- API keys ---------------------------------------------------------------------------------

    async def list_api_keys(self, workspace_id: PydanticObjectId) -> list[ApiKey]:
        return await ApiKey.scoped(workspace_id).sort("-created_at").to_list()

    async def create_api_key(self, actor: Principal, name: str, role: str | Role) -> tuple[ApiKey, str]:
        """A new key tied to the admin who made it (it stops when they are deactivated); shown once."""
        if not name.strip():
            raise ValidationFailed("Check the highlighted fields.", details={"name": "Required."})
        if len(name.strip()) > 100:
            raise ValidationFailed("Check the highlighted fields.", details={"name": "At most 100 characters."})
        key, secret = await self.people.create_api_key(actor.workspace_id, name, parse_role(role), actor.user_id)
        await audit.record(actor.workspace_id, "api_key.created", "api_key", key.id, key.name, {"role": key.role})
        return key, secret

    async def revoke_api_key(self, workspace_id: PydanticObjectId, key_id: str) -> ApiKey:
        key = await ApiKey.get_scoped(workspace_id, key_id)
        if key.revoked_at is None:
            await self.people.revoke_api_key(key)
            await audit.record(workspace_id, "api_key.revoked", "api_key", key.id, key.name)
        return key


def _audited(user: User) -> dict[str, object]:
    """A person's fields an edit is recorded with (app/domains/audit)."""
    return {"name": user.name, "role": user.role.value, "active": user.active, "all_numbers": user.all_numbers,
            "number_ids": [str(n) for n in user.number_ids]}
