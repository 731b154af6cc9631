"""Trim one unpacked FHIR npm package to the definitions validation needs (see pack-shipped.sh).
Usage: trim-package.py SRC/package DST/package"""
import json, os, shutil, sys

src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst, exist_ok=True)
KEEP = {"StructureDefinition", "ValueSet", "CodeSystem", "SearchParameter"}
# What a SearchParameter derived from another, or named by a CapabilityStatement, is checked
# against (type, base, expression, components); prose and XPath dropped.
SP_KEEP = {"resourceType", "id", "url", "version", "name", "status", "code", "base", "type", "expression",
           "target", "component", "derivedFrom", "multipleOr", "multipleAnd", "comparator", "modifier", "chain"}
ELEM_DROP = {"definition", "comment", "requirements", "mapping", "alias", "meaningWhenMissing", "isModifierReason", "example"}
MAX_CS_BYTES = 3_000_000  # larger code systems (none needed by R4 or IPS required bindings) are left out


def trim_concepts(cs):
    for c in cs:
        c.pop("definition", None)
        c.pop("designation", None)
        if "concept" in c:
            trim_concepts(c["concept"])


def trim(r):
    for k in ("text", "mapping"):
        r.pop(k, None)
    rt = r.get("resourceType")
    if rt == "StructureDefinition":
        if r.get("snapshot"):
            r.pop("differential", None)
        for part in ("snapshot", "differential"):
            for e in r.get(part, {}).get("element", []):
                for k in ELEM_DROP:
                    e.pop(k, None)
                for c in e.get("constraint", []):
                    c.pop("xpath", None)
    elif rt == "CodeSystem":
        trim_concepts(r.get("concept", []))
    elif rt == "SearchParameter":
        r = {k: v for k, v in r.items() if k in SP_KEEP}
    elif rt == "ValueSet":
        r.pop("expansion", None) if r.get("compose") else None
    return r


index = []
for name in sorted(os.listdir(src)):
    path = os.path.join(src, name)
    if name == "package.json":
        shutil.copy(path, os.path.join(dst, name))
        continue
    if name == "example" and os.path.isdir(path):
        shutil.copytree(path, os.path.join(dst, name), dirs_exist_ok=True)
        continue
    if not name.endswith(".json") or name.startswith("."):
        continue
    if os.path.getsize(path) > MAX_CS_BYTES and not name.startswith("StructureDefinition"):
        continue
    try:
        r = json.load(open(path, encoding="utf-8"))
    except ValueError:
        continue
    if r.get("resourceType") not in KEEP:
        continue
    r = trim(r)
    with open(os.path.join(dst, name), "w", encoding="utf-8") as f:
        json.dump(r, f, ensure_ascii=False, separators=(",", ":"))
    index.append({k: r[k] for k in ("resourceType", "id", "url", "version") if k in r} | {"filename": name})
with open(os.path.join(dst, ".index.json"), "w", encoding="utf-8") as f:
    json.dump({"index-version": 1, "files": index}, f, separators=(",", ":"))
