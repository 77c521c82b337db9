from dataclasses import dataclass

from runs.choices import StepStatus


@dataclass
class Outcome:
    """How a step, a chain or a block stands after a decision: done, failed, or still waiting."""

    status: str  # StepStatus.COMPLETED, FAILED, or RUNNING (= waiting)
    output: object = None
    error: str = ""

    @property
    def finished(self) -> bool:
        return self.status != StepStatus.RUNNING


WAITING = Outcome(StepStatus.RUNNING)
