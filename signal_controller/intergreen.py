"""Intergreen times per conflicting pair of signal groups, from the geometry.

Pure. The formula is the German RiLSA's (FGSV, *Richtlinien für
Lichtsignalanlagen*, the method Boltze describes and CVN's Dutch one
refines), which the Chinese GB 14886 and the HCM "red clearance" share in
spirit: when group A's green ends and a conflicting group B's begins, the
last vehicle of A, which crossed its stop line at the end of the
**crossing time** ``t_ü`` (the yellow it may still drive on), must have
left the conflict area before the first vehicle of B reaches it::

    t_z = t_ü + t_r − t_e
    t_r = (s_0 + l_Fz) / v_r     clearing: distance from the stop line to the
                                  far edge of the conflict area, plus a vehicle
    t_e = s_e / v_e              entering: distance from B's stop line to the
                                  near edge of the conflict area

RiLSA's values: ``t_ü`` 3 s, ``l_Fz`` 6 m, ``v_r`` 10 m/s straight on and
7 m/s turning, ``v_e`` 11.1 m/s (40 km/h, a flying start).

A left turn that goes permissively (``g``) has one more clearing vehicle:
the one waiting *inside* the junction for a gap in the opposing flow. It
can go only once the last opposing vehicle has passed it, and starts from
rest: its clearing time is that release time plus ``√(2·(s_0 − s_w + l_Fz)/a)``
(``s_w`` where it waits, ``a`` its acceleration). :func:`derive` gives both
matrices: after a protected end of green, and after a permissive one.

Paths are polylines in metres (a lane's course through the junction from
its stop line); the conflict area of two paths is where their centre lines
come closer than ``zone_m``. Where paths come from — SUMO's internal lanes,
or :func:`four_leg_paths`, a standard junction from its lane counts — is
left to the caller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from signal_controller.errors import SignalError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

Point = tuple[float, float]
Matrix = dict[tuple[str, str], float]


class GeometryError(SignalError, ValueError):
    """A path that cannot describe a movement; the message says why."""


@dataclass(frozen=True, slots=True)
class Path:
    """One lane's course through the junction for one signal group.

    ``wait_m``: where along it a permissive left turner waits for a gap
    (``None`` for a movement that never waits inside).
    """

    group: str
    points: tuple[Point, ...]
    wait_m: float | None = None

    def __post_init__(self) -> None:
        """Refuse a path that is not a line."""
        if len(self.points) < 2:  # noqa: PLR2004
            raise GeometryError(
                f"expected at least 2 points for {self.group}, got {len(self.points)}"
            )
        if self.wait_m is not None and not 0 <= self.wait_m <= self.length:
            raise GeometryError(
                f"expected a wait within 0-{self.length:.1f} m for {self.group}, "
                f"got {self.wait_m}"
            )

    @property
    def length(self) -> float:
        """Its length in metres."""
        return sum(
            math.dist(a, b) for a, b in zip(self.points, self.points[1:], strict=False)
        )

    def samples(self, step_m: float) -> list[tuple[float, Point]]:
        """(distance from the stop line, point) every ``step_m`` and at the end."""
        out: list[tuple[float, Point]] = []
        done = 0.0
        for a, b in zip(self.points, self.points[1:], strict=False):
            seg = math.dist(a, b)
            k = 0
            while k * step_m < seg:
                f = k * step_m / seg
                out.append(
                    (
                        done + k * step_m,
                        (a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1])),
                    )
                )
                k += 1
            done += seg
        out.append((done, self.points[-1]))
        return out


@dataclass(frozen=True, slots=True)
class Speeds:
    """The formula's parameters (RiLSA's values by default)."""

    crossing_s: float = 3.0  # t_ü
    vehicle_m: float = 6.0  # l_Fz
    clear_straight_mps: float = 10.0  # v_r
    clear_turning_mps: float = 7.0
    enter_mps: float = 11.1  # v_e
    start_accel_mps2: float = 2.0  # a waiting left turner pulling away
    zone_m: float = 2.5  # centre lines closer than this: a conflict area
    step_m: float = 0.5

    def clearing(self, group: str) -> float:
        """v_r for a group: turning (``l``, ``r``) or straight on."""
        return self.clear_turning_mps if group[-1:] in "lr" else self.clear_straight_mps


@dataclass(frozen=True, slots=True)
class Intergreens:
    """The junction's intergreen matrices, seconds from end of green to green.

    ``protected``: after a protected (``G``) end of green; ``permissive``:
    after a permissive (``g``) one, where a left turner may still wait inside.
    A pair missing from both does not conflict in the geometry.
    """

    protected: Matrix
    permissive: Matrix
    crossing_s: float = 3.0  # the t_ü they assume: the last vehicle's crossing

    def need(self, ending: str, starting: str, *, was: str = "G") -> float:
        """Seconds group ``starting`` must wait after ``ending``'s green (0 if free)."""
        table = self.permissive if was == "g" else self.protected
        return table.get((ending, starting), 0.0)


def conflict_area(a: Path, b: Path, speeds: Speeds) -> tuple[float, float] | None:
    """(far edge along ``a``, near edge along ``b``) of their conflict area.

    ``None`` when the paths never come within ``zone_m`` of each other.
    """
    if not _near(a.points, b.points, speeds.zone_m):
        return None
    sa, sb = a.samples(speeds.step_m), b.samples(speeds.step_m)
    far, near = -1.0, math.inf
    for da, pa in sa:
        for db, pb in sb:
            if math.dist(pa, pb) < speeds.zone_m:
                far = max(far, da)
                near = min(near, db)
    if far < 0:
        return None
    return far, near


def _near(a: Sequence[Point], b: Sequence[Point], margin: float) -> bool:
    """Whether the two point sets' bounding boxes come within ``margin``."""
    return not (
        min(x for x, _ in a) > max(x for x, _ in b) + margin
        or min(x for x, _ in b) > max(x for x, _ in a) + margin
        or min(y for _, y in a) > max(y for _, y in b) + margin
        or min(y for _, y in b) > max(y for _, y in a) + margin
    )


def formula(
    clear_m: float, enter_m: float, *, clearing_mps: float, speeds: Speeds
) -> float:
    """RiLSA's ``t_ü + (s_0 + l_Fz)/v_r − s_e/v_e``, never below zero."""
    t = (
        speeds.crossing_s
        + (clear_m + speeds.vehicle_m) / clearing_mps
        - enter_m / speeds.enter_mps
    )
    return max(0.0, t)


def waiting_formula(
    clear_m: float, enter_m: float, *, wait_m: float, release_s: float, speeds: Speeds
) -> float:
    """The waiting left turner's: released at ``release_s``, then from rest."""
    rest = max(0.0, clear_m - wait_m) + speeds.vehicle_m
    t = release_s + math.sqrt(2 * rest / speeds.start_accel_mps2)
    return max(0.0, t - enter_m / speeds.enter_mps)


def derive(  # noqa: C901 - the two matrices are read together
    paths: Sequence[Path],
    pairs: Iterable[tuple[str, str]],
    *,
    yields_to: Mapping[str, Sequence[str]] | None = None,
    speeds: Speeds = Speeds(),
) -> Intergreens:
    """Both matrices for every ordered pair of conflicting groups.

    Args:
        paths: every lane's path, several per group allowed.
        pairs: the conflicting pairs (either order); each is computed both
            ways, the worst over the groups' lanes, rounded up to 0.1 s.
        yields_to: for a permissive left, the groups it waits for (the
            opposing straight and right); their last vehicle's passage
            over the left's path releases it.
        speeds: the formula's parameters.

    Returns:
        The matrices; a pair whose paths never meet is left out.
    """
    by_group: dict[str, list[Path]] = {}
    for p in paths:
        by_group.setdefault(p.group, []).append(p)
    areas: dict[tuple[str, str], list[tuple[Path, Path, float, float]]] = {}

    def area(a: str, b: str) -> list[tuple[Path, Path, float, float]]:
        if (a, b) not in areas:
            found = []
            for pa in by_group.get(a, []):
                for pb in by_group.get(b, []):
                    hit = conflict_area(pa, pb, speeds)
                    if hit is not None:
                        found.append((pa, pb, hit[0], hit[1]))
            areas[a, b] = found
        return areas[a, b]

    protected: Matrix = {}
    permissive: Matrix = {}
    yields = yields_to or {}
    for x, y in {tuple(sorted(p)) for p in pairs}:
        for a, b in ((x, y), (y, x)):
            hits = area(a, b)
            if not hits:
                continue
            worst = max(
                formula(s0, se, clearing_mps=speeds.clearing(a), speeds=speeds)
                for _pa, _pb, s0, se in hits
            )
            protected[a, b] = _up(worst)
            waiting = worst
            for pa, _pb, s0, se in hits:
                if pa.wait_m is None:
                    continue
                release = max(
                    [speeds.crossing_s]
                    + [
                        formula(so, 0.0, clearing_mps=speeds.clearing(o), speeds=speeds)
                        for o in yields.get(a, ())
                        for _po, pl, so, _sl in area(o, a)
                        if pl is pa
                    ]
                )
                waiting = max(
                    waiting,
                    waiting_formula(
                        s0, se, wait_m=pa.wait_m, release_s=release, speeds=speeds
                    ),
                )
            permissive[a, b] = _up(waiting)
    return Intergreens(protected, permissive, speeds.crossing_s)


def _up(t: float) -> float:
    return math.ceil(t * 10 - 1e-9) / 10


def four_leg_paths(
    *, lanes_in: int = 3, lanes_out: int = 3, lane_m: float = 3.2
) -> list[Path]:
    """A standard four-leg junction's paths, right-hand traffic.

    Each leg has ``lanes_in`` lanes in (the kerb lane right + through, the
    middle ones through, the median lane left) and ``lanes_out`` out; the
    box is as wide as a leg. Arcs are drawn as quadratic curves through the
    corner. The left turn waits where it meets the opposing lanes' middle.
    """
    if lanes_in < 1 or lanes_out < 1 or lane_m <= 0:
        raise GeometryError(
            "expected ≥ 1 lane each way and a width > 0, "
            f"got {lanes_in}/{lanes_out}/{lane_m}"
        )
    half = max(lanes_in, lanes_out) * lane_m

    def curve(p0: Point, corner: Point, p2: Point) -> tuple[Point, ...]:
        pts = []
        for k in range(9):
            t = k / 8
            pts.append(
                (
                    (1 - t) ** 2 * p0[0] + 2 * (1 - t) * t * corner[0] + t**2 * p2[0],
                    (1 - t) ** 2 * p0[1] + 2 * (1 - t) * t * corner[1] + t**2 * p2[1],
                )
            )
        return tuple(pts)

    # from the west, heading east: incoming lanes south of the centre line
    # (y < 0), the kerb lane farthest from it
    def lane_y(i: int) -> float:  # i = 0 kerb … lanes_in-1 median
        return -((lanes_in - 1 - i) + 0.5) * lane_m

    west: list[Path] = []
    kerb, median = lane_y(0), lane_y(lanes_in - 1)
    out_kerb = (lanes_out - 0.5) * lane_m  # outgoing lanes: the kerb one outermost
    for i in range(lanes_in - 1 if lanes_in > 1 else 1):
        y = lane_y(i)
        west.append(Path("Ws", ((-half, y), (half, y))))
    # right: kerb lane → south leg, whose outgoing lanes lie west (x < 0)
    west.append(Path("Wr", curve((-half, kerb), (-out_kerb, kerb), (-out_kerb, -half))))
    # left: median lane → north leg, outgoing lanes east (x > 0), nearest the centre
    left = curve((-half, median), (lane_m / 2, median), (lane_m / 2, half))
    wait = Path("Wl", left).length * 0.35
    west.append(Path("Wl", left, wait_m=wait))
    out: list[Path] = []
    turns = {"W": 0, "S": 1, "E": 2, "N": 3}  # counter-clockwise quarter turns
    for approach, q in turns.items():
        c, s = round(math.cos(q * math.pi / 2)), round(math.sin(q * math.pi / 2))
        for p in west:
            pts = tuple((c * x - s * y, s * x + c * y) for x, y in p.points)
            out.append(Path(f"{approach}{p.group[1]}", pts, p.wait_m))
    return out
