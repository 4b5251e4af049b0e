"""The Telegram adapter: python-telegram-bot handlers over the channel-neutral dialogue."""

import asyncio
import logging

from peewee import IntegrityError
from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    BaseUpdateProcessor,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from ledger import db
from ledger.db import prepared, record
from ledger.models import utcnow

from .dialogue import TELEGRAM, Dialogue
from .models import Inbound

log = logging.getLogger(__name__)
SORRY = "出错了，请稍后再试。 Something went wrong; please try again."

#: Telegram commands and the dialogue words they stand for.
COMMANDS = {
    "start": "HELP", "help": "HELP", "activities": "LIST", "mine": "MINE", "balance": "BAL",
    "history": "HIST", "language": "LANG", "join": "JOIN", "cancel": "CANCEL", "here": "HERE",
    "shop": "SHOP", "redeem": "REDEEM",
}
#: The command menu Telegram shows, in each language (setMyCommands).
MENU = {
    "en": [("activities", "Activities"), ("mine", "My sign-ups"), ("balance", "My points"),
           ("history", "History"), ("shop", "Goods"), ("redeem", "Counter QR code"),
           ("language", "中文 / English"), ("help", "Menu")],
    "zh": [("activities", "活动"), ("mine", "我的报名"), ("balance", "我的积分"), ("history", "明细"),
           ("shop", "商品"), ("redeem", "兑换二维码"), ("language", "中文 / English"), ("help", "菜单")],
}
#: Updates handled at once (each of a different person; a person's own come one after the other).
#: Eight keep one slow reply from holding up the others, and at 100 ms a send still answer more
#: than the 30 messages a second Telegram takes from a bot; sixteen answered fewer (BENCHMARKS.md).
CONCURRENT_UPDATES = 8
#: The largest photo fetched from Telegram (it serves bots files of up to 20 MB).
MAX_DOWNLOAD = 10 * 1024 * 1024
#: Short answers that need no dialogue (and no database).
ONLY_TEXT = ("我只能看懂文字和照片，请打字告诉我。回复0查看菜单。\n"
             "I can read text and photos only; please type your message. Reply 0 for the menu.")
EDITED = "请发一条新消息，我看不到修改过的消息。\nPlease send a new message; I cannot see edits."
PRIVATELY = "请私聊我使用邻里：点我的头像，再点“发消息”。\nPlease write to me privately to use Linli."
NO_PHOTO = "没收到这张照片，请再发一次。\nThe photo did not come through; please send it again."
SHARE = ("已经在用短信参加邻里？点下面的按钮共享手机号，就能连上您的记录。\n"
         "Already use Linli by SMS? Share your number with the button below to link your record.")


async def set_commands(bot):
    """Tell Telegram the command menu in English (the default) and in Chinese."""
    await bot.set_my_commands([BotCommand(c, d) for c, d in MENU["en"]])
    await bot.set_my_commands([BotCommand(c, d) for c, d in MENU["zh"]], language_code="zh")


def language_of(user):
    """The language a new Telegram user's app is set to: English or (by default) Chinese."""
    return "en" if (getattr(user, "language_code", None) or "").lower().startswith("en") else "zh_Hans"


def _in_thread(function, *args, **kwargs):
    """Run a database-touching function in a worker thread with its own connection."""

    def work():
        with db.connection_context():
            return function(*args, **kwargs)

    return asyncio.to_thread(work)


def keyboard(reply):
    """Inline buttons for a reply's choices, two a row."""
    if not reply.buttons:
        return None
    rows = [reply.buttons[i:i + 2] for i in range(0, len(reply.buttons), 2)]
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=b.command[:64]) for b in row] for row in rows]
    )


_keep_update = prepared(lambda key, now: Inbound.insert(key=key, created_at=now))


class OnePersonInOrder(BaseUpdateProcessor):
    """Different people's updates are handled at the same time, so one person's reply never waits
    for another's database work; one person's own updates are handled one after the other, in
    the order Telegram gave them (the dialogue is a conversation)."""

    def __init__(self, max_concurrent_updates):
        super().__init__(max_concurrent_updates)
        self._people = {}  # user (or chat) id -> [its lock, updates holding or awaiting it]

    async def do_process_update(self, update, coroutine):
        who = getattr(update, "effective_user", None) or getattr(update, "effective_chat", None)
        key = getattr(who, "id", None)
        turn = self._people.setdefault(key, [asyncio.Lock(), 0])
        turn[1] += 1
        try:
            async with turn[0]:
                await coroutine
        finally:
            turn[1] -= 1
            if not turn[1]:
                del self._people[key]

    async def initialize(self):
        pass

    async def shutdown(self):
        pass


class TelegramBot:
    """Wires a Dialogue to a python-telegram-bot Application."""

    def __init__(self, dialogue: Dialogue):
        self.dialogue = dialogue

    async def once(self, update: Update, function, *args):
        """Run `function(*args)` for this update unless its id was handled before; return its reply.

        The update id is recorded in the same transaction as what the dialogue changes, so a
        redelivery has no second effect and a crash half-way loses nothing.
        """
        key = f"tg:{update.get_bot().id}:{update.update_id}"

        def work():
            try:
                with db.atomic():
                    reply = function(*args)
                    # Last, as an SMS's MessageSid is: a repeat fails here (at the latest at
                    # COMMIT) and undoes its own second effects.
                    record(_keep_update.bind(key, utcnow()))
                    return reply
            except IntegrityError:
                if Inbound.select().where(Inbound.key == key).exists():
                    return None
                raise

        reply = await _in_thread(work)
        if reply is None:
            log.info("update %s seen before; ignored", update.update_id)
        return reply

    async def send(self, update: Update, reply) -> None:
        """Send a dialogue reply to the chat: a photo with a caption, or text with buttons."""
        if reply is None or reply.silent or not (reply.full_text() or reply.image):
            return
        if reply.image:
            await update.effective_chat.send_photo(reply.image, caption=reply.full_text()[:1024])
        else:
            await update.effective_chat.send_message(reply.full_text(), reply_markup=keyboard(reply))

    async def answer(self, update: Update, text: str):
        """Run one message through the dialogue (once per update) and send the reply."""
        user = update.effective_user
        reply = await self.once(update, self.handle, str(user.id), text, language_of(user))
        await self.send(update, reply)
        return reply

    def handle(self, user_id, text, language):
        return self.dialogue.handle(TELEGRAM, user_id, text, language=language)

    async def on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Translate /command args into the dialogue's words."""
        name = update.message.text.split()[0][1:].split("@", 1)[0].lower()
        args = " ".join(context.args or [])
        if name == "start" and args.startswith("here-"):  # deep link from a check-in QR code
            await self.answer(update, f"HERE {args[5:]}")
            return
        if name == "start" and args.startswith("link-"):  # deep link sent by SMS (TELEGRAM)
            reply = await self.once(update, self.dialogue.link_by_code, str(update.effective_user.id), args[5:])
            await self.send(update, reply)
            return
        user = update.effective_user
        if name == "start" and not await _in_thread(self.dialogue.has_phone, TELEGRAM, str(user.id)):
            # The first question: do they use Linli by SMS already? The share button is on it, so an
            # SMS resident links their record instead of registering a second, empty one.
            reply = await self.once(update, self.handle, str(user.id), "HELP", language_of(user))
            if reply is not None:
                await update.effective_chat.send_message(
                    f"{SHARE}\n\n{reply.full_text()}", reply_markup=ReplyKeyboardMarkup(
                        [[KeyboardButton("共享手机号 / Share my number", request_contact=True)]],
                        one_time_keyboard=True, resize_keyboard=True,
                    )
                )
            return
        word = COMMANDS.get(name, "HELP")
        await self.answer(update, f"{word} {args}".strip() if word != "HELP" else word)

    async def on_photo(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A photo (or a picture sent as a file), with its caption: for the report being made."""
        message = update.message
        picture = next((p for p in reversed(message.photo) if (p.file_size or 0) <= MAX_DOWNLOAD), None) \
            if message.photo else message.document
        if picture is None or (picture.file_size or 0) > MAX_DOWNLOAD:
            await update.effective_chat.send_message(NO_PHOTO)
            return
        try:
            data = bytes(await (await picture.get_file()).download_as_bytearray())
        except TelegramError as exc:
            log.info("could not fetch a photo: %s", exc)
            await update.effective_chat.send_message(NO_PHOTO)
            return
        user = update.effective_user
        reply = await self.once(update, self.handle_photo, str(user.id), data, message.caption or "",
                                language_of(user))
        await self.send(update, reply)

    def handle_photo(self, user_id, data, caption, language):
        self.dialogue.conversation(TELEGRAM, user_id, language)
        return self.dialogue.photo(TELEGRAM, user_id, data, caption)

    async def on_other(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A photo, sticker, voice message, location or file: say what the bot can read."""
        await update.effective_chat.send_message(ONLY_TEXT)

    async def on_edited(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """An edited message changes nothing that was done: ask for a new one."""
        await update.effective_chat.send_message(EDITED)

    async def on_group(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """In a group, one line: a resident's points are nobody else's business."""
        if update.effective_message and update.effective_message.text and (
                update.effective_message.text.startswith("/") or context.bot.username in update.effective_message.text):
            await update.effective_chat.send_message(PRIVATELY)

    async def on_unknown_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A /command we do not know: the help, never silence."""
        await self.answer(update, "HELP")

    async def on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Plain text: the same words as an SMS."""
        await self.answer(update, update.message.text)

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """An inline button: its data is the command it stands for."""
        query = update.callback_query
        reply = await self.once(update, self.dialogue.handle, TELEGRAM, str(update.effective_user.id),
                                query.data or "")
        if reply is None:
            return
        try:
            await query.answer()  # only stops the button's spinner: a late press still counts
        except TelegramError as exc:
            log.info("could not answer a button press: %s", exc)
        await self.send(update, reply)

    async def on_contact(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Link this Telegram user to the resident with the shared phone number (own number only)."""
        contact = update.message.contact
        user = update.effective_user
        reply = await self.once(
            update, self.dialogue.link_telegram, str(user.id), contact.phone_number, contact.user_id == user.id
        )
        await self.send(update, reply)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log first; then tell the resident something went wrong, never a traceback."""
        log.error("error while handling an update", exc_info=context.error)
        if isinstance(update, Update) and update.effective_chat:
            try:
                await update.effective_chat.send_message(SORRY)
            except TelegramError as exc:  # blocked by the user, or Telegram unreachable
                log.info("could not send the apology: %s", exc)


def file_url(base_url):
    """Where a Bot API server at `base_url` (…/bot) serves files (…/file/bot)."""
    head, _, tail = base_url.rstrip("/").rpartition("/")
    return f"{head}/file/{tail}"


def build_application(token, dialogue, *, base_url="https://api.telegram.org/bot"):
    """Build the PTB Application with Linli's handlers (files come from the same server)."""
    bot = TelegramBot(dialogue)
    application = (
        Application.builder().token(token).base_url(base_url).base_file_url(file_url(base_url))
        .concurrent_updates(OnePersonInOrder(CONCURRENT_UPDATES))
        .post_init(lambda app: set_commands(app.bot)).build()
    )
    # Private chats only (a resident's points are nobody else's business), new messages only.
    private = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
    application.add_handler(CommandHandler(list(COMMANDS), bot.on_command, filters=private))
    application.add_handler(MessageHandler(private & filters.COMMAND, bot.on_unknown_command))
    application.add_handler(MessageHandler(private & filters.CONTACT, bot.on_contact))
    application.add_handler(MessageHandler(private & filters.TEXT & ~filters.COMMAND, bot.on_text))
    application.add_handler(MessageHandler(private & (filters.PHOTO | filters.Document.IMAGE), bot.on_photo))
    application.add_handler(MessageHandler(private & ~filters.TEXT & ~filters.CONTACT, bot.on_other))
    application.add_handler(MessageHandler(filters.ChatType.PRIVATE & filters.UpdateType.EDITED_MESSAGE,
                                           bot.on_edited))
    application.add_handler(MessageHandler(filters.ChatType.GROUPS & filters.UpdateType.MESSAGE, bot.on_group))
    application.add_handler(CallbackQueryHandler(bot.on_button))
    application.add_error_handler(bot.on_error)
    return application
