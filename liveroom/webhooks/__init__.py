"""Webhooks: room events POSTed, signed, to the operator's URLs (``--webhook-url``).

``model.py`` signs and times deliveries (pure), ``payloads.py`` says what each event carries
(pure), ``sender.py`` delivers with bounded queues and retries, ``notifier.py`` turns the rooms'
stage changes, questions and records into events. Nothing is sent unless a URL is configured.
"""
