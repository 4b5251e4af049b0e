"""The outbox worker with a sender that keeps what reaches residents' phones, for journeys that
follow an action to the SMS it causes."""

import asyncio
import threading

from botapp.worker import Pacer, Worker


class RecordingSender:
    """The worker's SMS sender, keeping each (number, text) it is handed."""

    name, daily_limit = "sms", 0
    pacer = Pacer(rate=0)

    def __init__(self):
        self.texts = []

    async def send(self, to, text):
        self.texts.append((to, text))
        return f"SM{len(self.texts)}"


def deliver(app, sender):
    """Drain the outbox to `sender` until nothing is left (a person's next message waits for
    their previous one). The worker's loop runs in a thread of its own, so this works inside a
    running event loop too (Playwright's)."""
    def drain():
        with app.app_context():
            worker = Worker(app.extensions["linli.dialogue"], sms=sender)
            for _ in range(10):
                if not asyncio.run(worker.drain_once()):
                    break

    thread = threading.Thread(target=drain)
    thread.start()
    thread.join(60)
