#!/usr/bin/env python
import os
import sys
from pathlib import Path


def load_env_file(path: Path) -> None:
    """KEY=VALUE lines of the .env that `make run` writes (the database, Redis and port it uses), so
    manage.py commands talk to the same services; variables already in the environment win."""
    if not path.is_file():
        return
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        os.environ.setdefault(key.strip(), value.strip())


def main() -> None:
    load_env_file(Path(os.environ.get("MONETIZE_ENV_FILE") or Path(__file__).resolve().parent / ".env"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "monetize.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
