"""Weather-aware budget allocation: response models, the optimiser, plans and their reports."""
from weathervane.allocate.inputs import PlanningInputError, horizon_weather
from weathervane.allocate.optimize import (
    Allocation,
    AllocationInfeasible,
    Constraints,
    Objective,
    evaluate,
    optimize_allocation,
)
from weathervane.allocate.plan import Plan, build_plan, propose_plan, write_plan
from weathervane.allocate.response import ResponseModel, SaturatingResponse

__all__ = [
    "Allocation", "AllocationInfeasible", "Constraints", "Objective", "Plan", "PlanningInputError", "ResponseModel",
    "SaturatingResponse", "build_plan", "evaluate", "horizon_weather", "optimize_allocation", "propose_plan",
    "write_plan",
]
