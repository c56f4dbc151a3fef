"""Real protobuf descriptors for TikTok's webcast messages, built from TikTokLiveProto (§5.2).

TikTokLiveProto ships betterproto2 dataclasses, not ``.proto`` files, but every dataclass field
carries its protobuf metadata (number, type, repeated, optional, oneof group, map key/value
types) and its annotation names the nested message or enum class. ``build_schema`` walks every
``Webcast*`` message class of ``TikTokLiveProto.v3.webcast`` and everything they nest, writes
one proto3 ``FileDescriptorProto`` for all of them, loads it into a private descriptor pool and
asks the protobuf runtime for message classes, which parse in C when the runtime is upb.

Along with the descriptors it records, per protobuf field, how betterproto2's ``to_dict()``
writes the value (key name, int64 as strings, enums by name...), so ``ttlp.tiktok.decode`` can
produce exactly the dict TikTokLive's own decode produces. Nothing here runs at import time.

Naming: everything lives in one file (TikTokLiveProto's modules import each other in cycles,
which protobuf files may not), package ``ttlp.tiktokliveproto``; a message keeps its class name
unless two classes share it (then the module path is prefixed). Each enum sits in its own
holder message, because protobuf scopes enum value names to the enclosing scope and unrelated
TikTok enums reuse names such as ``UNKNOWN``.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import sys
import time
from collections.abc import Iterable
from typing import Any, Final

FILE_NAME: Final = "ttlp/tiktokliveproto.proto"
PACKAGE: Final = "ttlp.tiktokliveproto"
ROOT_PACKAGE: Final = "TikTokLiveProto.v3.webcast"
ROOT_PREFIX: Final = "Webcast"

# betterproto2 proto_type → FieldDescriptorProto.Type number (descriptor.proto).
_SCALAR_TYPES: Final = {
    "double": 1,
    "float": 2,
    "int64": 3,
    "uint64": 4,
    "int32": 5,
    "fixed64": 6,
    "fixed32": 7,
    "bool": 8,
    "string": 9,
    "bytes": 12,
    "uint32": 13,
    "sfixed32": 15,
    "sfixed64": 16,
    "sint32": 17,
    "sint64": 18,
}
_TYPE_MESSAGE: Final = 11
_TYPE_ENUM: Final = 14
_LABEL_OPTIONAL: Final = 1
_LABEL_REPEATED: Final = 3
# proto3 JSON (and betterproto2's to_dict) writes these as decimal strings.
INT64_TYPES: Final = frozenset({"int64", "uint64", "sint64", "fixed64", "sfixed64"})
FLOAT_TYPES: Final = frozenset({"float", "double"})


class SchemaError(RuntimeError):
    """TikTokLiveProto's metadata cannot be turned into descriptors (a library change)."""


@dataclasses.dataclass(frozen=True, slots=True)
class FieldSpec:
    """One protobuf field of a TikTokLiveProto class, with its nested types resolved."""

    name: str  # the Python (= snake_case proto) field name
    key: str  # the key betterproto2's to_dict() writes (camelCase)
    number: int
    proto_type: str  # betterproto2 type name: "int64", "message", "map"...
    repeated: bool
    optional: bool
    group: str | None
    type_cls: type | None  # message or enum class (the map value's, for maps)
    map_types: tuple[str, str] | None  # (key proto_type, value proto_type) for maps


@dataclasses.dataclass(frozen=True, slots=True)
class Schema:
    """Everything built from TikTokLiveProto: pool, message classes and per-field specs."""

    pool: Any  # google.protobuf.descriptor_pool.DescriptorPool
    roots: dict[str, type]  # raw type name → TikTokLiveProto class
    message_classes: dict[type, type]  # TikTokLiveProto class → protobuf message class
    descriptors: dict[type, Any]  # TikTokLiveProto class → protobuf Descriptor
    fields: dict[type, tuple[FieldSpec, ...]]
    enums: dict[type, dict[int, str]]  # enum class → value → name as to_dict() writes it
    build_seconds: float


def webcast_modules() -> list[Any]:
    """Import every module of ``TikTokLiveProto.v3.webcast``.

    Importing all of them also binds each subpackage as an attribute of its parent package,
    which some annotations need (``"data.UserFansClub…"`` in ``webcast.model`` means the
    ``webcast.model.data`` module).
    """
    package = importlib.import_module(ROOT_PACKAGE)
    modules = [package]
    for info in pkgutil.walk_packages(package.__path__, ROOT_PACKAGE + "."):
        modules.append(importlib.import_module(info.name))
    return modules


def root_classes() -> dict[str, type]:
    """Every ``Webcast*`` message class (the types TikTok names in a fetch result's ``method``)."""
    import betterproto2

    roots: dict[str, type] = {}
    for module in webcast_modules():
        for name, value in vars(module).items():
            if (
                name.startswith(ROOT_PREFIX)
                and isinstance(value, type)
                and issubclass(value, betterproto2.Message)
                and value.__module__ == module.__name__
            ):
                if name in roots and roots[name] is not value:
                    raise SchemaError(f"two TikTokLiveProto classes are called {name}")
                roots[name] = value
    return roots


def _resolve(cls: type, field_name: str) -> Any:
    """The evaluated annotation of one field, in the namespace of the class's own module.

    The evaluation betterproto2's own ``_betterproto`` metadata does through
    ``typing.get_type_hints``, but only for the fields that name a class (message, enum, map),
    not for every ``Annotated[...]`` scalar: 35 ms for the whole closure instead of 0.8 s.
    ``tests/unit/test_decode.py`` checks both resolve every field to the same class.
    """
    annotation = inspect.get_annotations(cls).get(field_name)
    if annotation is None:
        raise SchemaError(f"{cls.__qualname__}.{field_name} has no annotation")
    if not isinstance(annotation, str):
        return annotation
    namespace = sys.modules[cls.__module__].__dict__
    try:
        return eval(annotation, namespace, {})  # the library's own type hints
    except Exception as exc:
        raise SchemaError(
            f"{cls.__qualname__}.{field_name}: cannot resolve {annotation!r}"
        ) from exc


def _inner(hint: Any, index: int = 0) -> Any:
    """``X | None`` → X, ``list[X]`` → X, ``dict[K, V]`` → K or V (``index``), ``X`` → X."""
    args = getattr(hint, "__args__", None)
    if not args:
        return hint
    if type(None) in args and len(args) == 2:
        return next(arg for arg in args if arg is not type(None))
    return args[index]


def _camel_key(field_name: str) -> str:
    from betterproto2.casing import camel_case

    return str(camel_case(field_name)).rstrip("_")


def _field_specs(cls: type) -> tuple[FieldSpec, ...]:
    import betterproto2

    specs = []
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        meta = field.metadata["betterproto"]
        type_cls: type | None = None
        map_types: tuple[str, str] | None = None
        expected: type | None = None
        if meta.proto_type == "map":
            key_meta, value_meta = meta.map_meta
            map_types = (key_meta.proto_type, value_meta.proto_type)
            if value_meta.proto_type in ("message", "enum"):
                type_cls = _inner(_resolve(cls, field.name), 1)
                is_message = value_meta.proto_type == "message"
                expected = betterproto2.Message if is_message else betterproto2.Enum
            if key_meta.proto_type not in _SCALAR_TYPES or key_meta.proto_type in FLOAT_TYPES:
                raise SchemaError(f"{cls.__qualname__}.{field.name}: bad map key {map_types}")
        elif meta.proto_type in ("message", "enum"):
            type_cls = _inner(_resolve(cls, field.name))
            is_message = meta.proto_type == "message"
            expected = betterproto2.Message if is_message else betterproto2.Enum
        elif meta.proto_type not in _SCALAR_TYPES:
            raise SchemaError(f"{cls.__qualname__}.{field.name}: unknown type {meta.proto_type}")
        if expected is not None and not (
            isinstance(type_cls, type) and issubclass(type_cls, expected)
        ):
            raise SchemaError(f"{cls.__qualname__}.{field.name} resolved to {type_cls!r}")
        if meta.unwrap is not None:
            # Well-known wrapper types (google.protobuf.*Value): TikTokLiveProto has none.
            raise SchemaError(f"{cls.__qualname__}.{field.name}: wrapped types are unsupported")
        specs.append(
            FieldSpec(
                name=field.name,
                key=_camel_key(field.name),
                number=meta.number,
                proto_type=meta.proto_type,
                repeated=bool(meta.repeated),
                optional=bool(meta.optional),
                group=meta.group,
                type_cls=type_cls,
                map_types=map_types,
            )
        )
    return tuple(specs)


def _collect(roots: Iterable[type]) -> tuple[dict[type, tuple[FieldSpec, ...]], list[type]]:
    """Messages reachable from ``roots`` (in a stable order) and the enums they use."""
    import betterproto2

    fields: dict[type, tuple[FieldSpec, ...]] = {}
    enums: dict[type, None] = {}
    stack = list(reversed(list(roots)))
    while stack:
        cls = stack.pop()
        if cls in fields:
            continue
        fields[cls] = specs = _field_specs(cls)
        for spec in reversed(specs):
            if spec.type_cls is None:
                continue
            if issubclass(spec.type_cls, betterproto2.Enum):
                enums.setdefault(spec.type_cls)
            elif spec.type_cls not in fields:
                stack.append(spec.type_cls)
    return fields, list(enums)


def _unique_names(classes: Iterable[type]) -> dict[type, str]:
    """Descriptor names: the class name, or ``module_path_Name`` when two classes share it."""
    classes = list(classes)
    counts: dict[str, int] = {}
    for cls in classes:
        counts[cls.__name__] = counts.get(cls.__name__, 0) + 1
    names = {}
    for cls in classes:
        if counts[cls.__name__] == 1:
            names[cls] = cls.__name__
        else:
            module = cls.__module__.removeprefix(ROOT_PACKAGE + ".").replace(".", "_")
            names[cls] = f"{module}_{cls.__name__}"
    if len(set(names.values())) != len(names):
        raise SchemaError("descriptor names collide")
    return names


def enum_names(enum_cls: Any) -> dict[int, str]:
    """Value → the name betterproto2's to_dict() writes: the proto name (``CONTROL_ACTION_…``)
    when the generator renamed the member, else the member name."""
    return {int(member): member.proto_name or member.name for member in enum_cls}


def _map_entry_name(field_name: str) -> str:
    """protoc's name for a map field's entry message (``prefer_data`` → ``PreferDataEntry``)."""
    parts = field_name.split("_")
    return "".join(part[:1].upper() + part[1:] for part in parts) + "Entry"


def build_file(
    fields: dict[type, tuple[FieldSpec, ...]], enums: list[type]
) -> tuple[Any, dict[type, str]]:
    """One proto3 FileDescriptorProto for ``fields``' messages and ``enums``; and full names."""
    from google.protobuf import descriptor_pb2

    names = _unique_names([*fields, *enums])
    full = {cls: f"{PACKAGE}.{name}" for cls, name in names.items()}
    enum_full = {cls: f"{PACKAGE}.{names[cls]}Scope.{names[cls]}" for cls in enums}
    file = descriptor_pb2.FileDescriptorProto(name=FILE_NAME, package=PACKAGE, syntax="proto3")

    for enum_cls in enums:
        holder = file.message_type.add(name=f"{names[enum_cls]}Scope")
        enum = holder.enum_type.add(name=names[enum_cls])
        values = sorted(enum_names(enum_cls).items())
        if not values or values[0][0] != 0:
            # proto3 wants a zero first; to_dict() names values from the Python enum anyway.
            values.insert(0, (0, f"{names[enum_cls].upper()}_UNSET_"))
        for number, value_name in values:
            enum.value.add(name=value_name, number=number)

    def type_name(proto_type: str, cls: type | None) -> dict[str, Any]:
        if proto_type == "message":
            assert cls is not None
            return {"type": _TYPE_MESSAGE, "type_name": "." + full[cls]}
        if proto_type == "enum":
            assert cls is not None
            return {"type": _TYPE_ENUM, "type_name": "." + enum_full[cls]}
        return {"type": _SCALAR_TYPES[proto_type]}

    for cls, specs in fields.items():
        message = file.message_type.add(name=names[cls])
        groups = sorted({spec.group for spec in specs if spec.group})
        for group in groups:
            message.oneof_decl.add(name=group)
        for spec in specs:
            field: dict[str, Any] = {"name": spec.name, "number": spec.number}
            field.update(json_name=spec.key, label=_LABEL_OPTIONAL)
            if spec.map_types is not None:
                entry = message.nested_type.add(name=_map_entry_name(spec.name))
                entry.options.map_entry = True
                key_type, value_type = spec.map_types
                entry.field.add(
                    name="key", number=1, label=_LABEL_OPTIONAL, **type_name(key_type, None)
                )
                entry.field.add(
                    name="value",
                    number=2,
                    label=_LABEL_OPTIONAL,
                    **type_name(value_type, spec.type_cls),
                )
                field.update(label=_LABEL_REPEATED, type=_TYPE_MESSAGE)
                field.update(type_name=f".{full[cls]}.{entry.name}")
            else:
                field.update(type_name(spec.proto_type, spec.type_cls))
            if spec.repeated:
                field.update(label=_LABEL_REPEATED)
            elif spec.group:
                field.update(oneof_index=groups.index(spec.group))
            elif spec.optional and spec.proto_type not in ("message", "map"):
                # proto3 `optional`: explicit presence through a synthetic oneof (declared
                # after the real ones, as protoc does).
                field.update(proto3_optional=True, oneof_index=len(message.oneof_decl))
                message.oneof_decl.add(name=f"_{spec.name}")
            message.field.add(**field)
    return file, full


def build_schema(roots: dict[str, type] | None = None) -> Schema:
    """Descriptors and message classes for ``roots`` (default: every ``Webcast*`` class)."""
    from google.protobuf import descriptor_pool, message_factory

    started = time.perf_counter()
    roots = root_classes() if roots is None else roots
    fields, enums = _collect(roots.values())
    file, full = build_file(fields, enums)
    pool = descriptor_pool.DescriptorPool()
    try:
        pool.Add(file)
    except Exception as exc:  # TypeError / ValueError, depending on the runtime
        raise SchemaError(f"protobuf rejected the generated descriptors: {exc}") from exc
    descriptors = {cls: pool.FindMessageTypeByName(full[cls]) for cls in fields}
    message_classes = {
        cls: message_factory.GetMessageClass(descriptors[cls]) for cls in roots.values()
    }
    return Schema(
        pool=pool,
        roots=dict(roots),
        message_classes=message_classes,
        descriptors=descriptors,
        fields=fields,
        enums={enum_cls: enum_names(enum_cls) for enum_cls in enums},
        build_seconds=time.perf_counter() - started,
    )
