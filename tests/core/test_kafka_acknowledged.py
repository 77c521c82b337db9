"""`core.kafka.acknowledged`: a produce's acknowledgement awaited on the event loop, resolved from
kafka-python's sender thread through the future's callbacks (no thread blocked per message)."""

import asyncio
import threading

import pytest
from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError
from kafka.future import Future

from core.kafka import acknowledged


def _later(action) -> None:
    threading.Timer(0.05, action).start()  # as the producer's sender thread would


def test_the_acknowledgement_from_another_thread_is_the_result():
    async def main():
        future = Future()
        _later(lambda: future.success("metadata"))
        return await acknowledged(future, timeout=5)

    assert asyncio.run(main()) == "metadata"


def test_a_future_done_already_is_answered_at_once():
    async def main():
        return await acknowledged(Future().success(7), timeout=5)

    assert asyncio.run(main()) == 7


def test_a_failed_send_raises_what_it_failed_with():
    async def main():
        future = Future()
        _later(lambda: future.failure(MessageSizeTooLargeError("too big")))
        await acknowledged(future, timeout=5)

    with pytest.raises(MessageSizeTooLargeError, match="too big"):
        asyncio.run(main())


def test_no_answer_in_time_is_a_timeout_and_a_late_answer_is_ignored():
    future = Future()

    async def main():
        with pytest.raises(TimeoutError):
            await acknowledged(future, timeout=0.05)
        future.failure(KafkaTimeoutError())  # late: settles nothing, raises nothing
        await asyncio.sleep(0.01)

    asyncio.run(main())
