"""Linli's points supermarket: goods and stock (changed only through recorded movements) and the
one-time counter codes residents show or read out at the counter.

This package sits on `community` and `ledger`; it imports nothing from botapp or web, nor flask,
telegram or twilio. Services take plain arguments, own their transactions and raise the named
errors in `catalog.errors`.
"""
