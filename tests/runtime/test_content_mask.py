"""What Shipyard keeps is masked whatever script its digits are written in (`ContentMask`): the
shortcut for texts without a digit or an `@` (only secrets are looked for) must not skip full-width
digits, which Japanese and Chinese input methods write."""

from __future__ import annotations

import pytest

from shipyard.guardrails import redact_pii
from shipyard.runtime import ContentMask


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("電話は０３-１２３４-５６７８、住所は東京都新宿区西新宿２丁目８番１号", ["[PHONE]", "[ADDRESS]"]),
        ("call me at 03-1234-5678", ["[PHONE]"]),
    ],
)
def test_personal_data_written_in_any_digits_is_masked_as_the_detectors_find_it(
    text: str, kinds: list[str]
) -> None:
    masked = ContentMask(True).text(text)
    assert masked == redact_pii(text)[0]
    assert all(k in masked for k in kinds), masked


def test_a_text_without_digits_is_kept_but_secrets_are_not() -> None:
    mask = ContentMask(True)
    assert mask.text("where is my parcel?") == "where is my parcel?"
    assert "[SECRET]" in mask.text("my key is sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd")
    assert ContentMask(False).text("電話は０３-１２３４-５６７８") == "電話は０３-１２３４-５６７８"
