#!/usr/bin/env bash
# Build an image from nothing but the package registries: `make image` (eval) and `make image-train`.
# usage: docker/build.sh eval|train
# env:
#   PYTHON_IMAGE  the base (default python:3.11-slim-bookworm). When it is neither here nor pullable,
#                 a Debian bookworm base is made locally with debootstrap (root and debootstrap needed)
#                 and used instead: hiper-bench/python:3.11-bookworm.
#   EXTRA_CA      a folder or PEM file of extra CA certificates for the build's HTTPS (a TLS-inspecting
#                 proxy's). Default: /usr/local/share/ca-certificates when it holds *.crt files; `none`
#                 turns it off. They reach the build as a BuildKit secret: no layer keeps them.
#   TAG           the image's name (default hiper-bench:eval or hiper-bench:train).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:?usage: docker/build.sh eval|train}"
case "$target" in eval|train) ;; *) echo "unknown image '$target': eval or train" >&2; exit 2 ;; esac
tag="${TAG:-hiper-bench:$target}"
python_image="${PYTHON_IMAGE:-python:3.11-slim-bookworm}"
local_python=hiper-bench/python:3.11-bookworm
local_debian=hiper-bench/debian:bookworm
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# BuildKit (for the CA secret) comes from `docker buildx`, or from the engine itself in clients before
# 23.0 with DOCKER_BUILDKIT=1; a newer client without buildx would fall back to the legacy builder.
cli="" build=()
for candidate in docker /usr/bin/docker; do
  command -v "$candidate" >/dev/null || continue
  if "$candidate" buildx version >/dev/null 2>&1; then
    cli=$candidate build=("$candidate" buildx build --load); break
  fi
  major=$("$candidate" version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1 || true)
  if [[ "$major" =~ ^[0-9]+$ ]] && (( major < 23 )); then
    cli=$candidate build=(env DOCKER_BUILDKIT=1 "$candidate" build); break
  fi
done
if [ -z "$cli" ]; then
  echo "no docker CLI here builds with BuildKit: install docker-buildx, or Debian's docker.io" >&2; exit 2
fi
"$cli" info >/dev/null 2>&1 || { echo "the Docker engine is not running (start dockerd)" >&2; exit 2; }

if ! "$cli" image inspect "$python_image" >/dev/null 2>&1 \
   && ! timeout 120 "$cli" pull -q "$python_image" >/dev/null 2>&1; then
  echo "$python_image cannot be pulled: using a base made here ($local_python)" >&2
  if ! "$cli" image inspect "$local_python" >/dev/null 2>&1; then
    if ! "$cli" image inspect "$local_debian" >/dev/null 2>&1; then
      command -v debootstrap >/dev/null || { echo "debootstrap is needed: apt-get install debootstrap" >&2; exit 2; }
      debootstrap --variant=minbase bookworm "$scratch/rootfs" http://deb.debian.org/debian >/dev/null
      tar -C "$scratch/rootfs" -c . | "$cli" import - "$local_debian" >/dev/null
      rm -rf "$scratch/rootfs"
    fi
    "${build[@]}" -q -f docker/Dockerfile.base -t "$local_python" docker >/dev/null
  fi
  python_image="$local_python"
fi

ca="${EXTRA_CA:-/usr/local/share/ca-certificates}"
secret=()
if [ "$ca" != none ]; then
  bundle="$scratch/extra-ca.pem"
  : >"$bundle"
  if [ -d "$ca" ]; then
    find "$ca" -name '*.crt' -type f -exec cat {} + >"$bundle" 2>/dev/null || true
  elif [ -f "$ca" ]; then
    cat "$ca" >"$bundle"
  elif [ -n "${EXTRA_CA:-}" ]; then
    echo "EXTRA_CA=$ca is neither a folder nor a file" >&2; exit 2
  fi
  [ -s "$bundle" ] && secret=(--secret "id=extra_ca,src=$bundle")
fi

start=$SECONDS
dockerfile="Dockerfile.$target"
"${build[@]}" -f "docker/$dockerfile" --build-arg "PYTHON_IMAGE=$python_image" "${secret[@]}" -t "$tag" .
echo "built $tag on $python_image in $((SECONDS - start)) s"
"$cli" image ls "$tag" --format '{{.Repository}}:{{.Tag}} {{.Size}}'
