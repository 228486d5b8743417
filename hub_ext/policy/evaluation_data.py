"""The evaluation set, split into what the model sees (the features) and what it never sees
(the labels)."""

from __future__ import annotations

import csv
import io

from hub_ext.policy.validation import excerpt


class EvaluationDataError(ValueError):
    """The evaluation set cannot be used; the message says why (for the platform admins)."""


def split_labels(data: bytes, label_column: str) -> tuple[bytes, list[str]]:
    """The CSV without ``label_column``, and that column's values in row order."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise EvaluationDataError("the evaluation set is not UTF-8 text") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise EvaluationDataError("the evaluation set is empty")
    header, body = rows[0], [row for row in rows[1:] if row]
    if label_column not in header:
        raise EvaluationDataError(
            f"the evaluation set has no column {excerpt(label_column)}; its columns are "
            f"{', '.join(excerpt(name) for name in header)}"
        )
    if not body:
        raise EvaluationDataError("the evaluation set has a header but no rows")
    index = header.index(label_column)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([name for i, name in enumerate(header) if i != index])
    labels: list[str] = []
    for number, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise EvaluationDataError(
                f"row {number} of the evaluation set has {len(row)} values, the header "
                f"{len(header)}"
            )
        labels.append(row[index])
        writer.writerow([value for i, value in enumerate(row) if i != index])
    return out.getvalue().encode(), labels
