"""`python -m distill.verify IN.jsonl` as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FIXTURE = Path(__file__).parent / "fixtures" / "verify" / "cli_cases.jsonl"
ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "distill.verify", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_gives_one_verdict_per_line_in_order_for_every_style():
    expected = [json.loads(line)["expect"] for line in FIXTURE.read_text().splitlines()]
    proc = cli(str(FIXTURE), "--test-timeout", "1.5", "-j", "2")
    assert proc.returncode == 0, proc.stderr
    verdicts = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [v["reason"] for v in verdicts] == expected
    assert all(set(v) == {"correct", "reason", "extracted", "ms"} for v in verdicts)
    assert [v["correct"] for v in verdicts] == [e == "correct" for e in expected]
    assert verdicts[0]["extracted"] == "0.5"


def test_cli_writes_output_file_with_detail(tmp_path):
    out = tmp_path / "verdicts.jsonl"
    line = json.dumps({"problem": {"domain": "math", "answer": "2"}, "response": r"\boxed{2}"})
    proc = cli("-", "-o", str(out), "--detail", stdin=line + "\n")
    assert proc.returncode == 0 and proc.stdout == ""
    verdict = json.loads(out.read_text())
    assert verdict["correct"] is True and verdict["detail"]["extraction"] == "boxed"


def test_cli_rejects_unusable_input_with_line_number(tmp_path):
    bad = tmp_path / "bad.jsonl"
    good = json.dumps({"problem": {"domain": "math", "answer": "2"}, "response": "x"})
    bad.write_text(
        good
        + "\n"
        + json.dumps({"problem": {"domain": "code", "tests": []}, "response": "x"})
        + "\n"
    )
    proc = cli(str(bad))
    assert proc.returncode == 2 and "line 2" in proc.stderr and proc.stdout == ""
    bad.write_text("{not json\n")
    assert cli(str(bad)).returncode == 2
    assert cli(str(tmp_path / "missing.jsonl")).returncode == 2
