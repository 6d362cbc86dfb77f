"""The process's hub: which sockets are here, and one Redis listener that feeds them.

A worker keeps only its own sockets. Anything for a rider or driver is published on Redis
(`coop.pubsub`), on the channel of that rider or driver; the hub subscribes to the
channels of the sockets it holds and hands each message to their send queues. So N workers
behind any load balancer behave as one.

Each socket has a bounded send queue: a client that reads too slowly fills it and is dropped
(close code 4008) instead of making the worker hold an ever-growing backlog.

Every frame a socket gets carries `seq`, 1 for the `hello` and one more for each frame after it,
so a client can tell it missed one. When frames may have been lost on the way (the hub's Redis
connection broke, or stopped answering its pings, or a publisher could not reach Redis and asks
for a resync once it can), the sockets concerned are closed with 1012: the clients reconnect and
get their current state. The listener reconnects by itself and restores every subscription.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from coop.errors import dependency_down
from coop.outages import Outage
from coop.pubsub import (
    BROADCAST_CHANNEL,
    CHANNEL_PREFIX,
    CONTROL_CHANNEL,
    RESYNC,
    answer_flush,
    flush_reply_key,
    lost_frames,
    publish_text,
)
from coop.redis_client import Redis
from coop.tasks import TaskHandle, TaskRunner

logger = logging.getLogger("coop.realtime")

CLOSE_TOO_SLOW = 4008
CLOSE_TOKEN_REVOKED = 4001  # the token was revoked (or expired) while the socket was open
CLOSE_REPLACED = 4009  # the account opened more sockets than allowed; this was the oldest
CLOSE_RESYNC = 1012
RESYNC_REASON = "frames may have been lost; reconnect for your current state"
SUBSCRIBE_TIMEOUT_S = 5.0
RECONNECT_DELAY_S = (0.1, 0.5, 1.0, 2.0, 5.0)
# The listener pings Redis this often on its subscription connection; with no answer of any
# kind for LIVENESS_S, and no answer to a PING on another connection within PROBE_S either,
# Redis is taken as lost (a paused or unreachable server sends nothing).
HEARTBEAT_S = 1.0
LIVENESS_S = 4.0
PROBE_S = 2.0


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, TimeoutError)


def _raise_if_cancelled() -> None:
    """redis-py can swallow a cancellation that lands while it connects (the task stays marked
    as cancelling but runs on); the listener checks for it itself so that it always stops."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class SendQueue:
    """A socket's bounded queue of frames, for its one consumer (the send loop).

    The part of `asyncio.Queue` a socket uses, without its three deques and its event: about
    3 KiB less per socket, and fewer objects for the garbage collector to walk, at 10,000
    sockets (docs/performance.md, "Connections").
    """

    __slots__ = ("maxsize", "_items", "_waiter")

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._items: list[str] = []
        self._waiter: asyncio.Future[None] | None = None

    def __len__(self) -> int:
        return len(self._items)

    def put_nowait(self, item: str) -> None:
        if len(self._items) >= self.maxsize:
            raise asyncio.QueueFull
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> str:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)


class _Flag:
    """Set once, never cleared: `asyncio.Event`'s `is_set`/`set`, without its waiters' deque."""

    __slots__ = ("_set",)

    def __init__(self) -> None:
        self._set = False

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True


class Connection:
    """One socket's outbound side: a bounded queue, and the reason it must close, if any.

    A new connection holds what the hub delivers until `release` has queued the client's current
    state first, so a frame published during the connect never arrives before an older snapshot.
    """

    def __init__(
        self, *, queue_size: int, label: str, connection_id: str = "", token_key: str = ""
    ) -> None:
        self.label = label
        self.id = connection_id or uuid.uuid4().hex
        self.token_key = token_key  # which token opened it (revoking the token closes it)
        self.queue = SendQueue(queue_size)
        self.closing = _Flag()  # awaited through `closed()`
        self.seq = 0  # the `seq` of the last frame queued
        self.close_code = 1000
        self.close_reason = ""
        self._held: list[str] | None = []
        self._closed: asyncio.Future[None] | None = None

    def push(self, text: str) -> bool:
        """Queues one frame; a full queue closes the connection instead of growing."""
        if self.closing.is_set():
            return False
        if self._held is not None:
            if len(self._held) >= self.queue.maxsize:
                self._overflow()
                return False
            self._held.append(text)
            return True
        if len(self.queue) >= self.queue.maxsize:
            self._overflow()
            return False
        self.seq += 1
        # Every frame is a JSON object: `{"seq":N,` then the rest of it.
        self.queue.put_nowait(f'{{"seq":{self.seq},{text[1:]}')
        return True

    def release(self, first: list[str]) -> None:
        """Queues `first` (the current state), then whatever arrived meanwhile, and goes live."""
        held, self._held = self._held or [], None
        for text in [*first, *held]:
            if not self.push(text):
                return

    def shut(self, code: int, reason: str) -> None:
        if not self.closing.is_set():
            self.close_code, self.close_reason = code, reason
            self.closing.set()
            if self._closed is not None and not self._closed.done():
                self._closed.set_result(None)

    def closed(self) -> asyncio.Future[None]:
        """A future done once the connection must close: awaited beside the socket's loops
        without a task of its own."""
        if self._closed is None:
            self._closed = asyncio.get_running_loop().create_future()
            if self.closing.is_set():
                self._closed.set_result(None)
        return self._closed

    def _overflow(self) -> None:
        self.shut(
            CLOSE_TOO_SLOW,
            f"too slow: {self.queue.maxsize} frames waiting; reconnect for the current state",
        )


TokenCheck = Callable[[list[str]], Awaitable[set[str]]]
"""Answers which of the given token keys are still valid (not revoked, not expired)."""


class Hub:
    """Local sockets by channel, and the Redis subscriptions that follow them."""

    def __init__(
        self,
        redis: Redis,
        still_valid: TokenCheck | None = None,
        *,
        tasks: TaskRunner | None = None,
    ) -> None:
        self._redis = redis
        # The listener runs on the app's runner (one of its own for a hub made alone, in tests).
        self._tasks = tasks if tasks is not None else TaskRunner()
        self._outage = Outage(logger, "realtime listener")
        # PostgreSQL or Redis away as the sockets of this process see it (session.py): logged
        # once, not once per socket or frame; ended by the next state a socket loads.
        self.outage = Outage(logger, "sockets")
        # After the listener lost Redis, revocations may have been missed: the tokens of the
        # local sockets are checked again, and those no longer valid are closed (4001).
        self._still_valid = still_valid
        self._recheck: asyncio.Task[None] | None = None
        self.lost = lost_frames(redis)  # what this worker's publishes could not hand to Redis
        self._local: dict[str, set[Connection]] = {}
        self._by_id: dict[str, Connection] = {}
        self._by_token: dict[str, set[Connection]] = {}
        self._subscribed: set[str] = set()
        self._confirmed: set[str] = set()
        self._in_flight: dict[str, collections.deque[list[asyncio.Future[None]]]] = {}
        self._early: dict[str, list[asyncio.Future[None]]] = {}
        self._pubsub: PubSub | None = None
        self._lock = asyncio.Lock()
        self._task: TaskHandle | None = None
        # Connection attempts since the listener was last subscribed on a live connection.
        self._failures = 0
        # The listener's own channel keeps the subscription connection open with no socket.
        self._own_channel = f"{CHANNEL_PREFIX}hub:{uuid.uuid4()}"
        self.delivered = 0
        self.dropped_slow = 0
        self.resynced = 0  # sockets closed with 1012 because frames for them may be lost
        self.redis_losses = 0  # times the subscription connection was lost
        self._alive_at = 0.0  # when Redis last said anything on the subscription connection
        self._own_confirmed = False
        self._ready: asyncio.Future[None] | None = None
        # Flushes this process's buffered positions (the composition root fills it in).
        self.flush_positions: Callable[[], Awaitable[object]] | None = None
        self._flushes: set[asyncio.Task[None]] = set()

    @property
    def connections(self) -> int:
        return sum(len(connections) for connections in self._local.values())

    @property
    def connected(self) -> bool:
        """Subscribed on a Redis connection the listener has not given up on."""
        return self._pubsub is not None and self._own_confirmed

    def resync(self, channel: str | None = None) -> int:
        """Closes the sockets of `channel` (None: every socket here) with 1012, so their clients
        reconnect and get their current state. Answers how many were closed."""
        if channel is None:
            targets = [c for connections in self._local.values() for c in connections]
        else:
            targets = list(self._local.get(channel, ()))
        closed = 0
        for connection in targets:
            if not connection.closing.is_set():
                connection.shut(CLOSE_RESYNC, RESYNC_REASON)
                closed += 1
        self.resynced += closed
        return closed

    async def start(self) -> None:
        """Starts the listener; returns once it is subscribed (or after SUBSCRIBE_TIMEOUT_S if
        Redis is away: sockets are refused until it is back)."""
        self.lost.local = self.deliver
        if self._task is None:
            self._ready = asyncio.get_running_loop().create_future()
            self._task = self._tasks.forever("realtime-hub", self._listen)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._ready), SUBSCRIBE_TIMEOUT_S)

    async def stop(self) -> None:
        if self._task is not None:
            await self._task.stop()
            self._task = None
        if self._recheck is not None:
            self._recheck.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recheck
        await self._close_pubsub()
        if self.lost.local == self.deliver:
            self.lost.local = None
        for connections in self._local.values():
            for connection in connections:
                connection.shut(1012, "the server is restarting; reconnect")

    async def register(self, channel: str, connection: Connection) -> None:
        """Adds a socket; returns once Redis confirmed the channel's subscription (or after a
        timeout, if Redis is away: local delivery still works and the subscription follows)."""
        self._local.setdefault(channel, set()).add(connection)
        self._by_id[connection.id] = connection
        if connection.token_key:
            self._by_token.setdefault(connection.token_key, set()).add(connection)
        waiter = await self._reconcile(channel)
        if waiter is not None:
            try:
                await asyncio.wait_for(asyncio.shield(waiter), SUBSCRIBE_TIMEOUT_S)
            except TimeoutError:
                logger.warning("no subscription confirmation for %s yet", channel)

    async def unregister(self, channel: str, connection: Connection) -> None:
        connections = self._local.get(channel)
        if connections is not None:
            connections.discard(connection)
            if not connections:
                del self._local[channel]
        if self._by_id.get(connection.id) is connection:
            del self._by_id[connection.id]
        of_token = self._by_token.get(connection.token_key)
        if of_token is not None:
            of_token.discard(connection)
            if not of_token:
                del self._by_token[connection.token_key]
        await self._reconcile(channel)

    def local_token_keys(self) -> list[str]:
        return list(self._by_token)

    def close_token(self, token_key: str, reason: str) -> int:
        """Closes every local socket opened with the token (4001); answers how many."""
        connections = list(self._by_token.get(token_key, ()))
        for connection in connections:
            connection.shut(CLOSE_TOKEN_REVOKED, reason)
        return len(connections)

    def _control(self, data: str) -> None:
        """An order from any worker (`coop.pubsub`): close a socket, or a token's."""
        try:
            order = json.loads(data)
            if order.get("op") == "close":
                connection = self._by_id.get(str(order.get("connection")))
                if connection is not None:
                    connection.shut(int(order["code"]), str(order.get("reason", ""))[:120])
            elif order.get("op") == "revoke":
                self.close_token(str(order.get("token")), "token revoked")
        except (ValueError, TypeError, KeyError, AttributeError):
            logger.warning("ignored a malformed socket control message")

    def deliver(self, channel: str, text: str) -> int:
        """Hands one frame to every local socket of the channel; answers how many took it."""
        taken = 0
        for connection in list(self._local.get(channel, ())):
            if connection.push(text):
                taken += 1
            elif connection.close_code == CLOSE_TOO_SLOW:
                self.dropped_slow += 1
        self.delivered += taken
        return taken

    async def _reconcile(self, channel: str) -> asyncio.Future[None] | None:
        """Makes the Redis subscription match whether any local socket wants the channel.

        Under one lock, so a disconnect and a reconnect racing on one channel end subscribed.
        Answers a future resolved when Redis has confirmed the subscription, or None when it
        already had.
        """
        async with self._lock:
            wanted = channel in self._local
            pubsub = self._pubsub
            if pubsub is None:  # the listener subscribes everything wanted when it connects
                return self._early_waiter(channel) if wanted else None
            if wanted and channel in self._subscribed:
                if channel in self._confirmed:
                    return None
                return self._join_last_subscribe(channel)
            if not wanted and channel not in self._subscribed:
                return None
            try:
                if wanted:
                    waiter = self._new_subscribe(channel)
                    self._subscribed.add(channel)
                    await pubsub.subscribe(channel)
                    return waiter
                self._subscribed.discard(channel)
                self._confirmed.discard(channel)
                await pubsub.unsubscribe(channel)
            except Exception as exc:  # an outage: the listener reconnects and subscribes all
                if dependency_down(exc) is None:
                    self._tasks.failed("realtime-hub", exc)
                else:
                    logger.warning("subscription change for %s failed: Redis unreachable", channel)
            return None

    # Each SUBSCRIBE command gets exactly one confirmation per channel, in order: one entry of
    # waiters per command in flight, so a confirmation never answers for a later command.
    def _new_subscribe(
        self, channel: str, waiters: list[asyncio.Future[None]] | None = None
    ) -> asyncio.Future[None]:
        entry = waiters if waiters is not None else []
        self._in_flight.setdefault(channel, collections.deque()).append(entry)
        future = self._future()
        entry.append(future)
        return future

    def _join_last_subscribe(self, channel: str) -> asyncio.Future[None]:
        future = self._future()
        self._in_flight.setdefault(channel, collections.deque([[]]))[-1].append(future)
        return future

    def _early_waiter(self, channel: str) -> asyncio.Future[None]:
        future = self._future()
        self._early.setdefault(channel, []).append(future)
        return future

    @staticmethod
    def _future() -> asyncio.Future[None]:
        return asyncio.get_running_loop().create_future()

    def _confirm(self, channel: str) -> None:
        in_flight = self._in_flight.get(channel)
        if not in_flight:
            return
        for future in in_flight.popleft():
            if not future.done():
                future.set_result(None)
        if not in_flight:
            del self._in_flight[channel]
            if channel in self._subscribed:
                self._confirmed.add(channel)

    async def _connect(self) -> PubSub:
        pubsub = self._redis.pubsub()
        self._alive_at = time.monotonic()
        await pubsub.subscribe(self._own_channel, CONTROL_CHANNEL, BROADCAST_CHANNEL)
        async with self._lock:
            wanted = sorted(self._local)
            for channel in wanted:
                self._new_subscribe(channel, self._early.pop(channel, []))
            self._subscribed = set(wanted)
            if wanted:
                await pubsub.subscribe(*wanted)
            self._pubsub = pubsub
        return pubsub

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        self._own_confirmed = False
        self._subscribed = set()
        self._confirmed = set()
        # Whoever waits for a confirmation waits for the next connection's.
        for channel, in_flight in self._in_flight.items():
            for entry in in_flight:
                self._early.setdefault(channel, []).extend(entry)
        self._in_flight = {}
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def _listen(self) -> None:
        """Listens until cancelled; Redis away is an outage (logged once, retried after a delay),
        any other failure a bug, raised to the runner, which logs it and starts this again."""
        while True:
            lost_after_connect = False
            try:
                pubsub = await self._connect()
                if self._failures and self._still_valid is not None:
                    self._recheck = asyncio.create_task(self._recheck_tokens())
                pinged = time.monotonic()
                vouched = 0
                while True:
                    _raise_if_cancelled()
                    message = await pubsub.get_message(timeout=HEARTBEAT_S / 2)
                    now = time.monotonic()
                    if message is not None:
                        self._alive_at = now
                        vouched = 0
                        self._handle(message)
                        if self._own_confirmed and not lost_after_connect:
                            lost_after_connect = True
                            self._failures = 0
                            self._outage.ended()
                            await self._repair()
                    if now - self._alive_at > LIVENESS_S:
                        # Silence may be this process's own lag (a busy event loop reads the
                        # answer late): ask Redis on another connection before giving up on it.
                        # Silent while Redis answers elsewhere, three times: this connection
                        # is dead all the same.
                        vouched += 1
                        if vouched > 3 or not await self._answers():
                            raise TimeoutError(f"Redis silent for {now - self._alive_at:.1f} s")
                        self._alive_at = time.monotonic()
                    if now - pinged >= HEARTBEAT_S:
                        pinged = now
                        await asyncio.wait_for(pubsub.ping(), HEARTBEAT_S)
                        if lost_after_connect:
                            await self._repair()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = RECONNECT_DELAY_S[min(self._failures, len(RECONNECT_DELAY_S) - 1)]
                self._failures += 1
                closed = 0
                if lost_after_connect:
                    # Whatever was published meanwhile never reached these sockets.
                    self.redis_losses += 1
                    closed = self.resync()
                await self._close_pubsub()
                # Silence past the liveness limit, or a ping unanswered in time, is Redis's too.
                dependency = dependency_down(exc) or ("redis" if _is_timeout(exc) else None)
                if dependency is None:
                    raise
                if closed:
                    logger.warning("realtime listener: %d sockets told to reconnect", closed)
                self._outage.began(dependency, exc)
                await asyncio.sleep(delay)

    async def _recheck_tokens(self) -> None:
        assert self._still_valid is not None
        keys = self.local_token_keys()
        try:
            valid = await self._still_valid(keys)
        except Exception as exc:
            # Checked again after the next loss of Redis; a bug is the runner's to log and record.
            if dependency_down(exc) is None:
                self._tasks.failed("token-recheck", exc)
            else:
                logger.warning("could not check the tokens of open sockets again: unreachable")
            return
        for key in keys:
            if key not in valid:
                self.close_token(key, "token revoked")

    async def _answers(self) -> bool:
        """Whether Redis answers a PING on a connection other than the subscription's."""
        try:
            await asyncio.wait_for(self._redis.ping(), PROBE_S)
        except (RedisError, OSError):  # TimeoutError included
            return False
        return True

    async def _flush_for(self, reply_key: str) -> None:
        """Another worker completes a trip whose driver's socket is here: write the positions
        buffered here first, then say so."""
        try:
            if self.flush_positions is not None:
                await self.flush_positions()
            await answer_flush(self._redis, reply_key)
        except Exception as exc:
            # The asking worker waits a bounded time and completes the trip all the same.
            if dependency_down(exc) is None:
                self._tasks.failed("peer-flush", exc)
            else:
                logger.warning("a flush asked for by another worker failed: unreachable")

    async def _repair(self) -> None:
        """Once Redis answers again: a resync for every channel a publish here could not reach."""
        everything, channels = self.lost.take()
        if not everything and not channels:
            return
        try:
            if everything:
                await publish_text(self._redis, BROADCAST_CHANNEL, RESYNC)
            for channel in channels:
                await publish_text(self._redis, channel, RESYNC)
        except Exception:
            self.lost.put_back(everything, channels)
            raise
        logger.info("asked for a resync of %s", "every socket" if everything else channels)

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        channel = message.get("channel")
        if not isinstance(channel, str):
            return
        if kind == "message":
            data = message.get("data")
            if data == RESYNC:
                self.resync(None if channel == BROADCAST_CHANNEL else channel)
            elif isinstance(data, str):
                if channel == CONTROL_CHANNEL:
                    self._control(data)
                    return
                reply_key = flush_reply_key(data)
                if reply_key is None:
                    self.deliver(channel, data)
                else:
                    task = asyncio.create_task(self._flush_for(reply_key))
                    self._flushes.add(task)
                    task.add_done_callback(self._flushes.discard)
        elif kind == "subscribe":
            if channel == self._own_channel:
                self._own_confirmed = True
                if self._ready is not None and not self._ready.done():
                    self._ready.set_result(None)
            self._confirm(channel)
        elif kind == "unsubscribe":
            self._confirmed.discard(channel)
