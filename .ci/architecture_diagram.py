"""Draws the import contracts of `.importlinter` as a Mermaid diagram inside docs/architecture.md.

    python .ci/architecture_diagram.py          rewrite the block between the layer markers
    python .ci/architecture_diagram.py --check  exit 1 if the block is not what the contracts say

The contracts file is the single source of truth; the picture is made from it (`make architecture`)
and a test keeps the two from drifting.
"""

from __future__ import annotations

import configparser
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS = ROOT / ".importlinter"
DOC = ROOT / "docs" / "architecture.md"
BEGIN = "<!-- layers: generated from .importlinter by `make architecture`; do not edit -->"
END = "<!-- /layers -->"


def _node_id(module: str) -> str:
    return re.sub(r"\W", "_", module)


def diagram(contracts_text: str) -> str:
    parser = configparser.ConfigParser()
    parser.read_string(contracts_text)
    lines = ["```mermaid", "flowchart TB"]
    for number, section in enumerate(parser.sections()):
        contract = parser[section]
        if contract.get("type") != "layers":
            continue
        containers = contract.get("containers", "").split()
        prefix = f"{containers[0]}." if containers else ""
        layers = [line.strip() for line in contract["layers"].splitlines() if line.strip()]
        indent = "  "
        if containers:
            # Layers inside one package: drawn in a box of their own, named after it.
            lines.append(f'  subgraph inside_{_node_id(containers[0])}["inside {containers[0]}"]')
            lines.append("    direction TB")
            indent = "    "
        layer_ids: list[str] = []
        for index, layer in enumerate(layers):
            independent = "|" in layer
            modules = [prefix + m.strip() for m in re.split(r"[|:]", layer)]
            layer_id = f"c{number}layer{index}"
            layer_ids.append(layer_id)
            label = "independent of each other" if independent else "may import each other"
            if len(modules) == 1:
                label = ""
            lines.append(f'{indent}subgraph {layer_id}["{label}"]')
            lines.append(f"{indent}  direction LR")
            lines.extend(f'{indent}  {_node_id(m)}["{m}"]' for m in modules)
            lines.append(f"{indent}end")
        for upper, lower in zip(layer_ids, layer_ids[1:], strict=False):
            lines.append(f"{indent}{upper} -->|imports| {lower}")
        if containers:
            lines.append("  end")
    for section in parser.sections():
        contract = parser[section]
        if contract.get("type") != "forbidden":
            continue
        sources = contract["source_modules"].split()
        forbidden_modules = contract["forbidden_modules"].split()
        if len(sources) > 2:
            # Every package of a layer (what is shipped, say): one box for them all.
            group = f"{_node_id(section)}_sources"
            lines.append(f'  {group}(["{contract.get("name", section)}"])')
            sources_drawn = [group]
        else:
            sources_drawn = [_node_id(source) for source in sources]
        for forbidden in forbidden_modules:
            lines.append(f'  {_node_id(forbidden)}["{forbidden}"]')
            for source in sources_drawn:
                lines.append(f'  {source} -. "never" .-x {_node_id(forbidden)}')
    lines.append("```")
    return "\n".join(lines)


def rewritten(doc_text: str, block: str) -> str:
    start, end = doc_text.index(BEGIN), doc_text.index(END)
    return doc_text[: start + len(BEGIN)] + "\n" + block + "\n" + doc_text[end:]


def main() -> int:
    block = diagram(CONTRACTS.read_text())
    text = DOC.read_text()
    new = rewritten(text, block)
    if "--check" in sys.argv:
        if new != text:
            print("docs/architecture.md: the layer diagram is stale; run `make architecture`")
            return 1
        return 0
    DOC.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
