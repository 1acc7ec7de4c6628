from django import template

register = template.Library()


@register.inclusion_tag("includes/utilization_bar.html")
def utilization(used, total):
    """A consumption bar: amber from 75 %, red from 90 % (docs/DESIGN.md section 6)."""
    used, total = int(used or 0), int(total or 0)
    ratio = used / total if total else 0
    percent = round(100 * ratio)
    # the colour follows the exact share, so 74.75 % stays green although it shows as 75 %
    level = "red" if ratio >= 0.90 else "amber" if ratio >= 0.75 else "ok"
    return {
        "used": used,
        "total": total,
        "free": max(total - used, 0),
        "percent": percent,
        "width": min(percent, 100),
        "level": level,
    }
