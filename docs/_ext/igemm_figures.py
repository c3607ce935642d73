"""The two figures of the kernels page: ``python docs/_ext/igemm_figures.py`` redraws them.

They are committed as ``docs/figures/{im2col,igemm}.png`` so that a docs build needs no
matplotlib (its font cache alone costs seconds on a fresh machine).

``im2col``: a 5×5 input, a 3×3 kernel, stride 1: each row of the patch matrix ``P`` is one
output pixel's window, flattened; ``y = P · W``.

``igemm``: the index arithmetic of ``dlref.kernels.pallas_igemm`` for a padded 8×8 input, a
3×3 kernel and stride 2. The input is split into its 2×2 stride phases
``x_ph[r][q] = x_pad[q·s + r]``; tap ``t = (1, 2)`` writes ``t·d = s·a + r`` with
``a = (0, 1)``, ``r = (1, 0)``, so every output pixel ``o`` reads ``x_ph[(1, 0)][o + a]`` and,
with the output flattened on the phase grid's row stride (``m = 4·o_1 + o_2``, a "wide" output
with one garbage column), the tap reads the *contiguous* rows ``m + 1`` of phase ``(1, 0)``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

PHASE_COLOURS = {(0, 0): "#dbe9f6", (0, 1): "#fde2c8", (1, 0): "#d6f0d2", (1, 1): "#eadcf2"}
HIGHLIGHT = "#d62728"


def _grid(ax, rows, cols, text, colour, *, edge=None, title=""):
    for i in range(rows):
        for j in range(cols):
            ax.add_patch(
                Rectangle((j, rows - 1 - i), 1, 1, facecolor=colour(i, j), edgecolor="#777", lw=0.6)
            )
            label = text(i, j)
            if label:
                ax.text(j + 0.5, rows - 0.5 - i, label, ha="center", va="center", fontsize=7)
            if edge and edge(i, j):
                ax.add_patch(
                    Rectangle((j, rows - 1 - i), 1, 1, fill=False, edgecolor=HIGHLIGHT, lw=2.2)
                )
    ax.set_xlim(-0.2, cols + 0.2)
    ax.set_ylim(-0.2, rows + 0.2)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=9)


def draw_im2col():
    n, k = 5, 3
    out = n - k + 1
    o_sel = (1, 2)  # the output pixel whose window is shown
    window = {(o_sel[0] + a, o_sel[1] + b) for a in range(k) for b in range(k)}
    fig, (ax_x, ax_p) = plt.subplots(
        1, 2, figsize=(8.6, 3.4), gridspec_kw={"width_ratios": [1, 1.7]}
    )
    _grid(
        ax_x,
        n,
        n,
        lambda i, j: str(i * n + j),
        lambda i, j: "#fde2c8" if (i, j) in window else "white",
        edge=lambda i, j: (i, j) in window,
        title=f"input x ({n}×{n}), window of output o = {o_sel}",
    )
    rows, cols = out * out, k * k
    sel_row = o_sel[0] * out + o_sel[1]

    def p_text(r, c):
        o1, o2 = divmod(r, out)
        t1, t2 = divmod(c, k)
        return str((o1 + t1) * n + (o2 + t2))

    _grid(
        ax_p,
        rows,
        cols,
        p_text,
        lambda r, c: "#fde2c8" if r == sel_row else "white",
        edge=lambda r, c: r == sel_row,
        title="patch matrix P: row (n, o), column (tap t, channel c)\n"
        "P[o, t] = x[o·s + t·d];  y = P · W, W of shape (k·k·C_in, C_out)",
    )
    for r in range(rows):
        ax_p.text(-0.3, rows - 0.5 - r, f"o={divmod(r, out)}", ha="right", va="center", fontsize=6)
    ax_p.set_xlim(-2.2, cols + 0.2)
    fig.tight_layout()
    return fig


def draw_igemm():
    s, k, n_pad = 2, 3, 8
    q = n_pad // s  # phase grid size Q
    out = (n_pad - k) // s + 1
    tap = (1, 2)
    a = tuple(t // s for t in tap)
    r = tuple(t % s for t in tap)
    read = {(s * o1 + tap[0], s * o2 + tap[1]) for o1 in range(out) for o2 in range(out)}
    fig = plt.figure(figsize=(9.6, 5.2))
    gs = fig.add_gridspec(2, 2, height_ratios=[4, 1.1])
    ax_in, ax_ph, ax_strip = (
        fig.add_subplot(gs[0, 0]),
        fig.add_subplot(gs[0, 1]),
        fig.add_subplot(gs[1, :]),
    )
    _grid(
        ax_in,
        n_pad,
        n_pad,
        lambda i, j: f"{i // s},{j // s}",
        lambda i, j: PHASE_COLOURS[(i % s, j % s)],
        edge=lambda i, j: (i, j) in read,
        title=f"(a) padded input x_pad ({n_pad}×{n_pad}); "
        f"colour: phase r = (i mod {s}, j mod {s});\n"
        f"text: q = (i div {s}, j div {s}); red: read by tap t = {tap}",
    )
    wanted = {(o1 + a[0], o2 + a[1]) for o1 in range(out) for o2 in range(out)}
    _grid(
        ax_ph,
        q,
        q,
        lambda i, j: str(i * q + j),
        lambda i, j: PHASE_COLOURS[r],
        edge=lambda i, j: (i, j) in wanted,
        title=f"(b) phase r = {r} ({q}×{q}, text: flat index q₁·{q} + q₂);\n"
        f"t·d = s·a + r gives a = {a}: output o reads x_ph[r, o + a]",
    )
    # The flattened phase: the wide output m = o1·Q + o2 (o2 = Q - 1 is a garbage column) reads
    # rows m + off, off = a1·Q + a2: one contiguous slice per tap.
    off = a[0] * q + a[1]
    length = q * q
    m_rows = out * q  # rows of the wide output
    for idx in range(length):
        inside = off <= idx < off + m_rows
        garbage = inside and (idx - off) % q == q - 1
        colour = PHASE_COLOURS[r] if inside else "white"
        ax_strip.add_patch(
            Rectangle(
                (idx, 0),
                1,
                1,
                facecolor=colour,
                edgecolor="#777",
                lw=0.6,
                hatch="///" if garbage else None,
            )
        )
        ax_strip.text(idx + 0.5, 0.5, str(idx), ha="center", va="center", fontsize=7)
    ax_strip.add_patch(Rectangle((off, 0), m_rows, 1, fill=False, edgecolor=HIGHLIGHT, lw=2.2))
    ax_strip.set_xlim(-0.2, length + 0.2)
    ax_strip.set_ylim(-0.1, 1.1)
    ax_strip.set_aspect("equal")
    ax_strip.axis("off")
    ax_strip.set_title(
        f"(c) phase {r} flattened: tap {tap} of the wide output "
        f"m = o₁·{q} + o₂ (m = 0…{m_rows - 1}) "
        f"is the contiguous slice [m₀ + {off} : m₀ + {off} + block_m];\n"
        f"hatched: the garbage column o₂ = {q - 1} (computed, then sliced off)",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


FIGURES = {"im2col": draw_im2col, "igemm": draw_igemm}


def main() -> None:
    import pathlib

    out = pathlib.Path(__file__).resolve().parent.parent / "figures"
    out.mkdir(parents=True, exist_ok=True)
    for name, draw in FIGURES.items():
        fig = draw()
        fig.savefig(out / f"{name}.png", dpi=110, metadata={"Software": None})
        plt.close(fig)
        print(out / f"{name}.png")


if __name__ == "__main__":
    main()
