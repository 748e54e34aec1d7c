"""{% load ai_tags %}: whether to show the AI pages' link."""

from typing import Any

from django import template

from spinereview.ai.selectors import user_sees_ai_pages

register = template.Library()


@register.filter
def sees_ai_pages(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False)) and user_sees_ai_pages(user=user)


@register.filter
def duration(seconds: float | None) -> str:
    """12.3 s, 45 s, 3 min 05 s, 2 h 10 min."""
    if seconds is None:
        return "—"
    s = max(0.0, float(seconds))
    if s < 10:
        return f"{s:.1f} s"
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"
