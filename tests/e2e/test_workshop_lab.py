"""The learners' notebook (notebooks/workshop.ipynb) top to bottom in JupyterLab, offline against
the local server: every exercise's check says ✓ (the same notebook runs through the broker in
tests/hub/test_workshop_browser.py)."""

from __future__ import annotations

import pytest

from .conftest import Lab

pytestmark = pytest.mark.parametrize("lab", ["lab"], indirect=True)


async def test_the_workshop_notebook_runs_with_every_check_passing(lab: Lab) -> None:
    await lab.open("workshop.ipynb")
    await lab.run_all()
    await lab.wait_kernel("'w' in globals() and w.status == 'closed'", timeout=90)
    assert await lab.kernel_json("endpoint") == "local"
    outputs = await lab.outputs()
    text = "\n".join(outputs)
    assert text.count("✓") == 3 and "✗" not in text, text
    errors = await lab.page.locator(".jp-OutputArea-output[data-mime-type*='error']").count()
    assert errors == 0
