from pathlib import Path

from django.core.management.base import BaseCommand
from django.utils import translation

from rallypoint.tenants.roles import render_roles_markdown


class Command(BaseCommand):
    help = "Write docs/roles.md from the role → permission table in code."

    def add_arguments(self, parser):
        parser.add_argument("--output", default="docs/roles.md")

    def handle(self, *args, output, **options):
        with translation.override("en"):
            text = render_roles_markdown()
        Path(output).write_text(text, encoding="utf-8")
        self.stdout.write(f"wrote {output}")
