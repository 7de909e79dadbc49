"""Training stage: face encodings, run in a process pool (dlib holds the GIL) or on a Dask cluster."""

from __future__ import annotations

from prefect import task

from facelogin import faces


@task(task_run_name="encode-{label}")
def encode_faces(
    paths: list[str], label: str, max_side: int = 800, upsample: int = 0
) -> list[faces.FaceResult]:
    """Detect the single face in each photo and compute its 128-d encoding, or say why not."""
    return [faces.encode_face(p, max_side=max_side, upsample=upsample) for p in paths]
