"""The server-less Celery transport must never hand a worker a half-written message."""

import threading

from kombu import Connection


def test_messages_are_read_whole_while_being_written(tmp_path):
    options = {
        "data_folder_in": str(tmp_path),
        "data_folder_out": str(tmp_path),
        "control_folder": str(tmp_path / "control"),
        "store_processed": False,
    }
    url, transport = "filesystem://", "core.celery_transport:Transport"
    sent = 300
    with Connection(url, transport=transport, transport_options=options) as writer_conn:
        queue = writer_conn.SimpleQueue("q")
        received, errors = [], []

        def read():
            with Connection(url, transport=transport, transport_options=options) as conn:
                reader = conn.SimpleQueue("q")
                while len(received) < sent:
                    try:
                        message = reader.get(timeout=5)
                    except Exception as exc:  # noqa: BLE001 - the test reports it
                        errors.append(exc)
                        return
                    received.append(message.payload)
                    message.ack()

        thread = threading.Thread(target=read)
        thread.start()
        for index in range(sent):
            queue.put({"n": index, "padding": "x" * 2000})
        thread.join(30)
    assert not errors
    assert sorted(item["n"] for item in received) == list(range(sent))
