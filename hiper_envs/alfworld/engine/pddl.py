"""Just enough PDDL for ALFWorld problems: objects, initial facts and a goal to test states against.

Names are lowercased and `;` comments dropped, as Fast Downward's parser does, so facts are spelled
exactly as the reference engine spells them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from hiper_envs.alfworld.engine.base import Fact

_COMMENT = re.compile(r";[^\n]*")
_TOKEN = re.compile(r"[()]|[^\s()]+")

SExpr = str | list


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(_COMMENT.sub("", text.lower()))


def parse_sexpr(text: str) -> list:
    stack: list[list] = [[]]
    for token in tokens(text):
        if token == "(":
            stack.append([])
        elif token == ")":
            if len(stack) == 1:
                raise ValueError("unbalanced ')' in PDDL")
            done = stack.pop()
            stack[-1].append(done)
        else:
            stack[-1].append(token)
    if len(stack) != 1 or len(stack[0]) != 1:
        raise ValueError("unbalanced '(' in PDDL")
    return stack[0][0]


def fingerprint(text: str) -> str:
    """A digest of a PDDL text that ignores case, comments and layout."""
    return hashlib.sha256(" ".join(tokens(text)).encode()).hexdigest()


def typed_list(items: list[str]) -> list[tuple[str, str]]:
    """`a b - t c` -> [(a, t), (b, t), (c, object)]."""
    out, pending, i = [], [], 0
    while i < len(items):
        if items[i] == "-":
            out += [(name, items[i + 1]) for name in pending]
            pending, i = [], i + 2
        else:
            pending.append(items[i])
            i += 1
    return out + [(name, "object") for name in pending]


@dataclass(frozen=True)
class Problem:
    objects: dict[str, str]  # name -> declared type
    init: frozenset[Fact]  # atoms of :init, without equalities and numeric assignments
    goal: list  # the :goal formula as an s-expression


def parse_problem(text: str) -> Problem:
    tree = parse_sexpr(text)
    if not tree or tree[0] != "define":
        raise ValueError("a PDDL problem starts with (define ...)")
    sections = {part[0]: part[1:] for part in tree[1:] if isinstance(part, list) and part}
    objects = dict(typed_list(sections.get(":objects", [])))
    init = frozenset(
        (atom[0], *atom[1:]) for atom in sections.get(":init", [])
        if isinstance(atom, list) and atom and atom[0] != "=" and all(isinstance(a, str) for a in atom)
    )
    goal = sections.get(":goal")
    if not goal:
        raise ValueError("the PDDL problem has no :goal")
    return Problem(objects, init, goal[0])


# ---------------------------------------------------------------------------------------------
# Goal tests. A goal is an and/or/not/imply/exists/forall formula over atoms and `=`; it is
# evaluated under the closed-world assumption, binding quantified variables from the facts of
# the atoms that mention them (the domain of a variable is the objects of its type).

Facts = Mapping[str, set[tuple[str, ...]]]  # predicate -> argument tuples
Test = Callable[[Facts, dict], bool]


def compile_goal(formula: list, objects: Mapping[str, str], is_subtype: Callable[[str, str], bool]) -> Callable[[Facts], bool]:
    test = _compile(formula, objects, is_subtype)
    return lambda facts: test(facts, {})


def goal_predicates(formula: SExpr) -> frozenset[str]:
    """The predicates a goal formula reads: a state change to any other cannot change its value."""
    head = formula[0]
    if head in ("and", "or", "not", "imply"):
        return frozenset().union(*(goal_predicates(part) for part in formula[1:]))
    if head in ("exists", "forall"):
        return goal_predicates(formula[2])
    return frozenset() if head == "=" else frozenset({head})


def _compile(f: SExpr, objects: Mapping[str, str], is_subtype) -> Test:
    head = f[0]
    if head == "and":
        parts = [_compile(p, objects, is_subtype) for p in f[1:]]
        return lambda facts, env: all(p(facts, env) for p in parts)
    if head == "or":
        parts = [_compile(p, objects, is_subtype) for p in f[1:]]
        return lambda facts, env: any(p(facts, env) for p in parts)
    if head == "not":
        inner = _compile(f[1], objects, is_subtype)
        return lambda facts, env: not inner(facts, env)
    if head == "imply":
        cond, then = _compile(f[1], objects, is_subtype), _compile(f[2], objects, is_subtype)
        return lambda facts, env: not cond(facts, env) or then(facts, env)
    if head in ("exists", "forall"):
        variables = typed_list(f[1])
        body = f[2]
        if head == "forall":
            inner = _compile(body, objects, is_subtype)
            domains = [[o for o, t in objects.items() if is_subtype(t, vt)] for _, vt in variables]
            return lambda facts, env: all(inner(facts, env | dict(zip([v for v, _ in variables], combo, strict=True)))
                                          for combo in _product(domains))
        return _compile_exists(variables, body, objects, is_subtype)
    if head == "=":
        a, b = f[1], f[2]
        return lambda facts, env: env.get(a, a) == env.get(b, b)
    pred, args = head, f[1:]
    return lambda facts, env: tuple(env.get(a, a) for a in args) in facts.get(pred, ())


def _product(domains: list[list[str]]) -> Iterator[tuple[str, ...]]:
    if not domains:
        yield ()
        return
    for first in domains[0]:
        for rest in _product(domains[1:]):
            yield (first, *rest)


def _compile_exists(variables: list[tuple[str, str]], body: SExpr, objects, is_subtype) -> Test:
    """exists: bind the variables from the positive atoms of the body's conjunction (most
    constrained atom first), then check the other conjuncts."""
    conjuncts = body[1:] if body[0] == "and" else [body]
    kinds = dict(variables)
    atoms = [c for c in conjuncts if c[0] not in ("and", "or", "not", "imply", "exists", "forall", "=")]
    rest = [_compile(c, objects, is_subtype) for c in conjuncts if c not in atoms]
    order, bound = [], set()
    while atoms:  # greedy: the atom with the fewest unbound variables next
        atom = min(atoms, key=lambda a: sum(x in kinds and x not in bound for x in a[1:]))
        atoms.remove(atom)
        order.append((atom[0], tuple(atom[1:])))
        bound.update(x for x in atom[1:] if x in kinds)

    def search(facts: Facts, env: dict, depth: int) -> bool:
        if depth == len(order):
            unbound = [v for v in kinds if v not in env]
            if unbound:  # a variable no atom binds ranges over its type
                var = unbound[0]
                return any(search(facts, env | {var: o}, depth)
                           for o, t in objects.items() if is_subtype(t, kinds[var]))
            return all(test(facts, env) for test in rest)
        pred, args = order[depth]
        if all(a not in kinds or a in env for a in args):
            return tuple(env.get(a, a) for a in args) in facts.get(pred, ()) and search(facts, env, depth + 1)
        for values in facts.get(pred, ()):
            if len(values) != len(args):
                continue
            new = dict(env)
            for arg, value in zip(args, values, strict=True):
                known = new.get(arg) if arg in kinds else env.get(arg, arg)
                if known is None:
                    if not is_subtype(objects.get(value, ""), kinds[arg]):
                        break
                    new[arg] = value
                elif known != value:
                    break
            else:
                if search(facts, new, depth + 1):
                    return True
        return False

    def test(facts: Facts, env: dict) -> bool:
        outer = {k: v for k, v in env.items() if k not in kinds}
        return search(facts, outer, 0)

    return test
