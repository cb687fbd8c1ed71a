"""A real llama.cpp server for tests: a tiny random-weight LLaMA model and ``python -m llama_cpp.server``.

The model is generated on the spot with the ``gguf`` package: 2 layers, 64-wide, a 256-token context, and
the LLaMA tokenizer vocabulary that ships inside the llama-cpp-python sdist
(``vendor/llama.cpp/models/ggml-vocab-llama-spm.gguf``; ``.ci/llama-venv`` keeps it next to its venv's
python, ``LLM_OTEL_LLAMA_VOCAB`` points elsewhere). No model is downloaded. The weights come from a fixed
seed and decoding is greedy, so a request gives the same answer every time. The output rows of the special
and byte tokens are zero, so the model writes ordinary text pieces (valid UTF-8) and rarely stops early.

The server listens on a free 127.0.0.1 port and is stopped by its PID.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

VOCAB_NAME = "ggml-vocab-llama-spm.gguf"
#: llama.cpp rounds a context size up to a multiple of 256.
CONTEXT = 256
CHAT_MODEL = "tiny-llama"
EMBEDDING_MODEL = "tiny-llama-embed"
#: Special (unk, bos, eos) and byte tokens (<0x00>..<0xFF>) of the LLaMA SentencePiece vocabulary.
_SPECIAL_AND_BYTE_TOKENS = 3 + 256


def vocab_path() -> Path:
    """Where the LLaMA vocabulary is expected (it may not exist)."""
    given = os.environ.get("LLM_OTEL_LLAMA_VOCAB")
    return Path(given) if given else Path(sys.prefix) / VOCAB_NAME


def unavailable() -> str | None:
    """Why the real-server suite cannot run here, or None."""
    missing = [name for name in ("llama_cpp", "gguf", "numpy") if importlib.util.find_spec(name) is None]
    if not missing and importlib.util.find_spec("llama_cpp.server") is None:
        missing.append("llama_cpp.server")
    if not missing:
        for extra in ("fastapi", "uvicorn", "sse_starlette", "pydantic_settings", "starlette_context"):
            if importlib.util.find_spec(extra) is None:
                missing.append(extra)
    if missing:
        return (
            f"llama-cpp-python[server] and gguf are not installed ({', '.join(missing)} not importable); "
            "`bash .ci/llama-venv` builds a venv with them (a source build: a C++ compiler and cmake)"
        )
    if not vocab_path().is_file():
        return (
            f"the LLaMA vocabulary {vocab_path()} is missing: `bash .ci/llama-venv` extracts it from the "
            "llama-cpp-python sdist (or set LLM_OTEL_LLAMA_VOCAB)"
        )
    return None


def write_tiny_llama(path: Path, vocab: Path, *, seed: int = 0) -> Path:
    """A 2-layer LLaMA model with random weights and the vocabulary's tokenizer, written to ``path``."""
    import gguf
    import numpy as np

    reader = gguf.GGUFReader(vocab)
    writer = gguf.GGUFWriter(path, "llama")
    n_vocab = 0
    for name, field in reader.fields.items():
        if not name.startswith("tokenizer."):
            continue
        value = field.contents()
        if field.types[0] == gguf.GGUFValueType.ARRAY:
            writer.add_key_value(name, value, field.types[0], sub_type=field.types[-1])
            if name == "tokenizer.ggml.tokens":
                n_vocab = len(value)
        else:
            writer.add_key_value(name, value, field.types[0])
    n_embd, n_ff, n_head, n_layer = 64, 128, 4, 2
    writer.add_name("llm-otel tiny random llama")
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head)
    writer.add_rope_dimension_count(n_embd // n_head)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_pooling_type(gguf.PoolingType.MEAN)  # one vector per input on the embeddings endpoint
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)

    rng = np.random.default_rng(seed)

    def weights(*shape: int, scale: float) -> Any:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    # numpy shapes are ggml's dimensions reversed: (rows = outputs, columns = inputs)
    writer.add_tensor("token_embd.weight", weights(n_vocab, n_embd, scale=1.0))
    for i in range(n_layer):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        for part in ("q", "k", "v", "output"):
            writer.add_tensor(f"blk.{i}.attn_{part}.weight", weights(n_embd, n_embd, scale=0.1))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", weights(n_ff, n_embd, scale=0.1))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", weights(n_ff, n_embd, scale=0.1))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", weights(n_embd, n_ff, scale=0.1))
    writer.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    output = weights(n_vocab, n_embd, scale=1.0)
    output[:_SPECIAL_AND_BYTE_TOKENS] = 0.0  # logit 0 against ~N(0, 64): ordinary text pieces win
    writer.add_tensor("output.weight", output)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class LlamaServer:
    """``python -m llama_cpp.server`` serving the model under two names: for chat and for embeddings."""

    def __init__(self, model: Path, workdir: Path) -> None:
        self.model = model
        self.workdir = workdir
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.log_path = workdir / "llama-server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def config(self) -> dict[str, Any]:
        common = {
            "model": str(self.model),
            "n_ctx": CONTEXT,
            "seed": 0,
            "n_threads": 1,
            "n_threads_batch": 1,
            "chat_format": "llama-2",
            "use_mmap": False,
            "use_mlock": False,
            "verbose": False,
        }
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "models": [
                {**common, "model_alias": CHAT_MODEL},
                {**common, "model_alias": EMBEDDING_MODEL, "embedding": True},
            ],
        }

    def start(self, timeout: float = 120.0) -> None:
        config = self.workdir / "llama-server.json"
        config.write_text(json.dumps(self.config()))
        # The server reads its settings from the environment too (HOST, PORT, MODEL, ...): give it none.
        env = {k: os.environ[k] for k in ("PATH", "HOME", "TMPDIR", "LANG") if k in os.environ}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "llama_cpp.server", "--config_file", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.workdir,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {self.process.returncode}:\n{self.log()}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.base_url}/models", timeout=5) as reply,
            ):
                if reply.status == 200:
                    return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"llama_cpp.server did not answer within {timeout:.0f} s:\n{self.log()}")
            time.sleep(0.2)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)

    def log(self, tail: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""


@contextlib.contextmanager
def running_server(workdir: Path) -> Iterator[LlamaServer]:
    model = write_tiny_llama(workdir / "tiny-llama.gguf", vocab_path())
    server = LlamaServer(model, workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
