"""A pydantic dataclass run over a YAML mapping reports file:line: field.path: reason."""

from __future__ import annotations

from dataclasses import field
from typing import Annotated, Literal

import pytest
from pydantic import AfterValidator, Field, ValidationInfo, model_validator
from pydantic.dataclasses import dataclass

from hazmon.plant.yamlmodel import (
    SECTION,
    Flag,
    InMapping,
    Positive,
    Whole,
    YText,
    build,
    check,
    from_file,
    validate,
)
from hazmon.plant.yamlnode import ConfigError, parse_document


def _not_zero_in_a_file(v: int, info: ValidationInfo) -> int:
    if v == 0 and from_file(info):
        raise ValueError("0 is only the default")
    return v


@dataclass(frozen=True, slots=True, config=SECTION)
class Inner:
    low: Positive = 1.0
    high: Positive = 2.0

    @model_validator(mode="after")
    def _ordered(self) -> Inner:
        check(
            (("high", "low"), f"high ({self.high:g}) must be above low ({self.low:g})")
            if self.high <= self.low
            else None
        )
        return self


@dataclass(frozen=True, slots=True, config=SECTION)
class Outer:
    name: YText
    count: Annotated[Whole, Field(ge=1)] = 1
    on: Flag = True
    inner: Inner = field(default_factory=Inner)
    items: tuple[Whole, ...] = ()
    spare: Annotated[Whole, AfterValidator(_not_zero_in_a_file)] = 0


def _load(text: str) -> Outer:
    return parse_document(text, "f.yaml", lambda n: validate(n, Outer))


def test_a_good_mapping_gives_the_frozen_object() -> None:
    assert _load("name: 12\ncount: 3\ninner: {low: 0.5}\nitems: [1, 2]\n") == Outer(
        name="12", count=3, inner=Inner(low=0.5), items=(1, 2)
    )
    assert Outer(name="x", spare=0).spare == 0  # a constructor may use the default


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        (
            "count: 0\n",
            ["f.yaml:1: count: must be >= 1, got 0", "f.yaml:1: name: missing required key 'name'"],
        ),
        ("name: a\ncount: '3'\n", ["f.yaml:2: count: expected a whole number, got text '3'"]),
        ("name: a\non: 1\n", ["f.yaml:2: on: expected true or false, got '1'"]),
        ("name: a\n\ninner:\n  lo: 1\n", ["f.yaml:4: inner.lo: unknown key 'lo' (allowed: high, low)"]),
        ("name: a\ninner: {low: .inf}\n", ["f.yaml:2: inner.low: expected a finite number, got '.inf'"]),
        ("name: a\ninner:\n  low: 3\n", ["f.yaml:3: inner.low: high (2) must be above low (3)"]),
        ("name: a\ninner: {}\n", []),
        ("name: a\ninner: 5\n", ["f.yaml:2: inner: expected a mapping, got '5'"]),
        ("name: a\nitems: [1, x]\n", ["f.yaml:2: items[1]: expected a whole number, got text 'x'"]),
        ("name: [a]\n", ["f.yaml:1: name: expected a value, got a list"]),
        ("name: a\nname: b\n", ["f.yaml:2: name: key 'name' given twice"]),
        ("name: a\nspare: 0\n", ["f.yaml:2: spare: 0 is only the default"]),
    ],
)
def test_every_problem_names_its_line_and_field(text: str, problems: list[str]) -> None:
    if not problems:
        _load(text)
        return
    with pytest.raises(ConfigError) as e:
        _load(text)
    assert [str(p) for p in e.value.problems] == problems


@dataclass(frozen=True, slots=True, config=SECTION)
class Cat:
    kind: Literal["cat"]
    lives: Annotated[Whole, Field(ge=1)] = 9


@dataclass(frozen=True, slots=True, config=SECTION)
class Dog:
    kind: Literal["dog"]
    bark: Flag = True


@dataclass(frozen=True, slots=True, config=SECTION)
class Pets:
    pets: tuple[Annotated[Cat | Dog, Field(discriminator="kind")], ...] = ()
    owner: YText = ""

    @model_validator(mode="after")
    def _owned(self, info: ValidationInfo) -> Pets:
        known = (info.context or {}).get("owners", ())
        check(((InMapping("owner"),), "a pet needs an owner") if self.pets and not self.owner else None)
        check((("owner",), f"'{self.owner}' is not an owner") if self.owner not in known else None)
        return self


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        ("owner: ann\npets:\n  - {kind: dog}\n  - {kind: cat, lives: 0}\n", ["f.yaml:4: pets[1].lives: must be >= 1, got 0"]),
        ("owner: ann\npets:\n  - {kind: cow}\n", ["f.yaml:3: pets[0].kind: 'cow' is not one of: cat, dog"]),
        ("owner: ann\npets:\n  - {lives: 3}\n", ["f.yaml:3: pets[0].kind: missing required key 'kind'"]),
        ("owner: ann\npets:\n  - 5\n", ["f.yaml:3: pets[0]: expected a mapping, got '5'"]),
        (
            "owner: ann\npets:\n  - {kind: dog, lives: 3}\n",
            ["f.yaml:3: pets[0].lives: unknown key 'lives' (allowed: bark, kind)"],
        ),
        ("pets:\n  - {kind: dog}\n", ["f.yaml:1: owner: a pet needs an owner"]),
        ("owner: bob\n", ["f.yaml:1: owner: 'bob' is not an owner"]),
    ],
)
def test_a_tagged_union_and_checks_with_context(text: str, problems: list[str]) -> None:
    with pytest.raises(ConfigError) as e:
        parse_document(text, "f.yaml", lambda n: validate(n, Pets, {"owners": ("ann",)}))
    assert [str(p) for p in e.value.problems] == problems


def test_build_takes_the_keys_of_the_same_name() -> None:
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Out:
        name: str
        count: int
        extra: str = "x"

    src = Outer(name="a", count=3)
    assert build(Out, src) == Out("a", 3)
    assert build(Out, src, count=4, extra="y") == Out("a", 4, "y")
