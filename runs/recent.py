"""The answers a bridge sent lately, by (correlation id, task id), up to a number of bytes (oldest out first).

When the broker loses its messages the executor sends the tasks of running steps again. A task whose
answer this bridge already sent gets that answer again, instead of a second call to the agent (the
first answer may be the one the broker lost). Each try of a step has its own correlation id, and a
person's reply within a try its own task id, so an answer kept here is always the answer to exactly that task.
"""

from collections import OrderedDict

from core import kafka


class RecentAnswers:
    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.size = 0
        self.answers: OrderedDict[str, tuple[dict, int]] = OrderedDict()

    def get(self, correlation_id) -> dict | None:
        kept = self.answers.get(correlation_id)
        return kept[0] if kept else None

    def keep(self, correlation_id, message: dict) -> None:
        if not correlation_id or correlation_id in self.answers:
            return
        size = len(kafka.encode(message))
        if size > self.max_bytes:
            return  # a task sent again then calls the agent again
        self.answers[correlation_id] = (message, size)
        self.size += size
        while self.size > self.max_bytes:
            _, (_, dropped) = self.answers.popitem(last=False)
            self.size -= dropped
