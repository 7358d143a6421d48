"""What to do with each Meta error code: the class, the retry policy, the sentence agents see,
and whether the error stops the number or concerns the customer.

Compiled from Meta's error code references (see tests/unit/test_error_table.py for the list and
where each code comes from): the Cloud API's error codes, and the Flows, Groups, Calling, block
list, template creation, username, phone migration and in-app signup codes. Logic is keyed on
``code`` only; Meta's ``details`` is shown, never matched, because Meta rewords it.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.whatsapp.error_classes import (
    AccountError,
    AuthError,
    CallingError,
    Concern,
    FlowError,
    GraphError,
    GraphPermissionError,
    GroupError,
    MediaError,
    ParameterError,
    RateLimitError,
    RecipientError,
    RecipientRateLimitError,
    TemplateError,
    TransientError,
    UnknownError,
    WindowClosedError,
)


@dataclass(frozen=True)
class ErrorRule:
    """What to do with one Meta error code."""

    error_class: type[GraphError]
    retryable: bool
    retry_after: float | None
    max_retries: int
    agent_message: str  # may contain {detail}: Meta's message and details
    concerns: Concern | None = None  # None: the class's default (the number, the customer, or the message)
    stops_number: bool = False  # hold the number's sends (queued, not failed) until an admin resumes them
    opts_out_marketing: bool = False  # the customer stopped marketing messages: mark the contact opted out


def _rule(
    error_class: type[GraphError], agent_message: str, retry_after: float | None = None, max_retries: int = 0, *,
    concerns: Concern | None = None, stops_number: bool = False, opts_out_marketing: bool = False,
) -> ErrorRule:
    """A rule; giving a delay makes it retryable."""
    return ErrorRule(error_class, retry_after is not None, retry_after, max_retries, agent_message,
                     concerns, stops_number, opts_out_marketing)


def _wait(error_class: type[GraphError], hint: float, agent_message: str, *, concerns: Concern | None = None
          ) -> ErrorRule:
    """Not retried by itself, but with a hint (seconds) of how long before trying again makes sense."""
    return ErrorRule(error_class, False, hint, 0, agent_message, concerns)


NO_PERMISSION = _rule(
    GraphPermissionError,
    "This WhatsApp account is missing a permission needed for this action; an admin must grant it.",
)
APP_RATE_LIMIT = _rule(
    RateLimitError,
    "Too many requests to WhatsApp for this account right now; sending slows down and resumes by itself.",
    60.0, 8,
)
GROUP_REFUSED = _rule(GroupError, "WhatsApp refused this group action: {detail}")
_TEMPLATE = "This template {}; choose another template."
_HOUR, _DAY = 3600.0, 86400.0

# (codes, rule). Ranges (200-299 permissions, 131200-131215 groups) are in RANGE_RULES.
RULE_TABLE: list[tuple[tuple[int, ...], ErrorRule]] = [
    # -- authorization ----------------------------------------------------------------------------
    ((0, 190), _rule(AuthError, "WhatsApp no longer accepts this account's access token; an admin must "
                                "enter a new one. Messages stay queued until then.")),
    ((3, 10, 131005), NO_PERMISSION),
    # -- throttling -------------------------------------------------------------------------------
    ((4, 80007, 613), APP_RATE_LIMIT),
    ((130429,), _rule(RateLimitError, "This number is sending faster than WhatsApp allows; the message will be "
                                      "retried in a moment.", 1.0, 8)),
    ((131056,), _rule(RecipientRateLimitError, "Too many messages to this customer in a short time; this one "
                                               "will be retried shortly.", 4.0, 5)),
    ((131048,), _rule(RateLimitError, "WhatsApp limited this number because customers flagged messages as spam; "
                                      "sending slows down. Check the number's quality rating.", 600.0, 3)),
    # Retrying within 24 h is pointless: not retryable, but the 24 h are kept as a hint.
    ((131049,), _wait(RateLimitError, _DAY, "WhatsApp held back this marketing message to avoid overwhelming the "
                      "customer; do not resend it within 24 hours.", concerns="contact")),
    ((131064,), _rule(AccountError, "WhatsApp limited this business account because templates were filed under "
                                    "the wrong category; no message can be sent until the limit lifts. Review "
                                    "your templates' categories.")),
    ((133016,), _wait(RateLimitError, 3 * _DAY, "Too many registration attempts for this number; WhatsApp blocks "
                      "registering or deregistering it for 72 hours.")),
    # -- integrity --------------------------------------------------------------------------------
    ((131031, 368), _rule(AccountError, "WhatsApp has locked or restricted this business account for a policy "
                                        "reason; sending from this number is stopped and its messages stay queued "
                                        "until an admin resolves it with Meta and resumes sending.",
                          stops_number=True)),
    ((130497,), _rule(AccountError, "This business may not send this kind of message to customers in the "
                                    "recipient's country.")),
    # -- transient --------------------------------------------------------------------------------
    ((1,), _rule(TransientError, "WhatsApp reported an unknown error; the message will be tried once more.", 2.0, 1)),
    ((2, 131016), _rule(TransientError, "WhatsApp is temporarily unavailable; the message will be retried "
                                        "automatically.", 15.0, 5)),
    ((131057,), _rule(TransientError, "This number is in a WhatsApp throughput upgrade or maintenance; the message "
                                      "will be retried shortly.", 60.0, 5)),
    ((131000,), _rule(TransientError, "WhatsApp hit an unexpected error; the message will be retried a few "
                                      "times.", 5.0, 3)),
    ((131060,), _rule(TransientError, "WhatsApp could not handle this message right now; it will be tried once "
                                      "more.", 5.0, 1)),
    # -- the request ------------------------------------------------------------------------------
    ((100, 131008, 131009, 135000), _rule(ParameterError, "WhatsApp rejected the message's content: {detail}")),
    ((803,), _rule(ParameterError, "WhatsApp does not know an id in this request (for example the phone number "
                                   "id): {detail}", concerns="number")),
    ((131051,), _rule(ParameterError, "WhatsApp does not support this message type.")),
    # -- the business number ----------------------------------------------------------------------
    ((33,), _rule(AccountError, "This business phone number was deleted from its WhatsApp Business Account; "
                                "check the number's id or connect it again.")),
    ((131037,), _rule(AccountError, "This 555 number has no approved display name yet; it can send once Meta "
                                    "approves the name.")),
    ((131042,), _rule(AccountError, "There is a payment problem on the WhatsApp Business account; fix billing "
                                    "before sending again.")),
    ((131044,), _rule(AccountError, "The WhatsApp Business account has no valid payment method for this; an admin "
                                    "must fix billing.")),
    ((131045, 133010), _rule(AccountError, "This phone number is not registered with WhatsApp's Cloud API; an "
                                           "admin must register it.")),
    ((131063,), _rule(AccountError, "Marketing templates are turned off on the Cloud API for this account (they "
                                    "go through Meta's Marketing Messages API); an admin can turn them back on.")),
    # -- the customer -----------------------------------------------------------------------------
    ((131021,), _rule(RecipientError, "The recipient is this business's own number; a number cannot message itself.")),
    ((131026,), _rule(RecipientError, "The message could not be delivered: the customer may not use WhatsApp, may "
                                      "have an old app, or has not accepted WhatsApp's latest terms.")),
    ((130403,), _rule(RecipientError, "This customer is on this business's WhatsApp block list; unblock them "
                                      "before writing to them.")),
    ((131030,), _rule(RecipientError, "This customer's number is not among the test number's allowed recipients; "
                                      "add it in the Meta app's WhatsApp settings.")),
    ((131047,), _rule(WindowClosedError, "More than 24 hours have passed since the customer last wrote; send a "
                                         "template instead.")),
    ((131050,), _rule(RecipientError, "The customer has stopped marketing messages from this business; do not "
                                      "send them marketing templates.", opts_out_marketing=True)),
    ((131062,), _rule(RecipientError, "This message cannot be sent to this customer's WhatsApp user id: they use a "
                                      "username instead of a phone number, and WhatsApp does not yet let this "
                                      "number send this type of message to username-only customers.")),
    ((137000,), _rule(RecipientError, "WhatsApp did not deliver this message because the customer's identity "
                                      "changed (WhatsApp reinstalled, or a new phone); make sure it is still the "
                                      "same person, then send it again.")),
    # The experiment concerns the customer's number, so it is a recipient matter.
    ((130472,), _rule(RecipientError, "The customer's number is part of a WhatsApp marketing experiment, so this "
                                      "marketing message was not delivered.")),
    # -- media ------------------------------------------------------------------------------------
    ((131052,), _rule(MediaError, "The customer's media could not be downloaded; ask them to send it again.")),
    ((131053,), _rule(MediaError, "The media could not be uploaded to WhatsApp; check its file type and size.")),
    # -- templates (sending) ----------------------------------------------------------------------
    ((132000,), _rule(TemplateError, "The number of template values does not match the template's "
                                     "placeholders: {detail}")),
    ((132008,), _rule(TemplateError, "A template value is not valid for its placeholder: {detail}")),
    ((132012,), _rule(TemplateError, "A template value has the wrong format: {detail}")),
    ((132001,), _rule(TemplateError, "This template does not exist or is not approved in this language.")),
    ((132005,), _rule(TemplateError, _TEMPLATE.format("is too long once its values are filled in"))),
    ((132007,), _rule(TemplateError, _TEMPLATE.format("breaks WhatsApp's content policy"))),
    ((132015,), _rule(TemplateError, _TEMPLATE.format("is paused because of low quality"))),
    ((132016,), _rule(TemplateError, _TEMPLATE.format("is disabled because of low quality"))),
    ((131058,), _rule(TemplateError, "The hello_world template can only be sent from Meta's public test numbers; "
                                     "choose another template.")),
    # -- templates (creating) ---------------------------------------------------------------------
    ((2388040,), _rule(TemplateError, "A field of the template is longer than WhatsApp allows: {detail}")),
    ((2388047,), _rule(TemplateError, "The template's header or body is not formatted as WhatsApp requires: "
                                      "{detail}")),
    ((2388073,), _rule(TemplateError, "The template's footer is not formatted as WhatsApp requires: {detail}")),
    ((2388293,), _rule(TemplateError, "The template has too many variables for its length; use fewer variables "
                                      "or more text.")),
    ((2388299,), _rule(TemplateError, "A template may not start or end with a variable.")),
    ((2388019,), _rule(TemplateError, "This WhatsApp Business Account has as many templates as WhatsApp allows; "
                                      "delete some first.", concerns="number")),
    # -- flows ------------------------------------------------------------------------------------
    ((132068,), _rule(FlowError, "This Flow is blocked by WhatsApp (its endpoint kept failing), so it cannot be "
                                 "sent; fix the Flow's endpoint.")),
    # Throttled: 10 sends an hour while its endpoint is unhealthy. Only this message waits.
    ((132069,), _rule(FlowError, "This Flow is throttled by WhatsApp (at most 10 sends an hour while its endpoint "
                                 "is unhealthy); the message will be retried later.", 60.0, 5)),
    ((139000,), _rule(FlowError, "WhatsApp blocked creating or publishing Flows on this account because of an "
                                 "integrity issue.", concerns="number")),
    ((139001,), _rule(FlowError, "The Flow could not be updated (already published, or its Flow JSON has "
                                 "errors): {detail}")),
    ((139002,), _rule(FlowError, "The Flow could not be published: {detail}")),
    ((139003,), _rule(FlowError, "The Flow could not be deprecated: it is not published, or already deprecated.")),
    ((139004,), _rule(FlowError, "A published Flow cannot be deleted; deprecate it instead.")),
    # -- registration -----------------------------------------------------------------------------
    ((133000,), _rule(AccountError, "A previous deregistration of this number did not finish; deregister it "
                                    "again before registering it.")),
    ((133004,), _rule(TransientError, "WhatsApp's registration service is temporarily unavailable; try again in "
                                      "a few minutes.", 60.0, 3, concerns="number")),
    ((133005,), _rule(AccountError, "The two-step verification PIN is wrong; enter the right PIN or reset it in "
                                    "WhatsApp Manager.")),
    ((133006,), _rule(AccountError, "The phone number must be verified with a code before it can be registered.")),
    ((133008,), _wait(AccountError, _HOUR, "Too many wrong PIN attempts for this number; wait before trying again "
                      "(Meta's details say how long).")),
    ((133009,), _wait(AccountError, 10.0, "PIN attempts came too fast; wait a few seconds before trying again.")),
    ((133015,), _wait(AccountError, 300.0, "This number was deleted recently; wait 5 minutes before registering it "
                      "again.")),
    ((136024,), _rule(AccountError, "This phone number is already verified; go on with registering it.")),
    ((136025,), _rule(AccountError, "The verification code is wrong or has expired; request a new code.")),
    # -- groups -----------------------------------------------------------------------------------
    ((131020,), _rule(GroupError, "Messages cannot be sent to a group whose only member is this business.")),
    ((131041,), _rule(GroupError, "This group was not found: it does not exist, or this number is not a member "
                                  "of it.")),
    ((131059,), _rule(GroupError, "The group list's page cursor has expired; load the list again from the start.")),
    ((131201,), _rule(GroupError, "Some of the changes to the group's participants did not succeed: {detail}")),
    ((131202,), _rule(GroupError, "The same participant appears more than once in this group request.")),
    ((131204,), _rule(GroupError, "The group would have more participants than WhatsApp allows.")),
    ((131207,), _rule(GroupError, "This group has been suspended for breaking WhatsApp's policies.")),
    ((131208,), _rule(GroupError, "Too many group actions from this number in a short time; it will be tried "
                                  "again shortly.", 60.0, 5, concerns="number")),
    ((131209,), _rule(GroupError, "A group picture must be square (the same width and height).")),
    ((131210,), _rule(GroupError, "A group picture must be larger than 192 by 192 pixels.")),
    ((131211,), _rule(GroupError, "This number has created as many groups as WhatsApp allows.", concerns="number")),
    ((131212,), _rule(GroupError, "This person is not a participant of the group.", concerns="contact")),
    ((131213,), _rule(GroupError, "This request to join the group no longer exists.")),
    ((131214,), _rule(GroupError, "Creating groups is disabled for a while: this business sent too many marketing "
                                  "messages inside customer service windows in the past 7 days.", concerns="number")),
    ((131215,), _rule(GroupError, "WhatsApp groups are not available for this number (it is not eligible for the "
                                  "Groups API).", concerns="number")),
    # -- calling ----------------------------------------------------------------------------------
    ((138000,), _rule(CallingError, "Calling is not turned on for this number; turn it on in the number's call "
                                    "settings.", concerns="number")),
    ((138001,), _rule(CallingError, "This customer cannot receive WhatsApp calls (not on WhatsApp, terms not "
                                    "accepted, or an app that cannot take calls).", concerns="contact")),
    ((138002,), _rule(CallingError, "This number has as many calls in progress as WhatsApp allows; it will be "
                                    "tried again shortly.", 5.0, 3, concerns="number")),
    ((138003,), _rule(CallingError, "A call with this customer is already in progress; try again when it ends.",
                      concerns="contact")),
    ((138004,), _rule(CallingError, "The call could not be connected: {detail}")),
    ((138005,), _rule(CallingError, "This number started too many calls; it will be tried again later.", 60.0, 3,
                      concerns="number")),
    ((138006,), _rule(CallingError, "The customer has not allowed this business to call them; ask for call "
                                    "permission first.", concerns="contact")),
    ((138007,), _rule(CallingError, "The call timed out before it was connected.")),
    ((138009,), _rule(CallingError, "Too many call permission requests to this customer; a connected call resets "
                                    "the limit.", concerns="contact")),
    ((138012,), _rule(CallingError, "This business has made as many calls to this customer in 24 hours as "
                                    "WhatsApp allows: {detail}", concerns="contact")),
    ((138013,), _rule(CallingError, "Too many call permission checks; they will be tried again later.", 60.0, 3,
                      concerns="number")),
    ((138018,), _rule(CallingError, "Calling cannot be turned on for this number: set up SIP, or subscribe an app "
                                    "to the calls webhook first.", concerns="number")),
    # -- block list -------------------------------------------------------------------------------
    ((139100,), _rule(RecipientError, "Some customers could not be blocked or unblocked: {detail}")),
    ((139101,), _rule(AccountError, "The block list is full (64,000 customers); unblock some first.")),
    ((139102,), _rule(TransientError, "The block list changed while it was being read; it will be read again.",
                      1.0, 3)),
    ((139103,), _rule(TransientError, "WhatsApp had an internal error with the block list; it will be tried "
                                      "again.", 5.0, 3)),
    # -- business username ------------------------------------------------------------------------
    ((147001,), _rule(AccountError, "This username is taken or not allowed; try another.")),
    ((147002,), _rule(AccountError, "This business needs a higher messaging limit before it can request a "
                                    "username.")),
    ((147003,), _rule(AccountError, "Link the phone number to the Facebook Page that already uses this username "
                                    "first.")),
    ((147004,), _rule(AccountError, "Link the phone number to the Instagram account that already uses this "
                                    "username first.")),
    ((147005,), _rule(AccountError, "Another number of this business portfolio uses this username; transfer it "
                                    "to use it here.")),
    # -- phone number migration -------------------------------------------------------------------
    ((2388012,), _rule(AccountError, "This phone number is already in the account's list of numbers.")),
    ((2388091, 2388093), _rule(AccountError, "This phone number is not being migrated, so it cannot receive or "
                                             "verify a registration code; register and verify it instead.")),
    ((2388103,), _rule(AccountError, "This phone number cannot be migrated: {detail}")),
    ((2494100,), _rule(TransientError, "This phone number is in maintenance mode; it will be tried again in a few "
                                       "minutes.", 60.0, 3, concerns="number")),
    # -- in-app signup ----------------------------------------------------------------------------
    ((2494164,), _rule(ParameterError, "This signup does not exist.")),
    ((2494165,), _rule(AccountError, "In-app signup is not turned on for this WhatsApp Business Account.")),
    ((2494166,), _rule(ParameterError, "The signup confirmation message uses an unknown placeholder.")),
    ((2494167,), _rule(ParameterError, "The signup confirmation message uses the promo_code placeholder, but no "
                                       "promo code was given.")),
    ((2494168,), _rule(ParameterError, "The signup Terms of Service were not accepted.")),
    ((2494176,), _rule(ParameterError, "The Terms of Service are already accepted; leave the policy out of later "
                                       "requests.")),
    ((2494177,), _rule(ParameterError, "This Terms of Service URL is not an approved one; use the URL shown in the "
                                       "Terms of Service section.")),
    ((2494179,), _rule(ParameterError, "The website URL must start with https://.")),
]
ERROR_RULES: dict[int, ErrorRule] = {code: rule for codes, rule in RULE_TABLE for code in codes}

RANGE_RULES: list[tuple[range, ErrorRule]] = [
    (range(200, 300), NO_PERMISSION),         # 200-299: API permission
    (range(131200, 131216), GROUP_REFUSED),   # Groups API codes not listed one by one above
]

SERVER_ERROR = _rule(TransientError, "WhatsApp had a server problem ({detail}); we will retry automatically.", 5.0, 5)
HTTP_STATUS_RULES: dict[int, ErrorRule] = {
    401: ERROR_RULES[190],
    403: NO_PERMISSION,
    429: APP_RATE_LIMIT,
}
UNKNOWN = ErrorRule(UnknownError, False, None, 0, GraphError.default_agent_message)
