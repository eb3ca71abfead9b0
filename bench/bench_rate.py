"""How fast does workbench rate words against a server with 50 ms latency per call?

    python bench/bench_rate.py [--words 5000] [--latency 0.05] [--concurrency 64] [--sequential 200]

Starts the OpenAI-compatible test server (tests/openai_server.py) as its own
process, imports N generated words into a fresh SQLite store, and times:

(a) workbench: `run_rater` with the openai backend at the given concurrency,
    end to end (requests, read-out, call log and ratings committed);
(b) a sequential loop, what the public norming scripts do: the official
    `openai` client, one `chat.completions.create` per word, in a for loop
    (on the first --sequential words; its rate does not depend on N);
(c) for reference, the transport's ceiling on this machine: a bare aiohttp
    loop at the same concurrency that only sends and reads (no read-out, no
    store), against the same server.

It prints words/second for both, the ratio (goal: at least 40x) and workbench's
share of the bound concurrency / latency (goal: at least 80%), and writes JSON
to bench/results/rate.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from workbench.store import connect  # noqa: E402
from workbench.study.apply import apply_study  # noqa: E402
from workbench.study.load import LoadedStudy, load_study  # noqa: E402
from workbench.study.rate import run_rater  # noqa: E402

RESULTS = ROOT / "bench" / "results"
KEY_ENV = "BENCH_OPENAI_KEY"


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.openai_server", "--port", "0", "--latency", str(latency)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    line = proc.stdout.readline().strip()
    if not line.startswith("READY "):
        proc.kill()
        raise SystemExit(f"the test server did not start: {line!r}")
    return proc, line.split()[1] + "/v1"


def make_study(folder: Path, words: list[str], base_url: str, concurrency: int) -> LoadedStudy:
    (folder / "words.csv").write_text("word,fam\n" + "".join(f"{w},{1 + i % 7}\n" for i, w in enumerate(words)))
    study = {
        "study": "bench-rate",
        "database": f"sqlite:///{folder / 'store.db'}",
        "dimensions": {"familiarity": {"scale": [1, 7], "step": 1}},
        "datasets": {"gold": {"file": "words.csv", "item_column": "word", "ratings": {"familiarity": "fam"}}},
        "raters": {
            "mini": {
                "backend": "openai", "model": "gpt-4o-mini", "base_url": base_url, "api_key_env": KEY_ENV,
                "concurrency": concurrency, "timeout": 30,
            }
        },
    }  # fmt: skip
    (folder / "study.yaml").write_text(yaml.safe_dump(study, sort_keys=False))
    return load_study(folder / "study.yaml")


def sequential(base_url: str, words: list[str], prompt) -> float:
    """Words per second of the public scripts' loop: one blocking request per word."""
    import openai

    client = openai.OpenAI(api_key=os.environ[KEY_ENV], base_url=base_url, max_retries=0)
    start = time.perf_counter()
    for word in words:
        response = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": prompt.render(word)}],
            max_tokens=5, temperature=0, logprobs=True, top_logprobs=20,
        )  # fmt: skip
        assert response.choices[0].logprobs.content[0].top_logprobs
    return len(words) / (time.perf_counter() - start)


def transport_ceiling(base_url: str, words: list[str], prompt, concurrency: int) -> float:
    """Words per second of a bare aiohttp loop: requests sent and bodies read, nothing else."""
    import asyncio

    import aiohttp

    url = base_url + "/chat/completions"
    bodies = [json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt.render(w)}],
                          "max_tokens": 5, "temperature": 0, "logprobs": True, "top_logprobs": 20}).encode() for w in words]  # fmt: skip

    async def run() -> float:
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector, headers={"Authorization": "Bearer x"}) as session:
            queue = list(bodies)

            async def worker() -> None:
                while queue:
                    body = queue.pop()
                    async with session.post(url, data=body) as response:
                        await response.read()

            start = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return len(bodies) / (time.perf_counter() - start)

    return asyncio.run(run())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--words", type=int, default=5000)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--sequential", type=int, default=200, help="words for the sequential loop")
    args = ap.parse_args()
    os.environ[KEY_ENV] = "sk-bench"
    words = [f"w{i:06d}" for i in range(args.words)]
    server, base_url = start_server(args.latency)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            loaded = make_study(folder, words, base_url, args.concurrency)
            engine = connect(loaded.study.database)
            apply_study(engine, LoadedStudy(loaded.path, loaded.study.model_copy(update={"raters": {}})))
            start = time.perf_counter()
            report = run_rater(engine, loaded, "mini")
            elapsed = time.perf_counter() - start
            assert report.counts["rated"] == args.words, report.counts
            from sqlalchemy.orm import Session

            from workbench.study.rate import resolve

            with Session(engine) as s:
                prompt = resolve(s, loaded, "mini").prompt
            engine.dispose()
            seq_rate = sequential(base_url, words[: args.sequential], prompt)
            ceiling = transport_ceiling(base_url, words, prompt, args.concurrency)
    finally:
        server.kill()
    rate = args.words / elapsed
    bound = args.concurrency / args.latency
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "words": args.words, "latency_s": args.latency, "concurrency": args.concurrency,
        "workbench_seconds": round(elapsed, 2), "workbench_words_per_s": round(rate, 1),
        "sequential_words": args.sequential, "sequential_words_per_s": round(seq_rate, 2),
        "speedup": round(rate / seq_rate, 1), "bound_words_per_s": bound, "share_of_bound": round(rate / bound, 3),
        "bare_aiohttp_words_per_s": round(ceiling, 1), "share_of_bare_aiohttp": round(rate / ceiling, 3),
        "goal": {"speedup": 40, "share_of_bound": 0.8},
    }  # fmt: skip
    print(f"workbench, concurrency {args.concurrency}: {args.words} words in {elapsed:.2f} s = {rate:.0f} words/s")
    print(f"sequential loop (openai client):     {seq_rate:.1f} words/s")
    print(f"bare aiohttp loop, same server:      {ceiling:.0f} words/s ({ceiling / bound:.0%} of the bound: this machine's ceiling)")
    print(
        f"speed-up: {rate / seq_rate:.1f}x (goal 40x); share of the bound {bound:.0f}/s: {rate / bound:.0%} (goal 80%); "
        f"share of the bare loop: {rate / ceiling:.0%}"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "rate.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
