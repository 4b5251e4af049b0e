"""Demo data: a small living district so a newcomer sees Linli working."""

import datetime
import io
import random
import secrets

from PIL import Image, ImageDraw

import ledger
from catalog.checkout import checkout
from catalog.codes import find_digit_code, issue_digit_code
from catalog.goods import create_goods, receive_stock
from community import Community, Staff, cases, mediation
from community import activities as act
from community.awards import confirm_participation, report_deed
from community.people import create_community, create_staff, register_resident
from ledger.models import happening_at, utcnow

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗郑"
GIVEN = [
    "秀英", "桂兰", "建国", "志强", "丽华", "明", "芳",
    "伟", "静", "海燕", "国庆", "玉兰", "德福", "美玲",
]
GOODS = [  # name, English name, price in hundredths, stock, limit per resident
    ("牙膏", "Toothpaste", 200, 20, None),
    ("肥皂", "Soap", 100, 30, None),
    ("食用油", "Cooking oil", 500, 4, (1, "month")),
    ("洗衣粉", "Washing powder", 300, 12, None),
    ("毛巾", "Towel", 150, 0, None),
]
ACTIVITIES = [
    ("volunteering", "安全检查宣传", "Safety check outreach", "镇海街道"),
    ("volunteering", "垃圾分类值守", "Waste-sorting duty", "东梅小区门口"),
    ("mediation", "邻里纠纷调解", "Neighbour dispute mediation", "社区服务中心"),
    ("rescue", "防汛应急演练", "Flood rescue drill", "木兰溪岸"),
]


def create_demo_data(seed=7):
    """Create the demo district and return (username, role, password) for each staff user."""
    rng = random.Random(seed)
    district = create_community("LC", "荔城区", "Licheng District", "district")
    street = create_community("ZH", "镇海街道", "Zhenhai Street", "street", parent=district)
    communities = [
        create_community("DM", "东梅社区", "Dongmei Community", parent=street),
        create_community("GC", "拱辰社区", "Gongchen Community", parent=street),
    ]
    for community, phone in zip(communities, ("0594-2345678", "0594-2345679"), strict=True):
        Community.update(phone=phone).where(Community.id == community.id).execute()
        community.phone = phone
    credentials = []

    def staff(username, role, community=None):
        password = secrets.token_urlsafe(9)
        credentials.append((username, role, password))
        return create_staff(username, password, role, community, display_name=username)

    grids = {c.id: [create_community(f"{c.code}-G{n}", f"第{n}网格", f"Grid {n}", Community.GRID, parent=c)
                    for n in range(1, 6)] for c in communities}
    admin = staff("admin", Staff.ADMIN)
    coordinators, clerks = {}, {}
    for c in communities:
        code = c.code.lower()
        coordinators[c.id] = [staff(f"{code}-coord", Staff.COORDINATOR, c),
                              staff(f"{code}-coord2", Staff.COORDINATOR, c)]
        clerks[c.id] = staff(f"{code}-clerk", Staff.CLERK, c)
        staff(f"{code}-grid1", Staff.GRID_WORKER, grids[c.id][0])  # 网格员 of the first grid

    residents = []
    for i in range(50):
        community = communities[i % 2]
        name = rng.choice(SURNAMES) + rng.choice(GIVEN)
        residents.append(register_resident(
            community, name, phone=f"+86138{i:08d}", language="en" if i % 10 == 0 else "zh_Hans",
            grid_label=f"{community.code}-G{i % 5 + 1}", unit_label=f"U{i % 12 + 1}", staff=admin,
        ))

    now = utcnow()
    hour = now.replace(minute=0, second=0, microsecond=0)
    for c in communities:
        locals_ = [r for r in residents if r.community_id == c.id]
        first, second = coordinators[c.id]
        # Eight past weeks of work, oldest first, confirmed when it happened; a week of activities ahead.
        plan = [(-7 * week - rng.randrange(1, 6), ACTIVITIES[week % len(ACTIVITIES)]) for week in range(7, -1, -1)]
        plan += [(3 + n, activity) for n, activity in enumerate(ACTIVITIES)]
        for days, (category, title_zh, _title_en, place) in plan:
            starts = hour + datetime.timedelta(days=days)
            with happening_at(min(starts, now) - datetime.timedelta(days=2)):
                activity = act.create_activity(
                    first, c, title=title_zh, category=category, starts_at=starts,
                    ends_at=starts + datetime.timedelta(hours=2), capacity=8, place=place,
                )
                signups = [act.join(resident, activity) for resident in rng.sample(locals_, rng.randrange(4, 8))]
            if days < 0:
                with happening_at(starts + datetime.timedelta(hours=3)):
                    for signup in signups:
                        confirm_participation(first, signup)
                        if category == "rescue":
                            confirm_participation(second, signup)
        deed = report_deed(first, locals_[0], "rescue", "扶起摔倒的老人并送医")
        confirm_participation(first, deed)
        _stock_the_shop(first, clerks[c.id], c, locals_)
        # What residents reported: one waiting, one taken on, one closed with its points.
        cases.report(locals_[1], "facilities", "3号楼楼道的灯坏了，晚上很黑",
                     photos=[cases.keep_photo(locals_[1], _corridor_photo())])
        taken = cases.report(locals_[2], "environment", "小区门口的垃圾两天没人清了")
        cases.accept(first, taken)
        fixed = cases.report(locals_[3], "hazard", "5号楼前的井盖松了")
        cases.verify(cases.handled(first, fixed, "已通知物业换了新井盖"), True, resident=locals_[3])
        # The neighbour reasoning room: two mediators and a dispute before them.
        mediators = [mediation.appoint(first, c, resident=r) for r in locals_[4:6]]
        mediation.open_mediation(first, c, "楼上卫生间漏水到楼下，两家协商不成", ["302室 刘家", "202室 郑家"],
                                 [m.id for m in mediators])
    return credentials


def _stock_the_shop(coordinator, clerk, community, residents):
    """Goods on the shelf, and a few residents who have already spent points."""
    shelf = []
    for name_zh, name_en, price, stock, limit in GOODS:
        goods = create_goods(coordinator, community, name_zh, name_en, price, *(limit or (None, None)))
        if stock:
            receive_stock(coordinator, goods, stock)
        shelf.append(goods)
    toothpaste, soap = shelf[0], shelf[1]
    buyers = [r for r in residents if ledger.balance(r.account_id) >= toothpaste.price][:3]
    for n, resident in enumerate(buyers):
        code = find_digit_code(resident, issue_digit_code(resident))
        checkout(clerk, code, [(toothpaste.id if n % 2 else soap.id, 1)], checkout_key=f"demo-{resident.id}")


def _corridor_photo():
    """A picture of a dark stairwell with its lamp out, as a resident's phone would send it."""
    image = Image.new("RGB", (800, 600), (58, 56, 54))
    draw = ImageDraw.Draw(image)
    draw.polygon([(0, 600), (250, 330), (550, 330), (800, 600)], fill=(92, 88, 84))  # the stairs
    for step in range(6):
        y = 360 + step * 42
        draw.line([(250 - step * 45, y), (550 + step * 45, y)], fill=(120, 116, 110), width=4)
    draw.ellipse([340, 60, 460, 120], fill=(40, 40, 40), outline=(150, 150, 150), width=4)  # the dead lamp
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()
