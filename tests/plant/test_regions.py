"""Region codes and scopes: a county bureau never sees its neighbour."""

from __future__ import annotations

import pytest

from hazmon.plant.regions import Scope, covers, parent_codes, prefix


def test_each_level_covers_its_own_and_nothing_else() -> None:
    assert covers(Scope("330106", "county"), "330106")
    assert not covers(Scope("330106", "county"), "330108")
    assert covers(Scope("330100", "city"), "330108")
    assert not covers(Scope("330100", "city"), "330201")
    assert covers(Scope("330000", "province"), "330201")
    assert not covers(Scope("330000", "province"), "320106")
    assert covers(Scope("000000", "nation"), "320106")
    assert not covers(Scope("330100", "city"), "33010")  # not a code at all


def test_a_scope_whose_code_does_not_match_its_level_is_refused() -> None:
    with pytest.raises(ValueError, match="not a city code"):
        Scope("330106", "city")
    with pytest.raises(ValueError, match="six digits"):
        Scope("3301", "city")
    assert prefix(Scope("330100", "city")) == "3301"


def test_parents() -> None:
    assert parent_codes("330106") == {
        "county": "330106",
        "city": "330100",
        "province": "330000",
        "nation": "000000",
    }
