#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/<target>/ (committed; rerun after changing them).

Seeds are small, valid-ish inputs that reach the interesting code: every proxy message type,
configs from the contract, SemVer edge cases, GitHub release objects, and archives of each
format libarchive reads, benign and hostile (dot-dot, absolute, symlink and hard-link
escapes, device nodes)."""
import io
import json
import os
import tarfile
import zipfile
import gzip

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# --- proxy messages
msgs = {
    "sync": {"type": "sync", "releases": [
        {"component": "web-ui", "repo": "acme/web-ui", "tag": "v2.4.0",
         "published_at": "2026-12-01T10:00:00Z"},
        {"component": "web-ui", "repo": "acme/web-ui", "tag": "v2.5.0"}]},
    "sync_bad_entries": {"type": "sync", "releases": [1, {"component": 5}, {}, None]},
    "release": {"type": "release", "component": "web-ui", "repo": "acme/web-ui",
                "tag": "v2.5.0", "published_at": "2026-12-02T10:00:00Z"},
    "ack": {"type": "ack", "id": "6f1c2b9e"},
    "error": {"type": "error", "code": "unauthorized", "message": "bad token"},
    "unknown": {"type": "future", "x": [1, 2.5e10, True, None, {"y": "\u00e9\ud83d\ude00"}]},
}
for k, v in msgs.items():
    write("proxy_messages", k + ".json", json.dumps(v))
write("proxy_messages", "not_object.json", "[1,2,3]")
write("proxy_messages", "escapes.json", '{"type":"release","component":"a\\u0000b","repo":"o/r","tag":"\\ud800"}')
write("proxy_messages", "binary.bin", b"\xff\xfe\x00{\"type\":\x80}")

# --- config
full = {
    "agent": {"id": "pi-kitchen-01", "arch": "arm64", "plugin_dir": "/nonexistent/plugins",
              "work_dir": "/tmp/rra-fuzz-work", "components_dir": "/nonexistent/components.d",
              "runtime_dir": "/tmp/rra-fuzz-run", "max_parallel_downloads": 2,
              "log_level": "information", "apply_jitter_s": 0},
    "proxy": {"url": "wss://releases.example.net", "heartbeat_s": 30,
              "reconnect_initial_ms": 1000, "reconnect_max_ms": 300000, "telemetry_queue": 1000},
    "github": {"api_url": "https://api.github.com", "ca_file": None, "backoff_initial_s": 60,
               "backoff_max_s": 3600, "max_attempts": 8},
    "components": [
        {"name": "web-ui", "type": "tarball", "repo": "acme/web-ui",
         "asset": "web-ui-{version}-{arch}.tar.gz", "allow_prerelease": False,
         "verify_timeout_s": 60, "pin": "v1.2.3",
         "settings": {"install_dir": "/opt/web-ui", "keep": 3,
                      "health_cmd": ["./bin/web-ui", "--health"]}},
        {"name": "sensor", "type": "deb", "repo": "acme/sensor", "asset": "s_{version}_all.deb"}],
}
write("config", "full.json", json.dumps(full, indent=2))
minimal = {"proxy": {"url": "ws://127.0.0.1:9"}, "agent": {"components_dir": "/nonexistent"},
           "components": [{"name": "a", "type": "tarball", "repo": "o/r", "asset": "{tag}.tgz"}]}
write("config", "minimal.json", json.dumps(minimal))
dup = json.loads(json.dumps(minimal))
dup["components"].append(dup["components"][0])
write("config", "duplicate.json", json.dumps(dup))
write("config", "syntax_error.json", '{\n  "proxy": {"url": "ws://x"},\n  "components": [,]\n}\n')
write("config", "wrong_types.json", '{"proxy": {"url": 5}, "agent": {"id": ["x"]}, "github": {"max_attempts": -1.5e300}}')
write("config", "unknown_keys.json", '{"proxy": {"url": "ws://h", "extra": 1}, "zzz": null, "components": []}')

# --- semver
for i, t in enumerate(["v1.2.3", "1.0.0-alpha\n1.0.0-alpha.1\n1.0.0-beta.2",
                       "1.0.0-rc.1+build.5\n1.0.0", "V0.0.0-0\nv0.0.0-00",
                       "18446744073709551615.0.0\n18446744073709551616.0.0",
                       "1.2\n1.2.3.4\nv1.2.3-", "1.0.0-x.7.z.92\n1.0.0-x-y-z.--\n1.0.0+0.build.1-rc.10000aaa-kk-0.1"]):
    write("semver", "tags%d.txt" % i, t)

# --- github release
asset = {"id": 7, "name": "web-ui-2.5.0-amd64.tar.gz", "size": 1024, "state": "uploaded",
         "content_type": "application/gzip", "url": "https://api.github.com/repos/a/b/releases/assets/7",
         "browser_download_url": "https://github.com/a/b/releases/download/v2.5.0/x",
         "digest": "sha256:" + "ab" * 32}
rel = {"id": 1, "tag_name": "v2.5.0", "draft": False, "prerelease": False, "assets": [asset]}
write("github_release", "release.json", json.dumps(rel))
r2 = json.loads(json.dumps(rel))
r2["assets"] += [{"id": 8, "name": "../evil", "size": 1, "state": "uploaded", "digest": None},
                 {"id": 9, "name": "v2.5.0.bin", "size": 0, "state": "starter", "digest": "sha512:00"},
                 {"id": 10, "name": "app-2.5.0-amd64.tar.gz", "size": 5, "digest": 42}]
r2["prerelease"] = True
write("github_release", "many_assets.json", json.dumps(r2))
write("github_release", "draft.json", json.dumps({"tag_name": "v1.0.0-rc.1", "draft": True, "assets": []}))
write("github_release", "no_size.json", json.dumps({"tag_name": "v1", "assets": [{"name": "a"}]}))
write("github_release", "not_object.json", '"v1.0.0"')


# --- archives
def tar_bytes(entries, mode="w"):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode, format=tarfile.PAX_FORMAT) as t:
        for e in entries:
            ti = tarfile.TarInfo(e["name"])
            ti.type = e.get("type", tarfile.REGTYPE)
            ti.mode = e.get("mode", 0o644)
            ti.linkname = e.get("link", "")
            data = e.get("data", b"")
            ti.size = len(data) if ti.type == tarfile.REGTYPE else 0
            t.addfile(ti, io.BytesIO(data) if ti.type == tarfile.REGTYPE else None)
    return buf.getvalue()


benign = [{"name": "pkg/", "type": tarfile.DIRTYPE, "mode": 0o755},
          {"name": "pkg/bin/app", "data": b"#!/bin/sh\necho hi\n", "mode": 0o4755},
          {"name": "pkg/link", "type": tarfile.SYMTYPE, "link": "bin/app"},
          {"name": "pkg/hard", "type": tarfile.LNKTYPE, "link": "pkg/bin/app"}]
write("extract", "benign.tar", tar_bytes(benign))
write("extract", "benign.tar.gz", gzip.compress(tar_bytes(benign), mtime=0))
write("extract", "dotdot.tar", tar_bytes([{"name": "../../escape", "data": b"x"}]))
write("extract", "absolute.tar", tar_bytes([{"name": "/tmp/rra-fuzz-absolute", "data": b"x"}]))
write("extract", "symlink_escape.tar", tar_bytes([
    {"name": "up", "type": tarfile.SYMTYPE, "link": ".."},
    {"name": "up/victim.txt", "data": b"overwritten"}]))
write("extract", "symlink_chain.tar", tar_bytes([
    {"name": "a", "type": tarfile.SYMTYPE, "link": "b/.."},
    {"name": "b", "type": tarfile.SYMTYPE, "link": "."},
    {"name": "c", "type": tarfile.SYMTYPE, "link": "a/../../victim.txt"}]))
write("extract", "hardlink_escape.tar", tar_bytes([
    {"name": "h", "type": tarfile.LNKTYPE, "link": "../victim.txt"}]))
write("extract", "device.tar", tar_bytes([
    {"name": "null", "type": tarfile.CHRTYPE}, {"name": "fifo", "type": tarfile.FIFOTYPE}]))
write("extract", "dir_then_file.tar", tar_bytes([
    {"name": "d/", "type": tarfile.DIRTYPE, "mode": 0o000},
    {"name": "d/f", "data": b"y"}, {"name": "d", "data": b"replace dir by file"}]))
zbuf = io.BytesIO()
with zipfile.ZipFile(zbuf, "w") as z:
    z.writestr("ok/file.txt", "zip data")
    z.writestr("../zip-escape", "x")
write("extract", "mixed.zip", zbuf.getvalue())
