"""harness.training.spans: token masks of the plan-execute tag bodies, from offsets, on tokenizers built here."""

from __future__ import annotations

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from harness.training.spans import TAGS, body_spans, tag_tokens
from hiper_envs.wrappers.plan_execute import find_tag

CORPUS = [
    "<switch>SWITCH</switch>\n<subgoal>find the key</subgoal>\n<action>go north</action>",
    "<switch>KEEP</switch>\n<subgoal>find the key</subgoal>\n<action>take key from table</action>",
    "<switch>KEEP</switch><subgoal>open the door</subgoal><action>open door</action>",
]


def make_tokenizer(pre_tokenizer: pre_tokenizers.PreTokenizer, vocab_size: int) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizer
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<pad>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS * 20, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>")


@pytest.fixture(scope="module")
def byte_bpe() -> PreTrainedTokenizerFast:
    """GPT-2 style: punctuation and letters are split apart, so tags and bodies never share a token."""
    return make_tokenizer(pre_tokenizers.ByteLevel(add_prefix_space=False), 400)


@pytest.fixture(scope="module")
def merging_bpe() -> PreTrainedTokenizerFast:
    """Splits on whitespace only: merges such as `>KEEP</` straddle tags and bodies."""
    return make_tokenizer(pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.ByteLevel(
        add_prefix_space=False, use_regex=False)]), 330)


TEXTS = [
    CORPUS[0],
    "< Switch >keep</SWITCH>\n<action> open door </action>",  # lenient tags, no subgoal
    "no tags at all",
    "<switch>KEEP</switch>\n<subgoal>x</subgoal>\n<action>go north\nand then some",  # unclosed action
    "<action>go north</action><action>go south</action>",  # two actions: both marked
    "",
]


def test_body_spans_read_what_the_parser_reads() -> None:
    for text in TEXTS + CORPUS:
        for name in TAGS:
            bodies = [text[s:e] for s, e in body_spans(text, name)]
            assert bodies == [b for b in find_tag(text, name) if b], (text, name)


def token_text(tok: PreTrainedTokenizerFast, text: str, ids: torch.Tensor, mask: torch.Tensor) -> str:
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    offsets = enc["offset_mapping"]
    assert ids[: len(offsets)].tolist() == enc["input_ids"]
    return "".join(text[a:b] for (a, b), m in zip(offsets, mask.tolist(), strict=False) if m)


def test_masks_cover_exactly_the_bodies(byte_bpe: PreTrainedTokenizerFast) -> None:
    out = tag_tokens(byte_bpe, TEXTS)
    assert out.input_ids.shape == out.action.shape == out.attention_mask.shape
    expected = {
        "switch": ["SWITCH", "keep", "", "KEEP", "", ""],
        "subgoal": ["findthekey", "", "", "x", "", ""],  # token texts joined; spaces are in the tokens
        "action": ["gonorth", "opendoor", "", "gonorth", "gonorthgosouth", ""],
    }
    for name in TAGS:
        got = [
            token_text(byte_bpe, t, out.input_ids[i], getattr(out, name)[i]).replace(" ", "")
            for i, t in enumerate(TEXTS)
        ]
        assert got == expected[name], name
    # padding is in no body
    padding = ~out.attention_mask.bool()
    assert padding.any()
    for name in TAGS:
        assert not (getattr(out, name) & padding).any()


def test_straddling_tokens_count_as_body(merging_bpe: PreTrainedTokenizerFast) -> None:
    out = tag_tokens(merging_bpe, TEXTS)
    for i, text in enumerate(TEXTS):
        offsets = merging_bpe(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        for name in TAGS:
            spans = body_spans(text, name)
            in_body = [any(a < e and b > s for s, e in spans) for a, b in offsets]
            assert getattr(out, name)[i, : len(offsets)].tolist() == in_body
            # every body character is inside some marked token (this tokenizer drops whitespace)
            covered = {c for (a, b), m in zip(offsets, in_body, strict=True) if m for c in range(a, b)}
            assert all(c in covered for s, e in spans for c in range(s, e) if not text[c].isspace())
    straddles = any(
        "<" in text[a:b] and m
        for i, text in enumerate(TEXTS)
        for (a, b), m in zip(
            merging_bpe(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"],
            out.switch[i].tolist(),
            strict=False,
        )
    )
    assert straddles  # the case this tokenizer exists for did occur


def test_empty_batch(byte_bpe: PreTrainedTokenizerFast) -> None:
    out = tag_tokens(byte_bpe, [""])
    assert out.action.shape == out.input_ids.shape and not out.action.any()


@pytest.mark.parametrize("canonical", [True, False], ids=["as-tokenized", "other-split"])
def test_response_tags_mark_the_bodies_of_generated_ids(canonical):
    """A server's ids need not be the tokenizer's own split of the text (a model may spell a word in
    pieces): the masks still cover exactly the bodies, and an end-of-sequence id is in none."""
    from harness.training.spans import response_tags
    from harness.training.tiny import bpe_tokenizer

    tokenizer = bpe_tokenizer(CORPUS * 20, vocab_size=300)
    text = CORPUS[1]
    if canonical:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    else:  # every character its own token: still the same text
        ids = [i for ch in text for i in tokenizer(ch, add_special_tokens=False)["input_ids"]]
        assert ids != tokenizer(text, add_special_tokens=False)["input_ids"]
    decoded, masks = response_tags(tokenizer, ids + [tokenizer.eos_token_id])
    assert decoded == text
    for name, expected in (("switch", "KEEP"), ("subgoal", "find the key"), ("action", "take key from table")):
        mask = masks[name]
        assert not mask[-1]
        assert tokenizer.decode([i for i, m in zip(ids, mask[:-1].tolist(), strict=True) if m]) == expected
