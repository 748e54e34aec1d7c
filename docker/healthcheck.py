"""Container health check for the web image: GET /healthz (web, database, broker) must answer 200.

Django refuses a Host header that is not in ALLOWED_HOSTS (400), so the request names the first
allowed host instead of "localhost", which a production ALLOWED_HOSTS need not contain.
Standard library only: the slim image has no curl.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def _host_header() -> str:
    for host in os.environ.get("ALLOWED_HOSTS", "").split(","):
        host = host.strip().lstrip(".")  # ".example.org" allows every subdomain
        if host and host != "*":
            return host
    return "localhost"


def main() -> int:
    port = os.environ.get("PORT", "8000")
    request = urllib.request.Request(f"http://127.0.0.1:{port}/healthz", headers={"Host": _host_header()})
    try:
        with urllib.request.urlopen(request, timeout=8) as response:
            status = response.status
            body = response.read(500).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read(500).decode("utf-8", "replace")
    except OSError as exc:
        print(f"healthz unreachable: {exc}", file=sys.stderr)
        return 1
    print(f"healthz {status}: {body}")
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
