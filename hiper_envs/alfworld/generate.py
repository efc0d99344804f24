"""Generate ALFWorld-format synthetic tasks from the 120 real ALFRED floorplans in the alfworld wheel.

    python -m hiper_envs.alfworld.generate --out hiper_envs/alfworld/data --train 1000 --seed 0

Receptacles and their interaction poses come from the floorplans (`-openable.json`), the object
types present from `-objects.json`, free floor points from `-layout.npy`; receptacle types the
layouts lack (stove burners, coffee machines, toasters, some garbage cans and sink basins) are
synthesised on free floor points, and object placements are sampled. Each task is a PDDL problem
in the original format with the goal from alfworld's goal library and a task text from its
templates; its walkthrough is the expert planner's, played in the reference engine until won, so
every task is verified. Seeded: the same arguments give byte-identical files.

These are "ALFWorld-format synthetic tasks", not the ALFWorld benchmark: ids start with `synth:`.
"""

from __future__ import annotations

import argparse
import json
import lzma
import random
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from hiper_envs.alfworld.dataset import SYNTHETIC_PREFIX, make_game
from hiper_envs.alfworld.world import STATE_CHANGES, TASK_TYPES, TaskSpec

# Task counts of the real ALFWorld splits, per task type (ALFWorld's json_2.1.1).
REAL_COUNTS = {
    "train": {"pick_and_place_simple": 790, "look_at_obj_in_light": 308, "pick_clean_then_place_in_recep": 650,
              "pick_heat_then_place_in_recep": 459, "pick_cool_then_place_in_recep": 533,
              "pick_two_obj_and_place": 813},
    "valid_seen": {"pick_and_place_simple": 35, "look_at_obj_in_light": 13, "pick_clean_then_place_in_recep": 27,
                   "pick_heat_then_place_in_recep": 16, "pick_cool_then_place_in_recep": 25,
                   "pick_two_obj_and_place": 24},
    "valid_unseen": {"pick_and_place_simple": 24, "look_at_obj_in_light": 18, "pick_clean_then_place_in_recep": 31,
                     "pick_heat_then_place_in_recep": 23, "pick_cool_then_place_in_recep": 21,
                     "pick_two_obj_and_place": 17},
}
# ALFRED's unseen validation scenes: no train or valid_seen task uses them.
UNSEEN_FLOORPLANS = (10, 219, 308, 424)
ROOM_OF = {"Kitchen": range(1, 31), "LivingRoom": range(201, 231), "Bedroom": range(301, 331),
           "Bathroom": range(401, 431)}
LAMP_STANDS = ("Desk", "SideTable", "Dresser", "Shelf", "CoffeeTable", "TVStand", "Cabinet")
STEP = 0.25  # ALFRED's grid step (metres)
MAX_PLAN_STEPS = 40


@dataclass
class Floorplan:
    number: int
    room: str
    receptacles: dict[str, str]  # THOR id -> location id "loc|x|z|rot|horizon"
    object_types: set[str]
    floor: list[tuple[float, float]]


def _constants():
    import alfworld.gen.constants as constants
    import alfworld.gen.goal_library as goal_library

    return constants, goal_library


def layouts_dir() -> Path:
    import alfworld.gen

    return Path(alfworld.gen.__path__[0]) / "layouts"


def receptacle_class(thor_id: str) -> str:
    """'Sink|-01.9|+01.1|-00.9|SinkBasin' -> 'SinkBasin'; 'Cabinet|+00.6|...' -> 'Cabinet'."""
    parts = thor_id.split("|")
    return parts[-1] if parts[-1].isalpha() else parts[0]


def thor_id(cls: str, xyz: tuple[float, float, float]) -> str:
    return cls + "|" + "|".join(f"{v:+06.2f}" for v in xyz)


def location_id(x: float, z: float, rotation: int, horizon: int) -> str:
    return f"loc|{round(x / STEP)}|{round(z / STEP)}|{rotation // 90 % 4}|{horizon}"


def load_floorplan(number: int, rng: random.Random) -> Floorplan:
    import numpy as np

    constants, _ = _constants()
    base = layouts_dir() / f"FloorPlan{number}"
    poses = json.loads(Path(f"{base}-openable.json").read_text())
    object_types = set(json.loads(Path(f"{base}-objects.json").read_text()))
    floor = [(float(x), float(z)) for x, z in np.load(f"{base}-layout.npy")[:, :2]]
    room = next(name for name, numbers in ROOM_OF.items() if number in numbers)
    receptacles: dict[str, str] = {}
    for rid, (x, z, rot, horizon) in sorted(poses.items()):
        receptacles[rid] = location_id(x, z, int(rot), int(horizon))
    static = set(constants.RECEPTACLES) - set(constants.MOVABLE_RECEPTACLES)
    present = {receptacle_class(r) for r in receptacles}
    for cls in sorted((object_types & static) - present):
        for _ in range(4 if cls == "StoveBurner" else 1):
            x, z = rng.choice(floor)
            xyz = (x + rng.uniform(-0.5, 0.5), rng.uniform(0.2, 1.0), z + rng.uniform(-0.5, 0.5))
            receptacles[thor_id(cls, xyz)] = location_id(x, z, 90 * rng.randrange(4), 30)
    return Floorplan(number, room, _distinct_locations(receptacles), object_types, floor)


def _distinct_locations(receptacles: dict[str, str]) -> dict[str, str]:
    """Give receptacles that share an interaction pose distinct locations (tilt the view), so
    `go to X` names exactly one receptacle, as in ALFWorld's games."""
    seen: set[str] = set()
    out = {}
    for rid, loc in receptacles.items():
        head, horizon = loc.rsplit("|", 1)
        h = int(horizon)
        while f"{head}|{h}" in seen:
            h += 15
        seen.add(f"{head}|{h}")
        out[rid] = f"{head}|{h}"
    return out


@dataclass(frozen=True)
class TaskDraft:
    spec: TaskSpec
    floorplan: int
    seed: int


def pickable_types(fp: Floorplan) -> list[str]:
    constants, _ = _constants()
    static = set(constants.RECEPTACLES) - set(constants.MOVABLE_RECEPTACLES)
    placeable = set().union(*constants.VAL_RECEPTACLE_OBJECTS.values())
    return sorted((fp.object_types & placeable & set(constants.OBJECTS)) - static)


def candidate_specs(fp: Floorplan, task_type: str) -> list[TaskSpec]:
    """Every (object, receptacle[, lamp]) a task of this type can ask for in this floorplan."""
    constants, _ = _constants()
    if fp.room not in constants.GOALS_VALID[task_type]:
        return []
    accepts = constants.VAL_RECEPTACLE_OBJECTS
    rec_types = sorted({receptacle_class(r) for r in fp.receptacles})
    objects = pickable_types(fp)
    if task_type == "look_at_obj_in_light":
        lamps = sorted({"DeskLamp", "FloorLamp"} & fp.object_types)
        stands = [r for r in rec_types if r in LAMP_STANDS]
        if not stands:
            return []
        holdable = [o for o in objects if o not in constants.MOVABLE_RECEPTACLES]
        return [TaskSpec(task_type, o, "", lamp) for lamp in lamps for o in holdable]
    change = STATE_CHANGES.get(task_type)
    if change:
        ability = {"cleanable": "Cleanable", "heatable": "Heatable", "coolable": "Coolable"}[change[1]]
        appliance = {"sinkbasin": "SinkBasin", "microwave": "Microwave", "fridge": "Fridge"}[change[2]]
        if appliance not in rec_types:
            return []
        objects = [o for o in objects if o in constants.VAL_ACTION_OBJECTS[ability]]
        rec_types = [r for r in rec_types if r != appliance]
    # The object must start somewhere other than a receptacle of the target type.
    return [
        TaskSpec(task_type, o, r)
        for o in objects
        for r in rec_types
        if o in accepts.get(r, ()) and r not in constants.MOVABLE_RECEPTACLES
        and any(o in accepts.get(home, ()) for home in rec_types if home != r)
    ]


def build_problem(draft: TaskDraft, fp: Floorplan, rng: random.Random) -> tuple[str, str]:
    """(PDDL problem text, task text) for one task in one floorplan."""
    constants, goal_library = _constants()
    spec = draft.spec
    accepts = constants.VAL_RECEPTACLE_OBJECTS
    by_class: dict[str, list[str]] = {}
    for rid in fp.receptacles:
        by_class.setdefault(receptacle_class(rid), []).append(rid)
    objects: dict[str, tuple[str, str]] = {}  # THOR id -> (class, parent receptacle id)

    def place(cls: str, parent: str | None = None) -> None:
        if parent is None:
            homes = [r for r in fp.receptacles if cls in accepts.get(receptacle_class(r), ())]
            if not homes:
                return
            parent = rng.choice(sorted(homes))
        loc = fp.receptacles[parent].split("|")
        xyz = (int(loc[1]) * STEP + rng.uniform(-0.4, 0.4), rng.uniform(0.5, 1.5),
               int(loc[2]) * STEP + rng.uniform(-0.4, 0.4))
        objects[thor_id(cls, xyz)] = (cls, parent)

    n_targets = rng.randint(2, 3) if spec.task_type == "pick_two_obj_and_place" else rng.randint(1, 3)
    target_homes = [r for r in fp.receptacles if spec.object_target in accepts.get(receptacle_class(r), ())
                    and receptacle_class(r) != spec.parent_target]
    for _ in range(n_targets):
        place(spec.object_target, rng.choice(sorted(target_homes)))
    if spec.toggle_target:
        stands = sorted(r for r in fp.receptacles if receptacle_class(r) in LAMP_STANDS)
        place(spec.toggle_target, rng.choice(stands))
    pool = [o for o in pickable_types(fp) if o != spec.object_target]
    for _ in range(rng.randint(8, 16)):
        place(rng.choice(pool))

    free = sorted(set(fp.floor))
    taken = {loc for loc in fp.receptacles.values()}
    while True:
        x, z = rng.choice(free)
        agent_loc = location_id(x, z, 90 * rng.randrange(4), 30)
        if agent_loc not in taken:
            break
    task_text = rng.choice(goal_library.gdict[spec.task_type]["templates"]).format(
        obj=spec.obj, recep=spec.recep, toggle=spec.toggle, mrecep="")
    goal = goal_library.gdict[spec.task_type]["pddl"].format(
        obj=spec.object_target, recep=spec.parent_target, toggle=spec.toggle_target, mrecep="")
    return _problem_text(f"synth_{draft.floorplan}_{draft.seed}", fp, objects, agent_loc, goal), task_text


def mangle(name: str) -> str:
    """THOR id to PDDL name, as ALFWorld's problem writer spells it."""
    for old, new in (("-", "_minus_"), ("|", "_bar_"), ("+", "_plus_"), (".", "_dot_"), (",", "_comma_")):
        name = name.replace(old, new)
    return name


def _problem_text(name: str, fp: Floorplan, objects: dict[str, tuple[str, str]], agent_loc: str,
                  goal: str) -> str:
    constants, _ = _constants()
    actions = constants.VAL_ACTION_OBJECTS
    static = sorted(set(constants.RECEPTACLES) - set(constants.MOVABLE_RECEPTACLES))
    classes = sorted(set(constants.OBJECTS) | set(constants.MOVABLE_RECEPTACLES))
    object_classes = [c for c in classes if c not in static]
    present = {cls for cls, _ in objects.values()} | fp.object_types
    locations = sorted(set(fp.receptacles.values()) | {agent_loc})
    rtypes = {rid: receptacle_class(rid) for rid in fp.receptacles}

    declared = (["agent1 - agent"] + [f"{c} - object" for c in object_classes]
                + [f"{c}Type - otype" for c in object_classes] + [f"{c}Type - rtype" for c in static]
                + [f"{mangle(o)} - object" for o in sorted(objects)]
                + [f"{mangle(r)} - receptacle" for r in sorted(fp.receptacles)]
                + [f"{mangle(loc)} - location" for loc in locations])
    lamps = {"DeskLamp", "FloorLamp"}
    init = ([f"(receptacleType {mangle(r)} {t}Type)" for r, t in rtypes.items()]
            + [f"(objectType {mangle(o)} {c}Type)" for o, (c, _) in objects.items()]
            + [f"(canContain {t}Type {c}Type)" for t in sorted(set(rtypes.values()))
               for c in sorted(constants.VAL_RECEPTACLE_OBJECTS.get(t, ())) if c in present]
            + [f"(pickupable {mangle(o)})" for o, (c, _) in objects.items() if c not in lamps]
            + [f"(isReceptacleObject {mangle(o)})" for o, (c, _) in objects.items()
               if c in constants.MOVABLE_RECEPTACLES]
            + [f"(openable {mangle(r)})" for r, t in rtypes.items() if t in constants.OPENABLE_CLASS_SET]
            + [f"(atLocation agent1 {mangle(agent_loc)})"]
            + [f"({prop.lower()} {mangle(o)})" for prop in
               ("Cleanable", "Heatable", "Coolable", "Toggleable", "Sliceable")
               for o, (c, _) in objects.items() if c in actions[prop]]
            + [f"(inReceptacle {mangle(o)} {mangle(p)})" for o, (_, p) in objects.items()]
            + sorted(f"(receptacleAtLocation {mangle(r)} {mangle(loc)})" for r, loc in fp.receptacles.items())
            + [f"(objectAtLocation {mangle(o)} {mangle(fp.receptacles[p])})" for o, (_, p) in objects.items()])
    indent = "\n        "
    return (f"\n(define (problem plan_{name})\n(:domain alfred)\n(:objects{indent}"
            + indent.join(declared) + "\n        )\n    \n(:init" + indent + indent.join(init)
            + "\n        )\n    " + goal.replace("#", "-"))


def play_to_win(game: dict, spec: TaskSpec) -> list[str] | None:
    """Play the expert planner in the reference engine; the walkthrough if it wins."""
    from hiper_envs.alfworld.engine import make_engine
    from hiper_envs.alfworld.expert import plan_next_action

    engine = make_engine("textworld", game)
    state = engine.reset()
    walkthrough: list[str] = []
    while not state.won and len(walkthrough) < MAX_PLAN_STEPS:
        command = plan_next_action(state, spec)
        if command is None:
            return None
        walkthrough.append(command)
        state = engine.step(command)
    return walkthrough if state.won else None


def drafts(split: str, counts: dict[str, int], seed: int) -> Iterator[TaskDraft]:
    """Task drafts in a fixed order: per type, cycling over the split's floorplans."""
    constants, _ = _constants()
    if split == "valid_unseen":
        floorplans = list(UNSEEN_FLOORPLANS)
    else:
        floorplans = [n for n in constants.TRAIN_SCENE_NUMBERS if n not in UNSEEN_FLOORPLANS]
    rng = random.Random(f"{seed}:{split}")
    for type_index, task_type in enumerate(TASK_TYPES):
        usable = []
        for number in floorplans:
            fp = load_floorplan(number, random.Random(f"{seed}:{number}"))
            specs = candidate_specs(fp, task_type)
            if specs:
                usable.append((number, specs))
        for i in range(counts.get(task_type, 0)):
            number, specs = usable[i % len(usable)] if split != "valid_unseen" else rng.choice(usable)
            yield TaskDraft(rng.choice(specs), number, seed * 1_000_000 + type_index * 100_000 + i)


def make_task(draft: TaskDraft, split: str) -> dict | None:
    """One verified task record (what the bundled files store), or None if it cannot be won."""
    rng = random.Random(draft.seed)
    fp = load_floorplan(draft.floorplan, random.Random(f"{draft.seed // 1_000_000}:{draft.floorplan}"))
    problem, text = build_problem(draft, fp, rng)
    walkthrough = play_to_win(make_game(problem, text, []), draft.spec)
    if walkthrough is None:
        return None
    spec = draft.spec
    folder = (f"{spec.task_type}-{spec.object_target}-None-{spec.parent_target or spec.toggle_target}"
              f"-{draft.floorplan}")
    return {
        "task_id": f"{SYNTHETIC_PREFIX}{folder}/trial_S{draft.seed:09d}",
        "task_type": spec.task_type,
        "pddl_params": {"object_target": spec.object_target, "parent_target": spec.parent_target,
                        "toggle_target": spec.toggle_target, "mrecep_target": "", "object_sliced": False},
        "scene": {"floor_plan": f"FloorPlan{draft.floorplan}", "scene_num": draft.floorplan},
        "split": split,
        "task_text": text,
        "pddl_problem": problem,
        "walkthrough": walkthrough,
    }


def _make_task_args(args: tuple[TaskDraft, str]) -> dict | None:
    return make_task(*args)


def generate_split(split: str, counts: dict[str, int], seed: int, workers: int) -> list[dict]:
    """Make `counts` verified tasks per type, from a fixed stream of drafts (a draft the expert
    cannot win is skipped, and the next one in the stream takes its place)."""
    records: list[dict] = []
    for task_type, wanted in counts.items():
        batch = list(drafts(split, {task_type: wanted + wanted // 5 + 5}, seed))
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(_make_task_args, [(d, split) for d in batch], chunksize=4))
        made = [r for r in results if r is not None][:wanted]
        if len(made) < wanted:
            raise RuntimeError(f"only {len(made)} of {wanted} {split}/{task_type} tasks could be won")
        records += made
    return sorted(records, key=lambda r: r["task_id"])


def write_split(records: list[dict], path: Path) -> None:
    lines = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    path.write_bytes(lzma.compress(lines.encode(), preset=9 | lzma.PRESET_EXTREME))


def scaled_counts(split: str, total: int | None) -> dict[str, int]:
    """The real split's per-type counts, scaled to `total` tasks (largest remainders)."""
    real = REAL_COUNTS[split]
    if total is None:
        return dict(real)
    whole = sum(real.values())
    exact = {t: total * n / whole for t, n in real.items()}
    counts = {t: int(v) for t, v in exact.items()}
    for t in sorted(exact, key=lambda t: exact[t] - counts[t], reverse=True)[: total - sum(counts.values())]:
        counts[t] += 1
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data")
    parser.add_argument("--splits", nargs="+", default=list(REAL_COUNTS), choices=list(REAL_COUNTS))
    parser.add_argument("--train", type=int, default=1000, help="train tasks (the real split has 3553)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    _speed_up_textworld()
    args.out.mkdir(parents=True, exist_ok=True)
    for split in args.splits:
        counts = scaled_counts(split, args.train if split == "train" else None)
        records = generate_split(split, counts, args.seed, args.workers)
        write_split(records, args.out / f"{split}.jsonl.xz")
        print(f"{split}: {len(records)} tasks -> {args.out / (split + '.jsonl.xz')}")


def _speed_up_textworld() -> None:
    """Memoise TextWorld's grammar-template parsing and the PDDL translation (done twice per game)
    for generation only. Behaviour-preserving: tests replay the bundled walkthroughs on the
    unmodified engine. Derivation mutates parsed trees, so each call gets a deep copy."""
    import copy
    import functools

    import fast_downward
    import textworld.envs.pddl.textgen as textgen

    fast_downward.pddl2sas = functools.lru_cache(maxsize=8)(fast_downward.pddl2sas)

    parse = textgen._parse_and_convert
    cache: dict = {}

    def memo_parse(text, rule_name, **kwargs):
        key = (text, rule_name)
        if key not in cache:
            cache[key] = parse(text, rule_name=rule_name, **kwargs)
        return copy.deepcopy(cache[key])

    textgen._parse_and_convert = memo_parse


if __name__ == "__main__":
    main()
