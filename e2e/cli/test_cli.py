"""The AWS CLI (Debian's /usr/bin/aws), curl and our own nfyio command line
against a running store.

Each command runs with a private HOME and AWS config, so nothing from the
machine's AWS configuration leaks in; credentials come from the
NFYIO_E2E_* variables scripts/e2e.sh sets.
"""

import atexit
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

from e2e_common import (  # noqa: E402
    ACCESS_KEY,
    ENDPOINT,
    REGION,
    SECRET_KEY,
    Response,
    change_key,
    client,
    nfyio,
    tamper_signature,
    unique,
)

AWS = "/usr/bin/aws"
CURL = "/usr/bin/curl"
MiB = 1024 * 1024
SMALL = b"small file from the AWS CLI\n"

_home = tempfile.mkdtemp(prefix="nfyio-e2e-cli-home-")
atexit.register(shutil.rmtree, _home, ignore_errors=True)
_config = os.path.join(_home, "config")
with open(_config, "w") as f:
    f.write(f"[default]\nregion = {REGION}\noutput = json\ns3 =\n  addressing_style = path\n")


def aws(*args, access_key=ACCESS_KEY, secret_key=SECRET_KEY, check=True):
    """Run the AWS CLI against the store and return the finished process."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": _home,
        "AWS_CONFIG_FILE": _config,
        "AWS_SHARED_CREDENTIALS_FILE": os.path.join(_home, "credentials"),
        "AWS_ACCESS_KEY_ID": access_key,
        "AWS_SECRET_ACCESS_KEY": secret_key,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_PAGER": "",
        "LC_ALL": "C.UTF-8",
    }
    res = subprocess.run(
        [AWS, "--endpoint-url", ENDPOINT, *args], env=env, capture_output=True, text=True, timeout=120
    )
    if check and res.returncode != 0:
        raise AssertionError(f"aws {' '.join(args)}: exit {res.returncode}\n{res.stdout}\n{res.stderr}")
    return res


def aws_json(*args):
    out = aws(*args).stdout
    return json.loads(out) if out.strip() else {}


def curl(url, method="GET", data_file=None, headers=()):
    """One request with curl; returns status and body."""
    with tempfile.NamedTemporaryFile() as out:
        cmd = [CURL, "-sS", "-g", "-o", out.name, "-w", "%{http_code}", "-X", method]
        for h in headers:
            cmd += ["-H", h]
        if data_file is not None:
            # --data-binary would add a form Content-Type of its own when
            # none is given; -T sends the file as it is.
            cmd += ["-T", data_file]
        cmd.append(url)
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
        if res.returncode != 0:
            raise AssertionError(f"curl {method} failed: {res.stderr}")
        with open(out.name, "rb") as f:
            body = f.read()
    return Response(int(res.stdout), {}, body)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class CLITest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Setup and checks that are not about the CLI go through boto3:
        # every aws process costs the better part of a second.
        cls.s3 = client()
        cls.bucket = unique("e2e-cli")
        aws("s3", "mb", f"s3://{cls.bucket}")
        cls.tmp = tempfile.TemporaryDirectory()
        cls.small = os.path.join(cls.tmp.name, "small.txt")
        with open(cls.small, "wb") as f:
            f.write(SMALL)
        aws("s3", "cp", cls.small, f"s3://{cls.bucket}/docs/small.txt")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def path(self, name, content=None):
        p = os.path.join(self.tmp.name, name)
        if content is not None:
            with open(p, "wb") as f:
                f.write(content)
        return p

    def assertError(self, res, status, code):
        self.assertEqual(res.status, status, res)
        self.assertEqual(res.code, code, res)

    def assertAbsent(self, key):
        listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=key)
        self.assertNotIn(key, [o["Key"] for o in listed.get("Contents", [])])

    def put(self, key, body=SMALL):
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)

    # --- aws s3 presign ------------------------------------------------

    def test_aws_presign_get(self):
        url = aws("s3", "presign", f"s3://{self.bucket}/docs/small.txt", "--expires-in", "60").stdout.strip()
        self.assertIn("X-Amz-Expires=60", url)
        res = curl(url)
        self.assertEqual(res.status, 200, res)
        self.assertEqual(res.body, SMALL)

        self.assertError(curl(tamper_signature(url)), 403, "SignatureDoesNotMatch")
        self.put("docs/other.txt", b"other")
        self.assertError(curl(change_key(url, "docs/small.txt", "docs/other.txt")), 403, "SignatureDoesNotMatch")

    def test_expired_urls(self):
        aws_url = aws("s3", "presign", f"s3://{self.bucket}/docs/small.txt", "--expires-in", "1").stdout.strip()
        get_url = nfyio("presign", "--expires-in", "1", f"s3://{self.bucket}/docs/small.txt").strip()
        put_url = nfyio("presign", "--method", "put", "--expires-in", "1", f"s3://{self.bucket}/up/late.txt").strip()
        time.sleep(2.1)
        for name, method, url in [("aws get", "GET", aws_url), ("nfyio get", "GET", get_url), ("nfyio put", "PUT", put_url)]:
            with self.subTest(name):
                res = curl(url, method=method, data_file=self.small if method == "PUT" else None)
                self.assertError(res, 403, "AccessDenied")
                self.assertRegex(res.message, "(?i)expired")
        self.assertAbsent("up/late.txt")

    # --- aws s3 high-level commands -------------------------------------

    def test_cp_20mib_up_and_down(self):
        src = self.path("20mib.bin")
        with open(src, "wb") as f:
            for _ in range(20):
                f.write(os.urandom(MiB))
        # Above the CLI's 8 MiB threshold: a multipart upload of three parts.
        aws("s3", "cp", src, f"s3://{self.bucket}/big/20mib.bin")
        head = aws_json("s3api", "head-object", "--bucket", self.bucket, "--key", "big/20mib.bin")
        self.assertEqual(head["ContentLength"], 20 * MiB)
        self.assertRegex(head["ETag"], r'^"[0-9a-f]{32}-3"$')

        dst = self.path("20mib.down")
        aws("s3", "cp", f"s3://{self.bucket}/big/20mib.bin", dst)
        self.assertEqual(sha256_file(dst), sha256_file(src))

    def test_ls(self):
        self.put("ls/a.txt")
        self.put("ls/sub/b.txt")

        buckets = aws("s3", "ls").stdout
        self.assertIn(f" {self.bucket}\n", buckets)

        top = aws("s3", "ls", f"s3://{self.bucket}/ls/").stdout.splitlines()
        self.assertEqual(len(top), 2, top)
        self.assertRegex(top[0], r"^\s+PRE sub/$")
        self.assertRegex(top[1], r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+28 a\.txt$")

        rec = aws("s3", "ls", "--recursive", f"s3://{self.bucket}/ls/").stdout
        self.assertEqual([line.split()[-1] for line in rec.splitlines()], ["ls/a.txt", "ls/sub/b.txt"])

        missing = aws("s3", "ls", f"s3://{unique('e2e-cli-missing')}/", check=False)
        self.assertNotEqual(missing.returncode, 0)
        self.assertIn("NoSuchBucket", missing.stderr)

    def test_rm_recursive(self):
        tree = os.path.join(self.tmp.name, "tree")
        os.makedirs(os.path.join(tree, "x", "y"))
        for rel in ("1.txt", "x/2.txt", "x/y/3.txt"):
            with open(os.path.join(tree, rel), "w") as f:
                f.write(rel)
        aws("s3", "cp", "--recursive", tree, f"s3://{self.bucket}/rm/")
        self.put("rmkeep/keep.txt")
        listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix="rm/")
        self.assertEqual(sorted(o["Key"] for o in listed["Contents"]), ["rm/1.txt", "rm/x/2.txt", "rm/x/y/3.txt"])

        out = aws("s3", "rm", "--recursive", f"s3://{self.bucket}/rm/").stdout
        self.assertEqual(out.count("delete: "), 3, out)
        listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix="rm")
        self.assertEqual([o["Key"] for o in listed["Contents"]], ["rmkeep/keep.txt"])

    def test_sync_uploads_only_changes(self):
        tree = os.path.join(self.tmp.name, "synced")
        os.makedirs(tree)
        for name in ("a.txt", "b.txt"):
            with open(os.path.join(tree, name), "w") as f:
                f.write(name)
        first = aws("s3", "sync", tree, f"s3://{self.bucket}/sync/").stdout
        self.assertEqual(first.count("upload: "), 2, first)
        # Same sizes, remote copies newer: nothing to do. This needs sizes
        # and Last-Modified in listings the CLI can parse.
        again = aws("s3", "sync", tree, f"s3://{self.bucket}/sync/").stdout
        self.assertEqual(again.strip(), "")
        with open(os.path.join(tree, "b.txt"), "w") as f:
            f.write("b, longer now")
        changed = aws("s3", "sync", tree, f"s3://{self.bucket}/sync/").stdout
        self.assertEqual(changed.count("upload: "), 1, changed)
        self.assertIn("sync/b.txt", changed)

    def test_list_object_versions(self):
        self.put("ver/one.txt")
        self.put("ver/two.txt")
        out = aws_json("s3api", "list-object-versions", "--bucket", self.bucket, "--prefix", "ver/")
        versions = out["Versions"]
        self.assertEqual([v["Key"] for v in versions], ["ver/one.txt", "ver/two.txt"])
        for v in versions:
            # An unversioned bucket has one "null" version per key.
            self.assertEqual(v["VersionId"], "null")
            self.assertTrue(v["IsLatest"])
            self.assertEqual(v["Size"], 28)
            self.assertEqual(v["ETag"], '"%s"' % hashlib.md5(SMALL).hexdigest())
        self.assertNotIn("DeleteMarkers", out)

    # --- nfyio presign ---------------------------------------------------

    def test_nfyio_presign_get_and_put(self):
        url = nfyio("presign", f"s3://{self.bucket}/docs/small.txt").strip()
        res = curl(url)
        self.assertEqual(res.status, 200, res)
        self.assertEqual(res.body, SMALL)

        url = nfyio(
            "presign", "--method", "put", "--content-type", "application/pdf", "--expires-in", "300",
            f"s3://{self.bucket}/up/doc.pdf",
        ).strip()
        pdf = self.path("doc.pdf", b"%PDF-1.4\n%%EOF\n")
        self.assertError(curl(url, "PUT", pdf, ["Content-Type: image/png"]), 403, "SignatureDoesNotMatch")
        self.assertError(curl(tamper_signature(url), "PUT", pdf, ["Content-Type: application/pdf"]), 403, "SignatureDoesNotMatch")
        self.assertError(
            curl(change_key(url, "up/doc.pdf", "up/other.pdf"), "PUT", pdf, ["Content-Type: application/pdf"]),
            403,
            "SignatureDoesNotMatch",
        )
        self.assertAbsent("up/doc.pdf")
        self.assertAbsent("up/other.pdf")
        res = curl(url, "PUT", pdf, ["Content-Type: application/pdf"])
        self.assertEqual(res.status, 200, res)
        head = self.s3.head_object(Bucket=self.bucket, Key="up/doc.pdf")
        self.assertEqual(head["ContentType"], "application/pdf")

    def test_nfyio_presign_content_length(self):
        url = nfyio("presign", "--method", "put", "--content-length", "28", f"s3://{self.bucket}/up/sized.txt").strip()
        longer = self.path("longer.txt", b"x" * 29)
        self.assertError(curl(url, "PUT", longer), 403, "SignatureDoesNotMatch")
        self.assertAbsent("up/sized.txt")
        res = curl(url, "PUT", self.small)
        self.assertEqual(res.status, 200, res)

    def test_nfyio_presign_once(self):
        get_url = nfyio("presign", "--once", f"s3://{self.bucket}/docs/small.txt").strip()
        self.assertEqual(curl(get_url).status, 200)
        res = curl(get_url)
        self.assertError(res, 403, "AccessDenied")

        put_url = nfyio("presign", "--once", "--method", "put", f"s3://{self.bucket}/up/once.txt").strip()
        first = self.path("first.txt", b"first")
        self.assertEqual(curl(put_url, "PUT", first).status, 200)
        second = self.path("second.txt", b"second")
        self.assertError(curl(put_url, "PUT", second), 403, "AccessDenied")
        got = self.s3.get_object(Bucket=self.bucket, Key="up/once.txt")
        self.assertEqual(got["Body"].read(), b"first")

    def test_disabled_key(self):
        created = json.loads(
            nfyio("keys", "create", "--name", "e2e-cli-disable", "--scopes", "read:objects,write:objects", "--json")
        )
        key_id, secret = created["accessKeyId"], created["secretAccessKey"]
        get_url = nfyio("presign", f"s3://{self.bucket}/docs/small.txt", access_key=key_id, secret_key=secret).strip()
        put_url = nfyio(
            "presign", "--method", "put", f"s3://{self.bucket}/up/by-key.txt", access_key=key_id, secret_key=secret
        ).strip()
        self.assertEqual(curl(get_url).status, 200)
        self.assertEqual(curl(put_url, "PUT", self.small).status, 200)
        # The key works for the CLI too, within its scopes.
        aws("s3", "cp", f"s3://{self.bucket}/docs/small.txt", self.path("by-key.down"), access_key=key_id, secret_key=secret)

        nfyio("keys", "disable", key_id)

        # A disabled key is refused the way S3 refuses an inactive one.
        self.assertError(curl(get_url), 403, "InvalidAccessKeyId")
        self.assertError(curl(put_url, "PUT", self.small), 403, "InvalidAccessKeyId")
        res = aws("s3", "cp", f"s3://{self.bucket}/docs/small.txt", self.path("denied.down"),
                  access_key=key_id, secret_key=secret, check=False)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("403", res.stderr)
        self.assertEqual(self.s3.get_object(Bucket=self.bucket, Key="up/by-key.txt")["Body"].read(), SMALL)


if __name__ == "__main__":
    unittest.main()
