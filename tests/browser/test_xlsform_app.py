"""A questionnaire drafted in Excel, in the field app: the kitchen-sink XLSForm of tests/xlsform/
published as a workbook, then filled on a phone-sized page. Questions appear as the answers make
them relevant (also inside groups and repeats, on answers outside them), the phone computes the
calculation, and the server takes the household. Screenshots go to target/browser-shots/."""

import unittest

from playwright.sync_api import expect

from harness import PASSWORD, ROOT, SHOTS, Browser, start_with_admin

FORM = "入户走访（全部题型）"


class XlsformInTheFieldApp(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server, cls.admin = start_with_admin()
        published = cls.admin.publish_workbook(ROOT / "tests" / "xlsform" / "kitchen-sink.xlsx")
        assert published["id"] == "kitchen-sink", published
        cls.admin.request("POST", "/api/v1/users", {
            "username": "fw-pingma", "password": PASSWORD, "role": "field_worker",
            "display_name": "平马镇调查员", "scope": ["平马镇"],
        })
        cls.browser = Browser()

    @classmethod
    def tearDownClass(cls):
        cls.browser.close()
        cls.server.close()

    def test_a_worker_fills_an_excel_questionnaire_and_the_server_takes_it(self):
        context, page = self.browser.page(360, 740)
        page.goto(self.server.url + "/")
        page.get_by_label("用户名", exact=True).fill("fw-pingma")
        page.get_by_label("密码", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="登录", exact=True).click()
        page.get_by_role("button", name=FORM, exact=True).click()

        # The workbook's hint is shown with its question, and read out with it.
        expect(page.get_by_label("户主姓名", exact=True)).to_have_accessible_description("身份证上的姓名")
        page.get_by_label("户主姓名", exact=True).fill("黄德福")
        page.get_by_label("家庭人口", exact=True).fill("5")
        page.get_by_label("劳动力人数", exact=True).fill("3")
        page.get_by_label("年收入(元)", exact=True).fill("12000")
        page.get_by_label("走访日期", exact=True).fill("2026-03-01")
        # Crops are asked only of a household with land, the area only of one growing rice.
        expect(page.get_by_role("group", name="种植作物", exact=True)).to_have_count(0)
        page.get_by_role("radiogroup", name="是否有耕地").get_by_label("是", exact=True).check()
        expect(page.get_by_label("耕地面积(亩)", exact=True)).to_have_count(0)
        page.get_by_role("group", name="种植作物", exact=True).get_by_label("水稻", exact=True).check()
        page.get_by_label("耕地面积(亩)", exact=True).fill("4.5")
        page.get_by_role("radiogroup", name="户主就业状态").get_by_label("稳定就业", exact=True).check()
        page.get_by_label("工作单位", exact=True).fill("平马镇糖厂")
        # A question in the dwelling group hangs on an answer in the same group.
        dwelling = page.get_by_role("group", name="住房", exact=True)
        dwelling.get_by_role("radiogroup", name="住房是否安全").get_by_label("否", exact=True).check()
        dwelling.get_by_label("需要的维修", exact=True).fill("屋顶漏雨")
        # Two follow-up visits (repeat_count 2), each asking for help because the household has more than 3 people.
        visits = page.get_by_role("group", name="回访 2", exact=True)
        expect(visits.get_by_label("需要的帮扶", exact=True)).to_be_visible()
        page.get_by_role("group", name="回访 1", exact=True).get_by_label("需要的帮扶", exact=True).fill("技能培训")
        page.get_by_label("确认以上信息属实", exact=True).check()
        page.screenshot(path=str(SHOTS / "x01-xlsform-filled.png"), full_page=True)

        # Fewer people hide the visits' question again (a condition from outside the repeat).
        page.get_by_label("家庭人口", exact=True).fill("3")
        expect(visits.get_by_label("需要的帮扶", exact=True)).to_have_count(0)
        page.get_by_label("家庭人口", exact=True).fill("5")

        page.get_by_role("button", name="提交", exact=True).click()
        expect(page.get_by_text("问卷已上传到服务器。")).to_be_visible(timeout=30_000)
        page.screenshot(path=str(SHOTS / "x02-xlsform-sent.png"))
        context.close()
        self.assertEqual(self.browser.errors, [])

        [stored] = self.admin.submissions("kitchen-sink")
        data = stored["data"]
        self.assertEqual(data["per_head"], 2400, "the phone computed the calculation")
        self.assertEqual(data["dwelling"], {"is_safe": False, "repairs": "屋顶漏雨"})
        self.assertEqual(data["crops"], ["rice"])
        self.assertEqual(data["visits"][0]["help_asked"], "技能培训")


if __name__ == "__main__":
    unittest.main()
