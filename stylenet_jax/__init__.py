"""stylenet-jax: give quantised MIDI a human performance's dynamics (StyleNet in JAX)."""
