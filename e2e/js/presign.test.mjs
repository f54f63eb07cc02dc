// Presigned URLs minted by @aws-sdk/s3-request-presigner, used with plain
// fetch the way a browser or a partner system would: the documentation
// examples, and every way such a URL must be refused.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';

import {
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';

import {
  changeKey,
  client,
  createBucket,
  fetchError,
  nfyio,
  tamperSignature,
} from './helpers.mjs';

const s3 = client();
let bucket;
const pdf = Buffer.from('%PDF-1.4\n% nfyio e2e\n%%EOF\n');

before(async () => {
  bucket = await createBucket(s3, 'e2e-js-presign');
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'docs/report.txt', Body: 'hello, presigned world\n' }));
});

describe('presigned GET', () => {
  test('documentation example: getSignedUrl with expiresIn 3600 downloads the object', async () => {
    const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: 'docs/report.txt' }), { expiresIn: 3600 });
    const u = new URL(url);
    assert.equal(u.searchParams.get('X-Amz-Expires'), '3600');
    assert.equal(u.searchParams.get('X-Amz-Algorithm'), 'AWS4-HMAC-SHA256');
    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'hello, presigned world\n');
  });

  test('ResponseContentDisposition and ResponseContentType come back as headers', async () => {
    const disposition = 'attachment; filename="report 2024.txt"';
    const url = await getSignedUrl(s3, new GetObjectCommand({
      Bucket: bucket,
      Key: 'docs/report.txt',
      ResponseContentDisposition: disposition,
      ResponseContentType: 'application/octet-stream',
    }), { expiresIn: 300 });
    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-disposition'), disposition);
    assert.equal(res.headers.get('content-type'), 'application/octet-stream');
    assert.equal(await res.text(), 'hello, presigned world\n');
  });

  test('a URL signed in the past has expired: 403 AccessDenied', async () => {
    const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: 'docs/report.txt' }), {
      expiresIn: 60,
      signingDate: new Date(Date.now() - 3600 * 1000),
    });
    const e = await fetchError(url);
    assert.equal(e.status, 403, e.body);
    assert.equal(e.code, 'AccessDenied');
    assert.match(e.message, /expired/i);
  });

  test('an altered signature is refused: 403 SignatureDoesNotMatch', async () => {
    const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: 'docs/report.txt' }), { expiresIn: 300 });
    const e = await fetchError(tamperSignature(url));
    assert.equal(e.status, 403, e.body);
    assert.equal(e.code, 'SignatureDoesNotMatch');
  });

  test('a URL pointed at another key is refused: 403 SignatureDoesNotMatch', async () => {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'docs/secret.txt', Body: 'not for you' }));
    const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: 'docs/report.txt' }), { expiresIn: 300 });
    const e = await fetchError(changeKey(url, 'docs/report.txt', 'docs/secret.txt'));
    assert.equal(e.status, 403, e.body);
    assert.equal(e.code, 'SignatureDoesNotMatch');
    assert.doesNotMatch(e.body, /not for you/);
  });

  test('a missing object answers 404 NoSuchKey to a valid URL', async () => {
    const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: 'docs/none.txt' }), { expiresIn: 300 });
    const e = await fetchError(url);
    assert.equal(e.status, 404, e.body);
    assert.equal(e.code, 'NoSuchKey');
  });
});

describe('presigned PUT', () => {
  test('documentation example: ContentType application/pdf, expiresIn 900, fetch PUT with that type', async () => {
    const url = await getSignedUrl(s3, new PutObjectCommand({ Bucket: bucket, Key: 'uploads/doc.pdf', ContentType: 'application/pdf' }), { expiresIn: 900 });
    const res = await fetch(url, { method: 'PUT', body: pdf, headers: { 'Content-Type': 'application/pdf' } });
    assert.equal(res.status, 200, await res.text());
    assert.ok(res.headers.get('etag'), 'PUT answers an ETag');
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'uploads/doc.pdf' }));
    assert.equal(head.ContentType, 'application/pdf');
    assert.equal(head.ContentLength, pdf.length);
  });

  test('with default presigner settings content-type is not signed, so another type is accepted (as on S3)', async () => {
    const url = await getSignedUrl(s3, new PutObjectCommand({ Bucket: bucket, Key: 'uploads/any-type.pdf', ContentType: 'application/pdf' }), { expiresIn: 900 });
    const signed = new URL(url).searchParams.get('X-Amz-SignedHeaders').split(';');
    assert.ok(!signed.includes('content-type'), `signed headers ${signed}`);
    const res = await fetch(url, { method: 'PUT', body: 'plain text', headers: { 'Content-Type': 'text/plain' } });
    assert.equal(res.status, 200, await res.text());
    // The store keeps what the uploader sent: nothing in the URL bound it.
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'uploads/any-type.pdf' }));
    assert.equal(head.ContentType, 'text/plain');
  });

  test('with signableHeaders content-type, another type is refused: 403 SignatureDoesNotMatch', async () => {
    const key = 'uploads/strict.pdf';
    const url = await getSignedUrl(s3, new PutObjectCommand({ Bucket: bucket, Key: key, ContentType: 'application/pdf' }), {
      expiresIn: 900,
      signableHeaders: new Set(['content-type']),
    });
    const signed = new URL(url).searchParams.get('X-Amz-SignedHeaders').split(';');
    assert.ok(signed.includes('content-type'), `signed headers ${signed}`);

    const e = await fetchError(url, { method: 'PUT', body: pdf, headers: { 'Content-Type': 'image/png' } });
    assert.equal(e.status, 403, e.body);
    assert.equal(e.code, 'SignatureDoesNotMatch');
    await assert.rejects(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key })), { name: 'NotFound' });

    const ok = await fetch(url, { method: 'PUT', body: pdf, headers: { 'Content-Type': 'application/pdf' } });
    assert.equal(ok.status, 200, await ok.text());
  });

  test('expired, altered signature and altered key are refused and store nothing', async () => {
    const key = 'uploads/refused.bin';
    const cmd = () => new PutObjectCommand({ Bucket: bucket, Key: key });
    const expired = await getSignedUrl(s3, cmd(), { expiresIn: 60, signingDate: new Date(Date.now() - 3600 * 1000) });
    const fresh = await getSignedUrl(s3, cmd(), { expiresIn: 300 });
    const cases = [
      ['expired', expired, 'AccessDenied'],
      ['signature altered', tamperSignature(fresh), 'SignatureDoesNotMatch'],
      ['key altered', changeKey(fresh, key, 'uploads/elsewhere.bin'), 'SignatureDoesNotMatch'],
    ];
    for (const [name, url, code] of cases) {
      const e = await fetchError(url, { method: 'PUT', body: 'should not land' });
      assert.equal(e.status, 403, `${name}: ${e.body}`);
      assert.equal(e.code, code, name);
    }
    for (const k of [key, 'uploads/elsewhere.bin']) {
      await assert.rejects(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: k })), { name: 'NotFound' }, k);
    }
  });
});

describe('presigned URLs of a key that is later disabled', () => {
  test('GET and PUT URLs work, then answer 403 once the key is disabled', async () => {
    const created = JSON.parse(await nfyio(['keys', 'create', '--name', 'e2e-js-disable', '--scopes', 'read:objects,write:objects', '--json']));
    assert.ok(created.accessKeyId && created.secretAccessKey, JSON.stringify(created));
    const limited = client({ accessKeyId: created.accessKeyId, secretAccessKey: created.secretAccessKey });
    const getURL = await getSignedUrl(limited, new GetObjectCommand({ Bucket: bucket, Key: 'docs/report.txt' }), { expiresIn: 600 });
    const putURL = await getSignedUrl(limited, new PutObjectCommand({ Bucket: bucket, Key: 'uploads/by-key.txt' }), { expiresIn: 600 });

    let res = await fetch(getURL);
    assert.equal(res.status, 200, await res.text());
    res = await fetch(putURL, { method: 'PUT', body: 'first' });
    assert.equal(res.status, 200, await res.text());

    await nfyio(['keys', 'disable', created.accessKeyId]);

    const g = await fetchError(getURL);
    assert.equal(g.status, 403, g.body);
    assert.equal(g.code, 'InvalidAccessKeyId', 'a disabled key is refused like an inactive key on S3');
    const p = await fetchError(putURL, { method: 'PUT', body: 'second' });
    assert.equal(p.status, 403, p.body);
    assert.equal(p.code, 'InvalidAccessKeyId');
    // The refused upload must not have replaced the first one.
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'uploads/by-key.txt' }));
    assert.equal(await got.Body.transformToString(), 'first');
  });
});
