#!/usr/bin/env python3
"""Checks that every document a code comment cites is in the repository, and that the
sections and rule numbers it names exist there (issue 16 §5).

A citation is `docs/NAME.md` or `README.md`, optionally followed by `§N[.M]`, rule numbers
(`R12`, `F7`, `I2`) or a quoted heading ("The setup file"). Bare names of the reference
documents the project was started from (DESIGN.md, compliance.md, ...) are refused: a newcomer
cannot open them.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCES = [p for d in ("src", "crates", "tests") for p in (ROOT / d).rglob("*.rs")]
BARE = re.compile(r"(?<![\w/.-])(DESIGN|compliance|reliability|security|twilio|style)\.md")
CITE = re.compile(r"((?:docs/[a-z_-]+|README)\.md)((?:[ ,;:]*(?:§\s?[0-9]+[a-z]?(?:\.[0-9]+)*|[RFI][0-9]+(?:[–-][RFI]?[0-9]+)?|\"[^\"]+\"|step[s]? [0-9]+(?:[–-][0-9]+)?(?:, [0-9]+)*(?: and [0-9]+)?|rows? [0-9]+(?:[–-][0-9]+)?|and))*)")


def headings(text):
    out = set()
    for line in text.splitlines():
        m = re.match(r"#+\s+(.*)", line)
        if m:
            out.add(m.group(1).strip())
    return out


def numbers(heads):
    nums = set()
    for h in heads:
        m = re.match(r"([0-9]+[a-z]?(?:\.[0-9]+)*)\.?\s", h)
        if m:
            nums.add(m.group(1))
    return nums


def main():
    bad = []
    docs = {}
    for path in SOURCES:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if "//" not in line:
                continue
            comment = line[line.index("//"):]
            rel = f"{path.relative_to(ROOT)}:{n}"
            for m in BARE.finditer(comment):
                bad.append(f"{rel}: cites {m.group(0)}, which is not in the repository")
            for m in CITE.finditer(comment):
                doc, tail = m.group(1), m.group(2)
                file = ROOT / doc
                if not file.exists():
                    bad.append(f"{rel}: cites {doc}, which does not exist")
                    continue
                if doc not in docs:
                    text = file.read_text()
                    docs[doc] = (text, headings(text), numbers(headings(text)))
                text, heads, nums = docs[doc]
                for sec in re.findall(r"§\s?([0-9]+[a-z]?(?:\.[0-9]+)*)", tail):
                    if sec not in nums:
                        bad.append(f"{rel}: {doc} has no section §{sec}")
                for rule in re.findall(r"\b([RFI][0-9]+)\b", tail):
                    if not re.search(rf"\b{rule}\b", text):
                        bad.append(f"{rel}: {doc} has no {rule}")
                for title in re.findall(r"\"([^\"]+)\"", tail):
                    t = title.lower()
                    if not any(t in h.lower() for h in heads) and not re.search(
                        rf"^\| {re.escape(t)}\b", text.lower(), re.M
                    ):
                        bad.append(f"{rel}: {doc} has no heading \"{title}\"")
                for first in re.findall(r"steps? ([0-9]+)", tail):
                    if not re.search(rf"^(?:{first}\. |\| {first} \|)", text, re.M):
                        bad.append(f"{rel}: {doc} has no step {first}")
    for b in bad:
        print(b)
    if bad:
        print(f"{len(bad)} citation(s) to fix", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
