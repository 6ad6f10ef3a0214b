"""The note templates: loading, validating and rendering a specialty's template
(``template``), and template packs for superusers (``pack``: export, import, versions)."""
