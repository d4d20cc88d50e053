"""The shared kernel: what loaders, static_catalog and stac_api all use.

Storage options and URLs (`storage`), WGS84 bboxes (`spatial`), where a store's
Item goes (`layout`), facets and queryables (`facets`), and the small STAC pieces
every publisher needs (`stac`: extents, structural links, the deletion rule,
catalogue defaults; `batching`). It imports none of the three packages.
"""
