"""Factories for curation tests: datasets, problems, recipe versions and curation runs that
talk to the local OpenAI-protocol stub."""

from __future__ import annotations

from experiments.models import (
    CurationRun,
    Dataset,
    Problem,
    PromptVersion,
    Recipe,
    RecipeItem,
    RecipeVersion,
)

SECRET = "sk-test-curation-secret-0123456789"


def make_dataset(name: str = "mixed") -> Dataset:
    return Dataset.objects.create(name=name, layout="test", ready=True)


def make_problem(dataset: Dataset, row: int, *, prompt: str, answer: str = "", domain="math",
                 source="test/math", difficulty="1", tests=None, options=None) -> Problem:
    return Problem.objects.create(
        dataset=dataset, row=row, domain=domain, source=source, difficulty=difficulty,
        prompt=prompt, answer=answer, tests=tests, has_tests=bool(tests), options=options,
        content_hash=f"{dataset.pk}-{row}")


def make_version(problems: list[Problem], name: str = "demo") -> RecipeVersion:
    recipe = Recipe.objects.create(name=name)
    version = RecipeVersion.objects.create(recipe=recipe, number=1, spec={"components": []},
                                           fingerprint=name, problem_count=len(problems))
    RecipeItem.objects.bulk_create([RecipeItem(version=version, problem=p, component=0,
                                               position=i) for i, p in enumerate(problems)])
    return version


def echo_problems(n: int, dataset: Dataset | None = None, wrong_every: int = 0) -> list[Problem]:
    """Problems the stub's echo answers correctly: the prompt ends with the boxed answer
    (every ``wrong_every``-th has a different reference answer, so verification rejects it)."""
    dataset = dataset or make_dataset()
    out = []
    for i in range(n):
        answer = str(i + 100) if wrong_every and i % wrong_every == 0 else str(i)
        out.append(make_problem(
            dataset, i, prompt=f"Problem {i}: add {i} and 0.\n\nThe answer is $\\boxed{{{i}}}$",
            answer=answer, source="even" if i % 2 == 0 else "odd"))
    return out


def make_run(version: RecipeVersion, stub_url: str, **config) -> CurationRun:
    defaults = PromptVersion.objects.ensure_defaults()
    base = {
        "backend": "openai", "model": "stub-teacher", "base_url": stub_url, "n": 1,
        "sampling": {"temperature": 0.0, "max_tokens": 512, "seed": 7}, "chunk_size": 4,
        "backend_options": {"concurrency": 4, "max_attempts": 5, "backoff_base_s": 0.01},
        "reformat": {"model": "stub-reformatter", "base_url": stub_url, "max_tokens": 4096,
                     "concurrency": 4, "max_attempts": 5, "backoff_base_s": 0.01},
        "verify": {"workers": 1},
    }
    base.update(config)
    return CurationRun.objects.create(
        name="test curation", queue="api", recipe_version=version, config=base,
        system_prompt=defaults["system"], template=defaults["template"],
        convert_prompt=defaults["convert"])
