#!/bin/sh
# The images' build step: the README's install path (scripts/install.sh EXTRAS, pins from
# constraints.txt), then what an image does not need is dropped: the test suites inside the installed
# packages. A proxy's CA certificates, given as the BuildKit secret `extra_ca` (docker/build.sh does),
# are trusted for the downloads and kept in no layer.
# usage (in a Dockerfile, from the source folder): docker/install-in-image.sh EXTRAS
set -eu
if [ -s /run/secrets/extra_ca ]; then
    cat /etc/ssl/certs/ca-certificates.crt /run/secrets/extra_ca > /tmp/ca.pem
    export PIP_CERT=/tmp/ca.pem
fi
scripts/install.sh "$1"
rm -f /tmp/ca.pem
site=$(echo .venv/lib/python3*/site-packages)
find "$site" -depth -type d \( -name tests -o -name test \) -path "$site/*/*" -exec rm -rf {} +
.venv/bin/python -m compileall -q hiper_envs agents harness leaderboards
