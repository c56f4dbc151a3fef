"""Contract tests: the JSON Schemas in ``contracts/`` and the msgspec Structs agree (DESIGN §3).

Four kinds of evidence: the fixture files satisfy both; every Struct and its schema definition
say the same thing structurally (msgspec's own schema export, normalized, equals ours);
documents generated from the schemas are accepted by the Structs; and mutants of valid
documents (a field dropped, nulled, retyped, pushed past a limit, an unknown field, a wrong
eventType or triggerId) are accepted by both or refused by both.
"""

from __future__ import annotations

import json
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from ttlp.contracts import events
from ttlp.contracts.events import (
    INT64_MAX,
    INT64_MIN,
    TRIGGER_IDS,
    DeadLetter,
    RawEnvelope,
    RawFrame,
    UnifiedEvent,
    decode_event,
    decode_raw_frame,
    encode,
    envelope_from_fields,
    frame_from_fields,
    frame_size,
    frame_to_fields,
)
from ttlp.contracts.schemas import SCHEMA_NAMES, load_schema, validator
from ttlp.errors import PermanentError
from ttlp.tiktok.normalize import normalize_frame

REPO: Final = Path(__file__).resolve().parents[2]
CONTRACTS: Final = REPO / "contracts"
FIXTURES: Final = REPO / "tests" / "fixtures"
MAX_FRAME_BYTES: Final = 1_048_576
REGENERATE: Final = "regenerate with: .venv/bin/python scripts/make_fixtures.py"


def _compat_hypothesis_jsonschema() -> None:
    """Let hypothesis-jsonschema 0.23 generate objects under current Hypothesis.

    It drives the private ``cu.many`` with ``more()``/``reject()``; newer Hypothesis made
    ``many`` an iterator used inside a ``with`` block. This adapter restores the old methods
    and is a no-op where ``many`` still has ``more`` (a fixed release, or an older Hypothesis).
    """
    import hypothesis_jsonschema._from_schema as hjs
    from hypothesis.internal.conjecture import utils as cu

    if hasattr(cu.many, "more"):
        return

    class LegacyMany:
        def __init__(self, data: Any, **sizes: Any) -> None:
            self._many = cu.many(data, **sizes)
            self._many.__enter__()
            self._elements = iter(self._many)

        def more(self) -> bool:
            if next(self._elements, StopIteration) is StopIteration:
                self._many.__exit__(None, None, None)
                return False
            return True

        def reject(self, why: str | None = None) -> None:
            self._many.reject(why)

    public = {name: getattr(cu, name) for name in dir(cu) if not name.startswith("__")}
    hjs.cu = types.SimpleNamespace(**{**public, "many": LegacyMany})  # type: ignore[attr-defined,assignment]


_compat_hypothesis_jsonschema()
from hypothesis_jsonschema import from_schema  # noqa: E402  (after the compat patch)


# -- schemas, Structs and fixtures -----------------------------------------------------------
def _schema_file(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((CONTRACTS / f"{name}.schema.json").read_text("utf-8"))
    return schema


SCHEMAS: Final = {name: _schema_file(name) for name in SCHEMA_NAMES}
VALIDATORS: Final = {name: Draft202012Validator(schema) for name, schema in SCHEMAS.items()}
STRUCT_DECODERS: Final[dict[str, msgspec.json.Decoder[Any]]] = {
    "raw.v1": msgspec.json.Decoder(RawFrame),
    "unified-event.v1": msgspec.json.Decoder(UnifiedEvent),
    "dlq.v1": msgspec.json.Decoder(DeadLetter),
}


def _lines(name: str) -> list[str]:
    return (FIXTURES / name).read_text(encoding="utf-8").splitlines()


RAW_LINES: Final = _lines("raw-frames.ndjson")
EVENT_LINES: Final = _lines("unified-events.ndjson")
DLQ_CASES: Final = [json.loads(line) for line in _lines("dlq-frames.ndjson")]


def schema_accepts(name: str, document: Any) -> bool:
    return VALIDATORS[name].is_valid(document)


def struct_accepts(name: str, document: Any) -> bool:
    """Whether the msgspec Struct decodes ``document`` sent as JSON text (the runtime path)."""
    try:
        STRUCT_DECODERS[name].decode(json.dumps(document))
    except msgspec.ValidationError:
        return False
    return True


def inline_refs(node: Any, root: dict[str, Any]) -> Any:
    """``node`` with every local ``$ref`` replaced by its target (our schemas never recurse)."""
    if isinstance(node, list):
        return [inline_refs(item, root) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target: Any = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        return {**inline_refs(target, root), **inline_refs(siblings, root)}
    return {k: inline_refs(v, root) for k, v in node.items() if k != "$defs"}


# -- the schema files ------------------------------------------------------------------------
@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_schema_is_valid_draft_2020_12_with_id_title_and_field_descriptions(name: str) -> None:
    schema = SCHEMAS[name]
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(f"{name}.schema.json")
    assert schema["title"]
    undocumented = [
        f"{owner}.{field}"
        for owner, node in _object_schemas(inline_refs(schema, schema))
        for field, prop in node.get("properties", {}).items()
        if not prop.get("description")
    ]
    assert not undocumented


def _object_schemas(node: Any, owner: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema that declares properties (``if`` selectors declare none, they test)."""
    if isinstance(node, dict):
        owner = node.get("title", owner)
        if "properties" in node:
            yield owner, node
        for key, value in node.items():
            if key != "if":
                yield from _object_schemas(value, owner)
    elif isinstance(node, list):
        for item in node:
            yield from _object_schemas(item, owner)


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_packaged_loader_returns_the_repository_schema(name: str) -> None:
    assert load_schema(name) == SCHEMAS[name]
    assert load_schema(f"{name}.schema.json") == SCHEMAS[name]
    assert validator(name).schema == SCHEMAS[name]


def test_packaged_loader_refuses_unknown_names() -> None:
    with pytest.raises(ValueError, match="unknown contract schema"):
        load_schema("raw.v9")


# Keywords without validation meaning here; msgspec spells a one-value Literal as an enum.
_ANNOTATIONS: Final = {
    "$schema",
    "$id",
    "title",
    "description",
    "default",
    "contentEncoding",
    "contentMediaType",
}


def _normalized(node: Any) -> Any:
    if isinstance(node, list):
        return [_normalized(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _normalized(v) for k, v in node.items() if k not in _ANNOTATIONS}
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if "enum" in out:
        out["enum"] = sorted(out["enum"], key=json.dumps)
    if "required" in out:
        out["required"] = sorted(out["required"])
    if out.get("required") == []:
        del out["required"]
    return out


def _struct_definitions() -> list[str]:
    defs = SCHEMAS["unified-event.v1"]["$defs"]
    return sorted(
        name
        for name in defs
        if isinstance(getattr(events, name, None), type)
        and issubclass(getattr(events, name), msgspec.Struct)
    )


@pytest.mark.parametrize(
    ("schema_name", "definition", "struct"),
    [
        ("raw.v1", None, RawFrame),
        ("dlq.v1", None, DeadLetter),
        *[("unified-event.v1", name, getattr(events, name)) for name in _struct_definitions()],
    ],
    ids=lambda value: value if isinstance(value, str) else getattr(value, "__name__", None),
)
def test_schema_definition_states_the_same_constraints_as_its_struct(
    schema_name: str, definition: str | None, struct: type[msgspec.Struct]
) -> None:
    """Fields, required sets, patterns, bounds and enums, compared as data.

    msgspec exports its own JSON Schema for a Struct; normalized (refs inlined, annotations
    dropped), it must equal the hand-written definition.
    """
    schema = SCHEMAS[schema_name]
    ours = schema if definition is None else schema["$defs"][definition]
    (ref,), components = msgspec.json.schema_components([struct])
    theirs = {"$defs": components, **ref}
    assert _normalized(inline_refs(ours, schema)) == _normalized(inline_refs(theirs, theirs))


def _branches() -> dict[str, dict[str, Any]]:
    """eventType → the branch definition its if/then selects."""
    schema = SCHEMAS["unified-event.v1"]
    return {
        rule["if"]["properties"]["eventType"]["const"]: schema["$defs"][
            rule["then"]["$ref"].removeprefix("#/$defs/")
        ]
        for rule in schema["allOf"]
    }


def test_unified_schema_selects_one_branch_per_event_type_with_its_trigger_id() -> None:
    schema = SCHEMAS["unified-event.v1"]
    assert schema["properties"]["eventType"]["enum"] == list(TRIGGER_IDS)
    branches = _branches()
    assert list(branches) == list(TRIGGER_IDS)
    for event_type, branch in branches.items():
        assert branch["properties"]["eventType"]["const"] == event_type
        assert branch["properties"]["triggerId"]["const"] == TRIGGER_IDS[event_type]
        assert branch["title"] == events.EVENT_CLASSES[event_type].__name__


# -- fixtures --------------------------------------------------------------------------------
@pytest.mark.parametrize("line", RAW_LINES, ids=lambda line: json.loads(line)["type"])
def test_raw_fixture_frame_satisfies_schema_and_struct(line: str) -> None:
    assert not list(VALIDATORS["raw.v1"].iter_errors(json.loads(line)))
    assert encode(decode_raw_frame(line)) == line.encode()


@pytest.mark.parametrize("line", EVENT_LINES, ids=lambda line: json.loads(line)["eventType"])
def test_unified_fixture_event_satisfies_schema_and_struct(line: str) -> None:
    assert not list(VALIDATORS["unified-event.v1"].iter_errors(json.loads(line)))
    assert encode(decode_event(line)) == line.encode()


def test_unified_fixture_is_the_normalized_raw_fixture() -> None:
    normalized = [encode(normalize_frame(decode_raw_frame(line))).decode() for line in RAW_LINES]
    assert normalized == EVENT_LINES, f"tests/fixtures are stale; {REGENERATE}"


def test_fixtures_cover_every_event_type_and_raw_passthrough() -> None:
    events_ = [json.loads(line) for line in EVENT_LINES]
    assert {event["eventType"] for event in events_} == set(TRIGGER_IDS)
    raw_types = {e["payload"]["rawType"] for e in events_ if e["eventType"] == "RAW"}
    assert {"WebcastSocialMessage", "WebcastControlMessage", "WebcastBarrageMessage"} <= raw_types
    subscribe_types = {
        json.loads(raw)["type"]
        for raw, event in zip(RAW_LINES, events_, strict=True)
        if event["eventType"] == "SUBSCRIBE"
    }
    assert subscribe_types == {
        "WebcastSocialMessage",
        "WebcastBarrageMessage",
        "WebcastSubNotifyMessage",
    }


def _logical_form(fields: dict[str, str]) -> dict[str, Any] | None:
    """A Redis entry as the raw.v1 schema describes it; ``None`` if ``data`` is not JSON."""
    document: dict[str, Any] = dict(fields)
    if fields.get("seqNo", "").isdigit():
        document["seqNo"] = int(fields["seqNo"])
    if "data" in fields:
        try:
            document["data"] = json.loads(fields["data"])
        except json.JSONDecodeError:
            return None
    return document


def _failure(fields: dict[str, str]) -> tuple[str | None, bool]:
    """The reason the normalizer's path dead-letters ``fields``, and if the envelope was bad."""
    try:
        frame = frame_from_fields(fields, MAX_FRAME_BYTES)
    except PermanentError as exc:
        return exc.reason, exc.reason == "VALIDATION_ERROR"
    try:
        normalize_frame(frame)
    except PermanentError as exc:
        return exc.reason, False
    return None, False


@pytest.mark.parametrize("case", DLQ_CASES, ids=lambda case: case["case"])
def test_dlq_fixture_frame_fails_with_its_expected_reason(case: dict[str, Any]) -> None:
    fields, expected = case["fields"], case["expectedReason"]
    assert all(isinstance(value, str) for value in fields.values())
    reason, envelope_refused = _failure(fields)
    assert reason == expected
    document = _logical_form(fields)
    if document is not None:
        # Envelope faults are the schema's business too; content faults pass the envelope.
        assert schema_accepts("raw.v1", document) is not envelope_refused


# -- generated documents ---------------------------------------------------------------------
def _strategy(name: str) -> st.SearchStrategy[Any]:
    schema = SCHEMAS[name]
    if name == "unified-event.v1":  # one strategy per branch: every eventType gets examples
        return st.one_of([from_schema(inline_refs(b, schema)) for b in _branches().values()])
    return from_schema(inline_refs(schema, schema))


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_documents_generated_from_schema_are_accepted_by_struct(name: str) -> None:
    @settings(max_examples=60, deadline=None, database=None)
    @given(document=_strategy(name))
    def check(document: Any) -> None:
        assert schema_accepts(name, document)
        assert struct_accepts(name, document), document

    check()


# -- mutated documents -----------------------------------------------------------------------
_DROP: Final = object()
# No integral floats (7.0): see test_integral_floats_are_the_one_known_difference.
WRONG_VALUES: Final[list[Any]] = [None, "x", 1, 1.5, -2.5, True, [], {}, ["x"], {"x": 1}]
INT_EDGES: Final = [-1, 0, 1, 2, 3, 15, 16, INT64_MAX, INT64_MAX + 1, INT64_MIN, INT64_MIN - 1]
# Every maxLength/minLength in the contracts, and one past it.
STRING_LENGTHS: Final = [0, 1, 32, 33, 64, 65, 128, 129, 2048, 2049, 4096, 4097, 8192, 8193]
STRING_LENGTHS_LONG: Final = [16384, 16385]
OPAQUE: Final = {"data"}  # raw frame data and RAW payload data hold any JSON object


def _replace(document: Any, path: tuple[Any, ...], key: Any, value: Any) -> Any:
    """A copy of ``document`` with ``key`` of the container at ``path`` set (or ``_DROP``ped)."""
    clone = json.loads(json.dumps(document))
    target = clone
    for step in path:
        target = target[step]
    if value is _DROP:
        del target[key]
    else:
        target[key] = value
    return clone


def _containers(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            if key not in OPAQUE:
                yield from _containers(value, (*path, key))
    elif isinstance(node, list):
        yield path, node
        for index, value in enumerate(node):
            yield from _containers(value, (*path, index))


def _values_for(value: Any) -> list[Any]:
    candidates = list(WRONG_VALUES)
    if isinstance(value, int) and not isinstance(value, bool):
        candidates += INT_EDGES
    if isinstance(value, str):
        candidates += ["x" * n for n in STRING_LENGTHS + STRING_LENGTHS_LONG]
        candidates += [value + "\n", value + "0", value[:-1], value.upper(), f" {value}"]
    return candidates


def mutants(document: Any) -> Iterator[tuple[str, Any]]:
    """(description, mutant) pairs: every field dropped, replaced and joined by an unknown one."""
    for path, container in _containers(document):
        where = "/".join(map(str, path)) or "<root>"
        if isinstance(container, list):
            for index in range(len(container)):
                yield f"{where}[{index}] removed", _replace(document, path, index, _DROP)
            continue
        yield f"{where} +unknownField", _replace(document, path, "unknownField", 1)
        for key, value in container.items():
            yield f"{where}/{key} dropped", _replace(document, path, key, _DROP)
            for other in _values_for(value):
                if type(other) is not type(value) or other != value:
                    yield f"{where}/{key}={other!r:.40}", _replace(document, path, key, other)


def event_mutants(event: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """Generic mutants plus re-tagging: unknown eventTypes, every other type, every triggerId."""
    yield from mutants(event)
    for event_type in [*TRIGGER_IDS, "NOT_A_TYPE", event["eventType"].lower()]:
        if event_type != event["eventType"]:
            yield f"eventType={event_type}", {**event, "eventType": event_type}
            trigger = TRIGGER_IDS.get(event_type, 99)
            retagged = {**event, "eventType": event_type, "triggerId": trigger}
            yield f"eventType={event_type},triggerId={trigger}", retagged
    for trigger in range(0, 17):
        if trigger != event["triggerId"]:
            yield f"triggerId={trigger}", {**event, "triggerId": trigger}


def _disagreements(name: str, cases: Iterator[tuple[str, Any]]) -> list[str]:
    """The cases where schema and Struct disagree; also checks the cases are not one-sided."""
    out, verdicts = [], set()
    for description, document in cases:
        by_schema, by_struct = schema_accepts(name, document), struct_accepts(name, document)
        verdicts.add(by_struct)
        if by_schema != by_struct:
            out.append(f"{description}: schema {'accepts' if by_schema else 'refuses'}")
    assert verdicts == {True, False}, "mutants should include accepted and refused documents"
    return out


def _richest(lines: list[str], key: str) -> dict[str, str]:
    """Per value of ``key``, the longest fixture line (the one with the most fields set)."""
    best: dict[str, str] = {}
    for line in lines:
        value = json.loads(line)[key]
        if len(line) > len(best.get(value, "")):
            best[value] = line
    return best


RICHEST_EVENTS: Final = _richest(EVENT_LINES, "eventType")
RICHEST_FRAMES: Final = _richest(RAW_LINES, "type")


@pytest.mark.parametrize("event_type", sorted(RICHEST_EVENTS))
def test_event_mutants_are_accepted_or_refused_by_both(event_type: str) -> None:
    event = json.loads(RICHEST_EVENTS[event_type])
    assert not _disagreements("unified-event.v1", event_mutants(event))


@pytest.mark.parametrize("raw_type", sorted(RICHEST_FRAMES))
def test_raw_frame_mutants_are_accepted_or_refused_by_both(raw_type: str) -> None:
    frame = json.loads(RICHEST_FRAMES[raw_type])
    assert not _disagreements("raw.v1", mutants(frame))
    # data is one of two shapes; the other shape and non-shapes must agree as well.
    other_data = [{}, "", "AAEC", 1, None, [], True]
    cases = ((f"data={d!r}", {**frame, "data": d}) for d in other_data)
    assert not _disagreements("raw.v1", cases)


DEAD_LETTERS: Final = [
    {
        "stage": "normalizer",
        "reason": "VALIDATION_ERROR",
        "error": "invalid raw.v1 frame: Object missing required field `streamId`",
        "payload": json.dumps(
            next(c["fields"] for c in DLQ_CASES if c["case"] == "missing-stream-id")
        ),
        "failedAt": "2024-11-21T19:31:02.123Z",
        "rawType": "WebcastChatMessage",
        "sessionId": "9d2e4b71-0c3a-4f58-8e16-5a7b9c0d1e2f",
        "sourceStream": "ttlc:raw",
        "sourceId": "1732217462123-0",
    },
    {
        "stage": "forwarder",
        "reason": "MAX_DELIVERIES",
        "error": "",
        "payload": "",
        "failedAt": "2024-11-21T19:31:02+01:00",
    },
]


@pytest.mark.parametrize("dead_letter", DEAD_LETTERS, ids=["full", "minimal"])
def test_dead_letter_mutants_are_accepted_or_refused_by_both(dead_letter: dict[str, Any]) -> None:
    assert schema_accepts("dlq.v1", dead_letter)
    assert struct_accepts("dlq.v1", dead_letter)
    assert not _disagreements("dlq.v1", mutants(dead_letter))


def test_integral_floats_are_the_one_known_difference() -> None:
    """JSON Schema's ``integer`` is any number with a zero fraction, so ``7.0`` validates;
    msgspec refuses a JSON float for an ``int`` field. No schema keyword can tell ``7`` from
    ``7.0``, and the runtime decodes with msgspec, so such a document is still refused end to
    end. Generated and mutated documents therefore never hold integral floats."""
    frame = json.loads(RAW_LINES[0])
    frame["seqNo"] = 1.0
    assert schema_accepts("raw.v1", frame)
    assert not struct_accepts("raw.v1", frame)


# -- the events this process encoded, decoded from memory -------------------------------------
def test_an_event_this_process_encoded_is_decoded_from_memory_equal_to_its_decode() -> None:
    event = decode_event(EVENT_LINES[0])
    text = events.encode_event_text(event)
    assert text == encode(event).decode()
    copy = "".join(list(text))  # an equal string, as a Redis read gives: found by its hash
    assert copy is not text
    assert decode_event(copy) is event
    assert decode_event(text.encode()) is not event  # bytes are always decoded
    assert decode_event(text.encode()) == event


def test_the_memory_keeps_the_last_recent_events_and_decodes_older_ones_again() -> None:
    first = decode_event(EVENT_LINES[0])
    text = events.encode_event_text(first)
    for line in EVENT_LINES[1:]:
        events.encode_event_text(decode_event(line))
    assert decode_event(text) is first
    base = msgspec.json.decode(EVENT_LINES[0])
    for seq in range(events.RECENT_EVENTS):
        events.encode_event_text(decode_event(encode({**base, "seqNo": 10_000 + seq})))
    assert len(events._recent) == events.RECENT_EVENTS
    again = decode_event(text)
    assert again is not first
    assert again == first


def test_an_invalid_text_is_refused_even_right_after_a_valid_one() -> None:
    event = decode_event(EVENT_LINES[0])
    text = events.encode_event_text(event)
    broken = text.replace('"eventType":"', '"eventType":"NOPE', 1)
    with pytest.raises(msgspec.ValidationError):
        decode_event(broken)


# -- a raw entry validated once for its two readers (the normalizer and the archive) ----------
def raw_entries() -> list[dict[str, str]]:
    return [frame_to_fields(decode_raw_frame(line)) for line in RAW_LINES]


def test_each_reader_of_a_raw_entry_gets_what_its_own_validation_gives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whichever of the two validates an entry first, the other builds its frame or envelope
    from what was found (``_check_times``, which only a full validation calls, fails here),
    equal to what its own validation gives; an equal copy of the entry (a Redis read) is
    found too, and each entry is taken once."""

    def validated_again(*_: str) -> None:
        raise AssertionError("validated in full although the other reader had")

    for fields in raw_entries():
        events._validated.clear()
        alone = (frame_from_fields(fields), envelope_from_fields({**fields}))
        events._validated.clear()
        assert not events._validated
        copy = {key: "".join(list(value)) for key, value in fields.items()}
        for first, then in (
            (envelope_from_fields, frame_from_fields),
            (frame_from_fields, envelope_from_fields),
        ):
            found = first(fields)
            with monkeypatch.context() as patched:
                patched.setattr(events, "_check_times", validated_again)
                other = then(copy)
            assert {type(found): found, type(other): other} == {
                RawFrame: alone[0],
                RawEnvelope: alone[1],
            }
            assert not events._validated  # taken once


def test_the_size_limit_holds_for_an_entry_the_archive_validated_first() -> None:
    fields = raw_entries()[0]
    envelope_from_fields(fields)
    with pytest.raises(PermanentError) as refused:
        frame_from_fields(fields, max_bytes=frame_size(fields) - 1)
    assert refused.value.reason == "FRAME_TOO_LARGE"
    assert frame_from_fields(fields, max_bytes=frame_size(fields)) == frame_from_fields(fields)


def test_a_refused_entry_leaves_nothing_and_the_memory_is_bounded() -> None:
    events._validated.clear()
    fields = raw_entries()[0]
    for broken in ({**fields, "seqNo": "-1"}, {**fields, "data": "[1]"}):
        for validate in (frame_from_fields, envelope_from_fields):
            with pytest.raises(PermanentError):
                validate(broken)
    assert not events._validated
    for seq in range(events.RECENT_FRAMES + 10):
        frame_from_fields({**fields, "seqNo": str(seq)})
    assert len(events._validated) == events.RECENT_FRAMES
    oldest = {**fields, "seqNo": "0"}
    assert (*oldest, *oldest.values()) not in events._validated
    newest = {**fields, "seqNo": str(events.RECENT_FRAMES + 9)}
    assert (*newest, *newest.values()) in events._validated
