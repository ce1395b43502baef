"""Case-management plan (``mappings/schemas/careplan.schema.json``) -> FHIR R4 CarePlan with
its Conditions (risk factors), Goals and Tasks (interventions). Pure: no database, no HTTP.

The shape follows the HL7 MCC eCare Plan IG (and Shared Care Planning): CarePlan.addresses
names the health concerns (Condition, US Core category ``health-concern``), CarePlan.goal the
Goals, and each activity is a Task referenced from ``CarePlan.activity.reference``
(R4 careplan.html: "activity.reference ... Task"). Tasks do not point back (basedOn): the
store refuses to delete a resource others refer to, and a cycle could never be deleted.
"""

from __future__ import annotations

from typing import Any

from gateway.mapping import plancommon as pc
from gateway.mapping.planrules import FormatRules
from gateway.mapping.planschema import check


def map_careplan(rules: FormatRules, document: Any) -> pc.MappedDocument:
    """Validate ``document`` against its schema, then map it (SourceDocumentInvalid,
    MappingError when it cannot be)."""
    check(rules.validator, document)
    _check_ids(document)
    source = document["source"]
    identifier = {"system": rules.system("plan", source=source), "value": document["planId"]}
    mapped = pc.MappedDocument("careplan", identifier, pc.patient(rules, document["patient"]),
                               on_removal=rules.section("removed"))
    conditions = {rf["id"]: _condition(rules, mapped, document, i, rf)
                  for i, rf in enumerate(document["riskFactors"])}
    goals = [_goal(rules, mapped, source, document["planId"], (i, j), goal,
                   conditions[rf["id"]])
             for i, rf in enumerate(document["riskFactors"])
             for j, goal in enumerate(rf.get("goals") or [])]
    plan_id = pc.stable_id("CarePlan", identifier)
    tasks = [_task(rules, mapped, document, i, item, conditions)
             for i, item in enumerate(document.get("interventions") or [])]
    mapped.resources.insert(0, _careplan(rules, mapped, document, plan_id,
                                         list(conditions.values()), goals, tasks))
    return mapped


def _check_ids(document: dict[str, Any]) -> None:
    risks = document["riskFactors"]
    pc.check_unique([rf["id"] for rf in risks], "/riskFactors")
    pc.check_unique([i["id"] for i in document.get("interventions") or []], "/interventions")
    goals = [(f"/riskFactors/{i}/goals/{j}", g["id"]) for i, rf in enumerate(risks)
             for j, g in enumerate(rf.get("goals") or [])]
    seen: set[str] = set()
    for where, key in goals:
        if key in seen:
            raise pc.MappingError(f"{where}/id: the id {key!r} is used twice",
                                  location=f"{where}/id")
        seen.add(key)


def _careplan(rules: FormatRules, mapped: pc.MappedDocument, doc: dict[str, Any],
              plan_id: str, conditions: list[dict[str, str]], goals: list[dict[str, str]],
              tasks: list[dict[str, str]]) -> dict[str, Any]:
    section = rules.section("careplan")
    status = pc.code(rules, section["status"], doc["status"], "/status", mapped.issues)
    author = (mapped.party(pc.practitioner(rules, doc["coordinator"], doc["source"]))
              if doc.get("coordinator") else None)
    contributors = [mapped.party(pc.practitioner(rules, p, doc["source"]))
                    for p in doc.get("contributors") or []]
    team = None
    if doc.get("careTeamId"):
        team = {"reference": "CareTeam/" + pc.stable_id("CareTeam", {
            "system": rules.system("careteam", source=doc["source"]),
            "value": doc["careTeamId"]})}
    return pc.pruned({
        "resourceType": "CarePlan", "id": plan_id,
        "identifier": [mapped.identifier],
        "status": status, "intent": section.get("intent", "plan"),
        "category": _categories(section, doc),
        "title": doc.get("title"),
        "subject": {"reference": pc.PATIENT},
        "period": doc.get("outreachWindow"),
        "created": doc.get("enrolmentDate"),
        "author": author,
        "contributor": ([author] if author else []) + contributors,
        "careTeam": [team] if team else [],
        "addresses": conditions,
        "goal": goals,
        "activity": [{"reference": task} for task in tasks],
    })


def _categories(section: dict[str, Any], doc: dict[str, Any]) -> list[dict[str, Any]]:
    fixed = section.get("category")
    out = [{"coding": [dict(fixed)]}] if fixed else []
    program = doc.get("program")
    if program:
        system = str(section["program_system"]).format(source=doc["source"])
        out.append({"coding": [{"system": system, "code": program["code"]}],
                    "text": program.get("text") or program["code"]})
    return out


def _condition(rules: FormatRules, mapped: pc.MappedDocument, doc: dict[str, Any], index: int,
               risk: dict[str, Any]) -> dict[str, str]:
    section = rules.section("condition")
    identifier = {"system": rules.system("risk_factor", source=doc["source"]),
                  "value": f"{doc['planId']}/{risk['id']}"}
    return mapped.add(pc.pruned({
        "resourceType": "Condition", "id": pc.stable_id("Condition", identifier),
        "identifier": [identifier],
        "clinicalStatus": _fixed("http://terminology.hl7.org/CodeSystem/condition-clinical",
                                 section.get("clinicalStatus", "active")),
        "verificationStatus": _fixed(
            "http://terminology.hl7.org/CodeSystem/condition-ver-status",
            section.get("verificationStatus", "confirmed")),
        "category": [{"coding": [dict(section["category"])]}] if section.get("category")
        else [],
        "code": pc.concept(rules, section["code"], risk["code"], risk.get("text"),
                           f"/riskFactors/{index}/code", mapped.issues),
        "subject": {"reference": pc.PATIENT},
        "onsetDateTime": risk.get("onset"),
    }))


def _goal(rules: FormatRules, mapped: pc.MappedDocument, source: str, plan_key: str,
          where: tuple[int, int], goal: dict[str, Any],
          condition: dict[str, str]) -> dict[str, str]:
    rule = rules.section("goal")["lifecycleStatus"]
    pointer = f"/riskFactors/{where[0]}/goals/{where[1]}"
    identifier = {"system": rules.system("goal", source=source),
                  "value": f"{plan_key}/{goal['id']}"}
    status = pc.code(rules, rule, goal.get("status"), f"{pointer}/status", mapped.issues)
    achieved = goal.get("status") in ("achieved", "completed")
    return mapped.add(pc.pruned({
        "resourceType": "Goal", "id": pc.stable_id("Goal", identifier),
        "identifier": [identifier],
        "lifecycleStatus": status,
        "achievementStatus": _fixed(
            "http://terminology.hl7.org/CodeSystem/goal-achievement", "achieved")
        if achieved else None,
        "description": {"text": goal["description"]},
        "subject": {"reference": pc.PATIENT},
        "target": [{"dueDate": goal["dueDate"]}] if goal.get("dueDate") else [],
        "addresses": [condition],
        "note": [{"text": f"Target: {goal['target']}"}] if goal.get("target") else [],
    }))


def _task(rules: FormatRules, mapped: pc.MappedDocument, doc: dict[str, Any], index: int,
          item: dict[str, Any], conditions: dict[str, dict[str, str]]) -> dict[str, str]:
    section = rules.section("task")
    pointer = f"/interventions/{index}"
    identifier = {"system": rules.system("intervention", source=doc["source"]),
                  "value": f"{doc['planId']}/{item['id']}"}
    addressed = _addressed(mapped, item, conditions, pointer)
    owner = (mapped.party(pc.practitioner(rules, item["owner"], doc["source"]))
             if item.get("owner") else None)
    return mapped.add(pc.pruned({
        "resourceType": "Task", "id": pc.stable_id("Task", identifier),
        "identifier": [identifier],
        "status": pc.code(rules, section["status"], item["status"], f"{pointer}/status",
                          mapped.issues),
        "intent": section.get("intent", "plan"),
        "code": pc.concept(rules, section["code"], item["type"], item.get("description"),
                           f"{pointer}/type", mapped.issues),
        "description": item.get("description"),
        "focus": addressed[0] if addressed else None,
        "for": {"reference": pc.PATIENT},
        "owner": owner,
        "reasonReference": addressed[0] if addressed else None,
        "restriction": {"period": {"end": item["dueDate"]}} if item.get("dueDate") else None,
    }))


def _addressed(mapped: pc.MappedDocument, item: dict[str, Any],
               conditions: dict[str, dict[str, str]], pointer: str) -> list[dict[str, str]]:
    """The Conditions an intervention addresses; an id naming no risk factor is a warning."""
    out = []
    for i, key in enumerate(item.get("riskFactors") or []):
        if key in conditions:
            out.append(conditions[key])
        else:
            mapped.issues.append(pc.MappingIssue(
                f"{pointer}/riskFactors/{i}", f"{key!r} names no risk factor of this plan"))
    return out


def _fixed(system: str, value: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": value}]}
