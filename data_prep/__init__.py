"""Build training datasets from folders of MIDI files."""
