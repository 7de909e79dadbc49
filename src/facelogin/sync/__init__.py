"""The sync's pure core: what is on disk, what the catalog recorded, what to do, and what came of it.

`discover` reads the images root; everything else takes values and returns values (no network,
no clock, no environment): `plan` decides the work, `outcome` merges the results into records,
MongoDB documents and the run summary, `report` renders that summary for the Prefect UI.
`transfer` moves staged thumbnails between the staging directory and a store.
"""
