"""Randomly initialised causal LMs with tokenizers learnt here, so training runs without downloads.

Two tokenizers, both learnt from the texts the model will read and write (the env's prompts and
expert replies): a word-level one for the tiny CPU models of smoke and learning runs, and a
byte-level BPE (the scheme of GPT-2 and Qwen) for models of a real architecture, as the GPU check
`bench/gpu_train.py` builds. The result is an ordinary `transformers` model directory: the
trainer, `HFBackend` and `hiper-bench run` load it like any hub model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

SPECIAL = ("<pad>", "<eos>", "<unk>")
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
"""The chat layout of Qwen2.5's template (roles between `<|im_start|>` and `<|im_end|>`), without its
system-prompt default."""
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


def bpe_tokenizer(texts: Iterable[str], vocab_size: int, total_size: int | None = None) -> PreTrainedTokenizerFast:
    """Byte-level BPE of at most `vocab_size` entries learnt from `texts`, with a ChatML template.

    `total_size` pads the vocabulary with filler tokens (`<|f123|>`, ordinary added tokens) up to a
    model's embedding rows, so a model of a real architecture (Qwen2.5: 151,936 rows) keeps its size,
    and any id it samples decodes to text that tokenizes back to the same id: a random model's
    replies are as long in the update as they were in generation.
    """
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                       show_progress=False))
    if total_size is not None and total_size > tok.get_vocab_size():
        tok.add_tokens([AddedToken(f"<|f{i}|>", normalized=False)
                        for i in range(total_size - tok.get_vocab_size())])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = CHATML
    return fast


def build_tiny_model(config: dict[str, Any], texts: Iterable[str], out_dir: str | Path, seed: int) -> Path:
    """Save a random model of `config` (a `transformers` config dict with `model_type`) and a word
    tokenizer of `texts` to `out_dir`; returns the directory."""
    return save_random_model(config, word_tokenizer(texts), out_dir, seed)


def save_random_model(config: dict[str, Any], tokenizer: PreTrainedTokenizerFast, out_dir: str | Path,
                      seed: int, dtype: str = "float32", device: str = "cpu") -> Path:
    """Save a randomly initialised model of `config` (a `transformers` config dict with `model_type`;
    `vocab_size` defaults to the tokenizer's) in `dtype`, with `tokenizer`, to `out_dir`. `device` is
    where the weights are drawn (a GPU draws a 1.5B model's in a second)."""
    import torch

    kwargs = dict(config)
    kwargs.setdefault("vocab_size", len(tokenizer))
    model_type = kwargs.pop("model_type", "gpt2")
    kwargs.setdefault("n_positions" if model_type == "gpt2" else "max_position_embeddings", 1024)
    if model_type == "gpt2":  # dropout off: rollouts and updates see the same policy
        kwargs.update(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model_config = AutoConfig.for_model(model_type, bos_token_id=tokenizer.eos_token_id,
                                        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                                        **kwargs)
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(model_config, dtype=getattr(torch, dtype))
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
