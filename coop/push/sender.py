"""The push sender: a bounded queue and one worker that delivers each push to its account's
devices, so that nothing that pushes (the matcher above all) ever waits for a push service.

`submit` never blocks: a full queue drops the push and counts it. The queue hands out the most
urgent first, so an offer never waits behind a vote's notices to every member. Deliveries run
concurrently (at most `COOP_PUSH_CONCURRENCY` devices at once), each bounded by the message's
TTL: a push service that answers `429` or `5xx`, times out or cannot be reached is tried again
after a backoff (its `Retry-After` when it gives one) until the TTL runs out, then the push is
dropped and counted as expired; `404`/`410` (the subscription is gone) deletes the device; any
other refusal is counted as failed and logged (a fault of ours or of the configuration:
retrying would be refused the same way). The database away while looking up devices is an
outage: the push is dropped and counted, never retried past its TTL.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from coop.auth import Role
from coop.db import utcnow
from coop.errors import dependency_down
from coop.outages import Outage
from coop.push import message, service
from coop.push.message import Urgency
from coop.push.service import Kind, Target
from coop.push.vapid import VapidKey
from coop.tasks import TaskHandle, TaskRunner

logger = logging.getLogger("coop.push")

Clock = Callable[[], datetime]
# Waits between tries of one delivery (then the last, repeated), unless the push service says.
RETRY_DELAYS_S = (0.5, 1.0, 2.0, 5.0, 15.0, 30.0)
# One request to a push service; never longer than what is left of the message's TTL.
REQUEST_TIMEOUT_S = 10.0
DRAIN_S = 2.0
# The order pushes leave the queue in: `high` first.
_RANK = {Urgency.high: 0, Urgency.normal: 1, Urgency.low: 2, Urgency.very_low: 3}
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
GONE_STATUSES = frozenset({404, 410})


@dataclass(frozen=True)
class Push:
    """One message for one account's devices."""

    role: Role
    subject_id: uuid.UUID
    kind: Kind
    data: dict[str, Any]
    ttl_s: int
    urgency: Urgency = Urgency.normal
    topic: str | None = None
    # When it was submitted, on the event loop's monotonic clock (for the TTL and the delay).
    submitted_at: float = field(default=0.0, compare=False)


class _Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.sent = Counter(
            "coop_push_sent", "Pushes a push service accepted (one per device)", registry=registry
        )
        self.failed = Counter(
            "coop_push_failed",
            "Pushes a push service refused for good (not 404/410), or that found the database away",
            registry=registry,
        )
        self.expired = Counter(
            "coop_push_expired",
            "Pushes dropped when their TTL ran out before a push service took them",
            registry=registry,
        )
        self.dropped = Counter(
            "coop_push_dropped",
            "Pushes dropped at once because the sender's queue was full",
            registry=registry,
        )
        self.removed = Counter(
            "coop_push_subscriptions_removed",
            "Devices deleted because their push service said the subscription is gone",
            registry=registry,
        )
        self.request_seconds = Histogram(
            "coop_push_request_seconds",
            "One request to a push service, whatever it answered",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=registry,
        )
        self.delivery_seconds = Histogram(
            "coop_push_delivery_seconds",
            "From a push's submission to its push service's acceptance, retries included",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
            registry=registry,
        )
        self.queued = Gauge(
            "coop_push_queued", "Pushes waiting in the sender's queue", registry=registry
        )


# One set of counters per registry (an app's): a second lifespan of the same app (a test that
# serves an app already started) counts into the same ones instead of registering twice.
_METRICS: weakref.WeakKeyDictionary[CollectorRegistry, _Metrics] = weakref.WeakKeyDictionary()


def _metrics_of(registry: CollectorRegistry) -> _Metrics:
    metrics = _METRICS.get(registry)
    if metrics is None:
        metrics = _METRICS[registry] = _Metrics(registry)
    return metrics


class PushSender:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        vapid: VapidKey,
        *,
        queue_size: int,
        concurrency: int,
        tasks: TaskRunner,
        registry: CollectorRegistry | None = None,
        clock: Clock = utcnow,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self.vapid = vapid
        self._tasks = tasks
        self._clock = clock
        # The most urgent first (an offer before a vote's hundreds of notices), then in order.
        self._queue: asyncio.PriorityQueue[tuple[int, int, Push]] = asyncio.PriorityQueue(
            maxsize=queue_size
        )
        self._submitted = 0
        self._slots = asyncio.Semaphore(concurrency)
        self._deliveries: set[asyncio.Task[None]] = set()
        self._client = client or httpx.AsyncClient(
            timeout=REQUEST_TIMEOUT_S, follow_redirects=False, trust_env=False
        )
        self._worker: TaskHandle | None = None
        self._outage = Outage(logger, "push deliveries (devices unreadable)")
        self.metrics = _metrics_of(registry if registry is not None else CollectorRegistry())
        self.metrics.queued.set_function(self._queue.qsize)

    def start(self) -> None:
        if self._worker is None:
            self._worker = self._tasks.forever("push-sender", self._run)

    def submit(self, push: Push) -> bool:
        """Queues a push; never waits. False: the queue was full and the push is dropped."""
        stamped = Push(
            push.role,
            push.subject_id,
            push.kind,
            push.data,
            push.ttl_s,
            push.urgency,
            push.topic,
            submitted_at=asyncio.get_running_loop().time(),
        )
        try:
            self._submitted += 1
            self._queue.put_nowait((_RANK[push.urgency], self._submitted, stamped))
        except asyncio.QueueFull:
            self.metrics.dropped.inc()
            return False
        return True

    async def _run(self) -> None:
        while True:
            _, _, push = await self._queue.get()
            await self._slots.acquire()
            task = asyncio.create_task(self._deliver(push), name="push-delivery")
            self._deliveries.add(task)
            task.add_done_callback(self._delivered)

    def _delivered(self, task: asyncio.Task[None]) -> None:
        self._deliveries.discard(task)
        self._slots.release()
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            assert isinstance(exc, Exception)
            self._tasks.failed("push-sender", exc)

    async def _deliver(self, push: Push) -> None:
        try:
            async with self._sessionmaker() as session:
                targets = await service.targets(
                    session=session,
                    role=push.role,
                    subject_id=push.subject_id,
                    kind=push.kind,
                    now=self._clock(),
                )
        except Exception as exc:
            dependency = dependency_down(exc)
            if dependency is None:
                raise
            self._outage.began(dependency, exc)
            self.metrics.failed.inc()
            return
        self._outage.ended()
        if not targets:
            return
        body = message.encode_payload(push.data)
        results = await asyncio.gather(*(self._send(push, body, target) for target in targets))
        delivered = [target.device_id for target, ok in zip(targets, results, strict=True) if ok]
        gone = [target.device_id for target, ok in zip(targets, results, strict=True) if ok is None]
        if delivered or gone:
            await self._record(delivered, gone)

    async def _send(self, push: Push, payload: bytes, target: Target) -> bool | None:
        """Delivers to one device: True once accepted, None if the subscription is gone, False
        if given up."""
        loop = asyncio.get_running_loop()
        deadline = push.submitted_at + push.ttl_s
        body = message.encrypt(payload, target.subscription)
        endpoint = target.subscription.endpoint
        attempt = 0
        while True:
            left_s = deadline - loop.time()
            if left_s <= 0:
                self.metrics.expired.inc()
                return False
            headers = message.headers(
                authorization=self.vapid.authorization(endpoint, self._clock()),
                ttl_s=int(left_s),
                urgency=push.urgency,
                topic=push.topic,
            )
            started = loop.time()
            retry_after_s: float | None = None
            try:
                response = await self._client.post(
                    endpoint, content=body, headers=headers, timeout=min(REQUEST_TIMEOUT_S, left_s)
                )
            except httpx.HTTPError as exc:
                logger.debug("push to %s failed: %r", _origin(endpoint), exc)
            else:
                self.metrics.request_seconds.observe(loop.time() - started)
                code = response.status_code
                if 200 <= code < 300:
                    self.metrics.sent.inc()
                    self.metrics.delivery_seconds.observe(loop.time() - push.submitted_at)
                    return True
                if code in GONE_STATUSES:
                    self.metrics.removed.inc()
                    return None
                if code not in RETRIED_STATUSES:
                    self.metrics.failed.inc()
                    logger.warning(
                        "a push service refused a push: %s %s",
                        code,
                        response.text[:200],
                        extra={"push_service": _origin(endpoint)},
                    )
                    return False
                retry_after_s = _retry_after_s(response.headers.get("Retry-After"))
            delay_s = retry_after_s
            if delay_s is None:
                delay_s = RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)]
            attempt += 1
            if loop.time() + delay_s >= deadline:
                self.metrics.expired.inc()
                return False
            await asyncio.sleep(delay_s)

    async def _record(self, delivered: list[uuid.UUID], gone: list[uuid.UUID]) -> None:
        try:
            async with self._sessionmaker() as session:
                await service.pushed(session=session, device_ids=delivered, now=self._clock())
                for device_id in gone:
                    await service.forget_device(session=session, device_id=device_id)
                await session.commit()
        except Exception as exc:
            dependency = dependency_down(exc)
            if dependency is None:
                raise
            # The dates wait for the next push; a gone device answers 410 again next time.
            self._outage.began(dependency, exc)

    async def idle(self) -> None:
        """Waits until the queue is empty and no delivery is in flight (tests, shutdown)."""
        while self._queue.qsize() or self._deliveries:
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stops taking pushes, lets those in flight finish for up to `DRAIN_S`, then closes."""
        if self._worker is not None:
            await self._worker.stop()
            self._worker = None
        if self._deliveries:
            _, pending = await asyncio.wait(set(self._deliveries), timeout=DRAIN_S)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        await self._client.aclose()


def _retry_after_s(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: the usual backoff will do


def _origin(endpoint: str) -> str:
    return httpx.URL(endpoint).host


# The process's sender, by its app's Redis client (as `coop.pubsub.lost_frames` is): what a
# domain that publishes a frame reaches to push the same news to a phone whose socket is gone.
_SENDERS: weakref.WeakKeyDictionary[Any, PushSender] = weakref.WeakKeyDictionary()


def install(redis: Any, sender: PushSender) -> None:
    _SENDERS[redis] = sender


def uninstall(redis: Any) -> None:
    _SENDERS.pop(redis, None)


def sender_for(redis: Any) -> PushSender | None:
    return _SENDERS.get(redis)


def notify(redis: Any, push: Push) -> bool:
    """Submits a push through the process's sender, if it has one; never waits."""
    sender = sender_for(redis)
    return sender.submit(push) if sender is not None else False
