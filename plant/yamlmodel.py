"""Config sections validated by pydantic models, reported with the YAML line map.

A section of a config file is a pydantic dataclass (or model): its keys are written once, with
their types, bounds and defaults. `validate` runs it over a `Node` and turns every pydantic
error into a `Problem` (``file:line: field.path: reason``) with the line of the value (the key's line for
an unknown key, the mapping's line for a missing one) and the wording hazmon always used
("must be > 0, got -5", "'tank' is not one of: ...", "unknown key 'x' (allowed: ...)").

Example:
    @pydantic.dataclasses.dataclass(frozen=True, slots=True, config=SECTION)
    class Spool:
        dir: YText = ""
        max_mb: Positive = 1024.0

    spool = validate(node, Spool)  # None when it has problems, recorded on the node

Checks that span fields raise `FieldCheckError` naming the field(s) the message belongs to.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
)
from pydantic.fields import FieldInfo

from hazmon.plant.schema import storable_text
from hazmon.plant.yamlnode import _MISSING, Node, _kind, _pytype, fmt_num

__all__ = [
    "SECTION",
    "FieldCheckError",
    "Flag",
    "Fraction",
    "InMapping",
    "NonNegative",
    "Number",
    "Positive",
    "Where",
    "Whole",
    "YText",
    "build",
    "check",
    "choice",
    "from_file",
    "pattern",
    "validate",
]

M = TypeVar("M")
Loc = tuple[int | str, ...]

SECTION = ConfigDict(extra="forbid", allow_inf_nan=False)
"""The configuration of a config section (a frozen pydantic dataclass): unknown keys refused,
``.inf``/``.nan`` refused. Its values use the strict types below (`Number`, `Whole`, `Flag`,
`YText`...): YAML types as written ("5" is not a number, ``true`` is not a number). The section
itself is not strict: pydantic takes a mapping for a nested dataclass only in lax mode."""


Where = tuple[str | tuple[str | int, ...], ...]
"""Where a cross-field problem goes: the first of these field paths (relative to the model that
checks them; an int is a list index) the file gives, else the model's own place (``()``: there)."""


class InMapping(str):
    """A key named at the line of the mapping that holds it, whether the file gives it or not.

    For a key a check requires that the file leaves out (``((InMapping("q_t"),), "missing ...")``),
    or a check that speaks of the whole item (``(("sensors", 0, InMapping("equipment")),)``).
    """

    __slots__ = ()


class FieldCheckError(ValueError):
    """Checks across fields that failed, each naming the field(s) its message belongs to."""

    def __init__(self, items: list[tuple[Where, str]]) -> None:
        super().__init__("; ".join(reason for _, reason in items))
        self.items = [
            (tuple((f,) if isinstance(f, str) else f for f in where), reason) for where, reason in items
        ]


def build(cls: Callable[..., M], src: object, **given: object) -> M:
    """``cls`` (a dataclass) from the attributes of ``src`` (a section) with the same names, and ``given``.

    A key the section and the object share is then written in the two classes only.
    """
    names = {f.name for f in dataclasses.fields(cls)} - set(given)  # type: ignore[arg-type]
    return cls(**{k: getattr(src, k) for k in names if hasattr(src, k)}, **given)


def check(*items: tuple[Where, str] | None) -> None:
    """Raise `FieldCheckError` with the items that are not None (a model validator's failed checks)."""
    failed = [i for i in items if i is not None]
    if failed:
        raise FieldCheckError(failed)


def _fraction(v: float) -> float:
    if v < 0:
        raise ValueError(f"must be >= 0, got {fmt_num(v)}")
    if v > 1:
        raise ValueError(f"must be between 0 and 1, got {fmt_num(v)}")
    return v


def _as_text(v: object) -> object:
    # a number where text is expected is its text (a port or an id written without quotes)
    return str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v


Number = Annotated[float, Strict()]
Positive = Annotated[float, Strict(), Field(gt=0)]
NonNegative = Annotated[float, Strict(), Field(ge=0)]
Fraction = Annotated[float, Strict(), AfterValidator(_fraction)]
Whole = Annotated[int, Strict()]
Flag = Annotated[bool, Strict()]
YText = Annotated[str, Strict(), BeforeValidator(_as_text), AfterValidator(storable_text)]
"""Text as `Node.text` reads it: a number is taken as its text; no NUL, no lone surrogate."""


def choice(*options: str) -> Callable[[object], object]:
    """A before-validator refusing text that is not one of ``options`` (with them listed)."""

    def check(v: object) -> object:
        v = _as_text(v)
        if isinstance(v, str) and v not in options:
            raise ValueError(f"'{v}' is not one of: {', '.join(options)}")
        return v

    return check


def pattern(regex: str, what: str) -> Callable[[str], str]:
    """An after-validator refusing text that does not match ``regex`` ("'x' is not <what>")."""
    compiled = re.compile(regex)

    def check(v: str) -> str:
        if not compiled.fullmatch(v):
            raise ValueError(f"'{v}' is not {what}")
        return v

    return check


class _Map:
    """A YAML node turned into plain values, remembering each value's node and each key's line."""

    def __init__(self, root: Node) -> None:
        self.root = root
        self.nodes: dict[Loc, yaml.Node] = {}
        self.key_lines: dict[Loc, int] = {}
        self.bad: set[Loc] = set()

    def plain(self, n: Node, loc: Loc) -> object:
        self.nodes[loc] = n.node
        if isinstance(n.node, yaml.MappingNode):
            out: dict[str, object] = {}
            for k, v in n.node.value:
                key = k.value if isinstance(k, yaml.ScalarNode) else str(k)
                child = Node(n.ctx, v, f"{n.path}.{key}" if n.path else key)
                if key in out:
                    n.problem(f"key '{key}' given twice", child.path, k.start_mark.line + 1)
                self.key_lines[(*loc, key)] = k.start_mark.line + 1
                out[key] = self.plain(child, (*loc, key))
            return out
        if isinstance(n.node, yaml.SequenceNode):
            return [
                self.plain(Node(n.ctx, v, f"{n.path}[{i}]"), (*loc, i)) for i, v in enumerate(n.node.value)
            ]
        value = n.scalar()
        if value is _MISSING:
            self.bad.add(loc)
            return None
        return value

    def line(self, loc: Loc) -> int:
        while loc not in self.nodes:
            loc = loc[:-1]
        return int(self.nodes[loc].start_mark.line) + 1

    def path(self, loc: Loc) -> str:
        parts = [self.root.path] if self.root.path else []
        for p in loc:
            if isinstance(p, int) and parts:
                parts[-1] += f"[{p}]"
            else:
                parts.append(str(p))
        return ".".join(parts)

    def raw(self, loc: Loc) -> str:
        node = self.nodes.get(loc)
        return str(node.value) if isinstance(node, yaml.ScalarNode) else ""


def _fields(tp: object) -> dict[str, FieldInfo] | None:
    """The fields of a pydantic model or pydantic dataclass (None for anything else)."""
    fields = getattr(tp, "__pydantic_fields__", None) if isinstance(tp, type) else None
    return fields if isinstance(fields, dict) else None


def _models_in(tp: object) -> list[object]:
    if _fields(tp) is not None:
        return [tp]
    return [m for a in typing.get_args(tp) for m in _models_in(a)]


def _at(data: object, p: int | str) -> object:
    """The plain value at key or index ``p`` of ``data`` (None when there is none)."""
    if isinstance(data, dict):
        return data.get(p)
    if isinstance(data, list) and isinstance(p, int) and p < len(data):
        return data[p]
    return None


def _keys(model: object) -> dict[str, FieldInfo]:
    """The fields of ``model`` by the key a file writes (its alias, e.g. ``from``)."""
    return {f.alias or name: f for name, f in (_fields(model) or {}).items()}


def _tagged(models: list[object], value: object) -> object:
    """The member of a tagged union whose ``Literal`` tag ``value`` (a mapping) carries."""
    for model in models:
        for key, f in _keys(model).items():
            tags = typing.get_args(f.annotation) if typing.get_origin(f.annotation) is typing.Literal else ()
            if isinstance(value, dict) and value.get(key) in tags:
                return model
    return models[0]


def _keys_at(model: object, loc: Loc, data: object) -> list[str]:
    """The keys allowed in the mapping at ``loc`` (those of the model that validates it)."""
    models = [model]
    for p in loc:
        if isinstance(p, str):
            field = _keys(_tagged(models, data)).get(p)
            models = _models_in(field.annotation) if field is not None else []
            if not models:
                return []
        data = _at(data, p)
    return sorted(_keys(_tagged(models, data)))


def _untagged(loc: Loc, data: object, kind: str) -> Loc:
    """``loc`` without the tag pydantic puts in the place of a tagged union's member (its ``kind``)."""
    out: list[int | str] = []
    for i, p in enumerate(loc):
        tag = isinstance(data, dict) and isinstance(p, str) and p not in data and p in data.values()
        if tag and (i + 1 < len(loc) or kind != "missing"):
            continue
        out.append(p)
        data = _at(data, p)
    return tuple(out)


def _unquoted(tags: str) -> str:
    return tags.replace("'", "")


_Why = Callable[[dict[str, Any], Any, str], str]
_WORDING: dict[str, _Why] = {
    "greater_than": lambda c, v, _: f"must be > {fmt_num(c['gt'])}, got {fmt_num(v)}",
    "greater_than_equal": lambda c, v, _: f"must be >= {fmt_num(c['ge'])}, got {fmt_num(v)}",
    "less_than_equal": lambda c, v, _: f"must be <= {fmt_num(c['le'])}, got {fmt_num(v)}",
    "float_type": lambda _, v, raw: f"expected a number, got {_pytype(v)} '{raw}'",
    "int_type": lambda _, v, raw: f"expected a whole number, got {_pytype(v)} '{raw}'",
    "finite_number": lambda _c, _v, raw: f"expected a finite number, got '{raw}'",
    "bool_type": lambda _c, _v, raw: f"expected true or false, got '{raw}'",
    "string_type": lambda _, v, _raw: f"expected text, got {_pytype(v)}",
    "time_type": lambda _, v, _raw: f"expected text, got {_pytype(v)}",  # "HH:MM" read by a validator
    # a tagged union's tag (a notifier's kind) that names none of its members
    "union_tag_invalid": lambda c, _v, _r: f"'{c['tag']}' is not one of: {_unquoted(c['expected_tags'])}",
}
"""hazmon's wording of pydantic's errors (the messages every config file has always given)."""

_UNKNOWN_KEY = ("extra_forbidden", "unexpected_keyword_argument")  # a model's, a dataclass's
_EXPECTED = {
    "model_type": "a mapping",
    "dict_type": "a mapping",
    "model_attributes_type": "a mapping",
    "dataclass_type": "a mapping",
    "union_tag_not_found": "a mapping",
    "list_type": "a list",
    "tuple_type": "a list",
}


def _reason(err: Any, m: _Map, model: object, loc: Loc, data: object) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    node = m.nodes.get(loc)
    if kind in _WORDING:
        if node is not None and not isinstance(node, yaml.ScalarNode):
            return f"expected a value, got {_kind(node)}"  # a list or a mapping where a value belongs
        return _WORDING[kind](ctx, err.get("input"), m.raw(loc))
    if kind in _UNKNOWN_KEY:
        return f"unknown key '{loc[-1]}' (allowed: {', '.join(_keys_at(model, loc[:-1], data))})"
    if kind == "union_tag_not_found" and node is None:  # the tag's key (appended to loc) is not given
        kind = "missing"
    if kind == "missing":
        return f"missing required key '{loc[-1]}'"
    if kind in _EXPECTED and node is not None:
        return f"expected {_EXPECTED[kind]}, got {_kind(node)}"
    e = ctx.get("error")
    return str(e) if kind == "value_error" and isinstance(e, ValueError) else str(err["msg"])


_ADAPTERS: dict[object, TypeAdapter[Any]] = {}
_FROM_FILE = {"from_file": True}


def from_file(info: ValidationInfo) -> bool:
    """Whether a validator runs over a config file (`validate`) rather than a constructor call.

    For a default that stands for "not set" (e.g. 0) and that the file may not write itself.
    """
    return isinstance(info.context, dict) and bool(info.context.get("from_file"))


def _adapter(model: Any) -> TypeAdapter[Any]:
    if model not in _ADAPTERS:
        _ADAPTERS[model] = TypeAdapter(model)
    return _ADAPTERS[model]


def validate(node: Node, model: type[M], context: dict[str, Any] | None = None) -> M | None:
    """``model`` (a pydantic model or dataclass) over the mapping at ``node``.

    Every problem is recorded on ``node`` (its file, the lines of the values). ``context`` is
    what validators read from ``info.context`` besides `from_file` (e.g. the sections the
    file declared before this one).

    Returns:
        The model, or None when the section has problems.
    """
    m = _Map(node)
    data = m.plain(node, ())
    try:
        return typing.cast(
            M, _adapter(model).validate_python(data, context={**(context or {}), **_FROM_FILE})
        )
    except ValidationError as e:
        for err in e.errors(include_url=False):
            loc: Loc = _untagged(tuple(err["loc"]), data, err["type"])
            if err["type"] == "union_tag_invalid" or (
                err["type"] == "union_tag_not_found" and isinstance(m.nodes.get(loc), yaml.MappingNode)
            ):
                loc = (*loc, str(err["ctx"]["discriminator"]).strip("'"))
            if any(loc[: len(b)] == b for b in m.bad):
                continue  # already told: the value could not be read
            e_ctx = err.get("ctx") or {}
            fp = e_ctx.get("error")
            if isinstance(fp, FieldCheckError):
                for fields, reason in fp.items:
                    places = [
                        (
                            (*loc, *f),
                            m.line((*loc, *f[:-1])) if isinstance(f[-1], InMapping) else m.line((*loc, *f)),
                        )
                        for f in fields
                        if isinstance(f[-1], InMapping) or (*loc, *f) in m.nodes
                    ]
                    at, line = places[0] if places else (loc, m.line(loc))
                    node.problem(reason, m.path(at), line)
                continue
            line = m.key_lines.get(loc, m.line(loc)) if err["type"] in _UNKNOWN_KEY else m.line(loc)
            node.problem(_reason(err, m, model, loc, data), m.path(loc), line)
        return None
