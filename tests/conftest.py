"""Shared fixtures: every store test runs on SQLite and on PostgreSQL; the fake OpenAI server.

PostgreSQL: one fresh template database per test run, migrated once; each
test gets its own database copied from it (CREATE DATABASE ... TEMPLATE),
dropped afterwards. Set WORKBENCH_TEST_PG to another server URL if needed.

The fake OpenAI-compatible server (tests/openai_server.py, real HTTP on
127.0.0.1): `openai_server` is one per test module, built from the module's
OPENAI_SERVER dict of OpenAIServer options (or, for a module run against
several servers, OPENAI_SERVERS: test id -> options); `server` is that server
reset for each test (stats and faults cleared, the module's settings back)
with the module's SECRET (else TEST_KEY) in $WORKBENCH_TEST_OPENAI_KEY.

Tiers: every test that needs a heavy component is marked here, at
collection, by the fixtures it uses, what its own code calls or the module
it is in (markers in
pyproject.toml): labelstudio, llama_server, local_model, wheel, and slow for
the few long ones; every other test is marked quick. `scripts/test.sh --quick`
runs `pytest -m quick`; the full run (CI) runs all of them.
"""

from __future__ import annotations

import functools
import inspect
import os
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from tests.openai_server import KEY_ENV, TEST_KEY, OpenAIServer
from workbench.store import connect

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
"""Norm files the tests read (source and licence of each: tests/data/README.md)."""
SHARED = DATA  # the name older tests import
PG_SERVER = os.environ.get("WORKBENCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _admin():
    return create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")


def _pg_url(dbname: str) -> str:
    return PG_SERVER.rsplit("/", 1)[0] + "/" + dbname


@contextmanager
def _fresh_database(prefix: str, template: str | None = None):
    """A new PostgreSQL database (copied from `template` if given), dropped afterwards."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = _admin()
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    try:
        yield name
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_template():
    """A migrated, empty workbench database to copy from; created fresh for this run."""
    with _fresh_database("wb_tpl") as name:
        connect(_pg_url(name)).dispose()
        yield name


@pytest.fixture
def pg_url(request):
    """A fresh, migrated PostgreSQL store (a copy of the template, with an identity of its own)."""
    with _fresh_database("wb_t", request.getfixturevalue("pg_template")) as name:
        eng = create_engine(_pg_url(name))
        with eng.begin() as c:
            c.execute(text("UPDATE store_meta SET value = :v WHERE key = 'store_id'"), {"v": uuid.uuid4().hex})
        eng.dispose()
        yield _pg_url(name)


@pytest.fixture
def empty_pg_url():
    """A brand-new, unmigrated PostgreSQL database (for migration tests)."""
    with _fresh_database("wb_e") as name:
        yield _pg_url(name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """A fresh, migrated store URL: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
        connect(url).dispose()
        return url
    return request.getfixturevalue("pg_url")


@pytest.fixture
def engine(db_url):
    eng = connect(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def runner() -> CliRunner:
    """Runs `workbench` in process (with tests/helpers.py cli)."""
    return CliRunner()


@pytest.fixture
def shared_data() -> Path:
    """The folder of norm files in the repository (tests/data)."""
    return DATA


# --------------------------------------------------------------------------- the fake OpenAI server


def pytest_generate_tests(metafunc):
    servers = getattr(metafunc.module, "OPENAI_SERVERS", None)
    if servers and "openai_server" in metafunc.fixturenames:
        metafunc.parametrize("openai_server", list(servers.values()), ids=list(servers), indirect=True, scope="module")


@pytest.fixture(scope="module")
def openai_server(request):
    """The test module's fake OpenAI server: OpenAIServer(**OPENAI_SERVER), started once per module."""
    options = getattr(request, "param", None) or getattr(request.module, "OPENAI_SERVER", {})
    with OpenAIServer(**options) as started:
        yield started


@pytest.fixture
def server(openai_server, request, monkeypatch):
    """The module's fake OpenAI server, reset for this test, its key in $WORKBENCH_TEST_OPENAI_KEY."""
    openai_server.reset()
    monkeypatch.setenv(KEY_ENV, getattr(request.module, "SECRET", TEST_KEY))
    return openai_server


# --------------------------------------------------------------------------- tiers

BY_FIXTURE = {"ls_server": "labelstudio", "llama_server": "llama_server", "wheel": "wheel", "venv": "wheel"}
"""A test that uses one of these fixtures (directly or through another) needs the component marked."""
BY_CALL = {"label_studio_program(": "labelstudio", "LocalModel.load(": "local_model"}
"""A test whose own code calls one of these (starts a Label Studio of its own, loads the model) needs it too."""
LOCAL_MODEL_MODULES = frozenset(
    {
        "test_local",  # Gemma 3 270M loaded in torch
        "test_finetune_local",  # a LoRA fine-tune of it
        "test_rate_inprocess",
        "test_methods",
        "test_newwords",
        "test_demo",
    }
)
"""Test modules whose tests load the real local model (Gemma in torch)."""
SLOW = frozenset(
    {
        "test_baselines::test_baselines_are_deterministic_and_reproducible_from_json",
        "test_baselines::test_embedding_baseline_predicts_glasgow_familiarity",
        "test_cli_conventions::test_every_store_command_prints_json_that_parses",
        "test_export::test_the_cli_takes_the_file_format_from_the_suffix_or_as_and_f_is_the_printed_format",
        "test_extras::test_local_raters_without_the_local_extra",
        "test_extras::test_the_core_commands_need_no_extra",
        "test_finetune_openai::test_a_create_whose_connection_drops_after_the_job_was_made_adopts_that_job",
        "test_finetune_openai::test_a_server_that_echoes_the_key_in_job_events_failures_and_upload_errors_leaves_it_nowhere",
        "test_finetune_openai::test_a_server_that_stays_broken_while_polling_leaves_the_job_running_and_cancel_still_cancels_upstream",
        "test_finetune_openai::test_cancel_upstream",
        "test_finetune_openai::test_finetune_trains_registers_a_rater_and_rates_the_test_words",
        "test_finetune_openai::test_killed_while_the_job_is_created_the_rerun_adopts_it",
        "test_finetune_openai::test_killed_while_the_job_runs_apply_picks_the_same_job_up",
        "test_finetune_openai::test_server_gone_mid_job_keeps_the_job_running_and_the_next_start_resumes_it",
        "test_finetune_openai::test_transient_errors_while_polling_are_asked_again_and_only_the_upstream_status_decides",
        "test_hybrid::test_a_hybrid_dataset_from_a_stack_and_a_human_norm",
        "test_ingest_concurrency::test_a_different_file_under_the_same_name_at_once",
        "test_ingest_concurrency::test_datasets_adding_the_same_new_items_at_once",
        "test_ingest_concurrency::test_the_same_dataset_imported_by_two_processes_at_once",
        "test_ingest_damage_property::test_a_damaged_table_is_imported_exactly_or_not_at_all",
        "test_ingest_encoding::test_generated_files_come_in_exactly_or_are_refused_in_one_line",
        "test_ingest_import::test_failure_mid_import_leaves_the_store_unchanged",
        "test_ingest_import::test_glasgow_real_file",
        "test_ingest_import::test_lancaster_redistribution_perceptual_only",
        "test_ingest_readers::test_messy_variants_import_into_the_store_alike",
        "test_ingest_readers::test_xlsx_messages_name_the_sheet_row",
        "test_ingest_readers::test_xlsx_reads_the_same",
        "test_pacing::test_a_declared_limit_runs_at_the_limit_without_a_429",
        "test_pacing::test_a_limit_on_tokens_paces_by_the_token_estimate",
        "test_pacing::test_with_nothing_declared_the_headers_set_the_pace",
        "test_plugins::test_a_broken_plugin_is_one_line_and_the_others_still_load",
        "test_plugins::test_an_installed_plugin_backend_rates_through_apply",
        "test_plugins::test_an_installed_plugin_trainer_fine_tunes_through_apply",
        "test_ppi::test_report_shows_ppi_beside_the_naive_and_classical_intervals",
        "test_rate::test_a_restarted_batch_job_picks_up_its_batch_instead_of_paying_twice",
        "test_rate::test_cli_rate_dry_run_then_rate_then_status",
        "test_rate::test_faults_end_with_a_right_store",
        "test_rate::test_kill_9_mid_run_then_resume_gives_every_item_exactly_one_rating",
        "test_rate_completions::test_faults_are_retried_and_failures_kept_for_the_next_run",
        "test_rate_servers::test_a_429_holds_every_worker_not_just_the_one_that_got_it",
        "test_rate_servers::test_a_batch_is_created_once_even_when_the_connection_drops_and_polling_rides_out_5xx",
        "test_rate_servers::test_a_declared_rpm_paces_the_requests",
        "test_rate_servers::test_a_server_that_echoes_the_key_in_every_field_leaves_it_nowhere",
        "test_rate_servers::test_a_workbench_killed_while_creating_a_batch_picks_that_batch_up_instead_of_paying_again",
        "test_rate_servers::test_answers_are_kept_when_the_process_is_killed_while_another_request_stalls",
        "test_rate_servers::test_batch_failures_are_one_line_and_the_job_says_why",
        "test_rate_servers::test_batch_failures_in_the_cli_are_one_line_with_exit_1",
        "test_rate_servers::test_dry_run_before_the_first_apply_leaves_an_empty_postgresql_database_empty",
        "test_rate_servers::test_dry_run_before_the_first_apply_needs_no_store_changes",
        "test_rate_servers::test_the_servers_rate_limit_headers_pace_the_requests_without_a_429_storm",
        "test_redact::test_a_json_document_stays_valid_and_its_parsed_values_lose_the_key",
        "test_redact::test_every_encoding_of_a_key_is_masked",
        "test_redact::test_text_without_the_key_is_left_as_it_is",
        "test_report::test_cli_import_as_rater_then_report_json",
        "test_report::test_extreme_values_imported_as_a_rater_are_noted_not_fatal",
        "test_report::test_html_report_end_to_end_in_headless_chromium",
        "test_report_render::test_html_in_chromium",
        "test_simulate::test_annotate_simulate_prints_the_planners_table_and_json",
        "test_stack::test_report_gives_each_rater_calibrated_intervals_on_held_out_items",
        "test_store_apply_lock::test_a_rate_beside_an_apply_waits_and_sends_nothing_twice",
        "test_store_apply_lock::test_a_second_apply_given_a_short_wait_names_the_one_running",
        "test_store_apply_lock::test_an_apply_killed_while_it_holds_the_lock_does_not_block_the_next",
        "test_store_apply_lock::test_the_lock_in_the_library",
        "test_store_apply_lock::test_two_applies_at_once_send_each_request_once",
        "test_store_concurrency::test_a_store_locked_by_another_writer_waits_then_says_so",
        "test_store_concurrency::test_parallel_applies_on_a_new_database_all_succeed",
        "test_store_concurrency::test_processes_opening_a_new_database_at_the_same_instant_migrate_it_once",
        "test_store_filesystem::test_a_read_only_folder",
        "test_store_filesystem::test_a_read_only_mount",
        "test_store_filesystem::test_a_read_only_postgresql_database",
        "test_store_filesystem::test_a_snapshot_on_a_full_disk_is_never_used_incomplete",
        "test_store_filesystem::test_a_store_file_that_cannot_be_written",
        "test_store_filesystem::test_a_store_file_that_cannot_be_written_in_rollback_journal_mode",
        "test_store_filesystem::test_an_immutable_folder",
        "test_store_filesystem::test_an_incomplete_snapshot_left_in_place_is_built_again",
        "test_store_filesystem::test_disk_full_during_an_import_inside_apply",
        "test_store_filesystem::test_disk_full_on_the_postgresql_server",
        "test_store_filesystem::test_the_cli_says_a_full_snapshot_disk_in_one_line",
        "test_store_identity::test_a_recreated_store_gets_fresh_answers_and_reports",
    }
)
"""Tests (module::name, without parameters) that took 2 s of CPU or more (children included) in one of their
cases, or that mostly wait (a job that runs for seconds, a server that stays away, a pace being kept), or whose
cases took 1.2 s of wall time or more in a quiet quick-tier run (`--durations`), as measured."""
HEAVY = ("labelstudio", "llama_server", "local_model", "wheel", "slow")


@functools.cache
def _source(function) -> str:
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):
        return ""


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Mark each test with what it needs (HEAVY), or as quick when it needs none of it."""
    for item in items:
        module = item.path.stem
        name = f"{module}::{getattr(item, 'originalname', item.name)}"
        needs = {marker for fixture, marker in BY_FIXTURE.items() if fixture in getattr(item, "fixturenames", ())}
        needs |= {marker for call, marker in BY_CALL.items() if call in _source(getattr(item, "function", None))}
        if module in LOCAL_MODEL_MODULES:
            needs.add("local_model")
        if name in SLOW:
            needs.add("slow")
        for marker in sorted(needs):
            item.add_marker(marker)
        if not any(item.get_closest_marker(marker) for marker in HEAVY):
            item.add_marker("quick")
    modules = {item.path.stem: getattr(item, "module", None) for item in items}
    stale = sorted(n for n in SLOW if (m := n.partition("::"))[0] in modules and not hasattr(modules[m[0]], m[2]))
    if stale:
        raise pytest.UsageError(f"tests/conftest.py SLOW names tests that do not exist: {', '.join(stale)}")
