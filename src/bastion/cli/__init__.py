"""The ``bastion`` command: a thin skin over the same service functions the gateway uses."""
