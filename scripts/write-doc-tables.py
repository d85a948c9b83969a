#!/usr/bin/env python3
"""Writes the measured tables into README.md and docs/raspberry-pi.md.

    python3 scripts/write-doc-tables.py FILE...

Each FILE holds one or more blocks from `<!-- NAME: begin ...` to `<!-- NAME: end -->`, as
`scripts/pi-test.sh` prints them at its end: its own block files (`pi-test.sh --write-docs`
passes them), or the saved output of a whole pi-test run, such as a CI log. Every block found
replaces the block of the same name in docs/raspberry-pi.md, which has them all; the README
takes the suite results and the firmware sizes. A name with no markers in a document is an
error, so a table cannot silently go stale.
"""
import pathlib
import re
import sys

BLOCK = re.compile(r"<!-- ([a-z-]+): begin.*?<!-- \1: end -->", re.S)
DOCS = (("docs/raspberry-pi.md", None), ("README.md", {"suite-results", "firmware-sizes"}))


def main(paths):
    root = pathlib.Path(__file__).resolve().parent.parent
    blocks = {}
    for path in paths:
        for m in BLOCK.finditer(pathlib.Path(path).read_text()):
            blocks[m.group(1)] = m.group(0)  # the last of a name wins
    if not blocks:
        sys.exit("no table blocks in %s" % " ".join(paths))
    for doc, wanted in DOCS:
        target = root / doc
        text = target.read_text()
        for name, block in blocks.items():
            if wanted is not None and name not in wanted:
                continue
            pattern = re.compile(r"<!-- %s: begin.*?<!-- %s: end -->" % (name, name), re.S)
            if not pattern.search(text):
                sys.exit("%s has no %s markers" % (doc, name))
            text = pattern.sub(lambda _: block, text, count=1)
        target.write_text(text)
        print("%s: %s written" % (doc, ", ".join(n for n in blocks if wanted is None or n in wanted)))


if __name__ == "__main__":
    main(sys.argv[1:])
