"""``gateway users ...``: register, list and disable the people who sign in to the
coordinator pages (README "Security")."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from gateway.auth.passwords import hash_password
from gateway.config import get_settings
from gateway.store.access import organization_id
from gateway.store.users import User, UserRegistry

users_app = typer.Typer(help="People who sign in to the coordinator pages: add, list, "
                             "disable.", no_args_is_help=True)
MIN_PASSWORD = 12


@contextmanager
def _registry() -> Iterator[UserRegistry]:
    from gateway.store.db import Database
    from gateway.store.migrate import upgrade

    database = Database(get_settings().database_url)
    try:
        upgrade(database)
        yield UserRegistry(database)
    finally:
        database.dispose()


def _password(path: Path | None) -> str:
    if path is not None:
        return path.read_text().rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@users_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The user name they sign in with.")],
    password_file: Annotated[Path | None, typer.Option(
        help="File holding the password (first line); without it, asked for twice.")] = None,
    organization: Annotated[list[str] | None, typer.Option(
        help="Organization/id whose patients they may see (repeat for several).")] = None,
    admin: Annotated[bool, typer.Option(help="May see every patient.")] = False,
) -> None:
    """Register a person."""
    if not name or len(name) > 128 or name != name.strip():
        typer.echo("The user name must be 1-128 characters without surrounding spaces.",
                   err=True)
        raise typer.Exit(2)
    password = _password(password_file)
    if len(password) < MIN_PASSWORD:
        typer.echo(f"The password must have at least {MIN_PASSWORD} characters.", err=True)
        raise typer.Exit(2)
    organizations = tuple(organization_id(o) for o in organization or ())
    if not admin and not organizations:
        typer.echo("Give --organization (repeatable) or --admin.", err=True)
        raise typer.Exit(2)
    with _registry() as registry:
        if registry.get(name) is not None:
            typer.echo(f"user {name} exists", err=True)
            raise typer.Exit(1)
        registry.add(User(name, hash_password(password), organizations, admin, False))
    typer.echo(f"added user {name}")


@users_app.command("list")
def list_users() -> None:
    """List registered people."""
    with _registry() as registry:
        users = registry.list()
    for user in users:
        state = "disabled" if user.disabled else "active"
        role = "admin" if user.admin else ",".join(f"Organization/{o}"
                                                   for o in user.organizations)
        typer.echo(f"{user.name}\t{state}\t{role}")


@users_app.command("disable")
def disable(name: Annotated[str, typer.Argument()]) -> None:
    """Disable a person: no new sign-ins; their open sessions end at once."""
    with _registry() as registry:
        disabled = registry.set_disabled(name)
    if not disabled:
        typer.echo(f"no user {name}", err=True)
        raise typer.Exit(1)
    typer.echo(f"disabled user {name}")
