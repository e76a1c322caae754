"""Traffic simulator: a hemorrhage model on head CT at four sites, with injectable failure modes.

sim = Simulation(days=90, per_day=300, seed=7, scenarios=parse_scenarios("scanner_change:site=north,onset=45"))
sim.reference(5000); sim.inferences(); sim.outcomes(as_of=...); sim.truth(); default_policy()
"""

from monitor.simulate.records import batches
from monitor.simulate.scanners import SITES, ScannerProfile, site_profiles
from monitor.simulate.scenarios import (
    PRESETS,
    SCENARIOS,
    CalibrationDecay,
    MissingSurge,
    NewPopulation,
    NoiseDrift,
    Null,
    PrevalenceShift,
    ScannerChange,
    Scenario,
    UnseenCategory,
    catalog,
    parse_scenarios,
)
from monitor.simulate.simulation import Simulation, create_simulation, default_policy, export

__all__ = [
    "PRESETS",
    "SCENARIOS",
    "SITES",
    "CalibrationDecay",
    "MissingSurge",
    "NewPopulation",
    "NoiseDrift",
    "Null",
    "PrevalenceShift",
    "ScannerChange",
    "ScannerProfile",
    "Scenario",
    "Simulation",
    "UnseenCategory",
    "batches",
    "catalog",
    "create_simulation",
    "default_policy",
    "export",
    "parse_scenarios",
    "site_profiles",
]
