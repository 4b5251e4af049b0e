"""The supermarket's named errors. Each docstring is the message (English msgid) a transport shows."""

from community.errors import CommunityError


class CatalogError(CommunityError):
    """The supermarket could not do that."""


class GoodsNotFound(CatalogError):
    """No such goods."""


class LimitNeedsPeriod(CatalogError):
    """A limit per resident needs a period: per month or per week."""


class OutOfStock(CatalogError):
    """Not enough in stock."""


class CodeMalformed(CatalogError):
    """That code is not valid; check it for a typo."""


class CodeUnknown(CatalogError):
    """That code is unknown."""


class WrongDigits(CodeUnknown):
    """That code is not right. %(left)d tries left."""


class TooManyWrongDigits(CodeUnknown):
    """That code was typed wrong too many times and no longer works: ask for a new code."""


class CodeUsed(CatalogError):
    """That code has already been used."""


class CodeExpired(CatalogError):
    """That code has expired; ask for a new one."""


class CodeReplaced(CatalogError):
    """A newer code was issued; use the newest one."""


class WrongCommunity(CatalogError):
    """This resident belongs to another community's supermarket."""


class OverLimit(CatalogError):
    """That is more than the resident may take in this period."""


class EmptyCart(CatalogError):
    """The cart is empty."""


class AlreadyVoided(CatalogError):
    """This checkout has already been voided."""


class CardReplaced(CatalogError):
    """This card was replaced by a newer one; ask for the new card."""


class Unreachable(CatalogError):
    """The resident cannot get a code: no Telegram, and no phone number that takes SMS."""


class PinMalformed(CatalogError):
    """A PIN is 4 to 6 digits."""


class WrongPin(CatalogError):
    """That PIN is not right. %(left)d tries left."""


class PinLocked(CatalogError):
    """The PIN was typed wrong too many times and is locked: a coordinator can set a new one."""


class CheckoutKeyUsed(CatalogError):
    """This checkout form was already used for another code: scan the code again."""


class TooManyCodes(CatalogError):
    """Several codes were sent to this resident just now; the next can be sent in %(minutes)s minutes."""


class TooManyWrongTries(CatalogError):
    """Too many wrong codes were typed at this counter; try again in %(minutes)s minutes."""
