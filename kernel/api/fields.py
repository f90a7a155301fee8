"""Serializer fields that do not coerce: a number where a string belongs is a 400, not "12"."""

from rest_framework import serializers

BIGINT_MAX = 2**63 - 1  # PostgreSQL bigint; a larger integer is a 400, never a DataError (500)
INT_MAX = 2**31 - 1  # PostgreSQL integer


class _Strict:
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(_Strict, serializers.CharField):
    default_error_messages = {"invalid": "Must be a string."}


class StrictRegexField(_Strict, serializers.RegexField):
    default_error_messages = {"invalid": "Must be a string matching the documented format."}
