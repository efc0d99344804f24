"""A tiny randomly initialised causal LM with a word-level tokenizer, for CPU smoke and learning runs.

The vocabulary is every word and punctuation mark of the texts the model will read and write (the
env's prompts and expert replies), so nothing is unknown and nothing is downloaded. The result is
an ordinary `transformers` model directory: the trainer, `HFBackend` and `hiper-bench run` load it
like any hub model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

SPECIAL = ("<pad>", "<eos>", "<unk>")
TAG = re.compile(r"</?[A-Za-z_]\w*>")


def word_tokenizer(texts: Iterable[str]) -> PreTrainedTokenizerFast:
    """Word-level tokenizer over `texts`: words and runs of punctuation, joined by spaces on decode.

    Every markup tag of the texts (`<switch>`, `</action>`, ...) is one whole token, so a reply's
    format costs the model a handful of choices, not three tokens per tag. The parsers strip the
    spaces that decoding puts inside tag bodies.
    """
    texts = list(texts)
    splitter = pre_tokenizers.Whitespace()
    tags = sorted({tag for text in texts for tag in TAG.findall(text)})
    words = dict.fromkeys(w for text in texts for part in TAG.split(text) for w, _ in splitter.pre_tokenize_str(part))
    vocab = {token: i for i, token in enumerate([*SPECIAL, *sorted(words)])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = splitter
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with single spaces
    tok.add_tokens([AddedToken(tag, normalized=False) for tag in tags])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")


def build_tiny_model(config: dict[str, Any], texts: Iterable[str], out_dir: str | Path, seed: int) -> Path:
    """Save a random model of `config` (a `transformers` config dict with `model_type`) and a word
    tokenizer of `texts` to `out_dir`; returns the directory."""
    import torch

    tokenizer = word_tokenizer(texts)
    kwargs = dict(config)
    model_type = kwargs.pop("model_type", "gpt2")
    kwargs.setdefault("n_positions" if model_type == "gpt2" else "max_position_embeddings", 1024)
    if model_type == "gpt2":  # dropout off: rollouts and updates see the same policy
        kwargs.update(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model_config = AutoConfig.for_model(model_type, vocab_size=len(tokenizer), bos_token_id=tokenizer.eos_token_id,
                                        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                                        **kwargs)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(model_config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
