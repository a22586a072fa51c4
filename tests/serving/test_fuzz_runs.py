"""Fuzz the run-backed operations of the spec (schemathesis) in a world where their runs exist.

``test_fuzz.py`` leaves out the surplus forecast, the loss risk, the cost drivers and the in-stay
prediction: over the shared world they can only answer 503. Here ``runs_world`` holds a forecast run,
a cost-driver run and an in-stay champion, so the fuzzer's parameters and bodies reach the code that
reads the runs and scores the stays. The same checks hold: no 5xx, and every answer is the documented
one (status, content type, headers, body schema), for requests the spec allows and for requests it
forbids (schemathesis' negative mode: wrong types, values out of range, missing or extra fields).
"""

from __future__ import annotations

import pytest
import schemathesis
from schemathesis import GenerationMode

from tests.serving.test_fuzz import fuzz

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("runs_world")]  # one worker builds runs_world

RUN_BACKED = ("/v1/forecast", "/v1/casemix/drivers", "/v1/predict/in-stay")
EXAMPLES_PER_OPERATION = 20


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_answer_of_the_run_backed_operations_conforms_to_the_spec(
    runs_world, make_runs_app, world, monkeypatch, mode
):
    runs_world.pointed(monkeypatch)
    app = make_runs_app()
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = {"Authorization": f"Bearer {world.keys['admin']}"}
    operations = [
        op for op in (result.ok() for result in schema.get_all_operations()) if op.path.startswith(RUN_BACKED)
    ]
    assert len(operations) == 8  # surplus, loss risk, their charts, drivers, a driver chart, in-stay ×2

    fuzz(operations, headers, EXAMPLES_PER_OPERATION, generation_mode=mode)
