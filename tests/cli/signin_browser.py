"""A stand-in for a person at a browser, started by Python's ``webbrowser`` (``BROWSER``):
it opens the sign-in page it is given, picks the user named in ``SIGNIN_USER`` and follows the
issuer's redirect back to the CLI's loopback callback, as a browser would."""

from __future__ import annotations

import os
import re
import sys
from html import unescape

import httpx

_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def main(url: str) -> int:
    with httpx.Client(timeout=30) as client:
        page = client.get(url)
        if page.status_code != 200:
            return 1
        form = {k: unescape(v) for k, v in _HIDDEN.findall(page.text)}
        user = os.environ.get("SIGNIN_USER", "alice")
        chosen = client.post(
            page.url.copy_with(query=None), data={**form, "user": user, "action": "signin"}
        )
        if chosen.status_code != 303:
            return 2
        return 0 if client.get(chosen.headers["location"]).status_code == 200 else 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
