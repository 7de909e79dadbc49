"""Thin Prefect tasks, one module per pipeline stage; each calls one function of facelogin's core.

Retries, run names and fan-out live here, declared once per task; the work itself is in
`facelogin`, which never imports Prefect.
"""
