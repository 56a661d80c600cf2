"""Rate-limit windows and budget counters shared by every process (cluster mode), in Redis.

One Lua script checks the minute window, the month quota and every budget, and commits all of
them only if everything fits: one round trip per request, atomic across replicas. Window and
period indexes are part of the keys (``…:rl:m:p:proj_x:29384712``), and keys expire after their
window, so nothing needs sweeping. A budget key missing from Redis is seeded from the ledger
(``HSETNX``: the first process to seed wins) and the request retried. Settling happens after
the response, off the request's path. If Redis is unreachable requests fail closed (503).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from tollhouse.errors import ServiceUnavailable
from tollhouse.tenancy.counters import Ask, BudgetLine, Hold, Outcome, Seeder, Verdict

log = logging.getLogger(__name__)

_ADMIT = """
local rpm = tonumber(ARGV[1]); local rpmo = tonumber(ARGV[2])
local est_n = tonumber(ARGV[3]); local est_t = tonumber(ARGV[4])
local minute_used = 0; local month_used = 0
if rpm >= 0 then minute_used = tonumber(redis.call('GET', KEYS[1]) or '0') end
if rpmo >= 0 then month_used = tonumber(redis.call('GET', KEYS[2]) or '0') end
if rpmo >= 0 and month_used >= rpmo then return {2, minute_used, month_used, 0, 0, 0} end
if rpm >= 0 and minute_used >= rpm then return {1, minute_used, month_used, 0, 0, 0} end
local lines = (#KEYS - 2)
for i = 1, lines do
  local key = KEYS[2 + i]
  local vals = redis.call('HMGET', key, 'n', 't')
  if not vals[1] then return {4, minute_used, month_used, i, 0, 0} end
  local n = tonumber(vals[1]); local t = tonumber(vals[2])
  local ln = tonumber(ARGV[4 + 2 * i - 1]); local lt = tonumber(ARGV[4 + 2 * i])
  if (ln >= 0 and n + est_n > ln) or (lt >= 0 and t + est_t > lt) then
    return {3, minute_used, month_used, i, n, t}
  end
end
for i = 1, lines do
  redis.call('HINCRBY', KEYS[2 + i], 'n', est_n)
  redis.call('HINCRBY', KEYS[2 + i], 't', est_t)
end
if rpm >= 0 then
  if redis.call('INCR', KEYS[1]) == 1 then redis.call('EXPIRE', KEYS[1], 120) end
end
if rpmo >= 0 then
  if redis.call('INCR', KEYS[2]) == 1 then redis.call('EXPIREAT', KEYS[2], tonumber(ARGV[#ARGV]) + 86400) end
end
return {0, minute_used + 1, month_used + 1, 0, 0, 0}
"""

_SEED = """
if redis.call('HSETNX', KEYS[1], 'n', ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], 't', ARGV[2])
  redis.call('EXPIREAT', KEYS[1], ARGV[3])
end
return 1
"""

_SETTLE = """
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('HINCRBY', KEYS[i], 'n', ARGV[1])
    redis.call('HINCRBY', KEYS[i], 't', ARGV[2])
  end
end
return 1
"""


class RedisCounters:
    def __init__(self, client: aioredis.Redis, prefix: str, seeder: Seeder) -> None:
        self._redis = client
        self._prefix = prefix
        self._seeder = seeder
        self._admit = client.register_script(_ADMIT)
        self._seed_script = client.register_script(_SEED)
        self._settle = client.register_script(_SETTLE)
        self._pending: set[asyncio.Task[None]] = set()

    def _budget_key(self, line: BudgetLine) -> str:
        return f"{self._prefix}b:{line.counter}:{line.window}"

    async def admit(self, ask: Ask) -> Outcome:
        plan, windows = ask.plan, ask.windows
        keys = [
            f"{self._prefix}rl:m:{ask.scope}:{windows.minute}",
            f"{self._prefix}rl:M:{ask.scope}:{windows.month}",
            *(self._budget_key(line) for line in ask.lines),
        ]
        args: list[Any] = [
            plan.requests_per_minute if plan.requests_per_minute is not None else -1,
            plan.requests_per_month if plan.requests_per_month is not None else -1,
            ask.nanos,
            ask.tokens,
        ]
        for line in ask.lines:
            args.append(line.limit_nanos if line.limit_nanos is not None else -1)
            args.append(line.limit_tokens if line.limit_tokens is not None else -1)
        args.append(windows.month_reset)
        for _ in range(5):
            try:
                code, minute_used, month_used, index, nanos, tokens = await self._admit(keys=keys, args=args)
            except RedisError as exc:
                log.warning("admission failed closed: Redis error %s", type(exc).__name__)
                raise ServiceUnavailable("the shared counter store (Redis) is unavailable") from exc
            if code == 4:  # a budget counter not yet seeded for this period
                await self.seed(ask.lines[int(index) - 1])
                continue
            refused = ask.lines[int(index) - 1] if code == Verdict.BUDGET else None
            return Outcome(int(code), int(minute_used), int(month_used), refused, int(nanos), int(tokens))
        raise ServiceUnavailable("budget counters could not be seeded")

    async def seed(self, line: BudgetLine) -> None:
        nanos, tokens = await self._seeder(line)
        try:
            await self._seed_script(
                keys=[self._budget_key(line)], args=[nanos, tokens, int(line.end) + 86_400]
            )
        except RedisError as exc:
            raise ServiceUnavailable("the shared counter store (Redis) is unavailable") from exc

    def settle(self, hold: Hold, nanos: int, tokens: int) -> None:
        delta_n, delta_t = nanos - hold.nanos, tokens - hold.tokens
        if not hold.lines or (delta_n == 0 and delta_t == 0):
            return
        keys = [self._budget_key(line) for line in hold.lines]
        task = asyncio.get_running_loop().create_task(self._send_settle(keys, delta_n, delta_t))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _send_settle(self, keys: list[str], delta_n: int, delta_t: int) -> None:
        for attempt in range(3):
            try:
                await self._settle(keys=keys, args=[delta_n, delta_t])
                return
            except RedisError:
                log.warning("settling a budget reservation failed (attempt %d)", attempt + 1)
                await asyncio.sleep(0.1 * (attempt + 1))
        log.error("a budget reservation could not be settled; it stays reserved until the period ends")

    async def current(self, line: BudgetLine) -> tuple[int, int]:
        key = self._budget_key(line)
        for _ in range(3):
            nanos, tokens = await self._redis.hmget(key, ["n", "t"])
            if nanos is not None:
                return int(nanos), int(tokens or 0)
            await self.seed(line)
        return 0, 0

    async def forget(self, lines: list[BudgetLine]) -> None:
        if lines:
            await self._redis.delete(*(self._budget_key(line) for line in lines))

    async def close(self) -> None:
        deadline = time.monotonic() + 5
        while self._pending and time.monotonic() < deadline:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
