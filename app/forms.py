"""What every HTML form handler needs: read the form, answer a page or an HTMX fragment, redirect.

One handler serves both: a classic POST (no JavaScript) gets the full page back, an HTMX request
only the fragment it swaps. Errors keep the status of the AppError (422, 409 ...); admin.js lets
htmx swap those answers so the field errors appear next to the fields.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from litestar import Request, Response
from litestar.datastructures import UploadFile
from litestar.plugins.htmx import ClientRedirect
from litestar.response import Redirect, Template

from app.errors import AppError


def is_htmx(request: Request) -> bool:
    return bool(request.headers.get("hx-request"))


async def read_form(request: Request) -> tuple[dict[str, str], dict[str, UploadFile]]:
    """Text fields (stripped, last value wins) and file fields of the posted form."""
    form = await request.form()
    values: dict[str, str] = {}
    files: dict[str, UploadFile] = {}
    for key, value in form.multi_items():
        if key == "_csrf_token":
            continue
        if isinstance(value, UploadFile):
            files[key] = value
        else:
            values[key] = str(value).strip()
    return values, files


async def read_list(request: Request, key: str) -> list[str]:
    """Every value of a repeated field (checkboxes, multi-selects)."""
    form = await request.form()
    return [str(v) for v in form.getall(key, []) if not isinstance(v, UploadFile)]


def errors_of(error: AppError | None) -> dict[str, str]:
    """Field name -> message, for showing errors next to fields."""
    if error is None:
        return {}
    return {str(k): str(v) for k, v in error.details.items() if isinstance(v, str | int | float)}


def render(request: Request, page: str, fragment: str, context: dict[str, Any], *,
           error: AppError | None = None, status_code: int = 200) -> Template:
    """The fragment for HTMX, the full page otherwise; an error adds its message and field errors."""
    context = {**context, "error": error, "field_errors": errors_of(error)}
    status = error.status_code if error is not None else status_code
    return Template(fragment if is_htmx(request) else page, context=context, status_code=status)


def go_to(request: Request, url: str) -> Response[Any]:
    """After a successful POST: HX-Redirect for HTMX, 303 See Other otherwise."""
    if is_htmx(request):
        return ClientRedirect(url)
    return Redirect(url, status_code=303)


def local_day(value: str | None, zone: Any) -> datetime | None:
    """A page's date filter (YYYY-MM-DD) as the start of that day in ``zone``; None when empty or not a date."""
    try:
        return datetime.combine(date.fromisoformat(value), time(), tzinfo=zone) if value else None
    except ValueError:
        return None
