"""ISO-NE pricing locations: the ISO's own ids, names and types.

The core locations (hub, load zones, external interfaces) are fixed and documented by ISO-NE
(reference section 5.4, from gridstatus' constants and the Web Services location list). Network
nodes (about 1,200) are not: their names come from the day's day-ahead LMP file, which lists every
location with its id, name and type (see :func:`from_hourly_report`).
"""

from __future__ import annotations

# Location ID -> (Location Name, Location Type), as printed in the ISO Express LMP files.
CORE: dict[str, tuple[str, str]] = {
    "4000": (".H.INTERNAL_HUB", "HUB"),
    "4001": (".Z.MAINE", "LOAD ZONE"),
    "4002": (".Z.NEWHAMPSHIRE", "LOAD ZONE"),
    "4003": (".Z.VERMONT", "LOAD ZONE"),
    "4004": (".Z.CONNECTICUT", "LOAD ZONE"),
    "4005": (".Z.RHODEISLAND", "LOAD ZONE"),
    "4006": (".Z.SEMASS", "LOAD ZONE"),
    "4007": (".Z.WCMASS", "LOAD ZONE"),
    "4008": (".Z.NEMASSBOST", "LOAD ZONE"),
    "4010": (".I.SALBRYNB345 1", "EXT. NODE"),
    "4011": (".I.ROSETON 345 1", "EXT. NODE"),
    "4012": (".I.HQ_P1_P2345 5", "EXT. NODE"),
    "4013": (".I.HQHIGATE120 2", "EXT. NODE"),
    "4014": (".I.SHOREHAM138 99", "EXT. NODE"),
    "4017": (".I.NRTHPORT138 5", "EXT. NODE"),
}

# Quirk: some Web Services location lists spell the hub ``.H.INTERNALHUB`` (reference 5.4) while the
# ISO Express files say ``.H.INTERNAL_HUB``. Both routes must key the same location, so the
# ISO Express spelling wins everywhere.
NAME_ALIASES: dict[str, str] = {".H.INTERNALHUB": ".H.INTERNAL_HUB"}


def canonical_name(name: str) -> str:
    """A location name as the warehouse keys it (inner spaces are part of ISO-NE names: kept)."""
    return NAME_ALIASES.get(name, name)
