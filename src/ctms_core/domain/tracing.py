"""Traced addresses: test accounts whose requests are logged in full (docs/contract.md §2.7).

The marker is `+trace-me-mozilla-` before the `@` (the code of v3.3); the `+trace_me_mozilla_` spelling of
its documentation is accepted too (docs/contract.md §11.1, §11.2).
"""

from __future__ import annotations

import re

_TRACED_ADDRESS = re.compile(r".*\+(?:trace-me-mozilla-|trace_me_mozilla_).*@.*")


def is_traced(email: str | None) -> bool:
    return email is not None and _TRACED_ADDRESS.match(email) is not None
