#!/usr/bin/env python3
"""Score layerscope's build-only verdicts against ground truth read out of
real single-stage / multi-stage image pairs (issue 18). bench/accuracy.sh
builds the images and calls this; docs/accuracy.md explains every number.

Ground truth, computed without layerscope:
  * the final file system of each image, from the tar stream of
    `docker export` of a created (never started) container: every path with
    its type and size, counted as Docker counts (regular files at their size,
    symlinks at the length of their target, hard links and directories 0);
  * the dpkg database read out of the same stream (var/lib/dpkg/status and
    var/lib/dpkg/info/*.list);
  * build-only packages: installed in the single image and not in the multi
    one; their bytes: the files their .list names (resolved through the
    image's symlinks, e.g. /bin -> usr/bin), that exist in the single image's
    final file system, are not directories, and are owned by no package the
    multi image also has.
"""
import argparse
import gzip
import json
import os
import subprocess
import sys
import tarfile
import tempfile

STACKS = ["python", "node", "java", "rust", "go", "cpp", "builder", "python-rec", "pyvenv"]
STACK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stacks")

# Independent definition of package caches (paths relative to /): what a
# package manager downloaded or indexed, which nothing at run time reads.
CACHE_PREFIXES = {
    "apt-lists": ["var/lib/apt/lists/"],
    "apt-archives": ["var/cache/apt/"],
    "pip": ["root/.cache/pip/"],
    "npm": ["root/.npm/"],
    "cargo": ["root/.cargo/registry/", "root/.cargo/git/"],
    "go-mod": ["root/go/pkg/mod/"],
}


def die(msg):
    print(f"measure.py: {msg}", file=sys.stderr)
    sys.exit(2)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def image_id(image):
    try:
        return run(["docker", "image", "inspect", "-f", "{{.Id}}", image]).strip()
    except subprocess.CalledProcessError:
        die(f"image {image} is missing (run bench/accuracy.sh without --no-build)")


def image_size(image):
    return int(run(["docker", "image", "inspect", "-f", "{{.Size}}", image]).strip())


def read_fs(image, cache_dir):
    """The final file system of IMAGE: {path: [type, size, link]} plus the
    dpkg status text and the .list files. Cached by image id."""
    iid = image_id(image)
    cache = os.path.join(cache_dir, f"fs-{iid.split(':')[-1][:24]}.json.gz")
    if os.path.exists(cache):
        with gzip.open(cache, "rt") as f:
            fs = json.load(f)
        if "ext" in fs:  # listings before apt's extended_states was read are redone
            return fs
    cid = run(["docker", "create", image]).strip()
    entries, lists, status, ext = {}, {}, "", ""
    try:
        proc = subprocess.Popen(["docker", "export", cid], stdout=subprocess.PIPE)
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for m in tar:
                path = m.name
                while path.startswith("./"):
                    path = path[2:]
                path = path.strip("/")
                if not path or path == ".":
                    continue
                if m.isdir():
                    entries[path] = ["d", 0, ""]
                elif m.issym():
                    entries[path] = ["l", len(m.linkname.encode()), m.linkname]
                elif m.islnk():
                    entries[path] = ["h", 0, m.linkname]
                elif m.isreg():
                    entries[path] = ["f", m.size, ""]
                    if path == "var/lib/dpkg/status":
                        status = tar.extractfile(m).read().decode("utf-8", "replace")
                    elif path == "var/lib/apt/extended_states":
                        ext = tar.extractfile(m).read().decode("utf-8", "replace")
                    elif path.startswith("var/lib/dpkg/info/") and path.endswith(".list"):
                        name = path[len("var/lib/dpkg/info/"):-len(".list")]
                        lists[name] = tar.extractfile(m).read().decode("utf-8", "replace").splitlines()
                else:
                    entries[path] = ["o", 0, ""]
        if proc.wait() != 0:
            die(f"docker export of {image} failed")
    finally:
        subprocess.run(["docker", "rm", cid], capture_output=True)
    fs = {"image": image, "id": iid, "entries": entries, "status": status, "lists": lists, "ext": ext}
    os.makedirs(cache_dir, exist_ok=True)
    tmp = cache + ".tmp"
    with gzip.open(tmp, "wt") as f:
        json.dump(fs, f)
    os.replace(tmp, cache)
    return fs


def installed_packages(status):
    """{name: arch} of packages whose Status is `... ok installed`."""
    pkgs = {}
    for para in status.split("\n\n"):
        fields = {}
        for line in para.splitlines():
            if line and not line[0].isspace() and ":" in line:
                k, v = line.split(":", 1)
                fields[k] = v.strip()
        st = fields.get("Status", "").split()
        if "Package" in fields and len(st) == 3 and st[1] == "ok" and st[2] == "installed":
            pkgs[fields["Package"]] = fields.get("Architecture", "")
    return pkgs


def paragraphs(text):
    """Each paragraph of a deb822 text (dpkg status, extended_states) as a dict."""
    out = []
    for para in text.split("\n\n"):
        fields, key = {}, None
        for line in para.splitlines():
            if line and line[0].isspace() and key:
                fields[key] += " " + line.strip()
            elif ":" in line:
                key, v = line.split(":", 1)
                fields[key] = v.strip()
        if fields:
            out.append(fields)
    return out


def relation_names(value):
    """Package names in a Depends-like field (alternatives flattened)."""
    names = []
    for group in value.split(","):
        for alt in group.split("|"):
            w = alt.strip().split()
            if w:
                names.append(w[0].split(":")[0])
    return names


class Fs:
    def __init__(self, raw):
        self.raw = raw
        self.entries = raw["entries"]
        self.pkgs = installed_packages(raw["status"])
        self.fields = {f["Package"]: f for f in paragraphs(raw["status"]) if f.get("Package") in self.pkgs}
        self.auto = {f["Package"] for f in paragraphs(raw.get("ext", "")) if f.get("Auto-Installed") == "1"}
        self.provides = {}
        for name, f in self.fields.items():
            for v in relation_names(f.get("Provides", "")):
                self.provides.setdefault(v, set()).add(name)
        self._resolved = {}
        self.files = {}  # package -> set of resolved, existing, non-directory paths
        self.owners = {}  # path -> set of packages
        for name, arch in self.pkgs.items():
            lst = raw["lists"].get(name)
            if lst is None:
                lst = raw["lists"].get(f"{name}:{arch}", [])
            files = set()
            for p in lst:
                r = self.resolve(p)
                e = self.entries.get(r)
                if e is None or e[0] == "d":
                    continue
                files.add(r)
                self.owners.setdefault(r, set()).add(name)
            self.files[name] = files

    def resolve(self, path, depth=0):
        """Resolve symlinks in every component but the last, lexically in the image."""
        key = path
        if depth == 0 and key in self._resolved:
            return self._resolved[key]
        parts = [c for c in path.split("/") if c not in ("", ".")]
        cur = []
        for i, comp in enumerate(parts):
            if comp == "..":
                if cur:
                    cur.pop()
                continue
            cand = "/".join(cur + [comp])
            e = self.entries.get(cand)
            if e is not None and e[0] == "l" and i < len(parts) - 1 and depth < 40:
                target = e[2]
                start = [] if target.startswith("/") else cur
                cur = [c for c in self.resolve("/".join(start + [target]), depth + 1).split("/") if c]
            else:
                cur.append(comp)
        out = "/".join(cur)
        if depth == 0:
            self._resolved[key] = out
        return out

    def needers(self, name, among):
        """Packages in AMONG naming NAME (or a virtual it provides) in a
        relation: [(package, field)], Depends/Pre-Depends before Recommends."""
        virt = {v for v, ps in self.provides.items() if name in ps}
        out = []
        for field in ("Pre-Depends", "Depends", "Recommends"):
            for p in sorted(among):
                if p != name and (set(relation_names(self.fields.get(p, {}).get(field, ""))) & ({name} | virt)):
                    out.append((p, field))
        return out

    def size(self, paths):
        return sum(self.entries[p][1] for p in paths)

    def prefix_bytes(self, prefixes):
        return sum(e[1] for p, e in self.entries.items() if e[0] != "d" and any(p.startswith(x) for x in prefixes))

    def final_bytes(self):
        return sum(e[1] for e in self.entries.values())


def layerscope_report(binary, image, out_dir):
    path = os.path.join(out_dir, f"layerscope-{image}.json")
    res = subprocess.run([binary, f"docker:{image}", "--json", path], capture_output=True, text=True)
    if res.returncode != 0:
        die(f"layerscope {image} exited {res.returncode}: {res.stderr.strip()[:500]}")
    with open(path) as f:
        return json.load(f)["images"][0]


def flagged_from(img):
    """(source, package names, layerscope's own build-only bytes or None)."""
    pk = img.get("packages")
    if isinstance(pk, dict) and isinstance(pk.get("build_only"), list):
        names = set()
        for b in pk["build_only"]:
            n = b.get("name") if isinstance(b, dict) else b
            if isinstance(n, str):
                names.add(n.split(":")[0])
        return "packages.build_only", names, pk.get("build_only_bytes")
    names = set()
    for f in img.get("findings", []):
        if f.get("kind") == "residue" and f.get("category") == "toolchain":
            names.update(n.split(":")[0] for n in f.get("packages") or [])
    return "findings (toolchain residue packages)", names, None


def own_build_only(img):
    """{name: {bytes, seed, reason}} from packages.build_only, or {} before it existed."""
    pk = img.get("packages")
    out = {}
    if isinstance(pk, dict) and isinstance(pk.get("build_only"), list):
        for b in pk["build_only"]:
            if isinstance(b, dict) and isinstance(b.get("name"), str):
                out[b["name"].split(":")[0]] = {k: b.get(k) for k in ("bytes", "seed", "reason")}
    return out


def category_bytes(img, cat):
    for c in img.get("categories", []):
        if c.get("category") == cat:
            return c.get("bytes", 0)
    return 0


def numeric_projections(img):
    out = {}
    if isinstance(img.get("projected_runtime_bytes"), int):
        out["projected_runtime_bytes"] = img["projected_runtime_bytes"]
    pr = img.get("projections")

    def walk(prefix, v):
        if isinstance(v, bool):
            return
        if isinstance(v, int):
            out[prefix] = v
        elif isinstance(v, dict):
            for k, x in v.items():
                walk(f"{prefix}.{k}", x)
        elif isinstance(v, list):
            for i, x in enumerate(v):
                key = x.get("kind") or x.get("name") or str(i) if isinstance(x, dict) else str(i)
                walk(f"{prefix}.{key}", x)

    if pr is not None:
        walk("projections", pr)
    # issue 18's report: the two projections lead the headline.
    hl = img.get("headline")
    if isinstance(hl, dict):
        for k in ("same_base_bytes", "app_bytes"):
            if isinstance(hl.get(k), int) and not isinstance(hl.get(k), bool):
                out[f"headline.{k}"] = hl[k]
    return out


def from_image(stack):
    """The image the single-stage Dockerfile builds FROM (its first FROM)."""
    with open(os.path.join(STACK_DIR, stack, "Dockerfile.single")) as f:
        for line in f:
            w = line.split()
            if len(w) >= 2 and w[0].upper() == "FROM":
                return w[1]
    return None


def base_check(stack, rep):
    """layerscope's base detection against the layers of the image the
    single image really builds FROM (docker image inspect RootFS.Layers)."""
    base = rep.get("base") or {}
    img = from_image(stack)
    expected = None
    if img and img != "scratch":
        expected = int(run(["docker", "image", "inspect", "-f", "{{len .RootFS.Layers}}", img]).strip())
    return {"from": img, "expected_layers": expected, "layers": base.get("layers"),
            "method": base.get("method"), "kind": base.get("kind"),
            "right": expected is not None and base.get("layers") == expected}


def measure(stack, binary, out_dir, cache_dir):
    single, multi = f"acc-{stack}-single", f"acc-{stack}-multi"
    fs_s, fs_m = Fs(read_fs(single, cache_dir)), Fs(read_fs(multi, cache_dir))
    build_only = set(fs_s.pkgs) - set(fs_m.pkgs)
    kept = set(fs_s.pkgs) & set(fs_m.pkgs)

    def truly(p):
        return not (fs_s.owners.get(p, set()) & kept)

    truth_files = {p for n in build_only for p in fs_s.files[n] if truly(p)}
    truth_bytes = fs_s.size(truth_files)
    dpkg_files = set(fs_s.owners)

    rep_s = layerscope_report(binary, single, out_dir)
    rep_m = layerscope_report(binary, multi, out_dir)
    source, flagged, ls_bytes = flagged_from(rep_s)
    own = own_build_only(rep_s)
    unknown = sorted(flagged - set(fs_s.pkgs))
    flagged_known = flagged & set(fs_s.pkgs)
    flagged_files = set().union(*(fs_s.files[n] for n in flagged_known)) if flagged_known else set()
    flagged_bytes = fs_s.size(flagged_files)
    tp_bytes = fs_s.size(flagged_files & truth_files)

    def pkg_bytes(n, only_truth):
        return fs_s.size({p for p in fs_s.files[n] if truly(p)} if only_truth else fs_s.files[n])

    missed = sorted(((n, pkg_bytes(n, True)) for n in build_only - flagged), key=lambda x: -x[1])
    false_pos = sorted(((n, pkg_bytes(n, False)) for n in flagged_known - build_only), key=lambda x: -x[1])
    kept_by_ls = set(fs_s.pkgs) - flagged

    def why_kept(n):
        """What in the single image keeps a missed package: kept (unflagged)
        packages that name it, and apt's record of how it came."""
        return {"manual": n not in fs_s.auto, "needed_by": [f"{p} ({f})" for p, f in fs_s.needers(n, kept_by_ls)][:6],
                "fields": {k: fs_s.fields[n].get(k) for k in ("Priority", "Essential", "Protected") if fs_s.fields[n].get(k)}}

    def why_in_multi(n):
        """Why the multi image has a falsely flagged package: hand-installed
        there, or which of its packages name it."""
        return {"manual_in_multi": n not in fs_m.auto,
                "needed_in_multi_by": [f"{p} ({f})" for p, f in fs_m.needers(n, set(fs_m.pkgs))][:6],
                "needed_in_single_by": [f"{p} ({f})" for p, f in fs_s.needers(n, set(fs_s.pkgs))][:6]}

    # The multi image: what layerscope calls toolchain or build-only there is all over-flagging.
    m_size = image_size(multi)
    m_source, m_flagged, m_ls_bytes = flagged_from(rep_m)
    m_flagged_known = m_flagged & set(fs_m.pkgs)
    m_flagged_bytes = fs_m.size(set().union(*(fs_m.files[n] for n in m_flagged_known))) if m_flagged_known else 0
    m_toolchain = category_bytes(rep_m, "toolchain")

    caches_s = {k: fs_s.prefix_bytes(v) for k, v in CACHE_PREFIXES.items()}
    caches_m = {k: fs_m.prefix_bytes(v) for k, v in CACHE_PREFIXES.items()}

    s_size = image_size(single)
    real = {"multi": m_size}
    scratch = f"acc-{stack}-scratch"
    if subprocess.run(["docker", "image", "inspect", scratch], capture_output=True).returncode == 0:
        real["scratch"] = image_size(scratch)
    proj = numeric_projections(rep_s)

    return {
        "stack": stack,
        "single": {"image": single, "id": fs_s.raw["id"], "size_bytes": s_size, "final_bytes": fs_s.final_bytes(),
                   "packages": len(fs_s.pkgs), "dpkg_bytes": fs_s.size(dpkg_files)},
        "multi": {"image": multi, "id": fs_m.raw["id"], "size_bytes": m_size, "final_bytes": fs_m.final_bytes(),
                  "packages": len(fs_m.pkgs)},
        "truth": {"build_only_packages": len(build_only), "build_only_bytes": truth_bytes,
                  "build_only_files": len(truth_files)},
        "layerscope": {"source": source, "flagged_packages": len(flagged), "unknown_names": unknown,
                       "own_build_only_bytes": ls_bytes,
                       "own_build_only": own,
                       "toolchain_bytes": category_bytes(rep_s, "toolchain"),
                       "package_cache_bytes": category_bytes(rep_s, "package-cache")},
        "scores": {"flagged_bytes": flagged_bytes, "true_positive_bytes": tp_bytes,
                   "recall": tp_bytes / truth_bytes if truth_bytes else None,
                   "precision": tp_bytes / flagged_bytes if flagged_bytes else None},
        "missed": [{"name": n, "bytes": b, **(why_kept(n) if b >= 1e6 else {})} for n, b in missed],
        "false_positives": [{"name": n, "bytes": b, "reason": (own.get(n) or {}).get("reason"),
                             **(why_in_multi(n) if b >= 1e6 else {})} for n, b in false_pos],
        "multi_flagged": {"source": m_source, "toolchain_bytes": m_toolchain,
                          "toolchain_share": m_toolchain / m_size if m_size else 0,
                          "flagged_packages": sorted(m_flagged), "flagged_dpkg_bytes": m_flagged_bytes,
                          "flagged_share": m_flagged_bytes / m_size if m_size else 0,
                          "own_build_only_bytes": m_ls_bytes},
        "package_caches": {"single": caches_s, "single_total": sum(caches_s.values()),
                           "multi": caches_m, "multi_total": sum(caches_m.values()),
                           "layerscope_single": category_bytes(rep_s, "package-cache"),
                           "layerscope_multi": category_bytes(rep_m, "package-cache")},
        "projections": {"layerscope": proj, "real": real},
        "base": base_check(stack, rep_s),
    }


def mb(n):
    return "n/a" if n is None else f"{n / 1e6:.1f}"


def pct(x, digits=1):
    return "n/a" if x is None else f"{100 * x:.{digits}f}%"


def table(results, label):
    lines = [f"#### {label}", "",
             "| stack | single MB | multi MB | build-only pkgs | truth MB | flagged MB | recall | precision "
             "| multi flagged (toolchain) | pkg caches MB: layerscope / counted | projected MB vs real multi MB "
             "| base layers: found / real |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        pc = r["package_caches"]
        proj = r["projections"]["layerscope"].get("projected_runtime_bytes")
        lines.append(
            f"| {r['stack']} | {mb(r['single']['size_bytes'])} | {mb(r['multi']['size_bytes'])} "
            f"| {r['truth']['build_only_packages']} | {mb(r['truth']['build_only_bytes'])} "
            f"| {mb(r['scores']['flagged_bytes'])} | {pct(r['scores']['recall'])} | {pct(r['scores']['precision'])} "
            f"| {pct(r['multi_flagged']['flagged_share'], 2)} ({pct(r['multi_flagged']['toolchain_share'], 2)}) "
            f"| {mb(pc['layerscope_single'])} / {mb(pc['single_total'])} "
            f"| {mb(proj)} vs {mb(r['projections']['real']['multi'])} "
            f"| {r['base']['layers']} / {r['base']['expected_layers']} ({r['base']['method']}) |")
    tb = sum(r["truth"]["build_only_bytes"] for r in results)
    fb = sum(r["scores"]["flagged_bytes"] for r in results)
    tp = sum(r["scores"]["true_positive_bytes"] for r in results)
    lines.append(f"| **all** | | | | {mb(tb)} | {mb(fb)} | {pct(tp / tb if tb else None)} "
                 f"| {pct(tp / fb if fb else None)} | | | | |")
    return "\n".join(lines)


def details(results, top):
    out = []
    for r in results:
        ls = r["layerscope"]
        out.append(f"\n{r['stack']}: source {ls['source']}; layerscope flags {ls['flagged_packages']} packages"
                   + (f" (own bytes {mb(ls['own_build_only_bytes'])} MB)" if ls["own_build_only_bytes"] is not None else "")
                   + f"; toolchain category {mb(ls['toolchain_bytes'])} MB")
        if ls["unknown_names"]:
            out.append(f"  names not in the dpkg database: {', '.join(ls['unknown_names'][:10])}")
        missed = r["missed"][:top]
        out.append(f"  missed ({len(r['missed'])} packages, {mb(sum(m['bytes'] for m in r['missed']))} MB): "
                   + (", ".join(f"{m['name']} {mb(m['bytes'])}" for m in missed) or "none"))
        fp = r["false_positives"][:top]
        out.append(f"  false positives ({len(r['false_positives'])} packages, "
                   f"{mb(sum(m['bytes'] for m in r['false_positives']))} MB): "
                   + (", ".join(f"{m['name']} {mb(m['bytes'])}" for m in fp) or "none"))
        for m in r["missed"]:
            if m["bytes"] >= 1e6:
                out.append(f"    missed {m['name']} {mb(m['bytes'])}: {'manual' if m['manual'] else 'auto'}"
                           + (f", {m['fields']}" if m["fields"] else "")
                           + f"; kept packages naming it: {', '.join(m['needed_by']) or 'none'}")
        for m in r["false_positives"]:
            if m["bytes"] >= 1e6 or m is r["false_positives"][0]:
                out.append(f"    false positive {m['name']} {mb(m['bytes'])}: layerscope says \"{(m.get('reason') or '')[:160]}\""
                           + (f"; in multi: {'manual' if m['manual_in_multi'] else 'auto'}, named by "
                              f"{', '.join(m['needed_in_multi_by']) or 'none'}" if "manual_in_multi" in m else ""))
        mf = r["multi_flagged"]
        if mf["flagged_packages"]:
            out.append(f"  flagged in the multi image: {', '.join(mf['flagged_packages'][:10])}")
        pc = r["package_caches"]
        counted = ", ".join(f"{k} {mb(v)}" for k, v in pc["single"].items() if v)
        out.append(f"  package caches in single: layerscope {mb(pc['layerscope_single'])} MB, counted "
                   f"{mb(pc['single_total'])} MB ({counted or 'none'}); multi: layerscope "
                   f"{mb(pc['layerscope_multi'])}, counted {mb(pc['multi_total'])}")
        b = r["base"]
        out.append(f"  base: FROM {b['from']}, {b['expected_layers']} layers; layerscope found {b['layers']} "
                   f"({b['method']}, {b['kind']}): {'right' if b['right'] else 'WRONG'}")
        real = r["projections"]["real"]
        projs = r["projections"]["layerscope"]
        out.append("  projections: " + (", ".join(f"{k} {mb(v)} MB" for k, v in projs.items()) or "none")
                   + "; real: " + ", ".join(f"{k} {mb(v)} MB" for k, v in real.items()))
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layerscope", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--label", default="run")
    ap.add_argument("--cache-dir", help="where file-system listings are kept (default OUT/../fs-cache)")
    ap.add_argument("--top", type=int, default=8)
    ap.add_argument("stacks", nargs="*", default=STACKS)
    a = ap.parse_args()
    for s in a.stacks:
        if s not in STACKS:
            die(f"unknown stack {s}")
    os.makedirs(a.out, exist_ok=True)
    cache_dir = a.cache_dir or os.path.join(os.path.dirname(os.path.abspath(a.out)), "fs-cache")
    results = []
    for s in a.stacks:
        print(f"  measuring {s}...", file=sys.stderr, flush=True)
        r = measure(s, a.layerscope, a.out, cache_dir)
        results.append(r)
        with open(os.path.join(a.out, f"{s}.json"), "w") as f:
            json.dump(r, f, indent=1)
    tbl = table(results, a.label)
    det = details(results, a.top)
    print(tbl)
    print(det)
    with open(os.path.join(a.out, "table.md"), "w") as f:
        f.write(tbl + "\n" + det + "\n")
    summary = [{"stack": r["stack"], **r["scores"], "truth_bytes": r["truth"]["build_only_bytes"],
                "source": r["layerscope"]["source"], "multi_flagged_share": r["multi_flagged"]["flagged_share"],
                "multi_toolchain_share": r["multi_flagged"]["toolchain_share"]} for r in results]
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump({"label": a.label, "stacks": summary}, f, indent=1)


if __name__ == "__main__":
    main()
