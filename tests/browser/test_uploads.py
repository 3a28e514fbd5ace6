"""Resumable uploads with a real tus client: PyPI's tuspy against the real binary, including a
kill -9 in the middle of a chunk. (tests/api/attachments.rs pins the protocol's details.)"""

import hashlib
import http.client
import io
import json
import time
import unittest
import uuid

from tusclient import client as tus
from tusclient.exceptions import TusCommunicationError, TusUploadFailed
from tusclient.uploader import Uploader

from harness import ADMIN_PASSWORD, PASSWORD, ROOT, Api, Server

MIB = 1024 * 1024
FORM = json.loads((ROOT / "tests" / "fixtures" / "evidence-form.json").read_text())


class Sha256Uploader(Uploader):
    """tuspy checksums each chunk with SHA-1 unless told otherwise; this server speaks SHA-256."""

    CHECKSUM_ALGORITHM_PAIR = ("sha256", hashlib.sha256)


def photo(size, seed=1):
    """A JPEG's first bytes, then `size` bytes that differ with `seed`."""
    body = hashlib.sha256(str(seed).encode()).digest() * (size // 32 + 1)
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01" + body[:size]


class CorruptingUploader(Sha256Uploader):
    """Sends each chunk with the checksum of other bytes, as a link that flips bits would."""

    CHECKSUM_ALGORITHM_PAIR = ("sha256", lambda chunk: hashlib.sha256(chunk + b"flipped"))


class County:
    """A server with the evidence form published and a field worker who has submitted one visit."""

    def __init__(self, **settings):
        self.server = Server(**settings)
        self.server.start()
        self.admin = Api(self.server.url, "admin", ADMIN_PASSWORD)
        self.admin.request("POST", "/api/v1/forms", {"id": "evidence", "version": "1", "title": "入户核查", "schema": FORM})
        for name in ("wei", "lan"):
            self.admin.request("POST", "/api/v1/users", {"username": name, "password": PASSWORD, "role": "field_worker", "display_name": name})
        self.worker = Api(self.server.url, "wei", PASSWORD)
        self.submission = str(uuid.uuid4())
        data = {"household_id": "4510220170001", "township": "思林镇", "house_photo": "house.jpg", "consent_signature": "signature.png"}
        self.worker.request("POST", "/api/v1/forms/evidence/submissions", {"id": self.submission, "form_version": "1", "data": data})

    def client(self, api=None):
        api = api or self.worker
        return tus.TusClient(self.server.url + "/api/v1/uploads", headers={"Authorization": f"Bearer {api.token}"})

    def uploader(self, data, url=None, api=None, name="house.jpg", kind="image/jpeg", kind_of=Sha256Uploader, **options):
        metadata = {"submission": self.submission, "filename": name, "filetype": kind}
        return kind_of(file_stream=io.BytesIO(data), client=self.client(api), url=url, chunk_size=MIB,
                       metadata=metadata, upload_checksum=True, **options)

    def kept(self, name="house.jpg"):
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        connection.request("GET", f"/api/v1/submissions/{self.submission}/attachments/{name}",
                           headers={"Authorization": f"Bearer {self.worker.token}"})
        answer = connection.getresponse()
        try:
            return answer.status, answer.read()
        finally:
            connection.close()

    def close(self):
        self.server.close()


class Uploads(unittest.TestCase):
    def setUp(self):
        self.county = County()
        self.addCleanup(self.county.close)

    def test_an_interrupted_upload_resumes_where_it_stopped(self):
        data = photo(5 * MIB + 12345)
        first = self.county.uploader(data)
        first.upload(stop_at=2 * MIB)
        self.assertEqual(first.offset, 2 * MIB)
        # The phone comes back later with only the upload's URL: tuspy asks the offset (HEAD).
        again = self.county.uploader(data, url=first.url)
        self.assertEqual(again.offset, 2 * MIB)
        again.upload()
        self.assertEqual(again.offset, len(data))
        self.assertEqual(self.county.kept(), (200, data))
        view = self.county.worker.request("GET", f"/api/v1/submissions/{self.county.submission}")
        self.assertEqual(view["attachments"][0]["present"], True)
        self.assertEqual(view["attachments"][0]["sha256"], hashlib.sha256(data).hexdigest())
        self.assertEqual(view["attachments"][1]["present"], False)

    def test_a_renamed_program_and_an_oversized_file_are_refused(self):
        program = b"MZ\x90\x00" + bytes(5000)
        with self.assertRaises(TusUploadFailed) as refused:
            self.county.uploader(program).upload()
        self.assertEqual(refused.exception.status_code, 415)
        self.assertIn(b"attachment_type_mismatch", refused.exception.response_content)
        with self.assertRaises(TusCommunicationError) as huge:
            self.county.uploader(photo(21 * MIB)).upload()
        self.assertEqual(huge.exception.status_code, 413)
        self.assertEqual(self.county.kept()[0], 404)

    def test_a_wrong_offset_and_corrupted_chunks_add_nothing(self):
        data = photo(3 * MIB)
        first = self.county.uploader(data)
        first.upload_chunk()
        # A client that lost count: the server says where it really is (409), nothing is written.
        confused = self.county.uploader(data, url=first.url)
        confused.offset = 2 * MIB
        with self.assertRaises(TusUploadFailed) as wrong:
            confused.upload_chunk()
        self.assertEqual(wrong.exception.status_code, 409)
        self.assertIn(b"upload_offset_mismatch", wrong.exception.response_content)
        corrupted = self.county.uploader(data, url=first.url, kind_of=CorruptingUploader)
        with self.assertRaises(TusUploadFailed) as flipped:
            corrupted.upload_chunk()
        self.assertEqual(flipped.exception.status_code, 460)
        resumed = self.county.uploader(data, url=first.url)
        self.assertEqual(resumed.offset, MIB)
        resumed.upload()
        self.assertEqual(self.county.kept(), (200, data))

    def test_uploads_belong_to_the_submitter(self):
        data = photo(MIB)
        mine = self.county.uploader(data)
        mine.upload_chunk()
        other = Api(self.county.server.url, "lan", PASSWORD)
        with self.assertRaises(TusCommunicationError) as theirs:
            self.county.uploader(data, url=mine.url, api=other)
        self.assertEqual(theirs.exception.status_code, 404)
        with self.assertRaises(TusCommunicationError) as create:
            self.county.uploader(data, api=other).upload()
        self.assertEqual(create.exception.status_code, 404)

    def test_a_server_killed_mid_chunk_keeps_every_acknowledged_byte(self):
        data = photo(4 * MIB + 777)
        first = self.county.uploader(data)
        first.upload(stop_at=2 * MIB)
        acknowledged = first.offset
        # Half of the next chunk is on its way when the server is killed.
        path = first.url.split(str(self.county.server.port), 1)[1]
        connection = http.client.HTTPConnection("127.0.0.1", self.county.server.port, timeout=30)
        connection.putrequest("PATCH", path)
        for key, value in {"Authorization": f"Bearer {self.county.worker.token}", "Tus-Resumable": "1.0.0",
                           "Upload-Offset": str(acknowledged), "Content-Type": "application/offset+octet-stream",
                           "Content-Length": str(MIB)}.items():
            connection.putheader(key, value)
        connection.endheaders()
        try:
            connection.send(data[acknowledged:acknowledged + MIB // 2])
        except (BrokenPipeError, ConnectionResetError):
            # The server answered before the half chunk was all sent; what follows still holds.
            pass
        self.county.server.kill()
        connection.close()
        self.county.server.start()
        self.county.worker = Api(self.county.server.url, "wei", PASSWORD)

        resumed = self.county.uploader(data, url=first.url)
        self.assertGreaterEqual(resumed.offset, acknowledged)
        resumed.upload()
        self.assertEqual(self.county.kept(), (200, data))


class Expiry(unittest.TestCase):
    def test_an_unfinished_upload_expires(self):
        county = County(SURVEY_UPLOAD_EXPIRY="1")
        self.addCleanup(county.close)
        started = county.uploader(photo(2 * MIB))
        started.upload_chunk()
        time.sleep(2.1)
        with self.assertRaises(TusCommunicationError) as expired:
            county.uploader(photo(2 * MIB), url=started.url)
        self.assertEqual(expired.exception.status_code, 410)


if __name__ == "__main__":
    unittest.main()
