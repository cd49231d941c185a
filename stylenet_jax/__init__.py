"""stylenet-jax: give quantised MIDI a human performance's dynamics (StyleNet in JAX)."""

import os

# XLA's CPU "concurrency optimized scheduler" deadlocks on StyleNet's programs with JAX
# 0.10.2: the jitted init or step of the paper's model with 2+ style heads never returns
# (every thread idle). Turning the scheduler off fixes it; the flag exists in jaxlib 0.10.2
# and 0.11.2 and only affects CPU compilation. Set before JAX creates its backend.
_XLA_WORKAROUND = "--xla_cpu_enable_concurrency_optimized_scheduler=false"
if "xla_cpu_enable_concurrency_optimized_scheduler" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_XLA_WORKAROUND}".strip()
