from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView


class MeView(APIView):
    """Who am I: the tenant this host serves and the calling key's name and scopes."""

    @extend_schema(
        operation_id="me",
        responses=inline_serializer(
            "Me",
            {
                "tenant": inline_serializer(
                    "MeTenant", {"slug": serializers.CharField(), "name": serializers.CharField()}
                ),
                "api_key": inline_serializer(
                    "MeKey",
                    {
                        "id": serializers.IntegerField(),
                        "name": serializers.CharField(),
                        "prefix": serializers.CharField(),
                        "mode": serializers.CharField(),
                        "scopes": serializers.ListField(child=serializers.CharField()),
                    },
                ),
            },
        ),
    )
    def get(self, request):
        tenant, key = request.tenant, request.auth
        return Response(
            {
                "tenant": {"slug": tenant.slug, "name": tenant.name, "domain": tenant.domain_url},
                "api_key": {
                    "id": key.id,
                    "name": key.name,
                    "prefix": key.prefix,
                    "mode": key.mode,
                    "scopes": list(key.scopes),
                },
            }
        )


class PingView(APIView):
    """Unauthenticated liveness of the API stack (the baseline in bench/api_auth.py)."""

    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(
        operation_id="ping", responses=inline_serializer("Ping", {"ok": serializers.BooleanField()})
    )
    def get(self, request):
        return Response({"ok": True})
