"""``{% load coatcheck %}{% csrf_input %}``: the hidden ``csrf_token`` field for a form."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from ...web.csrf import FORM_FIELD
from ..context_processors import csrf_token

register = template.Library()


@register.simple_tag(takes_context=True)
def csrf_input(context: Any) -> SafeString:
    """The session's synchronizer token as a hidden input named ``csrf_token``."""
    request = getattr(context, "request", None) or context.get("request")
    if request is None:
        raise template.TemplateSyntaxError(
            "{% csrf_input %} needs the request: render with a RequestContext "
            "(django.shortcuts.render) or add django.template.context_processors.request"
        )
    return format_html(
        '<input type="hidden" name="{}" value="{}">', FORM_FIELD, csrf_token(request)
    )
