"""TextWorld's text grammar (the `.twl2` file in a game), reimplemented to give the same strings.

A game's grammar holds, per action, a command template and a feedback rule, and a set of
production rules whose right-hand sides mix literal text, `#rule#` references, `{python expr}`
and `{expr | query}` symbols, and `[...]` lists joined with "a, b, and c". A rule may carry a
condition (a conjunctive query over the facts); the first rule whose condition holds is used.

TextWorld parses these right-hand sides with a TatSu PEG grammar on every use; here they are
parsed once by a hand-written parser that follows the same PEG rules, including TatSu's token
skipping (tabs, and leading whitespace at the start of a line, are dropped before a symbol) and
its silent stop at the first character no symbol accepts. Queries enumerate facts in TextWorld's
order (each predicate's facts sorted, placeholders bound left to right, no variable bound twice),
so lists name things in the same order.
"""

from __future__ import annotations

import functools
import json
import re
import textwrap
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

# ---------------------------------------------------------------------------------------------
# The .twl2 document: `grammar :: """{json}""";` blocks and `action Name { template :: "...";
# feedback :: "..."; grammar :: """{json}"""; }` blocks; `#` starts a comment between tokens.

_DOC_TOKEN = re.compile(r'"""[\s\S]*?"""|"[^"]*"|[\w/-]+|::|[{};]')
_DOC_SKIP = re.compile(r"(?:\s+|#[^\n]*)+")


@dataclass(frozen=True)
class ActionText:
    template: str  # command template, e.g. "open {r}"
    feedback: str  # feedback symbol string, e.g. "#OpenObject.feedback#"


def parse_document(text: str) -> tuple[dict[str, ActionText], dict[str, list[tuple[str, str]]]]:
    """(actions by lowercase name, rules by symbol name as [(condition, rhs)])."""
    tokens = _doc_tokens(text)
    actions: dict[str, ActionText] = {}
    merged: dict[str, list] = {}
    i = 0
    while i < len(tokens):
        if tokens[i] == "grammar":
            merged.update(json.loads(_block(tokens[i + 2])))
            i += 4
        elif tokens[i] == "action":
            name, fields, i = tokens[i + 1], {}, i + 3
            while tokens[i] != "}":
                fields[tokens[i]] = tokens[i + 2]
                i += 4
            i += 1
            if "grammar" in fields:
                code = _block(fields["grammar"])
                code = "\n".join(line for line in code.split("\n") if not line.lstrip().startswith("#"))
                merged.update(json.loads(code))
            actions[name.lower()] = ActionText(fields["template"][1:-1], fields["feedback"][1:-1])
        else:
            raise ValueError(f"unexpected token {tokens[i]!r} in the game grammar")
    rules = {name: [(rule.get("condition", ""), rule["rhs"]) for rule in alts] for name, alts in merged.items()}
    return actions, rules


def _doc_tokens(text: str) -> list[str]:
    tokens, pos = [], 0
    while True:
        skip = _DOC_SKIP.match(text, pos)
        if skip:
            pos = skip.end()
        if pos >= len(text):
            return tokens
        match = _DOC_TOKEN.match(text, pos)
        if match is None:
            raise ValueError(f"cannot parse the game grammar at: {text[pos:pos + 40]!r}")
        tokens.append(match.group())
        pos = match.end()


def _block(token: str) -> str:
    return textwrap.dedent(token[3:-3])


# ---------------------------------------------------------------------------------------------
# Right-hand sides. Symbols: ("t", text) | ("n", name) | ("e", python) | ("c", expr, query)
# | ("l", conditional). Parsing follows textgen.ebnf: Symbol = list | conditional | nonterminal |
# terminal, with TatSu's skipping of tabs and line-start whitespace before each token.

_EOL = re.compile(r"^(//.*|\s*)\n?", re.MULTILINE)
_TABS = re.compile(r"[\t]+")
_TAG = re.compile(r"[\w()/!<>\-\s,.]+")
_GIVEN = re.compile(r"[^;|{}\n\[\]#]+")
_STATEMENT = re.compile(r"[^|\[\]{}\n<>]+")
_LITERAL = re.compile(r'[^;|"<>\[\]#{}]*')
_BAR = re.compile(r"\s*\|\s*")


class _Fail(Exception):
    pass


def _skip(text: str, pos: int) -> int:
    while True:
        start = pos
        while (m := _EOL.match(text, pos)) is not None:
            pos = m.end()
            if not m.group(1):
                break
        while (m := _TABS.match(text, pos)) is not None:
            pos = m.end()
        if pos == start:
            return pos


def _token(text: str, pos: int, token: str) -> int:
    pos = _skip(text, pos)
    if not text.startswith(token, pos):
        raise _Fail
    return pos + len(token)


def _pattern(text: str, pos: int, regex: re.Pattern) -> tuple[str, int]:
    m = regex.match(text, pos)
    if m is None:
        raise _Fail
    return m.group(), m.end()


def _nonterminal(text: str, pos: int) -> tuple[tuple, int]:
    pos = _token(text, pos, "#")
    tag, pos = _pattern(text, _skip(text, pos), _TAG)
    return ("n", tag), _token(text, pos, "#")


def _conditional(text: str, pos: int) -> tuple[tuple, int]:
    pos = _token(text, pos, "{")
    try:
        expression, pos = _nonterminal(text, _skip(text, pos))
    except _Fail:
        statement, pos = _pattern(text, _skip(text, pos), _STATEMENT)
        expression = ("e", statement)
    given = ""
    bar = _BAR.match(text, pos)
    if bar is not None:
        try:
            given, after = _pattern(text, _skip(text, bar.end()), _GIVEN)
            pos = after
        except _Fail:
            pass
    return ("c", expression, given), _token(text, pos, "}")


def _symbol(text: str, pos: int) -> tuple[tuple, int]:
    for parse in (_list, _conditional, _nonterminal):
        try:
            return parse(text, _skip(text, pos))
        except _Fail:
            pass
    pos = _skip(text, pos)
    try:
        after = _token(text, pos, '"')
        literal, after = _pattern(text, after, _LITERAL)
        return ("t", literal), _token(text, after, '"')
    except _Fail:
        literal, after = _pattern(text, pos, _LITERAL)
        return ("t", literal), after


def _list(text: str, pos: int) -> tuple[tuple, int]:
    pos = _token(text, pos, "[")
    conditional, pos = _conditional(text, _skip(text, pos))
    return ("l", conditional), _token(text, pos, "]")


def parse_symbols(text: str) -> tuple[tuple, ...]:
    """The symbols TatSu's `symbols` rule reads from `text` (it stops where no symbol fits)."""
    try:
        symbol, pos = _symbol(text, _skip(text, 0))
    except _Fail:
        raise ValueError(f"cannot parse grammar text {text!r}") from None
    symbols = [symbol]
    while True:
        try:
            symbol, after = _symbol(text, pos)
        except _Fail:
            return tuple(symbols)
        if after == pos:  # TatSu ends a closure on an iteration that reads nothing
            return tuple(symbols)
        symbols.append(symbol)
        pos = after


# ---------------------------------------------------------------------------------------------
# Conjunctive queries: "pred(ph:type, ...) & ...", solved TextWorld's way.

Placeholder = tuple[str, str]  # (name, type)
Binding = dict  # Placeholder -> variable name
_ATOM = re.compile(r"\s*([\w@-]+)\s*\(([^)]*)\)\s*")


def parse_query(text: str) -> tuple[tuple[str, tuple[Placeholder, ...]], ...]:
    atoms = []
    for part in text.split("&"):
        m = _ATOM.fullmatch(part)
        if m is None:
            raise ValueError(f"cannot parse grammar query {text!r}")
        args = tuple(
            tuple(s.strip() for s in arg.split(":", 1)) for arg in m.group(2).split(",") if arg.strip()
        )
        atoms.append((m.group(1), args))
    return tuple(atoms)


class FactView:
    """What queries read: each predicate's facts in sorted order, and each variable's type."""

    def __init__(self, sorted_facts: Callable[[str], Sequence[tuple[str, ...]]], has: Callable[[str, tuple], bool],
                 type_of: Mapping[str, str], is_subtype: Callable[[str, str], bool]) -> None:
        self.sorted_facts = sorted_facts
        self.has = has
        self.type_of = type_of
        self.is_subtype = is_subtype


def solve(query: Sequence[tuple[str, tuple[Placeholder, ...]]], facts: FactView, binding: Binding) -> Iterator[Binding]:
    """Every extension of `binding` satisfying the query, in TextWorld's order."""
    used = set(binding.values())
    mapping = dict(binding)
    yield from _solve(query, 0, facts, mapping, used)


def _solve(query, depth: int, facts: FactView, mapping: dict, used: set) -> Iterator[Binding]:
    if depth == len(query):
        yield dict(mapping)
        return
    name, placeholders = query[depth]
    if all(ph in mapping for ph in placeholders):  # one candidate: the scan would find just it
        if facts.has(name, tuple(mapping[ph] for ph in placeholders)):
            yield from _solve(query, depth + 1, facts, mapping, used)
        return
    for args in facts.sorted_facts(name):
        if len(args) != len(placeholders):
            continue
        added = []
        for ph, var in zip(placeholders, args, strict=True):
            existing = mapping.get(ph)
            if existing is None:
                if var in used or not facts.is_subtype(facts.type_of.get(var, ""), ph[1]):
                    break
                mapping[ph] = var
                used.add(var)
                added.append(ph)
            elif existing != var:
                break
        else:
            yield from _solve(query, depth + 1, facts, mapping, used)
        for ph in added:
            used.discard(mapping.pop(ph))


# ---------------------------------------------------------------------------------------------
# Derivation.


@dataclass(frozen=True, slots=True)
class Entity:
    """The attributes grammar expressions read (TextWorld's EntityInfo as PddlEnv fills it)."""

    id: str
    type: str
    name: str
    definite: str = "the"
    indefinite: str = "a"

    def __str__(self) -> str:
        return self.name


# Every ALFWorld game carries the same grammar text, and a new game means a new engine: parsed
# right-hand sides, queries and expressions are kept per process, so an engine's first steps do
# not parse again what the previous game's engine already parsed.
_cached_symbols = functools.lru_cache(maxsize=16384)(parse_symbols)
_cached_query = functools.lru_cache(maxsize=16384)(parse_query)


@functools.lru_cache(maxsize=16384)
def _compiled(expression: str) -> object:
    return compile(expression.strip(), "<grammar>", "eval")


class Grammar:
    """A game's production rules, parsed on first use and kept for the engine's lifetime."""

    def __init__(self, rules: Mapping[str, list[tuple[str, str]]]) -> None:
        self._rules = rules
        self._parsed: dict[str, list[tuple[tuple, tuple]]] = {}

    @staticmethod
    def symbols(text: str) -> tuple:
        return _cached_symbols(text)

    @staticmethod
    def query(text: str) -> tuple:
        return _cached_query(text)

    def names_read(self, text: str) -> tuple[frozenset[str], frozenset[Placeholder]]:
        """The variable names `text`'s expressions and queries read, and its queries' placeholders
        (nonterminals it references are not followed)."""
        names, placeholders = set(), set()
        for symbol in self.symbols(text):
            conditional = symbol[1] if symbol[0] == "l" else symbol
            if conditional[0] != "c":
                continue
            expression, given = conditional[1], conditional[2]
            if expression[0] == "e":
                names.update(_compiled(expression[1]).co_names)
            for _, atom_placeholders in self.query(given) if given else ():
                placeholders.update(atom_placeholders)
        return frozenset(names | {name for name, _ in placeholders}), frozenset(placeholders)

    def alternatives(self, name: str) -> list[tuple[tuple, tuple]]:
        parsed = self._parsed.get(name)
        if parsed is None:
            if name not in self._rules:
                raise KeyError(f"Can't find symbol '#{name}#' in the set of production rules.")
            parsed = [(self.query(cond) if cond else (), self.symbols(rhs)) for cond, rhs in self._rules[name]]
            self._parsed[name] = parsed
        return parsed

    def derive(self, text: str, facts: FactView, entities: Mapping[str, Entity], binding: Binding) -> str:
        out: list[str] = []
        self._derive(self.symbols(text), facts, entities, binding, out)
        return "".join(out)

    def _derive(self, symbols: tuple, facts: FactView, entities, binding: Binding, out: list[str]) -> None:
        for symbol in symbols:
            kind = symbol[0]
            if kind == "t":
                out.append(symbol[1])
            elif kind == "n":
                self._expand(symbol[1], facts, entities, binding, out)
            elif kind == "c":
                for context in self._contexts(symbol[2], facts, binding):
                    self._one(symbol[1], facts, entities, context, out)
            else:  # list
                _, expression, given = symbol[1]
                items = list(self._contexts(given, facts, binding))
                if not items:
                    self._expand("list_empty", facts, entities, binding, out)
                for i, context in enumerate(items):
                    if i:
                        sep = "list_last_separator" if i == len(items) - 1 else "list_separator"
                        self._expand(sep, facts, entities, binding, out)
                    self._one(expression, facts, entities, context, out)

    def _contexts(self, given: str, facts: FactView, binding: Binding) -> Iterator[Binding]:
        if not given:
            return iter((binding,))
        return solve(self.query(given), facts, binding)

    def _one(self, expression: tuple, facts: FactView, entities, binding: Binding, out: list[str]) -> None:
        if expression[0] == "n":
            self._expand(expression[1], facts, entities, binding, out)
        else:
            code = _compiled(expression[1])
            variables = {ph[0]: entities[var] for ph, var in binding.items()}
            out.append(str(eval(code, {}, variables)))  # noqa: S307 - the game's own grammar, as TextWorld does

    def _expand(self, name: str, facts: FactView, entities, binding: Binding, out: list[str]) -> None:
        for condition, rhs in self.alternatives(name):
            if not condition or next(solve(condition, facts, binding), None) is not None:
                self._derive(rhs, facts, entities, binding, out)
                return
        raise IndexError(f"no rule of '#{name}#' applies")
