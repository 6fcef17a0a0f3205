#!/usr/bin/env bash
# Install the system packages the integration tests need (Debian/Ubuntu, as root; idempotent):
#   orthanc + orthanc-dicomweb  -> tests/clinical/test_orthanc.py (C-STORE round trip to a real PACS)
#   dicom3tools (dciodvfy)      -> DICOM SEG/SR/SC validity checks
#   dcmtk (storescu, echoscu)   -> listener tests with a second, independent DICOM implementation
#   chromium + chromium-driver  -> tests/clinical/test_browser.py (headless viewer test)
# Without root or apt-get it prints what to do and exits 0, so that `make test` still runs (the tests
# then skip with this hint, or fail under CI=true).
set -euo pipefail

PACKAGES=(orthanc orthanc-dicomweb dicom3tools dcmtk chromium chromium-driver)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-system-deps: all present (${PACKAGES[*]})"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-system-deps: no apt-get on this machine; install by hand: ${missing[*]}" >&2
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-system-deps: not root; run: sudo $0   (missing: ${missing[*]})" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# --no-install-recommends keeps the image small; policy-rc.d stops the orthanc package from starting
# a system-wide service (the tests start their own Orthanc on a free port).
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
fi
trap 'if [ "$created_policy" -eq 1 ]; then rm -f "$policy"; fi' EXIT
apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "install-system-deps: installed ${missing[*]}"
