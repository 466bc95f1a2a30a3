"""An OpenAI-compatible HTTP server in front of the scripted model, with injectable faults.

A raw ASGI app (no framework) on uvicorn + httptools + uvloop, with orjson and rules compiled at
start, so one core serves thousands of requests per second (benchmarks/bench_mock_llm.py).

    with MockLLMServer("rules.yaml") as url:      # url == "http://127.0.0.1:PORT/v1"
        client = OpenAIChatClient(url, "mock")
"""

from __future__ import annotations

import argparse
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import orjson

from shipyard.llm._scripted import Rules, ScriptedModel, load_rules, parse_rules
from shipyard.llm._types import CHAT_OPTIONS, ChatOptions, LLMError
from shipyard.llm._wire import completion_body, completion_chunks, error_body

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_JSON = [(b"content-type", b"application/json")]
_SSE = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
RECENT_REQUESTS = 100


class MockLLMApp:
    """The ASGI app: `POST /v1/chat/completions` (JSON or `stream: true` SSE), `POST /v1/embeddings`,
    `GET /v1/models`, `GET /health`. The request options the scripted model honours (`tool_choice`, `stop`,
    `parallel_tool_calls`) reach it; `recent` keeps the last request bodies, so a test can see what
    a client sent.

    Args:
        model: the scripted model that answers.
        error_rate: share of chat requests answered with HTTP 500 (OpenAI-style error JSON).
        rate_limit_rate: share of chat requests answered with HTTP 429 and `Retry-After`.
        retry_after_s: the `Retry-After` value sent with a 429.
        max_concurrent: a provider's capacity: a chat request that arrives while this many are being
            answered gets HTTP 429 and `Retry-After` (None: no limit). `peak` is the most answered at once.
        seed: seeds the fault dice, so a run can be repeated.
        model_name: the model id listed by `/v1/models` (responses echo the requested model).
    """

    def __init__(
        self,
        model: ScriptedModel,
        *,
        error_rate: float = 0.0,
        rate_limit_rate: float = 0.0,
        retry_after_s: float = 1.0,
        max_concurrent: int | None = None,
        seed: int | None = None,
        model_name: str = "mock",
    ) -> None:
        if max_concurrent is not None and max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        if not (0 <= error_rate <= 1 and 0 <= rate_limit_rate <= 1 and error_rate + rate_limit_rate <= 1):
            raise ValueError("error_rate and rate_limit_rate must be between 0 and 1 and add up to at most 1")
        self.model = model
        self.error_rate = error_rate
        self.rate_limit_rate = rate_limit_rate
        self.model_name = model_name
        self._rng = random.Random(seed)
        self._retry_after = str(
            int(retry_after_s) if float(retry_after_s).is_integer() else retry_after_s
        ).encode()
        self._models = orjson.dumps(
            {
                "object": "list",
                "data": [{"id": model_name, "object": "model", "created": 0, "owned_by": "shipyard"}],
            }
        )
        self.max_concurrent = max_concurrent
        self.active = 0  # chat requests being answered now
        self.peak = 0
        self.throttled = 0  # 429s sent for capacity
        self.requests = 0
        self.embedding_requests = 0
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT_REQUESTS)  # request bodies, newest last

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            return
        path: str = scope["path"]
        if path.startswith("/v1/"):
            path = path[3:]
        method = scope["method"]
        if path == "/chat/completions":
            if method != "POST":
                await _respond(send, 405, error_body("use POST", "invalid_request_error"))
                return
            await self._chat(receive, send)
        elif path == "/embeddings":
            if method != "POST":
                await _respond(send, 405, error_body("use POST", "invalid_request_error"))
                return
            await self._embeddings(receive, send)
        elif path == "/models" and method == "GET":
            await _respond(send, 200, self._models)
        elif path in ("/health", "/healthz") and method == "GET":
            await _respond(send, 200, b'{"status":"ok"}')
        else:
            await _respond(
                send,
                404,
                error_body(f"no route {method} {scope['path']}", "invalid_request_error", "not_found"),
            )

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _chat(self, receive: Receive, send: Send) -> None:
        self.requests += 1
        raw = await _read_body(receive)
        if self.max_concurrent is not None and self.active >= self.max_concurrent:
            self.throttled += 1
            await _respond(
                send,
                429,
                error_body(
                    f"injected fault: at most {self.max_concurrent} requests at once",
                    "requests",
                    "rate_limit_exceeded",
                ),
                extra=[(b"retry-after", self._retry_after)],
            )
            return
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await self._answer(raw, send)
        finally:
            self.active -= 1

    async def _answer(self, raw: bytes, send: Send) -> None:
        if self.error_rate or self.rate_limit_rate:
            r = self._rng.random()
            if r < self.error_rate:
                await _respond(
                    send,
                    500,
                    error_body("injected fault: the server had an error", "server_error", "mock_fault"),
                )
                return
            if r < self.error_rate + self.rate_limit_rate:
                await _respond(
                    send,
                    429,
                    error_body(
                        "injected fault: rate limit reached, retry later", "requests", "rate_limit_exceeded"
                    ),
                    extra=[(b"retry-after", self._retry_after)],
                )
                return
        try:
            req = orjson.loads(raw)
        except orjson.JSONDecodeError:
            await _respond(
                send, 400, error_body("the request body is not valid JSON", "invalid_request_error")
            )
            return
        problem = _check_request(req)
        if problem:
            await _respond(send, 400, error_body(problem[1], "invalid_request_error", None, problem[0]))
            return
        self.recent.append(req)
        tools = req.get("tools") or None
        options = cast(ChatOptions, {k: req[k] for k in CHAT_OPTIONS if k in req})
        try:
            resp = await self.model.chat(req["messages"], tools=tools, **options)
        except LLMError as e:  # an option the model refuses (e.g. a malformed tool_choice)
            await _respond(send, 400, error_body(str(e), "invalid_request_error"))
            return
        model = req.get("model") or self.model_name
        if req.get("stream"):
            await send({"type": "http.response.start", "status": 200, "headers": _SSE})
            chunks = completion_chunks(resp, model)
            for chunk in chunks[:-1]:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": chunks[-1], "more_body": False})
            return
        body = completion_body(resp, model)
        if req.get("logprobs") is True:  # as OpenAI: token log-probabilities only when asked
            body = _with_logprobs(body, resp.text or "")
        await _respond(send, 200, body)

    async def _embeddings(self, receive: Receive, send: Send) -> None:
        """`POST /v1/embeddings` (OpenAI's format): `input` a string or a list of strings; each gets
        a deterministic unit vector of hashed words and character trigrams (`mock_embedding`)."""
        self.embedding_requests += 1
        try:
            req = orjson.loads(await _read_body(receive))
        except orjson.JSONDecodeError:
            await _respond(
                send, 400, error_body("the request body is not valid JSON", "invalid_request_error")
            )
            return
        texts = req.get("input") if isinstance(req, dict) else None
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            await _respond(
                send,
                400,
                error_body(
                    "'input' must be a string or a non-empty array of strings",
                    "invalid_request_error",
                    None,
                    "input",
                ),
            )
            return
        data = [
            {"object": "embedding", "index": i, "embedding": mock_embedding(t)} for i, t in enumerate(texts)
        ]
        tokens = sum(len(t.split()) for t in texts)
        body = {
            "object": "list",
            "data": data,
            "model": req.get("model") or self.model_name,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        await _respond(send, 200, orjson.dumps(body))


EMBEDDING_DIMENSIONS = 256


def mock_embedding(text: str, dimensions: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """A deterministic unit vector for `text`: its lower-case words and character trigrams hashed
    (MurmurHash3) into `dimensions` signed buckets. Texts sharing words are close; it is a stand-in
    for a real embedding model in tests and demos, not a model of meaning."""
    import math

    import mmh3

    words = "".join(c if c.isalnum() else " " for c in text.casefold()).split()
    joined = " " + " ".join(words) + " "
    features = ["w:" + w for w in words] + [joined[i : i + 3] for i in range(len(joined) - 2)]
    v = [0.0] * dimensions
    for f in features:
        h = mmh3.hash(f)
        v[h % dimensions] += 1.0 if h & 0x40000000 else -1.0
    norm = math.sqrt(sum(x * x for x in v)) or 1.0
    return [x / norm for x in v]


def mock_logprob(token: str) -> float:
    """A token's made-up log-probability: fixed per token, between -2.5 and 0."""
    return -(zlib.crc32(token.encode()) % 1000) / 400


def _with_logprobs(body: bytes, text: str) -> bytes:
    """The completion with OpenAI's `logprobs.content` for its text (a token per word and space run)."""
    data = orjson.loads(body)
    tokens = re.findall(r"\s*\S+", text)
    data["choices"][0]["logprobs"] = {
        "content": [
            {"token": t, "logprob": mock_logprob(t), "bytes": list(t.encode()), "top_logprobs": []}
            for t in tokens
        ]
    }
    return orjson.dumps(data)


def _check_request(req: Any) -> tuple[str, str] | None:
    """(param, message) of the first problem in a chat request, or None."""
    if not isinstance(req, dict):
        return "body", "the request body must be a JSON object"
    messages = req.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages", "'messages' is required and must be a non-empty array of message objects"
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            return f"messages[{i}]", f"messages[{i}] must be an object with a 'role'"
    tools = req.get("tools")
    if tools is not None and not (isinstance(tools, list) and all(isinstance(t, dict) for t in tools)):
        return "tools", "'tools' must be an array of tool objects"
    return None


async def _read_body(receive: Receive) -> bytes:
    msg = await receive()
    body: bytes = msg.get("body", b"")
    if not msg.get("more_body"):
        return body
    parts = [body]
    while msg.get("more_body"):
        msg = await receive()
        parts.append(msg.get("body", b""))
    return b"".join(parts)


async def _respond(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [*_JSON, (b"content-length", str(len(body)).encode()), *(extra or ())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# running it --------------------------------------------------------------------------------------
RulesSource = Rules | dict[str, Any] | str | Path


def _as_rules(rules: RulesSource) -> Rules:
    if isinstance(rules, Rules):
        return rules
    if isinstance(rules, dict):
        return parse_rules(rules)
    return load_rules(rules)


def make_app(
    rules: RulesSource,
    *,
    latency_ms: float = 0.0,
    error_rate: float = 0.0,
    rate_limit_rate: float = 0.0,
    retry_after_s: float = 1.0,
    max_concurrent: int | None = None,
    seed: int | None = None,
    model_name: str = "mock",
) -> MockLLMApp:
    """The mock server's ASGI app for a rules file (or Rules, or a rules dict)."""
    model = ScriptedModel(_as_rules(rules), name=model_name, latency_ms=latency_ms)
    return MockLLMApp(
        model,
        error_rate=error_rate,
        rate_limit_rate=rate_limit_rate,
        retry_after_s=retry_after_s,
        max_concurrent=max_concurrent,
        seed=seed,
        model_name=model_name,
    )


def _uvicorn_server(app: MockLLMApp) -> Any:
    import uvicorn

    config = uvicorn.Config(
        app,
        http="httptools",
        loop="uvloop",
        lifespan="off",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=30,
        backlog=2048,
    )
    return uvicorn.Server(config)


def bind(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket (port 0: a free port chosen by the OS)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(app: MockLLMApp, sock: socket.socket) -> None:
    """Serve `app` on a bound socket until interrupted (blocking)."""
    _uvicorn_server(app).run(sockets=[sock])


class MockLLMServer:
    """Run the mock LLM server in a background thread (default) or a subprocess.

    Args:
        rules: a rules file path, a `Rules` object or a rules dict.
        host, port: where to listen; port 0 picks a free port.
        latency_ms, error_rate, rate_limit_rate, retry_after_s, max_concurrent, seed, model_name: as for
            `shipyard mock-llm`.
        subprocess: run in a child process (its own GIL and core; what benchmarks want).
        cpu: with `subprocess`, pin the child to this CPU.

    `with MockLLMServer("rules.yaml") as url:` gives `http://127.0.0.1:PORT/v1`.
    """

    def __init__(
        self,
        rules: RulesSource,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: float = 0.0,
        error_rate: float = 0.0,
        rate_limit_rate: float = 0.0,
        retry_after_s: float = 1.0,
        max_concurrent: int | None = None,
        seed: int | None = None,
        model_name: str = "mock",
        subprocess: bool = False,
        cpu: int | None = None,
    ) -> None:
        self.rules = rules
        self.host = host
        self.port = port
        self.options: dict[str, Any] = {
            "latency_ms": latency_ms,
            "error_rate": error_rate,
            "rate_limit_rate": rate_limit_rate,
            "retry_after_s": retry_after_s,
            "max_concurrent": max_concurrent,
            "seed": seed,
            "model_name": model_name,
        }
        self.use_subprocess = subprocess
        self.cpu = cpu
        self.app: MockLLMApp | None = None
        self.process: Any = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    @property
    def url(self) -> str:
        """The API root, `http://HOST:PORT/v1`."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    @property
    def pid(self) -> int:
        """The process serving requests (the child's pid in subprocess mode)."""
        return self.process.pid if self.process is not None else os.getpid()

    def start(self, timeout_s: float = 15.0) -> str:
        """Start serving; returns `url` once the server answers. A bad rules file raises ConfigError
        here, in the caller's process, in both modes."""
        app = make_app(self.rules, **self.options)
        sock = self._sock = bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        if self.use_subprocess:
            self._start_process(sock)
        else:
            self.app = app
            self._server = _uvicorn_server(app)
            self._thread = threading.Thread(
                target=self._server.run, kwargs={"sockets": [sock]}, name=f"mock-llm:{self.port}", daemon=True
            )
            self._thread.start()
        self._wait_ready(timeout_s)
        return self.url

    def _start_process(self, sock: socket.socket) -> None:
        rules = self.rules
        if isinstance(rules, Rules):
            rules = rules.model_dump(mode="json", exclude_unset=True)
        arg = orjson.dumps(rules).decode() if isinstance(rules, dict) else str(Path(rules).resolve())
        o = self.options
        cmd = [
            sys.executable,
            "-c",
            "from shipyard.llm._mockserver import _main; _main()",
            "--fd",
            str(sock.fileno()),
            "--rules",
            arg,
            "--latency-ms",
            str(o["latency_ms"]),
            "--error-rate",
            str(o["error_rate"]),
            "--rate-limit-rate",
            str(o["rate_limit_rate"]),
            "--retry-after",
            str(o["retry_after_s"]),
            "--model-name",
            o["model_name"],
        ]
        if o["seed"] is not None:
            cmd += ["--seed", str(o["seed"])]
        if o["max_concurrent"] is not None:
            cmd += ["--max-concurrent", str(o["max_concurrent"])]
        if self.cpu is not None:
            cmd += ["--cpu", str(self.cpu)]
        self.process = subprocess.Popen(cmd, pass_fds=(sock.fileno(),))

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"mock LLM server exited with code {self.process.returncode}")
            if self._server is not None and self._server.started:
                return
            if self.process is not None:
                try:
                    with socket.create_connection((self.host, self.port), timeout=0.5) as c:
                        c.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                        if c.recv(16).startswith(b"HTTP/1.1 200"):
                            return
                except OSError:
                    pass
            time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"mock LLM server did not start within {timeout_s}s")

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.should_exit = True
            if self._thread is not None:
                self._thread.join(10)
            self._server = None
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _main(argv: list[str] | None = None) -> None:
    """Child-process entry of MockLLMServer(subprocess=True): serve on an inherited socket."""
    p = argparse.ArgumentParser(prog="mock-llm-child")
    p.add_argument("--fd", type=int, required=True)
    p.add_argument("--rules", required=True, help="a rules file path, or rules as JSON")
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--error-rate", type=float, default=0.0)
    p.add_argument("--rate-limit-rate", type=float, default=0.0)
    p.add_argument("--retry-after", type=float, default=1.0)
    p.add_argument("--max-concurrent", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--model-name", default="mock")
    p.add_argument("--cpu", type=int, default=None)
    a = p.parse_args(argv)
    if a.cpu is not None:
        os.sched_setaffinity(0, {a.cpu})
    rules: RulesSource = orjson.loads(a.rules) if a.rules.lstrip().startswith("{") else a.rules
    app = make_app(
        rules,
        latency_ms=a.latency_ms,
        error_rate=a.error_rate,
        rate_limit_rate=a.rate_limit_rate,
        retry_after_s=a.retry_after,
        max_concurrent=a.max_concurrent,
        seed=a.seed,
        model_name=a.model_name,
    )
    serve(app, socket.socket(fileno=a.fd))
