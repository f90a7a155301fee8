import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "monetize.settings")
application = get_wsgi_application()

from django.conf import settings  # noqa: E402

from monetize.hotpath import HotPathWSGI  # noqa: E402  (needs the settings configured)
from monetize.middleware import ChunkedBodyWSGI  # noqa: E402

application = ChunkedBodyWSGI(HotPathWSGI(application) if settings.API_FAST_LANE else application)


def _warm() -> None:
    """Import both URLconfs (and with them every view, serializer and API module) when a worker
    starts, not in its first request: that request would otherwise take ~200 ms longer."""
    from django.conf import settings
    from django.urls import get_resolver

    for urlconf in (settings.ROOT_URLCONF, settings.PUBLIC_SCHEMA_URLCONF):
        get_resolver(urlconf).url_patterns  # noqa: B018  (resolving the patterns imports the modules)


_warm()


def _freeze() -> None:
    """Move everything loaded so far (Django, every app module) out of the cyclic garbage
    collector's reach. Without it each full collection walks those ~half a million objects again;
    a batch of 1,000 usage events allocates enough to trigger several, which took ~1/3 of the
    worker's CPU on ingestion (bench/ingest.py)."""
    import gc

    gc.collect()
    gc.freeze()


_freeze()
