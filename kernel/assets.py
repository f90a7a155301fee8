"""Front-end libraries from npm (package.json + package-lock.json, installed by `npm ci` in
`scripts/dev.sh install`), served by whitenoise under /static/vendor/ — only the files listed here,
never the rest of node_modules, never a CDN, never a copy in the repository.

A missing node_modules is a system-check warning that says what to run; the pages still render
(without their styles and scripts), never a 500.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import Warning as CheckWarning
from django.core.checks import register
from django.core.files.storage import FileSystemStorage

PREFIX = "vendor"
# what the pages load: path under node_modules (also the path under /static/vendor/)
FILES = (
    "@picocss/pico/css/pico.min.css",
    "htmx.org/dist/htmx.min.js",
    "chart.js/dist/chart.umd.min.js",
)
INSTALL_HINT = "Run `make install` (or `npm ci` at the repository root) to install the front-end libraries."


def node_modules() -> str:
    return str(getattr(settings, "NODE_MODULES_DIR", settings.BASE_DIR / "node_modules"))


def missing_files() -> list[str]:
    root = node_modules()
    return [name for name in FILES if not os.path.isfile(os.path.join(root, name))]


class VendorFinder(BaseFinder):
    """staticfiles finder for FILES under node_modules, at static/vendor/<package path>."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.storage = FileSystemStorage(location=node_modules())
        self.storage.prefix = PREFIX

    def check(self, **kwargs):
        return []

    def find(self, path, find_all=False, **kwargs):
        # Django 5.2 renamed `all` to `find_all`; accept both
        find_all = find_all or kwargs.get("all", False)
        prefix = PREFIX + "/"
        name = path[len(prefix) :] if path.startswith(prefix) else None
        if name not in FILES:
            return [] if find_all else None
        full = os.path.join(node_modules(), name)
        if not os.path.isfile(full):
            return [] if find_all else None
        return [full] if find_all else full

    def list(self, ignore_patterns):
        for name in FILES:
            if os.path.isfile(os.path.join(node_modules(), name)):
                yield name, self.storage


@register()
def vendor_files_check(app_configs, **kwargs):
    missing = missing_files()
    if not missing:
        return []
    return [
        CheckWarning(
            f"Front-end libraries missing from {node_modules()}: {', '.join(missing)}.",
            hint=INSTALL_HINT,
            id="kernel.W001",
        )
    ]
