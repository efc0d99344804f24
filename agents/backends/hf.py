"""transformers backend: batched greedy or sampled generation on CPU or GPU."""

from __future__ import annotations

from collections.abc import Sequence

from agents.backends import BatchedBackend, Message


def plain_chat(messages: Sequence[Message]) -> str:
    """Chat rendering for tokenizers that ship no chat template (base models)."""
    return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant: "


class HFBackend(BatchedBackend):
    """Loads `model` (a hub id or a local directory) with `from_pretrained` and generates in batches:
    the episodes waiting for a reply at one moment share a `generate` call (`BatchedBackend`),
    `batch_size` sequences at a time.

    Prompts are left-padded so a whole batch continues from its last token; `temperature=0` is
    greedy decoding, which makes evaluations repeatable. Sampling is from the softmax at
    `temperature`, cut only by `top_p`, as the vllm and openai backends sample: transformers' own
    default top-k of 50 is switched off (it made a trained checkpoint score 0.46 in evaluation
    against 0.64 for the distribution it was trained on).
    """

    def __init__(self, model: str, device: str = "cpu", dtype: str = "auto", max_new_tokens: int = 128,
                 temperature: float = 0.0, top_p: float = 1.0, batch_size: int = 8):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        torch_dtype = dtype if dtype == "auto" else getattr(torch, dtype)
        self.model = AutoModelForCausalLM.from_pretrained(model, dtype=torch_dtype).to(device).eval()
        self.device = device
        self.max_new_tokens = int(max_new_tokens)
        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self.batch_size = int(batch_size)

    def render(self, messages: Sequence[Message]) -> str:
        """The prompt text: the tokenizer's chat template when it has one."""
        if self.tokenizer.chat_template:
            return self.tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
        return plain_chat(messages)

    def generate(self, conversations: Sequence[Sequence[Message]], max_new_tokens: int | None = None) -> list[str]:
        """One reply per conversation, of at most `max_new_tokens` (default: the backend's).
        A prompt that leaves no room for them in the model's context raises ValueError."""
        new = self.max_new_tokens if max_new_tokens is None else int(max_new_tokens)
        texts = [self.render(c) for c in conversations]
        context = getattr(self.model.config, "max_position_embeddings", None) or float("inf")
        sampling = {"do_sample": True, "temperature": self.temperature, "top_p": self.top_p, "top_k": 0} \
            if self.temperature > 0 else {"do_sample": False}
        replies: list[str] = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(texts[start:start + self.batch_size], return_tensors="pt", padding=True,
                                   add_special_tokens=False).to(self.device)
            longest = int(batch["attention_mask"].sum(dim=1).max())
            if longest + new > context:
                raise ValueError(f"a prompt of {longest} tokens and {new} new ones exceed the model's context "
                                 f"of {context}")
            with self._torch.inference_mode():
                out = self.model.generate(**batch, max_new_tokens=new,
                                          pad_token_id=self.tokenizer.pad_token_id, **sampling)
            new_tokens = out[:, batch["input_ids"].shape[1]:]
            replies += self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        return replies
