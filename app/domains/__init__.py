"""Business areas, one package each: models (Beanie), services (logic), controllers (HTML), api (JSON)."""

from __future__ import annotations

from beanie import Document


def all_documents() -> list[type[Document]]:
    """Every Document, for init_beanie."""
    from app.domains.workspaces.models import ApiKey, User, WebSession, Workspace

    return [Workspace, User, ApiKey, WebSession]
