#!/usr/bin/env bash
# `make image-test`: inside the eval image, run the README's main job (sweep + leaderboard), `verify`
# and one WebShop-Browser episode, each writing to a folder mounted from here, then check that folder
# from the host. Exits non-zero on the first failure.
# env: TAG (default hiper-bench:eval), DOCKER (default docker).
set -euo pipefail
cd "$(dirname "$0")/.."
tag="${TAG:-hiper-bench:eval}"
docker="${DOCKER:-docker}"
out=$(mktemp -d)
chmod 777 "$out"  # the container's user (uid 1000) writes here
# What the container wrote belongs to its uid: remove it from inside, then the folder.
trap '"$docker" run --rm -v "$out:/results/runs" --entrypoint sh "$tag" -c "rm -rf /results/runs/*" >/dev/null 2>&1;
      rm -rf "$out"' EXIT

fail() { echo "image-test FAILED: $*" >&2; exit 1; }
in_image() { "$docker" run --rm -v "$out:/results/runs" "$@"; }

uid=$("$docker" run --rm --entrypoint id "$tag" -u)
[ "$uid" != 0 ] || fail "the image runs as root"
echo "user inside: uid $uid"

start=$SECONDS
in_image "$tag" sweep /opt/hiper-bench/harness/configs/sweeps/quick.yaml --no-progress \
  || fail "the main job's sweep"
in_image "$tag" leaderboard --out runs/leaderboard || fail "the main job's leaderboard"
echo "main job: $((SECONDS - start)) s"

start=$SECONDS
in_image "$tag" verify --no-progress | tee "$out/verify.txt" || fail "verify"
echo "verify: $((SECONDS - start)) s"

start=$SECONDS
in_image --shm-size=1g "$tag" run --env HiPER/WebShop-Browser-v0 --agent expert --episodes 1 \
  --db runs/browser.sqlite --no-progress || fail "the WebShop-Browser episode"
echo "browser episode: $((SECONDS - start)) s"

# The host reads what the image wrote.
python3 - "$out" <<'EOF' || fail "the outputs on the mounted folder"
import sqlite3, sys
from pathlib import Path

out = Path(sys.argv[1])
rows = sqlite3.connect(out / "results.sqlite").execute(
    "SELECT env_id, agent, status, success FROM episodes").fetchall()
assert len(rows) == 200, f"the quick sweep stored {len(rows)} episodes, not 200"
errors = [r for r in rows if r[2] != "ok"]
assert not errors, f"{len(errors)} episodes ended in an error"
for env in ("HiPER/ALFWorld-v0", "HiPER/WebShop-v0"):
    expert = [r[3] for r in rows if r[0] == env and r[1] == "expert"]
    assert len(expert) == 50 and sum(expert) == 50, f"expert on {env}: {sum(expert)}/{len(expert)} successes"
for page in ("leaderboard/index.html", "leaderboard/report/report.html"):
    assert (out / page).stat().st_size > 1000, f"{page} is missing or empty"
assert "200 episodes checked, 0 mismatched" in (out / "verify.txt").read_text(), "verify did not check 200/200"
(browser,) = sqlite3.connect(out / "browser.sqlite").execute(
    "SELECT status, success, steps FROM episodes").fetchall()
assert browser[0] == "ok" and browser[1] == 1 and browser[2] > 1, f"browser episode: {browser}"
print(f"outputs checked: 200 episodes, the expert won 50/50 on each env, leaderboard and report written, "
      f"verify 200/200, browser episode won in {browser[2]} steps")
EOF
echo "image-test passed: $tag"
