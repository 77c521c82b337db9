import contextlib
import contextvars


@contextlib.contextmanager
def collecting(var: contextvars.ContextVar):
    """Sets `var` to a fresh list for the block and yields it: writers that see a list append to it
    instead of writing at once, so the caller can write everything in one go."""
    items: list = []
    token = var.set(items)
    try:
        yield items
    finally:
        var.reset(token)
