"""A YAML reader that remembers lines: every config in hazmon fails the same way.

`Node` wraps a PyYAML node with its dotted field path; its readers (`text`,
`num`, `whole`, `flag`, `choice`, `pair`, `mapping`, `sequence`) record a
`Problem` (``file:line: field.path: reason``) and return None instead of raising,
so a loader reports every problem of a file at once. `parse_document` runs a
loader over a text and raises `ConfigError` with them all.

Example:
    def _section(n: Node) -> MySettings | None:
        m = n.mapping({"port", "name"})
        if m is None:
            return None
        port = req(m, "port", n, lambda x: x.whole(1))
        name = opt(m, "name", Node.text, "default")
        return None if port is None else MySettings(port, name)

    settings = parse_document(text, "hazmon.yaml", _section)
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import yaml
from yaml.reader import ReaderError

from hazmon.plant.schema import storable_text

__all__ = [
    "ID_PATTERN",
    "ID_WHAT",
    "MAX_DEPTH",
    "ConfigError",
    "Node",
    "Problem",
    "decode_utf8",
    "expand_env",
    "fmt_num",
    "opt",
    "parse_document",
    "parse_file",
    "port_problem",
    "req",
]

T = TypeVar("T")

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    file: str
    line: int
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.path}: {self.reason}"


class ConfigError(Exception):
    """A configuration file has one or more problems."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class _Missing:
    pass


_MISSING = _Missing()


class Node:
    """A YAML node with its dotted path, for precise messages."""

    def __init__(self, ctx: Ctx, node: yaml.Node, path: str) -> None:
        self.ctx, self.node, self.path = ctx, node, path

    @property
    def line(self) -> int:
        return self.node.start_mark.line + 1

    def problem(self, reason: str, path: str | None = None, line: int | None = None) -> None:
        self.ctx.problems.append(Problem(self.ctx.file, line or self.line, path or self.path, reason))

    def mapping(self, allowed: set[str]) -> dict[str, Node] | None:
        if not isinstance(self.node, yaml.MappingNode):
            self.problem(f"expected a mapping, got {_kind(self.node)}")
            return None
        out: dict[str, Node] = {}
        for k, v in self.node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) else str(k)
            child = Node(self.ctx, v, f"{self.path}.{key}" if self.path else key)
            if key not in allowed:
                self.problem(
                    f"unknown key '{key}' (allowed: {', '.join(sorted(allowed))})",
                    child.path,
                    k.start_mark.line + 1,
                )
                continue
            if key in out:
                self.problem(f"key '{key}' given twice", child.path, k.start_mark.line + 1)
            out[key] = child
        return out

    def sequence(self) -> list[Node]:
        if not isinstance(self.node, yaml.SequenceNode):
            self.problem(f"expected a list, got {_kind(self.node)}")
            return []
        return [Node(self.ctx, v, f"{self.path}[{i}]") for i, v in enumerate(self.node.value)]

    def scalar(self) -> object:
        if not isinstance(self.node, yaml.ScalarNode):
            self.problem(f"expected a value, got {_kind(self.node)}")
            return _MISSING
        try:
            return self.ctx.constructor.construct_object(self.node)
        except (yaml.YAMLError, ValueError, TypeError) as e:  # 2026-13-45 or `!!int x`: ValueError
            self.ctx.constructor.recursive_objects.pop(self.node, None)  # as if never read
            self.problem(f"cannot read value: {e}")
            return _MISSING

    def text(self, pattern: str | None = None, what: str = "", env: bool = False) -> str | None:
        """Text, optionally checked against ``pattern``.

        With ``env=True``, ``${NAME}`` and ``${NAME:-default}`` are replaced from
        the environment once, at load (deployments point endpoints elsewhere
        without copying the file); an unset variable without a default is a problem.
        """
        v = self.scalar()
        if isinstance(v, _Missing):
            return None
        if isinstance(v, bool) or not isinstance(v, str | int | float):
            self.problem(f"expected text, got {_pytype(v)}")
            return None
        s = str(v)
        if isinstance(v, str):
            try:  # "\0" or "\ud800" written as a YAML escape: PostgreSQL and UTF-8 cannot carry it
                storable_text(s)
            except ValueError as e:
                self.problem(str(e))
                return None
        if env:
            try:
                s = expand_env(s)
            except ValueError as e:
                self.problem(str(e))
                return None
        if pattern and not re.fullmatch(pattern, s):
            self.problem(f"'{s}' is not {what or 'valid'}")
            return None
        return s

    def num(self, minimum: float | None = None, exclusive: bool = False) -> float | None:
        v = self.scalar()
        if isinstance(v, _Missing):
            return None
        if isinstance(v, bool) or not isinstance(v, int | float):
            self.problem(f"expected a number, got {_pytype(v)} '{self.node.value}'")
            return None
        f = float(v)
        if not math.isfinite(f):
            # `.inf` would make S and R infinite and `--json` print `Infinity` (not JSON)
            self.problem(f"expected a finite number, got '{self.node.value}'")
            return None
        if minimum is not None and (f <= minimum if exclusive else f < minimum):
            self.problem(f"must be {'>' if exclusive else '>='} {fmt_num(minimum)}, got {fmt_num(f)}")
            return None
        return f

    def whole(self, minimum: int | None = None) -> int | None:
        v = self.scalar()
        if isinstance(v, _Missing):
            return None
        if isinstance(v, bool) or not isinstance(v, int):
            self.problem(f"expected a whole number, got {_pytype(v)} '{self.node.value}'")
            return None
        if minimum is not None and v < minimum:
            self.problem(f"must be >= {minimum}, got {v}")
            return None
        return v

    def flag(self) -> bool | None:
        v = self.scalar()
        if isinstance(v, _Missing):
            return None
        if not isinstance(v, bool):
            self.problem(f"expected true or false, got '{self.node.value}'")
            return None
        return v

    def choice(self, options: tuple[str, ...]) -> str | None:
        s = self.text()
        if s is not None and s not in options:
            self.problem(f"'{s}' is not one of: {', '.join(options)}")
            return None
        return s

    def pair(self) -> tuple[float, float] | None:
        items = self.sequence()
        if not isinstance(self.node, yaml.SequenceNode):
            return None
        if len(items) != 2:
            self.problem(f"expected two numbers [a, b], got {len(items)} items")
            return None
        a, b = items[0].num(), items[1].num()
        if a is None or b is None:
            return None
        return (a, b)


@dataclass
class Ctx:
    file: str
    problems: list[Problem]
    # one constructor for every value of the file (a new one per value took a third of the load)
    constructor: yaml.SafeLoader = field(default_factory=lambda: yaml.SafeLoader(""))


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return f"'{node.value}'"


def _pytype(v: object) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", str: "text"}.get(type(v), type(v).__name__)


def fmt_num(x: float) -> str:
    """A number as people write it: 2.0 -> 2, 0.25 -> 0.25."""
    return f"{x:g}"


def req(m: dict[str, Node], key: str, parent: Node, fn: Callable[[Node], T | None]) -> T | None:
    if key not in m:
        parent.problem(f"missing required key '{key}'", f"{parent.path}.{key}" if parent.path else key)
        return None
    return fn(m[key])


def opt(m: dict[str, Node], key: str, fn: Callable[[Node], T | None], default: T) -> T:
    if key not in m:
        return default
    v = fn(m[key])
    return default if v is None else v


def expand_env(s: str) -> str:
    """``s`` with ``${NAME}`` and ``${NAME:-default}`` replaced from the environment.

    Raises:
        ValueError: naming the first variable that is not set and has no default.
    """
    missing = [m.group(1) for m in _ENV.finditer(s) if m.group(2) is None and m.group(1) not in os.environ]
    if missing:
        raise ValueError(
            f"environment variable {missing[0]} is not set and has no default (${{NAME:-default}})"
        )
    return _ENV.sub(lambda m: os.environ.get(m.group(1), m.group(2) or ""), s)


def port_problem(url: str) -> str | None:
    """Why the port of ``url`` is not a TCP port (1-65535), or None when it is or none is given."""
    try:
        port = urlsplit(url).port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        netloc = urlsplit(url).netloc
        given = netloc.rsplit(":", 1)[-1] if ":" in netloc else "?"
        return f"port {given} in '{url}' is not a TCP port (1-65535)"
    return None


ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.\-]*"
ID_WHAT = "an id (letters, digits, '_', '-', '.')"


# libyaml's parser when PyYAML has it (the wheels do): a 10,000-sensor plant file loads in
# about a second instead of tens of seconds; same nodes, same line marks
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _compose(text: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError:
        # the pure-Python parser words syntax errors better ("expected ',' or ']', but got ':'"):
        # a broken file is rare, so let it raise the error the user reads
        return yaml.compose(text, Loader=yaml.SafeLoader)


MAX_DEPTH = 64
"""Nesting deeper than this is named when a file is too deep to read (no config needs 10)."""


def _line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _too_deep_line(text: str) -> int:
    """The line where ``text`` first nests deeper than `MAX_DEPTH` (1 when it cannot tell)."""
    depth = 0
    try:
        # the pure-Python parser keeps its own stack: it does not recurse on nesting
        for ev in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(ev, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    return int(ev.start_mark.line) + 1 if ev.start_mark is not None else 1
            elif isinstance(ev, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                depth -= 1
    except (yaml.YAMLError, RecursionError):
        pass
    return 1


def _read_problem(text: str, file: str) -> tuple[yaml.Node | None, Problem | None]:
    """Compose ``text``; a file YAML cannot read is one `Problem` with its line, never a traceback."""
    try:
        return _compose(text), None
    except yaml.MarkedYAMLError as e:
        line = (e.problem_mark.line + 1) if e.problem_mark else 1
        return None, Problem(file, line, "(file)", f"not valid YAML: {e.problem}")
    except ReaderError as e:
        # a NUL or another control character: YAML text cannot hold it
        char = e.character if isinstance(e.character, str) else chr(e.character)
        line = _line_of(text, e.position)
        column = e.position - (text.rfind("\n", 0, e.position) + 1) + 1
        what = "a NUL character" if char == "\0" else "a control character"
        return None, Problem(
            file,
            line,
            "(file)",
            f"{what} (U+{ord(char):04X}) at column {column}: not a text file? "
            "(a YAML file is UTF-8 text; UTF-16 files are full of NULs)",
        )
    except yaml.YAMLError as e:
        return None, Problem(file, 1, "(file)", f"not valid YAML: {e}")
    except RecursionError:
        return None, Problem(
            file, _too_deep_line(text), "(file)", f"nested too deeply (more than {MAX_DEPTH} levels)"
        )


def parse_document(text: str, file: str, fn: Callable[[Node], T | None]) -> T:
    """Run ``fn`` over the YAML document in ``text``.

    Raises:
        ConfigError: with every problem ``fn`` recorded (or the one reason the text cannot be read).
    """
    ctx = Ctx(file, [])
    node, problem = _read_problem(text, file)
    if problem is not None:
        raise ConfigError([problem])
    if node is None:
        raise ConfigError([Problem(file, 1, "(file)", "the file is empty")])
    result = fn(Node(ctx, node, ""))
    if ctx.problems or result is None:
        raise ConfigError(ctx.problems or [Problem(file, 1, "(file)", "nothing could be read")])
    return result


def parse_file(path: str | Path, fn: Callable[[Node], T | None]) -> T:
    """`parse_document` over a file; an unreadable file is a `ConfigError` too."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ConfigError([Problem(str(p), 0, "(file)", f"cannot read: {e.strerror}")]) from e
    return parse_document(decode_utf8(data, str(p)), str(p), fn)


def decode_utf8(data: bytes, file: str) -> str:
    """The text of a config file, which must be UTF-8 (a UTF-8 BOM is allowed).

    Raises:
        ConfigError: naming the first byte that is not UTF-8 (line, column, offset) and,
            when the bytes read as GBK/GB18030 (a file saved on a Chinese Windows machine),
            saying so and how to convert it.
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        reason = f"not UTF-8: byte 0x{data[e.start]:02x} at column {column} (byte offset {e.start})"
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            why = reason + "; it is UTF-16: convert it with `iconv -f UTF-16 -t UTF-8`"
            raise ConfigError([Problem(file, 1, "(file)", why)]) from e
        try:
            data.decode("gb18030")
        except UnicodeDecodeError:
            reason += "; save the file as UTF-8"
        else:
            reason += (
                "; it reads as GBK (GB18030), as saved on a Chinese Windows machine: convert it with "
                f"`iconv -f GBK -t UTF-8 {Path(file).name} > {Path(file).stem}.utf8.yaml` and use that file"
            )
        raise ConfigError([Problem(file, line, "(file)", reason)]) from e
