"""Paging through search results (R4 search.html#count, http.html#paging): ``_count``,
``next`` / ``previous`` links, results that stay consistent while data change between pages,
and 1,000 matches paged 100 at a time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from fastapi.testclient import TestClient

from tests.integration.test_search import (
    BASE,
    all_pages,
    create,
    delete,
    follow,
    link,
    match_ids,
    patient,
    private_gateway,
    put,
    search,
    transaction,
)

BIRTH_DATES = [f"19{40 + i % 37:02d}-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(37)]


def small_patient(index: int, family: str = "Pager") -> dict[str, Any]:
    return patient(family, [f"G{index:04d}"], birthDate=BIRTH_DATES[index % len(BIRTH_DATES)],
                   gender="female" if index % 2 else "male")


def bulk(client: TestClient, count: int, family: str = "Pager", start: int = 0,
         batch: int = 100) -> list[str]:
    """Create ``count`` small patients, one transaction per ``batch``."""
    ids: list[str] = []
    for first in range(start, start + count, batch):
        last = min(first + batch, start + count)
        ids += transaction(client, [small_patient(i, family) for i in range(first, last)])
    return ids


def test_default_count_is_50_and_next_link_pages_on(client: TestClient) -> None:
    ids = bulk(client, 51)
    first = search(client, "Patient")
    assert first["total"] == 51
    assert len(match_ids(first)) == 50
    next_url = link(first, "next")
    assert next_url is not None and next_url.startswith(f"{BASE}/Patient?")
    second = follow(client, next_url)
    assert second["total"] == 51
    assert len(match_ids(second)) == 1
    assert link(second, "next") is None
    assert sorted(match_ids(first) + match_ids(second)) == sorted(ids)


def test_count_limits_the_page_and_links_keep_the_query(client: TestClient) -> None:
    bulk(client, 5, family="Alpha")
    bulk(client, 2, family="Beta", start=5)
    first = search(client, "Patient", [("family", "alpha"), ("_count", "2")])
    assert first["total"] == 5
    assert len(match_ids(first)) == 2
    assert link(first, "previous") is None
    next_url = link(first, "next")
    assert next_url is not None
    query = dict(parse_qsl(urlsplit(next_url).query))
    assert query["family"] == "alpha" and query["_count"] == "2"
    everything = all_pages(client, first)
    assert len(everything) == len(set(everything)) == 5


def test_count_larger_than_the_matches_gives_one_page(client: TestClient) -> None:
    bulk(client, 3)
    bundle = search(client, "Patient", [("_count", "10")])
    assert len(match_ids(bundle)) == 3
    assert link(bundle, "next") is None and link(bundle, "previous") is None


@pytest.mark.parametrize("sort", [None, "family", "-birthdate", "gender,-_id"])
def test_previous_links_lead_back_to_the_same_pages(client: TestClient,
                                                    sort: str | None) -> None:
    bulk(client, 11)
    params = [("_count", "3")] + ([("_sort", sort)] if sort else [])
    pages = [search(client, "Patient", params)]
    while (next_url := link(pages[-1], "next")) is not None:
        pages.append(follow(client, next_url))
    assert [len(match_ids(p)) for p in pages] == [3, 3, 3, 2]
    assert link(pages[0], "previous") is None
    # walk back from the last page: every previous page is the page we saw going forward
    bundle = pages[-1]
    for expected in reversed(pages[:-1]):
        previous_url = link(bundle, "previous")
        assert previous_url is not None
        bundle = follow(client, previous_url)
        assert match_ids(bundle) == match_ids(expected)
    assert link(bundle, "previous") is None
    # and forward again from a page reached through previous
    next_url = link(bundle, "next")
    assert next_url is not None
    assert match_ids(follow(client, next_url)) == match_ids(pages[1])


@pytest.mark.parametrize("sort", [None, "-birthdate", "family,birthdate", "-_lastUpdated"])
def test_next_links_survive_creates_and_deletes_between_pages(client: TestClient,
                                                              sort: str | None) -> None:
    """Every resource that exists throughout is returned exactly once; deleted ones are not
    returned after their deletion; nothing is returned twice."""
    ids = bulk(client, 12)
    create(client, patient("Other"))  # never matches
    params = [("family", "pager"), ("_count", "4")] + ([("_sort", sort)] if sort else [])
    bundle = search(client, "Patient", params)
    seen = match_ids(bundle)
    unseen = [i for i in ids if i not in seen]
    deleted = {unseen[0], unseen[-1], seen[0]}
    for reference in deleted:
        delete(client, f"Patient/{reference}")
    created = bulk(client, 3, start=100)
    # an update that keeps the sort keys must not move the resource to another page
    kept = unseen[1]
    changed = client.get(f"/fhir/Patient/{kept}").json()
    changed["telecom"] = [{"system": "phone", "value": "+1-555-0199"}]
    if sort != "-_lastUpdated":
        put(client, changed)
    pages = 1
    while (next_url := link(bundle, "next")) is not None:
        bundle = follow(client, next_url)
        seen += match_ids(bundle)
        pages += 1
        if pages == 2:
            delete(client, f"Patient/{unseen[2]}")
            deleted.add(unseen[2])
            created += bulk(client, 2, start=200)
        assert pages < 20
    assert len(seen) == len(set(seen)), "a resource was returned twice"
    throughout = set(ids) - deleted
    assert throughout <= set(seen)
    assert not (set(seen) - set(ids) - set(created))
    assert unseen[0] not in seen and unseen[-1] not in seen


@pytest.fixture(scope="module")
def thousand(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, set[str]]]:
    """A gateway holding 1,000 matching patients (and a few that do not match)."""
    with private_gateway(tmp_path_factory.mktemp("thousand")) as client:
        ids = bulk(client, 1000)
        bulk(client, 5, family="Other", start=1000)
        yield client, set(ids)


def _walk(client: TestClient, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
    pages = [search(client, "Patient", params)]
    while (next_url := link(pages[-1], "next")) is not None:
        pages.append(follow(client, next_url))
        assert len(pages) <= 20, "the next links do not end"
    return pages


def test_paging_through_1000_matches_100_at_a_time(
        thousand: tuple[TestClient, set[str]]) -> None:
    client, ids = thousand
    pages = _walk(client, [("family", "pager"), ("_count", "100")])
    assert [p["total"] for p in pages] == [1000] * 10
    assert [len(match_ids(p)) for p in pages] == [100] * 10
    seen = [i for p in pages for i in match_ids(p)]
    assert len(set(seen)) == 1000 and set(seen) == ids
    # back from the last page to the first, through previous links
    bundle = pages[-1]
    for expected in reversed(pages[:-1]):
        previous_url = link(bundle, "previous")
        assert previous_url is not None
        bundle = follow(client, previous_url)
        assert match_ids(bundle) == match_ids(expected)
    assert link(bundle, "previous") is None


def test_paging_through_1000_matches_sorted_by_date(
        thousand: tuple[TestClient, set[str]]) -> None:
    """37 distinct birth dates, so most sort keys tie across page boundaries."""
    client, ids = thousand
    pages = _walk(client, [("family", "pager"), ("_count", "100"), ("_sort", "-birthdate")])
    assert [len(match_ids(p)) for p in pages] == [100] * 10
    seen = [i for p in pages for i in match_ids(p)]
    assert len(set(seen)) == 1000 and set(seen) == ids
    dates = [e["resource"]["birthDate"] for p in pages for e in p["entry"]]
    assert dates == sorted(dates, reverse=True)


def test_count_of_1000_returns_every_match_at_once(
        thousand: tuple[TestClient, set[str]]) -> None:
    client, ids = thousand
    bundle = search(client, "Patient", [("family", "pager"), ("_count", "1000")])
    assert set(match_ids(bundle)) == ids
    assert link(bundle, "next") is None
