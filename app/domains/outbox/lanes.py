"""The outbox's Redis side: per-number lanes, the drainer's lease, and crash-safe hand-over.

Mongo holds every queued Message (the truth); Redis holds the order in which each number sends
them. Per number (account id):

- ``q:a`` / ``q:b`` lists: agent replies and bulk sends, oldest first. Entries are
  ``"<message id>|<conversation id>|<push number>|<lane>"`` so the drainer needs no query to keep
  order. The push number makes every entry unique: a message pushed twice (the API and a sweep
  at once) is two entries, so finishing the spare copy can never drop the live one from ``taken``.
- ``taken`` sorted set: entries a drainer popped and has not finished, scored by pop order.
  If that drainer dies, the next one puts them back at the front, in order.
- ``lease``: at most one drainer per number. A push that finds no lease sets ``wake`` and
  puts the number on the shared ``ready`` list (one list for all numbers), where one worker's
  dispatcher (dispatcher.py) takes it; its drainer replaces ``wake`` with its own token and
  deletes the lease only in the same script that saw both lanes empty, so no push is ever left
  without a drainer.
- ``bell`` list: rung (one element at most) by a push while a drainer holds the lease. The
  drainer waits on it and pops in the same round trip (``wait_and_pop``), so a drainer that has
  emptied its lanes asks Redis nothing until something is pushed (or once a second).
- ``bulkconv`` hash: bulk messages still queued per conversation. An agent reply to a
  conversation with bulk messages ahead joins the bulk lane, so one conversation keeps its order.
- ``meta`` hash: attempts / first attempt / next attempt of messages being retried.
- ``body`` hash: what a send needs of a message (items.Outgoing), written by the push that stored
  it, read and removed by the pop that takes it: a drainer sends without reading the message
  again. Entries put back (a hand-over, a dead drainer's, a sweep) have none and are read from
  Mongo, where a message that was sent meanwhile shows as no longer queued.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from app.redis_scripts import Call

PREFIX = "inbox:ob"
ACCOUNTS_KEY = f"{PREFIX}:accounts"
READY_KEY = f"{PREFIX}:ready"
"""Numbers woken with no drainer yet, oldest first: every worker's dispatcher waits on it."""
EPOCH_KEY = f"{PREFIX}:epoch"
LEASE_TTL_MS = 30_000

# KEYS: qa, qb, lease, accounts, bulkconv, seq, body, bell, ready ; ARGV: message, conversation, lane, account,
# ttl, front|back, body ('' for none)
_PUSH = """
if ARGV[7] ~= '' then redis.call('HSET', KEYS[7], ARGV[1], ARGV[7]) end
local lane = ARGV[3]
if lane == 'a' and tonumber(redis.call('HGET', KEYS[5], ARGV[2]) or '0') > 0 then lane = 'b' end
if lane == 'b' then redis.call('HINCRBY', KEYS[5], ARGV[2], 1) end
local entry = ARGV[1] .. '|' .. ARGV[2] .. '|' .. redis.call('INCR', KEYS[6]) .. '|' .. lane
if ARGV[6] == 'front' then
  redis.call('LPUSH', lane == 'a' and KEYS[1] or KEYS[2], entry)
else
  redis.call('RPUSH', lane == 'a' and KEYS[1] or KEYS[2], entry)
end
redis.call('SADD', KEYS[4], ARGV[4])
if redis.call('SET', KEYS[3], 'wake', 'NX', 'PX', ARGV[5]) then
  redis.call('RPUSH', KEYS[9], ARGV[4])
  return 1
end
if redis.call('GET', KEYS[3]) ~= 'wake' then
  redis.call('LPUSH', KEYS[8], '1')
  redis.call('LTRIM', KEYS[8], 0, 0)
  redis.call('PEXPIRE', KEYS[8], ARGV[5])
end
return 0
"""

# KEYS: lease, bell, ready ; ARGV: ttl, account
_WAKE = """
if redis.call('SET', KEYS[1], 'wake', 'NX', 'PX', ARGV[1]) then
  redis.call('RPUSH', KEYS[3], ARGV[2])
  return 1
end
if redis.call('GET', KEYS[1]) ~= 'wake' then
  redis.call('LPUSH', KEYS[2], '1')
  redis.call('LTRIM', KEYS[2], 0, 0)
  redis.call('PEXPIRE', KEYS[2], ARGV[1])
end
return 0
"""

# A Lua function shared by _POP and _CLAIM: take up to ``agent`` / ``bulk`` entries, oldest first,
# into ``taken``; returns entry, body, retry state (false when none), entry, body, retry state ...
_POP_FUNCTION = """
local function pop(qa, qb, taken, seq, bodies, meta, agent, bulk)
  local out = {}
  local limits = {agent, bulk}
  for i, q in ipairs({qa, qb}) do
    if limits[i] > 0 then
      local items = redis.call('LRANGE', q, 0, limits[i] - 1)
      if #items > 0 then
        redis.call('LTRIM', q, #items, -1)
        for _, e in ipairs(items) do out[#out + 1] = e end
      end
    end
  end
  if #out > 0 then
    local last = redis.call('INCRBY', seq, #out)
    local args = {}
    for i, e in ipairs(out) do
      args[#args + 1] = last - #out + i
      args[#args + 1] = e
    end
    redis.call('ZADD', taken, unpack(args))
  end
  local triples = {}
  for _, e in ipairs(out) do
    local msg = string.match(e, '^([^|]+)|')
    local body = redis.call('HGET', bodies, msg)
    if body then redis.call('HDEL', bodies, msg) end
    triples[#triples + 1] = e
    triples[#triples + 1] = body
    triples[#triples + 1] = redis.call('HGET', meta, msg)
  end
  return triples
end
"""

# KEYS: qa, qb, taken, seq, body, meta, lease ; ARGV: max from agent lane, max from bulk lane, token
# Returns {-1} when the lease is not the caller's (it expired, or Redis lost its data): a drainer
# that lost its number never takes entries a new drainer (or a rebuild) put in its lanes.
_POP = _POP_FUNCTION + """
if redis.call('GET', KEYS[7]) ~= ARGV[3] then return {-1} end
return pop(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], tonumber(ARGV[1]), tonumber(ARGV[2]))
"""

# KEYS: lease, taken, qa, qb, seq, body, meta ; ARGV: token, ttl, max from agent lane, max from bulk lane
# Returns {-1} (another drainer holds the lease), or the number of entries put back followed by the
# first pop (as _POP's), so a drainer's first round trip both claims the number and takes its work.
_CLAIM = _POP_FUNCTION + """
local current = redis.call('GET', KEYS[1])
if current and current ~= 'wake' and current ~= ARGV[1] then return {-1} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local left = redis.call('ZRANGE', KEYS[2], 0, -1)
for i = #left, 1, -1 do
  local e = left[i]
  redis.call('LPUSH', string.sub(e, -1) == 'a' and KEYS[3] or KEYS[4], e)
end
redis.call('DEL', KEYS[2])
local out = pop(KEYS[3], KEYS[4], KEYS[2], KEYS[5], KEYS[6], KEYS[7], tonumber(ARGV[3]), tonumber(ARGV[4]))
table.insert(out, 1, #left)
return out
"""

_REFRESH = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

# KEYS: lease, qa, qb, taken, bell ; ARGV: token
_RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if redis.call('LLEN', KEYS[2]) + redis.call('LLEN', KEYS[3]) > 0 then return 0 end
redis.call('DEL', KEYS[1], KEYS[4], KEYS[5])
return 1
"""

# KEYS: lease, qa, qb, taken, ready ; ARGV: token, then ('0' release, '1' keep the number woken and ready it,
# '2' keep it woken: the caller readies it later), ttl, account, entries...
_HAND_BACK = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
for i = #ARGV, 5, -1 do
  local e = ARGV[i]
  redis.call('LPUSH', string.sub(e, -1) == 'a' and KEYS[2] or KEYS[3], e)
  redis.call('ZREM', KEYS[4], e)
end
if ARGV[2] ~= '0' then
  redis.call('SET', KEYS[1], 'wake', 'PX', ARGV[3])
  if ARGV[2] == '1' then redis.call('RPUSH', KEYS[5], ARGV[4]) end
else
  redis.call('DEL', KEYS[1])
end
return 1
"""

# KEYS: taken, bulkconv, meta ; ARGV: '1' to forget the messages' retry state ('0' for spare copies), entries...
# (Entries of the older "<message>|<conversation>|<lane>" form are understood too.)
_DONE = """
for i = 2, #ARGV do
  local e = ARGV[i]
  redis.call('ZREM', KEYS[1], e)
  local msg, conv = string.match(e, '^([^|]+)|([^|]+)|')
  if string.sub(e, -1) == 'b' and conv then
    if redis.call('HINCRBY', KEYS[2], conv, -1) <= 0 then redis.call('HDEL', KEYS[2], conv) end
  end
  if msg and ARGV[1] == '1' then redis.call('HDEL', KEYS[3], msg) end
end
return #ARGV - 1
"""

# KEYS: qa, qb, taken, lease, accounts ; ARGV: account
_FORGET_IF_IDLE = """
if redis.call('EXISTS', KEYS[4]) == 1 then return 0 end
if redis.call('LLEN', KEYS[1]) + redis.call('LLEN', KEYS[2]) + redis.call('ZCARD', KEYS[3]) > 0 then return 0 end
redis.call('SREM', KEYS[5], ARGV[1])
return 1
"""


@dataclass(frozen=True)
class RetryState:
    """What a drainer must remember about a message between attempts (kept across hand-overs)."""

    attempts: int
    first_at: float
    due_at: float

    def encode(self) -> str:
        return f"{self.attempts}:{self.first_at:.3f}:{self.due_at:.3f}"

    @classmethod
    def decode(cls, raw: bytes | str | None) -> RetryState | None:
        if not raw:
            return None
        attempts, first, due = (raw.decode() if isinstance(raw, bytes) else raw).split(":")
        return cls(int(attempts), float(first), float(due))


@dataclass(frozen=True)
class Entry:
    """One queued message as the lanes hold it."""

    raw: str
    message_id: str
    conversation_id: str
    lane: str  # "a" agent, "b" bulk
    body: bytes | None = field(default=None, compare=False, repr=False)
    """What the push stored for a send (items.Outgoing.encode), on the pop that took the entry first."""
    retry: RetryState | None = field(default=None, compare=False, repr=False)
    """The message's retry state when it is being retried (read by the same pop)."""

    @classmethod
    def parse(cls, raw: bytes | str, body: bytes | None = None, retry: bytes | None = None) -> Entry:
        text = raw.decode() if isinstance(raw, bytes) else raw
        parts = text.split("|")
        return cls(text, parts[0], parts[1], parts[-1], body or None, RetryState.decode(retry))


def _entries(raw: list[Any]) -> list[Entry]:
    return [Entry.parse(raw[i], raw[i + 1], raw[i + 2]) for i in range(0, len(raw), 3)]


def _popped(raw: list[Any]) -> list[Entry] | None:
    """A pop's answer: its entries, or None for {-1} (the lease is not the caller's)."""
    if len(raw) == 1 and not isinstance(raw[0], bytes | str):
        return None
    return _entries(raw)


class OutboxQueue:
    """Typed wrappers over the scripts above."""

    def __init__(self, redis: Redis) -> None:
        # redis-py types its async client's answers as "Awaitable[T] | T" (shared with the sync client);
        # Any here rather than a cast at every call.
        self.redis: Any = redis
        self._push = redis.register_script(_PUSH)
        self._wake = redis.register_script(_WAKE)
        self._pop = redis.register_script(_POP)
        self._claim = redis.register_script(_CLAIM)
        self._refresh = redis.register_script(_REFRESH)
        self._release = redis.register_script(_RELEASE)
        self._hand_back = redis.register_script(_HAND_BACK)
        self._done = redis.register_script(_DONE)
        self._forget = redis.register_script(_FORGET_IF_IDLE)

    @staticmethod
    def keys(account_id: str) -> dict[str, str]:
        base = f"{PREFIX}:{{{account_id}}}"
        return {name: f"{base}:{name}" for name in ("qa", "qb", "taken", "seq", "lease", "bulkconv", "meta", "body",
                                                        "bell")}

    async def push(self, account_id: str, message_id: str, conversation_id: str, lane: str,
                   *, front: bool = False, body: str = "") -> bool:
        """Queue one message (``body``: what its send needs, see the module docstring); True when no
        drainer was active and the number was put on the ready list."""
        call = self.push_call(account_id, message_id, conversation_id, lane, front=front, body=body)
        return bool(await call.script(keys=call.keys, args=call.args))

    def push_call(self, account_id: str, message_id: str, conversation_id: str, lane: str,
                  *, front: bool = False, body: str = "") -> Call:
        """``push`` as a call to send with others in one round trip (app.redis_scripts.run)."""
        k = self.keys(account_id)
        return Call(self._push, [k["qa"], k["qb"], k["lease"], ACCOUNTS_KEY, k["bulkconv"], k["seq"], k["body"],
                                 k["bell"], READY_KEY],
                    [message_id, conversation_id, lane, account_id, LEASE_TTL_MS, "front" if front else "back", body])

    async def wake(self, account_id: str) -> bool:
        """Make sure a drainer runs: True when there was none and the number was put on the ready list
        (a running drainer's bell is rung instead)."""
        k = self.keys(account_id)
        return bool(await self._wake(keys=[k["lease"], k["bell"], READY_KEY], args=[LEASE_TTL_MS, account_id]))

    async def ready(self, account_id: str) -> None:
        """Put a number the caller keeps woken (``hand_back(..., then="woken")``) on the ready list."""
        await self.redis.rpush(READY_KEY, account_id)

    async def next_ready(self, timeout: float) -> str | None:
        """Wait up to ``timeout`` s for a woken number (each is given to one caller only)."""
        answer = await self.redis.blpop([READY_KEY], timeout=timeout)
        if not answer:
            return None
        value = answer[1]
        return value.decode() if isinstance(value, bytes) else str(value)

    async def claim(self, account_id: str, token: str, *, agent: int = 0, bulk: int = 0) -> list[Entry] | None:
        """Become this number's drainer (None: another one holds it); entries a dead drainer left are
        put back in front, then up to ``agent`` / ``bulk`` entries are popped in the same script."""
        k = self.keys(account_id)
        result = await self._claim(keys=[k["lease"], k["taken"], k["qa"], k["qb"], k["seq"], k["body"], k["meta"]],
                                   args=[token, LEASE_TTL_MS, agent, bulk])
        if int(result[0]) < 0:
            return None
        return _entries(result[1:])

    async def refresh(self, account_id: str, token: str) -> bool:
        """Extend the lease; False when it was lost (expired, or Redis lost its data)."""
        return bool(await self._refresh(keys=[self.keys(account_id)["lease"]], args=[token, LEASE_TTL_MS]))

    async def pop(self, account_id: str, token: str, agent: int, bulk: int) -> list[Entry] | None:
        """Up to ``agent`` / ``bulk`` entries, oldest first; None when the lease is no longer ``token``'s."""
        k = self.keys(account_id)
        return _popped(await self._pop(keys=self._pop_keys(k), args=[agent, bulk, token]))

    async def wait_and_pop(self, account_id: str, token: str, agent: int, bulk: int, timeout: float
                           ) -> list[Entry] | None:
        """Wait up to ``timeout`` s for the bell, then pop (as ``pop``): one round trip (Redis runs a
        client's pipelined commands after its blocking one returns)."""
        k = self.keys(account_id)
        for attempt in range(2):
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.blpop([k["bell"]], timeout=timeout)
                pipe.evalsha(self._pop.sha, 7, *self._pop_keys(k), agent, bulk, token)
                _, raw = await pipe.execute(raise_on_error=False)
            if isinstance(raw, NoScriptError) and not attempt:  # Redis restarted: load it, pop at once
                self._pop.sha = await self.redis.script_load(self._pop.script)
                timeout = 0.01
                continue
            if isinstance(raw, Exception):
                raise raw
            return _popped(raw)
        return []

    @staticmethod
    def _pop_keys(k: dict[str, str]) -> list[str]:
        return [k["qa"], k["qb"], k["taken"], k["seq"], k["body"], k["meta"], k["lease"]]

    async def release(self, account_id: str, token: str) -> bool:
        """Stop draining if both lanes are empty (atomically); False means more work arrived."""
        k = self.keys(account_id)
        return int(await self._release(keys=[k["lease"], k["qa"], k["qb"], k["taken"], k["bell"]], args=[token])) != 0

    async def hand_back(self, account_id: str, token: str, entries: list[Entry], *,
                        then: Literal["release", "ready", "woken"]) -> bool:
        """Put unfinished entries back in front, in their order; then release the number, or keep it
        woken and put it on the ready list (a new drainer takes it at once), or keep it woken for the
        caller to ready later (``ready``; if the caller dies, the wake expires and the sweeper wakes it)."""
        k = self.keys(account_id)
        mode = {"release": "0", "ready": "1", "woken": "2"}[then]
        result = await self._hand_back(keys=[k["lease"], k["qa"], k["qb"], k["taken"], READY_KEY],
                                       args=[token, mode, LEASE_TTL_MS, account_id, *(e.raw for e in entries)])
        return int(result) == 1

    async def done(self, account_id: str, entries: list[Entry], *, spare: bool = False) -> None:
        """Entries finished (sent, failed, or no longer queued). ``spare``: second copies of messages a
        drainer still holds, so the messages' retry state is kept."""
        if entries:
            call = self.done_call(account_id, entries, spare=spare)
            await call.script(keys=call.keys, args=call.args)

    def done_call(self, account_id: str, entries: list[Entry], *, spare: bool = False) -> Call:
        """``done`` as a call to send with others in one round trip (app.redis_scripts.run)."""
        k = self.keys(account_id)
        return Call(self._done, [k["taken"], k["bulkconv"], k["meta"]], ["0" if spare else "1", *(e.raw for e in entries)])

    async def retry_states(self, account_id: str, message_ids: list[str]) -> list[RetryState | None]:
        if not message_ids:
            return []
        raw = await self.redis.hmget(self.keys(account_id)["meta"], message_ids)
        return [RetryState.decode(r) for r in raw]

    async def save_retry_state(self, account_id: str, message_id: str, state: RetryState) -> None:
        await self.redis.hset(self.keys(account_id)["meta"], message_id, state.encode())

    async def depth(self, account_id: str) -> tuple[int, int, int]:
        """(agent lane, bulk lane, taken) lengths."""
        k = self.keys(account_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.llen(k["qa"]).llen(k["qb"]).zcard(k["taken"])
            agent, bulk, taken = await pipe.execute()
        return int(agent), int(bulk), int(taken)

    async def has_lease(self, account_id: str) -> bool:
        return bool(await self.redis.exists(self.keys(account_id)["lease"]))

    async def accounts(self) -> list[str]:
        return sorted(m.decode() if isinstance(m, bytes) else m for m in await self.redis.smembers(ACCOUNTS_KEY))

    async def forget_if_idle(self, account_id: str) -> bool:
        k = self.keys(account_id)
        return bool(await self._forget(keys=[k["qa"], k["qb"], k["taken"], k["lease"], ACCOUNTS_KEY],
                                       args=[account_id]))

    async def mark_epoch(self) -> bool:
        """True the first time after Redis started empty (or lost its data): the outbox must be rebuilt."""
        return bool(await self.redis.set(EPOCH_KEY, "1", nx=True))
