"""LLM backends: `hf` through the real from_pretrained path on a tiny random model, the `openai` client
against `hiper-bench serve` over real HTTP (and against a flaky server), `vllm` imported lazily."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agents.backends import make_backend
from agents.backends.openai import OpenAIBackend, ReplyError

CHAT = [[{"role": "system", "content": "you act"}, {"role": "user", "content": "go to desk 1 or take key"}],
        [{"role": "user", "content": "search for red shoes"}]]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A randomly initialised 1-layer Llama and a word-level tokenizer, saved like any hub model."""
    pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    words.train_from_iterator(
        ["go to desk 1", "take key from desk 1", "search for red shoes", "<switch>KEEP</switch> <action> look </action>",
         "user: system: assistant: you act"],
        trainers.WordLevelTrainer(special_tokens=["[UNK]", "[PAD]", "[EOS]"]))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=words, unk_token="[UNK]", pad_token="[PAD]", eos_token="[EOS]")
    tokenizer.chat_template = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                               "{% if add_generation_prompt %}assistant: {% endif %}")
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=4096,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    path = tmp_path_factory.mktemp("tiny-llm")
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def hf(tiny_model):
    return make_backend("hf", model=tiny_model, max_new_tokens=6, batch_size=2)


def test_hf_backend_generates_a_batch_greedily(hf):
    first = hf.generate(CHAT)
    assert len(first) == 2 and all(isinstance(r, str) for r in first)
    assert hf.generate(CHAT) == first  # greedy: repeatable
    assert hf.generate(CHAT[:1]) == first[:1]  # left padding: a prompt's reply does not depend on its batch


@pytest.fixture(scope="module")
def served(hf):
    from agents.backends.server import make_server

    server = make_server(hf, "tiny", port=0, batch_size=4)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    yield f"http://{host}:{port}/v1"
    server.shutdown()
    server.server_close()


def test_openai_client_against_hiper_bench_serve(served, hf):
    import httpx

    assert httpx.get(f"{served}/models").json()["data"][0]["id"] == "tiny"
    client = OpenAIBackend(served, "tiny", concurrency=4)
    conversations = CHAT * 3  # six requests in flight at once: the server batches them
    assert client.generate(conversations) == hf.generate(conversations)
    bad = httpx.post(f"{served}/chat/completions", json={"model": "tiny", "messages": "hi"})
    assert bad.status_code == 400 and "messages" in bad.json()["error"]["message"]
    assert httpx.post(f"{served}/chat/completions", content=b"{not json").status_code == 400


def test_react_and_hiper_agents_drive_the_served_model(served):
    import fakeenv  # noqa: F401
    import gymnasium as gym

    from agents import make_agent
    from hiper_envs.wrappers import PlanExecute

    for name in ("react", "hiper"):
        agent = make_agent(name, fakeenv.ENV_ID, backend="openai",
                           backend_kwargs={"base_url": served, "model": "tiny"})
        env = gym.make("fakeenv:Fake/Corridor-v0")
        env = PlanExecute(env) if agent.wrappers else env
        obs, info = env.reset(options={"task_id": "test-0"})
        agent.reset(info["task"], info)
        for _ in range(3):  # a random model's replies: the episode must go on, with invalid actions counted
            obs, reward, term, trunc, info = env.step(agent.act(obs, info))
            assert isinstance(obs, str) and info["action_valid"] in (True, False)
        assert len(agent.history.pairs) == 2  # the window keeps the last k = 2 pairs


class Flaky(BaseHTTPRequestHandler):
    """Answers 503 and 429 before a good reply, to exercise retries with backoff."""

    calls = 0

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        Flaky.calls += 1
        status = {1: 503, 2: 429}.get(Flaky.calls, 200)
        body = json.dumps({"choices": [{"message": {"content": "ok"}}]} if status == 200 else {}).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_openai_client_retries_transient_errors_then_gives_up():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        assert OpenAIBackend(url, "m", backoff=0.01, max_retries=3).generate(CHAT[:1]) == ["ok"]
        assert Flaky.calls == 3
        Flaky.calls = 0
        with pytest.raises(ReplyError, match="429"):
            OpenAIBackend(url, "m", backoff=0.01, max_retries=1).generate(CHAT[:1])
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(Exception, match="Connect|connect|refused"):  # nothing listens there any more
        OpenAIBackend(url, "m", backoff=0.01, max_retries=1, timeout=2).generate(CHAT[:1])


def test_vllm_backend_is_lazy_and_says_what_it_needs():
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match="vllm extra|hiper-bench\\[vllm\\]"):
            make_backend("vllm", model="any")
    else:
        pytest.skip("vllm is installed: this machine would load a real model")
    with pytest.raises(ValueError, match="unknown backend"):
        make_backend("llamacpp")


def test_hf_sampling_draws_from_the_whole_softmax(tmp_path):
    """Regression: sampling went through transformers' default top-k of 50, so evaluations drew from
    another distribution than the vllm/openai backends and than RL rollouts (a trained checkpoint
    scored 0.46 instead of 0.64). A random model over 200 words, 400 one-token draws: top-k 50 would
    allow at most 50 distinct words."""
    from harness.training.tiny import build_tiny_model

    words = [f"w{i}" for i in range(200)]
    model_dir = build_tiny_model({"model_type": "gpt2", "n_embd": 16, "n_layer": 1, "n_head": 2}, [" ".join(words)],
                                 tmp_path / "m", 0)
    backend = make_backend("hf", model=str(model_dir), max_new_tokens=1, temperature=1.0, batch_size=200)
    replies = backend.generate([[{"role": "user", "content": "w1 w2"}]] * 400)
    assert len({r.strip() for r in replies} - {""}) > 50


def test_a_batched_backend_fails_only_the_conversation_it_cannot_take():
    import asyncio

    from agents.backends import BatchedBackend

    class Picky(BatchedBackend):
        def __init__(self):
            self.calls = []

        def generate(self, conversations):
            self.calls.append(len(conversations))
            if any(c[-1]["content"] == "bad" for c in conversations):
                raise ValueError("cannot take it")
            return [c[-1]["content"].upper() for c in conversations]

    backend = Picky()

    async def together():
        asks = [backend.complete([{"role": "user", "content": text}]) for text in ("a", "bad", "c")]
        return await asyncio.gather(*asks, return_exceptions=True)

    a, bad, c = asyncio.run(together())
    assert (a, c) == ("A", "C") and isinstance(bad, ValueError)
    assert backend.calls == [3, 1, 1, 1]  # one batch, then each on its own


def test_a_batched_backend_moves_between_event_loops_without_losing_a_task(caplog):
    """Training alternates the rollout pool's loop with an evaluation pool's: the batching task left on
    the idle loop must end when that loop runs again, not be garbage-collected while pending."""
    import asyncio
    import gc
    import logging

    from agents.backends import BatchedBackend

    class Echo(BatchedBackend):
        def generate(self, conversations):
            return [c[-1]["content"] for c in conversations]

    backend = Echo()
    ask = [{"role": "user", "content": "hi"}]
    rollout_loop, eval_loop = asyncio.new_event_loop(), asyncio.new_event_loop()
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        assert rollout_loop.run_until_complete(backend.complete(ask)) == "hi"
        assert eval_loop.run_until_complete(backend.complete(ask)) == "hi"
        gc.collect()
        assert rollout_loop.run_until_complete(backend.complete(ask)) == "hi"
        for loop in (rollout_loop, eval_loop):
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()
        gc.collect()
    assert "destroyed but it is pending" not in caplog.text
