"""A tenant's branding on its pages, its hosted sandbox checkout and its emails: its name, logo,
colour and support address.

The colour drives Pico's primary colour. Links and outlined buttons need 4.5:1 against the white
page, so a light brand colour is darkened for them until it has it; a filled button gets black or
white text, whichever reads better on the brand colour (WCAG's relative luminance).
"""

from __future__ import annotations

import re

_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


def _luminance(rgb: tuple[int, int, int]) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#" + "".join(f"{max(0, min(255, round(v))):02x}" for v in rgb)


def _darker(rgb: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    return tuple(round(v * factor) for v in rgb)  # type: ignore[return-value]


WHITE, BLACK = (255, 255, 255), (0, 0, 0)


def brand_palette(color: str) -> dict[str, str] | None:
    """Pico's primary variables for a brand colour (#RRGGBB); None for no or a malformed colour."""
    if not color or not _HEX.match(color):
        return None
    base = _rgb(color.lower())
    text = base
    while contrast(text, WHITE) < 4.5:  # links and outlines on the white page
        text = _darker(text, 0.9)
    inverse = WHITE if contrast(base, WHITE) >= contrast(base, BLACK) else BLACK
    hover = _darker(base, 0.85)
    return {
        "--pico-primary": _hex(text),
        "--pico-primary-background": _hex(base),
        "--pico-primary-border": _hex(base),
        "--pico-primary-underline": _hex(text) + "80",
        "--pico-primary-hover": _hex(_darker(text, 0.85)),
        "--pico-primary-hover-background": _hex(hover),
        "--pico-primary-hover-border": _hex(hover),
        "--pico-primary-focus": _hex(base) + "40",
        "--pico-primary-inverse": _hex(inverse),
    }


def brand_css(color: str) -> str:
    """`:root{…}` for the layout's <style>, or "" (only hex digits ever reach it)."""
    palette = brand_palette(color)
    if palette is None:
        return ""
    return ":root{" + "".join(f"{name}:{value};" for name, value in palette.items()) + "}"


def branding(request) -> dict:
    """Context processor: `brand` for the layout (name, colour CSS, logo URL, support address)."""
    tenant = getattr(request, "tenant", None)
    if tenant is None or getattr(tenant, "is_public", True):
        return {"brand": {"name": "Monetize", "css": "", "logo_url": "", "support_email": ""}}
    from tenants.selectors import tenant_logo_meta

    logo = tenant_logo_meta(tenant=tenant)
    return {
        "brand": {
            "name": tenant.name,
            "css": brand_css(tenant.brand_color),
            "logo_url": f"/brand/logo.png?v={int(logo[0].timestamp())}" if logo else "",
            "logo_size": (logo[1], logo[2]) if logo else None,
            "support_email": tenant.support_email,
        }
    }
