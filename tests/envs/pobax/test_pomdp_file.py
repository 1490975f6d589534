"""The ``.POMDP`` reader: the tiger problem into exact arrays, every format form, bad files."""

from __future__ import annotations

import re

import numpy as np
import pytest

from sweepax.envs.pobax import classic, pomdp_file
from sweepax.errors import UserError

# Cassandra's tiger problem, written with the format's different forms of entry
TIGER = """\
# the tiger problem (Kaelbling, Littman, Cassandra 1998)
discount: 0.95
values: reward
states: tiger-left tiger-right
actions: listen open-left open-right
observations: tiger-left tiger-right

T: listen
identity

T: open-left
uniform

T: open-right : tiger-left
0.5 0.5
T: open-right : tiger-right : tiger-left 0.5
T: open-right : 1 : 1
0.5

O: listen
0.85 0.15
0.15 0.85     # a comment after the values

O: open-left
uniform
O: open-right : * : * 0.5

R: listen : * : * : * -1
R: open-left : tiger-left : * : * -100
R: open-left : tiger-right : * : * 10
R: open-right : tiger-left : * : *
10
R: open-right : tiger-right : * : * -100
"""


def test_tiger_parses_into_exact_arrays() -> None:
    f = pomdp_file.parse(TIGER, "tiger.POMDP")
    assert f.discount == 0.95
    assert f.states == ("tiger-left", "tiger-right")
    assert f.actions == ("listen", "open-left", "open-right")
    assert f.observations == ("tiger-left", "tiger-right")
    np.testing.assert_array_equal(f.start, [0.5, 0.5])  # no start: uniform
    np.testing.assert_array_equal(f.T[0], [[1, 0], [0, 1]])
    np.testing.assert_array_equal(f.T[1], [[0.5, 0.5], [0.5, 0.5]])
    np.testing.assert_array_equal(f.T[2], [[0.5, 0.5], [0.5, 0.5]])
    np.testing.assert_array_equal(f.O[0], [[0.85, 0.15], [0.15, 0.85]])
    np.testing.assert_array_equal(f.O[1], [[0.5, 0.5], [0.5, 0.5]])
    np.testing.assert_array_equal(f.O[2], [[0.5, 0.5], [0.5, 0.5]])
    assert f.R.shape == (3, 2, 2, 2)
    np.testing.assert_array_equal(f.R[0], -np.ones((2, 2, 2)))
    np.testing.assert_array_equal(f.R[1, 0], np.full((2, 2), -100.0))
    np.testing.assert_array_equal(f.R[1, 1], np.full((2, 2), 10.0))
    np.testing.assert_array_equal(f.R[2, 0], np.full((2, 2), 10.0))
    np.testing.assert_array_equal(f.R[2, 1], np.full((2, 2), -100.0))


def test_costs_start_forms_numbered_names_and_observation_rewards() -> None:
    text = """discount: 0.9
values: cost
states: 3
actions: a b
observations: 2
start include: 0 2
T: * identity
O: * : * : 0 1.0
R: a : 0 : 1 : 1 2.5
R: b : 2 : 1
1 2
R: b : 1
1 2
3 4
5 6
"""
    f = pomdp_file.parse(text)
    assert f.states == ("0", "1", "2") and f.observations == ("0", "1")
    np.testing.assert_array_equal(f.start, [0.5, 0.0, 0.5])
    np.testing.assert_array_equal(f.T, np.stack([np.eye(3)] * 2))
    assert f.R[0, 0, 1, 1] == -2.5 and f.R[0, 0, 1, 0] == 0.0  # cost -> negative reward
    np.testing.assert_array_equal(f.R[1, 2, 1], [-1, -2])
    np.testing.assert_array_equal(f.R[1, 1], -np.array([[1, 2], [3, 4], [5, 6]]))
    for start, expected in [
        ("start exclude: 1", [0.5, 0.0, 0.5]),
        ("start: uniform", [1 / 3] * 3),
        ("start: 2", [0.0, 0.0, 1.0]),
        ("start:\n0.2 0.3 0.5", [0.2, 0.3, 0.5]),
    ]:
        f = pomdp_file.parse(text.replace("start include: 0 2", start))
        np.testing.assert_array_equal(f.start, expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (TIGER.replace("T: listen", "T: jump"), "tiger.POMDP, line 8: unknown action 'jump'"),
        (TIGER.replace("0.15 0.85 ", "0.15 x "), "tiger.POMDP, line 22: expected a number"),
        (TIGER.replace("discount: 0.95\n", ""), "tiger.POMDP: no 'discount:' line"),
        (TIGER.replace("values: reward", "values: fun"), "'values:' must be reward or cost"),
        (TIGER + "Q: listen", "expected an entry T:, O: or R:, got 'Q'"),
        (TIGER + "T: listen : tiger-left", "file ends where transition probabilities"),
    ],
)
def test_bad_files_name_the_file_the_line_and_the_problem(text: str, message: str) -> None:
    with pytest.raises(UserError, match=re.escape(message)) as err:
        pomdp_file.parse(text, "tiger.POMDP")
    assert "\n" not in str(err.value) and "tiger.POMDP" in str(err.value)


@pytest.mark.parametrize("name", classic.NAMES + classic.NONTERMINATING)
def test_every_shipped_file_parses_into_distributions(name: str) -> None:
    path = classic.model_path(name)
    f = pomdp_file.parse(path.read_text(), str(path))
    n_a, n_s, n_o = len(f.actions), len(f.states), len(f.observations)
    assert f.T.shape == (n_a, n_s, n_s) and f.O.shape == (n_a, n_s, n_o)
    assert f.R.shape == (n_a, n_s, n_s, n_o) and f.start.shape == (n_s,)
    assert 0 < f.discount <= 1
    np.testing.assert_allclose(f.T.sum(-1), 1.0, atol=1e-4)
    assert f.start.sum() == pytest.approx(1.0, abs=1e-4)
    # paint.POMDP gives its terminal state two observations of probability 1 (normalised later)
    sums = f.O.sum(-1)
    assert np.all((np.abs(sums - 1) < 1e-4) | ((name == "paint") & (sums == 2)))
