"""Issue 15, item 5: the demo has a benchmark in common with the published Sky-T1 rows. A
MATH500 subset ships in the repository (with its licence and attribution) and create_demo
registers it, small enough for the demo model on CPU; Compare shows the published MATH500
figures in its column."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.urls import reverse

from distill.evaluation import BY_SLUG, SHIPPED
from experiments.management.commands.create_demo import demo_evaluation
from experiments.models import Benchmark
from tests.support.accounts import client_for
from tests.support.evaluation import make_scored_run

T, F = True, False


def test_the_shipped_math500_subset_is_attributed_and_in_math500_layout():
    path = SHIPPED["math500-demo"]
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert 20 <= len(rows) <= 30
    assert all({"problem", "answer", "subject", "level", "unique_id"} <= set(r) for r in rows)
    assert len({r["unique_id"] for r in rows}) == len(rows)
    notice = (path.parent / "NOTICE.md").read_text(encoding="utf-8")
    assert "Hendrycks" in notice and "MIT License" in notice and "Lightman" in notice
    assert BY_SLUG["math500-demo"].reference == "MATH500"


class Out:
    def __init__(self):
        self.lines: list[str] = []

    def write(self, text):
        self.lines.append(text)


@pytest.mark.django_db
def test_demo_registers_math500_and_compare_shares_its_column_with_published_rows(users):
    command = type("C", (), {"stdout": Out()})()
    demo_evaluation(command)
    demo_evaluation(command)  # idempotent
    bench = Benchmark.objects.get(slug="math500-demo")
    assert bench.reference == "MATH500" and bench.domain == "math"
    # The demo's CPU budget: as many problems and tokens as the other demo benchmarks.
    assert bench.problems().count() == 10 and bench.max_tokens == 256
    assert bench.dataset.problems.count() == 25
    assert bench.problems().first().external_id == "math500-000"
    assert any("MATH500 (demo subset): 10 problems" in line for line in command.stdout.lines)

    run, _ = make_scored_run(bench, [[T]] + [[F]] * 9)
    page = client_for(users["viewer"]).get(
        reverse("evaluation_compare") + f"?runs={run.pk}").content.decode()
    chart = json.loads(page.split('id="eval-chart-data" type="application/json">')[1]
                       .split("</script>")[0])
    column = chart["benchmarks"].index("MATH500 (demo subset)")
    assert "MATH500 (published only)" not in chart["benchmarks"]
    assert chart["series"][0]["values"][column] == pytest.approx(10.0)
    sky = next(p for p in chart["published"] if p["name"] == "Sky-T1-32B-Preview (published)")
    assert sky["values"][column] == 86.4


@pytest.mark.django_db
def test_load_benchmarks_packaged_registers_the_shipped_subset():
    out = Out()
    call_command("load_benchmarks", "--only", "math500-demo", "--packaged", stdout=out)
    assert Benchmark.objects.get(slug="math500-demo").dataset.problems.count() == 25
    call_command("load_benchmarks", "--only", "math500-demo", stdout=out)  # no --packaged
    assert any("no file found, skipped" in line for line in out.lines)
