"""The native engine's own contract: no reference stack on its path, pickling, its caches against a
fresh engine, threads, its grammar parser against TextWorld's, its search fallback, and a clear
refusal of foreign domains."""

import json
import pickle
import random
import subprocess
import sys
import threading

import pytest
from alfworld_testkit import sample_task_ids

from hiper_envs.alfworld.dataset import load_tasks
from hiper_envs.alfworld.engine.grammar import parse_document, parse_symbols
from hiper_envs.alfworld.engine.native import NativeEngine
from hiper_envs.alfworld.engine.parity import random_command
from hiper_envs.alfworld.engine.pddl import goal_predicates, parse_sexpr

TASKS = {t.task_id: t for t in load_tasks("valid_seen")}
SAMPLE = [TASKS[i] for i in sample_task_ids("valid_seen")]


def transcript(engine, seed: int, steps: int = 40) -> list:
    rng, state = random.Random(seed), engine.reset()
    out = [state]
    for _ in range(steps):
        state = engine.step(random_command(rng, state))
        out.append(state)
    return out


def test_native_path_imports_no_reference_stack():
    code = (
        "import sys, json\n"
        "import gymnasium as gym, hiper_envs\n"
        "env = gym.make('HiPER/ALFWorld-v0', split='valid_seen', engine='native', expert=True)\n"
        "obs, info = env.reset(seed=0)\n"
        "for _ in range(50):\n"
        "    obs, r, done, trunc, info = env.step(info['expert_action'])\n"
        "    if done: break\n"
        "print(json.dumps({'won': info['won'], 'heavy': [m for m in ('textworld', 'tatsu', 'fast_downward') "
        "if m in sys.modules]}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(out.stdout) == {"won": True, "heavy": []}


def test_pickled_engine_continues_the_same_episode():
    engine, rng = NativeEngine(SAMPLE[0].game), random.Random(3)
    state = engine.reset()
    for _ in range(10):
        state = engine.step(random_command(rng, state))
    clone = pickle.loads(pickle.dumps(engine))
    assert clone.step("look") == engine.step("look")
    command = state.admissible_commands[-1]
    assert clone.step(command) == engine.step(command)


@pytest.mark.parametrize("task", SAMPLE, ids=lambda t: t.spec.task_type)
def test_a_playing_engine_agrees_with_one_rebuilt_from_its_facts(task):
    """The engine keeps spellings across steps and checks the goal only after a change to a
    predicate the goal reads. A copy rebuilt from the facts (caches empty, goal checked) must see
    the same state at every step of a detour and then a winning plan."""
    engine, rng = NativeEngine(task.game), random.Random(7)
    state, moves = engine.reset(), 0
    for _ in range(12):
        state = engine.step(random_command(rng, state))
        moves += state.feedback != "Nothing happens."
    plan = engine.replan()
    for command in ["", *plan]:
        state = engine.step(command)
        rebuilt = pickle.loads(pickle.dumps(engine)).step("")  # an unknown command: the state as it is
        assert (rebuilt.admissible_commands, rebuilt.won, rebuilt.facts, rebuilt.commands) == \
            (state.admissible_commands, state.won, state.facts, state.commands)
    assert state.won and moves > 3


def test_goal_predicates_are_the_atoms_a_goal_reads():
    goal = parse_sexpr("(exists (?o - object) (and (inreceptacle ?o r) (not (= ?o x)) "
                       "(forall (?y - object) (imply (holds a ?y) (or (ishot ?y) (not_iscool ?y))))))")
    assert goal_predicates(goal) == {"inreceptacle", "holds", "ishot", "not_iscool"}


def test_threads_give_the_sequential_transcripts():
    expected = [transcript(NativeEngine(task.game), seed) for seed, task in enumerate(SAMPLE)]
    got = [None] * len(SAMPLE)

    def run(i: int) -> None:
        got[i] = transcript(NativeEngine(SAMPLE[i].game), i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(SAMPLE))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert got == expected


def test_grammar_parser_reads_symbols_as_textworld_does():
    tg = pytest.importorskip("textworld.envs.pddl.textgen")

    def reference(text):
        def convert(s):
            if isinstance(s, tg.ListSymbol):
                return ("l", convert(s.symbol))
            if isinstance(s, tg.ConditionalSymbol):
                return ("c", convert(s.expression), s.given or "")
            if isinstance(s, tg.EvalSymbol):
                return ("e", s.expression)
            return ("n" if isinstance(s, tg.NonterminalSymbol) else "t", s.symbol)
        try:
            return [convert(s) for s in tg._parse_and_convert(text, rule_name="symbols")]
        except Exception:
            return "error"

    def ours(text):
        try:
            return list(parse_symbols(text))
        except ValueError:
            return "error"

    _, rules = parse_document(SAMPLE[0].game["grammar"])
    texts = [rhs for alternatives in rules.values() for _, rhs in alternatives]
    rng = random.Random(0)
    pieces = list('ab {}[]#|"<>;\t\n ()./:,&') + ["{r.name}", "#list_empty#", "[{o.name | holds(a:agent, o:object)}]",
                                                  "\n  ", "//c"]
    texts += ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 10))) for _ in range(1500)]
    assert [ours(t) for t in texts] == [reference(t) for t in texts]


@pytest.mark.parametrize("task", SAMPLE, ids=lambda t: t.spec.task_type)
def test_search_wins_from_the_start_and_after_a_detour(task):
    engine = NativeEngine(task.game)
    state = engine.reset()
    rng = random.Random(1)
    for _ in range(6):
        state = engine.step(rng.choice(state.admissible_commands))
    plan = engine.replan()
    for command in plan:
        assert command in state.admissible_commands
        state = engine.step(command)
    assert state.won


def test_a_foreign_domain_is_refused():
    game = dict(SAMPLE[0].game, pddl_domain=SAMPLE[0].game["pddl_domain"].replace("(isHot ?o)\n", "", 1))
    with pytest.raises(ValueError, match="engine='textworld'"):
        NativeEngine(game)
