"""What a resident's message means: the grammar of the dialogue, written as data.

Each intent lists the words people use for it. Latin words are whole words in any case and
width (a word of four letters or more may have one typo: CANCLE, JION); Chinese words are found
anywhere in the message once spaces and punctuation are gone, and also by their sound, so a
homophone typo (报明 for 报名, 几分 for 积分) still works. The longest word wins (then the first): 取消订阅 is
opting out, 取消 is cancelling a sign-up, 我的积分 is the balance and 我的报名 the sign-ups; a
longer word heard in a typo beats a shorter one written out (我的积份 is the balance too).
A message that is only a number (2, ２, 二, 第二个) is a choice from the last list or menu.

Which intent does what in which state of the conversation is the dialogue's table, not here.
"""

import re
import unicodedata
from dataclasses import dataclass

from pypinyin import lazy_pinyin


@dataclass(frozen=True)
class Intent:
    name: str
    latin: tuple = ()  # whole words
    chinese: tuple = ()  # anywhere in the message, or sounding alike
    alone: tuple = ()  # only when they are the whole message (T, TD, 0)
    leading: tuple = ()  # at the start of a message, these win over any word after them


INTENTS = (
    Intent("stop", ("STOP", "UNSUBSCRIBE"), ("退订", "取消订阅", "不要再发", "别再发", "不要发了", "拒收"),
           alone=("TD", "T")),
    Intent("start", ("START", "SUBSCRIBE"), ("订阅", "重新订阅", "恢复订阅")),
    # Announcements only: receipts, codes and reminders still come.
    Intent("quiet", ("QUIET",), ("退订通知", "不要通知", "不需要通知", "不要广告", "退订公告", "不收通知")),
    Intent("loud", ("NEWS",), ("订阅通知", "恢复通知")),
    Intent("menu", ("MENU",), ("菜单", "主菜单", "目录")),
    Intent("help", ("HELP",), ("帮助", "人工", "客服", "怎么用", "电话"), alone=("?",)),
    Intent("balance", ("BAL", "BALANCE", "POINTS"),
           ("积分", "查积分", "余额", "我有多少分", "积分多少", "我的积分", "分数", "多少分", "查分", "剩多少")),
    Intent("history", ("HIST", "HISTORY"), ("明细", "积分明细", "记录", "流水", "存折")),
    Intent("list", ("LIST", "ACTIVITIES"), ("活动", "有什么活动", "活动列表")),
    Intent("join", ("JOIN",), ("报名", "参加", "我要报名", "我要参加")),
    Intent("cancel", ("CANCEL",), ("取消", "取消报名", "不去了", "退出活动")),
    Intent("mine", ("MINE",), ("我的", "我的报名", "我报的", "我报了", "报了什么", "报了哪些")),
    Intent("here", ("HERE", "CHECKIN"), ("签到", "签到码", "我到了")),
    Intent("shop", ("SHOP", "GOODS"), ("商品", "积分超市", "超市", "能换什么", "换什么", "换啥", "换点啥", "换点什么")),
    Intent("code", ("CODE",), ("兑换码", "兑换", "验证码", "付款码")),
    Intent("redeem", ("REDEEM", "QR"), ("二维码",)),
    Intent("telegram", ("TELEGRAM",), ("绑定",)),
    Intent("language", ("LANG", "LANGUAGE"), ("语言",)),
    Intent("chinese", ("ZH", "CHINESE"), ("中文", "汉语", "普通话")),
    Intent("english", ("ENGLISH",), ("英文", "英语"), alone=("EN",)),
    Intent("rename", ("RENAME", "NAME"), ("改名", "改名字", "修改名字", "名字错了")),
    Intent("more", ("MORE", "NEXT"), ("更多", "下一页")),
    # A report's own words may hold any other command word (活动室的灯坏了): the keyword leads.
    Intent("report", ("REPORT",), ("反映问题", "我要反映"), leading=("反映", "反应", "报修", "投诉", "报告", "举报")),
    Intent("progress", ("PROGRESS",), ("进度", "查进度", "办得怎么样")),
    # Only as the whole message: "什么时候修好了告诉我" closes nothing.
    Intent("solved", alone=("SOLVED", "已解决", "解决了", "修好了", "弄好了")),
    Intent("unsolved", alone=("UNSOLVED", "未解决", "没解决", "没有解决", "没修好", "还没好")),
    # Answers to a question: only as the whole message (你好 is no "好").
    Intent("yes", alone=("YES", "OK", "Y", "确认", "确定", "是", "是的", "对", "对的", "好", "好的", "没错")),
    Intent("no", alone=("NO", "N", "重新填写", "重填", "重新", "不对", "不是", "错了", "不")),
)
BY_NAME = {intent.name: intent for intent in INTENTS}

_CHINESE = sorted(((w, i.name) for i in INTENTS for w in i.chinese), key=lambda p: -len(p[0]))
_SOUNDS = [(tuple(lazy_pinyin(w)), name) for w, name in _CHINESE if len(w) >= 2]
_LATIN = {w: i.name for i in INTENTS for w in i.latin}
_ALONE = {w: i.name for i in INTENTS for w in i.alone}
_LEADING = sorted(((w, i.name) for i in INTENTS for w in i.leading + i.chinese if i.leading),
                  key=lambda p: -len(p[0]))

CHINESE_NUMERALS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
                    "八": 8, "九": 9, "十": 10}
MAX_TEXT = 1600
_SEPARATORS = re.compile(r"[\s\W_]+", re.UNICODE)
_CODE = re.compile(r"[A-Za-z]?\d+")


def clean(text):
    """Fold width and case forms (NFKC), drop invisible characters and squeeze spaces."""
    cleaned = unicodedata.normalize("NFKC", text or "")
    cleaned = "".join(ch for ch in cleaned if ch.isprintable() or ch.isspace())
    return " ".join(cleaned.split())[:MAX_TEXT]


def number(text):
    """The number a message consists of (2, ２, 二, 第二个, 2号), or None."""
    bare = _SEPARATORS.sub("", clean(text))
    bare = bare.removeprefix("第").removesuffix("个").removesuffix("号").removesuffix("项")
    if bare.isascii() and bare.isdigit() and len(bare) <= 6:
        return int(bare)
    if bare and all(ch in CHINESE_NUMERALS for ch in bare) and len(bare) <= 3:
        if bare == "十":
            return 10
        if len(bare) == 2 and bare[0] == "十":
            return 10 + CHINESE_NUMERALS[bare[1]]
        if len(bare) == 1:
            return CHINESE_NUMERALS[bare]
    return None


def _one_typo(word, keyword):
    """Tell whether `word` is `keyword` with one letter wrong, missing, added or swapped."""
    if abs(len(word) - len(keyword)) > 1 or word == keyword:
        return False
    if len(word) == len(keyword):
        diff = [i for i, (a, b) in enumerate(zip(word, keyword, strict=True)) if a != b]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and word[diff[0]] == keyword[diff[1]] and word[diff[1]] == keyword[diff[0]])
    short, long_ = sorted((word, keyword), key=len)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


def _latin_intent(word):
    word = word.upper()
    if word in _LATIN:
        return _LATIN[word]
    if len(word) >= 4 and word.isalpha():
        for keyword, name in _LATIN.items():
            if len(keyword) >= 4 and _one_typo(word, keyword):
                return name
    return None


def understand(text):
    """Return (intent name or None, argument, cleaned text) for one message.

    The argument is what follows the word, without separators: `报名：A4` → ("join", "A4").
    """
    cleaned = clean(text)
    if cleaned.lower().split(" ")[0] == "/start":  # Telegram's first message: a greeting
        return None, cleaned[len("/start"):].strip(), cleaned
    bare = _SEPARATORS.sub("", cleaned)
    for word, name in _LEADING:
        if bare.startswith(word):
            at = cleaned.find(word)  # -1 when spaces split the word (反 映)
            rest = cleaned[at + len(word):] if at >= 0 else bare[len(word):]
            return name, rest.strip(" :：,，。.!！?？"), cleaned
    for alone in (bare.upper(), cleaned.upper()):
        if alone in _ALONE:
            return _ALONE[alone], "", cleaned
    words = [w for w in _SEPARATORS.split(cleaned) if w]
    if words and words[0].isascii():
        name = _latin_intent(words[0])
        if name:
            return name, _argument(cleaned, words[0], name), cleaned
    found = [(len(word), -at, word, name) for word, name in _CHINESE if (at := bare.find(word)) >= 0]
    best = max(found) if found else None  # the longest word, and of words as long the first
    # A word heard in a longer typo wins over it (我的积份 is 我的积分, not 我的).
    heard = _heard(bare) if best is None or best[2] != bare else None
    if best and (heard is None or len(heard[0]) <= best[0]):
        return best[3], _argument(cleaned, best[2], best[3]), cleaned
    if heard:
        return heard[1], _argument(cleaned, heard[0], heard[1]), cleaned
    for word in words[1:]:
        if word.isascii() and word.upper() in _LATIN:
            return _LATIN[word.upper()], _argument(cleaned, word, _LATIN[word.upper()]), cleaned
    return None, cleaned, cleaned


def _heard(bare):
    """The longest Chinese word that sounds like part of the message: (what was typed, intent), or None."""
    sounds = [s for ch in bare[:100] for s in (lazy_pinyin(ch) if not ch.isascii() else [ch.lower()])]
    for keyword, name in _SOUNDS:
        for at in range(len(sounds) - len(keyword) + 1):
            if tuple(sounds[at:at + len(keyword)]) == keyword:
                return bare[at:at + len(keyword)], name
    return None


#: Intents whose argument is a code or a number (报名参加第2个 → 2, 我要报名 → nothing).
CODED = ("join", "cancel", "here", "progress")
#: Intents whose argument is the rest of the message as it was written.
FREE = ("report",)


def whole(text):
    """The intent a message is, when it is nothing but one of that intent's words (菜单, STOP), else None."""
    bare = _SEPARATORS.sub("", clean(text)).upper()
    for intent in INTENTS:
        if bare in intent.alone or bare in intent.latin or bare in intent.chinese:
            return intent.name
    return None


def _argument(cleaned, word, name):
    """What follows the intent's word: a code (A12, 6074), a number, or the rest of the words
    (all of them for a report: REPORT lamp 3 broken)."""
    at = cleaned.find(word)
    rest = cleaned[at + len(word):] if at >= 0 else cleaned.replace(word, "", 1)
    if name in FREE:
        return rest.strip(" :：,，。.!！?？")
    before = cleaned[:at] if at >= 0 else ""
    found = _CODE.search(rest) or _CODE.search(before)
    if found:
        return found.group(0)
    n = number(rest)
    if n is not None:
        return str(n)
    return "" if name in CODED else rest.strip(" :：,，。.!！?？")


#: What people put between 反映 and the problem, or say instead of it (我要反映一个问题).
REPORT_FILLER = re.compile(r"^(?:一下|一个问题|个问题|问题|一个情况|个情况|情况|一件事|件事|个事|点事)"
                           r"[\s,，.。:：!！]*")


def report_text(text):
    """The problem in a report's words: without 反映 said once more (asked what is wrong, they
    wrote 反映 and the problem again) or filler (反映一下：…); "" when nothing is left."""
    intent, words, _cleaned = understand(text or "")
    if intent == "report":
        text = words
    return REPORT_FILLER.sub("", " ".join((text or "").split()))


NAME_PREFIXES = ("我的名字是", "我的名字叫", "我的名字", "名字是", "名字叫", "我叫做", "我叫", "我是", "姓名",
                 "名字", "本人", "MY NAME IS", "I AM", "I'M", "NAME")


def name_from(text):
    """The name in a reply to "what is your name?": 我叫陈桂兰 → 陈桂兰; None when it is no name
    (a command word, digits, or only emoji and punctuation)."""
    name = clean(text)
    for prefix in NAME_PREFIXES:
        if name.upper().startswith(prefix):
            name = name[len(prefix):]
            break
    name = name.strip(" :：,，。.!！?？~～")
    if not name or len(name) > 30 or not any(ch.isalpha() for ch in name):
        return None
    if any(ch.isdigit() for ch in name) or understand(name)[0] not in (None, "yes", "no"):
        return None
    if name.isascii() and name.upper() in ("YES", "NO", "OK", "HI", "HELLO"):
        return None
    if name in ("你好", "您好", "喂", "在吗", "谢谢", "好的", "确认"):
        return None
    return name
