"""The ``gateway`` command line: serve, migrate, load."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from gateway.config import get_settings

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
) -> None:
    """Run the HTTP server (FHIR API under /fhir, docs under /docs)."""
    import uvicorn

    from gateway.store.db import Database
    from gateway.store.migrate import upgrade

    _setup_logging()
    settings = get_settings()
    database = Database(settings.database_url)
    upgrade(database)  # once, before workers start, so they never race on a fresh schema
    database.dispose()
    typer.echo(f"FHIR API: http://{host}:{port}/fhir   API docs: http://{host}:{port}/docs")
    uvicorn.run("gateway.app:create_app", factory=True, host=host, port=port, workers=workers,
                loop="uvloop", http="httptools", log_level=settings.log_level,
                access_log=False)


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


def main() -> None:
    app(prog_name="gateway")


if __name__ == "__main__":
    main()
    sys.exit(0)
