"""Real model transcripts into a curation run: the GPT-3.5, GPT-4, GPT-4 Turbo and PaLM 2 answers
to CHAMP's competition problems that the `champ-dataset` pip package carries, imported as
"bring your own traces" (JSONL of prompt/response, matched to a recipe version by problem id)
into a run that starts at verification. Idempotent; the demo runs it (create_demo).

    manage.py import_champ_traces [--problems 40] [--reformat] [--no-execute]

Without ``--reformat`` the run verifies and exports in this process (a few seconds for 160
transcripts) and its page shows a real funnel: what four models answered, what the verifier
accepted, what was exported. With ``--reformat`` it is sent to a worker (the reformatter must be
up; the demo's is a 135M model on the CPU, so keep ``--problems`` small).
"""

from __future__ import annotations

import json

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError

from distill.curation.traces import TraceFormatError
from distill.datasets import packaged_datasets
from experiments.forms.curation import imported_run_fields, read_traces
from experiments.models import CurationRun, Dataset, Recipe, RecipeComponent, RecipeVersion
from workers.runner import execute

RECIPE = "champ-transcripts"
RUN_NAME = "CHAMP transcripts of four models (imported)"
# CHAMP's conversations are keyed "<model>|<prompting>"; zero-shot is the plain question.
MODELS = ("GPT-3.5", "GPT-4", "GPT-4 Turbo", "PaLM 2 Medium")
PROMPTING = "0-Shot"


def transcripts(path, identifiers: set[str]) -> bytes:
    """JSONL (id, prompt, response, model) of the zero-shot transcripts of ``identifiers``: the
    user message the model was sent and its first answer, as the package stores them."""
    data = json.loads(path.read_text(encoding="utf-8"))
    lines = []
    for ident, problem in sorted(data["problems"].items()):
        if ident not in identifiers:
            continue
        for model in MODELS:
            conversation = (problem.get("conversations") or {}).get(f"{model}|{PROMPTING}")
            messages = (conversation or {}).get("messages") or []
            user = next((m["text"] for m in messages if m.get("role") == "User"), None)
            answer = next((m for m in messages if str(m.get("role")).startswith("Model.")), None)
            if not user or not answer or not answer.get("text"):
                continue
            lines.append(json.dumps({
                "id": ident, "prompt": user, "response": answer["text"], "model": model,
                "finish_reason": "length" if answer.get("error") else "stop"}))
    return "\n".join(lines).encode()


class Command(BaseCommand):
    help = "Import the CHAMP package's model transcripts into a curation run (starts at verify)."

    def add_arguments(self, parser):
        parser.add_argument("--problems", type=int, default=40,
                            help="CHAMP problems to take (4 transcripts each)")
        parser.add_argument("--reformat", action="store_true",
                            help="reformat too (the run goes to a worker)")
        parser.add_argument("--no-execute", action="store_true",
                            help="launch to a worker instead of running it here")
        parser.add_argument("--username", default="demo")

    def handle(self, *args, problems: int, reformat: bool, no_execute: bool, username: str,
               **options):
        if CurationRun.objects.filter(name=RUN_NAME).exists():
            self.stdout.write(f"curation: {RUN_NAME!r} exists")
            return
        packaged = next((p for p in packaged_datasets() if p.name == "champ"), None)
        dataset = Dataset.objects.ready().filter(name="champ").first()
        if packaged is None or dataset is None:
            self.stdout.write("curation: CHAMP transcripts skipped (the champ dataset is not "
                              "imported or the champ-dataset package is missing)")
            return
        user = User.objects.filter(username=username).first()
        version = self.version(dataset, problems, user)
        identifiers = set(version.items.values_list("problem__external_id", flat=True))
        try:
            fmt, traces, problem_ids = read_traces(
                transcripts(packaged.path, identifiers), "jsonl", version=version)
        except TraceFormatError as e:
            raise CommandError(f"CHAMP transcripts: {e}") from e
        fields = imported_run_fields(
            traces, problem_ids, fmt=fmt, file_name=f"{packaged.path.name} (champ-dataset)",
            version=version, name=RUN_NAME, training_set="champ-transcripts-verified",
            reformat=None if reformat else {"enabled": False})
        if reformat or no_execute:
            run = CurationRun.launch(user=user, **fields)
            self.stdout.write(f"curation: {len(traces)} CHAMP transcripts imported, run {run.pk} "
                              f"sent to the {run.queue} queue")
            return
        run = CurationRun.create_queued(user=user, **fields)
        state = execute("curation", run.pk)
        run.refresh_from_db()
        verify = (run.counts or {}).get("verify") or {}
        self.stdout.write(
            f"curation: {len(traces)} CHAMP transcripts of {len(MODELS)} models imported into "
            f"run {run.pk}: {state}, {verify.get('passed', 0)} verified, "
            f"{run.exported_rows or 0} exported")

    def version(self, dataset: Dataset, problems: int, user) -> RecipeVersion:
        recipe = Recipe.objects.filter(name=RECIPE).first()
        if recipe is None:
            recipe = Recipe.objects.create(
                name=RECIPE, created_by=user,
                description="CHAMP problems whose model transcripts the champ-dataset package "
                            "carries (imported into a curation run at verification).")
            RecipeComponent.objects.create(recipe=recipe, dataset=dataset, title="champ",
                                           count=problems, seed=1)
        return recipe.latest_version() or RecipeVersion.materialise(
            recipe, recipe.spec(), user=user)[0]
