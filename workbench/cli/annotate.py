"""workbench annotate serve | push | pull | status | invite: human norming campaigns in Label Studio."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Annotated

import typer

from workbench.cli.display import note, progress_bar, show, show_record
from workbench.cli.options import DEFAULT_STUDY, Db, Format, StudyPath, open_store, store_url, study_and_store
from workbench.errors import WorkbenchError
from workbench.output import OutputFormat

app = typer.Typer(
    help="Human norming campaigns in Label Studio: push lists of words, pull the ratings back.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

Campaign = Annotated[str, typer.Argument(help="A campaign declared under `campaigns:` in the study file.")]
Wait = Annotated[
    float, typer.Option("--wait", min=0, help="Seconds to wait for another push (pull) of the campaign on this store to finish.")
]


def _connect(loaded, spec):
    from workbench.annotate.connection import connect, resolve_server, server_database

    url, key, source = resolve_server(loaded.base_dir, spec.server.url, spec.server.api_key_env)
    return connect(url, key, key_source=source, timeout=spec.server.timeout, database=server_database(loaded.base_dir, url))


@app.command()
def push(campaign: Campaign, fmt: Format = OutputFormat.table, study: StudyPath = DEFAULT_STUDY, db: Db = None, wait: Wait = 10.0) -> None:
    """Create or update the campaign's Label Studio projects (one per list) and import the tasks."""
    from workbench.annotate.campaign import campaign_spec
    from workbench.annotate.push import push_campaign

    loaded, url = study_and_store(study, db)
    spec = campaign_spec(loaded, campaign)
    conn = _connect(loaded, spec)
    with open_store(url) as engine, progress_bar(f"push {campaign}") as bar:
        report = push_campaign(engine, loaded, campaign, conn, on_progress=bar, wait_s=wait)
    show_record(fmt, report, report.lines())


@app.command()
def pull(campaign: Campaign, fmt: Format = OutputFormat.table, study: StudyPath = DEFAULT_STUDY, db: Db = None, wait: Wait = 10.0) -> None:
    """Bring the annotations back as ratings (only what changed since the last pull); apply the exclusion rules."""
    from workbench.annotate.campaign import campaign_spec
    from workbench.annotate.pull import pull_campaign

    loaded, url = study_and_store(study, db)
    spec = campaign_spec(loaded, campaign)
    conn = _connect(loaded, spec)
    with open_store(url) as engine:
        report = pull_campaign(engine, loaded, spec, campaign, conn, wait_s=wait)
    show_record(fmt, report, report.lines())


@app.command()
def status(campaign: Campaign, fmt: Format = OutputFormat.table, study: StudyPath = DEFAULT_STUDY, db: Db = None) -> None:
    """Progress per list and per annotator, items still short of ratings, exclusions (as of the last pull).

    csv: one row per list (per round, for an adaptive campaign); json: the whole status as one object.
    """
    from sqlalchemy.orm import Session

    from workbench.annotate.status import campaign_status

    loaded, url = study_and_store(study, db, required=False)
    spec = loaded.study.campaigns.get(campaign) if loaded is not None else None
    adaptive = spec is not None and getattr(spec, "adaptive", None) is not None
    with open_store(url) as engine, Session(engine) as s:
        if adaptive:  # an adaptive campaign: its rounds, words settled and open, ratings against the budget
            from workbench.annotate.rounds import rounds_status

            st = rounds_status(s, loaded, campaign)
            parts = [vars(r) for r in st.rounds]
        else:
            st = campaign_status(s, campaign)
            parts = [vars(p) for p in st.lists]
    columns = list(parts[0]) if parts else []
    show(fmt, columns, [list(p.values()) for p in parts], lines=st.lines(), document=st)


@app.command()
def invite(
    study: StudyPath = DEFAULT_STUDY,
    url: Annotated[str | None, typer.Option(help="The server (default: LABEL_STUDIO_URL, else the one `serve` started).")] = None,
    api_key_env: Annotated[str, typer.Option(help="Environment variable holding the token.")] = "LABEL_STUDIO_API_KEY",
    fmt: Format = OutputFormat.table,
) -> None:
    """Print the link annotators sign up through (they join the server's organization)."""
    from workbench.annotate.connection import connect, public_url, resolve_server

    base = study.resolve().parent
    url, key, source = resolve_server(base, url, api_key_env)
    conn = connect(url, key, key_source=source)
    link = conn.call("get the invite link", lambda: conn.request("GET", "/api/invite"))
    invite_link = public_url(base, conn.url) + link["invite_url"]
    show(fmt, ["invite_url"], [[invite_link]], lines=[invite_link], document={"invite_url": invite_link})


def _default_database(db: str | None, study: Path) -> str | None:
    """Label Studio's database when none is given: beside the study's store when that is on PostgreSQL."""
    from sqlalchemy.engine import make_url

    try:
        url = make_url(store_url(db, study))
    except Exception:  # noqa: BLE001 - an unreadable store URL: the development server, as before
        return None
    if not url.drivername.startswith("postgresql"):
        return None
    return url.set(drivername="postgresql", database=f"{url.database}_labelstudio").render_as_string(hide_password=False)


@app.command()
def serve(
    study: StudyPath = DEFAULT_STUDY,
    db: Db = None,
    host: Annotated[
        str, typer.Option(help="Address to listen on: 127.0.0.1 (this machine; a reverse proxy in front), or 0.0.0.0 (every interface).")
    ] = "127.0.0.1",  # fmt: skip
    port: Annotated[
        int, typer.Option(help="Port (default: the one it had last time, else 8080, else a free one).", show_default=False)
    ] = 0,
    public_url: Annotated[
        str | None,
        typer.Option(
            help="The URL annotators open, e.g. https://norms.example.edu (your reverse proxy's); host, CSRF and cookie settings follow it."
        ),
    ] = None,  # fmt: skip
    database: Annotated[
        str | None,
        typer.Option(
            help="Label Studio's PostgreSQL database, postgresql://USER:PASSWORD@HOST:5432/NAME "
            "(made when missing; default: NAME_labelstudio beside a PostgreSQL store)."
        ),
    ] = None,  # fmt: skip
    dev: Annotated[bool, typer.Option("--dev", help="Django's development server on SQLite: a one-person pilot.")] = False,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Web worker processes (production server).")] = 4,
    threads: Annotated[int, typer.Option(min=1, max=64, help="Threads per worker (production server).")] = 4,
    redis: Annotated[
        str | None,
        typer.Option(
            help="Redis URL for Label Studio's job queue (default: Redis on this machine "
            "when it answers, in a database number of this server's own)."
        ),
    ] = None,  # fmt: skip
    no_redis: Annotated[bool, typer.Option("--no-redis", help="Run background jobs inside the requests, without Redis.")] = False,
    data_dir: Annotated[Path | None, typer.Option(help="Label Studio's data (default: .workbench/label-studio beside the study).")] = None,
    fmt: Format = OutputFormat.table,
) -> None:
    """Start Label Studio for the study; Ctrl-C stops it.

    With a PostgreSQL database (--database, or the study's store on PostgreSQL) it is the production server: gunicorn
    with --workers processes, Redis for its job queue, reachable on --host/--port behind the lab's reverse proxy at
    --public-url. Otherwise (or with --dev) it is Django's development server on SQLite, for a one-person pilot.
    The administrator's password and token, the Django secret key and the database password are made on first start
    and kept in the study's .workbench/label-studio.json (mode 600), never in the store and never printed.
    """
    from workbench.annotate.connection import save_server, saved_server, state_dir
    from workbench.annotate.server import free_port, new_secret_key, port_free, redact_url, start_server
    from workbench.errors import WorkbenchError

    base = study.resolve().parent
    private = state_dir(base)
    data = (data_dir or private / "label-studio").resolve()
    saved = saved_server(base) or {}
    username = saved.get("username") or "admin@workbench.local"
    password = saved.get("password") or secrets.token_urlsafe(16)
    token = saved.get("token") or secrets.token_hex(20)
    secret_key = saved.get("secret_key") or new_secret_key()
    if dev:
        database = None
    else:
        database = database or saved.get("database") or _default_database(db, study)
    probe = host if host not in ("0.0.0.0", "::") else "127.0.0.1"
    saved_port = _port_of(saved.get("url"))
    if not port and saved_port:
        port = saved_port  # the port of last time (after a crash too: sockets in TIME_WAIT do not count as taken)
        if not port_free(port, probe):
            raise WorkbenchError(
                f"port {port} (where this study's Label Studio was, {saved['url']}) is taken: is the server running already? "
                "Stop it, or choose another port with --port (campaigns pushed there will then need their server.url)."
            )
    elif not port:
        port = 8080 if port_free(8080, probe) else free_port(probe)
    elif not port_free(port, probe):
        raise WorkbenchError(f"port {port} on {probe} is taken: choose another with --port, or leave it out.")
    kind = f"production server on PostgreSQL ({redact_url(database)}), {workers} workers" if database else "development server on SQLite"
    typer.echo(f"Starting Label Studio, {kind} (data in {data}) ...", err=True)
    server = start_server(data, username=username, password=password, token=token, port=port, host=host, public_url=public_url,
                          database=database, workers=workers, threads=threads, redis=False if no_redis else redis,
                          secret_key=secret_key)  # fmt: skip
    info = {**saved, "url": server.url, "public_url": server.public_url, "username": username, "password": password, "token": token,
            "secret_key": secret_key, "mode": server.mode, "database_kind": server.database}  # fmt: skip
    if database:
        info["database"] = database
    else:
        info.pop("database", None)
    if saved.get("url") and saved["url"] != server.url:
        typer.echo(f"Label Studio now answers at {server.url}, not {saved['url']}: campaigns pushed there need their server.url.", err=True)
    info_path = save_server(base, info)
    where = {"url": server.url, "public_url": server.public_url, "mode": server.mode, "database": server.database}
    show(fmt, list(where), [list(where.values())], lines=[server.url], document=where)  # then it runs until Ctrl-C
    for line in server.notes:
        typer.echo(f"  {line}", err=True)
    typer.echo(
        f"Label Studio is running at {server.url}" + (f" (annotators open {server.public_url})" if server.public_url != server.url else "")
        + f". Log in as {username} (password and token in {info_path}, mode 600).\n"
        "Annotators join through `workbench annotate invite`; push a campaign with `workbench annotate push NAME`.\n"
        "Ctrl-C stops the server.",
        err=True,
    )  # fmt: skip
    try:
        while server.alive():
            time.sleep(0.5)
        typer.echo(f"Label Studio stopped by itself (see {server.log_path}).", err=True)
        server.stop()
        raise typer.Exit(1)
    except KeyboardInterrupt:
        server.stop()
        typer.echo("Label Studio stopped.", err=True)


def _port_of(url: str | None) -> int | None:
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).port if url else None
    except ValueError:
        return None


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
    plot: Annotated[Path | None, typer.Option(help="Also write a PNG: validity against human ratings spent, per strategy.")] = None,
    fmt: Format = OutputFormat.table,
    study: StudyPath = DEFAULT_STUDY,
    db: Db = None,
) -> None:
    """Replay the campaign with simulated annotators: validity against gold per strategy and budget, before anyone is paid.

    csv: one row per strategy and budget; json: the whole simulation as one object.
    """
    from sqlalchemy.orm import Session

    from workbench.annotate.simulate import simulate_campaign

    loaded, url = study_and_store(study, db)
    budgets = tuple(budget) if budget else (0.05, 0.1, 0.25, 0.5, 1.0)
    bad = [b for b in budgets if not 0 < b <= 10]
    if bad:
        raise WorkbenchError(f"--budget {bad[0]}: give a share of the norm's ratings such as 0.25 (above 0, at most 10).")
    if plot is not None:
        from workbench.files import check_output_file

        plot = check_output_file(plot, "--plot")
    with open_store(url) as engine, Session(engine) as s:
        sim = simulate_campaign(s, loaded, campaign, norms=norms, against=against, prior=prior, calibration=calibration,
                                budgets=budgets, k=k, annotator_sd=annotator_sd, seed=seed, n_boot=n_boot)  # fmt: skip
    if plot is not None:
        from workbench.files import writing

        with writing(plot, "--plot"):
            plot.write_bytes(sim.plot())
        note(fmt)(f"Wrote {plot.resolve()}: validity against human ratings spent.")
    from workbench.numeric import json_safe

    rows = [[r.strategy, r.budget, r.ratings, r.unknown, r.words_rated, r.spearman, r.ci[0], r.ci[1]] for r in sim.plan.rows]
    show(fmt, ["strategy", "budget", "ratings", "unknown", "words_rated", "spearman", "ci_low", "ci_high"], rows, lines=sim.lines(),
         document=json_safe(sim.to_dict()))  # fmt: skip


@app.command("round")
def round_(
    campaign: Campaign,
    pull_: Annotated[
        bool, typer.Option("--pull", help="Pull every round's ratings and recompute the hybrid (instead of pushing).")
    ] = False,
    force: Annotated[bool, typer.Option(help="Start the next round although the previous one is still open.")] = False,
    fmt: Format = OutputFormat.table,
    study: StudyPath = DEFAULT_STUDY,
    db: Db = None,
) -> None:
    """Adaptive campaign: recompute the hybrid, then push the next round (the words still unsure), or --pull the rounds."""
    from sqlalchemy.orm import Session

    from workbench.annotate.campaign import campaign_spec
    from workbench.annotate.pull import pull_campaign
    from workbench.annotate.push import push_campaign
    from workbench.annotate.rounds import _round_info, plan_round, round_name, round_numbers, round_study
    from workbench.study.apply import _hybrid_dimension
    from workbench.study.hybrid import save_hybrid

    loaded, url = study_and_store(study, db)
    say = note(fmt)  # the steps: stdout for people, stderr when stdout is csv or json
    done: dict = {"campaign": campaign, "hybrid": None, "round": None, "words": None, "pulls": [], "push": None}
    spec = campaign_spec(loaded, campaign)
    if spec.adaptive is None:
        raise WorkbenchError(f"campaigns.{campaign}: not an adaptive campaign (no adaptive:): use `workbench annotate push`.")
    hybrid = loaded.study.hybrids.get(spec.adaptive.hybrid)
    if hybrid is None:
        raise WorkbenchError(f"campaigns.{campaign}.adaptive.hybrid: no hybrid named {spec.adaptive.hybrid!r} in the study.")
    conn = _connect(loaded, spec)
    dim = _hybrid_dimension(loaded.study, spec.adaptive.hybrid, hybrid)

    def recompute(engine) -> None:
        with Session(engine) as s, s.begin():
            result = save_hybrid(s, spec.adaptive.hybrid, hybrid, dim, campaigns=list(loaded.study.campaigns))
        c = result.counts()
        done["hybrid"] = {"name": spec.adaptive.hybrid, **c}
        say(f"hybrid {spec.adaptive.hybrid}: {c['both']} words with human ratings, {c['machine']} machine only")

    with open_store(url) as engine:
        if pull_:
            with Session(engine) as s:
                numbers = round_numbers(s, campaign)
            for n in numbers:
                name = round_name(campaign, n)
                rs = round_study(loaded, campaign, n)
                pulled = pull_campaign(engine, rs, rs.study.campaigns[name], name, conn)
                done["pulls"].append(pulled)
                for line in pulled.lines():
                    say(line)
            recompute(engine)
            show_record(fmt, done, [])
            return
        with Session(engine) as s:
            numbers = round_numbers(s, campaign)
            last = _round_info(s, campaign, numbers[-1], spec.raters_per_item) if numbers else None
        if last is not None and not last.pushed:  # a push cut short (a server gone): the same round resumes
            number = last.number
            say(f"round {number} was not pushed completely: pushing it again")
        else:
            recompute(engine)
            with Session(engine) as s, s.begin():
                number, words = plan_round(s, loaded, campaign, force=force)
            done["words"] = len(words)
            say(f"round {number}: {len(words)} words x {spec.raters_per_item} ratings")
        name = round_name(campaign, number)
        with progress_bar(f"push {name}") as bar:
            report = push_campaign(engine, round_study(loaded, campaign, number), name, conn, on_progress=bar)
    done["round"] = number
    done["push"] = report
    show_record(fmt, done, report.lines() if fmt is OutputFormat.table else [])
