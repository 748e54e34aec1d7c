"""{% load ai_tags %}: whether to show the AI pages' link."""

from typing import Any

from django import template

from spinereview.ai.selectors import user_sees_ai_pages

register = template.Library()


@register.filter
def sees_ai_pages(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False)) and user_sees_ai_pages(user=user)
