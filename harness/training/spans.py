"""Which tokens of a plan-execute output belong to `<switch>`, `<subgoal>` and `<action>` (docs/envs.md).

HAE gives each part its own advantage (`losses.plan_execute_advantages`), so the trainer needs, per
response, boolean token masks of the three tag bodies. They come from one tokenizer call with the
fast tokenizer's character offsets: no decoding token by token.

The tag grammar follows `hiper_envs.wrappers.plan_execute.find_tag`, the one parser of the format
(case-insensitive tag names, spaces inside the brackets, a final tag left unclosed by the token limit
running to the end of its line); the tests check that both read the same bodies. A body's span is
stripped of surrounding whitespace; a token belongs to a body when any of its characters does, so
a token that straddles a tag and its body (`>KEEP` in a byte-level BPE) counts as body.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import Tensor

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

TAGS = ("switch", "subgoal", "action")

_BODY = {
    name: re.compile(
        rf"<\s*{name}\s*>(?P<body>(?:(?!<\s*/?\s*{name}\s*>).)*?)(?:(?P<close><\s*/\s*{name}\s*>)|$)",
        re.IGNORECASE | re.DOTALL,
    )
    for name in TAGS
}


def body_spans(text: str, name: str) -> list[tuple[int, int]]:
    """Character spans `[start, end)` of every `<name>` body in `text`, whitespace stripped."""
    spans = []
    for match in _BODY[name].finditer(text):
        start, end = match.span("body")
        if match.group("close") is None:  # unclosed: the body stops at the end of its line
            newline = text.find("\n", start, end)
            end = end if newline < 0 else newline
        body = text[start:end]
        start += len(body) - len(body.lstrip())
        end -= len(body) - len(body.rstrip())
        if end > start:
            spans.append((start, end))
    return spans


class TagTokens(NamedTuple):
    """Tokenized responses and, per tag, which tokens lie in its body; all [N, L]."""

    input_ids: Tensor
    attention_mask: Tensor
    switch: Tensor
    subgoal: Tensor
    action: Tensor


def tag_tokens(tokenizer: PreTrainedTokenizerFast, texts: list[str]) -> TagTokens:
    """Tokenize `texts` (no special tokens, padded) and mark the tokens of each tag body."""
    enc = tokenizer(
        texts, add_special_tokens=False, padding=True, return_offsets_mapping=True, return_tensors="pt"
    )
    offsets = enc["offset_mapping"].reshape(len(texts), -1, 2)  # [N, L, 2], also when L = 0
    return TagTokens(enc["input_ids"], enc["attention_mask"], **_body_masks(texts, offsets))


def response_tags(tokenizer: PreTrainedTokenizerFast, ids: list[int]) -> tuple[str, dict[str, Tensor]]:
    """The text of generated token `ids` (special tokens skipped) and, per tag, which of `ids` lie in
    its body ([L] bool each), for replies whose tokens come from a server rather than `tag_tokens`.

    Character offsets come from re-tokenizing the text when that gives the same ids back (the usual
    case); otherwise from decoding each prefix, which is slower but exact for any tokenizer.
    """
    special = set(tokenizer.all_special_ids)
    kept = [i for i, token in enumerate(ids) if token not in special]
    text = tokenizer.decode(ids, skip_special_tokens=True)
    offsets = torch.zeros(1, len(ids), 2, dtype=torch.long)  # special tokens: empty spans
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    if enc["input_ids"] == [ids[i] for i in kept]:
        offsets[0, kept] = torch.tensor(enc["offset_mapping"], dtype=torch.long).reshape(-1, 2)
    else:
        start = 0
        for i in kept:
            end = len(tokenizer.decode([ids[k] for k in kept if k <= i], skip_special_tokens=True))
            offsets[0, i] = torch.tensor([min(start, end), end])
            start = end
    return text, {name: mask[0] for name, mask in _body_masks([text], offsets).items()}


def _body_masks(texts: list[str], offsets: Tensor) -> dict[str, Tensor]:
    """Per tag, [N, L] bool: the tokens with character `offsets` [N, L, 2] that lie in a body.

    A token with character offsets [a, b) is in a body when the body covers one of its characters:
    with `inside[c]` the number of body characters before c, `inside[b] - inside[a] > 0`. Padding
    and special tokens have empty offsets and are in no body.
    """
    n_chars = max((len(t) for t in texts), default=0)
    masks = {}
    for name in TAGS:
        # +1 at each body start, -1 at its end, cumsum: 1 on body characters; cumsum again: counts
        edges = torch.zeros(len(texts), n_chars + 1, dtype=torch.long)
        for row, text in enumerate(texts):
            for start, end in body_spans(text, name):
                edges[row, start] += 1
                edges[row, end] -= 1
        covered = edges.cumsum(dim=1)[:, :-1].clamp(max=1)
        inside = torch.nn.functional.pad(covered.cumsum(dim=1), (1, 0))  # [N, n_chars + 1]
        masks[name] = (inside.gather(1, offsets[..., 1]) - inside.gather(1, offsets[..., 0])) > 0
    return masks
