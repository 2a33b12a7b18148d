"""The benchmark's statistics and verdicts, and the README table generated from saved runs."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import _harness
from bench._harness import at_least, at_most, median_interval
from tools import bench_table


def test_a_verdict_needs_the_whole_interval_on_one_side_of_the_target() -> None:
    assert at_most(1.05).verdict(0.98, 1.04) == "ok"
    assert at_most(1.05).verdict(1.06, 1.20) == "MISSED"
    assert at_most(1.05).verdict(1.00, 1.10) == "inconclusive"
    assert at_least(0.95).verdict(0.96, 1.10) == "ok"
    assert at_least(0.95).verdict(0.80, 0.94) == "MISSED"
    assert at_least(0.95).verdict(0.90, 1.00) == "inconclusive"
    assert at_least(25).verdict(26.0, 30.0) == "ok"  # a speed-up target above 1 is still "≥"
    assert at_most(1.05).verdict(math.nan, math.nan) == "inconclusive"


def test_three_noisy_rounds_give_no_missed_verdict() -> None:
    # The old bulk line: three rounds whose middle ratio was 0.84 read "0.84x MISSED" even
    # though querykit's median rows/s was the higher. Their interval straddles the target.
    median, low, high = median_interval([0.84, 0.80, 1.10])
    assert median == pytest.approx(0.84)
    assert low <= 0.85 <= high
    assert at_least(0.85).verdict(low, high) == "inconclusive"


def test_the_interval_narrows_with_rounds_and_holds_the_median() -> None:
    ratios = [1.0 + 0.01 * ((i * 7) % 11 - 5) for i in range(200)]
    median, low, high = median_interval(ratios)
    assert low <= median <= high
    _, wide_low, wide_high = median_interval(ratios[:12])
    assert high - low < wide_high - wide_low


def _run(started: str, ratio: float, verdict: str) -> dict[str, object]:
    return {
        "started": started,
        "machine": {"cpu_model": "Test CPU", "cores": 2, "load_average_before": [0.5, 0, 0]},
        "git": {"revision": "abcdef1234", "dirty": False},
        "results": [
            {
                "benchmark": "select",
                "name": "querykit db.prepare(q)",
                "ratio": ratio,
                "low": ratio - 0.01,
                "high": ratio + 0.01,
                "rounds": 40,
                "target": {"bound": 1.05, "at_most": True},
                "verdict": verdict,
            },
            {"benchmark": "select", "name": "raw", "ratio": 1.0, "target": None},
        ],
    }


def test_the_table_quotes_the_last_two_saved_runs(tmp_path: Path) -> None:
    for i, (ratio, verdict) in enumerate([(1.2, "MISSED"), (1.03, "ok"), (1.02, "ok")]):
        run = _run(f"2026-12-0{i + 1}T04:00:00+00:00", ratio, verdict)
        (tmp_path / f"2026120{i + 1}T040000Z.json").write_text(json.dumps(run))
    table = bench_table.render(bench_table.load_runs(tmp_path))
    row = next(line for line in table.splitlines() if line.startswith("| querykit"))
    assert row == (
        "| querykit db.prepare(q) | ≤ 1.05 | 1.020× [1.010, 1.030] ok (run 2) "
        "| 1.030× [1.020, 1.040] ok (run 1) |"
    )
    assert "1.200" not in table and "| raw |" not in table
    assert "1. 2026-12-02 04:00 UTC, git abcdef12, load 0.5" in table


def test_a_run_on_another_python_gets_rows_of_its_own(tmp_path: Path) -> None:
    # A make bench run on 3.11 (several benchmarks), then its compile case on 3.13: the
    # main Python comes from the saved runs, whichever interpreter renders the table.
    runs = [
        _run("2026-12-01T04:00:00+00:00", 1.2, "MISSED"),
        _run("2026-12-02T04:00:00+00:00", 1.02, "ok"),
    ]
    runs[0]["benchmarks"] = ["select", "compile"]
    runs[0]["machine"]["python"] = "3.11.7"  # type: ignore[index]
    runs[1]["benchmarks"] = ["select"]
    runs[1]["machine"]["python"] = "3.13.0"  # type: ignore[index]
    for i, run in enumerate(runs):
        (tmp_path / f"2026120{i + 1}T040000Z.json").write_text(json.dumps(run))
    table = bench_table.render(bench_table.load_runs(tmp_path))
    rows = [line for line in table.splitlines() if line.startswith("| querykit")]
    assert rows == [
        "| querykit db.prepare(q) | ≤ 1.05 | 1.200× [1.190, 1.210] MISSED (run 1) |  |",
        "| querykit db.prepare(q) (Python 3.13) | ≤ 1.05 | 1.020× [1.010, 1.030] ok (run 2) |  |",
    ]
    assert "2. 2026-12-02 04:00 UTC, git abcdef12, Python 3.13, load 0.5" in table
    assert "1. 2026-12-01 04:00 UTC, git abcdef12, load 0.5" in table


def test_the_readme_table_is_what_the_saved_runs_give() -> None:
    assert bench_table.main(["--check"]) == 0
    stale = bench_table.replace_block(
        "a\n<!-- bench-table:start -->\nold\n<!-- bench-table:end -->\nb", "new\n"
    )
    assert stale == "a\n<!-- bench-table:start -->\nnew\n<!-- bench-table:end -->\nb"


def _spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_the_cpu_reading_counts_cpu_not_waiting(capsys: pytest.CaptureFixture[str]) -> None:
    # A case that sleeps is slow by the wall clock and cheap by CPU time; one that works
    # twice as long is twice the baseline by both.
    def asleep() -> None:
        _spin(0.0005)
        time.sleep(0.006)  # 12x the spin: the wall ratio stays > 2.5 at load 4

    rows = _harness.compare(
        "cpu reading",
        {
            "base": lambda: _spin(0.0005),
            "twice": lambda: _spin(0.001),
            "asleep": asleep,
        },
        baseline="base",
        number=2,
        min_rounds=5,
        max_rounds=5,
        cpu=True,
        target={"twice": at_most(1.05), "asleep": at_most(1.05)},
    )
    by_name = {r.name: r for r in rows}
    assert by_name["asleep"].ratio > 2.5  # wall time: the sleep counts
    assert by_name["asleep"].extra["cpu_ratio"][0] < 1.6  # CPU time: it does not
    assert 1.6 < by_name["twice"].extra["cpu_ratio"][0] < 2.6
    out = capsys.readouterr().out
    assert "CPU time, client + its server backend" in out
    assert "asleep" in out.split("CPU time")[1] and "base " not in out.split("CPU time")[1]


def test_backend_cpu_is_read_from_schedstat_and_a_gone_backend_is_dropped() -> None:
    if not Path("/proc/self/schedstat").exists():
        pytest.skip("no /proc/<pid>/schedstat on this system")
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\nend = time.process_time() + 0.3\n"
            "while time.process_time() < end: pass\ninput()",
        ],
        stdin=subprocess.PIPE,
    )
    try:
        _harness._BACKENDS.add(child.pid)
        before = _harness.backends_cpu()
        deadline = time.monotonic() + 20
        while _harness.backends_cpu() - before < 0.2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _harness.backends_cpu() - before >= 0.2
    finally:
        child.communicate(b"\n")
    _harness.backends_cpu()
    assert child.pid not in _harness._BACKENDS
