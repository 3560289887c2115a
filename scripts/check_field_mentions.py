"""Each contact field is written in few places: its declaration, its column, the sync destinations' mappings.

Counts, for every field declared with a rule on the contact structs (`ctms_core.domain.contact`), the
lines of `src/` that name it, and fails when one names it on more than `LIMIT` lines, listing them. A
mention is the name not preceded by a letter or digit (`amo_profile_url` is a mention of `profile_url`).

Not counted: `migrations/` and `ctms_adapters/postgres/adoption.py`, which convert ctms-api schemas and
so name each column of the old schema (migration-like, docs/adr/0005-adopting-a-ctms-api-database.md).
Names that are ordinary words (`name`, `lang`, `user`...) cannot be measured by text and are skipped; the
fields still named more often (`KNOWN_EXCESS`) are held to today's figure, so the count only goes down.

Run: `python scripts/check_field_mentions.py` (part of `tox -e lint`); `--strict` holds every field to
`LIMIT`, ignoring `KNOWN_EXCESS`, and lists each offending line.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "src"
sys.path.insert(0, str(SOURCE))  # `tox -e lint` does not install the package

from ctms_core.domain.contact import Amo, Email, Fxa, Mofo, Newsletter, Waitlist  # noqa: E402
from ctms_core.domain.fields import input_fields  # noqa: E402

MIGRATION_LIKE = {SOURCE / "ctms_adapters" / "postgres" / "adoption.py"}
# Its declaration, its column in postgres/tables.py, the Acoustic and Braze mappings.
LIMIT = 4
# Today's excess, to be paid down: fields the code still names elsewhere, mostly because business rules
# use them (identifiers that contacts are looked up by and that are unique, consent flags the sync
# destinations read, `mofo_relevant` as an /updates filter) or because the destinations' docstrings name
# them. A field may not be named on more lines than this; lower the figure when a mention goes.
KNOWN_EXCESS = {
    "primary_email": 111,
    "basket_token": 26,
    "double_opt_in": 7,
    "first_name": 6,
    "last_name": 6,
    "mailing_country": 9,
    "email_lang": 9,
    "has_opted_out_of_email": 7,
    "email_opt_in": 5,
    "user_id": 15,
    "fxa_id": 78,
    "created_date": 11,
    "account_deleted": 5,
    "mofo_email_id": 23,
    "mofo_relevant": 35,
    "unsub_reason": 12,
    "sfdc_id": 15,
    "mofo_contact_id": 15,
}


def measured_fields() -> list[str]:
    names: dict[str, None] = {}
    for struct in (Email, Amo, Fxa, Mofo, Newsletter, Waitlist):
        for field in input_fields(struct):
            if "_" in field.name:  # a single word (`name`, `source`, `user`) is also ordinary text
                names[field.name] = None
    return list(names)


def mentions(name: str, files: list[tuple[Path, list[str]]]) -> list[str]:
    pattern = re.compile(rf"(?<![A-Za-z0-9]){re.escape(name)}(?![A-Za-z0-9_])")
    return [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path, lines in files
        for number, line in enumerate(lines, 1)
        if pattern.search(line)
    ]


def main(argv: list[str]) -> int:
    strict = "--strict" in argv  # the measure: every field at most LIMIT, no excess allowed
    files = [
        (path, path.read_text(encoding="utf-8").splitlines())
        for path in sorted(SOURCE.rglob("*.py"))
        if path not in MIGRATION_LIKE and "migrations" not in path.parts
    ]
    failed = False
    for name in measured_fields():
        found = mentions(name, files)
        limit = LIMIT if strict else KNOWN_EXCESS.get(name, LIMIT)
        if not strict and len(found) < limit and name in KNOWN_EXCESS:
            print(f"{name}: now named on {max(len(found), LIMIT)} lines: lower KNOWN_EXCESS")
        if len(found) > limit:
            failed = True
            print(f"{name}: named on {len(found)} lines of src/ (at most {limit}):")
            print("\n".join(f"    {line}" for line in found))
    if not failed:
        within = len(measured_fields()) - len(KNOWN_EXCESS)
        print(f"{within} contact fields are named on at most {LIMIT} lines; none grew.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
