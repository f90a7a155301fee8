"""requirements.txt alone installs a working app: every distribution the running app imports is
pinned there or declared by something pinned there (issue 10 item 25: kombu's redis transport imports
`packaging` without declaring it, so a fresh `pip install -r requirements.txt` broke the worker)."""

import importlib.metadata as md
import json
import re
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent

# what the app imports at run time: settings, URLs (every app), the Celery app with its Redis transport
PROBE = """
import importlib.metadata as md, json, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "monetize.settings")
import django; django.setup()
import monetize.urls_public, monetize.urls_tenant, monetize.wsgi, monetize.celery
import kombu.transport.redis, gunicorn.app.wsgiapp, honcho
dists = md.packages_distributions()
used = set()
for name in list(sys.modules):
    for dist in dists.get(name.split(".")[0], []):
        used.add(dist)
print(json.dumps(sorted(used)))
"""


# pip/setuptools come with every venv; the rest are imported only when present (celery probes greenlet,
# httpx probes rich/pygments for its CLI) and arrive here with the dev tools
OPTIONAL = {"pip", "setuptools", "greenlet", "rich", "pygments"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _closure(pins: list[str]) -> set[str]:
    seen: set[str] = set()
    todo = [Requirement(p) for p in pins]
    while todo:
        req = todo.pop()
        name = _norm(req.name)
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = md.requires(req.name) or []
        except md.PackageNotFoundError:
            continue
        extras = req.extras
        for spec in requires:
            dep = Requirement(spec)
            if dep.marker and not any(dep.marker.evaluate({"extra": e}) for e in (extras or {""})):
                continue
            todo.append(dep)
    return seen


def test_requirements_txt_declares_every_distribution_the_app_imports():
    pins = [
        line.split("#")[0].strip()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    declared = _closure(pins)

    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    used = {_norm(d) for d in json.loads(out.stdout.strip().splitlines()[-1])}
    missing = used - declared - OPTIONAL
    assert not missing, f"imported at run time but not installed by requirements.txt: {missing}"
