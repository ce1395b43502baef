"""The mapping engine's parts: field paths, v2 date/times, ConceptMaps, facility overrides,
and the refusal of broken mapping files at load time."""

from __future__ import annotations

import shutil
from datetime import UTC
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.mapping.adt import map_adt
from gateway.mapping.issues import MappingError, MessageRejected
from gateway.mapping.rules import MappingFileError, MappingSet
from gateway.mapping.v2message import FieldPath, V2Message
from gateway.mapping.v2types import parse_dtm

MAPPINGS = Path(__file__).parents[2] / "mappings"
SAMPLES = Path(__file__).parents[1] / "data" / "hl7v2"


@pytest.fixture(scope="module")
def mappings() -> MappingSet:
    return MappingSet.load(MAPPINGS)


def _sample(name: str) -> V2Message:
    return V2Message.parse((SAMPLES / f"{name}.hl7").read_text(encoding="utf-8"))


@pytest.mark.parametrize(("text", "parsed"), [
    ("PV1-19", FieldPath("PV1", 19)),
    ("PID-3.4", FieldPath("PID", 3, 4)),
    ("PID-3.4.2", FieldPath("PID", 3, 4, 2)),
])
def test_field_paths_parse(text: str, parsed: FieldPath) -> None:
    assert FieldPath.parse(text) == parsed
    assert str(parsed) == text


@pytest.mark.parametrize("text", ["PV1", "PV1-", "pv1-2", "PV1-2.x"])
def test_bad_field_paths_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="field path"):
        FieldPath.parse(text)


@pytest.mark.parametrize(("value", "zone", "expected"), [
    ("20240305081500", UTC, "2024-03-05T08:15:00+00:00"),
    ("202403050815", UTC, "2024-03-05T08:15:00+00:00"),
    ("20240305081500-0500", UTC, "2024-03-05T08:15:00-05:00"),
    ("20240305081500.25+0100", UTC, "2024-03-05T08:15:00.250+01:00"),
    ("20240315221000", ZoneInfo("America/Chicago"), "2024-03-15T22:10:00-05:00"),
    ("20240115221000", ZoneInfo("America/Chicago"), "2024-01-15T22:10:00-06:00"),
    ("20240305", UTC, "2024-03-05"),
    ("202403", UTC, "2024-03"),
])
def test_v2_date_times_become_fhir_date_times(value: str, zone: object,
                                              expected: str) -> None:
    found = parse_dtm(value, zone)  # type: ignore[arg-type]
    assert found is not None and found.text == expected


@pytest.mark.parametrize("value", ["", "yesterday", "20241345", "2024030525"])
def test_bad_v2_date_times_are_none(value: str) -> None:
    assert parse_dtm(value, UTC) is None


def test_shared_conceptmap_translates_patient_class(mappings: MappingSet) -> None:
    table = mappings.for_facility("NORTH").table("hl7v2-0004-v3-actcode")
    assert table.translate("E").code == "EMER"  # type: ignore[union-attr]
    assert table.translate("OBS") is None


def test_facility_override_adds_codes_without_losing_shared_ones(mappings: MappingSet) -> None:
    table = mappings.for_facility("SOUTH").table("hl7v2-0004-v3-actcode")
    assert table.translate("OBS").code == "OBSENC"  # type: ignore[union-attr]
    assert table.translate("I").code == "IMP"  # type: ignore[union-attr]
    assert mappings.for_facility("SOUTH").rules["timezone"] == "America/Chicago"
    assert mappings.for_facility("NORTH").rules["timezone"] == "UTC"


def test_same_code_maps_per_facility(mappings: MappingSet) -> None:
    south = map_adt(_sample("south_a08_v26"), mappings)
    assert south.encounter["class"]["code"] == "OBSENC"
    north_text = _sample("south_a08_v26").text.replace("|SOUTH|", "|NORTH|")
    with pytest.raises(MappingError) as caught:
        map_adt(V2Message.parse(north_text), mappings)
    assert caught.value.location == "PV1-2"


def test_unknown_optional_code_is_kept_and_reported(mappings: MappingSet) -> None:
    mapped = map_adt(_sample("north_a01_unknown_disposition_v26"), mappings)
    disposition = mapped.encounter["hospitalization"]["dischargeDisposition"]
    assert disposition == {"coding": [{"code": "99", "system":
                                       "http://terminology.hl7.org/CodeSystem/v2-0112"}],
                           "text": "99"}
    assert [i.location for i in mapped.issues] == ["PV1-4", "PV1-36"]


def test_unknown_required_code_is_an_error_naming_the_field(mappings: MappingSet) -> None:
    with pytest.raises(MappingError) as caught:
        map_adt(_sample("north_a01_unknown_class_v25"), mappings)
    assert (caught.value.location, caught.value.hl7_error_code) == ("PV1-2", "103")


def test_unsupported_trigger_and_type_are_rejected(mappings: MappingSet) -> None:
    text = _sample("north_a01_v25").text
    with pytest.raises(MessageRejected) as trigger:
        map_adt(V2Message.parse(text.replace("ADT^A01^ADT_A01", "ADT^A99")), mappings)
    assert (trigger.value.location, trigger.value.hl7_error_code) == ("MSH-9.2", "201")
    with pytest.raises(MessageRejected) as kind:
        map_adt(V2Message.parse(text.replace("ADT^A01^ADT_A01", "ORU^R01")), mappings)
    assert (kind.value.location, kind.value.hl7_error_code) == ("MSH-9.1", "200")


def test_text_that_is_not_hl7_is_rejected() -> None:
    with pytest.raises(MessageRejected):
        V2Message.parse("\x00\x01garbage")


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, root)
    return root


def test_a_mapping_naming_a_missing_conceptmap_fails_at_load(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    adt = root / "hl7v2" / "adt.yaml"
    adt.write_text(adt.read_text().replace("conceptmap: hl7v2-0007-v3-actpriority",
                                           "conceptmap: no-such-map"))
    with pytest.raises(MappingFileError, match="no-such-map"):
        MappingSet.load(root)


def test_a_mapping_with_a_bad_field_path_fails_at_load(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    adt = root / "hl7v2" / "adt.yaml"
    adt.write_text(adt.read_text().replace("field: PV1-36", "field: PV1.36"))
    with pytest.raises(MappingFileError, match=r"PV1\.36"):
        MappingSet.load(root)


def test_an_invalid_conceptmap_fails_at_load(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    (root / "conceptmaps" / "broken.json").write_text(
        '{"resourceType": "ConceptMap", "status": "active", "group": "not a list"}')
    with pytest.raises(MappingFileError, match=r"broken\.json"):
        MappingSet.load(root)
