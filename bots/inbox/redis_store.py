"""The Celery inbox's journal in Redis: per-conversation lanes of events and messages, each change one Lua script.

A lane is a Redis list of ids, one per bot and conversation and kind (``event`` or ``message``);
each id names a hash holding the item. Appending a delivery's items (with their dedupe keys),
finishing an event (its outbox messages, its state, and popping it), retrying and parking are each
one script, so a process killed between two of them leaves nothing half done. A lane is worked by
whoever holds its lock, a key with a lease; every write that ends a run checks the lock is still
the caller's, so a worker whose lease ran out cannot commit over the one that took the lane next.

Keys, under ``prefix`` (``bots:``): ``seq``; ``event:<id>`` and ``message:<id>`` (hashes);
``lane:<kind>:<bot>:<conversation>`` (lists); ``lanes:<kind>`` (the lanes that may hold items);
``lock:<kind>:<lane>``; ``dedupe:<bot>:<key>`` (with the dedupe time-to-live);
``state:<bot>:<conversation>``; ``dead`` (a sorted set of ``kind:id`` by failure time);
``pending:<kind>`` (items waiting).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from ..envelope import Item
from ..outbox import Effect
from ..state import State, dumps

KINDS = ("event", "message")
MAX_ERROR = 1000  # characters of an error kept with a retry or a dead letter

_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) + tonumber(t[2]) / 1000000 "

_APPEND = _NOW + """
local prefix, ttl = ARGV[1], ARGV[2]
local lanes, seen, added = {}, {}, 0
for i = 0, (#KEYS - 3) / 2 - 1 do
  local dedupe, lane_key = KEYS[4 + 2 * i], KEYS[5 + 2 * i]
  local lane, bot, conversation, body = ARGV[3 + 4 * i], ARGV[4 + 4 * i], ARGV[5 + 4 * i], ARGV[6 + 4 * i]
  if redis.call('SET', dedupe, '1', 'NX', 'EX', ttl) then
    local id = redis.call('INCR', KEYS[1])
    redis.call('HSET', prefix .. 'event:' .. id, 'bot', bot, 'conversation', conversation, 'lane', lane,
               'body', body, 'attempts', 0, 'available_at', now, 'received_at', now)
    local length = redis.call('RPUSH', lane_key, id)
    redis.call('SADD', KEYS[3], lane)
    added = added + 1
    if length == 1 and not seen[lane] then lanes[#lanes + 1] = lane end
    seen[lane] = true
  end
end
redis.call('INCRBY', KEYS[2], added)
return lanes
"""

_TAKE = _NOW + """
local prefix, kind, owner, lease = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local held = redis.call('GET', KEYS[2])
if held and held ~= owner then return {'busy'} end
while true do
  local id = redis.call('LINDEX', KEYS[1], 0)
  if not id then
    if held then redis.call('DEL', KEYS[2]) end
    return {'empty'}
  end
  local item = prefix .. kind .. ':' .. id
  local due = redis.call('HGET', item, 'available_at')
  if not due then
    redis.call('LPOP', KEYS[1])
    redis.call('DECR', KEYS[3])
  elseif tonumber(due) > now then
    if held then redis.call('DEL', KEYS[2]) end
    return {'wait', tostring(tonumber(due) - now)}
  else
    redis.call('SET', KEYS[2], owner, 'PX', lease)
    local attempts = redis.call('HINCRBY', item, 'attempts', 1)
    local data = redis.call('HMGET', item, 'bot', 'conversation', 'body', 'key')
    return {'take', id, tostring(attempts), data[1], data[2], data[3], data[4] or ''}
  end
end
"""

_FINISH = _NOW + """
local prefix, kind, owner, id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('GET', KEYS[2]) ~= owner then return 0 end
redis.call('LREM', KEYS[1], 1, id)
redis.call('DEL', prefix .. kind .. ':' .. id)
redis.call('DECR', KEYS[3])
if ARGV[5] == '1' then redis.call('SET', KEYS[4], ARGV[6]) end
local bot, conversation, lane = ARGV[7], ARGV[8], ARGV[9]
local count = (#ARGV - 9) / 2
for i = 0, count - 1 do
  local mid = redis.call('INCR', KEYS[5])
  redis.call('HSET', prefix .. 'message:' .. mid, 'bot', bot, 'conversation', conversation, 'lane', lane,
             'body', ARGV[10 + 2 * i], 'key', ARGV[11 + 2 * i], 'attempts', 0, 'available_at', now,
             'received_at', now)
  redis.call('RPUSH', KEYS[6], mid)
end
if count > 0 then
  redis.call('SADD', KEYS[7], lane)
  redis.call('INCRBY', KEYS[8], count)
end
return 1
"""

_RETRY = _NOW + """
local prefix, kind, owner, id, error, delay = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
if redis.call('GET', KEYS[2]) ~= owner then return 0 end
redis.call('HSET', prefix .. kind .. ':' .. id, 'available_at', now + delay, 'error', error)
redis.call('DEL', KEYS[2])
return 1
"""

_BURY = _NOW + """
local prefix, kind, owner, id, error = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('GET', KEYS[2]) ~= owner then return 0 end
redis.call('LREM', KEYS[1], 1, id)
redis.call('HSET', prefix .. kind .. ':' .. id, 'error', error, 'failed_at', now)
redis.call('ZADD', KEYS[4], now, kind .. ':' .. id)
redis.call('DECR', KEYS[3])
return 1
"""

_REPLAY = _NOW + """
local prefix, only = ARGV[1], ARGV[2]
local letters
if only == '' then
  letters = redis.call('ZRANGE', KEYS[1], 0, -1)
elseif redis.call('ZSCORE', KEYS[1], only) then
  letters = {only}
else
  return {}
end
table.sort(letters, function(a, b)
  return tonumber(string.match(a, ':(%d+)$')) > tonumber(string.match(b, ':(%d+)$'))
end)
local lanes = {}
for _, letter in ipairs(letters) do
  local kind, id = string.match(letter, '^(%a+):(%d+)$')
  local item = prefix .. kind .. ':' .. id
  local lane = redis.call('HGET', item, 'lane')
  redis.call('ZREM', KEYS[1], letter)
  if lane then
    redis.call('HSET', item, 'attempts', 0, 'available_at', now)
    redis.call('HDEL', item, 'error', 'failed_at')
    redis.call('LPUSH', prefix .. 'lane:' .. kind .. ':' .. lane, id)
    redis.call('SADD', prefix .. 'lanes:' .. kind, lane)
    redis.call('INCR', prefix .. 'pending:' .. kind)
    lanes[#lanes + 1] = kind
    lanes[#lanes + 1] = lane
  end
end
return lanes
"""

_IDLE = _NOW + """
local prefix, kind = ARGV[1], ARGV[2]
local idle = {}
for i = 3, #ARGV do
  local lane = ARGV[i]
  local lane_key = prefix .. 'lane:' .. kind .. ':' .. lane
  local head = redis.call('LINDEX', lane_key, 0)
  if not head then
    redis.call('SREM', KEYS[1], lane)
  elseif redis.call('EXISTS', prefix .. 'lock:' .. kind .. ':' .. lane) == 0 then
    local due = redis.call('HGET', prefix .. kind .. ':' .. head, 'available_at')
    if not due or tonumber(due) <= now then idle[#idle + 1] = lane end
  end
end
return idle
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


def redis_client(url: str) -> redis.Redis:
    """A client that fails fast when Redis is away (one quick retry, not redis-py's default of seconds), so the
    webhook can answer 503 well within Meta's time-out and a preview can miss the cache within its budget."""
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30,
                                retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 1))


@dataclass(frozen=True, slots=True)
class Claim:
    """What a lane's head gave its worker: an item to run, or why there is none (busy, empty, wait)."""

    outcome: str
    id: str = ""
    attempts: int = 0
    bot: str = ""
    conversation: str = ""
    body: str = ""
    key: str = ""
    wait: float = 0.0

    @property
    def item(self) -> Item:
        return Item.from_dict(json.loads(self.body))

    @property
    def effect(self) -> Effect:
        return Effect.from_dict(json.loads(self.body))


def lane_name(bot: str, conversation: str) -> str:
    """A conversation's lane, the same for its events and its messages."""
    return f"{bot}:{conversation}"


class RedisJournal:
    """Events, outbox messages, dedupe keys, state and dead letters of the Celery inbox, in one Redis."""

    def __init__(self, client: redis.Redis, *, prefix: str = "bots:", dedupe_ttl: int = 36 * 3600,
                 lease_seconds: float = 30) -> None:
        self.redis = client
        self.prefix = prefix
        self.dedupe_ttl = int(dedupe_ttl)
        self.lease_ms = int(lease_seconds * 1000)
        register = client.register_script
        self._append, self._take, self._finish = register(_APPEND), register(_TAKE), register(_FINISH)
        self._retry, self._bury, self._replay = register(_RETRY), register(_BURY), register(_REPLAY)
        self._idle, self._release, self._renew = register(_IDLE), register(_RELEASE), register(_RENEW)

    def append(self, bot: str, items: Sequence[Item]) -> list[str]:
        """Record ``items`` and their dedupe keys at once, dropping repeats; returns the lanes that were empty
        and got new events, which need a worker woken. A lane that already held events needs none: the
        worker holding it goes on to the new one, or a task for it is queued, or the sweeper finds it."""
        keys = [self._key("seq"), self._key("pending:event"), self._key("lanes:event")]
        args: list[str | int] = [self.prefix, self.dedupe_ttl]
        for item in items:
            lane = lane_name(bot, item.conversation_key)
            keys += [self._key(f"dedupe:{bot}:{item.dedupe_key}"), self._lane("event", lane)]
            args += [lane, bot, item.conversation_key, json.dumps(item.to_dict(), separators=(",", ":"))]
        return [_text(lane) for lane in self._append(keys, args)]

    def take(self, kind: str, lane: str, owner: str) -> Claim:
        """Lock ``lane`` for ``owner`` (or keep its lock) and claim its head, counting an attempt."""
        found = [_text(part) for part in self._take(
            [self._lane(kind, lane), self._lock(kind, lane), self._key(f"pending:{kind}")],
            [self.prefix, kind, owner, self.lease_ms])]
        if found[0] == "take":
            id, attempts, bot, conversation, body, key = found[1:]
            return Claim("take", id, int(attempts), bot, conversation, body, key)
        if found[0] == "wait":
            return Claim("wait", wait=float(found[1]))
        return Claim(found[0])

    def finish(self, kind: str, lane: str, owner: str, claim: Claim, effects: Sequence[Effect] = (),
               state: State | None = None) -> bool:
        """Pop the claimed item, queue its effects and save its state, all at once; False if the lock was lost."""
        raw_state = dumps(state) if state is not None and state.changed else None
        args: list[str | int] = [self.prefix, kind, owner, claim.id, "1" if raw_state is not None else "0",
                                 raw_state or "", claim.bot, claim.conversation, lane]
        for n, effect in enumerate(effects):
            args += [json.dumps(effect.to_dict(), separators=(",", ":")),
                     f"{claim.bot}:{claim.id}:{n}:{uuid.uuid4().hex[:12]}"]
        keys = [self._lane(kind, lane), self._lock(kind, lane), self._key(f"pending:{kind}"),
                self._key(f"state:{claim.bot}:{claim.conversation}"), self._key("seq"),
                self._lane("message", lane), self._key("lanes:message"), self._key("pending:message")]
        return bool(self._finish(keys, args))

    def retry(self, kind: str, lane: str, owner: str, claim: Claim, error: str, delay: float) -> bool:
        """Keep the item at the head, due again in ``delay`` seconds, and let the lane go."""
        return bool(self._retry([self._lane(kind, lane), self._lock(kind, lane)],
                                [self.prefix, kind, owner, claim.id, error[:MAX_ERROR], delay]))

    def bury(self, kind: str, lane: str, owner: str, claim: Claim, error: str) -> bool:
        """Park the item among the dead letters, with why; the lane goes on with the next one."""
        return bool(self._bury([self._lane(kind, lane), self._lock(kind, lane), self._key(f"pending:{kind}"),
                                self._key("dead")], [self.prefix, kind, owner, claim.id, error[:MAX_ERROR]]))

    def release(self, kind: str, lane: str, owner: str) -> None:
        """Let ``lane`` go if ``owner`` still holds it."""
        self._release([self._lock(kind, lane)], [owner])

    def renew(self, kind: str, lane: str, owner: str) -> bool:
        """Extend ``owner``'s lock of ``lane`` by a lease period; False if it was lost."""
        return bool(self._renew([self._lock(kind, lane)], [owner, self.lease_ms]))

    def load_state(self, bot: str, conversation: str) -> State:
        return State.loads(_text(self.redis.get(self._key(f"state:{bot}:{conversation}"))))

    def idle_lanes(self, kind: str, batch: int = 200) -> list[str]:
        """Lanes with a due head and nobody holding them (a lost task, an expired lock, a retry now due);
        forgets lanes found empty."""
        idle: list[str] = []
        lanes_key = self._key(f"lanes:{kind}")
        names: list[str] = []
        for name in self.redis.sscan_iter(lanes_key, count=batch):
            names.append(_text(name))
            if len(names) >= batch:
                idle += [_text(lane) for lane in self._idle([lanes_key], [self.prefix, kind, *names])]
                names = []
        if names:
            idle += [_text(lane) for lane in self._idle([lanes_key], [self.prefix, kind, *names])]
        return idle

    def dead_letters(self, limit: int = 10_000) -> list[dict]:
        """Parked events and messages, oldest first, with their error; no message content."""
        letters = [_text(letter) for letter in self.redis.zrange(self._key("dead"), 0, limit - 1)]
        pipe = self.redis.pipeline(transaction=False)
        for letter in letters:
            pipe.hmget(self._key(letter), "bot", "conversation", "body", "attempts", "error", "failed_at")
        found = zip(letters, pipe.execute(), strict=True)
        return [_letter(letter, [_text(v) for v in values]) for letter, values in found if values[0] is not None]

    def replay(self, letter_id: str | None = None) -> list[tuple[str, str]]:
        """Put one dead letter (``event:12``, ``message:7``) or, with None, all back at the head of their lane;
        returns the (kind, lane) of each."""
        if letter_id is not None:
            kind, _, number = letter_id.partition(":")
            if kind not in KINDS or not number.isdigit():
                raise ValueError(f"a dead letter id looks like event:12 or message:7, got {letter_id!r}")
        found = [_text(part) for part in self._replay([self._key("dead")], [self.prefix, letter_id or ""])]
        return list(zip(found[0::2], found[1::2], strict=True))

    def counts(self) -> dict[str, int]:
        """Events waiting and messages waiting."""
        events, messages = self.redis.mget(self._key("pending:event"), self._key("pending:message"))
        return {"events": int(events or 0), "messages": int(messages or 0)}

    def _key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def _lane(self, kind: str, lane: str) -> str:
        return f"{self.prefix}lane:{kind}:{lane}"

    def _lock(self, kind: str, lane: str) -> str:
        return f"{self.prefix}lock:{kind}:{lane}"


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def _letter(letter: str, values: list) -> dict:
    bot, conversation, body, attempts, error, failed_at = values
    kind, _, _ = letter.partition(":")
    data = json.loads(body)
    what = f"{data['object']} {data['kind']} item" if kind == "event" else Effect.from_dict(data).describe()
    return {"id": letter, "kind": kind, "bot": bot, "conversation": conversation, "what": what,
            "attempts": int(attempts or 0), "error": error, "failed_at": float(failed_at) if failed_at else None}
