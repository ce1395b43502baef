"""The ``gateway`` command line: serve, demo, migrate, load."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gateway.config import Settings, get_settings

if TYPE_CHECKING:
    from gateway.store.db import Database

app = typer.Typer(
    help="FHIR R4 care-coordination gateway. Settings come from GATEWAY_* environment "
         "variables (see README); the database is GATEWAY_DATABASE_URL "
         "(default: sqlite:///./gateway.db).",
    no_args_is_help=True,
    add_completion=False,
)


def _setup_logging() -> None:
    level = get_settings().log_level.upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
    workers: Annotated[int, typer.Option(help="Worker processes (use 2+ on PostgreSQL).")] = 1,
    mllp_port: Annotated[int | None, typer.Option(
        help="Also listen for HL7 v2 over MLLP on this port (same host).")] = None,
) -> None:
    """Run the HTTP server (FHIR API under /fhir, docs under /docs)."""
    import uvicorn

    from gateway.store.db import Database
    from gateway.store.migrate import upgrade

    _setup_logging()
    settings = get_settings()
    database = Database(settings.database_url)
    upgrade(database)  # once, before workers start, so they never race on a fresh schema
    _start_ingest(settings, database, host, mllp_port)
    typer.echo(f"FHIR API: http://{host}:{port}/fhir   API docs: http://{host}:{port}/docs")
    uvicorn.run("gateway.app:create_app", factory=True, host=host, port=port, workers=workers,
                loop="uvloop", http="httptools", log_level=settings.log_level,
                access_log=False)


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
    load_only: Annotated[bool, typer.Option("--load-only",
                                            help="Load the demo data, do not serve.")] = False,
) -> None:
    """Load the demo data (examples/) into the database, then serve the coordinator pages."""
    from gateway.demo import load_demo

    _setup_logging()
    try:
        load_demo(get_settings(), echo=typer.echo)
    except (FileNotFoundError, RuntimeError) as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from error
    if load_only:
        return
    typer.echo(f"Coordinator pages: http://{host}:{port}/   "
               f"(try http://{host}:{port}/patients/p-silva and http://{host}:{port}/panel)")
    serve(host=host, port=port, workers=1, mllp_port=None)


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema to the latest version."""
    from gateway.store.db import Database
    from gateway.store.migrate import current, upgrade

    _setup_logging()
    database = Database(get_settings().database_url)
    upgrade(database)
    typer.echo(f"schema at revision {current(database)}")


@app.command()
def load(
    paths: Annotated[list[Path], typer.Argument(help="JSON files: resources or Bundles "
                                                     "(transaction, batch or collection).")],
) -> None:
    """Load FHIR resources and Bundles from files through the repository."""
    from gateway.loader import load_files

    _setup_logging()
    summary = load_files(get_settings(), paths, echo=typer.echo)
    typer.echo(f"loaded {summary.resources} resources from {summary.files} files"
               + (f", {summary.failed} failed" if summary.failed else ""))
    if summary.failed:
        raise typer.Exit(1)


@app.command("import")
def import_(
    paths: Annotated[list[Path], typer.Argument(help="Plans and rosters: .json (a document "
                                                     "or an array), .ndjson, .csv rosters.")],
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Import case-management plans and care-team rosters (mappings/schemas/)."""
    from gateway.ingest.planimport import run_import

    _setup_logging()
    summary = run_import(get_settings(), paths, progress=progress, echo=typer.echo)
    typer.echo(summary.line())
    if summary.counts["failed"]:
        raise typer.Exit(1)


# -- sync: delivery worker and deliveries --------------------------------------------------

@app.command()
def worker() -> None:
    """Run a delivery worker (routes the event log and sends notifications) until stopped."""
    import asyncio
    import signal

    from gateway.store.db import Database
    from gateway.store.migrate import upgrade
    from gateway.sync.worker import run_worker

    _setup_logging()
    settings = get_settings()
    database = Database(settings.database_url)
    upgrade(database)
    database.dispose()

    async def _run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(settings, stop)

    typer.echo("delivery worker running; Ctrl-C to stop")
    asyncio.run(_run())


deliveries_app = typer.Typer(help="Notification deliveries: list them, send one again.",
                             no_args_is_help=True)
app.add_typer(deliveries_app, name="deliveries")


@deliveries_app.command("list")
def deliveries_list(
    status: Annotated[str | None, typer.Option(help="pending, delivered, failed, skipped")]
    = None,
    subscription: Annotated[str | None, typer.Option(help="Subscription id")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
) -> None:
    """List notifications, newest first."""
    from gateway.errors import GatewayError
    from gateway.store.db import Database
    from gateway.sync.admin import list_deliveries

    database = Database(get_settings().database_url)
    try:
        rows = list_deliveries(database, status=status, subscription=subscription, limit=limit)
    except GatewayError as error:
        typer.echo(error.message, err=True)
        raise typer.Exit(2) from error
    finally:
        database.dispose()
    for row in rows:
        focus = row.get("focus") or row["kind"]
        typer.echo(f"{row['id']:>8}  {row['status']:<9} attempts={row['attempts']:<3} "
                   f"{row['subscription']}  {focus}  {row['last_error'] or ''}".rstrip())


@deliveries_app.command("retry")
def deliveries_retry(
    delivery_id: Annotated[int, typer.Argument(help="Delivery id (from `deliveries list`).")],
) -> None:
    """Send one notification again now (a Subscription in error is re-requested)."""
    from gateway.errors import GatewayError
    from gateway.store.db import Database
    from gateway.sync.admin import retry_delivery

    settings = get_settings()
    database = Database(settings.database_url)
    try:
        row = retry_delivery(database, delivery_id, (settings.base_url or "").rstrip("/"))
    except GatewayError as error:
        typer.echo(error.message, err=True)
        raise typer.Exit(2) from error
    finally:
        database.dispose()
    typer.echo(f"delivery {row['id']} is {row['status']} again")


# -- coordination: transition workflow Tasks ------------------------------------------------

tasks_app = typer.Typer(help="Follow-up Tasks of the transition workflows.",
                        no_args_is_help=True)
app.add_typer(tasks_app, name="tasks")


@tasks_app.command("sweep-overdue")
def tasks_sweep_overdue(
    today: Annotated[str | None, typer.Option(
        help="Judge due dates as of this date (YYYY-MM-DD); default: today in the rules' "
             "time zone.")] = None,
) -> None:
    """Flag open follow-up Tasks past their due date (Task.businessStatus `overdue`); the
    workers also do this every GATEWAY_WORKFLOW_SWEEP_SECONDS."""
    from datetime import date

    from gateway.coordination.runner import workflow_runner
    from gateway.store.db import Database

    try:
        day = date.fromisoformat(today) if today else None
    except ValueError as error:
        typer.echo(f"--today: {error}", err=True)
        raise typer.Exit(2) from error
    settings = get_settings()
    database = Database(settings.database_url)
    try:
        written = workflow_runner(database, settings).sweep_overdue(day)
    finally:
        database.dispose()
    for reference in written:
        typer.echo(f"overdue: {reference}")
    typer.echo(f"{len(written)} Task(s) flagged overdue")


# -- partner FHIR servers -----------------------------------------------------------------

partners_app = typer.Typer(help="Partner FHIR servers: register, list, remove, pull, "
                                "conflicts.", no_args_is_help=True)
app.add_typer(partners_app, name="partners")


def _partners_call(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a partner registry function on the configured database; errors exit 2."""
    from gateway.errors import GatewayError
    from gateway.store.db import Database

    database = Database(get_settings().database_url)
    try:
        return function(database, *args, **kwargs)
    except GatewayError as error:
        typer.echo(error.message, err=True)
        raise typer.Exit(2) from error
    finally:
        database.dispose()


@partners_app.command("add")
def partners_add(
    name: Annotated[str, typer.Argument(help="A short name for the partner.")],
    base_url: Annotated[str, typer.Argument(help="The partner's FHIR base URL.")],
    types: Annotated[str, typer.Option(help="Comma-separated types.")]
    = "CarePlan,CareTeam,Encounter",
    direction: Annotated[str, typer.Option(help="push, pull or both.")] = "push",
    auth: Annotated[str, typer.Option(help="none, bearer or oauth2.")] = "none",
    token: Annotated[str | None, typer.Option(
        help="Bearer token (auth bearer; or GATEWAY_PARTNER_TOKEN, kept out of shell "
             "history).", envvar="GATEWAY_PARTNER_TOKEN")] = None,
    token_url: Annotated[str | None, typer.Option(help="OAuth2 token endpoint.")] = None,
    client_id: Annotated[str | None, typer.Option(help="OAuth2 client id.")] = None,
    client_secret: Annotated[str | None, typer.Option(
        help="OAuth2 client secret (or GATEWAY_PARTNER_CLIENT_SECRET).",
        envvar="GATEWAY_PARTNER_CLIENT_SECRET")] = None,
    scope: Annotated[str | None, typer.Option(help="OAuth2 scope.")] = None,
) -> None:
    """Register a partner FHIR server."""
    from gateway.sync.partners import PartnerSpec, add_partner

    spec = PartnerSpec(name, base_url, [t.strip() for t in types.split(",") if t.strip()],
                       direction, auth, token, token_url, client_id, client_secret, scope)
    row = _partners_call(add_partner, spec)
    typer.echo(f"partner {row['name']} added: {row['direction']} {','.join(row['types'])} "
               f"{row['base_url']}")


@partners_app.command("list")
def partners_list() -> None:
    """List partner FHIR servers."""
    from gateway.sync.partners import list_partners

    for row in _partners_call(list_partners):
        typer.echo(f"{row['name']:<16} {row['direction']:<5} {row['auth']:<7} "
                   f"{','.join(row['types']):<28} {row['base_url']}")


@partners_app.command("remove")
def partners_remove(name: Annotated[str, typer.Argument(help="Partner name.")]) -> None:
    """Forget a partner (pending pushes are skipped; conflicts and evidence stay)."""
    from gateway.sync.partners import remove_partner

    _partners_call(remove_partner, name)
    typer.echo(f"partner {name} removed")


@partners_app.command("pull")
def partners_pull(name: Annotated[str, typer.Argument(help="Partner name.")]) -> None:
    """Pull a partner's changes now."""
    import asyncio

    from gateway.sync.pull import pull_now

    settings = get_settings()
    counts = _partners_call(lambda db: asyncio.run(pull_now(
        db, name, settings.own_identifier_system, (settings.base_url or "").rstrip("/"),
        settings.delivery_timeout_seconds)))
    for resource_type, count in counts.items():
        typer.echo(f"{resource_type}: {count} imported")


@partners_app.command("conflicts")
def partners_conflicts(
    partner: Annotated[str | None, typer.Option(help="Only this partner.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
) -> None:
    """Refused writes: a partner (or rest-write Endpoint) refused a push because its copy
    had moved on, or a pulled change met a local edit not yet pushed."""
    from gateway.sync.partners import list_conflicts

    for row in _partners_call(list_conflicts, partner=partner, limit=limit):
        typer.echo(f"{row['id']:>6}  {row['destination_name']}  {row['focus']}  "
                   f"HTTP {row['http_status'] or '-'}  expected version "
                   f"{row['expected_version'] or '-'}  delivery {row['delivery_id'] or '-'}"
                   f"  {row['direction']}")


@partners_app.command("failures")
def partners_failures(
    partner: Annotated[str | None, typer.Option(help="Only this partner.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
) -> None:
    """Partner resources a pull passed over because they could not be imported."""
    from gateway.sync.partners import list_pull_failures

    for row in _partners_call(list_pull_failures, partner=partner, limit=limit):
        typer.echo(f"{row['id']:>6}  {row['partner']}  {row['type']}/"
                   f"{row['remote_id'] or '-'}  version {row['remote_version'] or '-'}  "
                   f"{row['error']}")


# -- HL7 v2 ingest: MLLP listener and the inbound message store ---------------------------

def _start_ingest(settings: Settings, database: Database, host: str,
                  mllp_port: int | None) -> None:
    """Process inbound messages left unprocessed; with ``mllp_port``, listen beside HTTP."""
    import threading

    from gateway.ingest.setup import build_ingest, run_mllp

    ingest = build_ingest(settings, database)
    if mllp_port is None:
        ingest.recover()
        database.dispose()
        return
    typer.echo(f"HL7 v2 MLLP: {host}:{mllp_port}")
    threading.Thread(target=run_mllp, args=(ingest, host, mllp_port, settings.max_hl7_bytes),
                     daemon=True, name="mllp").start()


@app.command()
def mllp(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (2575 is the registered MLLP port).")]
    = 2575,
) -> None:
    """Listen for HL7 v2 messages over MLLP (runs beside `gateway serve` on one database)."""
    from gateway.ingest.setup import build_ingest, run_mllp
    from gateway.store.db import Database
    from gateway.store.migrate import upgrade

    _setup_logging()
    settings = get_settings()
    database = Database(settings.database_url, pool_size=settings.db_pool_size)
    upgrade(database)
    typer.echo(f"HL7 v2 MLLP listening on {host}:{port}; Ctrl-C to stop")
    try:
        run_mllp(build_ingest(settings, database), host, port, settings.max_hl7_bytes)
    except KeyboardInterrupt:
        pass
    finally:
        database.dispose()


messages_app = typer.Typer(help="Inbound HL7 v2 messages: list them, replay failed ones.",
                           no_args_is_help=True)
app.add_typer(messages_app, name="messages")


@messages_app.command("list")
def messages_list(
    status: Annotated[str | None, typer.Option(
        help="received, processed, error or rejected")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, oldest first.")] = 100,
) -> None:
    """List stored inbound messages with their status and error."""
    from gateway.ingest.inbox import Inbox
    from gateway.store.db import Database

    database = Database(get_settings().database_url)
    try:
        for row in Inbox(database).list(status, limit):
            where = f" [{row.error_location}]" if row.error_location else ""
            typer.echo(f"{row.id:>8}  {row.status:<9} {row.message_type or '-':<9} "
                       f"{row.sender or '-'} #{row.control_id or '-'}"
                       f"{'  ' + row.error + where if row.error else ''}")
    finally:
        database.dispose()


@messages_app.command("replay")
def messages_replay(
    message_id: Annotated[int | None, typer.Argument(help="Message id (from `messages list`).")]
    = None,
    all_failed: Annotated[bool, typer.Option("--all-failed",
                                             help="Replay every message in error.")] = False,
) -> None:
    """Process failed messages again with the current mapping files."""
    from gateway.errors import GatewayError
    from gateway.ingest.inbox import ERROR
    from gateway.ingest.setup import build_ingest
    from gateway.store.db import Database

    if (message_id is None) == (not all_failed):
        typer.echo("Give a message id or --all-failed.", err=True)
        raise typer.Exit(2)
    _setup_logging()
    settings = get_settings()
    database = Database(settings.database_url)
    failed = 0
    try:
        ingest = build_ingest(settings, database)
        ids = [message_id] if message_id is not None else [
            r.id for r in ingest.inbox.list(ERROR, 1_000_000)]
        for one in ids:
            assert one is not None
            try:
                reply = ingest.replay(one)
            except GatewayError as error:
                typer.echo(f"{one}: {error.message}", err=True)
                failed += 1
                continue
            code = getattr(reply, "code", "AA")
            failed += code != "AA"
            typer.echo(f"{one}: {code}")
    finally:
        database.dispose()
    if failed:
        raise typer.Exit(1)


def _clients() -> None:
    from gateway.auth.commands import clients_app
    from gateway.auth.user_commands import users_app

    app.add_typer(clients_app, name="clients")
    app.add_typer(users_app, name="users")


_clients()


def main() -> None:
    app(prog_name="gateway")


if __name__ == "__main__":
    main()
    sys.exit(0)
