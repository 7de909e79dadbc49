"""Thin Prefect tasks, one module per pipeline stage; each calls one function of facelogin's core."""
