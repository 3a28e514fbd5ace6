"""The register on the phone: a field worker finds a registered household of their township by a
person's name or an ID's last digits and opens its questionnaire filled with what the county
already knows; signing out wipes the roster, and the next worker gets their own places'."""

import http.client
import unittest

from playwright.sync_api import expect

from harness import ADMIN_PASSWORD, PASSWORD, Browser, SHOTS, Api, Server

FORM = "田东县建档立卡贫困劳动力就业情况调查"
WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def resident_id(first17):
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, WEIGHTS)) % 11]


def person(household, township, name, serial, male):
    number = resident_id(f"452223198307080{serial:02}")
    return f"{household},{township},那塘村,{name},{number},{'男' if male else '女'},1983-07-08\r\n"


REGISTER = "household_id,township,village,name,id_number,gender,birth_date\r\n" + "".join([
    person("4510220001", "思林镇", "韦秀英", 42, False),
    person("4510220001", "思林镇", "黄志强", 43, True),
    person("4510220002", "思林镇", "农美兰", 44, False),
    person("4510220003", "思林镇", "陆建国", 45, True),
    person("4510220004", "平马镇", "罗春花", 46, False),
])


class Roster(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        SHOTS.mkdir(parents=True, exist_ok=True)
        cls.server = Server()
        cls.server.start()
        admin = Api(cls.server.url, "admin", ADMIN_PASSWORD)
        for username, place, role in (("fw-siling", "思林镇", "field_worker"), ("fw-pingma", "平马镇", "field_worker"),
                                      ("sup-siling", "思林镇", "supervisor")):
            admin.request("POST", "/api/v1/users", {"username": username, "password": PASSWORD, "role": role,
                                                     "display_name": username, "scope": [place]})
        connection = http.client.HTTPConnection("127.0.0.1", cls.server.port, timeout=30)
        connection.request("PUT", "/api/v1/forms/labour-survey/registry", body=REGISTER.encode("gb18030"),
                           headers={"Authorization": f"Bearer {admin.token}", "Content-Type": "text/csv"})
        answer = connection.getresponse()
        assert answer.status == 200, answer.read()
        connection.close()
        cls.chromium = Browser()
        cls.errors = cls.chromium.errors
        cls.context, cls.page = cls.chromium.page(360, 740)

    @classmethod
    def tearDownClass(cls):
        cls.context.close()
        cls.chromium.close()
        cls.server.close()

    def tearDown(self):
        self.assertEqual(self.errors, [], "the page threw")

    def sign_in(self, username, go=True):
        page = self.page
        if go:
            page.goto(self.server.url)
        page.get_by_label("用户名", exact=True).fill(username)
        page.get_by_label("密码", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="登录", exact=True).click()

    def test_1_a_registered_household_opens_filled_with_what_the_county_knows(self):
        page = self.page
        self.sign_in("fw-siling")
        search = page.get_by_label("查找建档立卡户（共 3 户）：户编号、姓名或身份证后几位", exact=True)
        search.fill("黄志强")
        found = page.get_by_role("button", name="4510220001 · 那塘村 · 韦秀英、黄志强", exact=True)
        expect(found).to_be_visible()
        search.fill("罗春花")
        expect(page.get_by_text("名册中没有找到。")).to_be_visible()
        # The last digits of an ID number find its household too.
        search.fill(resident_id("45222319830708044")[-4:])
        expect(page.get_by_role("button", name="4510220002 · 那塘村 · 农美兰", exact=True)).to_be_visible()
        search.fill("韦秀英")
        page.screenshot(path=str(SHOTS / "registry-1-found.png"))
        found.click()
        expect(page.get_by_label("建档立卡户编号", exact=True)).to_have_value("4510220001")
        first = page.get_by_role("group", name="第1位劳动力", exact=True)
        expect(first.get_by_label("姓名", exact=True)).to_have_value("韦秀英")
        expect(first.get_by_label("身份证号", exact=True)).to_have_value(resident_id("45222319830708042"))
        second = page.get_by_role("group", name="第2位劳动力", exact=True)
        expect(second.get_by_label("姓名", exact=True)).to_have_value("黄志强")
        page.screenshot(path=str(SHOTS / "registry-2-prefilled.png"), full_page=True)

    def test_2_signing_out_wipes_the_roster_and_the_next_worker_gets_their_own(self):
        page = self.page
        page.goto(self.server.url)
        page.get_by_role("button", name="退出登录", exact=True).click()
        expect(page.get_by_label("用户名", exact=True)).to_be_visible()
        self.sign_in("fw-pingma", go=False)
        search = page.get_by_label("查找建档立卡户（共 1 户）：户编号、姓名或身份证后几位", exact=True)
        search.fill("韦秀英")
        expect(page.get_by_text("名册中没有找到。")).to_be_visible()
        search.fill("罗春花")
        expect(page.get_by_role("button", name="4510220004 · 那塘村 · 罗春花", exact=True)).to_be_visible()


    def test_3_the_supervisor_sees_coverage_and_who_is_still_to_visit(self):
        context, page = self.chromium.page(1280, 800)
        self.addCleanup(context.close)
        page.goto(self.server.url)
        page.get_by_label("用户名", exact=True).fill("sup-siling")
        page.get_by_label("密码", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="登录", exact=True).click()
        page.get_by_role("link", name="进度").click()
        chart = page.get_by_role("figure", name="各乡镇建档立卡覆盖率")
        expect(chart.get_by_role("row").filter(has_text="思林镇")).to_contain_text("0.00%")
        missing = page.get_by_role("region", name="还没走访的建档立卡户")
        expect(missing.get_by_role("row")).to_have_count(4)  # the header and 思林镇's three households
        expect(missing.get_by_role("row").filter(has_text="4510220001")).to_contain_text("韦秀英、黄志强")
        expect(missing.get_by_text("4510220004")).to_have_count(0)
        page.screenshot(path=str(SHOTS / "registry-3-coverage.png"), full_page=True)


if __name__ == "__main__":
    unittest.main()
