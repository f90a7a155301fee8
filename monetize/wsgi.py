import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "monetize.settings")
application = get_wsgi_application()


def _warm() -> None:
    """Import both URLconfs (and with them every view, serializer and API module) when a worker
    starts, not in its first request: that request would otherwise take ~200 ms longer."""
    from django.conf import settings
    from django.urls import get_resolver

    for urlconf in (settings.ROOT_URLCONF, settings.PUBLIC_SCHEMA_URLCONF):
        get_resolver(urlconf).url_patterns  # noqa: B018  (resolving the patterns imports the modules)


_warm()
