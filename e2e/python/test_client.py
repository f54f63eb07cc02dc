"""Everyday boto3 operations against the store, with default settings."""

import hashlib
import os
import tempfile
import unittest

from boto3.s3.transfer import TransferConfig

from e2e_common import client, unique

MiB = 1024 * 1024


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class ClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s3 = client()
        cls.bucket = unique("e2e-py-client")
        cls.s3.create_bucket(Bucket=cls.bucket)

    def test_put_get_list_delete(self):
        keys = ["a/1.txt", "a/2.txt", "b.txt", "c/deep/3.txt"]
        for key in keys:
            out = self.s3.put_object(
                Bucket=self.bucket, Key=f"crud/{key}", Body=key.encode(), Metadata={"k": key}
            )
            self.assertEqual(out["ETag"], '"%s"' % hashlib.md5(key.encode()).hexdigest())

        got = self.s3.get_object(Bucket=self.bucket, Key="crud/a/2.txt")
        self.assertEqual(got["Body"].read(), b"a/2.txt")
        self.assertEqual(got["Metadata"], {"k": "a/2.txt"})
        self.assertEqual(got["ContentLength"], 7)

        listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix="crud/", Delimiter="/")
        self.assertEqual([o["Key"] for o in listed.get("Contents", [])], ["crud/b.txt"])
        self.assertEqual([p["Prefix"] for p in listed["CommonPrefixes"]], ["crud/a/", "crud/c/"])

        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix="crud/", PaginationConfig={"PageSize": 3}
        )
        seen = [o["Key"] for page in pages for o in page.get("Contents", [])]
        self.assertEqual(seen, sorted(f"crud/{k}" for k in keys))

        # ListObjects (v1) with a marker still serves older clients.
        v1 = self.s3.list_objects(Bucket=self.bucket, Prefix="crud/", Marker="crud/a/2.txt")
        self.assertEqual([o["Key"] for o in v1["Contents"]], ["crud/b.txt", "crud/c/deep/3.txt"])

        self.s3.delete_object(Bucket=self.bucket, Key="crud/b.txt")
        with self.assertRaises(self.s3.exceptions.NoSuchKey):
            self.s3.get_object(Bucket=self.bucket, Key="crud/b.txt")
        # Deleting what is already gone succeeds, as on S3.
        self.s3.delete_object(Bucket=self.bucket, Key="crud/b.txt")

        out = self.s3.delete_objects(
            Bucket=self.bucket,
            Delete={"Objects": [{"Key": f"crud/{k}"} for k in ("a/1.txt", "a/2.txt", "c/deep/3.txt")]},
        )
        self.assertEqual(len(out["Deleted"]), 3)
        self.assertNotIn("Errors", out)
        self.assertEqual(self.s3.list_objects_v2(Bucket=self.bucket, Prefix="crud/")["KeyCount"], 0)

    def test_upload_file_multipart_20mib(self):
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "src.bin")
            with open(src, "wb") as f:
                for _ in range(20):
                    f.write(os.urandom(MiB))
            # boto3's default threshold and chunk size are both 8 MiB, so a
            # 20 MiB file goes in three parts, two uploaded at once.
            self.s3.upload_file(src, self.bucket, "big/20mib.bin", ExtraArgs={"ContentType": "application/x-big"})

            head = self.s3.head_object(Bucket=self.bucket, Key="big/20mib.bin")
            self.assertEqual(head["ContentLength"], 20 * MiB)
            self.assertEqual(head["ContentType"], "application/x-big")
            self.assertRegex(head["ETag"], r'^"[0-9a-f]{32}-3"$')

            dst = os.path.join(tmp, "dst.bin")
            # Ranged parallel GETs on the way down.
            self.s3.download_file(
                self.bucket, "big/20mib.bin", dst, Config=TransferConfig(multipart_chunksize=4 * MiB, max_concurrency=4)
            )
            self.assertEqual(sha256_file(dst), sha256_file(src))

    def test_multipart_abort_leaves_nothing(self):
        up = self.s3.create_multipart_upload(Bucket=self.bucket, Key="mpu/aborted.bin")
        self.s3.upload_part(
            Bucket=self.bucket, Key="mpu/aborted.bin", UploadId=up["UploadId"], PartNumber=1, Body=b"x" * MiB
        )
        listed = self.s3.list_multipart_uploads(Bucket=self.bucket, Prefix="mpu/")
        self.assertEqual([u["UploadId"] for u in listed.get("Uploads", [])], [up["UploadId"]])
        self.s3.abort_multipart_upload(Bucket=self.bucket, Key="mpu/aborted.bin", UploadId=up["UploadId"])
        self.assertNotIn("Uploads", self.s3.list_multipart_uploads(Bucket=self.bucket, Prefix="mpu/"))
        with self.assertRaises(self.s3.exceptions.ClientError) as cm:
            self.s3.head_object(Bucket=self.bucket, Key="mpu/aborted.bin")
        self.assertEqual(cm.exception.response["Error"]["Code"], "404")

    def test_copy_object(self):
        self.s3.put_object(
            Bucket=self.bucket, Key="copy/src.txt", Body=b"original", ContentType="text/plain", Metadata={"a": "1"}
        )
        out = self.s3.copy_object(
            Bucket=self.bucket, Key="copy/same-meta.txt", CopySource={"Bucket": self.bucket, "Key": "copy/src.txt"}
        )
        self.assertEqual(out["CopyObjectResult"]["ETag"], '"%s"' % hashlib.md5(b"original").hexdigest())
        got = self.s3.get_object(Bucket=self.bucket, Key="copy/same-meta.txt")
        self.assertEqual(got["Body"].read(), b"original")
        self.assertEqual(got["ContentType"], "text/plain")
        self.assertEqual(got["Metadata"], {"a": "1"})

        self.s3.copy_object(
            Bucket=self.bucket,
            Key="copy/new-meta.txt",
            CopySource={"Bucket": self.bucket, "Key": "copy/src.txt"},
            MetadataDirective="REPLACE",
            ContentType="text/markdown",
            Metadata={"b": "2"},
        )
        head = self.s3.head_object(Bucket=self.bucket, Key="copy/new-meta.txt")
        self.assertEqual(head["ContentType"], "text/markdown")
        self.assertEqual(head["Metadata"], {"b": "2"})

        with self.assertRaises(self.s3.exceptions.ClientError) as cm:
            self.s3.copy_object(
                Bucket=self.bucket, Key="copy/x.txt", CopySource={"Bucket": self.bucket, "Key": "copy/missing.txt"}
            )
        self.assertEqual(cm.exception.response["Error"]["Code"], "NoSuchKey")

    def test_bucket_errors(self):
        with self.assertRaises(self.s3.exceptions.NoSuchBucket):
            self.s3.list_objects_v2(Bucket=unique("e2e-py-missing"))
        with self.assertRaises(self.s3.exceptions.ClientError) as cm:
            self.s3.create_bucket(Bucket=self.bucket)
        self.assertEqual(cm.exception.response["Error"]["Code"], "BucketAlreadyOwnedByYou")
        names = [b["Name"] for b in self.s3.list_buckets()["Buckets"]]
        self.assertIn(self.bucket, names)

        empty = unique("e2e-py-empty")
        self.s3.create_bucket(Bucket=empty)
        self.s3.put_object(Bucket=empty, Key="k", Body=b"v")
        with self.assertRaises(self.s3.exceptions.ClientError) as cm:
            self.s3.delete_bucket(Bucket=empty)
        self.assertEqual(cm.exception.response["Error"]["Code"], "BucketNotEmpty")
        self.s3.delete_object(Bucket=empty, Key="k")
        self.s3.delete_bucket(Bucket=empty)
        self.assertNotIn(empty, [b["Name"] for b in self.s3.list_buckets()["Buckets"]])


if __name__ == "__main__":
    unittest.main()
