"""The tiles layer: tile state and operations (:mod:`~crossbar.tiles.tile`), the Tiki-Taka family and mixed
precision by composition (:mod:`~crossbar.tiles.transfer`), and pulse-response characterisation of a tile's
device (:mod:`~crossbar.tiles.characterize`)."""
