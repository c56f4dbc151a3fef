"""The JSON Logic evaluator: the official conformance suite, JS semantics beyond it, the checks
``validate`` makes at rule creation, the limits on hostile input, and rules over real events.

``tests/fixtures/jsonlogic-tests.json`` is the language-independent suite published with the
JsonLogic specification (https://jsonlogic.com/tests.json), copied unchanged from the project's
shared conformance folder; ``tests/fixtures/README.md`` records its origin.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Final

import pytest

from ttlp.errors import UnprocessableError
from ttlp.rules.jsonlogic import (
    MAX_DEPTH,
    MAX_LIST,
    MAX_NODES,
    MAX_RULE_BYTES,
    MAX_STRING,
    OPERATORS,
    EvaluationError,
    RuleError,
    apply,
    compile_rule,
    truthy,
    validate,
)

FIXTURES: Final = Path(__file__).resolve().parent.parent / "fixtures"
SUITE: Final[list[Any]] = json.loads((FIXTURES / "jsonlogic-tests.json").read_text("utf-8"))
CASES: Final = [entry for entry in SUITE if isinstance(entry, list)]
EVENTS: Final = [
    json.loads(line)
    for line in (FIXTURES / "unified-events.ndjson").read_text("utf-8").splitlines()
    if line.strip()
]


def json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON sees it: 1 equals 1.0, true does not equal 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _case_id(number: int, rule: Any) -> str:
    return f"{number:03d} {json.dumps(rule, separators=(',', ':'))[:60]}"


# -- conformance ----------------------------------------------------------------------------
def test_the_suite_holds_278_cases_and_every_one_is_loaded() -> None:
    headings = [entry for entry in SUITE if isinstance(entry, str)]
    assert len(headings) + len(CASES) == len(SUITE)  # nothing else in the file
    assert all(len(case) == 3 for case in CASES)
    assert len(CASES) == 278


@pytest.mark.parametrize(
    ("rule", "data", "expected"),
    [pytest.param(*case, id=_case_id(n, case[0])) for n, case in enumerate(CASES, 1)],
)
def test_conformance_case(rule: Any, data: Any, expected: Any) -> None:
    assert json_equal(apply(rule, data), expected)


def test_every_conformance_rule_passes_validation() -> None:
    for rule, _data, _expected in CASES:
        validate(rule)


# -- JavaScript semantics the suite does not pin down ---------------------------------------
@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"==": [None, 0]}, False),
        ({"==": [None, None]}, True),
        ({"==": [[1], 1]}, True),
        ({"==": [True, "1"]}, True),
        ({"==": ["", 0]}, True),
        ({"==": [" 12 ", 12]}, True),
        ({"==": ["0x10", 16]}, True),
        ({"==": ["1_0", 10]}, False),
        ({"==": ["nan", {"var": "nan"}]}, False),
        ({"===": [1, 1.0]}, True),
        ({"===": [True, 1]}, False),
        ({"<": [None, 1]}, True),
        ({">": ["b", "a"]}, True),
        ({">": ["10", "9"]}, False),
        ({">": ["10", 9]}, True),
        ({"+": ["3 apples", 1]}, 4),
        ({"-": ["", 1]}, -1),
        ({"*": [2.5, 2]}, 5),
        ({"%": [-3, 2]}, -1),
        ({"%": [5.5, 2]}, 1.5),
        ({"/": [1, 0]}, None),
        ({"%": [1, 0]}, None),
        ({"cat": [1.0, 0.5, 1e21, 1e-7, None, True, [1, [2, 3]]]}, "10.51e+211e-7nulltrue1,2,3"),
        ({"in": [1, "a1"]}, True),
        ({"in": ["", ""]}, False),
        ({"substr": ["jsonlogic", "4"]}, "logic"),
        ({"var": "list.length"}, 3),
        ({"var": "list.1"}, "b"),
        ({"var": "list.01"}, None),
        ({"var": ["nothing", {"cat": ["de", "fault"]}]}, "default"),
        ({"var": ["nullish", 5]}, None),
        ({"merge": [[1], 2, [[3]]]}, [1, 2, [3]]),
        ({"all": ["abc", True]}, False),
        ({"if": [{"!!": [{"var": "nan"}]}, "yes", "no"]}, "no"),
    ],
    ids=lambda v: json.dumps(v) if isinstance(v, dict) else None,
)
def test_js_semantics(rule: Any, expected: Any) -> None:
    data = {"list": ["a", "b", "c"], "nullish": None, "nan": float("nan")}
    assert json_equal(apply(rule, data), expected)


def test_max_of_a_non_number_is_nan() -> None:
    assert math.isnan(apply({"max": [1, "x"]}))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, False),
        (False, False),
        (0, False),
        (0.0, False),
        (float("nan"), False),
        ("", False),
        ([], False),
        (True, True),
        (-1, True),
        ("0", True),
        ([0], True),
        ({}, True),
    ],
)
def test_truthy_follows_jsonlogic(value: Any, expected: bool) -> None:
    assert truthy(value) is expected


def test_results_are_fresh_lists_the_caller_may_change() -> None:
    rule = compile_rule([1, 2])
    first = rule.evaluate(None)
    first.append(3)
    assert rule.evaluate(None) == [1, 2]


# -- validate: each reason for refusal ------------------------------------------------------
def _nested(depth: int) -> Any:
    rule: Any = True
    for _ in range(depth):
        rule = {"!": [rule]}
    return rule


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"and": [True, {"foo": [1]}]}, "unknown operator 'foo' at $.and[1]"),
        ({"method": ["x", "upper"]}, "unknown operator 'method' at $"),
        ({"==": [1]}, "operator '==' takes 2 arguments, got 1 at $[\"==\"]"),
        ({"!": [1, 2]}, "operator '!' takes 1 argument, got 2 at $[\"!\"]"),
        ({"<": [1, 2, 3, 4]}, "operator '<' takes 2 to 3 arguments, got 4 at $[\"<\"]"),
        ({"or": []}, "operator 'or' takes at least 1 arguments, got 0 at $.or"),
        ({"var": "a", "x": 1}, "an operation must be an object with exactly one key"),
        ({"if": [{}, 1, 2]}, "(got 0 keys) at $.if[0]"),
        ({"==": [1, float("inf")]}, 'number is not finite at $["=="][1]'),
        ({">=": [{"var": "x"}, 2**64]}, 'integer outside the 64-bit range at $[">="][1]'),
        ({"in": ["a", ("a",)]}, "unsupported value of type tuple at $.in[1]"),
        ({1: 2}, "unknown operator 1 at $"),
        (_nested(MAX_DEPTH), f"rule nested deeper than {MAX_DEPTH} levels at $"),
        ({"cat": list(range(MAX_NODES))}, f"rule has more than {MAX_NODES} values at $.cat"),
        ({"cat": ["x" * MAX_RULE_BYTES]}, f"rule larger than {MAX_RULE_BYTES} bytes at $.cat"),
        ({"cat": ["é" * (MAX_RULE_BYTES // 2)]}, f"rule larger than {MAX_RULE_BYTES} bytes"),
    ],
    ids=lambda v: v[:40] if isinstance(v, str) else None,
)
def test_validate_refuses_and_names_the_problem_and_its_path(rule: Any, message: str) -> None:
    with pytest.raises(RuleError) as caught:
        validate(rule)
    assert message in str(caught.value)
    assert isinstance(caught.value, UnprocessableError)  # the API answers 422 (ttlp.api.errors)


def test_validate_accepts_a_rule_at_the_limits() -> None:
    validate(_nested(MAX_DEPTH - 1))
    validate({"cat": list(range(MAX_NODES - 1))})


def test_every_operator_of_the_spec_is_known_and_nothing_else() -> None:
    spec = {
        "var", "missing", "missing_some", "if", "?:", "==", "===", "!=", "!==", "!", "!!",
        "or", "and", ">", ">=", "<", "<=", "max", "min", "+", "-", "*", "/", "%", "map",
        "filter", "reduce", "all", "none", "some", "merge", "in", "cat", "substr", "log",
    }  # fmt: skip
    assert spec == OPERATORS


def test_compile_rule_validates() -> None:
    with pytest.raises(RuleError, match="unknown operator"):
        compile_rule({"eval": "1"})


# -- limits on hostile input ----------------------------------------------------------------
def test_cat_result_is_capped() -> None:
    rule = compile_rule({"cat": [{"var": "s"}, {"var": "s"}]})
    assert rule.evaluate({"s": "x" * 10}) == "x" * 20
    with pytest.raises(EvaluationError, match=f"longer than {MAX_STRING}"):
        rule.evaluate({"s": "x" * (MAX_STRING // 2 + 1)})


def test_merge_result_is_capped() -> None:
    rule = compile_rule({"merge": [{"var": "l"}, {"var": "l"}]})
    with pytest.raises(EvaluationError, match=f"longer than {MAX_LIST}"):
        rule.evaluate({"l": list(range(MAX_LIST // 2 + 1))})


def test_nested_iteration_runs_out_of_steps_instead_of_time() -> None:
    fan_out = {"merge": [{"var": ""}] * 50}
    rule = compile_rule({"map": [{"var": "l"}, {"map": [fan_out, {"map": [fan_out, 1]}]}]})
    with pytest.raises(EvaluationError, match="evaluation steps"):
        rule.evaluate({"l": [[0] * 100] * 100})


def test_array_to_string_conversions_count_against_the_budget() -> None:
    rule = compile_rule({"map": [{"var": "l"}, {"==": [{"var": ""}, "x"]}]})
    big = list(range(MAX_STRING // 8))
    with pytest.raises(EvaluationError):
        rule.evaluate({"l": [big] * 200})


def test_deeply_nested_data_fails_cleanly() -> None:
    data: Any = 1
    for _ in range(100_000):
        data = [data]
    with pytest.raises(EvaluationError, match="nested too deeply"):
        apply({"cat": [{"var": "d"}]}, {"d": data})


def test_huge_arithmetic_stays_a_float() -> None:
    result = apply({"reduce": [{"var": "l"}, {"*": [{"var": "accumulator"}, 10**18]}, 1]},
                   {"l": list(range(100))})  # fmt: skip
    assert result == math.inf


# -- rules over real UnifiedEvents ----------------------------------------------------------
def _of_type(event_type: str) -> list[dict[str, Any]]:
    return [e for e in EVENTS if e["eventType"] == event_type]


def test_gift_coins_rule_on_fixture_events() -> None:
    rule = compile_rule({">=": [{"var": "payload.coins"}, 1000]})
    matched = [e["payload"]["giftName"] for e in EVENTS if rule.matches(e)]
    assert matched == ["Lion", "Galaxy"]  # 29999 coins, and the Galaxy streak's 1000 at its end
    money_gun = next(e for e in _of_type("GIFT") if e["payload"]["giftName"] == "Money Gun")
    assert rule.evaluate(money_gun) is False


def test_streak_end_gift_rule_counts_each_streak_once() -> None:
    rule = compile_rule(
        {
            "and": [
                {"==": [{"var": "eventType"}, "GIFT"]},
                {"!": {"var": "payload.streakActive"}},
                {">": [{"var": "payload.coins"}, 0]},
            ]
        }
    )
    ends = [
        (e["payload"]["giftName"], e["payload"]["giftCount"]) for e in EVENTS if rule.matches(e)
    ]
    assert ends == [("Rose", 5), ("Lion", 1), ("Galaxy", 5), ("Money Gun", 1)]


def test_user_and_chat_rules_on_fixture_events() -> None:
    fans = compile_rule({"in": [{"var": "user.uniqueId"}, ["zoe.petals", "night.owl"]]})
    assert {e["user"]["uniqueId"] for e in EVENTS if fans.matches(e)} == {"zoe.petals", "night.owl"}
    moderator_chat = compile_rule(
        {"and": [{"==": [{"var": "eventType"}, "CHAT"]}, {"var": "user.isModerator"}]}
    )
    assert [e["payload"]["message"] for e in EVENTS if moderator_chat.matches(e)] == [
        e["payload"]["message"] for e in _of_type("CHAT") if e["user"].get("isModerator")
    ]
    html = compile_rule({"in": ["<img", {"var": "payload.message"}]})
    assert [e["user"]["uniqueId"] for e in EVENTS if html.matches(e)] == ["mallory"]


def test_battle_participant_rule_on_fixture_events() -> None:
    rule = compile_rule({"some": [{"var": "payload.participants"}, {">=": [{"var": "score"}, 1]}]})
    expected = [
        e["eventId"]
        for e in _of_type("BATTLE")
        if any(p.get("score", 0) >= 1 for p in e["payload"].get("participants", []))
    ]
    assert expected
    assert [e["eventId"] for e in EVENTS if rule.matches(e)] == expected


def test_missing_fields_on_fixture_events() -> None:
    rule = compile_rule({"missing": ["payload.coins", "user.displayName"]})
    follow = _of_type("FOLLOW")[0]
    assert rule.evaluate(follow) == ["payload.coins"]
    assert rule.evaluate(_of_type("CONNECTED")[0]) == ["payload.coins", "user.displayName"]


def test_mixed_rules_evaluate_on_every_fixture_event() -> None:
    rules = [
        compile_rule(r)
        for r in (
            {"cat": [{"var": "user.displayName"}, ": ", {"var": "payload.message"}]},
            {"reduce": [{"var": "payload.participants"}, {"+": [{"var": "accumulator"},
                        {"var": "current.score", }]}, 0]},
            {"substr": [{"var": "timestamp"}, 0, 10]},
            {"/": [{"var": "payload.coins"}, {"var": "payload.giftCount"}]},
            {"missing_some": [1, ["payload.likeCount", "payload.coins"]]},
            {"<=": [1000, {"var": "payload.viewerCount"}, 2000]},
        )
    ]  # fmt: skip
    for event in EVENTS:
        for rule in rules:
            rule.evaluate(event)
    galaxy_end = next(e for e in EVENTS if e["payload"].get("coins") == 1000)
    assert rules[3].evaluate(galaxy_end) == 200
    assert rules[2].evaluate(galaxy_end) == "2024-11-21"


def test_a_missing_value_is_not_zero_and_an_empty_payload_is_truthy() -> None:
    # JS: null == 0 is false and {} is truthy. Evaluators that differ here (null == 0 true,
    # {} falsy) would fire these rules on every event without coins or with an empty payload.
    no_coins = compile_rule({"==": [{"var": "payload.coins"}, 0]})
    assert not any(no_coins.matches(e) for e in EVENTS)
    empty_payload = compile_rule({"!": {"var": "payload"}})
    follows_and_shares = [e for e in EVENTS if e["payload"] == {}]
    assert follows_and_shares
    assert not any(empty_payload.matches(e) for e in follows_and_shares)
