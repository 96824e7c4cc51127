"""Connection test: DNS → TCP → TLS → greeting → sign-in → INBOX, as a result object.

A failed login, a refused connection or a bad certificate is a *result*, never an
exception. One deadline bounds the whole probe and byte budgets bound what it reads, so a
server that stalls, dribbles or floods cannot hold a check past ``timeout`` or fill memory.
The probe never changes the mailbox: IMAP opens INBOX with EXAMINE (read-only), POP3 only
asks STAT and quits without deleting.

    results.py    the result types (steps, status, detail, hint) and ProbeTarget
    vitals.py     what a check reads besides its steps: quota, backlog, the sign-in offer
    deadline.py   the deadline and the one watchdog thread
    transport.py  resolve once through the egress guard → TCP → TLS; injectable connector
    wire.py       bytes in and out, within the deadline and the byte budgets
    session.py    the interface of a protocol's session; imap.py and pop3.py implement it
    diagnosis.py  the one table: a failure → the sentence and the hint a person reads
    runner.py     run_probe: the steps in order
"""

from mailbox_core.probe.results import (
    DEFAULT_TIMEOUT,
    STEPS,
    Certificate,
    ProbeResult,
    ProbeTarget,
    Step,
    StepStatus,
    TokenSource,
)
from mailbox_core.probe.runner import run_probe, session_for
from mailbox_core.probe.session import Session
from mailbox_core.probe.transport import Connector, default_connector, default_resolver
from mailbox_core.probe.vitals import Backlog, Offer, Quota, Vitals

__all__ = [
    "DEFAULT_TIMEOUT",
    "STEPS",
    "Backlog",
    "Certificate",
    "Connector",
    "Offer",
    "ProbeResult",
    "ProbeTarget",
    "Quota",
    "Session",
    "Step",
    "StepStatus",
    "TokenSource",
    "Vitals",
    "default_connector",
    "default_resolver",
    "run_probe",
    "session_for",
]
