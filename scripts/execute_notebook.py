"""Execute notebooks in place so that they are committed with their outputs and plots.

.venv/bin/python scripts/execute_notebook.py notebooks/01_activations_losses.ipynb
"""

from __future__ import annotations

import os
import pathlib
import sys

import nbformat
from nbclient import NotebookClient


def main(paths: list[str]) -> int:
    # No MPLBACKEND here: the kernel's inline backend embeds the plots in the saved notebook.
    os.environ.pop("MPLBACKEND", None)
    for p in paths:
        path = pathlib.Path(p)
        nb = nbformat.read(path, as_version=4)
        NotebookClient(
            nb,
            timeout=900,
            kernel_name="python3",
            resources={"metadata": {"path": str(path.parent)}},
        ).execute()
        nbformat.write(nb, path)
        print(f"executed {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
