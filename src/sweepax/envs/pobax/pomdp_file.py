"""A reader of Cassandra's ``.POMDP`` file format: names, discount, start, T, O and R arrays.

Source: the format spec, http://pomdp.org/code/pomdp-file-spec.html (A. Cassandra). The file is a
preamble (``discount``, ``values``, ``states``, ``actions``, ``observations``, optional ``start``)
followed by entries, later entries overwriting earlier ones cell by cell:

  T: <a> : <s> : <s'> %f      T: <a> : <s>  (|S| values)     T: <a>  identity | uniform | |S|x|S|
  O: <a> : <s'> : <o> %f      O: <a> : <s'> (|O| values)     O: <a>  identity | uniform | |S|x|O|
  R: <a> : <s> : <s'> : <o> %f    R: <a> : <s> : <s'> (|O| values)    R: <a> : <s> (|S|x|O|)

An index is a name, a 0-based number or ``*`` (all). Values may continue on the next lines; ``#``
starts a comment. ``start`` is a distribution over states (|S| values), ``uniform``, one state,
or ``start include: ...`` / ``start exclude: ...`` (uniform over the listed / the other states);
absent, it is uniform. ``values: cost`` negates R. Arrays are returned as written (float64);
turning them into a model (normalising rows, action-dependent observations) is
``classic.build_model``'s job.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np

from sweepax.errors import UserError

PREAMBLE = ("discount", "values", "states", "actions", "observations", "start")
ENTRIES = ("T", "O", "R")


@dataclasses.dataclass(frozen=True)
class PomdpFile:
    """The content of one ``.POMDP`` file, indices in file order."""

    discount: float
    states: tuple[str, ...]
    actions: tuple[str, ...]
    observations: tuple[str, ...]
    start: np.ndarray  # (S,) as written (a distribution unless the file is malformed)
    T: np.ndarray  # (A, S, S): T[a, s, s'] = P(s' | s, a)
    O: np.ndarray  # noqa: E741  (A, S, O): O[a, s', o] = P(o | s', a)
    R: np.ndarray  # (A, S, S, O): R[a, s, s', o], rewards (costs already negated)


@dataclasses.dataclass
class _Tokens:
    """The file's tokens with their line numbers; ``:`` is a token of its own."""

    source: str
    items: list[tuple[str, int]]
    pos: int = 0

    def peek(self, ahead: int = 0) -> str | None:
        i = self.pos + ahead
        return self.items[i][0] if i < len(self.items) else None

    def line(self) -> int:
        i = min(self.pos, len(self.items) - 1)
        return self.items[i][1] if self.items else 0

    def fail(self, message: str) -> UserError:
        return UserError(f"{self.source}, line {self.line()}: {message}")

    def take(self, what: str) -> str:
        token = self.peek()
        if token is None:
            raise self.fail(f"file ends where {what} was expected")
        self.pos += 1
        return token

    def expect(self, token: str) -> None:
        got = self.take(repr(token))
        if got != token:
            self.pos -= 1
            raise self.fail(f"expected {token!r}, got {got!r}")

    def at_keyword(self) -> bool:
        """Whether the next token starts a preamble item or an entry (``X :`` or ``start``)."""
        token = self.peek()
        if token == "start":
            return True
        return token in PREAMBLE + ENTRIES and self.peek(1) == ":"

    def number(self, what: str) -> float:
        token = self.take(what)
        try:
            return float(token)
        except ValueError:
            self.pos -= 1
            raise self.fail(f"expected a number ({what}), got {token!r}") from None

    def numbers(self, count: int, what: str) -> np.ndarray:
        return np.array([self.number(what) for _ in range(count)])

    def words(self) -> list[str]:
        """Tokens up to the next keyword or the end of the file."""
        out = []
        while self.peek() is not None and not self.at_keyword():
            out.append(self.take("a name"))
        return out


def _tokenize(text: str, source: str) -> _Tokens:
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0]
        items += [(tok, number) for tok in re.sub(":", " : ", line).split()]
    return _Tokens(source, items)


def _names(tokens: _Tokens, what: str) -> tuple[str, ...]:
    """``states: 5`` (numbered 0..4) or ``states: a b c``."""
    words = tokens.words()
    if not words:
        raise tokens.fail(f"'{what}:' lists no {what}")
    if len(words) == 1 and words[0].isdigit():
        return tuple(str(i) for i in range(int(words[0])))
    return tuple(words)


def _resolve(tokens: _Tokens, token: str, names: tuple[str, ...], what: str) -> slice | int:
    """A name, a 0-based number or ``*``."""
    if token == "*":
        return slice(None)
    if token in names:
        return names.index(token)
    if token.isdigit() and int(token) < len(names):
        return int(token)
    raise tokens.fail(f"unknown {what} {token!r}; known: {' '.join(names)}")


def _index(tokens: _Tokens, names: tuple[str, ...], what: str) -> slice | int:
    token = tokens.take(what)
    tokens.pos -= 1  # a message names this token's line
    found = _resolve(tokens, token, names, what)
    tokens.pos += 1
    return found


def _indices(tokens: _Tokens, kinds: list[tuple[tuple[str, ...], str]]) -> list[slice | int]:
    """``a [: s [: s' ...]]``: as many indices as are written, at most ``len(kinds)``."""
    out = [_index(tokens, *kinds[0])]
    while len(out) < len(kinds) and tokens.peek() == ":":
        tokens.expect(":")
        out.append(_index(tokens, *kinds[len(out)]))
    return out


def _matrix(tokens: _Tokens, rows: int, cols: int, what: str) -> np.ndarray:
    """``identity``, ``uniform`` or rows x cols numbers."""
    if tokens.peek() == "identity":
        tokens.take(what)
        if rows != cols:
            raise tokens.fail(f"'identity' needs a square matrix, {what} is {rows}x{cols}")
        return np.eye(rows)
    if tokens.peek() == "uniform":
        tokens.take(what)
        return np.full((rows, cols), 1.0 / cols)
    return tokens.numbers(rows * cols, what).reshape(rows, cols)


def _start(tokens: _Tokens, states: tuple[str, ...]) -> np.ndarray:
    n = len(states)
    if tokens.peek() in ("include", "exclude"):
        mode = tokens.take("include or exclude")
        tokens.expect(":")
        chosen = np.zeros(n, bool)
        for name in tokens.words():
            chosen[_resolve(tokens, name, states, "state")] = True
        if mode == "exclude":
            chosen = ~chosen
        return chosen / chosen.sum()
    tokens.expect(":")
    if tokens.peek() == "uniform":
        tokens.take("uniform")
        return np.full(n, 1.0 / n)
    words = tokens.words()
    if len(words) == n and all(_is_number(w) for w in words):
        return np.array([float(w) for w in words])
    if len(words) == 1:
        start = np.zeros(n)
        start[_resolve(tokens, words[0], states, "state")] = 1.0
        return start
    raise tokens.fail(f"'start:' needs {n} probabilities, 'uniform' or one state, got {len(words)}")


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def parse(text: str, source: str = "<pomdp>") -> PomdpFile:
    """Parse the text of a ``.POMDP`` file; a ``UserError`` names ``source``, the line and why."""
    tokens = _tokenize(text, source)
    head: dict[str, object] = {}
    # PREAMBLE
    while tokens.peek() is not None and tokens.peek() not in ENTRIES:
        key = tokens.take("a preamble item")
        if key not in PREAMBLE:
            tokens.pos -= 1
            raise tokens.fail(f"unknown item {key!r}; expected one of {', '.join(PREAMBLE)}")
        if key == "start":
            if "states" not in head:
                raise tokens.fail("'start' must come after 'states'")
            head["start"] = _start(tokens, head["states"])  # type: ignore[arg-type]
            continue
        tokens.expect(":")
        if key == "discount":
            head["discount"] = tokens.number("the discount")
        elif key == "values":
            head["values"] = tokens.take("reward or cost")
            if head["values"] not in ("reward", "cost"):
                tokens.pos -= 1
                raise tokens.fail(f"'values:' must be reward or cost, got {head['values']!r}")
        else:
            head[key] = _names(tokens, key)
    for key in ("discount", "states", "actions", "observations"):
        if key not in head:
            raise UserError(f"{source}: no '{key}:' line in the preamble; add one")
    states, actions, obs = head["states"], head["actions"], head["observations"]
    n_s, n_a, n_o = len(states), len(actions), len(obs)  # type: ignore[arg-type]
    trans = np.zeros((n_a, n_s, n_s))
    emit = np.zeros((n_a, n_s, n_o))
    rewards = np.zeros((n_a, n_s, n_s, n_o))
    a_, s_, o_ = (actions, "action"), (states, "state"), (obs, "observation")
    # ENTRIES
    while tokens.peek() is not None:
        kind = tokens.take("T, O or R")
        if kind not in ENTRIES:
            tokens.pos -= 1
            raise tokens.fail(f"expected an entry T:, O: or R:, got {kind!r}")
        tokens.expect(":")
        if kind == "T":
            idx = _indices(tokens, [a_, s_, s_])
            shape = {1: (n_s, n_s), 2: (n_s,), 3: ()}[len(idx)]
            trans[tuple(idx)] = _values(tokens, shape, "transition probabilities")
        elif kind == "O":
            idx = _indices(tokens, [a_, s_, o_])
            shape = {1: (n_s, n_o), 2: (n_o,), 3: ()}[len(idx)]
            emit[tuple(idx)] = _values(tokens, shape, "observation probabilities")
        else:
            idx = _indices(tokens, [a_, s_, s_, o_])
            if len(idx) == 1:
                raise tokens.fail("'R:' needs at least an action and a start state")
            shape = {2: (n_s, n_o), 3: (n_o,), 4: ()}[len(idx)]
            rewards[tuple(idx)] = _values(tokens, shape, "rewards")
    if head.get("values") == "cost":
        rewards = -rewards
    start = head.get("start")
    return PomdpFile(
        discount=float(head["discount"]),  # type: ignore[arg-type]
        states=states,  # type: ignore[arg-type]
        actions=actions,  # type: ignore[arg-type]
        observations=obs,  # type: ignore[arg-type]
        start=np.full(n_s, 1.0 / n_s) if start is None else start,  # type: ignore[arg-type]
        T=trans,
        O=emit,
        R=rewards,
    )


def _values(tokens: _Tokens, shape: tuple[int, ...], what: str) -> np.ndarray | float:
    if not shape:
        return tokens.number(what)
    if len(shape) == 1:
        if tokens.peek() == "uniform":
            tokens.take(what)
            return np.full(shape, 1.0 / shape[0])
        return tokens.numbers(shape[0], what)
    return _matrix(tokens, shape[0], shape[1], what)


def load(path: str | Path) -> PomdpFile:
    """Parse the ``.POMDP`` file at ``path``."""
    path = Path(path)
    return parse(path.read_text(), source=str(path))
