"""Presigned URLs and POST forms minted by boto3, used with urllib."""

import hashlib
import time
import unittest
import urllib.parse
import xml.etree.ElementTree as ET

from e2e_common import (
    ENDPOINT,
    client,
    change_key,
    http,
    multipart_form,
    tamper_signature,
    unique,
)

PDF = b"%PDF-1.4\n% nfyio e2e python\n%%EOF\n"


def signed_headers(url):
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    return q["X-Amz-SignedHeaders"][0].split(";")


class PresignedURLTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s3 = client()
        cls.bucket = unique("e2e-py-presign")
        cls.s3.create_bucket(Bucket=cls.bucket)
        cls.s3.put_object(Bucket=cls.bucket, Key="dir/hello.txt", Body=b"hello from boto3\n")
        cls.s3.put_object(Bucket=cls.bucket, Key="dir/other.txt", Body=b"other object")

    def url(self, op, sigv4=True, expires=300, **params):
        return client(sigv4=sigv4).generate_presigned_url(
            op, Params={"Bucket": self.bucket, **params}, ExpiresIn=expires
        )

    def assertError(self, res, status, code):
        self.assertEqual(res.status, status, res)
        self.assertEqual(res.code, code, res)

    def assertAbsent(self, key):
        with self.assertRaises(self.s3.exceptions.ClientError) as cm:
            self.s3.head_object(Bucket=self.bucket, Key=key)
        self.assertEqual(cm.exception.response["Error"]["Code"], "404")

    def test_get_sigv4(self):
        url = self.url("get_object", Key="dir/hello.txt")
        self.assertIn("X-Amz-Signature=", url)
        res = http("GET", url)
        self.assertEqual(res.status, 200, res)
        self.assertEqual(res.body, b"hello from boto3\n")

    def test_get_default_signature(self):
        # Debian's boto3 presigns with SigV2 here unless told otherwise;
        # existing applications do exactly that.
        url = self.url("get_object", sigv4=False, Key="dir/hello.txt", ResponseContentDisposition="inline")
        res = http("GET", url)
        self.assertEqual(res.status, 200, res)
        self.assertEqual(res.body, b"hello from boto3\n")
        self.assertEqual(res.headers["Content-Disposition"], "inline")

    def test_get_refused(self):
        url = self.url("get_object", Key="dir/hello.txt")
        for name, bad in [
            ("signature altered", tamper_signature(url)),
            ("key altered", change_key(url, "dir/hello.txt", "dir/other.txt")),
        ]:
            with self.subTest(name):
                res = http("GET", bad)
                self.assertError(res, 403, "SignatureDoesNotMatch")
                self.assertNotIn(b"other object", res.body)
        v2 = self.url("get_object", sigv4=False, Key="dir/hello.txt")
        with self.subTest("sigv2 signature altered"):
            self.assertError(http("GET", tamper_signature(v2)), 403, "SignatureDoesNotMatch")
        with self.subTest("sigv2 key altered"):
            self.assertError(http("GET", change_key(v2, "dir/hello.txt", "dir/other.txt")), 403, "SignatureDoesNotMatch")

    def test_expired(self):
        # boto3 cannot sign with a past date: mint for one second and wait.
        urls = {
            "get sigv4": ("GET", self.url("get_object", expires=1, Key="dir/hello.txt"), None),
            "get sigv2": ("GET", self.url("get_object", sigv4=False, expires=1, Key="dir/hello.txt"), None),
            "put sigv4": ("PUT", self.url("put_object", expires=1, Key="up/expired.bin"), b"late"),
        }
        time.sleep(2.1)
        for name, (method, url, body) in urls.items():
            with self.subTest(name):
                res = http(method, url, body=body)
                self.assertError(res, 403, "AccessDenied")
                self.assertRegex(res.message, "(?i)expired")
        self.assertAbsent("up/expired.bin")

    def test_put_content_type_is_signed(self):
        key = "up/doc.pdf"
        url = self.url("put_object", Key=key, ContentType="application/pdf")
        self.assertIn("content-type", signed_headers(url))

        res = http("PUT", url, body=PDF, headers={"Content-Type": "image/png"})
        self.assertError(res, 403, "SignatureDoesNotMatch")
        self.assertAbsent(key)

        res = http("PUT", url, body=PDF, headers={"Content-Type": "application/pdf"})
        self.assertEqual(res.status, 200, res)
        head = self.s3.head_object(Bucket=self.bucket, Key=key)
        self.assertEqual(head["ContentType"], "application/pdf")
        self.assertEqual(head["ContentLength"], len(PDF))

    def test_put_content_type_default_signature(self):
        key = "up/v2.pdf"
        url = self.url("put_object", sigv4=False, Key=key, ContentType="application/pdf")
        res = http("PUT", url, body=PDF, headers={"Content-Type": "text/plain"})
        self.assertError(res, 403, "SignatureDoesNotMatch")
        self.assertAbsent(key)
        res = http("PUT", url, body=PDF, headers={"Content-Type": "application/pdf"})
        self.assertEqual(res.status, 200, res)
        self.assertEqual(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read(), PDF)

    def test_put_content_length_is_signed(self):
        key = "up/sized.bin"
        url = self.url("put_object", Key=key, ContentLength=10)
        self.assertIn("content-length", signed_headers(url))
        # urllib sends the real length of the body, which differs from the
        # signed one: the canonical request no longer matches.
        res = http("PUT", url, body=b"x" * 11)
        self.assertError(res, 403, "SignatureDoesNotMatch")
        self.assertAbsent(key)
        res = http("PUT", url, body=b"0123456789")
        self.assertEqual(res.status, 200, res)
        self.assertEqual(self.s3.head_object(Bucket=self.bucket, Key=key)["ContentLength"], 10)

    def test_put_refused(self):
        key = "up/target.bin"
        url = self.url("put_object", Key=key)
        for name, bad in [
            ("signature altered", tamper_signature(url)),
            ("key altered", change_key(url, key, "up/elsewhere.bin")),
        ]:
            with self.subTest(name):
                self.assertError(http("PUT", bad, body=b"nope"), 403, "SignatureDoesNotMatch")
        self.assertAbsent(key)
        self.assertAbsent("up/elsewhere.bin")
        res = http("PUT", url, body=b"yes")
        self.assertEqual(res.status, 200, res)


class PresignedPostTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s3 = client()
        cls.bucket = unique("e2e-py-post")
        cls.s3.create_bucket(Bucket=cls.bucket)

    def post(self, form, content, content_type="text/plain", filename="notes.txt"):
        body, ctype = multipart_form(form["fields"], "file", filename, content, content_type)
        res = http("POST", form["url"], body=body, headers={"Content-Type": ctype})
        if res.code == "NotImplemented":
            self.skipTest("the store does not take POST-policy uploads yet (NotImplemented)")
        return res

    def test_post_upload(self):
        form = client().generate_presigned_post(
            self.bucket,
            "forms/${filename}",
            Fields={"Content-Type": "text/plain"},
            Conditions=[{"Content-Type": "text/plain"}, ["content-length-range", 1, 1024]],
            ExpiresIn=300,
        )
        self.assertTrue(form["url"].startswith(ENDPOINT), form["url"])
        res = self.post(form, b"uploaded through a form\n")
        self.assertEqual(res.status, 204, res)
        got = self.s3.get_object(Bucket=self.bucket, Key="forms/notes.txt")
        self.assertEqual(got["Body"].read(), b"uploaded through a form\n")
        self.assertEqual(got["ContentType"], "text/plain")

    def test_post_upload_status_201(self):
        form = client().generate_presigned_post(
            self.bucket,
            "forms/created.txt",
            Fields={"success_action_status": "201"},
            Conditions=[{"success_action_status": "201"}],
            ExpiresIn=300,
        )
        res = self.post(form, b"created\n")
        self.assertEqual(res.status, 201, res)
        doc = ET.fromstring(res.body)
        self.assertEqual(doc.tag, "PostResponse")
        self.assertEqual(doc.findtext("Bucket"), self.bucket)
        self.assertEqual(doc.findtext("Key"), "forms/created.txt")
        self.assertEqual(doc.findtext("ETag"), '"%s"' % hashlib.md5(b"created\n").hexdigest())
        # S3 answers the object's absolute URL, its key percent-encoded.
        location = doc.findtext("Location")
        prefix = f"{ENDPOINT}/{self.bucket}/"
        self.assertTrue(location.startswith(prefix), location)
        self.assertEqual(urllib.parse.unquote(location[len(prefix):]), "forms/created.txt")

    def test_post_upload_default_signature(self):
        # Without signature_version, Debian's boto3 signs the policy with
        # SigV2 (AWSAccessKeyId + signature fields).
        form = client(sigv4=False).generate_presigned_post(self.bucket, "forms/v2.txt", ExpiresIn=300)
        self.assertIn("AWSAccessKeyId", form["fields"])
        res = self.post(form, b"v2 form\n")
        self.assertEqual(res.status, 204, res)
        self.assertEqual(self.s3.get_object(Bucket=self.bucket, Key="forms/v2.txt")["Body"].read(), b"v2 form\n")

    def test_post_policy_violations(self):
        form = client().generate_presigned_post(
            self.bucket,
            "forms/limited.txt",
            Conditions=[["content-length-range", 1, 16]],
            ExpiresIn=300,
        )
        res = self.post(form, b"x" * 17)
        self.assertError(res, 400, "EntityTooLarge")
        fields = dict(form["fields"], key="forms/not-in-policy.txt")
        res = self.post({"url": form["url"], "fields": fields}, b"small")
        self.assertError(res, 403, "AccessDenied")
        signed = dict(form["fields"])
        signed["x-amz-signature"] = ("0" if signed["x-amz-signature"][0] != "0" else "1") + signed["x-amz-signature"][1:]
        res = self.post({"url": form["url"], "fields": signed}, b"small")
        self.assertError(res, 403, "SignatureDoesNotMatch")
        for key in ("forms/limited.txt", "forms/not-in-policy.txt"):
            with self.assertRaises(self.s3.exceptions.ClientError):
                self.s3.head_object(Bucket=self.bucket, Key=key)

    def assertError(self, res, status, code):
        self.assertEqual(res.status, status, res)
        self.assertEqual(res.code, code, res)


if __name__ == "__main__":
    unittest.main()
