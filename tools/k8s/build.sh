#!/usr/bin/env bash
# Builds the one-node test cluster's programs from the Go module proxy (versions pinned in
# go.mod/go.sum here): kube-apiserver, kubelet, kube-controller-manager, kube-scheduler,
# kubectl (k8s.io/kubernetes v1.37.2) and etcd-embed (go.etcd.io/etcd/server/v3 embed, the
# version kubernetes requires), into $IWSD_K8S_BIN (default <repo>/.tools/k8s/v1.37.2/bin).
# A program already built from the same go.sum is kept, so reruns take seconds. Cold: about
# 15 min of 2 busy cores (kube-apiserver is most of it).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
K8S_VERSION=v1.37.2
out="${IWSD_K8S_BIN:-$repo/.tools/k8s/$K8S_VERSION/bin}"
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
[ -x "$GO" ] || { echo "k8s-build: no Go toolchain (set GO=/path/to/go)" >&2; exit 1; }
mkdir -p "$out"
stamp="$(sha256sum "$here/go.sum" "$here/go.mod" "$here/etcd/main.go" | sha256sum | cut -c1-16)"
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37"
cd "$here"
build() { # name package
  local name="$1" pkg="$2" t0
  if [ -x "$out/$name" ] && [ "$(cat "$out/.$name.stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "k8s-build: $name up to date"; return
  fi
  t0=$(date +%s)
  CGO_ENABLED=0 "$GO" build -trimpath -ldflags "$ldflags" -o "$out/$name.tmp" "$pkg"
  mv "$out/$name.tmp" "$out/$name"
  echo "$stamp" > "$out/.$name.stamp"
  echo "k8s-build: $name built in $(( $(date +%s) - t0 )) s"
}
build etcd-embed ./etcd
build kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler
build kubectl k8s.io/kubernetes/cmd/kubectl
build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager
build kubelet k8s.io/kubernetes/cmd/kubelet
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
echo "k8s-build: all in $out"
