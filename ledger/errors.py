"""The ledger's named errors. Each docstring is the message a transport may show."""


class LedgerError(Exception):
    """The ledger refused the operation."""

    def __init__(self, message=None, **details):
        self.details = details
        super().__init__(message or (self.__doc__ or "").strip())


class InvalidAmount(LedgerError):
    """The amount is not a valid number of points."""


class AmountNotANumber(InvalidAmount):
    """The amount is not a number."""


class TooManyDecimals(InvalidAmount):
    """Points have at most two decimals."""


class AmountNotPositive(InvalidAmount):
    """The amount must be greater than zero."""


class AmountOutOfRange(InvalidAmount):
    """The amount is too large."""


class InvalidMemo(LedgerError):
    """The memo is too long or contains characters that cannot be stored."""


class InvalidTransfer(LedgerError):
    """A transfer needs two or more non-zero entries that sum to zero."""


class UnknownAccount(LedgerError):
    """The account does not exist."""


class InsufficientPoints(LedgerError):
    """Not enough points."""


class IdempotencyConflict(LedgerError):
    """This request key was already used for a different transfer."""


class AlreadyReversed(LedgerError):
    """This transfer has already been reversed."""


class NotReversible(LedgerError):
    """A reversal cannot itself be reversed."""


class AppendOnly(LedgerError):
    """Ledger entries and transfers are never changed or deleted; post a reversal instead."""
