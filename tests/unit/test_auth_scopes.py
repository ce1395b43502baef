"""SMART scopes (scopes-and-launch-context.html): v2 and v1 syntax, wildcards, grants."""

from __future__ import annotations

import pytest

from gateway.auth.ratelimit import RateLimiter
from gateway.auth.scopes import Scopes, parse_scope


@pytest.mark.parametrize(("scope", "resource_type", "letters"), [
    ("system/CarePlan.rs", "CarePlan", "rs"),
    ("system/Encounter.cruds", "Encounter", "cruds"),
    ("system/*.rs", "*", "rs"),
    ("system/CarePlan.read", "CarePlan", "rs"),
    ("system/CarePlan.write", "CarePlan", "cud"),
    ("system/CarePlan.*", "CarePlan", "cruds"),
    ("system/Task.cu", "Task", "cu"),
])
def test_valid_scopes(scope: str, resource_type: str, letters: str) -> None:
    grant = parse_scope(scope)
    assert grant is not None
    assert grant.resource_type == resource_type
    assert grant.permissions == frozenset(letters)


@pytest.mark.parametrize("scope", ["patient/CarePlan.rs", "user/*.read", "system/CarePlan.sr",
                                   "system/CarePlan.rr", "system/CarePlan.x", "system/.rs",
                                   "openid", "system/careplan.rs", "system/CarePlan."])
def test_other_scopes_grant_nothing(scope: str) -> None:
    assert parse_scope(scope) is None
    assert not Scopes.parse(scope)


@pytest.mark.parametrize(("held", "resource_type", "allowed"), [
    ("system/CarePlan.rs", "CarePlan", "rs"),
    ("system/CarePlan.rs", "Encounter", ""),
    ("system/*.rs", "Encounter", "rs"),
    ("system/*.rs system/Task.cud", "Task", "cruds"),
    ("system/Encounter.write", "Encounter", "cud"),
])
def test_each_scope_allows_exactly_what_it_names(held: str, resource_type: str,
                                                 allowed: str) -> None:
    scopes = Scopes.parse(held)
    for letter in "cruds":
        assert scopes.allows(resource_type, letter) == (letter in allowed)


def test_grants_are_the_requested_scopes_cut_to_the_allowed() -> None:
    allowed = Scopes.parse("system/CarePlan.rs system/Encounter.cruds")
    assert str(allowed.granted(Scopes.parse("system/Encounter.rs"))) == "system/Encounter.rs"
    wildcard = allowed.granted(Scopes.parse("system/*.read"))
    assert set(str(wildcard).split()) == {"system/CarePlan.rs", "system/Encounter.rs"}
    assert not allowed.granted(Scopes.parse("system/Patient.rs"))
    broad = Scopes.parse("system/*.rs").granted(Scopes.parse("system/Patient.cruds"))
    assert str(broad) == "system/Patient.rs"


def test_readable_types() -> None:
    assert Scopes.parse("system/CarePlan.rs system/Task.c").readable_types() == {"CarePlan"}
    assert Scopes.parse("system/*.read").readable_types() is None


def test_rate_limiter_refills_at_its_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=2.0, burst=2, clock=lambda: now[0])
    assert [limiter.take("a"), limiter.take("a")] == [0, 0]
    assert limiter.take("a") == 1
    assert limiter.take("b") == 0  # per client
    now[0] = 0.5
    assert limiter.take("a") == 0
    assert RateLimiter(rate=0, burst=1).take("a") == 0


def test_refilled_buckets_are_forgotten_when_there_are_many() -> None:
    """Made-up keys (user names tried at the login form) cannot grow the table without
    bound, while a key still waiting keeps its debt."""
    now = [0.0]
    limiter = RateLimiter(rate=1.0, burst=1, clock=lambda: now[0], max_keys=100)
    assert limiter.take("busy") == 0 and limiter.take("busy") == 1
    for n in range(99):
        limiter.take(f"guess-{n}")
    assert len(limiter) == 100
    now[0] = 0.5  # "busy" still waits; the guesses have not refilled either
    limiter.take("guess-99")
    assert len(limiter) == 101
    now[0] = 2.0  # everyone refilled: the next new key sweeps them out
    limiter.take("late")
    assert len(limiter) == 1
    assert limiter.take("busy") == 0


def test_waiting_tells_without_taking() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=1.0, burst=1, clock=lambda: now[0])
    assert limiter.waiting("a") == 0 and limiter.waiting("a") == 0  # nothing taken
    assert limiter.take("a") == 0
    assert limiter.waiting("a") == 1
    now[0] = 1.0
    assert limiter.waiting("a") == 0


def test_the_signing_key_comes_from_a_pem_file_or_setting(tmp_path: object) -> None:
    from pathlib import Path

    from joserfc.jwk import ECKey

    from gateway.auth.tokens import load_signing_key

    pem = ECKey.generate_key("P-384").as_pem(private=True).decode()
    path = Path(str(tmp_path)) / "signing.pem"
    path.write_text(pem)
    from_file = load_signing_key(None, str(path))
    from_setting = load_signing_key(pem, None)
    assert from_file.kid and from_file.kid == from_setting.kid
