"""The pages' building blocks: number/date filters, tables, charts, the node_modules finder."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.template import Context, Template
from django.test import RequestFactory

from kernel import assets
from kernel.charts import time_chart
from kernel.tables import Column, table_from_request
from kernel.templatetags.monetize import ago, money_filter, plural, quantity, units, when


def render(source: str, **context) -> str:
    return Template("{% load monetize %}" + source).render(Context(context))


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [(123450, "usd", "$1,234.50"), (39000, "krw", "₩39,000"), (500, "jpy", "¥500"), (-1999, "eur", "-€19.99"),
     (1234, "chf", "12.34 CHF"), (1000, "kwd", "1.000 KWD")],
)  # fmt: skip
def test_money_has_the_currencys_symbol_decimals_and_separators(amount, currency, text):
    assert money_filter(amount, currency) == text
    assert render("{{ a|money:c }}", a=amount, c=currency) == text
    assert render("{% money a c %}", a=amount, c=currency) == text


def test_money_of_nothing_is_empty_not_an_error():
    assert money_filter(None, "usd") == "" and money_filter(100, "") == ""


@pytest.mark.parametrize(
    ("value", "text"),
    [(Decimal("322.000000000"), "322"), (1266567, "1,266,567"), (Decimal("2.50"), "2.5"), (Decimal("-1234.5"), "-1,234.5"),
     ("12", "12"), (None, "")],
)  # fmt: skip
def test_quantities_read_like_numbers(value, text):
    assert quantity(value) == text


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [(1, "build minute", "1 build minute"), (1234, "build minute", "1,234 build minutes"),
     (0, "seat", "0 seats"), (Decimal("2.5"), "credit", "2.5 credits"), (1, "minutes", "1 minute"),
     (7, "minutes", "7 minutes"), (3, "query", "3 queries"), (2, "box", "2 boxes"), (2, "person|people", "2 people"),
     (1, "person|people", "1 person"), (None, "seat", "–"), (5700, "minute", "5,700 minutes"),
     ("5,700", "minute", "5,700 minutes"), ("1", "minute", "1 minute"), (Decimal("1.000"), "seat", "1 seat"),
     (1, "build minutes", "1 build minute"), (5, "GB", "5 GB"), (1, "ms", "1 ms"), (2, "kWh", "2 kWh"),
     (3, "Request", "3 Requests"), (2, "analysis", "2 analyses"), ("1,2", "seat", "–"), ("NaN", "seat", "–")],
)  # fmt: skip
def test_units_are_pluralized(value, unit, text):
    assert units(value, unit) == text
    assert render("{{ v|units:u }}", v=value, u=unit) == text


def test_plural_of_words_ending_in_s_and_y():
    assert plural("status", Decimal(2)) == "statuses" and plural("day", Decimal(2)) == "days"


@pytest.mark.parametrize(
    ("value", "text"),
    [(1, "credit"), ("2,500", "credits"), (0, "credits"), (None, "credits"), ("x", "credits")],
)
def test_a_unit_alone_agrees_with_its_number_even_a_formatted_one(value, text):
    assert render('{{ "credit"|unit_for:v }}', v=value) == text


@pytest.mark.parametrize(
    ("template", "context", "text"),
    [('{% include "_chart.html" with chart=chart title="Minutes" %}',
      {"chart": time_chart(chart_id="one", points=[dt.date(2026, 3, 4)], series=[{"label": "m", "values": [5]}])},
      ', 1 point"'),
     ('{% include "503.html" %}', {"retry_after": 1}, "reloads itself in 1 second."),
     ('{% include "503.html" %}', {"retry_after": 30}, "reloads itself in 30 seconds.")],
)  # fmt: skip
def test_the_includes_count_in_words(template, context, text):
    assert text in Template(template).render(Context(context))


def test_dates_are_time_elements_the_browser_localizes():
    moment = dt.datetime(2026, 3, 4, 15, 30, tzinfo=dt.UTC)
    html = str(when(moment))
    assert (
        html
        == '<time datetime="2026-03-04T15:30:00+00:00" data-format="datetime">Mar 4, 2026, 15:30 UTC</time>'
    )
    assert (
        str(when(dt.date(2026, 3, 4))) == '<time datetime="2026-03-04" data-format="date">Mar 4, 2026</time>'
    )
    assert when(None) == "–"


def test_a_month_is_the_month_of_its_utc_date_in_the_viewers_words():
    late = dt.datetime(2026, 11, 30, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))  # Dec 1 in UTC
    assert str(when(late, "month")) == '<time datetime="2026-12" data-format="month">December 2026</time>'
    assert (
        str(when(dt.date(2026, 3, 4), "month"))
        == '<time datetime="2026-03" data-format="month">March 2026</time>'
    )
    assert str(when(dt.datetime(2026, 3, 4, 15, 30, tzinfo=dt.UTC), "date")) == (
        '<time datetime="2026-03-04T15:30:00+00:00" data-format="date">Mar 4, 2026</time>'
    )


def test_pages_show_dates_through_when_not_the_date_filter():
    """`|date:` is for machines (a query string, an input's value) and for text that cannot hold a
    <time> (a title, an attribute); a date a person reads goes through `when`, in their own format."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "templates"
    shown = []
    for path in sorted(root.rglob("*.html")):
        text = path.read_text()
        for match in re.finditer(r"\{\{[^}]*\|date:[^}]*\}\}", text):
            before = text[: match.start()]
            in_attribute = re.search(r'<[^<>]*\s[\w-]+="[^"]*$', before)
            in_title = before.rfind("{% block title %}") > before.rfind("{% endblock %}")
            if not (in_attribute or in_title):
                shown.append(f"{path.relative_to(root)}: {match.group(0)}")
    assert shown == []


def test_relative_times_say_how_long_ago():
    from django.utils import timezone

    now = timezone.now()
    assert ">3 days ago</time>" in str(ago(now - dt.timedelta(days=3, hours=2)))
    assert ">in 2 hours</time>" in str(ago(now + dt.timedelta(hours=2, minutes=1)))
    assert ">just now</time>" in str(ago(now))
    assert "data-relative" in str(ago(now))


def test_badges_colour_statuses_by_tone():
    assert 'class="badge tone-success"' in render("{% badge 'active' %}")
    assert ">Past due<" in render("{% badge 'past_due' %}") and "tone-warning" in render(
        "{% badge 'past_due' %}"
    )
    assert "tone-neutral" in render("{% badge 'something_new' %}")


def _request(query=""):
    return RequestFactory().get(f"/list/?{query}")


ROWS = [{"name": f"c{i}", "mrr": i * 100, "currency": "usd", "status": "active"} for i in range(1, 31)]
COLUMNS = [Column("name", "Name", sort="name"), Column("mrr", "MRR", kind="money", sort="mrr"),
           Column("status", "Status", kind="badge")]  # fmt: skip


def test_tables_sort_by_the_query_string_and_paginate():
    table = table_from_request(_request("sort=-mrr&page=2"), rows=ROWS, columns=COLUMNS, per_page=10)
    assert [row["name"] for row in table.rows][:2] == ["c20", "c19"]
    mrr = table.headers[1]
    assert mrr["state"] == "descending" and mrr["sort"] == "mrr"  # clicking again flips it
    assert table.headers[2]["sort"] is None  # not sortable
    html = Template('{% include "_table.html" with table=table %}').render(
        Context({"table": table, "request": _request("sort=-mrr&page=2")})
    )
    assert "$20.00" in html and 'aria-sort="descending"' in html and "Page 2 of 3" in html
    assert 'href="?sort=-mrr&amp;page=3"' in html and 'href="?sort=name"' in html


def test_tables_ignore_bad_sort_and_page_values():
    table = table_from_request(
        _request("sort=password&page=x"), rows=ROWS, columns=COLUMNS, default_sort="name"
    )
    assert table.sort == "name" and table.page.number == 1


def test_tables_offer_their_orders_as_choices_numbers_and_dates_newest_first():
    columns = [*COLUMNS, Column("joined", "Joined", kind="date", sort="joined")]
    table = table_from_request(_request("sort=nope"), rows=ROWS, columns=columns, default_sort="-mrr")
    assert table.sort == "-mrr" and [h["sort"] for h in table.headers] == ["name", "mrr", None, "-joined"]
    assert [(c["value"], c["label"], c["selected"]) for c in table.sort_choices] == [
        ("name", "Name, A–Z", False), ("-name", "Name, Z–A", False),
        ("-mrr", "MRR, highest first", True), ("mrr", "MRR, lowest first", False),
        ("-joined", "Joined, newest first", False), ("joined", "Joined, oldest first", False),
    ]  # fmt: skip
    html = Template('{% include "_sort_select.html" with table=table %}').render(Context({"table": table}))
    assert (
        '<select name="sort">' in html and '<option value="-mrr" selected>MRR, highest first</option>' in html
    )


def test_tables_render_rows_through_a_row_template(tmp_path, settings):
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}]
    (tmp_path / "_row.html").write_text('<tr data-row="{{ row.name }}"><td>{{ row.mrr }}</td></tr>')
    table = table_from_request(_request("sort=mrr"), rows=ROWS, columns=COLUMNS, per_page=2)
    html = Template(
        '{% include "_table.html" with table=table row_template="_row.html" card=True class="x" %}'
    ).render(Context({"table": table, "request": _request("sort=mrr")}))
    assert '<tr data-row="c1"><td>100</td></tr>' in html and '<tr data-row="c2">' in html
    assert 'class="table-wrap card flush"' in html and 'class="table stack x"' in html


def test_an_empty_table_shows_its_empty_state():
    table = table_from_request(_request(), rows=[], columns=COLUMNS)
    html = Template(
        '{% include "_table.html" with table=table empty_title="No customers yet" empty_action_url="/x/" %}'
    ).render(Context({"table": table, "request": _request()}))
    assert "No customers yet" in html and 'href="/x/"' in html and "<table" not in html


def test_charts_carry_their_series_as_json_and_say_when_empty():
    day = dt.date(2026, 3, 1)
    chart = time_chart(chart_id="Usage Build", points=[day, day + dt.timedelta(days=1)],
                       series=[{"label": "A", "values": [Decimal("1.5"), 2]}, {"label": "B", "values": [0, 3]}],
                       unit="build minute")  # fmt: skip
    assert chart["id"] == "chart-usage-build" and chart["labels"] == ["2026-03-01", "2026-03-02"]
    assert chart["series"][0]["values"] == [1.5, 2] and chart["unit_other"] == "build minutes"
    html = render('{% include "_chart.html" with chart=chart title="Build" %}', chart=chart)
    assert '<canvas data-chart="chart-usage-build"' in html
    assert '<script id="chart-usage-build" type="application/json">' in html
    empty = time_chart(chart_id="x", points=[day], series=[{"label": "A", "values": [0]}])
    html = render('{% include "_chart.html" with chart=chart title="Build" %}', chart=empty)
    assert "No data yet" in html and "<canvas" not in html


def test_money_charts_keep_minor_units_and_their_exponent():
    chart = time_chart(
        chart_id="mrr",
        points=[dt.date(2026, 1, 1)],
        series=[{"label": "MRR", "values": [1999]}],
        currency="KRW",
    )
    assert chart["currency"] == "krw" and chart["exponent"] == 0 and chart["series"][0]["values"] == [1999]


def test_vendor_finder_serves_only_the_listed_files(settings, tmp_path):
    from django.contrib.staticfiles import finders

    finder = assets.VendorFinder()
    assert finder.find("vendor/htmx.org/dist/htmx.min.js")
    assert finder.find("vendor/htmx.org/package.json") is None  # the rest of node_modules stays private
    assert finders.find("vendor/chart.js/dist/chart.umd.min.js")
    assert {name for name, _ in finder.list(None)} == set(assets.FILES)


def test_missing_node_modules_is_a_clear_warning_and_pages_still_render(settings, tmp_path):
    settings.NODE_MODULES_DIR = tmp_path / "nowhere"
    assert assets.missing_files() == list(assets.FILES)
    [warning] = assets.vendor_files_check(None)
    assert "make install" in warning.hint and warning.id == "kernel.W001"
    assert assets.VendorFinder().find("vendor/htmx.org/dist/htmx.min.js") is None
    html = render("{% vendor_missing as missing %}{{ missing|join:',' }}")
    assert "htmx.min.js" in html
