"""The ``rallypoint`` console script: a thin wrapper over Django's management commands."""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rallypoint.settings")
    from django.core.management import execute_from_command_line  # after the settings module is set

    args = sys.argv[1:]
    if args and not args[0].startswith("-"):
        args[0] = args[0].replace("-", "_")  # `rallypoint rotate-keys` runs the command rotate_keys
    execute_from_command_line(["rallypoint", *args])


if __name__ == "__main__":
    main()
