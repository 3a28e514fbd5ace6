"""The console in a real browser at 1280x800: an admin creates a field worker who then signs in on a
phone; a scoped supervisor sees only their township's rows, flags a household 有问题 with a comment,
and the field worker's app shows it. Screenshots go to target/browser-shots/."""

import json
import unittest
import urllib.request
import uuid
import zipfile

from playwright.sync_api import expect, sync_playwright

from harness import ADMIN_PASSWORD, CHROMIUM, CHROMIUM_ARGS, PASSWORD, ROOT, SHOTS, Api, start_with_admin
from test_field_app import WORKING

FORM = "田东县建档立卡贫困劳动力就业情况调查"


def household(household_id, township):
    return {
        "id": str(uuid.uuid4()), "form_version": "1",
        "data": {"household_id": household_id, "township": township, "village": "那塘村", "relocated": False,
                 "consent": True, "members": [{"name": "黄秀英", "id_number": WORKING, "gender": "female",
                                               "birth_date": "1983-07-08", "education": "junior_secondary",
                                               "labour_capacity": "full", "employment_status": "unemployed",
                                               "unemployed_reason": "caring_for_family", "willing_to_work": True}]},
        "meta": {"device_id": "test", "app_version": "test"},
    }


class Console(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server, cls.admin = start_with_admin()
        cls.admin.request("POST", "/api/v1/users", {
            "username": "sup-silin", "password": PASSWORD, "role": "supervisor",
            "display_name": "思林镇督导员", "scope": ["思林镇"]})
        cls.admin.request("POST", "/api/v1/users", {
            "username": "fw-pingma", "password": PASSWORD, "role": "field_worker",
            "display_name": "平马镇调查员", "scope": ["平马镇"]})
        pingma = Api(cls.server.url, "fw-pingma", PASSWORD)
        pingma.request("POST", "/api/v1/forms/labour-survey/submissions", household("4510220101", "平马镇"))
        cls.playwright = sync_playwright().start()
        cls.browser = cls.playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        cls.errors = []

    @classmethod
    def tearDownClass(cls):
        cls.browser.close()
        cls.playwright.stop()
        cls.server.close()

    def tearDown(self):
        self.assertEqual(self.errors, [], "a page threw")

    def open(self, width, height):
        context = self.browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN",
                                           accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.addCleanup(context.close)
        return page

    def sign_in(self, page, username, password):
        page.goto(self.server.url + "/")
        page.get_by_label("用户名", exact=True).fill(username)
        page.get_by_label("密码", exact=True).fill(password)
        page.get_by_role("button", name="登录", exact=True).click()

    def test_1_an_admin_creates_a_field_worker_who_then_signs_in(self):
        page = self.open(1280, 800)
        self.sign_in(page, "admin", ADMIN_PASSWORD)
        page.get_by_role("link", name="人员").click()
        expect(page.get_by_role("cell", name="sup-silin", exact=True)).to_be_visible()
        page.get_by_label("用户名", exact=True).fill("fw-silin")
        page.get_by_label("显示名称", exact=True).fill("思林镇调查员")
        page.get_by_label("密码", exact=True).fill("siling-2026-pw")
        page.get_by_label("角色", exact=True).select_option(label="调查员")
        page.get_by_role("group", name="乡镇").get_by_label("思林镇", exact=True).check()
        page.screenshot(path=str(SHOTS / "c01-people.png"))
        page.get_by_role("button", name="创建", exact=True).click()
        row = page.get_by_role("row").filter(has_text="fw-silin")
        expect(row).to_contain_text("思林镇")
        expect(row).to_contain_text("调查员")

        phone = self.open(360, 740)
        self.sign_in(phone, "fw-silin", "siling-2026-pw")
        expect(phone.get_by_role("button", name=FORM, exact=True)).to_be_visible()
        fw = Api(self.server.url, "fw-silin", "siling-2026-pw")
        fw.request("POST", "/api/v1/forms/labour-survey/submissions", household("4510220001", "思林镇"))
        fw.request("POST", "/api/v1/forms/labour-survey/submissions", household("4510220002", "思林镇"))

    def test_2_a_scoped_supervisor_sees_their_township_and_flags_a_household(self):
        page = self.open(1280, 800)
        self.sign_in(page, "sup-silin", PASSWORD)
        table = page.get_by_role("table")
        expect(table.get_by_role("row")).to_have_count(3)  # the header and 思林镇's two households
        for township in table.locator("tbody tr td:nth-child(2)").all_inner_texts():
            self.assertEqual(township, "思林镇")
        expect(page.get_by_text("4510220101")).to_have_count(0)
        page.screenshot(path=str(SHOTS / "c02-submissions.png"))

        page.get_by_role("link", name="4510220001").click()
        expect(page.get_by_role("heading", name="4510220001 · 那塘村")).to_be_visible()
        # 有问题 needs a reason: the comment box is asked for first.
        page.get_by_role("button", name="有问题", exact=True).click()
        expect(page.get_by_label("意见", exact=True)).to_be_focused()
        page.get_by_label("意见", exact=True).fill("请核实户主的就业状态")
        page.get_by_role("button", name="有问题", exact=True).click()
        expect(page.locator(".review .tag")).to_have_text("有问题")
        expect(page.get_by_text("请核实户主的就业状态")).to_be_visible()
        page.screenshot(path=str(SHOTS / "c03-review.png"), full_page=True)
        page.get_by_role("button", name="下一份").click()
        expect(page.get_by_role("heading", name="4510220002 · 那塘村")).to_be_visible()
        # The keyboard reviews too: A approves.
        page.keyboard.press("a")
        expect(page.locator(".review .tag")).to_have_text("已通过")
        page.keyboard.press("p")
        expect(page.get_by_role("heading", name="4510220001 · 那塘村")).to_be_visible()

        phone = self.open(360, 740)
        self.sign_in(phone, "fw-silin", "siling-2026-pw")
        attention = phone.get_by_role("region", name="需要处理")
        link = attention.get_by_role("link").filter(has_text="4510220001")
        expect(link).to_contain_text("有问题")
        link.click()
        expect(phone.get_by_text("请核实户主的就业状态")).to_be_visible()

    def test_3_an_analyst_sees_the_servers_rates_and_downloads_the_dataset(self):
        self.admin.request("POST", "/api/v1/users", {
            "username": "ana", "password": PASSWORD, "role": "analyst", "display_name": "县统计分析员"})
        analyst = Api(self.server.url, "ana", PASSWORD)
        figures = analyst.request("GET", "/api/v1/forms/labour-survey/indicators?table=members&by=township")
        rate = next(g["employment_rate"] for g in figures["groups"] if g["township"] == "思林镇")
        page = self.open(1280, 800)
        self.sign_in(page, "ana", PASSWORD)
        page.get_by_role("link", name="进度").click()
        chart = page.get_by_role("figure", name="各乡镇就业率")
        expect(chart.locator("rect title", has_text="思林镇 就业率")).to_have_text(f"思林镇 就业率 {rate:.2f}%")
        expect(chart.get_by_role("row").filter(has_text="思林镇")).to_contain_text(f"{rate:.2f}%")
        page.screenshot(path=str(SHOTS / "c04-progress.png"), full_page=True)

        page.get_by_role("link", name="下载数据").click()
        with page.expect_download() as download:
            page.get_by_role("button", name="下载数据", exact=True).click()
        saved = download.value.path()
        with zipfile.ZipFile(saved) as archive:
            names = set(archive.namelist())
            self.assertTrue({"main.csv", "members.csv", "codebook.csv", "cleaning_log.csv"} <= names, names)
            main = archive.read("main.csv").decode("utf-8-sig")
        self.assertEqual(len(main.strip().splitlines()), 1 + 3, main)
        expect(page.get_by_text("已保存 labour-survey.zip")).to_be_visible()
        page.screenshot(path=str(SHOTS / "c05-downloads.png"))

    def test_4_a_stale_correction_is_offered_a_reload(self):
        page = self.open(1280, 800)
        self.sign_in(page, "sup-silin", PASSWORD)
        page.get_by_role("link", name="4510220002").click()
        page.get_by_role("button", name="修改回答").click()
        page.get_by_label("村(社区)", exact=True).fill("百谷村")
        # Meanwhile the admin corrects the same household.
        [listed] = [s for s in self.admin.submissions() if s["data"]["household_id"] == "4510220002"]
        path = f"/api/v1/submissions/{listed['id']}"
        request = urllib.request.Request(self.server.url + path, method="GET")
        request.add_header("authorization", f"Bearer {self.admin.token}")
        with urllib.request.urlopen(request) as answer:
            etag = answer.headers["etag"]
        data = dict(listed["data"], village="福坪村")
        put = urllib.request.Request(self.server.url + path, data=json.dumps({"data": data}).encode(), method="PUT")
        for key, value in (("authorization", f"Bearer {self.admin.token}"), ("content-type", "application/json"), ("if-match", etag)):
            put.add_header(key, value)
        urllib.request.urlopen(put).close()

        page.get_by_role("button", name="保存修改").click()
        expect(page.get_by_role("alert")).to_contain_text("别人已经保存了更新的版本。")
        page.screenshot(path=str(SHOTS / "c06-stale.png"))
        page.get_by_role("button", name="重新加载").click()
        expect(page.get_by_role("heading", name="4510220002 · 福坪村")).to_be_visible()
        # Now the correction goes through, as version 3.
        page.get_by_role("button", name="修改回答").click()
        page.get_by_label("村(社区)", exact=True).fill("百谷村")
        page.get_by_role("button", name="保存修改").click()
        expect(page.get_by_role("heading", name="4510220002 · 百谷村")).to_be_visible()
        expect(page.get_by_role("table").filter(has_text="改动").get_by_role("caption")).to_have_text("改动: 第 2 版 → 第 3 版")

    def test_5_an_admin_publishes_a_version_from_a_file_and_finds_it_in_the_audit_log(self):
        schema = json.loads((ROOT / "schemas" / "labour-survey.json").read_text(encoding="utf-8"))
        schema["x-form-version"] = "3"
        schema["title"] = "田东县就业情况调查（第二轮）"
        file = SHOTS / "labour-survey-v3.json"
        file.write_text(json.dumps(schema, ensure_ascii=False), encoding="utf-8")
        page = self.open(1280, 800)
        self.sign_in(page, "admin", ADMIN_PASSWORD)
        page.get_by_role("link", name="问卷管理").click()
        page.get_by_label("问卷文件（JSON Schema）").set_input_files(str(file))
        page.get_by_role("button", name="发布", exact=True).click()
        expect(page.get_by_text("已发布 labour-survey 第 3 版")).to_be_visible()
        expect(page.get_by_role("row").filter(has_text="田东县就业情况调查（第二轮）")).to_contain_text("3 (当前)")
        page.screenshot(path=str(SHOTS / "c07-forms.png"))
        page.get_by_role("link", name="审计日志").click()
        page.get_by_label("操作", exact=True).select_option(label="发布问卷")
        page.get_by_role("button", name="筛选", exact=True).click()
        expect(page.get_by_role("row").filter(has_text="form:labour-survey@3")).to_contain_text("admin")
        self.assertIn("action=form_published", page.url)
        page.screenshot(path=str(SHOTS / "c08-audit.png"))

    def test_6_an_admin_publishes_an_excel_xlsform_and_is_told_which_cell_is_wrong(self):
        page = self.open(1280, 800)
        self.sign_in(page, "admin", ADMIN_PASSWORD)
        page.get_by_role("link", name="问卷管理").click()
        page.get_by_label("问卷文件（JSON Schema）或 Excel 问卷（XLSForm）").set_input_files(
            str(ROOT / "tests" / "xlsform" / "broken-missing-list.xlsx"))
        page.get_by_role("button", name="发布", exact=True).click()
        expect(page.get_by_role("alert")).to_contain_text("/survey/4/type: choices 工作表中没有选项列表“yes_or_no”")
        page.screenshot(path=str(SHOTS / "c09-xlsform-refused.png"))
        page.get_by_label("问卷文件（JSON Schema）或 Excel 问卷（XLSForm）").set_input_files(
            str(ROOT / "tests" / "xlsform" / "household.xls"))
        page.get_by_role("button", name="发布", exact=True).click()
        expect(page.get_by_text("已发布 household 第 1 版")).to_be_visible()
        expect(page.get_by_role("row").filter(has_text="农户登记")).to_contain_text("1 (当前)")
        page.screenshot(path=str(SHOTS / "c10-xlsform-published.png"))


if __name__ == "__main__":
    unittest.main()
