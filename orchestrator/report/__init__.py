"""Reports: the papers' tables, figures and findings rebuilt from a sweep's MLflow runs.

Data flows one way: `rows` reads MLflow into frozen Row records, `aggregate` groups them by configuration over
seeds, `findings` judges the papers' qualitative claims, the table modules (`tables` names them; `cells`,
`verdicts` and `notes` write their cells and notes) and `figures` turn groups into the papers' tables and figures,
`formats` writes a table as Markdown / CSV / LaTeX, and `build` puts the files in a folder and on the sweep's parent
run.
"""
