// The browser half of direct uploads: ask our server for a presigned URL,
// then PUT the file straight to the storage server, watching the progress.
"use strict";

const $ = (id) => document.getElementById(id);

function showStatus(kind, text) {
  const el = $("status");
  el.className = kind;
  el.textContent = text;
}

// api calls this application's own JSON API.
async function api(path, body) {
  const opts = body === undefined
    ? { credentials: "same-origin" }
    : { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const resp = await fetch(path, opts);
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    const err = new Error(data.error || resp.status + " " + resp.statusText);
    err.status = resp.status;
    throw err;
  }
  return data;
}

// s3Error reads <Code> and <Message> from an S3 error document.
function s3Error(xhr) {
  try {
    const doc = new DOMParser().parseFromString(xhr.responseText || "", "application/xml");
    const code = doc.querySelector("Error > Code");
    const msg = doc.querySelector("Error > Message");
    if (code) return code.textContent + (msg ? ": " + msg.textContent : "");
  } catch (e) { /* not XML */ }
  return "HTTP " + xhr.status + " " + xhr.statusText;
}

function setProgress(fraction) {
  const pct = Math.floor(fraction * 100);
  $("progress").value = pct;
  $("progress-text").textContent = pct + "%";
}

function humanSize(n) {
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + units[i];
}

// putFile uploads with XMLHttpRequest, the one browser API that reports
// upload progress. It resolves with the ETag, or rejects with a message.
function putFile(target, file) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(target.method || "PUT", target.url);
    for (const [name, value] of Object.entries(target.headers || {})) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) setProgress(e.loaded / e.total); };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        setProgress(1);
        resolve(xhr.getResponseHeader("ETag"));
      } else {
        reject(new Error("Upload refused by the storage server: " + s3Error(xhr)));
      }
    };
    // No response at all: the network failed or, far more often, the
    // browser blocked the request because the store's CORS rules do not
    // allow this page's origin.
    xhr.onerror = () => reject(new Error("Upload blocked by the browser (CORS?): the storage server did not answer this page, " +
      "most likely because its CORS configuration does not allow " + location.origin + "."));
    xhr.onabort = () => reject(new Error("Upload aborted."));
    xhr.send(file);
  });
}

async function upload(ev) {
  ev.preventDefault();
  const file = $("file").files[0];
  if (!file) return;
  $("upload").disabled = true;
  setProgress(0);
  showStatus("info", "Uploading " + file.name + " (" + humanSize(file.size) + ")…");
  try {
    const target = await api("/api/get-upload-url", { filename: file.name, contentType: file.type || "application/octet-stream" });
    const etag = await putFile(target, file);
    showStatus("ok", "Uploaded " + file.name + " (ETag " + etag + ").");
    await refresh();
  } catch (e) {
    showStatus("error", e.message);
  } finally {
    $("upload").disabled = false;
  }
}

async function getLink(li, file) {
  try {
    const { url } = await api("/api/get-download-url?key=" + encodeURIComponent(file.key));
    const a = li.querySelector("a.download-link");
    a.href = url;
    a.hidden = false;
    a.textContent = "Download " + file.name;
  } catch (e) {
    showStatus("error", "No download link: " + e.message);
  }
}

async function refresh() {
  try {
    const { files } = await api("/api/files");
    const ul = $("files");
    ul.replaceChildren();
    if (files.length === 0) {
      const li = document.createElement("li");
      li.className = "empty";
      li.textContent = "No files yet.";
      ul.append(li);
    }
    for (const f of files) {
      const li = document.createElement("li");
      li.dataset.key = f.key;
      li.dataset.name = f.name;
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = f.name;
      const size = document.createElement("span");
      size.className = "size";
      size.textContent = humanSize(f.size);
      const btn = document.createElement("button");
      btn.type = "button";
      btn.className = "secondary get-link";
      btn.textContent = "Get download link";
      btn.onclick = () => getLink(li, f);
      const a = document.createElement("a");
      a.className = "download-link";
      a.hidden = true;
      a.rel = "noopener";
      li.append(name, size, btn, a);
      ul.append(li);
    }
    $("files-section").hidden = false;
  } catch (e) {
    showStatus("error", "Could not list your files: " + e.message);
  }
}

function signedIn(user) {
  $("who").textContent = user;
  $("login-section").hidden = true;
  $("upload-section").hidden = false;
  refresh();
}

async function login(ev) {
  ev.preventDefault();
  try {
    const { user } = await api("/api/login", { user: $("user").value.trim() });
    $("status").className = "";
    signedIn(user);
  } catch (e) {
    showStatus("error", e.message);
  }
}

async function logout() {
  await fetch("/api/logout", { method: "POST", credentials: "same-origin" });
  location.reload();
}

$("login-form").addEventListener("submit", login);
$("upload-form").addEventListener("submit", upload);
$("logout").addEventListener("click", logout);
$("refresh").addEventListener("click", refresh);
api("/api/me").then((me) => signedIn(me.user)).catch(() => {});
