"""Upstream's --controllers syntax for choosing which controllers a manager runs."""

from __future__ import annotations

import pytest

from kajitori.controllers import manager


def test_star_selects_every_default_controller() -> None:
    assert manager.select_controllers("*") == manager.DEFAULT_CONTROLLERS


def test_minus_leaves_one_out_whatever_the_order() -> None:
    chosen = manager.select_controllers("-namespace,*")
    assert "namespace" not in chosen
    assert set(chosen) == set(manager.DEFAULT_CONTROLLERS) - {"namespace"}


def test_names_add_only_those() -> None:
    assert manager.select_controllers("replicaset, deployment") == ("replicaset", "deployment")


def test_unknown_names_are_refused() -> None:
    with pytest.raises(ValueError, match='"bogus" is not in the list of known controllers'):
        manager.select_controllers("*,-bogus")
