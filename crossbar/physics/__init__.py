"""The physics layer: the specification as pure functions of arrays and configs.

:mod:`~crossbar.physics.rng` (Philox-4x32-10 draws named by counters), :mod:`~crossbar.physics.devices` (one
module per device model: config, device-to-device sampling, pure step function), :mod:`~crossbar.physics.pulses`
(update management, pulse trains, coincidences) and :mod:`~crossbar.physics.io` (the MVM's non-idealities).
Nothing here keeps state or knows about tiles.
"""
