"""The outbox sweeper (app/domains/outbox/sweeper.py) against our Redis and the test session's database server."""

from __future__ import annotations

from datetime import timedelta

import pytest
from beanie import PydanticObjectId
from redis.asyncio import Redis

from app.db import Database, utcnow
from app.domains.messages.models import Message, MessageStatus
from app.domains.outbox.lanes import OutboxQueue
from app.domains.outbox.sweeper import sweep_outbox


@pytest.fixture
async def queue(redis_server, mongodb):
    database = Database(*mongodb)
    await database.connect()
    redis = Redis.from_url(redis_server.url)
    yield OutboxQueue(redis)
    await redis.aclose()
    database.close()


async def readied(queue: OutboxQueue) -> list[str]:
    found = []
    while (account := await queue.next_ready(0.05)) is not None:
        found.append(account)
    return found


async def queued(account: PydanticObjectId, *, age: timedelta = timedelta(minutes=5), priority: str = "agent",
                 status: MessageStatus = MessageStatus.QUEUED) -> Message:
    at = utcnow() - age
    message = Message(workspace_id=PydanticObjectId(), conversation_id=PydanticObjectId(), account_id=account,
                      contact_id=PydanticObjectId(), direction="outbound", type="text", content={"body": "x"},
                      status=status, priority=priority, recipient="+15550001111", created_at=at, updated_at=at)
    await message.insert()
    return message


async def lane_ids(queue: OutboxQueue, account: PydanticObjectId) -> list[str]:
    keys = queue.keys(str(account))
    raw = [*await queue.redis.lrange(keys["qa"], 0, -1), *await queue.redis.lrange(keys["qb"], 0, -1)]
    return [r.decode().split("|")[0] for r in raw]


async def test_stale_messages_of_numbers_without_entries_are_queued_again(queue):
    await queue.mark_epoch()  # Redis kept its data: no rebuild
    lost, busy, fresh = PydanticObjectId(), PydanticObjectId(), PydanticObjectId()
    first, second = await queued(lost), await queued(lost, priority="bulk")
    held = await queued(busy)
    await queue.push(str(busy), str(held.id), str(held.conversation_id), "a")  # as the outbox does
    await queued(fresh, age=timedelta(seconds=1))  # just stored: the API's own push is on its way

    report = await sweep_outbox(queue)
    assert report.requeued == 2 and report.rebuilt == 0
    assert await lane_ids(queue, lost) == [str(first.id), str(second.id)]
    assert await lane_ids(queue, busy) == [str(held.id)]  # not pushed twice
    assert await lane_ids(queue, fresh) == []
    assert sorted(await readied(queue)) == sorted([str(busy), str(lost)])  # each number readied once


async def test_an_empty_redis_is_rebuilt_from_mongo_in_queued_order(queue):
    account = PydanticObjectId()
    messages = [await queued(account, age=timedelta(0)) for _ in range(3)]
    await queued(account, status=MessageStatus.ACCEPTED)
    report = await sweep_outbox(queue)
    assert report.rebuilt == 3
    assert await lane_ids(queue, account) == [str(m.id) for m in messages]
    assert (await sweep_outbox(queue)).rebuilt == 0  # once per empty start
