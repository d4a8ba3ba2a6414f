"""Mixture recipes: components over datasets, materialised into immutable numbered versions.

Selection is deterministic: within a component, candidates are ordered by
sha256(seed, content hash), so the same recipe, seed and data pick the same problems, whatever
the row ids or the order the datasets were imported in. A problem already chosen by an earlier
component (same content hash) is skipped, and so is a contaminated one when the recipe says so.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field

from django.conf import settings
from django.db import models, transaction
from django.db.models import Count, Max
from django.urls import reverse
from django.utils import timezone

from distill.datasets import build_index
from experiments.errors import UserError

from .datasets import Dataset, Domain, Problem
from .runs import QueuedRun

# The Sky-T1 report's mixture: ~5k code from APPs + TACO, ~10k NuminaMath (AIME/AMC, MATH,
# olympiads; easy problems filtered out by the GPT difficulty rating), ~1k STILL-2 science and
# puzzles, taken without verification. Each entry: (title, layout, component fields, count).
SKY_T1_PRESET = (
    ("APPs code", "apps", {"domain": "code", "has_tests": True}, 2500),
    ("TACO code", "taco", {"domain": "code", "has_tests": True}, 2500),
    ("Numina AMC/AIME", "numina", {"source": "numina/amc_aime"}, 2500),
    ("Numina MATH", "numina", {"source": "numina/math", "difficulty_min": 5}, 3500),
    ("Numina olympiads", "numina", {"source": "numina/olympiads", "difficulty_min": 6}, 4000),
    ("STILL-2 science", "still2", {"domain": "science", "verify": False}, 700),
    ("STILL-2 puzzles", "still2", {"domain": "puzzle", "verify": False}, 300),
)


class RecipeQuerySet(models.QuerySet):
    def with_version_counts(self):
        return self.annotate(n_versions=Count("versions"), latest=Max("versions__number"))


class Recipe(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    # Decontamination: a chosen problem whose n-gram overlap with a benchmark set reaches the
    # threshold (share of its 13-grams found in the benchmark) is reported, and left out
    # when ``exclude_contaminated``.
    contamination_threshold = models.FloatField(default=0.2)
    exclude_contaminated = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = RecipeQuerySet.as_manager()

    class Meta:
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("recipe_detail", args=[self.pk])

    def spec(self) -> dict:
        """Everything a materialisation depends on besides the data: frozen into the build."""
        return {
            "contamination_threshold": self.contamination_threshold,
            "exclude_contaminated": self.exclude_contaminated,
            "components": [c.spec() for c in self.components.order_by("position", "id")],
        }

    def latest_version(self) -> RecipeVersion | None:
        return self.versions.order_by("-number").first()

    @classmethod
    def create_sky_t1(cls, name: str, user=None) -> tuple[Recipe, list[str]]:
        """The published Sky-T1 mixture over the datasets this installation has; returns the
        recipe and the parts it could not fill (no dataset of that layout imported)."""
        recipe = cls.objects.create(
            name=name,
            description="Sky-T1-32B-Preview mixture: APPs + TACO code, NuminaMath "
            "AMC/AIME, MATH and olympiads filtered by difficulty, STILL-2 science and puzzles "
            "(taken without verification).",
            created_by=user,
        )
        missing = []
        position = 0
        for title, layout, filters, count in SKY_T1_PRESET:
            datasets = Dataset.objects.filter(layout=layout, is_benchmark=False).order_by("pk")
            if not datasets:
                missing.append(f"{title} (no {layout} dataset imported)")
                continue
            for dataset in datasets:
                RecipeComponent.objects.create(
                    recipe=recipe,
                    position=position,
                    title=title,
                    dataset=dataset,
                    count=max(1, count // len(datasets)),
                    **filters,
                )
                position += 1
        return recipe, missing


class RecipeComponent(models.Model):
    recipe = models.ForeignKey(Recipe, on_delete=models.CASCADE, related_name="components")
    position = models.PositiveIntegerField(default=0)
    title = models.CharField(max_length=200, blank=True)
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="+")
    domain = models.CharField(max_length=16, choices=Domain.choices, blank=True)
    source = models.CharField(max_length=200, blank=True)
    difficulty_min = models.FloatField(null=True, blank=True)
    difficulty_max = models.FloatField(null=True, blank=True)
    has_tests = models.BooleanField(null=True, blank=True)
    search = models.CharField(max_length=200, blank=True)
    count = models.PositiveIntegerField(null=True, blank=True)
    fraction = models.FloatField(null=True, blank=True)
    seed = models.IntegerField(default=0)
    # Reject sampling per component: off keeps every sample the teacher finished (cut at
    # max_tokens or empty is still dropped) without looking at its answer, as Sky-T1 took
    # STILL-2's science and puzzle data. Frozen into the version's spec like the filters.
    verify = models.BooleanField(
        "Verify samples (reject sampling)",
        default=True,
        help_text="Off: every finished sample is kept without checking, as Sky-T1 took "
        "STILL-2's science and puzzle data.",
    )

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.title or f"{self.dataset} component"

    def spec(self) -> dict:
        return {
            "title": self.title,
            "dataset": self.dataset_id,
            "dataset_name": self.dataset.name,
            "domain": self.domain,
            "source": self.source,
            "difficulty_min": self.difficulty_min,
            "difficulty_max": self.difficulty_max,
            "has_tests": self.has_tests,
            "search": self.search,
            "count": self.count,
            "fraction": self.fraction,
            "seed": self.seed,
            "verify": self.verify,
        }


def component_verifies(spec: dict) -> bool:
    """A frozen component spec's verification policy (specs frozen before the policy existed
    have no key: they were verified)."""
    return bool(spec.get("verify", True))


def fingerprint_spec(spec: dict) -> dict:
    """The spec as the fingerprint sees it: ``verify`` only where it is off, so a version
    frozen before the policy existed and an unchanged rebuild of it fingerprint alike."""
    components = [
        {k: v for k, v in c.items() if not (k == "verify" and v is True)}
        for c in spec["components"]
    ]
    return {**spec, "components": components}


def candidates_for(spec: dict):
    return Problem.objects.filtered(
        dataset=spec["dataset"],
        domain=spec["domain"],
        source=spec["source"],
        difficulty_min=spec["difficulty_min"],
        difficulty_max=spec["difficulty_max"],
        has_tests=spec["has_tests"],
        search=spec["search"],
    )


def wanted(spec: dict, available: int) -> int:
    if spec["count"] is not None:
        return min(spec["count"], available)
    return min(available, round((spec["fraction"] or 0) * available))


def preview(spec: dict) -> dict:
    """Expected composition without choosing: per component, the filtered counts by source
    and domain scaled to the share it takes. Duplicates across components are not removed
    here (materialising does that), so totals are an upper bound."""
    by_source: Counter = Counter()
    by_domain: Counter = Counter()
    components = []
    for comp in spec["components"]:
        groups = list(
            candidates_for(comp).order_by().values("source", "domain").annotate(n=Count("id"))
        )
        available = sum(g["n"] for g in groups)
        take = wanted(comp, available)
        share = take / available if available else 0
        for g in groups:
            by_source[g["source"]] += g["n"] * share
            by_domain[g["domain"]] += g["n"] * share
        components.append({"title": comp["title"], "available": available, "take": take})
    return {
        "components": components,
        "total": sum(c["take"] for c in components),
        "by_source": {k: round(v) for k, v in by_source.most_common()},
        "by_domain": {k: round(v) for k, v in by_domain.most_common()},
    }


def _order_key(seed: int, content_hash: str) -> bytes:
    return hashlib.sha256(f"{seed}\x00{content_hash}".encode()).digest()


@dataclass
class Selection:
    items: list[tuple[int, int]] = field(default_factory=list)  # (problem id, component)
    contamination: list[dict] = field(default_factory=list)
    components: list[dict] = field(default_factory=list)


def select(spec: dict, index=None, progress=None) -> Selection:
    """Choose the problems of every component; ``index`` is a benchmark NgramIndex."""
    threshold = spec["contamination_threshold"]
    exclude = spec["exclude_contaminated"]
    chosen_hashes: set[str] = set()
    selection = Selection()
    for ci, comp in enumerate(spec["components"]):
        candidates = list(candidates_for(comp).order_by().values_list("id", "content_hash"))
        candidates.sort(key=lambda c: (_order_key(comp["seed"], c[1]), c[0]))
        want = wanted(comp, len(candidates))
        taken = duplicates = excluded = 0
        position = 0
        while taken < want and position < len(candidates):
            chunk = candidates[position : position + max(want - taken, 200)]
            position += len(chunk)
            prompts = (
                dict(Problem.objects.filter(id__in=[c[0] for c in chunk]).values_list("id", "prompt"))
                if index is not None
                else {}
            )
            for pid, content_hash in chunk:
                if taken >= want:
                    break
                if content_hash in chosen_hashes:
                    duplicates += 1
                    continue
                chosen_hashes.add(content_hash)
                if index is not None:
                    overlap = index.check(prompts[pid])
                    if overlap.contaminated and overlap.fraction >= threshold:
                        selection.contamination.append(
                            {
                                "problem": pid,
                                "component": ci,
                                "fraction": round(overlap.fraction, 3),
                                "benchmarks": overlap.item_ids[:5],
                                "excluded": exclude,
                            }
                        )
                        if exclude:
                            excluded += 1
                            continue
                selection.items.append((pid, ci))
                taken += 1
        selection.components.append(
            {
                "title": comp["title"] or comp["dataset_name"],
                "available": len(candidates),
                "wanted": comp["count"] if comp["count"] is not None else want,
                "taken": taken,
                "duplicates_skipped": duplicates,
                "contaminated_excluded": excluded,
            }
        )
        if progress:
            progress(ci + 1, len(spec["components"]))
    return selection


def benchmark_index(exclude_datasets: set[int] = frozenset()):
    """An n-gram index over every registered benchmark set, or None when there is none."""
    rows = (
        Problem.objects.filter(dataset__is_benchmark=True)
        .exclude(dataset__in=exclude_datasets)
        .values_list("dataset__name", "external_id", "id", "prompt")
        .iterator(chunk_size=2000)
    )
    items = ((f"{name}:{ext or pk}", prompt) for name, ext, pk, prompt in rows)
    index = build_index(items)
    return index if len(index) else None


class RecipeVersion(models.Model):
    """An immutable, numbered materialisation: exactly which problems were chosen."""

    recipe = models.ForeignKey(Recipe, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    spec = models.JSONField()
    # sha256 of the spec and the chosen problems: two builds with equal fingerprints chose the
    # same problems for the same recipe.
    fingerprint = models.CharField(max_length=64)
    problem_count = models.PositiveIntegerField(default=0)
    composition = models.JSONField(default=dict)  # {"source": {...}, "domain": {...}}
    components = models.JSONField(default=list)  # per-component available/taken/skipped
    contamination = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    problems = models.ManyToManyField(Problem, through="RecipeItem", related_name="+")

    class Meta:
        ordering = ["recipe", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["recipe", "number"], name="recipe_version_number")
        ]

    def __str__(self) -> str:
        return f"{self.recipe.name} v{self.number}"

    def get_absolute_url(self) -> str:
        return reverse("recipe_version", args=[self.recipe_id, self.number])

    def problem_ids(self) -> set[int]:
        return set(self.items.values_list("problem_id", flat=True))

    @classmethod
    def materialise(cls, recipe: Recipe, spec: dict, user=None, progress=None) -> tuple[RecipeVersion, bool]:
        """Choose the problems and store a new version; when the result is identical to the
        latest version, return that one instead (False: nothing new was created)."""
        if not spec["components"]:
            raise UserError("the recipe has no components")
        index = benchmark_index()
        selection = select(spec, index, progress)
        ids = [pid for pid, _ in selection.items]
        fingerprint = hashlib.sha256(
            json.dumps([fingerprint_spec(spec), selection.items], sort_keys=True).encode()
        ).hexdigest()
        latest = recipe.latest_version()
        if latest is not None and latest.fingerprint == fingerprint:
            return latest, False
        composition = {"source": Counter(), "domain": Counter()}
        for row in (
            Problem.objects.filter(id__in=ids).order_by().values("source", "domain").annotate(n=Count("id"))
        ):
            composition["source"][row["source"]] += row["n"]
            composition["domain"][row["domain"]] += row["n"]
        prompts = dict(
            Problem.objects.filter(id__in=[c["problem"] for c in selection.contamination])
            .values_list("id", "prompt")
        )
        for c in selection.contamination:
            c["prompt"] = prompts.get(c["problem"], "")[:200]
        with transaction.atomic():
            number = (recipe.versions.aggregate(n=Max("number"))["n"] or 0) + 1
            version = cls.objects.create(
                recipe=recipe,
                number=number,
                spec=spec,
                fingerprint=fingerprint,
                problem_count=len(ids),
                composition={k: dict(v.most_common()) for k, v in composition.items()},
                components=selection.components,
                contamination=selection.contamination,
                created_by=user,
            )
            RecipeItem.objects.bulk_create(
                [
                    RecipeItem(version=version, problem_id=pid, component=ci, position=i)
                    for i, (pid, ci) in enumerate(selection.items)
                ],
                batch_size=2000,
            )
        return version, True


class RecipeItem(models.Model):
    version = models.ForeignKey(RecipeVersion, on_delete=models.CASCADE, related_name="items")
    problem = models.ForeignKey(Problem, on_delete=models.PROTECT, related_name="+")
    component = models.PositiveIntegerField()
    position = models.PositiveIntegerField()

    class Meta:
        ordering = ["version", "position"]
        constraints = [
            models.UniqueConstraint(fields=["version", "problem"], name="recipe_item_once")
        ]

    def __str__(self) -> str:
        return f"{self.version_id}:{self.problem_id}"


class RecipeBuildRun(QueuedRun):
    """Materialises a recipe on a cpu worker. ``config`` holds the frozen recipe spec."""

    kind = "recipe"
    title = "Recipe builds"
    recipe = models.ForeignKey(Recipe, on_delete=models.CASCADE, related_name="builds")
    version = models.ForeignKey(
        RecipeVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    result = models.JSONField(default=dict, blank=True)

    class Meta(QueuedRun.Meta):
        pass

