"""Response headers that the browser enforces: Content-Security-Policy, Permissions-Policy.

Django's SecurityMiddleware already sends HSTS (on HTTPS requests only), nosniff, Referrer-Policy and
Cross-Origin-Opener-Policy, and XFrameOptionsMiddleware sends X-Frame-Options; this middleware adds
the policy that limits what a page may load and run.

The policy lets the Cornerstone3D viewer run: its web workers are module scripts from this origin
(and blob: URLs, which the image loader may use), its DICOM codecs are WebAssembly compiled with
``WebAssembly.instantiate`` ('wasm-unsafe-eval': WebAssembly only, never JavaScript eval), and it
fetches DICOMweb and the API from this origin. Inline scripts run only with the per-request nonce
that templates write as ``nonce="{{ request.csp_nonce }}"``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

# The Swagger UI page (drf-spectacular) loads swagger-ui from its CDN and starts it with an
# inline script: only that page gets the CDN and inline scripts.
API_DOCS_PREFIX = "/api/docs/"
SWAGGER_CDN = "https://cdn.jsdelivr.net"


def content_security_policy(*, nonce: str, path: str) -> str:
    """The policy for one response; ``path`` picks the Swagger page's exception."""
    script = ["'self'", f"'nonce-{nonce}'", "'wasm-unsafe-eval'"]
    style = ["'self'", "'unsafe-inline'"]  # the viewer's bundle sets style attributes (style-src-attr)
    img = ["'self'", "data:", "blob:"]
    if path.startswith(API_DOCS_PREFIX):
        script = ["'self'", "'unsafe-inline'", SWAGGER_CDN]
        style.append(SWAGGER_CDN)
        img.append(SWAGGER_CDN)
    directives = {
        "default-src": ["'self'"],
        "script-src": script,
        "worker-src": ["'self'", "blob:"],
        "style-src": style,
        "img-src": img,
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "media-src": ["'self'", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()"


class SecurityHeadersMiddleware:
    """Sets ``request.csp_nonce`` and adds the Content-Security-Policy and Permissions-Policy headers."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        nonce = secrets.token_urlsafe(16)
        request.csp_nonce = nonce  # type: ignore[attr-defined]
        response = self.get_response(request)
        header = "Content-Security-Policy-Report-Only" if settings.CSP_REPORT_ONLY else "Content-Security-Policy"
        if "Content-Security-Policy" not in response and "Content-Security-Policy-Report-Only" not in response:
            response[header] = content_security_policy(nonce=nonce, path=request.path)
        if "Permissions-Policy" not in response:
            response["Permissions-Policy"] = PERMISSIONS_POLICY
        return response
