"""Rewrite citations of documents outside the repository into citations of the repository's own docs.

Comments, docstrings and docs used to cite sections of the v3.3 reference (written `R` + section sign +
number, e.g. R\u00a72.7) and of the product owner's SPEC (`SPEC` + section sign). Neither document is in
the repository, so a newcomer could not follow them. This script maps every section of both documents to
the repository page and section that now holds the rule — mostly `docs/contract.md §N.M`, the v3.3 bug
fixes to `docs/compatibility.md §2` — and rewrites the citations in place.

    python scripts/rewrite_citations.py            # rewrite, print a summary
    python scripts/rewrite_citations.py --dry-run  # print the diff it would make, write nothing
    python scripts/rewrite_citations.py --check    # exit 1 listing every citation still left
    python scripts/rewrite_citations.py --self-test  # the known citation forms rewrite as expected

It understands the forms the code uses: lists and ranges (`…§3.7.1, §3.7.2`, `…§2.4–§2.11`,
`SPEC §5–§7`), items of the bug list and of the feature lists (`SPEC §6 item 4`, `items 5–8`,
`fixes 17–21`, `(items 24, 26, 47)`, `R…§12.5 item 43`, `R…§10.2 items 6–7`, `SPEC §4.13` = item 13 of
SPEC §4), steps (`step 5`, dropped: the target section states the order itself) and a few quoted
sub-headings (`"Tracing"`, `"Reliability"`). Several citations that map to one page collapse into one
(`docs/contract.md §4.2, §4.3`). In Markdown files outside code spans the citation becomes a link.

The rewrite is idempotent: its output holds no citation it would rewrite again. Standard library only.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SELF = Path(__file__).resolve()
SECTION_SIGN = "\u00a7"

CONTRACT = "docs/contract.md"
COMPATIBILITY = "docs/compatibility.md"
EMBEDDING = "docs/embedding.md"


@dataclass(frozen=True, slots=True, order=True)
class Target:
    """A repository document and, optionally, one of its numbered sections."""

    doc: str
    section: str = ""


def c(*sections: str) -> tuple[Target, ...]:
    return tuple(Target(CONTRACT, section) for section in sections)


def compat(section: str) -> tuple[Target, ...]:
    return (Target(COMPATIBILITY, section),)


# --- the mapping ---------------------------------------------------------------------------------------
# Every section of the v3.3 reference (its table of contents, in document order).
REFERENCE: dict[str, tuple[Target, ...]] = {
    "1": c("1"),
    "1.1": c("1.1"),
    "1.2": c("1.1"),
    "1.3": c("1.1"),
    "1.4": c("1.1"),
    "1.5": c("1.3"),
    "1.6": c("1.4"),
    "1.7": c("1.4"),
    "1.8": c("1.5"),
    "1.9": c("1.3"),
    "1.10": c("1.2"),
    "2": c("2"),
    "2.1": c("2.1"),
    "2.2": c("2.2"),
    "2.3": c("3.1"),
    "2.4": c("4.1"),
    "2.5": c("4.2"),
    "2.6": c("4.3"),
    "2.7": c("4.4"),
    "2.8": c("4.5"),
    "2.9": c("4.6"),
    "2.10": c("4.7"),
    "2.11": c("7"),
    "2.12": c("8.1"),
    "2.13": c("8.2"),
    "2.14": c("10"),
    "3": c("5"),
    "3.1": c("5.1"),
    "3.2": c("5.2"),
    "3.3": c("5.7"),
    "3.4": c("5.8"),
    "3.5": c("5.9"),
    "3.6": c("5.10"),
    "3.7": c("6"),
    "3.7.1": c("6.1", "6.2"),
    "3.7.2": c("6.3"),
    "3.7.3": c("6.4"),
    "3.8": c("8.5"),
    "3.9": c("5"),
    "4": c("9"),
    "4.1": c("9.1"),
    "4.2": c("9.2"),
    "4.3": c("9.3"),
    "4.4": c("9.3"),
    "4.5": c("9.3"),
    "4.6": c("9.4"),
    "4.7": c("9.4"),
    "4.8": c("9.6"),
    "4.9": c("9.2"),
    "5": c("8"),
    "5.1": c("8.3"),
    "5.2": c("8.3"),
    "5.3": c("8.3"),
    "5.4": c("8.4"),
    "5.5": c("8.5"),
    "6": c("12"),
    "6.1": c("12"),
    "6.2": c("12"),
    "6.3": c("12"),
    "7": c("11"),
    "7.1": c("11.1"),
    "7.2": c("11.2"),
    "7.3": c("11.3"),
    "7.4": c("11.4"),
    "8": c("11"),
    "8.1": c("11.5"),
    "8.2": c("11.6"),
    "9": c("13"),
    "9.1": c("13.1"),
    "9.2": c("13.2"),
    "9.3": c("13.3"),
    "9.4": c("13.4"),
    "9.5": c("13.5"),
    "9.6": c("6"),
    "9.7": c("13.1"),
    "10": c("18.2"),
    "10.1": c("18.2"),
    "10.2": c("18.2"),
    "10.3": c("18.3"),
    "11": compat("1"),
    "11.1": c("3.1"),
    "11.2": c("4.1"),
    "11.3": c("4.6"),
    "11.4": c("4.2"),
    "11.5": c("4.3"),
    "11.6": c("4.4"),
    "11.7": c("4.5"),
    "11.8": c("7"),
    "11.9": c("4.7"),
    "11.10": c("10"),
    "11.11": c("11.5"),
    "11.12": c("8"),
    "11.13": c("9"),
    "12": compat("2"),
    "12.1": compat("2"),
    "12.2": compat("2"),
    "12.3": compat("2"),
    "12.4": compat("2"),
    "12.5": compat("2"),
    "12.6": compat("2"),
    "13": c("2.6"),
    "13.1": c("2.6"),
    "13.2": c("9.7"),
    "13.3": c("17"),
    "13.4": c("8.2"),
    "14": c("2"),
}

# The numbered v3.3 bugs (reference §12 items 1–48; SPEC §6 uses the same numbers): where the fixed rule
# now lives.
BUG_ITEMS: dict[int, tuple[Target, ...]] = {
    1: c("4.3"),
    2: c("4.3"),
    3: c("4.4"),
    4: c("4.4"),
    5: c("7.2"),
    6: c("7.3"),
    7: c("7.1"),
    8: c("2.6"),
    9: c("4.6"),
    10: c("4.5"),
    11: c("5.2"),
    12: c("5.2"),
    13: c("5.7"),
    14: c("4.1"),
    15: c("5.8"),
    16: c("2.7"),
    17: c("6.2"),
    18: c("6.1"),
    19: c("6.2"),
    20: c("6.3"),
    21: c("6.2"),
    22: c("3.2"),
    23: c("1.3"),
    24: c("11.5"),
    25: c("10"),
    26: c("10"),
    27: c("8.2"),
    28: c("8.1"),
    29: c("12"),
    30: c("9.1"),
    31: c("9.2"),
    32: c("9.3"),
    33: c("9.5"),
    34: c("13.4"),
    35: c("11.6"),
    36: c("9.2"),
    37: c("8.3"),
    38: c("8.3"),
    39: c("8.3"),
    40: c("8.3"),
    41: c("8.3"),
    42: c("8.5"),
    43: c("8.5"),
    44: c("8.2", "8.3"),
    45: c("18.3"),
    46: c("3.4"),
    47: c("11.2"),
    48: c("14.1"),
}

# Reference §10.2: features of later ctms-api releases.
LATER_FEATURE_ITEMS: dict[int, tuple[Target, ...]] = {
    1: c("3.4"),
    2: c("1.6"),
    3: c("1.2"),
    4: c("10"),
    5: c("11.2"),
    6: c("14.1"),
    7: c("13.1"),
}

# Every section of the SPEC. Its §4 is a numbered feature list; `SPEC §4.13` means its item 13.
SPEC: dict[str, tuple[Target, ...]] = {
    "1": (Target(CONTRACT),),
    "2": compat("1"),
    "3": c("13"),
    "4": (Target(CONTRACT),),
    "5": c("1.6"),
    "6": compat("2"),
    "7": c("14"),
    "8": c("15"),
    "9": c("16"),
    "10": c("17"),
}
SPEC_FEATURE_ITEMS: dict[int, tuple[Target, ...]] = {
    1: c("4"),
    2: c("6"),
    3: c("7"),
    4: c("3"),
    5: c("14.1"),
    6: c("8"),
    7: c("8.2"),
    8: c("9"),
    9: c("9.7"),
    10: c("10"),
    11: c("11.1", "11.2"),
    12: c("11.5", "11.6"),
    13: c("11.4"),
    14: c("12"),
    15: c("1.6"),
    16: c("15"),
    17: (Target(EMBEDDING),),
}
for _number, _targets in SPEC_FEATURE_ITEMS.items():
    SPEC[f"4.{_number}"] = _targets

# Quoted sub-headings that narrow a citation: (document, section, lower-cased label) → targets.
QUALIFIERS: dict[tuple[str, str, str], tuple[Target, ...]] = {
    ("R", "2.2", "tracing"): c("2.7"),
    ("R", "3.2", "type leniency"): c("5.5"),
    ("R", "3.2", "url rules"): c("5.5"),
    ("R", "3.2", "default objects are not stored"): c("5.6"),
    ("R", "4.1", "counts"): c("9.1"),
    ("SPEC", "2", "lenient input like v3.3"): c("5.5"),
    ("SPEC", "9", "speed"): c("16.1"),
    ("SPEC", "9", "sync at scale"): c("16.2"),
    ("SPEC", "9", "reliability"): c("16.3"),
    ("SPEC", "9", "security"): c("16.4"),
}

# The SPEC's §7 (additions) and §9 (quality bars) cover many rules: the words around a citation pick the
# section, first match wins; with no match the whole section is cited.
CONTEXT_HINTS: dict[str, tuple[tuple[tuple[str, ...], tuple[Target, ...]], ...]] = {
    "7": (
        (("revok", "revoc", "rotat", " iat"), c("3.2")),
        (("last_access",), c("3.4")),
        (("permission", "role"), c("14.1")),
        (("conflicts", "collid", "clash", "unique field"), c("14.3")),
        (
            ("relational", "recipient", "removerecipient", "from acoustic", "reach acoustic"),
            c("9.5"),
        ),
        (("erasure", "erase", "audit"), c("14.2")),
        (("crash", "upstream", "backoff", "sigterm"), c("9.2")),
        (("lost edit", "re-enqueue", "enqueue", "version", "dead letter", "failed"), c("9.1")),
        (("sync", "worker", "queue", "acoustic"), c("9")),
        (("embedded",), c("15")),
        (("token",), c("3.2")),
    ),
    "9": (
        (("hot path",), c("16.1")),
        (
            (
                "reliab",
                "outage",
                " down",
                "503",
                "recover",
                "no update",
                "concurrent",
                "idempotent",
            ),
            c("16.3"),
        ),
        (("contacts/s", "sync worker", "sync benchmark", "in flight"), c("16.2")),
        (
            (
                "secret",
                "redact",
                "omitted",
                "log",
                "security",
                "413",
                "alg",
                "address",
                "bound param",
            ),
            c("16.4"),
        ),
        (
            (
                "throughput",
                "lbheartbeat",
                "cpu",
                "benchmark",
                "ratio",
                "rss",
                "memory",
                "speed",
                "latenc",
            ),
            c("16.1"),
        ),
    ),
}

# --- parsing -------------------------------------------------------------------------------------------

PREFIX = re.compile(
    r"(?<![\w" + SECTION_SIGN + r"])(R" + SECTION_SIGN + r"|SPEC ?" + SECTION_SIGN + ")"
)
CITATION = re.compile(r"(?<![\w" + SECTION_SIGN + r"])(?:R|SPEC ?)" + SECTION_SIGN + r" ?\d")
NUMBER = re.compile(r" ?(\d+(?:\.\d+)*)")
# A line break may fall inside a citation (`§6` at the end of one line, `item 14` on the next).
_GAP = r"(?:[ \t]+|[ \t]*\n[ \t]*)"
ITEM_WORD = re.compile(_GAP + r"\(?(?:items?|fix(?:es)?)" + _GAP + r"(?=\d)")
STEP_WORD = re.compile(r" steps? (?=\d)")
BARE_ITEMS = re.compile(r" (?=\d+[–-]\d)")  # `SPEC §6 37–45`
BARE_RANGE = re.compile(r"[–-](\d+\.\d+(?:\.\d+)*)")
ITEM_NUMBER = re.compile(r"(\d+)(?:[–-](\d+))?")
ITEM_SEPARATOR = re.compile(r"(?:, and |, | and )(?=\d)")
QUOTED = re.compile(r' "([^"\n]{1,40})"')
CONTINUATION = re.compile(
    r"(?:, and |, with the fixes of |, with |, | and | / | with the fixes of | with the fix of | with |[–-])(?=(?:R"
    + SECTION_SIGN
    + r"|SPEC ?"
    + SECTION_SIGN
    + "|"
    + SECTION_SIGN
    + r")\d)"
)
TRAILING_WORDS = re.compile(r" of the v3\.3 reference\b")
NEXT_PREFIX = re.compile(
    r"(R" + SECTION_SIGN + r"|SPEC ?" + SECTION_SIGN + "|" + SECTION_SIGN + ")"
)


@dataclass(slots=True)
class Reference:
    document: str  # "R" or "SPEC"
    section: str
    items: list[int]
    until: str | None = None  # end of a range of sections
    qualifier: str | None = None


def _parse_items(text: str, pos: int) -> tuple[list[int], int]:
    items: list[int] = []
    while True:
        match = ITEM_NUMBER.match(text, pos)
        if match is None:
            return items, pos
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) else first
        if last < first or last - first > 60:
            return items, pos
        items.extend(range(first, last + 1))
        pos = match.end()
        separator = ITEM_SEPARATOR.match(text, pos)
        if separator is None:
            return items, pos
        pos = separator.end()


def parse_cluster(text: str, start: int) -> tuple[list[Reference], int] | None:
    """Parse the citation starting at `start` (at a prefix); return its references and where it ends."""
    references: list[Reference] = []
    pos = start
    document = ""
    opens_range = False
    while True:
        prefix = NEXT_PREFIX.match(text, pos)
        if prefix is None:
            break
        token = prefix.group(1)
        if token.startswith("R"):
            document = "R"
        elif token.startswith("SPEC"):
            document = "SPEC"
        number = NUMBER.match(text, prefix.end())
        if number is None or not document:
            break
        pos = number.end()
        section = number.group(1)
        if opens_range and references[-1].document == document:
            references[-1].until = section  # `…§5.1–§5.4`
        else:
            references.append(Reference(document, section, []))
        current = references[-1]
        if (bare_range := BARE_RANGE.match(text, pos)) is not None and "." in section:
            current.until = bare_range.group(1)  # `…§11.6–11.7`
            pos = bare_range.end()
        if (word := ITEM_WORD.match(text, pos)) is not None:
            items, end = _parse_items(text, word.end())
            if items:
                current.items.extend(items)
                pos = end
                if "(" in word.group(0) and text.startswith(")", pos):
                    pos += 1
        elif (word := STEP_WORD.match(text, pos)) is not None:
            _, pos = _parse_items(text, word.end())
        elif document == "SPEC" and section == "6" and BARE_ITEMS.match(text, pos):
            items, pos = _parse_items(text, pos + 1)
            current.items.extend(items)
        quoted = QUOTED.match(text, pos)
        if quoted is not None:
            key = (document, current.section, quoted.group(1).lower())
            if key in QUALIFIERS:
                current.qualifier = key[2]
                pos = quoted.end()
        continuation = CONTINUATION.match(text, pos)
        if continuation is None:
            break
        opens_range = continuation.group(0) in ("–", "-")
        pos = continuation.end()
    if not references:
        return None
    if (words := TRAILING_WORDS.match(text, pos)) is not None:
        pos = words.end()  # `… of the v3.3 reference`: the target names the document itself
    return references, pos


def _sections_between(table: dict[str, tuple[Target, ...]], first: str, last: str) -> list[str]:
    keys = list(table)
    if first not in table or last not in table:
        return [first, last]
    depth = first.count(".")
    low, high = keys.index(first), keys.index(last)
    return [key for key in keys[low : high + 1] if key.count(".") == depth] or [first, last]


class UnmappedCitationError(Exception):
    pass


def targets_of(reference: Reference, context: str = "") -> list[Target]:
    """The targets of one reference; `context` (the text around it, lower case) narrows the broad SPEC
    sections §7 and §9 to the subsection the surrounding words are about."""
    table = REFERENCE if reference.document == "R" else SPEC
    narrowable = reference.qualifier is None and not reference.items and not reference.until
    if reference.document == "SPEC" and reference.section in CONTEXT_HINTS and narrowable:
        for words, targets in CONTEXT_HINTS[reference.section]:
            if any(word in context for word in words):
                return list(targets)
    if reference.qualifier is not None:
        return list(QUALIFIERS[(reference.document, reference.section, reference.qualifier)])
    if reference.items:
        if (reference.document == "SPEC" and reference.section == "6") or (
            reference.document == "R" and reference.section.startswith("12")
        ):
            items_table = BUG_ITEMS
        elif reference.document == "R" and reference.section == "10.2":
            items_table = LATER_FEATURE_ITEMS
        elif reference.document == "SPEC" and reference.section == "4":
            items_table = SPEC_FEATURE_ITEMS
        else:
            items_table = {}
        if items_table:
            found: list[Target] = []
            for item in reference.items:
                found.extend(items_table.get(item, table.get(reference.section, ())))
            if found:
                return found
    sections = (
        _sections_between(table, reference.section, reference.until)
        if reference.until
        else [reference.section]
    )
    found = []
    for section in sections:
        if section not in table:
            raise UnmappedCitationError(f"{reference.document} {SECTION_SIGN}{section}")
        found.extend(table[section])
    return found


def _section_key(section: str) -> tuple[int, ...]:
    return tuple(int(part) for part in section.split(".")) if section else ()


def github_anchor(heading: str) -> str:
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def heading_anchors(doc: str) -> dict[str, str]:
    """Section number → GitHub anchor, read from the document's numbered headings."""
    path = ROOT / doc
    anchors: dict[str, str] = {}
    if not path.exists():
        return anchors
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"#{2,4} (\d+(?:\.\d+)*)\.? ", line)
        if match:
            anchors.setdefault(match.group(1), github_anchor(line.lstrip("#")))
    return anchors


_ANCHORS: dict[str, dict[str, str]] = {}


def anchor(doc: str, section: str) -> str | None:
    if doc not in _ANCHORS:
        _ANCHORS[doc] = heading_anchors(doc)
    return _ANCHORS[doc].get(section)


def render(targets: Iterable[Target], *, file: Path, link: bool) -> str:
    grouped: dict[str, list[str]] = {}
    for target in targets:
        sections = grouped.setdefault(target.doc, [])
        if target.section and target.section not in sections:
            sections.append(target.section)
    parts = []
    for doc, sections in grouped.items():
        sections.sort(key=_section_key)
        sections = [
            section
            for section in sections
            if not any(section.startswith(parent + ".") for parent in sections)
        ]
        name = _relative(doc, file)
        if not sections:
            parts.append(f"[{Path(doc).name}]({name})" if link else name)
            continue
        if link:
            rendered = []
            for index, section in enumerate(sections):
                label = f"{SECTION_SIGN}{section}"
                if index == 0:
                    label = f"{Path(doc).name} {label}"
                fragment = anchor(doc, section)
                rendered.append(f"[{label}]({name}#{fragment})" if fragment else label)
            parts.append(", ".join(rendered))
        else:
            parts.append(f"{name} " + ", ".join(f"{SECTION_SIGN}{section}" for section in sections))
    return "; ".join(parts)


def _relative(doc: str, file: Path) -> str:
    """Markdown links resolve from the file's folder; code names pages from the repository root."""
    if file.suffix != ".md":
        return doc
    return Path(os.path.relpath(ROOT / doc, file.resolve().parent)).as_posix()


def _inside_code(line_before: str) -> bool:
    return line_before.count("`") % 2 == 1


def rewrite_text(text: str, file: Path) -> tuple[str, int]:
    """Rewrite every citation of `text`; return the new text and the number of citations rewritten."""
    is_markdown = file.suffix == ".md"
    out: list[str] = []
    count = 0
    pos = 0
    in_fence = False
    fence_state_pos = 0
    while True:
        match = PREFIX.search(text, pos)
        if match is None:
            out.append(text[pos:])
            break
        parsed = parse_cluster(text, match.start())
        if parsed is None:
            out.append(text[pos : match.end()])
            pos = match.end()
            continue
        references, end = parsed
        line_start = text.rfind("\n", 0, match.start()) + 1
        previous_line_start = text.rfind("\n", 0, max(line_start - 1, 0)) + 1
        line_end = text.find("\n", end)
        context = text[previous_line_start : line_end if line_end >= 0 else len(text)].lower()
        targets: list[Target] = []
        for reference in references:
            targets.extend(targets_of(reference, context))
        if is_markdown:
            for line in text[fence_state_pos:line_start].splitlines():
                if line.lstrip().startswith("```"):
                    in_fence = not in_fence
            fence_state_pos = line_start
        before = text[line_start : match.start()]
        link = (
            is_markdown
            and not in_fence
            and not _inside_code(before)
            and not before.lstrip().startswith("#")
        )
        kept = text[pos : match.start()]
        if kept.endswith("reference "):  # `(reference R…)`: the target names the document itself
            kept = kept[: -len("reference ")]
        out.append(kept)
        out.append(render(targets, file=file, link=link))
        count += 1
        pos = end
        consumed = text[match.start() : end]
        if "\n" in consumed:
            # the citation spanned two lines: break the line again at the next space
            after_break = consumed[consumed.index("\n") + 1 :]
            gap = "\n" + after_break[: len(after_break) - len(after_break.lstrip(" \t"))]
            line_rest = text[end : text.find("\n", end) if "\n" in text[end:] else len(text)]
            if " " in line_rest:
                cut = end + line_rest.index(" ")
                out.append(text[end:cut] + gap)
                pos = cut + 1
    new_text = "".join(out)
    if file.suffix == ".py" and new_text != text:
        new_text = _tidy_python_lines(text, new_text)
    return new_text, count


RULER = re.compile(r"^(\s*# .*?) (-{4,})$")
LINE_LENGTH = 100


def _tidy_python_lines(old_text: str, new_text: str) -> str:
    """Keep the shape of lines a rewrite lengthened: a `# --- title ---…` ruler keeps its width, and a
    trailing comment that no longer fits moves to its own line above the code (so `ruff format` has
    nothing to re-wrap)."""
    old_lines = old_text.split("\n")
    new_lines = new_text.split("\n")
    if len(old_lines) != len(new_lines):
        return new_text
    tidy: list[str] = []
    for old, new in zip(old_lines, new_lines, strict=True):
        if new == old or len(new) <= max(len(old), LINE_LENGTH):
            tidy.append(new)
            continue
        ruler = RULER.match(new)
        if ruler is not None:
            excess = len(new) - max(len(old), LINE_LENGTH)
            dashes = max(len(ruler.group(2)) - excess, 3)
            tidy.append(f"{ruler.group(1)} {'-' * dashes}")
            continue
        code, separator, comment = new.partition("  # ")
        if separator and code.strip() and not code.lstrip().startswith("#") and _balanced(code):
            indent = code[: len(code) - len(code.lstrip())]
            tidy.append(f"{indent}# {comment}")
            tidy.append(code.rstrip())
            continue
        tidy.append(new)
    return "\n".join(tidy)


def _balanced(code: str) -> bool:
    """True when `code` has no open string literal (so `  # ` after it starts a real comment)."""
    return code.count('"') % 2 == 0 and code.count("'") % 2 == 0


# --- files ---------------------------------------------------------------------------------------------

TEXT_SUFFIXES = {
    ".py",
    ".md",
    ".toml",
    ".ini",
    ".cfg",
    ".txt",
    ".yml",
    ".yaml",
    ".sh",
    ".json",
    ".sql",
}
SKIPPED_PARTS = {".git", ".venv", "node_modules", "static", "__pycache__", ".tox", ".mypy_cache"}


def candidate_files(paths: Sequence[str]) -> list[Path]:
    roots = [ROOT / path for path in paths] if paths else [ROOT]
    files: list[Path] = []
    for root in roots:
        if root.is_file():
            files.append(root)
            continue
        files.extend(_tracked_files(root))
    return sorted(
        {
            file
            for file in files
            if file.resolve() != SELF
            and not SKIPPED_PARTS.intersection(file.relative_to(ROOT).parts)
            and (file.suffix in TEXT_SUFFIXES or file.name == "Dockerfile")
        }
    )


def _tracked_files(root: Path) -> list[Path]:
    try:
        listed = subprocess.run(  # noqa: S603 - fixed arguments, no shell
            ["git", "ls-files", "-z", "--", str(root)],  # noqa: S607 - git from PATH
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.decode()
    except (OSError, subprocess.CalledProcessError):
        return [path for path in root.rglob("*") if path.is_file()]
    return [ROOT / name for name in listed.split("\0") if name]


def read(file: Path) -> str | None:
    try:
        return file.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None


def remaining_citations(files: Iterable[Path]) -> list[str]:
    found = []
    for file in files:
        text = read(file)
        if text is None or SECTION_SIGN not in text:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if CITATION.search(line):
                found.append(f"{file.relative_to(ROOT)}:{number}: {line.strip()}")
    return found


S = SECTION_SIGN
# (text as written in a comment, expected rewrite in a .py file): the forms the code uses.
EXAMPLES: tuple[tuple[str, str], ...] = (
    (f"(R{S}2.7)", f"(docs/contract.md {S}4.4)"),
    (f"(R{S}12)", f"(docs/compatibility.md {S}2)"),
    (f"R{S}3.7.1, {S}3.7.2 apply", f"docs/contract.md {S}6.1, {S}6.2, {S}6.3 apply"),
    (f"R{S}2.4–{S}2.6.", f"docs/contract.md {S}4.1, {S}4.2, {S}4.3."),
    (f"SPEC {S}5–{S}7:", f"docs/contract.md {S}1.6, {S}14; docs/compatibility.md {S}2:"),
    (f"SPEC {S}6 item 4)", f"docs/contract.md {S}4.4)"),
    (f"(SPEC {S}6 items 5–8)", f"(docs/contract.md {S}2.6, {S}7.1, {S}7.2, {S}7.3)"),
    (f"SPEC {S}6 (items 24, 26, 47).", f"docs/contract.md {S}10, {S}11.2, {S}11.5."),
    (f"SPEC {S}6 fixes 17–21.", f"docs/contract.md {S}6.1, {S}6.2, {S}6.3."),
    (f"SPEC {S}4.13", f"docs/contract.md {S}11.4"),
    (f"SPEC {S}4 item 7, {S}6 item 27", f"docs/contract.md {S}8.2"),
    (f"R{S}12.5 item 43:", f"docs/contract.md {S}8.5:"),
    (f"R{S}10.2 items 6–7", f"docs/contract.md {S}13.1, {S}14.1"),
    (f"R{S}2.2 step 5", f"docs/contract.md {S}2.2"),
    (f'R{S}2.2 "Tracing"', f"docs/contract.md {S}2.7"),
    (f"R{S}2.11 with SPEC {S}6 fixes 5–8", f"docs/contract.md {S}2.6, {S}7"),
    (f"revoked (SPEC {S}7)", f"revoked (docs/contract.md {S}3.2)"),
    (f"(reference R{S}7, R{S}8)", f"(docs/contract.md {S}11)"),
    (f"R{S}1 of the v3.3 reference", f"docs/contract.md {S}1"),
    (f"R{S}12.4 item\n34: x", f"docs/contract.md {S}13.4:\nx"),
)


def self_test() -> int:
    """Rewrite the examples above (and their output again, for idempotence); report any mismatch."""
    failures = 0
    probe = ROOT / "src" / "example.py"
    for written, expected in EXAMPLES:
        got, _ = rewrite_text(written, probe)
        again, count = rewrite_text(got, probe)
        if got != expected or again != got or count:
            failures += 1
            print(f"FAIL {written!r}: got {got!r}, expected {expected!r}", file=sys.stderr)
    print(f"{len(EXAMPLES) - failures}/{len(EXAMPLES)} examples rewritten as expected")
    return 1 if failures else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", help="files or folders (default: every tracked file)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--check", action="store_true", help="list remaining citations, exit 1 if any"
    )
    mode.add_argument(
        "--dry-run", action="store_true", help="rewrite nothing, print the diff it would make"
    )
    mode.add_argument("--self-test", action="store_true", help="check the rewrite on known forms")
    args = parser.parse_args(argv)
    if args.self_test:
        return self_test()
    files = candidate_files(args.paths)

    if args.check:
        left = remaining_citations(files)
        for line in left:
            print(line)
        if left:
            print(
                f"{len(left)} line(s) still cite documents outside the repository.", file=sys.stderr
            )
            return 1
        print("No citation of a document outside the repository.")
        return 0

    changed_files = 0
    rewritten = 0
    for file in files:
        text = read(file)
        if text is None or SECTION_SIGN not in text:
            continue
        try:
            new_text, count = rewrite_text(text, file)
        except UnmappedCitationError as error:
            # a section no document has: leave the file as it is, report it, go on with the others
            print(
                f"{file.relative_to(ROOT)}: no mapping for {error}, file left unchanged",
                file=sys.stderr,
            )
            continue
        if count and new_text != text:
            changed_files += 1
            rewritten += count
            if args.dry_run:
                name = str(file.relative_to(ROOT))
                sys.stdout.writelines(
                    difflib.unified_diff(
                        text.splitlines(keepends=True),
                        new_text.splitlines(keepends=True),
                        fromfile=f"a/{name}",
                        tofile=f"b/{name}",
                        n=0,
                    )
                )
            else:
                file.write_text(new_text, encoding="utf-8")
    verb = "would rewrite" if args.dry_run else "rewrote"
    print(f"{verb} {rewritten} citation(s) in {changed_files} file(s)")
    left = remaining_citations(files)
    for line in left:
        print(f"left: {line}", file=sys.stderr)
    return 1 if left and not args.dry_run else 0


if __name__ == "__main__":
    sys.exit(main())
