"""How fast does the CLI start? `workbench --help` and `workbench status` on a small store.

    python bench/bench_startup.py [--repeat 15]

Each command runs as a fresh process, as a user runs it (the `workbench`
console script beside this Python, else `python -m workbench.cli.main`),
against `python -c pass` as the baseline, interleaved in the same run so
the machine's load hits all three alike. The store: a SQLite file with one
imported dataset (300 items, 2 raters). Goals: `--help` under 0.3 s,
`status` under 1 s (absolute wall time, median), which is only meaningful
together with the baseline on a loaded machine.

Prints the medians and minimums, the ratios to the baseline, and appends a
JSON line to bench/results/startup.jsonl.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
GOALS = {"help": 0.3, "status": 1.0}


def workbench_command() -> list[str]:
    script = Path(sys.executable).with_name("workbench")
    if script.exists() and not os.environ.get("PYTHONPATH"):
        return [str(script)]
    return [sys.executable, "-m", "workbench.cli.main"]


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr.strip()}")
    return took


def make_store(folder: Path, env: dict[str, str]) -> str:
    csv = folder / "norms.csv"
    csv.write_text("Word,FAM_Glas,FAM_MRC\n" + "".join(f"word{i},{1 + i % 7},{1 + (i * 3) % 7}\n" for i in range(300)))
    url = f"sqlite:///{folder / 'store.db'}"
    cmd = [*workbench_command(), "import", str(csv), "--dataset", "toolbox", "--preset", "glasgow_mrc", "--db", url]
    subprocess.run(cmd, cwd=folder, env=env, check=True, capture_output=True)
    return url


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    wb = workbench_command()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = make_store(folder, env)
        commands = {
            "baseline": [sys.executable, "-c", "pass"],
            "help": [*wb, "--help"],
            "status": [*wb, "status", "--db", url],
        }
        for cmd in commands.values():  # warm the file cache
            timed(cmd, folder, env)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.repeat):
            for name, cmd in commands.items():
                times[name].append(timed(cmd, folder, env))
    median = {n: statistics.median(t) for n, t in times.items()}
    best = {n: min(t) for n, t in times.items()}
    print(f"{'command':10} {'median s':>9} {'min s':>7} {'x baseline':>11}  goal")
    for name in commands:
        ratio = median[name] / median["baseline"]
        goal = GOALS.get(name)
        verdict = "" if goal is None else f"< {goal} s: {'met' if median[name] < goal else 'NOT met'}"
        print(f"{name:10} {median[name]:9.3f} {best[name]:7.3f} {ratio:11.2f}  {verdict}")
    RESULTS.mkdir(exist_ok=True)
    record = {
        "bench": "startup",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": platform.node(),
        "cpus": os.cpu_count(),
        "load": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "repeat": args.repeat,
        "median_s": median,
        "min_s": best,
        "goals_s": GOALS,
    }
    with (RESULTS / "startup.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
