from django import template

from kernel.money import format_amount

register = template.Library()


@register.simple_tag
def money(amount, currency):
    return format_amount(amount, currency)


@register.filter
def percent_of(used, limit):
    """Width of a usage bar, 0-100."""
    if not limit:
        return 100 if used else 0
    return max(0, min(100, round(100 * (used or 0) / limit)))
