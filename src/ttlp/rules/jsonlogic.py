"""A small, strict JSON Logic evaluator for rule conditions (https://jsonlogic.com).

Written by hand, and kept after measuring the maintained alternative, ``datalogic-py`` 5.9 (Rust
core). It passes the official suite (``tests/fixtures/jsonlogic-tests.json``) once a rule is
handed over as JSON text: 278/278, where a bare string rule given as ``str`` is misread as JSON
(277/278). It was not adopted, for three measured reasons:

- Semantics. It departs from json-logic-js, the reference, on 17 of the 35 JS-semantics cases
  ``tests/unit/test_jsonlogic.py`` pins (16 with its closest configuration), and built-ins
  cannot be overridden. On the 46 fixture events, ``{"==": [{"var": "payload.coins"}, 0]}``
  would fire on 34 (``null == 0``) and ``{"!": {"var": "payload"}}`` on 3 (``{}`` is falsy).
  So stored rules would change meaning.
- Speed. Conditions run on dicts decoded from events, and its dict path is slower:
  0.6–0.9 M evaluations/s against ttlp's 0.9–2.4 M per condition, and benchmarks/rules.py with
  no rule firing ran at 43,000 events/s against 54,000. It is faster only with one
  ``DataHandle`` per event shared by all its rules (68,000 events/s).
- Robustness. It crashes the process (SIGSEGV) on data nested about 20,000 levels deep; here
  such data is an ``EvaluationError``.

This module adds what a multi-user rule engine needs:

- ``validate(rule)`` runs when a rule is created and refuses unknown operators, wrong argument
  counts, objects that are not a single operation, non-JSON values, rules nested deeper than
  ``MAX_DEPTH``, with more than ``MAX_NODES`` values or larger than ``MAX_RULE_BYTES`` of JSON.
  The ``RuleError`` names the problem and where it is (``unknown operator 'foo' at $.and[1]``).
- ``compile_rule(rule)`` validates once and turns the rule into nested closures (a dispatch
  table at compile time, paths of ``var`` pre-split), so the hot path does no parsing. Python
  recursion while evaluating is bounded by the validated depth.
- Evaluation is bounded on hostile input: ``cat``/``substr`` results are capped at
  ``MAX_STRING`` characters, ``merge`` at ``MAX_LIST`` items, and each evaluation has a budget
  of ``MAX_STEPS`` (iterations of ``map``/``filter``/``reduce``/``all``/``none``/``some``
  weighted by the size of their inner logic, plus bulk work on long lists and strings). Going
  past a limit raises ``EvaluationError``.

Semantics follow json-logic-js, the reference implementation, including JavaScript's loose
equality and comparisons (``"2" > 1``, ``[1] == 1``, ``null == 0`` is false), truthiness (``[]``,
``""``, ``0``, ``NaN`` and ``null`` are falsy, ``"0"`` is truthy), ``+`` and ``*`` reading numbers
with ``parseFloat`` and ``-``, ``/``, ``%`` with ``Number``, and ``%`` taking the sign of the
dividend. Where JavaScript would produce something JSON cannot carry, we decide:

- division and modulo by zero give ``null`` (JS gives ``Infinity``/``NaN``; JSON.stringify
  writes both as ``null``, and a zero divisor almost always means a missing value, which should
  not make ``{">": [{"/": [...]}, 1000]}`` fire);
- other non-numbers stay ``NaN`` (falsy, unequal to everything, as in JS); arithmetic results that
  are whole numbers come back as ``int`` (``{"/": [4, 2]}`` is ``2``), integers beyond 2**53 as
  ``float``;
- arithmetic always returns a number (JS ``{"*": ["1"]}`` returns the string ``"1"``);
- ``all`` over a non-array is ``false`` (JS would walk a string's characters);
- objects are never literals: an object in a rule must be one operation.

Strings compare by code point (JS: by UTF-16 unit); the two differ only between astral
characters and U+E000..U+FFFF.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any, Final

from loguru import logger

from ttlp.errors import UnprocessableError

__all__ = [
    "MAX_DEPTH",
    "MAX_LIST",
    "MAX_NODES",
    "MAX_RULE_BYTES",
    "MAX_STEPS",
    "MAX_STRING",
    "OPERATORS",
    "EvaluationError",
    "Rule",
    "RuleError",
    "apply",
    "compile_rule",
    "truthy",
    "validate",
]

MAX_DEPTH: Final = 32
"""Deepest nesting of operations and array literals a rule may have."""
MAX_NODES: Final = 2_000
"""Most values (operations, literals, array literals) a rule may hold."""
MAX_RULE_BYTES: Final = 64 * 1024
"""Largest rule, as compact UTF-8 JSON."""
MAX_STRING: Final = 65_536
"""Longest string ``cat``, ``substr`` or an array-to-string conversion may build."""
MAX_LIST: Final = 10_000
"""Longest array ``merge`` may build."""
MAX_STEPS: Final = 200_000
"""Work budget of one evaluation: inner-logic evaluations of the iterating operators plus items
of long arrays and strings walked in bulk. Plain rules use none of it; ~0.1 s when spent."""

_MAX_SAFE: Final = 2**53  # JS integers are exact up to here; beyond, we behave like doubles
_INT64: Final = 2**63
_INF: Final = math.inf
_NAN: Final = math.nan
# The characters JS's String.prototype.trim and Number() treat as white space.
_JS_SPACE: Final = (
    " \t\n\v\f\r\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_DIGITS: Final = frozenset("0123456789")
_RADIX: Final = {"x": 16, "o": 8, "b": 2}


class RuleError(UnprocessableError):
    """A rule that cannot be accepted: the message says what is wrong and where (a JSON path)."""

    def __init__(self, problem: str, path: str | None = None) -> None:
        super().__init__(f"{problem} at {path}" if path else problem)
        self.problem = problem
        self.path = path


class EvaluationError(RuleError):
    """A valid rule went past an evaluation limit (string, array or step budget) on this data."""


Budget = list[int]
"""One mutable cell: the steps an evaluation may still spend."""
Node = Callable[[Any, Budget], Any]
"""A compiled rule or sub-rule: ``node(data, budget) -> value``."""


def _exhausted() -> EvaluationError:
    return EvaluationError(f"rule needs more than {MAX_STEPS} evaluation steps")


def _charge(budget: Budget, steps: int) -> None:
    budget[0] -= steps
    if budget[0] < 0:
        raise _exhausted()


# -- JavaScript value semantics -------------------------------------------------------------
def truthy(value: Any) -> bool:
    """JsonLogic truthiness: JS's, except that an empty array is falsy too."""
    if value is True:
        return True
    if value is False or value is None:
        return False
    t = type(value)
    if t is int or t is float:
        return bool(value == value and value != 0)  # NaN is falsy
    if t is str or t is list:
        return len(value) > 0
    return True


def _kind(value: Any) -> str:
    """JS type of a JSON value: null, boolean, number, string or object (arrays included)."""
    if value is None:
        return "null"
    t = type(value)
    if t is bool:
        return "boolean"
    if t is int or t is float:
        return "number"
    if t is str:
        return "string"
    return "object"


def _int_to_float(value: int) -> float:
    try:
        return float(value)
    except OverflowError:
        return _INF if value > 0 else -_INF


def _number_str(value: int | float) -> str:
    """JS Number.prototype.toString: ``1`` for 1.0, ``1e+21``, ``1e-7``, ``NaN``, ``Infinity``."""
    if type(value) is int:
        if -(10**21) < value < 10**21:
            return str(value)
        value = _int_to_float(value)
    if value != value:
        return "NaN"
    if value in (_INF, -_INF):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    mantissa, _, exp = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    if fraction == "0":
        fraction = ""
    all_digits = (whole + fraction).lstrip("0")
    digits = all_digits.rstrip("0")
    k = len(digits)
    # value = digits * 10**(n - k), as in ECMA-262 Number::toString
    n = k + (int(exp) if exp else 0) - len(fraction) + (len(all_digits) - k)
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = f"{digits[:n]}.{digits[n:]}"
    elif -6 < n <= 0:
        text = "0." + "0" * -n + digits
    else:
        e = n - 1
        head = digits[0] + (f".{digits[1:]}" if k > 1 else "")
        text = f"{head}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + text


def _to_str(value: Any, budget: Budget) -> str:
    """JS String(value)."""
    t = type(value)
    if t is str:
        return value  # type: ignore[no-any-return]
    if value is None:
        return "null"
    if t is bool:
        return "true" if value else "false"
    if t is int or t is float:
        return _number_str(value)
    if t is list:
        return _join(value, budget)
    return "[object Object]"


def _join(items: list[Any], budget: Budget) -> str:
    """JS Array.prototype.join(","): null items become empty strings."""
    _charge(budget, len(items))
    parts: list[str] = []
    size = 0
    for item in items:
        text = "" if item is None else _to_str(item, budget)
        size += len(text) + 1
        if size > MAX_STRING + 1:
            raise EvaluationError(f"string longer than {MAX_STRING} characters")
        parts.append(text)
    return ",".join(parts)


def _literal_number(text: str) -> int | float:
    """A decimal literal already known to be well formed, as int when it is a short integer."""
    body = text[1:] if text[:1] in ("+", "-") else text
    if body.isdigit() and len(body) <= 15:
        return int(text)
    return float(text)


def _str_to_number(text: str) -> int | float:
    """JS Number(string): trimmed; empty is 0; decimal, Infinity, 0x/0o/0b; anything else NaN."""
    s = text.strip(_JS_SPACE)
    if not s:
        return 0
    # Python's int()/float() also take "nan", "inf", "1_000", signs after 0x and non-ASCII
    # digits; JS does not.
    if s.isascii() and "_" not in s:
        if len(s) > 2 and s[0] == "0" and s[1] in "xXoObB" and s[2:].isalnum():
            try:
                return int(s[2:], _RADIX[s[1].lower()])
            except ValueError:
                return _NAN
        if s[-1] in _DIGITS or s[-1] == ".":
            try:
                return _literal_number(s)
            except ValueError:
                return _NAN
    if s in ("Infinity", "+Infinity"):
        return _INF
    if s == "-Infinity":
        return -_INF
    return _NAN


def _to_number(value: Any, budget: Budget) -> int | float:
    """JS Number(value)."""
    t = type(value)
    if t is int or t is float:
        return value  # type: ignore[no-any-return]
    if value is None:
        return 0
    if t is bool:
        return 1 if value else 0
    if t is str:
        return _str_to_number(value)
    if t is list:
        return _str_to_number(_join(value, budget))
    return _NAN


def _parse_float(value: Any, budget: Budget) -> int | float:
    """JS parseFloat(value): the longest decimal prefix of String(value), else NaN."""
    t = type(value)
    if t is int or t is float:
        return value  # type: ignore[no-any-return]
    s = _to_str(value, budget).lstrip(_JS_SPACE)
    n = len(s)
    i = 1 if s[:1] in ("+", "-") else 0
    if s.startswith("Infinity", i):
        return -_INF if s[:1] == "-" else _INF
    start = i
    while i < n and s[i] in _DIGITS:
        i += 1
    digits = i - start
    if i < n and s[i] == ".":
        j = i + 1
        while j < n and s[j] in _DIGITS:
            j += 1
        digits += j - i - 1
        i = j
    if digits == 0:
        return _NAN
    if i < n and s[i] in "eE":
        j = i + 1
        if j < n and s[j] in "+-":
            j += 1
        k = j
        while k < n and s[k] in _DIGITS:
            k += 1
        if k > j:
            i = k
    return _literal_number(s[:i])


def _to_primitive(value: Any, budget: Budget) -> Any:
    """JS ToPrimitive for JSON values: arrays and objects become their strings."""
    t = type(value)
    if t is list:
        return _join(value, budget)
    if t is dict:
        return "[object Object]"
    return value


def _number_out(value: int | float) -> int | float:
    """Arithmetic results: whole numbers as int (JS prints them so), huge ints as float."""
    if isinstance(value, int):
        return value if -_MAX_SAFE <= value <= _MAX_SAFE else _int_to_float(value)
    if value.is_integer() and -_MAX_SAFE <= value <= _MAX_SAFE:
        return int(value)
    return value


def _strict_eq(a: Any, b: Any) -> bool:
    """JS ``===``: same type and value; arrays and objects only equal themselves."""
    kind = _kind(a)
    if kind != _kind(b):
        return False
    if kind == "object":
        return a is b
    return bool(a == b)


def _loose_eq(a: Any, b: Any, budget: Budget) -> bool:
    """JS ``==`` (the Abstract Equality Comparison) for JSON values."""
    ta = type(a)
    if ta is type(b) and (ta is str or ta is int or ta is float or ta is bool):
        return bool(a == b)
    ka, kb = _kind(a), _kind(b)
    if ka == kb:
        return a is b if ka == "object" else bool(a == b)
    if ka == "null" or kb == "null":
        return False  # null == undefined only, and there is no undefined here
    if ka == "boolean":
        return _loose_eq(1 if a else 0, b, budget)
    if kb == "boolean":
        return _loose_eq(a, 1 if b else 0, budget)
    if ka == "number" and kb == "string":
        return bool(a == _str_to_number(b))
    if ka == "string" and kb == "number":
        return bool(_str_to_number(a) == b)
    if ka == "object":
        return _loose_eq(_to_primitive(a, budget), b, budget)
    if kb == "object":
        return _loose_eq(a, _to_primitive(b, budget), budget)
    return False


def _lt(a: Any, b: Any, budget: Budget) -> bool:
    """JS ``a < b``: strings compare as strings, everything else as numbers (NaN: false)."""
    ta, tb = type(a), type(b)
    if (ta is int or ta is float) and (tb is int or tb is float):
        return bool(a < b)
    a, b = _to_primitive(a, budget), _to_primitive(b, budget)
    if type(a) is str and type(b) is str:
        return bool(a < b)
    return bool(_to_number(a, budget) < _to_number(b, budget))


def _le(a: Any, b: Any, budget: Budget) -> bool:
    """JS ``a <= b``."""
    ta, tb = type(a), type(b)
    if (ta is int or ta is float) and (tb is int or tb is float):
        return bool(a <= b)
    a, b = _to_primitive(a, budget), _to_primitive(b, budget)
    if type(a) is str and type(b) is str:
        return bool(a <= b)
    return bool(_to_number(a, budget) <= _to_number(b, budget))


def _to_integer(value: Any, budget: Budget) -> int | float:
    """JS ToIntegerOrInfinity."""
    number = _to_number(value, budget)
    if number != number:
        return 0
    if number in (_INF, -_INF):
        return number
    return math.trunc(number)


def _js_substr(text: str, start: Any, length: Any, budget: Budget) -> str:
    """JS String.prototype.substr(start, length); ``length`` None means undefined."""
    size = len(text)
    first = _to_integer(start, budget)
    first = max(size + first, 0) if first < 0 else min(first, size)
    count = size if length is None else min(max(_to_integer(length, budget), 0), size)
    last = min(first + count, size)
    return text[int(first) : int(last)] if last > first else ""


# -- data access ----------------------------------------------------------------------------
_ABSENT: Final = object()
PathPart = tuple[str, int]
"""A ``var`` path segment and its array index (-1 when it is not a canonical index)."""


def _split_path(path: str) -> tuple[PathPart, ...]:
    parts = []
    for key in path.split("."):
        index = int(key) if key.isdigit() and key.isascii() and str(int(key)) == key else -1
        parts.append((key, index))
    return tuple(parts)


def _walk(data: Any, parts: tuple[PathPart, ...]) -> Any:
    """``data[a][b]...`` as JS would look it up; ``_ABSENT`` where it finds undefined."""
    for key, index in parts:
        t = type(data)
        if t is dict:
            data = data.get(key, _ABSENT)
            if data is _ABSENT:
                return _ABSENT
        elif t is list or t is str:
            if 0 <= index < len(data):
                data = data[index]
            elif key == "length":
                data = len(data)
            else:
                return _ABSENT
        else:
            return _ABSENT  # null, numbers and booleans have no properties we expose
    return data


def _lookup(data: Any, path: Any, budget: Budget) -> Any:
    """``var`` with a path computed at run time: null or "" mean the whole data."""
    if path is None or path == "":
        return data
    return _walk(data, _split_path(_to_str(path, budget)))


# -- operations -----------------------------------------------------------------------------
class _Compiled:
    """A compiled sub-rule: its closure, its size in values, and its value if it is a literal."""

    __slots__ = ("fn", "literal", "value", "weight")

    def __init__(self, fn: Node, weight: int, literal: bool = False, value: Any = None) -> None:
        self.fn = fn
        self.weight = weight
        self.literal = literal
        self.value = value


Builder = Callable[[list[_Compiled], str], Node]
Eager = Callable[..., Any]  # impl(budget, *evaluated_args)


class _Op:
    __slots__ = ("build", "max_args", "min_args")

    def __init__(self, min_args: int, max_args: int | None, build: Builder) -> None:
        self.min_args = min_args
        self.max_args = max_args
        self.build = build


def _eager(impl: Eager) -> Builder:
    """Build an operation that evaluates all its arguments first (most of them)."""

    def build(args: list[_Compiled], path: str) -> Node:
        fns = [arg.fn for arg in args]
        if len(fns) == 1:
            (f0,) = fns
            return lambda d, b: impl(b, f0(d, b))
        if len(fns) == 2:
            f0, f1 = fns
            if args[1].literal and type(args[1].value) is not list:
                c1 = args[1].value
                return lambda d, b: impl(b, f0(d, b), c1)
            return lambda d, b: impl(b, f0(d, b), f1(d, b))
        if len(fns) == 3:
            f0, f1, f2 = fns
            return lambda d, b: impl(b, f0(d, b), f1(d, b), f2(d, b))
        return lambda d, b: impl(b, *[f(d, b) for f in fns])

    return build


def _build_var(args: list[_Compiled], path: str) -> Node:
    if not args:
        return lambda d, b: d
    f0 = args[0].fn
    fallback = args[1].fn if len(args) > 1 else None
    first = args[0]
    if first.literal and type(first.value) is not list:
        key = first.value
        if key is None or key == "":
            return lambda d, b: d
        parts = _split_path(_to_str(key, [MAX_STEPS]))
        if fallback is None:

            def var_fixed(d: Any, b: Budget) -> Any:
                value = _walk(d, parts)
                return None if value is _ABSENT else value

            return var_fixed

        def var_fixed_default(d: Any, b: Budget) -> Any:
            value = _walk(d, parts)
            return fallback(d, b) if value is _ABSENT else value

        return var_fixed_default

    def var_dynamic(d: Any, b: Budget) -> Any:
        value = _lookup(d, f0(d, b), b)
        if value is _ABSENT:
            return None if fallback is None else fallback(d, b)
        return value

    return var_dynamic


def _missing_keys(data: Any, keys: Sequence[Any], budget: Budget) -> list[Any]:
    _charge(budget, len(keys))
    out = []
    for key in keys:
        value = _lookup(data, key, budget)
        if value is _ABSENT or value is None or value == "":
            out.append(key)
    return out


def _build_missing(args: list[_Compiled], path: str) -> Node:
    fns = [arg.fn for arg in args]

    def missing(d: Any, b: Budget) -> list[Any]:
        values = [f(d, b) for f in fns]
        keys = values[0] if values and type(values[0]) is list else values
        return _missing_keys(d, keys, b)

    return missing


def _build_missing_some(args: list[_Compiled], path: str) -> Node:
    f_need, f_keys = args[0].fn, args[1].fn

    def missing_some(d: Any, b: Budget) -> list[Any]:
        need = f_need(d, b)
        keys = f_keys(d, b)
        if type(keys) is not list:
            keys = [keys]
        absent = _missing_keys(d, keys, b)
        return [] if _le(need, len(keys) - len(absent), b) else absent

    return missing_some


def _build_if(args: list[_Compiled], path: str) -> Node:
    fns = [arg.fn for arg in args]
    if len(fns) == 3:
        cond, yes, no = fns
        return lambda d, b: yes(d, b) if truthy(cond(d, b)) else no(d, b)

    def if_(d: Any, b: Budget) -> Any:
        last = len(fns) - 1
        for i in range(0, last, 2):
            if truthy(fns[i](d, b)):
                return fns[i + 1](d, b)
        if len(fns) % 2:
            return fns[last](d, b)
        return None

    return if_


def _short_circuit(stop_on: bool) -> Builder:
    """``or`` (stop at the first truthy value) and ``and`` (at the first falsy one)."""

    def build(args: list[_Compiled], path: str) -> Node:
        fns = [arg.fn for arg in args]

        def short_circuit(d: Any, b: Budget) -> Any:
            value = None
            for f in fns:
                value = f(d, b)
                if truthy(value) is stop_on:
                    return value
            return value

        return short_circuit

    return build


def _iterating(kind: str) -> Builder:
    """map / filter / all / none / some: inner logic runs with each item as its data."""

    def build(args: list[_Compiled], path: str) -> Node:
        source, inner = args[0].fn, args[1].fn
        weight = args[1].weight

        def items_of(d: Any, b: Budget) -> list[Any] | None:
            items = source(d, b)
            if type(items) is not list:
                return None
            _charge(b, len(items) * weight)
            return items  # type: ignore[no-any-return]

        if kind == "map":

            def map_(d: Any, b: Budget) -> list[Any]:
                items = items_of(d, b)
                return [] if items is None else [inner(item, b) for item in items]

            return map_
        if kind == "filter":

            def filter_(d: Any, b: Budget) -> list[Any]:
                items = items_of(d, b)
                return [] if items is None else [x for x in items if truthy(inner(x, b))]

            return filter_
        if kind == "all":

            def all_(d: Any, b: Budget) -> bool:
                items = items_of(d, b)
                if not items:
                    return False
                return all(truthy(inner(x, b)) for x in items)

            return all_
        if kind == "some":

            def some(d: Any, b: Budget) -> bool:
                items = items_of(d, b)
                return items is not None and any(truthy(inner(x, b)) for x in items)

            return some

        def none(d: Any, b: Budget) -> bool:
            items = items_of(d, b)
            return items is None or not any(truthy(inner(x, b)) for x in items)

        return none

    return build


def _build_reduce(args: list[_Compiled], path: str) -> Node:
    source, inner = args[0].fn, args[1].fn
    initial = args[2].fn if len(args) > 2 else None
    weight = args[1].weight

    def reduce_(d: Any, b: Budget) -> Any:
        items = source(d, b)
        accumulator = None if initial is None else initial(d, b)
        if type(items) is not list:
            return accumulator
        _charge(b, len(items) * weight)
        for item in items:
            accumulator = inner({"current": item, "accumulator": accumulator}, b)
        return accumulator

    return reduce_


def _build_in(args: list[_Compiled], path: str) -> Node:
    haystack = args[1]
    values = haystack.value
    if haystack.literal and type(values) is list and values and all(type(v) is str for v in values):
        # A literal list of strings: strict equality can only match one of those strings.
        strings = frozenset(values)
        needle = args[0].fn

        def in_strings(d: Any, b: Budget) -> bool:
            value = needle(d, b)
            return type(value) is str and value in strings

        return in_strings
    return _eager(_in)(args, path)


def _in(budget: Budget, needle: Any, haystack: Any) -> bool:
    if not haystack:
        return False
    if type(haystack) is list:
        _charge(budget, len(haystack))
        return any(_strict_eq(needle, item) for item in haystack)
    if type(haystack) is str:
        _charge(budget, len(haystack) >> 6)
        return _to_str(needle, budget) in haystack
    return False


def _cat(budget: Budget, *values: Any) -> str:
    parts = [_to_str(v, budget) for v in values]
    size = sum(len(p) for p in parts)
    if size > MAX_STRING:
        raise EvaluationError(f"cat result longer than {MAX_STRING} characters")
    return "".join(parts)


_NO_ARG: Final = object()


def _substr(budget: Budget, source: Any, start: Any, end: Any = _NO_ARG) -> str:
    text = _to_str(source, budget)
    _charge(budget, len(text) >> 6)
    if end is not _NO_ARG and _lt(end, 0, budget):
        rest = _js_substr(text, start, None, budget)
        return _js_substr(rest, 0, len(rest) + _to_number(end, budget), budget)
    return _js_substr(text, start, None if end is _NO_ARG else end, budget)


def _merge(budget: Budget, *values: Any) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if type(value) is list:
            out.extend(value)
        else:
            out.append(value)
        if len(out) > MAX_LIST:
            raise EvaluationError(f"merge result longer than {MAX_LIST} items")
    _charge(budget, len(out))
    return out


def _add(budget: Budget, *values: Any) -> int | float:
    total: int | float = 0
    for value in values:
        total = _number_out(total + _parse_float(value, budget))
    return total


def _multiply(budget: Budget, *values: Any) -> int | float:
    product: int | float = _parse_float(values[0], budget)
    for value in values[1:]:
        product = _number_out(product * _parse_float(value, budget))
    return _number_out(product)


def _subtract(budget: Budget, a: Any, b: Any = _NO_ARG) -> int | float:
    if b is _NO_ARG:
        return _number_out(-_to_number(a, budget))
    return _number_out(_to_number(a, budget) - _to_number(b, budget))


def _divide(budget: Budget, a: Any, b: Any) -> int | float | None:
    x, y = _to_number(a, budget), _to_number(b, budget)
    if y == 0:
        return None  # see the module docstring: JS's Infinity/NaN, as JSON writes them
    if type(x) is int and type(y) is int and (abs(x) > _MAX_SAFE or abs(y) > _MAX_SAFE):
        x, y = _int_to_float(x), _int_to_float(y)
    return _number_out(x / y)


def _modulo(budget: Budget, a: Any, b: Any) -> int | float | None:
    x, y = _to_number(a, budget), _to_number(b, budget)
    if y == 0:
        return None
    if type(x) is int and type(y) is int:
        rest = abs(x) % abs(y)
        return -rest if x < 0 else rest  # JS: the sign of the dividend
    try:
        return _number_out(math.fmod(x, y))
    except ValueError:  # fmod(±inf, y)
        return _NAN


def _extreme(pick: Callable[..., int | float]) -> Eager:
    def impl(budget: Budget, *values: Any) -> int | float:
        numbers = [_to_number(v, budget) for v in values]
        if any(n != n for n in numbers):
            return _NAN
        return pick(numbers)

    return impl


def _log(budget: Budget, value: Any) -> Any:
    logger.bind(op="log").debug("jsonlogic log {}", repr(value)[:200])
    return value


def _between(strict: bool) -> Eager:
    cmp = _lt if strict else _le

    def impl(budget: Budget, a: Any, b: Any, c: Any = _NO_ARG) -> bool:
        if c is _NO_ARG:
            return cmp(a, b, budget)
        return cmp(a, b, budget) and cmp(b, c, budget)

    return impl


def _not(budget: Budget, value: Any) -> bool:
    return not truthy(value)


def _truthy(budget: Budget, value: Any) -> bool:
    return truthy(value)


_OPS: Final[dict[str, _Op]] = {
    "var": _Op(0, 2, _build_var),
    "missing": _Op(0, None, _build_missing),
    "missing_some": _Op(2, 2, _build_missing_some),
    "if": _Op(0, None, _build_if),
    "?:": _Op(3, 3, _build_if),
    "==": _Op(2, 2, _eager(lambda bud, a, b: _loose_eq(a, b, bud))),
    "===": _Op(2, 2, _eager(lambda bud, a, b: _strict_eq(a, b))),
    "!=": _Op(2, 2, _eager(lambda bud, a, b: not _loose_eq(a, b, bud))),
    "!==": _Op(2, 2, _eager(lambda bud, a, b: not _strict_eq(a, b))),
    "!": _Op(1, 1, _eager(_not)),
    "!!": _Op(1, 1, _eager(_truthy)),
    "or": _Op(1, None, _short_circuit(stop_on=True)),
    "and": _Op(1, None, _short_circuit(stop_on=False)),
    ">": _Op(2, 2, _eager(lambda bud, a, b: _lt(b, a, bud))),
    ">=": _Op(2, 2, _eager(lambda bud, a, b: _le(b, a, bud))),
    "<": _Op(2, 3, _eager(_between(strict=True))),
    "<=": _Op(2, 3, _eager(_between(strict=False))),
    "max": _Op(1, None, _eager(_extreme(max))),
    "min": _Op(1, None, _eager(_extreme(min))),
    "+": _Op(1, None, _eager(_add)),
    "-": _Op(1, 2, _eager(_subtract)),
    "*": _Op(1, None, _eager(_multiply)),
    "/": _Op(2, 2, _eager(_divide)),
    "%": _Op(2, 2, _eager(_modulo)),
    "map": _Op(2, 2, _iterating("map")),
    "filter": _Op(2, 2, _iterating("filter")),
    "reduce": _Op(2, 3, _build_reduce),
    "all": _Op(2, 2, _iterating("all")),
    "none": _Op(2, 2, _iterating("none")),
    "some": _Op(2, 2, _iterating("some")),
    "merge": _Op(0, None, _eager(_merge)),
    "in": _Op(2, 2, _build_in),
    "cat": _Op(0, None, _eager(_cat)),
    "substr": _Op(2, 3, _eager(_substr)),
    "log": _Op(1, 1, _eager(_log)),
}
OPERATORS: Final = frozenset(_OPS)
"""The operators a rule may use."""


# -- validation -----------------------------------------------------------------------------
def _child(path: str, op: str) -> str:
    return f"{path}.{op}" if op.isidentifier() else f"{path}[{json.dumps(op)}]"


def _arity(op: str, count: int) -> str | None:
    spec = _OPS[op]
    if count >= spec.min_args and (spec.max_args is None or count <= spec.max_args):
        return None
    if spec.max_args is None:
        wanted = f"at least {spec.min_args}"
    elif spec.min_args == spec.max_args:
        wanted = str(spec.min_args)
    else:
        wanted = f"{spec.min_args} to {spec.max_args}"
    plural = "" if wanted == "1" else "s"
    return f"operator {op!r} takes {wanted} argument{plural}, got {count}"


def _arguments(value: Any, path: str, op: str) -> list[tuple[Any, str]]:
    if type(value) is list:
        return [(arg, f"{path}[{i}]") for i, arg in enumerate(value)]
    return [(value, path)]


def validate(rule: Any) -> None:
    """Refuse a rule that is not a small, well-formed JSON Logic expression (``RuleError``).

    Checks, with the JSON path of the offending part: only JSON values; every object is one
    known operation with a valid argument count; nesting depth, number of values and JSON size
    within ``MAX_DEPTH``, ``MAX_NODES`` and ``MAX_RULE_BYTES``. Cheap: no part is visited twice
    and the walk stops at the first problem, so hostile input costs no more than the limits.
    """
    state = [0, 0]  # values seen, characters of strings seen

    def visit(node: Any, path: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise RuleError(f"rule nested deeper than {MAX_DEPTH} levels", path)
        state[0] += 1
        if state[0] > MAX_NODES:
            raise RuleError(f"rule has more than {MAX_NODES} values", path)
        t = type(node)
        if t is dict:
            if len(node) != 1:
                raise RuleError(
                    f"an operation must be an object with exactly one key, the operator "
                    f"(got {len(node)} keys)",
                    path,
                )
            ((op, value),) = node.items()
            if type(op) is not str or op not in _OPS:
                raise RuleError(f"unknown operator {op!r}", path)
            state[1] += len(op)
            here = _child(path, op)
            args = _arguments(value, here, op)
            problem = _arity(op, len(args))
            if problem:
                raise RuleError(problem, here)
            for arg, arg_path in args:
                visit(arg, arg_path, depth + 1)
        elif t is list:
            for i, item in enumerate(node):
                visit(item, f"{path}[{i}]", depth + 1)
        elif t is str:
            state[1] += len(node)
            if state[1] > MAX_RULE_BYTES:
                raise RuleError(f"rule larger than {MAX_RULE_BYTES} bytes", path)
        elif t is int:
            if not -_INT64 <= node < _INT64:
                raise RuleError("integer outside the 64-bit range", path)
        elif t is float:
            if not math.isfinite(node):
                raise RuleError("number is not finite", path)
        elif node is not None and t is not bool:
            raise RuleError(f"unsupported value of type {t.__name__}", path)

    visit(rule, "$", 1)
    size = len(json.dumps(rule, ensure_ascii=False, separators=(",", ":")).encode())
    if size > MAX_RULE_BYTES:
        raise RuleError(f"rule larger than {MAX_RULE_BYTES} bytes ({size})", "$")


# -- compilation and evaluation -------------------------------------------------------------
def _compile(node: Any, path: str) -> _Compiled:
    t = type(node)
    if t is dict:
        ((op, value),) = node.items()
        here = _child(path, op)
        args = [_compile(arg, arg_path) for arg, arg_path in _arguments(value, here, op)]
        weight = 1 + sum(a.weight for a in args)
        return _Compiled(_OPS[op].build(args, here), weight)
    if t is list:
        items = [_compile(item, f"{path}[{i}]") for i, item in enumerate(node)]
        weight = 1 + sum(a.weight for a in items)
        fns = [item.fn for item in items]
        literal = all(item.literal for item in items)
        # A fresh list each time: callers may keep or change what a rule returns.
        return _Compiled(lambda d, b: [f(d, b) for f in fns], weight, literal, node)
    return _Compiled(lambda d, b: node, 1, True, node)


class Rule:
    """A validated, compiled condition; evaluate it against many events."""

    __slots__ = ("_fn", "source")

    def __init__(self, source: Any, fn: Node) -> None:
        self.source = source
        self._fn = fn

    def evaluate(self, data: Any) -> Any:
        """The rule's value for ``data`` (raises ``EvaluationError`` past a limit)."""
        try:
            return self._fn(data, [MAX_STEPS])
        except RecursionError:
            raise EvaluationError("data nested too deeply to evaluate") from None

    def matches(self, data: Any) -> bool:
        """Whether the rule's value for ``data`` is truthy: the condition holds."""
        return truthy(self.evaluate(data))

    def __repr__(self) -> str:
        return f"Rule({json.dumps(self.source)[:80]})"


def compile_rule(rule: Any) -> Rule:
    """Validate ``rule`` (``RuleError``) and compile it for repeated evaluation."""
    validate(rule)
    return Rule(rule, _compile(rule, "$").fn)


def apply(rule: Any, data: Any = None) -> Any:
    """Evaluate ``rule`` once against ``data``; hot paths compile once with ``compile_rule``."""
    return compile_rule(rule).evaluate(data)
