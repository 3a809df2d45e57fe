"""Property-based API test: schemathesis drives /api/ from its own OpenAPI document.

Every operation, with generated parameters and bodies, signed in with an admin
token: no 5xx, and every answer matches the documented status codes, content type
and schema. Bounded (few examples per operation, no shrinking past a deadline) so
it runs in well under a minute in CI.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

from tests.web.test_api import bearer

MAX_EXAMPLES = 15  # per operation; the whole run stays well under a minute


def test_the_api_keeps_its_contract(seeded, people):
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", seeded)
    headers = bearer(people.admin_token)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 6
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            response = case.call(headers=headers)
            assert response.status_code < 500, (case.method, case.formatted_path, response.text[:300])
            # ignored_auth sends no or a broken token and expects 401; our fixed admin
            # token makes that meaningless here (test_api covers missing and bad tokens).
            # positive_data_acceptance: schema-valid records may still be refused by the
            # import's validation (a date that is not a date is a string): 422, documented.
            case.validate_response(response, excluded_checks=[ignored_auth, positive_data_acceptance])

        check()
