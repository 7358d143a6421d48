"""A customer's answer to a workflow's question, checked against the type the question asked for."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

YES = {"yes", "y", "si", "sí", "oui", "ja", "sim", "1", "true", "ok", "👍"}
NO = {"no", "n", "non", "nein", "não", "nao", "0", "false", "👎"}
_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y", "%d/%m/%y")


def check_answer(text: str, answer_type: str, choices: list[str] | None = None) -> tuple[Any, str | None]:
    """(the value, None) or (None, why it is refused, in words for the customer)."""
    answer = " ".join(str(text or "").split())
    if not answer:
        return None, "the answer is empty"
    if answer_type == "number":
        try:
            number = float(answer.replace(",", ".").replace(" ", ""))
        except ValueError:
            return None, "please answer with a number"
        return (int(number) if number.is_integer() else number), None
    if answer_type == "yes_no":
        word = answer.casefold().strip(" .!")
        if word in YES:
            return True, None
        if word in NO:
            return False, None
        return None, "please answer yes or no"
    if answer_type == "date":
        for form in _DATE_FORMATS:
            try:
                return datetime.strptime(answer, form).replace(tzinfo=UTC), None
            except ValueError:
                continue
        return None, "please answer with a date like 2026-03-31"
    if answer_type == "choice":
        options = [c for c in (choices or []) if c]
        for i, option in enumerate(options, 1):
            if answer.casefold() == option.casefold() or answer == str(i):
                return option, None
        return None, "please pick one of: " + ", ".join(options)
    return answer, None
