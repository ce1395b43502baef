"""The delivery worker: route the outbox, claim due notifications, send them, record.

``gateway serve`` runs one inside the web process (its lifespan); ``gateway worker`` runs one
as a process of its own. Any number may run against one PostgreSQL database: the router runs
in one of them at a time and claims use ``SKIP LOCKED`` (queue.py). When there is nothing to
do a worker sleeps ``delivery_poll_seconds``, unless a commit wakes it first: commits in its
own process call it directly, and on PostgreSQL it LISTENs for the NOTIFY every transaction
with outbox rows sends (wakeup.py), so the poll is only a fallback. Database work runs in a
thread so the event loop keeps sending while it waits.

Sends run as independent tasks (at most ``delivery_batch_size`` at once): a worker claims more
work as soon as any send finishes, so a receiver that hangs until the timeout occupies one
slot, never the whole worker -- one slow destination does not slow the others.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from gateway.config import Settings
from gateway.coordination.runner import WorkflowRunner, workflow_runner
from gateway.store.db import Database
from gateway.sync import messages, push, queue, wakeup
from gateway.sync.careteam import DAVINCI, REST_WRITE
from gateway.sync.clients import Clients
from gateway.sync.delivery_audit import audited
from gateway.sync.notifications import build
from gateway.sync.partner_auth import TokenCache
from gateway.sync.pull import Puller
from gateway.sync.retry import ErrorKind, RetryPolicy
from gateway.sync.router import Router
from gateway.sync.transport import send

log = logging.getLogger(__name__)


def policy_from(settings: Settings) -> RetryPolicy:
    return RetryPolicy(base=settings.delivery_backoff_base_seconds,
                       max_delay=settings.delivery_backoff_max_seconds,
                       give_up_after=settings.delivery_give_up_seconds,
                       client_error_attempts=settings.delivery_client_error_attempts)


class DeliveryWorker:
    """Routes and delivers until stopped."""

    def __init__(self, db: Database, settings: Settings, *,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.db = db
        self.settings = settings
        self.base_url = (settings.base_url or "").rstrip("/")
        self.policy = policy_from(settings)
        self.router = Router(db, base_url=self.base_url,
                             retention_seconds=settings.event_retention_days * 86400)
        self.transport = transport
        self.workflows: WorkflowRunner = workflow_runner(db, settings)
        # A write to a partner may fetch an OAuth2 token first: the lease outlasts both
        # requests, so no other worker claims the delivery while it is under way.
        self.lease = max(settings.delivery_lease_seconds,
                         2 * settings.delivery_timeout_seconds + 1)
        self.system = settings.own_identifier_system
        self.tokens = TokenCache()
        self.puller = Puller(db, self.system, self.tokens, base_url=self.base_url,
                             interval=settings.partner_pull_seconds,
                             timeout=settings.delivery_timeout_seconds)
        self._pulling: asyncio.Task[int] | None = None
        self._next_pull = 0.0
        self.recorder = _Recorder(db, self.policy, self.base_url)
        self._sending: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._route_due = True  # the first pass looks at everything
        self._routed_at = 0.0  # and then at least once per poll interval, even when busy
        self.clients: Clients  # opened by run()

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set; a failing pass is logged and retried after a pause.
        Sends under way when it stops are finished (or their leases lapse)."""
        self.clients = Clients(transport=self.transport,
                               connections=self.settings.delivery_connections_per_destination)
        client = self.clients.general
        async with self._woken_by_commits(stop):
            try:
                while not stop.is_set():
                    self._wake.clear()  # a wake-up from here on ends the next idle wait
                    try:
                        busy = await self.run_once(client)
                    except Exception:
                        log.exception("delivery pass failed; retrying")
                        self._route_due = True
                        busy = 0
                    if not busy:
                        await self._idle(stop)
            finally:
                await asyncio.gather(*self._sending, return_exceptions=True)
                if self._pulling is not None:
                    await asyncio.gather(self._pulling, return_exceptions=True)
                await self.clients.aclose()

    @asynccontextmanager
    async def _woken_by_commits(self, stop: asyncio.Event) -> AsyncIterator[None]:
        """Wake up as soon as a change is committed instead of at the next poll: directly
        for commits in this process (the in-process worker), and by LISTEN for commits in
        any process on PostgreSQL (wakeup.py)."""
        loop = asyncio.get_running_loop()

        def from_any_thread() -> None:
            loop.call_soon_threadsafe(self._nudge)

        self.db.outbox_listeners.append(from_any_thread)
        listening = None if self.db.is_sqlite else asyncio.create_task(
            wakeup.listen(self.db.url, self._nudge, stop), name="outbox-listen")
        try:
            yield
        finally:
            self.db.outbox_listeners.remove(from_any_thread)
            if listening is not None:
                listening.cancel()
                await asyncio.gather(listening, return_exceptions=True)

    def _nudge(self) -> None:
        """A commit has completed (db.py tells listeners after COMMIT), so the next pass
        sees its rows."""
        self._route_due = True
        self._wake.set()

    async def _idle(self, stop: asyncio.Event) -> None:
        """Sleep one poll interval, or less if stopped, woken by a commit, or a send
        finished."""
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        done, _ = await asyncio.wait(waits, timeout=self.settings.delivery_poll_seconds,
                                     return_when=asyncio.FIRST_COMPLETED)
        if not done:  # the poll: look at everything (commits elsewhere, retries now due)
            self._route_due = True
        for waiting in waits:
            waiting.cancel()
        await asyncio.gather(*waits, return_exceptions=True)

    async def run_once(self, client: httpx.AsyncClient) -> int:
        """One pass: when a commit or the poll asked for it, apply the transition workflows,
        route the outbox, queue heartbeats and apply retention; then start sends for free
        slots. The number of rows routed plus sends started.

        A pass that only follows finished sends (their records committed, which may have
        made the next notification of a patient due) skips the routing part: claiming is
        all that can have changed, so a busy worker makes one claim per group of records
        rather than a full pass per notification. A worker kept busy still routes at least
        once per poll interval (a missed NOTIFY, heartbeats, pulls)."""
        routed = 0
        now = time.monotonic()
        if self._route_due or now - self._routed_at >= self.settings.delivery_poll_seconds:
            self._route_due, self._routed_at = False, now
            try:
                await asyncio.to_thread(self.workflows.run_until_idle)
                await asyncio.to_thread(self.workflows.sweep_if_due)
            except Exception:  # workflows retry next pass; notifications must not wait
                log.exception("transition workflows failed; routing and delivery go on")
            routed = await asyncio.to_thread(self.router.run_until_idle)
            await asyncio.to_thread(queue.queue_heartbeats, self.db)
            await asyncio.to_thread(self.router.prune_if_due)
            self._start_pull_if_due(client)
            await self.clients.close_idle()
        free = self.settings.delivery_batch_size - len(self._sending)
        jobs = await asyncio.to_thread(queue.claim, self.db, free, self.lease) if free else []
        for job in jobs:
            task = asyncio.create_task(self._guarded(job))
            self._sending.add(task)
            task.add_done_callback(self._done)
        return routed + len(jobs)

    def _start_pull_if_due(self, client: httpx.AsyncClient) -> None:
        """Pull partners (pull.py) in the background, at most once per pull interval, so
        slow partners never hold up deliveries."""
        now = time.monotonic()
        if now < self._next_pull or (self._pulling is not None and not self._pulling.done()):
            return
        self._next_pull = now + min(self.settings.partner_pull_seconds, 5.0)
        self._pulling = asyncio.create_task(self.puller.pull_due(client), name="partner-pull")

    def _done(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        self._wake.set()

    async def _guarded(self, job: queue.Job) -> None:
        client = self.clients.acquire(job.sid)
        try:
            await self._deliver(client, job)
        except Exception:  # not recorded: its lease lapses and it is sent again
            log.exception("delivery %s failed to record", job.delivery_id)
        finally:
            self.clients.release(job.sid)

    async def _deliver(self, client: httpx.AsyncClient, job: queue.Job) -> None:
        try:
            outcome = await self._attempt(client, job)
        except Exception as error:  # ours to fix: recorded and retried long
            log.exception("building notification %s failed", job.delivery_id)
            outcome = queue.Outcome(time.time(), 0.0, job.endpoint, None,
                                    f"{type(error).__name__}: {error}", ErrorKind.INTERNAL)
        if self.settings.auth == "smart":
            audited(self.db, self.base_url, job, outcome)
        if job.kind == "handshake":
            status: str | None = await asyncio.to_thread(
                queue.record, self.db, job, outcome, self.policy, self.base_url)
        else:
            status = await self.recorder.record(job, outcome)
        log.debug("notification %s to %s -> %s (%s)", job.delivery_id, outcome.url,
                  outcome.http_status or outcome.error, status)

    async def _attempt(self, client: httpx.AsyncClient, job: queue.Job) -> queue.Outcome:
        """Build and send one notification in the destination's format: a FHIR write
        (push.py), a Da Vinci message (messages.py), or a rest-hook/Backport request."""
        timeout = job.timeout_seconds or self.settings.delivery_timeout_seconds
        secrets = self.settings.delivery_signing_secrets
        if job.kind == "event" and job.content == REST_WRITE:
            write = await asyncio.to_thread(push.prepare, self.db, job, self.system, secrets)
            return await push.send_write(client, write, self.tokens, timeout)
        if job.kind == "event" and job.content == DAVINCI:
            outgoing = await asyncio.to_thread(messages.request, self.db, job, self.base_url,
                                               self.system, secrets)
        else:
            outgoing = build(job, secrets, base=self.base_url)
        return await send(client, outgoing, timeout)


class _Recorder:
    """Group commit for delivery records: attempts that finish while a record transaction
    is under way are recorded together in the next one (``queue.record_many``)."""

    def __init__(self, db: Database, policy: RetryPolicy, base_url: str) -> None:
        self.db, self.policy, self.base_url = db, policy, base_url
        self._waiting: list[tuple[queue.Job, queue.Outcome, asyncio.Future[str | None]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def record(self, job: queue.Job, outcome: queue.Outcome) -> str | None:
        """The delivery's new status once recorded (None: not recorded, sent again)."""
        done: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((job, outcome, done))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush(), name="delivery-records")
        return await done

    async def _flush(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                statuses = await asyncio.to_thread(
                    queue.record_many, self.db, [(j, o) for j, o, _ in batch], self.policy,
                    self.base_url)
            except Exception as error:  # none recorded: their leases lapse
                for *_, done in batch:
                    done.set_exception(error)
                continue
            for (*_, done), status in zip(batch, statuses, strict=True):
                done.set_result(status)


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    """A worker with its own database engine (``gateway worker``)."""
    database = Database(settings.database_url, pool_size=settings.db_pool_size)
    try:
        await DeliveryWorker(database, settings).run(stop)
    finally:
        database.dispose()


@asynccontextmanager
async def in_process_worker(db: Database, settings: Settings) -> AsyncIterator[None]:
    """Run a worker beside the web app for the app's lifetime (``gateway serve`` default,
    so the one-command setup delivers); off with ``GATEWAY_DELIVERY_IN_PROCESS=false``."""
    if not settings.delivery_in_process:
        yield
        return
    stop = asyncio.Event()
    task = asyncio.create_task(DeliveryWorker(db, settings).run(stop), name="delivery-worker")
    try:
        yield
    finally:
        stop.set()
        await task
