"""Shared setup for the Python suites (boto3 and plain urllib).

scripts/e2e.sh sets the NFYIO_E2E_* variables and runs these tests with the
system Python and its boto3. Clients are built from those variables only, so
the ambient AWS configuration of the machine cannot change what is tested.
"""

import functools
import os
import secrets
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

import boto3
from botocore.config import Config


def _required(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"{name} is not set: run the suites through scripts/e2e.sh")
    return value


ENDPOINT = _required("NFYIO_E2E_ENDPOINT")
ACCESS_KEY = _required("NFYIO_E2E_ACCESS_KEY")
SECRET_KEY = _required("NFYIO_E2E_SECRET_KEY")
NFYIO_BIN = _required("NFYIO_E2E_BIN")
REGION = "us-east-1"


@functools.lru_cache(maxsize=None)
def client(sigv4=True, access_key=ACCESS_KEY, secret_key=SECRET_KEY):
    """An S3 client for the store, shared between tests: botocore clients
    are thread-safe and slow to build (each loads the whole S3 model).

    With sigv4=False the client keeps botocore's own choice of signature,
    which for presigned URLs in us-east-1 is still SigV2 in the boto3 that
    Debian ships: applications that never set signature_version get those.
    """
    session = boto3.session.Session(
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=REGION,
    )
    cfg = {"s3": {"addressing_style": "path"}, "retries": {"max_attempts": 1}}
    if sigv4:
        cfg["signature_version"] = "s3v4"
    return session.client("s3", endpoint_url=ENDPOINT, config=Config(**cfg))


def unique(prefix):
    """A bucket name no other test or earlier run uses."""
    return f"{prefix}-{secrets.token_hex(5)}"


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def code(self):
        """The S3 error code of an <Error> body, or None."""
        return self._error_field("Code")

    @property
    def message(self):
        return self._error_field("Message")

    def _error_field(self, name):
        if not self.body:
            return None
        try:
            root = ET.fromstring(self.body)
        except ET.ParseError:
            return None
        if root.tag != "Error":
            return None
        return root.findtext(name)

    def __repr__(self):
        return f"HTTP {self.status}: {self.body[:600]!r}"


def http(method, url, body=None, headers=None):
    """Send one plain HTTP request, the way a non-S3 client would."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as res:
            return Response(res.status, res.headers, res.read())
    except urllib.error.HTTPError as err:
        with err:
            return Response(err.code, err.headers, err.read())


def tamper_signature(url):
    """Flip one character of the signature, whichever version signed it."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    for i, (name, value) in enumerate(query):
        if name in ("X-Amz-Signature", "Signature"):
            flipped = ("B" if value[0] != "B" else "C") if name == "Signature" else ("1" if value[0] == "0" else "0")
            query[i] = (name, flipped + value[1:])
            break
    else:
        raise AssertionError(f"no signature in {url}")
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def change_key(url, old, new):
    """Point a presigned URL at another key, keeping its signature."""
    parts = urllib.parse.urlsplit(url)
    if not parts.path.endswith("/" + old):
        raise AssertionError(f"{parts.path} does not end with {old}")
    return urllib.parse.urlunsplit(parts._replace(path=parts.path[: -len(old)] + new))


def multipart_form(fields, file_field, filename, content, content_type):
    """Encode an HTML form upload (multipart/form-data) as a browser does:
    the policy fields first, the file last."""
    boundary = "----nfyioE2E" + secrets.token_hex(12)
    out = []
    for name, value in fields.items():
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    out.append(
        (
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"{file_field}\"; filename=\"{filename}\"\r\n"
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
    )
    out.append(content)
    out.append(f"\r\n--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


def nfyio(*args, access_key=ACCESS_KEY, secret_key=SECRET_KEY):
    """Run the built nfyio binary and return its standard output."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/nonexistent"),
        "NFYIO_ENDPOINT_URL": ENDPOINT,
        "NFYIO_REGION": REGION,
        "NFYIO_ACCESS_KEY_ID": access_key,
        "NFYIO_SECRET_ACCESS_KEY": secret_key,
    }
    res = subprocess.run([NFYIO_BIN, *args], env=env, capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        raise AssertionError(f"nfyio {' '.join(args)}: exit {res.returncode}: {res.stderr}")
    return res.stdout
