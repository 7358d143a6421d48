"""OpenAPI shapes of the templates API answers (``TemplateService.view``, ``SyncReport.to_dict``);
the handlers keep returning those dicts (see app/api_shapes.py). Also the create body's two shapes
(``TEMPLATE_CREATE_BODY``): the handler reads that body itself (create_request.py), so it is described here."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.api_shapes import ApiShape, page_of
from app.domains.templates.create_request import TemplateIn


class TemplateShape(ApiShape):
    id: str
    waba_id: str | None = None
    meta_id: str | None = Field(None, description="Meta's id of the template")
    name: str = Field(examples=["order_update"])
    language: str = Field(examples=["en_US"])
    category: str = Field(examples=["UTILITY"])
    status: str = Field(description="PENDING, APPROVED, REJECTED, PAUSED, DISABLED ...", examples=["APPROVED"])
    parameter_format: str | None = Field(None, examples=["POSITIONAL"])
    components: list[dict[str, Any]] = Field(default_factory=list, description="Meta's components")
    rejected_reason: str | None = None
    rejection_detail: str | None = None
    quality_score: str | None = None
    previous_category: str | None = None
    synced_at: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


class TemplateSyncReport(ApiShape):
    created: int
    updated: int
    removed: int
    wabas: list[str] = Field(description="The WABAs read")
    errors: list[dict[str, Any]] = Field(description="Per WABA that failed: Meta's error in words")


TemplatePage = page_of(TemplateShape, "TemplatePage")


# -- the create body: our shape or Meta's (documentation only; create_request.py reads both) ----------


class _NamedExample(BaseModel):
    model_config = ConfigDict(extra="forbid")
    param_name: str = Field(examples=["first_name"])
    example: str = Field(examples=["Ann"])


class _HeaderExample(BaseModel):
    model_config = ConfigDict(extra="forbid")
    header_text: list[str] | None = Field(None, max_length=1, description="Positional: the {{1}}'s example")
    header_text_named_params: list[_NamedExample] | None = Field(None, max_length=1)
    header_handle: list[str] | None = Field(None, max_length=1, description="IMAGE / VIDEO / DOCUMENT: an upload handle")


class _BodyExample(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body_text: list[list[str]] | None = Field(None, max_length=1, description="One list: an example per {{n}}, in order")
    body_text_named_params: list[_NamedExample] | None = None


class MetaHeader(BaseModel):
    model_config = ConfigDict(extra="forbid", title="HEADER component")
    type: Literal["HEADER", "header"]
    format: str = Field(description="TEXT, IMAGE, VIDEO, DOCUMENT or LOCATION (any case)", examples=["TEXT"])
    text: str | None = Field(None, description="TEXT: at most 60 characters, at most one placeholder")
    example: _HeaderExample | None = None


class MetaBody(BaseModel):
    model_config = ConfigDict(extra="forbid", title="BODY component")
    type: Literal["BODY", "body"]
    text: str | None = Field(None, description="Required (but for AUTHENTICATION): at most 1024 characters; a "
                                               "placeholder may not start or end it, nor touch another")
    example: _BodyExample | None = Field(None, description="Required when the text has placeholders")
    add_security_recommendation: bool | None = Field(None, description="AUTHENTICATION only")


class MetaFooter(BaseModel):
    model_config = ConfigDict(extra="forbid", title="FOOTER component")
    type: Literal["FOOTER", "footer"]
    text: str | None = Field(None, description="At most 60 characters, no placeholders")
    code_expiration_minutes: int | None = Field(None, ge=1, le=90, description="AUTHENTICATION only")


class MetaButton(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str = Field(description="QUICK_REPLY (≤ 10), URL (≤ 2), PHONE_NUMBER (≤ 1), COPY_CODE (≤ 1, marketing) "
                                  "or OTP (AUTHENTICATION); any case", examples=["QUICK_REPLY"])
    text: str | None = Field(None, description="The label, at most 25 characters (none for COPY_CODE)")
    url: str | None = Field(None, description="URL: may end in one {{1}}")
    phone_number: str | None = Field(None, description="PHONE_NUMBER: with country code", examples=["+15550100"])
    example: list[str] | str | None = Field(
        None, description="URL ending in {{1}}: [the link filled in] (or [the value of {{1}}]); COPY_CODE: a sample code")
    otp_type: str | None = Field(None, description="OTP: COPY_CODE")


class MetaButtons(BaseModel):
    model_config = ConfigDict(extra="forbid", title="BUTTONS component")
    type: Literal["BUTTONS", "buttons"]
    buttons: list[MetaButton] = Field(max_length=10, description="Quick replies kept together, before or after the others")


_COMMON = {
    "template_name": {"type": "string", "description": "Another name for name (the original integration spec's)"},
    "language_code": {"type": "string", "description": "Another name for language (the original integration spec's)"},
}
_META_EXAMPLE = {
    "account_id": "665f1c2e8b1d4a0012345678", "name": "seasonal_promotion_text_only", "language": "en",
    "category": "MARKETING",
    "components": [
        {"type": "HEADER", "format": "TEXT", "text": "Our {{1}} is on!", "example": {"header_text": ["Summer Sale"]}},
        {"type": "BODY", "text": "Shop now through {{1}} and use code {{2}} to get {{3}} off of all merchandise.",
         "example": {"body_text": [["the end of August", "25OFF", "25%"]]}},
        {"type": "FOOTER", "text": "Use the buttons below to manage your marketing subscriptions"},
        {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Unsubscribe from Promos"},
                                        {"type": "QUICK_REPLY", "text": "Unsubscribe from All"}]},
    ],
}
_OUR_EXAMPLE = {
    "account_id": "665f1c2e8b1d4a0012345678", "name": "order_update", "language": "en_US", "category": "UTILITY",
    "header": {"format": "TEXT", "text": "Order {{1}}", "example": "#1042"},
    "body": "Hi {{1}}, your order {{2}} has shipped.", "body_examples": ["Ana", "#1042"], "footer": "Lucky Shrub",
    "buttons": [{"type": "URL", "text": "Track", "url": "https://shop.example/track/{{1}}", "example": "1042"}],
}


def _inlined(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema with its ``$defs`` written in place (the OpenAPI document has no ``$defs``)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk({**defs[ref.rsplit("/", 1)[-1]], **{k: v for k, v in node.items() if k != "$ref"}})
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(value) for value in node]
        return node

    return walk(schema)


class MetaTemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account_id: str = Field("", description="A number of the WABA the template is created in")
    name: str = Field("", examples=["seasonal_promotion"])
    language: str = Field("", examples=["en_US"])
    category: str = Field("", description="MARKETING, UTILITY or AUTHENTICATION (any case)")
    parameter_format: str | None = Field(None, description="POSITIONAL ({{1}}) or NAMED ({{first_name}})")
    components: list[MetaHeader | MetaBody | MetaFooter | MetaButtons] = Field(
        description="At most one of each type; BODY is required (but for AUTHENTICATION)")


def _create_body_schemas() -> list[dict[str, Any]]:
    ours = _inlined(TemplateIn)
    ours.update(title="Our shape", examples=[_OUR_EXAMPLE],
                description="header / body / body_examples / footer / buttons, as the admin form fills them.")
    ours["properties"].update(_COMMON)
    metas = _inlined(MetaTemplateIn)
    metas.update(title="Meta's shape", examples=[_META_EXAMPLE],
                 description="Meta's own create body (POST /{waba_id}/message_templates), plus account_id.")
    metas["properties"].update(_COMMON)
    return [ours, metas]


TEMPLATE_CREATE_BODY: dict[str, Any] = {
    "one_of": _create_body_schemas(),
    "description": ("A template in our shape or in Meta's (with components). Both are checked by the same "
                    "rules; errors are 422 TEMPLATE_INVALID with details naming the field as sent, e.g. "
                    "components[0].example.body_text or components[3].buttons[1].text."),
}
