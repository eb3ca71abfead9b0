"""Does workbench rate at a server's rate limit without a storm of 429s?

    python bench/bench_ratelimit.py [--rpm 3000] [--minutes 2] [--latency 0.05] [--concurrency 64] [--mode both]

Starts the OpenAI-compatible test server (tests/openai_server.py) as its own
process with an enforced limit of --rpm requests per minute (a sliding
one-minute window; every answer carries x-ratelimit-* headers; beyond the
limit it answers 429), imports enough generated words for --minutes at that
limit into a fresh SQLite store, and rates them with `run_rater`:

- declared: the rater says ``rpm: 3000`` in the study;
- headers:  the rater declares nothing and follows the server's headers.

For each it prints the sustained rate (requests answered per minute, over the
whole job) as a share of the limit (goal: 95% or more) and the share of
requests answered 429 (goal: under 1%), and writes JSON to
bench/results/ratelimit.json. A fresh server per mode, so each starts with an
empty window.
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
import urllib.request
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


def start_server(latency: float, rpm: int) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.openai_server", "--port", "0", "--latency", str(latency), "--rpm", str(rpm)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    line = proc.stdout.readline().strip()
    if not line.startswith("READY "):
        proc.kill()
        raise SystemExit(f"the test server did not start: {line!r}")
    return proc, line.split()[1]


def make_study(folder: Path, words: list[str], base_url: str, concurrency: int, rpm: int | None) -> LoadedStudy:
    (folder / "words.csv").write_text("word,fam\n" + "".join(f"{w},{1 + i % 7}\n" for i, w in enumerate(words)))
    rater = {
        "backend": "openai", "model": "gpt-4o-mini", "base_url": base_url, "api_key_env": KEY_ENV,
        "concurrency": concurrency, "timeout": 30, "max_retries": 10,
    }  # fmt: skip
    if rpm:
        rater["rpm"] = rpm
    study = {
        "study": "bench-ratelimit",
        "database": f"sqlite:///{folder / 'store.db'}",
        "dimensions": {"familiarity": {"scale": [1, 7], "step": 1}},
        "datasets": {"gold": {"file": "words.csv", "item_column": "word", "ratings": {"familiarity": "fam"}}},
        "raters": {"mini": rater},
    }
    (folder / "study.yaml").write_text(yaml.safe_dump(study, sort_keys=False))
    return load_study(folder / "study.yaml")


def run_mode(mode: str, args: argparse.Namespace) -> dict:
    n = int(args.rpm * args.minutes)
    words = [f"r{i:06d}" for i in range(n)]
    server, url = start_server(args.latency, args.rpm)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            loaded = make_study(Path(tmp), words, url + "/v1", args.concurrency, args.rpm if mode == "declared" else None)
            engine = connect(loaded.study.database)
            apply_study(engine, LoadedStudy(loaded.path, loaded.study.model_copy(update={"raters": {}})))
            start = time.perf_counter()
            report = run_rater(engine, loaded, "mini")
            elapsed = time.perf_counter() - start
            engine.dispose()
        with urllib.request.urlopen(url + "/_stats") as response:
            stats = json.loads(response.read())
    finally:
        server.kill()
    rated = report.counts["rated"]
    sent = stats["chat_requests"]
    per_minute = rated / elapsed * 60
    result = {
        "mode": mode, "items": n, "rated": rated, "seconds": round(elapsed, 1),
        "requests_sent": sent, "answered_429": stats["rate_limited"],
        "share_429": round(stats["rate_limited"] / max(1, sent), 4),
        "sustained_rpm": round(per_minute, 1), "share_of_limit": round(per_minute / args.rpm, 4),
    }  # fmt: skip
    print(
        f"{mode:>8}: {rated} of {n} rated in {elapsed:.1f} s = {per_minute:.0f} requests/min "
        f"({per_minute / args.rpm:.1%} of {args.rpm}; goal 95%), {stats['rate_limited']} of {sent} requests "
        f"answered 429 ({stats['rate_limited'] / max(1, sent):.2%}; goal under 1%)"
    )
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rpm", type=int, default=3000)
    ap.add_argument("--minutes", type=float, default=2.0)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--mode", choices=("declared", "headers", "both"), default="both")
    args = ap.parse_args()
    os.environ[KEY_ENV] = "sk-bench"
    modes = ("declared", "headers") if args.mode == "both" else (args.mode,)
    runs = [run_mode(mode, args) for mode in modes]
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared)",
        "rpm_limit": args.rpm, "minutes": args.minutes, "latency_s": args.latency, "concurrency": args.concurrency,
        "runs": runs, "goal": {"share_of_limit": 0.95, "share_429": 0.01},
    }  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ratelimit.json").write_text(json.dumps(result, indent=2) + "\n")
    ok = all(r["share_of_limit"] >= 0.95 and r["share_429"] < 0.01 for r in runs)
    print("goal met" if ok else "goal NOT met")


if __name__ == "__main__":
    main()
