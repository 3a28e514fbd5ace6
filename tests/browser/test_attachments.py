"""Photos, signatures and voice notes in a real browser: the field worker takes them on the phone
(a photo downscaled, a signature drawn, a note recorded from Chromium's fake microphone), submits
with the server stopped, and the files follow the questionnaire with the app's own tus client; a
reload in the middle of the photo's upload loses nothing. A supervisor then sees the photo and
plays the recording in the console. Screenshots go to target/browser-shots/."""

import base64
import hashlib
import json
import time
import unittest
import urllib.request

from playwright.sync_api import expect

from harness import PASSWORD, ROOT, SHOTS, Api, Browser, start_with_admin

FORM = json.loads((ROOT / "tests" / "fixtures" / "evidence-form.json").read_text())
TITLE = FORM["title"]
# A microphone that plays a tone, allowed without asking.
MEDIA_ARGS = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]

# A 3200×2400 camera photo of noise (which JPEG cannot shrink much), made by the browser itself.
CAMERA_PHOTO = """async () => {
  const canvas = document.createElement('canvas');
  canvas.width = 3200; canvas.height = 2400;
  const context = canvas.getContext('2d');
  const noise = context.createImageData(3200, 2400);
  crypto.getRandomValues(new Uint8Array(65536));
  for (let i = 0; i < noise.data.length; i += 65536) crypto.getRandomValues(noise.data.subarray(i, i + 65536));
  for (let i = 3; i < noise.data.length; i += 4) noise.data[i] = 255;
  context.putImageData(noise, 0, 0);
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', 0.92));
  const bytes = new Uint8Array(await blob.arrayBuffer());
  let text = '';
  for (let i = 0; i < bytes.length; i += 8192) text += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return btoa(text);
}"""

# The phone's files as IndexedDB keeps them (without their bytes).
PHONE_FILES = """() => new Promise((resolve, reject) => {
  const open = indexedDB.open('survey');
  open.onerror = reject;
  open.onsuccess = () => {
    const all = open.result.transaction('files').objectStore('files').getAll();
    all.onsuccess = () => resolve(all.result.map(({ blob, ...file }) => file));
  };
})"""


# Whether the open draft's house photo answer is the newest photo taken.
DRAFT_HAS_NEWEST_PHOTO = """() => new Promise((resolve) => {
  const open = indexedDB.open('survey');
  open.onsuccess = () => {
    const tx = open.result.transaction(['drafts', 'files']);
    const drafts = tx.objectStore('drafts').getAll();
    const files = tx.objectStore('files').getAll();
    tx.oncomplete = () => {
      const photos = files.result.filter((f) => f.name.startsWith('house_photo') && f.state === 'local')
        .sort((a, b) => a.added_at.localeCompare(b.added_at));
      const newest = photos[photos.length - 1];
      resolve(photos.length > 1 && drafts.result.some((d) => d.answers?.house_photo === newest.name));
    };
  };
})"""


def jpeg_size(data):
    """(width, height) from a JPEG's start-of-frame marker."""
    i = 2
    while i < len(data):
        marker, length = data[i + 1], int.from_bytes(data[i + 2:i + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2):
            return int.from_bytes(data[i + 7:i + 9], "big"), int.from_bytes(data[i + 5:i + 7], "big")
        i += 2 + length
    raise AssertionError("no frame header")


class Attachments(unittest.TestCase):
    """One phone, in order: each step starts where the one before it left off."""

    @classmethod
    def setUpClass(cls):
        cls.server, cls.admin = start_with_admin()
        cls.admin.request("POST", "/api/v1/forms", {"id": "evidence", "version": "1", "title": TITLE, "schema": FORM})
        for username, role in (("fw-files", "field_worker"), ("sup-files", "supervisor")):
            cls.admin.request("POST", "/api/v1/users", {"username": username, "password": PASSWORD, "role": role,
                                                         "display_name": username, "scope": ["思林镇"]})
        cls.chromium = Browser(*MEDIA_ARGS)
        cls.errors = cls.chromium.errors
        cls.context, cls.page = cls.chromium.page(360, 740)
        cls.context.grant_permissions(["microphone"], origin=cls.server.url)

    @classmethod
    def tearDownClass(cls):
        cls.context.close()
        cls.chromium.close()
        cls.server.close()

    def tearDown(self):
        self.assertEqual(self.errors, [], "the page threw")

    def shot(self, name, page=None, full_page=True):
        (page or self.page).screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)

    def phone_files(self):
        return {f["name"].split("-")[0]: f for f in self.page.evaluate(PHONE_FILES)}

    def test_1_the_worker_takes_a_photo_signs_and_records_on_the_phone(self):
        page = self.page
        page.goto(self.server.url)
        page.get_by_label("用户名", exact=True).fill("fw-files")
        page.get_by_label("密码", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="登录", exact=True).click()
        page.get_by_role("button", name=TITLE, exact=True).click()
        page.get_by_label("建档立卡户编号", exact=True).fill("4510220170001")

        photo = base64.b64decode(page.evaluate(CAMERA_PHOTO))
        self.assertEqual(jpeg_size(photo), (3200, 2400))
        page.get_by_label("住房照片", exact=True).set_input_files(
            files=[{"name": "IMG_0001.jpg", "mimeType": "image/jpeg", "buffer": photo}])
        expect(page.get_by_role("img", name="住房照片（已拍）")).to_be_visible()

        pad = page.get_by_role("img", name="户主签名：在此框内签名")
        page.get_by_role("button", name="保存签名", exact=True).click()
        expect(page.get_by_text("请先在框内签名")).to_be_visible()
        box = pad.bounding_box()
        page.mouse.move(box["x"] + 30, box["y"] + 100)
        page.mouse.down()
        for step in range(1, 20):
            page.mouse.move(box["x"] + 30 + step * 12, box["y"] + 100 - (step % 5) * 12, steps=2)
        page.mouse.up()
        page.get_by_role("button", name="保存签名", exact=True).click()
        expect(page.get_by_role("img", name="户主签名（已拍）")).to_be_visible()
        expect(page.get_by_role("button", name="重新签名", exact=True)).to_be_visible()

        voice = page.get_by_role("group", name="语音备注", exact=True)
        voice.get_by_role("button", name="开始录音", exact=True).click()
        expect(voice.get_by_text("正在录音")).to_be_visible()
        time.sleep(1.5)
        voice.get_by_role("button", name="停止录音", exact=True).click()
        expect(page.get_by_label("语音备注（录音）", exact=True)).to_be_visible()
        self.shot("files-1-taken")

        files = self.phone_files()
        self.assertEqual(sorted(files), ["consent_signature", "house_photo", "voice_note"])
        self.assertEqual({f["state"] for f in files.values()}, {"local"})
        self.assertEqual(files["house_photo"]["type"], "image/jpeg")
        self.assertEqual(files["voice_note"]["type"], "audio/webm")

    def test_2_files_follow_the_questionnaire_and_a_reload_mid_file_loses_nothing(self):
        page = self.page
        page.get_by_role("radiogroup", name="乡镇").get_by_label("思林镇", exact=True).check()
        self.server.stop()
        page.get_by_role("button", name="提交", exact=True).click()
        expect(page.get_by_text("问卷已保存到待上传列表，有网络时自动上传。")).to_be_visible()
        expect(page.get_by_text("3 个文件待上传")).to_be_visible()
        self.assertEqual({f["state"] for f in self.phone_files().values()}, {"waiting"})

        # The village link: 60 KB/s up. The photo (over 1 MiB of noise) takes a while.
        network = self.context.new_cdp_session(page)
        network.send("Network.enable")
        network.send("Network.emulateNetworkConditions", {"offline": False, "latency": 100, "downloadThroughput": 200_000, "uploadThroughput": 60_000})
        self.server.start()
        page.get_by_role("button", name="同步", exact=True).click()

        worker = Api(self.server.url, "fw-files", PASSWORD)
        deadline = time.monotonic() + 60
        partial = None
        while time.monotonic() < deadline and partial is None:
            photo = self.phone_files()["house_photo"]
            if photo.get("url"):
                request = urllib.request.Request(self.server.url + photo["url"], method="HEAD", headers={
                    "Authorization": f"Bearer {worker.token}", "Tus-Resumable": "1.0.0"})
                with urllib.request.urlopen(request) as answer:
                    offset = int(answer.headers["upload-offset"])
                if 0 < offset < photo["size"]:
                    partial = offset
            time.sleep(0.1)
        self.assertIsNotNone(partial, "the photo's upload was never seen half-way")
        page.screenshot(path=str(SHOTS / "files-2-uploading.png"))
        page.reload()
        network.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
        page.get_by_role("button", name="同步", exact=True).click()
        expect(page.get_by_text("个文件待上传")).to_have_count(0, timeout=60_000)
        files = self.phone_files()
        self.assertEqual({f["state"] for f in files.values()}, {"sent"})
        self.shot("files-3-sent")

        # The server has exactly the phone's bytes (it checked each against the phone's SHA-256).
        [submission] = self.admin.submissions("evidence")
        view = self.admin.request("GET", f"/api/v1/submissions/{submission['id']}")
        by_name = {a["name"]: a for a in view["attachments"]}
        for phone in files.values():
            self.assertTrue(by_name[phone["name"]]["present"], phone["name"])
            self.assertEqual(by_name[phone["name"]]["sha256"], phone["sha256"])
        photo_name = files["house_photo"]["name"]
        request = urllib.request.Request(f"{self.server.url}/api/v1/submissions/{submission['id']}/attachments/{photo_name}",
                                         headers={"Authorization": f"Bearer {self.admin.token}"})
        with urllib.request.urlopen(request) as answer:
            kept = answer.read()
        self.assertEqual(hashlib.sha256(kept).hexdigest(), files["house_photo"]["sha256"])
        self.assertEqual(jpeg_size(kept), (1600, 1200))
        metrics = urllib.request.urlopen(self.server.url + "/metrics").read().decode()
        resumed = [line for line in metrics.splitlines() if line.startswith("survey_uploads_resumed_total")]
        self.assertGreaterEqual(int(float(resumed[0].split()[-1])), 1, metrics)

    def test_3_the_supervisor_sees_the_photo_and_plays_the_recording(self):
        context, page = self.chromium.page(1280, 800)
        self.addCleanup(context.close)
        page.goto(self.server.url)
        page.get_by_label("用户名", exact=True).fill("sup-files")
        page.get_by_label("密码", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="登录", exact=True).click()
        expect(page.get_by_role("link", name="问卷记录")).to_be_visible()
        [submission] = self.admin.submissions("evidence")
        page.goto(f"{self.server.url}/console/submissions/{submission['id']}")
        files = self.phone_files()
        photo = page.get_by_role("img", name=files["house_photo"]["name"], exact=True)
        expect(photo).to_be_visible()
        self.assertGreater(photo.evaluate("(img) => img.naturalWidth"), 0)
        recording = page.get_by_label(files["voice_note"]["name"], exact=True)
        expect(recording).to_be_visible()
        self.assertGreater(recording.evaluate("""(audio) => new Promise((resolve) => {
          if (audio.readyState >= 1) resolve(audio.duration); else audio.onloadedmetadata = () => resolve(audio.duration);
        })"""), 0)
        with page.expect_download() as download:
            page.get_by_role("button", name=f"下载 {files['house_photo']['name']}", exact=True).click()
        self.assertEqual(download.value.suggested_filename, files["house_photo"]["name"])
        self.shot("files-4-console", page)
        page.get_by_label("意见", exact=True).fill("照片太暗，请补拍一张住房照片")
        page.get_by_role("button", name="有问题", exact=True).click()
        expect(page.locator(".review .tag")).to_have_text("有问题")

    def test_4_a_correction_takes_the_files_along_and_a_recording_under_way_counts(self):
        page = self.page
        page.goto(self.server.url)
        page.get_by_role("link", name="4510220170001").click()
        expect(page.get_by_text("照片太暗，请补拍一张住房照片")).to_be_visible()
        page.get_by_role("button", name="修改后重新提交", exact=True).click()
        expect(page.get_by_role("img", name="户主签名（已拍）")).to_be_visible()
        expect(page.get_by_label("语音备注（录音）", exact=True)).to_be_visible()
        photo = base64.b64decode(page.evaluate(CAMERA_PHOTO))
        page.get_by_label("住房照片", exact=True).set_input_files(
            files=[{"name": "IMG_0002.jpg", "mimeType": "image/jpeg", "buffer": photo}])
        # The new photo is in the draft once its name is the answer (downscaling takes a moment).
        deadline = time.monotonic() + 15
        while not page.evaluate(DRAFT_HAS_NEWEST_PHOTO) and time.monotonic() < deadline:
            time.sleep(0.1)
        # A new voice note, still recording when 提交 is tapped: it is stopped, kept and sent.
        voice = page.get_by_role("group", name="语音备注", exact=True)
        voice.get_by_role("button", name="重新录音", exact=True).click()
        voice.get_by_role("button", name="开始录音", exact=True).click()
        expect(voice.get_by_text("正在录音")).to_be_visible()
        time.sleep(1)
        page.get_by_role("button", name="提交", exact=True).click()
        expect(page.get_by_text("问卷已上传到服务器。")).to_be_visible(timeout=30_000)
        expect(page.get_by_text("个文件待上传")).to_have_count(0, timeout=30_000)
        first, second = sorted(self.admin.submissions("evidence"), key=lambda s: s["received_at"])
        view = self.admin.request("GET", f"/api/v1/submissions/{second['id']}")
        self.assertEqual(view["meta"]["replaces"], first["id"])
        self.assertEqual([a["present"] for a in view["attachments"]], [True, True, True])
        old = {a["name"]: a for a in self.admin.request("GET", f"/api/v1/submissions/{first['id']}")["attachments"]}
        new = {a["name"]: a for a in view["attachments"]}
        # The signature is the same file; the photo and the voice note are new.
        self.assertEqual(len(set(old) & set(new)), 1, (sorted(old), sorted(new)))
        self.assertTrue(all(a["size"] > 0 for a in view["attachments"]))
        self.shot("files-5-corrected")


if __name__ == "__main__":
    unittest.main()
