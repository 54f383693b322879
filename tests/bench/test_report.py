"""The benchmark's judgement of issue 14's targets (bench/report.py) and its one safety rule.

The report decides "met" or "missed" from the run's JSON; these tests give it runs whose
answers are known. bench/seed_portal.py must refuse any database not named ``bench_*``.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_report() -> Any:
    spec = importlib.util.spec_from_file_location("bench_report", ROOT / "bench" / "report.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


report = _load_report()


def endpoint(rate: float, p99_ms: float = 10.0,
             offered: tuple[int, ...] = (200,)) -> dict[str, Any]:
    step = {"achieved_per_s": rate, "requests": 100, "p50_us": 1000, "p90_us": 2000, "p99_us": p99_ms * 1000,
            "unexpected": 0, "errors": 0, "load_average": 1.0}
    steps = [{**step, "offered_per_s": o, "achieved_per_s": min(rate, o)} for o in offered]
    return {"steps": [*steps, {**step, "offered_per_s": None}], "max": {**step,
                                                                       "offered_per_s": None}}


def journey(system: str, offered: int, signed_in_per_s: float, email_p95: float,
            share_signed_in: float = 1.0) -> dict[str, Any]:
    return {"system": system, "offered_per_s": offered, "seconds": 10,
            "signed_in": int(offered * 10 * share_signed_in), "failed": 0, "unfinished": 0,
            "failures": {}, "signed_in_per_s": signed_in_per_s, "journey_p50_s": 0.5,
            "journey_p95_s": 0.9, "journey_p99_s": 1.0, "email_p50_s": 0.2,
            "email_p95_s": email_p95, "email_p99_s": email_p95, "load_average": 1.0}


def run_meeting_every_target() -> dict[str, Any]:
    return {
        "meta": {"commit": "abc1234", "branch": "bench", "subject": "s", "started": "t",
                 "finished": "t", "quick": False, "cpus": 2, "load_average_start": [1, 1, 1],
                 "load_average_end": [1, 1, 1], "profile": {"connections": 16,
                                                           "max_seconds": 10,
                                                           "journey_seconds": 10}},
        "endpoints": {"hello": endpoint(1000), "confirm": endpoint(200),
                      "signed_in_page": endpoint(400), "request_link": endpoint(300, 20)},
        "journeys": [journey("portal", 150, 150, 0.4), journey("portal", 200, 160, 1.5),
                     journey("peer", 50, 50, 0.3), journey("peer", 100, 60, 0.9, 0.5)],
        "lookup": {"small": {"rows": 10_000, "result": endpoint(100)["max"]},
                   "big": {"rows": 1_000_000, "result": endpoint(95)["max"]}},
        "worker": {"source": "test", "result": {"one": 1.0}},
    }


def verdicts(run: dict[str, Any]) -> list[bool]:
    return [t["met"] for t in report.targets(run)]


def test_a_run_that_meets_every_target_is_reported_so() -> None:
    run = run_meeting_every_target()
    assert verdicts(run) == [True] * 6
    text = report.markdown(run)
    assert "**missed**" not in text
    assert "commit `abc1234` on branch `bench`" in text


def test_a_rate_is_sustained_only_with_every_sign_in_and_email_p95_under_a_second() -> None:
    ours = [journey("portal", 150, 150, 0.4), journey("portal", 200, 190, 1.2),
            journey("portal", 250, 240, 0.5, share_signed_in=0.9)]
    assert report.sustained(ours)["offered_per_s"] == 150
    assert report.sustained([journey("portal", 10, 10, 1.0)]) is None


@pytest.mark.parametrize(("change", "missed"), [
    (lambda r: r["journeys"].__setitem__(0, journey("portal", 150, 149, 0.4)), [0]),
    (lambda r: r["journeys"].__setitem__(0, journey("portal", 150, 150, 1.0)), [0, 1]),
    (lambda r: r["journeys"].__setitem__(2, journey("peer", 50, 61, 0.3)), [1]),
    (lambda r: r["endpoints"].__setitem__("confirm", endpoint(149)), [2]),
    (lambda r: r["endpoints"].__setitem__("signed_in_page", endpoint(299)), [3]),
    (lambda r: r["endpoints"].__setitem__("request_link", endpoint(300, 51)), [4]),
    (lambda r: r["endpoints"].__setitem__("request_link", endpoint(150, 20)), [4]),
    (lambda r: r["lookup"]["big"].__setitem__("result", endpoint(89)["max"]), [5]),
])
def test_each_target_is_missed_when_its_figure_falls_short(change: Any,
                                                          missed: list[int]) -> None:
    run = copy.deepcopy(run_meeting_every_target())
    change(run)
    assert [n for n, met in enumerate(verdicts(run)) if not met] == missed
    assert report.markdown(run).count("**missed**") == len(missed)


def test_a_quick_run_says_its_figures_measure_nothing() -> None:
    run = run_meeting_every_target()
    run["meta"]["quick"] = True
    assert "these figures check the harness" in report.markdown(run)


def test_the_seed_script_refuses_a_database_not_named_bench(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"),
           "DJANGO_SETTINGS_MODULE": "portal.config.settings", "PORTAL_DEBUG": "true",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'portal.sqlite3'}",
           "PORTAL_VAR_DIR": str(tmp_path)}
    env.pop("REDIS_URL", None)
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "seed_portal.py"), "users",
                           "1"], env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode != 0
    assert "only bench_* databases" in done.stderr


def test_with_the_query_timed_the_lookup_is_flat_only_by_an_index_and_under_half_again() -> None:
    run = run_meeting_every_target()
    plan = "Index Scan using signin_signinrequest_token_hash on signin_signinrequest"
    run["lookup"]["small"]["query"] = {"rows": 10_000, "p50_us": 400.0, "p99_us": 900.0,
                                       "plan": plan}
    run["lookup"]["big"]["query"] = {"rows": 1_000_000, "p50_us": 560.0, "p99_us": 990.0,
                                     "plan": plan}
    assert verdicts(run)[5] is True
    run["lookup"]["big"]["query"]["p50_us"] = 640.0
    assert verdicts(run)[5] is False
    run["lookup"]["big"]["query"] = {"rows": 1_000_000, "p50_us": 410.0, "p99_us": 990.0,
                                     "plan": "Seq Scan on signin_signinrequest"}
    assert verdicts(run)[5] is False
    assert "Seq Scan on signin_signinrequest" in report.markdown(run)


def test_a_flat_out_step_without_answers_falls_back_to_the_best_paced_step() -> None:
    run = run_meeting_every_target()
    ladder = endpoint(300, offered=(100, 200))
    ladder["max"] = {**ladder["max"], "requests": 0, "achieved_per_s": 0.0}
    ladder["steps"][-1] = ladder["max"]
    run["endpoints"]["signed_in_page"] = ladder
    assert report.top(ladder)["achieved_per_s"] == 200
    assert verdicts(run)[3] is False  # 200/s is 20% of hello, not the 0/s of the empty step
    assert "the flat-out step's ready links had run out" in report.markdown(run)
