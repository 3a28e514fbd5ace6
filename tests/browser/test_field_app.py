"""The field worker's journey in a real browser (Debian's Chromium, driven by Playwright) at phone
size: sign in, fill the county's household, be stopped on the phone by a wrong ID number, submit,
work with the server stopped, lose an answer on the way, get a server-side refusal and a
supervisor's comment back. Screenshots go to target/browser-shots/ to be looked at."""

import json
import time
import unittest
import uuid

from playwright.sync_api import expect, sync_playwright

from harness import ADMIN_PASSWORD, CHROMIUM, CHROMIUM_ARGS, PASSWORD, SHOTS, Api, LossyProxy, Server

FORM = "田东县建档立卡贫困劳动力就业情况调查"
WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def resident_id(first17):
    """17 digits completed with their GB 11643 check character."""
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, WEIGHTS)) % 11]


def wrong_check(id_number):
    return id_number[:17] + ("1" if id_number[17] != "1" else "2")


# A woman born 1983-07-08 (17th digit even), a man born 1965-03-12 (odd).
WORKING = resident_id("45102219830708042")
CARING = resident_id("45102219650312051")


class FieldApp(unittest.TestCase):
    """One phone, one worker, in order: each step starts where the one before it left off."""

    @classmethod
    def setUpClass(cls):
        SHOTS.mkdir(parents=True, exist_ok=True)
        cls.server = Server()
        cls.server.start()
        cls.proxy = LossyProxy(cls.server.port)
        cls.admin = Api(cls.server.url, "admin", ADMIN_PASSWORD)
        for username, role in (("fw-silin", "field_worker"), ("sup-silin", "supervisor")):
            cls.admin.request("POST", "/api/v1/users", {
                "username": username, "password": PASSWORD, "role": role,
                "display_name": "思林镇调查员" if role == "field_worker" else "思林镇审核员", "scope": ["思林镇"],
            })
        cls.playwright = sync_playwright().start()
        cls.browser = cls.playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        cls.context = cls.browser.new_context(viewport={"width": 360, "height": 740}, locale="zh-CN")
        cls.page = cls.context.new_page()
        cls.page.set_default_timeout(15_000)
        cls.errors = []
        cls.page.on("pageerror", lambda error: cls.errors.append(str(error)))

    @classmethod
    def tearDownClass(cls):
        cls.context.close()
        cls.browser.close()
        cls.playwright.stop()
        cls.proxy.close()
        cls.server.close()

    def tearDown(self):
        self.assertEqual(self.errors, [], "the page threw")

    # What the worker does

    def shot(self, name, full_page=False):
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)

    def status(self):
        return self.page.get_by_role("status")

    def open_form(self):
        self.page.get_by_role("button", name=FORM, exact=True).click()
        expect(self.page.get_by_label("建档立卡户编号", exact=True)).to_be_visible()

    def fill_household(self, household_id, village="那塘村"):
        page = self.page
        page.get_by_label("建档立卡户编号", exact=True).fill(household_id)
        page.get_by_label("乡镇", exact=True).select_option(label="思林镇")
        page.get_by_label("村(社区)", exact=True).fill(village)
        page.get_by_role("radiogroup", name="是否易地扶贫搬迁户").get_by_label("否", exact=True).check()
        page.get_by_label("知情同意", exact=True).check()

    def labourer(self, n):
        return self.page.get_by_role("group", name=f"第{n}位劳动力", exact=True)

    def choose(self, scope, question, answer):
        scope.get_by_role("radiogroup", name=question, exact=True).get_by_label(answer, exact=True).check()

    def fill_working(self, n, id_number=WORKING, income="4200"):
        item = self.labourer(n)
        item.get_by_label("姓名", exact=True).fill("黄秀英")
        item.get_by_label("身份证号", exact=True).fill(id_number)
        self.choose(item, "文化程度", "初中")
        self.choose(item, "劳动能力", "完全劳动能力")
        self.choose(item, "就业状态", "稳定就业")
        self.choose(item, "务工地点", "广东")
        self.choose(item, "岗位类型", "企业务工")
        item.get_by_label("工作单位", exact=True).fill("东莞市某电子厂")
        item.get_by_label("本年务工月数", exact=True).fill("10")
        item.get_by_label("月收入(元)", exact=True).press_sequentially(income)
        expect(item.get_by_label("月收入(元)", exact=True)).to_have_value(income)
        item.get_by_role("group", name="已参加培训", exact=True).get_by_label("电工", exact=True).check()

    def submit(self):
        self.page.get_by_role("button", name="提交", exact=True).click()

    def expect_uploaded(self):
        expect(self.status()).to_have_text("全部已上传", timeout=30_000)

    def expect_sent(self):
        """The confirmation says the server has it (the bar alone may not have counted it yet)."""
        expect(self.page.get_by_text("问卷已上传到服务器。")).to_be_visible(timeout=30_000)

    def stored(self, household_id):
        return [s for s in self.admin.submissions() if s["data"]["household_id"] == household_id]

    # The journey

    def test_1_signs_in_and_sees_the_forms(self):
        page = self.page
        page.goto(self.proxy.url + "/")
        expect(page.get_by_role("button", name="登录", exact=True)).to_be_visible()
        self.shot("01-sign-in")
        page.get_by_label("用户名", exact=True).fill("fw-silin")
        page.get_by_label("密码", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="登录", exact=True).click()
        expect(page.get_by_role("button", name=FORM, exact=True)).to_be_visible()
        self.expect_uploaded()
        # The app is kept for offline use once its service worker runs the page.
        page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        page.wait_for_function("navigator.serviceWorker.controller !== null")
        self.shot("02-forms")

    def test_2_fills_a_household_is_stopped_by_a_wrong_id_then_submits(self):
        page = self.page
        self.open_form()
        self.fill_household("4510220001")
        self.fill_working(1)
        # Typing an ID number fills birth date and gender.
        first = self.labourer(1)
        expect(first.get_by_label("出生日期", exact=True)).to_have_value("1983-07-08")
        expect(first.get_by_role("radiogroup", name="性别").get_by_label("女", exact=True)).to_be_checked()
        # Questions about not working are not asked of someone who works.
        expect(first.get_by_role("radiogroup", name="未就业原因")).to_have_count(0)

        page.get_by_role("button", name="添加劳动力", exact=True).click()
        second = self.labourer(2)
        second.get_by_label("姓名", exact=True).fill("黄德明")
        second.get_by_label("身份证号", exact=True).fill(wrong_check(CARING))
        self.choose(second, "文化程度", "小学")
        self.choose(second, "劳动能力", "部分劳动能力")
        # Said to work, income typed, then corrected: income is hidden and not sent.
        self.choose(second, "就业状态", "稳定就业")
        second.get_by_label("月收入(元)", exact=True).fill("3000")
        self.choose(second, "就业状态", "未就业")
        expect(second.get_by_label("月收入(元)", exact=True)).to_have_count(0)
        self.choose(second, "未就业原因", "照顾家庭")
        self.choose(second, "就业意愿", "是")
        second.get_by_label("手机号", exact=True).fill("13877612345")
        second.get_by_role("group", name="培训意愿", exact=True).get_by_label("中式烹调", exact=True).check()
        self.choose(second, "性别", "男")
        second.get_by_label("出生日期", exact=True).fill("1965-03-12")

        self.submit()
        alert = page.get_by_role("alert")
        expect(alert).to_contain_text("第2位劳动力 · 身份证号：校验位不正确")
        expect(second.get_by_text("校验位不正确", exact=True)).to_be_visible()
        expect(second.get_by_label("身份证号", exact=True)).to_be_focused()
        self.expect_uploaded()
        self.shot("03-wrong-id-stopped")
        self.assertEqual(self.stored("4510220001"), [], "nothing may be queued or sent")

        second.get_by_label("身份证号", exact=True).fill(CARING)
        self.shot("04-household-filled", full_page=True)
        self.submit()
        expect(page.get_by_role("heading", name="已提交")).to_be_visible()
        self.expect_sent()
        self.expect_uploaded()
        self.shot("05-submitted")

        [stored] = self.stored("4510220001")
        envelope = self.admin.raw(stored["id"])
        self.assertEqual(envelope["data"], {
            "household_id": "4510220001", "township": "思林镇", "village": "那塘村", "relocated": False,
            "members": [
                {"name": "黄秀英", "id_number": WORKING, "gender": "female", "birth_date": "1983-07-08",
                 "education": "junior_secondary", "labour_capacity": "full", "employment_status": "stable",
                 "work_location": "guangdong", "job_type": "enterprise", "employer": "东莞市某电子厂",
                 "months_worked": 10, "monthly_income": 4200, "trainings_received": ["electrician"]},
                {"name": "黄德明", "id_number": CARING, "gender": "male", "birth_date": "1965-03-12",
                 "education": "primary", "labour_capacity": "partial", "employment_status": "unemployed",
                 "unemployed_reason": "caring_for_family", "willing_to_work": True, "phone": "13877612345",
                 "trainings_wanted": ["chinese_cooking"]},
            ],
            "consent": True,
        })
        meta = envelope["meta"]
        self.assertEqual(set(meta) - {"location"}, {"device_id", "app_version", "started_at", "completed_at"})
        # The current version: 2, which asks whether each labourer is still in the household.
        self.assertEqual(envelope["form_version"], "2")

    def test_3_works_with_the_server_stopped_and_syncs_once_it_is_back(self):
        page = self.page
        self.server.stop()
        try:
            page.goto(self.proxy.url + "/")
            self.open_form()
            self.fill_household("4510220002", village="百谷村")
            # Typed key by key: "3500." must stay on screen on the way to "3500.05".
            self.fill_working(1, income="3500.05")
            self.submit()
            expect(page.get_by_role("heading", name="已提交")).to_be_visible()
            expect(self.status()).to_have_text("待上传 1")
            page.get_by_role("button", name="返回问卷列表").click()
            page.reload()
            expect(self.status()).to_have_text("待上传 1")
            outbox = page.get_by_role("region", name="上传记录")
            expect(outbox.get_by_role("listitem").filter(has_text="4510220002 · 百谷村")).to_contain_text("等待")
            self.shot("06-offline-outbox")
        finally:
            self.server.start()
        page.get_by_role("button", name="同步", exact=True).click()
        self.expect_uploaded()
        [stored] = self.stored("4510220002")
        self.assertEqual(stored["data"]["members"][0]["monthly_income"], 3500.05)

    def test_4_a_lost_answer_does_not_make_a_duplicate(self):
        page = self.page
        # Two: Chromium itself sends a POST again once when a kept-alive connection dies unanswered;
        # the second loss reaches the app, which must then try again with the same bytes.
        self.proxy.batches_to_lose = 2
        self.open_form()
        self.fill_household("4510220003", village="福坪村")
        self.fill_working(1)
        self.submit()
        expect(page.get_by_role("heading", name="已提交")).to_be_visible()
        # The server stored it; the phone never heard, so it still counts it as waiting.
        deadline = time.monotonic() + 15
        while self.proxy.lost < 2 and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        self.assertEqual(self.proxy.lost, 2, "the proxy should have lost two answers")
        self.assertEqual(len(self.stored("4510220003")), 1)
        expect(self.status()).to_have_text("待上传 1")
        page.get_by_role("button", name="同步", exact=True).click()
        self.expect_uploaded()
        self.assertEqual(len(self.stored("4510220003")), 1)

    def test_5_a_refusal_by_the_server_comes_back_to_the_fields(self):
        page = self.page
        page.goto(self.proxy.url + "/")
        expect(self.status()).to_have_text("全部已上传")
        # An older copy of the app queued households the phone no longer would; the server refuses them.
        envelope = {
            "id": str(uuid.uuid4()), "form_version": "1",
            "data": {"household_id": "4510220004", "township": "思林镇", "village": "那塘村", "relocated": False,
                     "consent": True, "members": [{"name": "韦小梅", "id_number": wrong_check(WORKING), "gender": "female",
                                                   "birth_date": "1983-07-08", "education": "none", "labour_capacity": "full",
                                                   "employment_status": "unemployed", "unemployed_reason": "no_skills",
                                                   "willing_to_work": True}]},
            "meta": {"device_id": "older-app", "app_version": "0"},
        }
        outside = json.loads(json.dumps(envelope))
        outside["id"] = str(uuid.uuid4())
        outside["data"].update(household_id="4510220005", township="林逢镇")
        outside["data"]["members"][0]["id_number"] = WORKING
        for queued in (envelope, outside):
            page.evaluate("""(item) => new Promise((resolve, reject) => {
                const open = indexedDB.open('survey');
                open.onsuccess = () => {
                    const tx = open.result.transaction('outbox', 'readwrite');
                    tx.objectStore('outbox').put(item);
                    tx.oncomplete = () => { open.result.close(); resolve(); };
                    tx.onerror = () => reject(tx.error);
                };
                open.onerror = () => reject(open.error);
            })""", {"id": queued["id"], "form": "labour-survey", "username": "fw-silin",
                    "summary": queued["data"]["household_id"] + " · 那塘村",
                    "body": json.dumps(queued, ensure_ascii=False), "state": "queued", "attempts": 0,
                    "queued_at": "2026-11-29T08:00:00.000Z"})
        page.get_by_role("button", name="同步", exact=True).click()
        self.expect_uploaded()
        drafts = page.get_by_role("region", name="未完成的问卷")
        row = drafts.get_by_role("listitem").filter(has_text="4510220004")
        expect(row).to_contain_text("需要修改后重新提交")
        row.get_by_role("button", name="继续填写").click()
        expect(page.get_by_role("alert")).to_contain_text("第1位劳动力 · 身份证号：校验位不正确")
        expect(self.labourer(1).get_by_text("校验位不正确", exact=True)).to_be_visible()
        self.shot("07-server-refusal")
        self.assertEqual(self.stored("4510220004"), [])
        # A township outside the worker's places is refused whole; it comes back, said in Chinese.
        page.goto(self.proxy.url + "/")
        row = page.get_by_role("region", name="未完成的问卷").get_by_role("listitem").filter(has_text="4510220005")
        row.get_by_role("button", name="继续填写").click()
        expect(page.get_by_text("服务器没有接受这份问卷：所选乡镇不在你负责的范围内。")).to_be_visible()
        self.assertEqual(self.stored("4510220005"), [])

    def test_6_a_supervisors_comment_is_shown_and_the_household_corrected(self):
        page = self.page
        supervisor = Api(self.server.url, "sup-silin", PASSWORD)
        [first] = self.stored("4510220001")
        supervisor.request("PATCH", f"/api/v1/submissions/{first['id']}/review",
                           {"status": "has_issues", "comment": "第2位劳动力的手机号请再核实"})
        page.goto(self.proxy.url + "/")
        attention = page.get_by_role("region", name="需要处理")
        link = attention.get_by_role("link").filter(has_text="4510220001")
        expect(link).to_contain_text("有问题")
        self.shot("08-needs-attention")
        link.click()
        expect(page.get_by_text("第2位劳动力的手机号请再核实")).to_be_visible()
        self.shot("09-comment")
        page.get_by_role("button", name="修改后重新提交").click()
        second = self.labourer(2)
        expect(second.get_by_label("手机号", exact=True)).to_have_value("13877612345")
        second.get_by_label("手机号", exact=True).fill("13977612345")
        self.submit()
        expect(page.get_by_role("heading", name="已提交")).to_be_visible()
        self.expect_sent()
        self.expect_uploaded()
        corrected = [s for s in self.stored("4510220001") if s["id"] != first["id"]]
        self.assertEqual(len(corrected), 1)
        envelope = self.admin.raw(corrected[0]["id"])
        self.assertEqual(envelope["meta"]["replaces"], first["id"])
        self.assertEqual(envelope["data"]["members"][1]["phone"], "13977612345")

    def test_7_a_township_outside_the_workers_places_is_stopped_on_the_phone(self):
        page = self.page
        page.goto(self.proxy.url + "/")
        self.open_form()
        # A worker of one township has it chosen already.
        expect(page.get_by_label("乡镇", exact=True)).to_have_value("思林镇")
        self.fill_household("4510220006")
        page.get_by_label("乡镇", exact=True).select_option(label="林逢镇")
        self.fill_working(1)
        self.submit()
        expect(page.get_by_role("alert")).to_contain_text("所选乡镇不在你负责的范围内")
        expect(page.get_by_label("乡镇", exact=True)).to_be_focused()
        self.expect_uploaded()
        self.assertEqual(self.stored("4510220006"), [])

    def test_8_speaks_english_on_request(self):
        page = self.page
        page.goto(self.proxy.url + "/")
        page.get_by_role("button", name="English").click()
        expect(self.status()).to_have_text("All uploaded")
        expect(page.get_by_role("button", name="Sync", exact=True)).to_be_visible()
        page.get_by_role("button", name=FORM, exact=True).click()
        expect(page.get_by_label("Household number", exact=True)).to_be_visible()
        expect(page.get_by_role("button", name="Add Labourer", exact=True)).to_be_visible()
        expect(page.get_by_role("group", name="Labourer 1", exact=True)).to_be_visible()
        page.get_by_role("button", name="Submit", exact=True).click()
        expect(page.get_by_role("alert")).to_contain_text("Household number: is required")
        self.shot("10-english")
        page.get_by_role("button", name="中文").click()
        expect(self.status()).to_have_text("全部已上传")


if __name__ == "__main__":
    unittest.main()
