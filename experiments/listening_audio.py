"""Sound for the listening test: MIDI rendered by FluidSynth with a General MIDI soundfont,
cut into excerpts, written as WAV.

FluidSynth renders raw float32 (no clipping inside the renderer); the two clips of a pair are
scaled by one factor, so their difference in loudness, part of what a listener judges, is
kept exactly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import wave

import numpy as np

from stylenet_jax.atomic_write import write_atomically

INSTALL_HINT = ("install them with `sudo apt-get install fluidsynth fluid-soundfont-gm` "
                "(Debian, Ubuntu) or `brew install fluid-synth` and a General MIDI .sf2 "
                "(macOS), or name a soundfont with --soundfont")
SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/soundfonts/FluidR3_GM.sf2",
              "/usr/share/sounds/sf2/default-GM.sf2", "/usr/share/soundfonts/default.sf2",
              "/usr/share/sounds/sf2/TimGM6mb.sf2")
RENDER_TIMEOUT_S = 600
PAIR_PEAK = 0.89  # about -1 dBFS: the louder clip of a pair peaks here
FADE_S = 0.04


class AudioToolError(RuntimeError):
    """FluidSynth or a soundfont is missing or failed (one line, with what to do)."""


def find_fluidsynth() -> str:
    """The fluidsynth executable's path, or AudioToolError saying how to install it."""
    path = shutil.which("fluidsynth")
    if not path:
        raise AudioToolError(f"FluidSynth is not installed: {INSTALL_HINT}")
    return path


def find_soundfont(path: str | None = None) -> str:
    """``path`` if it is a readable file, else the first General MIDI soundfont found in the
    usual Debian and Homebrew places (``SOUNDFONTS``); AudioToolError when there is none."""
    if path:
        if not os.path.isfile(path):
            raise AudioToolError(f"--soundfont {path}: no such file")
        return path
    for candidate in SOUNDFONTS:
        if os.path.isfile(candidate):
            return candidate
    raise AudioToolError(f"no General MIDI soundfont found (looked in "
                         f"{', '.join(os.path.dirname(s) for s in SOUNDFONTS[:2])}): "
                         f"{INSTALL_HINT}")


def render(midi_path: str, soundfont: str, rate: int, fluidsynth: str = "fluidsynth"
           ) -> np.ndarray:
    """The whole file as FluidSynth plays it: float32 (samples,) mono at ``rate`` Hz, reverb
    and chorus at FluidSynth's defaults, the release tail included."""
    with tempfile.TemporaryDirectory(prefix="stylenet-render-") as work:
        raw = os.path.join(work, "out.raw")
        command = [fluidsynth, "-ni", "-q", "-g", "0.5", "-r", str(rate), "-O", "float",
                   "-E", "little", "-T", "raw", "-F", raw, soundfont, midi_path]
        try:
            done = subprocess.run(command, capture_output=True, text=True,
                                  timeout=RENDER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise AudioToolError(f"FluidSynth took over {RENDER_TIMEOUT_S} s on "
                                 f"{midi_path}") from None
        if done.returncode != 0 or not os.path.isfile(raw):
            said = (done.stderr or done.stdout).strip().splitlines()
            raise AudioToolError(f"FluidSynth failed on {midi_path} (status "
                                 f"{done.returncode}): {said[-1] if said else 'no output'}")
        stereo = np.fromfile(raw, dtype="<f4")
    return stereo[: len(stereo) // 2 * 2].reshape(-1, 2).mean(axis=1)


def excerpt(samples: np.ndarray, rate: int, start_s: float, seconds: float,
            fade_s: float = FADE_S) -> np.ndarray:
    """float32 samples from ``start_s`` for ``seconds`` (zero-padded past the end), with
    ``fade_s`` linear fades in and out so no clip starts or stops with a click."""
    first = max(int(round(start_s * rate)), 0)
    count = int(round(seconds * rate))
    clip = np.zeros(count, np.float32)
    piece = samples[first:first + count]
    clip[:len(piece)] = piece
    fade = min(int(fade_s * rate), count // 2)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
        clip[:fade] *= ramp
        clip[count - fade:] *= ramp[::-1]
    return clip


def scale_together(*clips: np.ndarray, peak: float = PAIR_PEAK) -> list[np.ndarray]:
    """The clips times one factor that brings the loudest sample of any of them to ``peak``
    (silence stays silence)."""
    top = max(float(np.abs(c).max(initial=0.0)) for c in clips)
    factor = peak / top if top > 0 else 1.0
    return [c * factor for c in clips]


def write_wav(path: str, samples: np.ndarray, rate: int) -> str:
    """16-bit mono PCM WAV of float samples in -1..1 (clipped), written atomically."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).round().astype("<i2")

    def write(f):
        with wave.open(f, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(rate)
            out.writeframes(pcm.tobytes())

    return write_atomically(path, write)


def read_wav(path: str) -> tuple[np.ndarray, int]:
    """A 16-bit mono WAV (as ``write_wav`` writes) as float32 samples in -1..1, and its rate."""
    with wave.open(path, "rb") as f:
        if f.getsampwidth() != 2 or f.getnchannels() != 1:
            raise ValueError(f"{path}: not 16-bit mono")
        frames = f.readframes(f.getnframes())
        return np.frombuffer(frames, "<i2").astype(np.float32) / 32767, f.getframerate()
