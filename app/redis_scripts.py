"""Several Lua scripts' calls in one Redis round trip.

redis-py runs a pipeline of registered scripts with a ``SCRIPT EXISTS`` first, on every execute:
one more round trip than the calls themselves. Here each call is an ``EVALSHA`` in a plain
pipeline; a script the server does not know (it restarted or was flushed) is loaded and only the
calls that failed with NOSCRIPT run again (the server refused them before running anything).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError


@dataclass(frozen=True)
class Call:
    script: AsyncScript
    keys: Sequence[Any]
    args: Sequence[Any]


async def run(redis: Any, calls: Sequence[Call]) -> list[Any]:
    """Each call's answer, in order; a call the server refused gives its exception (not raised), so
    one failed call does not hide what the others did. A lost connection raises."""
    results: list[Any] = [None] * len(calls)
    pending = list(range(len(calls)))
    for attempt in range(2):
        async with redis.pipeline(transaction=False) as pipe:
            for i in pending:
                call = calls[i]
                pipe.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)
            answers = await pipe.execute(raise_on_error=False)
        missing = []
        for i, answer in zip(pending, answers, strict=True):
            results[i] = answer
            if isinstance(answer, NoScriptError):
                missing.append(i)
        if not missing or attempt:
            break
        for script in {id(calls[i].script): calls[i].script for i in missing}.values():
            script.sha = await redis.script_load(script.script)
        pending = missing
    return results
