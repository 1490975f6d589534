"""The image build's steps, each alone: the build tool chosen, the build args (the image's labels),
the build command, the build context and the build run in it (a stand-in tool records what it
got; the real podman build is tests/container/test_cpu_image.py, marked slow)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sweepax import container
from sweepax.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
SETUP = "UV_VERSION=0.13.9           # pinned\n"


def stand_in(folder: Path, name: str, body: str) -> Path:
    """An executable shell script ``folder/name`` running ``body``."""
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / name
    exe.write_text("#!/bin/sh\n" + body + "\n")
    exe.chmod(0o755)
    return exe


def head(repo: Path) -> str:
    return subprocess.check_output(["git", "-C", str(repo), "rev-parse", "HEAD"], text=True).strip()


LOCK = "flax==0.12.0\njax==0.10.2\nmujoco-mjx==3.17.0\nwarp-lang==1.18.0\n"


@pytest.fixture
def project(tmp_path) -> Path:
    """A committed checkout holding what the build reads: setup.sh and the two locks."""
    root = tmp_path / "proj"
    (root / "container").mkdir(parents=True)
    (root / "container" / "setup.sh").write_text(SETUP)
    (root / "container" / "requirements-gpu.lock").write_text("jax-cuda12-plugin==0.10.2\n")
    (root / "requirements.lock").write_text(LOCK)
    commit = "git init -q && git add . && git -c user.name=t -c user.email=t@t commit -q -m one"
    subprocess.run(["sh", "-c", commit], cwd=root, check=True)
    return root


# --- the build tool -----------------------------------------------------------------------------
def test_the_first_tool_that_can_build_is_chosen_and_a_silent_docker_daemon_is_named(
    tmp_path, monkeypatch
):
    bin_dir = tmp_path / "bin"
    stand_in(bin_dir, "docker", 'test "$1" = info && exit 1; exit 0')  # a client without daemon
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(UserError) as err:
        container.find_tool(None)
    (line,) = str(err.value).splitlines()
    assert line.startswith("no container build tool here: apptainer: not found")
    assert "module load apptainer" in line and "podman: not found" in line
    assert "docker: found, but its daemon does not answer" in line and "--dry-run" in line
    podman = stand_in(bin_dir, "podman", "exit 0")
    assert container.find_tool(None) == str(podman)  # podman before docker
    singularity = stand_in(bin_dir, "singularity", "exit 0")  # apptainer's older name
    assert container.find_tool(None) == str(singularity)
    assert container.tool_name(str(singularity)) == "apptainer"
    stand_in(bin_dir, "docker", "exit 0")  # its daemon answers
    assert container.find_tool("docker") == str(bin_dir / "docker")


def test_the_cpu_variant_builds_with_podman_else_docker(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert container.oci_tool() == "podman"  # neither: podman's hint is the useful one
    stand_in(tmp_path / "bin", "docker", "exit 0")
    assert container.oci_tool() == "docker"
    stand_in(tmp_path / "bin", "podman", "exit 0")
    assert container.oci_tool() == "podman"


def test_a_missing_tool_is_one_line_and_exit_code_2(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path), "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([sys.executable, "-m", "sweepax.container", "--podman"], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("error: no container build tool here: podman: not found")
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--cpu", "--apptainer"], "--cpu builds the Containerfile (--podman or --docker)"),
        (["--madrona"], "--madrona: the image has no Madrona-MJX build (Madrona-MJX is unmaintai"),
        (["--cpu", "--madrona"], "--madrona: the image has no Madrona-MJX build"),
    ],
)
def test_combinations_no_recipe_builds_are_refused(argv, message, capsys):
    assert container.main([*argv, "--dry-run"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: {message}")


def test_outside_a_checkout_the_build_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(container, "PROJECT_ROOT", tmp_path / "site-packages")
    assert container.main(["--podman", "--dry-run"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line == (f"error: {tmp_path / 'site-packages'}: no Containerfile here; build the "
                    "image from a project checkout")  # fmt: skip


# --- build args ---------------------------------------------------------------------------------
def test_build_args_name_commit_locks_jax_and_date(project):
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    args = container.build_args(project)
    assert args["GIT_COMMIT"] == head(project)
    assert args["GIT_DIRTY"] == "false"
    lock = (project / "requirements.lock").read_bytes()
    gpu = (project / "container" / "requirements-gpu.lock").read_bytes()
    assert args["LOCK_SHA256"] == hashlib.sha256(lock).hexdigest()
    assert args["GPU_LOCK_SHA256"] == hashlib.sha256(gpu).hexdigest()
    assert args["JAX_VERSION"] == "0.10.2"
    assert (args["MJX_VERSION"], args["WARP_VERSION"]) == ("3.17.0", "1.18.0")  # the renderers
    assert not {"MADRONA_MJX_COMMIT", "WITH_MADRONA"} & set(args)  # no Madrona-MJX build
    built = dt.datetime.fromisoformat(args["BUILD_DATE"])
    assert built.utcoffset() == dt.timedelta(0) and before <= built <= dt.datetime.now(dt.UTC)
    assert "VARIANT" not in args  # the recipes' GPU defaults


def test_build_args_of_the_cpu_variant_swap_bases_python_and_drop_the_gpu_lock(project):
    args = container.build_args(project, cpu_base="localhost/base:x")
    assert args["VARIANT"] == "cpu" and args["PYTHON"] == "/usr/bin/python3.11"
    assert args["RUNTIME_BASE"] == "localhost/base:x" and "BUILD_BASE" not in args
    assert args["CUDA_VERSION_LABEL"] == "none" and args["GPU_LOCK_SHA256"] == "none"


def test_uncommitted_or_untracked_files_label_the_image_dirty(project):
    (project / "new.py").write_text("x = 1\n")
    assert container.build_args(project)["GIT_DIRTY"] == "true"
    (project / "new.py").unlink()
    (project / "requirements.lock").write_text(LOCK.replace("flax==0.12.0\n", ""))
    assert container.build_args(project)["GIT_DIRTY"] == "true"


def test_a_lock_without_a_renderer_pin_is_refused_in_one_line(project):
    (project / "requirements.lock").write_text("jax==0.10.2\n")
    with pytest.raises(UserError) as err:
        container.build_args(project)
    assert str(err.value) == (
        f"{project / 'requirements.lock'}: no pin of mujoco-mjx; regenerate the lock with the "
        "command in the README (Environment and pins)"
    )


def test_outside_a_checkout_the_commit_is_unknown(project):
    shutil.rmtree(project / ".git")
    args = container.build_args(project)
    assert (args["GIT_COMMIT"], args["GIT_DIRTY"]) == ("unknown", "false")


# --- the build command --------------------------------------------------------------------------
ARGS = {"GIT_COMMIT": "0123456789abcdef" * 2 + "01234567", "JAX_VERSION": "0.10.2"}


def test_apptainer_builds_the_def_file_into_the_sif(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    build = container.build_command("/opt/bin/apptainer", ARGS, output="out/x.sif")
    assert build.tool == "apptainer" and build.tag is None
    assert build.output == tmp_path / "out" / "x.sif" == Path(build.image)
    fakeroot = [] if os.geteuid() == 0 else ["--fakeroot"]
    flags = ("--build-arg", f"GIT_COMMIT={ARGS['GIT_COMMIT']}", "--build-arg", "JAX_VERSION=0.10.2")
    assert build.argv == ("/opt/bin/apptainer", "build", *fakeroot, *flags, str(build.output),
                          "apptainer.def")  # fmt: skip


def test_podman_builds_the_containerfile_tagged_by_commit(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no runc
    monkeypatch.setenv("SSL_CERT_FILE", "/site/ca.pem")
    build = container.build_command("podman", ARGS)
    assert build.tag == "localhost/sweepax:0123456789ab" == build.image and build.output is None
    assert build.argv[:4] == ("podman", "build", "-f", "Containerfile")
    assert build.argv[-7:] == ("--format", "docker", "--volume",
                               "/site/ca.pem:/etc/ssl/certs/ca-certificates.crt:ro",
                               "-t", "localhost/sweepax:0123456789ab", ".")  # fmt: skip
    stand_in(tmp_path, "runc", "exit 0")
    cpu = container.build_command("podman", {**ARGS, "VARIANT": "cpu"}, tag=None)
    assert cpu.tag == "localhost/sweepax:0123456789ab-cpu"
    assert cpu.argv[-5:-3] == ("--runtime", "runc")


def test_docker_takes_the_given_tag_and_no_podman_options(monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", "/site/ca.pem")
    build = container.build_command("docker", ARGS, tag="me/sweepax:dev")
    assert build.tag == "me/sweepax:dev"
    assert build.argv[-3:] == ("-t", "me/sweepax:dev", ".") and "--volume" not in build.argv
    assert str(build).startswith("docker build -f Containerfile --build-arg GIT_COMMIT=")


# --- build context and build run ----------------------------------------------------------------
def test_the_build_context_holds_the_recipe_inputs_only(tmp_path):
    context = container.copy_context(ROOT, tmp_path)
    assert sorted(p.name for p in context.iterdir()) == sorted(container.CONTAINER_FILES)
    assert (context / "container" / "setup.sh").read_bytes() == (
        ROOT / "container" / "setup.sh"
    ).read_bytes()
    assert (context / "src" / "sweepax" / "container.py").is_file()
    assert not list(context.rglob("__pycache__"))


def test_the_build_runs_in_the_context_which_is_removed_after(tmp_path, monkeypatch):
    record = tmp_path / "record"
    tool = stand_in(tmp_path / "bin", "podman",
                    f'{{ pwd; ls; echo "$@"; }} > "{record}"; exit ${{FAIL:-0}}')  # fmt: skip
    build = container.build_command(str(tool), ARGS, tag="t")
    container.run_build(build, ROOT)
    cwd, *listing, argv = record.read_text().splitlines()
    assert sorted(listing) == sorted(container.CONTAINER_FILES)
    assert argv == " ".join(build.argv[1:]) and not Path(cwd).exists()
    monkeypatch.setenv("FAIL", "3")
    with pytest.raises(UserError, match=r"^podman build exited with 3 \(its output is above\)$"):
        container.run_build(build, ROOT)
    assert not Path(record.read_text().splitlines()[0]).exists()


def test_what_to_do_with_the_image_built(tmp_path):
    sif = container.Build("apptainer", (), output=tmp_path / "x.sif")
    assert container.next_steps(sif, cpu=False).endswith(f"apptainer test --nv {tmp_path}/x.sif")
    oci = container.Build("podman", (), tag="localhost/sweepax:dev")
    assert "podman save --format oci-archive" in container.next_steps(oci, cpu=False)
    assert "-m sweepax.train ppo" in container.next_steps(oci, cpu=True)
