"""Re-records tests/data/minuet_shipped_velocities.json: the velocities the shipped model (and
the shipped tree its heads read) writes for the README example, one list per style or blend.

    python3 tests/record_shipped_reference.py

Run it only when the shipped model, the shipped tree or the example changed on purpose: the
stylize and performer tests check that the code still writes what it records (their sha256
are recorded beside them). Not a test; pytest does not collect it.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from performer_factory import (ROOT, SHIPPED_REFERENCE, cli, file_sha256,  # noqa: E402
                               piano_velocities)

INPUT = "examples/minuet_in_g.mid"
FILES = {"input": INPUT, "model": "stylenet_jax/assets/stylenet.npz",
         "tree": "stylenet_jax/assets/feature_baseline.pkl"}
STYLES = ("jazz", "classical", "pop", "classical=0.5,jazz=0.5")
ABOUT = ("Velocities, one per piano note in file order, that the shipped model writes for the "
         "README example: `python3 -m stylenet_jax.stylize examples/minuet_in_g.mid -o OUT.mid "
         "--style STYLE`, recorded by tests/record_shipped_reference.py. tests/test_stylize.py "
         "and tests/test_performer.py check that the code still writes these (up to a velocity "
         "unit on a note or two: bfloat16 matmuls round differently on CPUs with and without "
         "AMX); re-record only when the model, its tree or the example changes on purpose "
         "(their sha256 are below).")


def as_text(reference: dict) -> str:
    """The reference as JSON with one line per field and per style (a re-recording's diff
    shows which styles moved)."""
    lines = [f"  {json.dumps(key)}: {json.dumps(value)}," for key, value in reference.items()
             if key != "velocities"]
    styles = [f"    {json.dumps(style)}: {json.dumps(values)}"
              for style, values in reference["velocities"].items()]
    return "\n".join(["{", *lines, '  "velocities": {', ",\n".join(styles), "  }", "}", ""])


def main() -> None:
    reference = {"about": ABOUT}
    for what, path in FILES.items():
        reference[what], reference[f"{what}_sha256"] = path, file_sha256(path)
    velocities = {}
    with tempfile.TemporaryDirectory() as tmp:
        for style in STYLES:
            out = os.path.join(tmp, "out.mid")
            done = cli(INPUT, "-o", out, "--style", style)
            if done.returncode != 0:
                sys.exit(f"stylize --style {style} failed: {done.stderr.strip()}")
            velocities[style] = piano_velocities(out)
            print(f"{style}: {len(velocities[style])} notes, "
                  f"{min(velocities[style])}..{max(velocities[style])}")
    reference["velocities"] = velocities
    with open(SHIPPED_REFERENCE, "w", encoding="utf-8") as f:
        f.write(as_text(reference))
    print(f"wrote {os.path.relpath(SHIPPED_REFERENCE, ROOT)}")


if __name__ == "__main__":
    main()
