"""The native ALFWorld engine: the reference engine's game, transcript for transcript, in plain Python.

The reference (TextWorld's `PddlEnv` + alfworld's `AlfredDemangler`) translates the PDDL task with
Fast Downward and, on every step, re-parses grammar templates to spell each applicable action; 95%
of its 140 ms step is that parsing. This engine implements the ALFRED domain's actions directly
and interprets the game's own grammar (parsed once), so it returns equal `EngineState`s at a small
fraction of the cost. The reference's quirks are reproduced because agents see them:

- Facts are TextWorld's view of the state: the problem's initial facts, then each applied effect
  adds its atom and drops its negation, so deletions leave `not_<pred>` facts (the grammar reads
  `not_inreceptacle`). Fast Downward keeps a delete effect only on atoms it found reachable, so a
  `not_` fact appears only where the reference has one.
- `use X` applies both of ToggleObject's conditional effects (`isOn` then `not isOn`), as the
  reference's fact update does; `examine` works only on a held object (the domain's other branch
  types a parameter `location,` that no object has); `go to` the receptacle at the current
  location is not applicable (Fast Downward drops it as an operator with no effect).

Only the ALFRED domain of alfworld 0.4.2 is supported (checked on load); the grammar, problem and
goal come from the game. No TextWorld, TatSu or Fast Downward import: instances are independent,
thread-safe and picklable.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from hiper_envs.alfworld.engine.base import EngineState, Fact
from hiper_envs.alfworld.engine.grammar import Entity, FactView, Grammar, parse_document
from hiper_envs.alfworld.engine.pddl import compile_goal, fingerprint, goal_predicates, parse_problem

# Token digest of alfworld 0.4.2's `alfred.pddl` (the only domain whose actions are implemented).
ALFRED_DOMAIN = "915e118f4f32b4d826bf53c99e860dd85831afffb1a31ad333f063ce005b7122"
NOTHING_HAPPENS = "Nothing happens."

_A, _L, _R, _O = ("a", "agent"), ("l", "location"), ("r", "receptacle"), ("o", "object")
# Parameters of each action as the domain declares them (the feedback grammar names them).
PARAMETERS: dict[str, tuple[tuple[str, str], ...]] = {
    "look": (_A, _L),
    "inventory": (_A,),
    "help": (_A,),
    "examinereceptacle": (_A, _R),
    "examineobject": (_A, _O),
    "gotolocation": (_A, ("lstart", "location"), ("lend", "location"), _R),
    "openobject": (_A, _L, _R),
    "closeobject": (_A, _L, _R),
    "pickupobject": (_A, _L, _O, _R),
    "putobject": (_A, _L, _O, _R, ("ot", "otype"), ("rt", "rtype")),
    "cleanobject": (_A, _L, _R, _O),
    "heatobject": (_A, _L, _R, _O),
    "coolobject": (_A, _L, _R, _O),
    "toggleobject": (_A, _L, _O, _R),
    "sliceobject": (_A, _L, ("co", "object"), ("ko", "object")),
}
# Appliance receptacle type and object ability of the state-changing actions.
APPLIANCES = {"cleanobject": ("sinkbasintype", "cleanable"), "heatobject": ("microwavetype", "heatable"),
              "coolobject": ("fridgetype", "coolable")}
KNIVES = ("knifetype", "butterknifetype")
# Predicates some action changes; templates that query only other predicates spell an action the
# same way in every state.
DYNAMIC = frozenset({"atlocation", "checked", "opened", "inreceptacle", "holds", "holdsany", "objectatlocation",
                     "isclean", "ishot", "iscool", "ison", "istoggled", "issliced"})

Effect = tuple[str, tuple[str, ...], bool]  # (predicate, args, add?)


def is_subtype(kind: str, parent: str) -> bool:
    """The domain's types all derive from `object` (PDDL's default parent)."""
    return kind == parent or parent == "object"


def display_names(ids: list[str]) -> dict[str, str]:
    """alfworld's Demangler (shuffle=False): `apple_bar_...` -> `apple 2`, numbered per class in
    sorted id order, highest number first; ids without a `_bar_` keep their spelling plus a space."""
    ids = sorted(ids)
    counts: dict[str, int] = defaultdict(int)
    for id_ in ids:
        if "_bar_" in id_:
            counts[_class_name(id_)] += 1
    names = {}
    for id_ in ids:
        text = id_.replace("_bar_", "|").replace("_minus_", "-").replace("_plus_", "+")
        text = text.replace("_dot_", ".").replace("_comma_", ",")
        if "|" not in text:
            names[id_] = f"{text} "
        else:
            name = _class_name(id_)
            names[id_] = f"{name} {counts[name]}"
            counts[name] -= 1
    return names


def _class_name(id_: str) -> str:
    name = id_.split("_bar_", 1)[0]
    name = name.replace("_minus_", "-").replace("_plus_", "+").replace("_dot_", ".").replace("_comma_", ",")
    return name + "basin" if "basin" in id_ else name


class NativeEngine:
    def __init__(self, game: dict) -> None:
        self._game = game
        if fingerprint(game["pddl_domain"]) != ALFRED_DOMAIN:
            raise ValueError("engine='native' implements alfworld's alfred.pddl domain only; this game has another "
                             "domain: use engine='textworld'")
        actions, rules = parse_document(game["grammar"])
        self._actions = actions
        self._grammar = Grammar(rules)
        problem = parse_problem(game["pddl_problem"])
        self._objects = problem.objects
        self._goal_formula = problem.goal
        self._goal = compile_goal(problem.goal, problem.objects, is_subtype)
        self._goal_predicates = goal_predicates(problem.goal)
        self._initial = problem.init
        ids = sorted({arg for fact in problem.init for arg in fact[1:]})
        self.names = display_names(ids)
        self._entities = {i: Entity(i, self._objects.get(i, ""), self.names[i]) for i in ids}
        self._index_static(problem.init)
        self._spelling_keys: dict[str, tuple[int, ...] | None] = {}
        self._spelling: dict[tuple[str, ...], str] = {}
        self._view = FactView(self._sorted_args, self._holds, self._objects, is_subtype)
        self._start: EngineState | None = None
        self._state: EngineState | None = None
        self._facts: set[Fact] = set()
        self._by_pred: dict[str, set[tuple[str, ...]]] = {}
        self._sorted: dict[str, list[tuple[str, ...]]] = {}
        self._actions_now: dict[str, Fact] = {}  # command text -> ground action, in the current state
        self._start_actions: dict[str, Fact] = {}

    # -- static structure ---------------------------------------------------------------------

    def _index_static(self, init: frozenset[Fact]) -> None:
        by_pred: dict[str, list[tuple[str, ...]]] = defaultdict(list)
        for fact in init:
            by_pred[fact[0]].append(fact[1:])
        unary = {p: frozenset(a[0] for a in by_pred[p] if a) for p in
                 ("openable", "pickupable", "cleanable", "heatable", "coolable", "toggleable", "sliceable")}
        self._unary = unary
        self._agents = sorted(o for o, t in self._objects.items() if t == "agent")
        at: dict[str, list[str]] = defaultdict(list)
        for rec, loc in sorted(by_pred["receptacleatlocation"]):
            at[loc].append(rec)
        self._receptacles_at = dict(at)
        self._receptacle_places = sorted(by_pred["receptacleatlocation"])
        self._otypes: dict[str, list[str]] = defaultdict(list)
        for obj, kind in sorted(by_pred["objecttype"]):
            self._otypes[obj].append(kind)
        self._rtypes: dict[str, list[str]] = defaultdict(list)
        for rec, kind in sorted(by_pred["receptacletype"]):
            self._rtypes[rec].append(kind)
        self._can_contain = frozenset(by_pred["cancontain"])
        self._fluent_deletes = self._reachable_deletes(by_pred)

    def _reachable_deletes(self, by_pred: dict[str, list[tuple[str, ...]]]) -> frozenset[Fact]:
        """The atoms of delete effects Fast Downward keeps: those reachable in its relaxed
        exploration (or initially true). Only three deletes are not implied by a precondition."""
        placed = {rec for rec, _ in by_pred["receptacleatlocation"]}
        movable = {obj for obj, rec in by_pred["inreceptacle"]
                   if rec in placed and obj in self._unary["pickupable"]} if by_pred["atlocation"] else set()
        atoms: set[Fact] = {(pred, *args) for pred in ("objectatlocation", "ishot", "iscool") for args in by_pred[pred]}
        for obj in movable:
            for rec, loc in by_pred["receptacleatlocation"]:
                if any((rt, ot) in self._can_contain for rt in self._rtypes[rec] for ot in self._otypes[obj]):
                    atoms.add(("objectatlocation", obj, loc))
        for action, predicate in (("heatobject", "ishot"), ("coolobject", "iscool")):
            appliance, ability = APPLIANCES[action]
            if any(appliance in self._rtypes[rec] for rec in placed):
                atoms.update((predicate, obj) for obj in movable & self._unary[ability])
        return frozenset(atoms)

    def _is_static(self, template: str) -> bool:
        def predicates(symbols) -> Iterator[str]:
            for symbol in symbols:
                if symbol[0] in ("c", "l"):
                    cond = symbol[1] if symbol[0] == "l" else symbol
                    yield from (atom[0] for atom in self._grammar.query(cond[2])) if cond[2] else ()
                    if cond[1][0] == "n":
                        yield "#"
                elif symbol[0] == "n":
                    yield "#"
        return all(p != "#" and p.removeprefix("not_") not in DYNAMIC for p in predicates(self._grammar.symbols(template)))

    def _spelling_key(self, name: str) -> tuple[int, ...] | None:
        """Positions of the arguments that action `name`'s spelling depends on, when its template
        spells it the same way in every state (None otherwise). `go to` reads only where it goes,
        so moving about does not spell every destination again."""
        template = self._actions[name].template
        if not self._is_static(template):
            return None
        parameters = PARAMETERS[name]
        names, placeholders = self._grammar.names_read(template)
        if not placeholders <= set(parameters):  # a query binds new variables, avoiding every argument's value
            return tuple(range(len(parameters)))
        return tuple(i for i, (parameter, _) in enumerate(parameters) if parameter in names)

    # -- the engine interface -----------------------------------------------------------------

    def reset(self) -> EngineState:
        self._load_facts(self._initial)
        if self._start is None:
            feedback = self._grammar.derive("#intro#", self._view, self._entities, {})
            self._start = self._gather(feedback, action_valid=True, won=self._won())
            self._start_actions = self._actions_now
        self._actions_now = self._start_actions
        self._state = self._start
        return self._state

    def step(self, command: str) -> EngineState:
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        key = self._actions_now.get(command.strip())
        if key is None:
            self._state = EngineState(NOTHING_HAPPENS, self._state.admissible_commands, self._state.won,
                                      self._state.facts, False, self.names, self._state.commands)
            return self._state
        effects = self._effects(key)
        # The goal reads only its own predicates: an action that changes none of them (look,
        # examine, open, most moves) leaves the game won or not as it was.
        won = self._state.won
        for pred, args, add in effects:
            negated = "not_" + pred
            if add:
                self._discard(negated, args)
                self._add(pred, args)
            else:
                self._discard(pred, args)
                self._add(negated, args)
        if any(pred in self._goal_predicates or "not_" + pred in self._goal_predicates for pred, _, _ in effects):
            won = self._won()
        name = key[0]
        binding = dict(zip(PARAMETERS[name], key[1:], strict=True))
        feedback = self._grammar.derive(self._actions[name].feedback, self._view, self._entities, binding)
        self._state = self._gather(feedback, action_valid=True, won=won)
        return self._state

    def replan(self) -> list[str]:
        """A winning command sequence from the current state, by search over native states ([] if none)."""
        from hiper_envs.alfworld.engine.search import shortest_plan

        return shortest_plan(self)

    def __getstate__(self) -> dict:
        return {"game": self._game, "facts": None if self._state is None else set(self._facts),
                "feedback": None if self._state is None else self._state.feedback,
                "valid": None if self._state is None else self._state.action_valid}

    def __setstate__(self, data: dict) -> None:
        self.__init__(data["game"])
        if data["facts"] is not None:
            self._load_facts(data["facts"])
            self._state = self._gather(data["feedback"], data["valid"], self._won())

    # -- facts ----------------------------------------------------------------------------------

    def _load_facts(self, facts) -> None:
        self._facts = set(facts)
        self._by_pred = defaultdict(set)
        for fact in self._facts:
            self._by_pred[fact[0]].add(fact[1:])
        self._sorted = {}

    def _add(self, pred: str, args: tuple[str, ...]) -> None:
        self._facts.add((pred, *args))
        self._by_pred[pred].add(args)
        self._sorted.pop(pred, None)

    def _discard(self, pred: str, args: tuple[str, ...]) -> None:
        self._facts.discard((pred, *args))
        found = self._by_pred.get(pred)
        if found is not None and args in found:
            found.discard(args)
            self._sorted.pop(pred, None)

    def _sorted_args(self, pred: str) -> list[tuple[str, ...]]:
        found = self._sorted.get(pred)
        if found is None:
            found = self._sorted[pred] = sorted(self._by_pred.get(pred, ()))
        return found

    def _holds(self, pred: str, args: tuple[str, ...]) -> bool:
        return args in self._by_pred.get(pred, ())

    # -- actions --------------------------------------------------------------------------------

    def ground_actions(self) -> Iterator[Fact]:
        """Every applicable ground action, as (name, *args in parameter order)."""
        unary = self._unary
        locations = defaultdict(list)
        for agent, loc in self._by_pred.get("atlocation", ()):
            locations[agent].append(loc)
        held = defaultdict(list)
        for agent, obj in self._by_pred.get("holds", ()):
            held[agent].append(obj)
        contents = defaultdict(list)
        for obj, rec in self._by_pred.get("inreceptacle", ()):
            contents[rec].append(obj)
        opened = self._by_pred.get("opened", set())
        busy = self._by_pred.get("holdsany", set())
        for a in self._agents:
            yield ("inventory", a)
            yield ("help", a)
            for obj in held[a]:
                yield ("examineobject", a, obj)
            for here in locations[a]:
                yield ("look", a, here)
                for r, lend in self._receptacle_places:
                    if lend != here:
                        yield ("gotolocation", a, here, lend, r)
                for r in self._receptacles_at.get(here, ()):
                    yield ("examinereceptacle", a, r)
                    openable = r in unary["openable"]
                    if openable:
                        yield ("closeobject" if (r,) in opened else "openobject", a, here, r)
                    reachable = not openable or (r,) in opened
                    for obj in contents[r]:
                        if reachable and (a,) not in busy and obj in unary["pickupable"]:
                            yield ("pickupobject", a, here, obj, r)
                        if obj in unary["toggleable"]:
                            yield ("toggleobject", a, here, obj, r)
                    for obj in held[a]:
                        if reachable:
                            for ot in self._otypes.get(obj, ()):
                                for rt in self._rtypes.get(r, ()):
                                    if (rt, ot) in self._can_contain:
                                        yield ("putobject", a, here, obj, r, ot, rt)
                        for action, (appliance, ability) in APPLIANCES.items():
                            if obj in unary[ability] and appliance in self._rtypes.get(r, ()):
                                yield (action, a, here, r, obj)
                for knife in held[a]:
                    if any(kind in KNIVES for kind in self._otypes.get(knife, ())):
                        for co, loc in self._by_pred.get("objectatlocation", ()):
                            if loc == here and co in unary["sliceable"]:
                                yield ("sliceobject", a, here, co, knife)

    def _effects(self, key: Fact) -> list[Effect]:
        name, args = key[0], key[1:]
        if name == "look":
            return [("checked", (args[1],), True)]
        if name in ("inventory", "help"):
            return [("checked", (args[0],), True)]
        if name in ("examinereceptacle", "examineobject"):
            return [("checked", (args[1],), True)]
        if name == "gotolocation":
            a, lstart, lend, _ = args
            return [("atlocation", (a, lstart), False), ("atlocation", (a, lend), True)]
        if name == "openobject":
            return [("opened", (args[2],), True), ("checked", (args[2],), True)]
        if name == "closeobject":
            return [("opened", (args[2],), False)]
        if name == "pickupobject":
            a, loc, o, r = args
            effects = [("inreceptacle", (o, r), False), ("holds", (a, o), True), ("holdsany", (a,), True)]
            if ("objectatlocation", o, loc) in self._fluent_deletes:
                effects.append(("objectatlocation", (o, loc), False))
            return effects
        if name == "putobject":
            a, loc, o, r = args[:4]
            return [("inreceptacle", (o, r), True), ("objectatlocation", (o, loc), True),
                    ("holds", (a, o), False), ("holdsany", (a,), False)]
        if name == "cleanobject":
            return [("isclean", (args[3],), True)]
        if name in ("heatobject", "coolobject"):
            made, undone = ("ishot", "iscool") if name == "heatobject" else ("iscool", "ishot")
            obj = args[3]
            effects = [(made, (obj,), True)]
            if (undone, obj) in self._fluent_deletes:
                effects.append((undone, (obj,), False))
            return effects
        if name == "toggleobject":
            obj = args[2]
            return [("ison", (obj,), True), ("ison", (obj,), False), ("istoggled", (obj,), True)]
        if name == "sliceobject":
            return [("issliced", (args[2],), True)]
        raise ValueError(f"unknown action {name!r}")

    def _spell(self, key: Fact) -> str:
        """The command text of a ground action: its template derived in the current state."""
        name = key[0]
        if name not in self._spelling_keys:
            self._spelling_keys[name] = self._spelling_key(name)
        positions = self._spelling_keys[name]
        cache_key = None if positions is None else (name, *(key[1 + i] for i in positions))
        text = self._spelling.get(cache_key)
        if text is None:
            binding = dict(zip(PARAMETERS[name], key[1:], strict=True))
            text = self._grammar.derive(self._actions[name].template, self._view, self._entities, binding)
            if "{" in text or "}" in text:  # PddlEnv formats the spelled command with the names
                text = text.format(**self.names)
            if cache_key is not None:
                self._spelling[cache_key] = text
        return text

    def _won(self) -> bool:
        return bool(self._goal(self._by_pred))

    def _gather(self, feedback: str, action_valid: bool, won: bool) -> EngineState:
        commands: dict[Fact, str] = {}
        by_text: dict[str, Fact] = {}
        for key in self.ground_actions():
            if key not in commands:
                text = commands[key] = self._spell(key)
                by_text.setdefault(text, key)
        self._actions_now = by_text
        return EngineState(
            feedback=feedback,
            admissible_commands=sorted(by_text),
            won=won,
            facts=frozenset(self._facts),
            action_valid=action_valid,
            names=self.names,
            commands=commands,
        )
