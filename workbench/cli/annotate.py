"""workbench annotate serve | push | pull | status | invite: human norming campaigns in Label Studio."""

from __future__ import annotations

import secrets
import socket
import time
from pathlib import Path
from typing import Annotated

import typer

from workbench.cli.options import DEFAULT_STUDY, Db, StudyPath, open_store, store_url
from workbench.errors import WorkbenchError
from workbench.output import OutputFormat

app = typer.Typer(
    help="Human norming campaigns in Label Studio: push lists of words, pull the ratings back.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

Campaign = Annotated[str, typer.Argument(help="A campaign declared under `campaigns:` in the study file.")]


def _connect(loaded, spec):
    from workbench.annotate.connection import connect, resolve_server

    url, key, source = resolve_server(loaded.base_dir, spec.server.url, spec.server.api_key_env)
    return connect(url, key, key_source=source, timeout=spec.server.timeout)


def _progress(label: str):
    from workbench.cli.rate import progress_bar

    return progress_bar(label)


@app.command()
def push(campaign: Campaign, study: StudyPath = DEFAULT_STUDY, db: Db = None) -> None:
    """Create or update the campaign's Label Studio projects (one per list) and import the tasks."""
    from workbench.annotate.campaign import campaign_spec
    from workbench.annotate.push import push_campaign
    from workbench.study.load import load_study

    loaded = load_study(study)
    spec = campaign_spec(loaded, campaign)
    conn = _connect(loaded, spec)
    with open_store(store_url(db, study)) as engine, _progress(f"push {campaign}") as bar:
        report = push_campaign(engine, loaded, campaign, conn, on_progress=bar)
    for line in report.lines():
        typer.echo(line)


@app.command()
def pull(campaign: Campaign, study: StudyPath = DEFAULT_STUDY, db: Db = None) -> None:
    """Bring the annotations back as ratings (only what changed since the last pull); apply the exclusion rules."""
    from workbench.annotate.campaign import campaign_spec
    from workbench.annotate.pull import pull_campaign
    from workbench.study.load import load_study

    loaded = load_study(study)
    spec = campaign_spec(loaded, campaign)
    conn = _connect(loaded, spec)
    with open_store(store_url(db, study)) as engine:
        report = pull_campaign(engine, loaded, spec, campaign, conn)
    for line in report.lines():
        typer.echo(line)


@app.command()
def status(campaign: Campaign, study: StudyPath = DEFAULT_STUDY, db: Db = None) -> None:
    """Progress per list and per annotator, items still short of ratings, exclusions (as of the last pull)."""
    from sqlalchemy.orm import Session

    from workbench.annotate.status import campaign_status

    with open_store(store_url(db, study)) as engine, Session(engine) as s:
        st = campaign_status(s, campaign)
    for line in st.lines():
        typer.echo(line)


@app.command()
def invite(
    study: StudyPath = DEFAULT_STUDY,
    url: Annotated[str | None, typer.Option(help="The server (default: LABEL_STUDIO_URL, else the one `serve` started).")] = None,
    api_key_env: Annotated[str, typer.Option(help="Environment variable holding the token.")] = "LABEL_STUDIO_API_KEY",
) -> None:
    """Print the link annotators sign up through (they join the server's organization)."""
    from workbench.annotate.connection import connect, resolve_server

    base = study.resolve().parent
    url, key, source = resolve_server(base, url, api_key_env)
    conn = connect(url, key, key_source=source)
    link = conn.call("get the invite link", lambda: conn.request("GET", "/api/invite"))
    typer.echo(conn.url + link["invite_url"])


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@app.command()
def serve(
    study: StudyPath = DEFAULT_STUDY,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (default 8080, or a free one when 8080 is taken).")] = 0,
    data_dir: Annotated[Path | None, typer.Option(help="Label Studio's data (default: .workbench/label-studio beside the study).")] = None,
) -> None:
    """Start a local Label Studio for a lab that has none; Ctrl-C stops it.

    The first start makes an administrator account and its token, kept in the
    study's .workbench/label-studio.json (mode 600), never in the store.
    """
    from workbench.annotate.connection import save_server, saved_server, state_dir
    from workbench.annotate.server import free_port, start_server

    base = study.resolve().parent
    private = state_dir(base)
    data = (data_dir or private / "label-studio").resolve()
    saved = saved_server(base) or {}
    username = saved.get("username") or "admin@workbench.local"
    password = saved.get("password") or secrets.token_urlsafe(16)
    token = saved.get("token") or secrets.token_hex(20)
    if not port:
        port = 8080 if _port_free(8080) else free_port()
    elif not _port_free(port):
        from workbench.errors import WorkbenchError

        raise WorkbenchError(f"port {port} on 127.0.0.1 is taken: choose another with --port, or leave it out.")
    typer.echo(f"Starting Label Studio (data in {data}) ...", err=True)
    server = start_server(data, username=username, password=password, token=token, port=port)
    info_path = save_server(base, {"url": server.url, "username": username, "password": password, "token": token})
    typer.echo(server.url)
    typer.echo(
        f"Label Studio is running at {server.url}. Log in as {username} (password and token in {info_path}, mode 600).\n"
        f"Annotators join through `workbench annotate invite`; push a campaign with `workbench annotate push NAME`.\n"
        "Ctrl-C stops the server.",
        err=True,
    )
    try:
        while server.alive():
            time.sleep(0.5)
        typer.echo(f"Label Studio stopped by itself (see {server.log_path}).", err=True)
        raise typer.Exit(1)
    except KeyboardInterrupt:
        server.stop()
        typer.echo("Label Studio stopped.", err=True)


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="annotate")


@app.command()
def simulate(
    campaign: Campaign,
    norms: Annotated[str, typer.Option(help="Dataset with each word's mean, SD and n: the simulated annotators' source.")],
    against: Annotated[str, typer.Option(help="Independent gold dataset that validity is measured against.")],
    prior: Annotated[str | None, typer.Option(help="Machine rater used as the prior (routed and adaptive strategies).")] = None,
    calibration: Annotated[
        str | None, typer.Option(help="Item set with --norms values to calibrate the prior on (not the campaign's words).")
    ] = None,
    budget: Annotated[
        list[float] | None,
        typer.Option(help="Share of the norm's own number of ratings; repeat for several (default: 0.05 0.1 0.25 0.5 1)."),
    ] = None,
    k: Annotated[int | None, typer.Option(help="Ratings per word the norm stands for, where it has no n.")] = None,
    annotator_sd: Annotated[float, typer.Option(help="SD of the annotator effect, in scale points.")] = 0.3,
    seed: Annotated[int, typer.Option(help="Seed of the simulation and of the bootstrap.")] = 0,
    n_boot: Annotated[int, typer.Option("--n-boot", min=100, help="Bootstrap resamples for the intervals.")] = 1000,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="table or json (csv: one row per strategy and budget).")
    ] = OutputFormat.table,
    study: StudyPath = DEFAULT_STUDY,
    db: Db = None,
) -> None:
    """Replay the campaign with simulated annotators: validity against gold per strategy and budget, before anyone is paid."""
    import json

    from sqlalchemy.orm import Session

    from workbench.annotate.simulate import simulate_campaign
    from workbench.study.load import load_study

    loaded = load_study(study)
    budgets = tuple(budget) if budget else (0.05, 0.1, 0.25, 0.5, 1.0)
    bad = [b for b in budgets if not 0 < b <= 10]
    if bad:
        raise WorkbenchError(f"--budget {bad[0]}: give a share of the norm's ratings such as 0.25 (above 0, at most 10).")
    with open_store(store_url(db, study)) as engine, Session(engine) as s:
        sim = simulate_campaign(s, loaded, campaign, norms=norms, against=against, prior=prior, calibration=calibration,
                                budgets=budgets, k=k, annotator_sd=annotator_sd, seed=seed, n_boot=n_boot)  # fmt: skip
    if fmt == OutputFormat.json:
        from workbench.numeric import json_safe

        typer.echo(json.dumps(json_safe(sim.to_dict()), indent=2))
    elif fmt == OutputFormat.csv:
        typer.echo("strategy,budget,ratings,words_rated,spearman,ci_low,ci_high")
        for r in sim.plan.rows:
            typer.echo(f"{r.strategy},{r.budget},{r.ratings},{r.words_rated},{r.spearman:.6f},{r.ci[0]:.6f},{r.ci[1]:.6f}")
    else:
        for line in sim.lines():
            typer.echo(line)
