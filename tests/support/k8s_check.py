"""Checks Kubernetes manifests offline, without kubectl or a cluster.

Usage: k8s_check.py VERSIONS FILE...   (VERSIONS: comma-separated, e.g. 1.31.0,1.37.0)

Every YAML document is validated against the JSON schema of its kind and
API version for each Kubernetes version (the schemas ship inside the
kubernetes-validate package), strictly: a field the kind does not have,
misspelled or put at the wrong level, fails. On success the documents are
printed as one JSON array ({"file", "doc"} each) for the caller's own
checks; on failure each problem is printed on stderr with its file,
resource and field, and the exit code is 1.
"""

import json
import sys

import kubernetes_validate
import yaml


def where(e):
    return ".".join(str(p) for p in e.absolute_path) or "(top)"


def main():
    versions = sys.argv[1].split(",")
    docs, problems = [], []
    for path in sys.argv[2:]:
        with open(path, encoding="utf-8") as f:
            loaded = list(yaml.safe_load_all(f))
        for i, doc in enumerate(loaded, 1):
            if doc is None:
                continue
            if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
                problems.append(f"{path}: document {i} is not a Kubernetes object (no kind and apiVersion)")
                continue
            name = f"{path}: {doc['kind']} {(doc.get('metadata') or {}).get('name', '?')}"
            for v in versions:
                try:
                    kubernetes_validate.validate(doc, v, strict=True)
                except kubernetes_validate.ValidationError as e:
                    problems.append(f"{name} (Kubernetes {v}): {where(e)}: {e.message}")
                except kubernetes_validate.SchemaNotFoundError as e:
                    problems.append(f"{name} (Kubernetes {v}): {e.message}")
            docs.append({"file": path, "doc": doc})
    if problems:
        print("\n".join(problems), file=sys.stderr)
        sys.exit(1)
    json.dump(docs, sys.stdout)


if __name__ == "__main__":
    main()
