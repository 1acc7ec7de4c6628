"""Charts drawn on the server as inline SVG: no script, nothing loaded from another host.

Each chart is a <figure> with a caption, an SVG with ``role="img"`` and a label that says what it shows,
and the same numbers as a table under a <details>, for screen readers, keyboards and copying.

- ``column_chart(points, title, unit)``: one column per (label, value), e.g. licenses expiring per month
  or deployments per day.
- ``consumption_chart(rows, title)``: one horizontal bar per row (label, used, total): used in the
  consumption colour (amber from 75 %, red from 90 %), free in grey.
"""

from django import template

register = template.Library()

WIDTH, HEIGHT, PAD_BOTTOM, PAD_TOP = 720, 220, 36, 18


def _level(used, total):
    ratio = used / total if total else 0
    return "red" if ratio >= 0.90 else "amber" if ratio >= 0.75 else "ok"


@register.inclusion_tag("includes/column_chart.html")
def column_chart(points, title, unit=""):
    points = [(str(label), int(value or 0)) for label, value in points]
    top = max([v for _, v in points] + [1])
    n = max(len(points), 1)
    slot = WIDTH / n
    plot = HEIGHT - PAD_BOTTOM - PAD_TOP
    # label every column when they fit, otherwise every k-th so labels never overlap
    every = max(1, round(n / 12))
    columns = []
    for i, (label, value) in enumerate(points):
        h = plot * value / top
        columns.append(
            {
                "label": label,
                "value": value,
                "x": round(i * slot + slot * 0.15, 1),
                "w": round(slot * 0.7, 1),
                "y": round(PAD_TOP + plot - h, 1),
                "h": round(h, 1),
                "cx": round(i * slot + slot / 2, 1),
                "show_label": i % every == 0,
            }
        )
    total = sum(v for _, v in points)
    return {
        "title": title,
        "unit": unit,
        "columns": columns,
        "total": total,
        "top": top,
        "width": WIDTH,
        "height": HEIGHT,
        "base": HEIGHT - PAD_BOTTOM,
        "label_y": HEIGHT - PAD_BOTTOM + 16,
        "summary": f"{title}: {total} {unit} in all, at most {top if total else 0} in one column".strip(),
    }


@register.inclusion_tag("includes/consumption_chart.html")
def consumption_chart(rows, title):
    """rows: dicts (or objects) with label, used, total."""
    bar_h, gap, label_w, width = 26, 10, 230, WIDTH

    def get(row, key):
        return row[key] if isinstance(row, dict) else getattr(row, key)

    bars = []
    for i, row in enumerate(rows):
        used, total = int(get(row, "used") or 0), int(get(row, "total") or 0)
        span = width - label_w - 60
        used_w = span * min(used, total) / total if total else 0
        bars.append(
            {
                "label": str(get(row, "label")),
                "used": used,
                "total": total,
                "free": max(total - used, 0),
                "percent": round(100 * used / total) if total else 0,
                "level": _level(used, total),
                "y": i * (bar_h + gap),
                "text_y": i * (bar_h + gap) + bar_h * 0.68,
                "x": label_w,
                "used_w": round(used_w, 1),
                "span": span,
                "pct_x": label_w + span + 6,
            }
        )
    return {
        "title": title,
        "bars": bars,
        "width": width,
        "bar_h": bar_h,
        "height": max(len(bars), 1) * (bar_h + gap),
        "summary": "; ".join(f"{b['label']}: {b['used']} of {b['total']} used" for b in bars) or "no data",
    }
