#!/usr/bin/env python3
"""`make chart-docs`: the values reference of charts/vmnet-operator/README.md, generated
from the `# --` comments in values.yaml (every value has one). `--check` exits 1 when the
committed README differs (tests/chart.rs runs it)."""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "vmnet-operator"
BEGIN, END = "<!-- values:begin -->", "<!-- values:end -->"


def values_table():
    rows, path, doc, documented = [], [], [], []
    for line in (CHART / "values.yaml").read_text().splitlines():
        if not line.strip():
            doc = []
            continue
        indent = len(line) - len(line.lstrip())
        text = line.strip()
        if text.startswith("# --"):
            doc = [text[4:].strip()]
            continue
        if text.startswith("#"):
            if doc:
                doc.append(text[1:].strip())
            continue
        m = re.match(r"([A-Za-z0-9_]+):\s*(.*)$", text)
        if not m:
            continue
        key, default = m.group(1), m.group(2)
        depth = indent // 2
        path = path[:depth] + [key]
        documented = documented[:depth] + [bool(doc)]
        if doc:
            rows.append((".".join(path), default or "(a map: see values.yaml)", " ".join(doc)))
            doc = []
        elif default and not any(documented[:-1]):
            sys.exit(f"values.yaml: {'.'.join(path)} has no '# --' comment")
    out = ["| value | default | what it does |", "|---|---|---|"]
    for key, default, what in rows:
        what = what.replace("|", "\\|")
        out.append(f"| `{key}` | `{default}` | {what} |")
    return "\n".join(out)


def render(readme):
    start, end = readme.index(BEGIN) + len(BEGIN), readme.index(END)
    return readme[:start] + "\n" + values_table() + "\n" + readme[end:]


readme_path = CHART / "README.md"
readme = readme_path.read_text()
want = render(readme)
if "--check" in sys.argv:
    if want != readme:
        sys.exit("charts/vmnet-operator/README.md is stale; run `make chart-docs`")
else:
    readme_path.write_text(want)
