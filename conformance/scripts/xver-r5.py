#!/usr/bin/env python3
"""Build conformance/xver/r5-elements.tsv from the hl7.fhir.r5.core npm package.

The HL7 validator accepts cross-version extensions in R4 content
(`http://hl7.org/fhir/5.0/StructureDefinition/extension-<path>`) and builds their
definition from the R5 element at <path>. This table keeps what that definition needs: the
element path, its maximum cardinality, its types and whether it is a modifier. Elements every
type carries (id, extension, modifierExtension) and those every resource inherits (meta,
implicitRules, language, text, contained) are left out.

Usage: scripts/xver-r5.py <unpacked hl7.fhir.r5.core-5.0.0/package> > conformance/xver/r5-elements.tsv
"""
import glob, json, os, sys

INHERITED = {"meta", "implicitRules", "language", "text", "contained"}
rows = []
for f in sorted(glob.glob(os.path.join(sys.argv[1], "StructureDefinition-*.json"))):
    d = json.load(open(f))
    if d.get("derivation") != "specialization" or d.get("kind") not in ("resource", "complex-type"):
        continue
    for e in d["snapshot"]["element"]:
        p = e["path"]
        parts = p.split(".")
        if len(parts) < 2 or parts[-1] in ("id", "extension", "modifierExtension"):
            continue
        if d["kind"] == "resource" and len(parts) == 2 and parts[1] in INHERITED:
            continue
        types = ",".join(t["code"] for t in e.get("type", [])) or "BackboneElement"
        rows.append((p, e.get("max", "*"), types, "1" if e.get("isModifier") else "0"))
print("# path\tmax\ttypes\tmodifier (hl7.fhir.r5.core 5.0.0, conformance/scripts/xver-r5.py)")
for r in sorted(set(rows)):
    print("\t".join(r))
