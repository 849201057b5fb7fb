#!/usr/bin/env bash
# Validates the Kubernetes manifests of deploy/kubernetes offline, against the
# Kubernetes API schemas bundled in the PyPI package kubernetes-validate (strict: an
# unknown or misspelt field fails), for the oldest and newest Kubernetes it checks.
# Usage: scripts/k8s-validate.sh
set -euo pipefail
cd "$(dirname "$0")/.."

venv="target/k8s-validate-venv"
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'kubernetes-validate==1.31.0'
fi
# INSTALL_ONLY=1: fetch the dependencies and stop (.ci/run does it while cargo builds).
[ -z "${INSTALL_ONLY:-}" ] || exit 0
# kustomization.yaml is kustomize's, not an API object.
manifests=$(ls deploy/kubernetes/*.yaml | grep -v kustomization.yaml)
for version in 1.28.0 1.31.0; do
    # shellcheck disable=SC2086
    "$venv/bin/kubernetes-validate" --strict --kubernetes-version "$version" $manifests
done
# Every file kustomize is told about exists, and every manifest is listed (but the
# example Secret, which is created by hand).
for file in $(sed -n 's/^  - //p' deploy/kubernetes/kustomization.yaml); do
    [ -f "deploy/kubernetes/$file" ] || { echo "k8s-validate: kustomization lists a missing $file" >&2; exit 1; }
done
for file in $manifests; do
    name=$(basename "$file")
    [ "$name" = secret.example.yaml ] && continue
    grep -qx "  - $name" deploy/kubernetes/kustomization.yaml \
        || { echo "k8s-validate: $name is not in kustomization.yaml" >&2; exit 1; }
done
echo "k8s-validate: deploy/kubernetes is valid for Kubernetes 1.28 and 1.31"
