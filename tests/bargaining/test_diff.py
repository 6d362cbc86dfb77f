"""The path-level diff between two sets of terms."""

from __future__ import annotations

from bargaining.diff import diff_terms, diff_values
from bargaining.terms import load_founding_terms
from tests.bargaining.strategies import terms_with


def test_the_same_terms_have_no_diff() -> None:
    assert diff_terms(load_founding_terms(), load_founding_terms()) == []


def test_changed_leaves_are_listed_by_path_with_wire_values() -> None:
    after = terms_with(
        **{
            "fares.standard.minimum": "7.5",
            "reputation.excluded_tags": ["traffic"],
            "dispatch.offer_timeout_s": 20,
        }
    )
    changes = [c.to_wire() for c in diff_terms(load_founding_terms(), after)]
    assert changes == [
        {"path": "dispatch.offer_timeout_s", "from": 15, "to": 20},
        {"path": "fares.standard.minimum", "from": "7.00", "to": "7.50"},
        {
            "path": "reputation.excluded_tags",
            "from": ["traffic", "pricing", "app_problem"],
            "to": ["traffic"],
        },
    ]


def test_added_and_removed_classes_show_every_leaf() -> None:
    before = load_founding_terms()
    after = terms_with(
        fares={
            "standard": {
                "base": "3.50",
                "per_km": "1.05",
                "per_minute": "0.35",
                "minimum": "7.00",
                "max_over_quote_percent": "50",
            },
            "premium": {
                "base": "5.00",
                "per_km": "1.50",
                "per_minute": "0.50",
                "minimum": "9.00",
                "max_over_quote_percent": "50",
            },
        }
    )
    paths = {c.path: (c.before, c.after) for c in diff_terms(before, after)}
    assert paths["fares.accessible.base"] == ("3.50", None)
    assert paths["fares.premium.minimum"] == (None, "9.00")
    assert len(paths) == 10  # five leaves of the class removed, five of the one added


def test_a_value_that_becomes_an_object_is_reported_per_leaf() -> None:
    changes = diff_values({"a": None, "b": 1}, {"a": {"x": 1}, "b": 1})
    assert [(c.path, c.before, c.after) for c in changes] == [("a", None, None), ("a.x", None, 1)]
