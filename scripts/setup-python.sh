#!/usr/bin/env bash
# Installs the official Braintrust Python clients into a virtualenv for the
# compatibility tests, and prints the interpreter path (use it as CASTELLAN_PYTHON).
#
#   export CASTELLAN_PYTHON=$(scripts/setup-python.sh)
#
# braintrust 0.48.1 pins certifi>=2026.10.19, which PyPI may not offer; as the SDK
# reference advises, it is then installed with --no-deps plus its dependencies.
set -euo pipefail
venv="${1:-${CASTELLAN_VENV:-$(cd "$(dirname "$0")/.." && pwd)/target/compat-venv}}"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" >&2
fi
pip="$venv/bin/pip"
"$pip" install -q --disable-pip-version-check braintrust-api==0.6.0 >&2
if ! "$pip" install -q --disable-pip-version-check braintrust==0.48.1 >&2 2>/dev/null; then
    "$pip" install -q --disable-pip-version-check --no-deps braintrust==0.48.1 >&2
    "$pip" install -q --disable-pip-version-check certifi requests chevron tqdm 'exceptiongroup>=1.2.0' jsonschema \
        packaging sseclient-py python-slugify 'typing_extensions>=4.1.0' wrapt >&2
fi
# The official OpenTelemetry SDK and OTLP/HTTP exporter, for the /otel ingest tests.
"$pip" install -q --disable-pip-version-check opentelemetry-sdk==1.45.2 opentelemetry-exporter-otlp-proto-http==1.45.2 >&2
# The SCIM 2.0 validator (scim2-tester's check_server), for the /scim/v2 tests.
"$pip" install -q --disable-pip-version-check scim2-tester==0.5.2 "scim2-client[httpx2]==0.13.2" httpx2==2.17.0 scim2-models==0.12.3 >&2
"$venv/bin/python" -c "import braintrust, braintrust_api, opentelemetry.exporter.otlp.proto.http.trace_exporter, scim2_tester" >&2
echo "$venv/bin/python"
