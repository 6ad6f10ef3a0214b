"""The note templates: finding them (``discovery``), their front matter (``schema``,
``front_matter``), the sandboxed rendering (``sandbox``), the loaded template (``model``),
validating and loading one (``template``); for superusers: versions and the change log
(``versions``), saving an edited template (``saving``), template packs (``pack``: the
archive and export; ``pack_import``: installing one)."""
