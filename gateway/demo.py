"""The demo data set: what ``gateway demo`` (and ``make run``) loads before serving.

``examples/demo-bundle.json`` (organizations, practitioners, three patients with plans and
teams), the example care program (``examples/program/``: plans and rosters through the plan
import) and ``examples/demo/*.json`` in name order: transaction Bundles that play a
hospital stay (admission, transfer, discharge), follow-up Tasks (one flagged overdue, one
completed), a care team change and a follow-up visit, so the timeline and panel have
something to show. Everything goes through the same write paths as the API.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gateway.config import Settings
from gateway.errors import GatewayError
from gateway.ingest.planimport import run_import
from gateway.loader import load_files
from gateway.store.db import Database
from gateway.store.migrate import upgrade

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
MARKER = ("Patient", "p-silva")  # present once the demo has been loaded


def demo_files(root: Path = EXAMPLES) -> tuple[list[Path], list[Path]]:
    """(FHIR files in load order, plan and roster files)."""
    fhir = [root / "demo-bundle.json", *sorted((root / "demo").glob("*.json"))]
    program = [root / "program" / "plans.ndjson", root / "program" / "rosters.csv"]
    missing = [str(p) for p in (*fhir, *program) if not p.exists()]
    if missing:
        raise FileNotFoundError(f"demo files not found: {', '.join(missing)}")
    return fhir, program


def already_loaded(settings: Settings) -> bool:
    database = Database(settings.database_url)
    try:
        upgrade(database)
        database.reader.current(*MARKER)
        return True
    except GatewayError:
        return False
    finally:
        database.dispose()


def load_demo(settings: Settings, root: Path = EXAMPLES,
              echo: Callable[[str], object] = print) -> bool:
    """Load the demo data unless the database already holds it; True when loaded."""
    fhir, program = demo_files(root)
    if already_loaded(settings):
        echo("demo data already loaded")
        return False
    summary = load_files(settings, fhir[:1], echo=echo)
    imported = run_import(settings, program, progress=False, echo=echo)
    echo(f"care program: {imported.line()}")
    later = load_files(settings, fhir[1:], echo=echo)
    failed = summary.failed + later.failed + imported.counts["failed"]
    if failed:
        raise RuntimeError(f"{failed} demo files failed to load")
    return True
