"""A failure WhatsApp reports in a status webhook (not in the send's answer) has the same
consequences beyond its message: 131050 opts the customer out of marketing, 368 / 131031 stop the
number's sends until an admin resumes them."""

from __future__ import annotations

import time

import pytest

from app.domains.accounts.models import WhatsAppAccount
from app.domains.contacts.models import Contact
from app.domains.messages.models import Message, MessageStatus
from tests.support.inbound import deliver, envelope, make_setup, new_wamid, outbound, status

NOW = int(time.time())


@pytest.fixture
async def env(client_factory):
    client = await client_factory()
    runtime = client.app.state.runtime
    return runtime, await make_setup(runtime)


async def test_131050_in_a_failed_status_opts_the_customer_out(env):
    runtime, setup = env
    wamid = new_wamid()
    await outbound(setup, wamid)
    error = {"code": 131050, "title": "Unable to deliver the message. This recipient has chosen to stop "
                                       "receiving marketing messages on WhatsApp from your business."}
    await deliver(runtime, setup, envelope(statuses=[status(wamid, "failed", NOW, errors=[error])]))
    assert (await Message.find_one({})).status is MessageStatus.FAILED
    assert (await Contact.find_one({})).opted_out_marketing is True


@pytest.mark.parametrize("code", [368, 131031])
async def test_a_restriction_in_a_failed_status_stops_the_number(env, code):
    runtime, setup = env
    wamid = new_wamid()
    await outbound(setup, wamid)
    await deliver(runtime, setup, envelope(statuses=[status(wamid, "failed", NOW, errors=[
        {"code": code, "title": "Temporarily blocked for policies violations"}])]))
    stopped = (await WhatsAppAccount.get(setup.account.id)).health.sending_stopped
    assert stopped is not None and stopped.code == code
    assert (await Contact.find_one({})).opted_out_marketing is False


async def test_other_failures_stop_nothing(env):
    runtime, setup = env
    wamid = new_wamid()
    await outbound(setup, wamid)
    await deliver(runtime, setup, envelope(statuses=[status(wamid, "failed", NOW, errors=[{"code": 131026}])]))
    assert (await WhatsAppAccount.get(setup.account.id)).health.sending_stopped is None
    assert (await Contact.find_one({})).opted_out_marketing is False
