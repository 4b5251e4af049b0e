"""Linli's resident channels: one channel-neutral dialogue (`dialogue`), the Telegram adapter
(`telegram_bot`, run by `python -m botapp`), the SMS adapter (`sms`, behind the web process's
Twilio webhook), and the outbox worker (`worker`, run by `python -m botapp.worker`) that sends
notices out.

No rule lives here: adapters parse input, call one community service, and render the reply.
"""
