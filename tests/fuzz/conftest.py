"""What the fuzzing modules share: the Hypothesis settings (seeded, no deadline, no example
database), the checks every answer goes through, the request counter each module asserts on,
and users of the team hub with tokens of their own.

Each module fuzzes one HTTP API from its OpenAPI description with Schemathesis: every answer
must be documented (status code, content type, body schema) and none may be a 5xx.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import requests
from hypothesis import HealthCheck, Phase, settings
from schemathesis import Case
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

# at least this many generated requests per API, counted as they are sent
MIN_REQUESTS = 1000

# The acceptance checks: no 5xx, and every answer as the description documents it. Schemathesis'
# other checks judge what a request should have been answered (a request outside the schema
# refused, one inside it accepted); the APIs here refuse or accept for reasons the schema cannot
# express (a run that does not exist, a team the caller is not in), so those are not run.
CHECKS: list[CheckFunction] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def fuzz_settings(max_examples: int) -> settings:
    """Hypothesis settings for one operation: derandomized (the same requests on every run),
    no deadline (the rig is slow and shared), nothing written to an example database, no
    health check failing on slow answers or filtered data, and no shrinking (a failure is
    reported with the request that found it, reproducible from the fixed seed)."""
    return settings(
        max_examples=max_examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
        print_blob=False,
    )


@dataclass
class Fuzzer:
    """Sends cases to one API with a user's token, checks each answer and counts them."""

    base_url: str
    token: str
    sent: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    session: requests.Session = field(default_factory=requests.Session)

    def call(self, case: Case, **kwargs: Any) -> Any:
        response = case.call(
            base_url=self.base_url,
            session=self.session,
            headers={"Authorization": f"token {self.token}"},
            timeout=60,
            allow_redirects=False,
            **kwargs,
        )
        self.sent += 1
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        return response

    def check(self, case: Case, **kwargs: Any) -> Any:
        """Send ``case`` and fail on a 5xx or an answer the description does not document."""
        response = self.call(case, **kwargs)
        case.validate_response(response, checks=CHECKS)
        return response

    def summary(self) -> str:
        return f"{self.sent} requests, statuses {dict(sorted(self.statuses.items()))}"
