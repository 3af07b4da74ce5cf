"""Validates docs/approvals.openapi.yaml against the OpenAPI 3.1 specification
(openapi-spec-validator), so the document users generate clients from is well formed."""
import sys

import yaml
from openapi_spec_validator import validate

for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        validate(yaml.safe_load(f))
    print(f"{path}: valid OpenAPI")
