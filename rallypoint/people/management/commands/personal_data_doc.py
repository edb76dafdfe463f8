from pathlib import Path

from django.core.management.base import BaseCommand
from django.utils import translation

from rallypoint.people.personal_data import render_markdown


class Command(BaseCommand):
    help = "Write docs/personal-data.md from the declarations of personal data beside the models."

    def add_arguments(self, parser):
        parser.add_argument("--output", default="docs/personal-data.md")

    def handle(self, *args, output, **options):
        with translation.override("en"):
            text = render_markdown()
        Path(output).write_text(text, encoding="utf-8")
        self.stdout.write(f"wrote {output}")
