from django import template

register = template.Library()


@register.inclusion_tag("includes/utilization_bar.html")
def utilization(used, total):
    """A consumption bar: amber from 75 %, red from 90 % (DESIGN.md section 6)."""
    used, total = int(used or 0), int(total or 0)
    percent = round(100 * used / total) if total else 0
    level = "red" if percent >= 90 else "amber" if percent >= 75 else "ok"
    return {
        "used": used,
        "total": total,
        "free": max(total - used, 0),
        "percent": percent,
        "width": min(percent, 100),
        "level": level,
    }
