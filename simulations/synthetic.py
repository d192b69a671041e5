"""Synthetic body-worn IMU signals with real domain shifts.

This is the signal model behind ``fedotl data synth`` and the embedded
default of the demo.  Each reader module in :mod:`fedotl.simulations.readers` has a
``write_synthetic`` that turns these arrays into its dataset's official layout.

Signal model, per (subject, activity, body position), in the sensor frame::

    acc(t)  = gain_s * R_s R_p [ 9.81 * g_ap + A_ap * m(t) * (u_ap sin(2π f t) + h_ap u2_ap sin(4π f t)) ] + o_s + noise
    gyro(t) = gain_s * R_s R_p [ B_ap * m(t) * w_ap cos(2π f t) ] + noise
    mag(t)  = R_s R_p [ 45 μT * n_ap ] + noise

* Each **activity** has a motion signature per position: gravity direction
  ``g_ap`` (posture), oscillation amplitude ``A_ap``/``B_ap`` and axes, and a
  cadence ``f_a``.  Activities come in *twins*: every second activity is a
  perturbed copy of the one before (sitting/standing-in-elevator style
  pairs), so classes overlap and no sensible method sits at 100 %.
* Each **subject** has a gain, an offset, a cadence multiplier and a small
  sensor-orientation rotation ``R_s`` (how they wear the device).
* Each **position** has its own mounting rotation ``R_p`` and amplitude
  profile, so cross-position transfer is much harder than cross-subject.
* ``m(t)`` is a slow random amplitude modulation and the cadence jitters, so
  windows of one activity differ from each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

GRAVITY = 9.81
EARTH_FIELD_UT = 45.0
SENSOR_KINDS = ("acc", "gyro", "mag")


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    """A random rotation by at most ``max_deg`` degrees about a random axis (Rodrigues)."""
    axis = _unit(rng.normal(size=3))
    angle = np.deg2rad(rng.uniform(-max_deg, max_deg))
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


@dataclass
class _Signature:
    g: np.ndarray  # (3,) gravity direction
    amp: float  # acceleration amplitude, m/s^2
    u: np.ndarray  # (3,) main oscillation axis
    u2: np.ndarray  # (3,) harmonic axis
    h: float  # harmonic ratio
    gyro_amp: float  # rad/s
    w: np.ndarray  # (3,) rotation axis
    n: np.ndarray  # (3,) magnetic field direction
    cadence: float = 0.0  # Hz


class SyntheticHAR:
    """Deterministic generator of activity signals for subjects and positions.

    >>> gen = SyntheticHAR(n_activities=4, positions=["T", "RA"], seed=0)
    >>> x = gen.signal(subject=0, activity=1, position="RA", n=50, rate_hz=25.0)
    >>> x.shape  # acc, gyro, mag triples
    (50, 9)
    """

    def __init__(
        self,
        n_activities: int,
        positions: list[str],
        seed: int = 0,
        noise: float = 0.8,
        subject_rotation_deg: float = 25.0,
        style: float = 1.8,
    ):
        self.n_activities = n_activities
        self.positions = list(positions)
        self.seed = seed
        self.noise = noise
        self.subject_rotation_deg = subject_rotation_deg
        self.style = style
        rng = np.random.default_rng([seed, 7])
        self._cadence = np.empty(n_activities)
        self._sig: dict[tuple[int, str], _Signature] = {}
        self._pos_rot = {p: _rotation(rng, 90.0) for p in self.positions}
        pos_scale = {p: rng.uniform(0.4, 1.6, size=n_activities) for p in self.positions}
        for a in range(n_activities):
            twin = a % 2 == 1
            self._cadence[a] = (
                self._cadence[a - 1] * rng.uniform(1.02, 1.1) if twin else rng.uniform(0.0, 3.0)
            )
            for p in self.positions:
                if twin:
                    base = self._sig[(a - 1, p)]
                    self._sig[(a, p)] = _Signature(
                        g=_unit(base.g + rng.normal(scale=0.08, size=3)),
                        amp=base.amp * rng.uniform(0.9, 1.15),
                        u=_unit(base.u + rng.normal(scale=0.15, size=3)),
                        u2=base.u2,
                        h=base.h * rng.uniform(0.6, 1.4),
                        gyro_amp=base.gyro_amp * rng.uniform(0.7, 1.4),
                        w=_unit(base.w + rng.normal(scale=0.4, size=3)),
                        n=_unit(base.n + rng.normal(scale=0.2, size=3)),
                        cadence=self._cadence[a],
                    )
                    continue
                static = self._cadence[a] < 0.6
                amp = (0.15 if static else rng.uniform(1.0, 6.0)) * pos_scale[p][a]
                self._sig[(a, p)] = _Signature(
                    g=_unit(rng.normal(size=3)),
                    amp=amp,
                    u=_unit(rng.normal(size=3)),
                    u2=_unit(rng.normal(size=3)),
                    h=rng.uniform(0.1, 0.6),
                    gyro_amp=(0.05 if static else rng.uniform(0.4, 3.0)) * pos_scale[p][a],
                    w=_unit(rng.normal(size=3)),
                    n=_unit(rng.normal(size=3)),
                    cadence=self._cadence[a],
                )

    def _style(self, sig: "_Signature", subject: int, activity: int, position: str) -> "_Signature":
        """How this subject performs this activity: posture, vigour and cadence differ."""
        a_rng = np.random.default_rng([self.seed, 17, subject, activity])
        vigour, tempo = a_rng.uniform(0.55, 1.6), a_rng.uniform(0.8, 1.2)
        p_rng = np.random.default_rng([self.seed, 19, subject, activity, self.positions.index(position)])
        s = self.style
        return _Signature(
            g=_unit(sig.g + p_rng.normal(scale=0.25 * s, size=3)),
            amp=sig.amp * vigour,
            u=_unit(sig.u + p_rng.normal(scale=0.3 * s, size=3)),
            u2=sig.u2,
            h=sig.h,
            gyro_amp=sig.gyro_amp * vigour,
            w=_unit(sig.w + p_rng.normal(scale=0.3 * s, size=3)),
            n=_unit(sig.n + p_rng.normal(scale=0.15 * s, size=3)),
            cadence=sig.cadence * tempo,
        )

    def _subject(self, subject: int) -> tuple[float, np.ndarray, float, np.ndarray]:
        rng = np.random.default_rng([self.seed, 11, subject])
        gain = rng.uniform(0.8, 1.25)
        offset = rng.normal(scale=0.4, size=3)
        cadence = rng.uniform(0.85, 1.15)
        rot = _rotation(rng, self.subject_rotation_deg)
        return gain, offset, cadence, rot

    def signal(
        self,
        subject: int,
        activity: int,
        position: str,
        n: int,
        rate_hz: float,
        sensors: tuple[str, ...] = SENSOR_KINDS,
        bout: int = 0,
    ) -> np.ndarray:
        """``n`` rows of ``len(sensors)`` xyz triples in SI units (m/s², rad/s, μT).

        ``bout`` distinguishes repeated performances of the same activity by
        the same subject; each gets its own phase and modulation.
        """
        if position not in self.positions:
            raise ValueError(f"unknown position {position!r}; known: {self.positions}")
        sig = self._style(self._sig[(activity, position)], subject, activity, position)
        gain, offset, cadence, r_subj = self._subject(subject)
        rot = r_subj @ self._pos_rot[position]
        pi = self.positions.index(position)
        rng = np.random.default_rng([self.seed, 13, subject, activity, pi, bout])
        # Slow AR(1) modulation of amplitude and cadence: windows differ.
        mod = np.abs(1.0 + 0.35 * _smooth_noise(rng, n, rate_hz, 3.0))
        f = sig.cadence * cadence * (1.0 + 0.06 * _smooth_noise(rng, n, rate_hz, 5.0))
        # Posture drifts slowly within a bout (shifting weight, loosening straps).
        drift = np.stack([_smooth_noise(rng, n, rate_hz, 8.0) for _ in range(3)], axis=1)
        g = _unit(sig.g[None, :] + 0.18 * drift)
        phase = 2 * np.pi * np.cumsum(f) / rate_hz + rng.uniform(0, 2 * np.pi)
        cols = []
        for kind in sensors:
            if kind == "acc":
                body = (
                    GRAVITY * g
                    + (sig.amp * mod)[:, None]
                    * (np.sin(phase)[:, None] * sig.u + sig.h * np.sin(2 * phase)[:, None] * sig.u2)
                )
                x = gain * body @ rot.T + offset + rng.normal(scale=self.noise, size=(n, 3))
            elif kind == "gyro":
                body = (sig.gyro_amp * mod * np.cos(phase))[:, None] * sig.w
                x = gain * body @ rot.T + rng.normal(scale=0.05 + 0.1 * self.noise, size=(n, 3))
            elif kind == "mag":
                body = np.broadcast_to(EARTH_FIELD_UT * sig.n, (n, 3))
                x = body @ rot.T + rng.normal(scale=1.0 + 2 * self.noise, size=(n, 3))
            else:
                raise ValueError(f"unknown sensor kind {kind!r}; known: {SENSOR_KINDS}")
            cols.append(x)
        return np.concatenate(cols, axis=1)


def _smooth_noise(rng: np.random.Generator, n: int, rate_hz: float, tau_s: float) -> np.ndarray:
    """Unit-variance AR(1) noise with time constant ``tau_s`` seconds."""
    a = np.exp(-1.0 / (tau_s * rate_hz))
    e = rng.normal(size=n) * np.sqrt(1 - a * a)
    e[0] = rng.normal()  # start from the stationary distribution
    return lfilter([1.0], [1.0, -a], e)


def format_rows(x: np.ndarray, sep: str, fmt: str = "%.5g") -> str:
    """Rows of ``x`` as text lines, each ending in a newline (like the UCI files)."""
    line = sep.join([fmt] * x.shape[1])
    return "\n".join(line % tuple(r) for r in x.tolist()) + "\n"
