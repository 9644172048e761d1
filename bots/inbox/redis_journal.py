"""The journal in Redis, for the Celery inbox: per-conversation lanes of events and messages, one Lua script a change.

A lane is a Redis list of ids, one per bot and conversation and kind (``event`` or ``message``); each id
names a hash holding the item. Appending a delivery's items (with their dedupe keys), finishing a batch
of events (each one's outbox message, its state, its removal), retrying, parking and replaying are each
one script, so a process killed between two of them leaves nothing half done.

Who works what: a lane is worked by whoever holds its lock, a key with a lease; every write that ends a
job checks the lock is still the caller's, so a worker whose lease ran out cannot commit over the one
that took the lane next. Lanes with work that may run now wait in ``ready:<kind>``, a sorted set scored
by when they may run, so a lane is queued once however often it is pushed. A worker takes a batch: the
head of up to ``limit`` ready lanes, at most one event per conversation, and lets each lane go when its
job ends, putting it back at the end of the ready set when it holds more.

A failing event steps out of its lane (``retry(..., in_line=False)``): it leaves the list for
``out:event``, scored by when it is due, and the lane's next event runs at once. When it is due, a worker
takes it under its lane's lock, so it never runs beside another event of its conversation. In line
(``INBOX_ORDER=strict``, and messages always) a failed job stays at its lane's head and the lane waits
in the ready set, scored by the due time.

Waking workers: a script that makes work ready with nobody to take it soon (no wake-up queued, no worker
looking, none busy with a batch for less than :data:`BUSY` seconds) registers a wake-up token and the
journal hands it to :attr:`RedisJournal.wake`, which the Celery inbox turns into a task. A worker that takes
a batch and leaves more ready work behind wakes one more unless one is queued or looking, so a backlog fans
out over the pool, a stream is worked by as few workers as keep up with it, and a busy pool is sent no tasks.

Keys, under ``prefix`` (``bots:``): ``seq``; ``event:<id>`` and ``message:<id>`` (hashes);
``lane:<kind>:<bot>:<conversation>`` (lists); ``lanes:<kind>`` (lanes that may hold items, for the
sweeper); ``lock:<kind>:<lane>``; ``ready:<kind>``; ``out:event``; ``workers:<kind>`` (wake-ups queued and workers
looking for work, each until its time runs out); ``dedupe:<bot>:<key>`` (with the dedupe time-to-live);
``state:<bot>:<conversation>``; ``dead`` (``kind:id`` by failure time); ``pending:<kind>`` (items waiting).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Any, overload

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from ..envelope import Item
from ..outbox import Effect
from ..state import State
from .journal import Finished, Progress, Taken, TakenMessage, conversation_of, dedupe_key_of, storable

KINDS = ("event", "message")
#: Seconds a worker that found no work counts as looking for some, so an append need not wake another.
LOOKING = 0.5
#: Seconds a worker that took a batch counts as coming back for more: by then it will, unless its handlers are
#: slow, and an append wakes another worker. (A worker leaving more ready work than it took wakes one at once.)
BUSY = 0.05

#: States read with taken events and not yet asked for, past which they are forgotten (and read again).
MAX_KEPT_STATES = 10_000

Wake = Callable[[str, str, float], None]

_PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local P = ARGV[1]
local WAKE_SECONDS = 5  -- how long a queued wake-up holds others back: one that was lost stalls nothing for long

-- ``workers:<kind>`` says who will look for work soon, each until when it counts: a queued wake-up
-- (``w:<token>``), a worker looking (``l:<owner>``), a worker busy with a short batch (``b:<owner>``).
-- Register wake-up ``token`` unless one of them will look (``busy`` false: a busy worker does not count);
-- returns the token, or '' when no task is needed.
local function wake(kind, lease, token, busy)
  if token == '' then return '' end
  local workers = P .. 'workers:' .. kind
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', workers, '(' .. now, '+inf')) do
    if busy or string.sub(member, 1, 2) ~= 'b:' then return '' end
  end
  redis.call('ZADD', workers, now + math.min(lease / 1000, WAKE_SECONDS), 'w:' .. token)
  return token
end

-- Take item ``id`` out of its lane: its head, the stepped-out set, or (after a replay) further down.
local function remove(kind, lane, id)
  local list = P .. 'lane:' .. kind .. ':' .. lane
  local head = redis.call('LPOP', list)
  if head == id then return end
  if head then redis.call('LPUSH', list, head) end
  if kind ~= 'event' or redis.call('ZREM', P .. 'out:event', id) == 0 then redis.call('LREM', list, 1, id) end
end

-- Let a lane go; it is ready again at once when it holds more.
local function release(kind, lane)
  redis.call('DEL', P .. 'lock:' .. kind .. ':' .. lane)
  if redis.call('LLEN', P .. 'lane:' .. kind .. ':' .. lane) > 0 then
    redis.call('ZADD', P .. 'ready:' .. kind, 'LT', now, lane)
  end
end

local function held(kind, lane, owner)
  return redis.call('GET', P .. 'lock:' .. kind .. ':' .. lane) == owner
end

-- Queue one outbox message (an event's effects) in its lane; true when the lane was empty and needs a sender.
local function queue(bot, conversation, lane, body, key)
  local mid = redis.call('INCR', P .. 'seq')
  redis.call('HSET', P .. 'message:' .. mid, 'bot', bot, 'conversation', conversation, 'body', body,
             'key', key, 'received_at', now)
  if redis.call('RPUSH', P .. 'lane:message:' .. lane, mid) == 1 then
    redis.call('SADD', P .. 'lanes:message', lane)
    redis.call('ZADD', P .. 'ready:message', 'LT', now, lane)
    return true
  end
  return false
end
"""

_APPEND = """
local ttl, lease = ARGV[2], tonumber(ARGV[3])
local added, token = 0, ''
for i = 4, #ARGV, 4 do
  local bot, conversation, dedupe, body = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if redis.call('SET', P .. 'dedupe:' .. bot .. ':' .. dedupe, '1', 'NX', 'EX', ttl) then
    local id = redis.call('INCR', P .. 'seq')
    local lane = bot .. ':' .. conversation
    redis.call('HSET', P .. 'event:' .. id, 'bot', bot, 'conversation', conversation, 'body', body, 'received_at', now)
    if redis.call('RPUSH', P .. 'lane:event:' .. lane, id) == 1 then
      redis.call('SADD', P .. 'lanes:event', lane)
      redis.call('ZADD', P .. 'ready:event', 'LT', now, lane)
      if token == '' then token = 'a' .. id end
    end
    added = added + 1
  end
end
if added > 0 then redis.call('INCRBY', P .. 'pending:event', added) end
return {added, wake('event', lease, token, true)}
"""

_TAKE = """
local kind, owner, lease, limit = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local token, fresh, leaving, look, busy = ARGV[6], ARGV[7], ARGV[8] == '1', tonumber(ARGV[9]), tonumber(ARGV[10])
local workers = P .. 'workers:' .. kind
if token ~= '' then redis.call('ZREM', workers, 'w:' .. token) end
local ready, items, fields = P .. 'ready:' .. kind, P .. kind .. ':', {'available_at', 'bot', 'conversation', 'body'}
if kind == 'message' then fields = {'available_at', 'bot', 'conversation', 'body', 'key', 'done', 'results'} end
local taken, mine = {}, {}

-- Claim item ``id`` of ``lane`` (its fields in ``data``) if the lane's lock is free.
local function take(lane, id, data)
  if mine[lane] or not redis.call('SET', P .. 'lock:' .. kind .. ':' .. lane, owner, 'NX', 'PX', lease) then
    return false
  end
  mine[lane] = true
  local attempts = redis.call('HINCRBY', items .. id, 'attempts', 1)
  local state = kind == 'event' and redis.call('GET', P .. 'state:' .. data[2] .. ':' .. data[3])
  taken[#taken + 1] = {id, lane, attempts, data[2], data[3], data[4] or '', data[5] or '', data[6] or '0',
                       data[7] or '', state}
  return true
end

if kind == 'event' then
  local out = P .. 'out:event'
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', out, '-inf', now, 'LIMIT', 0, limit)) do
    local data = redis.call('HMGET', items .. id, unpack(fields))
    if not data[2] then
      redis.call('ZREM', out, id)
    elseif take(data[2] .. ':' .. data[3], id, data) then
      redis.call('ZADD', out, now + lease / 1000, id)
    end
  end
end

while #taken < limit do
  local lanes = redis.call('ZRANGEBYSCORE', ready, '-inf', now, 'LIMIT', 0, limit - #taken)
  if #lanes == 0 then break end
  redis.call('ZREM', ready, unpack(lanes))
  for _, lane in ipairs(lanes) do
    local list = P .. 'lane:' .. kind .. ':' .. lane
    local head = redis.call('LINDEX', list, 0)
    if head then
      local data = redis.call('HMGET', items .. head, unpack(fields))
      local due = tonumber(data[1] or '0')
      if not data[2] then
        redis.call('LPOP', list)
        redis.call('DECR', P .. 'pending:' .. kind)
        redis.call('ZADD', ready, now, lane)
      elseif due > now then
        redis.call('ZADD', ready, due, lane)
      else
        take(lane, head, data)
      end
    end
  end
end

local woken = ''
if #taken > 0 then
  redis.call('ZREM', workers, 'l:' .. owner)
  if redis.call('ZCOUNT', ready, '-inf', now) > 0 then woken = wake(kind, lease, fresh, false) end
  redis.call('ZADD', workers, now + busy, 'b:' .. owner)
elseif leaving then
  redis.call('ZREM', workers, 'l:' .. owner, 'b:' .. owner)
else
  redis.call('ZREM', workers, 'b:' .. owner)
  redis.call('ZADD', workers, now + look, 'l:' .. owner)
end
return {woken, taken}
"""

_FINISH = """
local lease, token = tonumber(ARGV[2]), ARGV[3]
local kept, ended, messages, woken = {}, 0, 0, false
for i = 4, #ARGV, 9 do
  local id, owner, lane, bot, conversation = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  if held('event', lane, owner) then
    remove('event', lane, id)
    redis.call('DEL', P .. 'event:' .. id)
    if ARGV[i + 5] == '1' then redis.call('SET', P .. 'state:' .. bot .. ':' .. conversation, ARGV[i + 6]) end
    if ARGV[i + 7] ~= '' then
      woken = queue(bot, conversation, lane, ARGV[i + 7], ARGV[i + 8]) or woken
      messages = messages + 1
    end
    release('event', lane)
    ended = ended + 1
    kept[#kept + 1] = 1
  else
    kept[#kept + 1] = 0
  end
end
if ended > 0 then redis.call('DECRBY', P .. 'pending:event', ended) end
if messages > 0 then redis.call('INCRBY', P .. 'pending:message', messages) end
return {woken and wake('message', lease, token, true) or '', kept}
"""

_RETRY = """
local kind, id, owner, lane, error, delay, in_line = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7]),
  ARGV[8] == '1'
if not held(kind, lane, owner) then return 0 end
local due = now + delay
redis.call('HSET', P .. kind .. ':' .. id, 'available_at', due, 'error', error)
local out = P .. 'out:event'
if kind == 'event' and (not in_line or redis.call('ZSCORE', out, id)) then
  remove(kind, lane, id)
  redis.call('ZADD', out, due, id)
  release(kind, lane)
else
  redis.call('ZADD', P .. 'ready:' .. kind, due, lane)
  redis.call('DEL', P .. 'lock:' .. kind .. ':' .. lane)
end
return 1
"""

_BURY = """
local kind, id, owner, lane, error = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if not held(kind, lane, owner) then return '' end
remove(kind, lane, id)
redis.call('HSET', P .. kind .. ':' .. id, 'error', error, 'failed_at', now)
redis.call('ZADD', P .. 'dead', now, kind .. ':' .. id)
redis.call('DECR', P .. 'pending:' .. kind)
local woken = false
if ARGV[7] then  -- the error handlers' effects: bot, conversation, body, key, lease, wake-up token
  woken = queue(ARGV[7], ARGV[8], lane, ARGV[9], ARGV[10])
  redis.call('INCR', P .. 'pending:message')
end
release(kind, lane)
return woken and wake('message', tonumber(ARGV[11]), ARGV[12], true) or ''
"""

_PROGRESS = """
if not held('message', ARGV[4], ARGV[3]) then return 0 end
redis.call('HSET', P .. 'message:' .. ARGV[2], 'done', ARGV[5], 'results', ARGV[6])
return 1
"""

_SENT = """
local ended = 0
for i = 2, #ARGV, 3 do
  local id, owner, lane = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if held('message', lane, owner) then
    remove('message', lane, id)
    redis.call('DEL', P .. 'message:' .. id)
    release('message', lane)
    ended = ended + 1
  end
end
if ended > 0 then redis.call('DECRBY', P .. 'pending:message', ended) end
return ended
"""

_RENEW = """
local kind, lease, renewed = ARGV[2], tonumber(ARGV[3]), 0
local out = P .. 'out:event'
for i = 4, #ARGV, 3 do
  local id, owner, lane = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if held(kind, lane, owner) then
    redis.call('PEXPIRE', P .. 'lock:' .. kind .. ':' .. lane, lease)
    if kind == 'event' then redis.call('ZADD', out, 'XX', now + lease / 1000, id) end
    renewed = renewed + 1
  end
end
return renewed
"""

_REPLAY = """
local only, lease, token = ARGV[2], tonumber(ARGV[3]), ARGV[4]
local dead = P .. 'dead'
local letters
if only == '' then
  letters = redis.call('ZRANGE', dead, 0, -1)
elseif redis.call('ZSCORE', dead, only) then
  letters = {only}
else
  return {0, '', ''}
end
table.sort(letters, function(a, b)
  return tonumber(string.match(a, ':(%d+)$')) > tonumber(string.match(b, ':(%d+)$'))
end)
local replayed, kinds = 0, {}
for _, letter in ipairs(letters) do
  local kind, id = string.match(letter, '^(%a+):(%d+)$')
  local item = P .. kind .. ':' .. id
  local data = redis.call('HMGET', item, 'bot', 'conversation')
  redis.call('ZREM', dead, letter)
  if data[1] then
    local lane = data[1] .. ':' .. data[2]
    redis.call('HDEL', item, 'error', 'failed_at', 'attempts', 'available_at')
    redis.call('LPUSH', P .. 'lane:' .. kind .. ':' .. lane, id)
    redis.call('SADD', P .. 'lanes:' .. kind, lane)
    redis.call('INCR', P .. 'pending:' .. kind)
    redis.call('ZADD', P .. 'ready:' .. kind, 'LT', now, lane)
    kinds[kind] = true
    replayed = replayed + 1
  end
end
return {replayed, kinds['event'] and wake('event', lease, token .. ':e', true) or '',
        kinds['message'] and wake('message', lease, token .. ':m', true) or ''}
"""

_SWEEP = """
local kind, lease, token = ARGV[2], tonumber(ARGV[3]), ARGV[4]
local lanes, ready = P .. 'lanes:' .. kind, P .. 'ready:' .. kind
redis.call('ZREMRANGEBYSCORE', P .. 'workers:' .. kind, '-inf', now)
for i = 5, #ARGV do
  local lane = ARGV[i]
  local head = redis.call('LINDEX', P .. 'lane:' .. kind .. ':' .. lane, 0)
  if not head then
    redis.call('SREM', lanes, lane)
  elseif redis.call('EXISTS', P .. 'lock:' .. kind .. ':' .. lane) == 0 then
    local due = redis.call('HGET', P .. kind .. ':' .. head, 'available_at')
    redis.call('ZADD', ready, 'LT', due and tonumber(due) or now, lane)
  end
end
local waiting = redis.call('ZCOUNT', ready, '-inf', now)
if kind == 'event' then waiting = waiting + redis.call('ZCOUNT', P .. 'out:event', '-inf', now) end
return waiting > 0 and wake(kind, lease, token, true) or ''
"""

_SCRIPTS = {"append": _APPEND, "take": _TAKE, "finish": _FINISH, "retry": _RETRY, "bury": _BURY,
            "progress": _PROGRESS, "sent": _SENT, "renew": _RENEW, "replay": _REPLAY, "sweep": _SWEEP}
_COMPACT = json.JSONEncoder(separators=(",", ":")).encode


def redis_client(url: str) -> redis.Redis:
    """A client that fails fast when Redis is away (one quick retry, not redis-py's default of seconds), so the
    webhook can answer 503 well within Meta's time-out and a preview can miss the cache within its budget."""
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30,
                                retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 1))


def lane_name(bot: str, conversation: str) -> str:
    """A conversation's lane, the same for its events and its messages."""
    return storable(f"{bot}:{conversation}")


def _no_wake(kind: str, token: str, delay: float) -> None:
    """The wake-up hook of a journal nobody works (tests, tools): nothing to wake."""


class RedisJournal:
    """Events, outbox messages, dedupe keys, state and dead letters of the Celery inbox, in one Redis.

    ``wake(kind, token, delay)`` is called when work became ready and no worker looks for it: the Celery inbox
    enqueues a task carrying ``token`` (``""`` for a wake-up at a retry's due time, ``delay`` seconds on).
    """

    def __init__(self, client: redis.Redis, *, prefix: str = "bots:", dedupe_ttl: int = 36 * 3600,
                 lease_seconds: float = 30, wake: Wake | None = None) -> None:
        self.redis = client
        self.prefix = prefix
        self.dedupe_ttl = int(dedupe_ttl)
        self.lease_seconds = lease_seconds
        self.lease_ms = int(lease_seconds * 1000)
        self.wake = wake or _no_wake
        self._states: dict[int | str, str | None] = {}
        self._idle: list[redis.connection.AbstractConnection] = []
        self._pid = os.getpid()
        self._scripts = {name: client.register_script(_PRELUDE + body) for name, body in _SCRIPTS.items()}

    def append(self, bot: str, items: Sequence[Item]) -> int:
        """Record ``items`` and their dedupe keys at once, dropping repeats, and wake a worker when none is
        looking; returns how many items were new."""
        bot = storable(bot)
        args: list[str | int] = [self.prefix, self.dedupe_ttl, self.lease_ms]
        for item in items:
            args += [bot, storable(conversation_of(item)), storable(dedupe_key_of(item)), _COMPACT(item.to_dict())]
        added, token = self._run("append", args)
        self._woken("event", token)
        return int(added)

    def take(self, owner: str, limit: int = 1, *, token: str = "", leaving: bool = False) -> list[Taken]:
        """Lock up to ``limit`` lanes for ``owner`` and claim each one's due event (a stepped-out event whose time
        has come, else its head), counting an attempt; at most one event per conversation. ``token`` is the
        wake-up this worker answers; ``leaving`` says that, if there is nothing, it stops looking. Each event's
        conversation state comes with it, read under the lock, for :meth:`load_states`."""
        rows = self._take("event", owner, limit, token, leaving)
        if len(self._states) > MAX_KEPT_STATES:
            self._states.clear()
        self._states.update((row[0], row[9]) for row in rows)
        return [Taken(id, bot, conversation, body, int(attempts), owner, lane=lane)
                for id, lane, attempts, bot, conversation, body, *_ in rows]

    def take_messages(self, owner: str, limit: int = 1, *, token: str = "",
                      leaving: bool = False) -> list[TakenMessage]:
        """Lock up to ``limit`` message lanes for ``owner`` and claim each one's head, as :meth:`take` does."""
        return [TakenMessage(id, key, bot, conversation, body, int(attempts), owner, int(done),
                             tuple(json.loads(results)) if results else (), lane=lane)
                for id, lane, attempts, bot, conversation, body, key, done, results, _ in self._take(
                    "message", owner, limit, token, leaving)]

    def load_states(self, jobs: Sequence[Taken]) -> list[State]:
        """The state of each job's conversation: as :meth:`take` read it with the job (nothing can change it while
        the job's lane is held), else read in one round trip."""
        raw: list[str | None] = []
        missing: list[int] = []
        for n, job in enumerate(jobs):
            if job.id in self._states:
                raw.append(self._states.pop(job.id))
            else:
                raw.append(None)
                missing.append(n)
        if missing:
            found = self.redis.mget([self._key(f"state:{jobs[n].bot}:{jobs[n].conversation}") for n in missing])
            for n, value in zip(missing, found, strict=True):
                raw[n] = _text(value)
        return [State.loads(value) for value in raw]

    def load_state(self, bot: str, conversation: str) -> State:
        """One conversation's state, as last saved."""
        return State.loads(_text(self.redis.get(self._key(f"state:{storable(bot)}:{storable(conversation)}"))))

    def finish(self, finished: Sequence[Finished]) -> list[bool]:
        """End each event at once: pop it, queue its effects as one outbox message, save its state; False for
        one whose lane's lock was lost."""
        args: list[str | int] = [self.prefix, self.lease_ms, _token()]
        for done in finished:
            job = done.job
            effects = _COMPACT([effect.to_dict() for effect in done.effects]) if done.effects else ""
            args += [job.id, job.owner, job.lane, job.bot, job.conversation, "0" if done.state is None else "1",
                     storable(done.state or ""), storable(effects), f"{job.bot}:{job.id}:{os.urandom(6).hex()}"]
        token, kept = self._run("finish", args)
        self._woken("message", token)
        return [bool(flag) for flag in kept]

    def retry(self, job: Taken | TakenMessage, error: str, delay: float, *, in_line: bool = True) -> None:
        """Give the job back, due again after ``delay`` seconds, and wake a worker then. Out of line the event
        leaves its lane, which goes on at once; in line (and every message) it stays at the head, and the lane
        waits."""
        if self._run("retry", [self.prefix, _kind(job), job.id, job.owner, job.lane, storable(error), delay,
                               "1" if in_line else "0"]):
            self.wake(_kind(job), "", delay)

    def bury(self, job: Taken | TakenMessage, error: str, effects: Sequence[Effect] = ()) -> None:
        """Park the job among the dead letters, with why, and queue an event's ``effects`` (its error handlers'
        messages) in the same script; its lane goes on with the next one."""
        args: list[str | int] = [self.prefix, _kind(job), job.id, job.owner, job.lane, storable(error)]
        if effects and isinstance(job, Taken):
            args += [job.bot, job.conversation, storable(_COMPACT([effect.to_dict() for effect in effects])),
                     f"{job.bot}:{job.id}:{os.urandom(6).hex()}", self.lease_ms, _token()]
        self._woken("message", self._run("bury", args))

    def progress(self, message: TakenMessage, progress: Progress) -> bool:
        """Record that the first ``progress.done`` effects reached Graph, with their answers; False if the lock
        was lost."""
        return bool(self._run("progress", [self.prefix, message.id, message.owner, message.lane, progress.done,
                                           storable(_COMPACT(progress.results))]))

    def sent(self, messages: Sequence[TakenMessage]) -> None:
        """Every effect of these messages reached Graph: forget them and let their lanes go on."""
        if messages:
            self._run("sent", [self.prefix, *(v for m in messages for v in (m.id, m.owner, m.lane))])

    def renew(self, jobs: Sequence[Taken | TakenMessage]) -> bool:
        """Extend the locks of the lanes ``jobs`` hold by a lease period; False if any was lost."""
        if not jobs:
            return True
        args = [self.prefix, _kind(jobs[0]), self.lease_ms, *(v for job in jobs for v in (job.id, job.owner,
                                                                                            job.lane))]
        return bool(self._run("renew", args) == len(jobs))

    def sweep(self, kind: str, batch: int = 200) -> None:
        """Make every lane with a due head that nobody holds ready again (a worker died, a wake-up was lost),
        and wake a worker when work waits and nobody looks for it."""
        lanes_key = self._key(f"lanes:{kind}")
        names = [storable(_text(name)) for name in self.redis.sscan_iter(lanes_key, count=batch)]
        for start in range(0, max(1, len(names)), batch):
            token = self._run("sweep", [self.prefix, kind, self.lease_ms, _token(), *names[start:start + batch]])
            self._woken(kind, token)

    def forget_wakes(self) -> None:
        """Drop the record of queued wake-ups and looking workers (a worker starting: those of a dead one may never
        run; a live worker that looks says so again at its next look)."""
        self.redis.delete(*(self._key(f"workers:{kind}") for kind in KINDS))

    def forget_wake(self, kind: str, token: str) -> None:
        """A wake-up could not be enqueued: do not count it as queued."""
        self.redis.zrem(self._key(f"workers:{kind}"), f"w:{token}")

    def dead_letters(self, limit: int = 10_000) -> list[dict[str, Any]]:
        """Parked events and messages, oldest first, with their error; no message content."""
        letters = [_text(letter) for letter in self.redis.zrange(self._key("dead"), 0, limit - 1)
                   if isinstance(letter, (bytes, str))]  # without scores, every member is one
        pipe = self.redis.pipeline(transaction=False)
        for letter in letters:
            pipe.hmget(self._key(letter), "bot", "conversation", "body", "attempts", "error", "failed_at")
        found = zip(letters, pipe.execute(), strict=True)
        return [_letter(letter, [_text(v) for v in values]) for letter, values in found if values[0] is not None]

    def replay(self, letter_id: str | None = None) -> int:
        """Put one dead letter (``event:12``, ``message:7``) or, with None, all back at the head of their lane,
        attempts reset, and wake workers for them; returns how many."""
        if letter_id is not None:
            kind, _, number = letter_id.partition(":")
            if kind not in KINDS or not number.isdigit():
                raise ValueError(f"a dead letter id looks like event:12 or message:7, got {letter_id!r}")
        replayed, events, messages = self._run("replay", [self.prefix, letter_id or "", self.lease_ms, _token()])
        self._woken("event", events)
        self._woken("message", messages)
        return int(replayed)

    def waiting_since(self) -> float | None:
        """Since when the longest-waiting due work has waited (Redis time, epoch seconds): the earliest score
        at or before now in ``ready:event``, ``ready:message`` and ``out:event``; None when nothing is due.
        Lanes a worker holds are not counted (their lock's lease says the worker is alive)."""
        now = self.now()
        pipe = self.redis.pipeline(transaction=False)
        for key in ("ready:event", "ready:message", "out:event"):
            pipe.zrangebyscore(self._key(key), "-inf", now, start=0, num=1, withscores=True)
        times = [score for rows in pipe.execute() for _, score in rows]
        return min(times) if times else None

    def now(self) -> float:
        """Redis's clock, the one :meth:`waiting_since` answers in."""
        seconds, micros = self.redis.time()
        return seconds + micros / 1e6

    def counts(self) -> dict[str, int]:
        """Events waiting (stepped-out ones included) and messages waiting."""
        events, messages = self.redis.mget(self._key("pending:event"), self._key("pending:message"))
        return {"events": int(events or 0), "messages": int(messages or 0)}

    def _take(self, kind: str, owner: str, limit: int, token: str, leaving: bool) -> list[list[str]]:
        """Run the take script; the rows it claimed, as text, after waking one more worker if it asked to."""
        rows: list[list[str]]
        woken, rows = self._run("take", [self.prefix, kind, owner, self.lease_ms, limit, token, _token(),
                                         "1" if leaving else "0", LOOKING, BUSY])
        self._woken(kind, woken)
        return rows

    def _run(self, script: str, args: Sequence[str | int | float]) -> Any:
        """Call one of the scripts: ``EVALSHA`` straight on a connection of this journal's own, which skips the
        client's per-command layers (pool checks, retry, telemetry: a request pays this call once per delivery);
        when the connection is lost or Redis has forgotten the script, through the client, with its retry and
        reload. What it returns is the script's reply, as text: a number, a string or a list of them, as the script
        shapes it."""
        connection = self._checkout()
        try:
            # redis-py leaves send_command and disconnect unannotated.
            connection.send_command("EVALSHA", self._scripts[script].sha, 0, *args)  # type: ignore[no-untyped-call]
            return connection.read_response()
        except redis.exceptions.NoScriptError:
            return _decoded(self._scripts[script](keys=[], args=args))
        except (redis.ConnectionError, redis.TimeoutError):
            connection.disconnect()  # type: ignore[no-untyped-call]
            return _decoded(self._scripts[script](keys=[], args=args))
        except redis.ResponseError:
            raise
        except BaseException:
            connection.disconnect()  # type: ignore[no-untyped-call]  # a reply may be left unread on it
            raise
        finally:
            self._idle.append(connection)

    def _checkout(self) -> redis.connection.AbstractConnection:
        """An idle connection of this process's (one that decodes replies to text), or a new one; a forked process
        (a pool worker) starts with none, so it never shares its parent's sockets."""
        if self._pid != os.getpid():
            self._idle, self._pid = [], os.getpid()
        try:
            return self._idle.pop()
        except IndexError:
            pool = self.redis.connection_pool
            connection: redis.connection.AbstractConnection = pool.connection_class(
                **{**pool.connection_kwargs, "decode_responses": True})
            return connection

    def _woken(self, kind: str, token: bytes | str) -> None:
        """A script registered wake-up ``token``: hand it to the hook."""
        if token:
            self.wake(kind, _text(token), 0.0)

    def _key(self, name: str) -> str:
        """The Redis key ``name`` under this journal's prefix."""
        return f"{self.prefix}{name}"


def _token() -> str:
    """A fresh wake-up token."""
    return os.urandom(8).hex()


def _kind(job: Taken | TakenMessage) -> str:
    """``event`` or ``message``: which lanes the job is in."""
    return "message" if isinstance(job, TakenMessage) else "event"


@overload
def _text(value: bytes | str) -> str: ...


@overload
def _text(value: bytes | str | None) -> str | None: ...


def _text(value: bytes | str | None) -> str | None:
    """A reply's value as text (stored strings are always UTF-8: see :func:`~bots.inbox.journal.storable`)."""
    return value.decode() if isinstance(value, bytes) else value


def _decoded(reply: object) -> object:
    """A script's reply with its bytes as text, nested lists too (what the decoding connection gives)."""
    if isinstance(reply, list):
        return [_decoded(value) for value in reply]
    return reply.decode() if isinstance(reply, bytes) else reply




def _letter(letter: str, values: list[str | None]) -> dict[str, Any]:
    """A dead letter as the CLI and the admin API list it: what it was, never its content."""
    bot, conversation, body, attempts, error, failed_at = values
    kind, _, _ = letter.partition(":")
    return {"id": letter, "kind": kind, "bot": bot, "conversation": conversation, "what": _what(kind, body),
            "attempts": int(attempts or 0), "error": error, "failed_at": float(failed_at) if failed_at else None}


def _what(kind: str, body: str | None) -> str:
    """``page messaging item`` for an event, ``POST me/messages`` for a message; never raises."""
    try:
        data = json.loads(body or "")
        if kind == "event":
            return f"{data['object']} {data['kind']} item"
        return ", ".join(Effect.from_dict(effect).describe() for effect in data)
    except (ValueError, TypeError, KeyError):
        return "an unreadable delivery" if kind == "event" else "unreadable effects"
