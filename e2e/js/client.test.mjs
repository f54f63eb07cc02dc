// Everyday S3 operations with the AWS SDK for JavaScript v3 in its default
// configuration. Current SDKs compute CRC32 checksums on every upload and
// send streamed bodies as aws-chunked with a checksum trailer, so these
// tests prove the store understands what the SDK sends out of the box.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { before, describe, test } from 'node:test';
import { crc32 } from 'node:zlib';

import {
  CopyObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  NoSuchKey,
  PutObjectCommand,
  paginateListObjectsV2,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';

import { client, createBucket, endpoint } from './helpers.mjs';

const s3 = client();
let bucket;

before(async () => {
  bucket = await createBucket(s3, 'e2e-js-client');
});

function crc32Base64(buf) {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(crc32(buf) >>> 0);
  return b.toString('base64');
}

function sha256(buf) {
  return createHash('sha256').update(buf).digest('hex');
}

// chunked yields buf in pieces as a stream of unknown length, the way an
// application forwards an upload it is still receiving.
function chunked(buf, size) {
  return Readable.from((function* () {
    for (let i = 0; i < buf.length; i += size) {
      yield buf.subarray(i, Math.min(i + size, buf.length));
    }
  })());
}

// recordRequests keeps the headers of every request the client sends, as
// they go on the wire (after checksums and signing), so a test can show
// which of the SDK's encodings it exercised.
function recordRequests(c) {
  const sent = [];
  c.middlewareStack.add((next) => async (args) => {
    sent.push({ method: args.request.method, headers: { ...args.request.headers } });
    return next(args);
  }, { step: 'deserialize', name: 'e2eRecordRequests' });
  return sent;
}

async function bodyBuffer(out) {
  return Buffer.from(await out.Body.transformToByteArray());
}

describe('objects', () => {
  test('PutObject with a buffer body sends a CRC32 the store verifies and returns', async () => {
    const data = randomBytes(100 * 1024);
    const c = client();
    const sent = recordRequests(c);
    const put = await c.send(new PutObjectCommand({ Bucket: bucket, Key: 'put/buffer.bin', Body: data, ContentType: 'application/x-test' }));
    assert.equal(put.ChecksumCRC32, crc32Base64(data));
    // Whether the checksum went as a header or as a trailer, it was sent.
    const h = sent.at(-1).headers;
    assert.ok(h['x-amz-checksum-crc32'] === crc32Base64(data) || h['x-amz-trailer'] === 'x-amz-checksum-crc32', JSON.stringify(h));
    assert.equal(put.ETag, `"${createHash('md5').update(data).digest('hex')}"`);

    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'put/buffer.bin', ChecksumMode: 'ENABLED' }));
    assert.equal(got.ContentType, 'application/x-test');
    assert.equal(got.ContentLength, data.length);
    assert.equal(got.ETag, put.ETag);
    assert.equal(got.ChecksumCRC32, crc32Base64(data));
    assert.equal(sha256(await bodyBuffer(got)), sha256(data));
  });

  test('PutObject with a stream body (aws-chunked with a checksum trailer) stores every byte', async () => {
    const data = randomBytes(300 * 1024 + 17);
    const c = client();
    const sent = recordRequests(c);
    const put = await c.send(new PutObjectCommand({
      Bucket: bucket,
      Key: 'put/stream.bin',
      Body: chunked(data, 64 * 1024),
      ContentLength: data.length,
    }));
    assert.equal(put.ChecksumCRC32, crc32Base64(data));
    const h = sent.at(-1).headers;
    assert.equal(h['x-amz-content-sha256'], 'STREAMING-UNSIGNED-PAYLOAD-TRAILER');
    assert.equal(h['x-amz-trailer'], 'x-amz-checksum-crc32');
    assert.match(h['content-encoding'], /aws-chunked/);
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'put/stream.bin' }));
    assert.equal(head.ContentLength, data.length);
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'put/stream.bin' }));
    assert.equal(sha256(await bodyBuffer(got)), sha256(data));
  });

  test('a PutObject whose declared CRC32 is wrong is refused and stores nothing', async () => {
    const data = Buffer.from('checksummed body');
    const wrong = crc32Base64(Buffer.from('another body'));
    await assert.rejects(
      s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'put/bad-crc.txt', Body: data, ChecksumCRC32: wrong })),
      (err) => {
        assert.equal(err.name, 'BadDigest', err.message);
        assert.equal(err.$metadata.httpStatusCode, 400);
        return true;
      },
    );
    await assert.rejects(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'put/bad-crc.txt' })), { name: 'NotFound' });
  });

  test('GetObject with a Range returns the slice; a missing key is NoSuchKey', async () => {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'range.txt', Body: '0123456789abcdef' }));
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'range.txt', Range: 'bytes=4-9' }));
    assert.equal(got.$metadata.httpStatusCode, 206);
    assert.equal(got.ContentRange, 'bytes 4-9/16');
    assert.equal(await got.Body.transformToString(), '456789');

    await assert.rejects(s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'nothing-here' })), (err) => {
      assert.ok(err instanceof NoSuchKey, `${err.name}: ${err.message}`);
      assert.equal(err.$metadata.httpStatusCode, 404);
      return true;
    });
  });

  test('CopyObject copies body and metadata', async () => {
    await s3.send(new PutObjectCommand({
      Bucket: bucket, Key: 'copy/src.txt', Body: 'copy me', ContentType: 'text/plain', Metadata: { origin: 'e2e-js' },
    }));
    const out = await s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'copy/dst.txt', CopySource: `${bucket}/copy/src.txt` }));
    assert.ok(out.CopyObjectResult.ETag);
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'copy/dst.txt' }));
    assert.equal(await got.Body.transformToString(), 'copy me');
    assert.equal(got.ContentType, 'text/plain');
    assert.deepEqual(got.Metadata, { origin: 'e2e-js' });
  });
});

describe('listing and batch delete', () => {
  let listBucket;
  const keys = ['a/1.txt', 'a/2.txt', 'b/1.txt', 'b/deep/2.txt', 'c.txt', 'd.txt', 'e.txt'];

  before(async () => {
    listBucket = await createBucket(s3, 'e2e-js-list');
    await Promise.all(keys.map((Key) => s3.send(new PutObjectCommand({ Bucket: listBucket, Key, Body: Key }))));
  });

  test('ListObjectsV2 with a delimiter groups common prefixes', async () => {
    const out = await s3.send(new ListObjectsV2Command({ Bucket: listBucket, Delimiter: '/' }));
    assert.deepEqual(out.CommonPrefixes.map((p) => p.Prefix), ['a/', 'b/']);
    assert.deepEqual(out.Contents.map((o) => o.Key), ['c.txt', 'd.txt', 'e.txt']);
    assert.equal(out.KeyCount, 5);
    assert.equal(out.IsTruncated, false);

    const sub = await s3.send(new ListObjectsV2Command({ Bucket: listBucket, Prefix: 'b/', Delimiter: '/' }));
    assert.deepEqual(sub.Contents.map((o) => o.Key), ['b/1.txt']);
    assert.deepEqual(sub.CommonPrefixes.map((p) => p.Prefix), ['b/deep/']);
    assert.equal(sub.Contents[0].Size, 'b/1.txt'.length);
  });

  test('the paginator walks every key in order, two at a time', async () => {
    const seen = [];
    let pages = 0;
    for await (const page of paginateListObjectsV2({ client: s3, pageSize: 2 }, { Bucket: listBucket })) {
      pages++;
      assert.ok(page.KeyCount <= 2);
      seen.push(...(page.Contents ?? []).map((o) => o.Key));
    }
    assert.deepEqual(seen, [...keys].sort());
    assert.equal(pages, 4);
  });

  test('DeleteObjects removes a batch, reporting keys that never existed as deleted too', async () => {
    const batch = ['a/1.txt', 'a/2.txt', 'b/1.txt', 'no-such-key'];
    const out = await s3.send(new DeleteObjectsCommand({
      Bucket: listBucket,
      Delete: { Objects: batch.map((Key) => ({ Key })) },
    }));
    assert.deepEqual((out.Deleted ?? []).map((d) => d.Key).sort(), [...batch].sort());
    assert.equal(out.Errors, undefined);
    const left = await s3.send(new ListObjectsV2Command({ Bucket: listBucket }));
    assert.deepEqual(left.Contents.map((o) => o.Key), ['b/deep/2.txt', 'c.txt', 'd.txt', 'e.txt']);
  });
});

describe('multipart upload with lib-storage', () => {
  test('Upload of a 12 MiB stream goes in three parts and reads back intact', async () => {
    const data = randomBytes(12 * 1024 * 1024 + 12345);
    const upload = new Upload({
      client: s3,
      params: { Bucket: bucket, Key: 'big/12mib.bin', Body: chunked(data, 256 * 1024), ContentType: 'application/octet-stream' },
      partSize: 5 * 1024 * 1024,
      queueSize: 2,
    });
    const parts = [];
    upload.on('httpUploadProgress', (p) => parts.push(p.part));
    const out = await upload.done();
    assert.match(out.ETag, /^"[0-9a-f]{32}-3"$/);
    // Applications keep Location as the object's address; S3 answers an
    // absolute URL (lib-storage builds one itself for single-part uploads).
    const prefix = `${endpoint}/${bucket}/`;
    assert.ok(out.Location.startsWith(prefix), `Location ${out.Location}, want it under ${prefix}`);
    assert.equal(decodeURIComponent(out.Location.slice(prefix.length)), 'big/12mib.bin');
    assert.equal(new Set(parts.filter(Boolean)).size, 3);

    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'big/12mib.bin' }));
    assert.equal(head.ContentLength, data.length);
    assert.equal(head.ETag, out.ETag);
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'big/12mib.bin' }));
    assert.equal(sha256(await bodyBuffer(got)), sha256(data));
  });
});
