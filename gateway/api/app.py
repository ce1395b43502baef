"""The application factory."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from gateway import __version__
from gateway.api import auth, errors, ingest_plans, login, measures, pages, security
from gateway.api.fhir import router as fhir_router
from gateway.api.hl7v2 import router as hl7v2_router
from gateway.api.media import ContentNegotiation
from gateway.api.preparation import Preparer
from gateway.api.sync import operations as subscription_operations
from gateway.api.sync import router as sync_router
from gateway.api.timeline import router as timeline_router
from gateway.config import Settings, get_settings
from gateway.fhir.searchparams import registry
from gateway.rest.interactions import FhirService, Limits
from gateway.store.db import Database
from gateway.store.migrate import upgrade
from gateway.sync.worker import in_process_worker

log = logging.getLogger("gateway")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the gateway: migrate the database, compile search parameters, mount routers."""
    settings = settings or get_settings()
    database = Database(settings.database_url, pool_size=settings.db_pool_size)

    preparer = Preparer(settings.prepare_processes)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # As many request threads as pooled connections: more threads would only open and
        # close overflow connections under load (PostgreSQL forks a backend for each).
        to_thread.current_default_thread_limiter().total_tokens = settings.db_pool_size
        await run_in_threadpool(preparer.start)
        # Everything built so far (models, search parameters, mappings) lives as long as
        # the process: keep it out of the cyclic garbage collector's full passes, which
        # otherwise scan it all and stall requests for tens of milliseconds.
        if settings.freeze_gc:
            gc.collect()
            gc.freeze()
        async with in_process_worker(database, settings):  # sync: delivers notifications
            yield
        await run_in_threadpool(app.state.security.audit.drain)
        preparer.stop()
        app.state.fhir.writer.stop()
        database.dispose()

    app = FastAPI(
        title="FHIR care-coordination gateway",
        version=__version__,
        description="FHIR R4 store, REST API and sync for care plans, care teams and "
                    "care transitions.",
        lifespan=lifespan,
    )
    upgrade(database)
    registry()
    app.state.settings = settings
    app.state.database = database
    app.state.preparer = preparer
    app.state.fhir = FhirService(database, Limits(settings.default_page_size,
                                                  settings.max_page_size,
                                                  settings.max_include_results))
    errors.install(app)
    app.add_middleware(ContentNegotiation)
    security.install(app, security.build(settings, database, app.state.fhir.writer))
    # Routes match in order: the FHIR router first (reads, searches and creates are most of
    # the traffic). Its type and id segments never match ``$operation`` or ``_history``, so
    # the operation routes below are still reached.
    app.include_router(fhir_router)
    app.include_router(subscription_operations)
    app.include_router(hl7v2_router)
    app.include_router(sync_router)
    app.include_router(ingest_plans.router)
    app.include_router(measures.router)
    app.include_router(timeline_router)
    app.include_router(auth.router)
    app.include_router(login.router)
    app.include_router(pages.router)
    app.mount("/static", pages.static, name="static")
    log.info("gateway ready on %s", database.url.render_as_string(hide_password=True))
    return app
