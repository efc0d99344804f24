"""In-process vLLM backend (GPU only). vllm is imported when the backend is built, never before."""

from __future__ import annotations

from collections.abc import Sequence

from agents.backends import BatchedBackend, Message


class VLLMBackend(BatchedBackend):
    """Batched chat generation with `vllm.LLM`; needs the `vllm` extra and a CUDA GPU.

    The episodes waiting for a reply at one moment go to vLLM in one `chat` call (`BatchedBackend`),
    which schedules them with its own continuous batching. For a server that many runs share, run
    `vllm serve` and use the `openai` backend instead.
    """

    def __init__(self, model: str, max_new_tokens: int = 128, temperature: float = 0.0, top_p: float = 1.0,
                 tensor_parallel_size: int = 1, gpu_memory_utilization: float = 0.9,
                 max_model_len: int | None = None):
        try:
            import vllm
        except ImportError as err:
            raise RuntimeError("the vllm backend needs `pip install 'hiper-bench[vllm]'` and a GPU") from err
        self.llm = vllm.LLM(model=model, tensor_parallel_size=tensor_parallel_size,
                            gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len)
        self.params = vllm.SamplingParams(max_tokens=max_new_tokens, temperature=temperature, top_p=top_p)

    def generate(self, conversations: Sequence[Sequence[Message]]) -> list[str]:
        outputs = self.llm.chat([list(c) for c in conversations], self.params, use_tqdm=False)
        return [out.outputs[0].text for out in outputs]
