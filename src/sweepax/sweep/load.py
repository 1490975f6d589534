"""Load a sweep file (a Python module defining ``hparams``) and validate it against its entry."""

from __future__ import annotations

import dataclasses
import difflib
import re
import runpy
import typing as tp
from pathlib import Path

from sweepax import entries, files
from sweepax.envs.names import PIXEL_BODIES
from sweepax.errors import UserError
from sweepax.hparams import Field
from sweepax.sweep import args as task_args
from sweepax.sweep import search
from sweepax.sweep.values import vmap

DEFAULT_ENTRY = f"-m {entries.MODULE} ppo"
TOP_KEYS = ("entry", "args", "exclude", "study_name", "file_name")
# Keys of the original (POBAX) sweep files that sweepax accepts and ignores: it logs every update.
LEGACY_IGNORED = ("steps_log_freq", "update_log_freq", "debug", "show_discounted")
RUN_KEYS = ("study_name", "platform", "save_params", *search.KEYS)
# POBAX's names of sweepax hyperparameters (same meaning): POBAX key -> sweepax key.
POBAX_NAMES = {"window_mem": "memory_window"}
# POBAX's keys asking to keep the trained parameters: sweepax's run key ``save_params``.
POBAX_SAVE = ("save_runner_state", "save_checkpoints")
# Pixel env ids (as the registry matches them): ``<body>-pixels`` or ``<body>-pixels-<N>``.
PIXEL_ID = re.compile("(" + "|".join(PIXEL_BODIES) + r")-pixels(?:-(\d+))?")
# POBAX hyperparameters (pobax/config.py) without a sweepax counterpart yet: refused, never ignored.
POBAX_ONLY = (
    "alpha", "default_max_steps_in_episode", "gating", "ld_exploration_bonus_scale", "num_epochs",
    "qkv_features", "trace_lambdas", "use_trace_features", "window_grad",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Axis:
    """How one key of an ``args`` dict is swept."""

    key: str
    values: tuple  # typed values
    vmapped: bool  # True: inside one program; False: one task per value (job-array axis)


@dataclasses.dataclass(frozen=True)
class Study:
    """A validated sweep file."""

    name: str
    path: Path
    spec_hash: str
    entry: entries.Entry
    arg_sets: tuple[tuple[Axis, ...], ...]  # one tuple of axes per dict in ``args``
    exclude: tuple[dict[str, tuple], ...]  # rows where every listed key matches are dropped
    platform: str | None
    save_params: bool = False  # every task keeps its final parameters in its store
    searches: tuple[search.Search, ...] = ()  # per ``args`` dict: random sample, bins (none: grid)

    def search(self, i: int) -> search.Search:
        """How the vmapped grid of ``args[i]`` becomes configs."""
        return self.searches[i] if i < len(self.searches) else search.Search()


def _coerce(value: tp.Any, field: Field, where: str) -> tp.Any:
    """``value`` as the field's type, or a UserError naming the key and the expected type."""
    t = field.type
    ok = (
        (t is bool and isinstance(value, bool))
        or (t is int and isinstance(value, int) and not isinstance(value, bool))
        or (t is float and isinstance(value, int | float) and not isinstance(value, bool))
        or (t is str and isinstance(value, str))
    )
    if not ok:
        raise UserError(
            f"{where}: key {field.name!r}: expected {t.__name__}, got {type(value).__name__} "
            f"{value!r}; fix the value (help: {field.help})"
        )
    return float(value) if t is float else value


def _parse_token(token: str, field: Field, where: str) -> tp.Any:
    try:
        if field.type is bool:
            raise ValueError
        return field.type(token)
    except ValueError:
        raise UserError(
            f"{where}: key {field.name!r}: {token!r} in a space-joined string is not a "
            f"{field.type.__name__}; fix the value"
        ) from None


def _not_vmappable(field: Field, where: str, values: tp.Sequence) -> UserError:
    listed = ", ".join(map(repr, values))
    return UserError(
        f"{where}: key {field.name!r} is static (it changes shapes or control flow) and cannot "
        f"be vmapped; write it as a Python list [{listed}] to run separate programs"
    )


def _axis(key: str, value: tp.Any, field: Field, where: str) -> Axis:
    if isinstance(value, vmap) or (isinstance(value, str) and field.type is not str):
        if isinstance(value, str):
            raw = value.split()
            if not raw:
                raise UserError(f"{where}: key {key!r}: empty string; give at least one value")
            values = tuple(_parse_token(tok, field, where) for tok in raw)
        else:
            values = tuple(_coerce(v, field, where) for v in value)
        if not field.vmappable:
            if len(values) > 1:
                raise _not_vmappable(field, where, values)
            return Axis(key, values, vmapped=False)
        return Axis(key, values, vmapped=True)
    if isinstance(value, str) and len(value.split()) > 1:
        raise _not_vmappable(field, where, value.split())
    if isinstance(value, list | tuple):
        if not value:
            raise UserError(f"{where}: key {key!r}: empty list; give at least one value")
        return Axis(key, tuple(_coerce(v, field, where) for v in value), vmapped=False)
    return Axis(key, (_coerce(value, field, where),), vmapped=False)


def _unknown_key(key: str, entry: entries.Entry, where: str) -> UserError:
    close = difflib.get_close_matches(key, list(entry.fields) + list(RUN_KEYS), n=1)
    hint = f"did you mean {close[0]!r}?" if close else "remove it"
    return UserError(
        f"{where}: unknown key {key!r} for entry {entry.name!r}; {hint} "
        f"(`python -m sweepax.train {entry.name} --help` lists the hyperparameters)"
    )


def _pobax_key(key: str, where: str) -> str:
    """The sweepax name of a POBAX file's key; a UserError for a POBAX key sweepax lacks."""
    if key in POBAX_ONLY:
        raise UserError(
            f"{where}: key {key!r}: POBAX has it but sweepax cannot honour it yet; remove it "
            "(the results would differ from POBAX's)"
        )
    return POBAX_NAMES.get(key, key)


def _pobax_alpha(value: tp.Any, where: str) -> None:
    """POBAX's ``alpha`` (advantage = alpha * lambda0's + (1 - alpha) * lambda1's): sweepax's
    policy always uses lambda0's advantage, which is alpha 1; any other value is refused."""
    values = value.split() if isinstance(value, str) else value
    values = values if isinstance(values, list | tuple) else [values]
    try:
        ok = bool(values) and all(float(v) == 1.0 for v in values)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise UserError(
            f"{where}: key 'alpha': {value!r}: POBAX has it but sweepax cannot honour it yet "
            "(its policy uses lambda0's advantage, alpha 1); remove it or use 1"
        )


def _pobax_normalize_env(value: tp.Any, where: str) -> None:
    """POBAX's ``normalize_env`` (running observation and reward normalisation of the vectorised
    env): False, its default, is accepted; True is refused, sweepax has no reward normalisation."""
    if value is not False:
        raise UserError(
            f"{where}: key 'normalize_env': {value!r}: POBAX normalises observations and rewards; "
            "sweepax has no reward normalisation yet; remove it (or use 'normalize_obs': True for "
            "observations alone: the results would differ from POBAX's)"
        )


def _flag(value: tp.Any, key: str, where: str) -> bool:
    """A run key's True / False (one value for the whole study)."""
    if not isinstance(value, bool):
        raise UserError(f"{where}: key {key!r}: {value!r}; use True or False (one value)")
    return value


def _pobax_image_size(axes: list[Axis], value: tp.Any, where: str) -> None:
    """POBAX's ``image_size`` (the side of a pixel env's square image) written into the env ids:
    ``hopper-pixels`` -> ``hopper-pixels-<image_size>``. Other envs have no image and ignore it,
    as in POBAX; a pixel id that names another size is refused."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(
            f"{where}: key 'image_size': {value!r}; give one size in pixels (for several sizes, "
            "list the env ids '<body>-pixels-<N>')"
        )
    for n, axis in enumerate(axes):
        if axis.key != "env":
            continue
        envs = []
        for env in axis.values:
            match = PIXEL_ID.fullmatch(env)
            if match is not None and match.group(2) not in (None, str(value)):
                raise UserError(
                    f"{where}: key 'image_size': {value} differs from the size of env {env!r}; "
                    f"give env '{match.group(1)}-pixels' or remove image_size"
                )
            envs.append(f"{match.group(1)}-pixels-{value}" if match is not None else env)
        axes[n] = dataclasses.replace(axis, values=tuple(envs))


def _check_env(axes: tp.Sequence[Axis], where: str) -> None:
    from sweepax.envs import registry

    for axis in axes:
        if axis.key == "env":
            for env in axis.values:
                try:
                    registry.check(env)
                except UserError as err:
                    raise UserError(f"{where}: key 'env': {err}") from None


def _exclude(raw: tp.Any, entry: entries.Entry, where: str) -> tuple[dict[str, tuple], ...]:
    rules = [raw] if isinstance(raw, dict) else raw
    if not isinstance(rules, list | tuple) or not all(isinstance(r, dict) for r in rules):
        raise UserError(
            f"{where}: key 'exclude': expected a dict (or a list of dicts) of key: value"
        )
    out = []
    for rule in rules:
        if not rule:
            raise UserError(
                f"{where}: key 'exclude': an empty rule would drop every row; remove it"
            )
        parsed = {}
        for key, value in rule.items():
            if key not in entry.fields:
                raise _unknown_key(key, entry, f"{where}: exclude")
            values = value if isinstance(value, list | tuple) else [value]
            parsed[key] = tuple(_coerce(v, entry.fields[key], f"{where}: exclude") for v in values)
        out.append(parsed)
    return tuple(out)


def load(path: str | Path) -> Study:
    """Run a sweep file and validate every key, type and vmap request; raise ``UserError``."""
    path = Path(path)
    where = str(path)
    if path.suffix != ".py" or not path.is_file():
        raise UserError(f"{where}: not a sweep file; give a .py file that defines `hparams`")
    source = path.read_bytes()
    try:
        compile(source, where, "exec")
    except SyntaxError as err:
        raise UserError(f"{where}:{err.lineno}: syntax error: {err.msg}; fix the file") from None
    try:
        namespace = runpy.run_path(str(path), run_name=f"sweepax_sweep_{path.stem}")
    except SystemExit as err:  # sys.exit() in the file would end the caller with nothing planned
        raise UserError(
            f"{where}: the file called sys.exit({err.code!r}) while loading; a sweep file only "
            "defines `hparams`: remove the exit"
        ) from None
    except Exception as err:  # the file's own code failed: report it as the file's error
        raise UserError(f"{where}: running the file raised {type(err).__name__}: {err}") from None
    hparams = namespace.get("hparams")
    if not isinstance(hparams, dict):
        raise UserError(
            f"{where}: defines no `hparams` dict; add `hparams = {{'entry': '{DEFAULT_ENTRY}', "
            f"'args': [{{...}}]}}`"
        )
    for key in hparams:
        if key not in TOP_KEYS:
            raise UserError(
                f"{where}: unknown top-level key {key!r}; allowed: {', '.join(TOP_KEYS)}"
            )
    entry = entries.parse_entry(hparams.get("entry", DEFAULT_ENTRY), where)
    pobax = entry.written.startswith("-m pobax.")
    arg_dicts = hparams.get("args")
    if isinstance(arg_dicts, dict):
        arg_dicts = [arg_dicts]
    if not isinstance(arg_dicts, list | tuple) or not arg_dicts:
        raise UserError(
            f"{where}: key 'args': expected a non-empty list of dicts of hyperparameters"
        )

    study_names, platforms, saves, arg_sets, searches = set(), set(), set(), [], []
    for i, args in enumerate(arg_dicts):
        where_i = f"{where}: args[{i}]"
        if not isinstance(args, dict):
            raise UserError(
                f"{where_i}: expected a dict of hyperparameters, got {type(args).__name__}"
            )
        axes: list[Axis] = []
        save: bool | None = None  # either of POBAX's two keys asks: keep the parameters
        searches.append(search.parse(args, where_i))
        for key, value in args.items():
            if key in LEGACY_IGNORED or key in search.KEYS:
                continue
            if key == "study_name":
                if problem := task_args.study_problem(value):
                    raise UserError(f"{where_i}: key 'study_name': {problem}; fix 'study_name'")
                study_names.add(value)
                continue
            if key == "platform":
                if value not in ("cpu", "gpu"):
                    raise UserError(f"{where_i}: key 'platform': {value!r}; use 'cpu' or 'gpu'")
                platforms.add(value)
                continue
            if key == "save_params" or (pobax and key in POBAX_SAVE):
                save = bool(save) | _flag(value, key, where_i)
                continue
            if pobax:
                if key == "alpha":
                    _pobax_alpha(value, where_i)
                    continue
                if key == "normalize_env":
                    _pobax_normalize_env(value, where_i)
                    continue
                if key == "image_size":
                    continue  # applied to the env ids below
                key = _pobax_key(key, where_i)
            if key not in entry.fields:
                raise _unknown_key(key, entry, where_i)
            axes.append(_axis(key, value, entry.fields[key], where_i))
        if pobax and "image_size" in args:
            _pobax_image_size(axes, args["image_size"], where_i)
        if save is not None:
            saves.add(save)
        _check_env(axes, where_i)
        arg_sets.append(tuple(axes))
    if len(platforms) > 1:
        raise UserError(f"{where}: key 'platform': differs between args dicts; use one platform")
    if len(saves) > 1:
        raise UserError(
            f"{where}: key 'save_params': differs between args dicts (or from POBAX's "
            "save_runner_state / save_checkpoints); use one value for the study"
        )

    name = hparams.get("study_name") or (study_names.pop() if len(study_names) == 1 else path.stem)
    if len(study_names) > 1:
        raise UserError(f"{where}: key 'study_name': differs between args dicts; use one name")
    if problem := task_args.study_problem(name):
        fix = "set 'study_name'" if name == path.stem else "fix 'study_name'"
        raise UserError(f"{where}: key 'study_name': {problem}; {fix}")
    return Study(
        name=name,
        path=path,
        spec_hash=files.sha256_file(path),
        entry=entry,
        arg_sets=tuple(arg_sets),
        exclude=_exclude(hparams.get("exclude", []), entry, where),
        platform=platforms.pop() if platforms else None,
        save_params=saves.pop() if saves else False,
        searches=tuple(searches),
    )


def find_sweep_files(targets: tp.Sequence[str | Path]) -> list[Path]:
    """Sweep files named by ``targets``: files, or folders searched recursively (sorted)."""
    files: list[Path] = []
    for target in targets:
        path = Path(target)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*.py") if not p.name.startswith(("_", ".")))
            if not found:
                raise UserError(f"{path}: folder holds no sweep files (*.py); give a study file")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise UserError(
                f"{path}: no such file or folder; give a sweep file or a folder of them"
            )
    return list(dict.fromkeys(files))
