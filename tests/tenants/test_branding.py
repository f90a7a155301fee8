"""Tenant branding (issue 13 item 8): the owner sets a colour and a support address on /settings/;
its pages, the hosted sandbox checkout and its emails carry its name, logo, colour and address."""

import io
import re

import pytest
from django.core import mail
from PIL import Image

from tenants.branding import WHITE, brand_css, brand_palette, contrast
from tenants.middleware import tenant_cache_clear
from tenants.models import Tenant
from tests.accounts.test_pages import _login

SETTINGS = {"rate_limit_failure_mode": "open", "unknown_usage_customer": "reject", "invoice_address": ""}


@pytest.fixture
def restore(alpha):
    yield
    Tenant.objects.filter(pk=alpha.tenant.pk).update(brand_color="", support_email="")
    alpha.tenant.brand_color, alpha.tenant.support_email = "", ""
    tenant_cache_clear()


def _text(response) -> str:
    return " ".join(response.content.decode().split())


@pytest.mark.parametrize("color", ["#2563eb", "#ffeb3b", "#000000", "#ffffff", "#10b981"])
def test_links_keep_4_5_to_1_on_white_and_buttons_get_readable_text(color):
    palette = brand_palette(color)
    rgb = lambda h: (int(h[1:3], 16), int(h[3:5], 16), int(h[5:7], 16))  # noqa: E731
    assert contrast(rgb(palette["--pico-primary"]), WHITE) >= 4.5
    background, text = rgb(palette["--pico-primary-background"]), rgb(palette["--pico-primary-inverse"])
    assert background == rgb(color) and contrast(background, text) >= 3.0


@pytest.mark.parametrize(
    "hostile", ["", "red", "#12345", "#1234567", "#gggggg", "#123456;}body{display:none"]
)
def test_only_a_hex_colour_ever_reaches_the_css(hostile):
    assert brand_css(hostile) == ""


def test_the_owner_brands_the_pages_checkout_and_emails(alpha, restore):
    owner = _login(alpha)
    response = owner.post(
        "/settings/", {**SETTINGS, "brand_color": "#10B981", "support_email": "help@alpha.test"}, follow=True
    )
    assert response.status_code == 200 and "Settings saved." in _text(response)
    tenant_cache_clear()
    page = alpha.client().get("/pricing/")
    html = page.content.decode()
    assert re.search(r"<style>:root\{--pico-primary:#[0-9a-f]{6};--pico-primary-background:#10b981;", html)
    assert 'href="mailto:help@alpha.test"' in html
    # the verification email: sent as Alpha, replies to the support address
    alpha.client().post(
        "/accounts/signup/",
        {"email": "brand@alpha.test", "password1": "Sup3r-secret-pw", "password2": "Sup3r-secret-pw"},
    )
    message = next(m for m in mail.outbox if "brand@alpha.test" in m.to)
    assert message.from_email.startswith("Alpha <") and message.reply_to == ["help@alpha.test"]


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [("brand_color", "blue", "A colour is #RRGGBB"), ("support_email", "not-an-address", "valid email")],
)
def test_bad_branding_is_a_form_error_and_saves_nothing(alpha, restore, field, value, error):
    owner = _login(alpha)
    response = owner.post("/settings/", {**SETTINGS, field: value})
    assert response.status_code == 200 and error in _text(response)
    tenant = Tenant.objects.get(pk=alpha.tenant.pk)
    assert (tenant.brand_color, tenant.support_email) == ("", "")


def test_the_logo_is_served_for_the_header_and_404_without_one(alpha, restore):
    assert alpha.client().get("/brand/logo.png").status_code == 404
    owner = _login(alpha)
    buffer = io.BytesIO()
    Image.new("RGB", (120, 40), (16, 185, 129)).save(buffer, format="PNG")
    buffer.seek(0)
    buffer.name = "logo.png"
    assert owner.post("/settings/", {**SETTINGS, "logo": buffer}).status_code == 302
    logo = alpha.client().get("/brand/logo.png")
    assert (
        logo.status_code == 200
        and logo["Content-Type"] == "image/png"
        and logo.content.startswith(b"\x89PNG")
    )
    html = alpha.client().get("/pricing/").content.decode()
    assert re.search(
        r'<img src="/brand/logo\.png\?v=\d+" alt="" class="brand-logo" height="28" width="84"', html
    )
