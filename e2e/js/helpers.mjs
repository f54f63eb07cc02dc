// Shared setup for the JavaScript suites: where the store is, which keys to
// use, and small helpers to read S3 error bodies. scripts/e2e.sh sets the
// NFYIO_E2E_* variables; nothing here falls back to the ambient AWS
// configuration, so a developer's ~/.aws cannot change what is tested.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

import { S3Client, CreateBucketCommand } from '@aws-sdk/client-s3';

const execFileP = promisify(execFile);

function required(name) {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set: run the suites through scripts/e2e.sh`);
  }
  return v;
}

export const endpoint = required('NFYIO_E2E_ENDPOINT');
export const accessKeyId = required('NFYIO_E2E_ACCESS_KEY');
export const secretAccessKey = required('NFYIO_E2E_SECRET_KEY');
export const nfyioBin = required('NFYIO_E2E_BIN');
export const region = 'us-east-1';

// client returns an S3 client with the SDK's default settings apart from
// what a self-hosted store needs: its endpoint, path-style addressing and
// explicit credentials.
export function client(creds = { accessKeyId, secretAccessKey }) {
  return new S3Client({
    endpoint,
    region,
    forcePathStyle: true,
    credentials: creds,
  });
}

// uniqueName gives each test its own bucket, so suites and reruns against
// one server never see each other's objects.
export function uniqueName(prefix) {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

export async function createBucket(s3, prefix) {
  const bucket = uniqueName(prefix);
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

// s3Error parses the <Error> document S3 sends with a failure.
export function s3Error(xml) {
  const field = (name) => {
    const m = xml.match(new RegExp(`<${name}>([\\s\\S]*?)</${name}>`));
    return m ? m[1] : undefined;
  };
  return { code: field('Code'), message: field('Message') };
}

// fetchError fetches a URL expected to fail and returns the HTTP status
// with the S3 error code and message parsed from the body.
export async function fetchError(url, init) {
  const res = await fetch(url, init);
  const body = await res.text();
  return { status: res.status, ...s3Error(body), body, headers: res.headers };
}

// tamperSignature flips one hex digit of X-Amz-Signature.
export function tamperSignature(rawURL) {
  const u = new URL(rawURL);
  const sig = u.searchParams.get('X-Amz-Signature');
  if (!sig) {
    throw new Error(`no X-Amz-Signature in ${rawURL}`);
  }
  const flipped = (sig[0] === '0' ? '1' : '0') + sig.slice(1);
  u.searchParams.set('X-Amz-Signature', flipped);
  return u.toString();
}

// changeKey points a presigned URL at another object key, keeping the
// signature that was computed for the original one.
export function changeKey(rawURL, from, to) {
  const u = new URL(rawURL);
  if (!u.pathname.endsWith('/' + from)) {
    throw new Error(`path ${u.pathname} does not end with ${from}`);
  }
  u.pathname = u.pathname.slice(0, -from.length) + to;
  return u.toString();
}

// nfyio runs the built nfyio binary with the given credentials.
export async function nfyio(args, creds = { accessKeyId, secretAccessKey }) {
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NFYIO_ENDPOINT_URL: endpoint,
    NFYIO_REGION: region,
    NFYIO_ACCESS_KEY_ID: creds.accessKeyId,
    NFYIO_SECRET_ACCESS_KEY: creds.secretAccessKey,
  };
  const { stdout } = await execFileP(nfyioBin, args, { env });
  return stdout;
}
