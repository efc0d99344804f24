"""docker/build.sh's decisions, driven by a stand-in `docker` CLI that records what it is asked: which base
it builds on (the official one, or the one made locally when that cannot be pulled) and which CA
certificates reach the build as a secret. The real build runs in CI (`make image image-test`)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

STUB = """#!/bin/sh
echo "$*" >> "$STUB_LOG"
case "$1" in
  buildx) exit 1 ;;
  version) echo 20.10.24 ;;
  info|pull) [ "$1" = info ] ;;
  image) [ "$2" = ls ] && exit 0; case " $STUB_IMAGES " in *" $3 "*) exit 0 ;; *) exit 1 ;; esac ;;
  build)
    [ "$DOCKER_BUILDKIT" = 1 ] || exit 9
    for arg in "$@"; do case "$arg" in id=extra_ca,src=*) cat "${arg#id=extra_ca,src=}" > "$STUB_LOG.ca" ;; esac; done ;;
esac
"""


def build(tmp_path: Path, images: str, **env: str) -> tuple[int, list[str], str | None]:
    """Run docker/build.sh eval against the stub; return its exit code, the docker calls and the CA secret."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "docker").write_text(STUB)
    (bin_dir / "docker").chmod(0o755)
    log = tmp_path / "calls.log"
    log.unlink(missing_ok=True)
    full_env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "STUB_LOG": str(log),
                "STUB_IMAGES": images, **env}
    result = subprocess.run([str(ROOT / "docker" / "build.sh"), "eval"], env=full_env, capture_output=True,
                            text=True, timeout=60)
    calls = log.read_text().splitlines() if log.exists() else []
    ca = Path(f"{log}.ca")
    return result.returncode, calls, ca.read_text() if ca.exists() else None


def test_the_official_base_when_present_and_the_hosts_extra_cas_as_a_secret(tmp_path):
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "proxy.crt").write_text("PROXY-CA\n")
    (certs / "notes.txt").write_text("not a certificate\n")
    code, calls, ca = build(tmp_path, "python:3.11-slim-bookworm", EXTRA_CA=str(certs))
    assert code == 0
    (final,) = [c for c in calls if c.startswith("build ") and "Dockerfile.eval" in c]
    assert "PYTHON_IMAGE=python:3.11-slim-bookworm" in final and "-t hiper-bench:eval" in final
    assert ca == "PROXY-CA\n"


def test_a_base_made_here_when_the_official_one_cannot_be_pulled(tmp_path):
    code, calls, ca = build(tmp_path, "hiper-bench/python:3.11-bookworm", EXTRA_CA="none")
    assert code == 0
    assert any(c.startswith("pull") for c in calls)
    (final,) = [c for c in calls if c.startswith("build ")]  # the local base exists: not rebuilt
    assert "PYTHON_IMAGE=hiper-bench/python:3.11-bookworm" in final
    assert "--secret" not in final and ca is None


def test_a_missing_ca_path_is_refused_before_building(tmp_path):
    code, calls, _ = build(tmp_path, "python:3.11-slim-bookworm", EXTRA_CA="/nonexistent/ca")
    assert code == 2 and not any(c.startswith("build ") for c in calls)


def test_an_unknown_image_is_refused():
    result = subprocess.run([str(ROOT / "docker" / "build.sh"), "gpu"], capture_output=True, text=True)
    assert result.returncode == 2 and "eval or train" in result.stderr
