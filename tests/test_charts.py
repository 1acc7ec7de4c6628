"""The server-drawn SVG charts: the numbers in the picture and in its table are the input's."""

import re

from django.template import Context, Template


def _render(source, **context):
    return Template("{% load charts %}" + source).render(Context(context))


def test_column_chart_draws_one_column_per_point_scaled_to_the_largest():
    html = _render(
        "{% column_chart points 'Licenses expiring per month' 'licenses' %}",
        points=[("2026-12", 10), ("2027-01", 0), ("2027-02", 5)],
    )
    heights = [
        float(h) for h in re.findall(r'<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="([\d.]+)"', html)
    ]
    assert len(heights) == 3
    assert heights[1] == 0 and heights[0] == 2 * heights[2] > 0
    assert 'role="img"' in html
    assert 'aria-label="Licenses expiring per month: 15 licenses in all, at most 10 in one column"' in html
    rows = re.findall(r"<tr><td>([^<]+)</td><td>(\d+)</td></tr>", html)
    assert rows == [("2026-12", "10"), ("2027-01", "0"), ("2027-02", "5")]
    assert "http" not in html  # nothing from another host


def test_column_chart_of_nothing_is_flat_and_says_so():
    html = _render(
        "{% column_chart points 'Deployments per day' 'licenses' %}", points=[("12-01", 0), ("12-02", 0)]
    )
    assert 'height="0.0"' in html
    assert "0 licenses in all, at most 0" in html


def test_consumption_chart_colours_follow_the_utilization_thresholds():
    rows = [
        {"label": "Workspace Edition", "used": 74, "total": 100},
        {"label": "Enterprise Management Pack", "used": 75, "total": 100},
        {"label": "Add-on", "used": 9, "total": 10},
        {"label": "Empty", "used": 0, "total": 0},
    ]
    html = _render("{% consumption_chart rows 'Consumption per product type' %}", rows=rows)
    levels = re.findall(r'class="used util-(\w+)"', html)
    assert levels == ["ok", "amber", "red", "ok"]
    assert "Workspace Edition: 74 of 100 used, 26 free" in html
    assert re.findall(r'<text class="value"[^>]*>(\d+)%</text>', html) == ["74", "75", "90", "0"]
