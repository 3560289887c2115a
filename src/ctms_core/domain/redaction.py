"""Text from outside (an Acoustic fault string, an exception's message) may quote e-mail addresses
("Recipient jane@example.com rejected"). Before such text is logged or stored it goes through
`redact_addresses`: no address reaches a log line or a stored error (docs/observability.md)."""

from __future__ import annotations

import re

ADDRESS_PLACEHOLDER = "[OMITTED]"

# Anything shaped like `local@domain`: the local part and the domain are runs of characters that cannot
# delimit an address in prose, XML or a repr (space, quotes, brackets, `<>`, `,;:`; after the `@` also a
# query string's `&?/`). The `@` may be
# percent-encoded (`%40`) or an XML/HTML entity (`&#64;`). Deliberately broad: a false positive only
# hides a few words of an error message.
_ADDRESS = re.compile(
    r"""[^\s@<>"'`()\[\]{},;:=]+(?:@|%40|&#0*64;|&commat;)[^\s@<>"'`()\[\]{},;:=&?/]+""",
    re.IGNORECASE,
)


def redact_addresses(text: str) -> str:
    """`text` with every e-mail address in it replaced by `[OMITTED]`."""
    if (
        "@" not in text
        and "%40" not in text
        and "&#" not in text
        and "&commat;" not in text.lower()
    ):
        return text
    return _ADDRESS.sub(ADDRESS_PLACEHOLDER, text)
