from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing.inbox.services import inbox_receive
from billing.providers.base import WebhookIgnored, WebhookVerificationFailed
from billing.providers.models import ProviderName
from kernel.api.errors import error_body


@csrf_exempt
@require_POST
def receive(request, provider: str):
    """`POST /webhooks/<provider>/`: verified and stored before the 200; applied by Celery."""
    if provider not in ProviderName.values:
        return JsonResponse(error_body("unknown_provider", f"No provider '{provider}'."), status=404)
    headers = {name.lower(): value for name, value in request.headers.items()}
    try:
        event, created = inbox_receive(provider=provider, body=request.body, headers=headers)
    except WebhookIgnored:  # an event type we do not use: acknowledged so the provider stops retrying
        return JsonResponse({"received": True, "ignored": True})
    except WebhookVerificationFailed as exc:
        return JsonResponse(error_body(exc.code, exc.message), status=400)
    return JsonResponse({"received": True, "duplicate": not created})
