"""Reports: the papers' tables and figures rebuilt from a sweep's MLflow runs (issue 5).

Data flows one way (STYLE.md 8, 9): `rows` reads MLflow into frozen Row records, `aggregate` groups them by
configuration over seeds, `tables` and `figures` turn groups into the papers' tables and figures, `formats` writes
a table as Markdown / CSV / LaTeX, and `build` puts the files in a folder and on the sweep's parent run.
"""
