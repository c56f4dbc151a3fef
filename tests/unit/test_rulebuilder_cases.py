"""What the UI's rule builder writes means what it says: each case of
``tests/fixtures/rulebuilder-cases.json`` (the builder tree → JSON Logic pairs that
``tests/js/rulebuilder.test.mjs`` checks the builder produces and reads back) is evaluated here
by the rules role's evaluator, against the sample event of its type with the case's changes, and
also checked as a rule definition the API accepts (``compile_definition``)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.support.paths import FIXTURES
from ttlp.rules import jsonlogic
from ttlp.rules.engine import LogAction, compile_definition
from ttlp.rules.templates import SAMPLE_EVENTS

CASES: list[dict[str, Any]] = json.loads(
    (FIXTURES / "rulebuilder-cases.json").read_text(encoding="utf-8")
)["cases"]


def changed(event_type: str, change: dict[str, Any]) -> dict[str, Any]:
    """The sample event of ``event_type`` with ``set`` (dotted path → value) and ``unset``."""
    event = copy.deepcopy(SAMPLE_EVENTS[event_type])
    for path, value in change.get("set", {}).items():
        *parents, last = path.split(".")
        target = event
        for key in parents:
            target = target[key]
        assert last in target, f"{path}: not a field of the sample {event_type} event"
        target[last] = value
    for path in change.get("unset", []):
        *parents, last = path.split(".")
        target = event
        for key in parents:
            target = target[key]
        del target[last]
    return event


def what(change: dict[str, Any]) -> str:
    """An event of a case in words, for the assertion's message."""
    done = {k: v for k, v in change.items() if k in ("set", "unset")}
    return json.dumps(done, ensure_ascii=False) if done else "the sample"


def test_the_cases_cover_every_kind_of_condition_the_builder_writes() -> None:
    def checks(tree: dict[str, Any]) -> set[tuple[str, bool]]:
        if tree["kind"] == "group":
            return set().union(*(checks(item) for item in tree["items"]))
        return {(tree["check"], bool(tree.get("negate")))}

    found = set().union(*(checks(case["builder"]) for case in CASES))
    kinds = {check for check, _ in found}
    assert kinds == {
        "contains",
        "startsWith",
        "inList",
        "user",
        "coins",
        "giftCount",
        "likeCount",
        "compare",
    }
    assert {check for check, negate in found if negate} == {
        "contains",
        "startsWith",
        "inList",
        "user",
    }
    assert {case["builder"]["op"] for case in CASES if len(case["builder"]["items"]) > 1} == {
        "and",
        "or",
    }


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_the_builders_json_logic_matches_the_events_it_says(case: dict[str, Any]) -> None:
    rule = jsonlogic.compile_rule(case["logic"])
    # The API takes it as a rule's condition (known operators, limits).
    compile_definition(case["eventType"], case["logic"], LogAction())
    events = case["events"]
    outcomes = [(what(c), rule.matches(changed(case["eventType"], c))) for c in events]
    assert outcomes == [(what(c), c["matches"]) for c in events]
