"""Announce/webhook templates: the DESIGN §4 placeholders over real events, Jinja syntax, what is
refused at creation (injection attempts, unknown names, syntax), the limits, and that a compiled
template renders every fixture event."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

import msgspec
import pytest
from jinja2.sandbox import (
    UNSAFE_ASYNC_GENERATOR_ATTRIBUTES,
    UNSAFE_COROUTINE_ATTRIBUTES,
    UNSAFE_GENERATOR_ATTRIBUTES,
    modifies_known_mutable,
)

from ttlp.contracts.events import TRIGGER_IDS, decode_event
from ttlp.errors import UnprocessableError
from ttlp.rules.templates import (
    CHAT_MAX_LENGTH,
    MAX_SOURCE_LENGTH,
    PLACEHOLDERS,
    SAMPLE_EVENTS,
    VARIABLES,
    TemplateError,
    TemplateRenderError,
    compile_template,
)

FIXTURES: Final = Path(__file__).resolve().parent.parent / "fixtures"
EVENTS: Final = [
    json.loads(line)
    for line in (FIXTURES / "unified-events.ndjson").read_text("utf-8").splitlines()
    if line.strip()
]
# DESIGN §4, "Rule template tokens", with where each value lives and an event type carrying it.
DESIGN_TOKENS: Final = {
    "userId": ("CHAT", ("user", "userId")),
    "username": ("CHAT", ("user", "uniqueId")),
    "displayName": ("CHAT", ("user", "displayName")),
    "giftName": ("GIFT", ("payload", "giftName")),
    "giftCount": ("GIFT", ("payload", "giftCount")),
    "coins": ("GIFT", ("payload", "coins")),
    "likeCount": ("LIKE", ("payload", "likeCount")),
    "totalLikeCount": ("LIKE", ("payload", "totalLikeCount")),
    "viewerCount": ("ROOM_USER", ("payload", "viewerCount")),
    "message": ("CHAT", ("payload", "message")),
    "eventType": ("FOLLOW", ("eventType",)),
    "timestamp": ("SHARE", ("timestamp",)),
    "streamId": ("JOIN", ("streamId",)),
    "sessionId": ("EMOTE", ("sessionId",)),
}


def _of_type(event_type: str) -> list[dict[str, Any]]:
    return [e for e in EVENTS if e["eventType"] == event_type]


def _first(event_type: str) -> dict[str, Any]:
    return _of_type(event_type)[0]


# -- placeholders ---------------------------------------------------------------------------
def test_placeholders_are_exactly_the_design_tokens_each_described() -> None:
    assert set(PLACEHOLDERS) == set(DESIGN_TOKENS)
    assert all(description.strip() for description in PLACEHOLDERS.values())
    assert set(PLACEHOLDERS) <= VARIABLES


@pytest.mark.parametrize("token", list(DESIGN_TOKENS))
def test_every_placeholder_renders_from_a_real_event_of_its_type(token: str) -> None:
    event_type, path = DESIGN_TOKENS[token]
    event = _first(event_type)
    value: Any = event
    for key in path:
        value = value[key]
    template = compile_template(f"<{{{token}}}>", event_type=event_type)
    assert template.render(event) == f"<{value}>"
    assert template.placeholders == {token}
    assert compile_template(f"<{{{{ {token} }}}}>").render(event) == f"<{value}>"


def test_an_announce_reads_as_written() -> None:
    galaxy_end = next(e for e in _of_type("GIFT") if e["payload"]["coins"] == 1000)
    template = compile_template(
        "Thanks {displayName} (@{username}) for {giftCount}x {giftName} ({coins} coins)!",
        event_type="GIFT",
        max_length=CHAT_MAX_LENGTH,
    )
    user = galaxy_end["user"]
    assert template.render(galaxy_end) == (
        f"Thanks {user['displayName']} (@{user['uniqueId']}) for 5x Galaxy (1000 coins)!"
    )


def test_missing_and_null_values_render_empty() -> None:
    chat = _first("CHAT")
    template = compile_template("[{giftName}|{coins}|{{ payload.nothing.deeper }}|{{ n }}]".replace(
        "{{ n }}", "{{ payload.language if false else none }}"))  # fmt: skip
    assert template.render(chat) == "[|||]"
    system = _first("CONNECTED")
    assert compile_template("{displayName}/{username}").render(system) == "/system"


def test_single_braces_that_are_not_placeholders_stay_text() -> None:
    event = _first("GIFT")
    text = compile_template('{ } {"a": 1} {1} {coins } {{ "{coins}" }}').render(event)
    assert text == '{ } {"a": 1} {1} {coins } {coins}'


def test_jinja_syntax_works_alongside_placeholders() -> None:
    battle = next(e for e in _of_type("BATTLE") if e["payload"].get("battleStatus") == "ENDED")
    template = compile_template(
        "{% for p in payload.participants %}{{ loop.index }}.{{ p.uniqueId|default(p.userId) }}"
        "={{ p.score|default(0) }}{{ ', ' if not loop.last }}{% endfor %}"
        "{% if eventType == 'BATTLE' %} ({{ payload.battleStatus|lower }}){% endif %}",
        event_type="BATTLE",
    )
    expected = ", ".join(
        f"{i}.{p.get('uniqueId', p['userId'])}={p.get('score', 0)}"
        for i, p in enumerate(battle["payload"]["participants"], 1)
    )
    assert template.render(battle) == f"{expected} (ended)"


def test_text_is_not_html_escaped() -> None:
    injection = next(e for e in _of_type("CHAT") if e["user"]["uniqueId"] == "mallory")
    assert compile_template("{message}").render(injection) == "<img src=x onerror=alert(1)>"


def test_output_is_cut_at_the_cap() -> None:
    template = compile_template("{message} " * 20, max_length=CHAT_MAX_LENGTH)
    text = template.render(_first("CHAT"))
    assert len(text) == CHAT_MAX_LENGTH
    assert text.startswith(_first("CHAT")["payload"]["message"])
    assert template.render(_first("CHAT"), max_length=5) == text[:5]


def test_output_stops_early_on_a_long_loop() -> None:
    template = compile_template("{% for i in range(900) %}{username} {% endfor %}", max_length=20)
    assert len(template.render(_first("CHAT"))) == 20


# -- refused at creation --------------------------------------------------------------------
@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ joiner.__init__.__globals__.os }}",
        "{% for x in ().__class__.__base__.__subclasses__() %}{{ x }}{% endfor %}",
        "{{ namespace.__init__.__globals__['__builtins__'] }}",
        "{{ event['__class__'] }}",
        "{{ event|attr('__class__') }}",
        "{{ payload.update({'coins': 0}) }}",
        "{{ user.pop('userId') }}",
        "{{ '{0.__class__}'.format(event) }}",
        "{{ ''.format_map(event) }}",
        "{{ range.mro() }}",
        "{{ self.__init__ }}",
        "{{ lipsum.__globals__ }}",
        "{{ config }}",
        "{{ request.application }}",
        "{% include 'secrets.txt' %}",
        "{% import 'macros' as m %}",
        "{% extends 'base' %}",
    ],
)
def test_injection_attempts_are_refused_at_creation(source: str) -> None:
    with pytest.raises(TemplateError) as caught:
        compile_template(source)
    reasons = ("not allowed", "unknown variable", "cannot extend, include or import")
    assert any(reason in str(caught.value) for reason in reasons)


@pytest.mark.parametrize(
    "name",
    sorted(
        {"mro", "format", "format_map"}
        | UNSAFE_GENERATOR_ATTRIBUTES
        | UNSAFE_COROUTINE_ATTRIBUTES
        | UNSAFE_ASYNC_GENERATOR_ATTRIBUTES
        | {n for m in ({}, [], set()) for n in dir(m) if modifies_known_mutable(m, n)}
    ),
)
def test_every_name_the_sandbox_refuses_is_refused_at_creation(name: str) -> None:
    with pytest.raises(TemplateError, match=f"attribute '{name}' is not allowed"):
        compile_template(f"{{% if false %}}{{{{ payload.{name} }}}}{{% endif %}}")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ payload[('up' ~ 'date')]({'coins': 0}) }}", "attribute 'update' of 'dict'"),
        ("{{ event[('__cla' ~ 'ss__')]() }}", "attribute '__class__' of 'dict'"),
        ("{{ ('{0:>' ~ '9' * 8 ~ '}')[('for' ~ 'mat')](1) }}", "str.format is not available"),
        ("{{ '{0.__class__}'[('format_' ~ 'map')](event) }}", "str.format is not available"),
    ],
)
def test_names_computed_at_render_time_are_refused_by_the_sandbox(
    source: str, message: str
) -> None:
    with pytest.raises(TemplateError, match="refused by the sandbox") as caught:
        compile_template(source)  # the static check cannot see them; the trial render fails
    assert message in str(caught.value)


def test_an_unsafe_attribute_reached_by_a_computed_name_renders_nothing() -> None:
    template = compile_template("[{{ event[('__cla' ~ 'ss__')] }}]")
    assert template.render(_first("CHAT")) == "[]"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("Hi {nickname}!", "unknown placeholder {nickname}; known: {userId}"),
        ("Hi {user}!", "unknown placeholder {user}"),
        ("Hi {{ nickname }}", "unknown variable 'nickname'"),
        ("{% if coins > 1 %}yes", "syntax error (line 1)"),
        ("{{ coins|nosuch }}", "unknown filter 'nosuch'"),
        ("{% if coins is nosuch %}{% endif %}", "unknown test 'nosuch'"),
        ("x" * (MAX_SOURCE_LENGTH + 1), "longer than"),
    ],
)
def test_bad_templates_are_refused_with_a_clear_message(source: str, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        compile_template(source)
    assert message in str(caught.value)
    assert isinstance(caught.value, UnprocessableError)  # the API answers 422


def test_the_trial_render_uses_the_rules_event_type() -> None:
    source = "{{ coins * 2 }} coins doubled"
    with pytest.raises(TemplateError, match=r"'coins' is undefined.*sample CHAT event"):
        compile_template(source)  # no event type: it must work for any event
    gift = _first("GIFT")
    template = compile_template(source, event_type="GIFT")
    assert template.render(gift) == f"{gift['payload']['coins'] * 2} coins doubled"
    with pytest.raises(TemplateError, match="unknown event type"):
        compile_template(source, event_type="TIP")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ 'a' * 10**6 }}", "repetition longer than"),
        ("{{ 'a'|center(10**8) }}", "width or count"),
        ("{{ username.ljust(10**8) }}", "width or count"),
        ("{{ '%999999999s' % username }}", "width or count"),
        ("{{ '%s'|format(username) ~ '%099999999d'|format(1) }}", "width or count"),
        ("{{ 9 ** 9999999 }}", "integer too large"),
        ("{{ range(10**6)|list }}", "range() of more than"),
        ("{% for i in range(999) %}{% for j in range(999) %}{% endfor %}{% endfor %}", "steps"),
        (
            "{% set ns = namespace(s='ab') %}{% for i in range(40) %}"
            "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
            "value longer than",
        ),
        ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(1) }}", "RecursionError"),
        ("{{ (username * 500)|replace(username, username * 500) }}", "replace result"),
    ],
)
def test_resource_exhaustion_is_refused_at_creation(source: str, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        compile_template(source)
    assert message in str(caught.value)


def test_a_limit_reached_only_by_some_data_fails_the_render_not_the_process() -> None:
    template = compile_template("{{ message * 2000 }}", event_type="CHAT")
    with pytest.raises(TemplateRenderError, match="went past a limit"):
        template.render(_first("CHAT"))  # the sample message is shorter than real ones


# -- rendering never raises on real events --------------------------------------------------
ANY_EVENT_TEMPLATES: Final = [
    " ".join(f"{{{token}}}" for token in PLACEHOLDERS),
    "{{ eventType|lower }} by {{ displayName or username }} at {{ timestamp[:19] }}",
    "{% if coins %}{{ coins }} coins{% elif message %}{{ message|truncate(30) }}{% endif %}",
    "{{ event|tojson }}",
    "{{ payload|dictsort|map('first')|join(',') }} {{ user.get('followRole', '') }}",
    "{% for k, v in user|dictsort %}{{ k }}={{ v }};{% endfor %}",
    "{{ '%s: %s'|format(username, giftName or message or eventType) }}",
    "{{ (payload.participants or [])|map(attribute='userId')|join(' vs ') }}",
    "{{ payload.viewerCount|default(0) + payload.likeCount|default(0) }}",
]


@pytest.mark.parametrize("source", ANY_EVENT_TEMPLATES)
def test_a_template_for_any_event_renders_every_fixture_event(source: str) -> None:
    template = compile_template(source, max_length=CHAT_MAX_LENGTH)
    for event in EVENTS:
        text = template.render(event)
        assert isinstance(text, str)
        assert len(text) <= CHAT_MAX_LENGTH


@pytest.mark.parametrize(
    ("event_type", "source"),
    [
        ("GIFT", "{{ username }} sent {{ coins // giftCount }} x {{ giftCount }} {{ giftName }}"),
        ("LIKE", "{{ likeCount }} likes ({{ (100 * likeCount / totalLikeCount)|round(2) }}%)"),
        ("CHAT", "{{ message|upper|replace(' ', '_') }} [{{ payload.emotes|length }}]"),
        (
            "BATTLE",
            "{{ payload.participants|default([])|map(attribute='score', default=0)|sum }}",
        ),
        ("ROOM_USER", "{{ viewerCount }} of {{ payload.totalViewers }}"),
    ],
)
def test_a_template_for_one_event_type_renders_every_fixture_event_of_it(
    event_type: str, source: str
) -> None:
    template = compile_template(source, event_type=event_type)
    for event in _of_type(event_type):
        assert isinstance(template.render(event), str)


def test_sample_events_are_valid_unified_events_of_every_type() -> None:
    assert set(SAMPLE_EVENTS) == set(TRIGGER_IDS)
    for event_type, sample in SAMPLE_EVENTS.items():
        decoded = decode_event(msgspec.json.encode(sample))
        assert type(decoded).__struct_config__.tag == event_type
