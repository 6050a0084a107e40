"""Hidden-danger screening and rectification, responsible persons' duties, daily commitments.

The enterprise side of supervision (Order 16 of 2007, 安监总管三〔2017〕121号, 包保责任制办法
2021): a pure core (`dangers`, `duty`, `findings`), attachment checks, and the
PostgreSQL repository. A feature component: it imports only the ground
(`hazmon.plant`, `hazmon.store`); the daemon hands `supervision_findings` to the alarms.
"""

from hazmon.supervision.attachments import (
    ALLOWED_TYPES,
    ATTACHMENT_MAX_BYTES,
    Attachment,
    AttachmentError,
    check_attachment,
)
from hazmon.supervision.dangers import (
    Action,
    Danger,
    DangerLevel,
    FoundBy,
    Plan,
    RefusedError,
    Report,
    State,
    Step,
    decide,
    fold,
    overdue_episodes,
    plan_problems,
)
from hazmon.supervision.duty import (
    Commitment,
    CommitmentStatus,
    DutyCheck,
    DutyStatus,
    commitment_status,
    duty_status,
    period_bounds,
)
from hazmon.supervision.findings import SupervisionState, Sweep, Told, supervision_findings

__all__ = [
    "ALLOWED_TYPES",
    "ATTACHMENT_MAX_BYTES",
    "Action",
    "Attachment",
    "AttachmentError",
    "Commitment",
    "CommitmentStatus",
    "Danger",
    "DangerLevel",
    "DutyCheck",
    "DutyStatus",
    "FoundBy",
    "Plan",
    "RefusedError",
    "Report",
    "State",
    "Step",
    "SupervisionState",
    "Sweep",
    "Told",
    "check_attachment",
    "commitment_status",
    "decide",
    "duty_status",
    "fold",
    "overdue_episodes",
    "period_bounds",
    "plan_problems",
    "supervision_findings",
]
