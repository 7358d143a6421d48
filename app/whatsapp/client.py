"""GraphClient: the async client for Meta's WhatsApp Cloud API (messages, media, templates, numbers).

All HTTP goes through :meth:`GraphClient._request`, which adds the bearer token, applies the
timeout, and turns every failure into a :class:`~app.whatsapp.errors.GraphError`. The HTTP client
is an ``httpx.AsyncClient`` or, on the send path, an
:class:`~app.whatsapp.aiohttp_client.AiohttpClient`; their exceptions are never re-raised as
they are (httpx's request objects carry our headers): they become GraphTimeout /
GraphConnectionError with the chain cut. The token never appears in a repr, a log line or an error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import httpx

from app.whatsapp import payloads
from app.whatsapp.aiohttp_client import AiohttpClient
from app.whatsapp.errors import (
    GraphConnectionError,
    GraphError,
    GraphTimeout,
    MediaChecksumMismatch,
    error_from_response,
)
from app.whatsapp.interactive import ButtonSpec, HeaderSpec
from app.whatsapp.media import MediaKind
from app.whatsapp.media_download import may_receive_token, read_capped, sha256_matches

logger = logging.getLogger(__name__)

DEFAULT_PHONE_FIELDS = (
    "verified_name", "display_phone_number", "quality_rating", "messaging_limit_tier", "throughput",
    "status", "code_verification_status", "name_status",
)
BUSINESS_PROFILE_FIELDS = (
    "about", "address", "description", "email", "profile_picture_url", "websites", "vertical",
)
_MAX_PAGES = 1000


class _Secret:
    """A string that never shows itself in repr or str."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "_Secret('**********')"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("secrets are not picklable")


@dataclass(frozen=True)
class SendResult:
    """Meta accepted the message (not delivered yet): its wamid and the recipient's wa_id."""

    wamid: str
    wa_id: str | None
    message_status: str | None


@dataclass(frozen=True)
class MediaInfo:
    """``GET /{media_id}``: a download URL valid for 5 minutes, with type, hash and size."""

    id: str
    url: str
    mime_type: str | None
    sha256: str | None
    file_size: int | None


class GraphClient:
    """Async client for one access token. Share ``http`` to pool connections across clients
    (an :class:`AiohttpClient` carries JSON calls and uploads, not :meth:`download_media`)."""

    def __init__(
        self,
        access_token: str,
        *,
        base_url: str = "https://graph.facebook.com",
        api_version: str = "v23.0",
        http: httpx.AsyncClient | AiohttpClient | None = None,
        timeout: float = 15.0,
    ) -> None:
        if not access_token:
            raise ValueError("access_token is required")
        # Wrapped so that vars(), debuggers and "show locals" tracebacks print a mask, not the token.
        self._token = _Secret(access_token)
        self.base_url = base_url.rstrip("/")
        self.api_version = api_version.strip("/")
        self.timeout = timeout
        self._owns_http = http is None
        self._http: Any = http if http is not None else httpx.AsyncClient()

    def __repr__(self) -> str:
        return f"GraphClient(base_url={self.base_url!r}, api_version={self.api_version!r})"

    __str__ = __repr__

    async def __aenter__(self) -> GraphClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if we created it; a shared one belongs to its owner."""
        if self._owns_http:
            await self._http.aclose()

    # -- plumbing ---------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        if path.startswith(("https://", "http://")):
            return path  # a paging.next link, already checked by the caller
        return f"{self.base_url}/{self.api_version}/{path.lstrip('/')}"

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token.reveal()}"}

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        files: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One Graph call: the JSON object answered on 2xx, GraphError otherwise (including timeouts)."""
        url = self._url(path)
        where = f"{method} {urlsplit(url).path}"  # never the query: a paging link may carry a token
        started = time.perf_counter()
        try:
            response = await self._http.request(
                method, url, json=json, params=params, data=data, files=files,
                headers=self._auth(), timeout=self.timeout,
            )
        except (httpx.HTTPError, aiohttp.ClientError, TimeoutError) as exc:
            failure: GraphError | None = _transport_error(exc, where, self.timeout)
        else:
            failure = None
        if failure is not None:
            raise failure  # raised outside the except block: no __context__ holding our headers
        elapsed_ms = (time.perf_counter() - started) * 1000
        logger.debug("graph %s -> %s in %.0f ms", where, response.status_code, elapsed_ms)
        if not response.is_success:
            error = error_from_response(response.status_code, response.content)
            logger.info("graph %s failed: %s", where, error)
            raise error
        if not response.content:
            return {}
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise GraphError(
                f"{where} answered {response.status_code} with a body that is not a JSON object",
                http_status=response.status_code,
            )
        return answer

    # -- messages ---------------------------------------------------------------------------------

    async def send(self, phone_number_id: str, body: Mapping[str, Any]) -> SendResult:
        """POST a message body (see :mod:`app.whatsapp.payloads`); Meta's acceptance, not delivery."""
        answer = await self._request("POST", f"{phone_number_id}/messages", json=dict(body))
        messages = answer.get("messages") or [{}]
        contacts = answer.get("contacts") or [{}]
        wamid = messages[0].get("id")
        if not wamid:
            raise GraphError("the send answer holds no message id", details=str(answer)[:200])
        return SendResult(wamid, contacts[0].get("wa_id"), messages[0].get("message_status"))

    async def send_text(
        self, phone_number_id: str, to: str, body: str, *, preview_url: bool = False, reply_to: str | None = None
    ) -> SendResult:
        return await self.send(phone_number_id, payloads.text(to, body, preview_url=preview_url, reply_to=reply_to))

    async def send_media(
        self,
        phone_number_id: str,
        to: str,
        kind: MediaKind | str,
        *,
        media_id: str | None = None,
        link: str | None = None,
        caption: str | None = None,
        filename: str | None = None,
        reply_to: str | None = None,
    ) -> SendResult:
        body = payloads.media(
            to, kind, media_id=media_id, link=link, caption=caption, filename=filename, reply_to=reply_to
        )
        return await self.send(phone_number_id, body)

    async def send_location(
        self,
        phone_number_id: str,
        to: str,
        latitude: float,
        longitude: float,
        *,
        name: str | None = None,
        address: str | None = None,
        reply_to: str | None = None,
    ) -> SendResult:
        body = payloads.location(to, latitude, longitude, name=name, address=address, reply_to=reply_to)
        return await self.send(phone_number_id, body)

    async def send_contacts(
        self, phone_number_id: str, to: str, cards: Sequence[Mapping[str, Any]], *, reply_to: str | None = None
    ) -> SendResult:
        return await self.send(phone_number_id, payloads.contacts(to, cards, reply_to=reply_to))

    async def send_buttons(
        self,
        phone_number_id: str,
        to: str,
        body: str,
        choices: Sequence[ButtonSpec],
        *,
        header: HeaderSpec | None = None,
        footer: str | None = None,
        reply_to: str | None = None,
    ) -> SendResult:
        message = payloads.buttons(to, body, choices, header=header, footer=footer, reply_to=reply_to)
        return await self.send(phone_number_id, message)

    async def send_list(
        self,
        phone_number_id: str,
        to: str,
        body: str,
        button: str,
        sections: Sequence[Mapping[str, Any]],
        *,
        header: str | None = None,
        footer: str | None = None,
        reply_to: str | None = None,
    ) -> SendResult:
        message = payloads.list_message(to, body, button, sections, header=header, footer=footer, reply_to=reply_to)
        return await self.send(phone_number_id, message)

    async def send_template(
        self,
        phone_number_id: str,
        to: str,
        name: str,
        language: str,
        components: Sequence[Mapping[str, Any]] | None = None,
        *,
        definition: Mapping[str, Any] | None = None,
        reply_to: str | None = None,
    ) -> SendResult:
        message = payloads.template(to, name, language, components, definition=definition, reply_to=reply_to)
        return await self.send(phone_number_id, message)

    async def send_reaction(self, phone_number_id: str, to: str, message_id: str, emoji: str) -> SendResult:
        return await self.send(phone_number_id, payloads.reaction(to, message_id, emoji))

    async def mark_read(self, phone_number_id: str, message_id: str, typing_indicator: bool = False) -> bool:
        """Mark ``message_id`` and earlier messages read (blue ticks); optionally show typing."""
        body = payloads.mark_read(message_id, typing_indicator=typing_indicator)
        answer = await self._request("POST", f"{phone_number_id}/messages", json=body)
        return bool(answer.get("success"))

    # -- media ------------------------------------------------------------------------------------

    async def upload_media(self, phone_number_id: str, data: bytes, mime_type: str, filename: str) -> str:
        """Upload a file for sending; returns its media id (valid 30 days)."""
        answer = await self._request(
            "POST",
            f"{phone_number_id}/media",
            data={"messaging_product": "whatsapp", "type": mime_type},
            files={"file": (filename, data, mime_type)},
        )
        return str(_required(answer, "id", "media upload"))

    async def get_media(self, media_id: str) -> MediaInfo:
        """A fresh download URL (valid 5 minutes) and the file's type, hash and size."""
        answer = await self._request("GET", media_id)
        size = answer.get("file_size")
        return MediaInfo(
            id=str(answer.get("id", media_id)),
            url=str(_required(answer, "url", "media lookup")),
            mime_type=answer.get("mime_type"),
            sha256=answer.get("sha256"),
            file_size=int(size) if size is not None else None,
        )

    async def download_media(self, url: str, *, max_bytes: int, expected_sha256: str | None = None) -> bytes:
        """Stream ``url`` into memory, refusing more than ``max_bytes`` and checking the SHA-256.

        A 404 means the URL expired (MediaUrlExpired: call :meth:`get_media` again).
        """
        headers = self._auth() if may_receive_token(url, self.base_url) else {}
        try:
            async with self._http.stream(
                "GET", url, headers=headers, timeout=self.timeout, follow_redirects=True
            ) as response:
                data, digest = await read_capped(response, max_bytes)
        except httpx.HTTPError as exc:
            failure: GraphError | None = _transport_error(exc, "media download", self.timeout)
        else:
            failure = None
        if failure is not None:
            raise failure
        if expected_sha256 and not sha256_matches(digest, expected_sha256):
            raise MediaChecksumMismatch("the file's SHA-256 differs from the announced one", details=expected_sha256)
        return data

    async def delete_media(self, media_id: str) -> bool:
        answer = await self._request("DELETE", media_id)
        return bool(answer.get("success"))

    # -- templates --------------------------------------------------------------------------------

    async def list_templates(self, waba_id: str, name: str | None = None) -> list[dict[str, Any]]:
        """Every template of the WABA (all pages), optionally only those called ``name``."""
        path = f"{waba_id}/message_templates"
        params: dict[str, Any] | None = {"name": name} if name else None
        templates: list[dict[str, Any]] = []
        seen: set[str] = set()
        for _ in range(_MAX_PAGES):
            page = await self._request("GET", path, params=params)
            templates.extend(page.get("data") or ())
            paging = page.get("paging") or {}
            next_link = paging.get("next")
            after = (paging.get("cursors") or {}).get("after")
            # Meta sends "next" only while more pages exist. Prefer the "after" cursor on our own
            # URL; follow the link itself only when it points where the token may go.
            if not next_link or (after or next_link) in seen:
                break
            seen.add(after or next_link)
            if after:
                path, params = f"{waba_id}/message_templates", {**({"name": name} if name else {}), "after": after}
            elif may_receive_token(next_link, self.base_url):
                path, params = next_link, None
            else:
                break
        if name:  # Meta's name filter matches substrings ("promo_1" finds promo_10); keep exact names
            templates = [t for t in templates if t.get("name") == name]
        return templates

    async def create_template(self, waba_id: str, definition: Mapping[str, Any]) -> dict[str, Any]:
        """Submit a template for review; answer ``{id, status, category}`` (status usually PENDING)."""
        return await self._request("POST", f"{waba_id}/message_templates", json=dict(definition))

    async def delete_template(self, waba_id: str, name: str, hsm_id: str | None = None) -> bool:
        """Delete a template in every language, or only the one with ``hsm_id``."""
        params = {"name": name, **({"hsm_id": hsm_id} if hsm_id else {})}
        answer = await self._request("DELETE", f"{waba_id}/message_templates", params=params)
        return bool(answer.get("success"))

    # -- phone number and profile -----------------------------------------------------------------

    async def get_phone_number(
        self, phone_number_id: str, fields: Sequence[str] = DEFAULT_PHONE_FIELDS
    ) -> dict[str, Any]:
        return await self._request("GET", phone_number_id, params={"fields": ",".join(fields)})

    async def get_business_profile(self, phone_number_id: str) -> dict[str, Any]:
        """The business profile; Meta wraps it as ``{"data": [{...}]}``, we unwrap it."""
        answer = await self._request(
            "GET", f"{phone_number_id}/whatsapp_business_profile", params={"fields": ",".join(BUSINESS_PROFILE_FIELDS)}
        )
        data = answer.get("data") or [{}]
        return dict(data[0])

    async def update_business_profile(self, phone_number_id: str, fields: Mapping[str, Any]) -> bool:
        body = {"messaging_product": "whatsapp", **fields}
        answer = await self._request("POST", f"{phone_number_id}/whatsapp_business_profile", json=body)
        return bool(answer.get("success"))


def _required(answer: Mapping[str, Any], key: str, what: str) -> Any:
    """``answer[key]``, or a GraphError saying the answer lacked it (not a bare KeyError)."""
    if answer.get(key) in (None, ""):
        raise GraphError(f"the {what} answer holds no {key}", details=str(answer)[:200])
    return answer[key]


def _transport_error(exc: Exception, what: str, timeout: float) -> GraphError:
    """Our error for an httpx or aiohttp failure: only the exception's class name is kept, never its
    request. Timeouts (httpx's, aiohttp's ServerTimeoutError and total timeout) are GraphTimeout."""
    if isinstance(exc, (httpx.TimeoutException, TimeoutError)):
        return GraphTimeout(f"{what} timed out after {timeout:g}s ({type(exc).__name__})")
    return GraphConnectionError(f"{what} failed: {type(exc).__name__}")
