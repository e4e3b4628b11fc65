"""A supervised session on the devices that URLs name (``fes run``, the GUI).

The session is the one ``fes simulate`` runs (same control, protocol, supervisor and
record); only the devices and the clock differ. See :mod:`controller.assembly.urls` for
the URLs.

The clock follows the motion sensor, because the sensor's timestamps are the session's time:

* ``serial://`` IMU: the driver stamps each sample with ``time.monotonic()``, so the
  session runs on :class:`MonotonicClock`, driven by the samples: a tick starts as soon
  as the driver has a new sample (the detector sees it at once, not up to a tick later),
  and at the latest 10 ms after the previous tick (:func:`sample_driven_clock`).
* ``sim://`` and ``replay://`` IMU: a recording carries its own time base. Under
  ``fes run`` it is replayed in real time (the stimulator may be real, with real timeouts):
  a :class:`VirtualClock` on the recording's time, starting at its first sample, paced to
  the wall clock, with the same 10 ms tick.

A serial stimulator never sees the session clock: its acknowledgement deadlines and
keep-alive run on ``time.monotonic()`` inside the driver, and ``update`` takes amplitudes,
not times. So a serial stimulator with a ``replay://`` IMU is correct: session time and
wall time advance at the same rate (pacing) and differ by a constant offset that never
crosses the interface. A ``sim://`` stimulator is clocked by the session, like the
in-process simulator of ``fes simulate``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from controller.assembly.build import build_session
from controller.assembly.urls import DeviceUrlError, open_motion_sensor, open_stimulator
from controller.clock import MonotonicClock, VirtualClock
from controller.detect.calibration import GaitCalibration
from controller.devices.base import ChannelSetup, DeviceError, MotionSensor, Stimulator
from controller.devices.witmotion_imu import WitMotionImu
from controller.observe import SessionObserver
from controller.runner import SessionRunner, StatusCallback
from controller.safety_limits import Mode
from controller.sensor_watch import MIN_RATE_HZ, USABLE_RATE_SHARE
from controller.session import Session
from protocols import Protocol
from simulator.motion import SimulatedMotion

TICK_S = 0.01
"""The control tick of a session on devices: the DESIGN's 100 Hz loop."""
RATE_SPAN_S = 1.0
"""A serial IMU's rate is measured over at least this much of its stream before a session."""
RATE_WAIT_S = 2.0
"""Longest wait for that stream: an IMU that sends nothing is refused after it."""

T = TypeVar("T")


class DeviceOpenError(Exception):
    """A device URL that does not parse, or a device that cannot be opened or does not
    answer; the message names the URL. Nothing was left running or stimulating."""


@dataclass
class DeviceSession:
    """A session ready to run, and the span of session time it is expected to cover."""

    session: Session
    start_s: float
    end_s: float
    watchdog_s: float
    """Wall time a tick may take before the runner's watchdog stops output."""

    def runner(self, on_status: StatusCallback | None = None) -> SessionRunner:
        return SessionRunner(self.session, on_status=on_status, watchdog_s=self.watchdog_s)


def build_device_session(protocol: Protocol, stimulator_url: str, imu_url: str, db_path: Path,
                         *, duration_s: float | None = None, patient: str | None = None,
                         calibration: GaitCalibration | None = None,
                         observers: Iterable[SessionObserver] = ()) -> DeviceSession:
    """Open both devices, connect the stimulator, and wire the session.

    Raises :class:`DeviceOpenError` for a bad URL or a device that cannot be opened, after
    closing whatever was already open (a closed stimulator has been told to stop).
    """
    recorded = urlsplit(imu_url).scheme in ("sim", "replay")
    clock: _RecordingClock | MonotonicClock
    if recorded:
        clock = _RecordingClock(TICK_S)
        sensor = _opened(lambda: open_motion_sensor(imu_url, clock), imu_url)
    else:  # a serial driver stamps samples itself; the clock it is opened with goes unused
        sensor = _opened(lambda: open_motion_sensor(imu_url, MonotonicClock(TICK_S)), imu_url)
        assert isinstance(sensor, WitMotionImu), "serial:// opens a WitMotion IMU"
        clock = sample_driven_clock(sensor)
    try:
        # The IMU's rate is judged before the stimulator connects: once connected, the
        # device's own watchdog gives the session only a second or so to begin.
        sensor_rate_hz = None
        if isinstance(sensor, WitMotionImu):
            sensor_rate_hz = _refuse_slow_stream(sensor, imu_url, protocol.mode)
        stimulator = _ConnectedStimulator(
            _opened(lambda: open_stimulator(stimulator_url, clock), stimulator_url))
        _opened(stimulator.connect_now, stimulator_url)
    except BaseException:
        sensor.close()
        raise
    span_s = duration_s if duration_s is not None else protocol.session.duration_s
    try:
        if isinstance(sensor, WitMotionImu):  # what came while the stimulator connected
            _drop_samples_heard(sensor, imu_url)
        if isinstance(clock, _RecordingClock):
            start_s, last_s = _recording_span(sensor)
            clock.start_at(start_s)
            end_s = min(last_s, start_s + span_s)
        else:
            start_s = clock.now()
            end_s = start_s + span_s
        session = build_session(protocol, sensor, stimulator, clock, db_path,
                                sensor_name=imu_url, stimulator_name=stimulator_url,
                                duration_s=duration_s, patient=patient,
                                calibration=calibration, observers=observers,
                                sensor_rate_hz=sensor_rate_hz)
    except BaseException:
        stimulator.close()
        sensor.close()
        raise
    return DeviceSession(session, start_s, end_s, protocol.safety_config().loop_late_s)


def sample_driven_clock(imu: WitMotionImu) -> MonotonicClock:
    """The clock of a session on a serial IMU: it ticks when ``imu`` has new samples, at
    the latest every :data:`TICK_S`."""
    return MonotonicClock(TICK_S, wake_up=imu.wait_for_samples)


def _refuse_slow_stream(imu: WitMotionImu, url: str, mode: Mode) -> float:
    """A serial IMU streaming fewer samples than the mode's detector needs is refused
    before the session starts (a factory unit at 10 or 20 Hz, a line losing packets),
    measured over :data:`RATE_SPAN_S` of its stream.

    Returns the rate the sensor sends, damaged packets included: the sensor watch clears
    a degraded stream once its usable rate is back near it."""
    needed_hz = MIN_RATE_HZ[mode]
    rate_hz = imu.measured_rate_hz(RATE_SPAN_S, RATE_WAIT_S)
    if rate_hz < USABLE_RATE_SHARE * needed_hz:
        raise DeviceOpenError(
            f"{url}: the IMU streams {rate_hz:.0f} usable samples/s; a {mode} session needs "
            f"at least {needed_hz:g} (set its output rate with the Devices tab of fes gui "
            "or the sensor's own tool, and check the cable)")
    sent_hz = imu.measured_rate_hz(RATE_SPAN_S, RATE_WAIT_S, counting_damaged=True)
    _drop_samples_heard(imu, url)
    return sent_hz


def _drop_samples_heard(imu: WitMotionImu, url: str) -> None:
    """The samples queued so far came before the session and have no place in it: the
    stimulator's handshake alone takes up to a second, and the first tick would hand the
    detector that second of old movement at once (and record it before the start). A
    sensor error among them refuses the IMU."""
    try:
        imu.read()
    except DeviceError as exc:
        raise DeviceOpenError(f"{url}: {exc}") from None


def _opened(open_device: Callable[[], T], url: str) -> T:
    try:
        return open_device()
    except DeviceUrlError as exc:
        raise DeviceOpenError(str(exc)) from None
    except (DeviceError, OSError, ValueError) as exc:
        raise DeviceOpenError(f"{url}: {exc}") from None


def _recording_span(sensor: MotionSensor) -> tuple[float, float]:
    assert isinstance(sensor, SimulatedMotion), "sim:// and replay:// open a recording"
    return sensor.start_s, sensor.end_s


class _RecordingClock:
    """Recording time paced to the wall clock, from the recording's first sample.

    A ``sim://`` or ``replay://`` sensor is opened with its clock, and the clock's start
    (the recording's first sample) is known only once the recording is open; so the
    sensor gets this clock, which starts at :meth:`start_at`. Starting the pacing then,
    after the stimulator's handshake, also keeps the first ticks from racing to catch up.
    """

    paced = True

    def __init__(self, tick_s: float) -> None:
        self.tick_s = tick_s
        self._paced = VirtualClock(tick_s)

    def start_at(self, start_s: float) -> None:
        self._paced = VirtualClock(self.tick_s, start_s=start_s, realtime=True)

    def now(self) -> float:
        return self._paced.now()

    def next_tick(self) -> float:
        return self._paced.next_tick()


class _ConnectedStimulator:
    """A stimulator whose link is brought up before the session starts.

    A RehaStim 2 announces itself about once a second and the driver waits for that, so
    connecting can take a second. Done inside the session's start, that second would be
    counted as a late control loop (a fault on the first tick); done here, a device that
    does not answer is refused like a bad URL instead of starting a faulted session. The
    supervisor's first ``connect`` then finds the link up; a reconnect after a reset
    reaches the device. Everything else is passed straight through.
    """

    def __init__(self, device: Stimulator) -> None:
        self._device = device
        self._link_fresh = False

    def connect_now(self) -> None:
        self._device.connect()
        self._link_fresh = True

    def connect(self) -> None:
        if self._link_fresh:
            self._link_fresh = False
            return
        self._device.connect()

    def configure(self, channels: Sequence[ChannelSetup], frequency_hz: float) -> None:
        self._device.configure(channels, frequency_hz)

    def update(self, amplitudes_ma: Mapping[int, float]) -> None:
        self._device.update(amplitudes_ma)

    def check(self) -> None:
        self._device.check()

    def emergency_stop(self) -> None:
        self._device.emergency_stop()

    @property
    def amplitude_step_ma(self) -> float:
        return self._device.amplitude_step_ma

    def stop(self) -> None:
        self._link_fresh = False
        self._device.stop()

    def send_stop(self) -> None:
        self._link_fresh = False
        self._device.send_stop()

    def close(self) -> None:
        self._link_fresh = False
        self._device.close()
