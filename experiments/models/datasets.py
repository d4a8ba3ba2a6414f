"""Datasets of problems in one normalised schema, and the runs that import them.

The conversion itself is Django-free (``distill/datasets``); this module stores its output,
keeps per-dataset counts for the pages, and reports duplicates by content hash.
"""

from __future__ import annotations

import json
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.db import OperationalError, connection, models, transaction
from django.db.models import Count, Q
from django.db.models.functions import Left
from django.urls import reverse
from django.utils import timezone
from psycopg.errors import QueryCanceled

from distill.datasets import content_hash

from .runs import QueuedRun


class Domain(models.TextChoices):
    MATH = "math", "math"
    CODE = "code", "code"
    SCIENCE = "science", "science"
    PUZZLE = "puzzle", "puzzle"
    OTHER = "other", "other"


class DatasetQuerySet(models.QuerySet):
    def ready(self):
        return self.filter(ready=True)

    def benchmarks(self):
        return self.ready().filter(is_benchmark=True)


class Dataset(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    layout = models.CharField(max_length=40)
    # Benchmark sets (MATH500, AIME, ...) are what recipes are decontaminated against, and
    # what evaluations run on.
    is_benchmark = models.BooleanField(default=False, db_index=True)
    origin = models.CharField(max_length=500, blank=True)  # file name or server path
    # False while its import runs: rows are committed batch by batch (so progress shows), and
    # a rejected or failed import deletes the dataset, so nothing half-imported is ever used.
    ready = models.BooleanField(default=False)
    problem_count = models.PositiveIntegerField(default=0)
    # {"domain": {...}, "source": {...}, "difficulty": {...}, "has_tests": n}, computed once
    # at import so the list and detail pages never count a million rows.
    stats = models.JSONField(default=dict, blank=True)
    # {"within": n_rows_repeating_an_earlier_row, "across": {dataset_name: n}}
    duplicates = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = DatasetQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("dataset_detail", args=[self.pk])

    def refresh_stats(self) -> None:
        """Counts by domain, source and difficulty, and the duplicate report."""
        problems = self.problems.all()
        grouped = problems.values("domain", "source", "difficulty", "has_tests").annotate(
            n=Count("id")
        )
        by_domain: Counter = Counter()
        by_source: Counter = Counter()
        by_difficulty: Counter = Counter()
        with_tests = 0
        for row in grouped:
            by_domain[row["domain"]] += row["n"]
            by_source[row["source"]] += row["n"]
            by_difficulty[row["difficulty"] or "unlabelled"] += row["n"]
            with_tests += row["n"] if row["has_tests"] else 0
        self.problem_count = sum(by_domain.values())
        self.stats = {
            "domain": dict(by_domain.most_common()),
            "source": dict(by_source.most_common()),
            "difficulty": dict(sorted(by_difficulty.items())),
            "has_tests": with_tests,
        }
        self.duplicates = Problem.objects.duplicate_report(self)
        self.save(update_fields=["problem_count", "stats", "duplicates"])


# Problem-table text search (ProblemQuerySet.search_after). Reading one ~2 KB prompt, case-folding
# it and matching costs ~15 µs in PostgreSQL here (docs/datasets.md, Performance); the trigram
# index is given budget × this (at least a millisecond) before the walk goes on instead.
SEARCH_ROW_MICROSECONDS = 12.5


@dataclass
class SearchPage:
    """One page of a bounded search: ``rows`` (at most the page size, in id order) and
    ``next_after``, the keyset cursor of the next page. When the row budget ran out before the
    page filled, ``scanned`` is (first id, last id) of the rows read and ``next_after`` is the
    last of them: the next request goes on from there, so no match is skipped or repeated."""

    rows: list
    next_after: int | None = None
    scanned: tuple[int, int] | None = None


@contextmanager
def _pg_local(**values):
    """SET LOCAL these PostgreSQL settings for the block (inside a transaction) and put the old
    values back after it, so the rest of an enclosing transaction keeps them; a failed block
    is rolled back by its ``atomic()``, which undoes the change too. No-op on other backends."""
    if connection.vendor != "postgresql":
        yield
        return
    names = list(values)
    calls = ", ".join("set_config(%s, %s, true)" for _ in names)
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join("current_setting(%s)" for _ in names), names)
        old = cursor.fetchone()
        cursor.execute("SELECT " + calls, [x for n in names for x in (n, str(values[n]))])
    yield
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + calls, [x for n, v in zip(names, old, strict=True) for x in (n, v)])


def _page_rows(rows, limit: int) -> list:
    """The table's columns of the first ``limit`` rows; ``prompt_head`` (161 characters, all
    the table shows) instead of the whole prompt."""
    return list(
        rows.only(
            "id", "dataset_id", "domain", "source", "difficulty", "external_id", "has_tests"
        ).annotate(prompt_head=Left("prompt", 161))[:limit]
    )


class ProblemQuerySet(models.QuerySet):
    def filtered(
        self,
        *,
        dataset=None,
        domain: str = "",
        source: str = "",
        difficulty_min: float | None = None,
        difficulty_max: float | None = None,
        has_tests: bool | None = None,
        search: str = "",
    ):
        """The filters every problem table and recipe component shares."""
        qs = self
        if dataset is not None:
            qs = qs.filter(dataset=dataset)
        if domain:
            qs = qs.filter(domain=domain)
        if source:
            qs = qs.filter(source=source)
        if difficulty_min is not None:
            qs = qs.filter(difficulty_level__gte=difficulty_min)
        if difficulty_max is not None:
            qs = qs.filter(difficulty_level__lte=difficulty_max)
        if has_tests is not None:
            qs = qs.filter(has_tests=has_tests)
        if search:
            qs = qs.searched(search)
        return qs

    def searched(self, search: str):
        """Prompt contains ``search`` (any case), or external id equals it. On PostgreSQL the
        trigram index problem_prompt_trgm (migration 0010) finds rare words."""
        return self.filter(Q(prompt__icontains=search) | Q(external_id=search))

    def page_after(self, after: int | None, size: int = 50) -> list[Problem]:
        """Keyset pagination by id: constant cost on page 1 and on page 20,000. Returns up to
        ``size + 1`` rows (one more than the page: there is a next page)."""
        qs = self.order_by("id")
        if after:
            qs = qs.filter(id__gt=after)
        return _page_rows(qs, size + 1)

    def search_after(
        self, after: int | None, search: str, size: int = 50, budget: int | None = None
    ) -> SearchPage:
        """Matches of ``search`` (see ``searched``) after the keyset cursor ``after``, reading
        at most ``budget`` rows (``PROBLEM_SEARCH_SCAN_ROWS``) so that no request takes seconds.

        1. The next eighth of the budget is walked in id order (bitmap scans off: the walk
           stops at the page's last match), which fills the page for a common word.
        2. Unless those rows say the rest of the budget will fill it, PostgreSQL's trigram index
           (problem_prompt_trgm) is asked for all the remaining rows, under a statement timeout
           of about the time a walk of the budget takes: a rare word answers in milliseconds,
           but trigrams ignore word order, so for a phrase of common words nearly every prompt
           would be rechecked (~20 s in a dataset of 600k).
        3. When it times out (or on SQLite, which has no such index), the walk goes on to the
           end of the budget; the page holds the matches among the rows read and the next one
           continues from the last of them (``SearchPage.scanned``).
        """
        budget = budget or settings.PROBLEM_SEARCH_SCAN_ROWS
        first = max(1, budget // 8)
        qs = self.order_by("id")
        if after:
            qs = qs.filter(id__gt=after)

        def walk(rows: list, start: int | None, n: int) -> int | None:
            """Add the matches among the ``n`` rows after ``start`` (by id) to ``rows``; the
            id of the last of them, None when fewer than ``n`` are left."""
            part = qs.filter(id__gt=start) if start else qs
            bound = list(part.values_list("id", flat=True)[n - 1 : n])
            if bound:
                part = part.filter(id__lte=bound[0])
            with transaction.atomic(), _pg_local(enable_bitmapscan="off"):
                rows += _page_rows(part.searched(search), size + 1 - len(rows))
            return bound[0] if bound else None

        rows: list = []
        stop = walk(rows, None, first)
        promising = len(rows) * budget >= (size + 1) * first
        if len(rows) <= size and stop and not promising and connection.vendor == "postgresql":
            timeout = max(1, round(budget * SEARCH_ROW_MICROSECONDS / 1000))
            found = None
            try:
                with transaction.atomic(), _pg_local(statement_timeout=f"{timeout}ms"):
                    rest = qs.filter(id__gt=stop).searched(search)
                    found = _page_rows(rest, size + 1 - len(rows))
            except OperationalError as exc:
                # The timeout may also cancel putting the old settings back, after the rows
                # were read: those rows are still the answer (taking them and then walking
                # on from `stop` as well repeated every match after it).
                if not isinstance(exc.__cause__, QueryCanceled):
                    raise
            if found is not None:
                rows += found
                stop = None  # the index answered for every remaining row
        if len(rows) <= size and stop and budget > first:
            stop = walk(rows, stop, budget - first)
        if len(rows) > size:
            return SearchPage(rows[:size], next_after=rows[size - 1].pk)
        if not stop:
            return SearchPage(rows)
        return SearchPage(rows, next_after=stop, scanned=(qs.values_list("id", flat=True).first(), stop))

    def duplicate_report(self, dataset: Dataset) -> dict:
        mine = self.filter(dataset=dataset)
        repeated = (
            mine.values("content_hash").annotate(n=Count("id")).filter(n__gt=1)
        )
        within = sum(row["n"] - 1 for row in repeated)
        across = (
            self.filter(content_hash__in=mine.values("content_hash"))
            .exclude(dataset=dataset)
            .values("dataset__name")
            .annotate(n=Count("id"))
            .order_by("-n")
        )
        return {"within": within, "across": {row["dataset__name"]: row["n"] for row in across}}

    def insert_converted(self, dataset: Dataset, problems: list[dict], first_row: int) -> int:
        """Insert converted problems; PostgreSQL takes them through COPY (several times
        faster than multi-row INSERTs for rows of a few KB)."""
        rows = [
            (
                dataset.pk,
                first_row + i,
                p["domain"],
                (p["source"] or "")[:200],
                (p["difficulty"] or "")[:40] if p["difficulty"] is not None else "",
                p["difficulty_level"],
                p["prompt"],
                p["answer"] or "",
                p["solution"] or "",
                p["tests"],
                bool(p["tests"]),
                p["options"],
                (p["external_id"] or "")[:200],
                p["meta"],
                p["raw"],
                content_hash(p),
            )
            for i, p in enumerate(problems)
        ]
        if connection.vendor == "postgresql":
            return self._copy(rows)
        self.bulk_create(
            [Problem(**dict(zip(_ATTRS, row, strict=True))) for row in rows],
            batch_size=500,
        )
        return len(rows)

    def _copy(self, rows: list[tuple]) -> int:
        json_at = {_COLUMNS.index(c) for c in ("tests", "options", "meta", "raw")}
        columns = ", ".join(f'"{c}_id"' if c == "dataset" else f'"{c}"' for c in _COLUMNS)
        with connection.cursor() as cursor:
            raw_cursor = cursor.cursor  # psycopg 3 cursor: COPY ... FROM STDIN
            with raw_cursor.copy(
                f"COPY {Problem._meta.db_table} ({columns}) FROM STDIN"
            ) as copy:
                for row in rows:
                    copy.write_row(
                        [
                            None if (i in json_at and v is None) else
                            json.dumps(v, ensure_ascii=False) if i in json_at else v
                            for i, v in enumerate(row)
                        ]
                    )
        return len(rows)


class Problem(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="problems")
    row = models.PositiveIntegerField()  # 0-based position in the imported file
    domain = models.CharField(max_length=16, choices=Domain.choices)
    source = models.CharField(max_length=200)
    difficulty = models.CharField(max_length=40, blank=True)  # the raw label
    difficulty_level = models.FloatField(null=True, blank=True)  # numeric, per-source scale
    prompt = models.TextField()
    answer = models.TextField(blank=True)
    solution = models.TextField(blank=True)
    # {"style": "stdin"|"call"|"assert", "cases": [...], "fn_name": ...}
    tests = models.JSONField(null=True, blank=True)
    has_tests = models.BooleanField(default=False)
    options = models.JSONField(null=True, blank=True)  # multiple choice; answer is the letter
    external_id = models.CharField(max_length=200, blank=True)
    meta = models.JSONField(default=dict, blank=True)
    raw = models.JSONField(default=dict, blank=True)  # the original row, verbatim
    # SHA-256 of domain + normalised prompt (distill.datasets.hashing): duplicates within and
    # across datasets, and de-duplication of recipe components.
    content_hash = models.CharField(max_length=64, db_index=True)

    objects = ProblemQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [
            # Problem table of one dataset, keyset-paginated: WHERE dataset_id=? AND id>? ORDER BY id.
            models.Index(fields=["dataset", "id"], name="problem_dataset_page"),
            # Filtered tables and recipe previews: WHERE dataset_id=? AND domain=? [AND source=?]
            # [AND has_tests=?] GROUP BY source, domain; also serves keyset pages filtered by
            # domain. has_tests is included so a preview counts from the index alone (the bench
            # preview's p95 went from 1.2 s to 135 ms at 1M problems; docs/datasets.md).
            models.Index(
                fields=["dataset", "domain", "source", "difficulty_level"],
                include=["has_tests"],
                name="problem_dataset_filter",
            ),
            # Tables filtered by source alone (numina/amc_aime): WHERE dataset_id=? AND source=?;
            # the included columns let a preview component filtered by source and difficulty
            # (Sky-T1's numina/math ≥ 5) count from the index alone.
            models.Index(
                fields=["dataset", "source", "id"],
                include=["domain", "difficulty_level", "has_tests"],
                name="problem_dataset_source",
            ),
            # Text search: WHERE dataset_id=? AND (UPPER(prompt) LIKE ? OR external_id=?). This
            # arm of the OR lets PostgreSQL combine both in a BitmapOr with the trigram index
            # on UPPER(prompt) (PostgreSQL only, so created by migration 0010, not here).
            models.Index(fields=["dataset", "external_id"], name="problem_dataset_external_id"),
        ]

    def __str__(self) -> str:
        return f"{self.dataset_id}:{self.external_id or self.row}"

    def get_absolute_url(self) -> str:
        return reverse("problem_detail", args=[self.dataset_id, self.pk])


_COLUMNS = (
    "dataset",
    "row",
    "domain",
    "source",
    "difficulty",
    "difficulty_level",
    "prompt",
    "answer",
    "solution",
    "tests",
    "has_tests",
    "options",
    "external_id",
    "meta",
    "raw",
    "content_hash",
)
_ATTRS = ("dataset_id", *_COLUMNS[1:])


class ImportRun(QueuedRun):
    """Reads a file on a cpu worker and creates a Dataset, all or nothing.

    ``config``: {"path", "name", "layout", "mapping", "is_benchmark", "description",
    "source_override", "domain_override", "origin"}.
    """

    kind = "import"
    title = "Dataset imports"
    dataset = models.ForeignKey(
        Dataset, null=True, blank=True, on_delete=models.SET_NULL, related_name="imports"
    )
    # {"layout", "rows_read", "imported", "error_count", "errors": [{location, field, message}],
    #  "duplicates": {...}}
    result = models.JSONField(default=dict, blank=True)

    class Meta(QueuedRun.Meta):
        pass

