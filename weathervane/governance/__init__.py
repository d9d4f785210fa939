"""Budget plan governance: recorded transitions, hash-chained events, notifications, adoption."""
from weathervane.governance.adoption import AdoptionIssue, adoption_issues, compute_plan_adoption
from weathervane.governance.events import (
    GovernanceError,
    IllegalTransition,
    NotAnApplier,
    NotAnApprover,
    PlanNotFound,
    apply,
    approve,
    record_proposal,
    reject,
    roll_back,
    transition,
    verify_chain,
)
from weathervane.governance.outbox import deliver_outbox, deliver_pending
from weathervane.governance.tables import ensure_decision_tables

__all__ = [
    "AdoptionIssue", "GovernanceError", "IllegalTransition", "NotAnApplier", "NotAnApprover", "PlanNotFound",
    "adoption_issues", "apply", "approve", "compute_plan_adoption", "deliver_outbox", "deliver_pending", "ensure_decision_tables", "record_proposal",
    "reject", "roll_back", "transition", "verify_chain",
]
