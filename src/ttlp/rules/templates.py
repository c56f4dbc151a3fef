"""Announce and webhook text templates: DESIGN §4 ``{token}`` placeholders plus sandboxed Jinja2.

A template is text such as ``Thanks {displayName} for {giftCount}x {giftName}!``, optionally with
full Jinja syntax (``{% if coins >= 1000 %}WOW {% endif %}{{ username|upper }}``).

How the two forms coexist: in the template's literal text (what Jinja itself leaves as text,
outside ``{{ }}``, ``{% %}`` and ``{# #}``), ``{name}`` with a single brace on each side and an
identifier inside is a placeholder and means exactly ``{{ name }}``. The translation is done on
the parsed template, not on the source, so Jinja syntax is never rewritten: ``{{ coins }}`` and
``{coins}`` are the same thing, and text inside ``{{ "{coins}" }}`` stays literal (that is the
way to write a literal ``{coins}``). Other braces (``{ }``, ``{"a": 1}``, ``{1}``) are plain text.

Names a template may use: the placeholders (``PLACEHOLDERS``), ``event`` (the whole UnifiedEvent),
``user`` and ``payload`` (its parts), and Jinja's ``range`` (capped), ``dict``, ``namespace``,
``cycler`` and ``joiner``.

Escapes are the sandbox's job: rendering runs in Jinja's ``ImmutableSandboxedEnvironment``,
which guards every attribute and item look-up and every call, computed names included (nothing
starting with ``_``, no ``mro`` of types, no frames or code of generators and coroutines, no
method that changes a dict, list or set). This module adds what the sandbox does not do:

- Refusal at creation, so a rule is refused when it is saved rather than failing later:
  ``compile_template`` raises ``TemplateError`` on syntax errors; unknown placeholders or
  variables (StrictUndefined-like, checked statically over the whole template, every branch);
  an attribute named in the source that the sandbox would refuse (by the sandbox's own tables);
  ``include``/``import``/``extends``; and a trial render against sample events (one of the
  rule's event type, or one of every type) that must succeed.
- Lenient values: a placeholder or field the event does not carry (``{giftName}`` on a CHAT
  event, ``{{ payload.foo.bar }}``) and JSON ``null`` render as the empty string. Autoescape is
  off: the text goes to chat or JSON, not HTML.
- Output cut at ``max_length`` characters (150 for TikTok chat, ``CHAT_MAX_LENGTH``); rendering
  stops as soon as that much is produced.
- Bounds on hostile templates (the sandbox bounds only ``range``): each render has a budget of
  ``MAX_STEPS`` (loop items, calls, attribute look-ups, output volume), ``range`` yields at most
  ``MAX_RANGE`` items, strings and lists built by ``+``, ``*``, ``~``, ``%``, filters and
  string methods are capped at ``MAX_VALUE_LENGTH``, widths and counts at ``MAX_WIDTH``.
  ``str.format``/``format_map`` are refused: the sandbox makes them safe from escapes, not from
  ``{:>999999999}``; the ``format`` filter's widths are checked.

Past a limit, or on an error only the data can trigger (``{{ coins + 1 }}`` where a rule has no
event type), ``render`` raises ``TemplateRenderError`` (a ``TemplateError``), which the rule
engine records as a failed action.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any, Final

from jinja2 import ChainableUndefined, nodes
from jinja2.exceptions import SecurityError, TemplateRuntimeError, TemplateSyntaxError
from jinja2.meta import find_undeclared_variables
from jinja2.runtime import Context
from jinja2.sandbox import (
    UNSAFE_ASYNC_GENERATOR_ATTRIBUTES,
    UNSAFE_COROUTINE_ATTRIBUTES,
    UNSAFE_GENERATOR_ATTRIBUTES,
    ImmutableSandboxedEnvironment,
    modifies_known_mutable,
)
from jinja2.visitor import NodeTransformer

from ttlp.contracts.samples import SAMPLE_EVENTS
from ttlp.errors import UnprocessableError

__all__ = [
    "CHAT_MAX_LENGTH",
    "DEFAULT_MAX_LENGTH",
    "MAX_SOURCE_LENGTH",
    "PLACEHOLDERS",
    "SAMPLE_EVENTS",
    "VARIABLES",
    "Template",
    "TemplateError",
    "TemplateRenderError",
    "compile_template",
]

CHAT_MAX_LENGTH: Final = 150
"""TikTok LIVE chat messages are cut at 150 characters."""
DEFAULT_MAX_LENGTH: Final = 4_096
"""Output cap when the caller does not say (webhook text)."""
MAX_SOURCE_LENGTH: Final = 8_192
"""Longest template source accepted."""
MAX_STEPS: Final = 10_000
"""Per render: loop items, calls, attribute look-ups, filter calls, and output volume / 256."""
MAX_RANGE: Final = 1_000
"""Most items one ``range()`` may yield."""
MAX_VALUE_LENGTH: Final = 65_536
"""Longest string or list an expression may build."""
MAX_WIDTH: Final = 1_000
"""Largest width, count or repetition a formatting filter or string method may be asked for."""

PLACEHOLDERS: Final[dict[str, str]] = {
    "userId": 'TikTok user id of the viewer (user.userId; "0" for system events)',
    "username": "the viewer's @handle (user.uniqueId)",
    "displayName": "the viewer's display name (user.displayName)",
    "giftName": "name of the gift (GIFT)",
    "giftCount": "how many of the gift (GIFT; a streak's total on its end frame)",
    "coins": "coins the gift is worth, diamonds × count (GIFT)",
    "likeCount": "likes in this event (LIKE)",
    "totalLikeCount": "likes of the stream so far (LIKE)",
    "viewerCount": "viewers in the room (JOIN, ROOM_USER)",
    "message": "the chat message (CHAT; the error text for ERROR)",
    "eventType": "the event type, e.g. GIFT",
    "timestamp": "when it happened (ISO 8601 UTC)",
    "streamId": "the stream (room) id",
    "sessionId": "the ingest session id",
}
"""The ``{token}`` placeholders of DESIGN §4 and what each holds, for the UI's list."""

_TOKEN_PATHS: Final[dict[str, tuple[str, ...]]] = {
    "userId": ("user", "userId"),
    "username": ("user", "uniqueId"),
    "displayName": ("user", "displayName"),
    "giftName": ("payload", "giftName"),
    "giftCount": ("payload", "giftCount"),
    "coins": ("payload", "coins"),
    "likeCount": ("payload", "likeCount"),
    "totalLikeCount": ("payload", "totalLikeCount"),
    "viewerCount": ("payload", "viewerCount"),
    "message": ("payload", "message"),
    "eventType": ("eventType",),
    "timestamp": ("timestamp",),
    "streamId": ("streamId",),
    "sessionId": ("sessionId",),
}
_GLOBALS: Final = frozenset({"range", "dict", "namespace", "cycler", "joiner"})
VARIABLES: Final = frozenset(PLACEHOLDERS) | {"event", "user", "payload"} | _GLOBALS
"""Every name a template may read."""

_TOKEN: Final = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Attribute names the sandbox refuses on the objects a template can reach, from its own tables,
# plus str.format, which _Environment refuses. Naming one in the source is refused at creation;
# the sandbox still guards every look-up at render time. Names starting with "_" are added.
_REFUSED_NAMES: Final = frozenset(
    {
        "mro",
        "format",
        "format_map",
        *UNSAFE_GENERATOR_ATTRIBUTES,
        *UNSAFE_COROUTINE_ATTRIBUTES,
        *UNSAFE_ASYNC_GENERATOR_ATTRIBUTES,
    }
)
_MUTABLES: Final[tuple[object, ...]] = ({}, [], set())  # the mutable types a template can reach
_MUTATING_METHODS: Final = frozenset(
    name for mutable in _MUTABLES for name in dir(mutable) if modifies_known_mutable(mutable, name)
)
_WIDTH_FILTERS: Final = frozenset(
    {"center", "indent", "wordwrap", "truncate", "batch", "slice", "join", "filesizeformat"}
)
_SEQUENCES: Final = (str, list, tuple)
_MAX_INT_BITS: Final = 4096  # integers a template may compute; more is a CPU/memory bomb


class TemplateError(UnprocessableError):
    """A template refused at creation (or, as ``TemplateRenderError``, a render that failed)."""


class TemplateRenderError(TemplateError):
    """A compiled template failed on this event: a limit, or an error only this data causes."""


class _LimitExceeded(SecurityError):
    """A render went past one of the module's limits."""


# -- per-render budget ----------------------------------------------------------------------
_STEPS: ContextVar[list[int] | None] = ContextVar("ttlp_template_steps", default=None)


def _step(cost: int = 1) -> None:
    cell = _STEPS.get()
    if cell is not None:
        cell[0] -= cost
        if cell[0] < 0:
            raise _LimitExceeded(f"template needs more than {MAX_STEPS} steps")


def _check_size(value: Any) -> Any:
    if isinstance(value, _SEQUENCES) and len(value) > MAX_VALUE_LENGTH:
        raise _LimitExceeded(f"value longer than {MAX_VALUE_LENGTH}")
    return value


def _check_length(length: int, what: str) -> None:
    if length > MAX_VALUE_LENGTH:
        raise _LimitExceeded(f"{what} longer than {MAX_VALUE_LENGTH}")


def _check_count(value: Any) -> None:
    if type(value) is int and value > MAX_WIDTH:
        raise _LimitExceeded(f"width or count {value} above {MAX_WIDTH}")
    if type(value) is str and len(value) > MAX_WIDTH:
        raise _LimitExceeded(f"string argument longer than {MAX_WIDTH}")


def _check_printf(spec: str) -> None:
    """Refuse printf-style widths and precisions above ``MAX_WIDTH`` (and ``*``)."""
    i, n = 0, len(spec)
    while True:
        i = spec.find("%", i) + 1
        if i == 0 or i >= n:
            return
        if spec[i] == "(":
            i = spec.find(")", i) + 1 or n
        while i < n and spec[i] in "#0- +":
            i += 1
        for _ in range(2):  # width, then precision
            start = i
            while i < n and spec[i].isdigit():
                i += 1
            if i < n and spec[i] == "*":
                raise _LimitExceeded("'*' widths are not allowed")
            if i > start:
                _check_count(int(spec[start:i]))
            if i < n and spec[i] == ".":
                i += 1
            else:
                break
        i += 1


def _check_replace(text: Any, old: Any, new: Any) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        _check_length(text.count(old) * len(new), "replace result")


def _check_join(separator: str, items: Iterable[Any]) -> list[Any]:
    listed = list(items)
    _check_length(len(separator) * len(listed), "join result")
    return listed


def _range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise _LimitExceeded(f"range() of more than {MAX_RANGE} items")
    _step(len(numbers))
    return numbers


def _guarded_iter(value: Any) -> Iterator[Any]:
    """Every for-loop's iterable goes through this: one step per item."""
    for item in value:
        _step()
        yield item


def _capped(value: Any) -> Any:
    """Every ``~`` concatenation goes through this."""
    return _check_size(value)


def _finalize(value: Any) -> str:
    """What ``{{ x }}`` prints: ``null`` and missing values as "", volume counted in steps."""
    if value is None:
        return ""
    text = value if type(value) is str else str(value)
    _step(1 + (len(text) >> 8))
    return text


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    skip = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _step()
        params = [*args[skip + 1 :], *kwargs.values()]
        if name in _WIDTH_FILTERS:
            for param in params:
                _check_count(param)
        elif name == "format" and len(args) > skip:
            _check_printf(str(args[skip]))
        elif name == "replace" and len(args) > skip + 2:
            _check_replace(*args[skip : skip + 3])
        return _check_size(func(*args, **kwargs))

    return guarded


class _Environment(ImmutableSandboxedEnvironment):
    """The sandbox, plus the size and step limits above."""

    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        ints = type(left) is int and type(right) is int
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, _SEQUENCES) and type(times) is int:
                    _check_length(len(seq) * times, "repetition")
            if ints and left.bit_length() + right.bit_length() > _MAX_INT_BITS:
                raise _LimitExceeded("integer too large")
        elif operator == "**":
            if ints and right > 0 and right * max(left.bit_length(), 1) > _MAX_INT_BITS:
                raise _LimitExceeded("integer too large")
        elif operator == "%" and isinstance(left, str):
            _check_printf(left)
        return _check_size(super().call_binop(context, operator, left, right))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """The sandbox's hook for ``str.format``/``format_map``, on every look-up that finds one
        (``s.format``, ``s['for' ~ 'mat']``): refused, since widths would go unchecked."""
        if super().wrap_str_format(value) is not None:
            raise SecurityError("str.format is not available; use the format filter")
        return None

    def getattr(self, obj: Any, attribute: str) -> Any:
        _step()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _step()
        return super().getitem(obj, argument)

    def call(
        __self,
        __context: Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        _step()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):  # a str method: the ones that can allocate at will
            name = getattr(__obj, "__name__", "")
            for arg in (*args, *kwargs.values()):
                if type(arg) is int:
                    _check_count(arg)
            if name == "replace" and len(args) >= 2:
                _check_replace(owner, args[0], args[1])
            if name == "join" and args:
                args = (_check_join(owner, args[0]), *args[1:])
        return _check_size(super().call(__context, __obj, *args, **kwargs))


@functools.cache
def _environment() -> _Environment:
    env = _Environment(
        autoescape=False,
        undefined=ChainableUndefined,
        finalize=_finalize,
        auto_reload=False,
        cache_size=0,
    )
    for name in list(env.globals):
        if name not in _GLOBALS:
            del env.globals[name]
    env.globals["range"] = _range
    env.filters = {name: _guard_filter(name, f) for name, f in env.filters.items()}
    env.filters["ttlp_loop_guard"] = _guarded_iter
    env.filters["ttlp_capped"] = _capped
    return env


# -- compile-time checks --------------------------------------------------------------------
def _refuse(problem: str, node: nodes.Node | None = None) -> TemplateError:
    line = getattr(node, "lineno", None)
    return TemplateError(f"{problem} (line {line})" if line else problem)


def _check_attribute(name: str, node: nodes.Node, *, item: bool = False) -> None:
    """Refuse a name the sandbox would refuse. Item look-ups on dicts are data (a RAW payload
    may have an "update" key), so methods that mutate are refused as attributes only."""
    refused = name.startswith("_") or name in _REFUSED_NAMES
    if refused or (not item and name in _MUTATING_METHODS):
        raise _refuse(f"attribute {name!r} is not allowed in a template (sandbox)", node)


def _expand_placeholders(ast: nodes.Template, env: _Environment) -> set[str]:
    """Turn ``{token}`` in literal text into ``{{ token }}``; return the tokens used."""
    used: set[str] = set()
    for output in ast.find_all(nodes.Output):
        expanded: list[nodes.Expr] = []
        for child in output.nodes:
            if not isinstance(child, nodes.TemplateData) or "{" not in child.data:
                expanded.append(child)
                continue
            position = 0
            for match in _TOKEN.finditer(child.data):
                token = match.group(1)
                if token not in PLACEHOLDERS:
                    known = ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)
                    raise _refuse(f"unknown placeholder {{{token}}}; known: {known}", child)
                used.add(token)
                if match.start() > position:
                    text = child.data[position : match.start()]
                    expanded.append(nodes.TemplateData(text, lineno=child.lineno))
                expanded.append(nodes.Name(token, "load", lineno=child.lineno))
                position = match.end()
            if position < len(child.data):
                expanded.append(nodes.TemplateData(child.data[position:], lineno=child.lineno))
        output.nodes = expanded
    ast.set_environment(env)
    return used


def _check_tree(ast: nodes.Template, env: _Environment) -> None:
    """Static refusals: sandbox-escape attributes, other templates, unknown names and filters."""
    for node in ast.find_all(nodes.Node):
        if isinstance(node, nodes.Filter) and node.name not in env.filters:
            raise _refuse(f"unknown filter {node.name!r}", node)
        if isinstance(node, nodes.Test) and node.name not in env.tests:
            raise _refuse(f"unknown test {node.name!r}", node)
        if isinstance(node, (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)):
            raise _refuse("templates cannot extend, include or import other templates", node)
        if isinstance(node, nodes.Getattr):
            _check_attribute(node.attr, node)
        elif isinstance(node, nodes.Getitem):
            key = node.arg.value if isinstance(node.arg, nodes.Const) else None
            if isinstance(key, str):
                _check_attribute(key, node, item=True)
        elif isinstance(node, nodes.Filter) and node.name == "attr" and node.args:
            attribute = node.args[0]
            if isinstance(attribute, nodes.Const):
                _check_attribute(str(attribute.value), node)
    unknown = find_undeclared_variables(ast) - VARIABLES
    if unknown:
        name = sorted(unknown)[0]
        where = next((n for n in ast.find_all(nodes.Name) if n.name == name), None)
        raise _refuse(
            f"unknown variable {name!r}; a template may use {', '.join(sorted(VARIABLES))}",
            where,
        )


class _Guard(NodeTransformer):
    """Route every for-loop's items and every ``~`` result through the runtime limits."""

    def __init__(self, env: _Environment) -> None:
        self.env = env

    def _filter(self, node: nodes.Expr, name: str) -> nodes.Filter:
        wrapped = nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)
        wrapped.set_environment(self.env)
        return wrapped

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        assert isinstance(node.iter, nodes.Expr)
        node.iter = self._filter(node.iter, "ttlp_loop_guard")
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return self._filter(node, "ttlp_capped")


# -- rendering ------------------------------------------------------------------------------
def _context(event: Mapping[str, Any]) -> dict[str, Any]:
    """Template variables for one UnifiedEvent; absent and null values are left undefined."""
    user = event.get("user")
    payload = event.get("payload")
    context: dict[str, Any] = {
        "event": event,
        "user": user if isinstance(user, Mapping) else {},
        "payload": payload if isinstance(payload, Mapping) else {},
    }
    for token, path in _TOKEN_PATHS.items():
        value: Any = event
        for key in path:
            value = value.get(key) if isinstance(value, Mapping) else None
        if value is not None:
            context[token] = value
    return context


def _describe(exc: Exception) -> str:
    if isinstance(exc, _LimitExceeded):
        return f"template went past a limit: {exc}"
    if isinstance(exc, SecurityError):
        return f"template refused by the sandbox: {exc}"
    if isinstance(exc, TemplateRuntimeError):  # UndefinedError and friends say it plainly
        return f"template failed: {exc}"
    return f"template failed: {type(exc).__name__}: {exc}"


class Template:
    """A checked, compiled template: ``render(event)`` gives the text for one UnifiedEvent."""

    __slots__ = ("_template", "max_length", "placeholders", "source")

    def __init__(self, source: str, template: Any, placeholders: frozenset[str], max_length: int):
        self.source = source
        self._template = template
        self.placeholders = placeholders
        """The ``{token}`` placeholders the source uses."""
        self.max_length = max_length

    def render(self, event: Mapping[str, Any], *, max_length: int | None = None) -> str:
        """The text for ``event``, at most ``max_length`` characters (default: the template's).

        Raises ``TemplateRenderError`` only past a limit or on an error the data causes (see the
        module docstring); a value the event lacks renders as "".
        """
        limit = self.max_length if max_length is None else max_length
        parts: list[str] = []
        size = 0
        budget = _STEPS.set([MAX_STEPS])
        try:
            chunks = self._template.generate(_context(event))
            try:
                for chunk in chunks:
                    parts.append(chunk)
                    size += len(chunk)
                    if size >= limit:
                        break
            finally:
                chunks.close()
        except Exception as exc:  # the sandbox, a limit, or the data: reported, never raised raw
            raise TemplateRenderError(_describe(exc)) from exc
        finally:
            _STEPS.reset(budget)
        return "".join(parts)[:limit]

    def __repr__(self) -> str:
        return f"Template({self.source[:60]!r})"


def compile_template(
    text: str, *, event_type: str | None = None, max_length: int = DEFAULT_MAX_LENGTH
) -> Template:
    """Check and compile a template, or raise ``TemplateError`` saying what is wrong.

    ``event_type`` is the rule's event type: the trial render uses a sample of that type (when
    None, a sample of every type, so the template must cope with any event). ``max_length``
    caps ``render``'s output (``CHAT_MAX_LENGTH`` for announce).
    """
    if not isinstance(text, str):
        raise TemplateError("a template must be a string")
    if len(text) > MAX_SOURCE_LENGTH:
        raise TemplateError(f"template longer than {MAX_SOURCE_LENGTH} characters")
    if max_length < 1:
        raise TemplateError("max_length must be at least 1")
    if event_type is not None and event_type not in SAMPLE_EVENTS:
        raise TemplateError(f"unknown event type {event_type!r}")
    env = _environment()
    try:
        ast = env.parse(text)
        used = _expand_placeholders(ast, env)
        _check_tree(ast, env)
        ast = _Guard(env).visit(ast)
        template = env.from_string(ast)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax error (line {exc.lineno}): {exc.message}") from None
    compiled = Template(text, template, frozenset(used), max_length)
    samples = [event_type] if event_type else list(SAMPLE_EVENTS)
    for sample in samples:
        try:
            compiled.render(SAMPLE_EVENTS[sample])
        except TemplateRenderError as exc:
            raise TemplateError(f"{exc} (on a sample {sample} event)") from None
    return compiled
