"""``gateway clients ...``: register, list and disable client applications, and get a token
as a client would (sign an assertion with its private key, post it to the token endpoint)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import httpx
import typer
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from gateway.auth.scopes import Scopes
from gateway.config import get_settings
from gateway.store.access import organization_id
from gateway.store.clients import Client, ClientRegistry

clients_app = typer.Typer(help="Client applications (SMART Backend Services): add, list, "
                               "disable; get a token as a client.", no_args_is_help=True)


@contextmanager
def _registry() -> Iterator[ClientRegistry]:
    from gateway.store.db import Database
    from gateway.store.migrate import upgrade

    database = Database(get_settings().database_url)
    try:
        upgrade(database)
        yield ClientRegistry(database)
    finally:
        database.dispose()


@clients_app.command("add")
def add(
    client_id: Annotated[str, typer.Argument(help="The client id (iss/sub of its assertions).")],
    scopes: Annotated[str, typer.Option(help="Allowed scopes, space-separated, e.g. "
                                             "'system/CarePlan.rs system/Encounter.cruds'.")],
    jwks: Annotated[Path | None, typer.Option(help="File with the client's public JWKS.")]
    = None,
    jwks_url: Annotated[str | None, typer.Option(help="URL where the client publishes its "
                                                      "JWKS.")] = None,
    organization: Annotated[list[str] | None, typer.Option(
        help="Organization id it acts for (repeat for several).")] = None,
    admin: Annotated[bool, typer.Option(help="May see every patient and the audit log.")]
    = False,
    name: Annotated[str, typer.Option(help="A human-readable name.")] = "",
) -> None:
    """Register a client application."""
    if (jwks is None) == (jwks_url is None):
        typer.echo("Give exactly one of --jwks FILE or --jwks-url URL.", err=True)
        raise typer.Exit(2)
    unknown = [s for s in scopes.split() if not Scopes.parse(s)]
    if unknown or not scopes.split():
        typer.echo(f"Not system scopes: {' '.join(unknown) or '(none given)'}", err=True)
        raise typer.Exit(2)
    keys = json.loads(jwks.read_text()) if jwks else None
    if keys is not None and (not isinstance(keys, dict) or not isinstance(keys.get("keys"),
                                                                          list)):
        typer.echo("The JWKS file must hold {\"keys\": [...]}.", err=True)
        raise typer.Exit(2)
    with _registry() as registry:
        registry.add(Client(client_id, name, keys, jwks_url, tuple(scopes.split()),
                            tuple(organization_id(o) for o in organization or ()), admin,
                            False))
    typer.echo(f"added client {client_id}")


@clients_app.command("list")
def list_clients() -> None:
    """List registered clients."""
    with _registry() as registry:
        clients = registry.list()
    for client in clients:
        state = "disabled" if client.disabled else "active"
        role = "admin" if client.admin else ",".join(client.organizations) or "-"
        typer.echo(f"{client.client_id}\t{state}\t{role}\t{' '.join(client.scopes)}")


@clients_app.command("disable")
def disable(client_id: Annotated[str, typer.Argument()]) -> None:
    """Disable a client: no new tokens; its current tokens stop working within seconds."""
    with _registry() as registry:
        disabled = registry.set_disabled(client_id)
    if not disabled:
        typer.echo(f"no client {client_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"disabled client {client_id}")


@clients_app.command("keygen")
def keygen(
    private: Annotated[Path, typer.Argument(help="Where to write the private JWK (keep it).")],
    public: Annotated[Path, typer.Argument(help="Where to write the public JWKS (register).")],
    rsa: Annotated[bool, typer.Option(help="RSA (RS384) instead of EC P-384 (ES384).")]
    = False,
) -> None:
    """Make a key pair for a client (for trying the gateway out)."""
    key = RSAKey.generate_key(2048, auto_kid=True) if rsa else ECKey.generate_key(
        "P-384", auto_kid=True)
    alg = "RS384" if rsa else "ES384"
    private.write_text(json.dumps({**key.as_dict(private=True), "alg": alg}))
    private.chmod(0o600)
    public.write_text(json.dumps({"keys": [{**key.as_dict(private=False), "alg": alg}]}))
    typer.echo(f"wrote {private} (private) and {public} (public JWKS)")


def sign_assertion(private_jwk: dict[str, object], client_id: str, token_url: str) -> str:
    """A client assertion as SMART Backend Services asks for (exp 5 minutes ahead)."""
    alg = str(private_jwk.get("alg") or ("RS384" if private_jwk.get("kty") == "RSA"
                                         else "ES384"))
    key = RSAKey.import_key(private_jwk) if alg == "RS384" else ECKey.import_key(private_jwk)
    claims = {"iss": client_id, "sub": client_id, "aud": token_url,
              "exp": int(time.time()) + 300, "jti": uuid.uuid4().hex}
    return jwt.encode({"alg": alg, "kid": key.kid, "typ": "JWT"}, claims, key,
                      algorithms=[alg])


@clients_app.command("token")
def token(
    client_id: Annotated[str, typer.Argument()],
    key: Annotated[Path, typer.Option(help="The client's private JWK file.")],
    scope: Annotated[str, typer.Option(help="Scopes to ask for.")],
    url: Annotated[str, typer.Option(help="The token endpoint.")]
    = "http://127.0.0.1:8080/auth/token",
) -> None:
    """Get an access token as the client would; prints it."""
    assertion = sign_assertion(json.loads(key.read_text()), client_id, url)
    response = httpx.post(url, data={
        "grant_type": "client_credentials", "scope": scope,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion}, timeout=10)
    if response.status_code != 200:
        typer.echo(response.text, err=True)
        raise typer.Exit(1)
    typer.echo(response.json()["access_token"])
