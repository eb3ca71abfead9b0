"""Adaptive campaigns in rounds against a real Label Studio: each round a new set of lists, a round refused while the
previous one is open, the hybrid recomputed from each pull, `annotate status` showing rounds and the budget."""

from __future__ import annotations

import re

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

import tests.test_stack  # noqa: F401  (registers the noisy-gold backend the prior uses)
from tests.labelstudio import CuttingProxy
from tests.test_annotate import annotators, ls_server, project_tasks, work_through  # noqa: F401  (fixtures)
from tests.test_stack import gold_of
from workbench.cli.main import app
from workbench.store import connect
from workbench.store.models import Campaign, CampaignList, CampaignTask, Rater, Rating

N = 60


def invoke(*args: str, code: int = 0):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, (result.output, result.exception)
    return result.output


def _study(folder, db_url: str, url: str, list_size: int = 10) -> str:
    (folder / "gold.csv").write_text("word,fam\n" + "".join(f"w{i:03d},{gold_of(i)}\n" for i in range(N)), encoding="utf-8")
    study = {
        "study": "rounds" + folder.name[-6:].replace("_", ""),
        "database": db_url,
        "dimensions": {"familiarity": {"scale": [1, 7], "instructions": "Rate how familiar the word is, 1 to 7."}},
        "datasets": {"gold": {"file": "gold.csv", "item_column": "word", "ratings": {"familiarity": "fam"}}},
        "item_sets": {"calib": {"from": "gold", "sample": 25, "seed": 1}, "to_rate": {"from": "gold", "exclude": "calib"}},
        "raters": {"a": {"backend": "noisy-gold", "noise": 0.8, "seed": 1}},
        "hybrids": {"h": {"prior": "a", "calibration": "calib", "gold": "gold", "humans": "pilot", "items": "to_rate"}},
        "campaigns": {"pilot": {
            "items": "to_rate", "raters_per_item": 2, "list_size": list_size, "server": {"url": url, "api_key_env": "TEST_LS_KEY"},
            "adaptive": {"hybrid": "h", "target_half_width": 0.3, "budget": 50, "first_sample": 4, "first_uncertain": 4, "max_per_word": 4},
        }},
    }  # fmt: skip
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False), encoding="utf-8")
    return str(path)


def test_an_adaptive_campaign_runs_in_rounds(tmp_path, ls_server, annotators, db_url, monkeypatch):  # noqa: F811
    monkeypatch.setenv("TEST_LS_KEY", ls_server.token)
    study = _study(tmp_path, db_url, ls_server.url)
    invoke("apply", "--study", study)
    status = invoke("annotate", "status", "pilot", "--study", study)
    assert "Rounds of pilot: 0; ratings spent 0 of a budget of 50; words settled 0, open 35." in status
    out = invoke("annotate", "round", "pilot", "--study", study)
    assert "round 1: 8 words x 2 ratings" in out
    engine = connect(db_url)
    with Session(engine) as s:
        camp = s.scalar(select(Campaign).where(Campaign.name == "pilot.round1"))
        projects = [cl.project_id for cl in camp.lists]
    assert len(projects) == 1 and camp.config["raters_per_item"] == 2
    # the next round is refused while this one is open
    err = invoke("annotate", "round", "pilot", "--study", study, code=1)
    assert "round 1 of pilot is still open (8 words short of 2 ratings)" in err
    for person in annotators[:2]:
        work_through(person, projects[0], lambda word: max(1, min(7, round(gold_of(int(word[1:]))))))
    out = invoke("annotate", "round", "pilot", "--pull", "--study", study)
    assert "hybrid h: 8 words with human ratings, 27 machine only" in out
    with Session(engine) as s:
        ns = s.scalars(select(Rating.n).join(Rater, Rater.id == Rating.rater_id).where(Rater.name == "h", Rating.n > 0)).all()
    assert sorted(ns) == [2] * 8
    status = invoke("annotate", "status", "pilot", "--study", study)
    assert "ratings spent 16 of a budget of 50" in status and "round 1: 8 words x 2 ratings, complete" in status
    out = invoke("annotate", "round", "pilot", "--study", study)
    m = re.search(r"round 2: (\d+) words x 2 ratings", out)
    assert m and 1 <= int(m.group(1)) <= 17  # the budget left (34 ratings) caps the round at 17 words
    with Session(engine) as s:
        assert s.scalar(select(Campaign).where(Campaign.name == "pilot.round2")) is not None
    engine.dispose()


def test_a_server_gone_mid_round_the_same_round_resumes(tmp_path, ls_server, annotators, db_url, monkeypatch):  # noqa: F811
    """Label Studio goes away while round 1 is pushed (after its first list): the command fails saying so; run again, the
    same round (same words) is pushed to the end, no round 2 is planned and no task is in Label Studio twice."""
    import workbench.annotate.push as push_module

    monkeypatch.setenv("TEST_LS_KEY", ls_server.token)
    proxy = CuttingProxy(int(ls_server.url.rsplit(":", 1)[1]))
    try:
        study = _study(tmp_path, db_url, proxy.url, list_size=3)
        invoke("apply", "--study", study)
        real_push = push_module.push_campaign

        def push_until_cut(*args, on_progress=None, **kwargs):
            def progress(done, total):
                if on_progress is not None:
                    on_progress(done, total)
                if done >= 1:
                    proxy.cut()  # the server goes away after the round's first list

            return real_push(*args, on_progress=progress, **kwargs)

        monkeypatch.setattr(push_module, "push_campaign", push_until_cut)
        out = invoke("annotate", "round", "pilot", "--study", study, code=1)
        assert "round 1: 8 words x 2 ratings" in out and f"Label Studio at {proxy.url} cannot be reached" in out
        engine = connect(db_url)
        with Session(engine) as s:
            camp = s.scalar(select(Campaign).where(Campaign.name == "pilot.round1"))
            assert camp.pushed_at is None and 1 <= len(camp.lists) < 3
        status = invoke("annotate", "status", "pilot", "--study", study)
        assert "round 1: 8 words x 2 ratings, not pushed" in status
        proxy.heal()
        monkeypatch.setattr(push_module, "push_campaign", real_push)
        out = invoke("annotate", "round", "pilot", "--study", study)
        assert "round 1 was not pushed completely: pushing it again" in out and "round 2" not in out
        with Session(engine) as s:
            camp = s.scalar(select(Campaign).where(Campaign.name == "pilot.round1"))
            assert camp.pushed_at is not None and s.scalar(select(Campaign).where(Campaign.name == "pilot.round2")) is None
            projects = list(s.scalars(select(CampaignList.project_id).where(CampaignList.campaign_id == camp.id)))
            words = s.scalars(select(CampaignTask.item_id).join(CampaignList, CampaignList.id == CampaignTask.list_id)
                              .where(CampaignList.campaign_id == camp.id, CampaignTask.role == "item")).all()  # fmt: skip
        assert len(projects) == 3 and len(words) == len(set(words)) == 8
        in_ls = [t.data["wb_key"] for pid in projects for t in project_tasks(ls_server, pid)]
        assert len(in_ls) == len(set(in_ls)) == 8, in_ls  # every word once, none twice
        status = invoke("annotate", "status", "pilot", "--study", study)
        assert "round 1: 8 words x 2 ratings, open (8 words short)" in status
        # the round goes on as usual: the next one is refused while this one is open
        assert "round 1 of pilot is still open" in invoke("annotate", "round", "pilot", "--study", study, code=1)
        engine.dispose()
    finally:
        proxy.close()
